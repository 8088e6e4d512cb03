//! Who is calling: bearer-token validation behind a small trait.
//!
//! The vault only needs "is this token good for a vault of tenant T, and who sent it". The
//! production implementation, [`EntraTokenCheck`], validates for real against the (mock) Entra
//! authority's discovery document and JWKS through `ppvnet_common::token::Validator`; tests and
//! the harness may plug in another [`AccessTokenCheck`].

use std::collections::HashMap;
use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use futures::future::BoxFuture;
use ppvnet_common::Clock;
use ppvnet_common::token::{Claims, TokenError, Validator, ValidatorConfig};

/// The audiences Key Vault accepts: with and without the trailing slash.
pub const VAULT_AUDIENCES: [&str; 2] = ["https://vault.azure.net", "https://vault.azure.net/"];

/// The caller as Key Vault's 403 texts print it: `appid=…;oid=…;iss=…`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Caller {
    pub app_id: String,
    pub object_id: String,
    pub issuer: String,
}

impl fmt::Display for Caller {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "appid={};oid={};iss={}",
            self.app_id, self.object_id, self.issuer
        )
    }
}

impl Caller {
    pub fn from_claims(claims: &Claims) -> Self {
        Self {
            app_id: claims.app_id().unwrap_or_default().to_owned(),
            object_id: claims.oid().unwrap_or_default().to_owned(),
            issuer: claims.issuer().unwrap_or_default().to_owned(),
        }
    }
}

/// A refused token; `message` is the 401 body's `error.message`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenRejection {
    pub message: String,
}

/// Validates bearer tokens for vaults.
pub trait AccessTokenCheck: Send + Sync + 'static {
    /// Checks `token` (without `Bearer `) for a vault in `tenant_id`.
    fn check<'a>(
        &'a self,
        tenant_id: &'a str,
        token: &'a str,
    ) -> BoxFuture<'a, Result<Caller, TokenRejection>>;
}

/// Real validation against the Entra authority: one `Validator` per vault tenant, each
/// accepting both Key Vault audiences and the v1 and v2 issuers of its tenant.
pub struct EntraTokenCheck {
    validators: HashMap<String, Validator>,
}

impl EntraTokenCheck {
    /// `authority` is the Entra base URL as the vault reaches it (for example
    /// `https://login.microsoftonline.com`); each tenant's keys come from
    /// `{authority}/{tenant}/v2.0/.well-known/openid-configuration`.
    pub fn new<'a>(
        authority: &str,
        tenants: impl IntoIterator<Item = &'a str>,
        http: reqwest::Client,
        clock: Clock,
    ) -> Self {
        let authority = authority.trim_end_matches('/');
        let validators = tenants
            .into_iter()
            .map(|tenant| {
                let config = ValidatorConfig::new(
                    format!("{authority}/{tenant}/v2.0/.well-known/openid-configuration"),
                    tenant,
                    VAULT_AUDIENCES.iter().map(|a| (*a).to_owned()).collect(),
                    ValidatorConfig::entra_issuers(tenant),
                );
                (
                    tenant.to_ascii_lowercase(),
                    Validator::new(config, http.clone(), clock.clone()),
                )
            })
            .collect();
        Self { validators }
    }
}

impl AccessTokenCheck for EntraTokenCheck {
    fn check<'a>(
        &'a self,
        tenant_id: &'a str,
        token: &'a str,
    ) -> BoxFuture<'a, Result<Caller, TokenRejection>> {
        Box::pin(async move {
            // Tenant ids are configured in lower case: no copy for them.
            let validator = if tenant_id.bytes().any(|b| b.is_ascii_uppercase()) {
                self.validators.get(&tenant_id.to_ascii_lowercase())
            } else {
                self.validators.get(tenant_id)
            };
            let Some(validator) = validator else {
                return Err(TokenRejection {
                    message: rejection_message(&TokenError::InvalidIssuer(None), tenant_id, token),
                });
            };
            match validator.validate(token).await {
                Ok(claims) => Ok(Caller::from_claims(&claims)),
                Err(error) => Err(TokenRejection {
                    message: rejection_message(&error, tenant_id, token),
                }),
            }
        })
    }
}

/// Key Vault's wording for a refused token. AKV10022 (audience), AKV10032 (issuer) and AKV10046
/// (unknown signing key) are seen in public traces; for the other failures no Key Vault text is
/// published, so the validator's ASP.NET-style description is sent (UNVERIFIED).
pub fn rejection_message(error: &TokenError, tenant_id: &str, token: &str) -> String {
    match error {
        TokenError::InvalidAudience(aud) => format!(
            "AKV10022: Invalid audience. Expected https://vault.azure.net, found: {}.",
            aud.as_deref().unwrap_or("(null)")
        ),
        TokenError::InvalidIssuer(iss) => format!(
            "AKV10032: Invalid issuer. Expected one of https://sts.windows.net/{tenant_id}/, found {}.",
            iss.clone()
                .or_else(|| token_claim(token, "iss"))
                .unwrap_or_else(|| "(null)".into())
        ),
        TokenError::WrongTenant => format!(
            "AKV10032: Invalid issuer. Expected one of https://sts.windows.net/{tenant_id}/, found {}.",
            token_claim(token, "iss").unwrap_or_else(|| "(null)".into())
        ),
        TokenError::SignatureKeyNotFound | TokenError::KeysUnavailable => format!(
            "AKV10046: Unable to resolve the key used for signature validation. EncodedJwtHeader: '{}'.",
            token.split('.').next().unwrap_or_default()
        ),
        other => format!("{}.", other.description()),
    }
}

/// An unverified claim read from the token payload, for error texts only.
fn token_claim(token: &str, claim: &str) -> Option<String> {
    let payload = token.split('.').nth(1)?;
    let bytes = URL_SAFE_NO_PAD.decode(payload).ok()?;
    let value: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    value.get(claim)?.as_str().map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caller_prints_like_key_vault() {
        let c = Caller {
            app_id: "a".into(),
            object_id: "o".into(),
            issuer: "https://sts.windows.net/t/".into(),
        };
        assert_eq!(
            c.to_string(),
            "appid=a;oid=o;iss=https://sts.windows.net/t/"
        );
    }

    #[test]
    fn audience_and_issuer_rejections_use_akv_codes() {
        let m = rejection_message(
            &TokenError::InvalidAudience(Some("https://management.azure.com/".into())),
            "t",
            "x.y.z",
        );
        // Text as quoted in public traces of the real service.
        assert_eq!(
            m,
            "AKV10022: Invalid audience. Expected https://vault.azure.net, found: https://management.azure.com/."
        );
        let m = rejection_message(
            &TokenError::InvalidIssuer(Some("https://sts.windows.net/other/".into())),
            "t",
            "x.y.z",
        );
        assert_eq!(
            m,
            "AKV10032: Invalid issuer. Expected one of https://sts.windows.net/t/, found https://sts.windows.net/other/."
        );
        let m = rejection_message(&TokenError::SignatureKeyNotFound, "t", "hdr.p.s");
        assert!(m.starts_with("AKV10046: ") && m.contains("'hdr'"), "{m}");
    }
}
