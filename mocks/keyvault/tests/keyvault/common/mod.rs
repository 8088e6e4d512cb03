//! Test support: a tiny Entra stand-in (discovery, JWKS, token endpoint signing with the
//! testkit's authority), the testkit's PKI, and a running fake vault.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{Form, Path, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use jsonwebtoken::EncodingKey;
use ppvnet_common::{Clock, Endpoint};
use ppvnet_keyvault::{EntraTokenCheck, KeyVault, KeyVaultConfig};
use ppvnet_testkit::TokenAuthority;
use serde_json::{Value, json};

pub const TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";

/// The test CA and a leaf for `*.vault.azure.net`, `localhost` and 127.0.0.1.
pub struct Pki {
    pub ca_pem: String,
    pub server: Arc<rustls::ServerConfig>,
    kit: ppvnet_testkit::TestPki,
}

impl Pki {
    pub fn new() -> Self {
        ppvnet_common::serve::install_crypto_provider();
        let kit = ppvnet_testkit::TestPki::new("ppvnet keyvault test CA");
        Self {
            ca_pem: kit.ca_pem.clone(),
            server: kit.server_config(&[
                "*.vault.azure.net",
                "vault.azure.net",
                "localhost",
                "127.0.0.1",
            ]),
            kit,
        }
    }

    pub fn client(&self) -> reqwest::Client {
        self.kit.client()
    }
}

/// A signing key and the authority serving it.
#[derive(Clone)]
pub struct Authority {
    pub base: String,
    key: Arc<TokenAuthority>,
    pub kid: String,
    /// The signing key's public half, for attacks that misuse it.
    pub public_pem: String,
    clock: Clock,
}

#[derive(serde::Deserialize)]
struct TokenForm {
    client_id: String,
    #[serde(default)]
    scope: String,
}

impl Authority {
    /// Starts the authority on loopback; HTTPS when `tls` is given.
    pub async fn start(clock: Clock, tls: Option<Arc<rustls::ServerConfig>>) -> Self {
        let key = TokenAuthority::new("test-kid");
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let scheme = if tls.is_some() { "https" } else { "http" };
        let base = format!("{scheme}://{}", listener.local_addr().unwrap());
        let authority = Self {
            base: base.clone(),
            kid: key.kid.clone(),
            public_pem: key.public_pem.clone(),
            clock,
            key: Arc::new(key),
        };
        let keys = authority.key.jwks();
        let router = Router::new()
            .route(
                "/{tenant}/v2.0/.well-known/openid-configuration",
                get(|State(a): State<Authority>, Path(tenant): Path<String>| async move {
                    Json(json!({
                        "issuer": format!("https://login.microsoftonline.com/{tenant}/v2.0"),
                        "authorization_endpoint": format!("{}/{tenant}/oauth2/v2.0/authorize", a.base),
                        "token_endpoint": format!("{}/{tenant}/oauth2/v2.0/token", a.base),
                        "jwks_uri": format!("{}/{tenant}/discovery/v2.0/keys", a.base),
                        "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
                        "subject_types_supported": ["pairwise"],
                        "id_token_signing_alg_values_supported": ["RS256"],
                        "tenant_region_scope": "NA",
                    }))
                }),
            )
            .route(
                "/{tenant}/discovery/v2.0/keys",
                get(move || {
                    let keys = keys.clone();
                    async move { Json(keys) }
                }),
            )
            .route(
                "/{tenant}/oauth2/v2.0/token",
                post(
                    |State(a): State<Authority>,
                     Path(tenant): Path<String>,
                     Form(form): Form<TokenForm>| async move {
                        // Client credentials: the app's service principal object id is derived
                        // from its client id, so tests can grant roles to it.
                        let aud = form
                            .scope
                            .split_whitespace()
                            .find(|s| s.ends_with("/.default"))
                            .map(|s| s.trim_end_matches("/.default").to_owned())
                            .unwrap_or_else(|| "https://vault.azure.net".into());
                        let token = a.token_for(&tenant, &sp_object_id(&form.client_id), &form.client_id, &aud);
                        Json(json!({"token_type": "Bearer", "expires_in": 3599,
                                    "ext_expires_in": 3599, "access_token": token}))
                    },
                ),
            )
            .with_state(authority.clone());
        tokio::spawn(ppvnet_common::serve(
            vec![Endpoint::public(listener)],
            router,
            tls,
            std::future::pending(),
        ));
        authority
    }

    /// A v1 access token for Key Vault, as Entra issues for the `https://vault.azure.net`
    /// resource.
    pub fn token_for(&self, tenant: &str, oid: &str, app_id: &str, aud: &str) -> String {
        self.sign(&self.claims_for(tenant, oid, app_id, aud))
    }

    /// The claims of [`Authority::token_for`].
    pub fn claims_for(&self, tenant: &str, oid: &str, app_id: &str, aud: &str) -> Value {
        let now = self.clock.unix();
        json!({
            "aud": aud, "iss": format!("https://sts.windows.net/{tenant}/"),
            "iat": now, "nbf": now, "exp": now + 3600,
            "appid": app_id, "appidacr": "1", "idtyp": "app",
            "oid": oid, "sub": oid, "tid": tenant, "ver": "1.0",
        })
    }

    /// The authority's signing key, for tests that forge around it.
    pub fn encoding_key(&self) -> EncodingKey {
        self.key.encoding_key()
    }

    pub fn token(&self, oid: &str) -> String {
        self.token_for(
            TENANT,
            oid,
            "11111111-2222-3333-4444-555555555555",
            "https://vault.azure.net",
        )
    }

    pub fn sign(&self, claims: &Value) -> String {
        self.key.sign(claims)
    }

    /// The production token check against this authority.
    pub fn check(&self, client: reqwest::Client) -> Arc<EntraTokenCheck> {
        Arc::new(EntraTokenCheck::new(
            &self.base,
            [TENANT],
            client,
            self.clock.clone(),
        ))
    }
}

/// The object id the test authority gives the service principal of `client_id`.
pub fn sp_object_id(client_id: &str) -> String {
    uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_OID, client_id.as_bytes()).to_string()
}

/// A fake vault served on loopback.
pub struct Running {
    pub public: SocketAddr,
    pub private: Option<SocketAddr>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

impl Running {
    /// Serves `kv` on a public listener and, when `private_endpoint` is given, on a second
    /// listener tagged as that private endpoint.
    pub fn serve(
        kv: KeyVault,
        listeners: (std::net::TcpListener, Option<(std::net::TcpListener, &str)>),
        tls: Option<Arc<rustls::ServerConfig>>,
    ) -> Self {
        let (public, private) = listeners;
        let public_addr = public.local_addr().unwrap();
        let mut endpoints = vec![Endpoint::public(public)];
        let private_addr = private.map(|(l, name)| {
            let addr = l.local_addr().unwrap();
            endpoints.push(Endpoint::private(l, name));
            addr
        });
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(ppvnet_keyvault::run(kv, endpoints, tls, async move {
            let _ = rx.await;
        }));
        Self {
            public: public_addr,
            private: private_addr,
            stop: Some(tx),
            task: Some(task),
        }
    }

    pub async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.unwrap().unwrap();
        }
    }
}

pub fn bind() -> std::net::TcpListener {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap()
}

pub fn new_kv(
    config: KeyVaultConfig,
    clock: &Clock,
    check: Arc<dyn ppvnet_keyvault::AccessTokenCheck>,
) -> KeyVault {
    KeyVault::new(
        config,
        clock.clone(),
        ppvnet_common::net::socket_peers(),
        check,
    )
    .unwrap()
}

/// A principal holding Key Vault Secrets Officer on the vault of [`start_with_officer`].
pub const OFFICER: &str = "aaaaaaaa-0000-0000-0000-0000000000a1";

/// A test authority and one plain-HTTP vault, `kv-test`, reachable at its loopback address,
/// where [`OFFICER`] holds Key Vault Secrets Officer.
pub async fn start_with_officer() -> (Clock, Authority, Running) {
    use ppvnet_keyvault::{Authorization, KeyVaultRole, RoleAssignment, VaultConfig};
    let clock = Clock::new();
    let authority = Authority::start(clock.clone(), None).await;
    let public = bind();
    let mut v = VaultConfig::new("kv-test", TENANT, "westus");
    v.host_aliases
        .push(public.local_addr().unwrap().to_string());
    v.authorization = Authorization::Rbac {
        role_assignments: vec![RoleAssignment {
            principal_id: OFFICER.into(),
            role: KeyVaultRole::SecretsOfficer,
            secret: None,
        }],
    };
    let config = KeyVaultConfig {
        vaults: vec![v],
        ..Default::default()
    };
    let kv = new_kv(config, &clock, authority.check(reqwest::Client::new()));
    let running = Running::serve(kv, (public, None), None);
    (clock, authority, running)
}
