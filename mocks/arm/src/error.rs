//! ARM's error envelope, `{"error": {"code", "message"}}`, with ARM's codes and texts.
//!
//! Texts as ARM prints them in public reports: `MissingApiVersionParameter`
//! (MicrosoftDocs/feedback#2279), `InvalidApiVersionParameter` (Azure/azure-cli#28038),
//! `NoRegisteredProviderFound` (Azure/azure-cli#28496), `AuthenticationFailed` for a missing
//! header and its `WWW-Authenticate` challenge (Azure/azure-sdk-for-go's ARM challenge tests),
//! `InvalidAuthenticationToken`, `InvalidAuthenticationTokenAudience`
//! (Azure-Samples/active-directory-dotnetcore-daemon-v2#145), `ExpiredAuthenticationToken`
//! (microsoft/vscode-azureappservice#2483), `AuthorizationFailed`, `ResourceGroupNotFound`,
//! `ResourceNotFound` and `SubscriptionNotFound`.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ArmError {
    #[error("MissingApiVersionParameter")]
    MissingApiVersion,
    #[error("InvalidApiVersionParameter")]
    InvalidApiVersion { version: String, supported: String },
    #[error("NoRegisteredProviderFound")]
    NoRegisteredProvider {
        location: String,
        version: String,
        type_name: String,
        supported: String,
        locations: String,
    },
    /// No `Authorization` header.
    #[error("AuthenticationFailed")]
    MissingAuthorization,
    /// An `Authorization` header that is not one bearer credential.
    #[error("AuthenticationFailedInvalidHeader")]
    InvalidAuthorizationHeader,
    #[error("InvalidAuthenticationToken")]
    InvalidToken,
    #[error("InvalidAuthenticationTokenAudience")]
    WrongAudience { audience: String },
    #[error("ExpiredAuthenticationToken")]
    Expired { expired: String, now: String },
    #[error("InvalidAuthenticationTokenTenant")]
    WrongTenant { issuer: String, tenant: String },
    #[error("AuthorizationFailed")]
    AuthorizationFailed {
        client: String,
        object_id: String,
        action: String,
        scope: String,
    },
    #[error("SubscriptionNotFound")]
    SubscriptionNotFound { subscription: String },
    #[error("ResourceGroupNotFound")]
    ResourceGroupNotFound { group: String },
    /// A top-level resource: `'{type}/{name}' under resource group '{group}'`.
    #[error("ResourceNotFound")]
    ResourceNotFound {
        kind: String,
        name: String,
        group: String,
    },
    /// A child resource (a subnet, a peering), as the network provider words it.
    #[error("NotFound")]
    ChildNotFound { id: String },
    #[error("InvalidResourceType")]
    InvalidResourceType { kind: String, version: String },
    #[error("InvalidFilterInQueryString")]
    InvalidFilter { filter: String },
    /// A write on a resource the caller may write: this ARM serves the landscape read-only.
    #[error("MethodNotAllowed")]
    ReadOnly { method: String },
}

/// ARM's audiences, in the order its `InvalidAuthenticationTokenAudience` text lists them.
pub const ARM_AUDIENCES: [&str; 4] = [
    "https://management.core.windows.net/",
    "https://management.core.windows.net",
    "https://management.azure.com/",
    "https://management.azure.com",
];

impl ArmError {
    pub fn code(&self) -> &'static str {
        match self {
            Self::MissingApiVersion => "MissingApiVersionParameter",
            Self::InvalidApiVersion { .. } => "InvalidApiVersionParameter",
            Self::NoRegisteredProvider { .. } => "NoRegisteredProviderFound",
            Self::MissingAuthorization => "AuthenticationFailed",
            Self::InvalidAuthorizationHeader => "AuthenticationFailedInvalidHeader",
            Self::InvalidToken => "InvalidAuthenticationToken",
            Self::WrongAudience { .. } => "InvalidAuthenticationTokenAudience",
            Self::Expired { .. } => "ExpiredAuthenticationToken",
            Self::WrongTenant { .. } => "InvalidAuthenticationTokenTenant",
            Self::AuthorizationFailed { .. } => "AuthorizationFailed",
            Self::SubscriptionNotFound { .. } => "SubscriptionNotFound",
            Self::ResourceGroupNotFound { .. } => "ResourceGroupNotFound",
            Self::ResourceNotFound { .. } => "ResourceNotFound",
            Self::ChildNotFound { .. } => "NotFound",
            Self::InvalidResourceType { .. } => "InvalidResourceType",
            Self::InvalidFilter { .. } => "InvalidFilterInQueryString",
            Self::ReadOnly { .. } => "MethodNotAllowed",
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            Self::MissingApiVersion
            | Self::InvalidApiVersion { .. }
            | Self::NoRegisteredProvider { .. }
            | Self::InvalidResourceType { .. }
            | Self::InvalidFilter { .. } => StatusCode::BAD_REQUEST,
            Self::MissingAuthorization
            | Self::InvalidAuthorizationHeader
            | Self::InvalidToken
            | Self::WrongAudience { .. }
            | Self::Expired { .. }
            | Self::WrongTenant { .. } => StatusCode::UNAUTHORIZED,
            Self::AuthorizationFailed { .. } => StatusCode::FORBIDDEN,
            Self::SubscriptionNotFound { .. }
            | Self::ResourceGroupNotFound { .. }
            | Self::ResourceNotFound { .. }
            | Self::ChildNotFound { .. } => StatusCode::NOT_FOUND,
            Self::ReadOnly { .. } => StatusCode::METHOD_NOT_ALLOWED,
        }
    }

    pub fn message(&self) -> String {
        match self {
            Self::MissingApiVersion => {
                "The api-version query parameter (?api-version=) is required for all requests."
                    .into()
            }
            Self::InvalidApiVersion { version, supported } => format!(
                "The api-version '{version}' is invalid. The supported versions are '{supported}'."
            ),
            Self::NoRegisteredProvider {
                location,
                version,
                type_name,
                supported,
                locations,
            } => format!(
                "No registered resource provider found for location '{location}' and API version '{version}' for type '{type_name}'. The supported api-versions are '{supported}'. The supported locations are '{locations}'."
            ),
            Self::MissingAuthorization => {
                "Authentication failed. The 'Authorization' header is missing.".into()
            }
            Self::InvalidAuthorizationHeader => {
                "Authentication failed. The 'Authorization' header is provided in an invalid format."
                    .into()
            }
            Self::InvalidToken => "The access token is invalid.".into(),
            Self::WrongAudience { audience } => format!(
                "The access token has been obtained for wrong audience or resource '{audience}'. It should exactly match with one of the allowed audiences {}.",
                ARM_AUDIENCES
                    .iter()
                    .map(|a| format!("'{a}'"))
                    .collect::<Vec<_>>()
                    .join(",")
            ),
            Self::Expired { expired, now } => format!(
                "The access token expiry UTC time '{expired}' is earlier than current UTC time '{now}'."
            ),
            // Text as ARM prints it in public reports (UNVERIFIED word for word).
            Self::WrongTenant { issuer, tenant } => format!(
                "The access token is from the wrong issuer '{issuer}'. It must match the tenant 'https://sts.windows.net/{tenant}/' associated with this subscription. Please use the authority (URL) 'https://login.windows.net/{tenant}' to get the token. Note, if the subscription is transferred to another tenant there is no impact to the services, but information about new tenant could take time to propagate (up to an hour). If you just transferred your subscription and see this error message, please try back later."
            ),
            Self::AuthorizationFailed {
                client,
                object_id,
                action,
                scope,
            } => format!(
                "The client '{client}' with object id '{object_id}' does not have authorization to perform action '{action}' over scope '{scope}' or the scope is invalid. If access was recently granted, please refresh your credentials."
            ),
            Self::SubscriptionNotFound { subscription } => {
                format!("The subscription '{subscription}' could not be found.")
            }
            Self::ResourceGroupNotFound { group } => {
                format!("Resource group '{group}' could not be found.")
            }
            Self::ResourceNotFound { kind, name, group } => format!(
                "The Resource '{kind}/{name}' under resource group '{group}' was not found. For more details please go to https://aka.ms/ARMResourceNotFoundFix"
            ),
            Self::ChildNotFound { id } => format!("Resource {id} not found."),
            // UNVERIFIED wording (ARM's text for a type its provider does not register).
            Self::InvalidResourceType { kind, version } => {
                let (namespace, type_name) = kind.split_once('/').unwrap_or((kind, ""));
                format!(
                    "The resource type '{type_name}' could not be found in the namespace '{namespace}' for api version '{version}'."
                )
            }
            // UNVERIFIED wording.
            Self::InvalidFilter { filter } => {
                format!("Invalid $filter '{filter}' specified in the query string.")
            }
            // ppvnet's own: the emulated ARM serves the landscape and never changes it.
            Self::ReadOnly { method } => format!(
                "The requested resource does not support http method '{method}'. ppvnet serves the landscape read-only; change the landscape file instead."
            ),
        }
    }

    /// The response; 401s carry ARM's challenge naming the authority of `tenant` (empty for
    /// requests outside a subscription, where ARM names no tenant).
    pub fn response(&self, tenant: &str) -> Response {
        let body = json!({ "error": { "code": self.code(), "message": self.message() } });
        let mut response = (self.status(), axum::Json(body)).into_response();
        if self.status() == StatusCode::UNAUTHORIZED {
            // ARM's challenge for a missing header is public (Azure SDK tests); for a refused
            // token ARM sends the same authority with the error's text (UNVERIFIED).
            let description = match self {
                Self::MissingAuthorization => {
                    "The authentication failed because of missing 'Authorization' header."
                        .to_string()
                }
                other => other.message().replace('"', "'"),
            };
            let challenge = format!(
                "Bearer authorization_uri=\"https://login.windows.net/{tenant}\", error=\"invalid_token\", error_description=\"{description}\""
            );
            if let Ok(value) = HeaderValue::from_str(&challenge) {
                response
                    .headers_mut()
                    .insert(header::WWW_AUTHENTICATE, value);
            }
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authorization_failed_reads_as_arm_writes_it() {
        let e = ArmError::AuthorizationFailed {
            client: "o".into(),
            object_id: "o".into(),
            action: "Microsoft.Network/virtualNetworks/read".into(),
            scope:
                "/subscriptions/s/resourceGroups/g/providers/Microsoft.Network/virtualNetworks/v"
                    .into(),
        };
        assert_eq!(
            e.message(),
            "The client 'o' with object id 'o' does not have authorization to perform action 'Microsoft.Network/virtualNetworks/read' over scope '/subscriptions/s/resourceGroups/g/providers/Microsoft.Network/virtualNetworks/v' or the scope is invalid. If access was recently granted, please refresh your credentials."
        );
        assert_eq!(e.status(), StatusCode::FORBIDDEN);
    }

    #[test]
    fn a_missing_header_gets_arms_challenge() {
        let r = ArmError::MissingAuthorization.response("t1");
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(
            r.headers()[header::WWW_AUTHENTICATE],
            "Bearer authorization_uri=\"https://login.windows.net/t1\", error=\"invalid_token\", error_description=\"The authentication failed because of missing 'Authorization' header.\""
        );
    }
}
