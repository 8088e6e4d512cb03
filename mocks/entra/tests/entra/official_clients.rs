//! Official clients against the mock over HTTPS: MSAL Python (driven through
//! `tests/data/msal_driver.py`) and the Rust `azure_identity` ClientSecretCredential.
//! Every token they obtain is validated against the published JWKS.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener};
use std::process::Stdio;
use std::sync::Arc;

use ppvnet_common::{Clock, Endpoint};
use ppvnet_entra::Entra;
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;

use crate::common::*;

struct Tls {
    ca_pem: String,
    server: Arc<rustls::ServerConfig>,
}

/// A run CA and a leaf for `ip`, as the harness's PKI would issue them.
fn tls_for(ip: IpAddr) -> Tls {
    ppvnet_common::serve::install_crypto_provider();
    let pki = ppvnet_testkit::TestPki::new("ppvnet test CA");
    Tls {
        server: pki.server_config(&[&ip.to_string()]),
        ca_pem: pki.ca_pem,
    }
}

struct Served {
    authority_host: String,
    /// Whether port 443 of the same address is served too (MSAL's ROPC needs it).
    has_443: bool,
    tls: Tls,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Drop for Served {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
}

/// Serves the test tenant over HTTPS on a fresh 127.x.y.z address, plus port 443 there when
/// this process may bind it.
async fn serve_https(cert: &ClientCert) -> Served {
    let seed = std::process::id() as u8 ^ rand::random::<u8>();
    let ip = IpAddr::V4(Ipv4Addr::new(127, 83, seed, rand::random::<u8>().max(2)));
    let tls = tls_for(ip);
    let main = TcpListener::bind(SocketAddr::new(ip, 0)).unwrap();
    let port = main.local_addr().unwrap().port();
    let mut endpoints = vec![Endpoint::public(main)];
    let has_443 = match TcpListener::bind(SocketAddr::new(ip, 443)) {
        Ok(l) => {
            endpoints.push(Endpoint::public(l));
            true
        }
        Err(e) => {
            eprintln!(
                "cannot bind {ip}:443 ({e}): MSAL's ROPC (which calls userrealm on port 443) is skipped"
            );
            false
        }
    };
    let authority_host = format!("https://{ip}:{port}");
    let key_dir = Box::leak(Box::new(tempfile::tempdir().unwrap()));
    let entra = Entra::new(
        &config(cert),
        Clock::new(),
        url::Url::parse(&authority_host).unwrap(),
        Some(key_dir.path()),
    )
    .unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(ppvnet_entra::run(
        entra.clone(),
        endpoints,
        Some(tls.server.clone()),
        async move {
            let _ = rx.await;
        },
    ));
    Served {
        authority_host,
        has_443,
        tls,
        stop: Some(tx),
    }
}

impl Served {
    fn client(&self) -> reqwest::Client {
        reqwest::Client::builder()
            .tls_certs_only([reqwest::Certificate::from_pem(self.tls.ca_pem.as_bytes()).unwrap()])
            .build()
            .unwrap()
    }

    async fn jwks(&self) -> jsonwebtoken::jwk::JwkSet {
        self.client()
            .get(format!(
                "{}/{TENANT}/discovery/v2.0/keys",
                self.authority_host
            ))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    async fn ropc(&self, client: &[(&str, &str)], scope: &str) -> Value {
        let mut form = vec![
            ("grant_type", "password"),
            ("username", ALICE),
            ("password", ALICE_PASSWORD),
            ("scope", scope),
        ];
        form.extend_from_slice(client);
        self.client()
            .post(format!(
                "{}/{TENANT}/oauth2/v2.0/token",
                self.authority_host
            ))
            .form(&form)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }
}

fn msal_available() -> bool {
    std::process::Command::new("python3")
        .args(["-c", "import msal"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn msal_python_confidential_and_public_client_flows() {
    if !msal_available() {
        ppvnet_common::testing::skip(
            "python",
            "python3 cannot import msal (pip install msal) — MSAL fidelity not checked",
        );
        return;
    }
    let cert = ClientCert::generate();
    let served = serve_https(&cert).await;
    let dir = tempfile::tempdir().unwrap();
    let ca_path = dir.path().join("ca.pem");
    std::fs::write(&ca_path, &served.tls.ca_pem).unwrap();

    let user_assertion = served
        .ropc(
            &[("client_id", SPA)],
            &format!("{CONNECTOR_URI}/access_as_user"),
        )
        .await["access_token"]
        .clone();
    let refresh_token = served
        .ropc(
            &[
                ("client_id", CONNECTOR),
                ("client_secret", CONNECTOR_SECRET),
            ],
            &format!("{API_URI}/Cases.Read offline_access"),
        )
        .await["refresh_token"]
        .clone();
    let input = json!({
        "authority": format!("{}/{TENANT}", served.authority_host),
        "client_id": CONNECTOR,
        "secret": CONNECTOR_SECRET,
        "key_pem": cert.key_pem,
        "cert_pem": cert.cert_pem,
        "thumbprint": cert.sha1_hex(),
        "api_default": format!("{API_URI}/.default"),
        "api_scope": format!("{API_URI}/Cases.Read"),
        "spa_id": SPA,
        "user": ALICE,
        "password": ALICE_PASSWORD,
        "connector_scope": format!("{CONNECTOR_URI}/access_as_user"),
        "ropc": served.has_443,
        "user_assertion": user_assertion,
        "refresh_token": refresh_token,
    });
    let mut child = tokio::process::Command::new("python3")
        .arg(format!(
            "{}/tests/data/msal_driver.py",
            env!("CARGO_MANIFEST_DIR")
        ))
        .env("REQUESTS_CA_BUNDLE", &ca_path)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.to_string().as_bytes())
        .await
        .unwrap();
    let output = child.wait_with_output().await.unwrap();
    assert!(
        output.status.success(),
        "msal driver failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let out: Value = serde_json::from_slice(&output.stdout).unwrap();
    let jwks = served.jwks().await;
    let at = |name: &str| -> String {
        out[name]["access_token"]
            .as_str()
            .unwrap_or_else(|| panic!("{name}: {}", out[name]))
            .to_string()
    };

    for (name, acr) in [
        ("cc_secret", "1"),
        ("cc_cert_ps256", "2"),
        ("cc_cert_rs256", "2"),
    ] {
        let c = validate_with(&jwks, &at(name), API, &v2_iss()).unwrap();
        assert_eq!(c["azp"], CONNECTOR, "{name}");
        assert_eq!(c["azpacr"], acr, "{name}");
        assert_eq!(c["roles"], json!(["Cases.Search.All"]), "{name}");
    }
    let obo = validate_with(&jwks, &at("obo"), API, &v2_iss()).unwrap();
    assert_eq!(obo["oid"], ALICE_ID);
    assert_eq!(obo["scp"], "Cases.Read");
    assert_eq!(obo["azp"], CONNECTOR);
    // With ROPC the silent refresh asks for the connector's own API (v1 tokens: no
    // requestedAccessTokenVersion); otherwise the refresh token came from the connector's ROPC
    // for the v2 case-search API.
    let refreshed = if served.has_443 {
        validate_with(&jwks, &at("refresh"), CONNECTOR_URI, &v1_iss()).unwrap()
    } else {
        validate_with(&jwks, &at("refresh"), API, &v2_iss()).unwrap()
    };
    assert_eq!(refreshed["oid"], ALICE_ID);
    if served.has_443 {
        let ropc = validate_with(&jwks, &at("ropc"), CONNECTOR_URI, &v1_iss()).unwrap();
        assert_eq!(ropc["upn"], ALICE);
        assert_eq!(ropc["appid"], SPA);
        assert_eq!(
            out["accounts"],
            json!([ALICE]),
            "MSAL built its account from client_info + id_token"
        );
    } else {
        ppvnet_common::testing::skip(
            "port443",
            "MSAL ROPC and silent refresh not checked: port 443 not bindable",
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn azure_identity_client_secret_credential() {
    use azure_core::cloud::{CloudConfiguration, CustomConfiguration};
    use azure_core::credentials::TokenCredential;
    use azure_core::http::{ClientOptions, Transport};
    use azure_identity::{ClientSecretCredential, ClientSecretCredentialOptions};

    let cert = ClientCert::generate();
    let served = serve_https(&cert).await;
    let options = || {
        let mut custom = CustomConfiguration::default();
        custom.authority_host = served.authority_host.clone();
        ClientSecretCredentialOptions {
            client_options: ClientOptions {
                cloud: Some(Arc::new(CloudConfiguration::from(custom))),
                transport: Some(Transport::new(Arc::new(served.client()))),
                ..Default::default()
            },
        }
    };
    let credential = ClientSecretCredential::new(
        TENANT,
        CONNECTOR.to_string(),
        CONNECTOR_SECRET.into(),
        Some(options()),
    )
    .unwrap();
    let token = credential
        .get_token(&["https://vault.azure.net/.default"], None)
        .await
        .unwrap();
    let c = validate_with(
        &served.jwks().await,
        token.token.secret(),
        "https://vault.azure.net",
        &v1_iss(),
    )
    .unwrap();
    assert_eq!(c["appid"], CONNECTOR);
    assert_eq!(c["tid"], TENANT);

    // The SDK surfaces Entra's error description.
    let wrong = ClientSecretCredential::new(
        TENANT,
        CONNECTOR.to_string(),
        "wrong".into(),
        Some(options()),
    )
    .unwrap();
    let err = wrong
        .get_token(&["https://vault.azure.net/.default"], None)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("AADSTS7000215"), "{err}");
}
