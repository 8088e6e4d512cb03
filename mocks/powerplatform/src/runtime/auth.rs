//! The caller of the runtime: a user token for `https://apihub.azure.com`, validated as
//! strictly as any Entra-protected API does it ([`ppvnet_common::token::Validator`]: RS256,
//! signing key from the tenant's JWKS, exact issuer, audience, lifetime on the run clock,
//! tenant, no ID tokens), then required to name the user (`oid`).

use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;
use ppvnet_common::token::{Validator, ValidatorConfig, bearer_token};

use super::config::{APIHUB_AUDIENCE, RuntimeConfig};
use super::error::RuntimeError;

/// The validator for tokens of this tenant and the API Hub audience (with and without the
/// trailing slash, as v1 tokens carry the resource as requested).
pub fn validator_config(config: &RuntimeConfig) -> ValidatorConfig {
    ValidatorConfig::new(
        format!(
            "{}/{}/v2.0/.well-known/openid-configuration",
            config.authority_host, config.tenant_id
        ),
        config.tenant_id.clone(),
        vec![APIHUB_AUDIENCE.to_owned(), format!("{APIHUB_AUDIENCE}/")],
        ValidatorConfig::entra_issuers(&config.tenant_id),
    )
}

/// The user's object id (lower case) from a valid bearer token in `headers`.
pub async fn caller(validator: &Validator, headers: &HeaderMap) -> Result<String, RuntimeError> {
    let token = headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(bearer_token)
        .ok_or(RuntimeError::MissingToken)?;
    let claims = validator
        .validate(token)
        .await
        .map_err(|e| RuntimeError::InvalidToken {
            message: format!("{}.", e.description()),
            challenge: e.www_authenticate(),
        })?;
    let oid = claims.oid().ok_or_else(|| {
        let description = "The token has no 'oid' claim";
        RuntimeError::InvalidToken {
            message: format!("{description}."),
            challenge: format!(
                "Bearer error=\"invalid_token\", error_description=\"{description}\""
            ),
        }
    })?;
    Ok(oid.to_ascii_lowercase())
}
