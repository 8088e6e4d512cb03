//! A running ppvnet container and its typed accessors, from the ready file it wrote (the fields
//! this crate reads; ppvnet's `ready` module documents them all).

use std::collections::BTreeMap;
use std::net::SocketAddr;

use serde::Deserialize;

use crate::docker::Container;
use crate::error::{Error, Result};

/// Entra's well-known host name: clients reach the mock by it through the proxy.
pub const ENTRA_HOST: &str = "login.microsoftonline.com";

#[derive(Clone, Debug, Deserialize)]
pub(crate) struct ReadyFile {
    pub scenario: String,
    pub tenant_id: String,
    pub ca_cert: String,
    pub control_url: String,
    #[serde(default)]
    pub control_token: String,
    #[serde(default)]
    pub key_vaults: BTreeMap<String, Vault>,
    #[serde(default)]
    pub apps: BTreeMap<String, App>,
    #[serde(default)]
    pub users: BTreeMap<String, User>,
    #[serde(default)]
    pub hosts: BTreeMap<String, Host>,
}

#[derive(Clone, Debug, Deserialize)]
pub(crate) struct Vault {
    pub url: String,
}

#[derive(Clone, Debug, Deserialize)]
pub(crate) struct App {
    pub client_id: String,
    #[serde(default)]
    pub client_secret: Option<String>,
}

#[derive(Clone, Debug, Deserialize)]
pub(crate) struct User {
    pub password: String,
}

#[derive(Clone, Debug, Deserialize)]
pub(crate) struct Host {
    #[serde(default)]
    pub proxy: Option<SocketAddr>,
}

/// An app registration's client credentials (OAuth 2.0 client credentials grant).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientCredentials {
    pub tenant_id: String,
    pub client_id: String,
    pub client_secret: String,
}

/// A started container of image `I`; dropping it removes the container.
#[derive(Debug)]
pub struct Running<I> {
    image: I,
    container: Container,
    ready: ReadyFile,
    ca_pem: String,
}

impl<I> Running<I> {
    pub(crate) fn new(image: I, container: Container, ready: ReadyFile, ca_pem: String) -> Self {
        Self {
            image,
            container,
            ready,
            ca_pem,
        }
    }

    /// The image configuration it was started with.
    pub fn image(&self) -> &I {
        &self.image
    }

    /// The container's id (`docker logs ID`).
    pub fn id(&self) -> &str {
        self.container.id()
    }

    /// The landscape's name (`entra`, `keyvault`, `contoso`, ...).
    pub fn landscape(&self) -> &str {
        &self.ready.scenario
    }

    pub fn tenant_id(&self) -> &str {
        &self.ready.tenant_id
    }

    /// The PEM certificate of the run's CA, which signed every endpoint's certificate.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// `http://127.0.0.1:PORT`: the internet host's HTTPS proxy. Every URL this crate gives is
    /// reached through it (`HTTPS_PROXY`), with [`Running::ca_pem`] trusted.
    pub fn proxy_url(&self) -> Result<String> {
        self.ready
            .hosts
            .get("internet")
            .and_then(|h| h.proxy)
            .map(|p| format!("http://{p}"))
            .ok_or_else(|| Error::Ready("no proxy for the internet host".into()))
    }

    /// `https://login.microsoftonline.com/<tenant>`: the MSAL authority.
    pub fn authority_url(&self) -> String {
        format!("https://{ENTRA_HOST}/{}", self.ready.tenant_id)
    }

    /// The OAuth 2.0 token endpoint of the tenant.
    pub fn token_url(&self) -> String {
        format!("{}/oauth2/v2.0/token", self.authority_url())
    }

    /// The control API (`http://127.0.0.1:PORT`) and its bearer token.
    pub fn control(&self) -> (&str, &str) {
        (&self.ready.control_url, &self.ready.control_token)
    }

    /// The URL of vault `name` (`https://<name>.vault.azure.net/`).
    pub fn vault_url_of(&self, name: &str) -> Result<String> {
        self.ready
            .key_vaults
            .get(name)
            .map(|v| v.url.clone())
            .ok_or_else(|| self.missing("vault", name, self.ready.key_vaults.keys()))
    }

    /// The client credentials of app registration `app` (its first secret).
    pub fn client_credentials_of(&self, app: &str) -> Result<ClientCredentials> {
        let entry = self
            .ready
            .apps
            .get(app)
            .ok_or_else(|| self.missing("app", app, self.ready.apps.keys()))?;
        let secret = entry.client_secret.clone().ok_or_else(|| {
            Error::NotInLandscape(format!("app '{app}' has no client secret in the landscape"))
        })?;
        Ok(ClientCredentials {
            tenant_id: self.ready.tenant_id.clone(),
            client_id: entry.client_id.clone(),
            client_secret: secret,
        })
    }

    /// The password of user `upn`.
    pub fn password_of(&self, upn: &str) -> Result<&str> {
        self.ready
            .users
            .get(upn)
            .map(|u| u.password.as_str())
            .ok_or_else(|| self.missing("user", upn, self.ready.users.keys()))
    }

    /// An HTTP client that reaches the landscape: through the proxy, trusting the run's CA only.
    pub fn http_client(&self) -> Result<reqwest::Client> {
        let ca = reqwest::Certificate::from_pem(self.ca_pem.as_bytes())?;
        Ok(reqwest::Client::builder()
            .tls_certs_only([ca])
            .proxy(reqwest::Proxy::https(self.proxy_url()?)?)
            .timeout(std::time::Duration::from_secs(30))
            .build()?)
    }

    /// An access token for `scope` (`api://x/.default`, `https://vault.azure.net/.default`) by
    /// the client credentials grant.
    pub async fn token(&self, credentials: &ClientCredentials, scope: &str) -> Result<String> {
        let response = self
            .http_client()?
            .post(self.token_url())
            .form(&[
                ("grant_type", "client_credentials"),
                ("client_id", credentials.client_id.as_str()),
                ("client_secret", credentials.client_secret.as_str()),
                ("scope", scope),
            ])
            .send()
            .await?;
        let status = response.status();
        let body: serde_json::Value = response.json().await?;
        match body.get("access_token").and_then(|t| t.as_str()) {
            Some(token) if status.is_success() => Ok(token.to_string()),
            _ => Err(Error::Token {
                status: status.as_u16(),
                body: body.to_string(),
            }),
        }
    }

    fn missing<'a>(
        &self,
        kind: &str,
        name: &str,
        known: impl Iterator<Item = &'a String>,
    ) -> Error {
        let known: Vec<&str> = known.map(String::as_str).collect();
        Error::NotInLandscape(format!(
            "the landscape '{}' has no {kind} '{name}' (it has: {})",
            self.ready.scenario,
            known.join(", ")
        ))
    }
}
