//! Every error the API answers, in one place.
//!
//! JSON errors use the Microsoft REST API guidelines envelope `{"error":{"code","message"}}`.
//! Authentication failures also carry the RFC 6750 challenge an ASP.NET / Microsoft.Identity.Web
//! API sends. The public-network-access refusal is App Service's own HTML page, because App
//! Service answers it before the application sees the request. Messages never carry internals:
//! database and key-fetch details go to the log only.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use serde_json::json;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// No bearer credential at all: RFC 6750 §3.1 says to answer a bare challenge, no error code.
    #[error("no bearer token")]
    MissingToken,
    /// `description` comes from [`ppvnet_common::token::TokenError::description`] or a claim
    /// check and is already header-safe.
    /// More than one `Authorization` header. RFC 6750 §3.1 `invalid_request` (ASP.NET would
    /// join the headers with a comma and report `invalid_token`; refusing the request as
    /// malformed is the ppvnet hardening rule, UNVERIFIED against a live API).
    #[error("more than one Authorization header")]
    AmbiguousToken,
    #[error("invalid token: {description}")]
    InvalidToken { description: String },
    #[error("insufficient scope: {description}")]
    InsufficientScope { description: String },
    #[error("bad request ({code}): {message}")]
    BadRequest { code: &'static str, message: String },
    #[error("not found: {0}")]
    NotFound(String),
    /// Public network access is disabled and the request did not come through a private endpoint.
    #[error("public network access is disabled")]
    PublicAccessDenied,
    #[error("internal error: {0}")]
    Internal(String),
}

/// Why a request with several `Authorization` headers is refused.
pub const AMBIGUOUS_DESCRIPTION: &str = "The request has more than one Authorization header";

/// App Service's page for a request its access restrictions block. Wording from the message
/// users quote (microsoft/vscode-azureappservice#2498: "Error 403 - Forbidden / The web app you
/// have attempted to reach has blocked your access."); the page title and the administrator
/// paragraph follow App Service's sibling "This web app is stopped" page
/// (microsoft/vscode-azureappservice#2003, SchemaStore/schemastore#1223).
pub const APP_SERVICE_FORBIDDEN_PAGE: &str = r#"<!DOCTYPE html>
<html>
<head>
<title>Web App - Unavailable</title>
<meta charset="utf-8" />
</head>
<body>
<div id="content">
<h1>Error 403 - Forbidden</h1>
<p>The web app you have attempted to reach has blocked your access.</p>
<p>If you are the web app administrator, please find the common 403 error scenarios and resolution <a href="https://go.microsoft.com/fwlink/?linkid=2095007" target="_blank">here</a>. For further troubleshooting tools and recommendations, please visit <a href="https://portal.azure.com/">Azure Portal</a>.</p>
</div>
</body>
</html>
"#;

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            Self::MissingToken | Self::AmbiguousToken | Self::InvalidToken { .. } => {
                StatusCode::UNAUTHORIZED
            }
            Self::InsufficientScope { .. } | Self::PublicAccessDenied => StatusCode::FORBIDDEN,
            Self::BadRequest { .. } => StatusCode::BAD_REQUEST,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            Self::MissingToken | Self::AmbiguousToken | Self::InvalidToken { .. } => {
                "InvalidAuthenticationToken"
            }
            Self::InsufficientScope { .. } => "Forbidden",
            Self::BadRequest { code, .. } => code,
            Self::NotFound(_) => "NotFound",
            Self::PublicAccessDenied => "Forbidden",
            Self::Internal(_) => "InternalServerError",
        }
    }

    fn message(&self) -> String {
        match self {
            Self::MissingToken => "Access token is missing.".to_owned(),
            Self::AmbiguousToken => format!("{AMBIGUOUS_DESCRIPTION}."),
            Self::InvalidToken { description } => format!("{description}."),
            Self::InsufficientScope { description } => format!("{description}."),
            Self::BadRequest { message, .. } | Self::NotFound(message) => message.clone(),
            Self::PublicAccessDenied => "Public network access is disabled.".to_owned(),
            Self::Internal(_) => "The server encountered an internal error.".to_owned(),
        }
    }

    fn challenge(&self) -> Option<String> {
        match self {
            Self::MissingToken => Some("Bearer".to_owned()),
            Self::AmbiguousToken => Some(format!(
                "Bearer error=\"invalid_request\", error_description=\"{AMBIGUOUS_DESCRIPTION}\""
            )),
            Self::InvalidToken { description } => Some(format!(
                "Bearer error=\"invalid_token\", error_description=\"{description}\""
            )),
            Self::InsufficientScope { description } => Some(format!(
                "Bearer error=\"insufficient_scope\", error_description=\"{description}\""
            )),
            _ => None,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let Self::Internal(detail) = &self {
            tracing::error!(error = %detail, "request failed");
        }
        if let Self::PublicAccessDenied = self {
            return (StatusCode::FORBIDDEN, Html(APP_SERVICE_FORBIDDEN_PAGE)).into_response();
        }
        let body = json!({"error": {"code": self.code(), "message": self.message()}});
        let mut response = (self.status(), axum::Json(body)).into_response();
        if let Some(challenge) = self.challenge()
            && let Ok(value) = HeaderValue::from_str(&challenge)
        {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, value);
        }
        response
    }
}

impl From<crate::store::StoreError> for ApiError {
    fn from(e: crate::store::StoreError) -> Self {
        Self::Internal(e.to_string())
    }
}
