//! Environment variables as a connector takes them when it is saved.
//!
//! Text-like variables (String, Number, Boolean, JSON) pass through as written. A Secret
//! variable holds a Key Vault reference and is resolved *as the Dataverse service principal*
//! (MicrosoftDocs/powerapps-docs:
//! powerapps-docs/maker/data-platform/EnvironmentVariables-azure-key-vault-secrets.md): a
//! client-credentials token for `https://vault.azure.net` from Entra (cloud side, `internet`), then
//! `GET https://{vault}.vault.azure.net/secrets/{name}` sent from the environment's active host, so
//! the vault's RBAC, firewall and private endpoint rules and the vNet's DNS and NSGs all apply. A
//! failure keeps which variable, vault, host and cause.

use std::collections::BTreeSet;
use std::time::Duration;

use serde::Deserialize;

use super::Outbound;
use super::config::{EnvironmentConfig, RuntimeConfig, VariableKind};
use super::egress::classify;
use super::tokens::{self, EndpointVersion};
use crate::keyvault_ref::KeyVaultReference;

/// Key Vault's data-plane API version the runtime uses.
pub const KEYVAULT_API_VERSION: &str = "7.5";
/// How long one secret read may take (UNVERIFIED; Dataverse does not publish it).
pub const SECRET_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// A secret value is at most 25 KB; anything much larger is not a Key Vault answer.
const MAX_SECRET_REPLY: usize = 256 * 1024;

/// Why a variable has no value.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.message())]
pub struct VariableError {
    pub variable: String,
    pub vault: Option<String>,
    /// The host the read was sent from.
    pub host: Option<String>,
    pub cause: String,
}

impl VariableError {
    fn new(variable: &str, cause: impl Into<String>) -> Self {
        Self {
            variable: variable.to_owned(),
            vault: None,
            host: None,
            cause: cause.into(),
        }
    }

    /// One line naming the variable, the vault, the host and the cause.
    pub fn message(&self) -> String {
        let mut text = format!("Environment variable '{}'", self.variable);
        if let Some(vault) = &self.vault {
            text.push_str(&format!(" (Key Vault '{vault}'"));
            if let Some(host) = &self.host {
                text.push_str(&format!(", read from '{host}'"));
            }
            text.push(')');
        }
        text.push_str(": ");
        text.push_str(&self.cause);
        text
    }
}

/// One variable as taken at save time.
#[derive(Clone, Debug)]
pub struct VariableOutcome {
    pub schema_name: String,
    pub kind: Option<VariableKind>,
    pub value: Result<String, VariableError>,
}

/// Resolves the variables `names` of `environment`.
pub async fn resolve(
    config: &RuntimeConfig,
    outbound: &dyn Outbound,
    now: i64,
    environment: &EnvironmentConfig,
    names: &BTreeSet<String>,
) -> Vec<VariableOutcome> {
    let mut reader = SecretReader {
        config,
        outbound,
        now,
        environment: &environment.name,
        token: None,
    };
    let mut outcomes = Vec::new();
    for name in names {
        let Some(variable) = environment
            .variables
            .iter()
            .find(|v| v.schema_name.eq_ignore_ascii_case(name))
        else {
            outcomes.push(VariableOutcome {
                schema_name: name.clone(),
                kind: None,
                value: Err(VariableError::new(
                    name,
                    format!("not defined in environment '{}'", environment.name),
                )),
            });
            continue;
        };
        let value = match variable.kind {
            VariableKind::Secret => reader.read(&variable.schema_name, &variable.value).await,
            _ => Ok(variable.value.clone()),
        };
        outcomes.push(VariableOutcome {
            schema_name: variable.schema_name.clone(),
            kind: Some(variable.kind),
            value,
        });
    }
    outcomes
}

/// Reads secrets for one save; Dataverse's token is fetched once, on the first secret.
struct SecretReader<'a> {
    config: &'a RuntimeConfig,
    outbound: &'a dyn Outbound,
    now: i64,
    environment: &'a str,
    token: Option<Result<String, String>>,
}

#[derive(Deserialize)]
struct SecretBundle {
    value: Option<String>,
}

#[derive(Deserialize)]
struct VaultErrorReply {
    error: VaultError,
}

#[derive(Deserialize)]
struct VaultError {
    code: Option<String>,
    message: Option<String>,
}

impl SecretReader<'_> {
    async fn dataverse_token(&mut self) -> Result<String, String> {
        if let Some(token) = &self.token {
            return token.clone();
        }
        let token = self.fetch_token().await;
        self.token = Some(token.clone());
        token
    }

    async fn fetch_token(&self) -> Result<String, String> {
        let client = self
            .outbound
            .client("internet")
            .map_err(|e| format!("no client for the Entra token request: {e}"))?;
        let credential = &self.config.dataverse;
        let url = tokens::token_url(
            &self.config.authority_host,
            &self.config.tenant_id,
            EndpointVersion::V2,
        );
        let form = [
            ("grant_type", "client_credentials"),
            ("client_id", credential.client_id.as_str()),
            ("client_secret", credential.client_secret.as_str()),
            ("scope", "https://vault.azure.net/.default"),
        ];
        tokens::request(&client, &url, &form, self.now)
            .await
            .map(|t| t.access_token)
            .map_err(|e| {
                format!(
                    "Dataverse could not get a token for Key Vault: {}",
                    e.summary()
                )
            })
    }

    async fn read(&mut self, variable: &str, reference: &str) -> Result<String, VariableError> {
        let reference = KeyVaultReference::parse(reference.trim())
            .map_err(|e| VariableError::new(variable, e.to_string()))?;
        let mut error = VariableError::new(variable, String::new());
        error.vault = Some(reference.vault.clone());
        let host = self.outbound.active_host(self.environment).map_err(|e| {
            let mut error = error.clone();
            error.cause = format!("no active host for environment '{}': {e}", self.environment);
            error
        })?;
        error.host = Some(host.clone());
        let fail = |cause: String| {
            let mut error = error.clone();
            error.cause = cause;
            error
        };
        let token = self.dataverse_token().await.map_err(&fail)?;
        let client = self
            .outbound
            .client(&host)
            .map_err(|e| fail(format!("no client for host '{host}': {e}")))?;
        let url = format!(
            "https://{}.vault.azure.net/secrets/{}?api-version={KEYVAULT_API_VERSION}",
            reference.vault, reference.secret
        );
        let response = client
            .get(&url)
            .bearer_auth(token)
            .timeout(SECRET_READ_TIMEOUT)
            .send()
            .await
            .map_err(|e| fail(format!("{url}: {}", classify(&e).describe())))?;
        let status = response.status().as_u16();
        let body = response
            .bytes()
            .await
            .map_err(|e| fail(format!("{url}: {}", classify(&e).describe())))?;
        if body.len() > MAX_SECRET_REPLY {
            return Err(fail(format!("{url}: answer of {} bytes", body.len())));
        }
        if (200..300).contains(&status) {
            return serde_json::from_slice::<SecretBundle>(&body)
                .ok()
                .and_then(|b| b.value)
                .ok_or_else(|| fail(format!("{url}: the answer holds no secret value")));
        }
        Err(fail(vault_refusal(status, &body)))
    }
}

/// Key Vault's refusal with its own code and message passed through (the RBAC "Caller is not
/// authorized…", public-access and firewall texts are what an administrator searches for).
fn vault_refusal(status: u16, body: &[u8]) -> String {
    match serde_json::from_slice::<VaultErrorReply>(body) {
        Ok(VaultErrorReply { error }) => format!(
            "Key Vault answered {status} {}: {}",
            error.code.unwrap_or_default(),
            error.message.unwrap_or_default()
        ),
        Err(_) => format!(
            "Key Vault answered {status}: {}",
            String::from_utf8_lossy(&body[..body.len().min(500)])
        ),
    }
}

/// The names a definition refers to with `@environmentVariables("x")` (either quote, and
/// JSON-escaped quotes as they appear in the raw files).
pub fn referenced_names(texts: &[&[u8]]) -> BTreeSet<String> {
    const MARKER: &str = "@environmentVariables(";
    let mut names = BTreeSet::new();
    for text in texts {
        let text = String::from_utf8_lossy(text);
        let mut rest = text.as_ref();
        while let Some(at) = rest.find(MARKER) {
            rest = &rest[at + MARKER.len()..];
            let name: String = rest
                .trim_start_matches(['\\', '"', '\'', ' '])
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '.')
                .collect();
            if !name.is_empty() {
                names.insert(name);
            }
        }
    }
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_are_found_in_raw_json_with_either_quote() {
        let swagger = br#"{"host": "@environmentVariables(\"cr49f_Host\")"}"#;
        let props = br#"{"clientId": "@environmentVariables('cr49f_ClientId')", "x": "@environmentVariables(\"cr49f_Host\")"}"#;
        let names = referenced_names(&[swagger, props]);
        assert_eq!(
            names.into_iter().collect::<Vec<_>>(),
            ["cr49f_ClientId", "cr49f_Host"]
        );
    }

    #[test]
    fn vault_text_is_passed_through() {
        let body = br#"{"error":{"code":"Forbidden","message":"Caller is not authorized to perform action on resource.\r\nX","innererror":{"code":"ForbiddenByRbac"}}}"#;
        let text = vault_refusal(403, body);
        assert!(
            text.starts_with("Key Vault answered 403 Forbidden: Caller is not authorized"),
            "{text}"
        );
    }
}
