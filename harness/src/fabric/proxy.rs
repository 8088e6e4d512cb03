//! A host's HTTPS proxy: `CONNECT name:443` resolved by the host's DNS view and connected from
//! the host, so an unmodified client (Azure SDKs, MSAL, curl) reaches the landscape by real host
//! names through `HTTPS_PROXY`.
//!
//! Both fabrics use it, differing only in how the tunnel's TCP connection is opened ([`Dial`]):
//! - loopback: one proxy per host, listening on the host's own `127.B.1.x` address
//!   ([`PROXY_PORT`]), started with the fabric. The name resolves to the answering face
//!   ([`super::client::HostResolver`]), and the proxy connects to that face's relay *from the
//!   host's address*, so the relay names the host, asks the oracle, applies NAT and writes the
//!   flow log exactly as for any other connection of that host. `ppvnet exec` and `ppvnet env`
//!   point programs at it;
//! - netns: the harness's own clients of a host (`NetnsFabric::http_client`) go through a proxy
//!   on 127.0.0.1 whose sockets are created inside the host's namespace and connect to the
//!   emulated address the vNet's DNS gives.
//!
//! The proxy never decides a flow itself. A denied flow is denied by the relay (loopback) or the
//! kernel (netns), and the client sees what a client in that subnet sees: on loopback the
//! CONNECT is answered (the relay's TCP handshake completed, as every loopback connection's
//! does) and the tunnel is then dropped and reset like a direct connection to the relay; on
//! netns the connect times out (504). One enforcement point keeps one flow log record per
//! attempt, with the calling host as its source.
//!
//! What the proxy answers itself, with the reason in the status line (Python's `http.client`
//! shows only that line when a tunnel fails): 502 for a name the host's DNS view does not know
//! (NXDOMAIN) or a refused connection, 504 when connecting times out, 400 for a malformed
//! request, 408 when the request head does not arrive within [`HEAD_TIMEOUT`], 431 above
//! [`MAX_HEAD`], and 501 for anything but `CONNECT`: plain HTTP is not proxied (every endpoint
//! of the landscape is HTTPS; a plain request forwarded as is would also send later requests of
//! a kept-alive connection to the first request's server).

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};

use super::FabricHandle;
use super::client::ResolveError;
use super::oracle::Resolution;

/// The port of a loopback host's proxy (Squid's customary port), on the host's own address; a
/// free port instead when it is taken.
pub const PROXY_PORT: u16 = 3128;
/// The largest request head the proxy reads; a CONNECT request is a few hundred bytes.
pub const MAX_HEAD: usize = 16 * 1024;
/// How long the request head may take to arrive before the proxy answers 408.
pub const HEAD_TIMEOUT: Duration = Duration::from_secs(10);
/// How long opening the tunnel's connection may take before the proxy answers 504.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Connections one proxy serves at once; more wait in the listen backlog.
const MAX_CONNECTIONS: usize = 512;

/// How a proxy opens the tunnel's TCP connection for its host.
#[derive(Clone, Debug)]
pub(crate) enum Dial {
    /// Loopback: from the host's real address, to the relay of the face the name resolves to.
    FromAddress(Ipv4Addr),
    /// Netns: from a socket created inside the host's namespace, to the emulated address.
    FromNamespace(String),
}

/// One host's proxy.
pub(crate) struct HostProxy {
    pub handle: FabricHandle,
    pub host: String,
    pub dial: Dial,
    /// Limits for the request head (tests shorten the timeout).
    pub head_timeout: Duration,
}

/// Why a tunnel could not be opened: the status the proxy answers with, and the reason shown.
#[derive(Debug)]
struct Refusal {
    status: u16,
    reason: &'static str,
    detail: String,
}

impl Refusal {
    fn new(status: u16, reason: &'static str, detail: impl Into<String>) -> Self {
        Self {
            status,
            reason,
            detail: detail.into(),
        }
    }
}

/// Binds a loopback host's proxy listener on `ip`: [`PROXY_PORT`], or a free port.
pub(crate) fn bind_loopback(ip: Ipv4Addr) -> io::Result<std::net::TcpListener> {
    let listener = match std::net::TcpListener::bind((ip, PROXY_PORT)) {
        Ok(l) => l,
        Err(e) if e.kind() == io::ErrorKind::AddrInUse => std::net::TcpListener::bind((ip, 0))?,
        Err(e) => return Err(e),
    };
    listener.set_nonblocking(true)?;
    Ok(listener)
}

/// Serves `listener` until `stop` turns true (never, once its sender is gone: the task is then
/// stopped by aborting it).
pub(crate) async fn serve(
    listener: TcpListener,
    proxy: Arc<HostProxy>,
    mut stop: watch::Receiver<bool>,
) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let mut conns = tokio::task::JoinSet::new();
    let stopped = async move {
        while !*stop.borrow_and_update() {
            if stop.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::pin!(stopped);
    loop {
        let Ok(slot) = slots.clone().acquire_owned().await else {
            break;
        };
        tokio::select! {
            _ = &mut stopped => break,
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let proxy = proxy.clone();
                    conns.spawn(async move {
                        proxy_one(stream, &proxy).await;
                        drop(slot);
                    });
                }
                Err(e) => {
                    tracing::warn!("proxy of host {}: accept failed: {e}", proxy.host);
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
        }
    }
    conns.abort_all();
}

/// One client connection: reads `CONNECT name:port`, opens the tunnel, splices.
async fn proxy_one(mut client: TcpStream, proxy: &HostProxy) {
    let head = match tokio::time::timeout(proxy.head_timeout, read_head(&mut client)).await {
        Ok(Ok(Some(head))) => head,
        // The client left before sending a request: nothing to answer.
        Ok(Ok(None)) | Ok(Err(_)) => return,
        Err(_) => {
            let r = Refusal::new(408, "Request Timeout", "no CONNECT request arrived in time");
            return refuse(client, &proxy.host, r).await;
        }
    };
    let (head, early) = match head {
        Head::Complete { head, rest } => (head, rest),
        Head::TooLarge => {
            let r = Refusal::new(
                431,
                "Request Header Fields Too Large",
                format!("the request head exceeds {MAX_HEAD} bytes"),
            );
            return refuse(client, &proxy.host, r).await;
        }
    };
    let (name, port) = match parse_connect(&head) {
        Ok(target) => target,
        Err(r) => return refuse(client, &proxy.host, r).await,
    };
    let mut server = match open(proxy, &name, port).await {
        Ok(s) => s,
        Err(r) => return refuse(client, &proxy.host, r).await,
    };
    let _ = server.set_nodelay(true);
    let _ = client.set_nodelay(true);
    if client
        .write_all(b"HTTP/1.1 200 Connection Established\r\n\r\n")
        .await
        .is_err()
        || server.write_all(&early).await.is_err()
    {
        return;
    }
    if tokio::io::copy_bidirectional(&mut client, &mut server)
        .await
        .is_err()
    {
        // The far side reset (a relay's drop or refusal): pass the reset on rather than a clean
        // close, so the client sees what it would see connected directly.
        reset(&client);
        reset(&server);
    }
}

/// A request head as read from the client.
enum Head {
    /// The head up to its blank line, and what the client sent after it (a TLS ClientHello it
    /// did not wait to send).
    Complete {
        head: Vec<u8>,
        rest: Vec<u8>,
    },
    TooLarge,
}

/// Reads up to the end of the request head; `None` when the client closed first.
async fn read_head(client: &mut TcpStream) -> io::Result<Option<Head>> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let rest = buf.split_off(end + 4);
            return Ok(Some(Head::Complete { head: buf, rest }));
        }
        if buf.len() > MAX_HEAD {
            return Ok(Some(Head::TooLarge));
        }
        let n = client.read(&mut chunk).await?;
        if n == 0 {
            return Ok(None);
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// The `name` and `port` of `CONNECT name:port HTTP/1.1`.
fn parse_connect(head: &[u8]) -> Result<(String, u16), Refusal> {
    let bad = |detail: &str| Refusal::new(400, "Bad Request", detail);
    let text = std::str::from_utf8(head).map_err(|_| bad("the request head is not UTF-8"))?;
    let mut first = text.lines().next().unwrap_or_default().split_whitespace();
    let (method, target, version) = (first.next(), first.next(), first.next());
    let (Some(method), Some(target), Some(version)) = (method, target, version) else {
        return Err(bad("expected `CONNECT host:port HTTP/1.1`"));
    };
    if !version.starts_with("HTTP/1.") {
        return Err(bad("expected HTTP/1.x"));
    }
    if !method.eq_ignore_ascii_case("CONNECT") {
        return Err(Refusal::new(
            501,
            "Not Implemented",
            format!(
                "{method} is not proxied: this proxy carries HTTPS only (CONNECT host:443); \
                 use https:// URLs"
            ),
        ));
    }
    let (name, port) = target
        .rsplit_once(':')
        .and_then(|(n, p)| Some((n, p.parse::<u16>().ok()?)))
        .filter(|(n, _)| !n.is_empty() && !n.contains(['[', ']', '/', '@']))
        .ok_or_else(|| bad("expected `CONNECT host:port` with a host name or IPv4 address"))?;
    Ok((name.to_ascii_lowercase(), port))
}

/// Resolves `name` by the host's DNS view and connects to it as the host.
async fn open(proxy: &HostProxy, name: &str, port: u16) -> Result<TcpStream, Refusal> {
    let target = match &proxy.dial {
        Dial::FromAddress(_) => loopback_target(proxy, name, port)?,
        Dial::FromNamespace(_) => netns_target(proxy, name, port)?,
    };
    let connecting = async {
        match &proxy.dial {
            Dial::FromAddress(ip) => super::loopback::connect_from(Some(*ip), target).await,
            Dial::FromNamespace(ns) => super::netns::connect_from(ns.clone(), target).await,
        }
    };
    match tokio::time::timeout(CONNECT_TIMEOUT, connecting).await {
        Ok(Ok(s)) => Ok(s),
        Ok(Err(e)) => Err(Refusal::new(
            502,
            "Bad Gateway",
            format!("{name}:{port}: {e}"),
        )),
        Err(_) => Err(Refusal::new(
            504,
            "Gateway Timeout",
            format!("{name}:{port}: the connection timed out"),
        )),
    }
}

/// Loopback: the relay address of the face `name` resolves to from the host (port 443: the
/// face's registered relay, which may sit on another real port; any other port: that port of
/// the face's address). An IPv4 literal must be a face: a relay's address or a face's emulated
/// one. Only relays listen on face addresses (private endpoints have no proxy), so nothing
/// reaches past them.
fn loopback_target(proxy: &HostProxy, name: &str, port: u16) -> Result<SocketAddr, Refusal> {
    let relay = match name.parse::<Ipv4Addr>() {
        Ok(ip) => {
            return face_by_address(&proxy.handle, ip, port).ok_or_else(|| {
                Refusal::new(
                    502,
                    "Bad Gateway",
                    format!("{ip} is not the address of a service face of this landscape"),
                )
            });
        }
        Err(_) => super::client::face_for_name(&proxy.handle, &proxy.host, name)
            .map_err(|e| unresolved(proxy, name, e))?,
    };
    Ok(if port == 443 {
        relay
    } else {
        SocketAddr::new(relay.ip(), port)
    })
}

/// Netns: the emulated address `name` resolves to in the host's vNet (the kernel routes it).
fn netns_target(proxy: &HostProxy, name: &str, port: u16) -> Result<SocketAddr, Refusal> {
    if let Ok(ip) = name.parse::<Ipv4Addr>() {
        return Ok(SocketAddr::from((ip, port)));
    }
    match proxy.handle.resolve(&proxy.host, name) {
        Ok(Resolution::Address { address, .. }) => Ok(SocketAddr::from((address, port))),
        Ok(Resolution::NxDomain { .. }) => Err(unresolved(
            proxy,
            name,
            ResolveError::NxDomain {
                name: name.into(),
                host: proxy.host.clone(),
            },
        )),
        Err(e) => Err(unresolved(proxy, name, e.into())),
    }
}

/// The face whose relay or emulated address is `ip`, as the relay address to connect to.
fn face_by_address(handle: &FabricHandle, ip: Ipv4Addr, port: u16) -> Option<SocketAddr> {
    let faces = handle.with_oracle(|o| {
        o.faces()
            .into_iter()
            .filter_map(|(s, f)| Some((o.face_address(&s, &f).ok()?.0, s, f)))
            .collect::<Vec<_>>()
    });
    faces.into_iter().find_map(|(emulated, service, face)| {
        let relay = handle.face_address(&service, &face)?;
        let by_relay = relay.ip() == IpAddr::V4(ip);
        // The emulated address on 443 means the registered relay, wherever it listens.
        (by_relay || emulated == ip).then(|| match (by_relay, port) {
            (false, 443) => relay,
            _ => SocketAddr::new(relay.ip(), port),
        })
    })
}

/// The 502 for a name the host cannot resolve, naming the host's DNS view.
fn unresolved(proxy: &HostProxy, name: &str, e: ResolveError) -> Refusal {
    let view = proxy
        .handle
        .with_oracle(|o| o.host(&proxy.host).ok().and_then(|h| h.subnet.clone()))
        .map(|r| format!("the DNS of {}", r.vnet))
        .unwrap_or_else(|| "public DNS".to_string());
    let detail = match e {
        ResolveError::NxDomain { .. } => {
            format!(
                "{name} does not resolve from host {} ({view}): NXDOMAIN",
                proxy.host
            )
        }
        other => format!("{name} from host {} ({view}): {other}", proxy.host),
    };
    Refusal::new(502, "Bad Gateway", detail)
}

/// Answers the client with `refusal` and closes. The detail goes into the status line (after
/// the standard reason) and the body.
async fn refuse(mut client: TcpStream, host: &str, refusal: Refusal) {
    let detail = format!("ppvnet proxy of host {host}: {}", refusal.detail);
    let line = detail.replace(['\r', '\n'], " ");
    let body = format!("{detail}\n");
    let answer = format!(
        "HTTP/1.1 {} {} ({line})\r\ncontent-type: text/plain; charset=utf-8\r\n\
         content-length: {}\r\nconnection: close\r\n\r\n{body}",
        refusal.status,
        refusal.reason,
        body.len()
    );
    let _ = client.write_all(answer.as_bytes()).await;
    let _ = client.shutdown().await;
}

/// Closes with a TCP reset (SO_LINGER 0); see `loopback::reset`.
#[allow(deprecated)]
fn reset(stream: &TcpStream) {
    let _ = stream.set_linger(Some(Duration::ZERO));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connect_requests_parse_and_everything_else_is_refused_clearly() {
        let ok = parse_connect(b"CONNECT KV-A.vault.azure.net:443 HTTP/1.1\r\nHost: x\r\n\r\n");
        assert_eq!(ok.unwrap(), ("kv-a.vault.azure.net".to_string(), 443));
        let plain = parse_connect(b"GET http://example.com/ HTTP/1.1\r\n\r\n").unwrap_err();
        assert_eq!(plain.status, 501);
        assert!(plain.detail.contains("HTTPS only"), "{}", plain.detail);
        for bad in [
            &b"CONNECT kv.vault.azure.net HTTP/1.1\r\n\r\n"[..],
            b"CONNECT :443 HTTP/1.1\r\n\r\n",
            b"CONNECT [::1]:443 HTTP/1.1\r\n\r\n",
            b"CONNECT a:99999 HTTP/1.1\r\n\r\n",
            b"CONNECT a:443\r\n\r\n",
            b"CONNECT a:443 SPDY/3\r\n\r\n",
            b"\xff\xfe\r\n\r\n",
        ] {
            assert_eq!(parse_connect(bad).unwrap_err().status, 400, "{bad:?}");
        }
    }
}
