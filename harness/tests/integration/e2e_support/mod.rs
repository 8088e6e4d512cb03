//! Shared by the end-to-end tests: start a landscape in-process on the loopback fabric, act as
//! one of its hosts, get tokens from its Entra.
//!
//! Host names resolve per host to addresses on port 443, so a landscape whose services could
//! not bind port 443 (not root) is stopped again and the test says why it skips (or fails, when
//! `PPVNET_REQUIRE` lists `port443`).

use std::path::{Path, PathBuf};

use ppvnet::fabric::FabricKind;
use ppvnet::up::{self, Running, UpOptions};
use serde_json::Value;

pub const TENANT: &str = "c76cdc05-9ef7-4021-9a9c-171dd3832ea4";
pub const CONNECTOR: (&str, &str) = (
    "3eb65b93-4e4d-414a-bce7-1d626fd5acf6",
    "cases-connector-secret-Vb8~pK3z",
);
pub const OPS: (&str, &str) = (
    "15c5b648-ae2a-4c68-a1c4-0032d5fc39c5",
    "ops-automation-secret-Zt4~nM6q",
);
pub const CASES_API: (&str, &str) = (
    "5e9c218b-a6be-46b5-8f6a-07731e1a4a91",
    "cases-api-secret-7Qw2~Lr9",
);

/// A running landscape and where its files are.
pub struct Started {
    pub running: Running,
    pub run_dir: PathBuf,
    _dir: tempfile::TempDir,
}

/// Starts a landscape file of `scenarios/` (e.g. `contoso.yaml`).
pub async fn start(file: &str) -> Option<Started> {
    start_edited(file, |_, _| {}).await
}

/// [`start`] with the landscape and the options changed first (an API stubbed, a limit
/// shortened); the changed landscape is checked again as a file would be.
pub async fn start_edited(
    file: &str,
    edit: impl FnOnce(&mut ppvnet::scenario::model::Scenario, &mut UpOptions),
) -> Option<Started> {
    let dir = tempfile::tempdir().unwrap();
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../scenarios")
        .join(file);
    let mut landscape = ppvnet::scenario::load(&path).unwrap();
    let mut opts = UpOptions::new(FabricKind::Loopback, dir.path().join("ready.json"));
    edit(&mut landscape.scenario, &mut opts);
    let text = serde_norway::to_string(&landscape.scenario).unwrap();
    let landscape = ppvnet::scenario::load_str(&text, &path).unwrap();
    let running = up::start(&landscape, &opts).await.unwrap();
    let authority = &running.ready().entra.as_ref().unwrap().authority_host;
    if authority.trim_start_matches("https://").contains(':') {
        // Stopped first, so a required capability fails the test without leaving a landscape.
        running.stop().await.unwrap();
        let why = "services could not bind port 443 (needs root); host names cannot be used";
        crate::require::skip_unless("port443", Some(why.into()));
        return None;
    }
    Some(Started {
        running,
        run_dir: opts.run_dir,
        _dir: dir,
    })
}

/// An HTTP client acting as `host` of the landscape.
pub fn client(r: &Running, host: &str) -> reqwest::Client {
    let ca = std::fs::read(&r.ready().ca_cert).unwrap();
    r.fabric().http_client(host, &ca).unwrap()
}

/// Posts to the tenant's v2 token endpoint; returns status and body.
pub async fn token_request(c: &reqwest::Client, form: &[(&str, &str)]) -> (u16, Value) {
    let r = c
        .post(format!(
            "https://login.microsoftonline.com/{TENANT}/oauth2/v2.0/token"
        ))
        .form(form)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap())
}

/// The resource owner password flow through `client`, as CI signs users in.
pub async fn user_tokens(
    c: &reqwest::Client,
    (id, secret): (&str, &str),
    upn: &str,
    password: &str,
    scope: &str,
) -> Value {
    let (status, body) = token_request(
        c,
        &[
            ("grant_type", "password"),
            ("client_id", id),
            ("client_secret", secret),
            ("username", upn),
            ("password", password),
            ("scope", scope),
        ],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body
}

/// A user's access token through the connector.
pub async fn user_token(c: &reqwest::Client, upn: &str, password: &str, scope: &str) -> String {
    user_tokens(c, CONNECTOR, upn, password, scope).await["access_token"]
        .as_str()
        .unwrap()
        .to_string()
}

/// An app-only token by client credentials.
pub async fn app_token(c: &reqwest::Client, (id, secret): (&str, &str), scope: &str) -> String {
    let (status, body) = token_request(
        c,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", id),
            ("client_secret", secret),
            ("scope", scope),
        ],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body["access_token"].as_str().unwrap().to_string()
}
