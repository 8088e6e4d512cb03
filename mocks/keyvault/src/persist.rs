//! Durable storage: one SQLite file per vault (`{data_dir}/{vault}.kvstore`).
//!
//! Each acknowledged write is one SQLite transaction committed with `synchronous=FULL` in WAL
//! mode, so it survives a killed process (and a power cut). A file is only accepted when it is
//! recognisably ours: the SQLite `application_id` marks ppvnet vault stores, `user_version` the
//! schema, a meta row the vault it belongs to, and every record must parse; anything else is
//! refused with an error naming the file, never silently dropped or overwritten.
//!
//! Schema 2 keeps a secret's header (name, lifecycle) and each of its versions in rows of their
//! own, so a new version is one small row insert: the cost of a write does not grow with the
//! secret's history (schema 1 rewrote the whole record, all versions, on every write; such
//! files are migrated on open). The file is created 0600 (it holds secret values in clear);
//! SQLite gives its `-wal` and `-shm` files the database file's mode.

use std::path::{Path, PathBuf};

use rusqlite::{Connection, OptionalExtension, Transaction, params};
use serde::{Deserialize, Serialize};

use crate::store::{Lifecycle, SecretRecord, SecretVersion};

/// `ppvk` in ASCII.
const APPLICATION_ID: i64 = 0x7070_766b;
const SCHEMA_VERSION: i64 = 2;
/// Whole records in one row; migrated to [`SCHEMA_VERSION`] on open.
const SCHEMA_WHOLE_RECORDS: i64 = 1;

const CREATE_TABLES: &str = "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
     CREATE TABLE secrets (key TEXT PRIMARY KEY, doc TEXT NOT NULL);
     CREATE TABLE versions (key TEXT NOT NULL, seq INTEGER NOT NULL, doc TEXT NOT NULL,
                            PRIMARY KEY (key, seq)) WITHOUT ROWID;";

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
    #[error("vault store {path} cannot be created: {source}")]
    Create {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// A secret without its versions: the `secrets` row.
#[derive(Serialize, Deserialize)]
pub struct RecordHeader {
    pub name: String,
    pub managed: bool,
    pub lifecycle: Lifecycle,
}

impl RecordHeader {
    pub fn of(record: &SecretRecord) -> Self {
        Self {
            name: record.name.clone(),
            managed: record.managed,
            lifecycle: record.lifecycle.clone(),
        }
    }
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
        // Created here, owner-only, before SQLite would create it with its default 0644.
        ppvnet_common::private_fs::open_or_create(&path).map_err(|source| StoreError::Create {
            path: path.clone(),
            source,
        })?;
        let conn = Connection::open(&path).map_err(|source| StoreError::Io {
            path: path.clone(),
            source,
        })?;
        let mut file = Self { path, conn };
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
        sql_error(&self.path, e)
    }

    fn check_or_init(&mut self, vault: &str) -> Result<(), StoreError> {
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
        if version != SCHEMA_VERSION && version != SCHEMA_WHOLE_RECORDS {
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
        self.pragmas()?;
        if version == SCHEMA_WHOLE_RECORDS {
            self.migrate_whole_records()?;
        }
        Ok(())
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
                 {CREATE_TABLES}
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

    /// Schema 1 -> 2: splits each whole record into its header and version rows, in one
    /// transaction (a crash leaves the file at schema 1, migrated again on the next open).
    fn migrate_whole_records(&mut self) -> Result<(), StoreError> {
        let path = self.path.clone();
        let tx = self.conn.transaction().map_err(|e| sql_error(&path, e))?;
        let old: Vec<(String, String)> = {
            let mut stmt = tx
                .prepare("SELECT key, doc FROM secrets")
                .map_err(|e| sql_error(&path, e))?;
            let rows = stmt
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
                .map_err(|e| sql_error(&path, e))?;
            rows.collect::<Result<_, _>>()
                .map_err(|e| sql_error(&path, e))?
        };
        tx.execute_batch(
            "DROP TABLE secrets;
             CREATE TABLE secrets (key TEXT PRIMARY KEY, doc TEXT NOT NULL);
             CREATE TABLE versions (key TEXT NOT NULL, seq INTEGER NOT NULL, doc TEXT NOT NULL,
                                    PRIMARY KEY (key, seq)) WITHOUT ROWID;",
        )
        .map_err(|e| sql_error(&path, e))?;
        for (key, doc) in old {
            let record: SecretRecord =
                serde_json::from_str(&doc).map_err(|e| StoreError::Corrupt {
                    path: path.clone(),
                    reason: format!("record '{key}' does not parse: {e}"),
                })?;
            write_record(&tx, &path, &key, &record)?;
        }
        tx.execute_batch(&format!("PRAGMA user_version = {SCHEMA_VERSION};"))
            .and_then(|_| tx.commit())
            .map_err(|e| sql_error(&path, e))
    }

    /// Every stored record; one that does not parse makes the whole file refused.
    pub fn load(&self) -> Result<Vec<SecretRecord>, StoreError> {
        let mut records = std::collections::BTreeMap::new();
        let mut stmt = self
            .conn
            .prepare("SELECT key, doc FROM secrets")
            .map_err(|e| self.sql(e))?;
        let rows = stmt
            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
            .map_err(|e| self.sql(e))?;
        for row in rows {
            let (key, doc) = row.map_err(|e| self.sql(e))?;
            let header: RecordHeader = serde_json::from_str(&doc)
                .map_err(|e| self.corrupt(format!("record '{key}' does not parse: {e}")))?;
            if header.name.to_ascii_lowercase() != key {
                return Err(self.corrupt(format!("record '{key}' is inconsistent")));
            }
            let record = SecretRecord {
                name: header.name,
                managed: header.managed,
                versions: Vec::new(),
                lifecycle: header.lifecycle,
            };
            records.insert(key, record);
        }
        self.load_versions(&mut records)?;
        if let Some((key, _)) = records.iter().find(|(_, r)| r.versions.is_empty()) {
            return Err(self.corrupt(format!("record '{key}' has no version")));
        }
        Ok(records.into_values().collect())
    }

    fn load_versions(
        &self,
        records: &mut std::collections::BTreeMap<String, SecretRecord>,
    ) -> Result<(), StoreError> {
        let mut stmt = self
            .conn
            .prepare("SELECT key, seq, doc FROM versions ORDER BY key, seq")
            .map_err(|e| self.sql(e))?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, String>(2)?,
                ))
            })
            .map_err(|e| self.sql(e))?;
        for row in rows {
            let (key, seq, doc) = row.map_err(|e| self.sql(e))?;
            let Some(record) = records.get_mut(&key) else {
                return Err(self.corrupt(format!("version {seq} of '{key}' has no record")));
            };
            // Versions are numbered 0, 1, 2… without gaps; anything else is not our writing.
            if usize::try_from(seq).ok() != Some(record.versions.len()) {
                return Err(self.corrupt(format!("record '{key}' misses version {seq}")));
            }
            let version: SecretVersion = serde_json::from_str(&doc).map_err(|e| {
                self.corrupt(format!("version {seq} of '{key}' does not parse: {e}"))
            })?;
            record.versions.push(version);
        }
        Ok(())
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
        let path = self.path.clone();
        let tx = self.conn.transaction().map_err(|e| sql_error(&path, e))?;
        for record in records {
            write_record(&tx, &path, &record.name.to_ascii_lowercase(), record)?;
        }
        tx.execute(
            "INSERT OR REPLACE INTO meta (key, value) VALUES ('seeded', '1')",
            [],
        )
        .and_then(|_| tx.commit())
        .map_err(|e| sql_error(&path, e))
    }

    /// Replaces the whole record stored under `key` (restore, re-creation after a purge).
    pub fn put(&mut self, key: &str, record: &SecretRecord) -> Result<(), StoreError> {
        let path = self.path.clone();
        let tx = self.conn.transaction().map_err(|e| sql_error(&path, e))?;
        write_record(&tx, &path, key, record)?;
        tx.commit().map_err(|e| sql_error(&path, e))
    }

    /// Adds version number `seq` to the record under `key`: one row, whatever the history.
    pub fn append_version(
        &mut self,
        key: &str,
        seq: usize,
        version: &SecretVersion,
    ) -> Result<(), StoreError> {
        let doc = serde_json::to_string(version).map_err(|e| self.corrupt(e.to_string()))?;
        let seq = i64::try_from(seq).map_err(|e| self.corrupt(e.to_string()))?;
        self.conn
            .execute(
                "INSERT INTO versions (key, seq, doc) VALUES (?1, ?2, ?3)",
                params![key, seq, doc],
            )
            .map(|_| ())
            .map_err(|e| self.sql(e))
    }

    /// Rewrites version number `seq` of the record under `key` (attribute updates).
    pub fn update_version(
        &mut self,
        key: &str,
        seq: usize,
        version: &SecretVersion,
    ) -> Result<(), StoreError> {
        let doc = serde_json::to_string(version).map_err(|e| self.corrupt(e.to_string()))?;
        let seq = i64::try_from(seq).map_err(|e| self.corrupt(e.to_string()))?;
        let changed = self
            .conn
            .execute(
                "UPDATE versions SET doc = ?3 WHERE key = ?1 AND seq = ?2",
                params![key, seq, doc],
            )
            .map_err(|e| self.sql(e))?;
        if changed == 1 {
            Ok(())
        } else {
            Err(self.corrupt(format!("version {seq} of '{key}' is not stored")))
        }
    }

    /// Rewrites the header of the record under `key` (delete, recover).
    pub fn put_header(&mut self, key: &str, header: &RecordHeader) -> Result<(), StoreError> {
        let doc = serde_json::to_string(header).map_err(|e| self.corrupt(e.to_string()))?;
        self.conn
            .execute(
                "INSERT OR REPLACE INTO secrets (key, doc) VALUES (?1, ?2)",
                params![key, doc],
            )
            .map(|_| ())
            .map_err(|e| self.sql(e))
    }

    pub fn remove(&mut self, key: &str) -> Result<(), StoreError> {
        let path = self.path.clone();
        let tx = self.conn.transaction().map_err(|e| sql_error(&path, e))?;
        tx.execute("DELETE FROM versions WHERE key = ?1", params![key])
            .and_then(|_| tx.execute("DELETE FROM secrets WHERE key = ?1", params![key]))
            .and_then(|_| tx.commit())
            .map_err(|e| sql_error(&path, e))
    }
}

fn sql_error(path: &Path, e: rusqlite::Error) -> StoreError {
    match e.sqlite_error_code() {
        Some(rusqlite::ErrorCode::NotADatabase) | Some(rusqlite::ErrorCode::DatabaseCorrupt) => {
            StoreError::Corrupt {
                path: path.to_path_buf(),
                reason: e.to_string(),
            }
        }
        _ => StoreError::Io {
            path: path.to_path_buf(),
            source: e,
        },
    }
}

/// Writes `record` under `key` inside `tx`, replacing whatever was stored there.
fn write_record(
    tx: &Transaction<'_>,
    path: &Path,
    key: &str,
    record: &SecretRecord,
) -> Result<(), StoreError> {
    let unserialisable = |e: serde_json::Error| StoreError::Corrupt {
        path: path.to_path_buf(),
        reason: e.to_string(),
    };
    let header = serde_json::to_string(&RecordHeader::of(record)).map_err(unserialisable)?;
    tx.execute("DELETE FROM versions WHERE key = ?1", params![key])
        .and_then(|_| {
            tx.execute(
                "INSERT OR REPLACE INTO secrets (key, doc) VALUES (?1, ?2)",
                params![key, header],
            )
        })
        .map_err(|e| sql_error(path, e))?;
    for (seq, version) in record.versions.iter().enumerate() {
        let doc = serde_json::to_string(version).map_err(unserialisable)?;
        let seq = i64::try_from(seq).unwrap_or(i64::MAX);
        tx.execute(
            "INSERT INTO versions (key, seq, doc) VALUES (?1, ?2, ?3)",
            params![key, seq, doc],
        )
        .map_err(|e| sql_error(path, e))?;
    }
    Ok(())
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
    fn appended_and_updated_versions_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = VaultFile::path_for(dir.path(), "kv-a");
        let mut f = VaultFile::open(&path, "kv-a").unwrap();
        let mut r = record("A");
        f.put("a", &r).unwrap();
        let mut second = r.versions[0].clone();
        second.version = "1".repeat(32);
        f.append_version("a", 1, &second).unwrap();
        second.enabled = false;
        f.update_version("a", 1, &second).unwrap();
        r.lifecycle = Lifecycle::Deleted {
            deleted_date: 5,
            scheduled_purge_date: 6,
            settles_at_ms: 7,
        };
        f.put_header("a", &RecordHeader::of(&r)).unwrap();
        drop(f);
        let loaded = VaultFile::open(&path, "kv-a").unwrap().load().unwrap();
        assert_eq!(loaded.len(), 1);
        assert_eq!(loaded[0].versions.len(), 2);
        assert!(!loaded[0].versions[1].enabled);
        assert_eq!(loaded[0].lifecycle, r.lifecycle);
    }

    #[test]
    fn a_schema_1_file_is_migrated_to_version_rows() {
        let dir = tempfile::tempdir().unwrap();
        let path = VaultFile::path_for(dir.path(), "kv-a");
        let c = Connection::open(&path).unwrap();
        let doc = serde_json::to_string(&record("Old")).unwrap();
        c.execute_batch(&format!(
            "PRAGMA application_id = {APPLICATION_ID}; PRAGMA user_version = 1;
             CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
             CREATE TABLE secrets (key TEXT PRIMARY KEY, doc TEXT NOT NULL);
             INSERT INTO meta VALUES ('vault', 'kv-a'), ('seeded', '1');"
        ))
        .unwrap();
        c.execute("INSERT INTO secrets VALUES ('old', ?1)", params![doc])
            .unwrap();
        drop(c);
        let f = VaultFile::open(&path, "kv-a").unwrap();
        assert_eq!(f.load().unwrap(), vec![record("Old")]);
        let version: i64 = f
            .conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(version, SCHEMA_VERSION);
    }

    #[test]
    fn a_gap_in_the_versions_refuses_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = VaultFile::path_for(dir.path(), "kv-a");
        let mut f = VaultFile::open(&path, "kv-a").unwrap();
        let r = record("A");
        f.put("a", &r).unwrap();
        f.append_version("a", 2, &r.versions[0]).unwrap();
        let e = f.load().err().unwrap();
        assert!(e.to_string().contains("record 'a' misses version 2"), "{e}");
    }

    #[test]
    fn the_store_and_its_journal_are_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        let dir = tempfile::tempdir().unwrap();
        let path = VaultFile::path_for(dir.path(), "kv-a");
        let mut f = VaultFile::open(&path, "kv-a").unwrap();
        f.put("a", &record("A")).unwrap();
        assert_eq!(mode(&path), 0o600);
        for journal in ["kvstore-wal", "kvstore-shm"] {
            let p = path.with_extension(journal);
            assert!(p.exists(), "{} missing", p.display());
            assert_eq!(mode(&p), 0o600, "{}", p.display());
        }
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
