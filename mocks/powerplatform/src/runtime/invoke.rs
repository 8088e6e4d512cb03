//! `POST /invoke`: one call of a custom connector operation (as Power Fx sends it:
//! microsoft/Power-Fx: src/libraries/Microsoft.PowerFx.Connectors/PowerPlatformConnectorClient.cs).
//!
//! Order of checks: the envelope headers, the user's token, the connection and its owner, the
//! per-connection rate limit, the connector as saved (variables), the connection's token, the
//! definition (`Connector::prepare`); then the backend call from the environment's active host
//! and the response policies.
//!
//! Failover (UNVERIFIED in-flight behaviour; MicrosoftDocs/power-platform:
//! `power-platform/admin/business-continuity-disaster-recovery.md` is silent on it): when the call
//! fails before a connection was established (name not resolved, refused, connect timeout) and the
//! environment's active host is no longer the one used, the call is sent once more from the new
//! host. A failure after connecting is not retried: the backend may have acted on the request.

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use super::PowerPlatform;
use super::connections::Connection;
use super::egress::{FailureKind, SendFailure, classify, is_hop_by_hop};
use super::error::{ErrorContext, RuntimeError};
use super::saved::SavedConnector;
use crate::connector::{BackendRequest, BackendResponse, Bindings, Call, Connector};

/// Names the host a call left from, for tests and the flow-log story.
pub const EGRESS_HOST_HEADER: &str = "x-ppvnet-egress-host";
/// Backend answers above this are refused with 502 (UNVERIFIED: the runtime's response limit is
/// not documented; Power Automate documents 100 MB for actions).
pub const MAX_RESPONSE_BYTES: usize = 100 * 1024 * 1024;
const ENVIRONMENT_PREFIX: &str = "/providers/Microsoft.PowerApps/environments/";

/// Request headers that belong to the runtime, not to the backend.
const RUNTIME_HEADERS: [&str; 13] = [
    "authorization",
    "host",
    "x-ms-request-url",
    "x-ms-request-method",
    "x-ms-client-environment-id",
    "x-ms-client-session-id",
    "x-ms-user-agent",
    "x-ms-enable-selects",
    "x-ms-client-request-id",
    "x-ms-correlation-id",
    "x-ms-client-tenant-id",
    "x-ms-client-object-id",
    "x-ms-client-app-id",
];

/// `x-ms-request-url` split up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    pub connector: String,
    pub connection: String,
    pub path: String,
    pub query: String,
}

/// Parses `/apim/{connector}/{connectionId}/{path}?{query}`.
pub fn parse_target(url: &str) -> Option<Target> {
    let (path, query) = url.split_once('?').unwrap_or((url, ""));
    let rest = path.strip_prefix("/apim/")?;
    let mut parts = rest.splitn(3, '/');
    let connector = parts.next().filter(|s| !s.is_empty())?.to_owned();
    let connection = parts.next().filter(|s| !s.is_empty())?.to_owned();
    let path = format!("/{}", parts.next().unwrap_or(""));
    Some(Target {
        connector,
        connection,
        path,
        query: query.to_owned(),
    })
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
}

/// The `POST /invoke` handler.
pub async fn invoke(State(pp): State<PowerPlatform>, headers: HeaderMap, body: Body) -> Response {
    let request_id = header(&headers, "x-ms-client-request-id")
        .or_else(|| header(&headers, "x-ms-correlation-id"))
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let target = header(&headers, "x-ms-request-url").and_then(parse_target);
    let public = pp.inner.config.public_url.trim_end_matches('/');
    let ctx = ErrorContext {
        source: public
            .split_once("://")
            .map_or(public, |(_, host)| host)
            .to_owned(),
        client_request_id: request_id.clone(),
        exchange_url: match &target {
            Some(t) => format!("{public}/tokens/{}/{}/exchange", t.connector, t.connection),
            None => format!("{public}/tokens/exchange"),
        },
    };
    let result = match target {
        Some(target) => call(&pp, &headers, body, target, &request_id).await,
        None => Err(RuntimeError::BadRequest(
            "The 'x-ms-request-url' header is missing or not of the form /apim/{connector}/{connectionId}/{path}.".into(),
        )),
    };
    result.unwrap_or_else(|e| e.into_response_with(&ctx))
}

async fn call(
    pp: &PowerPlatform,
    headers: &HeaderMap,
    body: Body,
    target: Target,
    request_id: &str,
) -> Result<Response, RuntimeError> {
    let user = super::auth::caller(&pp.inner.validator, headers).await?;
    let environment = environment_of(pp, headers)?;
    let connection = pp
        .connection(&target.connection)
        .filter(|c| c.environment == environment && c.connector == target.connector)
        .ok_or_else(|| {
            RuntimeError::NotFound(format!(
                "Connection '{}' of connector '{}' was not found in environment '{environment}'.",
                target.connection, target.connector
            ))
        })?;
    if connection.owner != user {
        return Err(RuntimeError::TokenExchange {
            message: ". Permission denied due to missing connection ACL.".into(),
        });
    }
    let limits = &pp.inner.config.limits;
    let now_ms = pp.inner.clock.unix_millis();
    pp.inner
        .limiter
        .admit(&connection.id, limits.calls_per_minute, now_ms)
        .map_err(|retry_after| RuntimeError::RateLimited { retry_after })?;
    let saved = usable_connector(pp, &environment, &target.connector)?;
    let call = read_call(headers, body, &target, limits.max_request_bytes).await?;
    let token = pp
        .access_token(&connection, &saved)
        .await
        .map_err(|message| RuntimeError::TokenExchange { message })?;
    let connector = saved
        .connector
        .clone()
        .ok_or_else(|| RuntimeError::Internal("connector without definition".into()))?;
    let mut bindings = saved.bindings.clone();
    bindings
        .connection_parameters
        .extend(connection.parameters.clone());
    let request = pp
        .inner
        .logic
        .prepare(&connector, &call, &bindings)
        .map_err(RuntimeError::Call)?;
    let exchange = Exchange {
        pp,
        connector: &connector,
        call: &call,
        bindings: &bindings,
        connection: &connection,
    };
    exchange.run(request, token, request_id).await
}

/// The environment of `x-ms-client-environment-id` (name or id, with or without the
/// `/providers/Microsoft.PowerApps/environments/` prefix).
fn environment_of(pp: &PowerPlatform, headers: &HeaderMap) -> Result<String, RuntimeError> {
    let raw = header(headers, "x-ms-client-environment-id").ok_or_else(|| {
        RuntimeError::BadRequest("The 'x-ms-client-environment-id' header is missing.".into())
    })?;
    let key = raw.strip_prefix(ENVIRONMENT_PREFIX).unwrap_or(raw);
    pp.environment(key)
        .map(|e| e.name.clone())
        .ok_or_else(|| RuntimeError::NotFound(format!("Environment '{key}' was not found.")))
}

/// The connector as saved, refusing a save with errors.
fn usable_connector(
    pp: &PowerPlatform,
    environment: &str,
    connector: &str,
) -> Result<std::sync::Arc<SavedConnector>, RuntimeError> {
    let saved = pp.saved(environment, connector).ok_or_else(|| {
        RuntimeError::NotFound(format!(
            "Connector '{connector}' is not saved in environment '{environment}'."
        ))
    })?;
    if let Some(error) = &saved.import_error {
        return Err(RuntimeError::BadRequest(error.clone()));
    }
    if let Some(error) = saved.unresolved().next() {
        return Err(RuntimeError::Unresolved(format!(
            "Connector '{connector}' was saved with an unresolved environment variable. {} Fix the cause and save the connector again.",
            error.message()
        )));
    }
    Ok(saved)
}

/// The call as the definition sees it: method, path, query, the caller's own headers, body.
async fn read_call(
    headers: &HeaderMap,
    body: Body,
    target: &Target,
    limit: usize,
) -> Result<Call, RuntimeError> {
    let declared = header(headers, "content-length").and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(RuntimeError::TooLarge(limit));
    }
    let bytes = axum::body::to_bytes(body, limit)
        .await
        .map_err(|_| RuntimeError::TooLarge(limit))?;
    let method = header(headers, "x-ms-request-method")
        .unwrap_or("GET")
        .to_ascii_uppercase();
    let forwarded = headers
        .iter()
        .filter(|(name, _)| {
            let name = name.as_str();
            !RUNTIME_HEADERS.contains(&name) && !is_hop_by_hop(name)
        })
        .filter_map(|(name, value)| Some((name.to_string(), value.to_str().ok()?.to_owned())))
        .collect();
    Ok(Call {
        method,
        path: target.path.clone(),
        query: target.query.clone(),
        headers: forwarded,
        body: (!bytes.is_empty()).then(|| bytes.to_vec()),
    })
}

/// One backend exchange and its policies.
struct Exchange<'a> {
    pp: &'a PowerPlatform,
    connector: &'a Connector,
    call: &'a Call,
    bindings: &'a Bindings,
    connection: &'a Connection,
}

impl Exchange<'_> {
    async fn run(
        &self,
        mut request: BackendRequest,
        token: Option<String>,
        request_id: &str,
    ) -> Result<Response, RuntimeError> {
        if let Some(token) = token {
            request
                .headers
                .retain(|(n, _)| !n.eq_ignore_ascii_case("authorization"));
            request
                .headers
                .push(("Authorization".into(), format!("Bearer {token}")));
        }
        request.headers.retain(|(n, _)| {
            !n.eq_ignore_ascii_case("x-ms-client-request-id")
                && !n.eq_ignore_ascii_case("x-ms-correlation-id")
        });
        request
            .headers
            .push(("x-ms-client-request-id".into(), request_id.to_owned()));
        request
            .headers
            .push(("x-ms-correlation-id".into(), request_id.to_owned()));
        let (response, host) = match self.send_with_failover(&request).await {
            Ok(answer) => answer,
            Err((failure, host)) => return Err(self.failure(&request, &failure, &host)),
        };
        let logic = &self.pp.inner.logic;
        let outcome =
            logic.on_response(self.connector, &request, self.call, response, self.bindings);
        if outcome.connection_unauthenticated {
            self.pp.break_connection(
                &self.connection.id,
                format!(
                    "The connector's policy set the connection to unauthenticated after the backend answered {}.",
                    outcome.response.status
                ),
            );
        }
        if let Some(e) = outcome.policy_error {
            // A response policy that cannot apply would hand the app a body the connector's
            // definition does not promise; fail the call visibly (UNVERIFIED: the service's
            // own behaviour is undocumented).
            return Err(RuntimeError::BadGateway {
                message: format!("The connector's response policy could not be applied: {e}"),
                headers: Vec::new(),
            });
        }
        Ok(respond(outcome.response, request_id, &host))
    }

    /// Sends from the active host; once more from a new active host after a failover.
    async fn send_with_failover(
        &self,
        request: &BackendRequest,
    ) -> Result<(BackendResponse, String), (SendFailure, String)> {
        let environment = &self.connection.environment;
        let outbound = &self.pp.inner.outbound;
        let no_host = |e: String| {
            let failure = SendFailure {
                kind: FailureKind::Other,
                detail: format!("no active host for environment '{environment}': {e}"),
                while_connecting: false,
            };
            (failure, String::new())
        };
        let mut host = outbound.active_host(environment).map_err(no_host)?;
        let mut retried = false;
        let correlation = request
            .headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("x-ms-correlation-id"))
            .map(|(_, v)| v.as_str())
            .unwrap_or_default();
        loop {
            let started = std::time::SystemTime::now();
            let sent = self.send_once(&host, request).await;
            outbound.sent(&host, &request.url, correlation, started);
            match sent {
                Ok(response) => return Ok((response, host)),
                Err(failure) => {
                    let now = outbound.active_host(environment).ok();
                    match now {
                        Some(new) if !retried && failure.before_connection() && new != host => {
                            tracing::info!(from = %host, to = %new, "retrying the call from the new active host");
                            host = new;
                            retried = true;
                        }
                        _ => return Err((failure, host)),
                    }
                }
            }
        }
    }

    async fn send_once(
        &self,
        host: &str,
        request: &BackendRequest,
    ) -> Result<BackendResponse, SendFailure> {
        let other = |detail: String| SendFailure {
            kind: FailureKind::Other,
            detail,
            while_connecting: false,
        };
        let client = self
            .pp
            .inner
            .outbound
            .client(host)
            .map_err(|e| other(format!("no client for host '{host}': {e}")))?;
        let method = reqwest::Method::from_bytes(request.method.as_bytes())
            .map_err(|_| other(format!("invalid method '{}'", request.method)))?;
        let mut builder = client
            .request(method, &request.url)
            .timeout(self.pp.inner.config.limits.call_timeout);
        for (name, value) in &request.headers {
            builder = builder.header(name.as_str(), value.as_str());
        }
        if let Some(body) = &request.body {
            builder = builder.body(body.clone());
        }
        let mut response = builder.send().await.map_err(|e| classify(&e))?;
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .map(|(n, v)| {
                (
                    n.to_string(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| classify(&e))? {
            if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
                return Err(other(format!(
                    "the answer exceeds {MAX_RESPONSE_BYTES} bytes"
                )));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(BackendResponse {
            status,
            headers,
            body,
        })
    }

    /// 504 for a call without a timely answer, 502 for anything else; with the `Failure`
    /// policies' headers.
    fn failure(&self, request: &BackendRequest, failure: &SendFailure, host: &str) -> RuntimeError {
        let headers =
            self.pp
                .inner
                .logic
                .on_failure(self.connector, request, self.call, self.bindings);
        tracing::warn!(url = %request.url, host = %host, cause = %failure.describe(), "backend call failed");
        if failure.kind == FailureKind::Timeout {
            return RuntimeError::Timeout { headers };
        }
        let backend = url::Url::parse(&request.url)
            .ok()
            .and_then(|u| u.host_str().map(str::to_owned))
            .unwrap_or_else(|| request.url.clone());
        RuntimeError::BadGateway {
            message: format!(
                "The backend '{backend}' could not be reached from '{host}': {}.",
                failure.describe()
            ),
            headers,
        }
    }
}

/// The backend's answer with hop-by-hop headers removed and the runtime's own added.
fn respond(response: BackendResponse, request_id: &str, host: &str) -> Response {
    let status = StatusCode::from_u16(response.status).unwrap_or(StatusCode::BAD_GATEWAY);
    let mut out = (status, response.body).into_response();
    let headers = out.headers_mut();
    headers.remove(axum::http::header::CONTENT_TYPE);
    for (name, value) in &response.headers {
        if is_hop_by_hop(name) {
            continue;
        }
        if let (Ok(n), Ok(v)) = (
            HeaderName::try_from(name.as_str()),
            HeaderValue::from_str(value),
        ) {
            headers.append(n, v);
        }
    }
    for (name, value) in [
        ("x-ms-correlation-id", request_id),
        ("x-ms-client-request-id", request_id),
        (EGRESS_HOST_HEADER, host),
    ] {
        if let Ok(v) = HeaderValue::from_str(value) {
            headers.insert(name, v);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_url_splits_into_connector_connection_path_and_query() {
        let t = parse_target("/apim/msnweather/480a/current/Orl%C3%A9ans?units=C").unwrap();
        assert_eq!(t.connector, "msnweather");
        assert_eq!(t.connection, "480a");
        assert_eq!(t.path, "/current/Orl%C3%A9ans");
        assert_eq!(t.query, "units=C");
        assert_eq!(parse_target("/apim/c/id").unwrap().path, "/");
        assert!(parse_target("/apim/c").is_none());
        assert!(parse_target("/other/c/id/x").is_none());
    }
}
