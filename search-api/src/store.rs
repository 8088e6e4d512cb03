//! The case database: SQLite with an FTS5 index, searched in the caller's context.
//!
//! Layout: a `cases` table (the record) and a contentless FTS5 table over title, description and
//! customer plus one hidden `access` column holding a token per case for its owner (`o<oid>`),
//! its team group (`t<gid>`) and its status (`s<status>`). User words are confined to the text
//! columns, so no query can match on an access token, and `access` has weight 0 in the ranking.
//!
//! Visibility partitions the index physically: a case's FTS5 rowid is its team group's
//! partition number in the high 32 bits and its case number in the low 32, so each team's cases
//! form one contiguous rowid range. A user sees the ranges of their groups whole, plus their own
//! cases in any other team (that range, filtered by `access : o<me>`); FTS5 seeks straight to a
//! range, so a search walks and scores only the postings of cases the user may see (about an
//! eighth of the index for the bench's user), never the whole tenant's.
//!
//! Ranking is FTS5's bm25 with weights title 4, description 1, customer 2, computed by
//! [`crate::rank`]'s `case_rank`, which returns exactly `bm25()`'s scores at about a third of
//! its cost.
//!
//! Pagination is keyset-based: ranked results by `(bm25, case number)`, listings by
//! `(created, id)` newest first. The data never changes after the build, so a cursor resumes
//! exactly after the last row returned: every visible match is returned once.
//!
//! Without a configured path the database lives in a temporary file that is removed on drop:
//! a file (rather than `:memory:`) lets every pooled connection read in parallel.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use rusqlite::{Connection, OpenFlags, OptionalExtension, params, params_from_iter};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::generator::{self, DataConfig};
use crate::rank::{self, RowLengths};

/// Bump when the schema or the way data is derived changes: stored databases are rebuilt.
const SCHEMA_VERSION: u32 = 2;

/// The columns user words are searched in.
const TEXT_COLUMNS: &str = "{title description customer}";

/// Document frequencies kept at most (about 100 bytes each); past that, rare words are
/// counted per query, which is cheap exactly because they are rare.
const MAX_CACHED_FREQUENCIES: usize = 50_000;

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
    #[error("{0} cases do not fit: case numbers are limited to 32 bits")]
    TooManyCases(u64),
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

/// Which rowid range each team's cases occupy, and in which teams each owner has cases.
#[derive(Debug, Default)]
struct Partitions {
    teams: HashMap<String, u32>,
    owners: HashMap<String, Vec<u32>>,
}

/// One rowid range a viewer searches; `owner_only` keeps just the viewer's own cases.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Range {
    partition: u32,
    owner_only: bool,
}

impl Range {
    fn bounds(self) -> (i64, i64) {
        let low = i64::from(self.partition) << 32;
        (low, low | 0xFFFF_FFFF)
    }
}

impl Partitions {
    fn load(conn: &Connection) -> rusqlite::Result<Self> {
        let mut partitions = Self::default();
        let mut stmt = conn.prepare("SELECT team_group_id, partition FROM partitions")?;
        for row in stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, u32>(1)?)))? {
            let (team, partition) = row?;
            partitions.teams.insert(team, partition);
        }
        let mut stmt = conn.prepare("SELECT owner_object_id, partition FROM owner_partitions")?;
        for row in stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, u32>(1)?)))? {
            let (owner, partition) = row?;
            partitions.owners.entry(owner).or_default().push(partition);
        }
        Ok(partitions)
    }

    /// The ranges a scoped viewer searches, or `None` for a viewer who sees everything.
    fn visible(&self, viewer: &Viewer) -> Option<Vec<Range>> {
        let Viewer::Scoped {
            object_id,
            group_ids,
        } = viewer
        else {
            return None;
        };
        let whole: BTreeSet<u32> = group_ids
            .iter()
            .filter_map(|g| self.teams.get(&g.to_ascii_lowercase()).copied())
            .collect();
        let own = self
            .owners
            .get(&object_id.to_ascii_lowercase())
            .into_iter()
            .flatten()
            .filter(|p| !whole.contains(p))
            .map(|&partition| Range {
                partition,
                owner_only: true,
            });
        let mut ranges: Vec<Range> = whole
            .iter()
            .map(|&partition| Range {
                partition,
                owner_only: false,
            })
            .chain(own)
            .collect();
        ranges.sort();
        Some(ranges)
    }
}

pub struct CaseStore {
    readers: Vec<Mutex<Connection>>,
    next_reader: AtomicUsize,
    partitions: Partitions,
    /// Rows per phrase of the text columns: bm25's IDF input, fixed once the data is built.
    frequencies: Mutex<HashMap<String, i64>>,
    lengths: Arc<RowLengths>,
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
    /// As [`CaseStore::open`] at `path`, with `cache` a folder of databases built before
    /// (`<fingerprint>.sqlite`): when `path` does not hold `data` yet but the cache does, the
    /// cached file is copied in instead of building (10,000 cases: a copy of a few megabytes
    /// instead of a fraction of a second of generation and indexing); after a build the result
    /// is left in the cache for the next run. Cache trouble only costs the build.
    pub fn open_cached(
        path: Option<&Path>,
        data: &DataConfig,
        cache: Option<&Path>,
    ) -> Result<Self, StoreError> {
        let (Some(path), Some(cache)) = (path, cache) else {
            return Self::open(path, data);
        };
        let generation = fingerprint(data);
        let cached = cache.join(format!("{generation}.sqlite"));
        if stored_generation(path).as_deref() != Some(generation.as_str())
            && stored_generation(&cached).as_deref() == Some(generation.as_str())
            && let Err(e) = ppvnet_common::private_fs::copy_atomic(&cached, path)
        {
            tracing::warn!(
                "cannot reuse the cached case database {}: {e}",
                cached.display()
            );
        }
        let store = Self::open(Some(path), data)?;
        if store.report.rebuilt {
            let kept = ppvnet_common::private_fs::create_dir_all(cache)
                .and_then(|()| ppvnet_common::private_fs::copy_atomic(path, &cached));
            if let Err(e) = kept {
                tracing::warn!("cannot keep the case database in {}: {e}", cache.display());
            }
        }
        Ok(store)
    }

    /// Opens the database at `path` if it holds exactly `data`, otherwise (re)builds it there;
    /// without a path, builds into a temporary file. Blocking: call from `spawn_blocking` in
    /// async code (10,000 cases take well under a second, 1,000,000 about 20 s).
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
        Self::load(file, temp, generation, rebuilt, started)
    }

    /// Opens the complete database another [`CaseStore`] built at `path` (one a running API
    /// serves, for the bench's reference), whatever data it holds, and never builds or writes:
    /// an error when `path` holds no complete case database.
    pub fn open_existing(path: &Path) -> Result<Self, StoreError> {
        let started = std::time::Instant::now();
        let generation = stored_generation(path).ok_or_else(|| StoreError::File {
            path: path.to_path_buf(),
            source: std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "no complete case database there",
            ),
        })?;
        Self::load(path.to_path_buf(), None, generation, false, started)
    }

    /// The readers, ranking data and report of the complete database `file` of `generation`.
    fn load(
        file: PathBuf,
        temp: Option<tempfile::TempDir>,
        generation: String,
        rebuilt: bool,
        started: std::time::Instant,
    ) -> Result<Self, StoreError> {
        let first = open_reader(&file)?;
        let partitions = Partitions::load(&first)?;
        let lengths = Arc::new(RowLengths::load(&first)?);
        let mut readers = vec![first];
        for _ in 1..reader_count() {
            readers.push(open_reader(&file)?);
        }
        for reader in &readers {
            rank::register(reader, lengths.clone())?;
        }
        let cases: i64 = readers[0].query_row("SELECT count(*) FROM cases", [], |r| r.get(0))?;
        Ok(Self {
            readers: readers.into_iter().map(Mutex::new).collect(),
            next_reader: AtomicUsize::new(0),
            partitions,
            frequencies: Mutex::new(HashMap::new()),
            lengths,
            file,
            generation,
            report: BuildReport {
                cases: cases.unsigned_abs(),
                rebuilt,
                seconds: started.elapsed().as_secs_f64(),
            },
            _temp: temp,
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

    /// Memory held besides SQLite's own caches: row lengths for ranking.
    pub fn memory_bytes(&self) -> usize {
        self.lengths.bytes()
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
        let ranges = self.partitions.visible(viewer);
        if ranges.as_ref().is_some_and(Vec::is_empty) {
            return Ok(Page {
                cases: Vec::new(),
                next: None,
            });
        }
        // The user's words come first in the expression: `case_rank` scores the leading
        // phrases it has document frequencies for; the filters after them weigh nothing.
        let mut expr = format!("{TEXT_COLUMNS} : ({})", terms.join(" "));
        if let Some(status) = &query.status {
            expr.push_str(&format!(" AND access : \"{}\"", access_token('s', status)));
        }
        let own_expr = match viewer {
            Viewer::Scoped { object_id, .. } => {
                format!("{expr} AND access : \"{}\"", access_token('o', object_id))
            }
            Viewer::All => expr.clone(),
        };
        let (score, after) = match query.after {
            Some(Cursor::Ranked { score, number }) => {
                (Some(score), Some(i64::try_from(number).unwrap_or(i64::MAX)))
            }
            _ => (None, None),
        };
        let limit = i64::from(query.top) + 1;
        // ?1 document frequencies, ?2 expression, ?3 expression for own cases only, ?4/?5
        // cursor, ?6 limit, then the bounds of each range. Each range picks its page on the FTS
        // table alone (case number and score) and only the merged page is joined to `cases`.
        // The cursor condition is only added when there is a cursor, because it evaluates the
        // rank a second time per match.
        let resume = if score.is_some() {
            "AND (score > ?4 OR (score = ?4 AND num > ?5))"
        } else {
            "AND ?4 IS NULL AND ?5 IS NULL"
        };
        let select = |expr: usize, bounds: &str| {
            format!(
                "SELECT * FROM (SELECT rowid & 4294967295 AS num, {}(cases_fts, ?1) AS score \
                 FROM cases_fts WHERE cases_fts MATCH ?{expr} {bounds} {resume} \
                 ORDER BY score, num LIMIT ?6)",
                rank::FUNCTION
            )
        };
        let mut bounds: Vec<i64> = Vec::new();
        let branches: Vec<String> = match &ranges {
            None => vec![select(2, "")],
            Some(ranges) => ranges
                .iter()
                .map(|range| {
                    let (low, high) = range.bounds();
                    bounds.extend([low, high]);
                    let p = 5 + bounds.len();
                    let expr = if range.owner_only { 3 } else { 2 };
                    select(expr, &format!("AND rowid BETWEEN ?{p} AND ?{}", p + 1))
                })
                .collect(),
        };
        let sql = format!(
            "SELECT {CASE_COLUMNS}, f.score FROM ({}) f \
             JOIN cases ON cases.id = f.num \
             ORDER BY f.score, f.num LIMIT ?6",
            branches.join(" UNION ALL ")
        );
        let rows = self.with_reader(|c| {
            let hits = self.document_frequencies(c, terms)?;
            let mut stmt = c.prepare_cached(&sql)?;
            let mut values: Vec<rusqlite::types::Value> = vec![
                rank::hits_blob(&hits).into(),
                expr.into(),
                own_expr.into(),
                score.into(),
                after.into(),
                limit.into(),
            ];
            values.extend(bounds.iter().map(|&b| rusqlite::types::Value::from(b)));
            let rows = stmt.query_map(params_from_iter(values), |row| {
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

    /// How many cases contain each phrase in their text columns: what FTS5's bm25 counts with
    /// `xQueryPhrase` on every query, counted here once per phrase and kept, since the data
    /// never changes after the build.
    fn document_frequencies(
        &self,
        conn: &Connection,
        phrases: &[String],
    ) -> rusqlite::Result<Vec<i64>> {
        let cached = |phrase: &String| {
            self.frequencies
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get(phrase)
                .copied()
        };
        phrases
            .iter()
            .map(|phrase| {
                if let Some(hits) = cached(phrase) {
                    return Ok(hits);
                }
                let hits: i64 = conn
                    .prepare_cached("SELECT count(*) FROM cases_fts WHERE cases_fts MATCH ?1")?
                    .query_row([format!("{TEXT_COLUMNS} : {phrase}")], |r| r.get(0))?;
                let mut frequencies = self.frequencies.lock().unwrap_or_else(|p| p.into_inner());
                if frequencies.len() < MAX_CACHED_FREQUENCIES {
                    frequencies.insert(phrase.clone(), hits);
                }
                Ok(hits)
            })
            .collect()
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
    if data.count > u64::from(u32::MAX) {
        return Err(StoreError::TooManyCases(data.count));
    }
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
    create_schema(&conn)?;
    let tx = conn.transaction()?;
    let teams = insert_cases(&tx, data)?;
    tx.execute_batch(
        "CREATE INDEX cases_owner_created ON cases (owner_object_id, created DESC, id DESC);
         CREATE INDEX cases_team_created ON cases (team_group_id, created DESC, id DESC);
         CREATE INDEX cases_created ON cases (created DESC, id DESC);",
    )?;
    index_cases(&tx, &teams)?;
    tx.execute_batch(
        "INSERT INTO cases_fts (cases_fts) VALUES ('optimize');
         ANALYZE;",
    )?;
    tx.execute(
        "INSERT INTO meta (key, value) VALUES ('generation', ?1)",
        [generation],
    )?;
    tx.commit()?;
    Ok(())
}

/// The empty database: tables, the full-text index, and the build's pragmas.
fn create_schema(conn: &Connection) -> Result<(), StoreError> {
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
         );
         CREATE TABLE partitions (
             partition INTEGER PRIMARY KEY,
             team_group_id TEXT NOT NULL UNIQUE
         );
         CREATE TABLE owner_partitions (
             owner_object_id TEXT NOT NULL,
             partition INTEGER NOT NULL,
             PRIMARY KEY (owner_object_id, partition)
         ) WITHOUT ROWID;",
    )?;
    Ok(())
}

/// Inserts the generated cases, their team partitions and owners' partitions; returns the
/// teams in partition order.
fn insert_cases(
    tx: &rusqlite::Transaction<'_>,
    data: &DataConfig,
) -> Result<Vec<String>, StoreError> {
    // Partitions are numbered in order of first appearance, which the seeded generator fixes.
    let mut teams: Vec<String> = Vec::new();
    let mut case = tx.prepare(&format!(
        "INSERT INTO cases ({CASE_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"
    ))?;
    let mut partitions: HashMap<String, u32> = HashMap::new();
    let mut owners: BTreeSet<(String, u32)> = BTreeSet::new();
    for c in generator::cases(data) {
        let id = i64::try_from(c.number).unwrap_or(i64::MAX);
        let owner = c.owner_object_id.to_ascii_lowercase();
        let team = c.team_group_id.to_ascii_lowercase();
        let partition = match partitions.get(&team) {
            Some(&p) => p,
            None => {
                let p = u32::try_from(teams.len()).unwrap_or(u32::MAX);
                partitions.insert(team.clone(), p);
                teams.push(team.clone());
                p
            }
        };
        owners.insert((owner.clone(), partition));
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
    }
    let mut insert =
        tx.prepare("INSERT INTO partitions (partition, team_group_id) VALUES (?1, ?2)")?;
    for (partition, team) in teams.iter().enumerate() {
        insert.execute(params![i64::try_from(partition).unwrap_or(i64::MAX), team])?;
    }
    let mut insert =
        tx.prepare("INSERT INTO owner_partitions (owner_object_id, partition) VALUES (?1, ?2)")?;
    for (owner, partition) in &owners {
        insert.execute(params![owner, partition])?;
    }
    Ok(teams)
}

/// Feeds the full-text index, each case with its access tokens (owner, team, status).
fn index_cases(tx: &rusqlite::Transaction<'_>, teams: &[String]) -> Result<(), StoreError> {
    // FTS5 flushes its pending terms to a new segment whenever a rowid is lower than the one
    // before, so the index is fed one partition at a time, in rowid order.
    let mut fts = tx.prepare(
        "INSERT INTO cases_fts (rowid, title, description, customer, access) \
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )?;
    let mut team_cases = tx.prepare(
        "SELECT id, title, description, customer, owner_object_id, status \
         FROM cases WHERE team_group_id = ?1 ORDER BY id",
    )?;
    for (partition, team) in teams.iter().enumerate() {
        let high = i64::try_from(partition).unwrap_or(i64::MAX) << 32;
        let mut rows = team_cases.query([team])?;
        while let Some(row) = rows.next()? {
            let id: i64 = row.get(0)?;
            let owner: String = row.get(4)?;
            let status: String = row.get(5)?;
            let access = format!(
                "{} {} {}",
                access_token('o', &owner),
                access_token('t', team),
                access_token('s', &status)
            );
            fts.execute(params![
                high | id,
                row.get::<_, String>(1)?,
                row.get::<_, String>(2)?,
                row.get::<_, String>(3)?,
                access
            ])?;
        }
    }
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

    /// `case_rank` must give exactly what SQLite's own bm25 gives, or rankings and cursors would
    /// change: single words, several words, a prefix, a word every case contains (IDF floor),
    /// and the status and owner filters that follow the user's words.
    #[test]
    fn case_rank_scores_exactly_what_fts5_bm25_scores() {
        let store = CaseStore::open(None, &data(3_000)).unwrap();
        let bm25 = format!(
            "bm25(cases_fts, {})",
            rank::WEIGHTS.map(|w| format!("{w:.1}")).join(", ")
        );
        let owner = format!("\"{}\"", access_token('o', "aaaa-1"));
        for (words, filter) in [
            ("printer", String::new()),
            ("printer offline", String::new()),
            ("print* router", String::new()),
            ("reports", String::new()),
            ("router", " AND access : \"sactive\"".to_owned()),
            ("printer fabrikam", format!(" AND access : {owner}")),
        ] {
            let terms = query_terms(words);
            let expr = format!("{TEXT_COLUMNS} : ({}){filter}", terms.join(" "));
            let scores: Vec<(i64, f64, f64)> = store
                .with_reader(|c| {
                    let hits = store.document_frequencies(c, &terms)?;
                    let mut stmt = c.prepare(&format!(
                        "SELECT rowid, {bm25}, {}(cases_fts, ?2) FROM cases_fts \
                         WHERE cases_fts MATCH ?1",
                        rank::FUNCTION
                    ))?;
                    stmt.query_map(params![expr, rank::hits_blob(&hits)], |r| {
                        Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                    })?
                    .collect()
                })
                .unwrap();
            assert!(!scores.is_empty(), "{words}: no matches");
            for (rowid, fts5, ours) in &scores {
                assert_eq!(
                    fts5.to_bits(),
                    ours.to_bits(),
                    "{words}{filter}: row {rowid}"
                );
            }
            let distinct: BTreeSet<u64> = scores.iter().map(|s| s.1.to_bits()).collect();
            assert!(
                distinct.len() > 1,
                "{words}: every score equal proves little"
            );
        }
    }

    /// The bench's reference reads the database a running API built: same generation, same
    /// answers, and nothing written; a path without a complete database is refused, not built.
    #[test]
    fn an_existing_database_opens_as_built_and_a_missing_one_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("cases.sqlite");
        let built = CaseStore::open(Some(&file), &data(500)).unwrap();
        let written = std::fs::metadata(&file).unwrap().modified().unwrap();
        let opened = CaseStore::open_existing(&file).unwrap();
        assert_eq!(opened.generation(), built.generation());
        assert!(!opened.report().rebuilt);
        assert_eq!(opened.report().cases, 500);
        let query = SearchQuery {
            text: Some("printer".into()),
            status: None,
            top: 10,
            after: None,
        };
        let page = opened.search(&query, &Viewer::All).unwrap();
        assert!(!page.cases.is_empty());
        assert_eq!(page, built.search(&query, &Viewer::All).unwrap());
        assert_eq!(
            std::fs::metadata(&file).unwrap().modified().unwrap(),
            written
        );
        let missing = dir.path().join("none.sqlite");
        assert!(matches!(
            CaseStore::open_existing(&missing),
            Err(StoreError::File { .. })
        ));
        assert!(!missing.exists(), "nothing is built at a missing path");
    }

    fn all_pages(store: &CaseStore, text: Option<&str>, viewer: &Viewer) -> Vec<Case> {
        let mut found = Vec::new();
        let mut after = None;
        loop {
            let query = SearchQuery {
                text: text.map(str::to_owned),
                status: None,
                top: 7,
                after,
            };
            let page = store.search(&query, viewer).unwrap();
            found.extend(page.cases);
            match page.next {
                Some(next) => after = Some(next),
                None => return found,
            }
        }
    }

    #[test]
    fn an_owner_sees_own_cases_in_teams_outside_their_groups_and_nothing_else_there() {
        let owner = |object_id: &str, team: &str| CaseOwner {
            object_id: object_id.into(),
            team_group_id: team.into(),
        };
        let data = DataConfig {
            seed: 9,
            count: 2_000,
            owners: vec![
                owner("alice", "north"),
                owner("alice", "south"),
                owner("bob", "south"),
                owner("carol", "north"),
            ],
        };
        let store = CaseStore::open(None, &data).unwrap();
        let alice = Viewer::Scoped {
            object_id: "alice".into(),
            group_ids: vec!["north".into()],
        };
        for (text, word) in [(Some("printer"), Some("printer")), (None, None)] {
            let expected: BTreeSet<String> = generator::cases(&data)
                .filter(|c| c.team_group_id == "north" || c.owner_object_id == "alice")
                .filter(|c| {
                    word.is_none_or(|w| {
                        format!("{} {} {}", c.title, c.description, c.customer)
                            .to_lowercase()
                            .split(|ch: char| !ch.is_alphanumeric())
                            .any(|t| t == w)
                    })
                })
                .map(|c| case_id(c.number))
                .collect();
            let found = all_pages(&store, text, &alice);
            let ids: BTreeSet<String> = found.iter().map(|c| c.id.clone()).collect();
            assert_eq!(ids.len(), found.len(), "{text:?}: a case came twice");
            assert_eq!(ids, expected, "{text:?}");
            assert!(
                found
                    .iter()
                    .any(|c| c.team_group_id == "south" && c.owner_object_id == "alice"),
                "{text:?}: alice's own cases in south are missing"
            );
            assert!(found.iter().all(|c| c.owner_object_id != "bob"));
        }
        let nobody = Viewer::Scoped {
            object_id: "dave".into(),
            group_ids: vec!["west".into()],
        };
        assert!(all_pages(&store, Some("printer"), &nobody).is_empty());
        assert!(all_pages(&store, None, &nobody).is_empty());
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

    /// A database built once is left in the cache and copied by the next run (another path)
    /// instead of built; other data is built, and a damaged cache file only costs a build.
    #[test]
    fn a_cached_database_is_copied_instead_of_built() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let cache = dir.path().join("cache");
        let open = |run: &str, count| {
            let file = dir.path().join(run).join("cases.sqlite");
            std::fs::create_dir_all(file.parent().unwrap()).unwrap();
            CaseStore::open_cached(Some(&file), &data(count), Some(&cache)).unwrap()
        };
        assert!(open("run-1", 300).report().rebuilt, "an empty cache: built");
        let cached = cache.join(format!("{}.sqlite", fingerprint(&data(300))));
        let mode = std::fs::metadata(&cached).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let copied = open("run-2", 300);
        assert!(!copied.report().rebuilt, "copied from the cache");
        assert_eq!(copied.report().cases, 300);
        assert!(open("run-3", 200).report().rebuilt, "other data: built");
        std::fs::write(&cached, b"damaged").unwrap();
        let rebuilt = open("run-4", 300);
        assert!(rebuilt.report().rebuilt);
        assert_eq!(rebuilt.report().cases, 300);
        assert_eq!(
            stored_generation(&cached).as_deref(),
            Some(fingerprint(&data(300)).as_str()),
            "the damaged file was replaced"
        );
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
