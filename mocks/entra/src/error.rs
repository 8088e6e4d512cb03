//! Entra's error replies: the AADSTS envelope and the HTTP status of each case.
//!
//! Envelope and texts: Microsoft's `reference-error-codes.md` (MicrosoftDocs/entra-docs:
//! docs/identity-platform/), the client-credentials doc, and real error strings quoted in public
//! issue threads). Where a text was not found verbatim the wording is marked UNVERIFIED next to it;
//! tests assert the code, `error`, status and the first sentence.

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use time::OffsetDateTime;
use time::macros::format_description;

use crate::request::json_reply;

/// Every failure the mock reports on the wire, named after what went wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EntraError {
    #[error(
        "Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud. Check with your subscription administrator, this may happen if there are no active subscriptions for the tenant."
    )]
    TenantNotFound { tenant: String },
    /// The same AADSTS90002, as the discovery endpoints report it (`error: invalid_tenant`).
    #[error(
        "Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud. Check with your subscription administrator, this may happen if there are no active subscriptions for the tenant."
    )]
    DiscoveryTenantNotFound { tenant: String },
    #[error(
        "Application with identifier '{app_id}' was not found in the directory '{tenant}'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You may have sent your authentication request to the wrong tenant."
    )]
    ApplicationNotFound { app_id: String, tenant: String },
    #[error(
        "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '{app_id}'."
    )]
    InvalidClientSecret { app_id: String },
    #[error(
        "The provided client secret keys for app '{app_id}' are expired. Visit the Azure portal to create new keys for your app: https://aka.ms/NewClientSecret, or consider using certificate credentials for added security: https://aka.ms/certCreds."
    )]
    ExpiredClientSecret { app_id: String },
    #[error(
        "The request body must contain the following parameter: 'client_assertion' or 'client_secret'."
    )]
    MissingClientCredential,
    #[error(
        "Client assertion contains an invalid signature. [Reason - {reason}, Thumbprint of key used by client: '{thumbprint}']"
    )]
    ClientAssertionSignature { reason: String, thumbprint: String },
    #[error(
        "Client assertion is not within its valid time range. Current time: {now}, assertion valid from {nbf}, expiry time of assertion {exp}. Review the documentation at https://learn.microsoft.com/entra/identity-platform/certificate-credentials ."
    )]
    ClientAssertionTime {
        now: String,
        nbf: String,
        exp: String,
    },
    /// UNVERIFIED wording; raised for a wrong `aud`, `iss` or `sub` in a client assertion.
    #[error(
        "Client assertion failed validation: {reason}. Review the documentation at https://learn.microsoft.com/entra/identity-platform/certificate-credentials ."
    )]
    ClientAssertionClaims { reason: String },
    #[error(
        "The provided value for the input parameter 'scope' isn't valid. The scope {scope} isn't valid."
    )]
    InvalidScope { scope: String },
    #[error(
        "Provided value for the input parameter scope is not valid because it contains more than one resource. Scope {scope} is not valid."
    )]
    MultipleResources { scope: String },
    #[error(
        "The resource principal named {resource} was not found in the tenant named {tenant}. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You might have sent your authentication request to the wrong tenant."
    )]
    ResourceNotFound { resource: String, tenant: String },
    #[error(
        "The user or administrator has not consented to use the application with ID '{app_id}' named '{app_name}'. Send an interactive authorization request for this user and resource."
    )]
    ConsentRequired { app_id: String, app_name: String },
    #[error("Error validating credentials due to invalid username or password.")]
    InvalidUserCredentials,
    #[error(
        "The user account {upn} does not exist in the {tenant} directory. To sign into this application, the account must be added to the directory."
    )]
    UserNotFound { upn: String, tenant: String },
    #[error(
        "The user account is disabled. The user object in Active Directory backing this account has been disabled. An admin can re-enable this account through the portal."
    )]
    UserDisabled,
    #[error(
        "The redirect URI '{redirect_uri}' specified in the request does not match the redirect URIs configured for the application '{app_id}'. Make sure the redirect URI sent in the request matches one added to your application in the Azure portal. Navigate to https://aka.ms/redirectUriMismatchError to learn more about how to fix this."
    )]
    RedirectUriMismatch {
        redirect_uri: String,
        app_id: String,
    },
    #[error("Assertion failed signature validation. [Reason - {reason}]")]
    OboAssertionInvalid { reason: String },
    #[error("Assertion is not within its valid time range.")]
    OboAssertionExpired,
    #[error(
        "Assertion audience does not match the Client app presenting the assertion. The audience in the assertion was '{audience}' and the expected audience is '{app_id}' or one of the Application Uris of this application with App ID '{app_id}'({app_name}). The downstream client must request a token for the expected audience (the application that made the OBO request) and this application should use that token as the assertion."
    )]
    OboAudienceMismatch {
        audience: String,
        app_id: String,
        app_name: String,
    },
    #[error(
        "The provided authorization code or refresh token has expired due to inactivity. Send a new interactive authorization request for this user and resource."
    )]
    CodeExpired,
    #[error(
        "OAuth2 Authorization code was already redeemed, please retry with a new valid code or use an existing refresh token."
    )]
    CodeRedeemed,
    #[error("Provided grant is invalid or malformed.")]
    GrantMismatch,
    #[error("Invalid request. Request is malformed or invalid.")]
    MalformedGrant,
    #[error(
        "The refresh token has expired due to inactivity. The token was issued on {issued} and was inactive for {inactive}."
    )]
    RefreshTokenExpired { issued: String, inactive: String },
    #[error(
        "The refresh token was issued to a single page app (SPA), and therefore has a fixed, limited lifetime of 1.00:00:00, which cannot be extended. It is now expired and a new sign in request must be sent by the SPA to the sign in page. The token was issued on {issued}."
    )]
    SpaRefreshTokenExpired { issued: String },
    #[error(
        "The provided grant has expired due to it being revoked, a fresh auth token is needed. The user might have changed or reset their password. The grant was issued on '{issued}' and the TokensValidFrom date (before which tokens are not valid) for this user is '{valid_from}'."
    )]
    RefreshTokenRevoked { issued: String, valid_from: String },
    /// PKCE: a code issued with a challenge was redeemed without `code_verifier`
    /// (UNVERIFIED which of 50148/501481 Entra uses for which case).
    #[error(
        "The code_verifier does not match the code_challenge supplied in the authorization request for PKCE."
    )]
    PkceVerifierMissing,
    #[error(
        "The Code_Verifier does not match the code_challenge supplied in the authorization request."
    )]
    PkceMismatch,
    #[error("The request body must contain the following parameter: '{name}'.")]
    MissingParameter { name: String },
    #[error("The app requested an unsupported grant type '{grant_type}'.")]
    UnsupportedGrantType { grant_type: String },
    #[error(
        "The grant type is not supported over the /common or /consumers endpoints. Please use the /organizations or tenant-specific endpoint."
    )]
    GrantNotSupportedOnAlias,
    #[error("response_type '{response_type}' is not enabled for the application.")]
    ResponseTypeNotEnabled { response_type: String },
    #[error("The request is not valid: {reason}.")]
    InvalidRequest { reason: String },
    #[error("A silent sign-in request was sent but no user is signed in.")]
    LoginRequired,
    #[error("Unknown or invalid instance.")]
    UnknownInstance,
    /// Seen verbatim in public reports (Azure/azure-sdk-for-java#31733 for `scope` at the token
    /// endpoint, AzureAD/microsoft-authentication-library-for-android#688 for `login_hint` at
    /// `/authorize`). That Entra refuses every duplicated name, known or not, is UNVERIFIED.
    #[error("The request is not properly formatted. The parameter '{name}' is duplicated.")]
    DuplicateParameter { name: String },
    /// Wording from many public reports of a GET on the token endpoint (older replies read
    /// "POST, OPTIONS"); the HTTP status Entra sends with it is UNVERIFIED (400 here, like the
    /// other `invalid_request` errors).
    #[error("The endpoint only accepts POST requests. Received a {method} request.")]
    PostOnly { method: String },
}

impl EntraError {
    /// The AADSTS number.
    pub fn code(&self) -> u32 {
        use EntraError::*;
        match self {
            TenantNotFound { .. } | DiscoveryTenantNotFound { .. } => 90002,
            ApplicationNotFound { .. } => 700016,
            InvalidClientSecret { .. } => 7000215,
            ExpiredClientSecret { .. } => 7000222,
            MissingClientCredential => 7000218,
            ClientAssertionSignature { .. } => 700027,
            ClientAssertionTime { .. } => 700024,
            ClientAssertionClaims { .. } => 700023,
            InvalidScope { .. } => 70011,
            MultipleResources { .. } => 28000,
            ResourceNotFound { .. } => 500011,
            ConsentRequired { .. } => 65001,
            InvalidUserCredentials => 50126,
            UserNotFound { .. } => 50034,
            UserDisabled => 50057,
            RedirectUriMismatch { .. } => 50011,
            OboAssertionInvalid { .. } | OboAssertionExpired => 50013,
            OboAudienceMismatch { .. } => 500131,
            CodeExpired => 70008,
            CodeRedeemed => 54005,
            GrantMismatch => 70000,
            MalformedGrant => 9002313,
            RefreshTokenExpired { .. } => 700082,
            SpaRefreshTokenExpired { .. } => 700084,
            RefreshTokenRevoked { .. } => 50173,
            PkceVerifierMissing => 50148,
            PkceMismatch => 501481,
            MissingParameter { .. } => 900144,
            UnsupportedGrantType { .. } => 70003,
            GrantNotSupportedOnAlias => 9001023,
            ResponseTypeNotEnabled { .. } => 700054,
            InvalidRequest { .. } => 90014,
            LoginRequired => 50058,
            UnknownInstance => 50049,
            DuplicateParameter { .. } => 9000411,
            PostOnly { .. } => 900561,
        }
    }

    /// The OAuth `error` member.
    pub fn error(&self) -> &'static str {
        use EntraError::*;
        match self {
            TenantNotFound { .. }
            | RedirectUriMismatch { .. }
            | MissingParameter { .. }
            | GrantNotSupportedOnAlias
            | InvalidRequest { .. }
            | DuplicateParameter { .. }
            | PostOnly { .. } => "invalid_request",
            DiscoveryTenantNotFound { .. } => "invalid_tenant",
            ApplicationNotFound { .. } => "unauthorized_client",
            InvalidClientSecret { .. }
            | ExpiredClientSecret { .. }
            | MissingClientCredential
            | ClientAssertionSignature { .. }
            | ClientAssertionTime { .. }
            | ClientAssertionClaims { .. } => "invalid_client",
            InvalidScope { .. } | MultipleResources { .. } => "invalid_scope",
            ResourceNotFound { .. } => "invalid_resource",
            ConsentRequired { .. }
            | InvalidUserCredentials
            | UserNotFound { .. }
            | UserDisabled
            | OboAssertionInvalid { .. }
            | OboAssertionExpired
            | OboAudienceMismatch { .. }
            | CodeExpired
            | CodeRedeemed
            | GrantMismatch
            | MalformedGrant
            | RefreshTokenExpired { .. }
            | SpaRefreshTokenExpired { .. }
            | RefreshTokenRevoked { .. }
            | PkceVerifierMissing
            | PkceMismatch => "invalid_grant",
            UnsupportedGrantType { .. } => "unsupported_grant_type",
            ResponseTypeNotEnabled { .. } => "unsupported_response_type",
            LoginRequired => "login_required",
            UnknownInstance => "invalid_instance",
        }
    }

    /// The `error` member when the failure is reported to a redirect URI from `/authorize`
    /// (consent is asked for interactively there).
    pub fn authorize_error(&self) -> &'static str {
        match self {
            EntraError::ConsentRequired { .. } => "consent_required",
            other => other.error(),
        }
    }

    /// HTTP status. `invalid_client` answers 401 (seen in third-party fixtures, UNVERIFIED),
    /// everything else 400.
    pub fn status(&self) -> StatusCode {
        if self.error() == "invalid_client" {
            StatusCode::UNAUTHORIZED
        } else {
            StatusCode::BAD_REQUEST
        }
    }

    /// `AADSTS{code}: {text}`, without the trace lines.
    pub fn description(&self) -> String {
        format!("AADSTS{}: {self}", self.code())
    }

    /// The full JSON envelope Entra sends. `correlation_id` is the client's
    /// `client-request-id` when it sent one, as Entra echoes it.
    pub fn envelope(&self, now: OffsetDateTime, correlation_id: Option<&str>) -> ErrorEnvelope {
        let trace_id = uuid::Uuid::new_v4().to_string();
        let correlation_id = correlation_id
            .filter(|c| uuid::Uuid::parse_str(c).is_ok())
            .map_or_else(|| uuid::Uuid::new_v4().to_string(), str::to_string);
        let timestamp = format_timestamp(now);
        let code = self.code();
        let body = json!({
            "error": self.error(),
            "error_description": format!(
                "{}\r\nTrace ID: {trace_id}\r\nCorrelation ID: {correlation_id}\r\nTimestamp: {timestamp}",
                self.description()
            ),
            "error_codes": [code],
            "timestamp": timestamp,
            "trace_id": trace_id,
            "correlation_id": correlation_id,
            "error_uri": format!("https://login.microsoftonline.com/error?code={code}"),
        });
        ErrorEnvelope {
            status: self.status(),
            body,
            trace_id,
            correlation_id,
        }
    }
}

/// A rendered error, ready to send.
#[derive(Debug)]
pub struct ErrorEnvelope {
    pub status: StatusCode,
    pub body: serde_json::Value,
    pub trace_id: String,
    pub correlation_id: String,
}

impl IntoResponse for ErrorEnvelope {
    fn into_response(self) -> Response {
        let mut response = json_reply(self.status, &self.body, "no-store, no-cache");
        let headers = response.headers_mut();
        if let Ok(v) = HeaderValue::from_str(&self.trace_id) {
            headers.insert("x-ms-request-id", v);
        }
        if let Ok(v) = HeaderValue::from_str(&self.correlation_id) {
            headers.insert("client-request-id", v);
        }
        response
    }
}

/// `2016-01-09 02:02:12Z`, Entra's timestamp format in error envelopes.
pub(crate) fn format_timestamp(t: OffsetDateTime) -> String {
    t.format(format_description!(
        "[year]-[month]-[day] [hour]:[minute]:[second]Z"
    ))
    .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope_has_entra_fields_and_trace_lines() {
        let now = OffsetDateTime::from_unix_timestamp(1_452_304_932).unwrap();
        let err = EntraError::InvalidScope {
            scope: "api://x/read".into(),
        };
        let cid = "6f3d4c38-9a53-4d0b-8b8e-9d2b2c9b0e11";
        let env = err.envelope(now, Some(cid));
        assert_eq!(env.status, StatusCode::BAD_REQUEST);
        let b = &env.body;
        assert_eq!(b["error"], "invalid_scope");
        assert_eq!(b["error_codes"], json!([70011]));
        assert_eq!(b["timestamp"], "2016-01-09 02:02:12Z");
        assert_eq!(b["correlation_id"], cid);
        assert_eq!(
            b["error_uri"],
            "https://login.microsoftonline.com/error?code=70011"
        );
        let d = b["error_description"].as_str().unwrap();
        assert!(d.starts_with(
            "AADSTS70011: The provided value for the input parameter 'scope' isn't valid."
        ));
        assert!(d.ends_with(&format!(
            "\r\nTrace ID: {}\r\nCorrelation ID: {cid}\r\nTimestamp: 2016-01-09 02:02:12Z",
            env.trace_id
        )));
    }

    #[test]
    fn invalid_client_errors_answer_401_others_400() {
        assert_eq!(
            EntraError::MissingClientCredential.status(),
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(EntraError::UserDisabled.status(), StatusCode::BAD_REQUEST);
    }
}
