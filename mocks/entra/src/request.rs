//! What every endpoint reads from a request: which tenant the path names, the base URL the
//! client used (for URLs in replies), the client's correlation id, and form bodies.

use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use time::OffsetDateTime;

use crate::directory::Directory;
use crate::error::{EntraError, ErrorEnvelope};
use crate::state::Entra;

/// The `{tenant}` path segment, resolved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum TenantPath {
    /// The tenant id or its domain.
    Tenant,
    /// `common` or `organizations`: the document shows the alias and `{tenantid}`.
    Alias(String),
}

impl TenantPath {
    pub fn resolve(dir: &Directory, segment: &str) -> Option<Self> {
        if segment.eq_ignore_ascii_case("common") || segment.eq_ignore_ascii_case("organizations") {
            return Some(Self::Alias(segment.to_ascii_lowercase()));
        }
        (segment.eq_ignore_ascii_case(&dir.tenant_id) || segment.eq_ignore_ascii_case(&dir.domain))
            .then_some(Self::Tenant)
    }

    /// The tenant segment replies use: an alias as is, a domain resolved to the GUID
    /// (as in Entra's v1 discovery document).
    pub fn canonical<'a>(&'a self, dir: &'a Directory) -> &'a str {
        match self {
            Self::Tenant => &dir.tenant_id,
            Self::Alias(a) => a,
        }
    }

    /// The tenant id issuers name: the GUID, or Entra's `{tenantid}` placeholder on an alias.
    pub fn issuer_tenant<'a>(&self, dir: &'a Directory) -> &'a str {
        match self {
            Self::Tenant => &dir.tenant_id,
            Self::Alias(_) => "{tenantid}",
        }
    }

    pub fn require(dir: &Directory, segment: &str) -> Result<Self, EntraError> {
        Self::resolve(dir, segment).ok_or_else(|| EntraError::TenantNotFound {
            tenant: segment.to_string(),
        })
    }
}

/// The origin the client reached the mock at: the configured scheme with the request's
/// `Host` (or HTTP/2 `:authority`), falling back to the configured authority host. Listeners
/// on several addresses (or a port-443 twin) thus each answer with their own address.
pub(crate) fn request_origin(entra: &Entra, headers: &HeaderMap, uri: &Uri) -> String {
    let configured = entra.authority_host();
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_string)
        .or_else(|| uri.authority().map(|a| a.to_string()));
    match host {
        Some(h) if !h.is_empty() && !h.contains(['/', '@', ' ']) => {
            format!("{}://{h}", configured.scheme())
        }
        _ => configured.as_str().trim_end_matches('/').to_string(),
    }
}

/// The host names a client may have used for this mock, for matching client assertion `aud`.
pub(crate) fn known_hosts(entra: &Entra, origin: &str) -> Vec<String> {
    let mut hosts = vec![
        "login.microsoftonline.com".to_string(),
        "login.windows.net".to_string(),
    ];
    for url in [origin, entra.authority_host().as_str()] {
        if let Ok(u) = url::Url::parse(url)
            && let Some(h) = u.host_str()
        {
            hosts.push(match u.port() {
                Some(p) => format!("{h}:{p}"),
                None => h.to_string(),
            });
        }
    }
    hosts
}

pub(crate) fn correlation_id(headers: &HeaderMap) -> Option<&str> {
    headers
        .get("client-request-id")
        .and_then(|v| v.to_str().ok())
}

/// `error` rendered at the mock's current time, echoing the request's correlation id.
pub(crate) fn error_envelope(
    entra: &Entra,
    headers: &HeaderMap,
    error: &EntraError,
) -> ErrorEnvelope {
    let now =
        OffsetDateTime::from_unix_timestamp(entra.now()).unwrap_or(OffsetDateTime::UNIX_EPOCH);
    error.envelope(now, correlation_id(headers))
}

/// A JSON reply with Entra's content type and the given caching policy.
pub(crate) fn json_reply(
    status: StatusCode,
    body: &Value,
    cache_control: &'static str,
) -> Response {
    let mut response = (status, body.to_string()).into_response();
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(cache_control),
    );
    response
}

/// The parameters of an `application/x-www-form-urlencoded` body. Entra ignores other bodies
/// (a JSON body reads as "no parameters", so the reply is AADSTS900144 for `grant_type`).
pub(crate) struct Form {
    pairs: Vec<(String, String)>,
    /// The first name given more than once. Entra refuses such requests (AADSTS9000411) rather
    /// than letting one copy win: a front end and the service reading different copies is how
    /// a parameter gets smuggled.
    duplicated: Option<String>,
}

impl Form {
    pub fn parse(headers: &HeaderMap, body: &[u8]) -> Self {
        let is_form = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| {
                ct.trim_start()
                    .to_ascii_lowercase()
                    .starts_with("application/x-www-form-urlencoded")
            });
        if !is_form {
            return Self::from_pairs(Vec::new());
        }
        Self::from_pairs(url::form_urlencoded::parse(body).into_owned().collect())
    }

    pub fn from_pairs(pairs: Vec<(String, String)>) -> Self {
        let mut seen = std::collections::HashSet::new();
        let duplicated = pairs
            .iter()
            .find(|(k, _)| !seen.insert(k.as_str()))
            .map(|(k, _)| k.clone());
        Self { pairs, duplicated }
    }

    /// Parameters of a query string.
    pub fn from_query(query: Option<&str>) -> Self {
        Self::from_pairs(
            url::form_urlencoded::parse(query.unwrap_or_default().as_bytes())
                .into_owned()
                .collect(),
        )
    }

    /// Refuses a request that names a parameter twice.
    pub fn check_unique(&self) -> Result<(), EntraError> {
        match &self.duplicated {
            Some(name) => Err(EntraError::DuplicateParameter { name: name.clone() }),
            None => Ok(()),
        }
    }

    /// The first non-empty value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, v)| k == name && !v.is_empty())
            .map(|(_, v)| v.as_str())
    }

    pub fn require(&self, name: &str) -> Result<&str, EntraError> {
        self.get(name).ok_or_else(|| EntraError::MissingParameter {
            name: name.to_string(),
        })
    }

    pub fn pairs(&self) -> &[(String, String)] {
        &self.pairs
    }
}

/// The `{tenant}` segment of a path (the first one), percent-decoded; bytes that are not UTF-8
/// become U+FFFD. Unlike `Path<String>` it never refuses a request, so a malformed tenant gets
/// Entra's own "tenant not found" answer (AADSTS90002, in its envelope or on its error page)
/// instead of a plain-text 400 (found by the `entra_token` fuzz target).
pub(crate) struct Tenant(pub String);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Tenant {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _state: &S,
    ) -> Result<Self, Self::Rejection> {
        let segment = parts
            .uri
            .path()
            .trim_start_matches('/')
            .split('/')
            .next()
            .unwrap_or_default();
        Ok(Tenant(percent_decode_lossy(segment)))
    }
}

/// `%XX` escapes decoded (a malformed escape is kept as written), then UTF-8 read lossily.
fn percent_decode_lossy(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (bytes[i], bytes.get(i + 1), bytes.get(i + 2)) {
            (b'%', Some(&h), Some(&l)) if hex(h).is_some() && hex(l).is_some() => {
                out.push((hex(h).unwrap_or(0) * 16 + hex(l).unwrap_or(0)) as u8);
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tenant_tests {
    use super::percent_decode_lossy;

    #[test]
    fn tenant_segments_decode_lossily_and_keep_malformed_escapes() {
        assert_eq!(
            percent_decode_lossy("contoso.onmicrosoft.com"),
            "contoso.onmicrosoft.com"
        );
        assert_eq!(percent_decode_lossy("a%20b"), "a b");
        assert_eq!(percent_decode_lossy("bad%d3x"), "bad\u{fffd}x");
        assert_eq!(percent_decode_lossy("50%"), "50%");
        assert_eq!(percent_decode_lossy("%zz"), "%zz");
    }
}
