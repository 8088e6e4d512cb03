//! Flow log of the netns fabric, read from the kernel of each vNet router namespace and named
//! with the oracle's hosts and services:
//! - `B` and `D`: the router's nftables rules send the first packet of each allowed connection
//!   (where it leaves the last router) and every dropped packet (`D:<rule>`) to NFLOG group
//!   [`LOG_GROUP`]; an NFLOG socket bound inside the router reads them. A dropped SYN is
//!   retransmitted by the client; repeats of one tuple within [`REPEAT_WINDOW_MS`] are one record.
//! - `C` and `E` with packet and byte counts: the `B` rule also sets the conntrack mark
//!   [`BEGUN_MARK`], conntrack accounting is on in the router, and every [`POLL`] the reader dumps
//!   the router's marked connections over ctnetlink. A TCP connection in `TIME_WAIT` or `CLOSE`,
//!   or any connection gone from the table, has ended (`E`); one still open
//!   the flow log's continue interval after its previous record continues (`C`, Azure's 5
//!   minutes, [`AZURE_CONTINUE_INTERVAL`]).
//!   As in Azure, `C` and `E` counters are deltas since the flow's previous record, so a flow's
//!   `C`s and `E` add up to its total. Sent is the initiator→responder direction (conntrack's
//!   original tuple, the `B` record's src→dst), received the reply direction, as in the loopback
//!   fabric; the counts are IP packet bytes, headers included (Azure counts "packet header and
//!   payload"; the loopback relay can only count payload). An `E` repeats its `B`'s fields (rule,
//!   direction, names), as the loopback fabric's does.
//!
//! Why a periodic dump rather than conntrack's DESTROY events: the kernel reports DESTROY when its
//! conntrack garbage collector frees the entry, which runs on an adaptive interval of up to 60 s
//! (shared by every namespace). Measured on this project's kernel (6.18) with
//! `nf_conntrack_tcp_timeout_time_wait` lowered to 1 s: DESTROY arrived 15.8 s, 60.9 s and 60.8 s
//! after three connections closed. A closed TCP connection shows `TIME_WAIT` in a dump at once,
//! so with a [`POLL`] of 250 ms the `E` record is in the log 10–271 ms after the close (60 runs
//! of `fabric_netns::kernel_flow_log_ends_each_connection_with_its_byte_counts` in the harness's
//! `integration` test binary, which prints it), and the same dumps yield the `C` records.
//!
//! What the kernel path records, as Azure's VNet flow logs do, is traffic that crosses a vNet:
//! connections between the internet and a public endpoint are not in any vNet's log.

use std::collections::{HashMap, HashSet};
use std::io;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::Duration;

use tokio::io::unix::AsyncFd;

use super::nft::{BEGUN_MARK, LOG_GROUP};
use crate::fabric::flowlog::{
    AZURE_CONTINUE_INTERVAL, FlowCounters, FlowRecord, FlowState, now_ms,
};
use crate::fabric::oracle::{Decision, Oracle};
use crate::fabric::{FabricHandle, Face};

const REPEAT_WINDOW_MS: u64 = 30_000;
/// How often each router's connections are dumped: the delay of an `E` record after its close.
pub const POLL: Duration = Duration::from_millis(250);
/// A `B` whose connection the dumps never showed (a lost race) is forgotten after this long.
const BEGUN_KEEP_MS: u64 = 10 * 60 * 1000;
/// Longest a dump may take before the reader gives up on it until the next poll.
const DUMP_TIMEOUT: Duration = Duration::from_secs(2);

const NFNL_SUBSYS_CTNETLINK: u16 = 1;
const NFNL_SUBSYS_ULOG: u16 = 4;
const NFULNL_MSG_PACKET: u16 = 0;
const NFULNL_MSG_CONFIG: u16 = 1;
const NFULA_CFG_CMD: u16 = 1;
const NFULA_CFG_MODE: u16 = 2;
const NFULA_CFG_QTHRESH: u16 = 5;
const NFULNL_CFG_CMD_BIND: u8 = 1;
const NFULNL_COPY_PACKET: u8 = 2;
const NFULA_PAYLOAD: u16 = 9;
const NFULA_PREFIX: u16 = 10;
const IPCTNL_MSG_CT_NEW: u16 = 0;
const IPCTNL_MSG_CT_GET: u16 = 1;
const IPCTNL_MSG_CT_DELETE: u16 = 2;
/// Marks a nested netlink attribute.
const NLA_F_NESTED: u16 = 1 << 15;
const CTA_TUPLE_ORIG: u16 = 1;
const CTA_TUPLE_IP: u16 = 1;
const CTA_TUPLE_PROTO: u16 = 2;
const CTA_IP_V4_SRC: u16 = 1;
const CTA_IP_V4_DST: u16 = 2;
const CTA_PROTO_NUM: u16 = 1;
const CTA_PROTO_SRC_PORT: u16 = 2;
const CTA_PROTO_DST_PORT: u16 = 3;
const CTA_PROTOINFO: u16 = 4;
const CTA_PROTOINFO_TCP: u16 = 1;
const CTA_PROTOINFO_TCP_STATE: u16 = 1;
const CTA_MARK: u16 = 8;
const CTA_COUNTERS_ORIG: u16 = 9;
const CTA_COUNTERS_REPLY: u16 = 10;
const CTA_COUNTERS_PACKETS: u16 = 1;
const CTA_COUNTERS_BYTES: u16 = 2;
const CTA_ID: u16 = 12;
const CTA_MARK_MASK: u16 = 21;
/// `enum tcp_conntrack`: the states in which a TCP connection is over.
const TCP_CONNTRACK_TIME_WAIT: u8 = 7;
const TCP_CONNTRACK_CLOSE: u8 = 8;

fn nla(buf: &mut Vec<u8>, kind: u16, data: &[u8]) {
    let len = 4 + data.len();
    buf.extend_from_slice(&(len as u16).to_ne_bytes());
    buf.extend_from_slice(&kind.to_ne_bytes());
    buf.extend_from_slice(data);
    while !buf.len().is_multiple_of(4) {
        buf.push(0);
    }
}

/// The attributes of a netlink attribute stream, as (type without flags, payload).
fn attrs(mut data: &[u8]) -> impl Iterator<Item = (u16, &[u8])> {
    std::iter::from_fn(move || {
        if data.len() < 4 {
            return None;
        }
        let len = usize::from(u16::from_ne_bytes([data[0], data[1]]));
        let kind = u16::from_ne_bytes([data[2], data[3]]) & 0x3fff;
        if len < 4 || len > data.len() {
            return None;
        }
        let payload = &data[4..len];
        data = &data[((len + 3) & !3).min(data.len())..];
        Some((kind, payload))
    })
}

/// The netlink messages of a datagram, as (type, flags, sequence, body after the header).
fn messages(mut data: &[u8]) -> impl Iterator<Item = (u16, u16, u32, &[u8])> {
    std::iter::from_fn(move || {
        if data.len() < 16 {
            return None;
        }
        let len = u32::from_ne_bytes([data[0], data[1], data[2], data[3]]) as usize;
        if len < 16 || len > data.len() {
            return None;
        }
        let kind = u16::from_ne_bytes([data[4], data[5]]);
        let flags = u16::from_ne_bytes([data[6], data[7]]);
        let seq = u32::from_ne_bytes([data[8], data[9], data[10], data[11]]);
        let body = &data[16..len];
        data = &data[((len + 3) & !3).min(data.len())..];
        Some((kind, flags, seq, body))
    })
}

/// A netfilter netlink request: header, `nfgenmsg` (family, version 0, resource id) and attributes.
fn nfnl_message(
    kind: u16,
    flags: u16,
    seq: u32,
    family: u8,
    res_id: u16,
    attrs: &[(u16, Vec<u8>)],
) -> Vec<u8> {
    let mut body = vec![family, 0];
    body.extend_from_slice(&res_id.to_be_bytes());
    for (k, d) in attrs {
        nla(&mut body, *k, d);
    }
    let mut msg = Vec::with_capacity(16 + body.len());
    msg.extend_from_slice(&((16 + body.len()) as u32).to_ne_bytes());
    msg.extend_from_slice(&kind.to_ne_bytes());
    msg.extend_from_slice(&flags.to_ne_bytes());
    msg.extend_from_slice(&seq.to_ne_bytes());
    msg.extend_from_slice(&0u32.to_ne_bytes());
    msg.extend_from_slice(&body);
    msg
}

/// A bound `NETLINK_NETFILTER` socket in the calling thread's network namespace.
fn netfilter_socket() -> io::Result<OwnedFd> {
    // SAFETY: plain socket calls on a descriptor this function owns.
    unsafe {
        let fd = libc::socket(
            libc::AF_NETLINK,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC,
            libc::NETLINK_NETFILTER,
        );
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        let fd = OwnedFd::from_raw_fd(fd);
        let mut addr: libc::sockaddr_nl = std::mem::zeroed();
        addr.nl_family = libc::AF_NETLINK as u16;
        if libc::bind(
            fd.as_raw_fd(),
            &addr as *const libc::sockaddr_nl as *const libc::sockaddr,
            std::mem::size_of::<libc::sockaddr_nl>() as u32,
        ) != 0
        {
            return Err(io::Error::last_os_error());
        }
        Ok(fd)
    }
}

fn set_nonblocking(fd: &OwnedFd) {
    // SAFETY: fcntl on a descriptor the caller owns.
    unsafe {
        let flags = libc::fcntl(fd.as_raw_fd(), libc::F_GETFL);
        libc::fcntl(fd.as_raw_fd(), libc::F_SETFL, flags | libc::O_NONBLOCK);
    }
}

fn send(fd: &OwnedFd, msg: &[u8]) -> io::Result<()> {
    // SAFETY: send from a buffer we own on a descriptor the caller owns.
    if unsafe { libc::send(fd.as_raw_fd(), msg.as_ptr().cast(), msg.len(), 0) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

fn recv(fd: &OwnedFd, buf: &mut [u8]) -> io::Result<usize> {
    // SAFETY: recv into a buffer we own, on a descriptor the caller owns.
    let n = unsafe { libc::recv(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(n as usize)
}

/// Deletes the conntrack entries of TCP connections, each given by its original direction
/// (client → server), in the calling thread's network namespace; an entry that is not there is
/// fine. The router's reader then ends their flows with an `E` record (gone without a TCP
/// close), and a later packet of such a connection meets the ruleset as a new one.
pub(crate) fn forget(conns: &[(SocketAddrV4, SocketAddrV4)]) -> io::Result<()> {
    let fd = netfilter_socket()?;
    let mut buf = vec![0u8; 8192];
    for (i, (client, server)) in conns.iter().enumerate() {
        let mut ip = Vec::new();
        nla(&mut ip, CTA_IP_V4_SRC, &client.ip().octets());
        nla(&mut ip, CTA_IP_V4_DST, &server.ip().octets());
        let mut proto = Vec::new();
        nla(&mut proto, CTA_PROTO_NUM, &[libc::IPPROTO_TCP as u8]);
        nla(&mut proto, CTA_PROTO_SRC_PORT, &client.port().to_be_bytes());
        nla(&mut proto, CTA_PROTO_DST_PORT, &server.port().to_be_bytes());
        let mut tuple = Vec::new();
        nla(&mut tuple, CTA_TUPLE_IP | NLA_F_NESTED, &ip);
        nla(&mut tuple, CTA_TUPLE_PROTO | NLA_F_NESTED, &proto);
        let seq = i as u32 + 1;
        let request = nfnl_message(
            (NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_DELETE,
            (libc::NLM_F_REQUEST | libc::NLM_F_ACK) as u16,
            seq,
            libc::AF_INET as u8,
            0,
            &[(CTA_TUPLE_ORIG | NLA_F_NESTED, tuple)],
        );
        send(&fd, &request)?;
        let n = recv(&fd, &mut buf)?;
        for (kind, _, got, body) in messages(&buf[..n]) {
            if kind != libc::NLMSG_ERROR as u16 || got != seq {
                continue;
            }
            match nlmsg_error(body) {
                Some(0) | None => {}
                Some(e) if -e == libc::ENOENT => {}
                Some(e) => return Err(io::Error::from_raw_os_error(-e)),
            }
        }
    }
    Ok(())
}

/// The error code of an `NLMSG_ERROR` body (0 is an acknowledgement).
fn nlmsg_error(body: &[u8]) -> Option<i32> {
    body.get(..4)
        .map(|b| i32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
}

/// Opens an NFLOG socket for [`LOG_GROUP`] in the calling thread's network namespace.
fn open_nflog() -> io::Result<OwnedFd> {
    let fd = netfilter_socket()?;
    let mut mode = 96u32.to_be_bytes().to_vec();
    mode.extend_from_slice(&[NFULNL_COPY_PACKET, 0]);
    let config = (NFNL_SUBSYS_ULOG << 8) | NFULNL_MSG_CONFIG;
    let flags = (libc::NLM_F_REQUEST | libc::NLM_F_ACK) as u16;
    let family = libc::AF_UNSPEC as u8;
    let msgs = [
        nfnl_message(
            config,
            flags,
            1,
            family,
            LOG_GROUP,
            &[(NFULA_CFG_CMD, vec![NFULNL_CFG_CMD_BIND])],
        ),
        nfnl_message(
            config,
            flags,
            2,
            family,
            LOG_GROUP,
            &[(NFULA_CFG_MODE, mode)],
        ),
        // The kernel batches up to 100 packets or 1 s by default; one message per packet puts a
        // `B` in the log before its connection can show in a conntrack dump.
        nfnl_message(
            config,
            flags,
            3,
            family,
            LOG_GROUP,
            &[(NFULA_CFG_QTHRESH, 1u32.to_be_bytes().to_vec())],
        ),
    ];
    for m in msgs {
        send(&fd, &m)?;
        let mut ack = [0u8; 512];
        let n = recv(&fd, &mut ack)?;
        // NLMSG_ERROR with a non-zero code: the kernel refused the configuration.
        for (kind, _, _, body) in messages(&ack[..n]) {
            if kind == libc::NLMSG_ERROR as u16
                && let Some(code) = nlmsg_error(body).filter(|c| *c != 0)
            {
                return Err(io::Error::from_raw_os_error(-code));
            }
        }
    }
    set_nonblocking(&fd);
    Ok(fd)
}

/// The kernel sockets of one router's flow log.
pub struct Sockets {
    nflog: OwnedFd,
    /// `None` when conntrack cannot be read: `B` and `D` records only.
    conntrack: Option<OwnedFd>,
}

/// Opens the flow log sockets in the calling thread's network namespace (a vNet router) and turns
/// conntrack accounting on there (`nf_conntrack_acct` is per namespace and counts only
/// connections created after it is set, so this runs before any host sends).
pub fn open() -> io::Result<Sockets> {
    let nflog = open_nflog()?;
    let conntrack = std::fs::write("/proc/sys/net/netfilter/nf_conntrack_acct", "1")
        .and_then(|()| netfilter_socket());
    let conntrack = match conntrack {
        Ok(fd) => {
            set_nonblocking(&fd);
            Some(fd)
        }
        Err(e) => {
            tracing::warn!("no connection ends in the flow log (conntrack accounting: {e})");
            None
        }
    };
    Ok(Sockets { nflog, conntrack })
}

/// One logged packet.
#[derive(Debug, PartialEq, Eq)]
pub struct Logged {
    pub prefix: String,
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    pub sport: u16,
    pub dport: u16,
    pub proto: u8,
}

/// Whether a protocol's first four transport bytes are its ports (conntrack's tuple has ports
/// only for these).
fn has_ports(proto: u8) -> bool {
    matches!(proto, 6 | 17 | 132 | 136)
}

/// Parses the NFLOG packet messages of one datagram.
pub fn parse(datagram: &[u8]) -> Vec<Logged> {
    let mut out = Vec::new();
    for (kind, _, _, body) in messages(datagram) {
        if kind != (NFNL_SUBSYS_ULOG << 8) | NFULNL_MSG_PACKET || body.len() < 4 {
            continue;
        }
        let (mut prefix, mut payload) = (None, None);
        for (akind, data) in attrs(&body[4..]) {
            match akind {
                NFULA_PREFIX => {
                    prefix = Some(
                        String::from_utf8_lossy(data)
                            .trim_end_matches('\0')
                            .to_string(),
                    )
                }
                NFULA_PAYLOAD => payload = Some(data),
                _ => {}
            }
        }
        if let (Some(prefix), Some(p)) = (prefix, payload)
            && p.len() >= 20
            && p[0] >> 4 == 4
        {
            let ihl = usize::from(p[0] & 0x0f) * 4;
            let ports = (has_ports(p[9]) && p.len() >= ihl + 4).then(|| {
                (
                    u16::from_be_bytes([p[ihl], p[ihl + 1]]),
                    u16::from_be_bytes([p[ihl + 2], p[ihl + 3]]),
                )
            });
            let (sport, dport) = ports.unwrap_or((0, 0));
            out.push(Logged {
                prefix,
                src: Ipv4Addr::new(p[12], p[13], p[14], p[15]),
                dst: Ipv4Addr::new(p[16], p[17], p[18], p[19]),
                sport,
                dport,
                proto: p[9],
            });
        }
    }
    out
}

/// A connection's original-direction 5-tuple: the `B` record's src → dst.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct Tuple {
    pub src: Ipv4Addr,
    pub sport: u16,
    pub dst: Ipv4Addr,
    pub dport: u16,
    pub proto: u8,
}

/// One conntrack entry of a dump.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Conn {
    pub tuple: Tuple,
    /// Conntrack's id of the entry: a reused tuple is a new connection.
    pub id: u32,
    pub mark: u32,
    /// TCP state (`enum tcp_conntrack`), `None` for other protocols.
    pub tcp_state: Option<u8>,
    pub counters: FlowCounters,
}

impl Conn {
    fn ended(&self) -> bool {
        matches!(
            self.tcp_state,
            Some(TCP_CONNTRACK_TIME_WAIT | TCP_CONNTRACK_CLOSE)
        )
    }
}

fn be_u16(d: &[u8]) -> u16 {
    d.get(..2).map_or(0, |b| u16::from_be_bytes([b[0], b[1]]))
}

fn be_u32(d: &[u8]) -> u32 {
    d.get(..4)
        .map_or(0, |b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

fn be_u64(d: &[u8]) -> u64 {
    d.get(..8)
        .and_then(|b| b.try_into().ok())
        .map_or(0, u64::from_be_bytes)
}

fn v4(d: &[u8]) -> Option<Ipv4Addr> {
    d.get(..4).map(|b| Ipv4Addr::new(b[0], b[1], b[2], b[3]))
}

fn counters(d: &[u8]) -> (u64, u64) {
    let (mut packets, mut bytes) = (0, 0);
    for (k, v) in attrs(d) {
        match k {
            CTA_COUNTERS_PACKETS => packets = be_u64(v),
            CTA_COUNTERS_BYTES => bytes = be_u64(v),
            _ => {}
        }
    }
    (packets, bytes)
}

/// The entry of one ctnetlink `IPCTNL_MSG_CT_NEW` body (after the netlink header); `None` for an
/// entry that is not IPv4.
fn parse_conn(body: &[u8]) -> Option<Conn> {
    let (mut src, mut dst, mut proto, mut sport, mut dport) = (None, None, None, 0, 0);
    let (mut id, mut mark, mut tcp_state) = (0, 0, None);
    let mut c = FlowCounters::default();
    for (k, v) in attrs(body.get(4..)?) {
        match k {
            CTA_TUPLE_ORIG => {
                for (k, v) in attrs(v) {
                    match k {
                        CTA_TUPLE_IP => {
                            for (k, v) in attrs(v) {
                                match k {
                                    CTA_IP_V4_SRC => src = v4(v),
                                    CTA_IP_V4_DST => dst = v4(v),
                                    _ => {}
                                }
                            }
                        }
                        CTA_TUPLE_PROTO => {
                            for (k, v) in attrs(v) {
                                match k {
                                    CTA_PROTO_NUM => proto = v.first().copied(),
                                    CTA_PROTO_SRC_PORT => sport = be_u16(v),
                                    CTA_PROTO_DST_PORT => dport = be_u16(v),
                                    _ => {}
                                }
                            }
                        }
                        _ => {}
                    }
                }
            }
            CTA_PROTOINFO => {
                let tcp = attrs(v).find(|(k, _)| *k == CTA_PROTOINFO_TCP);
                tcp_state = tcp.and_then(|(_, t)| {
                    attrs(t)
                        .find(|(k, _)| *k == CTA_PROTOINFO_TCP_STATE)
                        .and_then(|(_, s)| s.first().copied())
                });
            }
            CTA_MARK => mark = be_u32(v),
            CTA_ID => id = be_u32(v),
            CTA_COUNTERS_ORIG => (c.packets_sent, c.bytes_sent) = counters(v),
            CTA_COUNTERS_REPLY => (c.packets_received, c.bytes_received) = counters(v),
            _ => {}
        }
    }
    Some(Conn {
        tuple: Tuple {
            src: src?,
            sport,
            dst: dst?,
            dport,
            proto: proto?,
        },
        id,
        mark,
        tcp_state,
        counters: c,
    })
}

/// What a dump datagram held: its entries, and whether the dump is complete.
fn parse_dump(datagram: &[u8], seq: u32, out: &mut Vec<Conn>) -> io::Result<bool> {
    for (kind, _, s, body) in messages(datagram) {
        if s != seq {
            // The rest of an earlier dump that timed out.
            continue;
        }
        if kind == libc::NLMSG_DONE as u16 {
            return Ok(true);
        }
        if kind == libc::NLMSG_ERROR as u16 {
            match nlmsg_error(body) {
                Some(0) => continue,
                Some(code) => return Err(io::Error::from_raw_os_error(-code)),
                None => return Err(io::Error::other("truncated netlink error")),
            }
        }
        if kind == (NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_NEW
            && let Some(c) = parse_conn(body)
        {
            out.push(c);
        }
    }
    Ok(false)
}

/// Dumps the router's IPv4 connections that carry [`BEGUN_MARK`].
async fn dump(fd: &AsyncFd<OwnedFd>, seq: u32, buf: &mut [u8]) -> io::Result<Vec<Conn>> {
    let mark = BEGUN_MARK.to_be_bytes().to_vec();
    let request = nfnl_message(
        (NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_GET,
        (libc::NLM_F_REQUEST | libc::NLM_F_DUMP) as u16,
        seq,
        libc::AF_INET as u8,
        0,
        // The kernel filters on the mark; the reader checks it again.
        &[(CTA_MARK, mark.clone()), (CTA_MARK_MASK, mark)],
    );
    send(fd.get_ref(), &request)?;
    let mut out = Vec::new();
    loop {
        let mut guard = fd.readable().await?;
        let n = match guard.try_io(|f| recv(f.get_ref(), buf)) {
            Ok(r) => r?,
            Err(_would_block) => continue,
        };
        if parse_dump(&buf[..n], seq, &mut out)? {
            out.retain(|c| c.mark & BEGUN_MARK != 0);
            return Ok(out);
        }
    }
}

/// A connection the log has begun and not yet ended.
struct Open {
    /// The `B` record the `C` and `E` records repeat.
    base: FlowRecord,
    /// FlowCounters at the flow's previous record (`B`: zero).
    reported: FlowCounters,
    reported_ms: u64,
    /// FlowCounters at the last dump that showed the connection.
    seen: FlowCounters,
}

/// Turns successive conntrack dumps of one router into `C` and `E` records.
struct Tracker {
    /// Time between the records of an open flow.
    continue_ms: u64,
    /// `B` records by tuple, until a dump shows their connection.
    begun: HashMap<Tuple, FlowRecord>,
    open: HashMap<(Tuple, u32), Open>,
    /// Connections already ended that are still in the table (`TIME_WAIT`).
    ended: HashSet<(Tuple, u32)>,
}

impl Default for Tracker {
    fn default() -> Self {
        Self::new(AZURE_CONTINUE_INTERVAL)
    }
}

impl Tracker {
    fn new(continue_interval: Duration) -> Self {
        Self {
            continue_ms: u64::try_from(continue_interval.as_millis()).unwrap_or(u64::MAX),
            begun: HashMap::new(),
            open: HashMap::new(),
            ended: HashSet::new(),
        }
    }

    /// Remembers a `B` record so the connection's `C` and `E` records repeat its fields.
    pub fn begun(&mut self, r: &FlowRecord) {
        let t = Tuple {
            src: r.src,
            sport: r.sport,
            dst: r.dst,
            dport: r.dport,
            proto: r.proto,
        };
        self.begun.insert(t, r.clone());
    }

    /// The records due after a dump at `now`; `name` builds the base record of a connection whose
    /// `B` was not seen (an NFLOG message the kernel dropped).
    pub fn observe(
        &mut self,
        now: u64,
        conns: &[Conn],
        mut name: impl FnMut(&Tuple) -> FlowRecord,
    ) -> Vec<FlowRecord> {
        let mut out = Vec::new();
        let mut present = HashSet::new();
        for c in conns {
            let key = (c.tuple, c.id);
            present.insert(key);
            if self.ended.contains(&key) {
                continue;
            }
            let open = self.open.entry(key).or_insert_with(|| {
                let base = self
                    .begun
                    .remove(&c.tuple)
                    .unwrap_or_else(|| name(&c.tuple));
                Open {
                    reported_ms: base.time_ms,
                    base,
                    reported: FlowCounters::default(),
                    seen: FlowCounters::default(),
                }
            });
            open.seen = c.counters;
            if c.ended() {
                if let Some(o) = self.open.remove(&key) {
                    out.push(o.record(FlowState::E, now));
                }
                self.ended.insert(key);
            } else if now.saturating_sub(open.reported_ms) >= self.continue_ms {
                out.push(open.record(FlowState::C, now));
                open.reported = open.seen;
                open.reported_ms = now;
            }
        }
        // Gone from the table without a TCP close: timed out (UDP, an unanswered SYN) or flushed.
        let gone: Vec<_> = self
            .open
            .keys()
            .filter(|k| !present.contains(*k))
            .copied()
            .collect();
        for k in gone {
            if let Some(o) = self.open.remove(&k) {
                out.push(o.record(FlowState::E, now));
            }
        }
        self.ended.retain(|k| present.contains(k));
        self.begun
            .retain(|_, r| now.saturating_sub(r.time_ms) < BEGUN_KEEP_MS);
        out
    }
}

impl Open {
    fn record(&self, state: FlowState, now: u64) -> FlowRecord {
        self.base
            .follow_up(state, now, self.seen.since(self.reported))
    }
}

/// The flow record of a logged packet, named by the oracle.
fn record(o: &Oracle, l: &Logged) -> FlowRecord {
    let src = o.hosts().values().find(|h| h.address == l.src);
    let src_host = src
        .map(|h| h.name.clone())
        .unwrap_or_else(|| l.src.to_string());
    let face = o
        .faces()
        .into_iter()
        .find(|(s, f)| o.face_address(s, f).is_ok_and(|(a, _)| a == l.dst));
    let (service, dst_host) = match &face {
        Some((s, Face::PrivateEndpoint(pe))) => (s.clone(), pe.clone()),
        Some((s, Face::Public)) => (s.clone(), format!("public:{s}")),
        None => (
            String::new(),
            o.hosts()
                .values()
                .find(|h| h.address == l.dst)
                .map(|h| h.name.clone())
                .unwrap_or_else(|| l.dst.to_string()),
        ),
    };
    let decision = face
        .as_ref()
        .and_then(|(s, f)| o.decide_flow(&src_host, l.sport, s, f, l.dport).ok());
    let (state, rule) = match l.prefix.strip_prefix("D:") {
        Some(rule) => (FlowState::D, rule.to_string()),
        None => (
            FlowState::B,
            decision
                .as_ref()
                .map(Decision::label)
                .unwrap_or_else(|| "allow".into()),
        ),
    };
    FlowRecord {
        time_ms: now_ms(),
        src: l.src,
        dst: l.dst,
        sport: l.sport,
        dport: l.dport,
        proto: l.proto,
        direction: if src.is_some_and(|h| h.subnet.is_some()) {
            'O'
        } else {
            'I'
        },
        crosses_internet: state == FlowState::B
            && matches!(&decision, Some(Decision::Allow { route, .. }) if route.crosses_internet()),
        state,
        src_host,
        dst_host,
        service,
        rule,
        packets_sent: 0,
        bytes_sent: 0,
        packets_received: 0,
        bytes_received: 0,
    }
}

/// One router's flow log reader: NFLOG messages and conntrack dumps.
struct Reader {
    handle: FabricHandle,
    tracker: Tracker,
    seen: HashMap<(Ipv4Addr, u16, Ipv4Addr, u16, String), u64>,
    buf: Vec<u8>,
}

impl Reader {
    /// Reads every NFLOG message queued on the (non-blocking) socket into the log.
    fn drain_nflog(&mut self, fd: &OwnedFd) {
        loop {
            let n = match recv(fd, &mut self.buf) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                // ENOBUFS: the kernel dropped messages while we were slow; keep reading.
                Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => continue,
                Err(e) => {
                    tracing::warn!("flow log: NFLOG read failed: {e}");
                    return;
                }
            };
            let now = now_ms();
            self.seen
                .retain(|_, t| now.saturating_sub(*t) < REPEAT_WINDOW_MS);
            for l in parse(&self.buf[..n]) {
                let key = (l.src, l.sport, l.dst, l.dport, l.prefix.clone());
                if self.seen.insert(key, now).is_some() {
                    continue;
                }
                let r = self.handle.with_oracle(|o| record(o, &l));
                if r.state == FlowState::B {
                    self.tracker.begun(&r);
                }
                let reason = (r.state == FlowState::D).then(|| r.rule.clone());
                self.handle.flow_log().record(r, reason.as_deref());
            }
        }
    }

    fn observe(&mut self, conns: &[Conn]) {
        let handle = &self.handle;
        let records = self.tracker.observe(now_ms(), conns, |t| {
            let l = Logged {
                prefix: "B".into(),
                src: t.src,
                dst: t.dst,
                sport: t.sport,
                dport: t.dport,
                proto: t.proto,
            };
            handle.with_oracle(|o| record(o, &l))
        });
        for r in records {
            self.handle.flow_log().record(r, None);
        }
    }
}

/// Reads one router's flow log sockets into the fabric's flow log until the task is aborted;
/// `router` names its namespace in the flow log's sweep count ([`FlowLog::swept`]).
///
/// [`FlowLog::swept`]: crate::fabric::flowlog::FlowLog::swept
pub async fn collect(sockets: Sockets, handle: FabricHandle, router: String) {
    // SAFETY: the AsyncFds take the descriptors' ownership; nothing else uses or closes them.
    let Ok(nflog) = (unsafe { AsyncFd::register(sockets.nflog) }) else {
        return;
    };
    // SAFETY: as above.
    let conntrack = sockets
        .conntrack
        .and_then(|fd| unsafe { AsyncFd::register(fd) }.ok());
    let mut reader = Reader {
        tracker: Tracker::new(handle.flow_log().continue_interval()),
        handle,
        seen: HashMap::new(),
        buf: vec![0u8; 65536],
    };
    let mut dump_buf = vec![0u8; 65536];
    let mut tick = tokio::time::interval(POLL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut seq = 0u32;
    let mut warned = false;
    loop {
        tokio::select! {
            ready = nflog.readable() => {
                let Ok(mut guard) = ready else { return };
                reader.drain_nflog(nflog.get_ref());
                guard.clear_ready();
            }
            _ = tick.tick(), if conntrack.is_some() => {
                let Some(ct) = &conntrack else { continue };
                seq = seq.wrapping_add(1);
                match tokio::time::timeout(DUMP_TIMEOUT, dump(ct, seq, &mut dump_buf)).await {
                    Ok(Ok(conns)) => {
                        warned = false;
                        // The kernel sends a connection's B message before it confirms the
                        // connection into the table, so the B of every connection this dump
                        // shows is queued by now (a connection may begin while the dump runs):
                        // read them first, so C and E records repeat their B.
                        reader.drain_nflog(nflog.get_ref());
                        reader.observe(&conns);
                        reader.handle.flow_log().swept(&router);
                    }
                    Ok(Err(e)) if !warned => {
                        warned = true;
                        tracing::warn!("flow log: conntrack dump failed: {e}");
                    }
                    Err(_) if !warned => {
                        warned = true;
                        tracing::warn!("flow log: conntrack dump timed out");
                    }
                    _ => {}
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nested(kind: u16, inner: &[(u16, Vec<u8>)]) -> (u16, Vec<u8>) {
        let mut body = Vec::new();
        for (k, d) in inner {
            nla(&mut body, *k, d);
        }
        (kind | 0x8000, body)
    }

    #[test]
    fn parses_prefix_and_tcp_tuple_of_an_nflog_packet_message() {
        let mut ip = vec![
            0x45, 0, 0, 60, 0, 0, 0x40, 0, 64, 6, 0, 0, 10, 20, 1, 4, 10, 10, 2, 5,
        ];
        ip.extend_from_slice(&50000u16.to_be_bytes());
        ip.extend_from_slice(&443u16.to_be_bytes());
        let msg = nfnl_message(
            NFNL_SUBSYS_ULOG << 8,
            0,
            0,
            2,
            1,
            &[
                (NFULA_PREFIX, b"D:DenyVnetInbound\0".to_vec()),
                (NFULA_PAYLOAD, ip),
            ],
        );
        assert_eq!(
            parse(&msg),
            vec![Logged {
                prefix: "D:DenyVnetInbound".into(),
                src: Ipv4Addr::new(10, 20, 1, 4),
                dst: Ipv4Addr::new(10, 10, 2, 5),
                sport: 50000,
                dport: 443,
                proto: 6,
            }]
        );
    }

    /// A ctnetlink dump entry as the kernel sends it (nested attributes flagged, big-endian values).
    fn ct_entry(
        seq: u32,
        tcp_state: u8,
        mark: u32,
        orig: (u64, u64),
        reply: (u64, u64),
    ) -> Vec<u8> {
        let counters = |(p, b): (u64, u64)| {
            vec![
                (CTA_COUNTERS_PACKETS, p.to_be_bytes().to_vec()),
                (CTA_COUNTERS_BYTES, b.to_be_bytes().to_vec()),
            ]
        };
        nfnl_message(
            (NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_NEW,
            libc::NLM_F_MULTI as u16,
            seq,
            2,
            0,
            &[
                nested(
                    CTA_TUPLE_ORIG,
                    &[
                        nested(
                            CTA_TUPLE_IP,
                            &[
                                (CTA_IP_V4_SRC, vec![10, 20, 1, 4]),
                                (CTA_IP_V4_DST, vec![10, 10, 2, 5]),
                            ],
                        ),
                        nested(
                            CTA_TUPLE_PROTO,
                            &[
                                (CTA_PROTO_NUM, vec![6]),
                                (CTA_PROTO_SRC_PORT, 50000u16.to_be_bytes().to_vec()),
                                (CTA_PROTO_DST_PORT, 443u16.to_be_bytes().to_vec()),
                            ],
                        ),
                    ],
                ),
                nested(
                    CTA_PROTOINFO,
                    &[nested(
                        CTA_PROTOINFO_TCP,
                        &[(CTA_PROTOINFO_TCP_STATE, vec![tcp_state])],
                    )],
                ),
                (CTA_MARK, mark.to_be_bytes().to_vec()),
                nested(CTA_COUNTERS_ORIG, &counters(orig)),
                nested(CTA_COUNTERS_REPLY, &counters(reply)),
                (CTA_ID, 77u32.to_be_bytes().to_vec()),
            ],
        )
    }

    fn tuple() -> Tuple {
        Tuple {
            src: Ipv4Addr::new(10, 20, 1, 4),
            sport: 50000,
            dst: Ipv4Addr::new(10, 10, 2, 5),
            dport: 443,
            proto: 6,
        }
    }

    #[test]
    fn parses_a_ctnetlink_dump_until_done_skipping_other_dumps() {
        let mut datagram = ct_entry(5, TCP_CONNTRACK_TIME_WAIT, 1, (6, 420), (5, 1380));
        datagram.extend(ct_entry(4, 3, 1, (1, 1), (1, 1)));
        let mut out = Vec::new();
        assert!(!parse_dump(&datagram, 5, &mut out).unwrap());
        assert_eq!(
            out,
            vec![Conn {
                tuple: tuple(),
                id: 77,
                mark: 1,
                tcp_state: Some(TCP_CONNTRACK_TIME_WAIT),
                counters: FlowCounters {
                    packets_sent: 6,
                    bytes_sent: 420,
                    packets_received: 5,
                    bytes_received: 1380,
                },
            }]
        );
        assert!(out[0].ended());
        let done = nfnl_message(libc::NLMSG_DONE as u16, 0, 5, 0, 0, &[]);
        assert!(parse_dump(&done, 5, &mut out).unwrap());
        let mut err = nfnl_message(libc::NLMSG_ERROR as u16, 0, 5, 0, 0, &[]);
        err[16..20].copy_from_slice(&(-libc::EPERM).to_ne_bytes());
        let e = parse_dump(&err, 5, &mut out).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EPERM));
    }

    fn begun(time_ms: u64) -> FlowRecord {
        FlowRecord {
            time_ms,
            src: tuple().src,
            dst: tuple().dst,
            sport: tuple().sport,
            dport: tuple().dport,
            proto: 6,
            direction: 'O',
            state: FlowState::B,
            src_host: "pp-prod-eastus".into(),
            dst_host: "pe-kv-contoso-prod".into(),
            service: "kv-contoso-prod".into(),
            rule: "peering:vnet-prod-eastus->vnet-prod-westus".into(),
            packets_sent: 0,
            bytes_sent: 0,
            packets_received: 0,
            bytes_received: 0,
            crosses_internet: false,
        }
    }

    fn conn(id: u32, tcp_state: u8, sent: u64, received: u64) -> Conn {
        Conn {
            tuple: tuple(),
            id,
            mark: 1,
            tcp_state: Some(tcp_state),
            counters: FlowCounters {
                packets_sent: sent / 100,
                bytes_sent: sent,
                packets_received: received / 100,
                bytes_received: received,
            },
        }
    }

    fn unnamed(_: &Tuple) -> FlowRecord {
        panic!("the B record was known")
    }

    #[test]
    fn a_closed_connection_ends_once_with_its_b_fields_and_totals() {
        let mut t = Tracker::default();
        t.begun(&begun(1_000));
        assert!(
            t.observe(1_200, &[conn(1, 3, 300, 900)], unnamed)
                .is_empty()
        );
        let e = t.observe(
            1_400,
            &[conn(1, TCP_CONNTRACK_TIME_WAIT, 400, 1_300)],
            unnamed,
        );
        let expected = FlowRecord {
            time_ms: 1_400,
            state: FlowState::E,
            packets_sent: 4,
            bytes_sent: 400,
            packets_received: 13,
            bytes_received: 1_300,
            ..begun(1_000)
        };
        assert_eq!(e, vec![expected]);
        // TIME_WAIT lingers in the table: no second E.
        assert!(
            t.observe(
                1_600,
                &[conn(1, TCP_CONNTRACK_TIME_WAIT, 452, 1_352)],
                unnamed
            )
            .is_empty()
        );
        assert!(t.observe(1_800, &[], unnamed).is_empty());
    }

    #[test]
    fn a_long_connection_continues_every_interval_with_deltas_then_ends_with_the_rest() {
        const CONTINUE_INTERVAL_MS: u64 = AZURE_CONTINUE_INTERVAL.as_millis() as u64;
        let mut t = Tracker::default();
        t.begun(&begun(0));
        assert!(t.observe(250, &[conn(1, 3, 100, 100)], unnamed).is_empty());
        let c = t.observe(CONTINUE_INTERVAL_MS, &[conn(1, 3, 1_000, 5_000)], unnamed);
        assert_eq!(c.len(), 1);
        assert_eq!(
            (c[0].state, c[0].bytes_sent, c[0].bytes_received),
            (FlowState::C, 1_000, 5_000)
        );
        assert!(
            t.observe(
                CONTINUE_INTERVAL_MS + 250,
                &[conn(1, 3, 1_200, 5_500)],
                unnamed
            )
            .is_empty()
        );
        let c = t.observe(
            2 * CONTINUE_INTERVAL_MS,
            &[conn(1, 3, 1_500, 6_000)],
            unnamed,
        );
        assert_eq!(
            (c[0].state, c[0].bytes_sent, c[0].bytes_received),
            (FlowState::C, 500, 1_000)
        );
        // Gone without a TCP close (flushed, or UDP timed out): ends with what was last seen.
        let e = t.observe(2 * CONTINUE_INTERVAL_MS + 250, &[], unnamed);
        assert_eq!(
            (e[0].state, e[0].bytes_sent, e[0].bytes_received),
            (FlowState::E, 0, 0)
        );
        assert_eq!(e[0].rule, begun(0).rule);
    }

    #[test]
    fn a_reused_tuple_is_a_new_connection_and_an_unlogged_begin_is_named() {
        let mut t = Tracker::default();
        t.begun(&begun(0));
        t.observe(100, &[conn(1, TCP_CONNTRACK_TIME_WAIT, 100, 100)], unnamed);
        let mut named = 0;
        let e = t.observe(200, &[conn(2, TCP_CONNTRACK_CLOSE, 60, 40)], |tuple| {
            named += 1;
            FlowRecord {
                rule: "named".into(),
                sport: tuple.sport,
                ..begun(150)
            }
        });
        assert_eq!(named, 1);
        assert_eq!(
            (e[0].state, e[0].rule.as_str(), e[0].bytes_sent),
            (FlowState::E, "named", 60)
        );
    }
}
