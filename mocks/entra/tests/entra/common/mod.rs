//! A small tenant and a running mock for the integration tests.

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use ppvnet_common::{Clock, Endpoint};
use ppvnet_entra::config::*;
use ppvnet_entra::{Entra, EntraConfig};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

pub const TENANT: &str = "8a3b2c1d-4e5f-4a6b-9c8d-7e6f5a4b3c2d";
pub const DOMAIN: &str = "contoso.onmicrosoft.com";

pub const API: &str = "11111111-aaaa-4aaa-8aaa-111111111111"; // v2 resource
pub const API_URI: &str = "api://case-search";
pub const SCOPE_CASES_READ: &str = "a1111111-0000-4000-8000-000000000001";
pub const ROLE_SEARCH_ALL: &str = "a1111111-0000-4000-8000-000000000002";
pub const ROLE_ADMIN: &str = "a1111111-0000-4000-8000-000000000003";

pub const LEGACY: &str = "22222222-bbbb-4bbb-8bbb-222222222222"; // v1 resource
pub const LEGACY_URI: &str = "api://legacy";
pub const SCOPE_LEGACY: &str = "b2222222-0000-4000-8000-000000000001";

pub const CONNECTOR: &str = "33333333-cccc-4ccc-8ccc-333333333333"; // confidential middle tier
pub const CONNECTOR_URI: &str = "api://connector";
pub const CONNECTOR_SECRET: &str = "Cnx8Q~not-a-real-secret-but-long-enough";
pub const CONNECTOR_SECRET_ID: &str = "c3333333-0000-4000-8000-000000000001";
pub const EXPIRED_SECRET: &str = "Old8Q~expired-secret-value-for-tests";
pub const EXPIRED_SECRET_ID: &str = "c3333333-0000-4000-8000-000000000002";
pub const SCOPE_ACCESS: &str = "c3333333-0000-4000-8000-000000000003";
pub const CONNECTOR_REDIRECT: &str = "https://app.contoso.example/callback";

pub const SPA: &str = "44444444-dddd-4ddd-8ddd-444444444444"; // public client
pub const SPA_REDIRECT: &str = "http://localhost:3000/";
pub const NATIVE_REDIRECT: &str = "http://localhost";

pub const UNCONSENTED: &str = "55555555-eeee-4eee-8eee-555555555555";
pub const UNCONSENTED_SECRET: &str = "Unc8Q~secret-of-the-unconsented-client";

pub const ALICE: &str = "alice@contoso.onmicrosoft.com";
pub const ALICE_ID: &str = "a11ce000-0000-4000-8000-000000000001";
pub const ALICE_PASSWORD: &str = "Alice-Pa55word!";
pub const BOB: &str = "bob@contoso.onmicrosoft.com";
pub const BOB_ID: &str = "b0b00000-0000-4000-8000-000000000002";
pub const BOB_PASSWORD: &str = "Bob-Pa55word!";
pub const CASEWORKERS: &str = "9c000000-0000-4000-8000-00000000000a";

/// A certificate and key for the connector's `private_key_jwt` credential.
pub struct ClientCert {
    pub cert_pem: String,
    pub key_pem: String,
    pub cert_der: Vec<u8>,
}

impl ClientCert {
    pub fn generate() -> Self {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256).unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "connector-client-cert");
        let cert = params.self_signed(&key).unwrap();
        Self {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            cert_der: cert.der().to_vec(),
        }
    }

    pub fn sha1_hex(&self) -> String {
        use sha1::Digest as _;
        sha1::Sha1::digest(&self.cert_der)
            .iter()
            .map(|b| format!("{b:02X}"))
            .collect()
    }

    /// A client assertion as `certificate-credentials.md` describes it (RS256 + `x5t`).
    pub fn assertion(&self, client_id: &str, aud: &str, exp_in: i64) -> String {
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let x5t = {
            use sha1::Digest as _;
            URL_SAFE_NO_PAD.encode(sha1::Sha1::digest(&self.cert_der))
        };
        let mut header = jsonwebtoken::Header::new(Algorithm::RS256);
        header.x5t = Some(x5t);
        let claims = json!({"aud": aud, "iss": client_id, "sub": client_id,
            "jti": uuid::Uuid::new_v4().to_string(), "nbf": now, "iat": now, "exp": now + exp_in});
        let key = jsonwebtoken::EncodingKey::from_rsa_pem(self.key_pem.as_bytes()).unwrap();
        jsonwebtoken::encode(&header, &claims, &key).unwrap()
    }
}

pub fn config(cert: &ClientCert) -> EntraConfig {
    let far = Timestamp(4_102_444_800); // 2100-01-01
    let mut api = ApplicationConfig::new("Case Search API", API);
    api.identifier_uris = vec![API_URI.into()];
    api.api.requested_access_token_version = Some(2);
    api.api.oauth2_permission_scopes = vec![PermissionScope {
        id: SCOPE_CASES_READ.into(),
        value: "Cases.Read".into(),
        is_enabled: true,
    }];
    api.app_roles = vec![
        AppRole {
            id: ROLE_SEARCH_ALL.into(),
            value: "Cases.Search.All".into(),
            allowed_member_types: vec![AppRoleMemberType::Application],
            display_name: None,
            is_enabled: true,
        },
        AppRole {
            id: ROLE_ADMIN.into(),
            value: "Cases.Admin".into(),
            allowed_member_types: vec![AppRoleMemberType::User],
            display_name: None,
            is_enabled: true,
        },
    ];
    api.group_membership_claims = GroupMembershipClaims::SecurityGroup;
    api.app_role_assigned_to = vec![AppRoleAssignment {
        principal_id: CASEWORKERS.into(),
        app_role_id: ROLE_ADMIN.into(),
    }];

    let mut legacy = ApplicationConfig::new("Legacy API", LEGACY);
    legacy.identifier_uris = vec![LEGACY_URI.into()];
    legacy.api.oauth2_permission_scopes = vec![PermissionScope {
        id: SCOPE_LEGACY.into(),
        value: "user_impersonation".into(),
        is_enabled: true,
    }];

    let mut connector = ApplicationConfig::new("Case Connector", CONNECTOR);
    connector.identifier_uris = vec![CONNECTOR_URI.into()];
    connector.api.oauth2_permission_scopes = vec![PermissionScope {
        id: SCOPE_ACCESS.into(),
        value: "access_as_user".into(),
        is_enabled: true,
    }];
    connector.password_credentials = vec![
        PasswordCredential {
            key_id: CONNECTOR_SECRET_ID.into(),
            display_name: Some("current".into()),
            secret_text: CONNECTOR_SECRET.into(),
            start_date_time: None,
            end_date_time: far,
        },
        PasswordCredential {
            key_id: EXPIRED_SECRET_ID.into(),
            display_name: Some("old".into()),
            secret_text: EXPIRED_SECRET.into(),
            start_date_time: None,
            end_date_time: Timestamp(1_600_000_000),
        },
    ];
    connector.key_credentials = vec![KeyCredential {
        key_id: "c3333333-0000-4000-8000-0000000000ce".into(),
        display_name: Some("CN=connector-client-cert".into()),
        key: cert.cert_pem.clone(),
        custom_key_identifier: Some(cert.sha1_hex()),
        end_date_time: None,
    }];
    connector.web.redirect_uris = vec![CONNECTOR_REDIRECT.into()];
    connector
        .web
        .implicit_grant_settings
        .enable_id_token_issuance = true;
    connector.required_resource_access = vec![
        RequiredResourceAccess {
            resource_app_id: API.into(),
            resource_access: vec![
                ResourceAccess {
                    id: SCOPE_CASES_READ.into(),
                    kind: ResourceAccessType::Scope,
                },
                ResourceAccess {
                    id: ROLE_SEARCH_ALL.into(),
                    kind: ResourceAccessType::Role,
                },
            ],
            admin_consent_granted: true,
        },
        RequiredResourceAccess {
            resource_app_id: LEGACY.into(),
            resource_access: vec![ResourceAccess {
                id: SCOPE_LEGACY.into(),
                kind: ResourceAccessType::Scope,
            }],
            admin_consent_granted: true,
        },
        RequiredResourceAccess {
            resource_app_id: AZURE_KEY_VAULT_APP_ID.into(),
            resource_access: vec![ResourceAccess {
                id: AZURE_KEY_VAULT_USER_IMPERSONATION_ID.into(),
                kind: ResourceAccessType::Scope,
            }],
            admin_consent_granted: true,
        },
    ];

    let mut spa = ApplicationConfig::new("Case Search SPA", SPA);
    spa.spa.redirect_uris = vec![SPA_REDIRECT.into()];
    spa.public_client.redirect_uris = vec![NATIVE_REDIRECT.into()];
    spa.is_fallback_public_client = true;
    spa.required_resource_access = vec![
        RequiredResourceAccess {
            resource_app_id: CONNECTOR.into(),
            resource_access: vec![ResourceAccess {
                id: SCOPE_ACCESS.into(),
                kind: ResourceAccessType::Scope,
            }],
            admin_consent_granted: true,
        },
        RequiredResourceAccess {
            resource_app_id: API.into(),
            resource_access: vec![ResourceAccess {
                id: SCOPE_CASES_READ.into(),
                kind: ResourceAccessType::Scope,
            }],
            admin_consent_granted: true,
        },
    ];

    let mut unconsented = ApplicationConfig::new("Unconsented Client", UNCONSENTED);
    unconsented.password_credentials = vec![PasswordCredential {
        key_id: "e5555555-0000-4000-8000-000000000001".into(),
        display_name: None,
        secret_text: UNCONSENTED_SECRET.into(),
        start_date_time: None,
        end_date_time: far,
    }];
    unconsented.required_resource_access = vec![RequiredResourceAccess {
        resource_app_id: API.into(),
        resource_access: vec![ResourceAccess {
            id: SCOPE_CASES_READ.into(),
            kind: ResourceAccessType::Scope,
        }],
        admin_consent_granted: false,
    }];

    EntraConfig {
        tenant_id: TENANT.into(),
        domain: DOMAIN.into(),
        display_name: Some("Contoso".into()),
        tenant_region_scope: "NA".into(),
        users: vec![
            UserConfig {
                id: ALICE_ID.into(),
                user_principal_name: ALICE.into(),
                display_name: "Alice Case".into(),
                given_name: Some("Alice".into()),
                surname: Some("Case".into()),
                password: ALICE_PASSWORD.into(),
                member_of: vec![CASEWORKERS.into()],
                account_enabled: true,
            },
            UserConfig {
                id: BOB_ID.into(),
                user_principal_name: BOB.into(),
                display_name: "Bob Blocked".into(),
                given_name: None,
                surname: None,
                password: BOB_PASSWORD.into(),
                member_of: vec![],
                account_enabled: true,
            },
        ],
        groups: vec![GroupConfig {
            id: CASEWORKERS.into(),
            display_name: "Caseworkers".into(),
        }],
        applications: vec![
            api,
            legacy,
            connector,
            spa,
            unconsented,
            ApplicationConfig::azure_key_vault(),
        ],
    }
}

/// A mock serving plain HTTP on a loopback port.
pub struct Running {
    pub entra: Entra,
    pub base: String,
    pub cert: Arc<ClientCert>,
    pub http: reqwest::Client,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

pub async fn start() -> Running {
    let cert = Arc::new(ClientCert::generate());
    start_with(config(&cert), cert).await
}

/// A mock with its own signing keys (for tests that rotate them).
pub async fn start_isolated() -> Running {
    let cert = Arc::new(ClientCert::generate());
    let dir = Box::leak(Box::new(tempfile::tempdir().unwrap()));
    start_in(config(&cert), cert, dir.path()).await
}

pub async fn start_with(config: EntraConfig, cert: Arc<ClientCert>) -> Running {
    start_in(config, cert, shared_key_dir()).await
}

async fn start_in(
    config: EntraConfig,
    cert: Arc<ClientCert>,
    key_dir: &std::path::Path,
) -> Running {
    ppvnet_common::serve::install_crypto_provider();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    let base = format!("http://{addr}");
    let entra = Entra::new(
        &config,
        Clock::new(),
        url::Url::parse(&base).unwrap(),
        Some(key_dir),
    )
    .unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(ppvnet_entra::run(
        entra.clone(),
        vec![Endpoint::public(listener)],
        None,
        async move {
            let _ = rx.await;
        },
    ));
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    Running {
        entra,
        base,
        cert,
        http,
        stop: Some(tx),
    }
}

/// Tests that do not rotate keys share one generated key (RSA generation is slow in debug
/// builds); rotation tests use their own directory.
fn shared_key_dir() -> &'static std::path::Path {
    static DIR: std::sync::OnceLock<tempfile::TempDir> = std::sync::OnceLock::new();
    DIR.get_or_init(|| tempfile::tempdir().unwrap()).path()
}

impl Running {
    pub fn token_url(&self) -> String {
        format!("{}/{TENANT}/oauth2/v2.0/token", self.base)
    }

    pub async fn token(&self, form: &[(&str, &str)]) -> (u16, Value) {
        self.token_at(&self.token_url(), form).await
    }

    pub async fn token_at(&self, url: &str, form: &[(&str, &str)]) -> (u16, Value) {
        let r = self.http.post(url).form(form).send().await.unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap())
    }

    pub async fn get_json(&self, path: &str) -> (u16, Value) {
        let r = self
            .http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap())
    }

    pub async fn jwks(&self) -> JwkSet {
        let (status, body) = self
            .get_json(&format!("/{TENANT}/discovery/v2.0/keys"))
            .await;
        assert_eq!(status, 200);
        serde_json::from_value(body).unwrap()
    }

    /// ROPC for `user` through the SPA (public client) with `scope`.
    pub async fn ropc(&self, user: &str, password: &str, scope: &str) -> (u16, Value) {
        self.token(&[
            ("grant_type", "password"),
            ("client_id", SPA),
            ("username", user),
            ("password", password),
            ("scope", scope),
        ])
        .await
    }
}

/// Validates `token` against the published key set like an API would, returning its claims.
pub async fn validate(running: &Running, token: &str, aud: &str, iss: &str) -> Value {
    validate_with(&running.jwks().await, token, aud, iss).unwrap()
}

pub fn validate_with(
    jwks: &JwkSet,
    token: &str,
    aud: &str,
    iss: &str,
) -> Result<Value, jsonwebtoken::errors::Error> {
    let header = jsonwebtoken::decode_header(token)?;
    let kid = header.kid.clone().unwrap_or_default();
    let jwk = jwks
        .find(&kid)
        .ok_or(jsonwebtoken::errors::ErrorKind::InvalidKeyFormat)?;
    let key = DecodingKey::from_jwk(jwk)?;
    let mut v = Validation::new(Algorithm::RS256);
    v.set_audience(&[aud]);
    v.set_issuer(&[iss]);
    v.leeway = 0;
    Ok(jsonwebtoken::decode::<Value>(token, &key, &v)?.claims)
}

pub fn v2_iss() -> String {
    format!("https://login.microsoftonline.com/{TENANT}/v2.0")
}

pub fn v1_iss() -> String {
    format!("https://sts.windows.net/{TENANT}/")
}

pub fn s256(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

pub fn basic(id: &str, secret: &str) -> String {
    format!("Basic {}", STANDARD.encode(format!("{id}:{secret}")))
}

/// Asserts an AADSTS error envelope: status, `error`, the code and the description's start.
pub fn assert_aadsts(reply: &(u16, Value), status: u16, error: &str, code: u64, prefix: &str) {
    let (s, body) = reply;
    assert_eq!(*s, status, "status of {body}");
    assert_eq!(body["error"], error, "error of {body}");
    assert_eq!(body["error_codes"], json!([code]), "error_codes of {body}");
    let d = body["error_description"].as_str().unwrap();
    let expected = format!("AADSTS{code}: {prefix}");
    assert!(
        d.starts_with(&expected),
        "description {d:?} should start {expected:?}"
    );
    assert!(
        d.contains("\r\nTrace ID: ")
            && d.contains("\r\nCorrelation ID: ")
            && d.contains("\r\nTimestamp: ")
    );
    for field in ["timestamp", "trace_id", "correlation_id", "error_uri"] {
        assert!(body[field].is_string(), "{field} missing in {body}");
    }
}
