//! `POST /{tenant}/oauth2/v2.0/token` and the v1 `POST /{tenant}/oauth2/token`: every grant
//! with its real checks (MicrosoftDocs/entra-docs: docs/identity-platform/:
//! `v2-oauth2-client-creds-grant-flow.md`, `v2-oauth2-on-behalf-of-flow.md`,
//! `v2-protocols-oidc.md`), replies shaped like Entra's.

use std::net::SocketAddr;

use axum::Extension;
use axum::body::Body;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use crate::authorize::verify_password;
use crate::client_auth::{self, Credential};
use crate::directory::{App, Directory, RedirectKind, User};
use crate::error::EntraError;
use crate::request::{
    Form, Tenant, TenantPath, correlation_id, error_envelope, json_reply, known_hosts,
    request_origin,
};
use crate::scopes::{ScopeRequest, grant_delegated};
use crate::state::{
    CODE_LIFETIME, Entra, PkceMethod, REFRESH_INACTIVITY, RefreshGrant, SPA_REFRESH_LIFETIME,
};
use crate::tokens::{AccessTokenSpec, ClientAuth, Jwt, Minter, UserContext, v1_issuer, v2_issuer};

const OBO_GRANT: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";

/// Which token endpoint was called; decides `scope` vs `resource` and the reply's shape.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Endpoint {
    V1,
    V2,
}

pub(crate) async fn token_v2(
    State(entra): State<Entra>,
    Tenant(tenant): Tenant,
    uri: Uri,
    headers: HeaderMap,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    body: Body,
) -> Response {
    let body = match read_body(&entra, &headers, body).await {
        Ok(body) => body,
        Err(refused) => return refused,
    };
    handle(&entra, &tenant, &uri, &headers, peer, &body, Endpoint::V2)
}

pub(crate) async fn token_v1(
    State(entra): State<Entra>,
    Tenant(tenant): Tenant,
    uri: Uri,
    headers: HeaderMap,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    body: Body,
) -> Response {
    let body = match read_body(&entra, &headers, body).await {
        Ok(body) => body,
        Err(refused) => return refused,
    };
    handle(&entra, &tenant, &uri, &headers, peer, &body, Endpoint::V1)
}

/// Largest token request body read. Real requests are a few KB (a client assertion is the
/// biggest part); Entra's own limit is not published, so this value and the error it gets are
/// UNVERIFIED choices, made so an oversized body gets Entra's envelope instead of a bare 413.
pub(crate) const MAX_FORM_BYTES: usize = 64 * 1024;

async fn read_body(entra: &Entra, headers: &HeaderMap, body: Body) -> Result<Vec<u8>, Response> {
    match axum::body::to_bytes(body, MAX_FORM_BYTES).await {
        Ok(bytes) => Ok(bytes.to_vec()),
        Err(_) => {
            let e = EntraError::InvalidRequest {
                reason: format!("the request body is larger than {MAX_FORM_BYTES} bytes"),
            };
            Err(error_envelope(entra, headers, &e).into_response())
        }
    }
}

/// Any method but POST on a token endpoint: AADSTS900561 in Entra's envelope.
pub(crate) async fn not_post(
    State(entra): State<Entra>,
    method: Method,
    headers: HeaderMap,
) -> Response {
    let e = EntraError::PostOnly {
        method: method.to_string(),
    };
    error_envelope(&entra, &headers, &e).into_response()
}

fn handle(
    entra: &Entra,
    tenant: &str,
    uri: &Uri,
    headers: &HeaderMap,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    body: &[u8],
    endpoint: Endpoint,
) -> Response {
    let form = Form::parse(headers, body);
    let request = TokenRequest {
        entra,
        tenant,
        headers,
        form: &form,
        endpoint,
        origin: request_origin(entra, headers, uri),
        ip: peer.map(|Extension(ConnectInfo(addr))| addr.ip().to_string()),
        now: entra.now(),
    };
    match request.run() {
        Ok(reply) => {
            let mut response = json_reply(StatusCode::OK, &reply, "no-store, no-cache");
            let h = response.headers_mut();
            h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
            if let Some(cid) = correlation_id(headers).and_then(|c| HeaderValue::from_str(c).ok()) {
                h.insert("client-request-id", cid);
            }
            response
        }
        Err(e) => {
            tracing::debug!(code = e.code(), error = %e, "token request refused");
            error_envelope(entra, headers, &e).into_response()
        }
    }
}

struct TokenRequest<'a> {
    entra: &'a Entra,
    tenant: &'a str,
    headers: &'a HeaderMap,
    form: &'a Form,
    endpoint: Endpoint,
    origin: String,
    ip: Option<String>,
    now: i64,
}

/// What a user flow hands to [`TokenRequest::user_tokens`].
struct UserIssue<'a> {
    client: &'a App,
    client_auth: ClientAuth,
    user: &'a User,
    request: &'a ScopeRequest,
    nonce: Option<&'a str>,
    spa: bool,
}

impl TokenRequest<'_> {
    fn run(&self) -> Result<Value, EntraError> {
        let dir = self.entra.directory();
        let tenant_path = TenantPath::require(&dir, self.tenant)?;
        self.form.check_unique()?;
        let grant_type = self.form.require("grant_type")?;
        let known = matches!(
            grant_type,
            "client_credentials" | "password" | "authorization_code" | "refresh_token" | OBO_GRANT
        );
        if !known {
            return Err(EntraError::UnsupportedGrantType {
                grant_type: grant_type.to_string(),
            });
        }
        let (client_id, credential) = client_auth::presented(self.form, self.headers);
        let client_id = client_id.ok_or_else(|| EntraError::MissingParameter {
            name: "client_id".into(),
        })?;
        let client = dir
            .app(&client_id)
            .ok_or_else(|| EntraError::ApplicationNotFound {
                app_id: client_id.clone(),
                tenant: self.tenant.to_string(),
            })?;
        match grant_type {
            "client_credentials" => {
                if matches!(tenant_path, TenantPath::Alias(_)) {
                    return Err(EntraError::GrantNotSupportedOnAlias);
                }
                self.client_credentials(&dir, client, &credential)
            }
            "password" => self.password(&dir, client, &credential),
            "authorization_code" => self.authorization_code(&dir, client, &credential),
            "refresh_token" => self.refresh_token(&dir, client, &credential),
            _ => self.on_behalf_of(&dir, client, &credential),
        }
    }

    fn authenticate(
        &self,
        dir: &Directory,
        client: &App,
        credential: &Credential,
        required: bool,
    ) -> Result<ClientAuth, EntraError> {
        let hosts = known_hosts(self.entra, &self.origin);
        client_auth::authenticate(client, credential, required, self.now, |aud| {
            client_auth::is_token_endpoint(dir, self.tenant, &hosts, aud)
        })
    }

    /// The requested resource and permissions: `scope` on v2, `resource` on v1.
    fn scope_request(&self) -> Result<ScopeRequest, EntraError> {
        match self.endpoint {
            Endpoint::V2 => ScopeRequest::parse_v2(self.form.require("scope")?),
            Endpoint::V1 => Ok(ScopeRequest::v1(
                self.form.require("resource")?,
                self.form.get("scope"),
            )),
        }
    }

    fn minter<'d>(&self, dir: &'d Directory) -> Minter<'d> {
        Minter {
            dir,
            key: self.entra.keys().signing(),
            now: self.now,
        }
    }

    fn client_credentials(
        &self,
        dir: &Directory,
        client: &App,
        credential: &Credential,
    ) -> Result<Value, EntraError> {
        let auth = self.authenticate(dir, client, credential, true)?;
        let request = self.scope_request()?;
        if !request.is_app_default() {
            return Err(EntraError::InvalidScope {
                scope: self.form.get("scope").unwrap_or_default().to_string(),
            });
        }
        let requested_as = request.resource.unwrap_or_default();
        let resource = dir
            .resource(&requested_as)
            .ok_or_else(|| EntraError::ResourceNotFound {
                resource: requested_as.clone(),
                tenant: dir.display_name.clone(),
            })?;
        let roles = dir.application_roles(client, resource);
        let minted = self.minter(dir).access_token(&AccessTokenSpec {
            resource,
            requested_as: &requested_as,
            client,
            client_auth: auth,
            user: None,
            scp: &[],
            roles: &roles,
        });
        let mut reply = Map::new();
        reply.insert("token_type".into(), json!("Bearer"));
        self.put_lifetimes(&mut reply, &minted, &requested_as);
        reply.insert("access_token".into(), json!(minted.token));
        Ok(Value::Object(reply))
    }

    fn password(
        &self,
        dir: &Directory,
        client: &App,
        credential: &Credential,
    ) -> Result<Value, EntraError> {
        let auth = self.authenticate(
            dir,
            client,
            credential,
            !client.config.is_fallback_public_client,
        )?;
        let username = self.form.require("username")?;
        let password = self.form.require("password")?;
        let request = self.scope_request()?;
        let user = verify_password(dir, username, password)?;
        self.user_tokens(
            dir,
            &UserIssue {
                client,
                client_auth: auth,
                user,
                request: &request,
                nonce: None,
                spa: false,
            },
        )
    }

    fn authorization_code(
        &self,
        dir: &Directory,
        client: &App,
        credential: &Credential,
    ) -> Result<Value, EntraError> {
        let code = self.form.require("code")?;
        let redirect_uri = self.form.require("redirect_uri")?;
        let (user_id, request, nonce, kind) = {
            let mut grants = self.entra.grants();
            let grant = grants
                .codes
                .get_mut(code)
                .ok_or(EntraError::MalformedGrant)?;
            if !grant.client_id.eq_ignore_ascii_case(client.app_id()) {
                return Err(EntraError::GrantMismatch);
            }
            if grant.redirect_uri != redirect_uri {
                return Err(EntraError::RedirectUriMismatch {
                    redirect_uri: redirect_uri.to_string(),
                    app_id: client.app_id().to_string(),
                });
            }
            if grant.redeemed {
                return Err(EntraError::CodeRedeemed);
            }
            if grant.issued_at + CODE_LIFETIME <= self.now {
                return Err(EntraError::CodeExpired);
            }
            if let Some((challenge, method)) = &grant.challenge {
                let verifier = self
                    .form
                    .get("code_verifier")
                    .ok_or(EntraError::PkceVerifierMissing)?;
                let computed = match method {
                    PkceMethod::Plain => verifier.to_string(),
                    PkceMethod::S256 => URL_SAFE_NO_PAD.encode(Sha256::digest(verifier)),
                };
                if &computed != challenge {
                    return Err(EntraError::PkceMismatch);
                }
            }
            // Codes are single use even when the client then fails to authenticate.
            grant.redeemed = true;
            (
                grant.user_id.clone(),
                grant.request.clone(),
                grant.nonce.clone(),
                grant.redirect_kind,
            )
        };
        let auth = self.authenticate(dir, client, credential, kind == RedirectKind::Web)?;
        let user = granted_user(dir, &user_id)?;
        self.user_tokens(
            dir,
            &UserIssue {
                client,
                client_auth: auth,
                user,
                request: &request,
                nonce: nonce.as_deref(),
                spa: kind == RedirectKind::Spa,
            },
        )
    }

    fn refresh_token(
        &self,
        dir: &Directory,
        client: &App,
        credential: &Credential,
    ) -> Result<Value, EntraError> {
        let token = self.form.require("refresh_token")?;
        let fmt = |t: i64| {
            OffsetDateTime::from_unix_timestamp(t)
                .map(|d| {
                    d.format(&time::format_description::well_known::Rfc3339)
                        .unwrap_or_default()
                })
                .unwrap_or_default()
        };
        let (user_id, spa, confidential) = {
            let mut grants = self.entra.grants();
            let grant = grants
                .refresh_tokens
                .get_mut(token)
                .ok_or(EntraError::MalformedGrant)?;
            if !grant.client_id.eq_ignore_ascii_case(client.app_id()) {
                return Err(EntraError::GrantMismatch);
            }
            let user = dir
                .user_by_id(&grant.user_id)
                .ok_or(EntraError::MalformedGrant)?;
            if grant.revoked || grant.issued_ms < user.tokens_valid_from_ms {
                return Err(EntraError::RefreshTokenRevoked {
                    issued: fmt(grant.issued_at),
                    valid_from: fmt(user.tokens_valid_from_ms.div_euclid(1000)),
                });
            }
            if grant.spa && grant.issued_at + SPA_REFRESH_LIFETIME <= self.now {
                return Err(EntraError::SpaRefreshTokenExpired {
                    issued: fmt(grant.issued_at),
                });
            }
            if grant.last_used + REFRESH_INACTIVITY <= self.now {
                let idle = self.now - grant.last_used;
                return Err(EntraError::RefreshTokenExpired {
                    issued: fmt(grant.issued_at),
                    inactive: format!(
                        "{}.{:02}:{:02}:{:02}",
                        idle / 86400,
                        idle % 86400 / 3600,
                        idle % 3600 / 60,
                        idle % 60
                    ),
                });
            }
            grant.last_used = self.now;
            (grant.user_id.clone(), grant.spa, grant.confidential)
        };
        let auth = self.authenticate(dir, client, credential, confidential)?;
        let user = granted_user(dir, &user_id)?;
        let request = self.scope_request()?;
        self.user_tokens(
            dir,
            &UserIssue {
                client,
                client_auth: auth,
                user,
                request: &request,
                nonce: None,
                spa,
            },
        )
    }

    /// On-behalf-of (`v2-oauth2-on-behalf-of-flow.md`): the assertion must be a user access
    /// token issued by this tenant *for the calling client*.
    fn on_behalf_of(
        &self,
        dir: &Directory,
        client: &App,
        credential: &Credential,
    ) -> Result<Value, EntraError> {
        let auth = self.authenticate(dir, client, credential, true)?;
        let use_ = self.form.require("requested_token_use")?;
        if use_ != "on_behalf_of" {
            return Err(EntraError::InvalidRequest {
                reason: format!("requested_token_use '{use_}' is not supported"),
            });
        }
        let assertion = self.form.require("assertion")?;
        let user = self.obo_user(dir, client, assertion)?;
        let request = self.scope_request()?;
        self.user_tokens(
            dir,
            &UserIssue {
                client,
                client_auth: auth,
                user,
                request: &request,
                nonce: None,
                spa: false,
            },
        )
    }

    fn obo_user<'d>(
        &self,
        dir: &'d Directory,
        client: &App,
        assertion: &str,
    ) -> Result<&'d User, EntraError> {
        let invalid = |reason: &str| EntraError::OboAssertionInvalid {
            reason: reason.to_string(),
        };
        let jwt = Jwt::parse(assertion).ok_or_else(|| invalid("The assertion is not a JWT."))?;
        let key = jwt
            .header_str("kid")
            .and_then(|kid| self.entra.keys().find(kid))
            .ok_or_else(|| invalid("The key was not found."))?;
        if jwt.header_str("alg") != Some("RS256")
            || !key.verify(jwt.signing_input.as_bytes(), &jwt.signature)
        {
            return Err(invalid(
                "Key was found, but use of the key to verify the signature failed.",
            ));
        }
        let tid = &dir.tenant_id;
        let iss_ok = jwt
            .claim_str("iss")
            .is_some_and(|iss| iss == v1_issuer(tid) || iss == v2_issuer(tid));
        if !iss_ok {
            return Err(invalid("The issuer is not this tenant."));
        }
        if jwt.claim_i64("exp").is_none_or(|exp| exp <= self.now) {
            return Err(EntraError::OboAssertionExpired);
        }
        // ID tokens carry neither `azp` nor `appid`; app-only tokens carry no `scp`.
        if jwt.claim_str("azp").is_none() && jwt.claim_str("appid").is_none() {
            return Err(invalid("An ID token cannot be used as an assertion."));
        }
        if jwt.claim_str("scp").is_none() {
            return Err(invalid(
                "The assertion is an app-only token; only user tokens can be exchanged.",
            ));
        }
        let aud = jwt.claim_str("aud").unwrap_or_default();
        if !client.is_named(aud) {
            return Err(EntraError::OboAudienceMismatch {
                audience: aud.to_string(),
                app_id: client.app_id().to_string(),
                app_name: client.name().to_string(),
            });
        }
        let user = jwt
            .claim_str("oid")
            .and_then(|oid| dir.user_by_id(oid))
            .ok_or_else(|| invalid("The assertion's user does not exist in the tenant."))?;
        if !user.enabled {
            return Err(EntraError::UserDisabled);
        }
        Ok(user)
    }

    /// Access token for the requested resource, plus ID token (`openid`), refresh token
    /// (`offline_access`) and `client_info` (when asked with `client_info=1`).
    fn user_tokens(&self, dir: &Directory, issue: &UserIssue) -> Result<Value, EntraError> {
        let grant = grant_delegated(dir, issue.client, issue.request)?;
        let roles = dir.user_roles(issue.user, grant.resource);
        let ctx = UserContext {
            user: issue.user,
            ip: self.ip.clone(),
        };
        let minter = self.minter(dir);
        let minted = minter.access_token(&AccessTokenSpec {
            resource: grant.resource,
            requested_as: &grant.requested_as,
            client: issue.client,
            client_auth: issue.client_auth,
            user: Some(&ctx),
            scp: &grant.scp,
            roles: &roles,
        });
        let mut reply = Map::new();
        reply.insert("token_type".into(), json!("Bearer"));
        match self.endpoint {
            Endpoint::V2 => {
                reply.insert("scope".into(), json!(grant.reply_scope(issue.request)));
            }
            Endpoint::V1 => {
                reply.insert("scope".into(), json!(grant.scp.join(" ")));
            }
        }
        self.put_lifetimes(&mut reply, &minted, &grant.requested_as);
        reply.insert("access_token".into(), json!(minted.token));
        if issue.request.has("offline_access") {
            let handle = self.entra.grants().add_refresh_token(
                RefreshGrant {
                    client_id: issue.client.app_id().to_string(),
                    user_id: issue.user.id.clone(),
                    issued_at: self.now,
                    issued_ms: self.entra.clock().unix_millis(),
                    last_used: self.now,
                    spa: issue.spa,
                    confidential: issue.client_auth != ClientAuth::Public,
                    revoked: false,
                },
                self.now,
            );
            reply.insert("refresh_token".into(), json!(handle));
            if issue.spa {
                reply.insert(
                    "refresh_token_expires_in".into(),
                    json!(SPA_REFRESH_LIFETIME),
                );
            }
        }
        if issue.request.has("openid") && self.endpoint == Endpoint::V2 {
            let id_token = minter.id_token(
                issue.client,
                &ctx,
                issue.nonce,
                issue.request.has("profile"),
                None,
            );
            reply.insert("id_token".into(), json!(id_token));
        }
        if self.form.get("client_info") == Some("1") {
            reply.insert("client_info".into(), json!(client_info(dir, issue.user)));
        }
        Ok(Value::Object(reply))
    }

    /// v2 replies carry numbers; v1 replies carry them as strings plus `expires_on`,
    /// `not_before` and `resource` (as the v1 endpoint's replies in Azure's older samples).
    fn put_lifetimes(
        &self,
        reply: &mut Map<String, Value>,
        minted: &crate::tokens::Minted,
        resource: &str,
    ) {
        match self.endpoint {
            Endpoint::V2 => {
                reply.insert("expires_in".into(), json!(minted.expires_in));
                reply.insert("ext_expires_in".into(), json!(minted.expires_in));
            }
            Endpoint::V1 => {
                reply.insert("expires_in".into(), json!(minted.expires_in.to_string()));
                reply.insert(
                    "ext_expires_in".into(),
                    json!(minted.expires_in.to_string()),
                );
                reply.insert("expires_on".into(), json!(minted.expires_on.to_string()));
                reply.insert("not_before".into(), json!(minted.not_before.to_string()));
                reply.insert("resource".into(), json!(resource));
            }
        }
    }
}

/// The user a code or refresh token was granted to, who must still exist and be enabled.
fn granted_user<'d>(dir: &'d Directory, user_id: &str) -> Result<&'d User, EntraError> {
    let user = dir.user_by_id(user_id).ok_or(EntraError::MalformedGrant)?;
    if !user.enabled {
        return Err(EntraError::UserDisabled);
    }
    Ok(user)
}

/// `client_info`: base64url JSON of the user's object id and tenant, which MSAL uses to key
/// its account cache.
pub(crate) fn client_info(dir: &Directory, user: &User) -> String {
    URL_SAFE_NO_PAD.encode(json!({"uid": user.id, "utid": dir.tenant_id}).to_string())
}
