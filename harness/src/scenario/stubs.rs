//! Checks of stubbed APIs that need the landscape's folder: each `implementation: {kind: stub,
//! mappings: FILE}` names a mappings file that reads and converts (`services::stub::load`),
//! so a bad file is refused by `ppvnet validate` with its line, not at start.

use std::path::Path;

use super::model::{ApiImplementation, Scenario};
use super::validate::Finding;

/// Findings for the stubbed APIs of `s`, whose mappings paths resolve against `base_dir`.
pub fn check(s: &Scenario, base_dir: &Path) -> Vec<Finding> {
    let mut out = Vec::new();
    for (i, a) in s.apis.iter().enumerate() {
        if let ApiImplementation::Stub {
            mappings: Some(file),
        } = &a.implementation
            && let Err(e) = crate::services::stub::load(&base_dir.join(file))
        {
            out.push(Finding {
                code: "StubMappingsInvalid",
                path: format!("apis[{i}].implementation.mappings"),
                message: format!(
                    "The stub mappings file '{}' cannot be used: {e:#}.",
                    file.display()
                ),
            });
        }
    }
    out
}
