//! Routes, and the two layers in front of them: App Service's network access check and the
//! request log.

use std::sync::Arc;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Json, Router};
use ppvnet_common::Face;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::SearchApi;
use crate::auth::Caller;
use crate::continuation::{self, ContinuationError};
use crate::error::ApiError;
use crate::store::{CaseStore, SearchQuery, Viewer, canonical_status, case_number, query_terms};
use crate::swagger::{self, DEFAULT_TOP, MAX_TOP};

/// Longest accepted search text, in characters.
const MAX_QUERY_CHARS: usize = 1_000;

pub fn router(state: SearchApi) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/swagger.json", get(swagger_json))
        .route("/cases/search", get(search))
        .route("/cases/{id}", get(get_case))
        .fallback(|| async { ApiError::NotFound("The requested resource does not exist.".into()) })
        .layer(middleware::from_fn_with_state(
            state.clone(),
            network_access,
        ))
        .layer(middleware::from_fn(request_log))
        .with_state(state)
}

/// App Service evaluates access before the app: with public network access disabled, anything
/// not arriving through a private endpoint gets the 403 page, health probe and swagger included.
/// A request without an ingress label (router used outside `serve`) counts as public.
async fn network_access(
    State(state): State<SearchApi>,
    ingress: Option<Extension<Face>>,
    request: Request,
    next: Next,
) -> Response {
    let private = matches!(ingress.as_deref(), Some(Face::PrivateEndpoint(_)));
    if !state.config().public_network_access_enabled && !private {
        return ApiError::PublicAccessDenied.into_response();
    }
    next.run(request).await
}

/// The caller's object id, passed from handlers to the request log.
#[derive(Clone)]
struct CallerId(String);

/// One structured line per request, with the correlation ids clients send: Azure SDKs'
/// `x-ms-client-request-id` (echoed back, as Azure services do) and W3C `traceparent`.
async fn request_log(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let client_request_id = request
        .headers()
        .get("x-ms-client-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| v.len() <= 256)
        .map(str::to_owned);
    let request_id = request_id();
    // The line's other fields are only gathered when it is written (the default filter is
    // `warn`): copying the path and rendering the ingress were most of this layer's cost.
    let logged = tracing::enabled!(target: "ppvnet_search_api::request", tracing::Level::INFO)
        .then(|| LoggedRequest::of(&request));
    let mut response = next.run(request).await;
    if let Some(logged) = logged {
        let caller = response
            .extensions()
            .get::<CallerId>()
            .map(|c| c.0.as_str())
            .unwrap_or_default();
        tracing::info!(
            target: "ppvnet_search_api::request",
            method = %logged.method,
            path = %logged.path,
            status = response.status().as_u16(),
            elapsed_ms = started.elapsed().as_secs_f64() * 1000.0,
            request_id = %request_id,
            client_request_id = client_request_id.as_deref().unwrap_or(""),
            trace_id = logged.trace_id.as_deref().unwrap_or(""),
            caller = %caller,
            ingress = %logged.ingress,
            "request"
        );
    }
    let headers = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        headers.insert("x-ms-request-id", v);
    }
    if let Some(v) = client_request_id.and_then(|id| HeaderValue::from_str(&id).ok()) {
        headers.insert("x-ms-client-request-id", v);
    }
    response
}

/// What the request log says of a request besides its ids.
struct LoggedRequest {
    method: axum::http::Method,
    path: String,
    trace_id: Option<String>,
    ingress: String,
}

impl LoggedRequest {
    fn of(request: &Request) -> Self {
        Self {
            method: request.method().clone(),
            path: request.uri().path().to_owned(),
            trace_id: request
                .headers()
                .get("traceparent")
                .and_then(|v| v.to_str().ok())
                .and_then(trace_id),
            ingress: request
                .extensions()
                .get::<Face>()
                .map(|i| match i {
                    Face::Public => "public".to_owned(),
                    Face::PrivateEndpoint(name) => format!("private_endpoint:{name}"),
                })
                .unwrap_or_default(),
        }
    }
}

/// A fresh `x-ms-request-id`: a random (version 4) UUID from the thread's generator, which
/// costs no system call per request as `Uuid::new_v4` does without uuid's `fast-rng`.
fn request_id() -> String {
    uuid::Builder::from_random_bytes(rand::random())
        .into_uuid()
        .hyphenated()
        .to_string()
}

/// The trace id of a W3C `traceparent` (`00-<32 hex>-<16 hex>-<2 hex>`), if well-formed.
fn trace_id(traceparent: &str) -> Option<String> {
    let parts: Vec<&str> = traceparent.trim().split('-').collect();
    let hex = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_hexdigit());
    match parts.as_slice() {
        [version, trace, parent, flags]
            if hex(version, 2)
                && *version != "ff"
                && hex(trace, 32)
                && hex(parent, 16)
                && hex(flags, 2)
                && trace.bytes().any(|b| b != b'0') =>
        {
            Some(trace.to_ascii_lowercase())
        }
        _ => None,
    }
}

/// ASP.NET health checks answer `Healthy` as text.
async fn healthz() -> &'static str {
    "Healthy"
}

async fn swagger_json(State(state): State<SearchApi>, headers: HeaderMap) -> Json<Value> {
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
    Json(swagger::document(host, &state.delegated_scope()))
}

#[derive(Deserialize)]
struct SearchParams {
    q: Option<String>,
    status: Option<String>,
    top: Option<String>,
    #[serde(rename = "continuationToken")]
    continuation_token: Option<String>,
}

fn bad_request(code: &'static str, message: impl Into<String>) -> ApiError {
    ApiError::BadRequest {
        code,
        message: message.into(),
    }
}

fn with_caller(caller: &Caller, body: impl IntoResponse) -> Response {
    let mut response = body.into_response();
    response
        .extensions_mut()
        .insert(CallerId(caller.object_id.clone()));
    response
}

async fn search(
    State(state): State<SearchApi>,
    headers: HeaderMap,
    params: Result<Query<SearchParams>, QueryRejection>,
) -> Result<Response, ApiError> {
    let caller = state.authorizer().caller(&headers).await?;
    let Query(params) = params
        .map_err(|_| bad_request("InvalidQueryParameter", "The query string is malformed."))?;
    let text = params.q.filter(|q| !q.trim().is_empty());
    if let Some(q) = &text {
        if q.chars().count() > MAX_QUERY_CHARS {
            return Err(bad_request(
                "InvalidQueryParameter",
                format!("The parameter 'q' is longer than {MAX_QUERY_CHARS} characters."),
            ));
        }
        if query_terms(q).is_empty() {
            return Err(bad_request(
                "InvalidQueryParameter",
                "The parameter 'q' contains no searchable words.",
            ));
        }
    }
    let status = match params.status.as_deref().filter(|s| !s.is_empty()) {
        None => None,
        Some(s) => Some(canonical_status(s).ok_or_else(|| {
            bad_request(
                "InvalidQueryParameter",
                format!(
                    "The parameter 'status' must be one of: {}.",
                    crate::generator::STATUSES.join(", ")
                ),
            )
        })?),
    };
    let top = match params.top.as_deref() {
        None | Some("") => DEFAULT_TOP,
        Some(t) => t
            .parse::<u32>()
            .ok()
            .filter(|n| (1..=MAX_TOP).contains(n))
            .ok_or_else(|| {
                bad_request(
                    "InvalidQueryParameter",
                    format!("The parameter 'top' must be an integer between 1 and {MAX_TOP}."),
                )
            })?,
    };
    let store = state.store_handle();
    let fingerprint =
        continuation::fingerprint(store.generation(), text.as_deref(), status, &caller.viewer);
    let after = match params
        .continuation_token
        .as_deref()
        .filter(|t| !t.is_empty())
    {
        None => None,
        Some(token) => Some(continuation::decode(token, &fingerprint).map_err(
            |e: ContinuationError| bad_request("InvalidContinuationToken", e.to_string()),
        )?),
    };
    let query = SearchQuery {
        text,
        status: status.map(str::to_owned),
        top,
        after,
    };
    let body = search_page(store, query, caller.viewer.clone(), &fingerprint).await?;
    Ok(with_caller(
        &caller,
        ([(header::CONTENT_TYPE, JSON_CONTENT_TYPE)], body),
    ))
}

/// What `Json` responses carry, and so the search route too.
const JSON_CONTENT_TYPE: HeaderValue = HeaderValue::from_static("application/json");

/// The body `/cases/search` answers: `query` run for `viewer` off the async workers, its page as
/// JSON, with a continuation token bound to `fingerprint` when more results follow. The bench's
/// reference ([`crate::bench::SearchReference`]) runs exactly this without the HTTP stack.
pub async fn search_page(
    store: Arc<CaseStore>,
    query: SearchQuery,
    viewer: Viewer,
    fingerprint: &str,
) -> Result<Bytes, ApiError> {
    let page = tokio::task::spawn_blocking(move || store.search(&query, &viewer))
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))??;
    let mut body = json!({ "value": page.cases });
    if let Some(next) = page.next {
        body["continuationToken"] = Value::String(continuation::encode(next, fingerprint));
    }
    serde_json::to_vec(&body)
        .map(Bytes::from)
        .map_err(|e| ApiError::Internal(e.to_string()))
}

async fn get_case(
    State(state): State<SearchApi>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let caller = state.authorizer().caller(&headers).await?;
    // Same answer for "no such case" and "not yours": existence must not leak.
    let not_found = || ApiError::NotFound(format!("Case '{}' was not found.", printable(&id)));
    let number = case_number(&id).ok_or_else(not_found)?;
    let store = state.store_handle();
    let viewer = caller.viewer.clone();
    let case = tokio::task::spawn_blocking(move || store.get(number, &viewer))
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))??
        .ok_or_else(not_found)?;
    Ok(with_caller(&caller, Json(case)))
}

/// A path segment echoed in a message: printable ASCII only, bounded.
fn printable(s: &str) -> String {
    s.chars()
        .filter(|c| c.is_ascii_graphic() || *c == ' ')
        .take(64)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traceparent_trace_ids_are_extracted_only_when_well_formed() {
        assert_eq!(
            trace_id("00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01").as_deref(),
            Some("4bf92f3577b34da6a3ce929d0e0e4736")
        );
        for bad in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e47zz-00f067aa0ba902b7-01",
        ] {
            assert_eq!(trace_id(bad), None, "{bad}");
        }
    }
}
