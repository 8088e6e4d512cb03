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
use crate::services::launch::{Launch, Tasks};

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
    const CAP: u64 = 8 << 20;
    crate::scenario::input::read_capped(path, CAP)
        .with_context(|| format!("cannot read {}", path.display()))
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

/// Where users open the case-search app: the service's Azure host name on port 443, which the
/// `internet` host's DNS view resolves to the service on both fabrics (a browser reaches it
/// through that host's proxy). Entra registers the app's reply URLs below it before the
/// service's own listener is bound, so it cannot be the listener's address.
pub fn app_url(l: &Landscape) -> anyhow::Result<String> {
    let service = l
        .service(crate::landscape::POWER_PLATFORM)
        .context("the landscape has no Power Platform service")?;
    Ok(format!("https://{}", service.host_name))
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
        app_url: app_url(l)?,
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
    pub fn new(
        fabric: &crate::fabric::Fabric,
        l: &Landscape,
        ca_pem: &[u8],
    ) -> anyhow::Result<Self> {
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

    /// Tells the flow log which connections a connector call used (`/network/flows?correlation_id=`).
    fn sent(&self, host: &str, url: &str, correlation_id: &str, started: std::time::SystemTime) {
        use crate::fabric::oracle::Resolution;
        let Some(name) = url::Url::parse(url)
            .ok()
            .and_then(|u| u.host_str().map(str::to_string))
        else {
            return;
        };
        let service = match self.handle.resolve(host, &name) {
            Ok(Resolution::Address { service, .. }) => service,
            _ => return, // nothing was connected: no flow to name
        };
        let started_ms = started
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or_default();
        self.handle
            .flow_log()
            .correlate(correlation_id, host, &service, started_ms);
    }
}

/// The running service as the rest of `up` sees it.
pub struct Started {
    pub service: ppvnet_powerplatform::PowerPlatform,
    pub entry: crate::ready::PowerPlatformEntry,
    /// The `/pp` user routes of the control API.
    pub user_routes: crate::powerplatform::control::UserRoutes,
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

/// Starts the Power Platform service on its public face (the internet side, as Microsoft's
/// service is) once Entra and the vaults answer: saving each connector reads its Secret
/// variables from Key Vault through the fabric, from each environment's active host. None when
/// the landscape has no environments (Entra then holds no Dataverse credential for the run).
pub async fn start(
    run: Launch<'_>,
    entra: &crate::services::entra::Started,
    tasks: &mut Tasks,
) -> anyhow::Result<Option<Started>> {
    let Some(dataverse_secret) = &entra.dataverse_secret else {
        return Ok(None);
    };
    let authority_host = entra.entry.authority_host.as_str();
    use crate::fabric::Face;
    use crate::landscape::{CONSENT_HOST_NAME, INTERNET, POWER_PLATFORM};
    let l = run.landscape;
    let service = l
        .service(POWER_PLATFORM)
        .context("the landscape has no Power Platform service")?;
    let face = run
        .fabric
        .bind(POWER_PLATFORM, &Face::Public)
        .context("the Power Platform service's listener")?;
    let url = crate::services::launch::face_url(run.fabric, face.address, &service.host_name);
    let ca_pem = run.pki.ca_pem().as_bytes();
    let config = config(
        l,
        authority_host,
        &url,
        dataverse_secret,
        run.opts.power_platform_limits.clone(),
    )?;
    let outbound = std::sync::Arc::new(FabricOutbound::new(run.fabric, l, ca_pem)?);
    let pp = ppvnet_powerplatform::PowerPlatform::new(config, outbound, run.clock.clone())
        .await
        .context("the Power Platform service")?;
    let leaf = run.pki.leaf(
        &[service.host_name.clone(), CONSENT_HOST_NAME.to_string()],
        &[face.address.ip()],
    )?;
    let tls = run.pki.server_config(&leaf)?;
    let endpoints = vec![face.into_endpoint()];
    let served = pp.clone();
    let shutdown = run.stopped();
    tasks.spawn(async move {
        ppvnet_powerplatform::run(served, endpoints, Some(tls), shutdown)
            .await
            .context("Power Platform")
    });
    let agent = crate::powerplatform::user::UserAgent {
        http: run.fabric.http_client(INTERNET, ca_pem)?,
        authority: format!("{}/{}", authority_host, l.scenario.tenant.id),
        power_platform: url.clone(),
    };
    let environments = l
        .scenario
        .environments
        .iter()
        .map(|e| {
            (
                e.name.clone(),
                environment_id(&l.scenario.tenant.id, &e.name),
            )
        })
        .collect();
    let passwords = l
        .scenario
        .users
        .iter()
        .map(|u| (u.upn.clone(), u.password.clone()))
        .collect();
    Ok(Some(Started {
        entry: ready_entry(l, run.fabric, &pp, &url, &service.host_name),
        service: pp,
        user_routes: crate::powerplatform::control::UserRoutes::new(agent, environments, passwords),
    }))
}

/// The ready file's `power_platform` entry.
fn ready_entry(
    l: &Landscape,
    fabric: &crate::fabric::Fabric,
    pp: &ppvnet_powerplatform::PowerPlatform,
    url: &str,
    host_name: &str,
) -> crate::ready::PowerPlatformEntry {
    use crate::landscape::HostKind;
    use crate::ready::{ConnectorEntry, EnvironmentEntry};
    let handle = fabric.handle();
    let state = handle.state();
    let s = &l.scenario;
    let environments = s
        .environments
        .iter()
        .map(|e| {
            let hosts = l
                .hosts
                .iter()
                .filter_map(|h| match &h.kind {
                    HostKind::PowerPlatform {
                        environment,
                        region,
                    } if environment == &e.name => Some((region.clone(), h.name.clone())),
                    _ => None,
                })
                .collect();
            let entry = EnvironmentEntry {
                id: environment_id(&s.tenant.id, &e.name),
                active_region: state
                    .active_regions
                    .get(&e.name)
                    .cloned()
                    .unwrap_or_default(),
                active_host: handle
                    .with_oracle(|o| o.environment_host(&e.name))
                    .unwrap_or_default(),
                hosts,
                connectors: s
                    .connectors
                    .iter()
                    .filter(|c| c.environments.contains(&e.name))
                    .map(|c| c.name.clone())
                    .collect(),
            };
            (e.name.clone(), entry)
        })
        .collect();
    let mut connectors = std::collections::BTreeMap::new();
    for saved in pp.saved_connectors() {
        let Some(c) = &saved.connector else { continue };
        let redirect_url = match &c.auth {
            ppvnet_powerplatform::connector::ConnectionAuth::OAuth(o) => o.redirect_url.clone(),
            ppvnet_powerplatform::connector::ConnectionAuth::None => None,
        };
        let entry = connectors
            .entry(c.name.clone())
            .or_insert_with(|| ConnectorEntry {
                title: c.title.clone(),
                environments: Vec::new(),
                redirect_url,
                operations: c
                    .operations
                    .iter()
                    .map(|o| format!("{} {} {}", o.method, o.path, o.id))
                    .collect(),
            });
        entry.environments.push(saved.environment.clone());
    }
    crate::ready::PowerPlatformEntry {
        url: url.to_string(),
        host_name: host_name.to_string(),
        control_url: String::new(),
        environments,
        connectors,
        connections: pp
            .connections()
            .into_iter()
            .map(|c| (c.id.clone(), c.view()))
            .collect(),
    }
}
