//! `ppvnet up`: materialize the fabric, start every service on its hosts, write the ready file,
//! and take it all down again.
//!
//! [`start`] is what tests call in-process; [`run_until_signal`] is the CLI around it. A team's
//! own API program (`implementation: {kind: command}`) is started on the `internet` host with
//! its faces handed over by socket activation (`spawn_external` documents the contract).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::control::{self, ControlState};
use crate::fabric::{Fabric, FabricKind};
use crate::landscape::Landscape;
use crate::pki::Pki;
use crate::ready::{self, ReadyFile};
use ppvnet_common::Clock;

/// Options of one run.
#[derive(Clone, Debug)]
pub struct UpOptions {
    pub network: FabricKind,
    /// Where to write the ready file.
    pub ready_file: PathBuf,
    /// Directory for the run's CA and other per-run files; removed at shutdown.
    pub run_dir: PathBuf,
    /// Port of the control API on 127.0.0.1 (0 = any free port).
    pub control_port: u16,
    /// Keeps state across runs when set: Entra's signing keys, the vaults' secrets.
    pub data_dir: Option<PathBuf>,
    /// Appends every VNet flow-log record as a JSON line to this file.
    pub flow_log_file: Option<PathBuf>,
    /// The connector runtime's limits (the 120 s call timeout, 500 calls per minute per
    /// connection); tests shorten them.
    pub power_platform_limits: ppvnet_powerplatform::runtime::config::Limits,
}

impl UpOptions {
    /// Defaults next to the ready file: `<ready file dir>/run-<pid>/`.
    pub fn new(network: FabricKind, ready_file: PathBuf) -> Self {
        let dir = ready_file
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."));
        Self {
            network,
            run_dir: dir.join(format!("run-{}", std::process::id())),
            ready_file,
            control_port: 0,
            data_dir: None,
            flow_log_file: None,
            power_platform_limits: Default::default(),
        }
    }
}

/// What every service's start needs from the run: one launch context instead of a list of
/// arguments (the same set each `start_*` function used to take one by one).
#[derive(Clone, Copy)]
struct Launch<'a> {
    landscape: &'a Landscape,
    opts: &'a UpOptions,
    fabric: &'a Fabric,
    pki: &'a Pki,
    clock: &'a Clock,
    stop_rx: &'a watch::Receiver<bool>,
}

/// A running landscape.
pub struct Running {
    ready: ReadyFile,
    ready_path: PathBuf,
    /// Directories this run created (the ready file's folder), removed at stop when empty.
    created_dirs: Vec<PathBuf>,
    run_dir: PathBuf,
    stop: watch::Sender<bool>,
    tasks: JoinSet<anyhow::Result<()>>,
    fabric: Fabric,
    pub clock: Clock,
}

/// A future that resolves when the run is told to stop.
fn stopped(rx: &watch::Receiver<bool>) -> impl std::future::Future<Output = ()> + Send + 'static {
    let mut rx = rx.clone();
    async move {
        let _ = rx.wait_for(|stop| *stop).await;
    }
}

/// Starts the landscape and writes the ready file once every component is healthy.
pub async fn start(landscape: &Landscape, opts: &UpOptions) -> anyhow::Result<Running> {
    let s = &landscape.scenario;
    let clock = Clock::new();
    let created_dirs: Vec<PathBuf> = [opts.ready_file.parent(), opts.run_dir.parent()]
        .into_iter()
        .flatten()
        .filter(|d| !d.as_os_str().is_empty() && !d.exists())
        .map(Path::to_path_buf)
        .collect();
    let pki = Pki::create(&opts.run_dir, &s.name)?;
    let fabric = Fabric::materialize_with(
        landscape,
        opts.network,
        crate::fabric::FabricOptions {
            flow_log_file: opts.flow_log_file.clone(),
            ..Default::default()
        },
    )
    .await?;
    let (stop, stop_rx) = watch::channel(false);
    let mut tasks = JoinSet::new();

    let control_listener = std::net::TcpListener::bind(("127.0.0.1", opts.control_port))
        .with_context(|| {
            format!(
                "cannot bind the control API on 127.0.0.1:{}",
                opts.control_port
            )
        })?;
    let control_addr: SocketAddr = control_listener.local_addr()?;
    let control_token = control::new_token();
    let run = Launch {
        landscape,
        opts,
        fabric: &fabric,
        pki: &pki,
        clock: &clock,
        stop_rx: &stop_rx,
    };
    let entra = start_entra(run, &mut tasks).await?;
    let key_vaults = start_key_vaults(run, &entra, &mut tasks)?;
    let apis = start_apis(run, &entra, &mut tasks).await?;
    let arm = crate::services::arm::start(crate::services::arm::Launch {
        landscape,
        fabric: &fabric,
        pki: &pki,
        clock: &clock,
        authority_host: &entra.entry.authority_host,
        stop: stop_rx.clone(),
    })?;
    tasks.spawn(arm.task);
    // Probe from the public internet host: in the netns fabric faces live inside namespaces.
    let probe = fabric.http_client(crate::landscape::INTERNET, pki.ca_pem().as_bytes())?;
    wait_healthy(
        &format!(
            "{}/{}/v2.0/.well-known/openid-configuration",
            entra.entry.authority_host, s.tenant.id
        ),
        Some(&probe),
    )
    .await?;
    // Saving connectors reads Key Vault as Dataverse: Entra must answer first.
    let power_platform = start_power_platform(run, &entra, &mut tasks).await?;

    let control_router = control_routes(
        landscape,
        &clock,
        &fabric,
        &entra,
        power_platform
            .as_ref()
            .map(|(service, _, routes)| (service, routes)),
    )?;
    // Last, so the guard covers every nested router and the fallback.
    let control_router = control::guard::layer(
        control_router,
        control::Guard::new(control_addr, &control_token),
    );
    let shutdown = stopped(&stop_rx);
    tasks.spawn(async move {
        ppvnet_common::serve(
            vec![ppvnet_common::Endpoint::public(control_listener)],
            control_router,
            None,
            shutdown,
        )
        .await
        .context("control API")
    });

    let ready = ReadyFile {
        scenario: s.name.clone(),
        scenario_file: std::path::absolute(&landscape.file)?,
        network: serde_json::to_value(opts.network)?
            .as_str()
            .unwrap_or_default()
            .to_string(),
        ca_cert: pki.ca_path().to_path_buf(),
        tenant_id: s.tenant.id.clone(),
        tenant_domain: s.tenant.domain.clone(),
        pid: std::process::id(),
        control_url: format!("http://{control_addr}"),
        control_token,
        entra: Some(entra.entry.clone()),
        key_vaults,
        apis,
        apps: ready::app_entries(s),
        users: ready::user_entries(s),
        hosts: ready::host_entries(&fabric),
        power_platform: power_platform.map(|(_, mut entry, _)| {
            entry.control_url = format!("http://{control_addr}/powerplatform");
            entry
        }),
        arm: Some(arm.entry),
    };
    wait_healthy(&format!("{}/healthz", ready.control_url), None).await?;
    ready.write(&opts.ready_file)?;
    Ok(Running {
        ready,
        ready_path: opts.ready_file.clone(),
        created_dirs,
        run_dir: opts.run_dir.clone(),
        stop,
        tasks,
        fabric,
        clock,
    })
}

/// The Power Platform service, when the landscape has environments (Entra then holds
/// Dataverse's credential for this run): its service, ready entry and `/pp` routes.
async fn start_power_platform(
    run: Launch<'_>,
    entra: &StartedEntra,
    tasks: &mut JoinSet<anyhow::Result<()>>,
) -> anyhow::Result<
    Option<(
        ppvnet_powerplatform::PowerPlatform,
        ready::PowerPlatformEntry,
        crate::powerplatform::control::UserRoutes,
    )>,
> {
    let Some(secret) = &entra.dataverse_secret else {
        return Ok(None);
    };
    let launch = crate::services::powerplatform::Launch {
        landscape: run.landscape,
        fabric: run.fabric,
        pki: run.pki,
        clock: run.clock,
        authority_host: &entra.entry.authority_host,
        limits: run.opts.power_platform_limits.clone(),
        stop: run.stop_rx.clone(),
    };
    let started = crate::services::powerplatform::start(launch, secret).await?;
    tasks.spawn(started.task);
    Ok(Some((started.service, started.entry, started.user_routes)))
}

/// The control API's routes: the run's own, then each service's under its prefix.
fn control_routes(
    landscape: &Landscape,
    clock: &Clock,
    fabric: &Fabric,
    entra: &StartedEntra,
    power_platform: Option<(
        &ppvnet_powerplatform::PowerPlatform,
        &crate::powerplatform::control::UserRoutes,
    )>,
) -> anyhow::Result<axum::Router> {
    let mut router = control::router(ControlState {
        clock: clock.clone(),
        summary: serde_json::to_value(landscape.summary())?,
    })
    .nest("/entra", ppvnet_entra::control_router(entra.entra.clone()))
    .nest("/network", crate::fabric::control_router(fabric.handle()));
    if let Some((service, routes)) = power_platform {
        router = router
            .nest(
                "/powerplatform",
                ppvnet_powerplatform::control_router(service.clone()),
            )
            .nest("/pp", crate::powerplatform::control::router(routes.clone()));
    }
    Ok(router)
}

/// Polls a URL until it answers 200 (services start in the background).
async fn wait_healthy(url: &str, client: Option<&reqwest::Client>) -> anyhow::Result<()> {
    let plain = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(2))
        .build()?;
    let client = client.unwrap_or(&plain);
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        match client.get(url).send().await {
            Ok(r) if r.status().is_success() => return Ok(()),
            _ if tokio::time::Instant::now() > deadline => {
                anyhow::bail!("{url} did not become healthy within 30 s")
            }
            _ => tokio::time::sleep(std::time::Duration::from_millis(20)).await,
        }
    }
}

/// The URL of a socket address, without the port when it is HTTPS's 443.
fn https_url(addr: SocketAddr) -> String {
    if addr.port() == 443 {
        format!("https://{}", addr.ip())
    } else {
        format!("https://{addr}")
    }
}

/// The URL of a service face for the ready file: its address on loopback; in the netns fabric
/// its Azure host name, which each namespace's DNS resolves to the face that host may use.
pub(crate) fn face_url(fabric: &Fabric, address: SocketAddr, host_name: &str) -> String {
    if fabric.kind() == FabricKind::Netns {
        format!("https://{host_name}")
    } else {
        https_url(address)
    }
}

/// A service's faces, bound: its public endpoint and each of its private endpoints.
struct BoundFaces {
    endpoints: Vec<ppvnet_common::Endpoint>,
    /// The public face's URL (no trailing slash).
    public_url: String,
    /// Private endpoint name → URL.
    private_urls: BTreeMap<String, String>,
    /// Every face's address.
    addresses: Vec<SocketAddr>,
}

/// Faces for which `for_program` holds are bound for an external program
/// ([`Fabric::bind_for_program`]), the others for a service in this process.
fn bind_faces(
    fabric: &Fabric,
    service: &crate::landscape::Service,
    for_program: impl Fn(&crate::fabric::Face) -> bool,
) -> anyhow::Result<BoundFaces> {
    use crate::fabric::Face;
    let mut faces = vec![Face::Public];
    faces.extend(
        service
            .private_endpoints
            .iter()
            .cloned()
            .map(Face::PrivateEndpoint),
    );
    let mut out = BoundFaces {
        endpoints: Vec::new(),
        public_url: String::new(),
        private_urls: BTreeMap::new(),
        addresses: Vec::new(),
    };
    for face in faces {
        let bound = if for_program(&face) {
            fabric.bind_for_program(&service.name, &face)
        } else {
            fabric.bind(&service.name, &face)
        }
        .with_context(|| format!("{} face {face:?}", service.name))?;
        out.addresses.push(bound.address);
        let url = face_url(fabric, bound.address, &service.host_name);
        match face {
            Face::Public => out.public_url = url,
            Face::PrivateEndpoint(pe) => {
                out.private_urls.insert(pe, url);
            }
        }
        out.endpoints.push(bound.into_endpoint());
    }
    Ok(out)
}

/// `host[:port]` forms a client may send in `Host` for an address.
fn host_forms(addr: SocketAddr) -> Vec<String> {
    let mut forms = vec![addr.to_string()];
    if addr.port() == 443 {
        forms.push(addr.ip().to_string());
    }
    forms
}

struct StartedEntra {
    entra: ppvnet_entra::Entra,
    entry: ready::EntraEntry,
    /// The client secret Dataverse gets tokens with in this run (landscapes with environments).
    dataverse_secret: Option<String>,
}

/// Entra on the public internet, answering as `login.microsoftonline.com`. MSAL's user realm
/// discovery always goes to port 443 of the authority's address, so the mock also listens there
/// whenever the port can be bound.
async fn start_entra(
    run: Launch<'_>,
    tasks: &mut JoinSet<anyhow::Result<()>>,
) -> anyhow::Result<StartedEntra> {
    let Launch {
        landscape,
        opts,
        fabric,
        pki,
        clock,
        stop_rx,
    } = run;
    use crate::fabric::Face;
    let face = fabric
        .bind("entra", &Face::Public)
        .context("Entra's listener")?;
    let address = face.address;
    let mut endpoints = vec![face.into_endpoint()];
    let port_443 = if address.port() == 443 {
        true
    } else {
        match fabric.bind_port("entra", &Face::Public, 443) {
            Ok(extra) => {
                endpoints.push(extra.into_endpoint());
                true
            }
            Err(e) => {
                eprintln!(
                    "note: Entra cannot listen on port 443 of {} ({e}); MSAL's username/password flow needs it (run as root or grant CAP_NET_BIND_SERVICE)",
                    address.ip()
                );
                false
            }
        }
    };
    // Inside namespaces `login.microsoftonline.com` resolves to the mock (the vNet's DNS), and
    // MSAL accepts only well-known authority hosts by name; on loopback, the address is the name.
    let authority_host = if fabric.kind() == FabricKind::Netns {
        format!("https://{}", crate::landscape::ENTRA_HOST_NAME)
    } else {
        https_url(address)
    };
    let mut config = crate::services::entra::config(landscape)?;
    crate::services::entra::add_arm_principal(&mut config);
    // Dataverse's credential in this run, when there is a Power Platform to use it.
    let dataverse_secret = (!landscape.scenario.environments.is_empty())
        .then(crate::services::powerplatform::dataverse_secret);
    if let Some(secret) = &dataverse_secret {
        crate::services::entra::add_power_platform_principals(&mut config, secret)?;
    }
    let key_dir = opts
        .data_dir
        .clone()
        .unwrap_or_else(|| opts.run_dir.clone())
        .join("entra");
    // Before the mock writes its signing keys there: owner-only, like the rest of the run's
    // secrets (a missing `--data-dir` is created the same way).
    crate::ready::create_private_dir_all(&key_dir)
        .with_context(|| format!("cannot create {}", key_dir.display()))?;
    let authority = authority_host.parse().context("Entra's authority URL")?;
    let key_clock = clock.clone();
    // RSA key generation and fsynced key files take hundreds of milliseconds: off the async
    // workers, which also carry the loopback fabric's relays (and, in the acceptance suite,
    // every other scenario's traffic).
    let entra = tokio::task::spawn_blocking(move || {
        ppvnet_entra::Entra::new(&config, key_clock, authority, Some(&key_dir))
    })
    .await
    .context("Entra's start")??;
    let leaf = pki.leaf(
        &[
            crate::landscape::ENTRA_HOST_NAME.to_string(),
            "login.windows.net".to_string(),
            "localhost".to_string(),
        ],
        &[address.ip()],
    )?;
    let tls = pki.server_config(&leaf)?;
    let served = entra.clone();
    let shutdown = stopped(stop_rx);
    tasks.spawn(async move {
        ppvnet_entra::run(served, endpoints, Some(tls), shutdown)
            .await
            .context("Entra")
    });
    let tenant = &landscape.scenario.tenant.id;
    Ok(StartedEntra {
        entra,
        entry: ready::EntraEntry {
            authority: format!("{authority_host}/{tenant}"),
            authority_host,
            port_443,
        },
        dataverse_secret,
    })
}

/// Every vault of the landscape in one Key Vault service, on its public face and on each of
/// its private endpoints.
fn start_key_vaults(
    run: Launch<'_>,
    entra: &StartedEntra,
    tasks: &mut JoinSet<anyhow::Result<()>>,
) -> anyhow::Result<BTreeMap<String, ready::VaultEntry>> {
    let Launch {
        landscape,
        opts,
        fabric,
        pki,
        clock,
        stop_rx,
    } = run;
    let s = &landscape.scenario;
    if s.key_vaults.is_empty() {
        return Ok(BTreeMap::new());
    }
    let mut endpoints = Vec::new();
    let mut entries = BTreeMap::new();
    let mut aliases: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut ips = Vec::new();
    let mut names = vec!["*.vault.azure.net".to_string()];
    for v in &s.key_vaults {
        let service = landscape
            .service(&v.name)
            .with_context(|| format!("vault {} has no service entry", v.name))?;
        let faces = bind_faces(fabric, service, |_| false)?;
        aliases
            .entry(v.name.clone())
            .or_default()
            .extend(faces.addresses.iter().flat_map(|a| host_forms(*a)));
        ips.extend(faces.addresses.iter().map(|a| a.ip()));
        endpoints.extend(faces.endpoints);
        names.push(service.host_name.clone());
        entries.insert(
            v.name.clone(),
            ready::VaultEntry {
                url: format!("{}/", faces.public_url),
                public_network_access: format!("{:?}", v.public_network_access),
                azure_url: format!("https://{}/", service.host_name),
                private_endpoints: faces
                    .private_urls
                    .into_iter()
                    .map(|(pe, url)| (pe, format!("{url}/")))
                    .collect(),
            },
        );
    }
    let store_dir = opts.data_dir.as_ref().map(|d| d.join("keyvault"));
    if let Some(dir) = &store_dir {
        // The vaults' stores hold their secrets: an owner-only folder before the first write.
        crate::ready::create_private_dir_all(dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let config = crate::services::keyvault::config(
        landscape,
        |v| aliases.get(v).cloned().unwrap_or_default(),
        store_dir,
    )?;
    // Key Vault fetches Entra's signing keys over the public internet, as the real service does.
    let http = fabric.http_client(crate::landscape::INTERNET, pki.ca_pem().as_bytes())?;
    let tokens = ppvnet_keyvault::EntraTokenCheck::new(
        &entra.entry.authority_host,
        [s.tenant.id.as_str()],
        http,
        clock.clone(),
    );
    let kv = ppvnet_keyvault::KeyVault::new(
        config,
        clock.clone(),
        fabric.peer_directory(),
        std::sync::Arc::new(tokens),
    )?;
    let leaf = pki.leaf(&names, &ips)?;
    let tls = pki.server_config(&leaf)?;
    let shutdown = stopped(stop_rx);
    tasks.spawn(async move {
        ppvnet_keyvault::run(kv, endpoints, Some(tls), shutdown)
            .await
            .context("Key Vault")
    });
    Ok(entries)
}

/// The builtin case search API of `api` on its bound faces.
async fn start_search_api(
    run: Launch<'_>,
    entra: &StartedEntra,
    api: &crate::scenario::model::Api,
    endpoints: Vec<ppvnet_common::Endpoint>,
    leaf: &crate::pki::Leaf,
    tasks: &mut JoinSet<anyhow::Result<()>>,
) -> anyhow::Result<()> {
    // App Service reaches Entra over the public internet.
    let http = run
        .fabric
        .http_client(crate::landscape::INTERNET, run.pki.ca_pem().as_bytes())?;
    let db_dir = run
        .opts
        .data_dir
        .clone()
        .unwrap_or_else(|| run.opts.run_dir.clone())
        .join("apis");
    crate::ready::create_private_dir_all(&db_dir)?;
    let config = crate::services::search::config(
        run.landscape,
        api,
        &entra.entry.authority_host,
        &db_dir.join(format!("{}.sqlite", api.name)),
    )?;
    let state = ppvnet_search_api::SearchApi::open(config, http, run.clock.clone())
        .await
        .with_context(|| format!("api {}", api.name))?;
    let tls = run.pki.server_config(leaf)?;
    let name = api.name.clone();
    let shutdown = stopped(run.stop_rx);
    tasks.spawn(async move {
        ppvnet_search_api::run(state, endpoints, Some(tls), shutdown)
            .await
            .with_context(|| format!("api {name}"))
    });
    Ok(())
}

/// Each API of the landscape on its public face and its private endpoints: the builtin search
/// API in-process, or a team's own program handed its faces ([`spawn_external`]).
async fn start_apis(
    run: Launch<'_>,
    entra: &StartedEntra,
    tasks: &mut JoinSet<anyhow::Result<()>>,
) -> anyhow::Result<BTreeMap<String, ready::ApiEntry>> {
    let Launch {
        landscape, fabric, ..
    } = run;
    use crate::scenario::model::{ApiImplementation, PublicNetworkAccess};
    let s = &landscape.scenario;
    let mut entries = BTreeMap::new();
    for api in &s.apis {
        let service = landscape
            .service(&api.name)
            .with_context(|| format!("api {} has no service entry", api.name))?;
        let app = s
            .apps
            .iter()
            .find(|a| a.name == api.app)
            .with_context(|| format!("api {}: unknown app {}", api.name, api.app))?;
        // A program gets every face it serves as a listener; App Service's 403 page on a
        // disabled public face is served here.
        let public_enabled = api.public_network_access == PublicNetworkAccess::Enabled;
        let program = matches!(api.implementation, ApiImplementation::Command { .. });
        let BoundFaces {
            endpoints,
            public_url,
            private_urls,
            addresses,
        } = bind_faces(fabric, service, |face| {
            program && (public_enabled || *face != crate::fabric::Face::Public)
        })?;
        let ips: Vec<_> = addresses.iter().map(|a| a.ip()).collect();
        let leaf = run
            .pki
            .leaf(&[service.host_name.clone(), "localhost".into()], &ips)?;
        let shutdown = stopped(run.stop_rx);
        match &api.implementation {
            ApiImplementation::Search { .. } => {
                start_search_api(run, entra, api, endpoints, &leaf, tasks).await?;
            }
            ApiImplementation::Command { argv } => {
                let cert_dir = run.opts.run_dir.join("apis").join(&api.name);
                crate::ready::create_private_dir_all(&cert_dir)?;
                crate::ready::write_atomically(
                    &cert_dir.join("tls.crt"),
                    leaf.cert_pem.as_bytes(),
                )?;
                crate::ready::write_atomically(&cert_dir.join("tls.key"), leaf.key_pem.as_bytes())?;
                // App Service evaluates public network access before the app sees a request: with
                // it disabled, the public face answers App Service's 403 page and the program
                // never gets it (as the builtin search API does in its own middleware).
                let (refused, faces): (Vec<_>, Vec<_>) = endpoints
                    .into_iter()
                    .partition(|e| !public_enabled && e.ingress == ppvnet_common::Ingress::Public);
                if !refused.is_empty() {
                    let tls = run.pki.server_config(&leaf)?;
                    let front = stopped(run.stop_rx);
                    let name = api.name.clone();
                    tasks.spawn(async move {
                        ppvnet_common::serve(refused, app_service_forbidden(), Some(tls), front)
                            .await
                            .with_context(|| format!("api {name}: public face"))
                    });
                }
                let env = program_env(
                    landscape,
                    api,
                    app,
                    &entra.entry,
                    run.pki.ca_path(),
                    &cert_dir,
                );
                let mut child = spawn_external(fabric, argv, &landscape.base_dir, &env, faces)
                    .with_context(|| format!("api {}: cannot start {:?}", api.name, argv))?;
                let name = api.name.clone();
                tasks.spawn(async move {
                    tokio::select! {
                        status = child.wait() => {
                            let status = status?;
                            anyhow::bail!("api {name}: the program exited with {status}")
                        }
                        _ = shutdown => {
                            let _ = child.kill().await;
                            Ok(())
                        }
                    }
                });
            }
        }
        entries.insert(
            api.name.clone(),
            ready::ApiEntry {
                url: public_url,
                app_id_uri: app.identifier_uris.first().cloned().unwrap_or_default(),
                client_id: app.client_id.clone(),
                public_network_access: format!("{:?}", api.public_network_access),
                host_name: service.host_name.clone(),
                private_endpoints: private_urls,
            },
        );
    }
    Ok(entries)
}

/// The environment of a team's API program besides its faces (README, "The landscape format").
fn program_env(
    landscape: &Landscape,
    api: &crate::scenario::model::Api,
    app: &crate::scenario::model::App,
    entra: &ready::EntraEntry,
    ca: &Path,
    cert_dir: &Path,
) -> Vec<(&'static str, std::ffi::OsString)> {
    let ca = ca.as_os_str();
    let mut env: Vec<(&str, std::ffi::OsString)> = vec![
        (
            "PPVNET_TENANT_ID",
            landscape.scenario.tenant.id.clone().into(),
        ),
        ("PPVNET_AUTHORITY", entra.authority_host.clone().into()),
        ("AZURE_AUTHORITY_HOST", entra.authority_host.clone().into()),
        ("PPVNET_CLIENT_ID", app.client_id.clone().into()),
        (
            "PPVNET_IDENTIFIER_URI",
            app.identifier_uris
                .first()
                .cloned()
                .unwrap_or_default()
                .into(),
        ),
        ("PPVNET_CA_BUNDLE", ca.to_owned()),
        ("PPVNET_TLS_CERT", cert_dir.join("tls.crt").into()),
        ("PPVNET_TLS_KEY", cert_dir.join("tls.key").into()),
        (
            "PPVNET_PUBLIC_NETWORK_ACCESS",
            format!("{:?}", api.public_network_access).into(),
        ),
    ];
    env.extend(crate::pki::CA_BUNDLE_VARIABLES.map(|v| (v, ca.to_owned())));
    env
}

/// App Service's answer on the public face of an app whose public network access is disabled.
fn app_service_forbidden() -> axum::Router {
    use axum::response::IntoResponse;
    axum::Router::new().fallback(|| async {
        ppvnet_search_api::error::ApiError::PublicAccessDenied.into_response()
    })
}

/// Starts a team's API program with its faces by socket activation, the systemd protocol: the
/// fabric binds every face (in the netns fabric inside namespaces the program cannot bind in;
/// on loopback an internal address behind the face's relay, see
/// [`Fabric::bind_for_program`]), and the program inherits the listeners as descriptors 3, 4,
/// ... with `LISTEN_FDS` (their count), `LISTEN_PID` (its own pid) and `LISTEN_FDNAMES`
/// (`public` or the private endpoint's name, `:`-separated, in descriptor order);
/// `PPVNET_BINDS` lists the listeners as `label=address` and `PPVNET_BIND` is the first address.
/// The program runs on the `internet` host, where App Service's outbound traffic (Entra's keys)
/// comes from, in `dir`, with `env`. Every face must come from `bind_for_program`.
fn spawn_external(
    fabric: &Fabric,
    argv: &[String],
    dir: &Path,
    env: &[(&str, std::ffi::OsString)],
    faces: Vec<ppvnet_common::Endpoint>,
) -> anyhow::Result<tokio::process::Child> {
    use std::os::fd::AsRawFd;
    use std::os::unix::process::CommandExt;
    let (program, args) = argv.split_first().context("no command to run")?;
    let program = find_program(program, dir)?;
    let mut labels = Vec::new();
    let mut binds = Vec::new();
    let mut fds = Vec::new();
    for face in &faces {
        let label = match &face.ingress {
            ppvnet_common::Ingress::Public => "public",
            ppvnet_common::Ingress::PrivateEndpoint { name } => name.as_str(),
        };
        let ppvnet_common::Source::Listener(listener) = &face.source else {
            anyhow::bail!("face {label} was not bound for a program (no listener to hand over)");
        };
        binds.push(format!("{label}={}", listener.local_addr()?));
        labels.push(label);
        fds.push(listener.as_raw_fd());
    }
    // LISTEN_PID must name the process that reads it, known only after the fork: `$$` is the
    // shell's pid, which `exec` hands on to the program.
    let mut cmd = std::process::Command::new("/bin/sh");
    cmd.arg("-c")
        .arg(r#"LISTEN_PID=$$; export LISTEN_PID; exec "$0" "$@""#)
        .arg(&program)
        .args(args)
        .current_dir(dir)
        .env("LISTEN_FDS", fds.len().to_string())
        .env("LISTEN_FDNAMES", labels.join(":"))
        .env("PPVNET_BINDS", binds.join(","))
        .envs(env.iter().map(|(k, v)| (k, v)));
    match binds.first().and_then(|b| b.split_once('=')) {
        Some((_, address)) => cmd.env("PPVNET_BIND", address),
        None => cmd.env_remove("PPVNET_BIND"),
    };
    fabric.run_as(crate::landscape::INTERNET, &mut cmd)?;
    let mut scratch = vec![0; fds.len()];
    let first_free = 3 + std::os::fd::RawFd::try_from(fds.len()).context("too many faces")?;
    // SAFETY: `hand_over` makes only raw syscalls, on memory allocated before the fork. It is
    // registered after the namespace entry, so it runs last before the exec.
    unsafe {
        cmd.pre_exec(move || hand_over(&fds, &mut scratch, first_free));
    }
    let child = tokio::process::Command::from(cmd)
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("cannot start {}", program.display()))?;
    // The program holds the listeners now; once it exits its faces refuse connections.
    drop(faces);
    Ok(child)
}

/// Between fork and exec: puts the listeners `fds` at descriptors 3, 4, ... `first_free - 1`
/// without close-on-exec, and marks every descriptor from `first_free` on close-on-exec, so the
/// program gets stdio and its listeners only (even descriptors ppvnet itself inherited). Every
/// listener is first copied above that range, since one of them may sit on a number another
/// must take; the copies are close-on-exec and vanish with the exec.
fn hand_over(
    fds: &[std::os::fd::RawFd],
    scratch: &mut [std::os::fd::RawFd],
    first_free: std::os::fd::RawFd,
) -> std::io::Result<()> {
    const FIRST: std::os::fd::RawFd = 3; // SD_LISTEN_FDS_START
    for (fd, copy) in fds.iter().zip(scratch.iter_mut()) {
        // SAFETY: plain syscalls on descriptors this process owns.
        *copy = unsafe { libc::fcntl(*fd, libc::F_DUPFD_CLOEXEC, first_free) };
        if *copy < 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    for (target, copy) in (FIRST..).zip(scratch.iter()) {
        // SAFETY: as above; dup2 leaves the new descriptor without FD_CLOEXEC.
        if unsafe { libc::dup2(*copy, target) } < 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    // SAFETY: as above. Kernels before 5.11 lack close_range (the call fails, harmlessly):
    // there descriptors ppvnet inherited without close-on-exec reach the program too.
    unsafe {
        libc::syscall(
            libc::SYS_close_range,
            first_free as libc::c_uint,
            libc::c_uint::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        );
    }
    Ok(())
}

/// Resolves a program as `execvp` would from `dir` (a name with a slash relative to `dir`, else
/// the first executable file on `PATH`), so a missing program fails the start, not later.
fn find_program(program: &str, dir: &Path) -> anyhow::Result<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let executable = |p: &Path| {
        p.metadata()
            .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if program.contains('/') {
        let path = dir.join(program);
        anyhow::ensure!(
            executable(&path),
            "{} is not an executable file",
            path.display()
        );
        return Ok(path);
    }
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|d| dir.join(d).join(program))
        .find(|p| executable(p))
        .with_context(|| format!("{program} is not found on PATH"))
}

impl Running {
    pub fn ready(&self) -> &ReadyFile {
        &self.ready
    }

    pub fn fabric(&self) -> &Fabric {
        &self.fabric
    }

    /// Stops every service, tears the fabric down and removes the run's files.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        let _ = self.stop.send(true);
        let mut first_error = None;
        while let Some(r) = self.tasks.join_next().await {
            match r {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    first_error.get_or_insert(e);
                }
                Err(e) => {
                    first_error.get_or_insert(e.into());
                }
            }
        }
        self.fabric.teardown().await?;
        let _ = std::fs::remove_file(&self.ready_path);
        let _ = std::fs::remove_dir_all(&self.run_dir);
        // Only folders this run made, and only when nothing else was put in them.
        for dir in &self.created_dirs {
            let _ = std::fs::remove_dir(dir);
        }
        first_error.map_or(Ok(()), Err)
    }

    /// Waits until a service task ends on its own (a crash) and returns its error.
    pub async fn crashed(&mut self) -> anyhow::Error {
        match self.tasks.join_next().await {
            Some(Ok(Ok(()))) => anyhow::anyhow!("a service stopped unexpectedly"),
            Some(Ok(Err(e))) => e,
            Some(Err(e)) => e.into(),
            None => anyhow::anyhow!("no service is running"),
        }
    }
}

/// Prints the endpoints as a table.
pub fn endpoint_table(ready: &ReadyFile) -> String {
    let mut rows: Vec<(String, String, String)> = Vec::new();
    if let Some(e) = &ready.entra {
        rows.push(("entra".into(), "authority".into(), e.authority.clone()));
    }
    for (name, v) in &ready.key_vaults {
        rows.push((
            name.clone(),
            format!("key vault ({})", v.public_network_access),
            v.url.clone(),
        ));
    }
    for (name, a) in &ready.apis {
        rows.push((
            name.clone(),
            format!("api ({})", a.public_network_access),
            a.url.clone(),
        ));
    }
    if let Some(arm) = &ready.arm {
        rows.push(("arm".into(), "resource manager".into(), arm.url.clone()));
    }
    if let Some(pp) = &ready.power_platform {
        rows.push((
            "powerplatform".into(),
            "connector runtime".into(),
            format!("{}/invoke", pp.url),
        ));
    }
    for (name, h) in &ready.hosts {
        rows.push((
            name.clone(),
            "host".into(),
            format!("{} (azure {})", h.address, h.azure_address),
        ));
    }
    rows.push((
        "control".into(),
        "control api".into(),
        ready.control_url.clone(),
    ));
    let w0 = rows.iter().map(|r| r.0.len()).max().unwrap_or(0).max(4);
    let w1 = rows.iter().map(|r| r.1.len()).max().unwrap_or(0).max(4);
    let mut out = format!("{:w0$}  {:w1$}  {}\n", "NAME", "KIND", "ENDPOINT");
    for (a, b, c) in rows {
        out.push_str(&format!("{a:w0$}  {b:w1$}  {c}\n"));
    }
    out
}

/// `ppvnet up`: start, print, wait for SIGINT/SIGTERM, stop.
pub async fn run_until_signal(landscape: &Landscape, opts: &UpOptions) -> anyhow::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut sigterm = signal(SignalKind::terminate())?;
    let mut sigint = signal(SignalKind::interrupt())?;
    let mut running = start(landscape, opts).await?;
    print!("{}", endpoint_table(running.ready()));
    println!(
        "ready file: {}\nppvnet is up; stop with Ctrl-C or SIGTERM",
        opts.ready_file.display()
    );
    let crash = tokio::select! {
        _ = sigterm.recv() => None,
        _ = sigint.recv() => None,
        e = running.crashed() => Some(e),
    };
    let stopped = running.stop().await;
    if let Some(e) = crash {
        return Err(e.context("a component of the landscape failed"));
    }
    stopped?;
    println!("ppvnet stopped; nothing left behind");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A landscape's `argv` names its program as a shell would: relative to the landscape's
    /// folder when it has a slash, else on PATH; a missing or non-executable program is refused
    /// when the landscape starts, by name.
    #[test]
    fn programs_resolve_like_execvp_and_missing_ones_are_named() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("bin").join("serve");
        std::fs::create_dir_all(script.parent().unwrap()).unwrap();
        std::fs::write(&script, "#!/bin/sh\n").unwrap();
        let err = find_program("bin/serve", dir.path()).unwrap_err();
        assert!(
            err.to_string().ends_with("is not an executable file"),
            "{err}"
        );
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert_eq!(find_program("bin/serve", dir.path()).unwrap(), script);
        assert_eq!(
            find_program("./bin/serve", dir.path()).unwrap(),
            dir.path().join("./bin/serve")
        );
        let sh = find_program("sh", dir.path()).unwrap();
        assert!(sh.is_absolute() && sh.ends_with("sh"), "{}", sh.display());
        let err = find_program("no-such-program-ppvnet", dir.path()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "no-such-program-ppvnet is not found on PATH"
        );
    }
}
