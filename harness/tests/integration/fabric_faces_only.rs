//! On the loopback fabric a service is reachable only through its faces: a running landscape's
//! process listens on its faces' relays, its hosts' HTTPS proxies (which connect to the relays
//! as their host, like any client of it), the control API and the fabric's block claim, and on
//! nothing else, so no local program can reach a service without the oracle's verdict and a flow
//! log record (before, every service also listened on an internal `127.B.3.x` address that any
//! local process could connect to, bypassing both).
//!
//! The audit counts every listening socket of the process, so it runs in a process of its own:
//! the other tests of this binary run in parallel and bind listeners of their own.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::process::Command;

use ppvnet::fabric::FabricKind;
use ppvnet::fabric::flowlog::{FlowFilter, FlowState};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::fabric_support::landscape;

/// Set for the child process that runs [`AUDIT`].
const CHILD: &str = "PPVNET_FACES_ONLY_AUDIT";
/// The audit's path in this test binary.
const AUDIT: &str = "fabric_faces_only::in_a_process_of_its_own_every_listener_is_a_face";
/// What the audit prints when it ran to the end (a filter that matched nothing would pass too).
const DONE: &str = "faces-only audit complete";

#[test]
fn every_listening_socket_of_a_loopback_landscape_is_a_face_the_control_api_or_the_block_claim() {
    let exe = std::env::current_exe().expect("the test binary's path");
    let out = Command::new(exe)
        .args([AUDIT, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD, "1")
        .output()
        .expect("the audit process starts");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.contains(DONE),
        "the audit failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
}

/// The audit itself; it does nothing unless [`CHILD`] is set (run in this binary's own process,
/// it would see the listeners of every other test).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_a_process_of_its_own_every_listener_is_a_face() {
    if std::env::var_os(CHILD).is_none() {
        return;
    }
    let dir = tempfile::tempdir().expect("temporary folder");
    let ready_path = dir.path().join("ready.json");
    let opts = ppvnet::up::UpOptions::new(FabricKind::Loopback, ready_path.clone());
    let running = ppvnet::up::start(&landscape("contoso"), &opts)
        .await
        .unwrap_or_else(|e| panic!("contoso on loopback: {e:#}"));
    let ready: Value = serde_json::from_slice(&std::fs::read(&ready_path).expect("ready file"))
        .expect("ready file is JSON");

    let documented = documented_addresses(&ready);
    let block = block_of(&ready);
    let claim = SocketAddr::from(([127, block, 255, 254], ppvnet::fabric::loopback::CLAIM_PORT));
    let control = url_address(ready["control_url"].as_str().expect("control URL"))
        .expect("the control URL names an address");
    let listening = own_listeners();

    let unexplained: Vec<_> = listening
        .iter()
        .filter(|a| !documented.contains(a) && **a != claim)
        .collect();
    assert!(
        unexplained.is_empty(),
        "listening, but neither a face, a host's proxy, the control API nor the block claim: \
         {unexplained:?}\n\
         documented: {documented:?}"
    );
    // The other way round, so an enumeration that saw nothing cannot pass: every face of the
    // ready file, the control API and the claim are among the listeners found.
    let faces: BTreeSet<_> = documented.iter().filter(|a| in_block(a, block)).collect();
    assert!(faces.len() >= 8, "contoso has at least 8 faces: {faces:?}");
    for expected in faces.iter().copied().chain([&control, &claim]) {
        assert!(
            listening.contains(expected),
            "{expected} is in the ready file but not listening: {listening:?}"
        );
    }
    // No process at all listens anywhere else in the block (other runs claim other blocks).
    let elsewhere: Vec<_> = all_listeners()
        .into_iter()
        .map(|(a, _)| a)
        .filter(|a| in_block(a, block) && !documented.contains(a) && *a != claim)
        .collect();
    assert!(
        elsewhere.is_empty(),
        "listening in the block: {elsewhere:?}"
    );

    internal_addresses_refuse(block, &faces).await;
    faces_still_lead_to_the_services(&running, &ready).await;
    running.stop().await.expect("the landscape stops");
    println!("{DONE}: {} listeners checked", listening.len());
}

/// Where the services used to listen (`127.B.3.1`, `.2`, …) nothing answers now. The old
/// listeners had random ports; the check above proves no port there listens, and this one
/// shows a client's view on the faces' ports (skipping a port some other program listens on
/// with a wildcard address, which would answer for every address).
async fn internal_addresses_refuse(block: u8, faces: &BTreeSet<&SocketAddr>) {
    let wildcard: BTreeSet<u16> = all_listeners()
        .into_iter()
        .filter(|(a, _)| a.ip().is_unspecified())
        .map(|(a, _)| a.port())
        .collect();
    let ports: BTreeSet<u16> = faces
        .iter()
        .map(|a| a.port())
        .chain([443])
        .filter(|p| !wildcard.contains(p))
        .collect();
    for n in 1..=faces.len() {
        let n = u8::try_from(n).expect("fewer than 256 faces");
        for port in &ports {
            let internal = SocketAddr::from(([127, block, 3, n], *port));
            match tokio::net::TcpStream::connect(internal).await {
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {}
                other => panic!("{internal}: expected a refusal, got {other:?}"),
            }
        }
    }
}

/// The faces still reach the services, and the relay still writes the flow log: the prod
/// vault answers pp-prod-westus through its private endpoint (its 401 challenge), and a
/// connection from the internet to that private endpoint is denied and logged as such.
async fn faces_still_lead_to_the_services(running: &ppvnet::up::Running, ready: &Value) {
    let fabric = running.fabric();
    let ca = std::fs::read(ready["ca_cert"].as_str().expect("CA path")).expect("CA");
    let pp = fabric
        .http_client("pp-prod-westus", &ca)
        .expect("pp-prod-westus client");
    let answer = pp
        .get("https://kv-contoso-prod.vault.azure.net/secrets/cases-connector-secret?api-version=7.4")
        .send()
        .await
        .expect("the vault answers through its private endpoint");
    assert_eq!(answer.status(), 401);
    assert!(answer.headers().contains_key("www-authenticate"));
    let pe = url_address(
        ready["key_vaults"]["kv-contoso-prod"]["private_endpoints"]["pe-kv-contoso-prod"]
            .as_str()
            .expect("the vault's private endpoint URL"),
    )
    .expect("an address");
    let mut denied = fabric
        .connect("internet", pe)
        .await
        .expect("the relay accepts before it decides");
    // A denied connection never carries data: the relay drops it and resets it at the end of
    // its hold, which is when this read returns.
    let _ = denied.write_all(b"GET / HTTP/1.1\r\n\r\n").await;
    let mut buf = [0u8; 64];
    let read = denied.read(&mut buf).await;
    assert!(
        matches!(read, Ok(0) | Err(_)),
        "data from a denied flow: {read:?}"
    );
    let flows = |src: &str, state| {
        fabric.handle().flows(&FlowFilter {
            src_host: Some(src.into()),
            state: Some(state),
            ..Default::default()
        })
    };
    let begun = flows("pp-prod-westus", FlowState::B);
    assert!(
        begun.iter().any(|r| r.dst_host == "pe-kv-contoso-prod"),
        "{begun:#?}"
    );
    let refused = flows("internet", FlowState::D);
    assert!(
        refused.iter().any(|r| r.dst_host == "pe-kv-contoso-prod"),
        "{refused:#?}"
    );
}

/// Every address a URL of the ready file names (faces, endpoints, the control API), the hosts'
/// proxies, and port 443 of Entra's address when it listens there too.
fn documented_addresses(ready: &Value) -> BTreeSet<SocketAddr> {
    fn walk(v: &Value, out: &mut BTreeSet<SocketAddr>) {
        match v {
            Value::String(s) => out.extend(url_address(s)),
            Value::Array(items) => items.iter().for_each(|i| walk(i, out)),
            Value::Object(map) => map.values().for_each(|i| walk(i, out)),
            _ => {}
        }
    }
    let mut out = BTreeSet::new();
    walk(ready, &mut out);
    // The hosts' proxies (`ip:port`, not URLs).
    let hosts = ready["hosts"]
        .as_object()
        .expect("the ready file lists hosts");
    out.extend(
        hosts
            .values()
            .filter_map(|h| h["proxy"].as_str()?.parse::<SocketAddr>().ok()),
    );
    if ready["entra"]["port_443"] == Value::Bool(true) {
        let authority = ready["entra"]["authority_host"]
            .as_str()
            .unwrap_or_default();
        if let Some(a) = url_address(authority) {
            out.insert(SocketAddr::new(a.ip(), 443));
        }
    }
    out
}

/// The socket address of an `http(s)://<ip>[:port]/…` URL.
fn url_address(text: &str) -> Option<SocketAddr> {
    let url = url::Url::parse(text).ok()?;
    let ip: IpAddr = match url.host()? {
        url::Host::Ipv4(ip) => ip.into(),
        url::Host::Ipv6(ip) => ip.into(),
        url::Host::Domain(_) => return None,
    };
    Some(SocketAddr::new(ip, url.port_or_known_default()?))
}

/// The fabric's block `B` of 127.B.0.0/16, from the hosts' addresses.
fn block_of(ready: &Value) -> u8 {
    let blocks: BTreeSet<u8> = ready["hosts"]
        .as_object()
        .expect("hosts")
        .values()
        .map(|h| {
            let ip: Ipv4Addr = h["address"]
                .as_str()
                .and_then(|a| a.parse().ok())
                .unwrap_or_else(|| panic!("a loopback host address: {h}"));
            ip.octets()[1]
        })
        .collect();
    assert_eq!(blocks.len(), 1, "hosts in one block: {blocks:?}");
    blocks.into_iter().next().unwrap_or_default()
}

fn in_block(a: &SocketAddr, block: u8) -> bool {
    matches!(a.ip(), IpAddr::V4(v4) if v4.octets()[..2] == [127, block])
}

/// The listening TCP sockets this process holds: the namespace's listeners whose inode is one
/// of the process's descriptors.
fn own_listeners() -> BTreeSet<SocketAddr> {
    let inodes: BTreeSet<u64> = std::fs::read_dir("/proc/self/fd")
        .expect("/proc/self/fd")
        .filter_map(|entry| {
            let link = std::fs::read_link(entry.ok()?.path()).ok()?;
            let link = link.to_str()?;
            link.strip_prefix("socket:[")?
                .strip_suffix(']')?
                .parse()
                .ok()
        })
        .collect();
    all_listeners()
        .into_iter()
        .filter(|(_, inode)| inodes.contains(inode))
        .map(|(a, _)| a)
        .collect()
}

/// Every listening TCP socket of the network namespace (IPv4 and IPv6), with its inode.
fn all_listeners() -> Vec<(SocketAddr, u64)> {
    let mut out = Vec::new();
    for table in ["/proc/self/net/tcp", "/proc/self/net/tcp6"] {
        let text = std::fs::read_to_string(table).unwrap_or_else(|e| panic!("{table}: {e}"));
        out.extend(text.lines().skip(1).filter_map(listener_row));
    }
    out
}

/// One row of `/proc/net/tcp{,6}` if it is a listener (state `0A`): columns `sl local_address
/// rem_address st … inode`, the address as hex words in the kernel's memory order.
fn listener_row(row: &str) -> Option<(SocketAddr, u64)> {
    let cols: Vec<&str> = row.split_whitespace().collect();
    if cols.get(3) != Some(&"0A") {
        return None;
    }
    let (ip, port) = cols.get(1)?.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    let mut bytes = Vec::new();
    for word in 0..ip.len() / 8 {
        let w = u32::from_str_radix(&ip[word * 8..word * 8 + 8], 16).ok()?;
        bytes.extend(w.to_ne_bytes());
    }
    let ip = match bytes.len() {
        4 => IpAddr::from(<[u8; 4]>::try_from(bytes).ok()?),
        16 => IpAddr::from(Ipv6Addr::from(<[u8; 16]>::try_from(bytes).ok()?)),
        _ => return None,
    };
    let inode = cols.get(9)?.parse().ok()?;
    Some((SocketAddr::new(ip, port), inode))
}

/// The parser reads the kernel's format: addresses in memory order, ports in host order (the
/// sample rows are a little-endian machine's).
#[cfg(target_endian = "little")]
#[test]
fn proc_net_tcp_rows_parse() {
    let v4 = "   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 12345 1 0000000000000000 100 0 0 10 0";
    let expected: SocketAddr = "127.0.0.1:8080".parse().unwrap();
    assert_eq!(listener_row(v4), Some((expected, 12345)));
    let v6 = "   1: 00000000000000000000000001000000:01BB 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 777 1 0000000000000000 100 0 0 10 0";
    let expected: SocketAddr = "[::1]:443".parse().unwrap();
    assert_eq!(listener_row(v6), Some((expected, 777)));
    let established = v4.replace(" 0A ", " 01 ");
    assert_eq!(listener_row(&established), None);
}
