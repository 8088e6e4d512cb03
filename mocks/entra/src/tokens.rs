//! Minting access and ID tokens with Entra's claim sets, and reading JWTs that come back
//! (client assertions, OBO assertions).
//!
//! Claim sets follow `access-token-claims-reference.md` / `id-token-claims-reference.md` as
//! in MicrosoftDocs/entra-docs: docs/identity-platform/ (with `access-tokens.md` and
//! `reference-app-manifest.md`): the version follows the *resource*; `iss` is always the real Entra
//! issuer so APIs configured for production validate mock tokens unchanged; `iat`/`nbf` are
//! back-dated five minutes as Entra does.

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use rand::{Rng, RngCore};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use crate::directory::{App, Directory, User};
use crate::keys::SigningKey;

/// Entra back-dates `iat` and `nbf` by five minutes to absorb clock skew.
const BACKDATE_SECS: i64 = 300;
/// App-only tokens: `expires_in` 3599 (recorded client-credentials reply).
pub(crate) const APP_TOKEN_LIFETIME: i64 = 3599;
/// ID tokens live one hour.
const ID_TOKEN_LIFETIME: i64 = 3600;

pub(crate) fn v1_issuer(tid: &str) -> String {
    format!("https://sts.windows.net/{tid}/")
}

pub(crate) fn v2_issuer(tid: &str) -> String {
    format!("https://login.microsoftonline.com/{tid}/v2.0")
}

/// How the client proved its identity: `appidacr`/`azpacr`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ClientAuth {
    Public,
    Secret,
    Certificate,
}

impl ClientAuth {
    fn acr(self) -> &'static str {
        match self {
            ClientAuth::Public => "0",
            ClientAuth::Secret => "1",
            ClientAuth::Certificate => "2",
        }
    }
}

/// The signed-in user behind a delegated token.
pub(crate) struct UserContext<'a> {
    pub user: &'a User,
    pub ip: Option<String>,
}

/// What one access token says.
pub(crate) struct AccessTokenSpec<'a> {
    pub resource: &'a App,
    /// `aud` of a v1 token: the resource as the client named it.
    pub requested_as: &'a str,
    pub client: &'a App,
    pub client_auth: ClientAuth,
    pub user: Option<&'a UserContext<'a>>,
    pub scp: &'a [String],
    pub roles: &'a [String],
}

pub(crate) struct Minted {
    pub token: String,
    pub expires_in: i64,
    pub expires_on: i64,
    pub not_before: i64,
}

/// Signs tokens for one request with the current signing key.
pub(crate) struct Minter<'a> {
    pub dir: &'a Directory,
    pub key: Arc<SigningKey>,
    pub now: i64,
}

impl Minter<'_> {
    pub fn access_token(&self, spec: &AccessTokenSpec) -> Minted {
        let tid = &self.dir.tenant_id;
        let v2 = spec.resource.wants_v2_tokens();
        let expires_in = match spec.user {
            // "Default lifetime is a random 60–90 minutes" (entra-docs
            // `access-token-claims-reference.md`).
            Some(_) => rand::rng().random_range(3600..5400),
            None => APP_TOKEN_LIFETIME,
        };
        let iat = self.now - BACKDATE_SECS;
        let exp = self.now + expires_in;
        let mut c = Map::new();
        if v2 {
            c.insert("aud".into(), json!(spec.resource.app_id()));
            c.insert("iss".into(), json!(v2_issuer(tid)));
        } else {
            c.insert("aud".into(), json!(spec.requested_as));
            c.insert("iss".into(), json!(v1_issuer(tid)));
        }
        c.insert("iat".into(), json!(iat));
        c.insert("nbf".into(), json!(iat));
        c.insert("exp".into(), json!(exp));
        c.insert("aio".into(), json!(opaque(48)));
        if v2 {
            c.insert("azp".into(), json!(spec.client.app_id()));
            c.insert("azpacr".into(), json!(spec.client_auth.acr()));
        } else {
            c.insert("appid".into(), json!(spec.client.app_id()));
            c.insert("appidacr".into(), json!(spec.client_auth.acr()));
        }
        c.insert("rh".into(), json!(self.rh(spec.resource)));
        c.insert("tid".into(), json!(tid));
        c.insert("uti".into(), json!(uti()));
        c.insert("ver".into(), json!(if v2 { "2.0" } else { "1.0" }));
        if !spec.roles.is_empty() {
            c.insert("roles".into(), json!(spec.roles));
        }
        match spec.user {
            None => {
                let sp = &spec.client.service_principal_id;
                c.insert("oid".into(), json!(sp));
                c.insert("sub".into(), json!(sp));
                if !v2 {
                    c.insert("idp".into(), json!(v1_issuer(tid)));
                }
            }
            Some(ctx) => {
                let u = ctx.user;
                c.insert("oid".into(), json!(u.id));
                c.insert(
                    "sub".into(),
                    json!(pairwise_sub(tid, spec.client.app_id(), &u.id)),
                );
                c.insert("name".into(), json!(u.display_name));
                c.insert("scp".into(), json!(spec.scp.join(" ")));
                if v2 {
                    c.insert("preferred_username".into(), json!(u.upn));
                } else {
                    c.insert("unique_name".into(), json!(u.upn));
                    c.insert("upn".into(), json!(u.upn));
                    c.insert("acr".into(), json!("1"));
                    c.insert("amr".into(), json!(["pwd"]));
                    if let Some(g) = &u.given_name {
                        c.insert("given_name".into(), json!(g));
                    }
                    if let Some(s) = &u.surname {
                        c.insert("family_name".into(), json!(s));
                    }
                    if let Some(ip) = &ctx.ip {
                        c.insert("ipaddr".into(), json!(ip));
                    }
                }
                if group_claims(spec.resource) && !u.groups.is_empty() {
                    c.insert("groups".into(), json!(u.groups));
                }
            }
        }
        Minted {
            token: self.sign(!v2, &Value::Object(c)),
            expires_in,
            expires_on: exp,
            not_before: iat,
        }
    }

    /// A v2.0 ID token for `client`. `code` is set when the token comes from `/authorize`
    /// together with a code (hybrid flow), which adds `c_hash`.
    pub fn id_token(
        &self,
        client: &App,
        ctx: &UserContext,
        nonce: Option<&str>,
        with_profile: bool,
        code: Option<&str>,
    ) -> String {
        let tid = &self.dir.tenant_id;
        let u = ctx.user;
        let iat = self.now - BACKDATE_SECS;
        let mut c = Map::new();
        c.insert("aud".into(), json!(client.app_id()));
        c.insert("iss".into(), json!(v2_issuer(tid)));
        c.insert("iat".into(), json!(iat));
        c.insert("nbf".into(), json!(iat));
        c.insert("exp".into(), json!(self.now + ID_TOKEN_LIFETIME));
        c.insert("aio".into(), json!(opaque(48)));
        c.insert("oid".into(), json!(u.id));
        c.insert("rh".into(), json!(self.rh(client)));
        c.insert("sid".into(), json!(uuid::Uuid::new_v4().to_string()));
        c.insert(
            "sub".into(),
            json!(pairwise_sub(tid, client.app_id(), &u.id)),
        );
        c.insert("tid".into(), json!(tid));
        c.insert("uti".into(), json!(uti()));
        c.insert("ver".into(), json!("2.0"));
        if with_profile {
            c.insert("name".into(), json!(u.display_name));
            c.insert("preferred_username".into(), json!(u.upn));
        }
        if let Some(n) = nonce {
            c.insert("nonce".into(), json!(n));
        }
        if let Some(code) = code {
            c.insert("c_hash".into(), json!(half_hash(code)));
        }
        let roles = self.dir.user_roles(u, client);
        if !roles.is_empty() {
            c.insert("roles".into(), json!(roles));
        }
        if group_claims(client) && !u.groups.is_empty() {
            c.insert("groups".into(), json!(u.groups));
        }
        self.sign(false, &Value::Object(c))
    }

    /// `rh` is opaque to clients; Entra's encodes the tenant and app, so does this.
    fn rh(&self, app: &App) -> String {
        let mut raw = Vec::with_capacity(32);
        for id in [&self.dir.tenant_id, &app.config.app_id] {
            if let Ok(u) = uuid::Uuid::parse_str(id) {
                raw.extend_from_slice(u.as_bytes());
            }
        }
        format!("1.A{}AA.", URL_SAFE_NO_PAD.encode(raw))
    }

    fn sign(&self, with_x5t: bool, claims: &Value) -> String {
        let kid = &self.key.kid;
        // v1 headers carry `x5t` too (entra-docs `access-tokens.md`); member order as Entra writes
        // it.
        let header = if with_x5t {
            format!(r#"{{"typ":"JWT","alg":"RS256","x5t":"{kid}","kid":"{kid}"}}"#)
        } else {
            format!(r#"{{"typ":"JWT","alg":"RS256","kid":"{kid}"}}"#)
        };
        let mut out = URL_SAFE_NO_PAD.encode(header);
        out.push('.');
        out.push_str(&URL_SAFE_NO_PAD.encode(claims.to_string()));
        let sig = self.key.sign(out.as_bytes());
        out.push('.');
        out.push_str(&URL_SAFE_NO_PAD.encode(sig));
        out
    }
}

fn group_claims(app: &App) -> bool {
    use crate::config::GroupMembershipClaims::*;
    matches!(
        app.config.group_membership_claims,
        SecurityGroup | All | ApplicationGroup
    )
}

/// `sub` is pairwise: stable for a user and app, different across apps.
fn pairwise_sub(tid: &str, app_id: &str, oid: &str) -> String {
    let digest = Sha256::digest(format!("{tid}|{app_id}|{oid}"));
    URL_SAFE_NO_PAD.encode(digest)
}

/// `c_hash`/`at_hash`: base64url of the left half of SHA-256 (OIDC Core §3.3.2.11).
pub(crate) fn half_hash(value: &str) -> String {
    let digest = Sha256::digest(value.as_bytes());
    URL_SAFE_NO_PAD.encode(&digest[..16])
}

fn uti() -> String {
    let mut raw = [0u8; 16];
    rand::rng().fill_bytes(&mut raw);
    URL_SAFE_NO_PAD.encode(raw)
}

/// Random opaque text of `len` bytes (for `aio`).
fn opaque(len: usize) -> String {
    let mut raw = vec![0u8; len];
    rand::rng().fill_bytes(&mut raw);
    STANDARD.encode(raw)
}

/// A random URL-safe handle (codes, refresh tokens, session cookies).
pub(crate) fn random_handle(prefix: &str, len: usize) -> String {
    let mut raw = vec![0u8; len];
    rand::rng().fill_bytes(&mut raw);
    format!("{prefix}{}", URL_SAFE_NO_PAD.encode(raw))
}

/// A compact JWS split into its parts, header and claims decoded.
pub(crate) struct Jwt<'a> {
    pub header: Map<String, Value>,
    pub claims: Map<String, Value>,
    pub signing_input: &'a str,
    pub signature: Vec<u8>,
}

impl<'a> Jwt<'a> {
    pub fn parse(token: &'a str) -> Option<Self> {
        let (signing_input, sig) = token.rsplit_once('.')?;
        let (header, claims) = signing_input.split_once('.')?;
        let decode = |part: &str| -> Option<Map<String, Value>> {
            let bytes = URL_SAFE_NO_PAD.decode(part.trim_end_matches('=')).ok()?;
            match serde_json::from_slice(&bytes).ok()? {
                Value::Object(m) => Some(m),
                _ => None,
            }
        };
        Some(Self {
            header: decode(header)?,
            claims: decode(claims)?,
            signing_input,
            signature: URL_SAFE_NO_PAD.decode(sig.trim_end_matches('=')).ok()?,
        })
    }

    pub fn header_str(&self, name: &str) -> Option<&str> {
        self.header.get(name).and_then(Value::as_str)
    }

    pub fn claim_str(&self, name: &str) -> Option<&str> {
        self.claims.get(name).and_then(Value::as_str)
    }

    /// A NumericDate claim. JWT allows fractions (MSAL Python writes `exp` as a float).
    pub fn claim_i64(&self, name: &str) -> Option<i64> {
        let v = self.claims.get(name)?;
        v.as_i64()
            .or_else(|| v.as_f64().filter(|f| f.is_finite()).map(|f| f as i64))
    }
}
