//! `/{tenant}/oauth2/v2.0/authorize` (sign-in page, SSO session, consent and redirect-URI
//! checks, PKCE, `response_mode` query/fragment/form_post) and `/{tenant}/oauth2/v2.0/logout`.
//!
//! Parameters: MicrosoftDocs/entra-docs: docs/identity-platform/v2-protocols-oidc.md. Errors before
//! the redirect URI is trusted are shown on an error page; after that they go back to the redirect
//! URI as `error` and `error_description`, as Entra does.

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{Html, IntoResponse, Response};
use ppvnet_common::web::escape_html as escape;

use crate::directory::{App, Directory, RedirectKind, User};
use crate::error::EntraError;
use crate::request::{Form, Tenant, TenantPath, error_envelope, request_origin};
use crate::scopes::{ScopeRequest, grant_delegated};
use crate::state::{AuthCode, Entra, PkceMethod, Session};
use crate::tokens::{Minter, UserContext, random_handle};

const SESSION_COOKIE: &str = "ESTSAUTH";

pub(crate) async fn authorize_get(
    State(entra): State<Entra>,
    Tenant(tenant): Tenant,
    RawQuery(query): RawQuery,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let params = Form::from_query(query.as_deref());
    authorize(&entra, &tenant, &params, &uri, &headers, false)
}

/// `GET /{tenant}/oauth2/authorize`, the v1 page (the `aad` connector provider's default
/// `loginUri` flow in microsoft/PowerPlatformConnectors' `apiProperties.json` files; whether the
/// provider uses v1 is UNVERIFIED): `resource` names what the code is for. v1 grants the
/// resource's consented permissions and always a refresh token, which is what
/// `{resource}/.default offline_access` asks of the v2 page, so the request continues there (the
/// sign-in form posts to the v2 path with the translated parameters).
pub(crate) async fn authorize_get_v1(
    State(entra): State<Entra>,
    Tenant(tenant): Tenant,
    RawQuery(query): RawQuery,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let mut pairs = Form::from_query(query.as_deref()).pairs().to_vec();
    let resource = pairs
        .iter()
        .find(|(k, _)| k == "resource")
        .map(|(_, v)| v.clone());
    if let Some(resource) = resource
        && !pairs.iter().any(|(k, _)| k == "scope")
    {
        pairs.retain(|(k, _)| k != "resource");
        pairs.push((
            "scope".into(),
            format!("{}/.default offline_access", resource.trim_end_matches('/')),
        ));
    }
    authorize(
        &entra,
        &tenant,
        &Form::from_pairs(pairs),
        &uri,
        &headers,
        false,
    )
}

/// The sign-in form posts back here with the original parameters plus `login`/`passwd`.
pub(crate) async fn authorize_post(
    State(entra): State<Entra>,
    Tenant(tenant): Tenant,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let params = Form::parse(&headers, &body);
    authorize(&entra, &tenant, &params, &uri, &headers, true)
}

fn error_page(entra: &Entra, headers: &HeaderMap, error: &EntraError) -> Response {
    let envelope = error_envelope(entra, headers, error);
    let text = envelope.body["error_description"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let body = format!(
        "<!DOCTYPE html><html><head><title>Sign in to your account</title></head><body>\
         <h1>Sorry, but we're having trouble signing you in.</h1>\
         <p id=\"error\" data-error=\"{}\" data-code=\"{}\">{}</p></body></html>",
        escape(error.error()),
        error.code(),
        escape(&text).replace("\r\n", "<br>")
    );
    (StatusCode::BAD_REQUEST, Html(body)).into_response()
}

/// Where and how to answer the client once its redirect URI is trusted.
struct Reply<'a> {
    redirect_uri: &'a str,
    mode: &'a str,
    state: Option<&'a str>,
}

impl Reply<'_> {
    fn send(&self, mut params: Vec<(&str, String)>, set_cookie: Option<String>) -> Response {
        if let Some(state) = self.state {
            params.push(("state", state.to_string()));
        }
        let mut response = if self.mode == "form_post" {
            let inputs: String = params.iter().map(|(k, v)| hidden_input(k, v)).collect();
            Html(format!(
                "<!DOCTYPE html><html><head><title>Working...</title></head>\
                 <body onload=\"document.forms[0].submit()\">\
                 <form method=\"POST\" name=\"hiddenform\" action=\"{}\">{inputs}\
                 <noscript><p>Script is disabled. Click Submit to continue.</p>\
                 <input type=\"submit\" value=\"Submit\"/></noscript></form></body></html>",
                escape(self.redirect_uri)
            ))
            .into_response()
        } else {
            let encoded = url::form_urlencoded::Serializer::new(String::new())
                .extend_pairs(params.iter().map(|(k, v)| (*k, v.as_str())))
                .finish();
            let separator = if self.mode == "fragment" {
                "#"
            } else if self.redirect_uri.contains('?') {
                "&"
            } else {
                "?"
            };
            let location = if encoded.is_empty() {
                self.redirect_uri.to_string()
            } else {
                format!("{}{separator}{encoded}", self.redirect_uri)
            };
            let mut r = StatusCode::FOUND.into_response();
            if let Ok(v) = HeaderValue::from_str(&location) {
                r.headers_mut().insert(header::LOCATION, v);
            }
            r
        };
        if let Some(cookie) = set_cookie.and_then(|c| HeaderValue::from_str(&c).ok()) {
            response.headers_mut().insert(header::SET_COOKIE, cookie);
        }
        response
    }

    fn error(&self, entra: &Entra, headers: &HeaderMap, error: &EntraError) -> Response {
        let envelope = error_envelope(entra, headers, error);
        let description = envelope.body["error_description"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        self.send(
            vec![
                ("error", error.authorize_error().to_string()),
                ("error_description", description),
                (
                    "error_uri",
                    format!(
                        "https://login.microsoftonline.com/error?code={}",
                        error.code()
                    ),
                ),
            ],
            None,
        )
    }
}

fn authorize(
    entra: &Entra,
    tenant: &str,
    params: &Form,
    uri: &Uri,
    headers: &HeaderMap,
    submitted: bool,
) -> Response {
    let dir = entra.directory();
    let (client, redirect_uri, kind) = match trusted_redirect(&dir, tenant, params) {
        Ok(c) => c,
        Err(e) => return error_page(entra, headers, &e),
    };
    let (wants, reply, refused) = response_kind(client, redirect_uri, params);
    if let Some(e) = refused {
        return reply.error(entra, headers, &e);
    }
    let fail = |e: EntraError| reply.error(entra, headers, &e);
    let (request, challenge) = match checked_request(&dir, client, params, wants) {
        Ok(r) => r,
        Err(e) => return fail(e),
    };
    let (user, set_cookie) =
        match signed_in_user(entra, &dir, tenant, params, uri, headers, submitted) {
            Ok(u) => u,
            Err(SignIn::Page(page)) => return *page,
            Err(SignIn::Refused(e)) => return fail(e),
        };
    let nonce = params.get("nonce");
    let now = entra.now();
    let mut out: Vec<(&str, String)> = Vec::new();
    let code = wants.code.then(|| {
        entra.grants().add_code(
            AuthCode {
                client_id: client.app_id().to_string(),
                redirect_uri: redirect_uri.to_string(),
                redirect_kind: kind,
                user_id: user.id.clone(),
                request: request.clone(),
                nonce: nonce.map(str::to_string),
                challenge,
                issued_at: now,
                redeemed: false,
            },
            now,
        )
    });
    if let Some(code) = &code {
        out.push(("code", code.clone()));
    }
    if wants.id_token {
        let minter = Minter {
            dir: &dir,
            key: entra.keys().signing(),
            now,
        };
        let ctx = UserContext { user, ip: None };
        out.push((
            "id_token",
            minter.id_token(client, &ctx, nonce, request.has("profile"), code.as_deref()),
        ));
    }
    out.push(("session_state", uuid::Uuid::new_v4().to_string()));
    reply.send(out, set_cookie)
}

/// What the request asks back: a code, an id_token, or both.
#[derive(Clone, Copy)]
struct Wants {
    code: bool,
    id_token: bool,
}

/// The tenant, the client and the redirect URI, checked before anything may be sent to that
/// URI (errors here go on Entra's own error page).
fn trusted_redirect<'d, 'p>(
    dir: &'d Directory,
    tenant: &str,
    params: &'p Form,
) -> Result<(&'d App, &'p str, RedirectKind), EntraError>
where
    'd: 'p,
{
    TenantPath::require(dir, tenant).and_then(|_| params.check_unique())?;
    let client = params.require("client_id").and_then(|id| {
        dir.app(id).ok_or_else(|| EntraError::ApplicationNotFound {
            app_id: id.to_string(),
            tenant: tenant.to_string(),
        })
    })?;
    let registered: Vec<&String> = client.all_redirect_uris().collect();
    let redirect_uri: &'p str = match params.get("redirect_uri") {
        Some(r) => r,
        None if registered.len() == 1 => registered[0].as_str(),
        None => {
            return Err(EntraError::MissingParameter {
                name: "redirect_uri".into(),
            });
        }
    };
    let kind =
        client
            .redirect_uri_kind(redirect_uri)
            .ok_or_else(|| EntraError::RedirectUriMismatch {
                redirect_uri: redirect_uri.to_string(),
                app_id: client.app_id().to_string(),
            })?;
    Ok((client, redirect_uri, kind))
}

/// `response_type` and `response_mode`: what to send back and how, and why the request is
/// refused if it is (the error goes back on the reply, in the mode the request may use).
fn response_kind<'a>(
    client: &App,
    redirect_uri: &'a str,
    params: &'a Form,
) -> (Wants, Reply<'a>, Option<EntraError>) {
    let response_type = params.get("response_type").unwrap_or("code");
    let mut types: Vec<&str> = response_type.split_whitespace().collect();
    types.sort_unstable();
    let wants = Wants {
        code: types.contains(&"code"),
        id_token: types.contains(&"id_token"),
    };
    let default_mode = if wants.id_token { "fragment" } else { "query" };
    let mode = params.get("response_mode").unwrap_or(default_mode);
    let reply = Reply {
        redirect_uri,
        mode: if ["query", "fragment", "form_post"].contains(&mode) {
            mode
        } else {
            default_mode
        },
        state: params.get("state"),
    };
    let error = if !(types == ["code"] || types == ["id_token"] || types == ["code", "id_token"])
        || (wants.id_token
            && !client
                .config
                .web
                .implicit_grant_settings
                .enable_id_token_issuance)
    {
        Some(EntraError::ResponseTypeNotEnabled {
            response_type: response_type.to_string(),
        })
    } else if reply.mode != mode {
        Some(EntraError::InvalidRequest {
            reason: format!("response_mode '{mode}' is not supported"),
        })
    } else if wants.id_token && mode == "query" {
        Some(EntraError::InvalidRequest {
            reason: "response_mode 'query' cannot return an id_token".into(),
        })
    } else {
        None
    };
    (wants, reply, error)
}

/// The scopes (consented where a resource is named), the nonce an id_token needs, and PKCE.
fn checked_request(
    dir: &Directory,
    client: &App,
    params: &Form,
    wants: Wants,
) -> Result<(ScopeRequest, Option<(String, PkceMethod)>), EntraError> {
    let request = params.require("scope").and_then(ScopeRequest::parse_v2)?;
    if wants.id_token {
        if !request.has("openid") {
            return Err(EntraError::InvalidRequest {
                reason: "an id_token requires the 'openid' scope".into(),
            });
        }
        if params.get("nonce").is_none() {
            return Err(EntraError::MissingParameter {
                name: "nonce".into(),
            });
        }
    }
    let challenge = match (
        params.get("code_challenge"),
        params.get("code_challenge_method"),
    ) {
        (None, _) => None,
        (Some(c), None | Some("plain")) => Some((c.to_string(), PkceMethod::Plain)),
        (Some(c), Some("S256")) => Some((c.to_string(), PkceMethod::S256)),
        (Some(_), Some(other)) => {
            return Err(EntraError::InvalidRequest {
                reason: format!("code_challenge_method '{other}' is not supported"),
            });
        }
    };
    if request.resource.is_some() {
        grant_delegated(dir, client, &request)?;
    }
    Ok((request, challenge))
}

/// Why no user is signed in yet: the sign-in page to show, or an error for the redirect URI.
enum SignIn {
    Page(Box<Response>),
    Refused(EntraError),
}

/// Who is signing in: the submitted form (starting an SSO session, whose cookie comes back),
/// else the SSO session unless a prompt forbids it.
fn signed_in_user<'d>(
    entra: &Entra,
    dir: &'d Directory,
    tenant: &str,
    params: &Form,
    uri: &Uri,
    headers: &HeaderMap,
    submitted: bool,
) -> Result<(&'d User, Option<String>), SignIn> {
    let prompt = params.get("prompt");
    let login_hint = params.get("login_hint");
    if submitted {
        let user = check_sign_in(dir, params).map_err(|e| {
            SignIn::Page(Box::new(sign_in_page(tenant, params, login_hint, Some(&e))))
        })?;
        let secure = if request_origin(entra, headers, uri).starts_with("https:") {
            "; Secure"
        } else {
            ""
        };
        let handle = random_handle("", 32);
        entra.grants().sessions.insert(
            handle.clone(),
            Session {
                user_id: user.id.clone(),
            },
        );
        let cookie = format!("{SESSION_COOKIE}={handle}; Path=/; HttpOnly; SameSite=None{secure}");
        return Ok((user, Some(cookie)));
    }
    let session = session_user(entra, dir, headers)
        .filter(|_| !matches!(prompt, Some("login" | "select_account" | "consent")))
        .filter(|u| login_hint.is_none_or(|h| h.eq_ignore_ascii_case(&u.upn)));
    match (session, prompt) {
        (Some(s), _) => Ok((s, None)),
        (None, Some("none")) => Err(SignIn::Refused(EntraError::LoginRequired)),
        (None, _) => Err(SignIn::Page(Box::new(sign_in_page(
            tenant, params, login_hint, None,
        )))),
    }
}

/// The enabled user `upn` names, when `password` is theirs (shared by the sign-in page and
/// the ROPC grant).
pub(crate) fn verify_password<'d>(
    dir: &'d Directory,
    upn: &str,
    password: &str,
) -> Result<&'d User, EntraError> {
    let user = dir
        .user_by_upn(upn)
        .ok_or_else(|| EntraError::UserNotFound {
            upn: upn.to_string(),
            tenant: dir.domain.clone(),
        })?;
    if !bool::from(subtle::ConstantTimeEq::ct_eq(
        user.password.as_bytes(),
        password.as_bytes(),
    )) {
        return Err(EntraError::InvalidUserCredentials);
    }
    if !user.enabled {
        return Err(EntraError::UserDisabled);
    }
    Ok(user)
}

fn check_sign_in<'d>(dir: &'d Directory, params: &Form) -> Result<&'d User, EntraError> {
    let login = params.require("login")?;
    let password = params.require("passwd")?;
    verify_password(dir, login, password)
}

fn session_handle(headers: &HeaderMap) -> Option<String> {
    ppvnet_common::web::cookie(headers, SESSION_COOKIE).map(str::to_string)
}

fn session_user<'d>(entra: &Entra, dir: &'d Directory, headers: &HeaderMap) -> Option<&'d User> {
    let handle = session_handle(headers)?;
    let user_id = entra.grants().sessions.get(&handle)?.user_id.clone();
    dir.user_by_id(&user_id).filter(|u| u.enabled)
}

fn sign_in_page(
    tenant: &str,
    params: &Form,
    login_hint: Option<&str>,
    error: Option<&EntraError>,
) -> Response {
    let hidden: String = params
        .pairs()
        .iter()
        .filter(|(k, _)| k != "login" && k != "passwd")
        .map(|(k, v)| hidden_input(k, v))
        .collect();
    let login = params.get("login").or(login_hint).unwrap_or_default();
    let banner = error
        .map(|e| {
            format!(
                "<div id=\"error\" role=\"alert\" data-code=\"{}\">{}</div>",
                e.code(),
                escape(&e.description())
            )
        })
        .unwrap_or_default();
    let body = format!(
        "<!DOCTYPE html><html><head><title>Sign in to your account</title></head><body>\
         <h1>Sign in</h1>{banner}\
         <form method=\"POST\" action=\"/{}/oauth2/v2.0/authorize\">{hidden}\
         <label>Email, phone, or Skype <input type=\"email\" name=\"login\" value=\"{}\" autocomplete=\"username\"/></label>\
         <label>Password <input type=\"password\" name=\"passwd\" autocomplete=\"current-password\"/></label>\
         <input type=\"submit\" id=\"idSIButton9\" value=\"Sign in\"/></form></body></html>",
        escape(tenant),
        escape(login)
    );
    Html(body).into_response()
}

/// `GET|POST /{tenant}/oauth2/v2.0/logout`: ends the SSO session, then redirects to
/// `post_logout_redirect_uri` when it is a registered redirect URI of an app in the tenant.
pub(crate) async fn logout(
    State(entra): State<Entra>,
    Tenant(tenant): Tenant,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let params = Form::from_query(query.as_deref());
    {
        let dir = entra.directory();
        if let Err(e) = TenantPath::require(&dir, &tenant) {
            return error_page(&entra, &headers, &e);
        }
    }
    if let Some(handle) = session_handle(&headers) {
        entra.grants().sessions.remove(&handle);
    }
    let clear = format!("{SESSION_COOKIE}=; Path=/; Max-Age=0; HttpOnly; SameSite=None");
    let target = params.get("post_logout_redirect_uri").filter(|target| {
        entra
            .directory()
            .apps
            .iter()
            .any(|a| a.all_redirect_uris().any(|u| u == target))
    });
    let mut response = match target {
        Some(target) => Reply {
            redirect_uri: target,
            mode: "query",
            state: params.get("state"),
        }
        .send(Vec::new(), None),
        None => Html(
            "<!DOCTYPE html><html><head><title>Sign out</title></head><body>\
             <h1>You signed out of your account</h1>\
             <p>It's a good idea to close all browser windows.</p></body></html>",
        )
        .into_response(),
    };
    if let Ok(v) = HeaderValue::from_str(&clear) {
        response.headers_mut().insert(header::SET_COOKIE, v);
    }
    response
}

/// A hidden form field carrying `name=value` through a page the browser posts back.
fn hidden_input(name: &str, value: &str) -> String {
    format!(
        "<input type=\"hidden\" name=\"{}\" value=\"{}\"/>",
        escape(name),
        escape(value)
    )
}
