//! Issue 10, testcontainers modules (`testcontainers-ppvnet`): each module starts a real
//! container of the image built from this package's binary, is ready when its accessors work,
//! and is gone when dropped; bad starts (image not built, port taken, a landscape that cannot
//! start) fail with one line naming the cause and the fix.
//!
//! Needs a running Docker engine (`docker`); skips without it unless `PPVNET_REQUIRE` lists it.

use base64::Engine;
use testcontainers_ppvnet::{Entra, Error, KeyVault, Landscape, PpvnetImage, Running};

use crate::containers::{docker_missing, image};
use crate::require::skip_unless;

fn docker() -> bool {
    if skip_unless("docker", docker_missing()) {
        return false;
    }
    image();
    true
}

/// The claims of a JWT (not verified: the test asks what Entra put in it).
fn claims(token: &str) -> serde_json::Value {
    let payload = token.split('.').nth(1).expect("a JWT");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

/// Whether a container of this id still exists.
fn exists(id: &str) -> bool {
    std::process::Command::new("docker")
        .args(["inspect", "--format", "{{.Id}}", id])
        .output()
        .unwrap()
        .status
        .success()
}

/// Reads a secret with the container's HTTP client and a vault token.
async fn read_secret<I>(running: &Running<I>, vault_url: &str, token: &str, name: &str) -> String {
    let response = running
        .http_client()
        .unwrap()
        .get(format!("{vault_url}secrets/{name}?api-version=7.5"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: serde_json::Value = response.json().await.unwrap();
    body["value"].as_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_entra_module_issues_app_tokens_for_its_api() {
    if !docker() {
        return;
    }
    let entra = Entra::default()
        .start()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        entra.authority_url(),
        format!("https://login.microsoftonline.com/{}", entra.tenant_id())
    );
    assert!(entra.ca_pem().starts_with("-----BEGIN CERTIFICATE-----"));
    let credentials = entra.client_credentials().unwrap();
    let token = entra.token(&credentials, Entra::API_SCOPE).await.unwrap();
    let claims = claims(&token);
    // The API asks for v2 tokens: their audience is its client id.
    assert_eq!(claims["aud"], Entra::API_CLIENT_ID, "{claims}");
    assert_eq!(claims["azp"], credentials.client_id.as_str(), "{claims}");
    assert_eq!(claims["tid"], entra.tenant_id(), "{claims}");
    assert_eq!(claims["roles"][0], "Api.ReadWrite.All", "{claims}");
    assert!(entra.password_of(Entra::USER).is_ok());
    // A wrong secret is refused by Entra in its own words.
    let mut wrong = credentials.clone();
    wrong.client_secret.push('x');
    match entra.token(&wrong, Entra::API_SCOPE).await {
        Err(Error::Token { status, body }) => {
            assert_eq!(status, 401, "{body}");
            assert!(body.contains("invalid_client"), "{body}");
        }
        other => panic!("{other:?}"),
    }
    let id = entra.id().to_string();
    drop(entra);
    assert!(!exists(&id), "the container outlived its handle");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_key_vault_module_serves_its_secret_to_its_app() {
    if !docker() {
        return;
    }
    let vault = KeyVault::default()
        .start()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let url = vault.vault_url().unwrap();
    assert_eq!(url, "https://kv-ppvnet.vault.azure.net/");
    let token = vault
        .token(&vault.client_credentials().unwrap(), KeyVault::SCOPE)
        .await
        .unwrap();
    let (name, value) = KeyVault::SECRET;
    assert_eq!(read_secret(&vault, &url, &token, name).await, value);
    // Without a token the vault challenges, as Key Vault does.
    let challenge = vault
        .http_client()
        .unwrap()
        .get(format!("{url}secrets/{name}?api-version=7.5"))
        .send()
        .await
        .unwrap();
    assert_eq!(challenge.status(), 401);
    let missing = vault.vault_url_of("kv-nope").unwrap_err().to_string();
    assert!(missing.contains("kv-ppvnet"), "{missing}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_landscape_module_runs_the_seed_landscape_with_its_control_api() {
    if !docker() {
        return;
    }
    let landscape = Landscape::seed()
        .start()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(landscape.landscape(), "contoso");
    let url = landscape.vault_url_of("kv-contoso-dev").unwrap();
    let credentials = landscape.client_credentials_of("ops-automation").unwrap();
    let token = landscape
        .token(&credentials, "https://vault.azure.net/.default")
        .await
        .unwrap();
    let secret = read_secret(&landscape, &url, &token, "cases-connector-secret").await;
    assert_eq!(secret, "cases-connector-secret-Vb8~pK3z");
    let (control, control_token) = landscape.control();
    let summary = reqwest::Client::new()
        .get(format!("{control}/landscape"))
        .bearer_auth(control_token)
        .send()
        .await
        .unwrap();
    assert_eq!(summary.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_starts_fail_in_one_line_naming_cause_and_fix() {
    if !docker() {
        return;
    }
    let one_line = |e: &Error| {
        let text = e.to_string();
        assert_eq!(text.lines().count(), 1, "{text}");
        text
    };
    // An image that was never built is not pulled.
    let err = Entra::default()
        .with_tag("not-built")
        .start()
        .await
        .unwrap_err();
    assert!(matches!(err, Error::ImageNotBuilt(_)), "{err:?}");
    assert!(one_line(&err).contains("ppvnet image build"));

    // A port of the machine another program holds.
    let held = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = held.local_addr().unwrap().port();
    let err = Entra::default()
        .with_ports(port, crate::containers::free_port())
        .start()
        .await
        .unwrap_err();
    assert!(matches!(err, Error::PortTaken(p) if p == port), "{err:?}");
    assert!(one_line(&err).contains(&port.to_string()));

    // A landscape that cannot start: the container exits, and its last line says why.
    let err = Landscape::from_yaml("name: broken\n")
        .start()
        .await
        .unwrap_err();
    match &err {
        Error::ExitedEarly { code, last_line } => {
            assert_eq!(*code, 1, "{err}");
            assert!(!last_line.is_empty());
        }
        other => panic!("{other:?}"),
    }
    one_line(&err);
}
