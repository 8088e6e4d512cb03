//! One vault's secrets and the rules of their lifecycle.
//!
//! A secret is a record (all its versions) in one of these states, judged at the run clock's
//! "now":
//! - live; or *recovering* until a recover completes;
//! - *deleting* until a delete completes, then *recoverable* until `scheduledPurgeDate`, after
//!   which it is gone as if purged.
//!
//! Deletes and recovers complete `pending_operation_ms` after they are accepted, as on the real
//! service (see [`crate::config::VaultConfig::pending_operation_ms`]). Every change is first made
//! durable (when the vault has a store file) and only then applied in memory and acknowledged.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

use crate::config::{SeedSecret, VaultConfig};
use crate::error::{KeyVaultError, VaultLabel};
use crate::model::{AttributesIn, SetSecretBody, UpdateSecretBody};
use crate::names;
use crate::persist::{RecordHeader, StoreError, VaultFile};

const SECONDS_PER_DAY: i64 = 86_400;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SecretVersion {
    pub version: String,
    pub value: String,
    pub content_type: Option<String>,
    pub tags: BTreeMap<String, String>,
    pub enabled: bool,
    pub nbf: Option<i64>,
    pub exp: Option<i64>,
    pub created: i64,
    pub updated: i64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SecretRecord {
    /// The name as first created (lookups are case-insensitive).
    pub name: String,
    pub managed: bool,
    /// In creation order; the last one is "latest".
    pub versions: Vec<SecretVersion>,
    pub lifecycle: Lifecycle,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Lifecycle {
    Active {
        settles_at_ms: i64,
    },
    Deleted {
        deleted_date: i64,
        scheduled_purge_date: i64,
        settles_at_ms: i64,
    },
}

/// A record's state at one instant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    Live,
    Recovering,
    Deleting,
    Recoverable {
        deleted_date: i64,
        scheduled_purge_date: i64,
    },
    Gone,
}

impl SecretRecord {
    pub fn phase(&self, now_ms: i64) -> Phase {
        match self.lifecycle {
            Lifecycle::Active { settles_at_ms } if now_ms >= settles_at_ms => Phase::Live,
            Lifecycle::Active { .. } => Phase::Recovering,
            Lifecycle::Deleted {
                scheduled_purge_date,
                ..
            } if now_ms >= scheduled_purge_date.saturating_mul(1000) => Phase::Gone,
            Lifecycle::Deleted { settles_at_ms, .. } if now_ms < settles_at_ms => Phase::Deleting,
            Lifecycle::Deleted {
                deleted_date,
                scheduled_purge_date,
                ..
            } => Phase::Recoverable {
                deleted_date,
                scheduled_purge_date,
            },
        }
    }

    pub fn latest(&self) -> Option<&SecretVersion> {
        self.versions.last()
    }
}

/// "Now" in the two resolutions the vault uses.
#[derive(Clone, Copy, Debug)]
pub struct Now {
    pub ms: i64,
    pub secs: i64,
}

impl Now {
    pub fn from_millis(ms: i64) -> Self {
        Self {
            ms,
            secs: ms.div_euclid(1000),
        }
    }
}

/// One page of a listing: the entries and the key to continue after.
pub struct Listing<'a, T> {
    pub entries: Vec<T>,
    pub continue_after: Option<&'a str>,
}

/// The secrets of one vault.
pub struct VaultState {
    pub config: Arc<VaultConfig>,
    secrets: BTreeMap<String, SecretRecord>,
    /// In a mutex only to make the state `Sync`; writers already hold the vault's write lock.
    file: Option<Mutex<VaultFile>>,
}

fn key(name: &str) -> String {
    name.to_ascii_lowercase()
}

fn invalid_name(name: &str) -> KeyVaultError {
    KeyVaultError::BadParameter(format!("The request URI contains an invalid name: {name}"))
}

/// Validates a secret name from a request path.
pub fn check_name(name: &str) -> Result<(), KeyVaultError> {
    if names::is_valid_secret_name(name) {
        Ok(())
    } else {
        Err(invalid_name(name))
    }
}

fn check_content_type(content_type: Option<&String>) -> Result<(), KeyVaultError> {
    match content_type {
        Some(ct) if ct.chars().count() > names::MAX_CONTENT_TYPE_CHARS => {
            // UNVERIFIED wording; the 255-character limit is documented.
            Err(KeyVaultError::BadParameter(format!(
                "Content type is too long. The maximum length is {} characters.",
                names::MAX_CONTENT_TYPE_CHARS
            )))
        }
        _ => Ok(()),
    }
}

/// Tag count and lengths. Too many tags is answered 400 `BadParameter` "Property has invalid
/// value\r\n" (aztfmod/terraform-azurerm-caf#821 quotes that exact reply for a 16th tag); that the
/// over-long names and values get the same reply is UNVERIFIED.
fn check_tags(tags: Option<&BTreeMap<String, String>>) -> Result<(), KeyVaultError> {
    let Some(tags) = tags else {
        return Ok(());
    };
    let too_long = |name: &String, value: &String| {
        name.chars().count() > names::MAX_TAG_NAME_CHARS
            || value.chars().count() > names::MAX_TAG_VALUE_CHARS
    };
    if tags.len() > names::MAX_TAGS || tags.iter().any(|(n, v)| too_long(n, v)) {
        return Err(KeyVaultError::BadParameter(
            "Property has invalid value\r\n".to_owned(),
        ));
    }
    Ok(())
}

fn apply_attributes(version: &mut SecretVersion, attributes: &AttributesIn) {
    if let Some(enabled) = attributes.enabled {
        version.enabled = enabled;
    }
    if attributes.nbf.is_some() {
        version.nbf = attributes.nbf;
    }
    if attributes.exp.is_some() {
        version.exp = attributes.exp;
    }
}

impl VaultState {
    /// Opens a vault: loads its store file when it has one, and seeds the configured secrets
    /// into a vault that has never been seeded.
    pub fn open(
        config: Arc<VaultConfig>,
        file: Option<VaultFile>,
        now: Now,
    ) -> Result<Self, StoreError> {
        let (secrets, seeded) = match &file {
            Some(f) => (f.load()?, f.is_seeded()?),
            None => (Vec::new(), false),
        };
        let mut state = Self {
            config,
            secrets: secrets.into_iter().map(|r| (key(&r.name), r)).collect(),
            file: file.map(Mutex::new),
        };
        if !seeded {
            let seeds: Vec<SecretRecord> = state
                .config
                .secrets
                .iter()
                .map(|seed| seed_record(seed, now))
                .collect();
            if let Some(f) = &mut state.file {
                f.get_mut()
                    .unwrap_or_else(|e| e.into_inner())
                    .seed(&seeds)?;
            }
            for record in seeds {
                state.secrets.insert(key(&record.name), record);
            }
        }
        Ok(state)
    }

    pub fn label(&self) -> VaultLabel {
        VaultLabel {
            name: self.config.name.clone(),
            region: self.config.region.clone(),
        }
    }

    /// Makes a change durable (when the vault has a store file). Callers apply the change in
    /// memory only after this succeeded, so nothing unstored is ever acknowledged.
    fn durable(
        &mut self,
        write: impl FnOnce(&mut VaultFile) -> Result<(), StoreError>,
    ) -> Result<(), KeyVaultError> {
        if let Some(file) = &mut self.file {
            let file = file.get_mut().unwrap_or_else(|e| e.into_inner());
            write(file).map_err(|e| KeyVaultError::Storage(e.to_string()))?;
        }
        Ok(())
    }

    fn committed_mut(&mut self, key: &str) -> Result<&mut SecretRecord, KeyVaultError> {
        self.secrets
            .get_mut(key)
            .ok_or_else(|| KeyVaultError::Storage(format!("secret {key} vanished after commit")))
    }

    /// Stores a new lifecycle of the record under `key`, then applies it.
    fn set_lifecycle(&mut self, key: &str, lifecycle: Lifecycle) -> Result<(), KeyVaultError> {
        let record = self.committed(key)?;
        let header = RecordHeader {
            name: record.name.clone(),
            managed: record.managed,
            lifecycle: lifecycle.clone(),
        };
        self.durable(|f| f.put_header(key, &header))?;
        self.committed_mut(key)?.lifecycle = lifecycle;
        Ok(())
    }

    fn committed(&self, key: &str) -> Result<&SecretRecord, KeyVaultError> {
        self.secrets
            .get(key)
            .ok_or_else(|| KeyVaultError::Storage(format!("secret {key} vanished after commit")))
    }

    fn phase_of(&self, name: &str, now: Now) -> (Option<&SecretRecord>, Phase) {
        match self.secrets.get(&key(name)) {
            Some(r) => (Some(r), r.phase(now.ms)),
            None => (None, Phase::Gone),
        }
    }

    fn live(&self, name: &str, now: Now) -> Result<&SecretRecord, KeyVaultError> {
        check_name(name)?;
        match self.phase_of(name, now) {
            (Some(r), Phase::Live) => Ok(r),
            _ => Err(KeyVaultError::SecretNotFound {
                name_or_id: name.to_owned(),
            }),
        }
    }

    fn version_index(
        record: &SecretRecord,
        name: &str,
        version: Option<&str>,
    ) -> Result<usize, KeyVaultError> {
        match version {
            None => record.versions.len().checked_sub(1),
            Some(v) => record
                .versions
                .iter()
                .position(|x| x.version.eq_ignore_ascii_case(v)),
        }
        .ok_or_else(|| KeyVaultError::SecretNotFound {
            name_or_id: match version {
                Some(v) => format!("{name}/{v}"),
                None => name.to_owned(),
            },
        })
    }

    /// `GET /secrets/{name}/{version?}`. `exp`/`nbf` are not enforced: the docs say a get works
    /// outside the validity window; a disabled version is refused.
    pub fn get(
        &self,
        name: &str,
        version: Option<&str>,
        now: Now,
    ) -> Result<(&SecretRecord, &SecretVersion), KeyVaultError> {
        let record = self.live(name, now)?;
        let v = &record.versions[Self::version_index(record, name, version)?];
        if !v.enabled {
            return Err(KeyVaultError::SecretDisabled);
        }
        Ok((record, v))
    }

    /// `PUT /secrets/{name}`: a new version.
    pub fn set(
        &mut self,
        name: &str,
        body: SetSecretBody,
        now: Now,
    ) -> Result<(&SecretRecord, &SecretVersion), KeyVaultError> {
        check_name(name)?;
        let value = match body.value {
            Some(serde_json::Value::String(v)) => v,
            // UNVERIFIED wording for a missing or non-string value.
            _ => {
                return Err(KeyVaultError::BadParameter(
                    "Secret value must be a string and is required.".to_owned(),
                ));
            }
        };
        if value.len() > names::MAX_VALUE_BYTES {
            // UNVERIFIED wording; the 25 KB limit is documented.
            return Err(KeyVaultError::BadParameter(format!(
                "Secret value is too large. The maximum size of a secret value is {} bytes.",
                names::MAX_VALUE_BYTES
            )));
        }
        check_content_type(body.content_type.as_ref())?;
        check_tags(body.tags.as_ref())?;
        let mut version = SecretVersion {
            version: names::new_version_id(),
            value,
            content_type: body.content_type,
            tags: body.tags.unwrap_or_default(),
            enabled: true,
            nbf: None,
            exp: None,
            created: now.secs,
            updated: now.secs,
        };
        if let Some(attributes) = &body.attributes {
            apply_attributes(&mut version, attributes);
        }
        let k = key(name);
        match self.phase_of(name, now) {
            // One more version row: the cost does not depend on how many versions exist.
            (Some(existing), Phase::Live) => {
                let seq = existing.versions.len();
                self.durable(|f| f.append_version(&k, seq, &version))?;
                self.committed_mut(&k)?.versions.push(version);
            }
            // A new record, or one past its purge date that is replaced whole.
            (_, Phase::Gone) => {
                let record = SecretRecord {
                    name: name.to_owned(),
                    managed: false,
                    versions: vec![version],
                    lifecycle: Lifecycle::Active { settles_at_ms: 0 },
                };
                self.durable(|f| f.put(&k, &record))?;
                self.secrets.insert(k.clone(), record);
            }
            (_, phase) => return Err(self.conflict(name, phase)),
        }
        let r = self.committed(&k)?;
        let latest = r.versions.len() - 1;
        Ok((r, &r.versions[latest]))
    }

    fn conflict(&self, name: &str, phase: Phase) -> KeyVaultError {
        match phase {
            Phase::Recovering => KeyVaultError::BeingRecovered {
                name: name.to_owned(),
            },
            Phase::Deleting => KeyVaultError::BeingDeleted {
                name: name.to_owned(),
            },
            Phase::Recoverable { .. } => KeyVaultError::DeletedButRecoverable {
                name: name.to_owned(),
            },
            Phase::Live | Phase::Gone => KeyVaultError::RestoreConflict {
                name: name.to_owned(),
            },
        }
    }

    /// `PATCH /secrets/{name}/{version?}`: attributes, tags and content type; never the value.
    pub fn update(
        &mut self,
        name: &str,
        version: Option<&str>,
        body: UpdateSecretBody,
        now: Now,
    ) -> Result<(&SecretRecord, &SecretVersion), KeyVaultError> {
        check_content_type(body.content_type.as_ref())?;
        check_tags(body.tags.as_ref())?;
        let record = self.live(name, now)?;
        let index = Self::version_index(record, name, version)?;
        let mut v = record.versions[index].clone();
        if let Some(ct) = body.content_type {
            v.content_type = Some(ct);
        }
        if let Some(tags) = body.tags {
            v.tags = tags;
        }
        if let Some(attributes) = &body.attributes {
            apply_attributes(&mut v, attributes);
        }
        v.updated = now.secs;
        let k = key(name);
        self.durable(|f| f.update_version(&k, index, &v))?;
        self.committed_mut(&k)?.versions[index] = v;
        let r = self.committed(&k)?;
        Ok((r, &r.versions[index]))
    }

    /// `DELETE /secrets/{name}`: soft delete of every version.
    pub fn delete(
        &mut self,
        name: &str,
        now: Now,
    ) -> Result<(&SecretRecord, i64, i64), KeyVaultError> {
        self.live(name, now)?;
        let deleted_date = now.secs;
        let scheduled_purge_date =
            deleted_date + i64::from(self.config.soft_delete_retention_days) * SECONDS_PER_DAY;
        let lifecycle = Lifecycle::Deleted {
            deleted_date,
            scheduled_purge_date,
            settles_at_ms: now.ms.saturating_add(self.pending_ms()),
        };
        let k = key(name);
        self.set_lifecycle(&k, lifecycle)?;
        Ok((self.committed(&k)?, deleted_date, scheduled_purge_date))
    }

    fn pending_ms(&self) -> i64 {
        i64::try_from(self.config.pending_operation_ms).unwrap_or(i64::MAX)
    }

    /// `GET /deletedsecrets/{name}`.
    pub fn get_deleted(
        &self,
        name: &str,
        now: Now,
    ) -> Result<(&SecretRecord, i64, i64), KeyVaultError> {
        check_name(name)?;
        match self.phase_of(name, now) {
            (
                Some(r),
                Phase::Recoverable {
                    deleted_date,
                    scheduled_purge_date,
                },
            ) => Ok((r, deleted_date, scheduled_purge_date)),
            _ => Err(KeyVaultError::DeletedSecretNotFound {
                name: name.to_owned(),
            }),
        }
    }

    /// `POST /deletedsecrets/{name}/recover`.
    pub fn recover(&mut self, name: &str, now: Now) -> Result<&SecretRecord, KeyVaultError> {
        self.get_deleted(name, now)?;
        let lifecycle = Lifecycle::Active {
            settles_at_ms: now.ms.saturating_add(self.pending_ms()),
        };
        let k = key(name);
        self.set_lifecycle(&k, lifecycle)?;
        self.committed(&k)
    }

    /// `DELETE /deletedsecrets/{name}`. A purge is accepted while the delete is still completing
    /// (the Rust SDK recording purges in the same second as the delete and gets 204).
    pub fn purge(&mut self, name: &str, now: Now) -> Result<(), KeyVaultError> {
        check_name(name)?;
        match self.phase_of(name, now).1 {
            Phase::Recoverable { .. } | Phase::Deleting => {
                if self.config.purge_protection {
                    return Err(KeyVaultError::PurgeProtected {
                        vault: self.label(),
                    });
                }
                let k = key(name);
                self.durable(|f| f.remove(&k))?;
                self.secrets.remove(&k);
                Ok(())
            }
            _ => Err(KeyVaultError::DeletedSecretNotFound {
                name: name.to_owned(),
            }),
        }
    }

    /// `POST /secrets/{name}/backup`: the whole record.
    pub fn backup(&self, name: &str, now: Now) -> Result<&SecretRecord, KeyVaultError> {
        self.live(name, now)
    }

    /// `POST /secrets/restore`: a record from a backup, with its versions and dates.
    pub fn restore(
        &mut self,
        mut record: SecretRecord,
        now: Now,
    ) -> Result<&SecretRecord, KeyVaultError> {
        check_name(&record.name)?;
        if record.versions.is_empty() {
            return Err(KeyVaultError::BadParameter(
                "The backup blob holds no secret version.".into(),
            ));
        }
        match self.phase_of(&record.name, now).1 {
            Phase::Gone => {}
            phase => return Err(self.conflict(&record.name, phase)),
        }
        record.lifecycle = Lifecycle::Active { settles_at_ms: 0 };
        let k = key(&record.name);
        self.durable(|f| f.put(&k, &record))?;
        self.secrets.insert(k.clone(), record);
        self.committed(&k)
    }

    /// Live secrets after `after` (a lowercase key), at most `max`.
    pub fn list(&self, after: Option<&str>, max: usize, now: Now) -> Listing<'_, &SecretRecord> {
        self.page(after, max, |r| r.phase(now.ms) == Phase::Live)
    }

    /// Recoverable secrets after `after`, at most `max`, with their dates.
    pub fn list_deleted(
        &self,
        after: Option<&str>,
        max: usize,
        now: Now,
    ) -> Listing<'_, &SecretRecord> {
        self.page(after, max, |r| {
            matches!(r.phase(now.ms), Phase::Recoverable { .. })
        })
    }

    fn page(
        &self,
        after: Option<&str>,
        max: usize,
        keep: impl Fn(&SecretRecord) -> bool,
    ) -> Listing<'_, &SecretRecord> {
        use std::ops::Bound;
        let lower = match after {
            Some(a) => Bound::Excluded(a.to_owned()),
            None => Bound::Unbounded,
        };
        let mut iter = self
            .secrets
            .range((lower, Bound::Unbounded))
            .filter(|(_, r)| keep(r));
        let mut entries = Vec::new();
        let mut last_key = None;
        for (k, r) in iter.by_ref().take(max) {
            entries.push(r);
            last_key = Some(k.as_str());
        }
        let more = iter.next().is_some();
        Listing {
            entries,
            continue_after: if more { last_key } else { None },
        }
    }

    /// Versions of a live secret (creation order) after version `after`, at most `max`. A name
    /// that does not exist lists nothing (recording: `{"value":[],"nextLink":null}`).
    pub fn list_versions(
        &self,
        name: &str,
        after: Option<&str>,
        max: usize,
        now: Now,
    ) -> Result<(Option<&SecretRecord>, Listing<'_, &SecretVersion>), KeyVaultError> {
        check_name(name)?;
        let record = match self.phase_of(name, now) {
            (Some(r), Phase::Live) => r,
            _ => {
                return Ok((
                    None,
                    Listing {
                        entries: Vec::new(),
                        continue_after: None,
                    },
                ));
            }
        };
        let start = match after {
            Some(a) => record
                .versions
                .iter()
                .position(|v| v.version == a)
                .map(|i| i + 1)
                .ok_or_else(|| {
                    KeyVaultError::BadParameter("The skip token is not valid.".into())
                })?,
            None => 0,
        };
        let rest = &record.versions[start.min(record.versions.len())..];
        let entries: Vec<&SecretVersion> = rest.iter().take(max).collect();
        let continue_after = if rest.len() > max {
            entries.last().map(|v| v.version.as_str())
        } else {
            None
        };
        Ok((
            Some(record),
            Listing {
                entries,
                continue_after,
            },
        ))
    }

    /// Number of records held (any state), for diagnostics and tests.
    pub fn len(&self) -> usize {
        self.secrets.len()
    }

    pub fn is_empty(&self) -> bool {
        self.secrets.is_empty()
    }
}

fn seed_record(seed: &SeedSecret, now: Now) -> SecretRecord {
    SecretRecord {
        name: seed.name.clone(),
        managed: seed.managed,
        versions: vec![SecretVersion {
            version: names::new_version_id(),
            value: seed.value.clone(),
            content_type: seed.content_type.clone(),
            tags: seed.tags.clone(),
            enabled: seed.enabled,
            nbf: seed.not_before,
            exp: seed.expires,
            created: now.secs,
            updated: now.secs,
        }],
        lifecycle: Lifecycle::Active { settles_at_ms: 0 },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vault(pending: u64) -> VaultState {
        let mut config = VaultConfig::new("kv-a", "t", "westus");
        config.pending_operation_ms = pending;
        config.secrets.push(SeedSecret::new("seeded", "s"));
        VaultState::open(Arc::new(config), None, Now::from_millis(1_000_000)).unwrap()
    }

    fn set_body(value: &str) -> SetSecretBody {
        SetSecretBody {
            value: Some(serde_json::Value::String(value.into())),
            tags: None,
            content_type: None,
            attributes: None,
        }
    }

    const T0: i64 = 1_000_000;

    #[test]
    fn set_appends_versions_and_get_reads_latest_or_by_version() {
        let mut v = vault(0);
        let now = Now::from_millis(T0);
        let first = v
            .set("Name", set_body("one"), now)
            .unwrap()
            .1
            .version
            .clone();
        v.set("name", set_body("two"), now).unwrap();
        assert_eq!(v.get("NAME", None, now).unwrap().1.value, "two");
        assert_eq!(v.get("name", Some(&first), now).unwrap().1.value, "one");
        // The first spelling is kept for ids.
        assert_eq!(v.get("name", None, now).unwrap().0.name, "Name");
        assert!(matches!(
            v.get("name", Some("00000000000000000000000000000000"), now),
            Err(KeyVaultError::SecretNotFound { .. })
        ));
        assert_eq!(v.get("seeded", None, now).unwrap().1.value, "s");
    }

    #[test]
    fn values_over_25_kb_and_bad_names_are_refused() {
        let mut v = vault(0);
        let now = Now::from_millis(T0);
        assert!(v.set("big", set_body(&"x".repeat(25 * 1024)), now).is_ok());
        let e = v
            .set("big", set_body(&"x".repeat(25 * 1024 + 1)), now)
            .unwrap_err();
        assert!(matches!(e, KeyVaultError::BadParameter(_)));
        let e = v.set("bad_name", set_body("x"), now).unwrap_err();
        assert_eq!(
            e.to_string(),
            "The request URI contains an invalid name: bad_name"
        );
    }

    #[test]
    fn tag_count_and_lengths_and_content_type_are_limited_on_set_and_update() {
        let mut v = vault(0);
        let now = Now::from_millis(T0);
        let tags = |n: usize, name_len: usize, value_len: usize| -> BTreeMap<String, String> {
            (0..n)
                .map(|i| (format!("{i:0>name_len$}"), "v".repeat(value_len)))
                .collect()
        };
        let with_tags = |t| SetSecretBody {
            tags: Some(t),
            ..set_body("x")
        };
        assert!(v.set("t", with_tags(tags(15, 512, 256)), now).is_ok());
        for bad in [tags(16, 3, 1), tags(1, 513, 1), tags(1, 3, 257)] {
            let e = v.set("t", with_tags(bad.clone()), now).unwrap_err();
            assert_eq!(e.to_string(), "Property has invalid value\r\n");
            assert_eq!(e.status(), axum::http::StatusCode::BAD_REQUEST);
            let update = UpdateSecretBody {
                content_type: None,
                attributes: None,
                tags: Some(bad),
            };
            let e = v.update("t", None, update, now).unwrap_err();
            assert_eq!(e.codes().0, "BadParameter");
        }
        let long_type = SetSecretBody {
            content_type: Some("t".repeat(256)),
            ..set_body("x")
        };
        assert!(matches!(
            v.set("t", long_type, now).unwrap_err(),
            KeyVaultError::BadParameter(_)
        ));
        assert_eq!(v.get("t", None, now).unwrap().1.tags.len(), 15);
    }

    #[test]
    fn delete_completes_after_the_pending_time_then_blocks_reuse_until_purged() {
        let mut v = vault(1500);
        let t = |ms| Now::from_millis(T0 + ms);
        v.set("a", set_body("x"), t(0)).unwrap();
        let (_, deleted, purge_at) = v
            .delete("a", t(0))
            .map(|(r, d, p)| (r.name.clone(), d, p))
            .unwrap();
        assert_eq!(purge_at - deleted, 90 * 86_400);
        assert!(matches!(
            v.get("a", None, t(1)),
            Err(KeyVaultError::SecretNotFound { .. })
        ));
        assert!(matches!(
            v.get_deleted("a", t(1000)),
            Err(KeyVaultError::DeletedSecretNotFound { .. })
        ));
        assert!(matches!(
            v.set("a", set_body("y"), t(1000)),
            Err(KeyVaultError::BeingDeleted { .. })
        ));
        assert!(v.get_deleted("a", t(1500)).is_ok());
        assert!(matches!(
            v.set("a", set_body("y"), t(2000)),
            Err(KeyVaultError::DeletedButRecoverable { .. })
        ));
        v.purge("a", t(2000)).unwrap();
        assert!(v.set("a", set_body("y"), t(2000)).is_ok());
    }

    #[test]
    fn recover_completes_after_the_pending_time() {
        let mut v = vault(1500);
        let t = |ms| Now::from_millis(T0 + ms);
        v.set("a", set_body("x"), t(0)).unwrap();
        v.delete("a", t(0)).unwrap();
        v.recover("a", t(2000)).unwrap();
        assert!(v.get("a", None, t(2100)).is_err());
        assert!(matches!(
            v.set("a", set_body("y"), t(2100)),
            Err(KeyVaultError::BeingRecovered { .. })
        ));
        assert_eq!(v.get("a", None, t(3500)).unwrap().1.value, "x");
    }

    #[test]
    fn deleted_secrets_vanish_at_the_scheduled_purge_date() {
        let mut v = vault(0);
        let now = Now::from_millis(T0);
        v.set("a", set_body("x"), now).unwrap();
        v.delete("a", now).unwrap();
        let later = Now::from_millis(T0 + 90 * 86_400_000);
        assert!(v.get_deleted("a", later).is_err());
        assert!(v.set("a", set_body("y"), later).is_ok());
    }

    #[test]
    fn purge_protection_refuses_purge() {
        let mut config = VaultConfig::new("kv-a", "t", "westus");
        config.purge_protection = true;
        config.pending_operation_ms = 0;
        let mut v = VaultState::open(Arc::new(config), None, Now::from_millis(T0)).unwrap();
        let now = Now::from_millis(T0);
        v.set("a", set_body("x"), now).unwrap();
        v.delete("a", now).unwrap();
        assert!(matches!(
            v.purge("a", now),
            Err(KeyVaultError::PurgeProtected { .. })
        ));
    }

    #[test]
    fn disabled_versions_cannot_be_read_but_can_be_updated() {
        let mut v = vault(0);
        let now = Now::from_millis(T0);
        v.set("a", set_body("x"), now).unwrap();
        let body = UpdateSecretBody {
            content_type: Some("text/plain".into()),
            attributes: Some(AttributesIn {
                enabled: Some(false),
                nbf: None,
                exp: Some(5),
            }),
            tags: None,
        };
        let (_, updated) = v
            .update("a", None, body, Now::from_millis(T0 + 5000))
            .unwrap();
        assert!(!updated.enabled);
        assert_eq!(updated.updated, (T0 + 5000) / 1000);
        assert!(matches!(
            v.get("a", None, now),
            Err(KeyVaultError::SecretDisabled)
        ));
    }

    #[test]
    fn listing_pages_in_case_insensitive_order() {
        let mut v = vault(0);
        let now = Now::from_millis(T0);
        for n in ["b", "A", "c", "D"] {
            v.set(n, set_body("x"), now).unwrap();
        }
        let page = v.list(None, 2, now);
        let names: Vec<&str> = page.entries.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["A", "b"]);
        let after = page.continue_after.unwrap().to_owned();
        let page = v.list(Some(&after), 2, now);
        let names: Vec<&str> = page.entries.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["c", "D"]);
        let page = v.list(Some("d"), 2, now);
        assert_eq!(
            page.entries
                .iter()
                .map(|r| r.name.as_str())
                .collect::<Vec<_>>(),
            ["seeded"]
        );
        assert!(page.continue_after.is_none());
    }
}
