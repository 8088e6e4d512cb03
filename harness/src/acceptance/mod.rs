//! The Gherkin acceptance runner behind `ppvnet test` and `cargo test --test acceptance`.
//!
//! Module map:
//! - [`steps`]: the step definitions, one module per feature area, and their shared state
//!   ([`PpvWorld`]).
//! - [`run`]: options, the cucumber run (feature files, tag and shard selection, teardown hook)
//!   and its outcome; the closing line `N passed, N failed`.
//! - [`select`]: which scenarios run: tag expressions and deterministic shards.
//! - [`record`]: a cucumber writer that keeps every feature, scenario and step with status,
//!   time and error text ([`record::Report`]).
//! - [`junit`], [`json`], [`html`]: the three report files written from a [`record::Report`];
//!   the HTML report draws each landscape with [`crate::picture`].
//! - [`catalogue`]: every step phrase with its parameters and an example (`ppvnet steps`).
//!
//! Steps find landscapes and the `ppvnet` program through [`Settings`], which `run` sets once
//! per run, so the same steps serve the installed binary and the test binary.

pub mod catalogue;
pub mod html;
pub mod json;
pub mod junit;
pub mod record;
pub mod run;
pub mod select;
pub mod steps;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::{Mutex, RwLock};

use crate::fabric::FabricKind;

pub use steps::PpvWorld;

/// Where steps find what they name; one per run.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Folder of landscape files named by steps (`the contoso landscape`, `the landscape file "x"`).
    pub scenarios_dir: PathBuf,
    /// Runs instead of every landscape a step starts by name (`--landscape`).
    pub landscape: Option<PathBuf>,
    /// Fabric of the steps that name none (`--network`); loopback by default.
    pub network: FabricKind,
    /// The `ppvnet` program, for steps that run it as a user would.
    pub ppvnet_exe: PathBuf,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            scenarios_dir: default_scenarios_dir(),
            landscape: None,
            network: FabricKind::Loopback,
            ppvnet_exe: std::env::current_exe().unwrap_or_else(|_| PathBuf::from("ppvnet")),
        }
    }
}

/// `relative` in the ppvnet checkout the command runs in, else in the checkout ppvnet was
/// built from (when it still exists), else relative to the working directory.
pub(crate) fn shipped(relative: &str) -> PathBuf {
    let cwd = std::env::current_dir().ok();
    let built = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    cwd.and_then(|d| crate::paths::checkout_root(&d))
        .map(|root| root.join(relative))
        .filter(|p| p.is_dir())
        .or_else(|| Some(built.join(relative)).filter(|p| p.is_dir()))
        .and_then(|p| p.canonicalize().ok())
        .unwrap_or_else(|| PathBuf::from(relative))
}

/// The shipped `scenarios/` (see [`shipped`]).
pub fn default_scenarios_dir() -> PathBuf {
    shipped("scenarios")
}

static SETTINGS: RwLock<Option<Settings>> = RwLock::new(None);

/// What the run's steps read: landscape files (hashed in the report's provenance) and the
/// landscapes they started (drawn in the report).
#[derive(Clone, Debug, Default)]
pub struct Used {
    pub files: BTreeSet<PathBuf>,
    pub started: BTreeSet<PathBuf>,
}

static USED: Mutex<Used> = Mutex::new(Used {
    files: BTreeSet::new(),
    started: BTreeSet::new(),
});

/// Installs the settings of this run and forgets what an earlier run used.
pub fn configure(settings: Settings) {
    *SETTINGS.write().unwrap_or_else(|e| e.into_inner()) = Some(settings);
    *USED.lock().unwrap_or_else(|e| e.into_inner()) = Used::default();
}

/// The settings of the current run (defaults when none were installed).
pub fn settings() -> Settings {
    SETTINGS
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .clone()
        .unwrap_or_default()
}

/// What the steps of this run have read and started so far.
pub fn used() -> Used {
    USED.lock().unwrap_or_else(|e| e.into_inner()).clone()
}

/// A landscape file a step names, relative to the scenarios folder; recorded for provenance.
pub fn landscape_file(relative: &str) -> PathBuf {
    let path = settings().scenarios_dir.join(relative);
    USED.lock()
        .unwrap_or_else(|e| e.into_inner())
        .files
        .insert(path.clone());
    path
}

/// The landscape a step starts by name (`contoso` → `scenarios/contoso.yaml`, or the
/// `--landscape` file); recorded for provenance and the report's picture.
pub fn landscape_to_start(name: &str) -> PathBuf {
    let s = settings();
    let path = s
        .landscape
        .unwrap_or_else(|| s.scenarios_dir.join(format!("{name}.yaml")));
    let mut used = USED.lock().unwrap_or_else(|e| e.into_inner());
    used.files.insert(path.clone());
    used.started.insert(path.clone());
    path
}

/// The fabric a step names (`loopback`, `netns`, `docker`), or the run's default when it names
/// none.
pub fn fabric_named(name: Option<&str>) -> FabricKind {
    match name {
        None => settings().network,
        Some("loopback") => FabricKind::Loopback,
        Some("netns") => FabricKind::Netns,
        Some("docker") => FabricKind::Docker,
        Some(other) => panic!("unknown fabric '{other}' (loopback, netns or docker)"),
    }
}
