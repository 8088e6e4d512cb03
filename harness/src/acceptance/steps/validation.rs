//! Steps for `features/landscape_validation.feature`.

use std::collections::BTreeMap;

use crate::scenario::{self, LoadError, LocatedFinding};
use cucumber::{given, then, when};

use super::PpvWorld;
use crate::acceptance::{landscape_file, settings};

#[derive(Debug)]
pub enum Outcome {
    Valid(BTreeMap<&'static str, usize>),
    Invalid(Vec<LocatedFinding>),
    Unreadable(String),
}

#[given(expr = "the landscape file {string}")]
fn the_landscape_file(w: &mut PpvWorld, name: String) {
    let path = landscape_file(&name);
    assert!(path.exists(), "no landscape file {}", path.display());
    w.file = Some(path);
}

#[when("I validate it")]
fn i_validate_it(w: &mut PpvWorld) {
    let path = w.file.as_ref().expect("a landscape file was given");
    w.validation = Some(match scenario::load(path) {
        Ok(l) => Outcome::Valid(l.summary().0),
        Err(LoadError::Invalid { findings, .. }) => Outcome::Invalid(findings),
        Err(e) => Outcome::Unreadable(e.to_string()),
    });
}

#[when("I run ppvnet validate on it")]
fn i_run_ppvnet_validate(w: &mut PpvWorld) {
    let path = w.file.as_ref().expect("a landscape file was given");
    let out = std::process::Command::new(settings().ppvnet_exe)
        .arg("validate")
        .arg(path)
        .output()
        .expect("ppvnet runs");
    w.command = Some((
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    ));
}

#[then("it is valid")]
fn it_is_valid(w: &mut PpvWorld) {
    match &w.validation {
        Some(Outcome::Valid(_)) => {}
        Some(Outcome::Unreadable(e)) => panic!("the landscape could not be read: {e}"),
        other => panic!("expected a valid landscape, got {other:?}"),
    }
}

#[then(expr = "it has {int} {word}")]
fn it_has(w: &mut PpvWorld, count: usize, what: String) {
    let Some(Outcome::Valid(counts)) = &w.validation else {
        panic!("the landscape is not valid: {:?}", w.validation)
    };
    let key = what.replace('-', " ");
    assert_eq!(counts.get(key.as_str()), Some(&count), "counts: {counts:?}");
}

fn findings(w: &PpvWorld) -> &[LocatedFinding] {
    match &w.validation {
        Some(Outcome::Invalid(f)) => f,
        other => panic!("expected validation errors, got {other:?}"),
    }
}

#[then(expr = "validation fails with rule {string} at line {int}")]
fn fails_with_rule_at_line(w: &mut PpvWorld, code: String, line: usize) {
    let all = findings(w);
    let hit = all
        .iter()
        .find(|f| f.finding.code == code)
        .unwrap_or_else(|| panic!("no finding {code}; got {all:#?}"));
    assert_eq!(hit.location.map(|l| l.line), Some(line), "{hit:#?}");
}

#[then(expr = "the message says {string}")]
fn the_message_says(w: &mut PpvWorld, text: String) {
    let all = findings(w);
    assert!(
        all.iter().any(|f| f.finding.message.contains(&text)),
        "no message contains {text:?}: {all:#?}"
    );
}

#[then(expr = "it is the only error")]
fn the_only_error(w: &mut PpvWorld) {
    let all = findings(w);
    assert_eq!(all.len(), 1, "{all:#?}");
}

#[then(expr = "the command exits with code {int}")]
fn exits_with(w: &mut PpvWorld, code: i32) {
    let (got, out, err) = w.command.as_ref().expect("a command ran");
    assert_eq!(*got, code, "stdout:\n{out}\nstderr:\n{err}");
}

#[then(expr = "it prints {string}")]
fn it_prints(w: &mut PpvWorld, text: String) {
    let (_, out, err) = w.command.as_ref().expect("a command ran");
    assert!(
        out.contains(&text) || err.contains(&text),
        "{text:?} not in stdout:\n{out}\nstderr:\n{err}"
    );
}
