//! Skips that CI turns into failures.
//!
//! Some tests need what a developer's machine may lack: root and `ip netns`/`nft` (`netns`),
//! Python with the Azure clients (`python`), port 443 (`port443`), headless Chromium
//! (`chromium`), a running Docker engine with docker-compose (`docker`). Without it they print why
//! and pass. `PPVNET_REQUIRE` lists capabilities that must be there (`netns,python`; `all` for
//! every one): a test that would skip for one of them fails instead, so a CI machine that lost
//! root or a package cannot pass while testing less. Unknown names in the list fail too, so a
//! typo does not silently require nothing.

/// Every capability a test may need.
pub const CAPABILITIES: [&str; 5] = ["netns", "python", "port443", "chromium", "docker"];

/// The variable that lists required capabilities.
pub const VARIABLE: &str = "PPVNET_REQUIRE";

/// Whether the calling test must skip: `missing` says why `capability` is not available here
/// (`None` when it is). When `PPVNET_REQUIRE` requires it, panics with the reason instead.
pub fn skip_unless(capability: &str, missing: Option<String>) -> bool {
    assert!(
        CAPABILITIES.contains(&capability),
        "unknown capability {capability:?} (one of {CAPABILITIES:?})"
    );
    let Some(why) = missing else {
        return false;
    };
    let list = std::env::var(VARIABLE).unwrap_or_default();
    let test = std::thread::current()
        .name()
        .unwrap_or("this test")
        .to_string();
    match required(&list, capability) {
        Ok(true) => panic!("{test} needs {capability} ({VARIABLE}={list}): {why}"),
        Ok(false) => {
            eprintln!("SKIP {test}: {why} (set {VARIABLE}={capability} to fail instead)");
            true
        }
        Err(e) => panic!("{e}"),
    }
}

/// Whether the comma list `list` requires `capability`.
fn required(list: &str, capability: &str) -> Result<bool, String> {
    let mut hit = false;
    for name in list.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        if name != "all" && !CAPABILITIES.contains(&name) {
            return Err(format!(
                "{VARIABLE}: unknown capability {name:?} (one of {CAPABILITIES:?}, or all)"
            ));
        }
        hit |= name == "all" || name == capability;
    }
    Ok(hit)
}

/// Why `python3` cannot run here, if it cannot.
pub fn python3_missing() -> Option<String> {
    match std::process::Command::new("python3")
        .arg("--version")
        .output()
    {
        Ok(o) if o.status.success() => None,
        Ok(o) => Some(format!("python3 --version failed: {}", o.status)),
        Err(e) => Some(format!("python3 is not installed: {e}")),
    }
}

#[test]
fn the_require_list_names_capabilities_or_all() {
    assert_eq!(required("", "netns"), Ok(false));
    assert_eq!(required("python", "netns"), Ok(false));
    assert_eq!(required("python, netns", "netns"), Ok(true));
    assert_eq!(required("all", "port443"), Ok(true));
    assert_eq!(required("netns,", "netns"), Ok(true));
    let err = required("netns,pyhton", "netns").unwrap_err();
    assert!(err.contains("\"pyhton\""), "{err}");
}

#[test]
fn an_available_capability_never_skips() {
    assert!(!skip_unless("netns", None));
}

#[test]
fn a_missing_capability_skips_or_fails_as_the_environment_says() {
    // The process environment is shared by every test of the binary, so this test reads it
    // rather than setting it: under CI (`PPVNET_REQUIRE=all`) the skip must turn into a panic.
    let list = std::env::var(VARIABLE).unwrap_or_default();
    let outcome = std::panic::catch_unwind(|| skip_unless("python", Some("no python".into())));
    match required(&list, "python") {
        Ok(true) => {
            let message = outcome.expect_err("a required capability must fail the test");
            let text = message
                .downcast_ref::<String>()
                .cloned()
                .unwrap_or_default();
            assert!(
                text.contains("needs python") && text.contains("no python"),
                "{text}"
            );
        }
        Ok(false) => assert!(matches!(outcome, Ok(true)), "{outcome:?}"),
        Err(_) => assert!(outcome.is_err()),
    }
}
