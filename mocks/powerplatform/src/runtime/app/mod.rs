//! The case-search app, the Power Apps stand-in: a page per environment (`/apps/{environment}`)
//! where a signed-in user searches cases through the environment's custom connector.
//!
//! - Sign-in: OpenID Connect authorization code flow with PKCE (S256), `state` and `nonce`, as
//!   the Power Apps client ([`POWER_APPS_CLIENT_ID`]), on the landscape's Entra sign-in page; the
//!   code is redeemed from the `internet` host like every token request of the service. The ID
//!   token comes straight from the token endpoint over TLS, so its signature is not checked
//!   again (OpenID Connect Core 1.0 §3.1.3.7); its `nonce`, audience and tenant are. The API Hub
//!   access token is validated as `/invoke` validates it.
//! - Session: server-side ([`session`]); the browser holds a random id in an `HttpOnly; Secure;
//!   SameSite=Lax` cookie. It ends with the access token (run clock): the next request re-prompts
//!   with `prompt=login` (the user types the password again, UNVERIFIED: real Power Apps
//!   renews silently while Entra's session lasts; the issue asks the app to re-prompt).
//! - Search: the runtime's own `POST /invoke` handler ([`super::invoke::invoke`]) with the
//!   user's token and the user's connection, so checks, the delegated subnet, failover and
//!   errors are exactly what Power Apps gets. No connection yet: an "Allow" button creates one
//!   ([`super::consent::open`]); the consent callback brings the browser back here.
//! - Errors of the call are shown as Power Apps shows them ([`page::connector_error`]).
//! - Sign-out: ends the session and Entra's SSO session (`/oauth2/v2.0/logout`), then
//!   `/apps/signed-out`.
//!
//! Routes: `GET /apps/{environment}[?q=]`, `POST /apps/{environment}/connect`,
//! `POST /apps/{environment}/signout`, `GET /apps/signin` (Entra's callback),
//! `GET /apps/signed-out`, `GET /apps/assets/app.css|app.js`.

pub mod page;
pub mod session;

use axum::Router;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ppvnet_common::web::cookie;
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::PowerPlatform;
use super::config::{APIHUB_AUDIENCE, EnvironmentConfig, POWER_APPS_CLIENT_ID};
use super::connections::ConnectionStatus;
use super::consent::{NewConnection, random_token};
use super::tokens::{self, EndpointVersion};
use page::Header;
use session::{Lookup, PendingSignIn, Session};

/// The session cookie (its value is the server-side session's id).
const SESSION_COOKIE: &str = "ppvnet_app_session";
/// Binds a sign-in's `state` to the browser that started it (login CSRF).
const SIGN_IN_COOKIE: &str = "ppvnet_app_signin";
/// Search text longer than this is refused (the box allows as much).
const MAX_QUERY_CHARS: usize = 200;
/// App request bodies are empty forms.
const MAX_APP_BODY: usize = 16 * 1024;
/// Results larger than this are not rendered.
const MAX_RESULT_BYTES: usize = 8 * 1024 * 1024;
/// Cases a search shows.
const SEARCH_TOP: u32 = 50;
/// The operation the app calls: the first connector of the environment that has it is used.
const SEARCH_PATH: &str = "/cases/search";

/// `{app_url}/apps/signin`: the app's reply URL (a redirect URI of the Power Apps client).
pub fn sign_in_redirect_uri(app_url: &str) -> String {
    format!("{}/apps/signin", app_url.trim_end_matches('/'))
}

/// `{app_url}/apps/signed-out`: where Entra's sign-out returns (a registered redirect URI).
pub fn signed_out_uri(app_url: &str) -> String {
    format!("{}/apps/signed-out", app_url.trim_end_matches('/'))
}

/// The app's routes.
pub(crate) fn routes() -> Router<PowerPlatform> {
    Router::new()
        .route("/apps/signin", get(signin))
        .route("/apps/signed-out", get(signed_out))
        .route(
            "/apps/assets/app.css",
            get(|| async { asset("text/css; charset=utf-8", page::CSS) }),
        )
        .route(
            "/apps/assets/app.js",
            get(|| async { asset("text/javascript; charset=utf-8", page::JS) }),
        )
        .route("/apps/{environment}", get(app))
        .route("/apps/{environment}/connect", post(connect))
        .route("/apps/{environment}/signout", post(signout))
        .layer(DefaultBodyLimit::max(MAX_APP_BODY))
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    let mut r = page::with_headers(body.into_response());
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

/// `303 See Other` to `location`.
pub(crate) fn see_other(location: &str) -> Response {
    let mut r = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(location) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    page::with_headers(r)
}

fn set_cookie(response: &mut Response, name: &str, value: &str, max_age: Option<i64>) {
    let age = max_age
        .map(|s| format!("; Max-Age={s}"))
        .unwrap_or_default();
    let c = format!("{name}={value}; Path=/apps; HttpOnly; Secure; SameSite=Lax{age}");
    if let Ok(v) = HeaderValue::from_str(&c) {
        response.headers_mut().append(header::SET_COOKIE, v);
    }
}

fn query_param(raw: Option<&str>, name: &str) -> Option<String> {
    url::form_urlencoded::parse(raw.unwrap_or_default().as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

impl PowerPlatform {
    fn app_sessions(&self) -> std::sync::MutexGuard<'_, session::SessionStore> {
        self.inner
            .app_sessions
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn app_session(&self, headers: &HeaderMap) -> Lookup {
        let now = self.inner.clock.unix();
        match cookie(headers, SESSION_COOKIE) {
            Some(id) => self.app_sessions().lookup(id, now),
            None => Lookup::None,
        }
    }
}

/// Sends the browser to Entra's sign-in page; `return_to` is a path below `/apps/`. After an
/// expired session the user is asked for the password again (`prompt=login`, their UPN filled).
fn sign_in(pp: &PowerPlatform, return_to: String, expired_upn: Option<&str>) -> Response {
    let config = &pp.inner.config;
    let now = pp.inner.clock.unix();
    let verifier = random_token(48);
    let nonce = random_token(16);
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    let state = pp.app_sessions().begin(
        PendingSignIn {
            nonce: nonce.clone(),
            verifier,
            return_to,
            started_at: now,
        },
        now,
    );
    let scope = format!("{APIHUB_AUDIENCE}/.default openid profile offline_access");
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    query
        .append_pair("client_id", POWER_APPS_CLIENT_ID)
        .append_pair("response_type", "code")
        .append_pair("response_mode", "query")
        .append_pair("redirect_uri", &sign_in_redirect_uri(&config.app_url))
        .append_pair("scope", &scope)
        .append_pair("state", &state)
        .append_pair("nonce", &nonce)
        .append_pair("code_challenge", &challenge)
        .append_pair("code_challenge_method", "S256");
    if let Some(upn) = expired_upn {
        query
            .append_pair("prompt", "login")
            .append_pair("login_hint", upn);
    }
    let url = format!(
        "{}/{}/oauth2/v2.0/authorize?{}",
        config.authority_host,
        config.tenant_id,
        query.finish()
    );
    let mut r = see_other(&url);
    set_cookie(
        &mut r,
        SIGN_IN_COOKIE,
        &state,
        Some(session::SIGN_IN_LIFETIME),
    );
    r
}

/// `GET /apps/{environment}[?q=…]`: the search page.
async fn app(
    State(pp): State<PowerPlatform>,
    Path(environment): Path<String>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Response {
    let Some(env) = pp.environment(&environment).cloned() else {
        let header = Header {
            environment: &environment,
            user: None,
        };
        let message = format!("There is no environment '{environment}' with this app.");
        return page::error(
            StatusCode::NOT_FOUND,
            &header,
            "App not found",
            &message,
            None,
        );
    };
    let q = query_param(raw.as_deref(), "q").unwrap_or_default();
    let mut return_to = format!("/apps/{}", env.name);
    if !q.is_empty() {
        return_to.push_str("?q=");
        return_to.extend(url::form_urlencoded::byte_serialize(q.as_bytes()));
    }
    let session = match pp.app_session(&headers) {
        Lookup::Active(s) => s,
        Lookup::Expired { upn } => return sign_in(&pp, return_to, Some(&upn)),
        Lookup::None => return sign_in(&pp, return_to, None),
    };
    let header = Header {
        environment: &env.name,
        user: Some(&session.display_name),
    };
    if q.chars().count() > MAX_QUERY_CHARS {
        let message = format!("The search text is longer than {MAX_QUERY_CHARS} characters.");
        let back = format!("/apps/{}", env.name);
        return page::error(
            StatusCode::BAD_REQUEST,
            &header,
            "Search text too long",
            &message,
            Some(&back),
        );
    }
    let Some((connector, title, operation)) = search_connector(&pp, &env.name) else {
        let message = format!(
            "No connector with a '{SEARCH_PATH}' operation is saved in environment '{}'.",
            env.name
        );
        return page::error(
            StatusCode::NOT_FOUND,
            &header,
            "No case search",
            &message,
            None,
        );
    };
    let connection = pp
        .connections()
        .into_iter()
        .filter(|c| c.owner == session.oid && c.environment == env.name && c.connector == connector)
        .max_by_key(|c| (c.status == ConnectionStatus::Connected, c.created_at));
    let connection = match connection {
        Some(c) if c.status == ConnectionStatus::Connected => c,
        other => {
            let failure = other.and_then(|c| c.error);
            let body = page::connect(&env.name, &title, failure.as_deref());
            return page::render(StatusCode::OK, "Connect", &header, &body);
        }
    };
    let search = Search {
        pp: &pp,
        session: &session,
        env: &env,
        connector: &connector,
        operation: &operation,
        connection: &connection.id,
    };
    search.run(&q, &header, return_to).await
}

/// The first connector saved in `environment` with a `GET /cases/search` operation: its name,
/// title and `{Title}.{operationId}` as Power Apps names the operation.
fn search_connector(pp: &PowerPlatform, environment: &str) -> Option<(String, String, String)> {
    pp.saved_connectors()
        .into_iter()
        .filter(|s| s.environment == environment)
        .find_map(|s| {
            let c = s.connector.as_deref()?;
            let op = c
                .operations
                .iter()
                .find(|o| o.method == "GET" && o.path == SEARCH_PATH)?;
            let prefix: String = c.title.chars().filter(|ch| !ch.is_whitespace()).collect();
            Some((
                s.name.clone(),
                c.title.clone(),
                format!("{prefix}.{}", op.id),
            ))
        })
}

/// One search through the runtime for the signed-in user.
struct Search<'a> {
    pp: &'a PowerPlatform,
    session: &'a Session,
    env: &'a EnvironmentConfig,
    connector: &'a str,
    operation: &'a str,
    connection: &'a str,
}

impl Search<'_> {
    /// The headers Power Fx sends to `/invoke` (microsoft/Power-Fx:
    /// src/libraries/Microsoft.PowerFx.Connectors/PowerPlatformConnectorClient.cs).
    fn headers(&self, q: &str, request_id: &str) -> HeaderMap {
        let mut url = format!(
            "/apim/{}/{}{SEARCH_PATH}?top={SEARCH_TOP}",
            self.connector, self.connection
        );
        if !q.is_empty() {
            url.push_str("&q=");
            url.extend(url::form_urlencoded::byte_serialize(q.as_bytes()));
        }
        let pairs = [
            (
                "authorization",
                format!("Bearer {}", self.session.access_token),
            ),
            ("x-ms-request-url", url),
            ("x-ms-request-method", "GET".to_string()),
            (
                "x-ms-client-environment-id",
                format!(
                    "/providers/Microsoft.PowerApps/environments/{}",
                    self.env.id
                ),
            ),
            (
                "x-ms-client-session-id",
                self.session.client_session_id.clone(),
            ),
            (
                "x-ms-user-agent",
                "PowerApps/3.25 (ppvnet case search)".to_string(),
            ),
            ("x-ms-enable-selects", "true".to_string()),
            ("x-ms-client-request-id", request_id.to_string()),
            ("x-ms-correlation-id", request_id.to_string()),
        ];
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            if let Ok(v) = HeaderValue::from_str(&value) {
                headers.insert(name, v);
            }
        }
        headers
    }

    async fn run(&self, q: &str, header: &Header<'_>, return_to: String) -> Response {
        let request_id = uuid::Uuid::new_v4().to_string();
        let headers = self.headers(q, &request_id);
        let response = super::invoke::invoke(State(self.pp.clone()), headers, Body::empty()).await;
        let status = response.status();
        let egress = response
            .headers()
            .get(super::invoke::EGRESS_HOST_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = axum::body::to_bytes(response.into_body(), MAX_RESULT_BYTES).await;
        let json: Value = body
            .as_ref()
            .ok()
            .and_then(|b| serde_json::from_slice(b).ok())
            .unwrap_or(Value::Null);
        if status == StatusCode::UNAUTHORIZED {
            // The runtime refused the user's token (expired on the run clock, or revoked).
            let upn = self.session.upn.clone();
            return sign_in(self.pp, return_to, Some(&upn));
        }
        let mut html = page::search_form(&self.env.name, q);
        if status.is_success() && body.is_ok() {
            html.push_str(&page::results(&cases(&json), egress.as_deref()));
        } else {
            let message = runtime_message(&json).unwrap_or_else(|| {
                format!(
                    "The answer could not be read ({} bytes at most).",
                    MAX_RESULT_BYTES
                )
            });
            html.push_str(&page::connector_error(
                self.operation,
                status,
                &message,
                &request_id,
            ));
        }
        page::render(StatusCode::OK, "Case search", header, &html)
    }
}

/// The cases of a search answer (`value`), each field as text.
fn cases(json: &Value) -> Vec<page::CaseRow> {
    let text = |c: &Value, k: &str| match &c[k] {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    };
    json["value"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|c| page::CaseRow {
                    id: text(c, "id"),
                    title: text(c, "title"),
                    status: text(c, "status"),
                    priority: text(c, "priority"),
                    customer: text(c, "customer"),
                    owner: text(c, "ownerObjectId"),
                    team: text(c, "teamGroupId"),
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The message of a runtime or backend error body: the gateway shape's inner error, the
/// connector shape's `error.message`, a plain `message`, or the backend's `error.message`.
fn runtime_message(json: &Value) -> Option<String> {
    [
        &json["error"]["innerError"]["error"]["message"],
        &json["error"]["message"],
        &json["message"],
    ]
    .into_iter()
    .find_map(|v| v.as_str().filter(|s| !s.is_empty()))
    .map(|s| s.split(['\r', '\n']).next().unwrap_or_default().to_owned())
}

/// `GET /apps/signin`: Entra's callback with `code` and `state` (or `error`).
async fn signin(
    State(pp): State<PowerPlatform>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Response {
    let header = Header {
        environment: "sign-in",
        user: None,
    };
    let fail = |status, message: &str| {
        let mut r = page::error(status, &header, "Sign-in failed", message, None);
        set_cookie(&mut r, SIGN_IN_COOKIE, "", Some(0));
        r
    };
    let raw = raw.as_deref();
    let state = query_param(raw, "state").unwrap_or_default();
    if state.is_empty() || cookie(&headers, SIGN_IN_COOKIE) != Some(state.as_str()) {
        return fail(
            StatusCode::BAD_REQUEST,
            "The sign-in answer does not belong to a sign-in this browser started. Open the app again.",
        );
    }
    let now = pp.inner.clock.unix();
    let Some(pending) = pp.app_sessions().take_pending(&state, now) else {
        return fail(
            StatusCode::BAD_REQUEST,
            "The sign-in is unknown, expired or was already used. Open the app again.",
        );
    };
    if let Some(error) = query_param(raw, "error") {
        let description = query_param(raw, "error_description").unwrap_or_default();
        return fail(StatusCode::UNAUTHORIZED, &format!("{error}: {description}"));
    }
    let Some(code) = query_param(raw, "code") else {
        return fail(
            StatusCode::BAD_REQUEST,
            "The sign-in answer carries no code.",
        );
    };
    let session = match redeem(&pp, &code, &pending).await {
        Ok(s) => s,
        Err(message) => return fail(StatusCode::UNAUTHORIZED, &message),
    };
    let id = {
        let mut sessions = pp.app_sessions();
        // A new sign-in replaces the browser's previous session (no session fixation).
        if let Some(old) = cookie(&headers, SESSION_COOKIE) {
            sessions.remove(old);
        }
        sessions.insert(session, now)
    };
    let mut r = see_other(&pending.return_to);
    set_cookie(&mut r, SESSION_COOKIE, &id, None);
    set_cookie(&mut r, SIGN_IN_COOKIE, "", Some(0));
    r
}

/// Redeems the code (PKCE verifier, no secret: Power Apps is a public client) and checks what
/// came back: the access token as `/invoke` checks it, the ID token's nonce, audience, tenant
/// and user.
async fn redeem(
    pp: &PowerPlatform,
    code: &str,
    pending: &PendingSignIn,
) -> Result<Session, String> {
    let config = &pp.inner.config;
    let client = pp
        .inner
        .outbound
        .client("internet")
        .map_err(|e| format!("no client for the internet host: {e}"))?;
    let url = tokens::token_url(
        &config.authority_host,
        &config.tenant_id,
        EndpointVersion::V2,
    );
    let redirect_uri = sign_in_redirect_uri(&config.app_url);
    let form = [
        ("grant_type", "authorization_code"),
        ("client_id", POWER_APPS_CLIENT_ID),
        ("code", code),
        ("redirect_uri", redirect_uri.as_str()),
        ("code_verifier", pending.verifier.as_str()),
    ];
    let now = pp.inner.clock.unix();
    let set = tokens::request(&client, &url, &form, now)
        .await
        .map_err(|e| e.summary())?;
    let claims = pp
        .inner
        .validator
        .validate(&set.access_token)
        .await
        .map_err(|e| format!("The access token was refused: {}.", e.description()))?;
    let oid = claims
        .oid()
        .ok_or("The access token names no user (no 'oid').")?
        .to_ascii_lowercase();
    let id = set
        .id_token
        .as_deref()
        .and_then(id_token_claims)
        .ok_or("The answer carries no readable ID token.")?;
    let claim = |k: &str| id[k].as_str().unwrap_or_default().to_string();
    if claim("nonce") != pending.nonce {
        return Err("The ID token's nonce is not this sign-in's.".into());
    }
    if claim("aud") != POWER_APPS_CLIENT_ID
        || !claim("tid").eq_ignore_ascii_case(&config.tenant_id)
        || !claim("oid").eq_ignore_ascii_case(&oid)
    {
        return Err("The ID token is not for this app, tenant and user.".into());
    }
    let upn = claim("preferred_username");
    let name = claim("name");
    Ok(Session {
        oid,
        display_name: if name.is_empty() { upn.clone() } else { name },
        upn,
        access_token: set.access_token,
        expires_at: set.expires_at,
        client_session_id: uuid::Uuid::new_v4().to_string(),
    })
}

/// The payload of a JWT, unverified (see the module docs for why that is sound here).
fn id_token_claims(token: &str) -> Option<Value> {
    let payload = token.split('.').nth(1)?;
    let bytes = URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// `POST /apps/{environment}/connect`: creates the user's connection and sends the browser to
/// its consent link; the consent callback returns to the app.
async fn connect(
    State(pp): State<PowerPlatform>,
    Path(environment): Path<String>,
    headers: HeaderMap,
) -> Response {
    let Some(env) = pp.environment(&environment).cloned() else {
        return see_other(&format!("/apps/{}", environment));
    };
    let app = format!("/apps/{}", env.name);
    let session = match pp.app_session(&headers) {
        Lookup::Active(s) => s,
        Lookup::Expired { upn } => return sign_in(&pp, app, Some(&upn)),
        Lookup::None => return sign_in(&pp, app, None),
    };
    let Some((connector, ..)) = search_connector(&pp, &env.name) else {
        return see_other(&app);
    };
    let body = NewConnection {
        environment: env.name.clone(),
        connector,
        client_id: None,
        client_secret: None,
        service_principal: false,
        parameters: Default::default(),
    };
    let back = format!("{}{app}", pp.inner.config.app_url.trim_end_matches('/'));
    match super::consent::open(&pp, session.oid.clone(), &body, Some(back)).await {
        Ok((_, Some(link))) => see_other(&link),
        Ok((_, None)) => see_other(&app),
        Err(e) => {
            let header = Header {
                environment: &env.name,
                user: Some(&session.display_name),
            };
            let status = e.status();
            page::error(
                status,
                &header,
                "Connection failed",
                &e.to_string(),
                Some(&app),
            )
        }
    }
}

/// `POST /apps/{environment}/signout`: ends the app's session, then Entra's.
async fn signout(
    State(pp): State<PowerPlatform>,
    Path(environment): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Some(id) = cookie(&headers, SESSION_COOKIE) {
        pp.app_sessions().remove(id);
    }
    let config = &pp.inner.config;
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    query
        .append_pair("post_logout_redirect_uri", &signed_out_uri(&config.app_url))
        .append_pair("state", &environment);
    let logout = format!(
        "{}/{}/oauth2/v2.0/logout?{}",
        config.authority_host,
        config.tenant_id,
        query.finish()
    );
    let mut r = see_other(&logout);
    set_cookie(&mut r, SESSION_COOKIE, "", Some(0));
    r
}

/// `GET /apps/signed-out?state={environment}`: where Entra's sign-out lands.
async fn signed_out(State(pp): State<PowerPlatform>, RawQuery(raw): RawQuery) -> Response {
    let environment = query_param(raw.as_deref(), "state")
        .and_then(|e| pp.environment(&e).map(|env| env.name.clone()));
    let name = environment.as_deref().unwrap_or("signed out");
    let again = environment
        .as_deref()
        .map(|e| {
            format!(
                "<p><a id=\"sign-in-again\" href=\"/apps/{}\">Sign in again</a></p>",
                page::escape(e)
            )
        })
        .unwrap_or_default();
    let body = format!(
        "<div class=\"card\"><h2 id=\"signed-out\">You signed out</h2><p>Your session with the \
         app and with Microsoft Entra ended.</p>{again}</div>"
    );
    let header = Header {
        environment: name,
        user: None,
    };
    page::render(StatusCode::OK, "Signed out", &header, &body)
}
