//! A fake Azure Key Vault secrets data plane that official SDKs and recorded real traffic
//! accept: many vaults in one process, real Entra token validation, RBAC or access policies,
//! public-network/private-endpoint/firewall rules, soft delete, backup/restore and durable
//! storage.
//!
//! Module map:
//! - [`config`]: the serde configuration a landscape maps onto ([`KeyVaultConfig`]).
//! - [`service`]: the state handle [`KeyVault`], [`router`], [`run`] and the request pipeline
//!   (host routing, challenge, token, network, api-version, authorization, operation).
//! - [`auth`]: the [`AccessTokenCheck`] trait and [`EntraTokenCheck`], backed by
//!   `ppvnet_common::token::Validator`.
//! - [`network`]: public network access, private endpoints and the vault firewall.
//! - [`access`]: RBAC data actions and access-policy permissions per operation.
//! - [`store`]: one vault's secrets and their lifecycle (versions, soft delete, recover, purge).
//! - [`persist`]: one SQLite store file per vault; foreign or corrupt files are refused.
//! - [`backup`]: sealed, opaque backup blobs bound to subscription and geography.
//! - [`model`]: wire shapes; [`error`]: the `KeyVaultError` envelope; [`names`]: naming and
//!   size rules.

pub mod access;
pub mod auth;
pub mod backup;
pub mod config;
pub mod error;
pub mod model;
pub mod names;
pub mod network;
pub mod persist;
pub mod service;
pub mod store;

pub use auth::{AccessTokenCheck, Caller, EntraTokenCheck, TokenRejection};
pub use config::{
    AccessPolicy, Authorization, DefaultAction, KeyVaultConfig, KeyVaultRole, NetworkAcls,
    PublicNetworkAccess, RoleAssignment, SecretPermission, SeedSecret, VaultConfig,
};
pub use error::KeyVaultError;
pub use service::{API_VERSIONS, KeyVault, Scheme, StartError, router, run};
