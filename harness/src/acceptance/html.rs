//! The self-contained HTML sign-off report: summary, provenance, each landscape drawn with its
//! reachability matrix, then every feature, scenario and step with status, time, tags and the
//! evidence of failed steps. No script, no external asset; all text escaped.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use sha2::{Digest, Sha256};

use super::Used;
use super::junit::escape;
use super::record::{FeatureReport, Report, ScenarioReport, Status};
use super::run::TestArgs;

/// What a signature is tied to: the program, the commit, and the hash of every input file.
#[derive(Clone, Debug, Default)]
pub struct Provenance {
    pub version: String,
    /// `git rev-parse HEAD` of the features' checkout, with ` (modified)` when it has changes.
    pub commit: Option<String>,
    /// (kind, path, SHA-256 hex) of every feature file and landscape used.
    pub files: Vec<(&'static str, PathBuf, String)>,
    /// Landscapes steps started, for the pictures.
    pub started: Vec<PathBuf>,
}

fn sha256_file(path: &Path) -> String {
    match std::fs::read(path) {
        Ok(bytes) => Sha256::digest(&bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect(),
        Err(e) => format!("unreadable: {e}"),
    }
}

fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let out = std::process::Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

impl Provenance {
    pub fn collect(report: &Report, used: &Used) -> Self {
        let features: Vec<PathBuf> = report
            .features
            .iter()
            .filter_map(|f| f.path.clone())
            .collect();
        let dir = features
            .first()
            .and_then(|p| p.parent())
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."));
        let commit = git(&dir, &["rev-parse", "HEAD"]).map(|c| {
            match git(&dir, &["status", "--porcelain"]) {
                Some(s) if !s.is_empty() => format!("{c} (modified)"),
                _ => c,
            }
        });
        let mut files: Vec<(&'static str, PathBuf, String)> = features
            .into_iter()
            .map(|p| ("feature", p.clone(), sha256_file(&p)))
            .collect();
        files.extend(
            used.files
                .iter()
                .map(|p| ("landscape", p.clone(), sha256_file(p))),
        );
        Provenance {
            version: env!("CARGO_PKG_VERSION").to_string(),
            commit,
            files,
            started: used.started.iter().cloned().collect(),
        }
    }
}

const STYLE: &str = "body{font-family:sans-serif;margin:2em;color:#222}\
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:2px 6px;font-size:13px;text-align:left;vertical-align:top}\
.passed{color:#2e7d32}.failed{color:#b00020;font-weight:bold}.skipped{color:#888}\
.tag{background:#eef;border-radius:4px;padding:0 4px;margin-right:4px;font-size:12px}\
pre{background:#fff4f4;border:1px solid #f0c0c0;padding:6px;white-space:pre-wrap;max-height:30em;overflow:auto}\
.matrix td{text-align:center}.matrix .allow{background:#dff0d8}.matrix .deny{background:#f6d5d5}.matrix .refused{background:#fff1c9}\
#summary .big{font-size:1.6em}code{font-size:12px}";

fn time_text(t: SystemTime) -> String {
    time::OffsetDateTime::from(t)
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

fn tags_html(tags: &[String]) -> String {
    tags.iter()
        .map(|t| format!("<span class=\"tag\">{}</span>", escape(t)))
        .collect()
}

fn summary(h: &mut String, report: &Report, args: &TestArgs) {
    let (passed, failed) = report.counts();
    let verdict = if failed == 0 && passed > 0 {
        "passed"
    } else {
        "failed"
    };
    let _ = writeln!(
        h,
        "<section id=\"summary\"><h2>Summary</h2><p class=\"big {verdict}\" id=\"counts\">{passed} passed, {failed} failed</p>\
<table><tr><th>features</th><td>{}</td></tr><tr><th>scenarios</th><td>{}</td></tr>\
<tr><th>started</th><td>{}</td></tr><tr><th>duration</th><td>{:.1} s</td></tr>\
<tr><th>tag expression</th><td>{}</td></tr><tr><th>shard</th><td>{}</td></tr><tr><th>default fabric</th><td>{}</td></tr></table>",
        report.features.len(),
        passed + failed,
        escape(&time_text(report.started)),
        report.duration().as_secs_f64(),
        escape(args.tags.as_ref().map_or("(all)", |t| t.text.as_str())),
        args.shard
            .map_or_else(|| "(all)".to_string(), |s| s.to_string()),
        escape(
            &format!(
                "{:?}",
                args.network.unwrap_or(crate::fabric::FabricKind::Loopback)
            )
            .to_lowercase()
        ),
    );
    for e in &report.parse_errors {
        let _ = writeln!(
            h,
            "<p class=\"failed\">feature file error:</p><pre>{}</pre>",
            escape(e)
        );
    }
    h.push_str("</section>\n");
}

fn provenance(h: &mut String, p: &Provenance) {
    let _ = writeln!(
        h,
        "<section id=\"provenance\"><h2>Provenance</h2><table><tr><th>ppvnet</th><td>{}</td></tr><tr><th>git commit</th><td><code>{}</code></td></tr></table>\
<table><tr><th>kind</th><th>file</th><th>SHA-256</th></tr>",
        escape(&p.version),
        escape(p.commit.as_deref().unwrap_or("(not a git checkout)"))
    );
    for (kind, path, hash) in &p.files {
        let _ = writeln!(
            h,
            "<tr><td>{kind}</td><td>{}</td><td><code>{}</code></td></tr>",
            escape(&path.display().to_string()),
            escape(hash)
        );
    }
    h.push_str("</table></section>\n");
}

fn landscapes(h: &mut String, p: &Provenance) {
    if p.started.is_empty() {
        return;
    }
    h.push_str("<section id=\"landscapes\"><h2>Landscapes</h2>\n");
    for path in &p.started {
        let _ = writeln!(h, "<h3>{}</h3>", escape(&path.display().to_string()));
        match crate::scenario::load(path) {
            Ok(l) => {
                let oracle = crate::fabric::oracle::Oracle::new(&l);
                h.push_str(&crate::picture::svg(crate::picture::Scene::declared(
                    &oracle,
                )));
                h.push_str("<h4>Reachability (host × face, TCP 443, as declared)</h4>\n<p>✓ connects · ⊘ connects, the service refuses (public access off) · ✗ denied; hover a cell for the route or rule.</p>\n");
                h.push_str(&crate::picture::matrix(&oracle));
            }
            Err(e) => {
                let _ = writeln!(h, "<pre>{}</pre>", escape(&e.to_string()));
            }
        }
    }
    h.push_str("</section>\n");
}

fn scenario(h: &mut String, s: &ScenarioReport) {
    let status = if s.passed() {
        Status::Passed
    } else {
        Status::Failed
    };
    let open = if s.passed() { "" } else { " open" };
    let _ = writeln!(
        h,
        "<details class=\"scenario\"{open}><summary><span class=\"{}\">{}</span> {}: {} <small>(line {}, {:.2} s)</small> {}</summary><table>",
        status.as_str(),
        status.as_str(),
        escape(&s.keyword),
        escape(&s.name),
        s.line,
        s.duration.as_secs_f64(),
        tags_html(&s.tags)
    );
    for st in &s.steps {
        let _ = write!(
            h,
            "<tr><td class=\"{0}\">{0}</td><td>{1}{2}</td><td>{3} ms</td></tr>",
            st.status.as_str(),
            escape(&st.keyword),
            escape(&st.text),
            st.duration.as_millis()
        );
        if let Some(e) = st.error.as_ref().filter(|_| st.status == Status::Failed) {
            let _ = write!(
                h,
                "<tr><td></td><td colspan=\"2\"><pre>{}</pre></td></tr>",
                escape(e)
            );
        }
        h.push('\n');
    }
    if let Some(e) = &s.hook_error {
        let _ = write!(
            h,
            "<tr><td class=\"failed\">hook</td><td colspan=\"2\"><pre>{}</pre></td></tr>",
            escape(e)
        );
    }
    h.push_str("</table></details>\n");
}

fn feature(h: &mut String, f: &FeatureReport) {
    let failed = f.scenarios.iter().filter(|s| !s.passed()).count();
    let _ = writeln!(
        h,
        "<section class=\"feature\"><h3>Feature: {} <small>({} scenarios, {failed} failed)</small> {}</h3><p><small>{}</small></p>",
        escape(&f.name),
        f.scenarios.len(),
        tags_html(&f.tags),
        escape(
            &f.path
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_default()
        )
    );
    if let Some(d) = &f.description {
        let _ = writeln!(h, "<p>{}</p>", escape(d.trim()));
    }
    for s in &f.scenarios {
        scenario(h, s);
    }
    h.push_str("</section>\n");
}

pub fn render(report: &Report, p: &Provenance, args: &TestArgs) -> String {
    let mut h = format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>ppvnet acceptance sign-off</title><style>{STYLE}</style></head><body>\n<h1>ppvnet acceptance sign-off</h1>\n"
    );
    summary(&mut h, report, args);
    provenance(&mut h, p);
    landscapes(&mut h, p);
    h.push_str("<section id=\"features\"><h2>Features</h2>\n");
    for f in &report.features {
        feature(&mut h, f);
    }
    h.push_str("</section>\n<section id=\"signoff\"><h2>Sign-off</h2><p>Name: ______________________ Role: ______________________ Date: ____________ Signature: ______________________</p></section>\n</body></html>\n");
    h
}
