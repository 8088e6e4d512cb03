//! Landscape files: parse, locate, validate.
//!
//! - [`model`]: the YAML format (serde types).
//! - [`schema`]: every schema error of a file in one run, with suggestions.
//! - [`source_map`]: line and column of every item, for error messages.
//! - [`validate`]: Azure's and Power Platform's rules with their wording.
//! - [`connectors`], [`stubs`]: checks that read files the landscape names (connector
//!   definitions, stub mappings).
//!
//! [`load`] runs all three and returns a [`crate::landscape::Landscape`] or every finding with
//! its `file:line:col`.

pub mod connectors;
pub mod input;
pub mod model;
pub mod schema;
pub mod source_map;
pub mod stubs;
pub mod validate;

use std::fmt;
use std::path::{Path, PathBuf};

pub use model::Scenario;
pub use source_map::{Location, SourceMap};
pub use validate::Finding;

use crate::landscape::Landscape;

/// A finding placed in the file.
#[derive(Clone, Debug, serde::Serialize)]
pub struct LocatedFinding {
    #[serde(flatten)]
    pub finding: Finding,
    pub location: Option<Location>,
}

/// Why a landscape file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("{}: cannot read the landscape file: {source}", input::escape_controls(&path.display().to_string()))]
    Read {
        path: PathBuf,
        source: input::InputError,
    },
    #[error("{}{}: {}", input::escape_controls(&path.display().to_string()), location.map(|l| format!(":{}:{}", l.line, l.col)).unwrap_or_default(), input::escape_controls(message))]
    Syntax {
        path: PathBuf,
        location: Option<Location>,
        message: String,
    },
    #[error("{}", render_findings(path, findings))]
    Invalid {
        path: PathBuf,
        findings: Vec<LocatedFinding>,
    },
}

fn render_findings(path: &Path, findings: &[LocatedFinding]) -> String {
    let mut out = format!(
        "{}: {} validation error{}",
        path.display(),
        findings.len(),
        if findings.len() == 1 { "" } else { "s" }
    );
    for f in findings {
        out.push_str(&format!("\n{}", Located(path, f)));
    }
    // Messages quote names from the file: a name cannot move the cursor or clear the screen.
    input::escape_controls(&out)
}

struct Located<'a>(&'a Path, &'a LocatedFinding);

impl fmt::Display for Located<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Located(path, lf) = self;
        write!(f, "{}", path.display())?;
        if let Some(l) = lf.location {
            write!(f, ":{}:{}", l.line, l.col)?;
        }
        write!(
            f,
            ": {} ({}): {}",
            lf.finding.code, lf.finding.path, lf.finding.message
        )
    }
}

/// Reads, parses and validates a landscape file.
pub fn load(path: &Path) -> Result<Landscape, LoadError> {
    let text = input::read(path).map_err(|source| LoadError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    load_str(&text, path)
}

/// Parses and validates landscape text; `path` names it in messages and anchors relative paths.
pub fn load_str(text: &str, path: &Path) -> Result<Landscape, LoadError> {
    // serde would read `!Tag value` as the enum variant `Tag`: the format uses no tags.
    if let Some((location, tag)) = input::unknown_tag(text) {
        return Err(LoadError::Syntax {
            path: path.to_path_buf(),
            location: Some(location),
            message: format!("the YAML tag {tag} is not part of the landscape format"),
        });
    }
    let value: serde_norway::Value = serde_norway::from_str(text).map_err(|e| {
        let location = e.location().map(|l| Location {
            line: l.line(),
            col: l.column(),
        });
        LoadError::Syntax {
            path: path.to_path_buf(),
            location,
            message: without_location(&e.to_string(), location),
        }
    })?;
    let checked = schema::check(value);
    // A bare file name's parent is the empty path: its folder is the working directory. Made
    // absolute, so programs started from the landscape's folder find it whatever their own
    // working directory becomes.
    let base_dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let base_dir = std::path::absolute(base_dir).unwrap_or_else(|_| base_dir.to_path_buf());
    let mut findings = checked.findings;
    if let Some(scenario) = &checked.scenario {
        findings.extend(validate::check(scenario));
        findings.extend(connectors::check(scenario, &base_dir));
        findings.extend(stubs::check(scenario, &base_dir));
    }
    let scenario = match checked.scenario {
        Some(scenario) if findings.is_empty() => scenario,
        _ => {
            let map = SourceMap::build(text);
            let findings = findings
                .into_iter()
                .map(|finding| LocatedFinding {
                    location: map.locate(&finding.path),
                    finding,
                })
                .collect();
            return Err(LoadError::Invalid {
                path: path.to_path_buf(),
                findings,
            });
        }
    };
    Ok(Landscape::new(scenario, path.to_path_buf(), base_dir))
}

/// serde's message ends with " at line L column C", which the error's `file:line:col` prefix
/// already says: a location is given once.
fn without_location(message: &str, location: Option<Location>) -> String {
    match location {
        Some(l) => message.replacen(&format!(" at line {} column {}", l.line, l.col), "", 1),
        None => message.to_string(),
    }
}
