//! The case database: SQLite with an FTS5 index, searched in the caller's context.
//!
//! Layout: a `cases` table (the record) and a contentless FTS5 table over title, description and
//! customer plus one hidden `access` column. `access` holds a token per case for its owner
//! (`o<oid>`), its team group (`t<gid>`) and its status (`s<status>`). A search in a user's
//! context is then a single FTS5 query, `(words) AND access:(o<me> OR t<team1> OR …)`, so
//! SQLite intersects posting lists and scores with bm25 only the cases the user may see, instead
//! of scoring every match in the tenant and filtering afterwards. `access` has weight 0 in bm25,
//! so visibility never changes the ranking, and user words are confined to the text columns,
//! so no query can match on someone else's access token.
//!
//! Pagination is keyset-based: ranked results by `(bm25, id)`, listings by `(created, id)`
//! newest first. The data never changes after the build, so a cursor resumes exactly after
//! the last row returned: every visible match is returned once.
//!
//! Without a configured path the database lives in a temporary file that is removed on drop:
//! a file (rather than `:memory:`) lets every pooled connection read in parallel.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use rusqlite::{Connection, OpenFlags, OptionalExtension, params, params_from_iter};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::generator::{self, DataConfig};

/// Bump when the schema or the way data is derived changes: stored databases are rebuilt.
const SCHEMA_VERSION: u32 = 1;

/// bm25 column weights: title, description, customer, access.
const BM25: &str = "bm25(cases_fts, 4.0, 1.0, 2.0, 0.0)";

/// At most this many words of a query are searched.
pub const MAX_TERMS: usize = 16;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("cannot prepare the database file {path}: {source}")]
    File {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// A case as the API returns it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Case {
    pub id: String,
    pub title: String,
    pub description: String,
    pub status: String,
    pub priority: String,
    pub customer: String,
    pub owner_object_id: String,
    pub team_group_id: String,
    pub created_date_time: String,
    pub last_modified_date_time: String,
}

/// Public case ids are `CAS-` and seven digits.
pub fn case_id(number: u64) -> String {
    format!("CAS-{number:07}")
}

/// The number behind a public case id; `None` for anything that is not one.
pub fn case_number(id: &str) -> Option<u64> {
    let digits = id.strip_prefix("CAS-")?;
    if digits.len() < 7 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok().filter(|n| *n > 0)
}

/// Whose cases a caller sees.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Viewer {
    /// `Cases.Read.All`: every case.
    All,
    /// A user: cases they own and cases of their groups.
    Scoped {
        object_id: String,
        group_ids: Vec<String>,
    },
}

/// Where the previous page ended.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Cursor {
    Ranked { score: f64, number: u64 },
    Newest { created: i64, number: u64 },
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct SearchQuery {
    /// Free text; `None` lists every visible case, newest first.
    pub text: Option<String>,
    /// One of [`generator::STATUSES`] (case-insensitive).
    pub status: Option<String>,
    pub top: u32,
    pub after: Option<Cursor>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Page {
    pub cases: Vec<Case>,
    /// Present when more results follow.
    pub next: Option<Cursor>,
}

/// Build statistics, for logs and the bench.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BuildReport {
    pub cases: u64,
    pub rebuilt: bool,
    pub seconds: f64,
}

pub struct CaseStore {
    readers: Vec<Mutex<Connection>>,
    next_reader: AtomicUsize,
    file: PathBuf,
    generation: String,
    report: BuildReport,
    // Keeps the temporary database alive; removed when the store is dropped.
    _temp: Option<tempfile::TempDir>,
}

impl std::fmt::Debug for CaseStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CaseStore")
            .field("generation", &self.generation)
            .field("report", &self.report)
            .finish_non_exhaustive()
    }
}

/// The words of a query as FTS5 phrases: split on anything but letters and digits, so no FTS5
/// syntax (column filters, NEAR, quotes) can be injected; a trailing `*` keeps prefix search.
pub fn query_terms(text: &str) -> Vec<String> {
    let mut terms = Vec::new();
    let mut word = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c.is_alphanumeric() {
            word.extend(c.to_lowercase());
            if chars.peek().is_some_and(|n| *n == '*') {
                chars.next();
                terms.push(format!("\"{word}\"*"));
                word.clear();
            }
        } else if !word.is_empty() {
            terms.push(format!("\"{word}\""));
            word.clear();
        }
    }
    if !word.is_empty() {
        terms.push(format!("\"{word}\""));
    }
    terms.truncate(MAX_TERMS);
    terms
}

/// The `access` token of an object id, group id or status: letters and digits only, so the
/// tokenizer keeps it as one token.
fn access_token(prefix: char, value: &str) -> String {
    let mut token = String::with_capacity(value.len() + 1);
    token.push(prefix);
    token.extend(
        value
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .map(|c| c.to_ascii_lowercase()),
    );
    token
}

/// The canonical spelling of a status, matched case-insensitively.
pub fn canonical_status(status: &str) -> Option<&'static str> {
    generator::STATUSES
        .iter()
        .copied()
        .find(|s| s.eq_ignore_ascii_case(status))
}

fn fingerprint(data: &DataConfig) -> String {
    let mut hash = Sha256::new();
    hash.update(SCHEMA_VERSION.to_le_bytes());
    hash.update(serde_json::to_vec(data).unwrap_or_default());
    hash.finalize()
        .iter()
        .take(8)
        .map(|b| format!("{b:02x}"))
        .collect()
}

const CASE_COLUMNS: &str = "id, title, description, status, priority, customer, \
                            owner_object_id, team_group_id, created, updated";

fn row_to_case(row: &rusqlite::Row<'_>) -> rusqlite::Result<(Case, i64)> {
    let number: i64 = row.get(0)?;
    let created: i64 = row.get(8)?;
    let updated: i64 = row.get(9)?;
    Ok((
        Case {
            id: case_id(number.unsigned_abs()),
            title: row.get(1)?,
            description: row.get(2)?,
            status: row.get(3)?,
            priority: row.get(4)?,
            customer: row.get(5)?,
            owner_object_id: row.get(6)?,
            team_group_id: row.get(7)?,
            created_date_time: rfc3339(created),
            last_modified_date_time: rfc3339(updated),
        },
        created,
    ))
}

fn rfc3339(unix: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

impl CaseStore {
    /// Opens the database at `path` if it holds exactly `data`, otherwise (re)builds it there;
    /// without a path, builds into a temporary file. Blocking: call from `spawn_blocking` in
    /// async code (10,000 cases take well under a second, 1,000,000 about a minute).
    pub fn open(path: Option<&Path>, data: &DataConfig) -> Result<Self, StoreError> {
        let generation = fingerprint(data);
        let (file, temp) = match path {
            Some(p) => (p.to_path_buf(), None),
            None => {
                let dir = tempfile::Builder::new()
                    .prefix("ppvnet-cases-")
                    .tempdir()
                    .map_err(|source| StoreError::File {
                        path: std::env::temp_dir(),
                        source,
                    })?;
                (dir.path().join("cases.sqlite"), Some(dir))
            }
        };
        let started = std::time::Instant::now();
        let rebuilt = if stored_generation(&file).as_deref() == Some(generation.as_str()) {
            false
        } else {
            build(&file, data, &generation)?;
            true
        };
        let readers = (0..reader_count())
            .map(|_| open_reader(&file).map(Mutex::new))
            .collect::<Result<Vec<_>, _>>()?;
        let store = Self {
            readers,
            next_reader: AtomicUsize::new(0),
            file,
            generation,
            report: BuildReport {
                cases: 0,
                rebuilt,
                seconds: started.elapsed().as_secs_f64(),
            },
            _temp: temp,
        };
        let cases = store.with_reader(|c| {
            c.query_row("SELECT count(*) FROM cases", [], |r| r.get::<_, i64>(0))
        })?;
        Ok(Self {
            report: BuildReport {
                cases: cases.unsigned_abs(),
                ..store.report
            },
            ..store
        })
    }

    /// Identifies the data set; continuation tokens of another data set are refused.
    pub fn generation(&self) -> &str {
        &self.generation
    }

    pub fn report(&self) -> BuildReport {
        self.report
    }

    /// Size of the database file.
    pub fn database_bytes(&self) -> u64 {
        std::fs::metadata(&self.file).map(|m| m.len()).unwrap_or(0)
    }

    fn with_reader<T>(
        &self,
        f: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> Result<T, StoreError> {
        let n = self.readers.len();
        let start = self.next_reader.fetch_add(1, Ordering::Relaxed);
        for i in 0..n {
            if let Ok(conn) = self.readers[(start + i) % n].try_lock() {
                return Ok(f(&conn)?);
            }
        }
        let conn = self.readers[start % n]
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        Ok(f(&conn)?)
    }

    /// One case, if the viewer may see it.
    pub fn get(&self, number: u64, viewer: &Viewer) -> Result<Option<Case>, StoreError> {
        let number = i64::try_from(number).unwrap_or(i64::MAX);
        let found = self.with_reader(|c| {
            c.query_row(
                &format!("SELECT {CASE_COLUMNS} FROM cases WHERE id = ?1"),
                [number],
                row_to_case,
            )
            .optional()
        })?;
        Ok(found.map(|(case, _)| case).filter(|case| match viewer {
            Viewer::All => true,
            Viewer::Scoped {
                object_id,
                group_ids,
            } => {
                case.owner_object_id.eq_ignore_ascii_case(object_id)
                    || group_ids
                        .iter()
                        .any(|g| g.eq_ignore_ascii_case(&case.team_group_id))
            }
        }))
    }

    /// A page of results. `query.text` must contain at least one word (see [`query_terms`]);
    /// `query.status` must be canonical (see [`canonical_status`]).
    pub fn search(&self, query: &SearchQuery, viewer: &Viewer) -> Result<Page, StoreError> {
        let terms = query.text.as_deref().map(query_terms).unwrap_or_default();
        if terms.is_empty() {
            self.newest(query, viewer)
        } else {
            self.ranked(&terms, query, viewer)
        }
    }

    fn ranked(
        &self,
        terms: &[String],
        query: &SearchQuery,
        viewer: &Viewer,
    ) -> Result<Page, StoreError> {
        let mut expr = format!("{{title description customer}} : ({})", terms.join(" "));
        if let Viewer::Scoped {
            object_id,
            group_ids,
        } = viewer
        {
            let mut who = vec![format!("\"{}\"", access_token('o', object_id))];
            who.extend(
                group_ids
                    .iter()
                    .map(|g| format!("\"{}\"", access_token('t', g))),
            );
            expr.push_str(&format!(" AND access : ({})", who.join(" OR ")));
        }
        if let Some(status) = &query.status {
            expr.push_str(&format!(" AND access : \"{}\"", access_token('s', status)));
        }
        let (score, after) = match query.after {
            Some(Cursor::Ranked { score, number }) => {
                (Some(score), Some(i64::try_from(number).unwrap_or(i64::MAX)))
            }
            _ => (None, None),
        };
        let limit = i64::from(query.top) + 1;
        // The page is chosen on the FTS table alone (rowid and score), and only its rows are
        // joined to `cases`: joining every match before sorting costs more than the search.
        // The cursor condition is only added when there is a cursor, because it evaluates
        // bm25 a second time per match.
        let resume = if score.is_some() {
            format!("AND ({BM25} > ?2 OR ({BM25} = ?2 AND rowid > ?3))")
        } else {
            "AND ?2 IS NULL AND ?3 IS NULL".to_owned()
        };
        let sql = format!(
            "SELECT {CASE_COLUMNS}, f.score FROM \
               (SELECT rowid AS rid, {BM25} AS score FROM cases_fts \
                WHERE cases_fts MATCH ?1 {resume} ORDER BY score, rid LIMIT ?4) f \
             JOIN cases ON cases.id = f.rid \
             ORDER BY f.score, f.rid"
        );
        let rows = self.with_reader(|c| {
            let mut stmt = c.prepare_cached(&sql)?;
            let rows = stmt.query_map(params![expr, score, after, limit], |row| {
                let (case, _) = row_to_case(row)?;
                let number: i64 = row.get(0)?;
                let score: f64 = row.get(10)?;
                let cursor = Cursor::Ranked {
                    score,
                    number: number.unsigned_abs(),
                };
                Ok((case, cursor))
            })?;
            rows.collect::<rusqlite::Result<Vec<_>>>()
        })?;
        Ok(page(rows, query.top))
    }

    fn newest(&self, query: &SearchQuery, viewer: &Viewer) -> Result<Page, StoreError> {
        let (created, after) = match query.after {
            Some(Cursor::Newest { created, number }) => (
                Some(created),
                Some(i64::try_from(number).unwrap_or(i64::MAX)),
            ),
            _ => (None, None),
        };
        let limit = i64::from(query.top) + 1;
        // ?1 status, ?2/?3 cursor, ?4 limit, then one parameter per owner/group branch.
        let filter = "(?1 IS NULL OR status = ?1) \
                      AND (?2 IS NULL OR (created, id) < (?2, ?3))";
        let mut keys: Vec<String> = Vec::new();
        let sql = match viewer {
            Viewer::All => format!(
                "SELECT {CASE_COLUMNS} FROM cases WHERE {filter} \
                 ORDER BY created DESC, id DESC LIMIT ?4"
            ),
            Viewer::Scoped {
                object_id,
                group_ids,
            } => {
                // One index range scan per owner/group, each already in order and limited,
                // then a merge: cheap however many cases the groups hold.
                let mut branches = Vec::new();
                keys.push(object_id.to_ascii_lowercase());
                branches.push(format!(
                    "SELECT * FROM (SELECT id FROM cases WHERE owner_object_id = ?5 AND {filter} \
                     ORDER BY created DESC, id DESC LIMIT ?4)"
                ));
                for group in group_ids {
                    keys.push(group.to_ascii_lowercase());
                    let p = keys.len() + 4;
                    branches.push(format!(
                        "SELECT * FROM (SELECT id FROM cases WHERE team_group_id = ?{p} AND {filter} \
                         ORDER BY created DESC, id DESC LIMIT ?4)"
                    ));
                }
                format!(
                    "SELECT {CASE_COLUMNS} FROM cases WHERE id IN ({}) \
                     ORDER BY created DESC, id DESC LIMIT ?4",
                    branches.join(" UNION ")
                )
            }
        };
        let rows = self.with_reader(|c| {
            let mut stmt = c.prepare_cached(&sql)?;
            let mut values: Vec<rusqlite::types::Value> = vec![
                query.status.clone().into(),
                created.into(),
                after.into(),
                limit.into(),
            ];
            values.extend(keys.iter().cloned().map(rusqlite::types::Value::from));
            let rows = stmt.query_map(params_from_iter(values), |row| {
                let (case, created) = row_to_case(row)?;
                let number: i64 = row.get(0)?;
                let cursor = Cursor::Newest {
                    created,
                    number: number.unsigned_abs(),
                };
                Ok((case, cursor))
            })?;
            rows.collect::<rusqlite::Result<Vec<_>>>()
        })?;
        Ok(page(rows, query.top))
    }
}

/// Cuts the `top + 1` rows fetched into a page and the cursor of its last row.
fn page(mut rows: Vec<(Case, Cursor)>, top: u32) -> Page {
    let top = usize::try_from(top).unwrap_or(usize::MAX);
    let more = rows.len() > top;
    rows.truncate(top);
    let next = if more {
        rows.last().map(|(_, c)| *c)
    } else {
        None
    };
    Page {
        cases: rows.into_iter().map(|(case, _)| case).collect(),
        next,
    }
}

fn reader_count() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
        .clamp(2, 8)
}

fn open_reader(file: &Path) -> Result<Connection, StoreError> {
    let conn = Connection::open_with_flags(
        file,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    // Map the file instead of copying pages into each connection's cache.
    conn.pragma_update(None, "mmap_size", 4_i64 << 30)?;
    conn.set_prepared_statement_cache_capacity(64);
    Ok(conn)
}

fn stored_generation(file: &Path) -> Option<String> {
    if !file.exists() {
        return None;
    }
    let conn = Connection::open_with_flags(file, OpenFlags::SQLITE_OPEN_READ_ONLY).ok()?;
    conn.query_row("SELECT value FROM meta WHERE key = 'generation'", [], |r| {
        r.get(0)
    })
    .ok()
}

fn build(file: &Path, data: &DataConfig, generation: &str) -> Result<(), StoreError> {
    for stale in [file.to_path_buf(), file.with_extension("sqlite-journal")] {
        match std::fs::remove_file(&stale) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => {
                return Err(StoreError::File {
                    path: stale,
                    source,
                });
            }
        }
    }
    let mut conn = Connection::open(file)?;
    // A build either completes or is redone from scratch (the generation row is written last),
    // so durability during the build buys nothing.
    conn.execute_batch(
        "PRAGMA journal_mode = OFF;
         PRAGMA synchronous = OFF;
         PRAGMA cache_size = -262144;
         CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
         CREATE TABLE cases (
             id INTEGER PRIMARY KEY,
             title TEXT NOT NULL,
             description TEXT NOT NULL,
             status TEXT NOT NULL,
             priority TEXT NOT NULL,
             customer TEXT NOT NULL,
             owner_object_id TEXT NOT NULL,
             team_group_id TEXT NOT NULL,
             created INTEGER NOT NULL,
             updated INTEGER NOT NULL
         );
         CREATE VIRTUAL TABLE cases_fts USING fts5(
             title, description, customer, access,
             content = '',
             tokenize = 'porter unicode61 remove_diacritics 2'
         );",
    )?;
    let tx = conn.transaction()?;
    {
        let mut case = tx.prepare(&format!(
            "INSERT INTO cases ({CASE_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"
        ))?;
        let mut fts = tx.prepare(
            "INSERT INTO cases_fts (rowid, title, description, customer, access) \
             VALUES (?1, ?2, ?3, ?4, ?5)",
        )?;
        for c in generator::cases(data) {
            let id = i64::try_from(c.number).unwrap_or(i64::MAX);
            let owner = c.owner_object_id.to_ascii_lowercase();
            let team = c.team_group_id.to_ascii_lowercase();
            case.execute(params![
                id,
                c.title,
                c.description,
                c.status,
                c.priority,
                c.customer,
                owner,
                team,
                c.created,
                c.updated
            ])?;
            let access = format!(
                "{} {} {}",
                access_token('o', &owner),
                access_token('t', &team),
                access_token('s', c.status)
            );
            fts.execute(params![id, c.title, c.description, c.customer, access])?;
        }
    }
    tx.execute_batch(
        "CREATE INDEX cases_owner_created ON cases (owner_object_id, created DESC, id DESC);
         CREATE INDEX cases_team_created ON cases (team_group_id, created DESC, id DESC);
         CREATE INDEX cases_created ON cases (created DESC, id DESC);
         INSERT INTO cases_fts (cases_fts) VALUES ('optimize');
         ANALYZE;",
    )?;
    tx.execute(
        "INSERT INTO meta (key, value) VALUES ('generation', ?1)",
        [generation],
    )?;
    tx.commit()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generator::CaseOwner;

    #[test]
    fn query_words_cannot_inject_fts5_syntax() {
        assert_eq!(
            query_terms("Printer offline"),
            vec!["\"printer\"", "\"offline\""]
        );
        assert_eq!(
            query_terms("access:o123 OR title:\"x\" NEAR(a b)"),
            vec![
                "\"access\"",
                "\"o123\"",
                "\"or\"",
                "\"title\"",
                "\"x\"",
                "\"near\"",
                "\"a\"",
                "\"b\""
            ]
        );
        assert_eq!(query_terms("print* *"), vec!["\"print\"*"]);
        assert_eq!(query_terms("Café"), vec!["\"café\""]);
        assert!(query_terms(" ,;!* ").is_empty());
        assert_eq!(query_terms(&"a ".repeat(40)).len(), MAX_TERMS);
    }

    #[test]
    fn case_ids_round_trip_and_garbage_is_refused() {
        assert_eq!(case_id(42), "CAS-0000042");
        assert_eq!(case_number("CAS-0000042"), Some(42));
        assert_eq!(case_number("CAS-1000000"), Some(1_000_000));
        for bad in [
            "CAS-42",
            "cas-0000042",
            "CAS-00000x2",
            "CAS-0000000",
            "42",
            "CAS--000042",
        ] {
            assert_eq!(case_number(bad), None, "{bad}");
        }
    }

    #[test]
    fn bundled_sqlite_has_fts5_with_bm25() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(
            "CREATE VIRTUAL TABLE t USING fts5(x);
             INSERT INTO t (x) VALUES ('printer offline'), ('printer printer printer');",
        )
        .unwrap();
        let best: String = conn
            .query_row(
                "SELECT x FROM t WHERE t MATCH 'printer' ORDER BY bm25(t) LIMIT 1",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(best, "printer printer printer");
    }

    fn data(count: u64) -> DataConfig {
        DataConfig {
            seed: 5,
            count,
            owners: vec![
                CaseOwner {
                    object_id: "AAAA-1".into(),
                    team_group_id: "GROUP-N".into(),
                },
                CaseOwner {
                    object_id: "bbbb-2".into(),
                    team_group_id: "group-s".into(),
                },
            ],
        }
    }

    #[test]
    fn a_stored_database_is_reused_only_for_the_same_data() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("cases.sqlite");
        let first = CaseStore::open(Some(&file), &data(300)).unwrap();
        assert!(first.report().rebuilt);
        assert_eq!(first.report().cases, 300);
        drop(first);
        let again = CaseStore::open(Some(&file), &data(300)).unwrap();
        assert!(!again.report().rebuilt);
        drop(again);
        let other = CaseStore::open(Some(&file), &data(200)).unwrap();
        assert!(other.report().rebuilt);
        assert_eq!(other.report().cases, 200);
    }

    #[test]
    fn ids_and_groups_match_case_insensitively() {
        let store = CaseStore::open(None, &data(50)).unwrap();
        let alice = Viewer::Scoped {
            object_id: "aaaa-1".into(),
            group_ids: vec![],
        };
        let by_group = Viewer::Scoped {
            object_id: "nobody".into(),
            group_ids: vec!["group-n".into()],
        };
        let q = SearchQuery {
            top: 100,
            ..Default::default()
        };
        let own = store.search(&q, &alice).unwrap().cases;
        assert!(!own.is_empty());
        assert!(own.iter().all(|c| c.owner_object_id == "aaaa-1"));
        assert_eq!(store.search(&q, &by_group).unwrap().cases, own);
        let word = own[0].title.split(' ').next().unwrap().to_owned();
        let ranked = SearchQuery {
            text: Some(word),
            ..q
        };
        let hits = store.search(&ranked, &by_group).unwrap().cases;
        assert!(!hits.is_empty());
        assert!(hits.iter().all(|c| c.team_group_id == "group-n"));
        let number = case_number(&own[0].id).unwrap();
        assert!(store.get(number, &alice).unwrap().is_some());
        let stranger = Viewer::Scoped {
            object_id: "bbbb-2".into(),
            group_ids: vec![],
        };
        assert!(store.get(number, &stranger).unwrap().is_none());
        assert!(store.get(number, &Viewer::All).unwrap().is_some());
        assert!(store.get(999_999, &Viewer::All).unwrap().is_none());
    }
}
