//! The [`Entra`] handle: the tenant's directory, signing keys, outstanding grants, and the
//! control operations a test or the harness uses to change them while the mock runs.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};

use ppvnet_common::Clock;
use serde::{Deserialize, Serialize};
use url::Url;

use crate::config::{EntraConfig, Timestamp};
use crate::directory::{ConfigError, Directory, RedirectKind, Secret};
use crate::keys::{KeySet, SigningKeyInfo};
use crate::scopes::ScopeRequest;
use crate::tokens::random_handle;

/// Authorization codes live about ten minutes (`v2-oauth2-auth-code-flow.md`).
pub(crate) const CODE_LIFETIME: i64 = 600;
/// Refresh tokens expire after 90 days without use.
pub(crate) const REFRESH_INACTIVITY: i64 = 90 * 24 * 3600;
/// Refresh tokens of single-page apps have a fixed 24-hour lifetime.
pub(crate) const SPA_REFRESH_LIFETIME: i64 = 24 * 3600;

/// Why the mock cannot start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("invalid Entra configuration: {0}")]
    Config(#[from] ConfigError),
    #[error("signing keys: {0}")]
    SigningKeys(#[from] std::io::Error),
}

/// Why a control operation was refused.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error("no application with appId `{0}`")]
    UnknownApplication(String),
    #[error("application `{app_id}` has no client secret with keyId `{key_id}`")]
    UnknownSecret { app_id: String, key_id: String },
    #[error("no user `{0}` (give a userPrincipalName or object id)")]
    UnknownUser(String),
    #[error("no signing key has been published as next; publish one first")]
    NoNextKey,
    #[error("saving signing keys: {0}")]
    SigningKeys(#[from] std::io::Error),
}

pub(crate) struct AuthCode {
    pub client_id: String,
    pub redirect_uri: String,
    pub redirect_kind: RedirectKind,
    pub user_id: String,
    pub request: ScopeRequest,
    pub nonce: Option<String>,
    pub challenge: Option<(String, PkceMethod)>,
    pub issued_at: i64,
    pub redeemed: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum PkceMethod {
    Plain,
    S256,
}

pub(crate) struct RefreshGrant {
    pub client_id: String,
    pub user_id: String,
    pub issued_at: i64,
    /// Milliseconds, compared with the user's revocation instant.
    pub issued_ms: i64,
    pub last_used: i64,
    /// Issued to a single-page app: fixed lifetime, no client secret.
    pub spa: bool,
    /// The client authenticated when it got this grant, so it must again to redeem it.
    pub confidential: bool,
    /// Revoked by `revokeSignInSessions`. Marked explicitly because a grant issued in the same
    /// millisecond as the revocation is not older than the user's `tokens_valid_from_ms`.
    pub revoked: bool,
}

pub(crate) struct Session {
    pub user_id: String,
}

#[derive(Default)]
pub(crate) struct Grants {
    pub codes: HashMap<String, AuthCode>,
    pub refresh_tokens: HashMap<String, RefreshGrant>,
    pub sessions: HashMap<String, Session>,
}

impl Grants {
    pub fn add_code(&mut self, code: AuthCode, now: i64) -> String {
        // Redeemed and expired codes are kept a while so a replay is told "already redeemed"
        // or "expired" rather than "malformed".
        self.codes
            .retain(|_, c| c.issued_at + 4 * CODE_LIFETIME > now);
        let handle = random_handle("1.A", 96);
        self.codes.insert(handle.clone(), code);
        handle
    }

    pub fn add_refresh_token(&mut self, grant: RefreshGrant, now: i64) -> String {
        self.refresh_tokens
            .retain(|_, g| g.last_used + REFRESH_INACTIVITY > now - REFRESH_INACTIVITY);
        let handle = random_handle("1.A", 144);
        self.refresh_tokens.insert(handle.clone(), grant);
        handle
    }
}

pub(crate) struct Inner {
    pub directory: RwLock<Directory>,
    pub keys: RwLock<KeySet>,
    pub grants: Mutex<Grants>,
    pub clock: Clock,
    pub authority_host: Url,
}

/// A running tenant. Cheap to clone; every clone sees every change at once.
#[derive(Clone)]
pub struct Entra {
    pub(crate) inner: Arc<Inner>,
}

/// A client secret created by [`Entra::add_client_secret`]; like Graph's `addPassword`, the
/// only time the secret text is returned.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NewClientSecret {
    pub key_id: String,
    pub display_name: Option<String>,
    pub secret_text: String,
    pub hint: String,
    pub end_date_time: Timestamp,
}

/// Parameters of [`Entra::add_client_secret`] (Graph `addPassword`).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AddClientSecret {
    #[serde(default)]
    pub display_name: Option<String>,
    /// Defaults to two years from now (the portal's default choice).
    #[serde(default)]
    pub end_date_time: Option<Timestamp>,
}

/// A client secret as listed (without its value).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClientSecretInfo {
    pub key_id: String,
    pub display_name: Option<String>,
    pub hint: String,
    pub end_date_time: Timestamp,
}

fn hint(secret: &str) -> String {
    secret.chars().take(3).collect()
}

fn poisoned_ok<T>(r: Result<T, std::sync::PoisonError<T>>) -> T {
    // A panic while holding a lock cannot leave these structures half-updated in a way
    // that matters more than stopping the whole mock would.
    r.unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Entra {
    /// Builds the tenant. `authority_host` is the URL the mock is reached at (scheme, host and
    /// port, e.g. `https://127.0.0.5:8443`); discovery documents use it when a request carries
    /// no `Host`. Token issuers are always the real Entra ones. With `data_dir` the signing keys
    /// are generated once and reused on later starts.
    pub fn new(
        config: &EntraConfig,
        clock: Clock,
        authority_host: Url,
        data_dir: Option<&Path>,
    ) -> Result<Self, StartError> {
        let directory = Directory::build(config)?;
        if let Some(dir) = data_dir {
            // It will hold the signing keys.
            ppvnet_common::private_fs::create_dir_all(dir)?;
        }
        let keys = KeySet::open(data_dir)?;
        Ok(Self {
            inner: Arc::new(Inner {
                directory: RwLock::new(directory),
                keys: RwLock::new(keys),
                grants: Mutex::new(Grants::default()),
                clock,
                authority_host,
            }),
        })
    }

    pub fn clock(&self) -> &Clock {
        &self.inner.clock
    }

    pub fn tenant_id(&self) -> String {
        self.directory().tenant_id.clone()
    }

    pub fn authority_host(&self) -> &Url {
        &self.inner.authority_host
    }

    pub(crate) fn directory(&self) -> RwLockReadGuard<'_, Directory> {
        poisoned_ok(self.inner.directory.read())
    }

    fn directory_mut(&self) -> RwLockWriteGuard<'_, Directory> {
        poisoned_ok(self.inner.directory.write())
    }

    pub(crate) fn keys(&self) -> RwLockReadGuard<'_, KeySet> {
        poisoned_ok(self.inner.keys.read())
    }

    fn keys_mut(&self) -> RwLockWriteGuard<'_, KeySet> {
        poisoned_ok(self.inner.keys.write())
    }

    pub(crate) fn grants(&self) -> MutexGuard<'_, Grants> {
        poisoned_ok(self.inner.grants.lock())
    }

    pub(crate) fn now(&self) -> i64 {
        self.inner.clock.unix()
    }

    // ---- signing keys ----

    /// The published keys and their rotation status.
    pub fn signing_keys(&self) -> Vec<SigningKeyInfo> {
        self.keys().info()
    }

    /// Step 1 of a rotation: publish a new key in the JWKS without signing with it yet.
    /// Returns its `kid`.
    pub fn publish_next_signing_key(&self) -> Result<String, ControlError> {
        Ok(self.keys_mut().publish_next()?)
    }

    /// Step 2: sign new tokens with the published next key. The old key stays published, so
    /// tokens it signed keep validating. Returns the new signing `kid`.
    pub fn switch_signing_key(&self) -> Result<String, ControlError> {
        self.keys_mut().switch()?.ok_or(ControlError::NoNextKey)
    }

    /// Step 3: stop publishing keys that no longer sign; tokens they signed stop validating.
    /// Returns the retired `kid`s.
    pub fn retire_previous_signing_keys(&self) -> Result<Vec<String>, ControlError> {
        Ok(self.keys_mut().retire_previous()?)
    }

    /// Steps 1 and 2 at once (the old key stays published until retired).
    pub fn rotate_signing_keys(&self) -> Result<String, ControlError> {
        let mut keys = self.keys_mut();
        keys.publish_next()?;
        keys.switch()?.ok_or(ControlError::NoNextKey)
    }

    // ---- client secrets ----

    pub fn client_secrets(&self, app_id: &str) -> Result<Vec<ClientSecretInfo>, ControlError> {
        let dir = self.directory();
        let app = dir
            .app(app_id)
            .ok_or_else(|| ControlError::UnknownApplication(app_id.to_string()))?;
        Ok(app
            .secrets
            .iter()
            .map(|s| ClientSecretInfo {
                key_id: s.key_id.clone(),
                display_name: s.display_name.clone(),
                hint: hint(&s.value),
                end_date_time: Timestamp(s.end),
            })
            .collect())
    }

    /// Adds a generated client secret (Graph `addPassword`).
    pub fn add_client_secret(
        &self,
        app_id: &str,
        request: AddClientSecret,
    ) -> Result<NewClientSecret, ControlError> {
        let now = self.now();
        let mut dir = self.directory_mut();
        let app = dir
            .app_mut(app_id)
            .ok_or_else(|| ControlError::UnknownApplication(app_id.to_string()))?;
        // Entra secrets are 40 characters starting with a 3-character hint and containing `~`.
        let secret_text = format!(
            "{}~{}",
            &random_handle("", 3)[..3],
            &random_handle("", 30)[..36]
        );
        let end = request
            .end_date_time
            .unwrap_or(Timestamp(now + 2 * 365 * 24 * 3600));
        let key_id = uuid::Uuid::new_v4().to_string();
        app.secrets.push(Secret {
            key_id: key_id.clone(),
            display_name: request.display_name.clone(),
            value: secret_text.clone(),
            start: Some(now),
            end: end.0,
        });
        Ok(NewClientSecret {
            key_id,
            display_name: request.display_name,
            hint: hint(&secret_text),
            secret_text,
            end_date_time: end,
        })
    }

    /// Deletes a client secret (Graph `removePassword`); it stops working at once.
    pub fn remove_client_secret(&self, app_id: &str, key_id: &str) -> Result<(), ControlError> {
        let mut dir = self.directory_mut();
        let app = dir
            .app_mut(app_id)
            .ok_or_else(|| ControlError::UnknownApplication(app_id.to_string()))?;
        let before = app.secrets.len();
        app.secrets
            .retain(|s| !s.key_id.eq_ignore_ascii_case(key_id));
        if app.secrets.len() == before {
            return Err(ControlError::UnknownSecret {
                app_id: app_id.to_string(),
                key_id: key_id.to_string(),
            });
        }
        Ok(())
    }

    /// Moves a secret's `endDateTime` to now: it then fails with AADSTS7000222.
    pub fn expire_client_secret(&self, app_id: &str, key_id: &str) -> Result<(), ControlError> {
        let now = self.now();
        let mut dir = self.directory_mut();
        let app = dir
            .app_mut(app_id)
            .ok_or_else(|| ControlError::UnknownApplication(app_id.to_string()))?;
        let secret = app
            .secrets
            .iter_mut()
            .find(|s| s.key_id.eq_ignore_ascii_case(key_id))
            .ok_or_else(|| ControlError::UnknownSecret {
                app_id: app_id.to_string(),
                key_id: key_id.to_string(),
            })?;
        secret.end = now;
        Ok(())
    }

    // ---- users ----

    /// Enables or disables sign-in (Graph `accountEnabled`) for a UPN or object id.
    pub fn set_user_enabled(&self, user: &str, enabled: bool) -> Result<(), ControlError> {
        let mut dir = self.directory_mut();
        let u = dir
            .user_mut(user)
            .ok_or_else(|| ControlError::UnknownUser(user.to_string()))?;
        u.enabled = enabled;
        Ok(())
    }

    /// Revokes the user's refresh tokens and sign-in sessions (Graph `revokeSignInSessions`).
    pub fn revoke_sign_in_sessions(&self, user: &str) -> Result<(), ControlError> {
        let now_ms = self.inner.clock.unix_millis();
        let user_id = {
            let mut dir = self.directory_mut();
            let u = dir
                .user_mut(user)
                .ok_or_else(|| ControlError::UnknownUser(user.to_string()))?;
            u.tokens_valid_from_ms = now_ms;
            u.id.clone()
        };
        let mut grants = self.grants();
        grants.sessions.retain(|_, s| s.user_id != user_id);
        for g in grants.refresh_tokens.values_mut() {
            if g.user_id == user_id {
                g.revoked = true;
            }
        }
        Ok(())
    }

    /// Revokes every user's refresh tokens and sessions.
    pub fn revoke_all_sign_in_sessions(&self) {
        let now_ms = self.inner.clock.unix_millis();
        for u in &mut self.directory_mut().users {
            u.tokens_valid_from_ms = now_ms;
        }
        let mut grants = self.grants();
        grants.sessions.clear();
        for g in grants.refresh_tokens.values_mut() {
            g.revoked = true;
        }
    }
}
