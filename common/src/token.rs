//! Validating Microsoft Entra access tokens, as a resource server (an API, Key Vault) does.
//!
//! This is the Rust counterpart of what Microsoft.Identity.Web / ASP.NET `JwtBearer` do for an
//! API: signing keys come from the tenant's OpenID discovery document and its `jwks_uri`, fetched
//! over the network and cached; an unknown `kid` triggers a rate-limited refetch, so a rotated key
//! is picked up without a restart while a flood of forged `kid`s cannot hammer the authority.
//!
//! Checks, in order: JWT shape, `alg` exactly `RS256` (which refuses `none` and the classic
//! "HS256 signed with the public key" confusion before any key is touched), a known `kid`, the
//! RSA signature, the exact issuer, the audience, `exp`/`nbf` with the configured skew (read from
//! the run's [`Clock`], so tests can shift time), the `tid` claim, and finally that the token is
//! an access token and not an ID token.
//!
//! Error descriptions reuse ASP.NET `JwtBearerHandler`'s wording ("The signature key was not
//! found", "The audience '…' is invalid", "The token expired at '…'") because that is what an
//! Entra-protected API answers in its `WWW-Authenticate` header. They never carry internals
//! (URLs, key material, library errors); those go to the logs.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Map, Value};

use crate::Clock;

/// Key sets are refetched at least this often even when every `kid` is known: Entra rotates keys
/// "on a periodic basis" and asks clients to refresh about every 24 hours (`access-tokens.md`).
const AUTOMATIC_REFRESH: Duration = Duration::from_secs(24 * 3600);

/// Before a key set was ever loaded, a failed fetch is retried at most this often.
const INITIAL_RETRY: Duration = Duration::from_secs(1);

const FETCH_TIMEOUT: Duration = Duration::from_secs(10);

/// What a resource server accepts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ValidatorConfig {
    /// The tenant's discovery document, e.g.
    /// `https://login.microsoftonline.com/{tenant}/v2.0/.well-known/openid-configuration`;
    /// the signing keys are read from its `jwks_uri`.
    pub metadata_url: String,
    /// The required `tid` claim.
    pub tenant_id: String,
    /// Accepted `aud` values: the API's client id and/or identifier URI (Key Vault:
    /// `https://vault.azure.net` and `https://vault.azure.net/`).
    pub audiences: Vec<String>,
    /// Accepted `iss` values, compared exactly: `https://sts.windows.net/{tid}/` (v1) and/or
    /// `https://login.microsoftonline.com/{tid}/v2.0` (v2).
    pub issuers: Vec<String>,
    /// Tolerance on `exp` and `nbf` (ASP.NET's default is 5 minutes).
    pub clock_skew: Duration,
    /// Minimum time between two key refetches triggered by unknown `kid`s.
    pub min_refresh_interval: Duration,
}

impl ValidatorConfig {
    /// A configuration with ASP.NET's defaults: 5 minutes of clock skew and at most one
    /// unknown-`kid` refetch every 5 minutes (`ConfigurationManager.DefaultRefreshInterval`).
    pub fn new(
        metadata_url: impl Into<String>,
        tenant_id: impl Into<String>,
        audiences: Vec<String>,
        issuers: Vec<String>,
    ) -> Self {
        Self {
            metadata_url: metadata_url.into(),
            tenant_id: tenant_id.into(),
            audiences,
            issuers,
            clock_skew: Duration::from_secs(300),
            min_refresh_interval: Duration::from_secs(300),
        }
    }

    /// Both issuer forms Entra uses for a tenant: v1 `https://sts.windows.net/{tid}/` and v2
    /// `https://login.microsoftonline.com/{tid}/v2.0`.
    pub fn entra_issuers(tenant_id: &str) -> Vec<String> {
        vec![
            format!("https://sts.windows.net/{tenant_id}/"),
            format!("https://login.microsoftonline.com/{tenant_id}/v2.0"),
        ]
    }
}

/// Why a token was refused. [`TokenError::description`] is safe to send to the caller.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("the token is not a well-formed JWT")]
    Malformed,
    #[error("the token is signed with an algorithm other than RS256")]
    UnsupportedAlgorithm,
    #[error("no signing key with the token's kid is published by the authority")]
    SignatureKeyNotFound,
    #[error("the signing keys could not be retrieved from the authority")]
    KeysUnavailable,
    #[error("the signature does not verify")]
    InvalidSignature,
    #[error("the issuer {0:?} is not accepted")]
    InvalidIssuer(Option<String>),
    #[error("the audience {0:?} is not accepted")]
    InvalidAudience(Option<String>),
    #[error("the token has no exp claim")]
    NoExpiration,
    #[error("the token expired at unix time {0}")]
    Expired(i64),
    #[error("the token is not valid before unix time {0}")]
    NotYetValid(i64),
    #[error("the token was issued for another tenant")]
    WrongTenant,
    #[error("the token is not an access token")]
    NotAnAccessToken,
    #[error("the token is {0} bytes long, over the {MAX_TOKEN_BYTES}-byte limit")]
    TooLarge(usize),
}

/// ASP.NET's `TokenValidationParameters.DefaultMaximumTokenSizeInBytes` (250 KiB): a token longer
/// than this is refused before it is decoded, so a huge header cannot make the validator parse
/// and base64-decode megabytes.
pub const MAX_TOKEN_BYTES: usize = 250 * 1024;

impl TokenError {
    /// The `error_description` of the `WWW-Authenticate` challenge. Values quoted from the token
    /// itself are reduced to characters RFC 6750 §3 allows in a quoted description.
    pub fn description(&self) -> String {
        match self {
            Self::Malformed => "The token is malformed".to_owned(),
            Self::UnsupportedAlgorithm => {
                "The token's signing algorithm is not accepted".to_owned()
            }
            Self::SignatureKeyNotFound | Self::KeysUnavailable => {
                "The signature key was not found".to_owned()
            }
            Self::InvalidSignature => "The signature is invalid".to_owned(),
            Self::InvalidIssuer(iss) => format!("The issuer '{}' is invalid", quoted(iss)),
            Self::InvalidAudience(aud) => format!("The audience '{}' is invalid", quoted(aud)),
            Self::NoExpiration => "The token has no expiration".to_owned(),
            Self::Expired(exp) => format!("The token expired at '{}'", invariant_time(*exp)),
            Self::NotYetValid(nbf) => {
                format!("The token is not valid before '{}'", invariant_time(*nbf))
            }
            Self::WrongTenant => "The token was not issued for this tenant".to_owned(),
            Self::NotAnAccessToken => "The token is not an access token".to_owned(),
            // Microsoft.IdentityModel's IDX10209 wording (from its message catalogue; the exact
            // text is UNVERIFIED against a live API).
            Self::TooLarge(length) => format!(
                "IDX10209: Token has length: '{length}' which is larger than the MaximumTokenSizeInBytes: '{MAX_TOKEN_BYTES}'"
            ),
        }
    }

    /// The RFC 6750 challenge for this error:
    /// `Bearer error="invalid_token", error_description="…"`.
    pub fn www_authenticate(&self) -> String {
        format!(
            "Bearer error=\"invalid_token\", error_description=\"{}\"",
            self.description()
        )
    }
}

/// `(null)` for a missing claim, as ASP.NET prints it.
fn quoted(value: &Option<String>) -> String {
    match value {
        Some(v) => header_safe(v),
        None => "(null)".to_owned(),
    }
}

/// Keeps what RFC 6750 allows in `error_description` (%x20-21 / %x23-5B / %x5D-7E), so a hostile
/// claim can neither break the header nor smuggle control characters into it; long values are cut.
fn header_safe(value: &str) -> String {
    value
        .chars()
        .filter(|c| matches!(*c as u32, 0x20..=0x21 | 0x23..=0x5B | 0x5D..=0x7E))
        .take(200)
        .collect()
}

/// .NET's invariant-culture `DateTime` format (`MM/dd/yyyy HH:mm:ss`), in UTC.
fn invariant_time(unix: i64) -> String {
    let format = time::macros::format_description!("[month]/[day]/[year] [hour]:[minute]:[second]");
    time::OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| t.format(&format).ok())
        .unwrap_or_else(|| unix.to_string())
}

/// What a request's `Authorization` headers present.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bearer<'a> {
    /// No header, or one that is not a bearer credential.
    Missing,
    Token(&'a str),
    /// More than one `Authorization` header. Refused rather than picking one: a proxy and the
    /// service disagreeing on which one counts is how a second, forged credential slips past
    /// a check (RFC 6750 §3.1 `invalid_request`: the request "uses more than one method").
    Ambiguous,
}

/// Reads the bearer credential of a request, refusing ambiguity (see [`Bearer::Ambiguous`]).
pub fn request_bearer(headers: &axum::http::HeaderMap) -> Bearer<'_> {
    let mut values = headers.get_all(axum::http::header::AUTHORIZATION).iter();
    match (values.next(), values.next()) {
        (None, _) => Bearer::Missing,
        (Some(_), Some(_)) => Bearer::Ambiguous,
        (Some(value), None) => value
            .to_str()
            .ok()
            .and_then(bearer_token)
            .map_or(Bearer::Missing, Bearer::Token),
    }
}

/// Extracts the token from an `Authorization` header value (`Bearer <token>`, scheme
/// case-insensitive as RFC 7235 says). `None` when the header is not a bearer credential.
pub fn bearer_token(authorization: &str) -> Option<&str> {
    let (scheme, token) = authorization.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// The claims of a validated access token. Shared, not copied: every request with a token the
/// validator has seen gets the claims it cached, and copying a claim map cost a few dozen
/// allocations per request.
#[derive(Clone, Debug, PartialEq)]
pub struct Claims {
    raw: Arc<Map<String, Value>>,
}

impl Claims {
    /// Wraps a claim set (as decoded from a token payload).
    pub fn from_map(raw: Map<String, Value>) -> Self {
        Self { raw: Arc::new(raw) }
    }

    /// Every claim as it appeared in the token.
    pub fn raw(&self) -> &Map<String, Value> {
        &self.raw
    }

    pub fn get(&self, name: &str) -> Option<&Value> {
        self.raw.get(name)
    }

    fn str_claim(&self, name: &str) -> Option<&str> {
        self.raw.get(name).and_then(Value::as_str)
    }

    fn str_list(&self, name: &str) -> Vec<&str> {
        self.str_items(name).collect()
    }

    /// The strings of a claim that is one string or an array of them, without collecting them
    /// (the audience check runs on every request).
    fn str_items(&self, name: &str) -> impl Iterator<Item = &str> {
        let (one, many) = match self.raw.get(name) {
            Some(Value::Array(items)) => (None, items.as_slice()),
            Some(Value::String(one)) => (Some(one.as_str()), &[][..]),
            _ => (None, &[][..]),
        };
        one.into_iter().chain(many.iter().filter_map(Value::as_str))
    }

    /// The caller's object id: the user, or the client's service principal for app-only tokens.
    pub fn oid(&self) -> Option<&str> {
        self.str_claim("oid")
    }

    pub fn tid(&self) -> Option<&str> {
        self.str_claim("tid")
    }

    pub fn sub(&self) -> Option<&str> {
        self.str_claim("sub")
    }

    pub fn issuer(&self) -> Option<&str> {
        self.str_claim("iss")
    }

    /// The `aud` claim (a single string in Entra tokens; the first entry of an array otherwise).
    pub fn audience(&self) -> Option<&str> {
        self.str_items("aud").next()
    }

    pub fn expires_at(&self) -> Option<i64> {
        self.raw.get("exp").and_then(Value::as_i64)
    }

    /// Delegated permissions: `scp` split on spaces.
    pub fn scopes(&self) -> Vec<&str> {
        self.str_claim("scp")
            .map(|s| s.split_whitespace().collect())
            .unwrap_or_default()
    }

    /// App roles (application permissions for app-only tokens, assigned roles for users).
    pub fn roles(&self) -> Vec<&str> {
        self.str_list("roles")
    }

    /// Group object ids from the `groups` claim (present when the app asks for group claims).
    pub fn groups(&self) -> Vec<&str> {
        self.str_list("groups")
    }

    /// The client application: `azp` (v2) or `appid` (v1).
    pub fn app_id(&self) -> Option<&str> {
        self.str_claim("azp").or_else(|| self.str_claim("appid"))
    }

    /// True for tokens a client obtained for itself (client credentials). The optional `idtyp`
    /// claim decides when present; otherwise a token without `scp` is app-only, because Entra
    /// never issues a delegated access token without at least one scope.
    pub fn is_app_only(&self) -> bool {
        match self.str_claim("idtyp") {
            Some(kind) => kind == "app",
            None => !self.raw.contains_key("scp"),
        }
    }

    pub fn name(&self) -> Option<&str> {
        self.str_claim("name")
    }

    /// The sign-in name: `preferred_username` (v2), `upn` or `unique_name` (v1).
    pub fn username(&self) -> Option<&str> {
        self.str_claim("preferred_username")
            .or_else(|| self.str_claim("upn"))
            .or_else(|| self.str_claim("unique_name"))
    }

    /// An ID token is meant for the client that signed the user in, never for an API. Entra ID
    /// tokens carry a `nonce` (or `at_hash`/`c_hash` from `/authorize`) and never name a client
    /// application, while every access token carries `azp` (v2) or `appid` (v1)
    /// (`access-token-claims-reference.md`, `id-token-claims-reference.md`).
    fn looks_like_id_token(&self) -> bool {
        ["nonce", "at_hash", "c_hash"]
            .iter()
            .any(|c| self.raw.contains_key(*c))
            || self.app_id().is_none()
    }
}

/// Validates access tokens for one resource. Cheap to clone; clones share the key cache.
#[derive(Clone)]
pub struct Validator {
    inner: Arc<Inner>,
}

struct Inner {
    config: ValidatorConfig,
    http: reqwest::Client,
    clock: Clock,
    keys: RwLock<KeyCache>,
    /// Tokens whose signature was already verified, with their claims and the key set they were
    /// verified against: a client sends the same token for an hour, and an RSA verification per
    /// request was most of a request's cost.
    verified: RwLock<HashMap<String, Verified>>,
    /// Serialises refetches so that a burst of requests with a new `kid` causes one fetch.
    refresh: tokio::sync::Mutex<()>,
}

/// A token whose signature verified, and the key set generation that verified it.
struct Verified {
    claims: Claims,
    generation: u64,
    /// The `kid` of its header, which passed [`checked_header`]: the same token has the same
    /// header, so a cached token skips decoding it again.
    kid: String,
}

/// How many verified tokens are remembered; past that the cache starts again (a burst of
/// distinct tokens costs one verification each, as without a cache).
const VERIFIED_CAPACITY: usize = 4096;

#[derive(Default)]
struct KeyCache {
    /// Counts successful key loads: a verification made with an earlier key set is not trusted
    /// once the keys were reloaded (a rotation that reused a kid cannot slip through).
    generation: u64,
    keys: HashMap<String, Arc<DecodingKey>>,
    /// Unix seconds (run clock) of the last successful fetch.
    loaded_at: Option<i64>,
    /// Unix seconds (run clock) of the last fetch attempt, successful or not.
    attempted_at: Option<i64>,
    /// Unix seconds (run clock) of the last fetch caused by an unknown `kid`.
    kid_refresh_at: Option<i64>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Refresh {
    /// Nothing loaded yet, or the daily refresh is due.
    Scheduled,
    /// The keys are fresh but do not contain the token's `kid`.
    UnknownKid,
}

#[derive(Debug, thiserror::Error)]
enum FetchError {
    #[error("request to {url} failed: {source}")]
    Http { url: String, source: reqwest::Error },
    #[error("{url} answered HTTP {status}")]
    Status { url: String, status: u16 },
    #[error("{url} returned an unusable document: {reason}")]
    Document { url: String, reason: String },
}

impl Validator {
    /// `http` must trust the authority's certificate and, in a landscape, be bound to the
    /// service's own source address (the harness hands over such a client).
    pub fn new(config: ValidatorConfig, http: reqwest::Client, clock: Clock) -> Self {
        Self {
            inner: Arc::new(Inner {
                config,
                http,
                clock,
                keys: RwLock::new(KeyCache::default()),
                verified: RwLock::new(HashMap::new()),
                refresh: tokio::sync::Mutex::new(()),
            }),
        }
    }

    /// A validator that trusts exactly the RSA signing keys of `jwks` (a JWKS document) and never
    /// fetches anything: the cache starts loaded and an unknown `kid` may never trigger a refetch
    /// (`min_refresh_interval` is overridden). For the coverage-guided fuzz target
    /// `fuzz/fuzz_targets/token.rs`, which must run every check of [`Validator::validate`] offline
    /// and deterministically; not for services, which must follow the authority's rotations.
    #[doc(hidden)]
    pub fn with_fixed_keys(mut config: ValidatorConfig, jwks: &Value, clock: Clock) -> Self {
        config.min_refresh_interval = Duration::MAX;
        let keys = jwks
            .get("keys")
            .and_then(Value::as_array)
            .map(|entries| entries.iter().filter_map(rsa_signing_key).collect())
            .unwrap_or_default();
        let now = clock.unix();
        let validator = Self::new(config, reqwest::Client::new(), clock);
        {
            let mut cache = validator
                .inner
                .keys
                .write()
                .unwrap_or_else(|p| p.into_inner());
            *cache = KeyCache {
                generation: 1,
                keys,
                loaded_at: Some(now),
                attempted_at: Some(now),
                kid_refresh_at: Some(now),
            };
        }
        validator
    }

    pub fn config(&self) -> &ValidatorConfig {
        &self.inner.config
    }

    /// Validates a bearer token (without the `Bearer ` prefix) and returns its claims.
    ///
    /// The signature of a token is verified once per key set: later requests with the same
    /// token skip the RSA verification, but its key must still be trusted (so a retired key is
    /// refused at once) and its lifetime, audience, issuer and tenant are checked every time on
    /// the run clock (so a clock shift expires it at once).
    pub async fn validate(&self, bearer_token: &str) -> Result<Claims, TokenError> {
        if bearer_token.len() > MAX_TOKEN_BYTES {
            return Err(TokenError::TooLarge(bearer_token.len()));
        }
        let cached = self.verified(bearer_token);
        let kid = match &cached {
            Some((_, kid, _)) => kid.clone(),
            None => checked_header(bearer_token)?,
        };
        let key = self.key_for(&kid).await?;
        let generation = self.read_cache().generation;
        if let Some((claims, _, verified_with)) = cached
            && verified_with == generation
        {
            self.check_claims(&claims)?;
            return Ok(claims);
        }
        let claims = verify_signature(bearer_token, &key)?;
        self.check_claims(&claims)?;
        self.remember(bearer_token, &claims, &kid, generation);
        Ok(claims)
    }

    /// The cached claims of `token`, its `kid` and the key set generation that verified it.
    fn verified(&self, token: &str) -> Option<(Claims, String, u64)> {
        let verified = self
            .inner
            .verified
            .read()
            .unwrap_or_else(|p| p.into_inner());
        verified
            .get(token)
            .map(|v| (v.claims.clone(), v.kid.clone(), v.generation))
    }

    fn remember(&self, token: &str, claims: &Claims, kid: &str, generation: u64) {
        let mut verified = self
            .inner
            .verified
            .write()
            .unwrap_or_else(|p| p.into_inner());
        if verified.len() >= VERIFIED_CAPACITY {
            verified.clear();
        }
        verified.insert(
            token.to_owned(),
            Verified {
                claims: claims.clone(),
                generation,
                kid: kid.to_owned(),
            },
        );
    }

    /// How many verified tokens are cached (for tests and metrics).
    pub fn verified_tokens(&self) -> usize {
        self.inner
            .verified
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .len()
    }

    async fn key_for(&self, kid: &str) -> Result<Arc<DecodingKey>, TokenError> {
        let now = self.inner.clock.unix();
        let reason = {
            let cache = self.read_cache();
            let fresh = cache
                .loaded_at
                .is_some_and(|at| now - at < secs(AUTOMATIC_REFRESH));
            match cache.keys.get(kid) {
                Some(key) if fresh => return Ok(key.clone()),
                _ if !fresh => Refresh::Scheduled,
                _ => Refresh::UnknownKid,
            }
        };
        // A failed refresh leaves the trusted keys in place; a successful one replaces them, so a
        // key the authority stopped publishing is refused from then on.
        self.refresh_if_allowed(reason).await;
        let cache = self.read_cache();
        match cache.keys.get(kid) {
            Some(key) => Ok(key.clone()),
            None if cache.loaded_at.is_none() => Err(TokenError::KeysUnavailable),
            None => Err(TokenError::SignatureKeyNotFound),
        }
    }

    fn read_cache(&self) -> std::sync::RwLockReadGuard<'_, KeyCache> {
        // A poisoned lock only means another request panicked mid-update; the map is still whole.
        self.inner.keys.read().unwrap_or_else(|p| p.into_inner())
    }

    /// Like `ConfigurationManager.RequestRefresh` in Microsoft.IdentityModel: the first refresh
    /// asked for by an unknown `kid` happens at once (so a rotation right after start-up is seen),
    /// later ones at most once per `min_refresh_interval`.
    async fn refresh_if_allowed(&self, reason: Refresh) {
        let _guard = self.inner.refresh.lock().await;
        let now = self.inner.clock.unix();
        {
            let cache = self.read_cache();
            let (last, gap) = match reason {
                Refresh::Scheduled => (cache.attempted_at, INITIAL_RETRY),
                Refresh::UnknownKid => {
                    (cache.kid_refresh_at, self.inner.config.min_refresh_interval)
                }
            };
            if last.is_some_and(|at| now - at < secs(gap)) {
                return;
            }
        }
        let fetched = self.fetch_keys().await;
        let mut cache = self.inner.keys.write().unwrap_or_else(|p| p.into_inner());
        cache.attempted_at = Some(now);
        if reason == Refresh::UnknownKid {
            cache.kid_refresh_at = Some(now);
        }
        match fetched {
            Ok(keys) => {
                tracing::info!(
                    metadata_url = %self.inner.config.metadata_url,
                    keys = keys.len(),
                    "signing keys loaded"
                );
                cache.keys = keys;
                cache.loaded_at = Some(now);
                cache.generation += 1;
            }
            Err(e) => tracing::warn!(error = %e, "could not refresh signing keys"),
        }
    }

    async fn fetch_keys(&self) -> Result<HashMap<String, Arc<DecodingKey>>, FetchError> {
        let metadata = self.get_json(&self.inner.config.metadata_url).await?;
        let jwks_uri = metadata
            .get("jwks_uri")
            .and_then(Value::as_str)
            .ok_or_else(|| FetchError::Document {
                url: self.inner.config.metadata_url.clone(),
                reason: "no jwks_uri".to_owned(),
            })?
            .to_owned();
        let jwks = self.get_json(&jwks_uri).await?;
        let entries =
            jwks.get("keys")
                .and_then(Value::as_array)
                .ok_or_else(|| FetchError::Document {
                    url: jwks_uri.clone(),
                    reason: "no keys array".to_owned(),
                })?;
        Ok(entries.iter().filter_map(rsa_signing_key).collect())
    }

    async fn get_json(&self, url: &str) -> Result<Value, FetchError> {
        let http = |source| FetchError::Http {
            url: url.to_owned(),
            source,
        };
        let response = self
            .inner
            .http
            .get(url)
            .timeout(FETCH_TIMEOUT)
            .send()
            .await
            .map_err(http)?;
        if !response.status().is_success() {
            return Err(FetchError::Status {
                url: url.to_owned(),
                status: response.status().as_u16(),
            });
        }
        response.json().await.map_err(http)
    }

    fn check_claims(&self, claims: &Claims) -> Result<(), TokenError> {
        let config = &self.inner.config;
        let issuer = claims.issuer();
        if !issuer.is_some_and(|iss| config.issuers.iter().any(|ok| ok == iss)) {
            return Err(TokenError::InvalidIssuer(issuer.map(str::to_owned)));
        }
        if !claims
            .str_items("aud")
            .any(|aud| config.audiences.iter().any(|ok| ok == aud))
        {
            return Err(TokenError::InvalidAudience(
                claims.audience().map(str::to_owned),
            ));
        }
        let now = self.inner.clock.unix();
        let skew = secs(config.clock_skew);
        let exp = match claims.get("exp") {
            Some(v) => v.as_i64().ok_or(TokenError::Malformed)?,
            None => return Err(TokenError::NoExpiration),
        };
        if now > exp.saturating_add(skew) {
            return Err(TokenError::Expired(exp));
        }
        if let Some(nbf) = claims.get("nbf") {
            let nbf = nbf.as_i64().ok_or(TokenError::Malformed)?;
            if now.saturating_add(skew) < nbf {
                return Err(TokenError::NotYetValid(nbf));
            }
        }
        if !claims
            .tid()
            .is_some_and(|tid| tid.eq_ignore_ascii_case(&config.tenant_id))
        {
            return Err(TokenError::WrongTenant);
        }
        if claims.looks_like_id_token() {
            return Err(TokenError::NotAnAccessToken);
        }
        Ok(())
    }
}

fn secs(d: Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX)
}

/// Checks the JOSE header without trusting anything else in the token; returns the `kid`.
fn checked_header(token: &str) -> Result<String, TokenError> {
    let mut parts = token.split('.');
    let (Some(header), Some(_), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(TokenError::Malformed);
    };
    let header: Map<String, Value> = URL_SAFE_NO_PAD
        .decode(header)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .ok_or(TokenError::Malformed)?;
    if header.get("alg").and_then(Value::as_str) != Some("RS256") {
        return Err(TokenError::UnsupportedAlgorithm);
    }
    // A critical extension we do not implement must not be ignored (RFC 7515 §4.1.11).
    if header.contains_key("crit") {
        return Err(TokenError::Malformed);
    }
    header
        .get("kid")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or(TokenError::SignatureKeyNotFound)
}

fn verify_signature(token: &str, key: &DecodingKey) -> Result<Claims, TokenError> {
    let mut validation = Validation::new(Algorithm::RS256);
    // Lifetime, audience and issuer are checked against the run clock and the configuration
    // afterwards; the library only verifies the signature here.
    validation.required_spec_claims.clear();
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.validate_aud = false;
    match jsonwebtoken::decode::<Map<String, Value>>(token, key, &validation) {
        Ok(data) => Ok(Claims::from_map(data.claims)),
        Err(e) => Err(match e.kind() {
            jsonwebtoken::errors::ErrorKind::InvalidSignature => TokenError::InvalidSignature,
            jsonwebtoken::errors::ErrorKind::InvalidAlgorithm => TokenError::UnsupportedAlgorithm,
            _ => TokenError::Malformed,
        }),
    }
}

/// An RSA signing key of a JWKS, keyed by `kid`. Keys for encryption or for another algorithm
/// are skipped; Entra's entries carry no `alg` at all
/// (`search-api/tests/data/jwks-v2-organizations.json`).
/// Keys are shared (`Arc`): every request asks for its token's key.
fn rsa_signing_key(entry: &Value) -> Option<(String, Arc<DecodingKey>)> {
    let str_field = |name| entry.get(name).and_then(Value::as_str);
    if str_field("kty") != Some("RSA") {
        return None;
    }
    if str_field("use").is_some_and(|u| u != "sig")
        || str_field("alg").is_some_and(|a| a != "RS256")
    {
        return None;
    }
    let kid = str_field("kid")?;
    let key = DecodingKey::from_rsa_components(str_field("n")?, str_field("e")?).ok()?;
    Some((kid.to_owned(), Arc::new(key)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::Json;
    use axum::extract::State;
    use axum::routing::get;
    use jsonwebtoken::{EncodingKey, Header, encode};
    use serde_json::json;
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};

    const TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
    const API_CLIENT_ID: &str = "6e3b2c1a-0d4f-4a57-9b8e-1f2a3c4d5e6f";
    const API_URI: &str = "api://contoso-cases";

    /// The testkit's signing authority: one RSA key with its Entra-shaped JWK.
    type SigningKey = ppvnet_testkit::TokenAuthority;

    fn signing_key(kid: &str) -> SigningKey {
        SigningKey::new(kid)
    }

    /// A discovery + JWKS server whose published keys a test can change; counts JWKS fetches.
    #[derive(Clone)]
    struct Authority {
        published: Arc<Mutex<Vec<Value>>>,
        jwks_fetches: Arc<AtomicUsize>,
        base: String,
    }

    async fn authority(keys: &[&SigningKey]) -> Authority {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let state = Authority {
            published: Arc::new(Mutex::new(keys.iter().map(|k| k.jwk.clone()).collect())),
            jwks_fetches: Arc::new(AtomicUsize::new(0)),
            base: base.clone(),
        };
        let router = axum::Router::new()
            .route(
                "/{tenant}/v2.0/.well-known/openid-configuration",
                get(|State(a): State<Authority>| async move {
                    Json(json!({
                        "issuer": format!("https://login.microsoftonline.com/{TENANT}/v2.0"),
                        "jwks_uri": format!("{}/{TENANT}/discovery/v2.0/keys", a.base),
                    }))
                }),
            )
            .route(
                "/{tenant}/discovery/v2.0/keys",
                get(|State(a): State<Authority>| async move {
                    a.jwks_fetches.fetch_add(1, Ordering::SeqCst);
                    Json(json!({"keys": *a.published.lock().unwrap()}))
                }),
            )
            .with_state(state.clone());
        tokio::spawn(async move { axum::serve(listener, router).await });
        state
    }

    fn config(authority: &Authority) -> ValidatorConfig {
        ValidatorConfig::new(
            format!(
                "{}/{TENANT}/v2.0/.well-known/openid-configuration",
                authority.base
            ),
            TENANT,
            vec![API_CLIENT_ID.to_owned(), API_URI.to_owned()],
            ValidatorConfig::entra_issuers(TENANT),
        )
    }

    fn validator(config: ValidatorConfig, clock: &Clock) -> Validator {
        Validator::new(config, reqwest::Client::new(), clock.clone())
    }

    /// A v2 delegated access token for the API as Entra shapes it.
    fn access_claims(clock: &Clock) -> Value {
        let now = clock.unix();
        json!({
            "aud": API_CLIENT_ID,
            "iss": format!("https://login.microsoftonline.com/{TENANT}/v2.0"),
            "iat": now, "nbf": now, "exp": now + 3600,
            "azp": "0c1d2e3f-aaaa-bbbb-cccc-444455556666", "azpacr": "1",
            "name": "Alice", "oid": "11111111-1111-1111-1111-111111111111",
            "preferred_username": "alice@contoso.com", "scp": "Cases.Read",
            "sub": "pairwise-sub", "tid": TENANT, "ver": "2.0",
            "groups": ["aaaaaaaa-0000-0000-0000-000000000001"],
        })
    }

    fn sign(key: &SigningKey, claims: &Value) -> String {
        key.sign(claims)
    }

    fn b64(v: &Value) -> String {
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap())
    }

    #[tokio::test]
    async fn accepts_a_v2_delegated_token_and_exposes_its_claims() {
        let key = signing_key("k1");
        let authority = authority(&[&key]).await;
        let clock = Clock::new();
        let v = validator(config(&authority), &clock);
        let claims = v
            .validate(&sign(&key, &access_claims(&clock)))
            .await
            .unwrap();
        assert_eq!(claims.oid(), Some("11111111-1111-1111-1111-111111111111"));
        assert_eq!(claims.tid(), Some(TENANT));
        assert_eq!(claims.scopes(), vec!["Cases.Read"]);
        assert_eq!(
            claims.groups(),
            vec!["aaaaaaaa-0000-0000-0000-000000000001"]
        );
        assert_eq!(
            claims.app_id(),
            Some("0c1d2e3f-aaaa-bbbb-cccc-444455556666")
        );
        assert_eq!(claims.username(), Some("alice@contoso.com"));
        assert!(!claims.is_app_only());
    }

    #[tokio::test]
    async fn accepts_a_v1_app_only_token_for_the_identifier_uri() {
        let key = signing_key("k1");
        let authority = authority(&[&key]).await;
        let clock = Clock::new();
        let now = clock.unix();
        let claims = json!({
            "aud": API_URI, "iss": format!("https://sts.windows.net/{TENANT}/"),
            "iat": now, "nbf": now, "exp": now + 3600, "appid": "client-app", "appidacr": "1",
            "oid": "sp-oid", "sub": "sp-oid", "tid": TENANT, "ver": "1.0",
            "roles": ["Cases.Read.All"], "idtyp": "app",
        });
        let v = validator(config(&authority), &clock);
        let claims = v.validate(&sign(&key, &claims)).await.unwrap();
        assert!(claims.is_app_only());
        assert_eq!(claims.roles(), vec!["Cases.Read.All"]);
        assert_eq!(claims.app_id(), Some("client-app"));
    }

    async fn refused(mutate: impl FnOnce(&mut Value), clock: &Clock) -> TokenError {
        let key = signing_key("k1");
        let authority = authority(&[&key]).await;
        let mut claims = access_claims(clock);
        mutate(&mut claims);
        validator(config(&authority), clock)
            .validate(&sign(&key, &claims))
            .await
            .unwrap_err()
    }

    #[tokio::test]
    async fn refuses_another_resource_with_asp_net_wording() {
        let e = refused(
            |c| c["aud"] = json!("https://graph.microsoft.com"),
            &Clock::new(),
        )
        .await;
        assert_eq!(
            e,
            TokenError::InvalidAudience(Some("https://graph.microsoft.com".into()))
        );
        assert_eq!(
            e.www_authenticate(),
            "Bearer error=\"invalid_token\", error_description=\"The audience 'https://graph.microsoft.com' is invalid\""
        );
    }

    #[tokio::test]
    async fn refuses_an_issuer_that_differs_only_by_a_trailing_slash() {
        let clock = Clock::new();
        let e = refused(
            |c| c["iss"] = json!(format!("https://login.microsoftonline.com/{TENANT}/v2.0/")),
            &clock,
        )
        .await;
        assert!(matches!(e, TokenError::InvalidIssuer(_)));
        let e = refused(|c| drop(c.as_object_mut().unwrap().remove("iss")), &clock).await;
        assert_eq!(e.description(), "The issuer '(null)' is invalid");
    }

    #[tokio::test]
    async fn refuses_a_token_of_another_tenant() {
        let e = refused(
            |c| c["tid"] = json!("00000000-0000-0000-0000-000000000bad"),
            &Clock::new(),
        )
        .await;
        assert_eq!(e, TokenError::WrongTenant);
    }

    #[tokio::test]
    async fn expiry_and_not_before_allow_five_minutes_of_skew_on_the_run_clock() {
        let clock = Clock::new();
        let now = clock.unix();
        let key = signing_key("k1");
        let authority = authority(&[&key]).await;
        let v = validator(config(&authority), &clock);
        let with = |exp: i64, nbf: i64| {
            let mut c = access_claims(&clock);
            c["exp"] = json!(exp);
            c["nbf"] = json!(nbf);
            sign(&key, &c)
        };
        assert!(v.validate(&with(now - 240, now - 3600)).await.is_ok());
        assert_eq!(
            v.validate(&with(now - 400, now - 3600)).await.unwrap_err(),
            TokenError::Expired(now - 400)
        );
        assert!(v.validate(&with(now + 3600, now + 240)).await.is_ok());
        assert_eq!(
            v.validate(&with(now + 3600, now + 400)).await.unwrap_err(),
            TokenError::NotYetValid(now + 400)
        );
        // The same valid token expires when the run clock moves past exp + skew.
        let token = with(now + 60, now);
        assert!(v.validate(&token).await.is_ok());
        clock.shift_secs(400);
        let e = v.validate(&token).await.unwrap_err();
        assert!(
            e.description().starts_with("The token expired at '"),
            "{}",
            e.description()
        );
    }

    #[tokio::test]
    async fn refuses_a_token_without_exp() {
        let e = refused(
            |c| drop(c.as_object_mut().unwrap().remove("exp")),
            &Clock::new(),
        )
        .await;
        assert_eq!(e, TokenError::NoExpiration);
    }

    #[tokio::test]
    async fn refuses_id_tokens() {
        let clock = Clock::new();
        // An ID token issued to the API's own client id: nonce, no azp/appid, no scp.
        let e = refused(
            |c| {
                let o = c.as_object_mut().unwrap();
                o.remove("azp");
                o.remove("scp");
                o.insert("nonce".into(), json!("n-0S6_WzA2Mj"));
            },
            &clock,
        )
        .await;
        assert_eq!(e, TokenError::NotAnAccessToken);
        // Even without a nonce, a token naming no client application is not an access token.
        let e = refused(|c| drop(c.as_object_mut().unwrap().remove("azp")), &clock).await;
        assert_eq!(e, TokenError::NotAnAccessToken);
    }

    #[tokio::test]
    async fn refuses_alg_none_and_hs256_signed_with_the_public_key() {
        let key = signing_key("k1");
        let authority = authority(&[&key]).await;
        let clock = Clock::new();
        let v = validator(config(&authority), &clock);
        let claims = access_claims(&clock);
        let unsigned = format!(
            "{}.{}.",
            b64(&json!({"alg": "none", "typ": "JWT", "kid": "k1"})),
            b64(&claims)
        );
        assert_eq!(
            v.validate(&unsigned).await.unwrap_err(),
            TokenError::UnsupportedAlgorithm
        );
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some("k1".into());
        let confused = encode(
            &header,
            &claims,
            &EncodingKey::from_secret(key.public_pem.as_bytes()),
        )
        .unwrap();
        assert_eq!(
            v.validate(&confused).await.unwrap_err(),
            TokenError::UnsupportedAlgorithm
        );
        // No key fetch was needed to refuse either.
        assert_eq!(authority.jwks_fetches.load(Ordering::SeqCst), 0);
    }

    #[tokio::test]
    async fn refuses_a_forged_signature_and_garbage() {
        let key = signing_key("k1");
        let forger = signing_key("k1");
        let authority = authority(&[&key]).await;
        let clock = Clock::new();
        let v = validator(config(&authority), &clock);
        let forged = sign(&forger, &access_claims(&clock));
        assert_eq!(
            v.validate(&forged).await.unwrap_err(),
            TokenError::InvalidSignature
        );
        // A valid signature over different claims: swap the payload.
        let good = sign(&key, &access_claims(&clock));
        let mut parts: Vec<&str> = good.split('.').collect();
        let mut tampered = access_claims(&clock);
        tampered["roles"] = json!(["Cases.Read.All"]);
        let payload = b64(&tampered);
        parts[1] = &payload;
        assert_eq!(
            v.validate(&parts.join(".")).await.unwrap_err(),
            TokenError::InvalidSignature
        );
        for garbage in ["", "abc", "a.b", "a.b.c.d", "!!!.e30.sig"] {
            assert_eq!(
                v.validate(garbage).await.unwrap_err(),
                TokenError::Malformed,
                "{garbage}"
            );
        }
    }

    #[tokio::test]
    async fn unknown_kid_refetches_at_most_once_per_interval() {
        let key = signing_key("k1");
        let authority = authority(&[&key]).await;
        let clock = Clock::new();
        let v = validator(config(&authority), &clock);
        assert!(
            v.validate(&sign(&key, &access_claims(&clock)))
                .await
                .is_ok()
        );
        assert_eq!(authority.jwks_fetches.load(Ordering::SeqCst), 1);
        let stranger = signing_key("k-unknown");
        for _ in 0..5 {
            let e = v
                .validate(&sign(&stranger, &access_claims(&clock)))
                .await
                .unwrap_err();
            assert_eq!(e, TokenError::SignatureKeyNotFound);
            assert_eq!(e.description(), "The signature key was not found");
        }
        // The first unknown kid refetched at once; the next four were rate-limited.
        assert_eq!(authority.jwks_fetches.load(Ordering::SeqCst), 2);
        // (Margins of seconds on both sides of the 300 s interval: the run clock also moves with
        // real time, which a loaded machine stretches.)
        clock.shift_secs(290);
        assert!(
            v.validate(&sign(&stranger, &access_claims(&clock)))
                .await
                .is_err()
        );
        assert_eq!(authority.jwks_fetches.load(Ordering::SeqCst), 2);
        clock.shift_secs(15);
        assert!(
            v.validate(&sign(&stranger, &access_claims(&clock)))
                .await
                .is_err()
        );
        assert_eq!(authority.jwks_fetches.load(Ordering::SeqCst), 3);
        // Known kids never wait for, nor cause, a refetch.
        assert!(
            v.validate(&sign(&key, &access_claims(&clock)))
                .await
                .is_ok()
        );
        assert_eq!(authority.jwks_fetches.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn a_rotated_key_is_picked_up_and_the_old_one_dropped_when_unpublished() {
        let old = signing_key("old");
        let new = signing_key("new");
        let newer = signing_key("newer");
        let authority = authority(&[&old]).await;
        let clock = Clock::new();
        let v = validator(config(&authority), &clock);
        assert!(
            v.validate(&sign(&old, &access_claims(&clock)))
                .await
                .is_ok()
        );
        // Rotation right after start-up: the first unknown kid is fetched without waiting.
        *authority.published.lock().unwrap() = vec![old.jwk.clone(), new.jwk.clone()];
        assert!(
            v.validate(&sign(&new, &access_claims(&clock)))
                .await
                .is_ok()
        );
        assert!(
            v.validate(&sign(&old, &access_claims(&clock)))
                .await
                .is_ok()
        );
        // The next rotation, past the rate limit, also retires the old key.
        *authority.published.lock().unwrap() = vec![newer.jwk.clone()];
        clock.shift_secs(301);
        assert!(
            v.validate(&sign(&newer, &access_claims(&clock)))
                .await
                .is_ok()
        );
        assert_eq!(
            v.validate(&sign(&old, &access_claims(&clock)))
                .await
                .unwrap_err(),
            TokenError::SignatureKeyNotFound
        );
    }

    /// A token verified once is not verified again, but the clock and the key set still apply
    /// to it at once: expired by a clock shift, refused when its key is retired.
    #[tokio::test]
    async fn a_verified_token_is_cached_but_expiry_and_key_retirement_apply_at_once() {
        let old = signing_key("old");
        let new = signing_key("new");
        let authority = authority(&[&old]).await;
        let clock = Clock::new();
        let v = validator(config(&authority), &clock);
        let token = sign(&old, &access_claims(&clock));
        assert!(v.validate(&token).await.is_ok());
        assert_eq!(v.verified_tokens(), 1);
        assert!(v.validate(&token).await.is_ok());
        assert_eq!(
            v.verified_tokens(),
            1,
            "the second request reused the verification"
        );
        // A token that differs from the cached one in its signature is verified, and refused.
        let forged = format!("{}x", token);
        assert!(v.validate(&forged).await.is_err());
        // The clock moves past exp + skew: the cached token expires with it.
        clock.shift_secs(2 * 3600);
        assert!(matches!(
            v.validate(&token).await,
            Err(TokenError::Expired(_))
        ));
        clock.reset();
        assert!(v.validate(&token).await.is_ok());
        // The authority retires the key (past the refresh rate limit): refused although cached.
        *authority.published.lock().unwrap() = vec![new.jwk.clone()];
        clock.shift_secs(301);
        assert!(
            v.validate(&sign(&new, &access_claims(&clock)))
                .await
                .is_ok()
        );
        assert_eq!(
            v.validate(&token).await.unwrap_err(),
            TokenError::SignatureKeyNotFound
        );
    }

    #[tokio::test]
    async fn keys_are_refreshed_daily_even_when_every_kid_is_known() {
        let key = signing_key("k1");
        let authority = authority(&[&key]).await;
        let clock = Clock::new();
        let v = validator(config(&authority), &clock);
        assert!(
            v.validate(&sign(&key, &access_claims(&clock)))
                .await
                .is_ok()
        );
        assert!(
            v.validate(&sign(&key, &access_claims(&clock)))
                .await
                .is_ok()
        );
        assert_eq!(authority.jwks_fetches.load(Ordering::SeqCst), 1);
        // A day later the key is no longer published: the daily refresh notices.
        authority.published.lock().unwrap().clear();
        clock.shift_secs(24 * 3600 + 1);
        assert_eq!(
            v.validate(&sign(&key, &access_claims(&clock)))
                .await
                .unwrap_err(),
            TokenError::SignatureKeyNotFound
        );
        assert_eq!(authority.jwks_fetches.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn fixed_keys_validate_offline_and_never_fetch_for_an_unknown_kid() {
        let key = signing_key("k1");
        let stranger = signing_key("k2");
        // The authority counts fetches: the fixed-key validator must never call it, not even
        // for the unknown `kid` that makes a normal validator refetch at once.
        let authority = authority(&[&key, &stranger]).await;
        let clock = Clock::new();
        let v = Validator::with_fixed_keys(
            config(&authority),
            &json!({"keys": [key.jwk, {"kty": "EC", "kid": "ec"}]}),
            clock.clone(),
        );
        let claims = v
            .validate(&sign(&key, &access_claims(&clock)))
            .await
            .unwrap();
        assert_eq!(claims.tid(), Some(TENANT));
        assert_eq!(
            v.validate(&sign(&stranger, &access_claims(&clock))).await,
            Err(TokenError::SignatureKeyNotFound)
        );
        assert_eq!(authority.jwks_fetches.load(Ordering::SeqCst), 0);
    }

    #[tokio::test]
    async fn an_unreachable_authority_is_reported_without_internals() {
        let clock = Clock::new();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let dead = listener.local_addr().unwrap();
        drop(listener);
        let cfg = ValidatorConfig::new(
            format!("http://{dead}/{TENANT}/v2.0/.well-known/openid-configuration"),
            TENANT,
            vec![API_CLIENT_ID.to_owned()],
            ValidatorConfig::entra_issuers(TENANT),
        );
        let key = signing_key("k1");
        let e = validator(cfg, &clock)
            .validate(&sign(&key, &access_claims(&clock)))
            .await
            .unwrap_err();
        assert_eq!(e, TokenError::KeysUnavailable);
        assert!(!e.www_authenticate().contains("127.0.0.1"));
    }

    #[test]
    fn descriptions_cannot_break_the_header() {
        let e = TokenError::InvalidAudience(Some("x\", error=\"y\r\nInjected: 1\\é".into()));
        assert_eq!(
            e.description(),
            "The audience 'x, error=yInjected: 1' is invalid"
        );
        assert_eq!(invariant_time(1_700_000_000), "11/14/2023 22:13:20");
    }

    #[test]
    fn bearer_scheme_is_case_insensitive() {
        assert_eq!(bearer_token("Bearer abc"), Some("abc"));
        assert_eq!(bearer_token("bearer  abc "), Some("abc"));
        assert_eq!(bearer_token("Basic abc"), None);
        assert_eq!(bearer_token("Bearer "), None);
        assert_eq!(bearer_token("Bearer"), None);
    }

    #[test]
    fn jwks_entries_for_other_uses_or_algorithms_are_skipped() {
        let key = signing_key("k1");
        let mut enc = key.jwk.clone();
        enc["use"] = json!("enc");
        let mut ps = key.jwk.clone();
        ps["alg"] = json!("PS256");
        let mut rs = key.jwk.clone();
        rs["alg"] = json!("RS256");
        assert!(rsa_signing_key(&enc).is_none());
        assert!(rsa_signing_key(&ps).is_none());
        assert!(rsa_signing_key(&rs).is_some());
        assert!(rsa_signing_key(&json!({"kty": "EC", "kid": "e"})).is_none());
    }
}
