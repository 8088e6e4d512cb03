//! `ppvnet up`: materialize the fabric, start every service on its hosts, write the ready file,
//! and take it all down again.
//!
//! [`start`] is what tests call in-process; [`run_until_signal`] is the CLI around it. Each
//! service starts in its own module under [`crate::services`] (a team's own API program in
//! [`crate::services::program`]); this module only orders them, serves the control API and
//! writes the ready file.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::control::{self, ControlState};
use crate::dashboard::Dashboard;
use crate::fabric::{Fabric, FabricKind};
use crate::landscape::Landscape;
use crate::pki::Pki;
use crate::ready::{self, ReadyClaim, ReadyFile};
use crate::services::{self, launch::Launch};
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
    /// Publishes the control API and the internet host's proxy from a container, and writes
    /// the ready file as the machine outside sees it ([`crate::publish`]).
    pub publish: Option<crate::publish::Publish>,
    /// Keeps state across runs when set: Entra's signing keys, the vaults' secrets.
    pub data_dir: Option<PathBuf>,
    /// Appends every VNet flow-log record as a JSON line to this file.
    pub flow_log_file: Option<PathBuf>,
    /// The connector runtime's limits (the 120 s call timeout, 500 calls per minute per
    /// connection); tests shorten them.
    pub power_platform_limits: ppvnet_powerplatform::runtime::config::Limits,
    /// The user's cache folder (`PPVNET_CACHE`; [`ppvnet_common::cache`]): Entra's RSA signing
    /// keys come from its pool of keys generated ahead of time (topped up once the run is
    /// ready), the search APIs copy case databases built by earlier runs. `None` does all that
    /// work at every start.
    pub cache: Option<std::path::PathBuf>,
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
            publish: None,
            data_dir: None,
            flow_log_file: None,
            power_platform_limits: Default::default(),
            cache: ppvnet_common::cache::user_dir(),
        }
    }
}

/// A running landscape.
pub struct Running {
    ready: ReadyFile,
    /// This run's hold on its ready file; dropping it removes the file.
    claim: ReadyClaim,
    /// Directories this run created (the ready file's folder), removed at stop when empty.
    created_dirs: Vec<PathBuf>,
    run_dir: PathBuf,
    stop: watch::Sender<bool>,
    tasks: JoinSet<anyhow::Result<()>>,
    fabric: Fabric,
    pub clock: Clock,
    /// Stubbed APIs by name (`implementation: {kind: stub}`).
    stubs: BTreeMap<String, services::stub::Stub>,
    dashboard: Dashboard,
}

/// Starts the landscape and writes the ready file once every component is healthy.
pub async fn start(landscape: &Landscape, opts: &UpOptions) -> anyhow::Result<Running> {
    let s = &landscape.scenario;
    services::container::check_fabric(landscape, opts.network)?;
    let clock = Clock::new();
    let (created_dirs, claim, pki) = claim_and_pki(landscape, opts)?;
    // Before the fabric: a published proxy on 0.0.0.0:3128 would collide with the internet
    // host's own proxy on 127.B.1.1:3128, which moves to a free port when 3128 is taken.
    let (control_listener, published_proxy) = bind_control(opts)?;
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

    let bound = control_listener.local_addr()?;
    let control_addr = reachable(bound);
    if let Some(listener) = published_proxy {
        fabric.serve_proxy(crate::landscape::INTERNET, listener)?;
    }
    let control_token = control::new_token();
    let run = Launch {
        landscape,
        opts,
        fabric: &fabric,
        pki: &pki,
        clock: &clock,
        stop_rx: &stop_rx,
    };
    let entra = services::entra::start(run, &mut tasks).await?;
    let key_vaults = services::keyvault::start(run, &entra, &mut tasks)?;
    let apis = services::api::start(run, &entra, &mut tasks).await?;
    let team_hosts = services::container::start_hosts(run, &entra).await?;
    let arm = services::arm::start(run, &entra, &mut tasks)?;
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
    let power_platform = services::powerplatform::start(run, &entra, &mut tasks).await?;

    let on_machine = opts.publish.as_ref().map(|p| p.control_on_machine(bound));
    let guard = control::Guard::published(bound, on_machine, &control_token);
    let dashboard = Dashboard::new(
        &s.name,
        fabric.handle(),
        clock.clone(),
        guard.clone(),
        // The address a browser uses: the machine's published port when there is one.
        &format!("http://{}", on_machine.unwrap_or(control_addr)),
        stop_rx.clone(),
    );
    let control_router =
        control_routes(landscape, &clock, &fabric, &entra, power_platform.as_ref())?
            .merge(dashboard.clone().router());
    // Last, so the guard covers every nested router and the fallback.
    let control_router = control::guard::layer(control_router, guard);
    serve_control(&mut tasks, control_listener, control_router, &stop_rx);

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
        apis: apis.entries,
        apps: ready::app_entries(s),
        users: ready::user_entries(s),
        hosts: with_containers(fabric.hosts(), team_hosts),
        power_platform: power_platform.map(|started| {
            let mut entry = started.entry;
            entry.control_url = format!("http://{control_addr}/powerplatform");
            entry
        }),
        arm: Some(arm),
    };
    wait_healthy(&format!("{}/healthz", ready.control_url), None).await?;
    write_ready(&ready, opts)?;
    refill_key_pool();
    Ok(Running {
        ready,
        claim,
        created_dirs,
        run_dir: opts.run_dir.clone(),
        stop,
        tasks,
        fabric,
        clock,
        stubs: apis.stubs,
        dashboard,
    })
}

/// Serves the control API on its listener until the run stops.
fn serve_control(
    tasks: &mut JoinSet<anyhow::Result<()>>,
    listener: std::net::TcpListener,
    router: axum::Router,
    stop_rx: &watch::Receiver<bool>,
) {
    let shutdown = services::launch::stopped(stop_rx);
    tasks.spawn(async move {
        ppvnet_common::serve(
            vec![ppvnet_common::Endpoint::public(listener)],
            router,
            None,
            shutdown,
        )
        .await
        .context("control API")
    });
}

/// The fabric's hosts, each host `{kind: container}` with its team container.
fn with_containers(
    mut hosts: std::collections::BTreeMap<String, crate::fabric::HostEntry>,
    containers: std::collections::BTreeMap<String, String>,
) -> std::collections::BTreeMap<String, crate::fabric::HostEntry> {
    for (host, container) in containers {
        if let Some(entry) = hosts.get_mut(&host) {
            entry.container = Some(container);
        }
    }
    hosts
}

/// Where this process reaches a listener bound at `bound`: one on every interface (a
/// container's) as 127.0.0.1.
fn reachable(bound: SocketAddr) -> SocketAddr {
    if bound.ip().is_unspecified() {
        SocketAddr::from(([127, 0, 0, 1], bound.port()))
    } else {
        bound
    }
}

/// Writes the ready file: as the machine outside sees it when the run is published.
fn write_ready(ready: &ReadyFile, opts: &UpOptions) -> anyhow::Result<()> {
    match &opts.publish {
        Some(publish) => crate::publish::machine_view(ready, publish, &opts.ready_file),
        None => ready.clone(),
    }
    .write(&opts.ready_file)
}

/// The control API's listener (on 127.0.0.1, or published: [`crate::publish`]) and, when
/// published, the internet host's proxy listener.
fn bind_control(
    opts: &UpOptions,
) -> anyhow::Result<(std::net::TcpListener, Option<std::net::TcpListener>)> {
    match &opts.publish {
        Some(publish) => {
            let listeners = publish.bind(opts.control_port)?;
            Ok((listeners.control, Some(listeners.proxy)))
        }
        None => {
            let listener = std::net::TcpListener::bind(("127.0.0.1", opts.control_port))
                .with_context(|| {
                    format!(
                        "cannot bind the control API on 127.0.0.1:{}",
                        opts.control_port
                    )
                })?;
            Ok((listener, None))
        }
    }
}

/// What a run holds before anything starts: the folders it will create (removed at stop when
/// left empty), its claim on the ready file (a second run on the same file is refused by name
/// here, before anything is started) and its PKI (kept in `--data-dir` when given).
fn claim_and_pki(
    landscape: &Landscape,
    opts: &UpOptions,
) -> anyhow::Result<(Vec<PathBuf>, ReadyClaim, Pki)> {
    let created_dirs: Vec<PathBuf> = [opts.ready_file.parent(), opts.run_dir.parent()]
        .into_iter()
        .flatten()
        .filter(|d| !d.as_os_str().is_empty() && !d.exists())
        .map(Path::to_path_buf)
        .collect();
    let claim = ReadyClaim::take(&opts.ready_file)?;
    // RSA prime search is the largest cost of a start: take Entra's key from the pool.
    ppvnet_entra::use_key_pool(
        opts.cache
            .as_ref()
            .map(|c| ppvnet_common::keypool::KeyPool::at(c.join("keys").join("rsa-2048"))),
    );
    let name = &landscape.scenario.name;
    let pki = match &opts.data_dir {
        Some(dir) => Pki::keep_in(&dir.join("pki"), name)?,
        None => Pki::create(&opts.run_dir, name)?,
    };
    Ok((created_dirs, claim, pki))
}

/// The control API's routes: the run's own, then each service's under its prefix.
fn control_routes(
    landscape: &Landscape,
    clock: &Clock,
    fabric: &Fabric,
    entra: &services::entra::Started,
    power_platform: Option<&services::powerplatform::Started>,
) -> anyhow::Result<axum::Router> {
    let mut router = control::router(ControlState {
        clock: clock.clone(),
        summary: serde_json::to_value(landscape.summary())?,
        events: fabric.handle().events().clone(),
    })
    .nest("/entra", ppvnet_entra::control_router(entra.entra.clone()))
    .nest("/network", crate::fabric::control_router(fabric.handle()));
    if let Some(pp) = power_platform {
        router = router
            .nest(
                "/powerplatform",
                ppvnet_powerplatform::control_router(pp.service.clone()),
            )
            .nest(
                "/pp",
                crate::powerplatform::control::router(pp.user_routes.clone()),
            );
    }
    Ok(router)
}

/// Polls a URL until it answers 200 (services start in the background).
/// Tops the key pool up for the next run, on a thread of its own: key generation is CPU work
/// that must not hold up the run's services (one filler at a time across processes).
fn refill_key_pool() {
    let spawned = std::thread::Builder::new()
        .name("key-pool".into())
        .spawn(|| {
            if let Err(e) = ppvnet_entra::fill_key_pool(ppvnet_common::keypool::DEFAULT_DEPTH) {
                tracing::warn!("cannot top up the key pool: {e}");
            }
        });
    if let Err(e) = spawned {
        tracing::warn!("cannot start the key pool filler: {e}");
    }
}

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

impl Running {
    pub fn ready(&self) -> &ReadyFile {
        &self.ready
    }

    /// The stub of a stubbed API, to add answers and read what it received.
    pub fn stub(&self, api: &str) -> Option<&services::stub::Stub> {
        self.stubs.get(api)
    }

    pub fn fabric(&self) -> &Fabric {
        &self.fabric
    }

    /// A new one-time URL that logs a browser in to the dashboard.
    pub fn dashboard_login_url(&self) -> String {
        self.dashboard.login_url()
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
        drop(self.claim);
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

/// What to do next, printed under the endpoint table: where the CA and the ready file are, and
/// lines to copy into a shell so a client trusts the landscape and runs inside it.
pub fn next_steps(ready: &ReadyFile, ready_path: &Path) -> String {
    let ca = shell_quote(&ready.ca_cert.display().to_string());
    let mut out = format!(
        "\nCA certificate: {}\nready file:     {}\n\nTrust the landscape's CA in this shell:\n",
        ready.ca_cert.display(),
        std::path::absolute(ready_path)
            .unwrap_or_else(|_| ready_path.to_path_buf())
            .display()
    );
    for variable in crate::pki::CA_BUNDLE_VARIABLES {
        out.push_str(&format!("  export {variable}={ca}\n"));
    }
    if let Some(entra) = &ready.entra {
        let authority = shell_quote(&entra.authority_host);
        out.push_str(&format!("  export AZURE_AUTHORITY_HOST={authority}\n"));
    }
    // The defaults need no flag; another ready file must be named.
    let flag = if ready_path == crate::paths::default_ready_file() {
        String::new()
    } else {
        format!(
            " --ready-file {}",
            shell_quote(&ready_path.display().to_string())
        )
    };
    out.push_str(&format!(
        "\nRun a program as a host of the landscape (its DNS view, its network path):\n  \
         ppvnet exec{flag} --host {host} -- python3 your_script.py\n\
         or make this shell that host (the variables `exec` sets):\n  \
         eval \"$(ppvnet env{flag} --host {host})\"\n\n",
        host = crate::landscape::INTERNET
    ));
    out.push_str(&app_step(ready));
    out
}

/// How to open the case-search app in a browser leaving from the internet host (its proxy;
/// loopback destinations too), when the landscape has environments and that proxy.
fn app_step(ready: &ReadyFile) -> String {
    let proxy = ready
        .hosts
        .get(crate::landscape::INTERNET)
        .and_then(|h| h.proxy);
    let (Some(pp), Some(proxy)) = (&ready.power_platform, proxy) else {
        return String::new();
    };
    let Some(environment) = pp.environments.keys().next() else {
        return String::new();
    };
    format!(
        "Open the case-search app in a browser on the internet (trust the CA above first):\n  \
         chromium --proxy-server=http://{proxy} --proxy-bypass-list='<-loopback>' \
         https://{}/apps/{environment}\n\n",
        pp.host_name
    )
}

/// `text` as one shell word (single-quoted; a `'` inside becomes `'\''`).
pub fn shell_quote(text: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "/._-:=@%+,".contains(c);
    if !text.is_empty() && text.chars().all(plain) {
        return text.to_string();
    }
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// What `ppvnet up` prints once the landscape is ready (after the endpoint table), the line a
/// container's readiness check waits for.
pub const UP_LINE: &str = "ppvnet is up";

/// `ppvnet up`: start, print, wait for SIGINT/SIGTERM, stop.
pub async fn run_until_signal(landscape: &Landscape, opts: &UpOptions) -> anyhow::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut sigterm = signal(SignalKind::terminate())?;
    let mut sigint = signal(SignalKind::interrupt())?;
    let mut running = start(landscape, opts).await?;
    let shown = match &opts.publish {
        Some(publish) => {
            let view = crate::publish::machine_view(running.ready(), publish, &opts.ready_file);
            format!(
                "{}{}",
                endpoint_table(&view),
                crate::publish::next_steps(&view)
            )
        }
        None => format!(
            "{}{}",
            endpoint_table(running.ready()),
            next_steps(running.ready(), &opts.ready_file)
        ),
    };
    crate::cli::print_out(&format!(
        "{shown}Watch and steer the landscape in a browser (a one-time login URL):\n  {}\n\n{UP_LINE}; stop with Ctrl-C or SIGTERM\n",
        running.dashboard_login_url()
    ));
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
    // A reader that went away (`ppvnet up | head`) is no reason to fail the stop.
    crate::cli::print_out("ppvnet stopped; nothing left behind\n");
    Ok(())
}
