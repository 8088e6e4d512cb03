//! The state handle, the router and the request pipeline.
//!
//! Order of checks for one request, as the real service answers:
//! 1. the `Host` picks the vault (`{vault}.vault.azure.net[:port]` or a configured alias);
//! 2. no bearer token: 401 challenge with `AKV10000`, before the body is read (SDKs probe with
//!    an empty body and resend it after the challenge);
//! 3. the token is validated for the vault's tenant (401 on failure);
//! 4. network rules (403 `ForbiddenByConnection` / `ForbiddenByFirewall`; their texts name the
//!    authenticated caller, so they come after authentication);
//! 5. `api-version` (400 `BadParameter`);
//! 6. the operation and its authorization (403 `ForbiddenByRbac` / access policy);
//! 7. the body is read and the operation runs.
//!
//! Ids and `nextLink`s are built from the `Host` the client used, so a vault reached on a
//! loopback address answers with ids on that address: `https://{host}/secrets/{name}/{version}`
//! (the default port dropped, as Azure's ids have none) and
//! `https://{hostname}:{port}/secrets?api-version=…&$skiptoken=…` (Azure always writes the port
//! in `nextLink`, `:443` in the recordings). The scheme is `https` unless the vault is served
//! over plain HTTP by [`run`] with `tls: None`.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::response::Response;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ppvnet_common::net::SharedPeerDirectory;
use ppvnet_common::token::{Bearer, request_bearer};
use ppvnet_common::{Clock, Endpoint, Face, Peer};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::access::{Operation, assignment_id, authorize};
use crate::auth::{AccessTokenCheck, Caller};
use crate::backup::BackupKey;
use crate::config::{Authorization, ConfigError, KeyVaultConfig, VaultConfig};
use crate::error::KeyVaultError;
use crate::model::{BackupResult, Page, Render, RestoreBody, SetSecretBody, UpdateSecretBody};
use crate::network::check_network;
use crate::persist::{StoreError, VaultFile};
use crate::store::{Now, VaultState};

/// Versions the fake answers. Older clients (7.0-7.6) and the preview the 2026 recordings use
/// must keep working; an emulator that rejects them breaks when SDKs move (lowkey-vault#873).
/// `2026-04-01` is the default of azure-keyvault-secrets 4.12.0 (the fake answers it with the
/// 2025-07-01 shapes; the secrets models did not change between the versions it mirrors).
pub const API_VERSIONS: [&str; 12] = [
    "7.0",
    "7.1",
    "7.2",
    "7.3",
    "7.4",
    "7.5",
    "7.6",
    "2025-06-01",
    "2025-07-01",
    "2026-03-01-preview",
    "2026-04-01",
    "2016-10-01",
];
const LATEST_API_VERSION: &str = "2025-07-01";
const DEFAULT_PAGE: usize = 25;
/// Bodies above this are refused before parsing; a full 25 KB value, JSON-escaped, fits.
const MAX_BODY_BYTES: usize = 4 * 1024 * 1024;
/// How much of an oversized body is still read (and discarded) so the client can read the
/// refusal; past this the connection or stream is simply cut.
const DRAIN_LIMIT_BYTES: usize = 64 * 1024 * 1024;
const VAULT_DNS_SUFFIX: &str = ".vault.azure.net";

/// How the service is reached (set by `ppvnet_common::serve` from whether it serves TLS).
pub use ppvnet_common::serve::Scheme;

/// Why the fake could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot create the data directory {path}: {source}")]
    DataDir {
        path: std::path::PathBuf,
        #[source]
        source: io::Error,
    },
}

struct Vault {
    config: Arc<VaultConfig>,
    state: RwLock<VaultState>,
    backup: BackupKey,
    authority: String,
    /// What every response of the vault carries, built once: a SHA-1 and a few strings per
    /// request were a fifth of a cached GET's handler time.
    headers: VaultHeaders,
}

/// The vault's own response headers, ready to insert.
struct VaultHeaders {
    /// `x-ms-keyvault-region` (`None` if the configured region is no header value).
    region: Option<HeaderValue>,
    /// `x-ms-keyvault-rbac-assignment-id` of each RBAC role assignment, by index.
    assignment_ids: Vec<Option<HeaderValue>>,
}

impl VaultHeaders {
    fn new(vault: &VaultConfig) -> Self {
        let assignment_ids = match &vault.authorization {
            Authorization::Rbac { role_assignments } => role_assignments
                .iter()
                .map(|a| HeaderValue::from_str(&assignment_id(vault, a)).ok())
                .collect(),
            Authorization::AccessPolicies { .. } => Vec::new(),
        };
        Self {
            region: HeaderValue::from_str(&vault.region).ok(),
            assignment_ids,
        }
    }
}

/// Response header names, parsed once.
const X_MS_REQUEST_ID: HeaderName = HeaderName::from_static("x-ms-request-id");
const X_MS_CLIENT_REQUEST_ID: HeaderName = HeaderName::from_static("x-ms-client-request-id");
const X_MS_KEYVAULT_NETWORK_INFO: HeaderName =
    HeaderName::from_static("x-ms-keyvault-network-info");
const X_MS_KEYVAULT_REGION: HeaderName = HeaderName::from_static("x-ms-keyvault-region");
const X_MS_KEYVAULT_SERVICE_VERSION: HeaderName =
    HeaderName::from_static("x-ms-keyvault-service-version");
const X_MS_KEYVAULT_RBAC_ASSIGNMENT_ID: HeaderName =
    HeaderName::from_static("x-ms-keyvault-rbac-assignment-id");

struct Inner {
    vaults: Vec<Vault>,
    by_name: HashMap<String, usize>,
    by_alias: HashMap<String, usize>,
    clock: Clock,
    peers: SharedPeerDirectory,
    tokens: Arc<dyn AccessTokenCheck>,
    service_version: HeaderValue,
}

/// The fake Key Vault: every configured vault. Cheap to clone.
#[derive(Clone)]
pub struct KeyVault {
    inner: Arc<Inner>,
}

impl KeyVault {
    /// Validates the configuration, opens (or creates) each vault's store file when `data_dir`
    /// is set, and seeds vaults that were never seeded. The 401 challenge names
    /// `https://login.microsoftonline.com/{tenant}` as the real service does; clients only take
    /// the tenant from it and ask their own configured authority for the token.
    pub fn new(
        config: KeyVaultConfig,
        clock: Clock,
        peers: SharedPeerDirectory,
        tokens: Arc<dyn AccessTokenCheck>,
    ) -> Result<Self, StartError> {
        config.validate()?;
        if let Some(dir) = &config.data_dir {
            // It will hold every vault's secrets.
            ppvnet_common::private_fs::create_dir_all(dir).map_err(|source| {
                StartError::DataDir {
                    path: dir.clone(),
                    source,
                }
            })?;
        }
        let now = Now::from_millis(clock.unix_millis());
        let mut vaults = Vec::new();
        let mut by_name = HashMap::new();
        let mut by_alias = HashMap::new();
        for (index, vault) in config.vaults.iter().enumerate() {
            let vault_config = Arc::new(vault.clone());
            let file = match &config.data_dir {
                Some(dir) => Some(VaultFile::open(
                    &VaultFile::path_for(dir, &vault.name),
                    &vault.name,
                )?),
                None => None,
            };
            let state = VaultState::open(vault_config.clone(), file, now)?;
            by_name.insert(vault.name.to_ascii_lowercase(), index);
            for alias in &vault.host_aliases {
                by_alias.insert(alias.to_ascii_lowercase(), index);
            }
            vaults.push(Vault {
                headers: VaultHeaders::new(vault),
                backup: BackupKey::for_vault(&config.backup_key, vault),
                authority: format!("https://login.microsoftonline.com/{}", vault.tenant_id),
                config: vault_config,
                state: RwLock::new(state),
            });
        }
        let service_version = HeaderValue::from_str(&config.service_version)
            .unwrap_or_else(|_| HeaderValue::from_static("1.9.3070.1"));
        Ok(Self {
            inner: Arc::new(Inner {
                vaults,
                by_name,
                by_alias,
                clock,
                peers,
                tokens,
                service_version,
            }),
        })
    }

    /// The vaults served, by name.
    pub fn vault_names(&self) -> Vec<String> {
        self.inner
            .vaults
            .iter()
            .map(|v| v.config.name.clone())
            .collect()
    }

    /// `https://{vault}.vault.azure.net`, the URL clients are given.
    pub fn vault_url(&self, vault: &str) -> Option<String> {
        self.inner
            .by_name
            .get(&vault.to_ascii_lowercase())
            .map(|i| {
                format!(
                    "https://{}{VAULT_DNS_SUFFIX}",
                    self.inner.vaults[*i].config.name
                )
            })
    }

    /// Number of secret records (in any state) a vault holds.
    pub fn secret_count(&self, vault: &str) -> Option<usize> {
        let index = *self.inner.by_name.get(&vault.to_ascii_lowercase())?;
        Some(read(&self.inner.vaults[index].state).len())
    }

    fn vault_for_host(&self, host: &str) -> Option<&Vault> {
        // Clients send lower-case hosts: no copy for them.
        let host = if host.bytes().any(|b| b.is_ascii_uppercase()) {
            std::borrow::Cow::Owned(host.to_ascii_lowercase())
        } else {
            std::borrow::Cow::Borrowed(host)
        };
        let host = host.as_ref();
        let hostname = strip_port(host);
        let index = self
            .inner
            .by_alias
            .get(host)
            .or_else(|| self.inner.by_alias.get(hostname))
            .or_else(|| {
                hostname
                    .strip_suffix(VAULT_DNS_SUFFIX)
                    .and_then(|name| self.inner.by_name.get(name))
            })?;
        self.inner.vaults.get(*index)
    }
}

fn read(lock: &RwLock<VaultState>) -> RwLockReadGuard<'_, VaultState> {
    // A panic while holding the lock cannot leave a half-applied change: changes are built on a
    // copy and swapped in after the durable write.
    lock.read().unwrap_or_else(|e| e.into_inner())
}

fn write(lock: &RwLock<VaultState>) -> RwLockWriteGuard<'_, VaultState> {
    lock.write().unwrap_or_else(|e| e.into_inner())
}

fn strip_port(host: &str) -> &str {
    if host.starts_with('[') {
        return host
            .split_once(']')
            .map_or(host, |(h, _)| &host[..h.len() + 1]);
    }
    match host.rsplit_once(':') {
        Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => host,
    }
}

/// The router serving every vault.
pub fn router(state: KeyVault) -> Router {
    Router::new().fallback(handle).with_state(state)
}

/// Serves the vaults on `endpoints` (HTTPS when `tls` is set) until `shutdown` resolves.
pub async fn run(
    state: KeyVault,
    endpoints: Vec<Endpoint>,
    tls: Option<Arc<rustls::ServerConfig>>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    ppvnet_common::serve(endpoints, router(state), tls, shutdown).await
}

/// What every response of one vault carries.
struct Context<'a> {
    vault: Option<&'a Vault>,
    request_id: Option<HeaderValue>,
    client_request_id: Option<HeaderValue>,
    peer: Peer,
    /// The index of the granting RBAC assignment in the vault's configuration.
    assignment: Option<usize>,
    service_version: HeaderValue,
}

impl Context<'_> {
    fn respond(&self, status: StatusCode, body: Option<Vec<u8>>) -> Response {
        let mut response = match body {
            Some(bytes) => Response::new(Body::from(bytes)),
            None => Response::new(Body::empty()),
        };
        *response.status_mut() = status;
        let h = response.headers_mut();
        // Room for every header below at once rather than growing the map while inserting.
        h.reserve(16);
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
        h.insert(header::EXPIRES, HeaderValue::from_static("-1"));
        if status != StatusCode::NO_CONTENT {
            h.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json; charset=utf-8"),
            );
        }
        h.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000;includeSubDomains"),
        );
        h.insert(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        );
        if let Some(v) = &self.request_id {
            h.insert(X_MS_REQUEST_ID, v.clone());
        }
        if let Some(v) = &self.client_request_id {
            h.insert(X_MS_CLIENT_REQUEST_ID, v.clone());
        }
        if let Some(vault) = self.vault {
            let (conn_type, family) = match self.peer.address {
                IpAddr::V4(_) => ("Ipv4", "InterNetwork"),
                IpAddr::V6(_) => ("Ipv6", "InterNetworkV6"),
            };
            let info = format!(
                "conn_type={conn_type};addr={};act_addr_fam={family};",
                self.peer.address
            );
            if let Ok(v) = HeaderValue::from_str(&info) {
                h.insert(X_MS_KEYVAULT_NETWORK_INFO, v);
            }
            if let Some(v) = &vault.headers.region {
                h.insert(X_MS_KEYVAULT_REGION, v.clone());
            }
            h.insert(X_MS_KEYVAULT_SERVICE_VERSION, self.service_version.clone());
            if let Some(v) = self
                .assignment
                .and_then(|i| vault.headers.assignment_ids.get(i))
                .and_then(Option::as_ref)
            {
                h.insert(X_MS_KEYVAULT_RBAC_ASSIGNMENT_ID, v.clone());
            }
        }
        response
    }

    fn error(&self, error: KeyVaultError) -> Response {
        let mut response = self.respond(error.status(), Some(error.body()));
        if let Some(challenge) = error.challenge()
            && let Ok(v) = HeaderValue::from_str(&challenge)
        {
            response.headers_mut().insert(header::WWW_AUTHENTICATE, v);
        }
        response
    }
}

/// The request as routing sees it.
struct Target {
    operation: Operation,
    version: Option<String>,
}

fn route(method: &Method, path: &str) -> Option<Target> {
    let trimmed = path.strip_prefix('/')?;
    let segments: Vec<&str> = trimmed.split('/').collect();
    let is = |s: &str, word: &str| s.eq_ignore_ascii_case(word);
    let name = |s: &str| s.to_owned();
    let plain = |operation| {
        Some(Target {
            operation,
            version: None,
        })
    };
    match (method, segments.as_slice()) {
        (&Method::GET, [s] | [s, ""]) if is(s, "secrets") => plain(Operation::List),
        (&Method::POST, [s, r]) if is(s, "secrets") && is(r, "restore") => {
            plain(Operation::Restore)
        }
        (&Method::PUT, [s, n]) if is(s, "secrets") => plain(Operation::Set { name: name(n) }),
        (&Method::DELETE, [s, n]) if is(s, "secrets") => plain(Operation::Delete { name: name(n) }),
        (&Method::GET, [s, n, v]) if is(s, "secrets") && is(v, "versions") => {
            plain(Operation::ListVersions { name: name(n) })
        }
        (&Method::POST, [s, n, b]) if is(s, "secrets") && is(b, "backup") => {
            plain(Operation::Backup { name: name(n) })
        }
        (&Method::GET, [s, n]) | (&Method::GET, [s, n, ""]) if is(s, "secrets") => {
            plain(Operation::Get { name: name(n) })
        }
        (&Method::GET, [s, n, v]) if is(s, "secrets") => Some(Target {
            operation: Operation::Get { name: name(n) },
            version: Some(name(v)),
        }),
        (&Method::PATCH, [s, n]) | (&Method::PATCH, [s, n, ""]) if is(s, "secrets") => {
            plain(Operation::Update { name: name(n) })
        }
        (&Method::PATCH, [s, n, v]) if is(s, "secrets") => Some(Target {
            operation: Operation::Update { name: name(n) },
            version: Some(name(v)),
        }),
        (&Method::GET, [s] | [s, ""]) if is(s, "deletedsecrets") => plain(Operation::ListDeleted),
        (&Method::GET, [s, n]) if is(s, "deletedsecrets") => {
            plain(Operation::GetDeleted { name: name(n) })
        }
        (&Method::DELETE, [s, n]) if is(s, "deletedsecrets") => {
            plain(Operation::Purge { name: name(n) })
        }
        (&Method::POST, [s, n, r]) if is(s, "deletedsecrets") && is(r, "recover") => {
            plain(Operation::Recover { name: name(n) })
        }
        _ => None,
    }
}

/// Query parameters, decoded.
struct Query {
    pairs: Vec<(String, String)>,
}

impl Query {
    fn parse(raw: Option<&str>) -> Self {
        Self {
            pairs: url::form_urlencoded::parse(raw.unwrap_or_default().as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        }
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn api_version(&self) -> Result<&str, KeyVaultError> {
        match self.get("api-version") {
            // UNVERIFIED wording for a missing version.
            None | Some("") => Err(KeyVaultError::BadParameter(
                "The 'api-version' query parameter is required.".to_owned(),
            )),
            Some(v) if API_VERSIONS.contains(&v) => Ok(v),
            // Wording from the service as quoted in public traces.
            Some(v) => Err(KeyVaultError::BadParameter(format!(
                "The specified version ({v}) is not recognized. Consider using the latest supported version ({LATEST_API_VERSION})."
            ))),
        }
    }

    fn max_results(&self) -> Result<usize, KeyVaultError> {
        match self.get("maxresults") {
            None => Ok(DEFAULT_PAGE),
            Some(raw) => match raw.parse::<usize>() {
                Ok(n) if (1..=DEFAULT_PAGE).contains(&n) => Ok(n),
                // UNVERIFIED wording; the range 1-25 is the spec's.
                _ => Err(KeyVaultError::BadParameter(format!(
                    "Invalid value '{raw}' for maxresults: it must be an integer between 1 and {DEFAULT_PAGE}."
                ))),
            },
        }
    }

    /// The decoded `$skiptoken` (the key to continue after).
    fn skip_token(&self) -> Result<Option<String>, KeyVaultError> {
        let Some(token) = self.get("$skiptoken") else {
            return Ok(None);
        };
        URL_SAFE_NO_PAD
            .decode(token)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .map(Some)
            .ok_or_else(|| KeyVaultError::BadParameter("The skip token is not valid.".to_owned()))
    }
}

/// The addresses the client used.
struct Origin {
    /// For ids: `https://{host}` without a default port.
    ids: String,
    /// The default port `ids` leaves out, which `nextLink` writes (`None`: `ids` has a port).
    omitted_port: Option<&'static str>,
}

impl Origin {
    fn new(scheme: Scheme, host: &str) -> Self {
        let (scheme_name, default_port) = match scheme {
            Scheme::Http => ("http", "80"),
            Scheme::Https => ("https", "443"),
        };
        let hostname = strip_port(host);
        let port = host
            .strip_prefix(hostname)
            .and_then(|rest| rest.strip_prefix(':'))
            .filter(|p| !p.is_empty())
            .unwrap_or(default_port);
        if port == default_port {
            Self {
                ids: format!("{scheme_name}://{hostname}"),
                omitted_port: Some(default_port),
            }
        } else {
            Self {
                ids: format!("{scheme_name}://{hostname}:{port}"),
                omitted_port: None,
            }
        }
    }

    /// For `nextLink`: `https://{hostname}:{port}`, always with the port.
    fn links(&self) -> std::borrow::Cow<'_, str> {
        match self.omitted_port {
            Some(port) => format!("{}:{port}", self.ids).into(),
            None => self.ids.as_str().into(),
        }
    }

    fn next_link(
        &self,
        path: &str,
        api_version: &str,
        max: Option<&str>,
        after: Option<&str>,
    ) -> Option<String> {
        let after = after?;
        let token = URL_SAFE_NO_PAD.encode(after);
        let max = max.map(|m| format!("&maxresults={m}")).unwrap_or_default();
        Some(format!(
            "{}{path}?api-version={api_version}{max}&$skiptoken={token}",
            self.links()
        ))
    }
}

fn parse_json<T: DeserializeOwned>(body: &Bytes) -> Result<T, KeyVaultError> {
    // UNVERIFIED wording for malformed bodies.
    serde_json::from_slice(body)
        .map_err(|e| KeyVaultError::BadParameter(format!("The request body is not valid: {e}")))
}

/// Reads the body, refusing one over [`MAX_BODY_BYTES`] with Key Vault's JSON error (400
/// `BadParameter`; the real service's status and text for this are UNVERIFIED). The rest of an
/// oversized body is still read and discarded, up to [`DRAIN_LIMIT_BYTES`]: a server that answers
/// mid-upload and stops reading leaves an HTTP/1.1 client with a reset connection and an HTTP/2
/// client with a reset stream, and neither reads the answer.
async fn read_body(body: Body) -> Result<Bytes, KeyVaultError> {
    use futures::StreamExt;
    let too_large = || KeyVaultError::BadParameter("The request body is too large.".to_owned());
    let mut stream = body.into_data_stream();
    let mut kept = Vec::new();
    let mut total = 0usize;
    while let Some(chunk) = stream.next().await {
        // A body cut by the transport (or by the server-wide cap) is as unusable as a big one.
        let chunk = chunk.map_err(|_| too_large())?;
        total = total.saturating_add(chunk.len());
        if total <= MAX_BODY_BYTES {
            kept.extend_from_slice(&chunk);
        } else if total > DRAIN_LIMIT_BYTES {
            break;
        }
    }
    if total > MAX_BODY_BYTES {
        return Err(too_large());
    }
    Ok(Bytes::from(kept))
}

async fn handle(State(kv): State<KeyVault>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let inner = &kv.inner;
    let remote = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0), |c| c.0);
    let ingress = parts
        .extensions
        .get::<Face>()
        .cloned()
        .unwrap_or(Face::Public);
    let scheme = parts
        .extensions
        .get::<Scheme>()
        .copied()
        .unwrap_or(Scheme::Https);
    let host = request_host(&parts.headers, &parts.uri);
    let mut ctx = Context {
        vault: None,
        request_id: request_id(),
        client_request_id: parts.headers.get(X_MS_CLIENT_REQUEST_ID).cloned(),
        peer: inner.peers.peer(remote),
        assignment: None,
        service_version: inner.service_version.clone(),
    };
    let Some(vault) = kv.vault_for_host(&host) else {
        return ctx.error(KeyVaultError::UnknownVaultHost(host));
    };
    ctx.vault = Some(vault);

    let token = match request_bearer(&parts.headers) {
        Bearer::Token(token) => token,
        Bearer::Missing => {
            return ctx.error(KeyVaultError::MissingToken {
                authority: vault.authority.clone(),
            });
        }
        Bearer::Ambiguous => {
            return ctx.error(KeyVaultError::AmbiguousToken {
                authority: vault.authority.clone(),
            });
        }
    };
    let caller: Caller = match inner.tokens.check(&vault.config.tenant_id, token).await {
        Ok(caller) => caller,
        Err(rejection) => {
            return ctx.error(KeyVaultError::InvalidToken {
                authority: vault.authority.clone(),
                message: rejection.message,
            });
        }
    };
    if let Err(e) = check_network(&vault.config, &ingress, &ctx.peer, &caller) {
        return ctx.error(e);
    }
    let query = Query::parse(parts.uri.query());
    let api_version = match query.api_version() {
        Ok(v) => v.to_owned(),
        Err(e) => return ctx.error(e),
    };
    let Some(target) = route(&parts.method, parts.uri.path()) else {
        return ctx.error(KeyVaultError::UnknownOperation {
            method: parts.method.to_string(),
            path: parts.uri.path().to_owned(),
        });
    };
    match authorize(&vault.config, &caller, &target.operation) {
        Ok(assignment) => ctx.assignment = assignment,
        Err(e) => return ctx.error(e),
    }
    let body = match read_body(body).await {
        Ok(b) => b,
        Err(e) => return ctx.error(e),
    };
    let origin = Origin::new(scheme, &host);
    let now = Now::from_millis(inner.clock.unix_millis());
    let exec = Exec {
        vault,
        render: Render {
            origin: &origin.ids,
            recovery_level: vault.config.recovery_level(),
            recoverable_days: vault.config.soft_delete_retention_days,
        },
        origin: &origin,
        query: &query,
        api_version: &api_version,
        now,
    };
    match exec.run(target, &body) {
        Ok(Outcome::Json(bytes)) => ctx.respond(StatusCode::OK, Some(bytes)),
        Ok(Outcome::NoContent) => ctx.respond(StatusCode::NO_CONTENT, None),
        Err(e) => ctx.error(e),
    }
}

/// A fresh `x-ms-request-id` ([`crate::names::random_uuid`]).
fn request_id() -> Option<HeaderValue> {
    let id = crate::names::random_uuid();
    HeaderValue::from_str(
        id.hyphenated()
            .encode_lower(&mut uuid::Uuid::encode_buffer()),
    )
    .ok()
}

fn request_host(headers: &HeaderMap, uri: &axum::http::Uri) -> String {
    headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_owned)
        .or_else(|| uri.authority().map(|a| a.to_string()))
        .unwrap_or_default()
}

enum Outcome {
    Json(Vec<u8>),
    NoContent,
}

struct Exec<'a> {
    vault: &'a Vault,
    render: Render<'a>,
    origin: &'a Origin,
    query: &'a Query,
    api_version: &'a str,
    now: Now,
}

fn to_json<T: Serialize>(value: &T) -> Result<Outcome, KeyVaultError> {
    // A secret bundle is a few hundred bytes: one allocation instead of growing from 128.
    let mut out = Vec::with_capacity(1024);
    serde_json::to_writer(&mut out, value)
        .map(|()| Outcome::Json(out))
        .map_err(|e| KeyVaultError::Storage(e.to_string()))
}

impl Exec<'_> {
    fn run(&self, target: Target, body: &Bytes) -> Result<Outcome, KeyVaultError> {
        let (now, r) = (self.now, &self.render);
        let version = target.version.as_deref();
        match target.operation {
            Operation::Get { name } => {
                let state = read(&self.vault.state);
                let (record, v) = state.get(&name, version, now)?;
                to_json(&r.bundle(record, v, true))
            }
            Operation::Set { name } => {
                let body: SetSecretBody = parse_json(body)?;
                let mut state = write(&self.vault.state);
                let (record, v) = state.set(&name, body, now)?;
                to_json(&r.bundle(record, v, true))
            }
            Operation::Update { name } => {
                let body: UpdateSecretBody = parse_json(body)?;
                let mut state = write(&self.vault.state);
                let (record, v) = state.update(&name, version, body, now)?;
                to_json(&r.bundle(record, v, false))
            }
            Operation::Delete { name } => {
                let mut state = write(&self.vault.state);
                let (record, deleted, purge) = state.delete(&name, now)?;
                let latest = record.latest().ok_or_else(|| not_found(&name))?;
                to_json(&r.deleted(record, latest, deleted, purge, false))
            }
            Operation::GetDeleted { name } => {
                let state = read(&self.vault.state);
                let (record, deleted, purge) = state.get_deleted(&name, now)?;
                let latest = record.latest().ok_or_else(|| not_found(&name))?;
                to_json(&r.deleted(record, latest, deleted, purge, false))
            }
            Operation::Recover { name } => {
                let mut state = write(&self.vault.state);
                let record = state.recover(&name, now)?;
                let latest = record.latest().ok_or_else(|| not_found(&name))?;
                to_json(&r.bundle(record, latest, false))
            }
            Operation::Purge { name } => {
                write(&self.vault.state).purge(&name, now)?;
                Ok(Outcome::NoContent)
            }
            Operation::Backup { name } => {
                let state = read(&self.vault.state);
                let record = state.backup(&name, now)?;
                to_json(&BackupResult {
                    value: self.vault.backup.seal(record),
                })
            }
            Operation::Restore => {
                let body: RestoreBody = parse_json(body)?;
                let blob = body.value.ok_or_else(|| {
                    KeyVaultError::BadParameter("The backup blob (value) is required.".to_owned())
                })?;
                let record = self.vault.backup.open(&blob)?;
                let mut state = write(&self.vault.state);
                let record = state.restore(record, now)?;
                let latest = record.latest().ok_or_else(|| not_found(&record.name))?;
                to_json(&r.bundle(record, latest, false))
            }
            Operation::List => {
                let (max, after) = (self.query.max_results()?, self.query.skip_token()?);
                let state = read(&self.vault.state);
                let listing = state.list(after.as_deref(), max, now);
                let value = listing
                    .entries
                    .iter()
                    .filter_map(|rec| rec.latest().map(|v| r.item(rec, v, false)))
                    .collect();
                to_json(&Page {
                    value,
                    next_link: self.next_link("/secrets", listing.continue_after),
                })
            }
            Operation::ListVersions { name } => {
                let (max, after) = (self.query.max_results()?, self.query.skip_token()?);
                let state = read(&self.vault.state);
                let (record, listing) = state.list_versions(&name, after.as_deref(), max, now)?;
                let value = match record {
                    Some(rec) => listing
                        .entries
                        .iter()
                        .map(|v| r.item(rec, v, true))
                        .collect(),
                    None => Vec::new(),
                };
                to_json(&Page {
                    value,
                    next_link: self
                        .next_link(&format!("/secrets/{name}/versions"), listing.continue_after),
                })
            }
            Operation::ListDeleted => {
                let (max, after) = (self.query.max_results()?, self.query.skip_token()?);
                let state = read(&self.vault.state);
                let listing = state.list_deleted(after.as_deref(), max, now);
                let value = listing
                    .entries
                    .iter()
                    .filter_map(|rec| {
                        let crate::store::Phase::Recoverable {
                            deleted_date,
                            scheduled_purge_date,
                        } = rec.phase(now.ms)
                        else {
                            return None;
                        };
                        rec.latest()
                            .map(|v| r.deleted(rec, v, deleted_date, scheduled_purge_date, true))
                    })
                    .collect();
                to_json(&Page {
                    value,
                    next_link: self.next_link("/deletedsecrets", listing.continue_after),
                })
            }
        }
    }

    fn next_link(&self, path: &str, after: Option<&str>) -> Option<String> {
        self.origin
            .next_link(path, self.api_version, self.query.get("maxresults"), after)
    }
}

fn not_found(name: &str) -> KeyVaultError {
    KeyVaultError::SecretNotFound {
        name_or_id: name.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_cover_every_secrets_operation() {
        let op = |m: Method, p: &str| route(&m, p).map(|t| (t.operation, t.version));
        assert_eq!(op(Method::GET, "/secrets"), Some((Operation::List, None)));
        assert_eq!(
            op(Method::GET, "/secrets/a/"),
            Some((Operation::Get { name: "a".into() }, None))
        );
        assert_eq!(
            op(Method::GET, "/secrets/a"),
            Some((Operation::Get { name: "a".into() }, None))
        );
        assert_eq!(
            op(Method::GET, "/secrets/a/0123"),
            Some((Operation::Get { name: "a".into() }, Some("0123".into())))
        );
        assert_eq!(
            op(Method::PATCH, "/secrets/a/"),
            Some((Operation::Update { name: "a".into() }, None))
        );
        assert_eq!(
            op(Method::GET, "/secrets/a/versions"),
            Some((Operation::ListVersions { name: "a".into() }, None))
        );
        assert_eq!(
            op(Method::POST, "/secrets/restore"),
            Some((Operation::Restore, None))
        );
        assert_eq!(
            op(Method::POST, "/deletedSecrets/a/recover"),
            Some((Operation::Recover { name: "a".into() }, None))
        );
        assert_eq!(
            op(Method::DELETE, "/deletedsecrets/a"),
            Some((Operation::Purge { name: "a".into() }, None))
        );
        assert!(op(Method::GET, "/keys/a").is_none());
        assert!(op(Method::POST, "/secrets/a").is_none());
    }

    #[test]
    fn request_ids_are_fresh_version_4_uuids() {
        let id =
            |v: Option<HeaderValue>| uuid::Uuid::parse_str(v.unwrap().to_str().unwrap()).unwrap();
        let (a, b) = (id(request_id()), id(request_id()));
        assert_ne!(a, b);
        assert_eq!(a.get_version(), Some(uuid::Version::Random));
        assert_eq!(a.hyphenated().to_string().len(), 36);
    }

    #[test]
    fn origins_keep_the_clients_host() {
        let o = Origin::new(Scheme::Https, "kv-a.vault.azure.net");
        assert_eq!(o.ids, "https://kv-a.vault.azure.net");
        assert_eq!(o.links(), "https://kv-a.vault.azure.net:443");
        let o = Origin::new(Scheme::Https, "127.0.1.9:8443");
        assert_eq!(o.ids, "https://127.0.1.9:8443");
        assert_eq!(
            o.next_link("/secrets", "7.6", Some("5"), Some("abc"))
                .unwrap(),
            "https://127.0.1.9:8443/secrets?api-version=7.6&maxresults=5&$skiptoken=YWJj"
        );
        assert_eq!(strip_port("[::1]:8443"), "[::1]");
    }
}
