//! Who is calling: the bearer token checked as ARM checks it, through the shared
//! `ppvnet_common::token::Validator` (signing keys from the tenant's discovery document,
//! RS256, exact issuer, lifetime on the run clock), with ARM's audiences and ARM's errors.

use axum::http::HeaderMap;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ppvnet_common::Clock;
use ppvnet_common::token::{
    Bearer, Claims, TokenError, Validator, ValidatorConfig, request_bearer,
};

use crate::error::{ARM_AUDIENCES, ArmError};

/// The caller of a request, as ARM names it in `AuthorizationFailed`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Caller {
    pub object_id: String,
    /// What ARM prints as "the client": a user's sign-in name, else the object id (public
    /// reports show the object id twice for service principals and the UPN for users).
    pub client: String,
}

impl Caller {
    fn from_claims(claims: &Claims) -> Result<Self, ArmError> {
        // ARM refuses a token that names no principal (`oid`).
        let object_id = claims.oid().ok_or(ArmError::InvalidToken)?.to_string();
        let client = match (claims.is_app_only(), claims.username()) {
            (false, Some(upn)) => upn.to_string(),
            _ => object_id.clone(),
        };
        Ok(Self { object_id, client })
    }
}

/// Token validation for one tenant's ARM.
#[derive(Clone)]
pub struct ArmTokens {
    validator: Validator,
    tenant: String,
    clock: Clock,
}

impl ArmTokens {
    /// The validator config ARM uses: the tenant's v2 discovery document under `authority`
    /// (`https://login.microsoftonline.com`), ARM's four audiences, both Entra issuers.
    pub fn config(authority: &str, tenant: &str) -> ValidatorConfig {
        ValidatorConfig::new(
            format!(
                "{}/{tenant}/v2.0/.well-known/openid-configuration",
                authority.trim_end_matches('/')
            ),
            tenant,
            ARM_AUDIENCES.iter().map(|a| a.to_string()).collect(),
            ValidatorConfig::entra_issuers(tenant),
        )
    }

    /// `http` reaches the authority (in a landscape: from the internet side, trusting the run CA).
    pub fn new(authority: &str, tenant: &str, http: reqwest::Client, clock: Clock) -> Self {
        Self::from_validator(
            Validator::new(Self::config(authority, tenant), http, clock.clone()),
            tenant,
            clock,
        )
    }

    pub fn from_validator(validator: Validator, tenant: &str, clock: Clock) -> Self {
        Self {
            validator,
            tenant: tenant.to_string(),
            clock,
        }
    }

    /// The caller behind a request's `Authorization` header.
    pub async fn caller(&self, headers: &HeaderMap) -> Result<Caller, ArmError> {
        let token = match request_bearer(headers) {
            Bearer::Token(token) => token,
            Bearer::Ambiguous => return Err(ArmError::InvalidAuthorizationHeader),
            Bearer::Missing if headers.contains_key(axum::http::header::AUTHORIZATION) => {
                return Err(ArmError::InvalidAuthorizationHeader);
            }
            Bearer::Missing => return Err(ArmError::MissingAuthorization),
        };
        match self.validator.validate(token).await {
            Ok(claims) => Caller::from_claims(&claims),
            Err(e) => Err(self.refusal(&e, token)),
        }
    }

    fn refusal(&self, error: &TokenError, token: &str) -> ArmError {
        match error {
            TokenError::InvalidAudience(aud) => ArmError::WrongAudience {
                audience: aud.clone().unwrap_or_default(),
            },
            TokenError::Expired(exp) => ArmError::Expired {
                expired: dotnet_time(*exp),
                now: dotnet_time(self.clock.unix()),
            },
            TokenError::InvalidIssuer(_) | TokenError::WrongTenant => ArmError::WrongTenant {
                issuer: unverified_claim(token, "iss").unwrap_or_default(),
                tenant: self.tenant.clone(),
            },
            _ => ArmError::InvalidToken,
        }
    }
}

/// .NET's `en-US` general date/time (`6/15/2026 8:22:51 AM`), the form of ARM's expiry texts.
fn dotnet_time(unix: i64) -> String {
    let Ok(t) = time::OffsetDateTime::from_unix_timestamp(unix) else {
        return unix.to_string();
    };
    let (hour, half) = match t.hour() {
        0 => (12, "AM"),
        h @ 1..=11 => (h, "AM"),
        12 => (12, "PM"),
        h => (h - 12, "PM"),
    };
    format!(
        "{}/{}/{} {hour}:{:02}:{:02} {half}",
        u8::from(t.month()),
        t.day(),
        t.year(),
        t.minute(),
        t.second()
    )
}

/// A claim read without verification, for an error text only.
fn unverified_claim(token: &str, claim: &str) -> Option<String> {
    let payload = token.split('.').nth(1)?;
    let bytes = URL_SAFE_NO_PAD.decode(payload).ok()?;
    let value: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    value.get(claim)?.as_str().map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_times_print_as_dotnet_does() {
        // 2026-06-15 08:22:51 UTC, the example of microsoft/foundry-dev-tools#461.
        assert_eq!(dotnet_time(1_781_511_771), "6/15/2026 8:22:51 AM");
        assert_eq!(dotnet_time(1_781_555_400), "6/15/2026 8:30:00 PM");
        assert_eq!(dotnet_time(0), "1/1/1970 12:00:00 AM");
    }
}
