//! Power Platform emulation.
//!
//! Module map:
//! - [`geo`]: Power Platform geos (enterprise policy locations) and the Azure regions, single or
//!   paired, whose vNets each geo accepts for subnet delegation.
//! - [`keyvault_ref`]: Key Vault secret references, the value of a Secret environment variable.
//! - [`connector`]: custom connector definitions: import, parameters, policy templates.
//! - [`runtime`]: the service: environments and their variables (Secret ones read from Key
//!   Vault), connectors as saved, OAuth connections, `POST /invoke`, the admin routes.

pub mod connector;
pub mod geo;
pub mod keyvault_ref;
pub mod runtime;

pub use connector::Connector;
pub use geo::{Geo, geo};
pub use keyvault_ref::{KeyVaultReference, KeyVaultReferenceError};
pub use runtime::{PowerPlatform, control_router, router, run};
