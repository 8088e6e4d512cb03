//! The Cucumber JSON report (the format of cucumber-jvm's `json` plugin, read by CI
//! dashboards): an array of features with their scenarios (`elements`) and steps; durations
//! in nanoseconds.

use serde_json::{Value, json};

use super::record::{Report, ScenarioReport, Status};

fn slug(text: &str) -> String {
    text.to_lowercase()
        .chars()
        .map(|c| if c.is_alphanumeric() { c } else { '-' })
        .collect()
}

fn tags(tags: &[String], line: usize) -> Value {
    tags.iter()
        .map(|t| json!({"name": t, "line": line}))
        .collect()
}

fn scenario(feature_id: &str, s: &ScenarioReport) -> Value {
    let steps: Vec<Value> = s
        .steps
        .iter()
        .map(|st| {
            let mut result = json!({
                "status": st.status.as_str(),
                "duration": u64::try_from(st.duration.as_nanos()).unwrap_or(u64::MAX),
            });
            if st.status == Status::Failed {
                result["error_message"] = json!(st.error.clone().unwrap_or_default());
            }
            let mut step = json!({
                "keyword": st.keyword,
                "name": st.text,
                "line": st.line,
                "result": result,
            });
            if let Some(a) = &st.argument {
                step["doc_string"] = json!({"value": a, "line": st.line + 1});
            }
            step
        })
        .collect();
    let mut element = json!({
        "id": format!("{feature_id};{}", slug(&s.name)),
        "keyword": s.keyword,
        "type": "scenario",
        "name": s.name,
        "line": s.line,
        "description": "",
        "tags": tags(&s.tags, s.line),
        "steps": steps,
    });
    if let Some(h) = &s.hook_error {
        element["after"] = json!([{"result": {"status": "failed", "error_message": h}}]);
    }
    element
}

pub fn render(report: &Report) -> String {
    let features: Vec<Value> = report
        .features
        .iter()
        .map(|f| {
            let id = slug(&f.name);
            json!({
                "uri": f.path.as_ref().map(|p| p.display().to_string()).unwrap_or_default(),
                "id": id,
                "keyword": "Feature",
                "name": f.name,
                "description": f.description.clone().unwrap_or_default(),
                "line": 1,
                "tags": tags(&f.tags, 1),
                "elements": f.scenarios.iter().map(|s| scenario(&id, s)).collect::<Vec<_>>(),
            })
        })
        .collect();
    serde_json::to_string_pretty(&Value::Array(features)).unwrap_or_else(|_| "[]".into())
}
