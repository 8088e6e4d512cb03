//! What the fuzz targets share: the textual HTTP request format of the router targets' inputs
//! and driving an axum router in-process.
//!
//! Router targets read their input as a request written out like HTTP/1.1 on the wire, so the
//! seed corpus is plain text a reviewer can read and extend:
//!
//! ```text
//! PUT /secrets/db-password?api-version=2025-07-01
//! Host: kv-fuzz-rbac.vault.azure.net
//! Authorization: Bearer officer
//!
//! {"value": "s3cret"}
//! ```
//!
//! The request line is `METHOD TARGET` (`HTTP/1.1` after it is allowed). Lines end with `\n`
//! (a `\r` before it is dropped); the body is everything after the first empty line, byte for
//! byte. Inputs that do not form an HTTP request the `http` crate accepts
//! (bad method, URI or header) are skipped: hyper refuses those before any router sees them.

use std::sync::OnceLock;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderValue, Request, StatusCode};
use tower::ServiceExt;

/// The largest response body read back; every answer of the mocks is far smaller, and a bigger
/// one is itself a finding (`to_bytes` fails and the target panics).
const MAX_RESPONSE_BYTES: usize = 16 * 1024 * 1024;

/// A request parsed from a fuzz input.
pub fn parse_request(input: &[u8]) -> Option<Request<Body>> {
    let (head, body) = split_head(input);
    let head = std::str::from_utf8(head).ok()?;
    let mut lines = head.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l));
    let (method, target) = lines.next()?.split_once(' ')?;
    // `HTTP/1.1` after the target is allowed, as on the wire.
    let target = match target.rsplit_once(' ') {
        Some((t, version)) if version.starts_with("HTTP/") => t,
        _ => target,
    };
    let mut builder = Request::builder().method(method).uri(target);
    for line in lines {
        let (name, value) = line.split_once(':')?;
        builder = builder.header(name.trim(), HeaderValue::from_str(value.trim()).ok()?);
    }
    builder.body(Body::from(body.to_vec())).ok()
}

/// Head and body: split at the first empty line (`\n\n` or `\r\n\r\n`).
fn split_head(input: &[u8]) -> (&[u8], &[u8]) {
    for (i, window) in input.windows(2).enumerate() {
        if window == b"\n\n" {
            return (&input[..i], &input[i + 2..]);
        }
        if window == b"\n\r" && input.get(i + 2) == Some(&b'\n') {
            return (&input[..i], &input[i + 3..]);
        }
    }
    (input, &[])
}

/// One runtime for every execution: building a runtime per input would dominate the time of a
/// request that the router answers in microseconds.
pub fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("a current-thread runtime")
    })
}

/// The answer of `router` to `request`, with its body read.
pub fn call(
    router: Router,
    request: Request<Body>,
) -> (StatusCode, axum::http::HeaderMap, Vec<u8>) {
    runtime().block_on(async move {
        let response = router.oneshot(request).await.unwrap_or_else(|e| match e {});
        let (parts, body) = response.into_parts();
        let bytes = axum::body::to_bytes(body, MAX_RESPONSE_BYTES)
            .await
            .expect("a response body under the limit");
        (parts.status, parts.headers, bytes.to_vec())
    })
}

/// The checks every router target makes: no server error, and a JSON body whenever one is sent
/// (the mocks speak JSON only: a non-JSON body is a broken envelope a client cannot parse).
pub fn assert_well_formed(status: StatusCode, body: &[u8], what: &str) {
    assert!(
        !status.is_server_error(),
        "{what}: server error {status}: {}",
        String::from_utf8_lossy(body)
    );
    if !body.is_empty() {
        assert!(
            serde_json::from_slice::<serde_json::Value>(body).is_ok(),
            "{what}: {status} with a body that is not JSON: {}",
            String::from_utf8_lossy(body)
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_head_headers_and_body() {
        let r = parse_request(b"PUT /a?b=c HTTP/1.1\r\nHost: h\r\nX-A:  1 \r\n\r\n{\"v\":1}\n")
            .unwrap_or_else(|| panic!("the request parses"));
        assert_eq!(r.method(), "PUT");
        assert_eq!(r.uri(), "/a?b=c");
        assert_eq!(r.headers()["host"], "h");
        assert_eq!(r.headers()["x-a"], "1");
    }

    #[test]
    fn skips_what_hyper_would_refuse() {
        assert!(parse_request(b"G\x01T / \n\n").is_none());
        assert!(parse_request(b"GET /\nno colon\n\n").is_none());
    }
}
