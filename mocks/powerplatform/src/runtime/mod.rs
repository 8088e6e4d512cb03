//! The Power Platform service: environments, Secret variables, connections and the custom
//! connector runtime (`POST /invoke`).
//!
//! Module map:
//! - [`config`]: what the harness hands the service, and the [`Outbound`] trait its traffic uses.

pub mod config;

pub use config::{Outbound, RuntimeConfig};
