//! `case_rank`: FTS5's own bm25, bit for bit, without its two per-query costs.
//!
//! SQLite's built-in `bm25()` spends most of a search on work that does not depend on the query
//! at hand: for every phrase it counts the matching rows of the whole table (`xQueryPhrase`, a
//! full walk of the phrase's posting list: 1,000,000 callbacks for a word every case contains),
//! and for every matching row it looks the row's length up in the `%_docsize` B-tree. Profiled
//! at 1,000,000 cases on a word every case contains, those two took 60% of the search's CPU
//! time (the B-tree lookups 38%, the counting 24%). The data never changes after the
//! build, so both are known in advance: the store passes each phrase's document frequency in
//! (counted once and cached) and `case_rank` reads row lengths from an array loaded at open.
//! The arithmetic is FTS5's `fts5Bm25Function` (SQLite 3.50) operation for operation, with the
//! same k1 = 1.2, b = 0.75, IDF floor of 1e-6 and column weights, so scores, and therefore
//! rankings and continuation cursors, are exactly those of `bm25(cases_fts, 4, 1, 2, 0)`; a test
//! holds the two equal.
//!
//! Call: `case_rank(cases_fts, ?hits)`, where `?hits` is a blob of little-endian `i64`, the
//! document frequency of each of the first phrases of the MATCH expression (the user's words).
//! Phrases past those (visibility and status filters, all in the `access` column of weight 0)
//! add exactly 0 to FTS5's bm25 and are skipped.

use std::os::raw::{c_int, c_void};
use std::sync::Arc;

use rusqlite::{Connection, ffi};

/// bm25 column weights: title, description, customer, access.
pub const WEIGHTS: [f64; 4] = [4.0, 1.0, 2.0, 0.0];
pub const FUNCTION: &str = "case_rank";

const K1: f64 = 1.2;
const B: f64 = 0.75;

/// Token count of each row (all columns, as FTS5's `xColumnSize(-1)`), by case number.
#[derive(Debug)]
pub struct RowLengths(Vec<u32>);

impl RowLengths {
    /// From `cases_fts_docsize`: per row, one SQLite varint per column.
    pub fn load(conn: &Connection) -> rusqlite::Result<Self> {
        let mut lengths = Vec::new();
        let mut stmt = conn.prepare("SELECT id, sz FROM cases_fts_docsize")?;
        let mut rows = stmt.query([])?;
        while let Some(row) = rows.next()? {
            let Ok(number) = usize::try_from(case_of_rowid(row.get(0)?)) else {
                continue;
            };
            if number >= lengths.len() {
                lengths.resize(number + 1, 0);
            }
            lengths[number] = varint_sum(row.get_ref(1)?.as_blob()?);
        }
        Ok(Self(lengths))
    }

    fn get(&self, number: u64) -> Option<f64> {
        let i = usize::try_from(number).ok()?;
        self.0.get(i).map(|&n| f64::from(n))
    }

    pub fn bytes(&self) -> usize {
        self.0.len() * std::mem::size_of::<u32>()
    }
}

/// Sum of the big-endian base-128 varints FTS5 writes per column into `%_docsize`.
fn varint_sum(bytes: &[u8]) -> u32 {
    let mut sum = 0u32;
    let mut value = 0u32;
    for &b in bytes {
        value = (value << 7) | u32::from(b & 0x7f);
        if b & 0x80 == 0 {
            sum = sum.saturating_add(value);
            value = 0;
        }
    }
    sum
}

/// The FTS5 rowid of a case: its partition in the high 32 bits, its number in the low ones.
pub fn case_of_rowid(rowid: i64) -> u64 {
    rowid.unsigned_abs() & 0xFFFF_FFFF
}

/// Encodes document frequencies for the `?hits` argument.
pub fn hits_blob(hits: &[i64]) -> Vec<u8> {
    hits.iter().flat_map(|h| h.to_le_bytes()).collect()
}

/// Registers `case_rank` on `conn`, reading row lengths from `lengths`.
pub fn register(conn: &Connection, lengths: Arc<RowLengths>) -> rusqlite::Result<()> {
    let api = fts5_api(conn)?;
    let name = std::ffi::CString::new(FUNCTION).unwrap_or_default();
    let user_data = Arc::into_raw(lengths) as *mut c_void;
    // SAFETY: `api` is the live fts5_api of this connection. FTS5 copies the name; once
    // registered it keeps `user_data` until the connection closes and then calls
    // `drop_lengths` once. A failed registration keeps nothing (`fts5CreateAux` does not call
    // the destructor), so the reference taken above is released here instead.
    let rc = unsafe {
        let rc = match (*api).xCreateFunction {
            Some(create) => create(
                api,
                name.as_ptr(),
                user_data,
                Some(case_rank),
                Some(drop_lengths),
            ),
            None => ffi::SQLITE_MISUSE,
        };
        if rc != ffi::SQLITE_OK {
            drop_lengths(user_data);
        }
        rc
    };
    if rc == ffi::SQLITE_OK {
        Ok(())
    } else {
        Err(rusqlite::Error::SqliteFailure(
            ffi::Error::new(rc),
            Some("cannot register the case_rank function".into()),
        ))
    }
}

/// The connection's `fts5_api`, obtained the documented way: `SELECT fts5(?1)` with a pointer
/// bound as `fts5_api_ptr`.
fn fts5_api(conn: &Connection) -> rusqlite::Result<*mut ffi::fts5_api> {
    let mut api: *mut ffi::fts5_api = std::ptr::null_mut();
    // SAFETY: the statement lives only inside this block, on this connection's handle, which
    // the caller has exclusive access to; the bound pointer outlives the statement.
    let rc = unsafe {
        let db = conn.handle();
        let mut stmt: *mut ffi::sqlite3_stmt = std::ptr::null_mut();
        let mut rc = ffi::sqlite3_prepare_v2(
            db,
            c"SELECT fts5(?1)".as_ptr(),
            -1,
            &mut stmt,
            std::ptr::null_mut(),
        );
        if rc == ffi::SQLITE_OK {
            rc = ffi::sqlite3_bind_pointer(
                stmt,
                1,
                (&raw mut api).cast::<c_void>(),
                c"fts5_api_ptr".as_ptr(),
                None,
            );
            if rc == ffi::SQLITE_OK {
                rc = ffi::sqlite3_step(stmt);
            }
        }
        ffi::sqlite3_finalize(stmt);
        rc
    };
    if api.is_null() || (rc != ffi::SQLITE_ROW && rc != ffi::SQLITE_DONE) {
        return Err(rusqlite::Error::SqliteFailure(
            ffi::Error::new(if rc == ffi::SQLITE_OK {
                ffi::SQLITE_ERROR
            } else {
                rc
            }),
            Some("this SQLite has no FTS5".into()),
        ));
    }
    Ok(api)
}

unsafe extern "C" fn drop_lengths(p: *mut c_void) {
    // SAFETY: `p` came from `Arc::into_raw` in `register`; FTS5 calls this once.
    unsafe { drop(Arc::from_raw(p.cast::<RowLengths>())) }
}

/// Per-query constants, kept by FTS5 as the function's auxiliary data for one cursor.
struct QueryConstants {
    idf: Vec<f64>,
    avgdl: f64,
}

unsafe extern "C" fn drop_constants(p: *mut c_void) {
    // SAFETY: `p` came from `Box::into_raw` in `constants`; FTS5 calls this once.
    unsafe { drop(Box::from_raw(p.cast::<QueryConstants>())) }
}

/// Why a call failed, reported as an SQL error (never a panic across the FFI boundary).
struct RankError(&'static str);

unsafe extern "C" fn case_rank(
    api: *const ffi::Fts5ExtensionApi,
    fts: *mut ffi::Fts5Context,
    ctx: *mut ffi::sqlite3_context,
    n_val: c_int,
    values: *mut *mut ffi::sqlite3_value,
) {
    // SAFETY: FTS5 passes a valid API table, context and `n_val` argument values for the
    // duration of this call.
    unsafe {
        match score(&*api, fts, n_val, values) {
            Ok(score) => ffi::sqlite3_result_double(ctx, score),
            Err(RankError(message)) => {
                let len = c_int::try_from(message.len()).unwrap_or(0);
                ffi::sqlite3_result_error(ctx, message.as_ptr().cast(), len);
            }
        }
    }
}

/// `fts5Bm25Function` with known document frequencies and row lengths.
unsafe fn score(
    api: &ffi::Fts5ExtensionApi,
    fts: *mut ffi::Fts5Context,
    n_val: c_int,
    values: *mut *mut ffi::sqlite3_value,
) -> Result<f64, RankError> {
    // SAFETY (whole body): the pointers are FTS5's, valid for this call; the user data is the
    // `RowLengths` registered with the function and alive as long as the connection.
    unsafe {
        let missing = RankError("case_rank: FTS5 API function missing");
        let constants = constants(api, fts, n_val, values)?;
        let lengths = &*(api.xUserData.ok_or(missing)?(fts) as *const RowLengths);
        let rowid = api.xRowid.ok_or(RankError("case_rank: no xRowid"))?(fts);
        let d = lengths
            .get(case_of_rowid(rowid))
            .ok_or(RankError("case_rank: row without a length"))?;
        let first = api
            .xPhraseFirst
            .ok_or(RankError("case_rank: no xPhraseFirst"))?;
        let next = api
            .xPhraseNext
            .ok_or(RankError("case_rank: no xPhraseNext"))?;
        let mut score = 0.0;
        for (phrase, idf) in constants.idf.iter().enumerate() {
            let mut iter = ffi::Fts5PhraseIter {
                a: std::ptr::null(),
                b: std::ptr::null(),
            };
            let (mut col, mut off) = (0, 0);
            let phrase = c_int::try_from(phrase).unwrap_or(c_int::MAX);
            if first(fts, phrase, &mut iter, &mut col, &mut off) != ffi::SQLITE_OK {
                return Err(RankError("case_rank: cannot read a phrase's positions"));
            }
            let mut freq = 0.0;
            while col >= 0 {
                freq += usize::try_from(col)
                    .ok()
                    .and_then(|c| WEIGHTS.get(c))
                    .copied()
                    .unwrap_or(1.0);
                next(fts, &mut iter, &mut col, &mut off);
            }
            score +=
                idf * ((freq * (K1 + 1.0)) / (freq + K1 * (1.0 - B + B * d / constants.avgdl)));
        }
        Ok(-score)
    }
}

/// The cursor's IDFs and average row length, computed on its first row like FTS5's
/// `fts5Bm25GetData`, from the document frequencies passed in.
unsafe fn constants<'a>(
    api: &ffi::Fts5ExtensionApi,
    fts: *mut ffi::Fts5Context,
    n_val: c_int,
    values: *mut *mut ffi::sqlite3_value,
) -> Result<&'a QueryConstants, RankError> {
    // SAFETY (whole body): as in `score`; the auxiliary data pointer is the box stored below and
    // lives until FTS5 calls `drop_constants` when the cursor closes.
    unsafe {
        let missing = RankError("case_rank: FTS5 API function missing");
        let get = api
            .xGetAuxdata
            .ok_or(RankError("case_rank: no xGetAuxdata"))?;
        let existing = get(fts, 0).cast::<QueryConstants>();
        if !existing.is_null() {
            return Ok(&*existing);
        }
        if n_val != 1 {
            return Err(RankError(
                "case_rank: expects the table and one blob of document frequencies",
            ));
        }
        let value = *values;
        let len = usize::try_from(ffi::sqlite3_value_bytes(value)).unwrap_or(0);
        let blob = ffi::sqlite3_value_blob(value).cast::<u8>();
        let hits: &[u8] = if blob.is_null() || len == 0 {
            &[]
        } else {
            std::slice::from_raw_parts(blob, len)
        };
        let phrases = usize::try_from(api.xPhraseCount.ok_or(missing)?(fts)).unwrap_or(0);
        if !hits.len().is_multiple_of(8) || hits.len() / 8 > phrases {
            return Err(RankError(
                "case_rank: document frequencies do not fit the query's phrases",
            ));
        }
        let (mut n_row, mut n_token) = (0i64, 0i64);
        if api.xRowCount.ok_or(RankError("case_rank: no xRowCount"))?(fts, &mut n_row)
            != ffi::SQLITE_OK
            || api
                .xColumnTotalSize
                .ok_or(RankError("case_rank: no xColumnTotalSize"))?(
                fts, -1, &mut n_token
            ) != ffi::SQLITE_OK
        {
            return Err(RankError("case_rank: cannot read the table's totals"));
        }
        let idf = hits
            .chunks_exact(8)
            .map(|chunk| {
                let mut bytes = [0u8; 8];
                bytes.copy_from_slice(chunk);
                let n_hit = i64::from_le_bytes(bytes);
                let idf = (((n_row - n_hit) as f64 + 0.5) / (n_hit as f64 + 0.5)).ln();
                if idf <= 0.0 { 1e-6 } else { idf }
            })
            .collect();
        let constants = Box::into_raw(Box::new(QueryConstants {
            idf,
            avgdl: n_token as f64 / n_row as f64,
        }));
        let set = api
            .xSetAuxdata
            .ok_or(RankError("case_rank: no xSetAuxdata"))?;
        // On failure FTS5 has already freed the box through `drop_constants`.
        if set(fts, constants.cast(), Some(drop_constants)) != ffi::SQLITE_OK {
            return Err(RankError("case_rank: out of memory"));
        }
        Ok(&*constants)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docsize_varints_are_summed() {
        assert_eq!(varint_sum(&[3, 12, 2, 3]), 20);
        assert_eq!(varint_sum(&[0x81, 0x00, 5]), 133);
        assert_eq!(varint_sum(&[]), 0);
    }

    #[test]
    fn a_rowid_carries_the_case_number_in_its_low_bits() {
        assert_eq!(case_of_rowid((3 << 32) | 42), 42);
        assert_eq!(case_of_rowid(42), 42);
    }
}
