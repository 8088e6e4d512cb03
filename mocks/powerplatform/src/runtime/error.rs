//! The runtime's error answers, in the shapes Power Fx and the maker portal see
//! (Power Fx's connector tests in microsoft/Power-Fx; the 504 body from
//! MicrosoftDocs/SupportArticles-docs `…/connections/best-practices-when-updating-a-flow.md`).
//!
//! - Connector errors: `{"status":N,"message":"…\r\nclientRequestId: …","error":{"message":"…"},"source":"…"}`
//!   (recorded in Power Fx tests).
//! - Token exchange: `{"status":400,"source":"…/tokens/…/exchange","message":"Error from token exchange: …"}`.
//! - Gateway timeout: the exact 504 `ResponseTimeout` body of the support article.
//! - Connection failure (502): UNVERIFIED, modelled on the 504 with `code` 502 and an inner
//!   `ConnectionFailure` naming the backend, the host the call left from and the cause.
//! - Rate limit (429): UNVERIFIED body (no public source shows one); the connector shape with
//!   APIM's rate-limit wording and a `Retry-After` header.
//!
//! Control routes answer `{"error":{"code","message"}}` ([`ControlError`]).

use axum::Json;
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::connector::CallError;

/// Why `POST /invoke` did not return a backend answer.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("Access token is missing.")]
    MissingToken,
    /// `challenge` is the `WWW-Authenticate` value.
    #[error("{message}")]
    InvalidToken { message: String, challenge: String },
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    NotFound(String),
    #[error("The request content length exceeds the limit of {0} bytes.")]
    TooLarge(usize),
    /// The connection has no usable token; `message` follows "Error from token exchange".
    #[error("Error from token exchange{message}")]
    TokenExchange { message: String },
    #[error("{0}")]
    Call(CallError),
    /// The connector was saved with an unresolved environment variable (UNVERIFIED shape: the
    /// connector error shape with status 400).
    #[error("{0}")]
    Unresolved(String),
    #[error("Rate limit is exceeded. Try again in {retry_after} seconds.")]
    RateLimited { retry_after: u64 },
    /// No answer within `call_timeout`; `headers` come from the `Failure` policies.
    #[error("The server did not receive a timely response from the upstream server.")]
    Timeout { headers: Vec<(String, String)> },
    #[error("{message}")]
    BadGateway {
        message: String,
        headers: Vec<(String, String)>,
    },
    #[error("{0}")]
    Internal(String),
}

/// What every error answer names.
#[derive(Clone, Debug)]
pub struct ErrorContext {
    /// `host[:port]` of the runtime, the `source` of connector errors.
    pub source: String,
    pub client_request_id: String,
    /// The token exchange URL of the connection (`…/tokens/{connector}/{connection}/exchange`).
    pub exchange_url: String,
}

impl RuntimeError {
    pub fn status(&self) -> StatusCode {
        match self {
            Self::MissingToken | Self::InvalidToken { .. } => StatusCode::UNAUTHORIZED,
            Self::BadRequest(_) | Self::TokenExchange { .. } | Self::Unresolved(_) => {
                StatusCode::BAD_REQUEST
            }
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Call(e) => StatusCode::from_u16(e.status()).unwrap_or(StatusCode::BAD_REQUEST),
            Self::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::Timeout { .. } => StatusCode::GATEWAY_TIMEOUT,
            Self::BadGateway { .. } => StatusCode::BAD_GATEWAY,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn body(&self, ctx: &ErrorContext) -> Value {
        let status = self.status().as_u16();
        let request_id = &ctx.client_request_id;
        match self {
            Self::TokenExchange { .. } => json!({
                "status": status,
                "source": ctx.exchange_url,
                "message": self.to_string(),
            }),
            Self::Timeout { .. } => gateway_body(
                504,
                ctx,
                "ResponseTimeout",
                &format!("{self} Request tracking id '{request_id}'."),
            ),
            Self::BadGateway { message, .. } => gateway_body(
                502,
                ctx,
                "ConnectionFailure",
                &format!("{message} Request tracking id '{request_id}'."),
            ),
            _ => {
                let message = self.to_string();
                json!({
                    "status": status,
                    "message": format!("{message}\r\nclientRequestId: {request_id}"),
                    "error": {"message": message},
                    "source": ctx.source,
                })
            }
        }
    }

    /// The answer, with the challenge, `Retry-After` and failure-policy headers it carries.
    pub fn into_response_with(self, ctx: &ErrorContext) -> Response {
        let mut response = (self.status(), Json(self.body(ctx))).into_response();
        let headers = response.headers_mut();
        match &self {
            Self::MissingToken => {
                headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            Self::InvalidToken { challenge, .. } => {
                if let Ok(v) = HeaderValue::from_str(challenge) {
                    headers.insert(header::WWW_AUTHENTICATE, v);
                }
            }
            Self::RateLimited { retry_after } => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(*retry_after));
            }
            Self::Timeout { headers: extra } | Self::BadGateway { headers: extra, .. } => {
                for (name, value) in extra {
                    if let (Ok(n), Ok(v)) = (
                        HeaderName::try_from(name.as_str()),
                        HeaderValue::from_str(value),
                    ) {
                        headers.append(n, v);
                    }
                }
            }
            _ => {}
        }
        if let Ok(v) = HeaderValue::from_str(&ctx.client_request_id) {
            headers.insert("x-ms-client-request-id", v.clone());
            headers.insert("x-ms-correlation-id", v);
        }
        response
    }
}

/// The gateway error envelope of the 504 the support article quotes.
fn gateway_body(code: u16, ctx: &ErrorContext, inner_code: &str, inner_message: &str) -> Value {
    json!({
        "error": {
            "code": code,
            "source": ctx.source,
            "clientRequestId": ctx.client_request_id,
            "message": "BadGateway",
            "innerError": {"error": {"code": inner_code, "message": inner_message}},
        }
    })
}

/// Errors of the control and connection routes.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error("Access token is missing.")]
    MissingToken,
    #[error("{message}")]
    InvalidToken { message: String, challenge: String },
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Internal(String),
}

impl ControlError {
    pub fn status(&self) -> StatusCode {
        match self {
            Self::MissingToken | Self::InvalidToken { .. } => StatusCode::UNAUTHORIZED,
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            Self::MissingToken | Self::InvalidToken { .. } => "InvalidAuthenticationToken",
            Self::BadRequest(_) => "BadRequest",
            Self::NotFound(_) => "NotFound",
            Self::Internal(_) => "InternalServerError",
        }
    }
}

impl From<RuntimeError> for ControlError {
    fn from(e: RuntimeError) -> Self {
        match e {
            RuntimeError::MissingToken => Self::MissingToken,
            RuntimeError::InvalidToken { message, challenge } => {
                Self::InvalidToken { message, challenge }
            }
            RuntimeError::NotFound(m) => Self::NotFound(m),
            RuntimeError::Internal(m) => Self::Internal(m),
            other => Self::BadRequest(other.to_string()),
        }
    }
}

impl IntoResponse for ControlError {
    fn into_response(self) -> Response {
        if let Self::Internal(detail) = &self {
            tracing::error!(error = %detail, "control request failed");
        }
        let body = json!({"error": {"code": self.code(), "message": self.to_string()}});
        let mut response = (self.status(), Json(body)).into_response();
        let challenge = match &self {
            Self::MissingToken => Some("Bearer".to_owned()),
            Self::InvalidToken { challenge, .. } => Some(challenge.clone()),
            _ => None,
        };
        if let Some(v) = challenge.and_then(|c| HeaderValue::from_str(&c).ok()) {
            response.headers_mut().insert(header::WWW_AUTHENTICATE, v);
        }
        response
    }
}
