//! Shared pieces of the fabric tests: loading the repository's landscapes, echo services on every
//! face, and probing real TCP reachability from a host.

#![allow(dead_code)] // each test binary uses a different subset

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use ppvnet::fabric::{Fabric, FabricKind, FabricOptions, Face};
use ppvnet::landscape::Landscape;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

pub fn landscape(name: &str) -> Landscape {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../scenarios")
        .join(format!("{name}.yaml"));
    ppvnet::scenario::load(&path).unwrap_or_else(|e| panic!("{e}"))
}

/// Why the netns fabric cannot run here, if it cannot.
pub fn netns_unavailable() -> Option<String> {
    if !nix_is_root() {
        return Some("not running as root".into());
    }
    match std::process::Command::new("ip")
        .args(["netns", "list"])
        .output()
    {
        Ok(o) if o.status.success() => {}
        Ok(o) => {
            return Some(format!(
                "`ip netns list` failed: {}",
                String::from_utf8_lossy(&o.stderr)
            ));
        }
        Err(e) => return Some(format!("`ip` is not available: {e}")),
    }
    if std::process::Command::new("nft")
        .arg("--version")
        .output()
        .is_err()
    {
        return Some("`nft` is not installed".into());
    }
    None
}

fn nix_is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|u| u == "0"))
        })
        .unwrap_or(false)
}

/// Materializes a fabric for tests: dropped connections are reset quickly.
pub async fn fabric(l: &Landscape, kind: FabricKind) -> Fabric {
    Fabric::materialize_with(
        l,
        kind,
        FabricOptions {
            drop_hold: Duration::from_millis(300),
            flow_log_file: None,
        },
    )
    .await
    .unwrap_or_else(|e| panic!("materialize {kind:?}: {e:#}"))
}

/// Binds every face and serves a line echo on it; returns (service, face, client address).
pub fn echo_on_every_face(f: &Fabric) -> Vec<(String, Face, SocketAddr)> {
    let faces = f.handle().with_oracle(|o| o.faces());
    let mut out = Vec::new();
    for (service, face) in faces {
        let bound = f
            .bind(&service, &face)
            .unwrap_or_else(|e| panic!("bind {service} {face:?}: {e}"));
        bound.listener.set_nonblocking(true).unwrap();
        let listener = tokio::net::TcpListener::from_std(bound.listener).unwrap();
        tokio::spawn(async move {
            while let Ok((s, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let (r, mut w) = s.into_split();
                    let mut lines = BufReader::new(r).lines();
                    while let Ok(Some(l)) = lines.next_line().await {
                        if w.write_all(format!("{l}\n").as_bytes()).await.is_err() {
                            break;
                        }
                    }
                });
            }
        });
        out.push((service, face, bound.address));
    }
    out
}

/// Whether a connection from `host` to `addr` carries data both ways.
pub async fn echoes(f: &Fabric, host: &str, addr: SocketAddr) -> bool {
    let attempt = async {
        let mut s = f.connect(host, addr).await.ok()?;
        s.write_all(b"ping\n").await.ok()?;
        let mut buf = [0u8; 5];
        s.read_exact(&mut buf).await.ok()?;
        (&buf == b"ping\n").then_some(())
    };
    matches!(
        tokio::time::timeout(Duration::from_millis(2500), attempt).await,
        Ok(Some(()))
    )
}

/// One cell of a reachability matrix.
#[derive(Debug, PartialEq, Eq, Clone)]
pub struct Cell {
    pub host: String,
    pub service: String,
    pub face: String,
    pub connects: bool,
}

/// The oracle's matrix and the measured one, over every host × face.
pub async fn matrices(f: &Fabric, faces: &[(String, Face, SocketAddr)]) -> (Vec<Cell>, Vec<Cell>) {
    let oracle = f.handle().oracle();
    let hosts: Vec<String> = oracle.hosts().keys().cloned().collect();
    let mut expected = Vec::new();
    let mut probes = Vec::new();
    for h in &hosts {
        for (service, face, addr) in faces {
            let d = oracle.decide(h, service, face, 443).unwrap();
            expected.push(Cell {
                host: h.clone(),
                service: service.clone(),
                face: face.label().to_string(),
                connects: d.connects(),
            });
            probes.push((h.clone(), service.clone(), face.label().to_string(), *addr));
        }
    }
    let actual =
        futures::future::join_all(probes.into_iter().map(|(h, s, face, addr)| async move {
            let connects = echoes(f, &h, addr).await;
            Cell {
                host: h,
                service: s,
                face,
                connects,
            }
        }))
        .await;
    (expected, actual)
}

/// Asserts two matrices are equal, listing every differing cell.
pub fn assert_same(expected: &[Cell], actual: &[Cell]) {
    let diff: Vec<String> = expected
        .iter()
        .zip(actual)
        .filter(|(e, a)| e != a)
        .map(|(e, a)| {
            format!(
                "{} -> {} ({}): oracle {} fabric {}",
                e.host, e.service, e.face, e.connects, a.connects
            )
        })
        .collect();
    assert!(
        diff.is_empty(),
        "{} cells differ:\n{}",
        diff.len(),
        diff.join("\n")
    );
    assert!(expected.iter().any(|c| c.connects) && expected.iter().any(|c| !c.connects));
}

/// Serves a TLS "who am I" service on every face of the prod vault (it answers with the face it
/// was reached on, and the host and address the fabric's peer directory names for the client),
/// then checks what three hosts see through `Fabric::http_client`: pp-prod-eastus reaches the
/// private endpoint over the peering as itself, the internet reaches the public face, and
/// pp-test-westus cannot resolve the name (its privatelink zone has no record for prod).
pub async fn assert_clients_keep_identity_and_dns_view(f: &Fabric) {
    use axum::extract::{ConnectInfo, Extension};
    use ppvnet_common::{Endpoint, Ingress};

    ppvnet_common::serve::install_crypto_provider();
    let dir = tempfile::tempdir().unwrap();
    let pki = ppvnet::pki::Pki::create(dir.path(), "fabric-test").unwrap();
    let leaf = pki
        .leaf(&["kv-contoso-prod.vault.azure.net".to_string()], &[])
        .unwrap();
    let tls = pki.server_config(&leaf).unwrap();
    let directory = f.peer_directory();
    let router = axum::Router::new().route(
        "/",
        axum::routing::get(
            move |Extension(ingress): Extension<Ingress>,
                  ConnectInfo(peer): ConnectInfo<SocketAddr>| {
                let d = directory.clone();
                async move {
                    let p = d.peer(peer);
                    let face = match ingress {
                        Ingress::Public => "public".to_string(),
                        Ingress::PrivateEndpoint { name } => name,
                    };
                    format!("{face} {} {}", p.host.unwrap_or_default(), p.address)
                }
            },
        ),
    );
    let mut endpoints = Vec::new();
    for face in [
        Face::Public,
        Face::PrivateEndpoint("pe-kv-contoso-prod".into()),
    ] {
        let b = f.bind("kv-contoso-prod", &face).unwrap();
        if f.kind() == FabricKind::Netns {
            assert_eq!(
                b.address.port(),
                443,
                "faces listen on 443 inside namespaces"
            );
        }
        endpoints.push(Endpoint {
            listener: b.listener,
            ingress: b.ingress,
        });
    }
    tokio::spawn(ppvnet_common::serve(
        endpoints,
        router,
        Some(tls),
        std::future::pending(),
    ));
    let ca = pki.ca_pem().as_bytes().to_vec();
    let get = |host: &'static str| {
        let c = f.http_client(host, &ca).unwrap();
        async move {
            c.get("https://kv-contoso-prod.vault.azure.net/")
                .send()
                .await
        }
    };
    let eastus = get("pp-prod-eastus").await.unwrap().text().await.unwrap();
    let ip = f.handle().oracle().hosts()["pp-prod-eastus"].address;
    assert_eq!(eastus, format!("pe-kv-contoso-prod pp-prod-eastus {ip}"));
    let internet = get("internet").await.unwrap().text().await.unwrap();
    assert_eq!(internet, "public internet 203.0.113.10");
    let err = get("pp-test-westus").await.unwrap_err();
    if f.kind() == FabricKind::Loopback {
        assert!(format!("{err:?}").contains("NxDomain"), "{err:?}");
    }
}
