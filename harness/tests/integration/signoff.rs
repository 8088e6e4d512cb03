//! `ppvnet test` as CI and a sign-off reviewer use it: exit codes, tag selection, shards that
//! partition the suite, the three report files (JUnit parsed as XML, Cucumber JSON, the HTML
//! report opened in headless Chromium), `--landscape`, and `ppvnet steps`. The feature files
//! are in `tests/data/features/` (validation steps only, except `network/`, which starts a
//! loopback network for the report's picture).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};

fn data(dir: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/features")
        .join(dir)
}

/// Runs `ppvnet test ARGS` without the report paths CI exports; (exit code, stdout, stderr).
fn ppvnet_test(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_ppvnet"))
        .arg("test")
        .args(args)
        .env_remove("PPVNET_TEST_JUNIT")
        .env_remove("PPVNET_TEST_JSON")
        .env_remove("PPVNET_TEST_HTML")
        .env_remove("PPVNET_TEST_TAGS")
        .env_remove("PPVNET_TEST_SHARD")
        .output()
        .expect("ppvnet runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn closing_line(stdout: &str) -> &str {
    stdout.lines().last().unwrap_or_default()
}

fn path_arg(p: &Path) -> &str {
    p.to_str().expect("a UTF-8 path")
}

#[test]
fn exit_code_is_zero_only_when_every_selected_scenario_passes() {
    let passing = data("passing");
    let (code, out, err) = ppvnet_test(&[path_arg(&passing)]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert_eq!(closing_line(&out), "acceptance: 4 passed, 0 failed");

    let failing = data("failing");
    let (code, out, err) = ppvnet_test(&[path_arg(&failing)]);
    assert_eq!(code, 1, "{out}\n{err}");
    assert_eq!(closing_line(&out), "acceptance: 1 passed, 2 failed");

    // Both folders at once: the failure still fails the run.
    let (code, out, _) = ppvnet_test(&[path_arg(&passing), path_arg(&failing)]);
    assert_eq!(code, 1);
    assert_eq!(closing_line(&out), "acceptance: 5 passed, 2 failed");

    // Nothing selected is a failure too: a CI job that runs no scenario must not pass.
    let (code, out, err) = ppvnet_test(&[path_arg(&passing), "--tags", "@nothing"]);
    assert_eq!(code, 1, "{out}");
    assert!(err.contains("no scenario selected"), "{err}");

    let (code, _, err) = ppvnet_test(&["/no/such/features"]);
    assert_eq!(code, 2);
    assert!(
        err.contains("no feature file or folder /no/such/features"),
        "{err}"
    );
    let (code, _, err) = ppvnet_test(&[path_arg(&passing), "--tags", "@a and"]);
    assert_eq!(code, 2);
    assert!(err.contains("is not a tag expression"), "{err}");
}

#[test]
fn tag_expressions_select_scenarios_including_examples_tags() {
    let passing = data("passing");
    let p = path_arg(&passing);
    for (expr, line) in [
        ("@smoke", "acceptance: 1 passed, 0 failed"),
        ("@apis or @vaults", "acceptance: 2 passed, 0 failed"),
        ("not @smoke", "acceptance: 3 passed, 0 failed"),
        (
            "@validation and not @vaults",
            "acceptance: 3 passed, 0 failed",
        ),
    ] {
        let (code, out, err) = ppvnet_test(&[p, "--tags", expr]);
        assert_eq!(code, 0, "{expr}: {out}\n{err}");
        assert_eq!(closing_line(&out), line, "{expr}");
    }
    // On the shipped suite: @netns and its negation split it.
    let all = listed(&[]);
    let netns = listed(&["--tags", "@netns"]);
    let rest = listed(&["--tags", "not @netns"]);
    assert!(!netns.is_empty() && netns.len() < all.len());
    assert!(netns.is_disjoint(&rest));
    assert_eq!(&netns | &rest, all);
}

/// The shipped suite's selected scenarios, as `ppvnet test --list` prints them.
fn listed(args: &[&str]) -> BTreeSet<String> {
    let mut all = vec!["--list"];
    all.extend_from_slice(args);
    let (code, out, err) = ppvnet_test(&all);
    assert_eq!(code, 0, "{err}");
    out.lines().map(str::to_string).collect()
}

#[test]
fn shards_partition_the_shipped_suite() {
    let all = listed(&[]);
    assert!(all.len() >= 100, "{} scenarios", all.len());
    for n in [2, 3, 5] {
        let mut union = BTreeSet::new();
        let mut total = 0;
        for k in 1..=n {
            let shard = listed(&["--shard", &format!("{k}/{n}")]);
            assert!(!shard.is_empty(), "shard {k}/{n} is empty");
            total += shard.len();
            union.extend(shard);
        }
        assert_eq!(total, all.len(), "{n} shards overlap");
        assert_eq!(union, all, "{n} shards miss scenarios");
    }
    // The same shard twice is the same scenarios (deterministic).
    assert_eq!(listed(&["--shard", "2/3"]), listed(&["--shard", "2/3"]));
    let (code, _, err) = ppvnet_test(&["--list", "--shard", "4/3"]);
    assert_eq!(code, 2);
    assert!(err.contains("not a shard"), "{err}");
}

#[test]
fn running_the_shards_runs_every_scenario_once() {
    let passing = data("passing");
    let mut passed = 0;
    for k in 1..=2 {
        let (_, out, _) = ppvnet_test(&[path_arg(&passing), "--shard", &format!("{k}/2")]);
        let line = closing_line(&out);
        let n: usize = line
            .trim_start_matches("acceptance: ")
            .split(' ')
            .next()
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("{line}"));
        passed += n;
    }
    assert_eq!(passed, 4);
}

fn sha256(path: &Path) -> String {
    Sha256::digest(std::fs::read(path).expect("the file"))
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

struct Reports {
    _dir: tempfile::TempDir,
    junit: String,
    json: serde_json::Value,
    html: String,
    html_path: PathBuf,
}

fn reports_of(args: &[&str]) -> (i32, Reports) {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let (junit, json, html) = (
        dir.path().join("out/junit.xml"),
        dir.path().join("out/cucumber.json"),
        dir.path().join("out/signoff.html"),
    );
    let mut all: Vec<&str> = args.to_vec();
    all.extend([
        "--junit",
        path_arg(&junit),
        "--json",
        path_arg(&json),
        "--html",
        path_arg(&html),
    ]);
    let (code, _, _) = ppvnet_test(&all);
    let read =
        |p: &Path| std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    let reports = Reports {
        junit: read(&junit),
        json: serde_json::from_str(&read(&json)).expect("the Cucumber JSON parses"),
        html: read(&html),
        html_path: html,
        _dir: dir,
    };
    (code, reports)
}

#[test]
fn junit_report_parses_and_names_each_failure_with_its_evidence() {
    let (code, r) = reports_of(&[path_arg(&data("failing"))]);
    assert_eq!(code, 1);
    let doc = roxmltree::Document::parse(&r.junit).expect("the JUnit report is XML");
    let root = doc.root_element();
    assert_eq!(root.tag_name().name(), "testsuites");
    assert_eq!(root.attribute("tests"), Some("3"));
    assert_eq!(root.attribute("failures"), Some("2"));
    let cases: Vec<_> = root
        .descendants()
        .filter(|n| n.has_tag_name("testcase"))
        .collect();
    assert_eq!(cases.len(), 3);
    let wrong = cases
        .iter()
        .find(|c| c.attribute("name") == Some("A wrong count <fails> & is reported"))
        .expect("the scenario name survives escaping");
    let failure = wrong
        .children()
        .find(|n| n.has_tag_name("failure"))
        .expect("a failure element");
    let text = failure.text().unwrap_or_default();
    assert!(
        text.contains("it has 99 vnets") && text.contains("counts:"),
        "{text}"
    );
    let undefined = cases
        .iter()
        .find(|c| c.attribute("name") == Some("An undefined step fails the run"))
        .expect("the undefined-step scenario");
    assert!(undefined.children().any(|n| n.has_tag_name("failure")));
    let passing = cases
        .iter()
        .find(|c| c.attribute("name") == Some("A passing scenario next to failing ones"))
        .expect("the passing scenario");
    assert!(!passing.children().any(|n| n.is_element()));
}

#[test]
fn cucumber_json_report_has_every_step_with_status_and_duration() {
    let (_, r) = reports_of(&[path_arg(&data("failing"))]);
    let features = r.json.as_array().expect("an array of features");
    assert_eq!(features.len(), 1);
    assert_eq!(features[0]["name"], "Scenarios that must fail");
    let elements = features[0]["elements"].as_array().expect("scenarios");
    assert_eq!(elements.len(), 3);
    let statuses: Vec<Vec<&str>> = elements
        .iter()
        .map(|e| {
            e["steps"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|s| s["result"]["status"].as_str().unwrap_or_default())
                .collect()
        })
        .collect();
    assert_eq!(statuses[0], ["passed", "passed", "failed", "skipped"]);
    assert_eq!(statuses[1], ["passed", "failed"]);
    assert_eq!(statuses[2], ["passed", "passed", "passed"]);
    let failed = &elements[0]["steps"][2]["result"];
    assert!(
        failed["error_message"]
            .as_str()
            .unwrap_or_default()
            .contains("counts:")
    );
    assert!(failed["duration"].as_u64().is_some());
}

#[test]
fn html_report_is_self_contained_escaped_and_carries_provenance() {
    let failing = data("failing");
    let (_, r) = reports_of(&[path_arg(&failing)]);
    let h = &r.html;
    assert!(
        h.contains("<p class=\"big failed\" id=\"counts\">1 passed, 2 failed</p>"),
        "{h}"
    );
    // Escaped content, and nothing loaded from elsewhere.
    assert!(h.contains("A wrong count &lt;fails&gt; &amp; is reported"));
    assert!(!h.contains("<fails>"));
    for external in ["<script", " src=", "<link", "@import", "url("] {
        assert!(!h.contains(external), "{external} in the report");
    }
    // Failure evidence and provenance: the version and each file's SHA-256.
    assert!(h.contains("counts:"), "the failed step's error is missing");
    assert!(h.contains(env!("CARGO_PKG_VERSION")));
    let feature = failing.join("broken.feature");
    assert!(
        h.contains(&sha256(&feature)),
        "no hash of {}",
        feature.display()
    );
    let contoso = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/contoso.yaml");
    assert!(h.contains(&sha256(&contoso)), "no hash of the landscape");
}

#[test]
fn html_report_draws_the_landscape_it_ran_and_its_reachability() {
    // --landscape: the step's `contoso` is this copy, which the provenance then names.
    let dir = tempfile::tempdir().expect("a temporary folder");
    let copy = dir.path().join("team-landscape.yaml");
    let seed = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/contoso.yaml");
    std::fs::copy(&seed, &copy).expect("copy the seed landscape");
    // The connector files it names, relative to the landscape.
    std::os::unix::fs::symlink(
        seed.with_file_name("connectors"),
        dir.path().join("connectors"),
    )
    .expect("link the connector files");
    let (code, r) = reports_of(&[path_arg(&data("network")), "--landscape", path_arg(&copy)]);
    assert_eq!(code, 0, "{}", r.html);
    let h = &r.html;
    assert!(h.contains("team-landscape.yaml"));
    assert!(h.contains(&sha256(&copy)));
    let svg = &h[h.find("<svg").expect("an inline SVG")..h.find("</svg>").expect("its end")];
    for name in [
        "vnet-prod-westus",
        "vnet-prod-eastus",
        "snet-pp",
        "pe-kv-contoso-prod",
        "pp-prod-westus",
    ] {
        assert!(svg.contains(name), "{name} not drawn");
    }
    assert!(svg.contains("<line"), "no peering drawn");
    assert!(h.contains("class=\"matrix\""));
    // The matrix agrees with the scenario: prod westus reaches the vault's private endpoint.
    assert!(h.contains("<tr><th>pp-prod-westus</th>"));
}

/// Chromium's binary, when installed (Debian: `chromium`).
pub(crate) fn chromium() -> Option<PathBuf> {
    ["chromium", "chromium-browser", "google-chrome"]
        .iter()
        .find_map(|name| {
            std::env::var_os("PATH").and_then(|paths| {
                std::env::split_paths(&paths)
                    .map(|d| d.join(name))
                    .find(|p| p.is_file())
            })
        })
}

#[test]
fn html_report_renders_its_summary_in_headless_chromium() {
    let browser = chromium();
    let missing = browser
        .is_none()
        .then(|| "no chromium on PATH (scripts/test installs it: apt-get install chromium)".into());
    if crate::require::skip_unless("chromium", missing) {
        return;
    }
    let browser = browser.expect("chromium is on PATH");
    let (_, r) = reports_of(&[path_arg(&data("failing"))]);
    let profile = tempfile::tempdir().expect("a profile folder");
    let shot = profile.path().join("report.png");
    let out = Command::new(&browser)
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--dump-dom"])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(format!("file://{}", r.html_path.display()))
        .output()
        .expect("chromium runs");
    let dom = String::from_utf8_lossy(&out.stdout);
    // The DOM Chromium built from the file: the summary's counts element and the sections.
    assert!(
        dom.contains("id=\"counts\">1 passed, 2 failed</p>"),
        "chromium rendered no summary:\n{dom}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for section in [
        "id=\"provenance\"",
        "id=\"features\"",
        "Feature: Scenarios that must fail",
    ] {
        assert!(
            dom.contains(section),
            "{section} missing from the rendered DOM"
        );
    }
    let status = Command::new(&browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--window-size=1200,900",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(format!("--screenshot={}", shot.display()))
        .arg(format!("file://{}", r.html_path.display()))
        .output()
        .expect("chromium runs");
    let png = std::fs::read(&shot).unwrap_or_else(|e| {
        panic!(
            "no screenshot ({e}): {}",
            String::from_utf8_lossy(&status.stderr)
        )
    });
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 10_000,
        "{} bytes",
        png.len()
    );
}

#[test]
fn steps_command_prints_every_phrase_with_an_example() {
    let out = Command::new(env!("CARGO_BIN_EXE_ppvnet"))
        .arg("steps")
        .output()
        .expect("ppvnet runs");
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for e in ppvnet::acceptance::catalogue::CATALOGUE {
        assert!(text.contains(e.phrase), "{} missing", e.phrase);
        assert!(text.contains(e.example), "{} missing", e.example);
    }
    assert!(text.contains("Given the {word} landscape is running\n"));
}

#[test]
fn a_stub_scenario_passes_and_fails_when_its_expectation_is_not_met() {
    // The stubbed API is reached by its host name, on port 443.
    let missing = (!nix::unistd::Uid::effective().is_root())
        .then(|| "landscapes with host names bind port 443 (needs root)".to_string());
    if crate::require::skip_unless("port443", missing) {
        return;
    }
    let (code, r) = reports_of(&[path_arg(&data("stub"))]);
    assert_eq!(code, 1, "{}", r.html);
    let doc = roxmltree::Document::parse(&r.junit).expect("the JUnit report is XML");
    let verdict = |name: &str| {
        doc.descendants()
            .find(|n| n.has_tag_name("testcase") && n.attribute("name") == Some(name))
            .map(|n| n.children().any(|c| c.has_tag_name("failure")))
            .unwrap_or_else(|| panic!("no test case {name}"))
    };
    assert!(!verdict("The expectation is met"), "{}", r.junit);
    assert!(verdict("The expectation is not met"), "{}", r.junit);
    // The failure names what the stub did receive: one search with the user's token.
    assert!(
        r.junit
            .contains("GET http://localhost/cases/search?q=outage"),
        "{}",
        r.junit
    );
    let mappings =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/stubs/cases-outage.yaml");
    assert!(
        r.html.contains(&sha256(&mappings)),
        "the mappings file is not in the provenance"
    );
}
