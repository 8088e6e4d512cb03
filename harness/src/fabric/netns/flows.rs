//! Flow log of the netns fabric: the vNet routers' nftables rules send the first packet of each
//! allowed connection (`B`) and every dropped packet (`D:<rule>`) to NFLOG group
//! [`nft::LOG_GROUP`](super::nft::LOG_GROUP); a netlink socket bound inside each router reads them
//! and turns them into flow records with the oracle's names.
//!
//! What the kernel path records, as Azure's VNet flow logs do, is traffic that crosses a vNet:
//! connections between the internet and a public endpoint are not in any vNet's log. `E` records
//! with byte counts are not produced here (the loopback relay counts bytes). A dropped SYN is
//! retransmitted by the client; repeats of one tuple within [`REPEAT_WINDOW_MS`] are one record.

use std::collections::HashMap;
use std::io;
use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use tokio::io::unix::AsyncFd;

use super::nft::LOG_GROUP;
use crate::fabric::flowlog::{FlowRecord, FlowState, now_ms};
use crate::fabric::oracle::{Decision, Oracle};
use crate::fabric::{FabricHandle, Face};

const REPEAT_WINDOW_MS: u64 = 30_000;
const NFNL_SUBSYS_ULOG: u16 = 4;
const NFULNL_MSG_PACKET: u16 = 0;
const NFULNL_MSG_CONFIG: u16 = 1;
const NFULA_CFG_CMD: u16 = 1;
const NFULA_CFG_MODE: u16 = 2;
const NFULNL_CFG_CMD_BIND: u8 = 1;
const NFULNL_COPY_PACKET: u8 = 2;
const NFULA_PAYLOAD: u16 = 9;
const NFULA_PREFIX: u16 = 10;

fn nla(buf: &mut Vec<u8>, kind: u16, data: &[u8]) {
    let len = 4 + data.len();
    buf.extend_from_slice(&(len as u16).to_ne_bytes());
    buf.extend_from_slice(&kind.to_ne_bytes());
    buf.extend_from_slice(data);
    while !buf.len().is_multiple_of(4) {
        buf.push(0);
    }
}

fn config_message(seq: u32, family: u8, group: u16, attrs: &[(u16, Vec<u8>)]) -> Vec<u8> {
    let mut body = vec![family, 0];
    body.extend_from_slice(&group.to_be_bytes());
    for (k, d) in attrs {
        nla(&mut body, *k, d);
    }
    let mut msg = Vec::with_capacity(16 + body.len());
    msg.extend_from_slice(&((16 + body.len()) as u32).to_ne_bytes());
    msg.extend_from_slice(&((NFNL_SUBSYS_ULOG << 8) | NFULNL_MSG_CONFIG).to_ne_bytes());
    msg.extend_from_slice(&((libc::NLM_F_REQUEST | libc::NLM_F_ACK) as u16).to_ne_bytes());
    msg.extend_from_slice(&seq.to_ne_bytes());
    msg.extend_from_slice(&0u32.to_ne_bytes());
    msg.extend_from_slice(&body);
    msg
}

/// Opens an NFLOG socket for [`LOG_GROUP`] in the calling thread's network namespace.
pub fn open_socket() -> io::Result<OwnedFd> {
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
        let mut mode = 96u32.to_be_bytes().to_vec();
        mode.extend_from_slice(&[NFULNL_COPY_PACKET, 0]);
        let msgs = [
            config_message(
                1,
                libc::AF_UNSPEC as u8,
                LOG_GROUP,
                &[(NFULA_CFG_CMD, vec![NFULNL_CFG_CMD_BIND])],
            ),
            config_message(
                2,
                libc::AF_UNSPEC as u8,
                LOG_GROUP,
                &[(NFULA_CFG_MODE, mode)],
            ),
        ];
        for m in msgs {
            if libc::send(fd.as_raw_fd(), m.as_ptr().cast(), m.len(), 0) < 0 {
                return Err(io::Error::last_os_error());
            }
            let mut ack = [0u8; 512];
            let n = libc::recv(fd.as_raw_fd(), ack.as_mut_ptr().cast(), ack.len(), 0);
            if n < 0 {
                return Err(io::Error::last_os_error());
            }
            // NLMSG_ERROR with a non-zero code: the kernel refused the configuration.
            if n >= 20 && u16::from_ne_bytes([ack[4], ack[5]]) == libc::NLMSG_ERROR as u16 {
                let code = i32::from_ne_bytes([ack[16], ack[17], ack[18], ack[19]]);
                if code != 0 {
                    return Err(io::Error::from_raw_os_error(-code));
                }
            }
        }
        let flags = libc::fcntl(fd.as_raw_fd(), libc::F_GETFL);
        libc::fcntl(fd.as_raw_fd(), libc::F_SETFL, flags | libc::O_NONBLOCK);
        Ok(fd)
    }
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

/// Parses the NFLOG packet messages of one datagram.
pub fn parse(datagram: &[u8]) -> Vec<Logged> {
    let mut out = Vec::new();
    let mut off = 0;
    while off + 16 <= datagram.len() {
        let len = u32::from_ne_bytes([
            datagram[off],
            datagram[off + 1],
            datagram[off + 2],
            datagram[off + 3],
        ]) as usize;
        let kind = u16::from_ne_bytes([datagram[off + 4], datagram[off + 5]]);
        if len < 16 || off + len > datagram.len() {
            break;
        }
        if kind == (NFNL_SUBSYS_ULOG << 8) | NFULNL_MSG_PACKET {
            let (mut prefix, mut payload) = (None, None);
            let mut a = off + 20;
            while a + 4 <= off + len {
                let alen = u16::from_ne_bytes([datagram[a], datagram[a + 1]]) as usize;
                let akind = u16::from_ne_bytes([datagram[a + 2], datagram[a + 3]]) & 0x3fff;
                if alen < 4 || a + alen > off + len {
                    break;
                }
                let data = &datagram[a + 4..a + alen];
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
                a += (alen + 3) & !3;
            }
            if let (Some(prefix), Some(p)) = (prefix, payload)
                && p.len() >= 20
                && p[0] >> 4 == 4
            {
                let ihl = usize::from(p[0] & 0x0f) * 4;
                let ports = (p.len() >= ihl + 4).then(|| {
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
        off += (len + 3) & !3;
    }
    out
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

/// Reads one router's NFLOG socket into the fabric's flow log until the task is aborted.
pub async fn collect(fd: OwnedFd, handle: FabricHandle) {
    // SAFETY: the AsyncFd takes the descriptor's ownership; nothing else uses or closes it.
    let Ok(fd) = (unsafe { AsyncFd::register(fd) }) else {
        return;
    };
    let mut seen: HashMap<(Ipv4Addr, u16, Ipv4Addr, u16, String), u64> = HashMap::new();
    let mut buf = vec![0u8; 65536];
    loop {
        let Ok(mut guard) = fd.readable().await else {
            return;
        };
        // SAFETY: recv into a buffer we own, on a descriptor the AsyncFd owns.
        let n = unsafe {
            libc::recv(
                fd.get_ref().as_raw_fd(),
                buf.as_mut_ptr().cast(),
                buf.len(),
                0,
            )
        };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::WouldBlock {
                guard.clear_ready();
                continue;
            }
            // ENOBUFS: the kernel dropped events while we were slow; keep reading.
            continue;
        }
        let now = now_ms();
        seen.retain(|_, t| now.saturating_sub(*t) < REPEAT_WINDOW_MS);
        for l in parse(&buf[..n as usize]) {
            let key = (l.src, l.sport, l.dst, l.dport, l.prefix.clone());
            if seen.insert(key, now).is_some() {
                continue;
            }
            let r = handle.with_oracle(|o| record(o, &l));
            let reason = (r.state == FlowState::D).then(|| r.rule.clone());
            handle.flow_log().record(r, reason.as_deref());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_prefix_and_tcp_tuple_of_an_nflog_packet_message() {
        let mut ip = vec![
            0x45, 0, 0, 60, 0, 0, 0x40, 0, 64, 6, 0, 0, 10, 20, 1, 4, 10, 10, 2, 5,
        ];
        ip.extend_from_slice(&50000u16.to_be_bytes());
        ip.extend_from_slice(&443u16.to_be_bytes());
        let mut body = vec![2u8, 0, 0, 1];
        nla(&mut body, NFULA_PREFIX, b"D:DenyVnetInbound\0");
        nla(&mut body, NFULA_PAYLOAD, &ip);
        let mut msg = Vec::new();
        msg.extend_from_slice(&((16 + body.len()) as u32).to_ne_bytes());
        msg.extend_from_slice(&(NFNL_SUBSYS_ULOG << 8).to_ne_bytes());
        msg.extend_from_slice(&[0; 10]);
        msg.extend_from_slice(&body);
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
}
