//! Every landscape shipped in `scenarios/` behaves as its folder says: the top-level and
//! `examples/` files are valid, each file in `invalid/` is refused, and each refused file has
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
                .filter_map(|l| quoted_after(l, "Then validation fails with rule "))
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
    assert!(err.to_string().contains("unknown field `vnetz`"), "{err}");
}
