//! The netns fabric: the landscape as Linux network namespaces, enforced by the kernel.
//!
//! Layout (all names start with `ppv-<pid>-<n>-`, so a crashed run's leftovers are recognised
//! and removed at the next start; nothing is attached to the machine's own network):
//! - one namespace per host, with its emulated address as a /32 on `eth0` and a default route to
//!   its router over a veth pair (link-local gateway 169.254.0.1), so every packet between two
//!   hosts, even in one subnet, crosses a router where NSGs apply, as in Azure;
//! - one router namespace per vNet (`router-<vnet>`) and one for the public internet
//!   (`router-internet`), which also holds the services' public addresses (documentation
//!   ranges);
//! - peering: a veth link between two vNet routers; the routes to the other vNet's address space
//!   exist only while the peering is connected (both directions, access allowed, enabled), and a
//!   router routes only to its direct peers, so peering is not transitive;
//! - each vNet router has an uplink to the internet router; the nftables ruleset of the router
//!   ([`nft`]) enforces NSGs, the "no internet from a delegated subnet without NAT gateway" rule,
//!   drops new connections from the internet and translates a NAT gateway subnet's internet
//!   traffic to the gateway's public IP; the internet router routes that IP back to the uplink,
//!   and a subnet's private prefix only when its traffic reaches the internet untranslated
//!   ([`internet_routes`]);
//! - Azure DNS: every router answers on 168.63.129.16:53 (UDP and TCP) with its vNet's view
//!   ([`dns`]); each host namespace gets `/etc/netns/<ns>/resolv.conf` pointing there, which
//!   `ip netns exec` and [`exec`] bind over `/etc/resolv.conf`.
//!
//! Services bind inside, serve outside: a listener is bound on a short-lived thread that entered
//! the namespace, and the socket stays there while the harness's runtime serves it.
//!
//! Denials: NSG denies and unroutable destinations are dropped (the client times out); a host
//! of a region in outage has its link down (the client's connect fails at once, "refused").
//! A change that withdraws a path (peering off, outage) also destroys the established client
//! sockets on it (`Plan::cut_withdrawn`); NSG rule changes keep them, as Azure's flow records do.
//! Flow log: the vNet routers log connection begins and drops to NFLOG and count each
//! connection's bytes in conntrack; [`flows`] reads both into `B`, `D`, `C` and `E` records.

pub mod dns;
pub(crate) mod exec;
pub mod flows;
pub mod nft;

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{self, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use anyhow::Context;
use ppvnet_common::net::{Peer, PeerDirectory, SharedPeerDirectory, SubnetRef};
use tokio::net::TcpStream;

use super::control::Enforcer;
use super::oracle::Oracle;
use super::{BoundFace, FabricHandle, Face, HostEntry};

/// Prefix of every namespace ppvnet creates.
pub const PREFIX: &str = "ppv-";
/// Azure's DNS address inside every vNet.
pub const AZURE_DNS: Ipv4Addr = Ipv4Addr::new(168, 63, 129, 16);
/// A vNet router's interface towards the internet router.
const UPLINK: &str = "uplink";
/// The link-local gateway every host routes through.
const GATEWAY: Ipv4Addr = Ipv4Addr::new(169, 254, 0, 1);

static NEXT_RUN: AtomicU32 = AtomicU32::new(0);

#[derive(Clone, Debug)]
struct HostPlan {
    ns: String,
    address: Ipv4Addr,
    /// Its subnet (whose vNet's router it hangs off), `None` behind the internet router.
    subnet: Option<SubnetRef>,
    /// Router-side interface.
    iface: String,
    power_platform_region: Option<String>,
}

#[derive(Clone, Debug)]
struct PeerLink {
    a: String,
    b: String,
    iface: String,
    a_ip: Ipv4Addr,
    b_ip: Ipv4Addr,
}

struct Plan {
    /// The run's namespace prefix (`ppv-<pid>-<n>`), also the Docker fabric's run label.
    prefix: String,
    /// Where the namespaces come from.
    backing: Backing,
    inet_ns: String,
    vnet_ns: BTreeMap<String, String>,
    hosts: BTreeMap<String, HostPlan>,
    links: Vec<PeerLink>,
    /// Hosts whose link is down (region outage), as last applied.
    down: Mutex<BTreeMap<String, bool>>,
    /// The oracle as last applied, to tell which paths a change withdrew ([`Plan::cut_withdrawn`]).
    applied: Mutex<Oracle>,
}

/// Where a fabric's namespaces come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Backing {
    /// `ip netns add`: the netns fabric.
    Namespaces,
    /// A paused container of this image per namespace: the Docker fabric ([`super::docker`]).
    Containers { image: String },
}

impl Plan {
    /// The containers of the Docker fabric, one per namespace, labelled with what they hold.
    fn sandboxes(&self) -> Vec<super::docker::Sandbox> {
        let sandbox = |name: &str, role: &str, subnet: String| super::docker::Sandbox {
            name: name.to_string(),
            role: role.to_string(),
            subnet,
        };
        let mut v = vec![sandbox(
            &self.inet_ns,
            "router-internet",
            crate::landscape::INTERNET.into(),
        )];
        for (vnet, ns) in &self.vnet_ns {
            v.push(sandbox(ns, &format!("router-{vnet}"), vnet.clone()));
        }
        for (name, h) in &self.hosts {
            let subnet = h.subnet.as_ref().map_or_else(
                || crate::landscape::INTERNET.to_string(),
                |r| format!("{}/{}", r.vnet, r.subnet),
            );
            v.push(sandbox(&h.ns, name, subnet));
        }
        v
    }

    /// Removes every namespace (and, in the Docker fabric, first every container) of the run.
    fn remove(&self) -> anyhow::Result<()> {
        let containers = match self.backing {
            Backing::Namespaces => Ok(()),
            Backing::Containers { .. } => {
                super::docker::remove_containers(&super::docker::containers_of(&self.prefix))
            }
        };
        let namespaces = remove_namespaces(&self.all_namespaces());
        containers.and(namespaces)
    }

    fn all_namespaces(&self) -> Vec<String> {
        let mut v = vec![self.inet_ns.clone()];
        v.extend(self.vnet_ns.values().cloned());
        v.extend(self.hosts.values().map(|h| h.ns.clone()));
        v
    }
}

/// Runs `f` on a fresh thread inside the named network namespace.
pub fn in_netns<T: Send + 'static>(
    ns: &str,
    f: impl FnOnce() -> io::Result<T> + Send + 'static,
) -> io::Result<T> {
    let path = Path::new("/run/netns").join(ns);
    std::thread::spawn(move || {
        let file = File::open(&path)?;
        nix::sched::setns(&file, nix::sched::CloneFlags::CLONE_NEWNET).map_err(io::Error::from)?;
        f()
    })
    .join()
    .map_err(|_| io::Error::other("namespace thread panicked"))?
}

fn run_ip_batch(ns: Option<&str>, force: bool, lines: &[String]) -> anyhow::Result<()> {
    if lines.is_empty() {
        return Ok(());
    }
    let mut cmd = Command::new("ip");
    if let Some(ns) = ns {
        cmd.args(["-n", ns]);
    }
    if force {
        cmd.arg("-force");
    }
    cmd.args(["-batch", "-"]);
    let out = run_with_stdin(cmd, &lines.join("\n"))?;
    if !force && !out.status.success() {
        anyhow::bail!(
            "ip -batch{} failed: {}",
            ns.map(|n| format!(" in {n}")).unwrap_or_default(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

fn run_with_stdin(mut cmd: Command, input: &str) -> anyhow::Result<std::process::Output> {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot run {cmd:?}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(input.as_bytes())?;
    }
    Ok(child.wait_with_output()?)
}

fn apply_nft(ns: &str, ruleset: String) -> anyhow::Result<()> {
    let out = in_netns(ns, move || {
        let mut cmd = Command::new("nft");
        cmd.args(["-f", "-"]);
        run_with_stdin(cmd, &ruleset).map_err(io::Error::other)
    })?;
    if !out.status.success() {
        anyhow::bail!(
            "nft failed in {ns}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

fn write_sysctls(ns: &str, router: bool) -> io::Result<()> {
    in_netns(ns, move || {
        if router {
            std::fs::write("/proc/sys/net/ipv4/ip_forward", "1")?;
        }
        for k in ["all", "default"] {
            std::fs::write(format!("/proc/sys/net/ipv4/conf/{k}/rp_filter"), "0")?;
        }
        Ok(())
    })
}

/// Removes namespaces left by ppvnet runs whose process is gone.
pub fn clean_stale() -> Vec<String> {
    let Ok(dir) = std::fs::read_dir("/run/netns") else {
        return vec![];
    };
    let mut removed = Vec::new();
    for e in dir.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(rest) = name.strip_prefix(PREFIX) else {
            continue;
        };
        let Some(pid) = rest.split('-').next().and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        if Path::new(&format!("/proc/{pid}")).exists() {
            continue;
        }
        let _ = Command::new("ip").args(["netns", "del", &name]).output();
        let _ = std::fs::remove_dir_all(Path::new("/etc/netns").join(&name));
        removed.push(name);
    }
    removed
}

impl Enforcer for Plan {
    fn apply(&self, oracle: &Oracle) -> anyhow::Result<()> {
        for (vnet, ns) in &self.vnet_ns {
            let attachments: Vec<nft::Attachment<'_>> = self
                .hosts
                .values()
                .filter_map(|h| {
                    let subnet = h.subnet.as_ref().filter(|r| &r.vnet == vnet)?;
                    Some(nft::Attachment {
                        interface: &h.iface,
                        subnet: &subnet.subnet,
                    })
                })
                .collect();
            apply_nft(ns, nft::vnet_ruleset(oracle, vnet, &attachments, UPLINK))?;
            let mut lines = Vec::new();
            for l in self.links.iter().filter(|l| &l.a == vnet || &l.b == vnet) {
                let (other, via) = if &l.a == vnet {
                    (&l.b, l.b_ip)
                } else {
                    (&l.a, l.a_ip)
                };
                let connected = oracle.connected(vnet, other).is_some();
                for space in oracle
                    .vnets()
                    .get(other)
                    .map(|v| v.address_space.clone())
                    .unwrap_or_default()
                {
                    lines.push(if connected {
                        format!("route replace {space} via {via} dev {}", l.iface)
                    } else {
                        format!("route del {space} dev {}", l.iface)
                    });
                }
            }
            run_ip_batch(Some(ns), true, &lines)?;
        }
        let outages = oracle.state().region_outages;
        let mut down = self.down.lock().unwrap_or_else(|e| e.into_inner());
        for (name, h) in &self.hosts {
            let Some(region) = &h.power_platform_region else {
                continue;
            };
            let want = outages.contains(region);
            if down.get(name).copied().unwrap_or(false) == want {
                continue;
            }
            let lines = if want {
                vec!["link set eth0 down".to_string()]
            } else {
                vec![
                    "link set eth0 up".to_string(),
                    format!("route replace {GATEWAY} dev eth0"),
                    format!("route replace default via {GATEWAY} dev eth0"),
                ]
            };
            run_ip_batch(Some(&h.ns), false, &lines)?;
            down.insert(name.clone(), want);
        }
        drop(down);
        self.cut_withdrawn(oracle)
    }
}

impl Plan {
    /// Cuts the established connections whose path the change withdrew. Without this they
    /// outlive it (measured: a connection over a peering switched off saw no end within 15 s):
    /// a client socket outlives a withdrawn route or a downed link until TCP gives up, a vNet
    /// router accepts `ct state established` packets, and its default route leads to the
    /// internet router, which routes the subnets without a NAT gateway back. In Azure a disconnected peering's routes are withdrawn and
    /// a host in an outage stops, so nothing gets through
    /// ([`Oracle::path_holds`]); NSG rule changes keep established connections (flow records),
    /// and they never withdraw a path, so they cut nothing here. The client's sockets are
    /// destroyed in its namespace (`ss -K`, the kernel's `SOCK_DESTROY`): its next read or write
    /// fails at once, where Azure's client would wait for its own timeout. Their conntrack
    /// entries in the vNet routers go too ([`flows::forget`]).
    fn cut_withdrawn(&self, now: &Oracle) -> anyhow::Result<()> {
        let before = std::mem::replace(
            &mut *self.applied.lock().unwrap_or_else(|e| e.into_inner()),
            now.clone(),
        );
        let faces: Vec<(String, Face, Ipv4Addr)> = now
            .faces()
            .into_iter()
            .filter_map(|(s, f)| Some((now.face_address(&s, &f).ok()?.0, s, f)))
            .map(|(a, s, f)| (s, f, a))
            .collect();
        let mut cut = Vec::new();
        for (name, h) in &self.hosts {
            let withdrawn: Vec<Ipv4Addr> = faces
                .iter()
                .filter(|(s, f, _)| {
                    let held = |o: &Oracle| o.path_holds(name, s, f).unwrap_or(false);
                    held(&before) && !held(now)
                })
                .map(|(_, _, a)| *a)
                .collect();
            if withdrawn.is_empty() {
                continue;
            }
            let mut args = ["-K", "-t", "-n", "-H"].map(String::from).to_vec();
            for (i, a) in withdrawn.iter().enumerate() {
                if i > 0 {
                    args.push("or".into());
                }
                args.extend(["dst".to_string(), a.to_string()]);
            }
            let out = in_netns(&h.ns, move || Command::new("ss").args(&args).output())
                .with_context(|| format!("cannot run ss in {}", h.ns))?;
            anyhow::ensure!(
                out.status.success(),
                "ss -K in {} failed: {}",
                h.ns,
                String::from_utf8_lossy(&out.stderr).trim()
            );
            cut.extend(killed_sockets(&String::from_utf8_lossy(&out.stdout)));
        }
        // The routers forget them too, so they log the flows' ends and nothing of them passes
        // as established any more.
        for ns in self.vnet_ns.values() {
            let conns = cut.clone();
            in_netns(ns, move || flows::forget(&conns))
                .with_context(|| format!("cannot delete conntrack entries in {ns}"))?;
        }
        Ok(())
    }
}

/// The (local, peer) addresses of the TCP sockets `ss -K -t -n -H` destroyed, one per line
/// (`ESTAB 0 0 10.20.1.4:51234 10.10.2.4:443`).
fn killed_sockets(listing: &str) -> Vec<(std::net::SocketAddrV4, std::net::SocketAddrV4)> {
    listing
        .lines()
        .filter_map(|l| {
            let mut cols = l.split_whitespace().skip(3);
            Some((cols.next()?.parse().ok()?, cols.next()?.parse().ok()?))
        })
        .collect()
}

/// Maps a peer address (inside namespaces, real = emulated) to its host, or to no host for a NAT
/// gateway's public IP: the gateway may serve several subnets and hides which host is behind it,
/// as it does in Azure, so the peer is the address alone (the loopback fabric names it the same).
struct NetnsPeers {
    by_address: HashMap<Ipv4Addr, (Option<String>, Option<SubnetRef>)>,
}

impl PeerDirectory for NetnsPeers {
    fn peer(&self, remote: SocketAddr) -> Peer {
        let known = match remote.ip() {
            IpAddr::V4(v4) => self.by_address.get(&v4),
            IpAddr::V6(_) => None,
        };
        Peer {
            address: remote.ip(),
            host: known.and_then(|(h, _)| h.clone()),
            subnet: known.and_then(|(_, s)| s.clone()),
        }
    }
}

pub struct NetnsFabric {
    handle: FabricHandle,
    plan: Arc<Plan>,
    directory: Arc<NetnsPeers>,
    tasks: Mutex<Vec<tokio::task::JoinHandle<()>>>,
    proxies: Mutex<HashMap<String, SocketAddr>>,
    /// Set once the namespaces are removed (by teardown, or by drop).
    removed: std::sync::atomic::AtomicBool,
}

fn build_plan(oracle: &Oracle, prefix: &str, backing: Backing) -> Plan {
    let ns = |suffix: &str| format!("{prefix}-{suffix}");
    let vnet_ns: BTreeMap<String, String> = oracle
        .vnets()
        .keys()
        .map(|v| (v.clone(), ns(&format!("router-{v}"))))
        .collect();
    let hosts = oracle
        .hosts()
        .values()
        .enumerate()
        .map(|(i, h)| {
            (
                h.name.clone(),
                HostPlan {
                    ns: ns(&h.name),
                    address: h.address,
                    subnet: h.subnet.clone(),
                    iface: format!("h{i}"),
                    power_platform_region: h.power_platform.as_ref().map(|(_, r)| r.clone()),
                },
            )
        })
        .collect();
    let mut links = Vec::new();
    for p in oracle.peerings() {
        let (a, b) = if p.from < p.to {
            (&p.from, &p.to)
        } else {
            (&p.to, &p.from)
        };
        if links.iter().any(|l: &PeerLink| &l.a == a && &l.b == b) {
            continue;
        }
        let k = links.len() as u8;
        links.push(PeerLink {
            a: a.clone(),
            b: b.clone(),
            iface: format!("p{k}"),
            a_ip: Ipv4Addr::new(100, 64, k, 1),
            b_ip: Ipv4Addr::new(100, 64, k, 2),
        });
    }
    Plan {
        prefix: prefix.to_string(),
        backing,
        inet_ns: ns("router-internet"),
        vnet_ns,
        hosts,
        links,
        down: Mutex::new(BTreeMap::new()),
        applied: Mutex::new(oracle.clone()),
    }
}

impl NetnsFabric {
    pub(crate) async fn new(handle: FabricHandle, backing: Backing) -> anyhow::Result<Self> {
        let h = handle.clone();
        let plan = tokio::task::spawn_blocking(move || create(&h, backing)).await??;
        let plan = Arc::new(plan);
        handle.set_enforcer(plan.clone());
        let mut by_address: HashMap<Ipv4Addr, (Option<String>, Option<SubnetRef>)> = handle
            .with_oracle(|o| {
                o.nat_gateways()
                    .values()
                    .map(|ip| (*ip, (None, None)))
                    .collect()
            });
        by_address.extend(
            plan.hosts
                .iter()
                .map(|(name, p)| (p.address, (Some(name.clone()), p.subnet.clone()))),
        );
        let fabric = Self {
            handle: handle.clone(),
            directory: Arc::new(NetnsPeers { by_address }),
            plan,
            tasks: Mutex::new(Vec::new()),
            proxies: Mutex::new(HashMap::new()),
            removed: std::sync::atomic::AtomicBool::new(false),
        };
        if let Err(e) = fabric.start_router_services() {
            let err = anyhow::anyhow!("cannot start the vNet DNS servers: {e}");
            let _ = fabric.teardown().await;
            return Err(err);
        }
        Ok(fabric)
    }

    /// Azure DNS in every router, and the flow log readers of the vNet routers.
    fn start_router_services(&self) -> io::Result<()> {
        let mut routers: Vec<(String, Option<String>)> = vec![(self.plan.inet_ns.clone(), None)];
        routers.extend(
            self.plan
                .vnet_ns
                .iter()
                .map(|(v, ns)| (ns.clone(), Some(v.clone()))),
        );
        let mut tasks = self.tasks.lock().unwrap_or_else(|e| e.into_inner());
        for (ns, vnet) in routers {
            let (udp, tcp) = in_netns(&ns, || {
                let udp = std::net::UdpSocket::bind((AZURE_DNS, 53))?;
                let tcp = TcpListener::bind((AZURE_DNS, 53))?;
                udp.set_nonblocking(true)?;
                tcp.set_nonblocking(true)?;
                Ok((udp, tcp))
            })?;
            let udp = tokio::net::UdpSocket::from_std(udp)?;
            let tcp = tokio::net::TcpListener::from_std(tcp)?;
            tasks.push(tokio::spawn(dns::serve_udp(
                udp,
                self.handle.clone(),
                vnet.clone(),
            )));
            tasks.push(tokio::spawn(dns::serve_tcp(
                tcp,
                self.handle.clone(),
                vnet.clone(),
            )));
            if vnet.is_some() {
                match in_netns(&ns, flows::open) {
                    Ok(s) => tasks.push(tokio::spawn(flows::collect(
                        s,
                        self.handle.clone(),
                        ns.clone(),
                    ))),
                    Err(e) => tracing::warn!("no kernel flow log in {ns} (nfnetlink_log: {e})"),
                }
            }
        }
        Ok(())
    }

    /// The namespace and address a face listens in.
    fn face_place(&self, service: &str, face: &Face) -> io::Result<(String, Ipv4Addr)> {
        let (addr, _) = self
            .handle
            .with_oracle(|o| o.face_address(service, face))
            .map_err(|e| io::Error::new(io::ErrorKind::NotFound, e.to_string()))?;
        let ns = match face {
            Face::Public => self.plan.inet_ns.clone(),
            Face::PrivateEndpoint(pe) => self
                .plan
                .hosts
                .get(pe)
                .map(|h| h.ns.clone())
                .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, format!("no host {pe}")))?,
        };
        Ok((ns, addr))
    }

    pub fn bind(&self, service: &str, face: &Face, port: u16) -> io::Result<BoundFace> {
        let (ns, ip) = self.face_place(service, face)?;
        let listener = in_netns(&ns, move || TcpListener::bind((ip, port)))?;
        let address = listener.local_addr()?;
        if port == 443 {
            self.handle.register_face(service, face, address);
        }
        Ok(BoundFace {
            source: ppvnet_common::serve::Source::Listener(listener),
            ingress: face.clone(),
            address,
        })
    }

    pub fn peer_directory(&self) -> SharedPeerDirectory {
        self.directory.clone()
    }

    pub fn hosts(&self) -> BTreeMap<String, HostEntry> {
        self.plan
            .hosts
            .iter()
            .map(|(name, h)| {
                (
                    name.clone(),
                    HostEntry {
                        address: IpAddr::V4(h.address),
                        azure_address: IpAddr::V4(h.address),
                        namespace: Some(h.ns.clone()),
                        proxy: None,
                        container: None,
                    },
                )
            })
            .collect()
    }

    /// The run's namespace prefix, which labels the Docker fabric's containers.
    pub fn run_label(&self) -> &str {
        &self.plan.prefix
    }

    /// The namespace of a host.
    pub fn namespace(&self, host: &str) -> Option<&str> {
        self.plan.hosts.get(host).map(|h| h.ns.as_str())
    }

    fn host_ns(&self, host: &str) -> io::Result<String> {
        self.namespace(host).map(str::to_string).ok_or_else(|| {
            io::Error::new(io::ErrorKind::NotFound, format!("unknown host '{host}'"))
        })
    }

    pub async fn connect(&self, from_host: &str, to: SocketAddr) -> io::Result<TcpStream> {
        connect_from(self.host_ns(from_host)?, to).await
    }

    /// A client whose connections leave from `from_host`'s namespace: reqwest talks to a local
    /// HTTP proxy that opens each connection inside the namespace and resolves names by the
    /// host's DNS view.
    pub fn http_client(
        &self,
        from_host: &str,
        root_ca_pem: &[u8],
    ) -> anyhow::Result<reqwest::Client> {
        let ns = self.host_ns(from_host)?;
        let proxy = {
            let mut proxies = self.proxies.lock().unwrap_or_else(|e| e.into_inner());
            match proxies.get(from_host) {
                Some(a) => *a,
                None => {
                    let l = TcpListener::bind(("127.0.0.1", 0))?;
                    l.set_nonblocking(true)?;
                    let addr = l.local_addr()?;
                    let l = tokio::net::TcpListener::from_std(l)?;
                    let host_proxy = Arc::new(super::proxy::HostProxy {
                        handle: self.handle.clone(),
                        host: from_host.to_string(),
                        dial: super::proxy::Dial::FromNamespace(ns),
                        head_timeout: super::proxy::HEAD_TIMEOUT,
                    });
                    // The proxy lives as long as the fabric: it stops when its task is aborted.
                    let (_, stop) = tokio::sync::watch::channel(false);
                    let task = tokio::spawn(super::proxy::serve(l, host_proxy, stop));
                    self.tasks
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .push(task);
                    proxies.insert(from_host.to_string(), addr);
                    addr
                }
            }
        };
        super::client::build(
            self.handle.clone(),
            from_host,
            None,
            Some(format!("http://{proxy}")),
            root_ca_pem,
        )
    }

    pub async fn teardown(self) -> anyhow::Result<()> {
        let tasks = std::mem::take(&mut *self.tasks.lock().unwrap_or_else(|e| e.into_inner()));
        for t in tasks {
            t.abort();
            let _ = t.await;
        }
        let plan = self.plan.clone();
        self.removed.store(true, Ordering::Relaxed);
        tokio::task::spawn_blocking(move || plan.remove()).await?
    }
}

impl Drop for NetnsFabric {
    /// A fabric dropped without [`NetnsFabric::teardown`] (an error path of the caller) still
    /// removes its namespaces, so nothing outlives the process's intent.
    fn drop(&mut self) {
        for t in std::mem::take(&mut *self.tasks.lock().unwrap_or_else(|e| e.into_inner())) {
            t.abort();
        }
        if !self.removed.swap(true, Ordering::Relaxed)
            && let Err(e) = self.plan.remove()
        {
            tracing::warn!("netns fabric dropped without teardown: {e:#}");
        }
    }
}

fn remove_namespaces(names: &[String]) -> anyhow::Result<()> {
    let lines: Vec<String> = names.iter().map(|n| format!("netns del {n}")).collect();
    run_ip_batch(None, true, &lines)?;
    for n in names {
        let _ = std::fs::remove_dir_all(Path::new("/etc/netns").join(n));
    }
    let left: Vec<&String> = names
        .iter()
        .filter(|n| Path::new("/run/netns").join(n).exists())
        .collect();
    anyhow::ensure!(left.is_empty(), "namespaces left behind: {left:?}");
    Ok(())
}

/// Creates every namespace, link, address, route and ruleset.
fn create(handle: &FabricHandle, backing: Backing) -> anyhow::Result<Plan> {
    for n in clean_stale() {
        tracing::info!("removed stale namespace {n} of a previous run");
    }
    if let Backing::Containers { image } = &backing {
        super::docker::check_image(image)?;
        for n in super::docker::clean_stale() {
            tracing::info!("removed stale container {n} of a previous run");
        }
    }
    let oracle = handle.oracle();
    let prefix = format!(
        "{PREFIX}{}-{}",
        std::process::id(),
        NEXT_RUN.fetch_add(1, Ordering::Relaxed)
    );
    let plan = build_plan(&oracle, &prefix, backing);
    let result = (|| -> anyhow::Result<()> {
        if let Backing::Containers { image } = &plan.backing {
            super::docker::start_sandboxes(&plan.prefix, image, &plan.sandboxes())?;
        }
        wire(&plan, &oracle)?;
        plan.apply(&oracle)
    })();
    if let Err(e) = result {
        let _ = plan.remove();
        return Err(e);
    }
    Ok(plan)
}

fn wire(plan: &Plan, oracle: &Oracle) -> anyhow::Result<()> {
    let mut root = Vec::new();
    // The Docker fabric's namespaces are its containers', attached already.
    if plan.backing == Backing::Namespaces {
        for ns in plan.all_namespaces() {
            root.push(format!("netns add {ns}"));
        }
    }
    let router_of = |h: &HostPlan| match &h.subnet {
        Some(r) => plan.vnet_ns[&r.vnet].clone(),
        None => plan.inet_ns.clone(),
    };
    for h in plan.hosts.values() {
        root.push(format!(
            "link add name {} netns {} type veth peer name eth0 netns {}",
            h.iface,
            router_of(h),
            h.ns
        ));
    }
    let vnet_index: BTreeMap<&String, usize> = plan
        .vnet_ns
        .keys()
        .enumerate()
        .map(|(i, v)| (v, i))
        .collect();
    for (v, ns) in &plan.vnet_ns {
        root.push(format!(
            "link add name {UPLINK} netns {ns} type veth peer name v{} netns {}",
            vnet_index[v], plan.inet_ns
        ));
    }
    for l in &plan.links {
        root.push(format!(
            "link add name {} netns {} type veth peer name {} netns {}",
            l.iface, plan.vnet_ns[&l.a], l.iface, plan.vnet_ns[&l.b]
        ));
    }
    run_ip_batch(None, false, &root)?;

    let mut per_ns: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for ns in plan.all_namespaces() {
        per_ns.entry(ns).or_default().push("link set lo up".into());
    }
    for h in plan.hosts.values() {
        per_ns.entry(h.ns.clone()).or_default().extend([
            format!("addr add {}/32 dev eth0", h.address),
            "link set eth0 up".into(),
            format!("route add {GATEWAY} dev eth0"),
            format!("route add default via {GATEWAY} dev eth0"),
        ]);
        per_ns.entry(router_of(h)).or_default().extend([
            format!("addr add {GATEWAY}/32 dev {}", h.iface),
            format!("link set {} up", h.iface),
            format!("route add {}/32 dev {}", h.address, h.iface),
        ]);
    }
    for (v, ns) in &plan.vnet_ns {
        let i = vnet_index[v] as u8;
        let r = per_ns.entry(ns.clone()).or_default();
        r.extend([
            format!("addr add {AZURE_DNS}/32 dev lo"),
            format!("addr add 100.65.{i}.1/30 dev {UPLINK}"),
            format!("link set {UPLINK} up"),
            format!("route add default via 100.65.{i}.2 dev {UPLINK}"),
        ]);
        let inet = per_ns.entry(plan.inet_ns.clone()).or_default();
        inet.extend([
            format!("addr add 100.65.{i}.2/30 dev v{i}"),
            format!("link set v{i} up"),
        ]);
        for dst in internet_routes(oracle, v) {
            inet.push(format!("route replace {dst} via 100.65.{i}.1 dev v{i}"));
        }
    }
    for l in &plan.links {
        per_ns
            .entry(plan.vnet_ns[&l.a].clone())
            .or_default()
            .extend([
                format!("addr add {}/30 dev {}", l.a_ip, l.iface),
                format!("link set {} up", l.iface),
            ]);
        per_ns
            .entry(plan.vnet_ns[&l.b].clone())
            .or_default()
            .extend([
                format!("addr add {}/30 dev {}", l.b_ip, l.iface),
                format!("link set {} up", l.iface),
            ]);
    }
    let inet = per_ns.entry(plan.inet_ns.clone()).or_default();
    inet.push(format!("addr add {AZURE_DNS}/32 dev lo"));
    for s in oracle.services().values() {
        inet.push(format!("addr add {}/32 dev lo", s.public_address));
    }
    for (ns, lines) in &per_ns {
        run_ip_batch(Some(ns), false, lines)?;
    }
    write_sysctls(&plan.inet_ns, true)?;
    for ns in plan.vnet_ns.values() {
        write_sysctls(ns, true)?;
    }
    for h in plan.hosts.values() {
        let dir = PathBuf::from("/etc/netns").join(&h.ns);
        std::fs::create_dir_all(&dir)?;
        std::fs::write(dir.join("resolv.conf"), format!("nameserver {AZURE_DNS}\n"))?;
    }
    Ok(())
}

/// What the internet router routes to `vnet`'s uplink: the public IPs of the vNet's NAT
/// gateways, and the prefixes of the subnets whose traffic still reaches a public address with its
/// private source: no NAT gateway (Azure's default outbound access, whose Microsoft-owned address
/// the landscape does not name, and a delegated subnet's `AzureActiveDirectory` service tag path)
/// or a `Microsoft.KeyVault` service endpoint (the backbone carries the replies). Azure's internet
/// has no route to a vNet's private ranges; leaving out the NAT gateway subnets' prefixes means a
/// reply to a source the router failed to translate cannot come back. A gateway serves one vNet
/// (as in Azure), so its /32 names one uplink.
fn internet_routes(oracle: &Oracle, vnet: &str) -> Vec<ipnet::Ipv4Net> {
    let Some(info) = oracle.vnets().get(vnet) else {
        return vec![];
    };
    let mut out = Vec::new();
    for s in info.subnets.values() {
        match s
            .nat_gateway
            .as_ref()
            .map(|g| oracle.nat_gateway_address(g))
        {
            Some(Some(public)) => {
                let public = ipnet::Ipv4Net::from(public);
                if !out.contains(&public) {
                    out.push(public);
                }
                if s.key_vault_endpoint {
                    out.push(s.prefix.trunc());
                }
            }
            // No gateway, or one without a usable public IP: the router does not translate.
            _ => out.push(s.prefix.trunc()),
        }
    }
    out
}

/// Opens a TCP connection from inside a namespace (the socket is created there).
pub(crate) async fn connect_from(ns: String, to: SocketAddr) -> io::Result<TcpStream> {
    let socket = in_netns(&ns, tokio::net::TcpSocket::new_v4)?;
    socket.connect(to).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fabric::oracle::test_landscapes::{nat_gateway_yaml, oracle};

    #[test]
    fn killed_sockets_are_read_from_ss_lines_and_others_are_skipped() {
        let listing = "ESTAB 0 0 10.20.1.4:51234 10.10.2.4:443\n\
                       ESTAB 0 0 [::1]:80 [::1]:5000\nnonsense\n";
        assert_eq!(
            killed_sockets(listing),
            vec![(
                "10.20.1.4:51234".parse().unwrap(),
                "10.10.2.4:443".parse().unwrap()
            )]
        );
    }

    #[test]
    fn the_internet_routes_back_nat_gateway_ips_and_only_untranslated_subnets() {
        let o = oracle(&nat_gateway_yaml());
        let routes = |v: &str| -> Vec<String> {
            internet_routes(&o, v)
                .iter()
                .map(|n| n.to_string())
                .collect()
        };
        // snet-pp is translated, so its prefix has no route; snet-app shares the gateway but its
        // Key Vault service endpoint keeps the private source.
        assert_eq!(
            routes("vnet-prod-westus"),
            ["203.0.113.100/32", "10.10.3.0/24"]
        );
        assert_eq!(routes("vnet-test-westus"), ["203.0.113.101/32"]);
        // No gateway: the AzureActiveDirectory service tag path keeps the private source.
        assert_eq!(routes("vnet-prod-eastus"), ["10.20.1.0/24"]);
    }
}
