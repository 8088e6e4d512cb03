//! From landscape to running services: each submodule maps the landscape onto one mock's own
//! configuration type, so the mocks stay ignorant of landscapes and fabrics.
//!
//! - [`entra`]: the tenant: users, groups, app registrations, consent, app role assignments.
//! - [`keyvault`]: vaults, their role assignments or access policies, network rules and seeds.
//! - [`search`]: builtin case search APIs: audiences, case owners by team, public access.
//! - [`powerplatform`]: environments, their variables, connectors read from their files.
//! - [`arm`]: the landscape as Azure Resource Manager resources and role assignments, and
//!   ARM's start on its public face.

pub mod arm;
pub mod entra;
pub mod keyvault;
pub mod powerplatform;
pub mod search;
