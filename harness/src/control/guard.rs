//! Who may use the control API: a client of this machine's user that holds the run's token.
//!
//! The control API listens on 127.0.0.1, but that alone does not keep other parties out: a web
//! page open in the developer's browser can send requests to `http://127.0.0.1:PORT`
//! (cross-site requests), and a page whose host name is re-pointed at 127.0.0.1 (DNS rebinding)
//! can even read the answers. So every request must
//!
//! - name the control API itself in `Host` (`127.0.0.1:PORT` or `localhost:PORT`): a rebound
//!   page sends its own host name there (421 otherwise);
//! - carry no `Origin` other than the control API's own: browsers add one to every cross-origin
//!   request they send on a page's behalf (403 otherwise);
//! - carry `Authorization: Bearer <token>` with the run's token, which only readers of the
//!   owner-only ready file know (401 with `WWW-Authenticate: Bearer` otherwise), or the session
//!   cookie of a browser that logged in to the dashboard ([`super::session`]); a request with
//!   the cookie that changes something (any method but `GET`/`HEAD`) must also carry the
//!   session's CSRF token in `X-CSRF-Token` (403 otherwise).
//!
//! `GET /healthz` is one route without the token: `ppvnet up` polls it before the ready file
//! (and so the token) exists for anyone else, and it tells nothing but "ok". `GET
//! /dashboard/login` is the other: it carries a one-time ticket instead, which its handler
//! checks. The `Host` and `Origin` checks still apply to both.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use subtle::ConstantTimeEq;

use super::session::{Session, Sessions};

/// The path `ppvnet up` polls for health before it writes the ready file.
pub const HEALTH_PATH: &str = "/healthz";

/// The dashboard's login path, which takes a one-time ticket instead of the token.
pub const LOGIN_PATH: &str = "/dashboard/login";

/// The header a cookie-authenticated request that changes something carries its CSRF token in.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// The realm named in `WWW-Authenticate`.
const REALM: &str = "ppvnet control API";

/// A fresh control token: two version 4 UUIDs, 244 random bits read from the operating
/// system's generator (uuid's v4 draws from `getrandom`), as 64 hexadecimal digits.
pub fn new_token() -> String {
    format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}

/// The control API's credential and the names under which it answers.
#[derive(Clone)]
pub struct Guard {
    token: Arc<str>,
    /// `Host` values that name the control API (lower case).
    hosts: Vec<String>,
    /// The control API's own origins, the only `Origin` values admitted (lower case).
    origins: Vec<String>,
    /// Browser sessions of the dashboard.
    sessions: Arc<Sessions>,
    /// The session cookie's name; it names the port, because browsers share cookies between
    /// the ports of a host and two runs must not overwrite each other's.
    cookie: String,
}

impl std::fmt::Debug for Guard {
    // The token stays out of logs and panic messages.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Guard")
            .field("hosts", &self.hosts)
            .finish_non_exhaustive()
    }
}

/// Why a request was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// `Host` (or the request target's authority) is missing, repeated, or names another host.
    Host(String),
    /// An `Origin` other than the control API's own.
    Origin(String),
    /// No `Authorization: Bearer` credential.
    NoToken,
    /// A credential that is not the run's token, or more than one `Authorization` header.
    WrongToken,
    /// A session cookie of no current session.
    WrongSession,
    /// A cookie-authenticated request that changes something without the session's CSRF token.
    Csrf,
    /// A dashboard login ticket that is unknown or was used already.
    UsedTicket,
}

impl Guard {
    /// The guard of a control API listening on `addr` (a 127.0.0.1 address) with `token`.
    pub fn new(addr: SocketAddr, token: &str) -> Self {
        Self::published(addr, None, token)
    }

    /// The guard of a control API listening on `addr` and also reached at `advertised`: the
    /// address a container's published port has on the machine (`ppvnet up --advertise-control`),
    /// which clients there name in `Host`. A listener on an unspecified address (`0.0.0.0` in a
    /// container) answers as `127.0.0.1` on its own port too (the compose healthcheck).
    pub fn published(addr: SocketAddr, advertised: Option<SocketAddr>, token: &str) -> Self {
        let mut named = vec![addr];
        if addr.ip().is_unspecified() {
            named[0] = SocketAddr::from(([127, 0, 0, 1], addr.port()));
        }
        named.extend(advertised.filter(|a| !named.contains(a)));
        let mut hosts = Vec::new();
        for a in &named {
            hosts.push(a.to_string());
            if a.ip().is_loopback() {
                hosts.push(format!("localhost:{}", a.port()));
            }
        }
        let origins = hosts.iter().map(|h| format!("http://{h}")).collect();
        Self {
            token: token.into(),
            hosts,
            origins,
            sessions: Arc::default(),
            // The port the browser sees: the published one when there is one.
            cookie: format!("ppvnet_session_{}", advertised.unwrap_or(addr).port()),
        }
    }

    /// The browser sessions this guard admits.
    pub fn sessions(&self) -> Arc<Sessions> {
        self.sessions.clone()
    }

    /// The name of the session cookie.
    pub fn cookie_name(&self) -> &str {
        &self.cookie
    }

    /// The session whose cookie the request carries, if any.
    pub fn session(&self, headers: &HeaderMap) -> Option<Session> {
        self.cookie_value(headers)
            .and_then(|id| self.sessions.find(&id))
    }

    /// The value of the session cookie among the request's cookies (`Cookie: a=1; b=2`, one
    /// header or several).
    fn cookie_value(&self, headers: &HeaderMap) -> Option<String> {
        ppvnet_common::web::cookie(headers, &self.cookie).map(str::to_string)
    }

    /// Decides one request from its method, target and headers.
    pub fn admit(&self, method: &Method, uri: &Uri, headers: &HeaderMap) -> Result<(), Refusal> {
        self.check_host(uri, headers)?;
        self.check_origin(headers)?;
        if method == Method::GET && [HEALTH_PATH, LOGIN_PATH].contains(&uri.path()) {
            return Ok(());
        }
        if headers.contains_key(header::AUTHORIZATION) {
            return self.check_token(headers);
        }
        match self.cookie_value(headers) {
            Some(id) => self.check_session(method, &id, headers),
            None => Err(Refusal::NoToken),
        }
    }

    /// A browser's request: its session must exist, and a request that changes something must
    /// carry the session's CSRF token (a cross-site form or script cannot read it).
    fn check_session(&self, method: &Method, id: &str, headers: &HeaderMap) -> Result<(), Refusal> {
        let session = self.sessions.find(id).ok_or(Refusal::WrongSession)?;
        if method == Method::GET || method == Method::HEAD {
            return Ok(());
        }
        let mut sent = headers.get_all(CSRF_HEADER).iter();
        match (sent.next(), sent.next()) {
            (Some(token), None) if bool::from(token.as_bytes().ct_eq(session.csrf.as_bytes())) => {
                Ok(())
            }
            _ => Err(Refusal::Csrf),
        }
    }

    fn check_host(&self, uri: &Uri, headers: &HeaderMap) -> Result<(), Refusal> {
        // HTTP/1.1 names the host in `Host`; HTTP/2 and absolute-form targets in the URI's
        // authority. Every name the request carries must be the control API's, and there must
        // be one (HTTP/1.0 clients may send none: they are refused too).
        let mut names: Vec<&[u8]> = headers
            .get_all(header::HOST)
            .iter()
            .map(HeaderValue::as_bytes)
            .collect();
        if headers.get_all(header::HOST).iter().count() > 1 {
            return Err(Refusal::Host("more than one Host header".into()));
        }
        if let Some(authority) = uri.authority() {
            names.push(authority.as_str().as_bytes());
        }
        if names.is_empty() {
            return Err(Refusal::Host("no Host header".into()));
        }
        match names.iter().find(|n| !self.is_own(&self.hosts, n)) {
            Some(other) => Err(Refusal::Host(format!(
                "Host {:?} is not the control API ({})",
                String::from_utf8_lossy(other),
                self.hosts[0]
            ))),
            None => Ok(()),
        }
    }

    fn check_origin(&self, headers: &HeaderMap) -> Result<(), Refusal> {
        // `Origin: null` (sandboxed frames, local files) is foreign too.
        match headers
            .get_all(header::ORIGIN)
            .iter()
            .find(|o| !self.is_own(&self.origins, o.as_bytes()))
        {
            Some(other) => Err(Refusal::Origin(format!(
                "requests from {:?} are not accepted; the control API is for local tools, not web pages",
                String::from_utf8_lossy(other.as_bytes())
            ))),
            None => Ok(()),
        }
    }

    fn check_token(&self, headers: &HeaderMap) -> Result<(), Refusal> {
        let mut values = headers.get_all(header::AUTHORIZATION).iter();
        let (Some(value), None) = (values.next(), values.next()) else {
            return Err(if headers.contains_key(header::AUTHORIZATION) {
                Refusal::WrongToken
            } else {
                Refusal::NoToken
            });
        };
        // `Bearer <token>`: the scheme is case-insensitive (RFC 9110 section 11.1).
        let bytes = value.as_bytes();
        let Some(space) = bytes.iter().position(|b| *b == b' ') else {
            return Err(Refusal::NoToken);
        };
        let (scheme, credential) = bytes.split_at(space);
        if !scheme.eq_ignore_ascii_case(b"bearer") {
            return Err(Refusal::NoToken);
        }
        let credential = credential.trim_ascii();
        // Constant time, so response timing does not reveal how much of a guess was right.
        if bool::from(credential.ct_eq(self.token.as_bytes())) {
            Ok(())
        } else {
            Err(Refusal::WrongToken)
        }
    }

    /// Whether `value` is one of `own` (host names and schemes are case-insensitive).
    fn is_own(&self, own: &[String], value: &[u8]) -> bool {
        own.iter().any(|o| o.as_bytes().eq_ignore_ascii_case(value))
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let unauthorized = |message: &str, error: Option<&str>| {
            // RFC 6750 section 3: no error code when no credential was sent at all.
            let challenge = match error {
                Some(e) => format!("Bearer realm=\"{REALM}\", error=\"{e}\""),
                None => format!("Bearer realm=\"{REALM}\""),
            };
            (
                StatusCode::UNAUTHORIZED,
                [(header::WWW_AUTHENTICATE, challenge)],
                error_body("Unauthorized", message),
            )
                .into_response()
        };
        match self {
            // 421 Misdirected Request: this server does not answer for that name.
            Refusal::Host(why) => (
                StatusCode::MISDIRECTED_REQUEST,
                error_body("MisdirectedRequest", &why),
            )
                .into_response(),
            Refusal::Origin(why) => {
                (StatusCode::FORBIDDEN, error_body("ForeignOrigin", &why)).into_response()
            }
            Refusal::NoToken => unauthorized(
                "send Authorization: Bearer <control_token> (the ready file's control_token)",
                None,
            ),
            Refusal::WrongToken => unauthorized(
                "the bearer token is not this run's control_token",
                Some("invalid_token"),
            ),
            Refusal::WrongSession => unauthorized(
                "the session cookie is not a current dashboard session; open a new login URL",
                Some("invalid_token"),
            ),
            Refusal::UsedTicket => unauthorized(
                "this dashboard login URL was used already or is not this run's; ask for a new one (POST /dashboard/login-url with the bearer token)",
                Some("invalid_token"),
            ),
            Refusal::Csrf => (
                StatusCode::FORBIDDEN,
                error_body(
                    "CsrfTokenMismatch",
                    "a request with the session cookie that changes something must carry the session's token in X-CSRF-Token",
                ),
            )
                .into_response(),
        }
    }
}

/// The control API's error shape, `{"error": {"code", "message"}}` (what `ppvnet pp` prints).
fn error_body(code: &str, message: &str) -> Json<serde_json::Value> {
    Json(serde_json::json!({"error": {"code": code, "message": message}}))
}

/// Puts `guard` in front of every route of `router`, nested routers and the fallback included
/// (call it after the last `nest`).
pub fn layer(router: axum::Router, guard: Guard) -> axum::Router {
    router.layer(axum::middleware::from_fn_with_state(Arc::new(guard), check))
}

async fn check(State(guard): State<Arc<Guard>>, request: Request, next: Next) -> Response {
    match guard.admit(request.method(), request.uri(), request.headers()) {
        Ok(()) => next.run(request).await,
        Err(refusal) => {
            tracing::warn!(
                method = %request.method(),
                path = request.uri().path(),
                ?refusal,
                "control API request refused"
            );
            refusal.into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    fn guard() -> Guard {
        Guard::new("127.0.0.1:7411".parse().unwrap(), TOKEN)
    }

    fn headers(pairs: &[(header::HeaderName, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(k.clone(), HeaderValue::from_str(v).unwrap());
        }
        h
    }

    fn admit(
        method: Method,
        path: &str,
        pairs: &[(header::HeaderName, &str)],
    ) -> Result<(), Refusal> {
        guard().admit(&method, &path.parse().unwrap(), &headers(pairs))
    }

    #[test]
    fn tokens_are_fresh_and_long() {
        let (a, b) = (new_token(), new_token());
        assert_eq!(a.len(), 64);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }

    #[test]
    fn the_token_is_needed_except_for_health() {
        let host = (header::HOST, "127.0.0.1:7411");
        let bearer = format!("Bearer {TOKEN}");
        let ok = (header::AUTHORIZATION, bearer.as_str());
        assert_eq!(
            admit(Method::GET, "/healthz", std::slice::from_ref(&host)),
            Ok(())
        );
        assert_eq!(
            admit(Method::POST, "/healthz", std::slice::from_ref(&host)),
            Err(Refusal::NoToken)
        );
        assert_eq!(
            admit(Method::GET, "/clock", std::slice::from_ref(&host)),
            Err(Refusal::NoToken)
        );
        assert_eq!(
            admit(Method::GET, "/clock", &[host.clone(), ok.clone()]),
            Ok(())
        );
        let lower = format!("bearer  {TOKEN} ");
        let lower = (header::AUTHORIZATION, lower.as_str());
        assert_eq!(admit(Method::GET, "/clock", &[host.clone(), lower]), Ok(()));
        for wrong in [
            format!("Bearer {}", &TOKEN[1..]),
            format!("Bearer {TOKEN}0"),
            format!("Bearer {}", TOKEN.replace('0', "1")),
        ] {
            let wrong = (header::AUTHORIZATION, wrong.as_str());
            assert_eq!(
                admit(Method::GET, "/clock", &[host.clone(), wrong]),
                Err(Refusal::WrongToken)
            );
        }
        let basic = format!("Basic {TOKEN}");
        let basic = (header::AUTHORIZATION, basic.as_str());
        assert_eq!(
            admit(Method::GET, "/clock", &[host.clone(), basic]),
            Err(Refusal::NoToken)
        );
        let twice = [host, ok.clone(), ok];
        assert_eq!(
            admit(Method::GET, "/clock", &twice),
            Err(Refusal::WrongToken)
        );
    }

    #[test]
    fn only_the_control_address_is_a_host_and_only_its_origin_an_origin() {
        let bearer = format!("Bearer {TOKEN}");
        let ok = (header::AUTHORIZATION, bearer.as_str());
        for host in ["127.0.0.1:7411", "localhost:7411", "LocalHost:7411"] {
            let with = [(header::HOST, host), ok.clone()];
            assert_eq!(admit(Method::GET, "/clock", &with), Ok(()), "{host}");
        }
        for host in [
            "evil.example:7411",
            "127.0.0.1:7412",
            "127.0.0.1",
            "localhost",
        ] {
            let with = [(header::HOST, host), ok.clone()];
            let refused = admit(Method::GET, "/healthz", &with);
            assert!(
                matches!(refused, Err(Refusal::Host(_))),
                "{host}: {refused:?}"
            );
        }
        assert!(matches!(
            admit(Method::GET, "/healthz", &[]),
            Err(Refusal::Host(_))
        ));
        let two = [
            (header::HOST, "127.0.0.1:7411"),
            (header::HOST, "evil.example"),
        ];
        assert!(matches!(
            admit(Method::GET, "/healthz", &two),
            Err(Refusal::Host(_))
        ));
        // An absolute-form target names the host too.
        let absolute = admit(
            Method::GET,
            "http://evil.example:7411/healthz",
            &[(header::HOST, "127.0.0.1:7411")],
        );
        assert!(matches!(absolute, Err(Refusal::Host(_))), "{absolute:?}");

        let host = (header::HOST, "127.0.0.1:7411");
        for origin in ["http://127.0.0.1:7411", "http://localhost:7411"] {
            let with = [host.clone(), ok.clone(), (header::ORIGIN, origin)];
            assert_eq!(
                admit(Method::POST, "/clock/reset", &with),
                Ok(()),
                "{origin}"
            );
        }
        for origin in [
            "https://evil.example",
            "null",
            "http://127.0.0.1:7412",
            "http://127.0.0.1",
        ] {
            let with = [host.clone(), ok.clone(), (header::ORIGIN, origin)];
            let refused = admit(Method::POST, "/clock/reset", &with);
            assert!(
                matches!(refused, Err(Refusal::Origin(_))),
                "{origin}: {refused:?}"
            );
        }
    }

    #[test]
    fn a_session_cookie_admits_reads_and_with_its_csrf_token_changes() {
        let g = guard();
        let session = g
            .sessions()
            .redeem(&g.sessions().issue_ticket())
            .expect("a fresh ticket");
        let cookie = format!("theme=dark; ppvnet_session_7411={}", session.id);
        let host = (header::HOST, "127.0.0.1:7411");
        let with_cookie = [host.clone(), (header::COOKIE, cookie.as_str())];
        let admit = |method: Method, path: &str, pairs: &[(header::HeaderName, &str)]| {
            g.admit(&method, &path.parse().unwrap(), &headers(pairs))
        };
        assert_eq!(admit(Method::GET, "/dashboard", &with_cookie), Ok(()));
        assert_eq!(
            admit(Method::POST, "/clock/reset", &with_cookie),
            Err(Refusal::Csrf)
        );
        let csrf = header::HeaderName::from_static(CSRF_HEADER);
        let mut with_csrf = with_cookie.to_vec();
        with_csrf.push((csrf.clone(), session.csrf.as_str()));
        assert_eq!(admit(Method::POST, "/clock/reset", &with_csrf), Ok(()));
        let mut wrong_csrf = with_cookie.to_vec();
        wrong_csrf.push((csrf, session.id.as_str()));
        assert_eq!(
            admit(Method::POST, "/clock/reset", &wrong_csrf),
            Err(Refusal::Csrf)
        );
        // Another port's cookie, or an unknown session, is no credential here.
        let other_port = format!("ppvnet_session_7412={}", session.id);
        assert_eq!(
            admit(
                Method::GET,
                "/dashboard",
                &[host.clone(), (header::COOKIE, other_port.as_str())]
            ),
            Err(Refusal::NoToken)
        );
        assert_eq!(
            admit(
                Method::GET,
                "/dashboard",
                &[host.clone(), (header::COOKIE, "ppvnet_session_7411=guess")]
            ),
            Err(Refusal::WrongSession)
        );
        // The login path takes a ticket instead; its handler checks it.
        assert_eq!(
            admit(Method::GET, "/dashboard/login?token=x", &[host]),
            Ok(())
        );
    }

    #[test]
    fn a_published_control_api_answers_to_its_own_port_and_the_machine_s() {
        // In a container: listening on 0.0.0.0:8400, published on the machine's 127.0.0.1:18400.
        let guard = Guard::published(
            "0.0.0.0:8400".parse().unwrap(),
            Some("127.0.0.1:18400".parse().unwrap()),
            TOKEN,
        );
        let health = |host: &str| {
            guard.admit(
                &Method::GET,
                &"/healthz".parse().unwrap(),
                &headers(&[(header::HOST, host)]),
            )
        };
        for host in [
            "127.0.0.1:8400",
            "localhost:8400",
            "127.0.0.1:18400",
            "localhost:18400",
        ] {
            assert_eq!(health(host), Ok(()), "{host}");
        }
        for host in ["0.0.0.0:8400", "172.17.0.2:8400", "127.0.0.1:18401"] {
            assert!(matches!(health(host), Err(Refusal::Host(_))), "{host}");
        }
    }

    #[test]
    fn the_token_stays_out_of_debug_output() {
        assert!(!format!("{:?}", guard()).contains(TOKEN));
    }
}
