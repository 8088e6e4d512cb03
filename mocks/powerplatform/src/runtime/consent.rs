//! Creating connections (`POST /connections`) and the consent callback (`GET /redirect…`).
//!
//! The consent link is Entra's authorize URL with the connector's client id, the connector's
//! redirect URL (`redirectUrl` of its settings; otherwise `{public_url}/redirect/{connector}` for
//! `GlobalPerConnector` and `{public_url}/redirect` for `Global`), `response_type=code`, PKCE
//! S256 and a one-time `state`. The authorize and token URLs use the configured
//! `authority_host` (the landscape's Entra), not the definition's `loginUri`, which names the
//! real cloud. The mock Entra serves only the v2 authorize endpoint, so the v1 link of a
//! resource-only connector cannot be followed there yet. The callback redeems the code at Entra's token endpoint with the
//! client secret from the `internet` host, as the consent service does.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::PowerPlatform;
use super::connections::{
    Connection, ConnectionStatus, Grant, OAuthRequest, PendingConsent, oauth_settings, push_target,
};
use super::error::ControlError;
use super::tokens::EndpointVersion;

/// The body of `POST /connections`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NewConnection {
    /// Environment name or id (the `/providers/Microsoft.PowerApps/environments/` form too).
    pub environment: String,
    pub connector: String,
    /// Service principal connections: the app's credential (else the connector's own).
    #[serde(default)]
    pub client_id: Option<String>,
    #[serde(default)]
    pub client_secret: Option<String>,
    /// `true` for a service principal connection.
    #[serde(default)]
    pub service_principal: bool,
    /// Non-token connection parameters.
    #[serde(default)]
    pub parameters: BTreeMap<String, String>,
}

/// `POST /connections`: the caller (a user token for API Hub) becomes the owner.
pub async fn create(
    State(pp): State<PowerPlatform>,
    headers: HeaderMap,
    Json(body): Json<NewConnection>,
) -> Result<Response, ControlError> {
    let owner = super::auth::caller(&pp.inner.validator, &headers).await?;
    let (connection, consent_link) = open(&pp, owner, &body, None).await?;
    let mut reply = connection.view();
    reply["consentLink"] = consent_link.into();
    Ok((StatusCode::CREATED, Json(reply)).into_response())
}

/// Creates and stores `owner`'s connection; a user connection comes back `Unauthenticated` with
/// its consent link. `return_to` is where the consent callback sends the browser once the
/// connection is made (the case-search app's page); without it the callback shows its own page.
pub(crate) async fn open(
    pp: &PowerPlatform,
    owner: String,
    body: &NewConnection,
    return_to: Option<String>,
) -> Result<(Connection, Option<String>), ControlError> {
    let environment = pp
        .environment(&body.environment)
        .ok_or_else(|| ControlError::NotFound(format!("No environment '{}'.", body.environment)))?
        .name
        .clone();
    let saved = pp.saved(&environment, &body.connector).ok_or_else(|| {
        ControlError::NotFound(format!(
            "Connector '{}' is not saved in environment '{environment}'.",
            body.connector
        ))
    })?;
    let mut connection = Connection {
        id: uuid::Uuid::new_v4().simple().to_string(),
        environment,
        connector: saved.name.clone(),
        owner,
        grant: Grant::None,
        status: ConnectionStatus::Connected,
        error: None,
        parameters: body.parameters.clone(),
        created_at: pp.inner.clock.unix(),
        tokens: None,
        pending: None,
    };
    let mut consent_link = None;
    if let Some(settings) = oauth_settings(&saved) {
        let request = pp
            .oauth_request(&saved, settings)
            .map_err(ControlError::BadRequest)?;
        if body.service_principal {
            if !settings.service_principal {
                return Err(ControlError::BadRequest(format!(
                    "Connector '{}' does not support service principal connections.",
                    saved.name
                )));
            }
            connect_app(pp, &mut connection, &request, body).await;
        } else {
            let redirect_uri = redirect_uri(pp, &saved.name, settings);
            let (link, mut pending) = consent(pp, &request, redirect_uri);
            pending.return_to = return_to;
            connection.grant = Grant::User;
            connection.status = ConnectionStatus::Unauthenticated;
            consent_link = Some(link);
            connection.pending = Some(pending);
        }
    }
    {
        let mut store = pp.store();
        if let Some(p) = &connection.pending {
            store
                .by_state
                .insert(p.state.clone(), connection.id.clone());
        }
        store
            .by_id
            .insert(connection.id.clone(), connection.clone());
    }
    Ok((connection, consent_link))
}

/// Client credentials now: the connection is `Connected` or `Error` at once.
async fn connect_app(
    pp: &PowerPlatform,
    connection: &mut Connection,
    request: &OAuthRequest,
    body: &NewConnection,
) {
    let client_id = body
        .client_id
        .clone()
        .unwrap_or_else(|| request.client_id.clone());
    let client_secret = body
        .client_secret
        .clone()
        .or_else(|| request.client_secret.clone())
        .unwrap_or_default();
    let now = pp.inner.clock.unix();
    match pp
        .client_credentials(request, &client_id, &client_secret, now)
        .await
    {
        Ok(tokens) => {
            connection.tokens = Some(tokens);
            connection.status = ConnectionStatus::Connected;
        }
        Err(e) => {
            connection.status = ConnectionStatus::Error;
            connection.error = Some(e.summary());
        }
    }
    connection.grant = Grant::ServicePrincipal {
        client_id,
        client_secret,
    };
}

fn redirect_uri(
    pp: &PowerPlatform,
    connector: &str,
    settings: &crate::connector::OAuthSettings,
) -> String {
    if let Some(url) = settings.redirect_url.as_ref().filter(|u| !u.is_empty()) {
        return url.clone();
    }
    let base = pp.inner.config.public_url.trim_end_matches('/');
    if settings
        .redirect_mode
        .eq_ignore_ascii_case("GlobalPerConnector")
    {
        format!("{base}/redirect/{connector}")
    } else {
        format!("{base}/redirect")
    }
}

/// The authorize URL and what the callback must repeat.
fn consent(
    pp: &PowerPlatform,
    request: &OAuthRequest,
    redirect_uri: String,
) -> (String, PendingConsent) {
    let state = random_token(24);
    let verifier = random_token(48);
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    let path = match request.endpoint {
        EndpointVersion::V1 => "oauth2/authorize",
        EndpointVersion::V2 => "oauth2/v2.0/authorize",
    };
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    query
        .append_pair("client_id", &request.client_id)
        .append_pair("response_type", "code")
        .append_pair("redirect_uri", &redirect_uri)
        .append_pair("state", &state)
        .append_pair("code_challenge", &challenge)
        .append_pair("code_challenge_method", "S256");
    match request.endpoint {
        EndpointVersion::V1 => {
            query.append_pair("resource", request.resource.as_deref().unwrap_or(""))
        }
        EndpointVersion::V2 => query.append_pair("scope", request.scope.as_deref().unwrap_or("")),
    };
    let link = format!(
        "{}/{}/{path}?{}",
        pp.inner.config.authority_host,
        request.tenant,
        query.finish()
    );
    (
        link,
        PendingConsent {
            state,
            verifier,
            redirect_uri,
            return_to: None,
        },
    )
}

/// A URL-safe random token of `bytes` random bytes (states, verifiers, session ids).
pub(crate) fn random_token(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut buf);
    URL_SAFE_NO_PAD.encode(buf)
}

/// The consent callback's query.
#[derive(Debug, Deserialize)]
pub struct Callback {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

/// `GET /redirect` and `GET /redirect/{*rest}`: redeems the code of a pending consent.
pub async fn redirect(State(pp): State<PowerPlatform>, Query(q): Query<Callback>) -> Response {
    let state = q.state.unwrap_or_default();
    let found = {
        let mut store = pp.store();
        let id = store.by_state.remove(&state);
        id.and_then(|id| store.by_id.get(&id).cloned())
    };
    let Some(connection) = found else {
        return page(
            StatusCode::BAD_REQUEST,
            "The sign-in state is unknown or was already used. Create the connection again.",
        );
    };
    let outcome = match (q.error, q.code) {
        (Some(error), _) => Err(format!(
            "{error}: {}",
            q.error_description.unwrap_or_default()
        )),
        (None, Some(code)) => redeem(&pp, &connection, &code).await,
        (None, None) => Err("The sign-in answer carries no code.".to_owned()),
    };
    let mut store = pp.store();
    let Some(stored) = store.by_id.get_mut(&connection.id) else {
        return page(StatusCode::NOT_FOUND, "The connection was deleted.");
    };
    let return_to = stored.pending.take().and_then(|p| p.return_to);
    match outcome {
        Ok(tokens) => {
            stored.tokens = Some(tokens);
            stored.status = ConnectionStatus::Connected;
            stored.error = None;
        }
        Err(message) => {
            stored.status = ConnectionStatus::Error;
            stored.error = Some(message.clone());
            // The app shows a failed connection with its error on its own page.
            if return_to.is_none() {
                return page(StatusCode::BAD_REQUEST, &message);
            }
        }
    }
    match return_to {
        Some(to) => super::app::see_other(&to),
        None => page(StatusCode::OK, "The connection was created."),
    }
}

/// Redeems `code` with the connector's client secret and the consent's PKCE verifier.
async fn redeem(
    pp: &PowerPlatform,
    connection: &Connection,
    code: &str,
) -> Result<super::tokens::TokenSet, String> {
    let pending = connection
        .pending
        .as_ref()
        .ok_or("The connection has no sign-in in progress.")?;
    let saved = pp
        .saved(&connection.environment, &connection.connector)
        .ok_or_else(|| format!("Connector '{}' is no longer saved.", connection.connector))?;
    let settings = oauth_settings(&saved)
        .ok_or_else(|| format!("Connector '{}' has no OAuth settings.", saved.name))?;
    let request = pp.oauth_request(&saved, settings)?;
    let mut form = vec![
        ("grant_type", "authorization_code"),
        ("client_id", request.client_id.as_str()),
        ("code", code),
        ("redirect_uri", pending.redirect_uri.as_str()),
        ("code_verifier", pending.verifier.as_str()),
    ];
    push_target(&mut form, &request);
    if let Some(secret) = &request.client_secret {
        form.push(("client_secret", secret.as_str()));
    }
    pp.token_request(&request, &form, pp.inner.clock.unix())
        .await
        .map_err(|e| e.summary())
}

/// The consent window's page.
fn page(status: StatusCode, message: &str) -> Response {
    let escaped = super::app::page::escape(message);
    let html = format!(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>Connection</title></head>\
         <body><p id=\"outcome\">{escaped}</p></body></html>\n"
    );
    (status, Html(html)).into_response()
}
