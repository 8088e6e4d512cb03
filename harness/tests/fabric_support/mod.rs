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
