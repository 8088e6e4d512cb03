//! `ppvnet bench` as a user runs it: the quick run of a few cheap rows prints its table and
//! writes JSON with every row's figure beside its reference, a finite positive ratio and the
//! machine's facts; a landscape that cannot load is one line on stderr and exit code 2. No
//! timing thresholds here: the figures' targets live in the README's benchmark section.

use std::path::Path;
use std::process::Command;

fn contoso() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/contoso.yaml")
}

#[test]
fn quick_bench_writes_each_row_beside_its_reference() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("bench.json");
    let output = Command::new(env!("CARGO_BIN_EXE_ppvnet"))
        .args(["bench", "--quick", "--landscape"])
        .arg(contoso())
        .arg("--json")
        .arg(&json)
        .args(["--only", "relay-connect", "kv-get", "search-10k"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let machine = &report["machine"];
    assert!(machine["cores"].as_u64().unwrap() >= 1, "{machine}");
    assert_eq!(machine["quick"], true);
    assert!(machine["load_average_start"].is_array(), "{machine}");
    assert!(machine["version"].is_string());
    let rows = report["rows"].as_array().unwrap();
    let names: Vec<&str> = rows.iter().map(|r| r["row"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        ["kv-get", "search-10k", "relay-connect"],
        "table order"
    );
    for row in rows {
        for field in ["figure", "reference_figure", "ratio"] {
            let x = row[field].as_f64().unwrap_or(f64::NAN);
            assert!(x.is_finite() && x > 0.0, "{field} of {row}");
        }
        let ratio = row["figure"].as_f64().unwrap() / row["reference_figure"].as_f64().unwrap();
        assert!((ratio - row["ratio"].as_f64().unwrap()).abs() < 1e-9 * ratio.max(1.0));
        assert!(!row["reference"].as_str().unwrap().is_empty());
        assert!(!row["unit"].as_str().unwrap().is_empty());
        // The printed table names the row and its reference.
        let line = stdout
            .lines()
            .find(|l| l.starts_with(row["row"].as_str().unwrap()))
            .unwrap_or_else(|| panic!("no table line for {row} in\n{stdout}"));
        assert!(line.contains(row["reference"].as_str().unwrap()), "{line}");
    }
    assert_eq!(rows[0]["unit"], "req/s");
    assert_eq!(rows[0]["detail"]["measured"]["requests"], 200);
    // The search row's reference runs the same query (its first answer had to be the API's
    // body byte for byte); the bare server answering that body without searching is a detail.
    let search = &rows[1];
    assert!(
        search["reference"]
            .as_str()
            .unwrap()
            .contains("same store query"),
        "{search}"
    );
    for part in ["measured", "reference", "bare_same_body"] {
        assert_eq!(
            search["detail"][part]["requests"], 200,
            "{part} of {search}"
        );
    }
}

#[test]
fn a_landscape_that_cannot_load_is_one_line_and_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let invalid = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../scenarios/invalid/access-token-version.yaml");
    for (file, named) in [
        (dir.path().join("missing.yaml"), "missing.yaml"),
        (invalid, "access-token-version.yaml"),
    ] {
        let output = Command::new(env!("CARGO_BIN_EXE_ppvnet"))
            .args(["bench", "--quick", "--landscape"])
            .arg(&file)
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(2), "{file:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
        assert!(stderr.starts_with("ppvnet bench: "), "{stderr}");
        assert!(stderr.contains(named), "{stderr}");
    }
}
