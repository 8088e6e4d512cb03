//! A cucumber writer that keeps the whole run as a [`Report`], for the report files.
//!
//! It is wrapped in cucumber's `Normalize`, so events arrive feature by feature and scenario by
//! scenario; times come from the events' own timestamps (cucumber's `timestamps` feature), so
//! they are the real ones even though concurrent scenarios are reordered.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use cucumber::event::{self, Cucumber, HookType, Scenario as ScenarioEvent, Step as StepEvent};
use cucumber::{Event, World, Writer, cli, gherkin, parser};

/// Outcome of one step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    Passed,
    Failed,
    /// Not run: an earlier step of its scenario failed (cucumber stops there).
    Skipped,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Passed => "passed",
            Status::Failed => "failed",
            Status::Skipped => "skipped",
        }
    }
}

#[derive(Clone, Debug)]
pub struct StepReport {
    pub keyword: String,
    pub text: String,
    pub line: usize,
    /// A Background step, run before the scenario's own.
    pub background: bool,
    pub status: Status,
    pub duration: Duration,
    /// The step's error: its panic message with whatever evidence the step put in it.
    pub error: Option<String>,
    /// The docstring or table the step carries, as written.
    pub argument: Option<String>,
    started: Option<SystemTime>,
}

#[derive(Clone, Debug)]
pub struct ScenarioReport {
    pub name: String,
    pub keyword: String,
    pub rule: Option<String>,
    pub line: usize,
    pub tags: Vec<String>,
    pub steps: Vec<StepReport>,
    pub started: Option<SystemTime>,
    pub duration: Duration,
    /// A failed before/after hook (teardown), which fails the scenario too.
    pub hook_error: Option<String>,
}

impl ScenarioReport {
    pub fn passed(&self) -> bool {
        self.hook_error.is_none() && self.steps.iter().all(|s| s.status == Status::Passed)
    }

    /// The first failure's text, for one-line summaries (JUnit's message).
    pub fn failure(&self) -> Option<String> {
        self.steps
            .iter()
            .find(|s| s.status == Status::Failed)
            .map(|s| {
                format!(
                    "{}{}: {}",
                    s.keyword,
                    s.text,
                    s.error.clone().unwrap_or_default()
                )
            })
            .or_else(|| self.hook_error.clone())
            .or_else(|| (!self.passed()).then(|| "the scenario did not finish".into()))
    }
}

#[derive(Clone, Debug)]
pub struct FeatureReport {
    pub name: String,
    pub description: Option<String>,
    pub path: Option<PathBuf>,
    pub tags: Vec<String>,
    pub scenarios: Vec<ScenarioReport>,
}

/// The whole run.
#[derive(Clone, Debug)]
pub struct Report {
    pub started: SystemTime,
    pub finished: SystemTime,
    pub features: Vec<FeatureReport>,
    /// Feature files that did not parse, with the parser's message.
    pub parse_errors: Vec<String>,
}

impl Default for Report {
    fn default() -> Self {
        Report {
            started: SystemTime::now(),
            finished: SystemTime::now(),
            features: Vec::new(),
            parse_errors: Vec::new(),
        }
    }
}

impl Report {
    pub fn scenarios(&self) -> impl Iterator<Item = (&FeatureReport, &ScenarioReport)> {
        self.features
            .iter()
            .flat_map(|f| f.scenarios.iter().map(move |s| (f, s)))
    }

    /// (passed, failed) scenarios; a feature file that did not parse counts as one failure.
    pub fn counts(&self) -> (usize, usize) {
        let passed = self.scenarios().filter(|(_, s)| s.passed()).count();
        let failed = self.scenarios().count() - passed + self.parse_errors.len();
        (passed, failed)
    }

    pub fn duration(&self) -> Duration {
        self.finished
            .duration_since(self.started)
            .unwrap_or_default()
    }
}

/// Records events into a shared [`Report`] (the caller keeps the other handle).
#[derive(Clone, Debug, Default)]
pub struct Recorder {
    pub report: Arc<Mutex<Report>>,
}

fn tags(tags: &[String]) -> Vec<String> {
    tags.iter()
        .map(|t| {
            if t.starts_with('@') {
                t.clone()
            } else {
                format!("@{t}")
            }
        })
        .collect()
}

fn argument(step: &gherkin::Step) -> Option<String> {
    if let Some(d) = &step.docstring {
        return Some(d.clone());
    }
    step.table.as_ref().map(|t| {
        t.rows
            .iter()
            .map(|r| format!("| {} |", r.join(" | ")))
            .collect::<Vec<_>>()
            .join("\n")
    })
}

fn planned_step(step: &gherkin::Step, background: bool) -> StepReport {
    StepReport {
        keyword: step.keyword.clone(),
        text: step.value.clone(),
        line: step.position.line,
        background,
        status: Status::Skipped,
        duration: Duration::ZERO,
        error: None,
        argument: argument(step),
        started: None,
    }
}

fn feature_entry<'a>(report: &'a mut Report, f: &gherkin::Feature) -> &'a mut FeatureReport {
    let at = report
        .features
        .iter()
        .position(|x| x.path == f.path && x.name == f.name);
    let i = at.unwrap_or_else(|| {
        report.features.push(FeatureReport {
            name: f.name.clone(),
            description: f.description.clone(),
            path: f.path.clone(),
            tags: tags(&f.tags),
            scenarios: Vec::new(),
        });
        report.features.len() - 1
    });
    &mut report.features[i]
}

/// Finds (or, at its start, creates) the scenario's entry with all its steps not yet run.
fn scenario_entry<'a>(
    feature: &'a mut FeatureReport,
    f: &gherkin::Feature,
    rule: Option<&gherkin::Rule>,
    s: &gherkin::Scenario,
) -> &'a mut ScenarioReport {
    let rule_name = rule.map(|r| r.name.clone());
    let at = feature
        .scenarios
        .iter()
        .position(|x| x.line == s.position.line && x.name == s.name && x.rule == rule_name);
    let i = at.unwrap_or_else(|| {
        let background = f
            .background
            .iter()
            .chain(rule.and_then(|r| r.background.as_ref()))
            .flat_map(|b| b.steps.iter().map(|st| planned_step(st, true)));
        let steps = background
            .chain(s.steps.iter().map(|st| planned_step(st, false)))
            .collect();
        feature.scenarios.push(ScenarioReport {
            name: s.name.clone(),
            keyword: s.keyword.clone(),
            rule: rule_name,
            line: s.position.line,
            tags: tags(&s.tags),
            steps,
            started: None,
            duration: Duration::ZERO,
            hook_error: None,
        });
        feature.scenarios.len() - 1
    });
    &mut feature.scenarios[i]
}

fn panic_text(info: &event::Info) -> String {
    if let Some(s) = info.downcast_ref::<String>() {
        s.clone()
    } else if let Some(s) = info.downcast_ref::<&str>() {
        (*s).to_string()
    } else {
        "the step panicked".into()
    }
}

fn step_error(e: &event::StepError) -> String {
    match e {
        event::StepError::Panic(info) => panic_text(info),
        other => other.to_string(),
    }
}

fn on_step<W>(
    sc: &mut ScenarioReport,
    step: &gherkin::Step,
    bg: bool,
    ev: &StepEvent<W>,
    at: SystemTime,
) {
    let Some(st) = sc
        .steps
        .iter_mut()
        .find(|x| x.line == step.position.line && x.background == bg)
    else {
        return;
    };
    let elapsed = |st: &StepReport| {
        st.started
            .and_then(|s| at.duration_since(s).ok())
            .unwrap_or_default()
    };
    match ev {
        StepEvent::Started => st.started = Some(at),
        StepEvent::Passed(..) => {
            st.status = Status::Passed;
            st.duration = elapsed(st);
        }
        StepEvent::Skipped => {
            // An undefined step (the runner's fail_on_skipped turns it into a failure).
            st.status = Status::Failed;
            st.error = Some("no step definition matches this step".into());
            st.duration = elapsed(st);
        }
        StepEvent::Failed(_, _, _, e) => {
            st.status = Status::Failed;
            st.error = Some(step_error(e));
            st.duration = elapsed(st);
        }
    }
}

fn on_scenario<W>(sc: &mut ScenarioReport, ev: &ScenarioEvent<W>, at: SystemTime) {
    match ev {
        ScenarioEvent::Started => sc.started = Some(at),
        ScenarioEvent::Finished => {
            sc.duration = sc
                .started
                .and_then(|s| at.duration_since(s).ok())
                .unwrap_or_default();
        }
        ScenarioEvent::Step(step, e) => on_step(sc, step, false, e, at),
        ScenarioEvent::Background(step, e) => on_step(sc, step, true, e, at),
        ScenarioEvent::Hook(which, event::Hook::Failed(_, info)) => {
            let when = match which {
                HookType::Before => "before",
                HookType::After => "after",
            };
            sc.hook_error = Some(format!(
                "the {when}-scenario hook failed: {}",
                panic_text(info)
            ));
        }
        ScenarioEvent::Hook(..) | ScenarioEvent::Log(_) => {}
    }
}

impl Recorder {
    fn record<W>(&self, ev: parser::Result<Event<Cucumber<W>>>) {
        let mut report = self.report.lock().unwrap_or_else(|e| e.into_inner());
        let ev = match ev {
            Ok(ev) => ev,
            Err(e) => {
                report.parse_errors.push(e.to_string());
                return;
            }
        };
        let at = ev.at;
        match &ev.value {
            Cucumber::Started => report.started = at,
            Cucumber::Finished => report.finished = at,
            Cucumber::ParsingFinished { .. } => {}
            Cucumber::Feature(f, fe) => {
                let feature = feature_entry(&mut report, f);
                match fe {
                    event::Feature::Scenario(s, e) => {
                        on_scenario(scenario_entry(feature, f, None, s), &e.event, at);
                    }
                    event::Feature::Rule(r, event::Rule::Scenario(s, e)) => {
                        on_scenario(scenario_entry(feature, f, Some(r), s), &e.event, at);
                    }
                    _ => {}
                }
            }
        }
    }
}

impl<W: World> Writer<W> for Recorder {
    type Cli = cli::Empty;

    async fn handle_event(&mut self, ev: parser::Result<Event<Cucumber<W>>>, _: &Self::Cli) {
        self.record(ev);
    }
}
