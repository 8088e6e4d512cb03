//! Azure Resource Manager, read-only: the landscape's tenant, subscription, resource groups
//! and resources (`Microsoft.KeyVault/vaults`, `Microsoft.Network/virtualNetworks` with subnets
//! and peerings, `privateEndpoints`, `networkSecurityGroups`, `privateDnsZones` with their
//! virtual network links, `Microsoft.PowerPlatform/enterprisePolicies`) at
//! `management.azure.com`, enough for the Azure CLI and ARM-based tools. It knows nothing of
//! landscapes or fabrics: it gets an [`ArmConfig`] and a token validator.
//!
//! Module map:
//! - [`config`]: the landscape as ARM resources and role assignments ([`ArmConfig`]).
//! - [`resources`]: the resources rendered once in ARM's JSON shapes.
//! - [`route`]: request paths (case-insensitive segments) → [`route::Target`].
//! - [`api_version`]: supported versions per resource type and ARM's errors for the others.
//! - [`auth`]: bearer tokens checked with `ppvnet_common::token::Validator` ([`ArmTokens`]).
//! - [`rbac`]: built-in role definitions, action wildcards, scope inheritance.
//! - [`service`]: the state handle [`Arm`], [`router`], [`run`] and the request pipeline.
//! - [`error`]: ARM's error envelope and codes ([`ArmError`]).

pub mod api_version;
pub mod auth;
pub mod config;
pub mod error;
pub mod rbac;
pub mod resources;
pub mod route;
pub mod service;

pub use auth::{ArmTokens, Caller};
pub use config::ArmConfig;
pub use error::{ARM_AUDIENCES, ArmError};
pub use service::{Arm, Scheme, router, run};

/// ARM's public host name.
pub const ARM_HOST_NAME: &str = "management.azure.com";
