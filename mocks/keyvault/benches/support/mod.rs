//! Bench support: a test PKI, a local Entra stand-in serving discovery and JWKS over HTTPS with
//! an RS256 key the bench signs tokens with, and the fake vault served on loopback. The load
//! generator, the bare axum reference and VmRSS are `ppvnet_common::bench`'s.

use std::net::TcpListener;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::routing::get;
use axum::{Json, Router};
use ppvnet_common::{Clock, Endpoint};
use ppvnet_keyvault::{EntraTokenCheck, KeyVault};
use ppvnet_testkit::TokenAuthority;
use serde_json::json;

pub use ppvnet_common::bench::{Distribution, Served, closed_loop, serve_bare, vm_rss_kib};

pub const TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";

/// A CA and a leaf for `localhost` and 127.0.0.1, shared by every server of the run.
pub struct Pki {
    kit: ppvnet_testkit::TestPki,
    pub server: Arc<rustls::ServerConfig>,
}

impl Pki {
    pub fn new() -> Self {
        ppvnet_common::serve::install_crypto_provider();
        let kit = ppvnet_testkit::TestPki::new("ppvnet keyvault bench CA");
        Self {
            server: kit.server_config(&["localhost", "127.0.0.1"]),
            kit,
        }
    }

    /// A client trusting the CA, keeping up to `idle` connections per host alive.
    pub fn client(&self, idle: usize) -> reqwest::Client {
        self.kit
            .client_builder()
            .pool_max_idle_per_host(idle)
            .no_proxy()
            .build()
            .unwrap()
    }
}

/// The signing key and the HTTPS authority publishing it (discovery document and JWKS only:
/// the bench mints its tokens directly).
#[derive(Clone)]
pub struct Authority {
    pub base: String,
    key: Arc<TokenAuthority>,
    clock: Clock,
}

const KID: &str = "bench-kid";

impl Authority {
    pub async fn start(clock: Clock, tls: Arc<rustls::ServerConfig>) -> Self {
        let key = TokenAuthority::new(KID);
        let listener = bind();
        let base = format!("https://{}", listener.local_addr().unwrap());
        let keys = key.jwks();
        let router = Router::new()
            .route(
                "/{tenant}/v2.0/.well-known/openid-configuration",
                get(
                    |State(base): State<String>, Path(tenant): Path<String>| async move {
                        Json(json!({
                            "issuer": format!("https://login.microsoftonline.com/{tenant}/v2.0"),
                            "authorization_endpoint": format!("{base}/{tenant}/oauth2/v2.0/authorize"),
                            "token_endpoint": format!("{base}/{tenant}/oauth2/v2.0/token"),
                            "jwks_uri": format!("{base}/{tenant}/discovery/v2.0/keys"),
                            "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
                            "subject_types_supported": ["pairwise"],
                            "id_token_signing_alg_values_supported": ["RS256"],
                        }))
                    },
                ),
            )
            .route(
                "/{tenant}/discovery/v2.0/keys",
                get(move || {
                    let keys = keys.clone();
                    async move { Json(keys) }
                }),
            )
            .with_state(base.clone());
        tokio::spawn(ppvnet_common::serve(
            vec![Endpoint::public(listener)],
            router,
            Some(tls),
            std::future::pending(),
        ));
        Self {
            base,
            key: Arc::new(key),
            clock,
        }
    }

    /// A v1 app token for Key Vault, as Entra issues for the `https://vault.azure.net` resource.
    pub fn token(&self, oid: &str) -> String {
        let now = self.clock.unix();
        let claims = json!({
            "aud": "https://vault.azure.net", "iss": format!("https://sts.windows.net/{TENANT}/"),
            "iat": now, "nbf": now, "exp": now + 3600,
            "appid": "11111111-2222-3333-4444-555555555555", "appidacr": "1", "idtyp": "app",
            "oid": oid, "sub": oid, "tid": TENANT, "ver": "1.0",
        });
        self.key.sign(&claims)
    }

    /// The production token check against this authority, with an empty key cache.
    pub fn check(&self, http: reqwest::Client) -> Arc<EntraTokenCheck> {
        Arc::new(EntraTokenCheck::new(
            &self.base,
            [TENANT],
            http,
            self.clock.clone(),
        ))
    }
}

pub fn bind() -> TcpListener {
    TcpListener::bind("127.0.0.1:0").unwrap()
}

/// Serves `kv` over HTTPS on `listener` with `ppvnet_keyvault::run`.
pub fn serve_vault(kv: KeyVault, listener: TcpListener, tls: Arc<rustls::ServerConfig>) -> Served {
    let (served, shutdown) = Served::until_dropped(listener.local_addr().unwrap());
    tokio::spawn(ppvnet_keyvault::run(
        kv,
        vec![Endpoint::public(listener)],
        Some(tls),
        shutdown,
    ));
    served
}

/// Criterion's estimates for `group/function` (mean and, for linear sampling, the slope), in
/// nanoseconds per iteration, read back from the directory criterion wrote them to.
pub fn criterion_estimate(group: &str, function: &str) -> Option<(f64, Option<f64>)> {
    let dir = criterion_home()?;
    let path = dir
        .join(group)
        .join(function)
        .join("new")
        .join("estimates.json");
    let estimates: serde_json::Value = serde_json::from_slice(&std::fs::read(path).ok()?).ok()?;
    let mean = estimates["mean"]["point_estimate"].as_f64()?;
    let slope = estimates["slope"]["point_estimate"].as_f64();
    Some((mean, slope))
}

/// Where criterion writes its results, resolved the way criterion does: `$CRITERION_HOME`,
/// `$CARGO_TARGET_DIR/criterion`, the target directory `cargo metadata` names.
fn criterion_home() -> Option<std::path::PathBuf> {
    if let Some(home) = std::env::var_os("CRITERION_HOME") {
        return Some(home.into());
    }
    if let Some(target) = std::env::var_os("CARGO_TARGET_DIR") {
        return Some(std::path::PathBuf::from(target).join("criterion"));
    }
    let output = std::process::Command::new(std::env::var_os("CARGO")?)
        .args(["metadata", "--format-version", "1", "--no-deps"])
        .output()
        .ok()?;
    let metadata: serde_json::Value = serde_json::from_slice(&output.stdout).ok()?;
    Some(std::path::PathBuf::from(metadata["target_directory"].as_str()?).join("criterion"))
}
