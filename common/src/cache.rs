//! The user's cache folder: work ppvnet can reuse across runs instead of redoing it at every
//! start (RSA keys generated ahead of time, built case databases). Owner-only (0700), outside
//! any repository.
//!
//! `PPVNET_CACHE` names the folder, or turns the cache off with `off` (every run then does all
//! the work itself); the default is `$XDG_CACHE_HOME/ppvnet`, else `~/.cache/ppvnet`.

use std::ffi::OsString;
use std::path::PathBuf;

/// The user's cache folder, unless turned off or no home is known.
pub fn user_dir() -> Option<PathBuf> {
    choose(
        std::env::var_os("PPVNET_CACHE"),
        std::env::var_os("XDG_CACHE_HOME"),
        std::env::var_os("HOME"),
    )
}

fn choose(
    setting: Option<OsString>,
    xdg: Option<OsString>,
    home: Option<OsString>,
) -> Option<PathBuf> {
    let set = |v: Option<OsString>| v.filter(|v| !v.is_empty());
    match set(setting) {
        Some(v) if v == "off" => None,
        Some(v) => Some(PathBuf::from(v)),
        None => set(xdg)
            .map(PathBuf::from)
            .or_else(|| set(home).map(|h| PathBuf::from(h).join(".cache")))
            .map(|d| d.join("ppvnet")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_setting_chooses_the_folder_or_turns_the_cache_off() {
        let home = Some(OsString::from("/home/u"));
        assert_eq!(
            choose(None, None, home.clone()),
            Some(PathBuf::from("/home/u/.cache/ppvnet"))
        );
        assert_eq!(
            choose(None, Some("/xdg".into()), home.clone()),
            Some(PathBuf::from("/xdg/ppvnet"))
        );
        assert_eq!(
            choose(Some("/srv/c".into()), None, home.clone()),
            Some(PathBuf::from("/srv/c"))
        );
        assert_eq!(choose(Some("off".into()), None, home), None);
        assert_eq!(choose(None, None, None), None, "no home, no cache");
    }
}
