//! Secrets on disk: what a run writes (the ready file with passwords, client secrets and the
//! control token; the PKI; a team program's TLS key; the services' state under `--data-dir`) is
//! owner-only: files 0600 in folders ppvnet created 0700, and folders that were there before
//! keep their mode.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use ppvnet::fabric::FabricKind;
use ppvnet::up::{self, UpOptions};

use crate::require::{python3_missing, skip_unless};

fn mode(p: &Path) -> u32 {
    std::fs::symlink_metadata(p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .permissions()
        .mode()
        & 0o777
}

/// Every folder and file under `root` (the root included).
fn walk(root: &Path) -> (Vec<PathBuf>, Vec<PathBuf>) {
    let (mut dirs, mut files) = (vec![root.to_path_buf()], Vec::new());
    let mut i = 0;
    while let Some(dir) = dirs.get(i).cloned() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else {
                files.push(path);
            }
        }
        i += 1;
    }
    (dirs, files)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ready_file_pki_keys_and_state_are_owner_only() {
    // The landscape's team API is a Python program: its TLS key is written for it to read.
    if skip_unless("python", python3_missing()) {
        return;
    }
    let top = tempfile::tempdir().unwrap();
    // A folder of the user's with the usual mode: ppvnet must not change it.
    std::fs::set_permissions(top.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let state = top.path().join("state");
    let data = top.path().join("data").join("keep");
    let mut opts = UpOptions::new(FabricKind::Loopback, state.join("ready.json"));
    opts.data_dir = Some(data.clone());
    let file =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/examples/external-api.yaml");
    let landscape = ppvnet::scenario::load(&file).unwrap_or_else(|e| panic!("{e}"));
    let running = up::start(&landscape, &opts)
        .await
        .unwrap_or_else(|e| panic!("{e:#}"));

    assert_eq!(
        mode(top.path()),
        0o755,
        "a folder that existed keeps its mode"
    );
    assert_eq!(mode(&opts.ready_file), 0o600, "the ready file");
    assert!(!running.ready().control_token.is_empty());
    let key = opts.run_dir.join("apis/orders-api-prod/tls.key");
    assert!(
        std::fs::read_to_string(&key)
            .unwrap()
            .contains("PRIVATE KEY"),
        "the program's TLS key is in the run directory"
    );
    assert_eq!(mode(&key), 0o600, "{}", key.display());
    assert_eq!(mode(running.ready().ca_cert.as_path()), 0o600, "the CA");
    for created in [&state, &opts.run_dir, &top.path().join("data"), &data] {
        assert_eq!(mode(created), 0o700, "{}", created.display());
    }

    let (run_dirs, run_files) = walk(&opts.run_dir);
    let (data_dirs, data_files) = walk(&data);
    let wrong: Vec<String> = run_dirs
        .iter()
        .chain(&data_dirs)
        .filter(|d| mode(d) != 0o700)
        .chain(run_files.iter().filter(|f| mode(f) != 0o600))
        .map(|p| format!("{} {:o}", p.display(), mode(p)))
        .collect();
    assert!(wrong.is_empty(), "not owner-only: {wrong:#?}");
    // Entra's signing keys and the vaults' stores are written by the services themselves, inside
    // the 0700 folders checked above; their own file modes are the services' to set.
    for sub in ["entra", "keyvault", "pki"] {
        assert!(
            data_dirs.contains(&data.join(sub)),
            "{sub} keeps its state under --data-dir: {data_dirs:?} {data_files:?}"
        );
    }
    // The kept CA and leaf keys are ppvnet's own files: owner-only.
    let pki: Vec<String> = data_files
        .iter()
        .filter(|f| f.starts_with(data.join("pki")) && mode(f) != 0o600)
        .map(|p| format!("{} {:o}", p.display(), mode(p)))
        .collect();
    assert!(pki.is_empty(), "not owner-only: {pki:#?}");
    running.stop().await.unwrap();
}
