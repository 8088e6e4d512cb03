//! The `ppvnet-entra` binary: started with a config file it serves the tenant (plain HTTP or
//! HTTPS), announces itself with `ready <authority host>`, refuses bad config files by name,
//! and stops cleanly on SIGTERM.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use jsonwebtoken::jwk::JwkSet;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use ppvnet_entra::EntraConfig;
use ppvnet_entra::config::{ApplicationConfig, PasswordCredential, Timestamp};
use serde_json::Value;

use crate::common::{TENANT, v1_iss, validate_with};

const CLIENT: &str = "66666666-ffff-4fff-8fff-666666666666";
const SECRET: &str = "Bin8Q~secret-for-the-binary-test";

fn small_config() -> EntraConfig {
    let mut client = ApplicationConfig::new("binary test client", CLIENT);
    client.password_credentials = vec![PasswordCredential {
        key_id: "d6666666-0000-4000-8000-000000000001".into(),
        display_name: None,
        secret_text: SECRET.into(),
        start_date_time: None,
        end_date_time: Timestamp(4_102_444_800),
    }];
    EntraConfig {
        tenant_id: TENANT.into(),
        domain: "binary.onmicrosoft.com".into(),
        display_name: None,
        tenant_region_scope: "NA".into(),
        users: vec![],
        groups: vec![],
        applications: vec![client, ApplicationConfig::azure_key_vault()],
    }
}

/// A running `ppvnet-entra`; killed if a test fails before stopping it.
struct Mock {
    child: Option<Child>,
    authority_host: String,
}

impl Drop for Mock {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn command(dir: &Path, config: &Path, transport: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ppvnet-entra"));
    cmd.arg("--config")
        .arg(config)
        .args(["--bind", "127.0.0.1:0"])
        .args(transport)
        .arg("--data-dir")
        .arg(dir.join("data"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    cmd
}

/// Starts the binary and waits for its `ready` line.
fn spawn(dir: &Path, transport: &[&str]) -> Mock {
    let config = dir.join("tenant.json");
    std::fs::write(&config, serde_json::to_vec(&small_config()).unwrap()).unwrap();
    let mut child = command(dir, &config, transport).spawn().unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut first = String::new();
        let _ = BufReader::new(stdout).read_line(&mut first);
        let _ = tx.send(first);
    });
    let line = rx.recv_timeout(Duration::from_secs(60)).unwrap();
    let authority_host = line
        .trim_end()
        .strip_prefix("ready ")
        .unwrap_or_else(|| panic!("expected `ready <host>`, got {line:?}"))
        .to_string();
    Mock {
        child: Some(child),
        authority_host,
    }
}

async fn discovery_and_token(http: &reqwest::Client, host: &str) {
    let discovery: Value = http
        .get(format!(
            "{host}/{TENANT}/v2.0/.well-known/openid-configuration"
        ))
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        discovery["issuer"],
        format!("https://login.microsoftonline.com/{TENANT}/v2.0")
    );
    let token_endpoint = discovery["token_endpoint"].as_str().unwrap();
    assert_eq!(token_endpoint, format!("{host}/{TENANT}/oauth2/v2.0/token"));
    let jwks: JwkSet = http
        .get(discovery["jwks_uri"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();

    let reply = http
        .post(token_endpoint)
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", CLIENT),
            ("client_secret", SECRET),
            ("scope", "https://vault.azure.net/.default"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), 200);
    let body: Value = reply.json().await.unwrap();
    assert_eq!(body["token_type"], "Bearer");
    // Key Vault asks for v1.0 tokens: `sts.windows.net` issuer, `appid`.
    let claims = validate_with(
        &jwks,
        body["access_token"].as_str().unwrap(),
        "https://vault.azure.net",
        &v1_iss(),
    )
    .unwrap();
    assert_eq!(claims["appid"], CLIENT);
    assert_eq!(claims["tid"], TENANT);

    let wrong = http
        .post(token_endpoint)
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", CLIENT),
            ("client_secret", "not-the-secret"),
            ("scope", "https://vault.azure.net/.default"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    let body: Value = wrong.json().await.unwrap();
    assert_eq!(body["error_codes"], serde_json::json!([7000215]));
}

fn terminate(mut mock: Mock) -> std::process::ExitStatus {
    let mut child = mock.child.take().unwrap();
    kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM).unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait());
    });
    rx.recv_timeout(Duration::from_secs(30))
        .expect("exits within 30 s of SIGTERM")
        .unwrap()
}

#[tokio::test]
async fn plain_http_serves_discovery_and_client_credentials_then_sigterm_exits_zero() {
    let dir = tempfile::tempdir().unwrap();
    let mock = spawn(dir.path(), &["--plain-http"]);
    assert!(mock.authority_host.starts_with("http://127.0.0.1:"));
    discovery_and_token(&reqwest::Client::new(), &mock.authority_host).await;
    let host = mock.authority_host.clone();

    let status = terminate(mock);
    assert_eq!(status.code(), Some(0), "{status:?}");
    assert!(
        reqwest::get(format!("{host}/{TENANT}/discovery/v2.0/keys"))
            .await
            .is_err()
    );
}

#[tokio::test]
async fn https_with_a_given_certificate_and_reused_signing_keys() {
    ppvnet_common::serve::install_crypto_provider();
    let dir = tempfile::tempdir().unwrap();
    let pki = ppvnet_testkit::TestPki::new("ppvnet test CA");
    let leaf = pki.leaf(&["127.0.0.1"]);
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert, leaf.cert_pem.clone() + &pki.ca_pem).unwrap();
    std::fs::write(&key, &leaf.key_pem).unwrap();
    let tls = [
        "--tls-cert",
        cert.to_str().unwrap(),
        "--tls-key",
        key.to_str().unwrap(),
    ];
    let http = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(pki.ca_pem.as_bytes()).unwrap()])
        .build()
        .unwrap();

    let first = spawn(dir.path(), &tls);
    assert!(first.authority_host.starts_with("https://127.0.0.1:"));
    discovery_and_token(&http, &first.authority_host).await;
    let kid = |jwks: Value| jwks["keys"][0]["kid"].as_str().unwrap().to_string();
    let keys_url = |host: &str| format!("{host}/{TENANT}/discovery/v2.0/keys");
    let get = |url: String| {
        let http = http.clone();
        async move {
            http.get(url)
                .send()
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap()
        }
    };
    let first_kid = kid(get(keys_url(&first.authority_host)).await);
    assert_eq!(terminate(first).code(), Some(0));

    let second = spawn(dir.path(), &tls);
    assert_eq!(kid(get(keys_url(&second.authority_host)).await), first_kid);
}

fn run_to_exit(dir: &Path, config: &Path) -> (Option<i32>, String, String) {
    let mut child = command(dir, config, &["--plain-http"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (mut out, mut err) = (String::new(), String::new());
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    (child.wait().unwrap().code(), out, err)
}

#[test]
fn a_malformed_config_file_is_named_with_the_parse_error_and_exits_non_zero() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("broken-tenant.json");
    std::fs::write(&config, r#"{"tenantId": 42, "domain": "x"}"#).unwrap();
    let (code, out, err) = run_to_exit(dir.path(), &config);
    assert_eq!(code, Some(1), "stderr: {err}");
    assert!(out.is_empty(), "no ready line: {out:?}");
    assert!(err.contains("broken-tenant.json"), "{err}");
    assert!(
        err.contains("invalid type: integer `42`, expected a string at line 1 column 15"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn a_config_entra_rejects_and_a_missing_file_are_named_too() {
    let dir = tempfile::tempdir().unwrap();
    let invalid = dir.path().join("not-a-guid.json");
    std::fs::write(&invalid, r#"{"tenantId": "contoso", "domain": "x"}"#).unwrap();
    let (code, _, err) = run_to_exit(dir.path(), &invalid);
    assert_eq!(code, Some(1), "stderr: {err}");
    assert!(err.contains("not-a-guid.json"), "{err}");
    assert!(err.contains("tenantId `contoso` is not a GUID"), "{err}");

    let missing = dir.path().join("no-such-tenant.json");
    let (code, _, err) = run_to_exit(dir.path(), &missing);
    assert_eq!(code, Some(1), "stderr: {err}");
    assert!(err.contains("no-such-tenant.json"), "{err}");
}
