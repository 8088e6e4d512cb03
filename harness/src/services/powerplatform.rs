//! Landscape → `ppvnet_powerplatform::runtime::RuntimeConfig`: the environments with their
//! variables, the connectors read from their files, and Dataverse's run credential.

use std::path::Path;

use anyhow::Context;
use ppvnet_powerplatform::connector::Upload;
use ppvnet_powerplatform::runtime::config::{
    ClientCredential, ConnectorConfig, DATAVERSE_APP_ID, EnvironmentConfig, Limits, RuntimeConfig,
    VariableConfig, VariableKind,
};

use crate::landscape::Landscape;
use crate::scenario::model::{Connector, VariableType};

/// The environment id of an environment: a GUID derived from the tenant and the name, stable
/// across runs so URLs and ready files can be compared.
pub fn environment_id(tenant: &str, environment: &str) -> String {
    uuid::Uuid::new_v5(
        &uuid::Uuid::NAMESPACE_URL,
        format!("ppvnet:{tenant}:environment:{environment}").as_bytes(),
    )
    .to_string()
}

/// A connector's files as the maker portal receives them: the definition, the properties, and
/// whether a `script.csx` ships beside them (refused at import: custom code cannot run here).
pub fn read_upload(base_dir: &Path, c: &Connector) -> anyhow::Result<Upload> {
    let swagger_path = base_dir.join(&c.api_definition);
    let properties_path = base_dir.join(&c.api_properties);
    let swagger = read_capped(&swagger_path)
        .with_context(|| format!("connector {}: apiDefinition", c.name))?;
    let properties = read_capped(&properties_path)
        .with_context(|| format!("connector {}: apiProperties", c.name))?;
    let script = swagger_path
        .parent()
        .map(|d| d.join("script.csx"))
        .and_then(|p| std::fs::metadata(p).ok())
        .filter(|m| m.is_file())
        .map(|m| m.len());
    Ok(Upload {
        swagger,
        properties,
        script,
    })
}

/// Reads a regular file of at most 8 MiB (definitions over 1 MB are refused at import with the
/// maker's words; this cap only keeps a FIFO or `/dev/zero` from being read forever).
fn read_capped(path: &Path) -> anyhow::Result<Vec<u8>> {
    use std::io::Read;
    const CAP: u64 = 8 << 20;
    let meta = std::fs::metadata(path).with_context(|| format!("cannot read {}", path.display()))?;
    anyhow::ensure!(meta.is_file(), "{} is not a regular file", path.display());
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .with_context(|| format!("cannot read {}", path.display()))?
        .take(CAP + 1)
        .read_to_end(&mut bytes)
        .with_context(|| format!("cannot read {}", path.display()))?;
    anyhow::ensure!(
        bytes.len() as u64 <= CAP,
        "{} is larger than {CAP} bytes",
        path.display()
    );
    Ok(bytes)
}

fn kind(t: VariableType) -> VariableKind {
    match t {
        VariableType::String => VariableKind::String,
        VariableType::Number => VariableKind::Number,
        VariableType::Boolean => VariableKind::Boolean,
        VariableType::Json => VariableKind::Json,
        VariableType::Secret => VariableKind::Secret,
    }
}

/// The Power Platform service's configuration for a landscape.
pub fn config(
    l: &Landscape,
    authority_host: &str,
    public_url: &str,
    dataverse_secret: &str,
    limits: Limits,
) -> anyhow::Result<RuntimeConfig> {
    let s = &l.scenario;
    let environments = s
        .environments
        .iter()
        .map(|e| EnvironmentConfig {
            name: e.name.clone(),
            id: environment_id(&s.tenant.id, &e.name),
            variables: e
                .variables
                .iter()
                .map(|v| VariableConfig {
                    schema_name: v.schema_name.clone(),
                    kind: kind(v.kind),
                    value: v.value.clone(),
                })
                .collect(),
        })
        .collect();
    let mut connectors = Vec::new();
    for c in &s.connectors {
        connectors.push(ConnectorConfig {
            name: c.name.clone(),
            environments: c.environments.clone(),
            upload: read_upload(&l.base_dir, c)?,
        });
    }
    Ok(RuntimeConfig {
        tenant_id: s.tenant.id.clone(),
        tenant_domain: s.tenant.domain.clone(),
        authority_host: authority_host.trim_end_matches('/').to_string(),
        public_url: public_url.trim_end_matches('/').to_string(),
        environments,
        connectors,
        dataverse: ClientCredential {
            client_id: DATAVERSE_APP_ID.to_string(),
            client_secret: dataverse_secret.to_string(),
        },
        limits,
    })
}

/// The fabric as the Power Platform service's way out: a client per host that originates from
/// that host and resolves names by its DNS view, built once at start for every environment
/// runtime host and the internet; the active host read from the oracle on every call, so an
/// outage or a failover moves the next call at once.
pub struct FabricOutbound {
    handle: crate::fabric::FabricHandle,
    clients: std::collections::BTreeMap<String, reqwest::Client>,
}

impl FabricOutbound {
    pub fn new(fabric: &crate::fabric::Fabric, l: &Landscape, ca_pem: &[u8]) -> anyhow::Result<Self> {
        use crate::landscape::{HostKind, INTERNET};
        let mut clients = std::collections::BTreeMap::new();
        for h in &l.hosts {
            if matches!(h.kind, HostKind::PowerPlatform { .. }) || h.name == INTERNET {
                clients.insert(h.name.clone(), fabric.http_client(&h.name, ca_pem)?);
            }
        }
        Ok(Self {
            handle: fabric.handle(),
            clients,
        })
    }
}

impl ppvnet_powerplatform::runtime::Outbound for FabricOutbound {
    fn active_host(&self, environment: &str) -> Result<String, String> {
        self.handle
            .with_oracle(|o| o.environment_host(environment))
            .map_err(|e| e.to_string())
    }

    fn client(&self, host: &str) -> Result<reqwest::Client, String> {
        self.clients
            .get(host)
            .cloned()
            .ok_or_else(|| format!("host {host} has no client in this landscape"))
    }
}

/// What starting the Power Platform service needs from the run (one launch context instead of
/// a long argument list).
pub struct Launch<'a> {
    pub landscape: &'a Landscape,
    pub fabric: &'a crate::fabric::Fabric,
    pub pki: &'a crate::pki::Pki,
    pub clock: &'a ppvnet_common::Clock,
    pub authority_host: &'a str,
    pub limits: Limits,
    pub stop: tokio::sync::watch::Receiver<bool>,
}

/// The running service as the rest of `up` sees it.
pub struct Started {
    pub service: ppvnet_powerplatform::runtime::PowerPlatform,
    pub entry: crate::ready::PowerPlatformEntry,
    /// The `/pp` user routes of the control API.
    pub user_routes: crate::powerplatform::control::UserRoutes,
    pub task: futures::future::BoxFuture<'static, anyhow::Result<()>>,
}

/// A fresh secret for Dataverse's client credentials in this run.
/// (Two version-4 UUIDs: 244 random bits from the OS's generator.)
pub fn dataverse_secret() -> String {
    format!(
        "ppvnet-dv~{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}
