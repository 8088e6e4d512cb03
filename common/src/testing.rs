//! Test support shared by the service crates' integration tests; not part of any service.
//!
//! - [`skip`]: the one way a test skips for a missing capability, so CI can forbid it.
//! - [`jwt_attacks`]: one list of hostile `Authorization` headers, applied to every resource
//!   server (the search API and the vault), each with the outcome a correct validator gives.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use serde_json::{Value, json};

use crate::token::TokenError;

/// The variable naming capabilities a run must have: a comma- or space-separated list of
/// `root`, `python`, `port443`, `docker`, `chromium`, or `all`.
pub const REQUIRE_VAR: &str = "PPVNET_REQUIRE";

/// Whether `PPVNET_REQUIRE` (as given) demands `capability`.
fn demanded(require: Option<&str>, capability: &str) -> bool {
    require.is_some_and(|list| {
        list.split([',', ' '])
            .map(str::trim)
            .any(|c| c.eq_ignore_ascii_case(capability) || c.eq_ignore_ascii_case("all"))
    })
}

/// Call where a test would skip because `capability` is missing. Prints the `SKIP` line and
/// returns, so the caller returns early; but when `PPVNET_REQUIRE` demands the capability the
/// test fails with `reason` instead, so a CI job that provides it cannot pass by skipping.
pub fn skip(capability: &str, reason: &str) {
    let require = std::env::var(REQUIRE_VAR).ok();
    if demanded(require.as_deref(), capability) {
        panic!("{REQUIRE_VAR} requires '{capability}', but it is missing: {reason}");
    }
    eprintln!("SKIP ({capability}): {reason}");
}

/// What a correct resource server does with an attack.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Expect {
    /// Served: the variation is harmless (as in ASP.NET's `JwtBearerHandler`).
    Accepted,
    /// 401 with this validation error.
    Refused(TokenError),
    /// 401 `invalid_request`: more than one `Authorization` header.
    Ambiguous,
    /// 401 without an error code: no bearer credential was presented.
    NoToken,
}

/// One hostile request: its `Authorization` headers (in order), an optional query string to
/// append, and the expected outcome.
#[derive(Clone, Debug)]
pub struct Attack {
    pub name: &'static str,
    pub authorization: Vec<String>,
    pub query: Option<String>,
    pub expect: Expect,
}

/// What the attacks are built from.
pub struct AttackKit {
    /// The authority's real signing key and its `kid`.
    pub key: EncodingKey,
    pub kid: String,
    /// The authority's public key in PEM, the "secret" of the HS256 confusion attack.
    pub public_pem: String,
    /// A key the attacker holds.
    pub attacker: EncodingKey,
    /// Claims of a token the server accepts.
    pub claims: Value,
    /// The server's clock, unix seconds.
    pub now: i64,
}

fn b64(value: &Value) -> String {
    URL_SAFE_NO_PAD.encode(value.to_string())
}

fn header_with(alg: Algorithm, kid: Option<&str>) -> Header {
    let mut header = Header::new(alg);
    header.kid = kid.map(str::to_owned);
    header
}

impl AttackKit {
    fn sign_with(&self, header: &Header, claims: &Value, key: &EncodingKey) -> String {
        encode(header, claims, key).unwrap_or_default()
    }

    fn signed(&self, claims: &Value) -> String {
        self.sign_with(
            &header_with(Algorithm::RS256, Some(&self.kid)),
            claims,
            &self.key,
        )
    }

    /// The valid claims with `change` applied.
    fn claims_with(&self, change: impl FnOnce(&mut serde_json::Map<String, Value>)) -> Value {
        let mut claims = self.claims.clone();
        if let Some(map) = claims.as_object_mut() {
            change(map);
        }
        claims
    }

    /// A token with a hand-written JOSE header, signed by the real key over its own input (so
    /// only the header is hostile).
    fn raw_header(&self, header: &Value) -> String {
        let input = format!("{}.{}", b64(header), b64(&self.claims));
        let sig = self.signed(&self.claims);
        let signature = sig.rsplit('.').next().unwrap_or_default();
        format!("{input}.{signature}")
    }
}

fn bearer(token: &str) -> Vec<String> {
    vec![format!("Bearer {token}")]
}

fn attack(name: &'static str, authorization: Vec<String>, expect: Expect) -> Attack {
    Attack {
        name,
        authorization,
        query: None,
        expect,
    }
}

/// The attacks, each with its expected outcome. `kit.claims` must carry `aud`, `iss`, `tid`,
/// `exp` and `nbf` for the claim mutations to mean anything.
pub fn jwt_attacks(kit: &AttackKit) -> Vec<Attack> {
    let mut attacks = header_attacks(kit);
    attacks.extend(signature_attacks(kit));
    attacks.extend(claim_attacks(kit));
    attacks.extend(transport_attacks(kit));
    attacks
}

fn header_attacks(kit: &AttackKit) -> Vec<Attack> {
    use Expect::Refused;
    let claims = &kit.claims;
    let unsigned = |alg: &str| {
        format!(
            "{}.{}.",
            b64(&json!({"alg": alg, "typ": "JWT"})),
            b64(claims)
        )
    };
    let hs256_public = kit.sign_with(
        &header_with(Algorithm::HS256, Some(&kit.kid)),
        claims,
        &EncodingKey::from_secret(kit.public_pem.as_bytes()),
    );
    let other_alg = |alg| kit.sign_with(&header_with(alg, Some(&kit.kid)), claims, &kit.key);
    let attacker_kid = |kid: &str| {
        let mut header = header_with(Algorithm::RS256, Some(kid));
        header.jku = Some("http://127.0.0.1:9/attacker/keys".into());
        header.x5u = Some("http://127.0.0.1:9/attacker/cert.pem".into());
        kit.sign_with(&header, claims, &kit.attacker)
    };
    let kid_only = |kid: &str| kit.raw_header(&json!({"alg": "RS256", "typ": "JWT", "kid": kid}));
    vec![
        attack(
            "alg none",
            bearer(&unsigned("none")),
            Refused(TokenError::UnsupportedAlgorithm),
        ),
        attack(
            "alg None",
            bearer(&unsigned("None")),
            Refused(TokenError::UnsupportedAlgorithm),
        ),
        attack(
            "HS256 keyed with the public key",
            bearer(&hs256_public),
            Refused(TokenError::UnsupportedAlgorithm),
        ),
        attack(
            "RS512 with the real key",
            bearer(&other_alg(Algorithm::RS512)),
            Refused(TokenError::UnsupportedAlgorithm),
        ),
        attack(
            "PS256 with the real key",
            bearer(&other_alg(Algorithm::PS256)),
            Refused(TokenError::UnsupportedAlgorithm),
        ),
        attack(
            "unknown kid",
            bearer(&kid_only("no-such-key")),
            Refused(TokenError::SignatureKeyNotFound),
        ),
        attack(
            "no kid",
            bearer(&kit.raw_header(&json!({"alg": "RS256", "typ": "JWT"}))),
            Refused(TokenError::SignatureKeyNotFound),
        ),
        attack(
            "kid path traversal",
            bearer(&kid_only("../../../../../../etc/passwd")),
            Refused(TokenError::SignatureKeyNotFound),
        ),
        attack(
            "kid SQL injection",
            bearer(&kid_only("' OR '1'='1' --")),
            Refused(TokenError::SignatureKeyNotFound),
        ),
        attack(
            "jku and x5u pointing at the attacker's keys",
            bearer(&attacker_kid("attacker-key")),
            Refused(TokenError::SignatureKeyNotFound),
        ),
        attack(
            "jku with the real kid, signed by the attacker",
            bearer(&attacker_kid(&kit.kid)),
            Refused(TokenError::InvalidSignature),
        ),
        attack(
            "crit header",
            bearer(&kit.raw_header(
                &json!({"alg": "RS256", "typ": "JWT", "kid": kit.kid, "crit": ["exp"]}),
            )),
            Refused(TokenError::Malformed),
        ),
        attack(
            "header is not JSON",
            bearer(&format!(
                "{}.{}.sig",
                URL_SAFE_NO_PAD.encode("not json"),
                b64(claims)
            )),
            Refused(TokenError::Malformed),
        ),
        attack(
            "header is a JSON array",
            bearer(&format!("{}.{}.sig", b64(&json!(["RS256"])), b64(claims))),
            Refused(TokenError::Malformed),
        ),
    ]
}

fn signature_attacks(kit: &AttackKit) -> Vec<Attack> {
    use Expect::Refused;
    let valid = kit.signed(&kit.claims);
    let parts: Vec<&str> = valid.split('.').collect();
    let (header, payload, signature) = (parts[0], parts[1], parts[2]);
    let forged_payload = b64(&kit.claims_with(|c| {
        c.insert("oid".into(), json!("00000000-0000-0000-0000-000000000000"));
        c.insert("roles".into(), json!(["Cases.Read.All"]));
    }));
    let mut flipped: Vec<char> = signature.chars().collect();
    let middle = flipped.len() / 2;
    flipped[middle] = if flipped[middle] == 'A' { 'B' } else { 'A' };
    let flipped: String = flipped.into_iter().collect();
    let attacker_signed = kit.sign_with(
        &header_with(Algorithm::RS256, Some(&kit.kid)),
        &kit.claims,
        &kit.attacker,
    );
    let hmac_under_rs256 = {
        let hs = kit.sign_with(
            &header_with(Algorithm::HS256, Some(&kit.kid)),
            &kit.claims,
            &EncodingKey::from_secret(kit.public_pem.as_bytes()),
        );
        format!(
            "{header}.{payload}.{}",
            hs.rsplit('.').next().unwrap_or_default()
        )
    };
    vec![
        attack(
            "tampered payload",
            bearer(&format!("{header}.{forged_payload}.{signature}")),
            Refused(TokenError::InvalidSignature),
        ),
        attack(
            "tampered signature",
            bearer(&format!("{header}.{payload}.{flipped}")),
            Refused(TokenError::InvalidSignature),
        ),
        attack(
            "signature stripped",
            bearer(&format!("{header}.{payload}.")),
            Refused(TokenError::InvalidSignature),
        ),
        attack(
            "signed by the attacker under the real kid",
            bearer(&attacker_signed),
            Refused(TokenError::InvalidSignature),
        ),
        attack(
            "HMAC signature under an RS256 header",
            bearer(&hmac_under_rs256),
            Refused(TokenError::InvalidSignature),
        ),
        attack(
            "signature is not base64url",
            bearer(&format!("{header}.{payload}.%%%%")),
            Refused(TokenError::Malformed),
        ),
        attack(
            "not base64 at all",
            bearer("!!!!.????.****"),
            Refused(TokenError::Malformed),
        ),
        attack(
            "two parts",
            bearer(&format!("{header}.{payload}")),
            Refused(TokenError::Malformed),
        ),
        attack(
            "four parts",
            bearer(&format!("{valid}.{signature}")),
            Refused(TokenError::Malformed),
        ),
        attack(
            "five parts (JWE shape)",
            bearer(&format!(
                "{header}.{payload}.{payload}.{payload}.{signature}"
            )),
            Refused(TokenError::Malformed),
        ),
    ]
}

fn claim_attacks(kit: &AttackKit) -> Vec<Attack> {
    use Expect::{Accepted, Refused};
    let now = kit.now;
    let with = |change: &dyn Fn(&mut serde_json::Map<String, Value>)| {
        bearer(&kit.signed(&kit.claims_with(change)))
    };
    let str_claim = |name: &str| kit.claims[name].as_str().unwrap_or_default().to_owned();
    let iss = str_claim("iss");
    vec![
        attack(
            "valid token (control)",
            bearer(&kit.signed(&kit.claims)),
            Accepted,
        ),
        attack(
            "expired beyond the skew",
            with(&|c| {
                c.insert("exp".into(), json!(now - 301));
            }),
            Refused(TokenError::Expired(now - 301)),
        ),
        attack(
            "expired within the skew",
            with(&|c| {
                c.insert("exp".into(), json!(now - 60));
            }),
            Accepted,
        ),
        attack(
            "not yet valid",
            with(&|c| {
                c.insert("nbf".into(), json!(now + 600));
            }),
            Refused(TokenError::NotYetValid(now + 600)),
        ),
        attack(
            "no exp",
            with(&|c| {
                c.remove("exp");
            }),
            Refused(TokenError::NoExpiration),
        ),
        attack(
            "exp as a string",
            with(&|c| {
                c.insert("exp".into(), json!("9999999999"));
            }),
            Refused(TokenError::Malformed),
        ),
        attack(
            "wrong audience",
            with(&|c| {
                c.insert("aud".into(), json!("https://management.azure.com/"));
            }),
            Refused(TokenError::InvalidAudience(Some(
                "https://management.azure.com/".into(),
            ))),
        ),
        attack(
            "no audience",
            with(&|c| {
                c.remove("aud");
            }),
            Refused(TokenError::InvalidAudience(None)),
        ),
        attack(
            "wrong issuer",
            with(&|c| {
                c.insert("iss".into(), json!("https://evil.example/v2.0"));
            }),
            Refused(TokenError::InvalidIssuer(Some(
                "https://evil.example/v2.0".into(),
            ))),
        ),
        attack(
            "issuer with a trailing slash added",
            with(&|c| {
                c.insert("iss".into(), json!(format!("{iss}/")));
            }),
            Refused(TokenError::InvalidIssuer(Some(format!("{iss}/")))),
        ),
        attack(
            "another tenant",
            with(&|c| {
                c.insert("tid".into(), json!("00000000-0000-0000-0000-000000000001"));
            }),
            Refused(TokenError::WrongTenant),
        ),
        attack(
            "ID token (nonce, no client application)",
            with(&|c| {
                c.insert("nonce".into(), json!("n-0S6_WzA2Mj"));
                c.remove("azp");
                c.remove("appid");
            }),
            Refused(TokenError::NotAnAccessToken),
        ),
    ]
}

fn transport_attacks(kit: &AttackKit) -> Vec<Attack> {
    use Expect::{Accepted, Ambiguous, NoToken, Refused};
    let valid = kit.signed(&kit.claims);
    let huge = kit.signed(&kit.claims_with(|c| {
        c.insert("pad".into(), json!("A".repeat(200 * 1024)));
    }));
    vec![
        attack(
            "duplicated Authorization: valid then garbage",
            vec![format!("Bearer {valid}"), "Bearer garbage".into()],
            Ambiguous,
        ),
        attack(
            "duplicated Authorization: garbage then valid",
            vec!["Bearer garbage".into(), format!("Bearer {valid}")],
            Ambiguous,
        ),
        attack(
            "duplicated Authorization: two valid",
            vec![format!("Bearer {valid}"), format!("Bearer {valid}")],
            Ambiguous,
        ),
        attack(
            "lowercase scheme",
            vec![format!("bearer {valid}")],
            Accepted,
        ),
        attack(
            "extra spaces around the token",
            vec![format!("Bearer   {valid}  ")],
            Accepted,
        ),
        Attack {
            name: "token in the query string only",
            authorization: vec![],
            query: Some(format!("access_token={valid}")),
            expect: NoToken,
        },
        attack("Basic scheme", vec![format!("Basic {valid}")], NoToken),
        attack("scheme without a token", vec!["Bearer".into()], NoToken),
        attack(
            "oversized token",
            bearer(&huge),
            Refused(TokenError::TooLarge(huge.len())),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn require_names_capabilities_or_all() {
        assert!(demanded(Some("python"), "python"));
        assert!(demanded(Some("root, Python"), "python"));
        assert!(demanded(Some("all"), "docker"));
        assert!(!demanded(Some("root"), "python"));
        assert!(!demanded(Some(""), "python"));
        assert!(!demanded(None, "python"));
    }
}
