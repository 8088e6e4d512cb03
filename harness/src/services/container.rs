//! Team images as landscape parts (Docker fabric, [`crate::fabric::docker`]).
//!
//! - An API `implementation: {kind: container, image, port}` runs in the `internet` host's
//!   network namespace, where a `kind: command` program runs and App Service's outbound traffic
//!   comes from, with the same environment as a command ([`program::program_env`]): the run's
//!   CA at [`CA_PATH`], its certificate and key under [`TLS_DIR`], `PPVNET_BIND=0.0.0.0:<port>`.
//!   The API's faces (its public address and private endpoints) stay the fabric's: each accepted
//!   connection is carried to the container's port, TLS and all, as App Service's front ends
//!   carry a request to the worker; so the container sees its front end, 127.0.0.1, as the TCP
//!   peer. A disabled public face answers App Service's 403 page and never reaches it.
//! - A host `{kind: container, image}` runs its image in its own namespace: the host's address,
//!   routes, NSGs and vNet DNS, with the run's CA and `AZURE_AUTHORITY_HOST` set as `ppvnet exec`
//!   sets them. `ppvnet exec --host` runs commands in it (`docker exec`).
//!
//! Either kind needs `--network docker` ([`check_fabric`]).

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::time::Duration;

use crate::fabric::FabricKind;
use crate::fabric::docker::{self, TeamContainer};
use crate::landscape::{INTERNET, Landscape};
use crate::scenario::model::{Api, ApiImplementation, App};
use crate::services::launch::{Launch, Tasks};
use crate::services::program;

/// Where a team container finds the run's CA.
pub const CA_PATH: &str = "/ppvnet/ca.pem";
/// Where a team API's container finds `tls.crt` and `tls.key`.
pub const TLS_DIR: &str = "/ppvnet/tls";
/// How long a container API gets to listen on its port.
const LISTEN_DEADLINE: Duration = Duration::from_secs(60);
/// Connections a container API's faces carry at once; more wait in the listen backlog.
const MAX_CONNECTIONS: usize = 1024;
/// How long connecting to the container may take before the client's connection is dropped.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Refuses a landscape with team images on a fabric other than Docker, before anything starts.
pub fn check_fabric(landscape: &Landscape, kind: FabricKind) -> anyhow::Result<()> {
    if kind == FabricKind::Docker {
        return Ok(());
    }
    let s = &landscape.scenario;
    let api = s.apis.iter().find_map(|a| match &a.implementation {
        ApiImplementation::Container { image, .. } => Some(format!("api {} ({image})", a.name)),
        _ => None,
    });
    let host = s
        .hosts
        .iter()
        .find_map(|h| Some(format!("host {} ({})", h.name, h.container_image()?)));
    match api.or(host) {
        Some(what) => anyhow::bail!(
            "{what} runs a team image, which needs the docker fabric: use --network docker (root and Docker)"
        ),
        None => Ok(()),
    }
}

/// What a container API is started from.
pub struct ContainerApi<'a> {
    pub api: &'a Api,
    pub app: &'a App,
    pub image: &'a str,
    pub port: u16,
    pub command: Option<&'a [String]>,
    /// The landscape's own variables for it, after ppvnet's.
    pub env: &'a BTreeMap<String, String>,
}

/// Starts a container API and carries its faces to it; returns once it listens.
pub async fn start_api(
    run: Launch<'_>,
    entra: &crate::services::entra::Started,
    c: ContainerApi<'_>,
    endpoints: Vec<ppvnet_common::Endpoint>,
    leaf: &crate::pki::Leaf,
    tasks: &mut Tasks,
) -> anyhow::Result<()> {
    let role = format!("api {}", c.api.name);
    let (run_label, sandbox) = run.fabric.sandbox_of(INTERNET)?;
    let (cert_dir, faces) = program::prepare(run, c.api, leaf, endpoints, tasks)?;
    let mut env: Vec<(String, String)> = program::program_env(
        run.landscape,
        c.api,
        c.app,
        &entra.entry,
        Path::new(CA_PATH),
        Path::new(TLS_DIR),
    )
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string_lossy().into_owned()))
    .collect();
    env.push(("PPVNET_BIND".into(), format!("0.0.0.0:{}", c.port)));
    env.extend(c.env.iter().map(|(k, v)| (k.clone(), v.clone())));
    let name = format!("{run_label}-api-{}", c.api.name);
    let team = TeamContainer {
        run: run_label,
        sandbox: sandbox.clone(),
        name: name.clone(),
        role: role.clone(),
        image: c.image.to_string(),
        command: c.command.map(<[String]>::to_vec),
        env,
        mounts: vec![
            (run.pki.ca_path().to_path_buf(), CA_PATH),
            (cert_dir, TLS_DIR),
        ],
    };
    tokio::task::spawn_blocking(move || docker::run_team(&team)).await??;
    // The sandbox's name is the internet host's namespace.
    let target = SocketAddr::from((Ipv4Addr::LOCALHOST, c.port));
    wait_listening(&name, &role, &sandbox, target).await?;
    let limit = std::sync::Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    for face in faces {
        let acceptor = face.source.acceptor()?;
        let stop = run.stopped();
        tasks.spawn(carry(
            acceptor,
            sandbox.clone(),
            target,
            limit.clone(),
            stop,
        ));
    }
    tasks.spawn(watch_exit(name, role, run.stopped()));
    Ok(())
}

/// Waits until the container accepts connections on its port, or fails when it exits first
/// (`docker wait` returns: an event) or the deadline passes. Nothing announces "listening", so
/// that is tried, from its namespace, every 50 ms.
async fn wait_listening(
    name: &str,
    role: &str,
    ns: &str,
    target: SocketAddr,
) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + LISTEN_DEADLINE;
    let exited = docker_wait(name);
    tokio::pin!(exited);
    loop {
        let attempt = async {
            let connect = crate::fabric::netns::connect_from(ns.to_string(), target);
            let connected = matches!(
                tokio::time::timeout(Duration::from_secs(1), connect).await,
                Ok(Ok(_))
            );
            if !connected {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            connected
        };
        let connected = tokio::select! {
            code = &mut exited => anyhow::bail!(
                "{role}: the container exited early with code {code}: {}",
                output_of(name).await
            ),
            connected = attempt => connected,
        };
        if connected {
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            anyhow::bail!(
                "{role}: the container does not listen on port {} after {}s: {}",
                target.port(),
                LISTEN_DEADLINE.as_secs(),
                output_of(name).await
            );
        }
    }
}

/// Resolves when the container stops, with its exit code as `docker wait` prints it.
async fn docker_wait(name: &str) -> String {
    let mut wait = tokio::process::Command::new("docker");
    wait.args(["wait", name]).kill_on_drop(true);
    match wait.output().await {
        Ok(o) => String::from_utf8_lossy(&o.stdout).trim().to_string(),
        Err(e) => format!("unknown ({e})"),
    }
}

/// The container's last lines, read off the runtime's threads.
async fn output_of(name: &str) -> String {
    let name = name.to_string();
    tokio::task::spawn_blocking(move || docker::last_output(&name, 5))
        .await
        .unwrap_or_else(|e| format!("its output cannot be read: {e}"))
}

/// Carries each connection of one face to the container, until the run stops.
async fn carry(
    mut acceptor: ppvnet_common::serve::Acceptor,
    ns: String,
    target: SocketAddr,
    limit: std::sync::Arc<tokio::sync::Semaphore>,
    stop: impl std::future::Future<Output = ()> + Send,
) -> anyhow::Result<()> {
    tokio::pin!(stop);
    loop {
        let accepted = tokio::select! {
            a = acceptor.accept() => a,
            _ = &mut stop => return Ok(()),
        };
        let mut accepted = match accepted {
            Ok(Some(a)) => a,
            Ok(None) => return Ok(()),
            // A reset before the accept concerns that connection only; out of descriptors, a
            // short pause lets connections end instead of spinning on the error.
            Err(_) => {
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let Ok(permit) = limit.clone().acquire_owned().await else {
            return Ok(());
        };
        let ns = ns.clone();
        tokio::spawn(async move {
            let upstream = crate::fabric::netns::connect_from(ns, target);
            if let Ok(Ok(mut upstream)) = tokio::time::timeout(CONNECT_TIMEOUT, upstream).await {
                let _ = tokio::io::copy_bidirectional(&mut accepted.stream, &mut upstream).await;
            }
            drop(permit);
        });
    }
}

/// Fails the run when a container API exits (as a `kind: command` program's exit does).
async fn watch_exit(
    name: String,
    role: String,
    stop: impl std::future::Future<Output = ()> + Send,
) -> anyhow::Result<()> {
    tokio::select! {
        code = docker_wait(&name) => anyhow::bail!(
            "{role}: the container exited (code {code}): {}",
            output_of(&name).await
        ),
        _ = stop => Ok(()),
    }
}

/// Starts every host `{kind: container}` in its host's namespace; returns host → container.
pub async fn start_hosts(
    run: Launch<'_>,
    entra: &crate::services::entra::Started,
) -> anyhow::Result<BTreeMap<String, String>> {
    let mut started = BTreeMap::new();
    for h in &run.landscape.scenario.hosts {
        let Some(image) = h.container_image() else {
            continue;
        };
        let (run_label, sandbox) = run.fabric.sandbox_of(&h.name)?;
        let mut env: Vec<(String, String)> = crate::pki::CA_BUNDLE_VARIABLES
            .iter()
            .map(|v| (v.to_string(), CA_PATH.to_string()))
            .collect();
        env.push((
            "AZURE_AUTHORITY_HOST".into(),
            entra.entry.authority_host.clone(),
        ));
        env.push((
            "PPVNET_TENANT_ID".into(),
            run.landscape.scenario.tenant.id.clone(),
        ));
        env.push(("PPVNET_HOST".into(), h.name.clone()));
        env.extend(h.env.iter().map(|(k, v)| (k.clone(), v.clone())));
        let name = format!("{run_label}-host-{}", h.name);
        let team = TeamContainer {
            run: run_label,
            sandbox,
            name: name.clone(),
            role: format!("host {}", h.name),
            image: image.to_string(),
            command: h.command.clone(),
            env,
            mounts: vec![(run.pki.ca_path().to_path_buf(), CA_PATH)],
        };
        tokio::task::spawn_blocking(move || docker::run_team(&team)).await??;
        started.insert(h.name.clone(), name);
    }
    Ok(started)
}
