//! Durable storage: one SQLite file per vault (`{data_dir}/{vault}.kvstore`).
//!
//! Each acknowledged write is one SQLite transaction committed with `synchronous=FULL` in WAL
//! mode, so it survives a killed process (and a power cut). A file is only accepted when it is
//! recognisably ours: the SQLite `application_id` marks ppvnet vault stores, `user_version` the
//! schema, a meta row the vault it belongs to, and every record must parse; anything else is
//! refused with an error naming the file, never silently dropped or overwritten.

use std::path::{Path, PathBuf};

use rusqlite::{Connection, OptionalExtension, params};

use crate::store::SecretRecord;

/// `ppvk` in ASCII.
const APPLICATION_ID: i64 = 0x7070_766b;
const SCHEMA_VERSION: i64 = 1;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("vault store {path} is corrupt: {reason}")]
    Corrupt { path: PathBuf, reason: String },
    #[error("{path} is not a ppvnet Key Vault store: {reason}")]
    Foreign { path: PathBuf, reason: String },
    #[error("vault store {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
}

/// An open store file.
pub struct VaultFile {
    path: PathBuf,
    conn: Connection,
}

impl VaultFile {
    /// The file a vault uses inside `data_dir`.
    pub fn path_for(data_dir: &Path, vault: &str) -> PathBuf {
        data_dir.join(format!("{}.kvstore", vault.to_ascii_lowercase()))
    }

    /// Opens (or creates) the store of `vault`, refusing files that are not ours.
    pub fn open(path: &Path, vault: &str) -> Result<Self, StoreError> {
        let path = path.to_path_buf();
        let io = |source| StoreError::Io {
            path: path.clone(),
            source,
        };
        let conn = Connection::open(&path).map_err(io)?;
        let file = Self {
            path: path.clone(),
            conn,
        };
        file.check_or_init(vault)?;
        Ok(file)
    }

    fn corrupt(&self, reason: impl Into<String>) -> StoreError {
        StoreError::Corrupt {
            path: self.path.clone(),
            reason: reason.into(),
        }
    }

    fn foreign(&self, reason: impl Into<String>) -> StoreError {
        StoreError::Foreign {
            path: self.path.clone(),
            reason: reason.into(),
        }
    }

    /// Maps SQLite's "not a database"/"malformed" to a corrupt-file error.
    fn sql(&self, e: rusqlite::Error) -> StoreError {
        match e.sqlite_error_code() {
            Some(rusqlite::ErrorCode::NotADatabase)
            | Some(rusqlite::ErrorCode::DatabaseCorrupt) => self.corrupt(e.to_string()),
            _ => StoreError::Io {
                path: self.path.clone(),
                source: e,
            },
        }
    }

    fn check_or_init(&self, vault: &str) -> Result<(), StoreError> {
        let app_id: i64 = self
            .conn
            .query_row("PRAGMA application_id", [], |r| r.get(0))
            .map_err(|e| self.sql(e))?;
        let tables: i64 = self
            .conn
            .query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0))
            .map_err(|e| self.sql(e))?;
        if app_id == 0 && tables == 0 {
            return self.init(vault);
        }
        if app_id != APPLICATION_ID {
            return Err(self.foreign(format!(
                "SQLite application_id is {app_id:#x}, expected {APPLICATION_ID:#x}"
            )));
        }
        let version: i64 = self
            .conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(|e| self.sql(e))?;
        if version != SCHEMA_VERSION {
            return Err(self.foreign(format!(
                "schema version {version} is not supported (expected {SCHEMA_VERSION})"
            )));
        }
        let check: String = self
            .conn
            .query_row("PRAGMA quick_check", [], |r| r.get(0))
            .map_err(|e| self.sql(e))?;
        if check != "ok" {
            return Err(self.corrupt(check));
        }
        let owner: Option<String> = self
            .conn
            .query_row("SELECT value FROM meta WHERE key = 'vault'", [], |r| {
                r.get(0)
            })
            .optional()
            .map_err(|e| self.sql(e))?;
        match owner {
            Some(owner) if owner.eq_ignore_ascii_case(vault) => {}
            Some(owner) => {
                return Err(self.foreign(format!("it belongs to vault '{owner}', not '{vault}'")));
            }
            None => return Err(self.corrupt("the vault name is missing")),
        }
        self.pragmas()
    }

    fn pragmas(&self) -> Result<(), StoreError> {
        self.conn
            .execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;")
            .map_err(|e| self.sql(e))
    }

    fn init(&self, vault: &str) -> Result<(), StoreError> {
        self.pragmas()?;
        self.conn
            .execute_batch(&format!(
                "BEGIN;
                 PRAGMA application_id = {APPLICATION_ID};
                 PRAGMA user_version = {SCHEMA_VERSION};
                 CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
                 CREATE TABLE secrets (key TEXT PRIMARY KEY, doc TEXT NOT NULL);
                 COMMIT;"
            ))
            .map_err(|e| self.sql(e))?;
        self.conn
            .execute(
                "INSERT INTO meta (key, value) VALUES ('vault', ?1)",
                params![vault],
            )
            .map_err(|e| self.sql(e))?;
        Ok(())
    }

    /// Every stored record; one that does not parse makes the whole file refused.
    pub fn load(&self) -> Result<Vec<SecretRecord>, StoreError> {
        let mut stmt = self
            .conn
            .prepare("SELECT key, doc FROM secrets")
            .map_err(|e| self.sql(e))?;
        let rows = stmt
            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
            .map_err(|e| self.sql(e))?;
        let mut records = Vec::new();
        for row in rows {
            let (key, doc) = row.map_err(|e| self.sql(e))?;
            let record: SecretRecord = serde_json::from_str(&doc)
                .map_err(|e| self.corrupt(format!("record '{key}' does not parse: {e}")))?;
            if record.name.to_ascii_lowercase() != key || record.versions.is_empty() {
                return Err(self.corrupt(format!("record '{key}' is inconsistent")));
            }
            records.push(record);
        }
        Ok(records)
    }

    pub fn is_seeded(&self) -> Result<bool, StoreError> {
        let seeded: Option<String> = self
            .conn
            .query_row("SELECT value FROM meta WHERE key = 'seeded'", [], |r| {
                r.get(0)
            })
            .optional()
            .map_err(|e| self.sql(e))?;
        Ok(seeded.is_some())
    }

    /// Stores the configured seed secrets and marks the vault seeded, atomically.
    pub fn seed(&mut self, records: &[SecretRecord]) -> Result<(), StoreError> {
        let tx = self.conn.transaction().map_err(|e| StoreError::Io {
            path: self.path.clone(),
            source: e,
        })?;
        for record in records {
            let doc = serde_json::to_string(record).map_err(|e| StoreError::Corrupt {
                path: self.path.clone(),
                reason: e.to_string(),
            })?;
            tx.execute(
                "INSERT OR REPLACE INTO secrets (key, doc) VALUES (?1, ?2)",
                params![record.name.to_ascii_lowercase(), doc],
            )
            .map_err(|e| StoreError::Io {
                path: self.path.clone(),
                source: e,
            })?;
        }
        tx.execute(
            "INSERT OR REPLACE INTO meta (key, value) VALUES ('seeded', '1')",
            [],
        )
        .and_then(|_| tx.commit())
        .map_err(|e| StoreError::Io {
            path: self.path.clone(),
            source: e,
        })
    }

    pub fn put(&mut self, key: &str, record: &SecretRecord) -> Result<(), StoreError> {
        let doc = serde_json::to_string(record).map_err(|e| self.corrupt(e.to_string()))?;
        self.conn
            .execute(
                "INSERT OR REPLACE INTO secrets (key, doc) VALUES (?1, ?2)",
                params![key, doc],
            )
            .map(|_| ())
            .map_err(|e| self.sql(e))
    }

    pub fn remove(&mut self, key: &str) -> Result<(), StoreError> {
        self.conn
            .execute("DELETE FROM secrets WHERE key = ?1", params![key])
            .map(|_| ())
            .map_err(|e| self.sql(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Lifecycle, SecretVersion};

    fn record(name: &str) -> SecretRecord {
        SecretRecord {
            name: name.into(),
            managed: false,
            versions: vec![SecretVersion {
                version: "0".repeat(32),
                value: "v".into(),
                content_type: None,
                tags: Default::default(),
                enabled: true,
                nbf: None,
                exp: None,
                created: 1,
                updated: 1,
            }],
            lifecycle: Lifecycle::Active { settles_at_ms: 0 },
        }
    }

    #[test]
    fn records_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = VaultFile::path_for(dir.path(), "kv-a");
        let mut f = VaultFile::open(&path, "kv-a").unwrap();
        assert!(!f.is_seeded().unwrap());
        f.seed(&[record("Seed")]).unwrap();
        f.put("x", &record("X")).unwrap();
        f.put("y", &record("y")).unwrap();
        f.remove("y").unwrap();
        drop(f);
        let f = VaultFile::open(&path, "KV-A").unwrap();
        assert!(f.is_seeded().unwrap());
        let mut names: Vec<String> = f.load().unwrap().into_iter().map(|r| r.name).collect();
        names.sort();
        assert_eq!(names, ["Seed", "X"]);
    }

    #[test]
    fn garbage_foreign_and_other_vault_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let garbage = dir.path().join("garbage.kvstore");
        std::fs::write(&garbage, vec![0x5a; 8192]).unwrap();
        let e = VaultFile::open(&garbage, "kv-a").err().unwrap();
        assert!(matches!(e, StoreError::Corrupt { .. }), "{e}");

        let foreign = dir.path().join("foreign.kvstore");
        let c = Connection::open(&foreign).unwrap();
        c.execute_batch("CREATE TABLE t (x); INSERT INTO t VALUES (1);")
            .unwrap();
        drop(c);
        let e = VaultFile::open(&foreign, "kv-a").err().unwrap();
        assert!(
            e.to_string().contains("not a ppvnet Key Vault store"),
            "{e}"
        );

        let other = VaultFile::path_for(dir.path(), "kv-b");
        drop(VaultFile::open(&other, "kv-b").unwrap());
        let e = VaultFile::open(&other, "kv-a").err().unwrap();
        assert!(e.to_string().contains("belongs to vault 'kv-b'"), "{e}");
    }

    #[test]
    fn an_unparseable_record_refuses_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = VaultFile::path_for(dir.path(), "kv-a");
        let f = VaultFile::open(&path, "kv-a").unwrap();
        f.conn
            .execute(
                "INSERT INTO secrets (key, doc) VALUES ('a', '{not json')",
                [],
            )
            .unwrap();
        let e = f.load().err().unwrap();
        assert!(e.to_string().contains("record 'a' does not parse"), "{e}");
    }
}
