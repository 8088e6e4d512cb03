//! The ready file: one JSON document written when every component of a running landscape is
//! healthy. Tests and external tools read it instead of parsing logs.
//!
//! MSAL's authority is `entra.authority_host + "/" + tenant_id`.

use std::collections::BTreeMap;
use std::io::Write;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Serialize, Deserialize, Default)]
pub struct ReadyFile {
    /// Scenario name.
    pub scenario: String,
    /// Absolute path of the landscape file.
    pub scenario_file: PathBuf,
    /// `loopback`, `netns` or `docker`.
    pub network: String,
    /// Absolute path of the run's CA certificate (PEM).
    pub ca_cert: PathBuf,
    pub tenant_id: String,
    pub tenant_domain: String,
    /// Process id of `ppvnet up`.
    pub pid: u32,
    pub control_url: String,
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

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct HostEntry {
    /// Real address traffic of this host originates from.
    pub address: IpAddr,
    /// The address Azure would see.
    pub azure_address: IpAddr,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

impl ReadyFile {
    pub fn read(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            anyhow::anyhow!(
                "cannot read the ready file {}: {e} (is `ppvnet up` running?)",
                path.display()
            )
        })?;
        serde_json::from_str(&text)
            .map_err(|e| anyhow::anyhow!("{} is not a ppvnet ready file: {e}", path.display()))
    }

    pub fn write(&self, path: &Path) -> anyhow::Result<()> {
        let json = serde_json::to_vec_pretty(self)?;
        write_atomically(path, &json)
    }
}

/// Writes a file so that readers see the old content or the new one, never a half-written file.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let mut tmp = tempfile_in(dir, path)?;
    tmp.1.write_all(bytes)?;
    tmp.1.sync_all()?;
    std::fs::rename(&tmp.0, path)?;
    Ok(())
}

fn tempfile_in(dir: &Path, target: &Path) -> anyhow::Result<(PathBuf, std::fs::File)> {
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "file".into());
    // Unique per write, so concurrent writers in one process never share a temporary file.
    static WRITES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = WRITES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = dir.join(format!(".{name}.{}.{n}.tmp", std::process::id()));
    let file = std::fs::File::create(&tmp)?;
    Ok((tmp, file))
}
