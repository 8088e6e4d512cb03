//! One run, one identity: each `up` owns its ready file (a second run on the same file is
//! refused by the pid of the one that holds it, and stopping one run never deletes another's),
//! a CA kept in `--data-dir` survives restarts so a client's trust does too, and `up` tells the
//! user how to point a client at the landscape.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::Stdio;

use ppvnet::fabric::FabricKind;
use ppvnet::up::{self, UpOptions};

fn seed() -> ppvnet::landscape::Landscape {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/contoso.yaml");
    ppvnet::scenario::load(&file).unwrap_or_else(|e| panic!("{e}"))
}

fn lock_file(ready: &Path) -> PathBuf {
    ready.with_file_name("ready.json.lock")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_run_on_a_live_ready_file_is_refused_and_stopping_removes_only_its_own() {
    let dir = tempfile::tempdir().unwrap();
    let ready = dir.path().join("ready.json");
    let landscape = seed();
    let first = up::start(
        &landscape,
        &UpOptions::new(FabricKind::Loopback, ready.clone()),
    )
    .await
    .unwrap_or_else(|e| panic!("{e:#}"));
    let token = first.ready().control_token.clone();

    let err = match up::start(
        &landscape,
        &UpOptions::new(FabricKind::Loopback, ready.clone()),
    )
    .await
    {
        Ok(_) => panic!("a second run took a live run's ready file"),
        Err(e) => format!("{e:#}"),
    };
    let pid = std::process::id();
    assert!(
        err.contains(&format!(
            "belongs to a landscape that is still running (pid {pid}, landscape 'contoso' on the loopback fabric)"
        )),
        "{err}"
    );
    assert!(
        err.contains("--ready-file"),
        "the refusal says the way out: {err}"
    );
    // The refused run touched nothing: the first run's ready file is still its own.
    let still = ppvnet::ready::ReadyFile::read(&ready).unwrap();
    assert_eq!(still.control_token, token);

    // A run with its own ready file starts and stops without touching the first one's.
    let other = dir.path().join("other").join("ready.json");
    let second = up::start(
        &landscape,
        &UpOptions::new(FabricKind::Loopback, other.clone()),
    )
    .await
    .unwrap_or_else(|e| panic!("{e:#}"));
    second.stop().await.unwrap();
    assert!(!other.exists() && !lock_file(&other).exists());
    assert_eq!(
        ppvnet::ready::ReadyFile::read(&ready)
            .unwrap()
            .control_token,
        token
    );

    first.stop().await.unwrap();
    assert!(!ready.exists(), "stopping removes its own ready file");
    assert!(!lock_file(&ready).exists(), "and its lock file");
}

/// A run killed with SIGKILL leaves its ready file and lock file behind, but no lock: the next
/// run takes them over.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_files_of_a_killed_run_are_taken_over() {
    let dir = tempfile::tempdir().unwrap();
    let ready = dir.path().join("ready.json");
    std::fs::write(&ready, r#"{"scenario":"old","pid":1}"#).unwrap();
    std::fs::write(lock_file(&ready), "4194304").unwrap();
    let running = up::start(
        &seed(),
        &UpOptions::new(FabricKind::Loopback, ready.clone()),
    )
    .await
    .unwrap_or_else(|e| panic!("{e:#}"));
    let now = ppvnet::ready::ReadyFile::read(&ready).unwrap();
    assert_eq!(now.pid, std::process::id());
    assert_eq!(
        std::fs::read_to_string(lock_file(&ready)).unwrap(),
        std::process::id().to_string()
    );
    running.stop().await.unwrap();
    assert!(!ready.exists());
}

/// With `--data-dir` the CA (and each leaf's key) is kept: the second run presents
/// certificates a client that trusted the first run's CA file accepts, from the same path.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ca_kept_in_the_data_dir_survives_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let landscape = seed();
    let start = || {
        let mut opts = UpOptions::new(FabricKind::Loopback, dir.path().join("ready.json"));
        opts.data_dir = Some(data.clone());
        let landscape = &landscape;
        async move {
            up::start(landscape, &opts)
                .await
                .unwrap_or_else(|e| panic!("{e:#}"))
        }
    };
    let first = start().await;
    let ca_path = first.ready().ca_cert.clone();
    assert!(ca_path.starts_with(&data), "{}", ca_path.display());
    let trusted = std::fs::read_to_string(&ca_path).unwrap();
    let leaf_keys = |d: &Path| -> Vec<(PathBuf, String)> {
        let mut keys: Vec<_> = std::fs::read_dir(d.join("pki"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| {
                p.file_name()
                    .unwrap()
                    .to_string_lossy()
                    .starts_with("leaf-")
            })
            .map(|p| (p.clone(), std::fs::read_to_string(&p).unwrap()))
            .collect();
        keys.sort();
        keys
    };
    let keys_before = leaf_keys(&data);
    assert!(!keys_before.is_empty(), "leaf keys are kept");
    first.stop().await.unwrap();
    assert!(ca_path.exists(), "a kept CA outlives the run");

    let second = start().await;
    assert_eq!(second.ready().ca_cert, ca_path, "the same path");
    assert_eq!(
        std::fs::read_to_string(&ca_path).unwrap(),
        trusted,
        "the same CA"
    );
    assert_eq!(leaf_keys(&data), keys_before, "the same leaf keys");
    // A client holding the first run's CA reaches the second run's Entra by name.
    let client = second
        .fabric()
        .http_client(ppvnet::landscape::INTERNET, trusted.as_bytes())
        .unwrap();
    let entra = second.ready().entra.clone().unwrap();
    let url = format!(
        "{}/{}/v2.0/.well-known/openid-configuration",
        entra.authority_host,
        second.ready().tenant_id
    );
    let status = client.get(&url).send().await.unwrap().status();
    assert_eq!(status, 200);
    second.stop().await.unwrap();
}

/// `ppvnet up` prints, under its endpoint table, the CA path and copy-paste lines: the CA
/// bundle exports (with the path of this run's CA) and the `ppvnet exec` line.
#[test]
fn up_prints_the_ca_and_what_to_do_next() {
    let dir = tempfile::tempdir().unwrap();
    let ready_path = dir.path().join("ready.json");
    let scenario = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/contoso.yaml");
    let (mut child, ready) = crate::up_cli::up(&scenario, &ready_path, Stdio::piped(), &[]);
    let ca = ready["ca_cert"].as_str().unwrap().to_string();
    let stdout = child.stdout.take().unwrap();
    // Every line up to the one saying the landscape is up (printed after the ready file).
    let mut printed = String::new();
    for line in BufReader::new(stdout).lines() {
        let line = line.unwrap();
        printed.push_str(&line);
        printed.push('\n');
        if line.starts_with("ppvnet is up") {
            break;
        }
    }
    crate::up_cli::terminate(&mut child);
    for variable in ppvnet::pki::CA_BUNDLE_VARIABLES {
        assert!(
            printed.contains(&format!("  export {variable}={ca}\n")),
            "{variable} in:\n{printed}"
        );
    }
    assert!(
        printed.contains(&format!("CA certificate: {ca}\n")),
        "{printed}"
    );
    let exec_line = format!(
        "ppvnet exec --ready-file {} --host internet -- python3 your_script.py",
        ready_path.display()
    );
    assert!(printed.contains(&exec_line), "{printed}");
    let env_line = format!(
        "eval \"$(ppvnet env --ready-file {} --host internet)\"",
        ready_path.display()
    );
    assert!(printed.contains(&env_line), "{printed}");
}

#[test]
fn shell_words_are_quoted_only_when_needed() {
    assert_eq!(up::shell_quote("/tmp/a-b/ca.pem"), "/tmp/a-b/ca.pem");
    assert_eq!(
        up::shell_quote("/tmp/my dir/ca.pem"),
        "'/tmp/my dir/ca.pem'"
    );
    assert_eq!(up::shell_quote("it's"), r"'it'\''s'");
    assert_eq!(up::shell_quote(""), "''");
}
