//! Wire shapes of the secrets API (OpenAPI 2025-07-01), with field order as the service sends
//! it (recordings): `value`, `contentType`, `id`, `managed`, `attributes`, `tags`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::store::{SecretRecord, SecretVersion};

/// Where ids point: the origin the client used, and the vault's recovery settings.
#[derive(Clone, Debug)]
pub struct Render<'a> {
    /// `https://{host}` exactly as the client addressed the vault (ids).
    pub origin: &'a str,
    pub recovery_level: &'static str,
    pub recoverable_days: u32,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Attributes {
    pub enabled: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nbf: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exp: Option<i64>,
    pub created: i64,
    pub updated: i64,
    pub recovery_level: &'static str,
    pub recoverable_days: u32,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SecretBundle {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    pub id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub managed: Option<bool>,
    pub attributes: Attributes,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tags: Option<BTreeMap<String, String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kid: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DeletedSecretBundle {
    pub recovery_id: String,
    pub deleted_date: i64,
    pub scheduled_purge_date: i64,
    #[serde(flatten)]
    pub bundle: SecretBundle,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Page<T> {
    pub value: Vec<T>,
    pub next_link: Option<String>,
}

#[derive(Serialize, Deserialize)]
pub struct BackupResult {
    pub value: String,
}

/// Attributes a client may send; read-only ones (`created`, `recoveryLevel`, ...) are ignored,
/// since the Rust SDK echoes them back on update (recording `update_secret_properties`).
#[derive(Deserialize, Default)]
pub struct AttributesIn {
    pub enabled: Option<bool>,
    pub nbf: Option<i64>,
    pub exp: Option<i64>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SetSecretBody {
    pub value: Option<serde_json::Value>,
    pub tags: Option<BTreeMap<String, String>>,
    pub content_type: Option<String>,
    pub attributes: Option<AttributesIn>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UpdateSecretBody {
    pub content_type: Option<String>,
    pub attributes: Option<AttributesIn>,
    pub tags: Option<BTreeMap<String, String>>,
}

#[derive(Deserialize)]
pub struct RestoreBody {
    pub value: Option<String>,
}

impl Render<'_> {
    pub fn secret_url(&self, record: &SecretRecord) -> String {
        format!("{}/secrets/{}", self.origin, record.name)
    }

    pub fn version_url(&self, record: &SecretRecord, version: &SecretVersion) -> String {
        format!(
            "{}/secrets/{}/{}",
            self.origin, record.name, version.version
        )
    }

    fn attributes(&self, version: &SecretVersion) -> Attributes {
        Attributes {
            enabled: version.enabled,
            nbf: version.nbf,
            exp: version.exp,
            created: version.created,
            updated: version.updated,
            recovery_level: self.recovery_level,
            recoverable_days: self.recoverable_days,
        }
    }

    fn tags(version: &SecretVersion) -> Option<BTreeMap<String, String>> {
        (!version.tags.is_empty()).then(|| version.tags.clone())
    }

    /// A full bundle; `with_value` is false for update, delete, recover and restore answers,
    /// which the service sends without the value (recordings).
    pub fn bundle(
        &self,
        record: &SecretRecord,
        version: &SecretVersion,
        with_value: bool,
    ) -> SecretBundle {
        SecretBundle {
            value: with_value.then(|| version.value.clone()),
            content_type: version.content_type.clone(),
            id: self.version_url(record, version),
            managed: record.managed.then_some(true),
            attributes: self.attributes(version),
            tags: Self::tags(version),
            kid: record
                .managed
                .then(|| format!("{}/keys/{}/{}", self.origin, record.name, version.version)),
        }
    }

    /// A list entry: the base id (no version) for `GET /secrets`, the versioned id for
    /// `GET /secrets/{n}/versions`.
    pub fn item(
        &self,
        record: &SecretRecord,
        version: &SecretVersion,
        versioned: bool,
    ) -> SecretBundle {
        SecretBundle {
            value: None,
            content_type: version.content_type.clone(),
            id: if versioned {
                self.version_url(record, version)
            } else {
                self.secret_url(record)
            },
            managed: record.managed.then_some(true),
            attributes: self.attributes(version),
            tags: Self::tags(version),
            kid: None,
        }
    }

    pub fn deleted(
        &self,
        record: &SecretRecord,
        version: &SecretVersion,
        deleted_date: i64,
        scheduled_purge_date: i64,
        as_list_item: bool,
    ) -> DeletedSecretBundle {
        let bundle = if as_list_item {
            self.item(record, version, false)
        } else {
            self.bundle(record, version, false)
        };
        DeletedSecretBundle {
            recovery_id: format!("{}/deletedsecrets/{}", self.origin, record.name),
            deleted_date,
            scheduled_purge_date,
            bundle,
        }
    }
}
