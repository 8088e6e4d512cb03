//! A per-user pool of keys generated ahead of time, so a landscape does not wait for RSA prime
//! search when it starts.
//!
//! Generating an RSA-2048 key takes tens to hundreds of milliseconds (the time is random), the
//! largest single cost of `ppvnet up`. The pool is a folder of PKCS#8 files, one key each,
//! owner-only (0700 folder, 0600 files) under the user's cache folder. A run *takes* a key (the
//! file is claimed by an atomic rename and deleted once read), so no two runs, in one process or
//! several, ever share a key; once the landscape is ready it tops the pool up in the background.
//! An empty pool is no error: the caller generates the key itself, as without a pool.
//!
//! The pool lives in the user's cache folder ([`crate::cache`]: `PPVNET_CACHE`, `off` disables
//! it), under `keys/<kind>`.

use std::io;
use std::path::{Path, PathBuf};

use crate::private_fs;

/// Keys kept ready per kind: enough for the signing key of a few landscapes started together.
pub const DEFAULT_DEPTH: usize = 4;

/// A folder of keys of one kind (`rsa-2048`).
#[derive(Clone, Debug)]
pub struct KeyPool {
    dir: PathBuf,
}

impl KeyPool {
    /// The user's pool of `kind` in the cache folder ([`crate::cache`]), unless the cache is
    /// off.
    pub fn user(kind: &str) -> Option<Self> {
        crate::cache::user_dir().map(|d| Self::at(d.join("keys").join(kind)))
    }

    /// The pool kept in `dir`.
    pub fn at(dir: PathBuf) -> Self {
        Self { dir }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Takes one key out of the pool: its bytes, or `None` when the pool is empty (or cannot
    /// be read). A key is claimed by renaming its file to a name unique to this taker, which
    /// only one taker can do, and is deleted once read.
    pub fn take(&self) -> Option<Vec<u8>> {
        let entries = std::fs::read_dir(&self.dir).ok()?;
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            if !name.ends_with(".key") || name.starts_with('.') {
                continue;
            }
            let claimed = self
                .dir
                .join(format!(".taken-{}", private_fs::unique_suffix()));
            if std::fs::rename(entry.path(), &claimed).is_err() {
                continue; // another taker was first
            }
            let bytes = std::fs::read(&claimed);
            let _ = std::fs::remove_file(&claimed);
            match bytes {
                Ok(bytes) if !bytes.is_empty() => return Some(bytes),
                _ => continue,
            }
        }
        None
    }

    /// How many keys are ready.
    pub fn len(&self) -> usize {
        std::fs::read_dir(&self.dir)
            .map(|entries| {
                entries
                    .flatten()
                    .filter(|e| {
                        let name = e.file_name();
                        let name = name.to_string_lossy();
                        name.ends_with(".key") && !name.starts_with('.')
                    })
                    .count()
            })
            .unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Generates keys with `generate` until `depth` are ready; returns how many it added. Only
    /// one filler works at a time (a lock in the folder): another run already filling is left
    /// to it, so landscapes started together do not all generate keys at once.
    pub fn fill(
        &self,
        depth: usize,
        generate: impl Fn() -> io::Result<Vec<u8>>,
    ) -> io::Result<usize> {
        private_fs::create_dir_all(&self.dir)?;
        let lock = private_fs::open_or_create(&self.dir.join(".fill.lock"))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => return Ok(0),
            Err(std::fs::TryLockError::Error(e)) => return Err(e),
        }
        let mut added = 0;
        while self.len() < depth {
            let key = generate()?;
            let name = format!("{}.key", private_fs::unique_suffix());
            // Written under a temporary name and renamed: a taker never sees half a key.
            private_fs::replace(&self.dir.join(name), &key)?;
            added += 1;
        }
        Ok(added)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;
    use std::os::unix::fs::PermissionsExt;
    use std::sync::atomic::{AtomicU64, Ordering};

    fn counter_key() -> impl Fn() -> io::Result<Vec<u8>> {
        let n = AtomicU64::new(0);
        move || Ok(format!("key-{}", n.fetch_add(1, Ordering::Relaxed)).into_bytes())
    }

    #[test]
    fn filled_keys_are_owner_only_and_each_is_taken_once() {
        let dir = tempfile::tempdir().unwrap();
        let pool = KeyPool::at(dir.path().join("rsa-2048"));
        assert_eq!(pool.take(), None, "an empty pool gives nothing");
        assert_eq!(pool.fill(3, counter_key()).unwrap(), 3);
        assert_eq!(pool.fill(3, counter_key()).unwrap(), 0, "already full");
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(pool.dir()), 0o700);
        for entry in std::fs::read_dir(pool.dir()).unwrap() {
            let path = entry.unwrap().path();
            assert_eq!(mode(&path), 0o600, "{}", path.display());
        }
        let taken: BTreeSet<Vec<u8>> = (0..3).map(|_| pool.take().unwrap()).collect();
        assert_eq!(taken.len(), 3, "three different keys");
        assert_eq!(pool.take(), None);
        assert!(pool.is_empty());
    }

    /// Takers racing in several threads never get the same key, and every key is taken.
    #[test]
    fn concurrent_takers_never_share_a_key() {
        let dir = tempfile::tempdir().unwrap();
        let pool = KeyPool::at(dir.path().to_path_buf());
        pool.fill(40, counter_key()).unwrap();
        let taken: Vec<Vec<u8>> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..8)
                .map(|_| s.spawn(|| std::iter::from_fn(|| pool.take()).collect::<Vec<_>>()))
                .collect();
            handles
                .into_iter()
                .flat_map(|h| h.join().unwrap())
                .collect()
        });
        let distinct: BTreeSet<&Vec<u8>> = taken.iter().collect();
        assert_eq!(taken.len(), 40);
        assert_eq!(distinct.len(), 40);
    }

    /// While one filler holds the lock, another adds nothing (and does not wait).
    #[test]
    fn one_filler_at_a_time() {
        let dir = tempfile::tempdir().unwrap();
        let pool = KeyPool::at(dir.path().to_path_buf());
        private_fs::create_dir_all(pool.dir()).unwrap();
        let held = private_fs::open_or_create(&pool.dir().join(".fill.lock")).unwrap();
        held.lock().unwrap();
        assert_eq!(pool.fill(2, counter_key()).unwrap(), 0);
        drop(held);
        assert_eq!(pool.fill(2, counter_key()).unwrap(), 2);
    }
}
