//! Backup blobs: opaque, sealed, and only restorable where Azure would restore them.
//!
//! The real blob is base64url of `)AzureKeyVaultSecretBackupV1.microsoft.com` followed by a JWE
//! encrypted under a key of the subscription's geography (recordings). The fake keeps that
//! outer shape, encrypts the record with a SHA-256 counter-mode keystream and authenticates it
//! with HMAC-SHA-256, both keyed by (backup key, subscription, geography). A blob from another
//! subscription or geography, or one altered in any byte, fails authentication and is refused.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

use crate::config::VaultConfig;
use crate::error::KeyVaultError;
use crate::store::SecretRecord;

/// The real service's blob prefix (decoded from a recorded backup).
const PREFIX: &[u8] = b")AzureKeyVaultSecretBackupV1.microsoft.com";

/// The key material of one (backup key, subscription, geography).
pub struct BackupKey {
    enc: [u8; 32],
    mac: [u8; 32],
    kid: String,
}

/// Azure geography of a region: backups restore across regions of one geography.
fn geography(region: &str) -> String {
    let r = region.to_ascii_lowercase();
    let us = [
        "eastus",
        "eastus2",
        "westus",
        "westus2",
        "westus3",
        "centralus",
        "northcentralus",
        "southcentralus",
        "westcentralus",
    ];
    if us.contains(&r.as_str()) {
        "unitedstates".into()
    } else if r == "northeurope" || r == "westeurope" {
        "europe".into()
    } else {
        r
    }
}

fn sha256(parts: &[&[u8]]) -> [u8; 32] {
    let mut h = Sha256::new();
    for p in parts {
        h.update((p.len() as u64).to_be_bytes());
        h.update(p);
    }
    h.finalize().into()
}

fn hmac_sha256(key: &[u8; 32], message: &[u8]) -> [u8; 32] {
    let mut inner_key = [0x36u8; 64];
    let mut outer_key = [0x5cu8; 64];
    for (i, b) in key.iter().enumerate() {
        inner_key[i] ^= b;
        outer_key[i] ^= b;
    }
    let inner: [u8; 32] = Sha256::new()
        .chain_update(inner_key)
        .chain_update(message)
        .finalize()
        .into();
    Sha256::new()
        .chain_update(outer_key)
        .chain_update(inner)
        .finalize()
        .into()
}

fn keystream_xor(key: &[u8; 32], nonce: &[u8], data: &mut [u8]) {
    for (counter, chunk) in data.chunks_mut(32).enumerate() {
        let block = sha256(&[key, nonce, &(counter as u64).to_be_bytes()]);
        for (b, k) in chunk.iter_mut().zip(block) {
            *b ^= k;
        }
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn refused() -> KeyVaultError {
    // UNVERIFIED wording: no public trace of the real text for a foreign or damaged blob.
    KeyVaultError::BadParameter(
        "The backup blob is corrupt or was not created in this subscription and geography."
            .to_owned(),
    )
}

impl BackupKey {
    pub fn for_vault(backup_key: &str, vault: &VaultConfig) -> Self {
        let root = sha256(&[
            b"ppvnet-keyvault-backup",
            backup_key.as_bytes(),
            vault.subscription_id.to_ascii_lowercase().as_bytes(),
            geography(&vault.region).as_bytes(),
        ]);
        let kid = sha256(&[&root, b"kid"]);
        Self {
            enc: sha256(&[&root, b"enc"]),
            mac: sha256(&[&root, b"mac"]),
            kid: uuid::Builder::from_random_bytes(kid[..16].try_into().unwrap_or([0; 16]))
                .into_uuid()
                .to_string(),
        }
    }

    /// The blob for a record (its lifecycle is not part of it).
    pub fn seal(&self, record: &SecretRecord) -> String {
        let header = URL_SAFE_NO_PAD.encode(format!(
            "{{\"kid\":\"{}\",\"alg\":\"dir\",\"enc\":\"ppvnet-CTR-HS256\"}}",
            self.kid
        ));
        let nonce: [u8; 16] = rand::random();
        let mut body = serde_json::to_vec(record).unwrap_or_default();
        keystream_xor(&self.enc, &nonce, &mut body);
        let nonce_b64 = URL_SAFE_NO_PAD.encode(nonce);
        let body_b64 = URL_SAFE_NO_PAD.encode(&body);
        let signed = format!("{header}..{nonce_b64}.{body_b64}");
        let tag = URL_SAFE_NO_PAD.encode(hmac_sha256(&self.mac, signed.as_bytes()));
        let mut blob = PREFIX.to_vec();
        blob.extend_from_slice(signed.as_bytes());
        blob.push(b'.');
        blob.extend_from_slice(tag.as_bytes());
        URL_SAFE_NO_PAD.encode(blob)
    }

    /// The record in a blob, if the blob is intact and was sealed with this key.
    pub fn open(&self, value: &str) -> Result<SecretRecord, KeyVaultError> {
        let raw = URL_SAFE_NO_PAD
            .decode(value.trim_end_matches('='))
            .map_err(|_| refused())?;
        let token = raw.strip_prefix(PREFIX).ok_or_else(refused)?;
        let token = std::str::from_utf8(token).map_err(|_| refused())?;
        let (signed, tag) = token.rsplit_once('.').ok_or_else(refused)?;
        let tag = URL_SAFE_NO_PAD.decode(tag).map_err(|_| refused())?;
        if !constant_time_eq(&hmac_sha256(&self.mac, signed.as_bytes()), &tag) {
            return Err(refused());
        }
        let parts: Vec<&str> = signed.split('.').collect();
        let [_, _, nonce, body] = parts[..] else {
            return Err(refused());
        };
        let nonce = URL_SAFE_NO_PAD.decode(nonce).map_err(|_| refused())?;
        let mut body = URL_SAFE_NO_PAD.decode(body).map_err(|_| refused())?;
        keystream_xor(&self.enc, &nonce, &mut body);
        serde_json::from_slice(&body).map_err(|_| refused())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Lifecycle, SecretVersion};

    fn record() -> SecretRecord {
        SecretRecord {
            name: "db-password".into(),
            managed: false,
            versions: vec![SecretVersion {
                version: "a".repeat(32),
                value: "hunter2-very-secret".into(),
                content_type: Some("text/plain".into()),
                tags: Default::default(),
                enabled: true,
                nbf: None,
                exp: None,
                created: 10,
                updated: 11,
            }],
            lifecycle: Lifecycle::Active { settles_at_ms: 0 },
        }
    }

    fn vault(sub: &str, region: &str) -> VaultConfig {
        let mut v = VaultConfig::new("kv-a", "t", region);
        v.subscription_id = sub.into();
        v
    }

    #[test]
    fn round_trips_within_a_geography_and_hides_the_value() {
        let key = BackupKey::for_vault("k", &vault("s1", "westus"));
        let blob = key.seal(&record());
        let decoded = URL_SAFE_NO_PAD.decode(&blob).unwrap();
        assert!(decoded.starts_with(PREFIX));
        assert!(!String::from_utf8_lossy(&decoded).contains("hunter2"));
        // A paired region of the same geography restores it.
        let paired = BackupKey::for_vault("k", &vault("s1", "eastus"));
        assert_eq!(paired.open(&blob).unwrap(), record());
    }

    #[test]
    fn foreign_and_tampered_blobs_are_refused() {
        let key = BackupKey::for_vault("k", &vault("s1", "westus"));
        let blob = key.seal(&record());
        assert!(
            BackupKey::for_vault("k", &vault("s2", "westus"))
                .open(&blob)
                .is_err()
        );
        assert!(
            BackupKey::for_vault("k", &vault("s1", "northeurope"))
                .open(&blob)
                .is_err()
        );
        let mut bytes = URL_SAFE_NO_PAD.decode(&blob).unwrap();
        let mid = bytes.len() / 2;
        bytes[mid] ^= 0x01;
        assert!(key.open(&URL_SAFE_NO_PAD.encode(&bytes)).is_err());
        assert!(key.open("not-a-blob").is_err());
        assert!(key.open("").is_err());
    }
}
