//! Key Vault secret references.
//!
//! A Secret environment variable stores a reference, not the secret:
//! `/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.KeyVault/vaults/{vault}/secrets/{name}`
//! (as Power Platform CoE and automation-kit docs show it; no official page quotes the format,
//! UNVERIFIED; the rules: MicrosoftDocs/powerapps-docs:
//! powerapps-docs/maker/data-platform/EnvironmentVariables-azure-key-vault-secrets.md). Dataverse
//! resolves it at run time by reading the secret as its service principal.

use std::fmt;

/// A parsed reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyVaultReference {
    pub subscription: String,
    pub resource_group: String,
    pub vault: String,
    pub secret: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyVaultReferenceError {
    #[error(
        "'{0}' is not a Key Vault secret reference; expected /subscriptions/{{subscriptionId}}/resourceGroups/{{resourceGroup}}/providers/Microsoft.KeyVault/vaults/{{vaultName}}/secrets/{{secretName}}"
    )]
    Malformed(String),
}

impl KeyVaultReference {
    pub fn parse(text: &str) -> Result<Self, KeyVaultReferenceError> {
        let bad = || KeyVaultReferenceError::Malformed(text.to_string());
        let parts: Vec<&str> = text.split('/').collect();
        // ["", "subscriptions", sub, "resourceGroups", rg, "providers", "Microsoft.KeyVault",
        //  "vaults", vault, "secrets", name]
        if parts.len() != 11 || !parts[0].is_empty() {
            return Err(bad());
        }
        // ARM treats segment names case-insensitively.
        let expect = [
            (1, "subscriptions"),
            (3, "resourceGroups"),
            (5, "providers"),
            (6, "Microsoft.KeyVault"),
            (7, "vaults"),
            (9, "secrets"),
        ];
        if expect
            .iter()
            .any(|(i, want)| !parts[*i].eq_ignore_ascii_case(want))
        {
            return Err(bad());
        }
        if [2, 4, 8, 10].iter().any(|i| parts[*i].is_empty()) {
            return Err(bad());
        }
        Ok(Self {
            subscription: parts[2].to_string(),
            resource_group: parts[4].to_string(),
            vault: parts[8].to_string(),
            secret: parts[10].to_string(),
        })
    }

    /// The vault's ARM resource id (the scope role assignments are made at).
    pub fn vault_id(&self) -> String {
        format!(
            "/subscriptions/{}/resourceGroups/{}/providers/Microsoft.KeyVault/vaults/{}",
            self.subscription, self.resource_group, self.vault
        )
    }
}

impl fmt::Display for KeyVaultReference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/secrets/{}", self.vault_id(), self.secret)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "/subscriptions/6f1a/resourceGroups/rg-x/providers/Microsoft.KeyVault/vaults/kv-x/secrets/s1";

    #[test]
    fn parses_and_prints_back() {
        let r = KeyVaultReference::parse(GOOD).unwrap();
        assert_eq!(r.vault, "kv-x");
        assert_eq!(r.secret, "s1");
        assert_eq!(r.to_string(), GOOD);
    }

    #[test]
    fn refuses_near_misses() {
        for bad in [
            "https://kv-x.vault.azure.net/secrets/s1",
            "/subscriptions/6f1a/resourceGroups/rg-x/providers/Microsoft.KeyVault/vaults/kv-x/keys/s1",
            "/subscriptions/6f1a/resourceGroups/rg-x/providers/Microsoft.KeyVault/vaults/kv-x/secrets/",
            "/subscriptions/6f1a/resourceGroups/rg-x/providers/Microsoft.KeyVault/vaults/kv-x/secrets/s1/v1",
            "",
        ] {
            assert!(KeyVaultReference::parse(bad).is_err(), "{bad}");
        }
    }
}
