//! From landscape to running services: each submodule maps the landscape onto one mock's own
//! configuration type, so the mocks stay ignorant of landscapes and fabrics, and starts that
//! service on its faces (`start`), so `up` only orders the starts.
//!
//! - [`launch`]: what every start shares: the run's launch context, the task set, the stop
//!   signal, binding a service's faces and their URLs.
//! - [`entra`]: the tenant: users, groups, app registrations, consent, app role assignments.
//! - [`keyvault`]: vaults, their role assignments or access policies, network rules and seeds.
//! - [`api`]: each API of the landscape on its faces, builtin or a team's program.
//! - [`search`]: builtin case search APIs: audiences, case owners by team, public access.
//! - [`program`]: a team's own API program, handed its faces by socket activation.
//! - [`container`]: team images (Docker fabric): an API behind its faces, hosts in subnets.
//! - [`stub`]: a stubbed third-party API: wiremock behind the API's faces, mappings from a file
//!   or from steps.
//! - [`powerplatform`]: environments, their variables, connectors read from their files.
//! - [`arm`]: the landscape as Azure Resource Manager resources and role assignments, and
//!   ARM's start on its public face.

pub mod api;
pub mod arm;
pub mod container;
pub mod entra;
pub mod keyvault;
pub mod launch;
pub mod powerplatform;
pub mod program;
pub mod search;
pub mod stub;
