//! The JWT validator (`ppvnet_common::token::Validator::validate`) offline, with one fixed
//! signing key (`Validator::with_fixed_keys`).
//!
//! The first input byte picks the mode:
//! - even: the rest is the token text itself (shape, base64, JSON, header and `alg` checks; a
//!   forged signature can never pass);
//! - odd: the rest is `header JSON` `\n` `claims JSON`, which the target encodes and signs with
//!   the trusted key, so the fuzzer reaches the issuer, audience, lifetime, tenant and
//!   access-token checks behind a valid signature.
//!
//! Oracle: an accepted token must satisfy every rule, checked here independently of the
//! validator's code, and every refusal must render a `WWW-Authenticate` value HTTP can carry.
#![no_main]

use std::sync::OnceLock;

use axum::http::HeaderValue;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey};
use libfuzzer_sys::fuzz_target;
use ppvnet_common::Clock;
use ppvnet_common::token::{Claims, Validator, ValidatorConfig};
use serde_json::{Value, json};

const TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
const KID: &str = "fuzz-key";
const AUDIENCES: [&str; 2] = [
    "api://contoso-cases",
    "5e9c218b-a6be-46b5-8f6a-07731e1a4a91",
];
const SKEW_SECS: i64 = 300;

struct Fixture {
    validator: Validator,
    key: EncodingKey,
    clock: Clock,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256).expect("an RSA key");
        let key = EncodingKey::from_rsa_pem(pair.serialize_pem().as_bytes()).expect("PEM key");
        let jwk = jsonwebtoken::jwk::Jwk::from_encoding_key(&key, Algorithm::RS256).expect("JWK");
        let jwk = serde_json::to_value(&jwk).expect("JWK JSON");
        // Shaped like Entra's entries (no `alg`), plus entries the validator must skip.
        let jwks = json!({"keys": [
            {"kty": "RSA", "use": "sig", "kid": KID, "n": jwk["n"], "e": jwk["e"]},
            {"kty": "RSA", "use": "enc", "kid": "enc-key", "n": jwk["n"], "e": jwk["e"]},
            {"kty": "EC", "kid": "ec-key", "crv": "P-256"},
        ]});
        let clock = Clock::new();
        let config = ValidatorConfig::new(
            "http://metadata.invalid/never-fetched",
            TENANT,
            AUDIENCES.iter().map(|a| (*a).to_owned()).collect(),
            ValidatorConfig::entra_issuers(TENANT),
        );
        Fixture {
            validator: Validator::with_fixed_keys(config, &jwks, clock.clone()),
            key,
            clock,
        }
    })
}

/// `header.claims.signature`, signed RS256 with the trusted key whatever the header says.
fn signed(key: &EncodingKey, header: &[u8], claims: &[u8]) -> String {
    let message = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(claims)
    );
    let signature =
        jsonwebtoken::crypto::sign(message.as_bytes(), key, Algorithm::RS256).expect("signing");
    format!("{message}.{signature}")
}

/// The rules of an acceptable token, restated from the validator's documentation
/// (`common/src/token.rs`), not from its code.
/// The validator read its clock once between `before` and `after`.
fn assert_acceptable(token: &str, claims: &Claims, before: i64, after: i64) {
    let header: Value = token
        .split('.')
        .next()
        .and_then(|h| URL_SAFE_NO_PAD.decode(h).ok())
        .and_then(|b| serde_json::from_slice(&b).ok())
        .expect("an accepted token has a JSON header");
    assert_eq!(header["alg"], "RS256", "accepted alg: {header}");
    assert_eq!(header["kid"], KID, "accepted kid: {header}");
    assert!(header.get("crit").is_none(), "accepted crit: {header}");
    let raw = claims.raw();
    let issuers = ValidatorConfig::entra_issuers(TENANT);
    assert!(
        raw.get("iss")
            .and_then(Value::as_str)
            .is_some_and(|iss| issuers.iter().any(|ok| ok == iss)),
        "accepted issuer: {raw:?}"
    );
    let audiences: Vec<&str> = match raw.get("aud") {
        Some(Value::String(a)) => vec![a.as_str()],
        Some(Value::Array(list)) => list.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    assert!(
        audiences.iter().any(|a| AUDIENCES.contains(a)),
        "accepted audience: {raw:?}"
    );
    let exp = raw.get("exp").and_then(Value::as_i64);
    assert!(
        exp.is_some_and(|exp| before <= exp.saturating_add(SKEW_SECS)),
        "accepted lifetime: {raw:?}"
    );
    if let Some(nbf) = raw.get("nbf") {
        let nbf = nbf.as_i64().expect("accepted a non-integer nbf");
        assert!(
            after.saturating_add(SKEW_SECS) >= nbf,
            "accepted nbf: {raw:?}"
        );
    }
    assert!(
        raw.get("tid")
            .and_then(Value::as_str)
            .is_some_and(|t| t.eq_ignore_ascii_case(TENANT)),
        "accepted tenant: {raw:?}"
    );
    for id_token_claim in ["nonce", "at_hash", "c_hash"] {
        assert!(
            !raw.contains_key(id_token_claim),
            "accepted an ID token: {raw:?}"
        );
    }
    assert!(
        claims.app_id().is_some(),
        "accepted without azp/appid: {raw:?}"
    );
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let f = fixture();
    let token = if mode % 2 == 0 {
        match std::str::from_utf8(rest) {
            Ok(text) => text.to_owned(),
            Err(_) => return,
        }
    } else {
        let split = rest.iter().position(|&b| b == b'\n').unwrap_or(rest.len());
        let (header, claims) = rest.split_at(split);
        signed(&f.key, header, claims.get(1..).unwrap_or_default())
    };
    // The clock is read around the call, so the lifetime rules hold at the instant the
    // validator read it however the seconds tick meanwhile.
    let before = f.clock.unix();
    let result = ppvnet_fuzz::runtime().block_on(f.validator.validate(&token));
    let after = f.clock.unix();
    match result {
        Ok(claims) => assert_acceptable(&token, &claims, before, after),
        Err(e) => {
            assert!(
                HeaderValue::from_str(&e.www_authenticate()).is_ok(),
                "challenge HTTP cannot carry: {:?}",
                e.www_authenticate()
            );
        }
    }
});
