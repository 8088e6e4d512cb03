//! Network fabrics: where the landscape's hosts live and how their traffic is carried.
//!
//! One policy, several enforcements (`ARCHITECTURE.md`, "One policy, several enforcements"):
//! - [`oracle`]: from the landscape and the runtime state, Allow or Deny(reason) for any host and
//!   service face, and what a name resolves to from a host. [`nsg`] is its NSG evaluator.
//! - [`loopback`]: every host and service face gets its own 127.0.0.0/8 address; a relay in front
//!   of each face asks the oracle for every connection. No privileges needed.
//! - [`netns`]: every host is a Linux network namespace, every vNet a router namespace; peering
//!   is a veth link with routes, NSGs and egress rules are nftables rules, each vNet has a DNS
//!   server for its private zones. Needs root.
//! - [`docker`]: the netns fabric's topology with every namespace a Docker container's (hosts,
//!   vNet routers, the internet router), and team images joined to them. Needs root and Docker.
//! - [`flowlog`]: VNet flow log records of every connection attempt and Prometheus metrics.
//! - [`control`]: the shared [`FabricHandle`] (runtime changes: peering, NSG rules, region
//!   outage, active region) and its JSON router for the harness control API.
//! - [`client`]: HTTP clients that originate from a host and resolve names by its DNS view.
//! - [`proxy`]: a host's HTTPS (CONNECT) proxy: real host names by the host's DNS view, the
//!   connection opened as the host; every loopback host has one for programs (`ppvnet exec`).
//! - [`client_env`]: the environment a program gets to act as a host (`ppvnet exec`,
//!   `ppvnet env`): CA bundle, Entra authority, and the host's proxy on loopback.
//!
//! Services never see the fabric: they get a [`Source`] of connections per face (a listener
//! inside a namespace, or the loopback relay's channel) tagged with its [`Face`], and a
//! [`PeerDirectory`](ppvnet_common::PeerDirectory) that names the emulated client behind a socket.
//! Either way a service can be reached only through its faces.

pub mod client;
pub mod client_env;
pub mod control;
pub mod docker;
pub mod flowlog;
pub mod loopback;
pub mod netns;
pub mod nsg;
pub mod oracle;
pub mod proxy;

use std::collections::BTreeMap;

use anyhow::Context;
use std::io;
use std::net::{IpAddr, SocketAddr};

/// A network face of a service (defined next to the listeners that carry it).
pub use ppvnet_common::Face;
use ppvnet_common::net::SharedPeerDirectory;
use ppvnet_common::serve::{Endpoint, Source};

pub use client_env::{ClientEnv, exec};
pub use control::{FabricHandle, control_router};

use crate::landscape::Landscape;

/// Which fabric to materialize.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FabricKind {
    /// Own 127.0.0.0/8 address per host; no privileges.
    Loopback,
    /// A Linux network namespace per host (root).
    Netns,
    /// A Docker container per host and router, wired as the netns fabric (root, Docker).
    Docker,
}

impl FabricKind {
    /// True where hosts are network namespaces (netns, and Docker, whose containers' namespaces
    /// the netns wiring joins): names resolve by each vNet's DNS, programs run inside a host.
    pub fn namespaced(self) -> bool {
        matches!(self, FabricKind::Netns | FabricKind::Docker)
    }
}

/// A service face, bound: where the service takes its connections, and the address clients
/// reach it at.
#[derive(Debug)]
pub struct BoundFace {
    /// From [`Fabric::bind`]: the loopback relay's channel (the service has no address of its
    /// own there) or, in the netns fabric, a listener inside the face's namespace. From
    /// [`Fabric::bind_for_program`]: always a listener.
    pub source: Source,
    pub ingress: Face,
    pub address: SocketAddr,
}

impl BoundFace {
    /// The face as a serve endpoint.
    pub fn into_endpoint(self) -> Endpoint {
        Endpoint::new(self.source, self.ingress)
    }
}

/// A host of the fabric as the ready file lists it (the one host entry type: the fabric makes
/// it, the ready file carries it).
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct HostEntry {
    /// Real address traffic of this host originates from (to bind or connect from).
    pub address: IpAddr,
    /// The address Azure would see.
    pub azure_address: IpAddr,
    /// Its network namespace in the netns fabric.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// The host's HTTPS proxy (loopback: [`proxy`]); programs set `HTTPS_PROXY` to it
    /// (`ppvnet exec`, `ppvnet env`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy: Option<SocketAddr>,
    /// The team image's container of a host `{kind: container}` (Docker fabric): `ppvnet exec`
    /// runs commands in it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<String>,
}

/// Tunables of a fabric.
#[derive(Clone, Debug)]
pub struct FabricOptions {
    /// How long the loopback relay holds a dropped connection before resetting it (a real drop
    /// makes the client wait for its own timeout; tests want to see it quickly).
    pub drop_hold: std::time::Duration,
    /// Appends every flow log record as a JSON line to this file.
    pub flow_log_file: Option<std::path::PathBuf>,
    /// How long an open flow goes between flow log records (`C`): Azure's 5 minutes unless a
    /// test wants to see continuing records sooner.
    pub continue_interval: std::time::Duration,
    /// How long a loopback host's proxy waits for a request head (tests shorten it).
    pub proxy_head_timeout: std::time::Duration,
    /// The image of the Docker fabric's host and router containers (`ppvnet image build`).
    pub docker_image: String,
}

impl Default for FabricOptions {
    fn default() -> Self {
        Self {
            drop_hold: std::time::Duration::from_secs(2),
            flow_log_file: None,
            continue_interval: flowlog::AZURE_CONTINUE_INTERVAL,
            proxy_head_timeout: proxy::HEAD_TIMEOUT,
            docker_image: crate::image::default_tag(),
        }
    }
}

enum Backend {
    Loopback(loopback::LoopbackFabric),
    Netns(netns::NetnsFabric),
}

/// A materialized fabric.
pub struct Fabric {
    handle: FabricHandle,
    kind: FabricKind,
    backend: Backend,
}

impl Fabric {
    /// Builds the fabric for a landscape.
    pub async fn materialize(landscape: &Landscape, kind: FabricKind) -> anyhow::Result<Self> {
        Self::materialize_with(landscape, kind, FabricOptions::default()).await
    }

    /// [`Fabric::materialize`] with options.
    pub async fn materialize_with(
        landscape: &Landscape,
        kind: FabricKind,
        options: FabricOptions,
    ) -> anyhow::Result<Self> {
        let handle = FabricHandle::new(landscape, kind);
        handle
            .flow_log()
            .set_continue_interval(options.continue_interval);
        if let Some(path) = &options.flow_log_file {
            handle.flow_log().write_to(path).map_err(|e| {
                anyhow::anyhow!("cannot open the flow log file {}: {e}", path.display())
            })?;
        }
        let backend = match kind {
            FabricKind::Loopback => {
                Backend::Loopback(loopback::LoopbackFabric::new(handle.clone(), &options)?)
            }
            FabricKind::Netns => Backend::Netns(
                netns::NetnsFabric::new(handle.clone(), netns::Backing::Namespaces).await?,
            ),
            FabricKind::Docker => {
                let image = options.docker_image.clone();
                let backing = netns::Backing::Containers { image };
                Backend::Netns(netns::NetnsFabric::new(handle.clone(), backing).await?)
            }
        };
        Ok(Self {
            handle,
            kind,
            backend,
        })
    }

    pub fn kind(&self) -> FabricKind {
        self.kind
    }

    /// The shared handle: oracle, runtime control, flow log (the control router uses it).
    pub fn handle(&self) -> FabricHandle {
        self.handle.clone()
    }

    /// Binds `service`'s `face` for a service in this process, on port 443 when it can be bound,
    /// else a free port.
    pub fn bind(&self, service: &str, face: &Face) -> io::Result<BoundFace> {
        match &self.backend {
            Backend::Loopback(f) => f.bind(service, face, None),
            Backend::Netns(f) => f.bind(service, face, 443),
        }
    }

    /// Binds an extra port of a face (Entra's port 443 for MSAL's user realm discovery). Fails
    /// when the port cannot be bound.
    pub fn bind_port(&self, service: &str, face: &Face, port: u16) -> io::Result<BoundFace> {
        match &self.backend {
            Backend::Loopback(f) => f.bind(service, face, Some(port)),
            Backend::Netns(f) => f.bind(service, face, port),
        }
    }

    /// Binds `service`'s `face` for a program in another process, which needs a listening
    /// socket ([`Source::Listener`]) to inherit. In the netns fabric that is the face itself; on
    /// loopback it is an internal address behind the face's relay, which local processes can
    /// also reach directly (README, "The landscape format").
    pub fn bind_for_program(&self, service: &str, face: &Face) -> io::Result<BoundFace> {
        match &self.backend {
            Backend::Loopback(f) => f.bind_for_program(service, face, None),
            Backend::Netns(f) => f.bind(service, face, 443),
        }
    }

    pub fn peer_directory(&self) -> SharedPeerDirectory {
        match &self.backend {
            Backend::Loopback(f) => f.peer_directory(),
            Backend::Netns(f) => f.peer_directory(),
        }
    }

    /// Where a team container joins `host` in the Docker fabric: the run's label and the host's
    /// pause container (whose name is the host's namespace). Other fabrics have no containers.
    pub fn sandbox_of(&self, host: &str) -> anyhow::Result<(String, String)> {
        match &self.backend {
            Backend::Netns(f) if self.kind == FabricKind::Docker => {
                let sandbox = f
                    .namespace(host)
                    .with_context(|| format!("host '{host}' is not part of the landscape"))?;
                Ok((f.run_label().to_string(), sandbox.to_string()))
            }
            _ => anyhow::bail!(
                "team images run in the docker fabric only (this is {:?}): use --network docker",
                self.kind
            ),
        }
    }

    /// The real address a host's traffic originates from.
    pub fn host_address(&self, host: &str) -> Option<IpAddr> {
        self.hosts().get(host).map(|h| h.address)
    }

    /// Every host, for the ready file.
    pub fn hosts(&self) -> BTreeMap<String, HostEntry> {
        match &self.backend {
            Backend::Loopback(f) => f.hosts(),
            Backend::Netns(f) => f.hosts(),
        }
    }

    /// An HTTP client whose connections originate from `from_host` and whose names resolve by
    /// that host's DNS view (private endpoint inside a linked vNet, public address elsewhere).
    pub fn http_client(
        &self,
        from_host: &str,
        root_ca_pem: &[u8],
    ) -> anyhow::Result<reqwest::Client> {
        match &self.backend {
            Backend::Loopback(f) => f.http_client(from_host, root_ca_pem),
            Backend::Netns(f) => f.http_client(from_host, root_ca_pem),
        }
    }

    /// Opens a TCP connection from `from_host` to a real address of the fabric (what a client
    /// program on that host would do). Denied connections fail as the fabric makes them fail.
    pub async fn connect(
        &self,
        from_host: &str,
        to: SocketAddr,
    ) -> io::Result<tokio::net::TcpStream> {
        match &self.backend {
            Backend::Loopback(f) => f.connect(from_host, to).await,
            Backend::Netns(f) => f.connect(from_host, to).await,
        }
    }

    /// Makes a program the harness starts run as `host`: in the netns fabric inside the host's
    /// namespace with its vNet DNS, as `ppvnet exec` runs one. The loopback fabric cannot pin a
    /// program's source address, and its relays count connections from outside the address plan
    /// as the public internet, so there a program can only run as
    /// [`INTERNET`](crate::landscape::INTERNET).
    pub fn run_as(&self, host: &str, cmd: &mut std::process::Command) -> anyhow::Result<()> {
        match &self.backend {
            Backend::Loopback(_) if host == crate::landscape::INTERNET => Ok(()),
            Backend::Loopback(_) => anyhow::bail!(
                "the loopback fabric runs programs on the '{}' host only, not on '{host}'",
                crate::landscape::INTERNET
            ),
            Backend::Netns(f) => f.enter_host(host, cmd),
        }
    }

    /// Serves `host`'s HTTPS proxy on one more listener (`ppvnet up --listen`: the internet
    /// host's proxy published from a container). Loopback only: a netns host's proxy is the
    /// harness's own client, not a published endpoint.
    pub fn serve_proxy(&self, host: &str, listener: std::net::TcpListener) -> anyhow::Result<()> {
        match &self.backend {
            Backend::Loopback(f) => Ok(f.serve_proxy(host, listener)?),
            Backend::Netns(_) => anyhow::bail!(
                "publishing a host's proxy (--listen) needs the loopback fabric; use --network loopback"
            ),
        }
    }

    /// The address clients use for a face (the relay in loopback, the face itself in netns).
    pub fn face_address(&self, service: &str, face: &Face) -> Option<SocketAddr> {
        self.handle.face_address(service, face)
    }

    /// Removes whatever the fabric created.
    pub async fn teardown(self) -> anyhow::Result<()> {
        match self.backend {
            Backend::Loopback(f) => {
                f.teardown().await;
                Ok(())
            }
            Backend::Netns(f) => f.teardown().await,
        }
    }
}
