//! Step definitions of the acceptance suite, one module per feature area.
//!
//! - [`validation`]: landscape files and `ppvnet validate`.
//! - [`landscape`]: a running landscape: signing in, searching cases, reading secrets.

pub mod landscape;
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
}

/// The repository's `scenarios/` folder.
pub fn scenarios_dir() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../scenarios"))
}
