//! A token-signing test authority: one RSA key, published as Entra publishes its keys, signing
//! JWTs with the claims a test gives.

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

/// An RSA signing key under a `kid`.
#[derive(Clone)]
pub struct TokenAuthority {
    pub kid: String,
    encoding: EncodingKey,
    /// The key's JWK, shaped like Entra's entries: no `alg`, `x5t` = `kid`.
    pub jwk: Value,
    /// The public key in PEM (the "secret" of the HS256 key-confusion attack).
    pub public_pem: String,
    /// The private key in PEM, for tools outside the process.
    pub private_pem: String,
}

impl TokenAuthority {
    /// A fresh 2048-bit RSA key named `kid`.
    pub fn new(kid: &str) -> Self {
        let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256).expect("RSA key");
        Self::with_key(kid, &pair)
    }

    /// An authority over an existing RSA key in PKCS#8 PEM (e.g. a running Entra's signing key,
    /// to forge tokens around it).
    pub fn from_pem(kid: &str, private_pem: &str) -> Self {
        let pair = rcgen::KeyPair::from_pem(private_pem).expect("PKCS#8 PEM");
        Self::with_key(kid, &pair)
    }

    fn with_key(kid: &str, pair: &rcgen::KeyPair) -> Self {
        let private_pem = pair.serialize_pem();
        let public_pem = pair.public_key_pem();
        let encoding = EncodingKey::from_rsa_pem(private_pem.as_bytes()).expect("RSA PEM");
        let jwk = jsonwebtoken::jwk::Jwk::from_encoding_key(&encoding, Algorithm::RS256)
            .expect("RSA JWK");
        let jwk = serde_json::to_value(&jwk).expect("JWK JSON");
        Self {
            kid: kid.to_owned(),
            encoding,
            jwk: json!({"kty": "RSA", "use": "sig", "kid": kid, "x5t": kid,
                        "n": jwk["n"], "e": jwk["e"]}),
            public_pem,
            private_pem,
        }
    }

    /// A JWKS document with this key only.
    pub fn jwks(&self) -> Value {
        json!({ "keys": [self.jwk.clone()] })
    }

    /// `claims` signed RS256 with the `kid` header.
    pub fn sign(&self, claims: &Value) -> String {
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(self.kid.clone());
        self.sign_with(&header, claims)
    }

    /// `claims` signed under a header the test built (a different `kid`, `x5t`, `typ`, ...).
    pub fn sign_with(&self, header: &Header, claims: &Value) -> String {
        jsonwebtoken::encode(header, claims, &self.encoding).expect("JWT signing")
    }

    /// The signing key itself, for attack kits that forge around it.
    pub fn encoding_key(&self) -> EncodingKey {
        self.encoding.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A token the authority signs verifies with the key its JWKS publishes, carries the kid,
    /// and does not verify with another authority's key.
    #[test]
    fn tokens_verify_with_the_published_key_only() {
        let authority = TokenAuthority::new("kid-1");
        let token = authority.sign(&json!({"sub": "alice", "exp": 4_102_444_800_i64}));
        let header = jsonwebtoken::decode_header(&token).unwrap();
        assert_eq!(header.kid.as_deref(), Some("kid-1"));
        let jwks: jsonwebtoken::jwk::JwkSet = serde_json::from_value(authority.jwks()).unwrap();
        let key = jsonwebtoken::DecodingKey::from_jwk(&jwks.keys[0]).unwrap();
        let mut validation = jsonwebtoken::Validation::new(Algorithm::RS256);
        validation.validate_aud = false;
        let data = jsonwebtoken::decode::<Value>(&token, &key, &validation).unwrap();
        assert_eq!(data.claims["sub"], "alice");
        let other = TokenAuthority::new("kid-2");
        let jwks: jsonwebtoken::jwk::JwkSet = serde_json::from_value(other.jwks()).unwrap();
        let key = jsonwebtoken::DecodingKey::from_jwk(&jwks.keys[0]).unwrap();
        assert!(jsonwebtoken::decode::<Value>(&token, &key, &validation).is_err());
        // The same key loaded from its PEM signs tokens the first JWKS verifies.
        let again = TokenAuthority::from_pem("kid-1", &authority.private_pem);
        assert_eq!(again.jwks(), authority.jwks());
        assert_eq!(again.public_pem, authority.public_pem);
    }
}
