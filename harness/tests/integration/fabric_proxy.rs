//! Issue 15: every host of the loopback fabric has an HTTPS proxy on its own address. A CONNECT
//! by real host name resolves by that host's DNS view and leaves from the host, so the relay
//! names the host: an allowed flow reaches the face the host's DNS gives, a denied one is
//! answered and then dropped and reset exactly as a direct connection (one `D` record with the
//! calling host), and whatever the proxy cannot carry gets a clear answer instead of a hang.

use std::net::SocketAddr;
use std::time::Duration;

use ppvnet::fabric::flowlog::{FlowFilter, FlowState};
use ppvnet::fabric::{Fabric, FabricKind, FabricOptions, Face};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::fabric_support::*;

const VAULT: &str = "kv-contoso-prod.vault.azure.net";

async fn loopback(name: &str) -> Fabric {
    Fabric::materialize_with(
        &landscape(name),
        FabricKind::Loopback,
        FabricOptions {
            drop_hold: Duration::from_millis(300),
            proxy_head_timeout: Duration::from_millis(300),
            ..Default::default()
        },
    )
    .await
    .unwrap_or_else(|e| panic!("materialize: {e:#}"))
}

fn proxy_of(f: &Fabric, host: &str) -> SocketAddr {
    f.hosts()[host]
        .proxy
        .unwrap_or_else(|| panic!("host {host} has no proxy"))
}

/// Sends `request` to `host`'s proxy; the open stream and the answer's status line.
async fn ask(f: &Fabric, host: &str, request: &[u8]) -> (TcpStream, String) {
    let mut s = TcpStream::connect(proxy_of(f, host)).await.unwrap();
    s.write_all(request).await.unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    let read = async {
        while !head.ends_with(b"\r\n\r\n") {
            match s.read(&mut byte).await {
                Ok(1) => head.push(byte[0]),
                _ => break,
            }
        }
    };
    tokio::time::timeout(CONNECT_WAIT, read)
        .await
        .expect("the proxy answers");
    let text = String::from_utf8_lossy(&head).into_owned();
    let status = text.lines().next().unwrap_or_default().to_string();
    (s, status)
}

fn connect(name: &str) -> Vec<u8> {
    format!("CONNECT {name}:443 HTTP/1.1\r\nHost: {name}:443\r\n\r\n").into_bytes()
}

/// Whether a line sent through the tunnel comes back (the faces echo).
async fn tunnel_echoes(s: &mut TcpStream) -> bool {
    let attempt = async {
        s.write_all(b"ping\n").await.ok()?;
        let mut buf = [0u8; 5];
        s.read_exact(&mut buf).await.ok()?;
        (&buf == b"ping\n").then_some(())
    };
    matches!(
        tokio::time::timeout(CONNECT_WAIT, attempt).await,
        Ok(Some(()))
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hosts_proxy_resolves_by_its_dns_view_and_the_relay_sees_the_host() {
    let f = loopback("nsg-deny-pe").await;
    let _faces = echo_on_every_face(&f);
    for (name, h) in f.hosts() {
        // A private endpoint originates no traffic; its address is its face's, relays only.
        if name.starts_with("pe-") {
            assert_eq!(h.proxy, None, "{name}");
            continue;
        }
        let proxy = h.proxy.unwrap();
        assert_eq!(
            proxy.ip(),
            h.address,
            "{name}: the proxy is on the host's address"
        );
    }
    let handle = f.handle();
    let flows = handle.flow_log();
    let began = |src: &str, dst: &str| FlowFilter {
        src_host: Some(src.into()),
        dst_host: Some(dst.into()),
        state: Some(FlowState::B),
        ..Default::default()
    };

    // The westus delegated subnet: private DNS → the private endpoint, allowed by the NSG.
    let (mut s, status) = ask(&f, "pp-prod-westus", &connect(VAULT)).await;
    assert!(status.starts_with("HTTP/1.1 200"), "{status}");
    assert!(tunnel_echoes(&mut s).await);
    let b = flows
        .wait_for(
            &began("pp-prod-westus", "pe-kv-contoso-prod"),
            CONNECT_WAIT,
            |r| !r.is_empty(),
        )
        .await;
    assert_eq!(b.len(), 1, "{b:?}");
    // The relay saw the host's own address, so the record carries its emulated one.
    let westus = f.hosts()["pp-prod-westus"].azure_address;
    assert_eq!(std::net::IpAddr::V4(b[0].src), westus, "{b:?}");

    // The internet: public DNS → the public face.
    let (mut s, status) = ask(&f, "internet", &connect(VAULT)).await;
    assert!(status.starts_with("HTTP/1.1 200"), "{status}");
    assert!(tunnel_echoes(&mut s).await);
    flows
        .wait_for(
            &began("internet", "public:kv-contoso-prod"),
            CONNECT_WAIT,
            |r| !r.is_empty(),
        )
        .await;

    // By the private endpoint's emulated address, as a client that resolved it itself.
    let pe = f.handle().with_oracle(|o| {
        o.face_address(
            "kv-contoso-prod",
            &Face::PrivateEndpoint("pe-kv-contoso-prod".into()),
        )
        .unwrap()
        .0
    });
    let (mut s, status) = ask(&f, "jumpbox", &connect(&pe.to_string())).await;
    assert!(status.starts_with("HTTP/1.1 200"), "{status}");
    // The NSG denies the jump box: the tunnel is answered, then dropped (below).
    assert!(!tunnel_echoes(&mut s).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_denied_flow_through_the_proxy_is_dropped_like_the_relay_drops_and_logged_with_the_host()
{
    let f = loopback("nsg-deny-pe").await;
    let _faces = echo_on_every_face(&f);
    // The eastus delegated subnet resolves the vault to the westus private endpoint, whose NSG
    // denies it (`DenyVnetInbound`).
    let (mut s, status) = ask(&f, "pp-prod-eastus", &connect(VAULT)).await;
    assert!(status.starts_with("HTTP/1.1 200"), "{status}");
    s.write_all(b"\x16\x03\x01 a ClientHello\n").await.unwrap();
    let mut buf = [0u8; 64];
    let read = tokio::time::timeout(CONNECT_WAIT, s.read(&mut buf))
        .await
        .expect("the drop ends within the relay's hold");
    // Never data: a reset (or, if it raced the close, end of stream).
    match read {
        Err(e) => assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset, "{e}"),
        Ok(n) => assert_eq!(n, 0, "no data may come back"),
    }
    let filter = FlowFilter {
        src_host: Some("pp-prod-eastus".into()),
        state: Some(FlowState::D),
        ..Default::default()
    };
    let denied = f
        .handle()
        .flow_log()
        .wait_for(&filter, CONNECT_WAIT, |r| !r.is_empty())
        .await;
    assert_eq!(denied.len(), 1, "{denied:?}");
    assert_eq!(denied[0].dst_host, "pe-kv-contoso-prod");
    assert!(denied[0].rule.contains("DenyVnetInbound"), "{denied:?}");
    assert_eq!(
        std::net::IpAddr::V4(denied[0].src),
        f.hosts()["pp-prod-eastus"].azure_address
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_proxy_answers_what_it_cannot_carry_clearly_and_never_hangs() {
    let f = loopback("nsg-deny-pe").await;
    let _faces = echo_on_every_face(&f);

    // A name no DNS view knows, and a private-link name outside a linked vNet's zones.
    let (_, status) = ask(&f, "internet", &connect("www.example.com")).await;
    assert!(status.starts_with("HTTP/1.1 502"), "{status}");
    assert!(
        status.contains("www.example.com does not resolve from host internet (public DNS)"),
        "{status}"
    );
    let (_, status) = ask(
        &f,
        "pp-prod-westus",
        &connect("nothing.privatelink.vaultcore.azure.net"),
    )
    .await;
    assert!(
        status.contains("from host pp-prod-westus (the DNS of vnet-prod-westus): NXDOMAIN"),
        "{status}"
    );
    // An address outside the landscape's faces: nothing reaches past the relays.
    let (_, status) = ask(&f, "internet", &connect("192.0.2.1")).await;
    assert!(status.starts_with("HTTP/1.1 502"), "{status}");
    assert!(
        status.contains("not the address of a service face"),
        "{status}"
    );
    // A face's address on another port: only relays listen there (a private endpoint's host
    // has no proxy), so nothing answers.
    let relay = f
        .face_address(
            "kv-contoso-prod",
            &Face::PrivateEndpoint("pe-kv-contoso-prod".into()),
        )
        .unwrap();
    let other = format!("{}:{}", relay.ip(), ppvnet::fabric::proxy::PROXY_PORT);
    let (_, status) = ask(
        &f,
        "pp-prod-westus",
        format!("CONNECT {other} HTTP/1.1\r\n\r\n").as_bytes(),
    )
    .await;
    assert!(status.starts_with("HTTP/1.1 502"), "{status}");
    assert!(status.contains("refused"), "{status}");
    // Plain HTTP is refused with the reason.
    let (_, status) = ask(
        &f,
        "internet",
        b"GET http://kv-contoso-prod.vault.azure.net/ HTTP/1.1\r\nHost: x\r\n\r\n",
    )
    .await;
    assert!(status.starts_with("HTTP/1.1 501"), "{status}");
    assert!(status.contains("HTTPS only"), "{status}");
    // A head without end, larger than the cap.
    let mut huge = b"CONNECT a:443 HTTP/1.1\r\nX-Filler: ".to_vec();
    huge.extend(std::iter::repeat_n(
        b'a',
        ppvnet::fabric::proxy::MAX_HEAD + 10,
    ));
    let (_, status) = ask(&f, "internet", &huge).await;
    assert!(status.starts_with("HTTP/1.1 431"), "{status}");
    // A client that connects and says nothing gets 408 after the head timeout.
    let (_, status) = ask(&f, "internet", b"").await;
    assert!(status.starts_with("HTTP/1.1 408"), "{status}");
    // So does one whose head never ends.
    let (_, status) = ask(&f, "internet", b"CONNECT a:443 HTTP/1.1\r\n").await;
    assert!(status.starts_with("HTTP/1.1 408"), "{status}");
}
