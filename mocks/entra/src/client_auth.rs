//! Client authentication at the token endpoint: `client_secret` (body or HTTP Basic) or a
//! certificate-signed `client_assertion` (MicrosoftDocs/entra-docs:
//! docs/identity-platform/certificate-credentials.md).

use aws_lc_rs::signature::{self, UnparsedPublicKey};
use axum::http::{HeaderMap, header};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use subtle::ConstantTimeEq;
use time::OffsetDateTime;

use crate::directory::{App, Certificate, Directory};
use crate::error::EntraError;
use crate::request::Form;
use crate::tokens::{ClientAuth, Jwt};

const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// Tolerance for the assertion's `nbf`/`exp` against the server clock.
const ASSERTION_SKEW: i64 = 300;

/// The credential a request presents.
pub(crate) enum Credential {
    None,
    Secret(String),
    Assertion(String),
}

/// The client id and credential from the body or an `Authorization: Basic` header.
pub(crate) fn presented(form: &Form, headers: &HeaderMap) -> (Option<String>, Credential) {
    let basic = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Basic ")
                .or_else(|| v.strip_prefix("basic "))
        })
        .and_then(|b64| STANDARD.decode(b64.trim()).ok())
        .and_then(|raw| String::from_utf8(raw).ok())
        .and_then(|pair| {
            let (id, secret) = pair.split_once(':')?;
            let decode = |s: &str| {
                url::form_urlencoded::parse(format!("x={s}").as_bytes())
                    .next()
                    .map(|(_, v)| v.into_owned())
            };
            Some((decode(id)?, decode(secret)?))
        });
    let client_id = form
        .get("client_id")
        .map(str::to_string)
        .or_else(|| basic.as_ref().map(|(id, _)| id.clone()));
    let credential = if let Some(assertion) = form.get("client_assertion") {
        if form.get("client_assertion_type") == Some(ASSERTION_TYPE) {
            Credential::Assertion(assertion.to_string())
        } else {
            Credential::None
        }
    } else if let Some(secret) = form.get("client_secret") {
        Credential::Secret(secret.to_string())
    } else if let Some((_, secret)) = basic {
        Credential::Secret(secret)
    } else {
        Credential::None
    };
    (client_id, credential)
}

/// Checks `credential` for `app`. `required` is false for public clients, which may send
/// none. `token_endpoint_matches` decides whether an assertion's `aud` names this endpoint.
pub(crate) fn authenticate(
    app: &App,
    credential: &Credential,
    required: bool,
    now: i64,
    token_endpoint_matches: impl Fn(&str) -> bool,
) -> Result<ClientAuth, EntraError> {
    match credential {
        Credential::None if required => Err(EntraError::MissingClientCredential),
        Credential::None => Ok(ClientAuth::Public),
        Credential::Secret(secret) => check_secret(app, secret, now).map(|()| ClientAuth::Secret),
        Credential::Assertion(jwt) => {
            check_assertion(app, jwt, now, token_endpoint_matches).map(|()| ClientAuth::Certificate)
        }
    }
}

fn check_secret(app: &App, secret: &str, now: i64) -> Result<(), EntraError> {
    let mut matched_expired = false;
    for s in &app.secrets {
        if !bool::from(s.value.as_bytes().ct_eq(secret.as_bytes())) {
            continue;
        }
        if s.end <= now {
            matched_expired = true;
        } else if s.start.is_none_or(|start| start <= now) {
            return Ok(());
        }
    }
    if matched_expired {
        Err(EntraError::ExpiredClientSecret {
            app_id: app.app_id().to_string(),
        })
    } else {
        Err(EntraError::InvalidClientSecret {
            app_id: app.app_id().to_string(),
        })
    }
}

fn check_assertion(
    app: &App,
    token: &str,
    now: i64,
    token_endpoint_matches: impl Fn(&str) -> bool,
) -> Result<(), EntraError> {
    let jwt = Jwt::parse(token).ok_or_else(|| EntraError::ClientAssertionClaims {
        reason: "the client assertion is not a well-formed JWT".into(),
    })?;
    let x5t = jwt
        .header_str("x5t")
        .and_then(|t| URL_SAFE_NO_PAD.decode(t.trim_end_matches('=')).ok());
    let x5t256 = jwt
        .header_str("x5t#S256")
        .and_then(|t| URL_SAFE_NO_PAD.decode(t.trim_end_matches('=')).ok());
    let thumbprint_hex = x5t256
        .as_ref()
        .or(x5t.as_ref())
        .map(|t| t.iter().map(|b| format!("{b:02X}")).collect::<String>())
        .unwrap_or_default();
    let candidates: Vec<&Certificate> = app
        .certificates
        .iter()
        .filter(|c| c.end > now)
        .filter(|c| match (&x5t256, &x5t) {
            (Some(t), _) => t.as_slice() == c.sha256.as_slice(),
            (None, Some(t)) => t.as_slice() == c.sha1.as_slice(),
            (None, None) => true,
        })
        .collect();
    if candidates.is_empty() {
        return Err(EntraError::ClientAssertionSignature {
            reason: "The key was not found.".into(),
            thumbprint: thumbprint_hex,
        });
    }
    let algorithm: &'static dyn signature::VerificationAlgorithm = match jwt.header_str("alg") {
        Some("RS256") => &signature::RSA_PKCS1_2048_8192_SHA256,
        Some("PS256") => &signature::RSA_PSS_2048_8192_SHA256,
        other => {
            return Err(EntraError::ClientAssertionSignature {
                reason: format!(
                    "The algorithm {} is not supported.",
                    other.unwrap_or("(none)")
                ),
                thumbprint: thumbprint_hex,
            });
        }
    };
    let verified = candidates.iter().any(|c| {
        UnparsedPublicKey::new(algorithm, &c.public_key)
            .verify(jwt.signing_input.as_bytes(), &jwt.signature)
            .is_ok()
    });
    if !verified {
        return Err(EntraError::ClientAssertionSignature {
            reason: "Key was found, but use of the key to verify the signature failed.".into(),
            thumbprint: thumbprint_hex,
        });
    }
    let client_id = app.app_id();
    for claim in ["iss", "sub"] {
        if !jwt
            .claim_str(claim)
            .is_some_and(|v| v.eq_ignore_ascii_case(client_id))
        {
            return Err(EntraError::ClientAssertionClaims {
                reason: format!("the '{claim}' claim must be the client id '{client_id}'"),
            });
        }
    }
    let aud = jwt.claim_str("aud").unwrap_or_default();
    if !token_endpoint_matches(aud) {
        return Err(EntraError::ClientAssertionClaims {
            reason: format!("the audience '{aud}' is not this tenant's token endpoint"),
        });
    }
    let exp = jwt.claim_i64("exp");
    let nbf = jwt.claim_i64("nbf").unwrap_or(0);
    if exp.is_none_or(|exp| exp + ASSERTION_SKEW < now) || nbf - ASSERTION_SKEW > now {
        let iso = |t: i64| {
            OffsetDateTime::from_unix_timestamp(t)
                .ok()
                .and_then(|d| {
                    d.format(&time::format_description::well_known::Rfc3339)
                        .ok()
                })
                .unwrap_or_else(|| t.to_string())
        };
        return Err(EntraError::ClientAssertionTime {
            now: iso(now),
            nbf: iso(nbf),
            exp: iso(exp.unwrap_or(0)),
        });
    }
    Ok(())
}

/// Whether `aud` is a token endpoint of this tenant (v1 or v2 path, tenant id, domain or the
/// alias used in the request) on one of `hosts`.
pub(crate) fn is_token_endpoint(
    dir: &Directory,
    path_tenant: &str,
    hosts: &[String],
    aud: &str,
) -> bool {
    let Ok(url) = url::Url::parse(aud) else {
        return false;
    };
    let host = match (url.host_str(), url.port()) {
        (Some(h), Some(p)) => format!("{h}:{p}"),
        (Some(h), None) => h.to_string(),
        _ => return false,
    };
    if !hosts.iter().any(|h| h.eq_ignore_ascii_case(&host)) {
        return false;
    }
    let path = url.path().trim_end_matches('/');
    let Some((tenant, rest)) = path.trim_start_matches('/').split_once('/') else {
        return false;
    };
    let tenant_ok = [dir.tenant_id.as_str(), dir.domain.as_str(), path_tenant]
        .iter()
        .any(|t| t.eq_ignore_ascii_case(tenant));
    tenant_ok && (rest == "oauth2/v2.0/token" || rest == "oauth2/token")
}
