//! Token signing keys: generation, the published key set (JWKS), rotation and persistence.
//!
//! Entra signs with RSA-2048 keys, publishes each with a self-signed certificate
//! (CN=accounts.accesscontrol.windows.net) in `x5c`, and uses the certificate's SHA-1
//! thumbprint as both `kid` and `x5t` (Entra's published key sets: panva/wellknown
//! `issuers/entra-*`, copied in `tests/data/`; `access-tokens.md` in MicrosoftDocs/entra-docs).
//! During a rotation the old and the new key are published together; [`KeyStatus`] tracks where each key is in that life cycle.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock};

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{self, KeyPair, RsaKeyPair};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use ppvnet_common::keypool::KeyPool;
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha1::{Digest, Sha1};

const KEY_FILE: &str = "entra-signing-keys.json";

/// Where a key is in its rotation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum KeyStatus {
    /// Published, not yet used for signing (clients can pick it up before the switch).
    Next,
    /// Published and used to sign new tokens.
    Signing,
    /// Published so tokens it signed keep validating, no longer used for signing.
    Previous,
}

/// A published key as the control API reports it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SigningKeyInfo {
    pub kid: String,
    pub status: KeyStatus,
}

/// One RSA key with its certificate.
pub(crate) struct SigningKey {
    pub kid: String,
    pair: RsaKeyPair,
    pkcs8: Vec<u8>,
    cert_der: Vec<u8>,
    n: String,
    e: String,
}

/// Where new signing keys come from first: the per-user pool the harness names (process-wide,
/// as the pool is the user's, not one landscape's). Without one, each key is generated.
static KEY_POOL: RwLock<Option<KeyPool>> = RwLock::new(None);

/// New signing keys are taken from `pool` when it has one (a key is never taken twice), and
/// generated otherwise.
pub fn use_key_pool(pool: Option<KeyPool>) {
    *KEY_POOL.write().unwrap_or_else(PoisonError::into_inner) = pool;
}

/// Tops the pool chosen with [`use_key_pool`] up to `depth` RSA-2048 keys (slow: meant for a
/// background thread once a landscape is ready). Returns how many keys it generated.
pub fn fill_key_pool(depth: usize) -> io::Result<usize> {
    let pool = KEY_POOL
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .clone();
    match pool {
        Some(pool) => pool.fill(depth, generate_pkcs8),
        None => Ok(0),
    }
}

fn generate_pkcs8() -> io::Result<Vec<u8>> {
    let pair = RsaKeyPair::generate(KeySize::Rsa2048).map_err(io::Error::other)?;
    Ok(pair.as_der().map_err(io::Error::other)?.as_ref().to_vec())
}

/// A key from `pool`, if it has one that is a valid RSA-2048 key.
fn pooled_pkcs8(pool: &KeyPool) -> Option<Vec<u8>> {
    // A file that is not an RSA-2048 key (damaged, or put there by hand) is skipped: it was
    // deleted when taken, so the next take looks further.
    std::iter::from_fn(|| pool.take())
        .find(|pkcs8| RsaKeyPair::from_pkcs8(pkcs8).is_ok_and(|p| p.public_modulus_len() == 256))
}

impl SigningKey {
    fn generate() -> io::Result<Self> {
        let pool = KEY_POOL
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        Self::generate_from(pool.as_ref())
    }

    fn generate_from(pool: Option<&KeyPool>) -> io::Result<Self> {
        let pkcs8 = match pool.and_then(pooled_pkcs8) {
            Some(pkcs8) => pkcs8,
            None => generate_pkcs8()?,
        };
        let cert_der = self_signed_cert(&pkcs8)?;
        Self::from_parts(pkcs8, cert_der)
    }

    fn from_parts(pkcs8: Vec<u8>, cert_der: Vec<u8>) -> io::Result<Self> {
        let pair = RsaKeyPair::from_pkcs8(&pkcs8)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
        let public = pair.public_key();
        let n = URL_SAFE_NO_PAD.encode(public.modulus().big_endian_without_leading_zero());
        let e = URL_SAFE_NO_PAD.encode(public.exponent().big_endian_without_leading_zero());
        let kid = URL_SAFE_NO_PAD.encode(Sha1::digest(&cert_der));
        Ok(Self {
            kid,
            pair,
            pkcs8,
            cert_der,
            n,
            e,
        })
    }

    /// RS256 signature over `message`.
    pub fn sign(&self, message: &[u8]) -> Vec<u8> {
        let mut sig = vec![0; self.pair.public_modulus_len()];
        // Signing with a valid in-memory RSA key and a right-sized buffer cannot fail short of
        // memory exhaustion; an empty signature then fails validation instead of panicking.
        if self
            .pair
            .sign(
                &signature::RSA_PKCS1_SHA256,
                &SystemRandom::new(),
                message,
                &mut sig,
            )
            .is_err()
        {
            sig.clear();
        }
        sig
    }

    /// Checks an RS256 signature made by this key.
    pub fn verify(&self, message: &[u8], sig: &[u8]) -> bool {
        signature::UnparsedPublicKey::new(
            &signature::RSA_PKCS1_2048_8192_SHA256,
            self.pair.public_key().as_ref(),
        )
        .verify(message, sig)
        .is_ok()
    }

    fn jwk(&self, issuer: &str) -> serde_json::Value {
        json!({
            "kty": "RSA",
            "use": "sig",
            "kid": self.kid,
            "x5t": self.kid,
            "n": self.n,
            "e": self.e,
            "x5c": [STANDARD.encode(&self.cert_der)],
            "issuer": issuer,
        })
    }
}

fn self_signed_cert(pkcs8: &[u8]) -> io::Result<Vec<u8>> {
    let key = rcgen::KeyPair::try_from(pkcs8).map_err(io::Error::other)?;
    let mut params =
        rcgen::CertificateParams::new(Vec::<String>::new()).map_err(io::Error::other)?;
    params.distinguished_name = rcgen::DistinguishedName::new();
    params.distinguished_name.push(
        rcgen::DnType::CommonName,
        "accounts.accesscontrol.windows.net",
    );
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::days(1);
    params.not_after = now + time::Duration::days(5 * 365);
    let cert = params.self_signed(&key).map_err(io::Error::other)?;
    Ok(cert.der().to_vec())
}

#[derive(Serialize, Deserialize)]
struct StoredKeys {
    keys: Vec<StoredKey>,
}

#[derive(Serialize, Deserialize)]
struct StoredKey {
    status: KeyStatus,
    pkcs8: String,
    certificate: String,
}

/// The published keys in JWKS order (signing key first).
pub(crate) struct KeySet {
    keys: Vec<(Arc<SigningKey>, KeyStatus)>,
    file: Option<PathBuf>,
}

impl KeySet {
    /// Loads the key set saved in `data_dir`, or creates one signing key (and saves it there).
    pub fn open(data_dir: Option<&Path>) -> io::Result<Self> {
        let file = data_dir.map(|d| d.join(KEY_FILE));
        if let Some(path) = &file
            && path.exists()
        {
            return Self::load(path);
        }
        let set = Self {
            keys: vec![(Arc::new(SigningKey::generate()?), KeyStatus::Signing)],
            file,
        };
        set.save()?;
        Ok(set)
    }

    fn load(path: &Path) -> io::Result<Self> {
        let invalid = |what: String| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{}: {what}", path.display()),
            )
        };
        let stored: StoredKeys =
            serde_json::from_slice(&std::fs::read(path)?).map_err(|e| invalid(e.to_string()))?;
        let mut keys = Vec::with_capacity(stored.keys.len());
        for k in stored.keys {
            let pkcs8 = STANDARD
                .decode(&k.pkcs8)
                .map_err(|e| invalid(e.to_string()))?;
            let cert = STANDARD
                .decode(&k.certificate)
                .map_err(|e| invalid(e.to_string()))?;
            keys.push((Arc::new(SigningKey::from_parts(pkcs8, cert)?), k.status));
        }
        if keys
            .iter()
            .filter(|(_, s)| *s == KeyStatus::Signing)
            .count()
            != 1
        {
            return Err(invalid("exactly one key must have status `signing`".into()));
        }
        Ok(Self {
            keys,
            file: Some(path.to_path_buf()),
        })
    }

    fn save(&self) -> io::Result<()> {
        let Some(path) = &self.file else {
            return Ok(());
        };
        let stored = StoredKeys {
            keys: self
                .keys
                .iter()
                .map(|(k, status)| StoredKey {
                    status: *status,
                    pkcs8: STANDARD.encode(&k.pkcs8),
                    certificate: STANDARD.encode(&k.cert_der),
                })
                .collect(),
        };
        // A name of its own per write: two mocks sharing a data dir (tests do, to reuse keys)
        // must not rename each other's half-written file away. The file holds private keys:
        // 0600 from creation.
        static WRITES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = WRITES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        ppvnet_common::private_fs::write_atomic(
            path,
            &serde_json::to_vec_pretty(&stored).map_err(io::Error::other)?,
            &format!("{}.{n}", std::process::id()),
        )
    }

    pub fn signing(&self) -> Arc<SigningKey> {
        // `open`, `load` and `switch` keep exactly one signing key.
        self.keys
            .iter()
            .find(|(_, s)| *s == KeyStatus::Signing)
            .map(|(k, _)| k.clone())
            .unwrap_or_else(|| self.keys[0].0.clone())
    }

    pub fn find(&self, kid: &str) -> Option<Arc<SigningKey>> {
        self.keys
            .iter()
            .find(|(k, _)| k.kid == kid)
            .map(|(k, _)| k.clone())
    }

    pub fn info(&self) -> Vec<SigningKeyInfo> {
        self.keys
            .iter()
            .map(|(k, status)| SigningKeyInfo {
                kid: k.kid.clone(),
                status: *status,
            })
            .collect()
    }

    pub fn jwks(&self, issuer: &str) -> serde_json::Value {
        let order = [KeyStatus::Signing, KeyStatus::Previous, KeyStatus::Next];
        let keys: Vec<_> = order
            .iter()
            .flat_map(|want| self.keys.iter().filter(move |(_, s)| s == want))
            .map(|(k, _)| k.jwk(issuer))
            .collect();
        json!({ "keys": keys })
    }

    /// Publishes a freshly generated key that is not yet used for signing. A key already
    /// waiting as `Next` is kept and returned instead.
    pub fn publish_next(&mut self) -> io::Result<String> {
        if let Some((k, _)) = self.keys.iter().find(|(_, s)| *s == KeyStatus::Next) {
            return Ok(k.kid.clone());
        }
        let key = Arc::new(SigningKey::generate()?);
        let kid = key.kid.clone();
        self.keys.push((key, KeyStatus::Next));
        self.save()?;
        Ok(kid)
    }

    /// Makes the `Next` key the signing key; the old signing key stays published as
    /// `Previous`. Returns the new signing kid, or `None` when no key was published as next.
    pub fn switch(&mut self) -> io::Result<Option<String>> {
        let Some(next) = self.keys.iter().position(|(_, s)| *s == KeyStatus::Next) else {
            return Ok(None);
        };
        for (_, status) in &mut self.keys {
            if *status == KeyStatus::Signing {
                *status = KeyStatus::Previous;
            }
        }
        self.keys[next].1 = KeyStatus::Signing;
        let kid = self.keys[next].0.kid.clone();
        self.save()?;
        Ok(Some(kid))
    }

    /// Stops publishing every `Previous` key; tokens they signed no longer validate.
    pub fn retire_previous(&mut self) -> io::Result<Vec<String>> {
        let retired: Vec<String> = self
            .keys
            .iter()
            .filter(|(_, s)| *s == KeyStatus::Previous)
            .map(|(k, _)| k.kid.clone())
            .collect();
        self.keys.retain(|(_, s)| *s != KeyStatus::Previous);
        self.save()?;
        Ok(retired)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A pooled key is used once (it leaves the pool), a damaged one is skipped, and an empty
    /// pool falls back to generating.
    #[test]
    fn signing_keys_come_from_the_pool_once_then_are_generated() {
        let dir = tempfile::tempdir().unwrap();
        let pool = KeyPool::at(dir.path().to_path_buf());
        let pkcs8 = generate_pkcs8().unwrap();
        std::fs::write(dir.path().join("a-damaged.key"), b"not a key").unwrap();
        std::fs::write(dir.path().join("b-good.key"), &pkcs8).unwrap();
        let key = SigningKey::generate_from(Some(&pool)).unwrap();
        assert_eq!(key.pkcs8, pkcs8, "the pooled key is used");
        let fresh = SigningKey::generate_from(Some(&pool)).unwrap();
        assert_ne!(fresh.pkcs8, pkcs8, "a key is taken once: then a new one");
        assert!(pool.is_empty(), "the damaged file was taken and dropped");
        assert_eq!(fresh.pair.public_modulus_len(), 256, "RSA-2048");
    }

    #[test]
    fn the_key_file_is_written_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("entra-data");
        ppvnet_common::private_fs::create_dir_all(&dir).unwrap();
        let mut set = KeySet::open(Some(&dir)).unwrap();
        assert_eq!(mode(&dir.join(KEY_FILE)), 0o600);
        // A rotation replaces the file; the replacement is owner-only from its creation.
        set.publish_next().unwrap();
        assert_eq!(mode(&dir.join(KEY_FILE)), 0o600);
        assert_eq!(mode(&dir), 0o700);
    }

    #[test]
    fn rotation_publishes_next_switches_then_retires_and_persists() {
        let dir = tempfile::tempdir().unwrap();
        let mut set = KeySet::open(Some(dir.path())).unwrap();
        let first = set.signing().kid.clone();
        let next = set.publish_next().unwrap();
        assert_eq!(
            set.publish_next().unwrap(),
            next,
            "a waiting next key is reused"
        );
        assert_eq!(set.signing().kid, first);
        assert_eq!(set.switch().unwrap().as_deref(), Some(next.as_str()));
        assert_eq!(set.switch().unwrap(), None);
        let jwks = set.jwks("i");
        let kids: Vec<_> = jwks["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["kid"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(kids, vec![next.clone(), first.clone()]);

        let reopened = KeySet::open(Some(dir.path())).unwrap();
        assert_eq!(reopened.info(), set.info());
        assert!(reopened.find(&first).is_some());

        assert_eq!(set.retire_previous().unwrap(), vec![first.clone()]);
        assert!(set.find(&first).is_none());
        let reopened = KeySet::open(Some(dir.path())).unwrap();
        assert_eq!(reopened.info().len(), 1);
    }

    #[test]
    fn signatures_verify_only_with_the_signing_key() {
        let set = KeySet::open(None).unwrap();
        let key = set.signing();
        let sig = key.sign(b"header.payload");
        assert_eq!(sig.len(), 256);
        assert!(key.verify(b"header.payload", &sig));
        assert!(!key.verify(b"header.payloaX", &sig));
    }
}
