//! From landscape to running services: each submodule maps the landscape onto one mock's own
//! configuration type, so the mocks stay ignorant of landscapes and fabrics.
//!
//! - [`keyvault`]: vaults, their role assignments or access policies, network rules and seeds.

pub mod keyvault;
