//! The JUnit XML report: one `testsuite` per feature, one `testcase` per scenario, a
//! `failure` with the failing step and its evidence; a feature file that did not parse is a
//! testcase with an `error`.

use std::fmt::Write as _;

use super::record::{Report, Status};

/// Escapes text for XML content and attribute values: the HTML escape, after dropping the
/// control characters XML 1.0 forbids (a step's evidence may carry any byte a service sent).
pub fn escape(text: &str) -> String {
    let allowed: String = text
        .chars()
        .filter(|&c| matches!(c, '\t' | '\n' | '\r') || (c as u32) >= 0x20)
        .collect();
    ppvnet_common::web::escape_html(&allowed)
}

pub fn render(report: &Report) -> String {
    let (passed, failed) = report.counts();
    let mut x = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        x,
        "<testsuites name=\"ppvnet acceptance\" tests=\"{}\" failures=\"{}\" time=\"{:.3}\">",
        passed + failed,
        failed,
        report.duration().as_secs_f64()
    );
    for f in &report.features {
        let failures = f.scenarios.iter().filter(|s| !s.passed()).count();
        let time: f64 = f.scenarios.iter().map(|s| s.duration.as_secs_f64()).sum();
        let file = f
            .path
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_default();
        let _ = writeln!(
            x,
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{failures}\" errors=\"0\" time=\"{time:.3}\" file=\"{}\">",
            escape(&f.name),
            f.scenarios.len(),
            escape(&file)
        );
        for s in &f.scenarios {
            let _ = write!(
                x,
                "    <testcase classname=\"{}\" name=\"{}\" file=\"{}\" line=\"{}\" time=\"{:.3}\"",
                escape(&f.name),
                escape(&s.name),
                escape(&file),
                s.line,
                s.duration.as_secs_f64()
            );
            if s.passed() {
                x.push_str("/>\n");
                continue;
            }
            let message = s.failure().unwrap_or_default();
            let first = message.lines().next().unwrap_or_default();
            let steps: String = s
                .steps
                .iter()
                .map(|st| {
                    let mut l = format!("{:7} {}{}\n", st.status.as_str(), st.keyword, st.text);
                    if st.status == Status::Failed
                        && let Some(e) = &st.error
                    {
                        l.push_str(e);
                        l.push('\n');
                    }
                    l
                })
                .collect();
            let _ = write!(
                x,
                ">\n      <failure message=\"{}\" type=\"step\">{}</failure>\n    </testcase>\n",
                escape(first),
                escape(&steps)
            );
        }
        x.push_str("  </testsuite>\n");
    }
    if !report.parse_errors.is_empty() {
        let _ = writeln!(
            x,
            "  <testsuite name=\"feature files\" tests=\"{n}\" failures=\"0\" errors=\"{n}\">",
            n = report.parse_errors.len()
        );
        for (i, e) in report.parse_errors.iter().enumerate() {
            let _ = writeln!(
                x,
                "    <testcase classname=\"feature files\" name=\"parse error {}\"><error message=\"{}\"/></testcase>",
                i + 1,
                escape(e)
            );
        }
        x.push_str("  </testsuite>\n");
    }
    x.push_str("</testsuites>\n");
    x
}
