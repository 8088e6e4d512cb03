//! Connector checks that need the landscape's folder: each `connectors:` entry's files exist,
//! are regular files, and import as a custom connector (the maker portal's refusals), and every
//! `@environmentVariables("x")` its settings use is defined in each environment it is saved in.

use std::path::Path;

use super::model::Scenario;
use super::validate::Finding;

/// Findings for the connectors of `s`, whose relative paths resolve against `base_dir`.
pub fn check(s: &Scenario, base_dir: &Path) -> Vec<Finding> {
    let mut out = Vec::new();
    for (i, c) in s.connectors.iter().enumerate() {
        let mut unreadable = false;
        for (field, rel) in [
            ("apiDefinition", &c.api_definition),
            ("apiProperties", &c.api_properties),
        ] {
            let path = base_dir.join(rel);
            let problem = match std::fs::metadata(&path) {
                Ok(m) if m.is_file() => None,
                Ok(_) => Some("is not a regular file".to_string()),
                Err(e) => Some(format!("cannot be read: {e}")),
            };
            if let Some(p) = problem {
                unreadable = true;
                out.push(Finding {
                    code: "ConnectorFileUnreadable",
                    path: format!("connectors[{i}].{field}"),
                    message: format!("The file '{}' {p}.", path.display()),
                });
            }
        }
        if unreadable {
            continue;
        }
        let imported = crate::services::powerplatform::read_upload(base_dir, c)
            .map_err(|e| format!("{e:#}"))
            .and_then(|upload| {
                ppvnet_powerplatform::Connector::import(&c.name, &upload).map_err(|e| e.to_string())
            });
        match imported {
            Ok(connector) => check_variables(s, i, &connector, &mut out),
            Err(message) => out.push(Finding {
                code: "ConnectorDefinitionInvalid",
                path: format!("connectors[{i}].apiDefinition"),
                message,
            }),
        }
    }
    out
}

/// Every environment variable the connector's settings refer to must exist in each environment
/// the connector is saved in (the maker portal resolves them at save time).
fn check_variables(
    s: &Scenario,
    i: usize,
    connector: &ppvnet_powerplatform::Connector,
    out: &mut Vec<Finding>,
) {
    let wanted = connector.referenced_variables();
    for (j, env_name) in s.connectors[i].environments.iter().enumerate() {
        let Some(env) = s.environments.iter().find(|e| &e.name == env_name) else {
            continue; // reported by the reference check
        };
        for name in &wanted {
            if !env.variables.iter().any(|v| &v.schema_name == name) {
                out.push(Finding {
                    code: "EnvironmentVariableNotFound",
                    path: format!("connectors[{i}].environments[{j}]"),
                    message: format!(
                        "The connector '{}' uses the environment variable '{name}', which the environment '{env_name}' does not define.",
                        connector.name
                    ),
                });
            }
        }
    }
}
