//! Default paths of the command line: they resolve from the root of the ppvnet checkout the
//! command runs in (any folder inside it), so `ppvnet up` in `harness/` finds the seed landscape
//! and `ppvnet exec` in `scenarios/` finds the ready file `up` wrote. Outside a checkout they are
//! relative to the working directory.

use std::path::{Path, PathBuf};

/// The seed landscape, relative to the checkout's root.
pub const DEFAULT_SCENARIO: &str = "scenarios/contoso.yaml";
/// The ready file, relative to the checkout's root.
pub const DEFAULT_READY_FILE: &str = ".ppvnet/ready.json";

/// The nearest folder, from `dir` up, that is a ppvnet checkout (a `Cargo.toml` beside the
/// seed landscape).
pub fn checkout_root(dir: &Path) -> Option<PathBuf> {
    dir.ancestors()
        .find(|d| d.join("Cargo.toml").is_file() && d.join(DEFAULT_SCENARIO).is_file())
        .map(Path::to_path_buf)
}

/// `relative` under the checkout's root when the working directory is inside a checkout.
fn from_root(relative: &str) -> PathBuf {
    std::env::current_dir()
        .ok()
        .and_then(|cwd| checkout_root(&cwd))
        .map(|root| root.join(relative))
        .unwrap_or_else(|| PathBuf::from(relative))
}

pub fn default_scenario() -> PathBuf {
    from_root(DEFAULT_SCENARIO)
}

pub fn default_ready_file() -> PathBuf {
    from_root(DEFAULT_READY_FILE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_checkout_is_found_from_any_folder_inside_it() {
        let here = Path::new(env!("CARGO_MANIFEST_DIR"));
        let root = checkout_root(here).expect("the harness is inside a checkout");
        assert!(root.join(DEFAULT_SCENARIO).is_file());
        assert_eq!(checkout_root(&root.join("scenarios")), Some(root.clone()));
        let outside = tempfile::tempdir().unwrap();
        assert_eq!(checkout_root(outside.path()), None);
    }
}
