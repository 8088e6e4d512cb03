//! The loopback fabric: one 127.0.0.0/8 address per host and per service face, and a relay in
//! front of every face that enforces the oracle.
//!
//! Linux routes all of 127.0.0.0/8 to `lo`, so any address in it can be bound without setup.
//! Each fabric claims a /16 block `127.B.0.0` (hosts `127.B.1.x`, faces `127.B.2.x`, the
//! listeners of external API programs `127.B.3.x`, NAT gateways `127.B.4.x`) by holding a
//! marker socket on `127.B.255.254:`[`CLAIM_PORT`], so several fabrics (parallel tests) never
//! share an address. The marker listens (a merely bound socket would not keep another
//! `SO_REUSEADDR` bind off the address) but is never accepted from.
//!
//! A connection to a face reaches the relay; the relay names the client host by its source
//! address (an address outside the plan, such as 127.0.0.1, is the public internet), asks the
//! oracle, and then either passes the connection on or denies. Services in this process have
//! no address of their own: the relay hands the accepted socket to the service's serve loop
//! through a channel ([`Source::Channel`]), so nothing on the machine reaches a service without
//! the oracle's verdict and a flow log record. With the socket goes the peer the service is to
//! see: the real address standing for what
//! [`Oracle::seen_source`](super::oracle::Oracle::seen_source) says the service sees (the
//! client's own address, or its NAT gateway's public IP), which the service's
//! [`PeerDirectory`] maps back to the emulated one. An external API program (a separate
//! process) gets a listener of its own on an internal `127.B.3.x` address instead
//! ([`LoopbackFabric::bind_for_program`]); the relay connects to it *from* that real address.
//! That internal address is the one way around the relay on this fabric, documented in the
//! README (the netns fabric has none).
//!
//! The kernel has already completed the handshake by the time the relay decides, so denial is
//! emulated after accept:
//! - drop (NSG deny, no route, no egress): the relay reads and discards, never answers, and
//!   resets the connection after [`FabricOptions::drop_hold`]: the client sees a timeout or
//!   a reset, never data;
//! - refuse (source host down): the relay resets the connection at once.
//!
//! An allowed connection stays under watch while it is open: when a peering switched off or a
//! region outage withdraws its path ([`Oracle::path_holds`](super::oracle::Oracle::path_holds),
//! re-checked on every network event of the run's event bus), the relay cuts it, as Azure stops
//! traffic on withdrawn routes, established connections included. NSG rule changes never cut:
//! Azure's NSGs judge an established connection by its flow record.
//!
//! The relay writes the flow log: `B` when it allows, `C` each continue interval while the flow
//! is open and `E` at its end with the payload bytes the service read and wrote (or the relay
//! copied, for a program) since the previous record, `D` when it denies.

use std::collections::{BTreeMap, HashMap};
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ppvnet_common::net::{Peer, PeerDirectory, SharedPeerDirectory};
use ppvnet_common::serve::{Accepted, Source};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::broadcast::{self, error::RecvError};
use tokio::sync::{mpsc, oneshot, watch};

use super::flowlog::{FlowCounters, FlowLog, FlowRecord, FlowState, now_ms};
use super::oracle::{Decision, Denial, Route};
use super::{BoundFace, FabricHandle, FabricOptions, Face, HostEntry};
use crate::events::Event;
use ppvnet_common::serve::metered::{Meter, Metered};

/// Port of the marker socket that claims a /16 block: the one listener of a loopback fabric that
/// is not a face (it is never accepted from).
pub const CLAIM_PORT: u16 = 47_999;
/// The first block tried (the addresses `ppvnet up` prints are 127.77.x.y when it is free).
const FIRST_BLOCK: u8 = 77;

struct HostAddr {
    real: Ipv4Addr,
    azure: Ipv4Addr,
    /// The host's HTTPS proxy ([`super::proxy`]), on `real`; none for a private endpoint.
    proxy: Option<SocketAddr>,
}

pub struct LoopbackFabric {
    handle: FabricHandle,
    block: u8,
    hosts: BTreeMap<String, HostAddr>,
    /// Relay address (without port) of each face.
    faces: HashMap<(String, Face), Ipv4Addr>,
    next_internal: Mutex<u8>,
    directory: Arc<LoopbackPeers>,
    drop_hold: Duration,
    /// How long a host's proxy waits for a request head.
    proxy_head_timeout: Duration,
    stop: watch::Sender<bool>,
    /// The relays' and the hosts' proxies' tasks.
    relays: Mutex<Vec<tokio::task::JoinHandle<()>>>,
    _claim: TcpListener,
}

/// Maps a 127.B.1.x peer back to its host and emulated address, and a 127.B.4.x peer to its NAT
/// gateway's public IP. A NAT gateway's peer has no host and no subnet: the gateway may serve
/// several subnets and hides which host is behind it, as it does in Azure (the netns fabric
/// names it the same).
struct LoopbackPeers {
    by_real: HashMap<Ipv4Addr, Peer>,
    /// The reverse: emulated address (a host's, or a NAT gateway's public IP) → real address.
    by_emulated: HashMap<Ipv4Addr, Ipv4Addr>,
}

impl LoopbackPeers {
    fn host_of(&self, ip: IpAddr) -> Option<&str> {
        match ip {
            IpAddr::V4(v4) => self.by_real.get(&v4)?.host.as_deref(),
            IpAddr::V6(_) => None,
        }
    }

    /// The real address that stands for the emulated address `seen` (what
    /// [`Oracle::seen_source`](super::oracle::Oracle::seen_source) says the service sees).
    fn real_source(&self, seen: Ipv4Addr) -> Option<Ipv4Addr> {
        self.by_emulated.get(&seen).copied()
    }
}

impl PeerDirectory for LoopbackPeers {
    fn peer(&self, remote: SocketAddr) -> Peer {
        let known = match remote.ip() {
            IpAddr::V4(v4) => self.by_real.get(&v4),
            IpAddr::V6(_) => None,
        };
        known.cloned().unwrap_or(Peer {
            address: remote.ip(),
            host: None,
            subnet: None,
        })
    }
}

/// Claims a free 127.B.0.0/16 block.
fn claim_block() -> io::Result<(u8, TcpListener)> {
    let mut last = None;
    for i in 0..200u16 {
        let b = (u16::from(FIRST_BLOCK) + i) % 250 + 2;
        let b = b as u8;
        match TcpListener::bind((Ipv4Addr::new(127, b, 255, 254), CLAIM_PORT)) {
            Ok(l) => return Ok((b, l)),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| io::Error::other("no free 127.x.0.0/16 block")))
}

impl LoopbackFabric {
    pub(crate) fn new(handle: FabricHandle, options: &FabricOptions) -> anyhow::Result<Self> {
        let (block, claim) = claim_block()?;
        let (hosts_info, faces_list, nat_gateways) =
            handle.with_oracle(|o| (o.hosts().clone(), o.faces(), o.nat_gateways().clone()));
        anyhow::ensure!(
            hosts_info.len() < 250 && faces_list.len() < 250 && nat_gateways.len() < 250,
            "the loopback fabric supports up to 249 hosts, 249 service faces and 249 NAT gateways"
        );
        let mut hosts = BTreeMap::new();
        let mut by_real = HashMap::new();
        for (i, h) in hosts_info.values().enumerate() {
            let real = Ipv4Addr::new(127, block, 1, i as u8 + 1);
            let subnet = h.subnet.clone();
            by_real.insert(
                real,
                Peer {
                    address: IpAddr::V4(h.address),
                    host: Some(h.name.clone()),
                    subnet,
                },
            );
            hosts.insert(
                h.name.clone(),
                HostAddr {
                    real,
                    azure: h.address,
                    // Set by `start_proxies` once the fabric exists.
                    proxy: None,
                },
            );
        }
        for (i, public) in nat_gateways.values().enumerate() {
            let real = Ipv4Addr::new(127, block, 4, i as u8 + 1);
            by_real.insert(
                real,
                Peer {
                    address: IpAddr::V4(*public),
                    host: None,
                    subnet: None,
                },
            );
        }
        let mut faces = HashMap::new();
        let mut next = 1u8;
        for (service, face) in faces_list {
            let ip = match &face {
                // A private endpoint is a host too; the service answers on the PE host's address.
                Face::PrivateEndpoint(pe) => match hosts.get(pe) {
                    Some(h) => h.real,
                    None => continue,
                },
                Face::Public => {
                    next += 1;
                    Ipv4Addr::new(127, block, 2, next - 1)
                }
            };
            faces.insert((service, face), ip);
        }
        let by_emulated = by_real
            .iter()
            .filter_map(|(real, p)| match p.address {
                IpAddr::V4(emulated) => Some((emulated, *real)),
                IpAddr::V6(_) => None,
            })
            .collect();
        let (stop, _) = watch::channel(false);
        let mut fabric = Self {
            handle,
            block,
            hosts,
            faces,
            next_internal: Mutex::new(1),
            directory: Arc::new(LoopbackPeers {
                by_real,
                by_emulated,
            }),
            drop_hold: options.drop_hold,
            proxy_head_timeout: options.proxy_head_timeout,
            stop,
            relays: Mutex::new(Vec::new()),
            _claim: claim,
        };
        fabric.start_proxies()?;
        Ok(fabric)
    }

    /// Starts every host's HTTPS proxy on the host's own address: what `ppvnet exec` points a
    /// program's `HTTPS_PROXY` at, so the program reaches faces by their real names and its
    /// connections leave from the host ([`super::proxy`]). Private endpoints originate no
    /// traffic and get none: their address is a face's, where only relays listen, so a
    /// connection to a face address can only ever meet a relay.
    fn start_proxies(&mut self) -> io::Result<()> {
        let face_ips: std::collections::HashSet<Ipv4Addr> = self.faces.values().copied().collect();
        let mut started = Vec::new();
        for (name, h) in &self.hosts {
            if face_ips.contains(&h.real) {
                continue;
            }
            let listener = super::proxy::bind_loopback(h.real)?;
            started.push((name.clone(), listener.local_addr()?));
            self.serve_proxy(name, listener)?;
        }
        for (name, addr) in started {
            if let Some(h) = self.hosts.get_mut(&name) {
                h.proxy = Some(addr);
            }
        }
        Ok(())
    }

    /// Serves `host`'s proxy on `listener` too: `ppvnet up --listen` publishes the internet
    /// host's proxy on a container's interface this way. Connections still leave from the
    /// host's own address, so the relays see that host whichever listener took them.
    pub fn serve_proxy(&self, host: &str, listener: std::net::TcpListener) -> io::Result<()> {
        let h = self.hosts.get(host).ok_or_else(|| {
            io::Error::new(io::ErrorKind::NotFound, format!("no host named '{host}'"))
        })?;
        listener.set_nonblocking(true)?;
        let proxy = Arc::new(super::proxy::HostProxy {
            handle: self.handle.clone(),
            host: host.to_string(),
            dial: super::proxy::Dial::FromAddress(h.real),
            head_timeout: self.proxy_head_timeout,
        });
        let listener = tokio::net::TcpListener::from_std(listener)?;
        let task = tokio::spawn(super::proxy::serve(listener, proxy, self.stop.subscribe()));
        self.relays
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(task);
        Ok(())
    }

    fn face_ip(&self, service: &str, face: &Face) -> io::Result<Ipv4Addr> {
        self.faces
            .get(&(service.to_string(), face.clone()))
            .copied()
            .ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::NotFound,
                    format!("service '{service}' has no face {face:?} in this landscape"),
                )
            })
    }

    /// Binds the relay of a face (on `port`, or 443 falling back to a free port) for a service
    /// in this process: the relay hands every allowed connection to the returned channel
    /// source, so the service has no address anything could connect to directly.
    pub fn bind(&self, service: &str, face: &Face, port: Option<u16>) -> io::Result<BoundFace> {
        let (tx, source) = Source::channel();
        let address = self.relay(service, face, port, Upstream::InProcess(tx))?;
        Ok(BoundFace {
            source,
            ingress: face.clone(),
            address,
        })
    }

    /// Binds the relay of a face for an external program, and the listener the program will
    /// inherit on an internal `127.B.3.x` address; the relay connects to it from the address the
    /// program is to see. Returns that listener with the relay's address.
    pub fn bind_for_program(
        &self,
        service: &str,
        face: &Face,
        port: Option<u16>,
    ) -> io::Result<BoundFace> {
        let internal_ip = {
            let mut n = self.next_internal.lock().unwrap_or_else(|e| e.into_inner());
            if *n == 255 {
                return Err(io::Error::other(
                    "the loopback fabric ran out of internal addresses",
                ));
            }
            *n += 1;
            Ipv4Addr::new(127, self.block, 3, *n - 1)
        };
        let internal = TcpListener::bind((internal_ip, 0))?;
        let target = internal.local_addr()?;
        let address = self.relay(service, face, port, Upstream::Program(target))?;
        Ok(BoundFace {
            source: Source::Listener(internal),
            ingress: face.clone(),
            address,
        })
    }

    /// Binds a face's relay and starts it; returns its address.
    fn relay(
        &self,
        service: &str,
        face: &Face,
        port: Option<u16>,
        upstream: Upstream,
    ) -> io::Result<SocketAddr> {
        let ip = self.face_ip(service, face)?;
        let relay = match port {
            Some(p) => TcpListener::bind((ip, p))?,
            None => match TcpListener::bind((ip, 443)) {
                Ok(l) => l,
                Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {
                    TcpListener::bind((ip, 0))?
                }
                Err(e) => return Err(e),
            },
        };
        let relay_addr = relay.local_addr()?;
        relay.set_nonblocking(true)?;
        let relay = tokio::net::TcpListener::from_std(relay)?;
        // The emulated port: what Azure clients use (443 unless a specific port was asked for).
        let azure_port = port.unwrap_or(443);
        let ctx = Arc::new(RelayContext {
            handle: self.handle.clone(),
            directory: self.directory.clone(),
            service: service.to_string(),
            face: face.clone(),
            azure_port,
            upstream,
            drop_hold: self.drop_hold,
        });
        let task = tokio::spawn(relay_loop(relay, ctx, self.stop.subscribe()));
        self.relays
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(task);
        if port.is_none() || port == Some(443) {
            self.handle.register_face(service, face, relay_addr);
        }
        Ok(relay_addr)
    }

    pub fn peer_directory(&self) -> SharedPeerDirectory {
        self.directory.clone()
    }

    pub fn host_ip(&self, host: &str) -> Option<Ipv4Addr> {
        self.hosts.get(host).map(|h| h.real)
    }

    pub fn hosts(&self) -> BTreeMap<String, HostEntry> {
        self.hosts
            .iter()
            .map(|(name, h)| {
                (
                    name.clone(),
                    HostEntry {
                        address: IpAddr::V4(h.real),
                        azure_address: IpAddr::V4(h.azure),
                        namespace: None,
                        proxy: h.proxy,
                        container: None,
                    },
                )
            })
            .collect()
    }

    pub fn http_client(
        &self,
        from_host: &str,
        root_ca_pem: &[u8],
    ) -> anyhow::Result<reqwest::Client> {
        let ip = self
            .host_ip(from_host)
            .ok_or_else(|| anyhow::anyhow!("host '{from_host}' is not part of the landscape"))?;
        super::client::build(
            self.handle.clone(),
            from_host,
            Some(IpAddr::V4(ip)),
            None,
            root_ca_pem,
        )
    }

    pub async fn connect(&self, from_host: &str, to: SocketAddr) -> io::Result<TcpStream> {
        let ip = self.host_ip(from_host).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotFound,
                format!("unknown host '{from_host}'"),
            )
        })?;
        let socket = TcpSocket::new_v4()?;
        bind_source(&socket, ip)?;
        socket.connect(to).await
    }

    pub async fn teardown(self) {
        let _ = self.stop.send(true);
        let tasks = std::mem::take(&mut *self.relays.lock().unwrap_or_else(|e| e.into_inner()));
        for t in tasks {
            t.abort();
            let _ = t.await;
        }
    }
}

impl Drop for LoopbackFabric {
    /// Relays stop with the fabric even when the caller never tore it down.
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        for t in self
            .relays
            .get_mut()
            .unwrap_or_else(|e| e.into_inner())
            .drain(..)
        {
            t.abort();
        }
    }
}

struct RelayContext {
    handle: FabricHandle,
    directory: Arc<LoopbackPeers>,
    service: String,
    face: Face,
    azure_port: u16,
    upstream: Upstream,
    drop_hold: Duration,
}

/// Where a relay passes allowed connections.
enum Upstream {
    /// A service in this process: the accepted socket goes to its serve loop.
    InProcess(mpsc::Sender<Accepted>),
    /// An external program's inherited listener, connected to over TCP.
    Program(SocketAddr),
}

async fn relay_loop(
    listener: tokio::net::TcpListener,
    ctx: Arc<RelayContext>,
    mut stop: watch::Receiver<bool>,
) {
    let mut conns = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    conns.spawn(relay_one(stream, peer, ctx.clone()));
                }
                Err(e) => {
                    tracing::warn!("relay for {} {:?}: accept failed: {e}", ctx.service, ctx.face);
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
        }
    }
    conns.abort_all();
}

async fn relay_one(client: TcpStream, peer: SocketAddr, ctx: Arc<RelayContext>) {
    // Subscribed before the decision, so no change after it goes unseen by the connection.
    let events = ctx.handle.events().subscribe();
    let Some(verdict) = decide(&ctx, peer) else {
        reset(&client);
        return;
    };
    let flows = ctx.handle.flow_log();
    match verdict.decision {
        Decision::Deny { reason, behaviour } => {
            flows.record(
                FlowRecord {
                    state: FlowState::D,
                    ..verdict.base
                },
                Some(reason.kind()),
            );
            deny(client, behaviour, ctx.drop_hold).await;
        }
        Decision::Allow { route, .. } => {
            let base = verdict.base;
            flows.record(base.clone(), None);
            let cut = path_withdrawn(&ctx, &base.src_host, &route, events);
            // The relay must not add Nagle delays the direct path would not have.
            let _ = client.set_nodelay(true);
            match &ctx.upstream {
                Upstream::InProcess(service) => {
                    // The service sees the connection as if it came from the real address that
                    // stands for its emulated source, as it would had the relay connected from
                    // there; without one, from the address the kernel would have picked.
                    let source = verdict.source.unwrap_or(Ipv4Addr::LOCALHOST);
                    let seen = SocketAddr::new(IpAddr::V4(source), peer.port());
                    hand_over(client, seen, service, flows, &base, &ctx.service, cut).await;
                }
                Upstream::Program(target) => {
                    let program = connect_from(verdict.source, *target).await;
                    match program {
                        Ok(program) => {
                            let _ = program.set_nodelay(true);
                            splice(client, program, flows, &base, cut).await;
                        }
                        Err(e) => {
                            tracing::warn!(
                                "relay for {}: the program's listener is unreachable: {e}",
                                ctx.service
                            );
                            reset(&client);
                        }
                    }
                }
            }
        }
    }
}

/// The oracle's verdict on one connection to a face.
struct Verdict {
    decision: Decision,
    /// The flow's `B` record; its other records follow from it.
    base: FlowRecord,
    /// The real address standing for the source the service sees (allowed flows).
    source: Option<Ipv4Addr>,
}

/// Asks the oracle about a connection from `peer`; `None` (logged) when it cannot answer.
fn decide(ctx: &RelayContext, peer: SocketAddr) -> Option<Verdict> {
    // Clients outside the address plan (127.0.0.1: a tool on the machine) are the internet.
    let src_host = ctx
        .directory
        .host_of(peer.ip())
        .unwrap_or(crate::landscape::INTERNET)
        .to_string();
    let decided = ctx.handle.with_oracle(|o| {
        let d = o.decide_flow(
            &src_host,
            peer.port(),
            &ctx.service,
            &ctx.face,
            ctx.azure_port,
        )?;
        let src = o.host(&src_host)?.clone();
        let (dst, _) = o.face_address(&ctx.service, &ctx.face)?;
        let seen = match &d {
            Decision::Allow { route, .. } => Some(o.seen_source(&src, route)),
            Decision::Deny { .. } => None,
        };
        Ok::<_, super::oracle::OracleError>((d, src, dst, seen))
    });
    let (decision, src, dst, seen) = match decided {
        Ok(x) => x,
        Err(e) => {
            tracing::warn!("relay for {}: {e}", ctx.service);
            return None;
        }
    };
    let crosses_internet = match &decision {
        Decision::Allow { route, .. } => route.crosses_internet(),
        Decision::Deny { .. } => false,
    };
    // The flow log keeps the private tuple of a NAT'd connection, as Azure's VNet flow logs do;
    // only the service sees the gateway's address.
    let source = seen.and_then(|a| ctx.directory.real_source(a));
    let base = FlowRecord {
        time_ms: now_ms(),
        src: src.address,
        dst,
        sport: peer.port(),
        dport: ctx.azure_port,
        proto: 6,
        direction: if src.subnet.is_some() || ctx.face == Face::Public {
            'O'
        } else {
            'I'
        },
        state: FlowState::B,
        src_host,
        dst_host: match &ctx.face {
            Face::PrivateEndpoint(pe) => pe.clone(),
            Face::Public => format!("public:{}", ctx.service),
        },
        service: ctx.service.clone(),
        rule: decision.label(),
        packets_sent: 0,
        bytes_sent: 0,
        packets_received: 0,
        bytes_received: 0,
        crosses_internet,
    };
    Some(Verdict {
        decision,
        base,
        source,
    })
}

/// Resolves when a network change leaves an established connection from `src_host` without a
/// path ([`Oracle::path_holds`](super::oracle::Oracle::path_holds): a peering switched off, the
/// source's region in outage); NSG rule changes never do. Never resolves for a connection no
/// change can cut (neither over a peering nor from a Power Platform host), which then does not
/// listen to the bus at all. Every network change is announced on the event bus, so waiting for
/// the bus is enough; a lagged receiver re-checks.
async fn path_withdrawn(
    ctx: &RelayContext,
    src_host: &str,
    route: &Route,
    mut events: broadcast::Receiver<Event>,
) {
    let from_power_platform = ctx
        .handle
        .with_oracle(|o| o.host(src_host).is_ok_and(|h| h.power_platform.is_some()));
    if !from_power_platform && !matches!(route, Route::Peering { .. }) {
        drop(events);
        return std::future::pending().await;
    }
    loop {
        match events.recv().await {
            Ok(Event::Network(_)) | Err(RecvError::Lagged(_)) => {
                let holds = ctx
                    .handle
                    .with_oracle(|o| o.path_holds(src_host, &ctx.service, &ctx.face))
                    .unwrap_or(true);
                if !holds {
                    tracing::info!(
                        "relay for {}: {src_host}'s connection is cut: its path is gone",
                        ctx.service
                    );
                    return;
                }
            }
            Ok(_) => {}
            Err(RecvError::Closed) => return std::future::pending().await,
        }
    }
}

/// A second descriptor of a relayed client socket, to cut the connection while its owner (the
/// service, or a splice) still holds it.
struct Line(Option<OwnedFd>);

impl Line {
    fn of(stream: &TcpStream) -> Self {
        Self(stream.as_fd().try_clone_to_owned().ok())
    }

    /// Ends the connection for both sides: the client's reads see its end at once and the
    /// owner's reads end too, so it lets go; the zero linger makes the last close a reset.
    fn cut(&self) {
        let Some(fd) = &self.0 else { return };
        let off = libc::linger {
            l_onoff: 1,
            l_linger: 0,
        };
        // SAFETY: setsockopt and shutdown on a descriptor this value owns, with a correctly
        // sized linger option.
        unsafe {
            libc::setsockopt(
                fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_LINGER,
                (&off as *const libc::linger).cast(),
                std::mem::size_of::<libc::linger>() as libc::socklen_t,
            );
            libc::shutdown(fd.as_raw_fd(), libc::SHUT_RDWR);
        }
    }
}

/// Hands an allowed connection to its in-process service as coming from `seen`, then logs the
/// flow until the service is done with it or `cut` says its path is gone.
async fn hand_over(
    client: TcpStream,
    seen: SocketAddr,
    service: &mpsc::Sender<Accepted>,
    flows: &FlowLog,
    base: &FlowRecord,
    name: &str,
    cut: impl std::future::Future<Output = ()>,
) {
    // A slot first: a stopped service refuses it while the client can still be reset (a
    // connection refused), rather than closed as if it had been answered. A service at its
    // connection cap makes this wait, as a full listen backlog would.
    let slot = match service.reserve().await {
        Ok(slot) => slot,
        Err(_) => {
            tracing::warn!("relay for {name}: the service has stopped");
            reset(&client);
            return;
        }
    };
    let line = Line::of(&client);
    let (up, down) = (Arc::new(Tally::default()), Arc::new(Tally::default()));
    let (open, closed) = oneshot::channel::<()>();
    slot.send(Accepted {
        stream: Box::new(Metered {
            inner: client,
            meter: HandedOver {
                up: up.clone(),
                down: down.clone(),
                _open: open,
            },
        }),
        peer: seen,
    });
    // The sender goes with the connection: `closed` resolves when the service drops it.
    let ended = async {
        tokio::select! {
            _ = closed => {}
            _ = cut => line.cut(),
        }
    };
    account(flows, base, &up, &down, ended).await;
}

/// Connects to a program's listener from `source` (what the program is to see as the peer).
pub(crate) async fn connect_from(
    source: Option<Ipv4Addr>,
    target: SocketAddr,
) -> io::Result<TcpStream> {
    let s = TcpSocket::new_v4()?;
    if let Some(ip) = source {
        bind_source(&s, ip)?;
    }
    s.connect(target).await
}

async fn deny(mut client: TcpStream, behaviour: Denial, hold: Duration) {
    if behaviour == Denial::Drop {
        let mut sink = [0u8; 4096];
        let _ = tokio::time::timeout(hold, async {
            while let Ok(n) = client.read(&mut sink).await {
                if n == 0 {
                    break;
                }
            }
        })
        .await;
    }
    // A reset, never a clean close: nothing was ever "answered".
    reset(&client);
}

/// What one direction of a flow has carried: payload bytes and the reads (or, for a handed-over
/// connection, the service's reads and writes) that moved them: the relay's stand-in for
/// packets.
#[derive(Default)]
struct Tally {
    bytes: AtomicU64,
    segments: AtomicU64,
}

impl Tally {
    fn add(&self, bytes: usize) {
        if bytes > 0 {
            self.bytes.fetch_add(bytes as u64, Ordering::Relaxed);
            self.segments.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Copies both ways between a client and a program until both sides are done or `cut` says the
/// path is gone, logging the flow ([`account`]).
async fn splice(
    client: TcpStream,
    server: TcpStream,
    flows: &FlowLog,
    base: &FlowRecord,
    cut: impl std::future::Future<Output = ()>,
) {
    let line = Line::of(&client);
    let (cr, cw) = client.into_split();
    let (sr, sw) = server.into_split();
    let (up, down) = (Tally::default(), Tally::default());
    let copy = async {
        tokio::select! {
            _ = async { tokio::join!(pump(cr, sw, &up), pump(sr, cw, &down)) } => {}
            // The program's socket closes with the copy; the client's is cut.
            _ = cut => line.cut(),
        }
    };
    account(flows, base, &up, &down, copy).await;
}

/// Logs a flow as Azure does until `ended` resolves: a `C` record with the counts since the
/// previous record each time the flow log's continue interval passes, and the `E` record with
/// the rest. `base` is the flow's `B` record; `up` counts what the client sent, `down` what it
/// received.
async fn account(
    flows: &FlowLog,
    base: &FlowRecord,
    up: &Tally,
    down: &Tally,
    ended: impl std::future::Future<Output = ()>,
) {
    tokio::pin!(ended);
    let interval = flows.continue_interval();
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let counted = || FlowCounters {
        packets_sent: up.segments.load(Ordering::Relaxed),
        bytes_sent: up.bytes.load(Ordering::Relaxed),
        packets_received: down.segments.load(Ordering::Relaxed),
        bytes_received: down.bytes.load(Ordering::Relaxed),
    };
    let mut reported = FlowCounters::default();
    let mut record = |state| {
        let now = counted();
        flows.record(base.follow_up(state, now_ms(), now.since(reported)), None);
        reported = now;
    };
    loop {
        tokio::select! {
            _ = &mut ended => break,
            _ = tick.tick() => record(FlowState::C),
        }
    }
    record(FlowState::E);
}

/// A client connection handed to an in-process service: counts what the service reads and
/// writes for the flow log, and tells the relay (by dropping `_open`) when the service is done
/// with it, which ends the flow.
struct HandedOver {
    /// Client → service.
    up: Arc<Tally>,
    /// Service → client.
    down: Arc<Tally>,
    _open: oneshot::Sender<()>,
}

impl Meter for HandedOver {
    fn read(&self, bytes: usize) {
        self.up.add(bytes);
    }

    fn written(&self, bytes: usize) {
        self.down.add(bytes);
    }
}

async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    tally: &Tally,
) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                tally.add(n);
                if to.write_all(&buf[..n]).await.is_err() {
                    break;
                }
            }
        }
    }
    let _ = to.shutdown().await;
}

/// Closes with a TCP reset (SO_LINGER 0). A zero linger never blocks the thread on drop, which is
/// what tokio's deprecation of `set_linger` warns about.
#[allow(deprecated)]
fn reset(stream: &TcpStream) {
    let _ = stream.set_linger(Some(Duration::ZERO));
}

/// Binds a connecting socket to a source address, leaving the port to `connect`
/// (`IP_BIND_ADDRESS_NO_PORT`): a plain bind to port 0 makes the kernel search for a port free
/// of every socket on that address, TIME_WAIT ones included, which costs milliseconds after a
/// burst of connections.
fn bind_source(socket: &TcpSocket, ip: Ipv4Addr) -> io::Result<()> {
    let one: libc::c_int = 1;
    // SAFETY: setsockopt on a descriptor the socket owns, with a correctly sized int option.
    unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::IPPROTO_IP,
            libc::IP_BIND_ADDRESS_NO_PORT,
            (&one as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
    }
    socket.bind(SocketAddr::new(IpAddr::V4(ip), 0))
}
