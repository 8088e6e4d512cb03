//! A mock Key Vault with its Entra (`scenarios/containers/keyvault.yaml`): the vault
//! `kv-ppvnet`, open to the public internet, holding the secret `app-secret`; the client `app`
//! is a Key Vault Secrets Officer on it.
//!
//! ```no_run
//! use testcontainers_ppvnet::{KeyVault, PpvnetImage};
//! # async fn example() -> testcontainers_ppvnet::Result<()> {
//! let vault = KeyVault::default().start().await?;
//! let token = vault.token(&vault.client_credentials()?, KeyVault::SCOPE).await?;
//! let secret: serde_json::Value = vault
//!     .http_client()?
//!     .get(format!("{}secrets/app-secret?api-version=7.5", vault.vault_url()?))
//!     .bearer_auth(token)
//!     .send()
//!     .await?
//!     .json()
//!     .await?;
//! # Ok(()) }
//! ```

use crate::error::Result;
use crate::image::{PpvnetImage, Scenario, Spec};
use crate::ready::{ClientCredentials, Running};

/// The Key Vault module's image configuration.
#[derive(Clone, Debug)]
pub struct KeyVault {
    spec: Spec,
}

impl KeyVault {
    /// The vault's name.
    pub const VAULT: &'static str = "kv-ppvnet";
    /// The secret the vault holds at the start, and its value.
    pub const SECRET: (&'static str, &'static str) = ("app-secret", "ppvnet-vault-secret-Hk5~Rt2w");
    /// The app registration with the Key Vault Secrets Officer role on the vault.
    pub const APP: &'static str = "app";
    /// The scope of Key Vault tokens.
    pub const SCOPE: &'static str = "https://vault.azure.net/.default";
}

impl Default for KeyVault {
    fn default() -> Self {
        Self {
            spec: Spec::new(Scenario::Shipped("containers/keyvault.yaml".into())),
        }
    }
}

impl PpvnetImage for KeyVault {
    fn spec(&self) -> &Spec {
        &self.spec
    }
    fn spec_mut(&mut self) -> &mut Spec {
        &mut self.spec
    }
}

impl Running<KeyVault> {
    /// `https://kv-ppvnet.vault.azure.net/`.
    pub fn vault_url(&self) -> Result<String> {
        self.vault_url_of(KeyVault::VAULT)
    }

    /// The client credentials of [`KeyVault::APP`].
    pub fn client_credentials(&self) -> Result<ClientCredentials> {
        self.client_credentials_of(KeyVault::APP)
    }
}
