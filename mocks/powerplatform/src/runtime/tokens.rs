//! Requests to Entra's token endpoint: client credentials (Dataverse reading Key Vault, service
//! principal connections), authorization-code redemption and refresh (user connections).
//!
//! These calls are Microsoft's cloud-side traffic: they leave from the `internet` host, never
//! from an environment's delegated subnet.

use std::time::Duration;

use serde::Deserialize;

use super::egress::{SendFailure, classify};

/// How long a token request may take (UNVERIFIED: the real runtime's value is not published).
pub const TOKEN_TIMEOUT: Duration = Duration::from_secs(30);
/// Token answers larger than this are refused (an Entra answer is a few KB).
const MAX_TOKEN_REPLY: usize = 256 * 1024;

/// The endpoint generation a token request uses: v1 takes `resource=`, v2 takes `scope=`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EndpointVersion {
    V1,
    V2,
}

/// `{authority}/{tenant}/oauth2/token` (v1) or `…/oauth2/v2.0/token` (v2).
pub fn token_url(authority: &str, tenant: &str, endpoint: EndpointVersion) -> String {
    match endpoint {
        EndpointVersion::V1 => format!("{authority}/{tenant}/oauth2/token"),
        EndpointVersion::V2 => format!("{authority}/{tenant}/oauth2/v2.0/token"),
    }
}

/// Tokens of a successful answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenSet {
    pub access_token: String,
    pub refresh_token: Option<String>,
    /// Unix seconds (run clock).
    pub expires_at: i64,
    /// The ID token of a sign-in that asked for `openid` (the case-search app's).
    pub id_token: Option<String>,
}

/// Why no token was issued.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TokenFailure {
    /// Entra answered with an OAuth error (`error`, `error_description` with its AADSTS code).
    #[error("{description}")]
    Entra {
        status: u16,
        error: String,
        description: String,
    },
    #[error("the token endpoint {url} could not be reached: {}", .failure.describe())]
    Transport { url: String, failure: SendFailure },
    #[error("the token endpoint {url} answered {status} without a usable token: {detail}")]
    Malformed {
        url: String,
        status: u16,
        detail: String,
    },
}

impl TokenFailure {
    /// The AADSTS code of an Entra error (`AADSTS50173: …` → 50173).
    pub fn aadsts(&self) -> Option<u64> {
        let TokenFailure::Entra { description, .. } = self else {
            return None;
        };
        let rest = description.strip_prefix("AADSTS")?;
        let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
        digits.parse().ok()
    }

    /// The first line of the description: Entra appends trace and correlation ids after `\r\n`.
    pub fn summary(&self) -> String {
        match self {
            TokenFailure::Entra { description, .. } => description
                .split(['\r', '\n'])
                .next()
                .unwrap_or_default()
                .to_owned(),
            other => other.to_string(),
        }
    }
}

#[derive(Deserialize)]
struct TokenReply {
    access_token: Option<String>,
    refresh_token: Option<String>,
    id_token: Option<String>,
    /// v2 sends a number; v1 sends a string.
    expires_in: Option<serde_json::Value>,
    error: Option<String>,
    error_description: Option<String>,
}

/// Posts `form` to the token endpoint `url`. `now` is the run clock's Unix time, which the
/// expiry is computed from.
pub async fn request(
    client: &reqwest::Client,
    url: &str,
    form: &[(&str, &str)],
    now: i64,
) -> Result<TokenSet, TokenFailure> {
    let transport = |e: reqwest::Error| TokenFailure::Transport {
        url: url.to_owned(),
        failure: classify(&e),
    };
    let response = client
        .post(url)
        .form(form)
        .timeout(TOKEN_TIMEOUT)
        .send()
        .await
        .map_err(transport)?;
    let status = response.status().as_u16();
    let bytes = response.bytes().await.map_err(transport)?;
    let malformed = |detail: String| TokenFailure::Malformed {
        url: url.to_owned(),
        status,
        detail,
    };
    if bytes.len() > MAX_TOKEN_REPLY {
        return Err(malformed(format!("{} bytes", bytes.len())));
    }
    let reply: TokenReply =
        serde_json::from_slice(&bytes).map_err(|e| malformed(format!("not JSON ({e})")))?;
    if let Some(error) = reply.error {
        return Err(TokenFailure::Entra {
            status,
            error,
            description: reply.error_description.unwrap_or_default(),
        });
    }
    let access_token = reply
        .access_token
        .filter(|_| (200..300).contains(&status))
        .ok_or_else(|| malformed("no access_token".to_owned()))?;
    let lifetime = match reply.expires_in {
        Some(serde_json::Value::Number(n)) => n.as_i64(),
        Some(serde_json::Value::String(s)) => s.parse().ok(),
        _ => None,
    }
    .unwrap_or(3600);
    Ok(TokenSet {
        access_token,
        refresh_token: reply.refresh_token,
        expires_at: now.saturating_add(lifetime),
        id_token: reply.id_token,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aadsts_code_and_summary_come_from_the_description() {
        let f = TokenFailure::Entra {
            status: 400,
            error: "invalid_grant".into(),
            description: "AADSTS50173: The provided grant has expired.\r\nTrace ID: x".into(),
        };
        assert_eq!(f.aadsts(), Some(50173));
        assert_eq!(f.summary(), "AADSTS50173: The provided grant has expired.");
    }
}
