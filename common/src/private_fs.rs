//! Files that hold secrets (signing keys, vault contents): created owner-only from the start.
//!
//! Modes are given to `open(2)`/`mkdir(2)` at creation rather than fixed with a chmod
//! afterwards, so there is no window in which another local user can open the file. The
//! process umask can only remove bits, never add them, so 0600/0700 stay at most that.

use std::fs::{DirBuilder, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

/// Mode of every file holding secrets.
pub const FILE_MODE: u32 = 0o600;
/// Mode of every folder created to hold such files.
pub const DIR_MODE: u32 = 0o700;

/// Creates `dir` and any missing parents with mode 0700. An existing folder is left as it is:
/// it may be the operator's (a mounted volume, a tempdir) and is theirs to protect.
pub fn create_dir_all(dir: &Path) -> io::Result<()> {
    DirBuilder::new().recursive(true).mode(DIR_MODE).create(dir)
}

/// Opens `path` for reading and writing, creating it with mode 0600 when it does not exist.
pub fn open_or_create(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(FILE_MODE)
        .open(path)
}

/// Replaces `path` with `bytes` atomically and durably: a fresh 0600 file next to it is
/// written and fsynced, renamed over `path`, and the folder fsynced so the rename survives a
/// crash. `tmp_suffix` must be unique among concurrent writers of the same path.
pub fn write_atomic(path: &Path, bytes: &[u8], tmp_suffix: &str) -> io::Result<()> {
    replace_with(path, tmp_suffix, |file| file.write_all(bytes))
}

/// [`write_atomic`] with a temporary name of its own ([`unique_suffix`]), for writers that
/// have none.
pub fn replace(path: &Path, bytes: &[u8]) -> io::Result<()> {
    write_atomic(path, bytes, &unique_suffix())
}

/// Replaces `to` with a copy of `from` as [`write_atomic`] does (streamed, so a large file is
/// never held in memory).
pub fn copy_atomic(from: &Path, to: &Path) -> io::Result<()> {
    let mut source = File::open(from)?;
    replace_with(to, &unique_suffix(), |file| {
        io::copy(&mut source, file).map(drop)
    })
}

/// A name part no other writer uses at the same time: pid, time and a per-process counter.
pub fn unique_suffix() -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!(
        "{}-{nanos}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// The one way files are replaced: `fill` writes a fresh 0600 temporary file beside `path`,
/// which is fsynced and renamed over it; the folder is fsynced after.
fn replace_with(
    path: &Path,
    tmp_suffix: &str,
    fill: impl FnOnce(&mut File) -> io::Result<()>,
) -> io::Result<()> {
    let file_name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "path has no file name"))?;
    let mut tmp_name = file_name.to_os_string();
    tmp_name.push(format!(".{tmp_suffix}.tmp"));
    let tmp = path.with_file_name(tmp_name);
    let written = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(FILE_MODE)
            .open(&tmp)?;
        fill(&mut file)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written?;
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        File::open(parent)?.sync_all()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn folders_files_and_replacements_are_owner_only() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("a/b");
        create_dir_all(&dir).unwrap();
        assert_eq!(mode(&root.path().join("a")), 0o700);
        assert_eq!(mode(&dir), 0o700);
        let created = dir.join("store");
        drop(open_or_create(&created).unwrap());
        assert_eq!(mode(&created), 0o600);
        let replaced = dir.join("keys.json");
        write_atomic(&replaced, b"one", "t1").unwrap();
        write_atomic(&replaced, b"two", "t2").unwrap();
        assert_eq!(std::fs::read(&replaced).unwrap(), b"two");
        assert_eq!(mode(&replaced), 0o600);
        let names: Vec<_> = std::fs::read_dir(&dir).unwrap().collect();
        assert_eq!(names.len(), 2, "a temporary file was left behind");
    }
}
