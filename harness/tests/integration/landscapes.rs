//! Every landscape shipped in `scenarios/` behaves as its folder says: the top-level and
//! `examples/` files are valid, each file in `invalid/` is refused, and each refused file has
//! its scenario in `features/landscape_validation.feature`.

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
