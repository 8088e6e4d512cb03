//! The landscape file's shape: every schema error in one run, each with a path, a code and a
//! suggestion.
//!
//! serde stops at the first error. To report them all, the YAML is parsed once into a value
//! tree and deserialized into the typed model with [`serde_path_to_error`], which names the
//! path of the failing item; the item is then repaired or removed and deserialization runs
//! again, until the model is built or an error cannot be repaired (a missing required field,
//! a bad item inside a list). When the model is built the rules run on it as well, so schema
//! and rule findings come together: the rules see the file as if the unknown fields were absent.
//!
//! Enum values Azure names in PascalCase (`Enabled`, `Inbound`, `Allow`) are accepted in any
//! case, as Azure Resource Manager accepts them: an enum value is matched case-insensitively
//! (ARM's request guidelines, "Case-insensitivity": microsoft/api-guidelines
//! `azure/ConsiderationsForServiceDesign.md` and the ARM RPC `common-api-details.md`; the exact
//! behaviour per property is UNVERIFIED). The landscape format's own lower-case values
//! (`kind: command`, `authorization: rbac`) stay exact.

use serde_norway::{Mapping, Value};
use serde_path_to_error::Segment;

use super::model::Scenario;
use super::validate::Finding;

/// Codes of schema findings (the rule codes are [`super::validate::CODES`]).
pub const CODES: &[&str] = &[
    "InvalidType",
    "InvalidValue",
    "MissingField",
    "UnknownField",
];

/// How many errors one run reports at most: a file of another format would otherwise list
/// every one of its keys.
const MAX_FINDINGS: usize = 50;

/// The typed model when the file could be read into it (after repairs), and every schema
/// finding on the way.
pub struct Checked {
    pub scenario: Option<Scenario>,
    pub findings: Vec<Finding>,
}

/// Deserializes the value tree into the model, collecting every schema error.
pub fn check(mut value: Value) -> Checked {
    let mut findings = Vec::new();
    // Items removed to get past an error: a required one then shows up as missing, which says
    // nothing new.
    let mut removed: Vec<String> = Vec::new();
    loop {
        let error = match serde_path_to_error::deserialize::<_, Scenario>(value.clone()) {
            Ok(scenario) => {
                return Checked {
                    scenario: Some(scenario),
                    findings,
                };
            }
            Err(e) => e,
        };
        let segments: Vec<Segment> = error.path().iter().cloned().collect();
        let message = error.inner().to_string();
        let problem = Problem::parse(&message);
        if let Some(canonical) = problem.case_insensitive_match()
            && replace(&mut value, &segments, Value::String(canonical.to_string()))
        {
            continue;
        }
        let path = render_path(&segments, &problem);
        if let Problem::MissingField { name } = &problem
            && removed.contains(&join(&path, name))
        {
            break;
        }
        findings.push(problem.finding(path.clone(), &message));
        let repaired = match problem.stand_in() {
            Some(stand_in) => replace(&mut value, &segments, Value::String(stand_in)),
            None if problem.repairable() => remove(&mut value, &segments),
            None => false,
        };
        removed.push(path);
        if !repaired || findings.len() >= MAX_FINDINGS {
            break;
        }
    }
    Checked {
        scenario: None,
        findings,
    }
}

fn join(path: &str, field: &str) -> String {
    match path {
        "" => field.to_string(),
        _ => format!("{path}.{field}"),
    }
}

/// One serde error, classified by its (stable) wording.
enum Problem {
    UnknownField { name: String, expected: Vec<String> },
    UnknownVariant { name: String, expected: Vec<String> },
    MissingField { name: String },
    InvalidType,
    Other,
}

impl Problem {
    fn parse(message: &str) -> Self {
        let quoted = backquoted(message);
        let name = quoted.first().cloned().unwrap_or_default();
        let expected = match message.split_once(", expected") {
            Some((_, rest)) => backquoted(rest),
            None => Vec::new(),
        };
        if message.starts_with("unknown field") {
            Problem::UnknownField { name, expected }
        } else if message.starts_with("unknown variant") {
            Problem::UnknownVariant { name, expected }
        } else if message.starts_with("missing field") {
            Problem::MissingField { name }
        } else if message.starts_with("invalid type") {
            Problem::InvalidType
        } else {
            Problem::Other
        }
    }

    /// `enabled` for `Enabled`: accepted when the expected values are Azure's PascalCase ones.
    fn case_insensitive_match(&self) -> Option<&str> {
        let Problem::UnknownVariant { name, expected } = self else {
            return None;
        };
        expected
            .iter()
            .filter(|v| v.starts_with(|c: char| c.is_ascii_uppercase()))
            .find(|v| v.eq_ignore_ascii_case(name))
            .map(String::as_str)
    }

    /// A value to put in place of a bad enum value so the pass goes on (the nearest valid
    /// one): removing it would only report the field as missing next.
    fn stand_in(&self) -> Option<String> {
        let Problem::UnknownVariant { name, expected } = self else {
            return None;
        };
        nearest(name, expected)
            .or(expected.first().map(String::as_str))
            .map(str::to_string)
    }

    /// An unknown field is dropped and a bad value removed, so the next error can be found; a
    /// missing field cannot be made up.
    fn repairable(&self) -> bool {
        !matches!(self, Problem::MissingField { .. })
    }

    fn finding(&self, path: String, message: &str) -> Finding {
        let (code, message) = match self {
            Problem::UnknownField { name, expected } => (
                "UnknownField",
                format!(
                    "unknown field '{name}'{}",
                    suggestion(name, expected, "field")
                ),
            ),
            Problem::UnknownVariant { name, expected } => (
                "InvalidValue",
                format!(
                    "'{name}' is not a valid value{}",
                    suggestion(name, expected, "value")
                ),
            ),
            Problem::MissingField { name } => {
                ("MissingField", format!("the field '{name}' is required"))
            }
            Problem::InvalidType => ("InvalidType", message.to_string()),
            Problem::Other => ("InvalidValue", message.to_string()),
        };
        Finding {
            code,
            path,
            message,
        }
    }
}

/// `: did you mean 'x'?` for the nearest expected name, or the list when none is near.
fn suggestion(name: &str, expected: &[String], what: &str) -> String {
    match nearest(name, expected) {
        Some(best) => format!("; did you mean '{best}'?"),
        None if expected.is_empty() => String::new(),
        None => format!("; expected a {what} among: {}", expected.join(", ")),
    }
}

/// The expected name closest to `name`, when it is close enough to be a slip of the keyboard
/// or of case (at most a third of its letters differ).
pub fn nearest<'a>(name: &str, expected: &'a [String]) -> Option<&'a str> {
    let lower = name.to_ascii_lowercase();
    expected
        .iter()
        .map(|e| (strsim::levenshtein(&lower, &e.to_ascii_lowercase()), e))
        .filter(|(d, e)| *d <= (e.len().max(name.len()) / 3).max(1))
        .min_by_key(|(d, _)| *d)
        .map(|(_, e)| e.as_str())
}

/// The texts between backquotes: serde quotes names and expected values that way.
fn backquoted(text: &str) -> Vec<String> {
    text.split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_string)
        .collect()
}

/// The path in the form validation uses (`vnets[0].subnets[1].prefix`); a missing field is
/// reported at the item that lacks it.
fn render_path(segments: &[Segment], problem: &Problem) -> String {
    let mut out = String::new();
    for segment in segments {
        match segment {
            Segment::Seq { index } => out.push_str(&format!("[{index}]")),
            Segment::Map { key } => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(key);
            }
            Segment::Enum { .. } | Segment::Unknown => {}
        }
    }
    if let Problem::MissingField { name } = problem
        && out.is_empty()
    {
        return name.clone();
    }
    out
}

/// The node at `segments`' parent, and the last segment.
fn parent_mut<'v>(value: &'v mut Value, segments: &[Segment]) -> Option<(&'v mut Value, String)> {
    let (last, parents) = segments.split_last()?;
    let mut node = value;
    for segment in parents {
        node = match segment {
            Segment::Seq { index } => node.as_sequence_mut()?.get_mut(*index)?,
            Segment::Map { key } => node.as_mapping_mut()?.get_mut(key.as_str())?,
            Segment::Enum { .. } | Segment::Unknown => node,
        };
    }
    match last {
        Segment::Map { key } => Some((node, key.clone())),
        // An item of a list cannot be removed without shifting the paths after it.
        _ => None,
    }
}

fn mapping_of(node: &mut Value) -> Option<&mut Mapping> {
    node.as_mapping_mut()
}

fn remove(value: &mut Value, segments: &[Segment]) -> bool {
    parent_mut(value, segments)
        .and_then(|(node, key)| mapping_of(node)?.remove(key.as_str()))
        .is_some()
}

fn replace(value: &mut Value, segments: &[Segment], new: Value) -> bool {
    let Some((node, key)) = parent_mut(value, segments) else {
        return false;
    };
    match mapping_of(node).and_then(|m| m.get_mut(key.as_str())) {
        Some(slot) => {
            *slot = new;
            true
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seed() -> Value {
        let text = include_str!("../../../scenarios/contoso.yaml");
        serde_norway::from_str(text).unwrap()
    }

    fn set(value: &mut Value, path: &[&str], new: Value) {
        let mut node = value;
        for (i, key) in path.iter().enumerate() {
            if let Ok(index) = key.parse::<usize>() {
                node = &mut node.as_sequence_mut().unwrap()[index];
                continue;
            }
            let map = node.as_mapping_mut().unwrap();
            if i + 1 == path.len() {
                map.insert(Value::String(key.to_string()), new);
                return;
            }
            node = map.get_mut(*key).unwrap();
        }
    }

    #[test]
    fn the_seed_landscape_has_no_schema_finding() {
        let checked = check(seed());
        assert!(checked.findings.is_empty(), "{:?}", checked.findings);
        assert!(checked.scenario.is_some());
    }

    /// Two misspelt fields in different sections are both reported, each with its nearest
    /// field, and the model is still built so the rules can run.
    #[test]
    fn every_unknown_field_is_reported_with_the_nearest_name() {
        let mut value = seed();
        set(
            &mut value,
            &["keyVaults", "0", "publicNetworAccess"],
            Value::String("Disabled".into()),
        );
        set(&mut value, &["vnets", "0", "adressSpace"], Value::Null);
        let checked = check(value);
        let found: Vec<(&str, &str, &str)> = checked
            .findings
            .iter()
            .map(|f| (f.code, f.path.as_str(), f.message.as_str()))
            .collect();
        assert_eq!(
            found,
            [
                (
                    "UnknownField",
                    "vnets[0].adressSpace",
                    "unknown field 'adressSpace'; did you mean 'addressSpace'?"
                ),
                (
                    "UnknownField",
                    "keyVaults[0].publicNetworAccess",
                    "unknown field 'publicNetworAccess'; did you mean 'publicNetworkAccess'?"
                ),
            ]
        );
        assert!(checked.scenario.is_some());
    }

    /// Azure's enum values are case-insensitive; the format's own are not, and a near miss
    /// gets a suggestion.
    #[test]
    fn azure_enum_values_match_in_any_case_and_others_get_a_suggestion() {
        let mut value = seed();
        set(
            &mut value,
            &["keyVaults", "0", "publicNetworkAccess"],
            Value::String("disabled".into()),
        );
        let checked = check(value);
        assert!(checked.findings.is_empty(), "{:?}", checked.findings);
        let scenario = checked.scenario.unwrap();
        assert_eq!(
            scenario.key_vaults[0].public_network_access,
            super::super::model::PublicNetworkAccess::Disabled
        );

        let mut value = seed();
        set(
            &mut value,
            &["keyVaults", "0", "publicNetworkAccess"],
            Value::String("Disabeld".into()),
        );
        let checked = check(value);
        assert_eq!(checked.findings.len(), 1, "{:?}", checked.findings);
        let f = &checked.findings[0];
        assert_eq!(f.code, "InvalidValue");
        assert_eq!(f.path, "keyVaults[0].publicNetworkAccess");
        assert_eq!(
            f.message,
            "'Disabeld' is not a valid value; did you mean 'Disabled'?"
        );
    }

    /// A missing required field stops the pass (nothing can stand in for it) but keeps what
    /// was found before it.
    #[test]
    fn a_missing_required_field_is_reported_at_its_item() {
        let mut value = seed();
        set(&mut value, &["keyVaults", "0", "regin"], Value::Null);
        value["keyVaults"][0]
            .as_mapping_mut()
            .unwrap()
            .remove("region");
        let checked = check(value);
        let codes: Vec<(&str, &str)> = checked
            .findings
            .iter()
            .map(|f| (f.code, f.path.as_str()))
            .collect();
        assert_eq!(
            codes,
            [
                ("UnknownField", "keyVaults[0].regin"),
                ("MissingField", "keyVaults[0]")
            ]
        );
        assert!(checked.scenario.is_none());
    }

    #[test]
    fn nearest_names_only_close_candidates() {
        let expected = vec!["publicNetworkAccess".to_string(), "name".to_string()];
        assert_eq!(
            nearest("publicnetworkaccess", &expected),
            Some("publicNetworkAccess")
        );
        assert_eq!(nearest("region", &expected), None);
    }
}
