//! Issue 15 acceptance: Microsoft's own samples, unmodified (`tests/data/samples/`, sources in
//! `SOURCE.md`) and configured by environment variables only, run through `ppvnet exec` as the
//! test delegated subnet's host on both fabrics: the eight azure-keyvault-secrets samples
//! (`DefaultAzureCredential`, `VAULT_URL`) against the vault's real URL, MSAL Python's
//! confidential-client sample (a client-credentials token, then the secret read with `requests`)
//! and username/password sample, and a Rust program on `azure_security_keyvault_secrets` +
//! `azure_identity` (`examples/kv_read_secret.rs`). On loopback they reach the landscape through
//! the host's proxy, on netns from inside the host's namespace. `ppvnet env` prints the same
//! environment for a shell: `eval` it and the official Python client reads the secret.
//!
//! Skips (through `skip_unless`, so CI fails instead) without Python and the packages in
//! `scripts/python-requirements.txt`, and on netns without root.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use ppvnet::fabric::FabricKind;
use ppvnet::ready::ReadyFile;
use ppvnet::up::{self, UpOptions};

use crate::fabric_support::*;
use crate::require::skip_unless;

/// The host the samples run on: the test environment's delegated subnet, whose DNS resolves the
/// vault to its private endpoint.
const HOST: &str = "pp-test-westus";
/// The test environment's vault: private only, like prod's, but without purge protection, which
/// the purge samples need (on kv-contoso-prod Key Vault refuses their purge, as Azure does).
const VAULT_URL: &str = "https://kv-contoso-test.vault.azure.net/";
/// A secret the landscape puts into both vaults.
const SECRET: &str = "cases-connector-secret";
/// What the MSAL samples print after each round of their endless loop.
const ROUND_DONE: &str = "Press Ctrl-C to stop.";
/// How long one sample may run (the backup samples wait 60 s by design).
const SAMPLE_DEADLINE: Duration = Duration::from_secs(240);

fn samples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/samples")
}

fn python_packages_missing() -> Option<String> {
    let imports = "import msal, azure.identity, azure.keyvault.secrets, aiohttp, dotenv, requests";
    match Command::new("python3").args(["-c", imports]).output() {
        Ok(o) if o.status.success() => None,
        Ok(o) => Some(format!(
            "Python packages missing (pip install -r scripts/python-requirements.txt): {}",
            String::from_utf8_lossy(&o.stderr).trim()
        )),
        Err(e) => Some(format!("python3 not available: {e}")),
    }
}

/// `ppvnet exec --ready-file READY --host HOST -- argv` with `env` added to its environment.
fn exec(ready: &Path, env: &[(&str, String)], argv: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_ppvnet"));
    c.arg("exec")
        .arg("--ready-file")
        .arg(ready)
        .args(["--host", HOST, "--"])
        .args(argv)
        .envs(env.iter().map(|(k, v)| (*k, v)));
    c
}

/// Runs `cmd` (in a session of its own: no terminal, so `getpass` reads stdin) with `input` on
/// its stdin until it exits or, with `stop_at`, prints a line containing that text (the MSAL
/// samples loop forever); then ends its process group. Gives up after [`SAMPLE_DEADLINE`].
/// Returns its exit code (`None` when stopped here) and its output, stdout then stderr.
fn run(mut cmd: Command, input: String, stop_at: Option<String>) -> (Option<i32>, String) {
    use std::os::unix::process::CommandExt;
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // SAFETY: setsid is async-signal-safe and touches no memory of the parent.
    unsafe {
        cmd.pre_exec(|| {
            if libc::setsid() < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn().expect("ppvnet exec starts");
    let _ = child.stdin.take().unwrap().write_all(input.as_bytes());
    let mut stderr = child.stderr.take().unwrap();
    let errors = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let (tx, lines) = std::sync::mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + SAMPLE_DEADLINE;
    let mut out = String::new();
    let mut stopped = false;
    // Ends with the program's stdout (or at the deadline).
    while let Ok(line) = lines.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
        out.push_str(&line);
        out.push('\n');
        if stop_at.as_ref().is_some_and(|m| line.contains(m.as_str())) {
            stopped = true;
            break;
        }
    }
    let finished = !stopped && Instant::now() < deadline;
    if !finished {
        // SAFETY: kill(2) of the process group this test started (setsid above).
        unsafe { libc::kill(-(child.id() as i32), libc::SIGKILL) };
    }
    let status = child.wait().expect("the child is waited for");
    out.push_str(&errors.join().unwrap_or_default());
    (finished.then(|| status.code()).flatten(), out)
}

/// [`run`] on a blocking thread.
async fn run_async(cmd: Command, input: String, stop_at: Option<&str>) -> (Option<i32>, String) {
    let stop_at = stop_at.map(str::to_string);
    tokio::task::spawn_blocking(move || run(cmd, input, stop_at))
        .await
        .unwrap()
}

/// `cargo` without the variables cargo gives a test about its package (CARGO_PKG_NAME,
/// CARGO_MANIFEST_DIR, OUT_DIR, ...): build scripts such as ring's watch those names, so a
/// nested build that saw them would rebuild those crates, and the next outer build again.
fn nested_cargo() -> Command {
    let mut cargo = Command::new(env!("CARGO"));
    let prefixes = [
        "CARGO_PKG_",
        "CARGO_MANIFEST_",
        "CARGO_BIN_",
        "CARGO_CRATE_",
    ];
    let names = ["OUT_DIR", "CARGO_PRIMARY_PACKAGE", "CARGO_TARGET_TMPDIR"];
    for (name, _) in std::env::vars_os() {
        let name = name.to_string_lossy();
        if prefixes.iter().any(|p| name.starts_with(p)) || names.contains(&name.as_ref()) {
            cargo.env_remove(name.as_ref());
        }
    }
    cargo
}

/// The profile this test binary was built with (`target/<dir>/deps/integration-…`), so a
/// release test run does not build a second, debug dependency tree.
fn own_profile() -> String {
    let exe = std::env::current_exe().expect("the test binary's path");
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .and_then(Path::file_name)
        .and_then(|d| d.to_str())
        .unwrap_or("debug");
    if dir == "debug" { "dev" } else { dir }.to_string()
}

/// The Rust client program, built once per test process (a no-op when `cargo test` built the
/// examples already).
fn rust_client() -> &'static Path {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| {
        let out = nested_cargo()
            .args([
                "build",
                "--quiet",
                "-p",
                "ppvnet",
                "--example",
                "kv_read_secret",
            ])
            .args(["--profile", &own_profile(), "--message-format", "json"])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .stderr(Stdio::inherit())
            .output()
            .expect("cargo runs");
        assert!(out.status.success(), "cargo build --example kv_read_secret");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .find(|m| m["target"]["name"] == "kv_read_secret" && m["executable"].is_string())
            .and_then(|m| m["executable"].as_str().map(PathBuf::from))
            .expect("cargo names the example's executable")
    })
}

/// The Key Vault samples with the line each prints last when everything worked.
const KEYVAULT_SAMPLES: [(&str, &str); 8] = [
    (
        "list_operations.py",
        "Secret with name 'listOpsStorageSecretName' has recovery id",
    ),
    (
        "list_operations_async.py",
        "Secret with name 'listOpsStorageSecretNameAsync' has recovery id",
    ),
    (
        "hello_world.py",
        "Secret with name 'helloWorldSecretName' was deleted.",
    ),
    (
        "hello_world_async.py",
        "Secret with name 'helloWorldSecretNameAsync' was deleted.",
    ),
    (
        "backup_restore_operations.py",
        "Restored secret with name 'backupRestoreSecretName'",
    ),
    (
        "backup_restore_operations_async.py",
        "Restored secret with name 'backupRestoreSecretNameAsync'",
    ),
    (
        "recover_purge_operations.py",
        "Secret has been permanently deleted.",
    ),
    (
        "recover_purge_operations_async.py",
        "Secret has been permanently deleted.",
    ),
];

/// Runs all eight Key Vault samples and asserts each ran to its last line and exited 0. The
/// list samples read every secret of the vault, so they run alone first (a secret another
/// sample deletes in between would be a 404 for them, as in a shared vault in Azure).
async fn keyvault_samples(ready: &Path, r: &ReadyFile) {
    let app = &r.apps["ops-automation"];
    let env = vec![
        ("AZURE_TENANT_ID", r.tenant_id.clone()),
        ("AZURE_CLIENT_ID", app.client_id.clone()),
        ("AZURE_CLIENT_SECRET", app.client_secret.clone().unwrap()),
        ("VAULT_URL", VAULT_URL.to_string()),
    ];
    let start = |(file, last): (&'static str, &'static str)| {
        let script = samples().join("keyvault").join(file);
        let cmd = exec(ready, &env, &["python3", script.to_str().unwrap()]);
        async move { (file, last, run_async(cmd, String::new(), None).await) }
    };
    let check = |(file, last, (code, out)): (&str, &str, (Option<i32>, String))| {
        assert_eq!(code, Some(0), "{file}:\n{out}");
        assert!(out.contains(last), "{file} did not finish:\n{out}");
    };
    for sample in &KEYVAULT_SAMPLES[..2] {
        check(start(*sample).await);
    }
    let mut rest = tokio::task::JoinSet::new();
    for sample in &KEYVAULT_SAMPLES[2..] {
        rest.spawn(start(*sample));
    }
    while let Some(done) = rest.join_next().await {
        check(done.unwrap());
    }
}

/// MSAL's confidential-client sample gets a token for Key Vault and reads the secret with it
/// (its `ENDPOINT`); the username/password sample signs Alice in with the connector's client.
async fn msal_samples(ready: &Path, r: &ReadyFile, secret_value: &str) {
    let authority = format!("https://login.microsoftonline.com/{}", r.tenant_id);
    let ops = &r.apps["ops-automation"];
    let confidential = exec(
        ready,
        &[
            ("AUTHORITY", authority.clone()),
            ("CLIENT_ID", ops.client_id.clone()),
            ("CLIENT_SECRET", ops.client_secret.clone().unwrap()),
            ("SCOPE", "https://vault.azure.net/.default".into()),
            (
                "ENDPOINT",
                format!("{VAULT_URL}secrets/{SECRET}?api-version=7.5"),
            ),
        ],
        &[
            "python3",
            samples()
                .join("msal/confidential_client_sample.py")
                .to_str()
                .unwrap(),
        ],
    );
    let (_, out) = run_async(confidential, String::new(), Some(ROUND_DONE)).await;
    assert!(
        out.contains("Token was obtained from: identity_provider"),
        "{out}"
    );
    assert!(
        out.contains(&format!("\"value\": \"{secret_value}\"")),
        "{out}"
    );

    let connector = &r.apps["cases-connector"];
    let user = "alice@contoso.onmicrosoft.com";
    let password = format!("{}\n", r.users[user].password);
    let ropc = exec(
        ready,
        &[
            ("AUTHORITY", authority),
            ("CLIENT_ID", connector.client_id.clone()),
            ("CLIENT_SECRET", connector.client_secret.clone().unwrap()),
            ("SCOPE", "api://contoso-cases/Cases.Read".into()),
            ("USERNAME", user.into()),
        ],
        &[
            "python3",
            samples()
                .join("msal/username_password_sample.py")
                .to_str()
                .unwrap(),
        ],
    );
    let (_, out) = run_async(ropc, password, Some(ROUND_DONE)).await;
    assert!(
        out.contains("Token was obtained from: identity_provider"),
        "{out}"
    );
    assert!(
        out.contains(&format!("\"preferred_username\": \"{user}\"")),
        "{out}"
    );
}

/// The Rust program reads the secret.
async fn rust_sample(ready: &Path, r: &ReadyFile, secret_value: &str) {
    let program = tokio::task::spawn_blocking(rust_client).await.unwrap();
    let app = &r.apps["ops-automation"];
    let cmd = exec(
        ready,
        &[
            ("AZURE_TENANT_ID", r.tenant_id.clone()),
            ("AZURE_CLIENT_ID", app.client_id.clone()),
            ("AZURE_CLIENT_SECRET", app.client_secret.clone().unwrap()),
            ("VAULT_URL", VAULT_URL.into()),
            ("SECRET_NAME", SECRET.into()),
        ],
        &[program.to_str().unwrap()],
    );
    let (code, out) = run_async(cmd, String::new(), None).await;
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(out.lines().next(), Some(secret_value), "{out}");
}

fn connector_secret() -> String {
    landscape("contoso")
        .scenario
        .apps
        .iter()
        .find(|a| a.name == "cases-connector")
        .unwrap()
        .secrets[0]
        .value
        .clone()
}

async fn all_samples(kind: FabricKind) {
    let dir = tempfile::tempdir().unwrap();
    let ready = dir.path().join("ready.json");
    let running = up::start(&landscape("contoso"), &UpOptions::new(kind, ready.clone()))
        .await
        .unwrap_or_else(|e| panic!("{e:#}"));
    let r = running.ready().clone();
    let secret = connector_secret();
    rust_sample(&ready, &r, &secret).await;
    msal_samples(&ready, &r, &secret).await;
    keyvault_samples(&ready, &r).await;
    running.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_official_samples_run_unmodified_on_loopback_through_the_hosts_proxy() {
    if skip_unless("python", python_packages_missing()) {
        return;
    }
    all_samples(FabricKind::Loopback).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_official_samples_run_unmodified_on_netns_inside_the_hosts_namespace() {
    if skip_unless("netns", netns_unavailable()) || skip_unless("python", python_packages_missing())
    {
        return;
    }
    all_samples(FabricKind::Netns).await;
}

/// `eval "$(ppvnet env --host H)"` in bash, then the official Python client by the vault's
/// real URL: the prod delegated subnet reads the secret through the private endpoint, the
/// internet host reaches the public face and gets Key Vault's 403 ForbiddenByConnection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn env_exports_let_a_shell_act_as_a_host_on_loopback() {
    if skip_unless("python", python_packages_missing()) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let ready = dir.path().join("ready.json");
    let running = up::start(
        &landscape("contoso"),
        &UpOptions::new(FabricKind::Loopback, ready.clone()),
    )
    .await
    .unwrap_or_else(|e| panic!("{e:#}"));
    let r = running.ready().clone();
    let app = &r.apps["ops-automation"];
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/kv_read_secret.py");
    let shell = |host: &str| {
        let line = format!(
            "eval \"$('{}' env --ready-file '{}' --host {host})\" && \
             exec python3 {script} {} {} '{}' kv-contoso-prod {SECRET}",
            env!("CARGO_BIN_EXE_ppvnet"),
            ready.display(),
            r.tenant_id,
            app.client_id,
            app.client_secret.clone().unwrap(),
        );
        let mut cmd = Command::new("bash");
        cmd.args(["-c", &line])
            // What the user's shell may have had must not matter.
            .env("HTTPS_PROXY", "http://192.0.2.1:9")
            .env("NO_PROXY", "vault.azure.net");
        tokio::task::spawn_blocking(move || cmd.output().unwrap())
    };
    let prod = shell("pp-prod-westus").await.unwrap();
    let text = String::from_utf8_lossy(&prod.stdout);
    assert!(
        prod.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&prod.stderr)
    );
    assert_eq!(text.trim(), connector_secret());
    let internet = shell("internet").await.unwrap();
    let text = String::from_utf8_lossy(&internet.stdout);
    assert_eq!(internet.status.code(), Some(3), "{text}");
    assert!(
        text.starts_with("403 ") && text.contains("ForbiddenByConnection"),
        "{text}"
    );
    let printed = Command::new(env!("CARGO_BIN_EXE_ppvnet"))
        .args(["env", "--host", "nowhere", "--ready-file"])
        .arg(&ready)
        .output()
        .unwrap();
    assert_eq!(printed.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&printed.stderr)
            .contains("host 'nowhere' is not part of the landscape"),
        "{printed:?}"
    );
    running.stop().await.unwrap();
}
