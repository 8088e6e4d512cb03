//! What a landscape says about its vaults.
//!
//! Field names follow the ARM `Microsoft.KeyVault/vaults` properties where one exists
//! (`publicNetworkAccess`, `networkAcls`, `enableRbacAuthorization`/`accessPolicies`,
//! `softDeleteRetentionInDays`, `enablePurgeProtection`), so the harness can map a landscape's
//! vault onto this type one field at a time.

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;

use ipnet::IpNet;
use ppvnet_common::net::SubnetRef;
use serde::{Deserialize, Serialize};

use crate::names;

/// Every vault one fake Key Vault process serves.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyVaultConfig {
    pub vaults: Vec<VaultConfig>,
    /// Directory holding one store file per vault (`{vault}.kvstore`). `None` keeps everything
    /// in memory.
    #[serde(default)]
    pub data_dir: Option<PathBuf>,
    /// Secret that, together with a vault's subscription and region, keys its backup blobs.
    /// Real backups only restore into a vault of the same subscription and geography; vaults
    /// that share this key, subscription and region accept each other's blobs.
    #[serde(default = "default_backup_key")]
    pub backup_key: String,
    /// Sent as `x-ms-keyvault-service-version` (the value seen in 2026 recordings).
    #[serde(default = "default_service_version")]
    pub service_version: String,
}

impl Default for KeyVaultConfig {
    fn default() -> Self {
        Self {
            vaults: Vec::new(),
            data_dir: None,
            backup_key: default_backup_key(),
            service_version: default_service_version(),
        }
    }
}

/// One vault (`Microsoft.KeyVault/vaults` resource) and its data-plane contents.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VaultConfig {
    /// Vault name: the `{name}` of `{name}.vault.azure.net`.
    pub name: String,
    /// Tenant whose tokens the vault accepts and whose authority the 401 challenge names.
    pub tenant_id: String,
    #[serde(default = "default_subscription_id")]
    pub subscription_id: String,
    #[serde(default = "default_resource_group")]
    pub resource_group: String,
    /// Azure region (`x-ms-keyvault-region`, `location=` in 403 texts).
    pub region: String,
    #[serde(default)]
    pub public_network_access: PublicNetworkAccess,
    #[serde(default)]
    pub network_acls: NetworkAcls,
    /// Names of the approved private endpoints connected to this vault.
    #[serde(default)]
    pub private_endpoints: Vec<String>,
    /// Extra `Host` header values that reach this vault, such as the loopback address and port
    /// it is served on (`127.0.1.9:8443`). `{name}.vault.azure.net` always routes here.
    #[serde(default)]
    pub host_aliases: Vec<String>,
    pub authorization: Authorization,
    /// `softDeleteRetentionInDays`, 7–90.
    #[serde(default = "default_retention_days")]
    pub soft_delete_retention_days: u32,
    #[serde(default)]
    pub purge_protection: bool,
    /// How long a delete or a recover takes to complete. The service finishes both
    /// asynchronously: recordings show `GET /deletedsecrets/{n}` answering 404 right after the
    /// DELETE and 200 about two seconds later, which SDK pollers rely on.
    #[serde(default = "default_pending_operation_ms")]
    pub pending_operation_ms: u64,
    /// Secrets present when the vault starts (seeded only into a vault that has no stored state).
    #[serde(default)]
    pub secrets: Vec<SeedSecret>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum PublicNetworkAccess {
    #[default]
    Enabled,
    Disabled,
}

/// `networkAcls`: the vault firewall, applied to traffic that does not come through one of the
/// vault's private endpoints while public network access is enabled.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkAcls {
    #[serde(default)]
    pub default_action: DefaultAction,
    /// Allowed public client addresses or ranges (CIDR).
    #[serde(default)]
    pub ip_rules: Vec<IpNet>,
    /// Allowed subnets (service-endpoint vNet rules).
    #[serde(default)]
    pub virtual_network_rules: Vec<SubnetRef>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum DefaultAction {
    #[default]
    Allow,
    Deny,
}

/// The vault's permission model (`enableRbacAuthorization`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "snake_case", deny_unknown_fields)]
pub enum Authorization {
    Rbac {
        #[serde(default)]
        role_assignments: Vec<RoleAssignment>,
    },
    AccessPolicies {
        #[serde(default)]
        access_policies: Vec<AccessPolicy>,
    },
}

/// A role assignment at the vault's scope or at one secret's scope.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoleAssignment {
    /// Object id (`oid` claim) of the user, service principal or managed identity.
    pub principal_id: String,
    pub role: KeyVaultRole,
    /// `None`: the whole vault; `Some(name)`: only the secret `name`.
    #[serde(default)]
    pub secret: Option<String>,
}

/// Built-in roles that grant secrets data actions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum KeyVaultRole {
    #[serde(rename = "Key Vault Secrets User")]
    SecretsUser,
    #[serde(rename = "Key Vault Secrets Officer")]
    SecretsOfficer,
    #[serde(rename = "Key Vault Reader")]
    Reader,
    #[serde(rename = "Key Vault Administrator")]
    Administrator,
}

/// An access policy entry (vaults without RBAC).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccessPolicy {
    pub object_id: String,
    #[serde(default)]
    pub secret_permissions: Vec<SecretPermission>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SecretPermission {
    Get,
    List,
    Set,
    Delete,
    Recover,
    Backup,
    Restore,
    Purge,
    All,
}

/// A secret the vault holds from the start.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeedSecret {
    pub name: String,
    pub value: String,
    #[serde(default)]
    pub content_type: Option<String>,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// Unix seconds.
    #[serde(default)]
    pub not_before: Option<i64>,
    /// Unix seconds.
    #[serde(default)]
    pub expires: Option<i64>,
    /// A certificate's backing secret (`managed: true`, listed like any other secret).
    #[serde(default)]
    pub managed: bool,
}

impl SeedSecret {
    pub fn new(name: impl Into<String>, value: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            value: value.into(),
            content_type: None,
            tags: BTreeMap::new(),
            enabled: true,
            not_before: None,
            expires: None,
            managed: false,
        }
    }
}

impl VaultConfig {
    /// A vault with public access, no firewall, RBAC with no assignments and 90-day retention.
    pub fn new(
        name: impl Into<String>,
        tenant_id: impl Into<String>,
        region: impl Into<String>,
    ) -> Self {
        Self {
            name: name.into(),
            tenant_id: tenant_id.into(),
            subscription_id: default_subscription_id(),
            resource_group: default_resource_group(),
            region: region.into(),
            public_network_access: PublicNetworkAccess::Enabled,
            network_acls: NetworkAcls::default(),
            private_endpoints: Vec::new(),
            host_aliases: Vec::new(),
            authorization: Authorization::Rbac {
                role_assignments: Vec::new(),
            },
            soft_delete_retention_days: default_retention_days(),
            purge_protection: false,
            pending_operation_ms: default_pending_operation_ms(),
            secrets: Vec::new(),
        }
    }

    /// `recoveryLevel` as the service derives it from retention and purge protection.
    pub fn recovery_level(&self) -> &'static str {
        let customized = self.soft_delete_retention_days != 90;
        match (customized, self.purge_protection) {
            (false, false) => "Recoverable+Purgeable",
            (false, true) => "Recoverable",
            (true, false) => "CustomizedRecoverable+Purgeable",
            (true, true) => "CustomizedRecoverable",
        }
    }
}

impl KeyVaultConfig {
    /// Refuses configurations Azure would refuse, with the offending field named.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let mut names_seen = HashSet::new();
        let mut hosts_seen = HashSet::new();
        for vault in &self.vaults {
            if !names::is_valid_vault_name(&vault.name) {
                return Err(ConfigError::new(format!(
                    "vault name '{}' is invalid: vault names are 3-24 characters, start with a \
                     letter, end with a letter or digit, contain only 0-9, a-z, A-Z and '-', \
                     and no consecutive '-'",
                    vault.name
                )));
            }
            if !names_seen.insert(vault.name.to_ascii_lowercase()) {
                return Err(ConfigError::new(format!(
                    "vault name '{}' is used twice",
                    vault.name
                )));
            }
            if !(7..=90).contains(&vault.soft_delete_retention_days) {
                return Err(ConfigError::new(format!(
                    "vault '{}': soft_delete_retention_days must be between 7 and 90, got {}",
                    vault.name, vault.soft_delete_retention_days
                )));
            }
            for alias in &vault.host_aliases {
                if !hosts_seen.insert(alias.to_ascii_lowercase()) {
                    return Err(ConfigError::new(format!(
                        "host alias '{alias}' is given to more than one vault"
                    )));
                }
            }
            let mut secrets_seen = HashSet::new();
            for secret in &vault.secrets {
                if !names::is_valid_secret_name(&secret.name) {
                    return Err(ConfigError::new(format!(
                        "vault '{}': secret name '{}' is invalid: 1-127 characters of 0-9, a-z, \
                         A-Z and '-'",
                        vault.name, secret.name
                    )));
                }
                if !secrets_seen.insert(secret.name.to_ascii_lowercase()) {
                    return Err(ConfigError::new(format!(
                        "vault '{}': secret '{}' is seeded twice",
                        vault.name, secret.name
                    )));
                }
                if secret.value.len() > names::MAX_VALUE_BYTES {
                    return Err(ConfigError::new(format!(
                        "vault '{}': secret '{}' is larger than 25 KB",
                        vault.name, secret.name
                    )));
                }
            }
        }
        Ok(())
    }
}

/// A configuration the fake refuses to start with.
#[derive(Debug, thiserror::Error)]
#[error("invalid Key Vault configuration: {0}")]
pub struct ConfigError(String);

impl ConfigError {
    fn new(message: String) -> Self {
        Self(message)
    }
}

fn default_true() -> bool {
    true
}

fn default_backup_key() -> String {
    "ppvnet-key-vault-backup".to_owned()
}

fn default_service_version() -> String {
    "1.9.3070.1".to_owned()
}

fn default_subscription_id() -> String {
    "00000000-0000-0000-0000-000000000000".to_owned()
}

fn default_resource_group() -> String {
    "ppvnet".to_owned()
}

fn default_retention_days() -> u32 {
    90
}

fn default_pending_operation_ms() -> u64 {
    1500
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recovery_level_follows_retention_and_purge_protection() {
        let mut v = VaultConfig::new("kv-a", "t", "westus");
        assert_eq!(v.recovery_level(), "Recoverable+Purgeable");
        v.soft_delete_retention_days = 7;
        // The Rust SDK recordings come from a 7-day vault: CustomizedRecoverable+Purgeable.
        assert_eq!(v.recovery_level(), "CustomizedRecoverable+Purgeable");
        v.purge_protection = true;
        assert_eq!(v.recovery_level(), "CustomizedRecoverable");
        v.soft_delete_retention_days = 90;
        assert_eq!(v.recovery_level(), "Recoverable");
    }

    #[test]
    fn config_parses_from_json_with_defaults() {
        let json = r#"{"vaults":[{"name":"kv-contoso","tenant_id":"t1","region":"westus",
            "public_network_access":"Disabled","private_endpoints":["pe-kv"],
            "network_acls":{"default_action":"Deny","ip_rules":["203.0.113.0/24"],
              "virtual_network_rules":[{"vnet":"vnet-w","subnet":"pp"}]},
            "authorization":{"mode":"rbac","role_assignments":[
              {"principal_id":"oid-1","role":"Key Vault Secrets User"},
              {"principal_id":"oid-2","role":"Key Vault Secrets Officer","secret":"s1"}]},
            "secrets":[{"name":"s1","value":"v1","tags":{"a":"b"}}]}]}"#;
        let config: KeyVaultConfig = serde_json::from_str(json).unwrap();
        config.validate().unwrap();
        let vault = &config.vaults[0];
        assert_eq!(vault.public_network_access, PublicNetworkAccess::Disabled);
        assert_eq!(vault.network_acls.default_action, DefaultAction::Deny);
        assert_eq!(vault.soft_delete_retention_days, 90);
        assert!(vault.secrets[0].enabled);
        match &vault.authorization {
            Authorization::Rbac { role_assignments } => {
                assert_eq!(role_assignments[1].role, KeyVaultRole::SecretsOfficer);
                assert_eq!(role_assignments[1].secret.as_deref(), Some("s1"));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn validate_names_the_bad_field() {
        let mut config = KeyVaultConfig {
            vaults: vec![VaultConfig::new("kv", "t", "westus")],
            ..Default::default()
        };
        assert!(config.validate().unwrap_err().to_string().contains("3-24"));
        config.vaults[0].name = "kv-ok".into();
        config.vaults[0].soft_delete_retention_days = 3;
        assert!(
            config
                .validate()
                .unwrap_err()
                .to_string()
                .contains("between 7 and 90")
        );
        config.vaults[0].soft_delete_retention_days = 7;
        config.vaults[0]
            .secrets
            .push(SeedSecret::new("bad_name", "v"));
        assert!(
            config
                .validate()
                .unwrap_err()
                .to_string()
                .contains("bad_name")
        );
        config.vaults[0].secrets[0].name = "good".into();
        config.vaults.push(VaultConfig::new("KV-OK", "t", "westus"));
        assert!(config.validate().unwrap_err().to_string().contains("twice"));
    }
}
