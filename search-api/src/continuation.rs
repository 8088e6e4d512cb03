//! Opaque continuation tokens.
//!
//! A token carries the cursor of the last row returned plus a fingerprint of what it belongs to:
//! the data set generation, the normalized query (words and status) and the caller. A token
//! replayed with another query, by another caller or against rebuilt data is refused with 400
//! rather than silently resuming somewhere meaningless. Visibility is re-applied on every page, so
//! a tampered token can only move the cursor, never widen what the caller sees.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::store::{Cursor, Viewer, query_terms};

#[derive(Serialize, Deserialize)]
struct Wire {
    /// Fingerprint of generation, query and caller.
    f: String,
    /// `r` ranked (score bits), `n` newest (created).
    k: char,
    a: i64,
    i: u64,
}

/// What a token is bound to.
pub fn fingerprint(
    generation: &str,
    text: Option<&str>,
    status: Option<&str>,
    viewer: &Viewer,
) -> String {
    let mut hash = Sha256::new();
    hash.update(generation.as_bytes());
    hash.update([0]);
    for term in text.map(query_terms).unwrap_or_default() {
        hash.update(term.as_bytes());
        hash.update([1]);
    }
    hash.update([0]);
    hash.update(status.unwrap_or("").as_bytes());
    hash.update([0]);
    match viewer {
        Viewer::All => hash.update(b"*"),
        Viewer::Scoped {
            object_id,
            group_ids,
        } => {
            hash.update(object_id.as_bytes());
            for g in group_ids {
                hash.update([1]);
                hash.update(g.as_bytes());
            }
        }
    }
    hash.finalize()
        .iter()
        .take(12)
        .map(|b| format!("{b:02x}"))
        .collect()
}

pub fn encode(cursor: Cursor, fingerprint: &str) -> String {
    let wire = match cursor {
        Cursor::Ranked { score, number } => Wire {
            f: fingerprint.to_owned(),
            k: 'r',
            a: i64::from_ne_bytes(score.to_bits().to_ne_bytes()),
            i: number,
        },
        Cursor::Newest { created, number } => Wire {
            f: fingerprint.to_owned(),
            k: 'n',
            a: created,
            i: number,
        },
    };
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(&wire).unwrap_or_default())
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum ContinuationError {
    #[error("The continuationToken is not valid.")]
    Malformed,
    #[error("The continuationToken does not belong to this query.")]
    OtherQuery,
}

pub fn decode(token: &str, fingerprint: &str) -> Result<Cursor, ContinuationError> {
    let wire: Wire = URL_SAFE_NO_PAD
        .decode(token.trim())
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .ok_or(ContinuationError::Malformed)?;
    if wire.f != fingerprint {
        return Err(ContinuationError::OtherQuery);
    }
    match wire.k {
        'r' => {
            let score = f64::from_bits(u64::from_ne_bytes(wire.a.to_ne_bytes()));
            if score.is_nan() {
                return Err(ContinuationError::Malformed);
            }
            Ok(Cursor::Ranked {
                score,
                number: wire.i,
            })
        }
        'n' => Ok(Cursor::Newest {
            created: wire.a,
            number: wire.i,
        }),
        _ => Err(ContinuationError::Malformed),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_exactly() {
        let f = fingerprint("g", Some("Printer offline"), None, &Viewer::All);
        for cursor in [
            Cursor::Ranked {
                score: -7.123_456_789_012_345,
                number: 17,
            },
            Cursor::Newest {
                created: 1_700_000_000,
                number: 9,
            },
        ] {
            assert_eq!(decode(&encode(cursor, &f), &f), Ok(cursor));
        }
    }

    #[test]
    fn a_token_is_bound_to_query_caller_and_data() {
        let alice = Viewer::Scoped {
            object_id: "alice".into(),
            group_ids: vec!["north".into()],
        };
        let f = fingerprint("g1", Some("printer"), Some("active"), &alice);
        // Word normalization does not matter; everything else does.
        assert_eq!(
            f,
            fingerprint("g1", Some("PRINTER!"), Some("active"), &alice)
        );
        for other in [
            fingerprint("g2", Some("printer"), Some("active"), &alice),
            fingerprint("g1", Some("printers"), Some("active"), &alice),
            fingerprint("g1", Some("printer"), None, &alice),
            fingerprint("g1", Some("printer"), Some("active"), &Viewer::All),
        ] {
            assert_ne!(f, other);
            let token = encode(
                Cursor::Newest {
                    created: 1,
                    number: 1,
                },
                &other,
            );
            assert_eq!(decode(&token, &f), Err(ContinuationError::OtherQuery));
        }
    }

    #[test]
    fn garbage_is_refused() {
        for bad in [
            "",
            "???",
            "bm90IGpzb24",
            &URL_SAFE_NO_PAD.encode(b"{\"f\":\"x\",\"k\":\"z\",\"a\":1,\"i\":1}"),
        ] {
            assert!(decode(bad, "x").is_err(), "{bad}");
        }
    }
}
