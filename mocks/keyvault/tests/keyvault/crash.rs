//! Crash safety: a vault process is killed with SIGKILL at random points while a client writes;
//! after each restart on the same data directory every acknowledged write (HTTP 200 received)
//! is there, and the store is never refused as corrupt.
//!
//! The vault runs in a child process: this test binary re-executed with `KV_CRASH_DATA_DIR`
//! set, running only the ignored `crash::crash_child_server` test, which serves until it is
//! killed.

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use ppvnet_common::{Clock, Endpoint};
use ppvnet_keyvault::{
    AccessTokenCheck, Authorization, Caller, KeyVault, KeyVaultConfig, KeyVaultRole,
    RoleAssignment, TokenRejection, VaultConfig,
};
use tokio::io::{AsyncBufReadExt, BufReader};

const TOKEN: &str = "crash-test-token";
const OID: &str = "dddddddd-0000-0000-0000-000000000001";

/// Authentication is not under test here: one fixed token is accepted.
struct FixedToken;

impl AccessTokenCheck for FixedToken {
    fn check<'a>(
        &'a self,
        _tenant: &'a str,
        token: &'a str,
    ) -> BoxFuture<'a, Result<Caller, TokenRejection>> {
        Box::pin(async move {
            if token == TOKEN {
                Ok(Caller {
                    app_id: "crash".into(),
                    object_id: OID.into(),
                    issuer: "test".into(),
                })
            } else {
                Err(TokenRejection {
                    message: "unknown token".into(),
                })
            }
        })
    }
}

#[tokio::test]
#[ignore = "child process of writes_acknowledged_before_sigkill_survive_restart"]
async fn crash_child_server() {
    let Ok(dir) = std::env::var("KV_CRASH_DATA_DIR") else {
        return;
    };
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let mut vault = VaultConfig::new("kv-crash", "t", "westus");
    vault.host_aliases.push(addr.to_string());
    vault.authorization = Authorization::Rbac {
        role_assignments: vec![RoleAssignment {
            principal_id: OID.into(),
            role: KeyVaultRole::SecretsOfficer,
            secret: None,
        }],
    };
    let config = KeyVaultConfig {
        vaults: vec![vault],
        data_dir: Some(dir.into()),
        ..Default::default()
    };
    let kv = match KeyVault::new(
        config,
        Clock::new(),
        ppvnet_common::net::socket_peers(),
        Arc::new(FixedToken),
    ) {
        Ok(kv) => kv,
        Err(e) => {
            println!("START-FAILED {e}");
            return;
        }
    };
    println!("ADDR {addr}");
    ppvnet_keyvault::run(
        kv,
        vec![Endpoint::public(listener)],
        None,
        std::future::pending(),
    )
    .await
    .unwrap();
}

struct Child {
    process: tokio::process::Child,
    addr: String,
}

/// The libtest name of `crash_child_server`: its module path without the test crate's name
/// (`crash::crash_child_server`), so the filter keeps matching if the module moves.
fn child_test_name() -> String {
    let module = module_path!()
        .split_once("::")
        .map_or("", |(_crate, module)| module);
    format!("{module}::crash_child_server")
}

async fn start_child(dir: &std::path::Path) -> Child {
    let mut process = tokio::process::Command::new(std::env::current_exe().unwrap())
        .args([
            child_test_name().as_str(),
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("KV_CRASH_DATA_DIR", dir)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(process.stdout.take().unwrap()).lines();
    loop {
        let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
            .await
            .expect("child did not start")
            .unwrap()
            .expect("child exited before serving");
        // libtest prints "test crash::crash_child_server ... " on the same line first.
        assert!(
            !line.contains("START-FAILED"),
            "the store was refused after a crash: {line}"
        );
        if let Some((_, addr)) = line.split_once("ADDR ") {
            return Child {
                process,
                addr: addr.to_owned(),
            };
        }
    }
}

async fn existing_names(http: &reqwest::Client, addr: &str) -> std::collections::BTreeSet<String> {
    let mut names = std::collections::BTreeSet::new();
    let mut url = Some(format!("http://{addr}/secrets?api-version=7.6"));
    while let Some(u) = url {
        let page: serde_json::Value = http
            .get(&u)
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        for item in page["value"].as_array().unwrap() {
            names.insert(
                item["id"]
                    .as_str()
                    .unwrap()
                    .rsplit('/')
                    .next()
                    .unwrap()
                    .to_owned(),
            );
        }
        url = page["nextLink"].as_str().map(str::to_owned);
    }
    names
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_acknowledged_before_sigkill_survive_restart() {
    let dir = tempfile::tempdir().unwrap();
    let http = reqwest::Client::new();
    let mut acknowledged: Vec<String> = Vec::new();
    let mut next = 0usize;
    for round in 0..12 {
        let mut child = start_child(dir.path()).await;
        let present = existing_names(&http, &child.addr).await;
        for name in &acknowledged {
            assert!(
                present.contains(name),
                "round {round}: acknowledged write {name} lost after SIGKILL"
            );
        }
        // Write until killed at a random moment.
        let kill_after = Duration::from_millis(rand::random_range(20..250));
        let writer = {
            let (http, addr) = (http.clone(), child.addr.clone());
            let start = next;
            tokio::spawn(async move {
                let mut acked = Vec::new();
                for n in start.. {
                    let name = format!("c{n:06}");
                    let sent = http
                        .put(format!("http://{addr}/secrets/{name}?api-version=7.6"))
                        .bearer_auth(TOKEN)
                        .json(&serde_json::json!({"value": format!("v{n}")}))
                        .send()
                        .await;
                    match sent {
                        Ok(r) if r.status().is_success() => acked.push(name),
                        _ => return (acked, n + 1),
                    }
                }
                (acked, start)
            })
        };
        // Not a wait for an event: the kill lands at a random moment of the writes on purpose
        // (the point of the test), so a timer is what chooses it.
        tokio::time::sleep(kill_after).await;
        child.process.start_kill().unwrap();
        child.process.wait().await.unwrap();
        let (acked, after) = writer.await.unwrap();
        acknowledged.extend(acked);
        next = after;
    }
    // A final restart: every acknowledged value reads back.
    let child = start_child(dir.path()).await;
    let present = existing_names(&http, &child.addr).await;
    assert!(
        acknowledged.len() > 12,
        "too few writes to mean anything: {}",
        acknowledged.len()
    );
    for name in &acknowledged {
        assert!(present.contains(name), "acknowledged write {name} lost");
    }
    let sample = &acknowledged[acknowledged.len() / 2];
    let got: serde_json::Value = http
        .get(format!(
            "http://{}/secrets/{sample}/?api-version=7.6",
            child.addr
        ))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        got["value"],
        format!(
            "v{}",
            sample.trim_start_matches('c').parse::<usize>().unwrap()
        )
    );
}
