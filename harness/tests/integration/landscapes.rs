//! Every landscape shipped in `scenarios/` behaves as its folder says: the top-level,
//! `examples/` and `containers/` files are valid, each file in `invalid/` is refused, and each refused file has
//! its scenario in `features/landscape_validation.feature`; every code validation can report
//! has such a file and scenario.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn dir(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(rel)
}

fn yaml_files(rel: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir(rel))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    files
}

#[test]
fn shipped_landscapes_are_valid() {
    let files: Vec<PathBuf> = yaml_files("scenarios")
        .into_iter()
        .chain(yaml_files("scenarios/examples"))
        .chain(yaml_files("scenarios/containers"))
        .collect();
    assert!(files.iter().any(|f| f.ends_with("contoso.yaml")));
    for f in files {
        if let Err(e) = ppvnet::scenario::load(&f) {
            panic!("{e}");
        }
    }
}

#[test]
fn every_invalid_landscape_is_refused_and_has_a_scenario() {
    let feature = std::fs::read_to_string(dir("features/landscape_validation.feature")).unwrap();
    let files = yaml_files("scenarios/invalid");
    assert!(
        files.len() >= 15,
        "one broken landscape per rule, at least 15"
    );
    for f in files {
        match ppvnet::scenario::load(&f) {
            Err(ppvnet::scenario::LoadError::Invalid { findings, .. }) => {
                assert!(
                    findings.iter().all(|x| x.location.is_some()),
                    "{findings:#?}"
                )
            }
            other => panic!("{} was not refused by validation: {other:?}", f.display()),
        }
        let name = format!("invalid/{}", f.file_name().unwrap().to_string_lossy());
        assert!(
            feature.contains(&name),
            "{name} has no scenario in the feature"
        );
    }
}

/// The text between the quotes that follow `prefix` on a line (`Given the landscape file "x"`).
fn quoted_after<'a>(line: &'a str, prefix: &str) -> Option<&'a str> {
    let rest = line.trim().strip_prefix(prefix)?.strip_prefix('"')?;
    rest.split_once('"').map(|(quoted, _)| quoted)
}

/// Each scenario of the validation feature as (landscape file, the rules it expects to fail).
fn feature_scenarios(feature: &str) -> Vec<(String, Vec<String>)> {
    feature
        .split("Scenario:")
        .skip(1)
        .filter_map(|block| {
            let file = block
                .lines()
                .find_map(|l| quoted_after(l, "Given the landscape file "))?;
            let rules = block
                .lines()
                .filter_map(|l| {
                    quoted_after(l, "Then validation fails with rule ")
                        .or_else(|| quoted_after(l, "And validation fails with rule "))
                })
                .map(String::from)
                .collect();
            Some((file.to_string(), rules))
        })
        .collect()
}

#[test]
fn every_validation_code_has_an_invalid_landscape_and_a_scenario() {
    let feature = std::fs::read_to_string(dir("features/landscape_validation.feature")).unwrap();
    let scenarios = feature_scenarios(&feature);
    // The codes each scenario's file really produces, so a scenario cannot claim a rule its
    // landscape no longer breaks.
    let mut emitted: BTreeMap<&str, Vec<&'static str>> = BTreeMap::new();
    for (file, _) in &scenarios {
        if !file.starts_with("invalid/") || emitted.contains_key(file.as_str()) {
            continue;
        }
        let codes = match ppvnet::scenario::load(&dir("scenarios").join(file)) {
            Err(ppvnet::scenario::LoadError::Invalid { findings, .. }) => {
                findings.iter().map(|f| f.finding.code).collect()
            }
            _ => Vec::new(),
        };
        emitted.insert(file, codes);
    }
    let uncovered: Vec<&str> = ppvnet::scenario::validate::CODES
        .iter()
        .chain(ppvnet::scenario::schema::CODES)
        .copied()
        .filter(|code| {
            !scenarios.iter().any(|(file, rules)| {
                rules.iter().any(|r| r == code)
                    && emitted
                        .get(file.as_str())
                        .is_some_and(|codes| codes.contains(code))
            })
        })
        .collect();
    assert!(
        uncovered.is_empty(),
        "no file in scenarios/invalid/ with a scenario in features/landscape_validation.feature \
         for: {uncovered:?}"
    );
}

#[test]
fn a_syntax_error_names_file_line_and_column() {
    let err =
        ppvnet::scenario::load_str("name: x\nvnets: [\n", Path::new("broken.yaml")).unwrap_err();
    let text = err.to_string();
    assert!(text.starts_with("broken.yaml:"), "{text}");
    let err = ppvnet::scenario::load_str(
        "name: x\nsubscription: s\nresourceGroup: r\ntenant: {id: t, domain: d}\nvnetz: []\n",
        Path::new("typo.yaml"),
    )
    .unwrap_err();
    assert!(
        err.to_string().contains(
            "typo.yaml:5:1: UnknownField (vnetz): unknown field 'vnetz'; did you mean 'vnets'?"
        ),
        "{err}"
    );
}

/// A syntax error's location is given once, as `file:line:col`, not again inside serde's text.
#[test]
fn a_syntax_error_gives_its_location_once() {
    let err = ppvnet::scenario::load_str("name: x\nvnets: [\n", Path::new("broken.yaml"))
        .unwrap_err()
        .to_string();
    assert!(!err.contains(" at line "), "{err}");
}

/// `ppvnet validate --format json` carries each finding's code, path, location and message,
/// schema errors and rule errors alike.
#[test]
fn json_findings_carry_code_path_location_and_a_suggestion() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ppvnet"))
        .args(["validate", "--format", "json"])
        .arg(dir("scenarios/invalid/schema-misspelt-fields.yaml"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["valid"], false);
    let errors = json["errors"].as_array().unwrap();
    let unknown = errors
        .iter()
        .find(|e| e["code"] == "UnknownField")
        .unwrap_or_else(|| panic!("{json:#}"));
    assert_eq!(unknown["path"], "keyVaults[0].publicNetworAccess");
    assert_eq!(unknown["location"]["line"], 39);
    assert_eq!(unknown["location"]["col"], 5);
    assert!(
        unknown["message"]
            .as_str()
            .unwrap()
            .ends_with("did you mean 'publicNetworkAccess'?"),
        "{unknown}"
    );
    assert!(
        errors.iter().any(|e| e["code"] == "VaultNameNotValid"),
        "rule findings come in the same run: {json:#}"
    );
}

/// Run from any folder inside the checkout, `ppvnet validate` with no file finds the seed
/// landscape at the checkout's root.
#[test]
fn default_paths_resolve_from_the_checkout_root() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ppvnet"))
        .arg("validate")
        .current_dir(dir("harness/src/scenario"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("valid landscape 'contoso'"), "{stdout}");
    // Outside a checkout the default is relative to the working directory, and says so.
    let elsewhere = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ppvnet"))
        .arg("validate")
        .current_dir(elsewhere.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("scenarios/contoso.yaml"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A landscape named by a bare file name resolves its relative paths (programs, connector
/// files) from the working directory, as an absolute folder.
#[test]
fn a_bare_file_name_anchors_relative_paths_at_the_working_directory() {
    let text = std::fs::read_to_string(dir("scenarios/examples/minimal.yaml")).unwrap();
    let landscape = ppvnet::scenario::load_str(&text, Path::new("landscape.yaml")).unwrap();
    assert!(
        landscape.base_dir.is_absolute(),
        "{}",
        landscape.base_dir.display()
    );
    assert_eq!(landscape.base_dir, std::env::current_dir().unwrap());
}
