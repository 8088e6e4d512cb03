//! The service configuration, as the harness builds it from the landscape (serde) or the binary
//! from its environment.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use ppvnet_common::token::ValidatorConfig;
use serde::{Deserialize, Serialize};

use crate::generator::DataConfig;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SearchApiConfig {
    /// The tenant whose tokens are accepted (`tid`).
    pub tenant_id: String,
    /// The tenant's OpenID discovery document; signing keys come from its `jwks_uri`.
    pub metadata_url: String,
    /// Accepted `aud`: the API app's client id (v2 tokens) and identifier URI (v1 tokens).
    pub audiences: Vec<String>,
    /// Accepted `iss`, compared exactly.
    pub issuers: Vec<String>,
    /// Delegated permission every user call needs.
    #[serde(default = "default_scope")]
    pub required_scope: String,
    /// App role that grants access to every case (app-only callers need it to call at all).
    #[serde(default = "default_read_all_role")]
    pub read_all_role: String,
    /// Group memberships by user object id, used for tokens without a `groups` claim (the app
    /// does not request group claims, or the user is in too many groups and Entra sent the
    /// overage marker instead): what a real API would look up in Microsoft Graph.
    #[serde(default)]
    pub directory: BTreeMap<String, Vec<String>>,
    /// Database file, reused when it holds the same data; `None` builds a temporary one.
    #[serde(default)]
    pub database: Option<PathBuf>,
    /// A folder of case databases built before, reused by fingerprint of `data` instead of
    /// building again (`CaseStore::open_cached`); the harness uses the user's cache folder.
    #[serde(default)]
    pub case_cache: Option<PathBuf>,
    #[serde(default)]
    pub data: DataConfig,
    /// App Service "public network access": when false, requests that do not arrive through a
    /// private endpoint get App Service's 403 page.
    #[serde(default = "enabled")]
    pub public_network_access_enabled: bool,
    /// Minimum seconds between two signing-key refetches caused by unknown `kid`s.
    #[serde(default = "default_key_refresh")]
    pub key_refresh_interval_secs: u64,
}

fn default_scope() -> String {
    "Cases.Read".to_owned()
}

fn default_read_all_role() -> String {
    "Cases.Read.All".to_owned()
}

fn enabled() -> bool {
    true
}

fn default_key_refresh() -> u64 {
    300
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("tenant_id is empty")]
    NoTenant,
    #[error("audiences is empty: tokens for any resource would have to be refused")]
    NoAudiences,
    #[error("issuers is empty: every token would be refused")]
    NoIssuers,
    #[error("data.count is {0} but data.owners is empty: generated cases need owners")]
    NoOwners(u64),
}

impl SearchApiConfig {
    /// The configuration of an Entra-protected API: v2 discovery under `authority` (e.g.
    /// `https://login.microsoftonline.com`), both issuer forms, and the client id plus
    /// identifier URI as audiences. Data and network settings keep their defaults.
    pub fn for_entra(
        authority: &str,
        tenant_id: &str,
        client_id: &str,
        identifier_uri: &str,
    ) -> Self {
        Self {
            tenant_id: tenant_id.to_owned(),
            metadata_url: format!(
                "{}/{tenant_id}/v2.0/.well-known/openid-configuration",
                authority.trim_end_matches('/')
            ),
            audiences: vec![client_id.to_owned(), identifier_uri.to_owned()],
            issuers: ValidatorConfig::entra_issuers(tenant_id),
            required_scope: default_scope(),
            read_all_role: default_read_all_role(),
            directory: BTreeMap::new(),
            database: None,
            case_cache: None,
            data: DataConfig::default(),
            public_network_access_enabled: true,
            key_refresh_interval_secs: default_key_refresh(),
        }
    }

    pub fn check(&self) -> Result<(), ConfigError> {
        if self.tenant_id.trim().is_empty() {
            return Err(ConfigError::NoTenant);
        }
        if self.audiences.is_empty() {
            return Err(ConfigError::NoAudiences);
        }
        if self.issuers.is_empty() {
            return Err(ConfigError::NoIssuers);
        }
        if self.data.count > 0 && self.data.owners.is_empty() {
            return Err(ConfigError::NoOwners(self.data.count));
        }
        Ok(())
    }

    pub fn validator_config(&self) -> ValidatorConfig {
        let mut config = ValidatorConfig::new(
            self.metadata_url.clone(),
            self.tenant_id.clone(),
            self.audiences.clone(),
            self.issuers.clone(),
        );
        config.min_refresh_interval = Duration::from_secs(self.key_refresh_interval_secs);
        config
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_minimal_document_gets_the_defaults() {
        let config: SearchApiConfig = serde_json::from_value(serde_json::json!({
            "tenant_id": "t",
            "metadata_url": "https://login.microsoftonline.com/t/v2.0/.well-known/openid-configuration",
            "audiences": ["client", "api://contoso-cases"],
            "issuers": ["https://login.microsoftonline.com/t/v2.0"],
        }))
        .unwrap();
        assert_eq!(config.required_scope, "Cases.Read");
        assert_eq!(config.read_all_role, "Cases.Read.All");
        assert!(config.public_network_access_enabled);
        assert_eq!(config.data.count, 10_000);
        assert_eq!(config.check(), Err(ConfigError::NoOwners(10_000)));
    }

    #[test]
    fn unknown_fields_are_refused() {
        let e = serde_json::from_value::<SearchApiConfig>(serde_json::json!({
            "tenant_id": "t", "metadata_url": "m", "audiences": [], "issuers": [],
            "public_access": false,
        }))
        .unwrap_err();
        assert!(e.to_string().contains("public_access"), "{e}");
    }

    #[test]
    fn for_entra_derives_discovery_and_both_issuers() {
        let c = SearchApiConfig::for_entra("https://login.example/", "tid", "cid", "api://x");
        assert_eq!(
            c.metadata_url,
            "https://login.example/tid/v2.0/.well-known/openid-configuration"
        );
        assert_eq!(
            c.issuers,
            vec![
                "https://sts.windows.net/tid/",
                "https://login.microsoftonline.com/tid/v2.0"
            ]
        );
        assert_eq!(c.audiences, vec!["cid", "api://x"]);
        assert_eq!(
            c.validator_config().min_refresh_interval,
            Duration::from_secs(300)
        );
    }
}
