//! Shared pieces of the fabric tests: loading the repository's landscapes, echo services on every
//! face, and probing real TCP reachability from a host.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use ppvnet::fabric::flowlog::{FlowFilter, FlowRecord, FlowState};
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
            ..Default::default()
        },
    )
    .await
    .unwrap_or_else(|e| panic!("materialize {kind:?}: {e:#}"))
}

/// The client address of a private endpoint among [`echo_on_every_face`]'s faces.
pub fn private_endpoint(faces: &[(String, Face, SocketAddr)], name: &str) -> SocketAddr {
    faces
        .iter()
        .find(|(_, face, _)| *face == Face::PrivateEndpoint(name.into()))
        .unwrap_or_else(|| panic!("no private endpoint {name}"))
        .2
}

/// Binds every face and serves a line echo on it; returns (service, face, client address).
pub fn echo_on_every_face(f: &Fabric) -> Vec<(String, Face, SocketAddr)> {
    let faces = f.handle().with_oracle(|o| o.faces());
    let mut out = Vec::new();
    for (service, face) in faces {
        let bound = f
            .bind(&service, &face)
            .unwrap_or_else(|e| panic!("bind {service} {face:?}: {e}"));
        let mut connections = bound.source.acceptor().unwrap();
        tokio::spawn(async move {
            while let Ok(Some(accepted)) = connections.accept().await {
                tokio::spawn(async move {
                    let (r, mut w) = tokio::io::split(accepted.stream);
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

/// How long a probe that should be refused waits before it counts as dropped.
pub const DROP_WAIT: Duration = Duration::from_millis(2500);
/// How long a probe that should connect may take: success returns at once, so only a broken
/// path waits this long, and a slow machine (every test of a binary in parallel on 2 cores)
/// does not turn "allowed" into "dropped".
pub const CONNECT_WAIT: Duration = Duration::from_secs(15);

/// Whether a connection from `host` to `addr` carries data both ways within [`DROP_WAIT`]; use
/// it where the connection is expected to fail.
pub async fn echoes(f: &Fabric, host: &str, addr: SocketAddr) -> bool {
    echoes_within(f, host, addr, DROP_WAIT).await
}

/// [`echoes`] with [`CONNECT_WAIT`]; use it where the connection is expected to work.
pub async fn reaches(f: &Fabric, host: &str, addr: SocketAddr) -> bool {
    echoes_within(f, host, addr, CONNECT_WAIT).await
}

/// Whether a connection from `host` to `addr` carries data both ways within `wait`.
pub async fn echoes_within(f: &Fabric, host: &str, addr: SocketAddr, wait: Duration) -> bool {
    let attempt = async {
        let mut s = f.connect(host, addr).await.ok()?;
        s.write_all(b"ping\n").await.ok()?;
        let mut buf = [0u8; 5];
        s.read_exact(&mut buf).await.ok()?;
        (&buf == b"ping\n").then_some(())
    };
    matches!(tokio::time::timeout(wait, attempt).await, Ok(Some(())))
}

/// A flow that stays open across several continue intervals is logged as `B`, then `C`
/// records with the counts since the previous record, then `E` with the rest, so the records
/// add up to what crossed (Azure's VNet flow log semantics; the interval is shortened from
/// Azure's 5 minutes to 300 ms here). Byte counts are at least the payload: the netns fabric
/// counts IP packets with their headers, the loopback relay the payload it copies.
pub async fn assert_long_flow_continues_then_ends(l: &Landscape, kind: FabricKind) {
    let f = Fabric::materialize_with(
        l,
        kind,
        FabricOptions {
            drop_hold: Duration::from_millis(300),
            continue_interval: Duration::from_millis(300),
            ..Default::default()
        },
    )
    .await
    .unwrap_or_else(|e| panic!("materialize {kind:?}: {e:#}"));
    let faces = echo_on_every_face(&f);
    let kv = private_endpoint(&faces, "pe-kv-contoso-prod");
    async fn echo(s: &mut tokio::net::TcpStream, line: &[u8]) {
        s.write_all(line).await.unwrap();
        let mut buf = vec![0u8; line.len()];
        s.read_exact(&mut buf).await.unwrap();
        assert_eq!(buf, line);
    }
    let mut s = f.connect("pp-prod-westus", kv).await.unwrap();
    echo(&mut s, b"first\n").await;
    let from_prod = FlowFilter {
        src_host: Some("pp-prod-westus".into()),
        ..Default::default()
    };
    let has = |state: FlowState| move |r: &[FlowRecord]| r.iter().any(|x| x.state == state);
    // A continuing record once the (shortened) continue interval passes with the flow open.
    let log = f.handle();
    log.flow_log()
        .wait_for(&from_prod, Duration::from_secs(10), has(FlowState::C))
        .await;
    echo(&mut s, b"second line\n").await;
    drop(s);
    // The loopback relay logs the end at once, the netns reader within a poll (250 ms).
    let flows = log
        .flow_log()
        .wait_for(&from_prod, Duration::from_secs(10), has(FlowState::E))
        .await;
    let states: String = flows.iter().map(|r| format!("{:?}", r.state)).collect();
    assert!(
        states.starts_with("BC") && states.ends_with('E') && states.matches('E').count() == 1,
        "{kind:?}: {states} {flows:#?}"
    );
    let later: Vec<_> = flows.iter().filter(|r| r.state != FlowState::B).collect();
    for r in &later {
        assert_eq!(
            (r.sport, r.dst, r.rule.as_str()),
            (flows[0].sport, flows[0].dst, flows[0].rule.as_str()),
            "{kind:?}: C and E repeat their B"
        );
    }
    // The first C holds the first exchange; the second one is in later records (deltas).
    assert!(later[0].bytes_sent >= 6, "{kind:?}: {:?}", later[0]);
    let sent: u64 = later.iter().map(|r| r.bytes_sent).sum();
    let received: u64 = later.iter().map(|r| r.bytes_received).sum();
    assert!(sent >= later[0].bytes_sent + 12, "{kind:?}: {later:#?}");
    assert!(
        sent >= 18 && received >= 18,
        "{kind:?}: {sent} {received} {later:#?}"
    );
    f.teardown().await.unwrap();
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
            probes.push((
                h.clone(),
                service.clone(),
                face.label().to_string(),
                *addr,
                d.connects(),
            ));
        }
    }
    let actual = futures::future::join_all(probes.into_iter().map(
        |(h, s, face, addr, allowed)| async move {
            // A cell the oracle allows may take its time; one it denies must not connect within
            // the drop wait. Either way a disagreement shows.
            let wait = if allowed { CONNECT_WAIT } else { DROP_WAIT };
            let connects = echoes_within(f, &h, addr, wait).await;
            Cell {
                host: h,
                service: s,
                face,
                connects,
            }
        },
    ))
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
    use ppvnet_common::Face;

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
            move |Extension(ingress): Extension<Face>,
                  ConnectInfo(peer): ConnectInfo<SocketAddr>| {
                let d = directory.clone();
                async move {
                    let p = d.peer(peer);
                    let face = ingress.label();
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
        endpoints.push(b.into_endpoint());
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

/// What a vault firewall sees of NAT gateway egress, on a running `nat-gateway` landscape:
/// kv-firewall denies by default and admits natgw-prod-westus's public IP (203.0.113.100).
/// pp-prod-westus (behind that gateway) reads the secret, and the vault reports the gateway's
/// address; pp-test-westus (behind natgw-test-westus) is refused naming 203.0.113.101; the
/// internet is refused naming its own address; app-prod-westus shares the prod gateway but its
/// subnet is in the vault's vNet rule (a `Microsoft.KeyVault` service endpoint), so it gets in
/// with its private address. The flow log keeps the private (pre-NAT) source.
pub async fn assert_vault_firewall_sees_the_nat_gateway(kind: FabricKind) {
    use ppvnet::fabric::flowlog::{FlowFilter, FlowState};

    const TENANT: &str = "c76cdc05-9ef7-4021-9a9c-171dd3832ea4";
    const SECRET_URL: &str =
        "https://kv-firewall.vault.azure.net/secrets/egress-check?api-version=7.5";
    let dir = tempfile::tempdir().unwrap();
    let opts = ppvnet::up::UpOptions::new(kind, dir.path().join("ready.json"));
    let running = ppvnet::up::start(&landscape("nat-gateway"), &opts)
        .await
        .unwrap_or_else(|e| panic!("start nat-gateway on {kind:?}: {e:#}"));
    let f = running.fabric();
    let ca = std::fs::read(&running.ready().ca_cert).unwrap();
    let client = |host: &str| f.http_client(host, &ca).unwrap();

    let token: serde_json::Value = client("internet")
        .post(format!(
            "https://login.microsoftonline.com/{TENANT}/oauth2/v2.0/token"
        ))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", "0b7a4f52-3c1e-4d8a-9f26-5e1d7c3b9a40"),
            ("client_secret", "nat-client-secret-Qp7~rT2w"),
            ("scope", "https://vault.azure.net/.default"),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = token["access_token"]
        .as_str()
        .unwrap_or_else(|| panic!("no token: {token}"))
        .to_string();
    let get = |host: &'static str| {
        let c = client(host);
        let token = token.clone();
        async move {
            let r = c
                .get(SECRET_URL)
                .bearer_auth(token)
                .send()
                .await
                .unwrap_or_else(|e| panic!("{host}: {e:?}"));
            let status = r.status().as_u16();
            let info = r
                .headers()
                .get("x-ms-keyvault-network-info")
                .map(|v| v.to_str().unwrap().to_string())
                .unwrap_or_default();
            let body: serde_json::Value = r.json().await.unwrap();
            (status, info, body)
        }
    };

    let (status, info, body) = get("pp-prod-westus").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["value"], "seen-through-the-nat-gateway");
    assert!(info.contains("addr=203.0.113.100;"), "{info}");

    for (host, address) in [
        ("pp-test-westus", "203.0.113.101"),
        ("internet", "203.0.113.10"),
    ] {
        let (status, info, body) = get(host).await;
        assert_eq!(status, 403, "{host}: {body}");
        assert_eq!(body["error"]["code"], "Forbidden", "{host}: {body}");
        assert_eq!(
            body["error"]["innererror"]["code"], "ForbiddenByFirewall",
            "{host}: {body}"
        );
        let message = body["error"]["message"].as_str().unwrap();
        assert!(
            message.contains(&format!("Client address: {address}\r\n")),
            "{host}: {message}"
        );
        assert!(info.contains(&format!("addr={address};")), "{host}: {info}");
    }

    let oracle = f.handle().oracle();
    let private = |h: &str| oracle.hosts()[h].address;
    let (status, info, body) = get("app-prod-westus").await;
    assert_eq!(status, 200, "{body}");
    assert!(
        info.contains(&format!("addr={};", private("app-prod-westus"))),
        "{info}"
    );

    // The flow log names the host behind the gateway by its private (pre-NAT) tuple, begin and
    // end, as Azure's VNet flow logs do.
    // The netns fabric reads its records from the kernel: the end is there once the dropped
    // client's connection has closed (well within the wait).
    let logged = |state: FlowState| {
        f.handle()
            .flows(&FlowFilter {
                src_host: Some("pp-prod-westus".into()),
                state: Some(state),
                ..Default::default()
            })
            .into_iter()
            .filter(|r| r.service == "kv-firewall")
            .collect::<Vec<_>>()
    };
    f.handle()
        .flow_log()
        .wait_for(
            &FlowFilter {
                src_host: Some("pp-prod-westus".into()),
                state: Some(FlowState::E),
                ..Default::default()
            },
            Duration::from_secs(10),
            |r| r.iter().any(|x| x.service == "kv-firewall"),
        )
        .await;
    let (begins, ends) = (logged(FlowState::B), logged(FlowState::E));
    assert_eq!((begins.len(), ends.len()), (1, 1), "{begins:#?} {ends:#?}");
    for r in begins.iter().chain(&ends) {
        assert_eq!(r.src, private("pp-prod-westus"), "{r:?}");
        assert_eq!(r.dst_host, "public:kv-firewall", "{r:?}");
        assert_eq!(r.rule, "nat_gateway:natgw-prod-westus", "{r:?}");
        assert!(r.crosses_internet, "{r:?}");
    }
    assert_eq!(ends[0].sport, begins[0].sport);
    assert!(
        ends[0].bytes_sent > 0 && ends[0].bytes_received > 0,
        "{ends:?}"
    );
    running.stop().await.unwrap();
}
