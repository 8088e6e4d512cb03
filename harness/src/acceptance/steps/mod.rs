//! Step definitions of the acceptance suite, one module per feature area.
//!
//! - [`validation`]: landscape files and `ppvnet validate`.
//! - [`connector`]: the custom connector runtime, called as a Power Apps user.
//! - [`landscape`]: a running landscape: signing in, searching cases, reading secrets.
//! - [`network`]: a landscape's network alone on a fabric, probed host by host.
//! - [`lifecycle`]: a running landscape through time and change: the clock, key rollover,
//!   secret expiry, role assignments, failback.
//! - [`stub`]: stubbed third-party APIs: their answers and what they received.
//!
//! Every step is listed in [`super::catalogue`]; a unit test there fails for one that is not.

pub mod connector;
pub mod landscape;
pub mod lifecycle;
pub mod network;
pub mod stub;
pub mod validation;

use std::path::PathBuf;

/// State of one scenario.
#[derive(Debug, Default, cucumber::World)]
pub struct PpvWorld {
    /// The landscape file under test.
    pub file: Option<PathBuf>,
    /// Outcome of the last validation: the findings, or the summary counts.
    pub validation: Option<validation::Outcome>,
    /// Exit code and output of the last `ppvnet` command.
    pub command: Option<(i32, String, String)>,
    /// The landscape this scenario runs, if any.
    pub live: Option<landscape::Live>,
    /// The network this scenario materialized, if any.
    pub network: Option<network::Net>,
}

impl PpvWorld {
    /// Stops whatever the scenario started (the runner's after-scenario hook).
    pub async fn stop(&mut self) {
        landscape::stop(self).await;
        network::stop(self).await;
    }
}
