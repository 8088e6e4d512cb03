//! The ready file: one JSON document written when every component of a running landscape is
//! healthy. Tests and external tools read it instead of parsing logs.
//!
//! MSAL's authority is `entra.authority_host + "/" + tenant_id`.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use ppvnet_common::private_fs;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Serialize, Deserialize, Default)]
pub struct ReadyFile {
    /// Scenario name.
    pub scenario: String,
    /// Absolute path of the landscape file.
    pub scenario_file: PathBuf,
    /// `loopback`, `netns` or `docker`.
    pub network: String,
    /// Path of the run's CA certificate (PEM): absolute, or relative to the ready file's folder
    /// when a container wrote it into a folder the machine mounted ([`crate::publish`]);
    /// [`ReadyFile::read`] makes it absolute.
    pub ca_cert: PathBuf,
    pub tenant_id: String,
    pub tenant_domain: String,
    /// Process id of `ppvnet up`.
    pub pid: u32,
    pub control_url: String,
    /// The control API's bearer token for this run (`Authorization: Bearer <control_token>`);
    /// a fresh random value each run. Optional when reading, so an older ready file still
    /// parses; the control API refuses requests without it.
    #[serde(default)]
    pub control_token: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entra: Option<EntraEntry>,
    #[serde(default)]
    pub key_vaults: BTreeMap<String, VaultEntry>,
    #[serde(default)]
    pub apis: BTreeMap<String, ApiEntry>,
    #[serde(default)]
    pub apps: BTreeMap<String, AppEntry>,
    #[serde(default)]
    pub users: BTreeMap<String, UserEntry>,
    #[serde(default)]
    pub hosts: BTreeMap<String, HostEntry>,
    /// The Power Platform service, when the landscape has environments.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub power_platform: Option<PowerPlatformEntry>,
    /// Azure Resource Manager (`management.azure.com`), serving the landscape read-only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arm: Option<ArmEntry>,
}

/// Azure Resource Manager of a running landscape.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ArmEntry {
    /// Its public face as reached from the machine (`{url}/subscriptions?api-version=2022-12-01`).
    pub url: String,
    /// Its Azure host name, `management.azure.com`.
    pub host_name: String,
    /// The landscape's subscription and the resource groups ARM lists in it.
    pub subscription_id: String,
    pub resource_groups: Vec<String>,
}

/// The Power Platform service of a running landscape.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PowerPlatformEntry {
    /// The service's public face as reached from the machine (`POST {url}/invoke`).
    pub url: String,
    /// Its Azure host name (`unitedstates-001.azure-apim.net`).
    pub host_name: String,
    /// The control routes (environments, connectors, connections, re-save).
    pub control_url: String,
    pub environments: BTreeMap<String, EnvironmentEntry>,
    pub connectors: BTreeMap<String, ConnectorEntry>,
    /// Connections that exist when the landscape is ready, by id (users create more with
    /// `ppvnet pp connect` or `ppvnet pp invoke`; `ppvnet pp connections` lists them live).
    pub connections: BTreeMap<String, serde_json::Value>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct EnvironmentEntry {
    /// The environment id (`x-ms-client-environment-id: /providers/Microsoft.PowerApps/environments/{id}`).
    pub id: String,
    pub active_region: String,
    /// The host its runtime sends from now (`pp-prod-westus`).
    pub active_host: String,
    /// Runtime hosts by region.
    pub hosts: BTreeMap<String, String>,
    pub connectors: Vec<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ConnectorEntry {
    pub title: String,
    pub environments: Vec<String>,
    /// The consent redirect URI the connector's app registration must list.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redirect_url: Option<String>,
    /// `METHOD /path operationId` per operation.
    pub operations: Vec<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct EntraEntry {
    /// `https://<address>[:port]`; the MSAL authority is this + "/" + tenant id.
    pub authority_host: String,
    /// The full v2 authority of the landscape's tenant.
    pub authority: String,
    /// Whether the mock also listens on port 443 of its address (MSAL's user realm discovery
    /// always goes to port 443).
    pub port_443: bool,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct VaultEntry {
    /// The vault URL as reached from the machine running `ppvnet up` (its public face).
    pub url: String,
    /// `Enabled` or `Disabled`.
    pub public_network_access: String,
    /// The real Azure URL (`https://{vault}.vault.azure.net/`).
    pub azure_url: String,
    /// Private endpoint name → URL of the vault through that endpoint.
    #[serde(default)]
    pub private_endpoints: BTreeMap<String, String>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ApiEntry {
    pub url: String,
    pub app_id_uri: String,
    pub client_id: String,
    pub public_network_access: String,
    pub host_name: String,
    #[serde(default)]
    pub private_endpoints: BTreeMap<String, String>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct AppEntry {
    pub client_id: String,
    /// The first client secret, if the app has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
    #[serde(default)]
    pub identifier_uris: Vec<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct UserEntry {
    pub password: String,
    pub object_id: String,
    pub display_name: String,
}

/// A host as the ready file lists it: the fabric's own entry.
pub use crate::fabric::HostEntry;

/// The landscape's app registrations as the ready file lists them (first secret only).
pub fn app_entries(s: &crate::scenario::model::Scenario) -> BTreeMap<String, AppEntry> {
    s.apps
        .iter()
        .map(|a| {
            let entry = AppEntry {
                client_id: a.client_id.clone(),
                client_secret: a.secrets.first().map(|x| x.value.clone()),
                identifier_uris: a.identifier_uris.clone(),
            };
            (a.name.clone(), entry)
        })
        .collect()
}

/// The landscape's users as the ready file lists them.
pub fn user_entries(s: &crate::scenario::model::Scenario) -> BTreeMap<String, UserEntry> {
    s.users
        .iter()
        .map(|u| {
            let entry = UserEntry {
                password: u.password.clone(),
                object_id: u.object_id.clone(),
                display_name: u.display_name.clone(),
            };
            (u.upn.clone(), entry)
        })
        .collect()
}

impl ReadyFile {
    pub fn read(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            anyhow::anyhow!(
                "cannot read the ready file {}: {e} (is `ppvnet up` running?)",
                path.display()
            )
        })?;
        let mut ready: Self = serde_json::from_str(&text)
            .map_err(|e| anyhow::anyhow!("{} is not a ppvnet ready file: {e}", path.display()))?;
        if ready.ca_cert.is_relative() {
            let dir = path.parent().unwrap_or(Path::new("."));
            ready.ca_cert = std::path::absolute(dir.join(&ready.ca_cert))?;
        }
        Ok(ready)
    }

    pub fn write(&self, path: &Path) -> anyhow::Result<()> {
        let json = serde_json::to_vec_pretty(self)?;
        write_atomically(path, &json)
    }
}

/// A run's hold on its ready file path: one running landscape per ready file.
///
/// The hold is an advisory lock (`flock`) on `<ready file>.lock`, which holds the owner's pid.
/// The kernel drops it when the process ends however it ends, so a ready file left by a killed
/// run is taken over, while one of a live run (in another process or this one) is refused by
/// name. Only the holder removes the ready file, so stopping one run never deletes another's.
#[derive(Debug)]
pub struct ReadyClaim {
    ready: PathBuf,
    lock_path: PathBuf,
    /// Held for the claim's life; closed (unlocked) after `drop` removed the files.
    _lock: std::fs::File,
}

impl ReadyClaim {
    /// Claims `ready`, or says which running landscape holds it.
    pub fn take(ready: &Path) -> anyhow::Result<Self> {
        let dir = ready
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        private_fs::create_dir_all(dir)?;
        let mut name = ready.file_name().unwrap_or_default().to_os_string();
        name.push(".lock");
        let lock_path = dir.join(name);
        loop {
            let lock = open_lock(&lock_path)?;
            match lock.try_lock() {
                Ok(()) => {}
                Err(std::fs::TryLockError::WouldBlock) => {
                    return Err(held_by_another_run(ready, &lock_path));
                }
                Err(std::fs::TryLockError::Error(e)) => {
                    return Err(anyhow::anyhow!("cannot lock {}: {e}", lock_path.display()));
                }
            }
            // The previous holder removes the lock file when it stops: if it did so between
            // our open and our lock, we hold a file no one else will look at. Start over.
            if !same_file(&lock, &lock_path) {
                continue;
            }
            let mut lock = lock;
            lock.set_len(0)?;
            lock.write_all(std::process::id().to_string().as_bytes())?;
            return Ok(Self {
                ready: ready.to_path_buf(),
                lock_path,
                _lock: lock,
            });
        }
    }
}

/// Letting go removes the ready file and the lock file while still holding the lock, so no
/// other run can have written either in between: a stopped run (or one that failed to start)
/// leaves nothing behind.
impl Drop for ReadyClaim {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.ready);
        let _ = std::fs::remove_file(&self.lock_path);
    }
}

fn open_lock(path: &Path) -> anyhow::Result<std::fs::File> {
    private_fs::open_or_create(path)
        .map_err(|e| anyhow::anyhow!("cannot open {}: {e}", path.display()))
}

fn same_file(file: &std::fs::File, path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (file.metadata(), std::fs::metadata(path)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

/// The refusal, naming the running landscape by pid (and scenario, once it is ready).
fn held_by_another_run(ready: &Path, lock_path: &Path) -> anyhow::Error {
    let pid = std::fs::read_to_string(lock_path)
        .ok()
        .and_then(|t| t.trim().parse::<u32>().ok());
    let scenario = ReadyFile::read(ready)
        .ok()
        .map(|r| format!(", landscape '{}' on the {} fabric", r.scenario, r.network))
        .unwrap_or_default();
    let who = match pid {
        Some(pid) => format!("pid {pid}{scenario}"),
        None => format!("a process that is still starting{scenario}"),
    };
    let stop = match pid {
        Some(pid) if pid == std::process::id() => "stop it first".to_string(),
        Some(pid) => format!("stop it first (kill {pid})"),
        None => "stop it first".to_string(),
    };
    anyhow::anyhow!(
        "{} belongs to a landscape that is still running ({who}); {stop}, or give this run its \
         own --ready-file",
        ready.display()
    )
}

/// Writes a ready-file-like document (the ready file, PKI files, program keys: passwords,
/// client secrets, the control token, private keys) so readers see the old content or the new
/// one, owner-only from the start ([`private_fs`]), in a folder created 0700 when it is missing.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    private_fs::create_dir_all(dir)?;
    private_fs::replace(path, bytes)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn a_relative_ca_path_is_read_from_the_ready_file_s_folder() {
        let root = tempfile::tempdir().unwrap();
        let file = root.path().join("mounted/ready.json");
        let written = ReadyFile {
            ca_cert: "run-1/ca.pem".into(),
            ..Default::default()
        };
        written.write(&file).unwrap();
        let read = ReadyFile::read(&file).unwrap();
        assert_eq!(read.ca_cert, root.path().join("mounted/run-1/ca.pem"));
    }

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn files_are_owner_only_in_owner_only_new_folders() {
        let root = tempfile::tempdir().unwrap();
        std::fs::set_permissions(root.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let file = root.path().join("a/b/ready.json");
        write_atomically(&file, b"{}").unwrap();
        assert_eq!(mode(&file), 0o600);
        assert_eq!(mode(&root.path().join("a")), 0o700);
        assert_eq!(mode(&root.path().join("a/b")), 0o700);
        // The folder that was there keeps its mode.
        assert_eq!(mode(root.path()), 0o755);
        // A replaced file is owner-only too, even when the old one was not.
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        write_atomically(&file, b"{\"x\": 1}").unwrap();
        assert_eq!(mode(&file), 0o600);
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "{\"x\": 1}");
        let names: Vec<_> = std::fs::read_dir(root.path().join("a/b"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["ready.json"], "no temporary file is left");
    }
}
