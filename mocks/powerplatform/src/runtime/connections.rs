//! Connections: one per (environment, connector, owner), holding the tokens the runtime sends
//! to the backend.
//!
//! A user connection (OAuth 2.0, `aad` provider, "access code" flow) is created
//! `Unauthenticated` with a consent link, becomes `Connected` when the consent callback's code
//! is redeemed, and is refreshed with its refresh token when the access token is about to
//! expire (run clock). A service principal connection gets app-only tokens by client
//! credentials. Any failure to get a token turns the connection to `Error`, keeping Entra's
//! words (the broken-connection texts users see are Entra's AADSTS descriptions:
//! MicrosoftDocs/SupportArticles-docs
//! `…/power-automate/connections/troubleshoot-broken-connections.md`).

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;
use serde_json::{Value, json};

use super::PowerPlatform;
use super::saved::SavedConnector;
use super::tokens::{self, EndpointVersion, TokenFailure, TokenSet};
use crate::connector::{ConnectionAuth, OAuthSettings};

/// A token is refreshed when it has less than this left (seconds).
const REFRESH_MARGIN: i64 = 300;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum ConnectionStatus {
    /// Created, consent not completed (UNVERIFIED name; Power Apps shows such a connection as
    /// needing sign-in).
    Unauthenticated,
    Connected,
    Error,
}

/// How the connection authenticates to the backend.
#[derive(Clone, Debug)]
pub enum Grant {
    /// The connector has no `token` parameter.
    None,
    /// Delegated: the owner signed in.
    User,
    /// App-only (`token:grantType` client_credentials).
    ServicePrincipal {
        client_id: String,
        client_secret: String,
    },
}

/// One connection.
#[derive(Clone, Debug)]
pub struct Connection {
    /// 32 hex digits, as in `/apim/{connector}/{connectionId}`.
    pub id: String,
    pub environment: String,
    pub connector: String,
    /// Object id of the user who created it (lower case).
    pub owner: String,
    pub grant: Grant,
    pub status: ConnectionStatus,
    pub error: Option<String>,
    pub parameters: BTreeMap<String, String>,
    pub created_at: i64,
    pub(crate) tokens: Option<TokenSet>,
    pub(crate) pending: Option<PendingConsent>,
}

impl Connection {
    /// The control view: never the tokens.
    pub fn view(&self) -> Value {
        let kind = match self.grant {
            Grant::None => "none",
            Grant::User => "user",
            Grant::ServicePrincipal { .. } => "servicePrincipal",
        };
        json!({
            "id": self.id,
            "environment": self.environment,
            "connector": self.connector,
            "owner": self.owner,
            "kind": kind,
            "status": self.status,
            "error": self.error,
            "parameters": self.parameters,
            "createdAt": self.created_at,
            "tokenExpiresAt": self.tokens.as_ref().map(|t| t.expires_at),
        })
    }
}

/// A consent in progress: what the code redemption must repeat.
#[derive(Clone, Debug)]
pub(crate) struct PendingConsent {
    pub state: String,
    pub verifier: String,
    pub redirect_uri: String,
    /// Where the browser goes once connected (the case-search app), if anywhere.
    pub return_to: Option<String>,
}

/// Every connection, and the consent states pointing at them.
#[derive(Debug, Default)]
pub struct ConnectionStore {
    pub(crate) by_id: HashMap<String, Connection>,
    pub(crate) by_state: HashMap<String, String>,
}

/// The OAuth parameters of a connector as saved: settings with variables expanded.
#[derive(Clone, Debug)]
pub struct OAuthRequest {
    pub endpoint: EndpointVersion,
    pub tenant: String,
    pub client_id: String,
    pub client_secret: Option<String>,
    /// v1: `resource=`.
    pub resource: Option<String>,
    /// v2: `scope=` (space separated, with `offline_access`).
    pub scope: Option<String>,
}

/// The connector's OAuth settings, if it has any.
pub fn oauth_settings(saved: &SavedConnector) -> Option<&OAuthSettings> {
    match &saved.connector.as_deref()?.auth {
        ConnectionAuth::OAuth(settings) => Some(settings),
        ConnectionAuth::None => None,
    }
}

impl PowerPlatform {
    /// Expands a setting with the saved variables; an unresolved variable it refers to is named
    /// with its save-time cause.
    pub(crate) fn expand_setting(
        &self,
        saved: &SavedConnector,
        setting: &str,
    ) -> Result<String, String> {
        let names = super::variables::referenced_names(&[setting.as_bytes()]);
        if let Some(error) = saved.unresolved().find(|e| names.contains(&e.variable)) {
            return Err(error.message());
        }
        self.inner
            .logic
            .expand(setting, &saved.bindings)
            .map_err(|e| e.to_string())
    }

    /// The v1/v2 choice and expanded credentials for `settings`.
    ///
    /// UNVERIFIED (no public source says which endpoint the `aad` provider calls): with `scopes`
    /// empty and a resource URI the v1 endpoints are used (`resource=`, as the `aad` provider's
    /// default block suggests); with scopes, v2 (`scope=` plus `offline_access`, without which v2
    /// issues no refresh token).
    pub(crate) fn oauth_request(
        &self,
        saved: &SavedConnector,
        settings: &OAuthSettings,
    ) -> Result<OAuthRequest, String> {
        let client_id = self.expand_setting(saved, &settings.client_id)?;
        let client_secret = match &settings.client_secret {
            Some(s) => Some(self.expand_setting(saved, s)?),
            None => None,
        };
        let tenant = settings
            .tenant_id
            .clone()
            .filter(|t| !t.trim().is_empty())
            .unwrap_or_else(|| self.inner.config.tenant_id.clone());
        let resource = settings.resource_uri.clone().filter(|r| !r.is_empty());
        let (endpoint, scope) = if settings.scopes.is_empty() {
            if resource.is_none() {
                return Err(format!(
                    "The OAuth settings of connector '{}' have neither scopes nor a resource URI.",
                    saved.name
                ));
            }
            (EndpointVersion::V1, None)
        } else {
            let mut scopes = settings.scopes.clone();
            if !scopes.iter().any(|s| s == "offline_access") {
                scopes.push("offline_access".to_owned());
            }
            (EndpointVersion::V2, Some(scopes.join(" ")))
        };
        Ok(OAuthRequest {
            endpoint,
            tenant,
            client_id,
            client_secret,
            resource,
            scope,
        })
    }

    /// A snapshot of one connection.
    pub fn connection(&self, id: &str) -> Option<Connection> {
        self.store().by_id.get(id).cloned()
    }

    /// Every connection, oldest first.
    pub fn connections(&self) -> Vec<Connection> {
        let mut all: Vec<Connection> = self.store().by_id.values().cloned().collect();
        all.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        all
    }

    /// Removes a connection; `false` when there was none.
    pub fn delete_connection(&self, id: &str) -> bool {
        let removed = {
            let mut store = self.store();
            let removed = store.by_id.remove(id);
            store.by_state.retain(|_, c| c != id);
            removed.is_some()
        };
        self.inner.limiter.forget(id);
        removed
    }

    /// Turns a connection to `Error` with `message` (its tokens are dropped).
    pub(crate) fn break_connection(&self, id: &str, message: String) {
        if let Some(c) = self.store().by_id.get_mut(id) {
            tracing::warn!(connection = %id, error = %message, "connection broken");
            c.status = ConnectionStatus::Error;
            c.error = Some(message);
            c.tokens = None;
        }
    }

    /// The access token to send for `connection` (`None` for connectors without auth),
    /// refreshed when it is about to expire. Errors are the token exchange's message after
    /// "Error from token exchange".
    pub(crate) async fn access_token(
        &self,
        connection: &Connection,
        saved: &SavedConnector,
    ) -> Result<Option<String>, String> {
        match connection.status {
            ConnectionStatus::Connected => {}
            ConnectionStatus::Error => {
                return Err(format!(
                    ": {}",
                    connection
                        .error
                        .as_deref()
                        .unwrap_or("The connection is broken.")
                ));
            }
            ConnectionStatus::Unauthenticated => {
                return Err(": The connection is not authenticated. Sign in to create it.".into());
            }
        }
        if matches!(connection.grant, Grant::None) {
            return Ok(None);
        }
        let now = self.inner.clock.unix();
        if let Some(t) = &connection.tokens
            && t.expires_at - REFRESH_MARGIN > now
        {
            return Ok(Some(t.access_token.clone()));
        }
        match self.renew(connection, saved, now).await {
            Ok(t) => {
                let token = t.access_token.clone();
                if let Some(c) = self.store().by_id.get_mut(&connection.id) {
                    // Entra may rotate the refresh token; keep the old one otherwise.
                    let refresh = t
                        .refresh_token
                        .clone()
                        .or_else(|| c.tokens.as_ref().and_then(|o| o.refresh_token.clone()));
                    c.tokens = Some(TokenSet {
                        refresh_token: refresh,
                        ..t
                    });
                }
                Ok(Some(token))
            }
            Err(message) => {
                self.break_connection(&connection.id, message.clone());
                Err(format!(": {message}"))
            }
        }
    }

    /// A new token set: refresh grant for users, client credentials for service principals.
    async fn renew(
        &self,
        connection: &Connection,
        saved: &SavedConnector,
        now: i64,
    ) -> Result<TokenSet, String> {
        let settings = oauth_settings(saved)
            .ok_or_else(|| format!("Connector '{}' has no OAuth settings.", saved.name))?;
        let request = self.oauth_request(saved, settings)?;
        match &connection.grant {
            Grant::ServicePrincipal {
                client_id,
                client_secret,
            } => self
                .client_credentials(&request, client_id, client_secret, now)
                .await
                .map_err(|e| e.summary()),
            Grant::User => {
                let refresh = connection
                    .tokens
                    .as_ref()
                    .and_then(|t| t.refresh_token.clone())
                    .ok_or("The connection has no refresh token; sign in again.")?;
                let mut form = vec![
                    ("grant_type", "refresh_token"),
                    ("client_id", request.client_id.as_str()),
                    ("refresh_token", refresh.as_str()),
                ];
                push_target(&mut form, &request);
                if let Some(secret) = &request.client_secret {
                    form.push(("client_secret", secret.as_str()));
                }
                self.token_request(&request, &form, now)
                    .await
                    .map_err(|e| e.summary())
            }
            Grant::None => Err("The connection has no credentials.".into()),
        }
    }

    /// App-only token for a service principal connection. The scope is the resource's
    /// `/.default` (UNVERIFIED: public sources say only "the backend then gets an app-only
    /// token").
    pub(crate) async fn client_credentials(
        &self,
        request: &OAuthRequest,
        client_id: &str,
        client_secret: &str,
        now: i64,
    ) -> Result<TokenSet, TokenFailure> {
        let scope = app_only_scope(request);
        let form = [
            ("grant_type", "client_credentials"),
            ("client_id", client_id),
            ("client_secret", client_secret),
            ("scope", scope.as_str()),
        ];
        let v2 = OAuthRequest {
            endpoint: EndpointVersion::V2,
            ..request.clone()
        };
        self.token_request(&v2, &form, now).await
    }

    /// Posts to the connector's token endpoint from the `internet` host.
    pub(crate) async fn token_request(
        &self,
        request: &OAuthRequest,
        form: &[(&str, &str)],
        now: i64,
    ) -> Result<TokenSet, TokenFailure> {
        let url = tokens::token_url(
            &self.inner.config.authority_host,
            &request.tenant,
            request.endpoint,
        );
        let client =
            self.inner
                .outbound
                .client("internet")
                .map_err(|e| TokenFailure::Malformed {
                    url: url.clone(),
                    status: 0,
                    detail: format!("no client for the internet host: {e}"),
                })?;
        tokens::request(&client, &url, form, now).await
    }

    pub(crate) fn store(&self) -> std::sync::MutexGuard<'_, ConnectionStore> {
        self.inner
            .connections
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// `resource=` (v1) or `scope=` (v2) of a user token request.
pub(crate) fn push_target<'a>(form: &mut Vec<(&'a str, &'a str)>, request: &'a OAuthRequest) {
    match request.endpoint {
        EndpointVersion::V1 => {
            if let Some(r) = &request.resource {
                form.push(("resource", r.as_str()));
            }
        }
        EndpointVersion::V2 => {
            if let Some(s) = &request.scope {
                form.push(("scope", s.as_str()));
            }
        }
    }
}

/// `{resource}/.default`, from the resource URI or the first scope's resource part.
fn app_only_scope(request: &OAuthRequest) -> String {
    if let Some(resource) = &request.resource {
        return format!("{}/.default", resource.trim_end_matches('/'));
    }
    let first = request
        .scope
        .as_deref()
        .and_then(|s| s.split_whitespace().find(|s| s.contains("://")))
        .unwrap_or_default();
    match first.rsplit_once('/') {
        Some((resource, _)) => format!("{resource}/.default"),
        None => format!("{first}/.default"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn app_only_scope_uses_the_resource_or_the_first_scope() {
        let mut r = OAuthRequest {
            endpoint: EndpointVersion::V2,
            tenant: "t".into(),
            client_id: "c".into(),
            client_secret: None,
            resource: None,
            scope: Some("api://cases/Cases.Read offline_access".into()),
        };
        assert_eq!(app_only_scope(&r), "api://cases/.default");
        r.resource = Some("https://graph.microsoft.com/".into());
        assert_eq!(app_only_scope(&r), "https://graph.microsoft.com/.default");
    }
}
