//! The README's two commands build one dependency graph: every crate the run command
//! (`cargo run --release -p ppvnet`) builds, the test command (`cargo test --release
//! --workspace`) builds with the same features, so it reuses the artifact instead of compiling
//! the crate (and everything above it) again.
//!
//! Read from `cargo tree`, which resolves features like a build does: `-e normal,build` leaves
//! dev-dependencies out of the resolution, as `cargo run -p ppvnet` does. cargo tree lists a crate
//! built for the host (a proc-macro's or build script's dependency) under the same name as its
//! target build; both are merged here, which can only hide a difference on the host side, the
//! cheaper one to rebuild.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;

/// `name vX.Y.Z` → features, for the packages a cargo tree selection builds.
fn features(args: &[&str]) -> BTreeMap<String, BTreeSet<String>> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let out = Command::new(cargo)
        .current_dir(root)
        .args(["tree", "--frozen", "--prefix", "none", "--no-dedupe"])
        .args(["--format", "{p}|{f}"])
        .args(args)
        .output()
        .expect("cargo tree runs");
    assert!(
        out.status.success(),
        "cargo tree {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut map: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let Some((package, feats)) = line.split_once('|') else {
            continue;
        };
        // Drop the source and the markers cargo tree adds: `(*)`, `(proc-macro)`, `(/path)`.
        let package = package.split(" (").next().unwrap_or(package).trim();
        let feats = feats.split(" (").next().unwrap_or(feats);
        map.entry(package.to_string())
            .or_default()
            .extend(feats.split(',').filter(|f| !f.is_empty()).map(String::from));
    }
    map
}

#[test]
fn the_test_command_reuses_every_crate_the_run_command_builds() {
    let run = features(&["-p", "ppvnet", "-e", "normal,build"]);
    let test = features(&["--workspace"]);
    assert!(
        run.contains_key("ppvnet v0.1.0") && run.len() > 100,
        "cargo tree listed the run command's graph: {} packages",
        run.len()
    );
    let differing: Vec<String> = run
        .iter()
        .filter_map(|(package, feats)| {
            let extra: Vec<&String> = test.get(package)?.difference(feats).collect();
            (!extra.is_empty()).then(|| format!("{package}: add features {extra:?}"))
        })
        .collect();
    assert!(
        differing.is_empty(),
        "the test build switches on features the run build does not, so it would compile these \
         crates (and all above them) a second time; add them to workspace-hack/Cargo.toml:\n{}",
        differing.join("\n")
    );
}
