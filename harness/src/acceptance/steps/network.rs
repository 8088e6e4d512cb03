//! Steps of `features/network_isolation.feature` (run by the acceptance runner): a landscape's network alone (no services), on
//! the loopback or the netns fabric, with a TCP echo on every service face, probed from hosts.
//!
//! The world needs one field, `network: Option<network::Net>`, and the after-scenario hook must
//! call [`stop`] so namespaces never outlive a scenario.

use std::net::SocketAddr;
use std::time::Duration;

use crate::fabric::flowlog::{FlowFilter, FlowState};
use crate::fabric::oracle::{FaceName, Resolution};
use crate::fabric::{Fabric, FabricKind, FabricOptions, Face};
use cucumber::{given, then, when};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

use super::PpvWorld;

const PROD_HOSTS: [&str; 2] = ["pp-prod-westus", "pp-prod-eastus"];

/// A materialized network with an echo on every face.
pub struct Net {
    fabric: Fabric,
    faces: Vec<(String, Face, SocketAddr)>,
}

impl std::fmt::Debug for Net {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Net")
            .field("fabric", &self.fabric.kind())
            .field("faces", &self.faces.len())
            .finish()
    }
}

/// Tears the scenario's network down (the after-scenario hook calls it).
pub async fn stop(w: &mut PpvWorld) {
    if let Some(n) = w.network.take()
        && let Err(e) = n.fabric.teardown().await
    {
        eprintln!("network teardown failed: {e:#}");
    }
}

fn net(w: &mut PpvWorld) -> &mut Net {
    w.network
        .as_mut()
        .expect("a network is up (Given the ... network on the ... fabric)")
}

/// Why the netns fabric cannot run here (not root, no `ip netns`), if it cannot.
pub fn netns_unavailable() -> Option<String> {
    let root = std::fs::read_to_string("/proc/self/status").is_ok_and(|s| {
        s.lines()
            .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"))
    });
    if !root {
        return Some(
            "the netns fabric needs root (run the @loopback examples only: --tags @loopback)"
                .into(),
        );
    }
    match std::process::Command::new("ip")
        .args(["netns", "list"])
        .output()
    {
        Ok(o) if o.status.success() => None,
        _ => Some("`ip netns` does not work here (run with --tags @loopback)".into()),
    }
}

/// Why the docker fabric cannot run here, if it cannot: it needs what the netns fabric needs,
/// Docker, and the ppvnet image of the binary the steps run as `ppvnet` (built once per run; an
/// image with the same content is kept).
pub fn docker_unavailable() -> Option<String> {
    static IMAGE: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    if let Some(why) = netns_unavailable() {
        return Some(format!(
            "the docker fabric wires containers as netns does: {why}"
        ));
    }
    IMAGE
        .get_or_init(|| {
            let opts = crate::image::BuildOptions {
                binary: crate::acceptance::settings().ppvnet_exe,
                tag: crate::image::default_tag(),
                scenarios: crate::acceptance::default_scenarios_dir(),
                force: false,
            };
            crate::image::build(&opts)
                .err()
                .map(|e| format!("the docker fabric needs the ppvnet image: {e:#}"))
        })
        .clone()
}

/// Why `kind` cannot run here, if it cannot.
pub fn fabric_unavailable(kind: FabricKind) -> Option<String> {
    match kind {
        FabricKind::Loopback => None,
        FabricKind::Netns => netns_unavailable(),
        FabricKind::Docker => docker_unavailable(),
    }
}

#[given(expr = "the {word} network on the {word} fabric")]
async fn network_on(w: &mut PpvWorld, scenario: String, fabric: String) {
    let kind = crate::acceptance::fabric_named(Some(&fabric));
    if let Some(why) = fabric_unavailable(kind) {
        panic!("{why}");
    }
    let path = crate::acceptance::landscape_to_start(&scenario);
    let l = crate::scenario::load(&path).unwrap_or_else(|e| panic!("{e}"));
    let fabric = Fabric::materialize_with(
        &l,
        kind,
        FabricOptions {
            drop_hold: Duration::from_millis(300),
            ..Default::default()
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{kind:?} fabric: {e:#}"));
    let mut faces = Vec::new();
    for (service, face) in fabric.handle().with_oracle(|o| o.faces()) {
        let bound = fabric
            .bind(&service, &face)
            .unwrap_or_else(|e| panic!("bind {service} {}: {e}", face.label()));
        let mut connections = bound.source.acceptor().expect("face source");
        tokio::spawn(async move {
            while let Ok(Some(accepted)) = connections.accept().await {
                tokio::spawn(async move {
                    let (r, mut wr) = tokio::io::split(accepted.stream);
                    let mut lines = BufReader::new(r).lines();
                    while let Ok(Some(l)) = lines.next_line().await {
                        if wr.write_all(format!("{l}\n").as_bytes()).await.is_err() {
                            break;
                        }
                    }
                });
            }
        });
        faces.push((service, face, bound.address));
    }
    w.network = Some(Net { fabric, faces });
}

impl Net {
    fn endpoint(&self, pe: &str) -> SocketAddr {
        let face = Face::PrivateEndpoint(pe.to_string());
        self.faces
            .iter()
            .find(|(_, f, _)| *f == face)
            .unwrap_or_else(|| panic!("no private endpoint {pe} in the landscape"))
            .2
    }

    /// Whether a connection from `host` to `to` carries a line both ways within `wait`: long for
    /// a connection that should work (success returns at once; only a broken path waits, and
    /// the suite runs many scenarios at once on few cores), short for one that should be dropped.
    async fn echoes(&self, host: &str, to: SocketAddr, wait: Duration) -> bool {
        let attempt = async {
            let mut s = self.fabric.connect(host, to).await.ok()?;
            s.write_all(b"ping\n").await.ok()?;
            let mut buf = [0u8; 5];
            s.read_exact(&mut buf).await.ok()?;
            (&buf == b"ping\n").then_some(())
        };
        matches!(tokio::time::timeout(wait, attempt).await, Ok(Some(())))
    }

    /// A failed reach step's evidence: the oracle's verdict for the host and the private
    /// endpoint (TCP 443), and the flow-log records from the host to it.
    fn evidence(&self, host: &str, pe: &str) -> String {
        let h = self.fabric.handle();
        let face = Face::PrivateEndpoint(pe.to_string());
        let service = self
            .faces
            .iter()
            .find(|(_, f, _)| *f == face)
            .map(|(s, _, _)| s.clone())
            .unwrap_or_default();
        let verdict = h
            .with_oracle(|o| o.decide(host, &service, &face, 443))
            .map_or_else(|e| e.to_string(), |d| format!("{} ({d:?})", d.label()));
        let flows: Vec<String> = h
            .flows(&FlowFilter {
                src_host: Some(host.to_string()),
                ..Default::default()
            })
            .iter()
            .filter(|r| r.dst_host == pe)
            .map(|r| format!("{:?} rule {} {}", r.state, r.rule, r.tuple()))
            .collect();
        let flows = if flows.is_empty() {
            "(no record)".to_string()
        } else {
            flows.join("\n")
        };
        format!("oracle: {verdict}\nflow log {host} -> {pe}:\n{flows}")
    }
}

#[then(expr = "{string} can reach the private endpoint {string}")]
#[when(expr = "{string} connects to the private endpoint {string}")]
async fn can_reach(w: &mut PpvWorld, host: String, pe: String) {
    let n = net(w);
    assert!(
        n.echoes(&host, n.endpoint(&pe), Duration::from_secs(15))
            .await,
        "{host} cannot reach {pe}\n{}",
        n.evidence(&host, &pe)
    );
}

#[then(expr = "{string} cannot reach the private endpoint {string}")]
async fn cannot_reach(w: &mut PpvWorld, host: String, pe: String) {
    let n = net(w);
    assert!(
        !n.echoes(&host, n.endpoint(&pe), Duration::from_millis(2500))
            .await,
        "{host} reaches {pe}\n{}",
        n.evidence(&host, &pe)
    );
}

fn resolve(w: &mut PpvWorld, host: &str, name: &str) -> Resolution {
    net(w)
        .fabric
        .handle()
        .resolve(host, name)
        .unwrap_or_else(|e| panic!("{e}"))
}

#[then(expr = "from {string} the name {string} resolves to the public endpoint of {string}")]
async fn resolves_public(w: &mut PpvWorld, host: String, name: String, service: String) {
    match resolve(w, &host, &name) {
        Resolution::Address {
            service: s,
            face: FaceName::Public,
            ..
        } => assert_eq!(s, service),
        other => panic!("{name} from {host}: {other:?}"),
    }
}

#[then(expr = "from {string} the name {string} resolves to the private endpoint {string}")]
async fn resolves_private(w: &mut PpvWorld, host: String, name: String, pe: String) {
    match resolve(w, &host, &name) {
        Resolution::Address {
            face: FaceName::PrivateEndpoint(p),
            ..
        } => assert_eq!(p, pe),
        other => panic!("{name} from {host}: {other:?}"),
    }
}

#[then(expr = "from {string} the name {string} does not resolve")]
async fn does_not_resolve(w: &mut PpvWorld, host: String, name: String) {
    let r = resolve(w, &host, &name);
    assert!(
        matches!(r, Resolution::NxDomain { .. }),
        "{name} from {host}: {r:?}"
    );
}

#[when(expr = "the peering between {string} and {string} is turned off")]
async fn peering_off(w: &mut PpvWorld, a: String, b: String) {
    net(w)
        .fabric
        .handle()
        .set_peering_between(&a, &b, false)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
}

/// Flow records of the prod delegated subnets (the kernel path reports asynchronously).
async fn prod_flows(n: &Net, begun: usize) -> Vec<crate::fabric::flowlog::FlowRecord> {
    let h = n.fabric.handle();
    let collect = || {
        PROD_HOSTS
            .iter()
            .flat_map(|host| {
                h.flows(&FlowFilter {
                    src_host: Some(host.to_string()),
                    ..Default::default()
                })
            })
            .collect::<Vec<_>>()
    };
    let enough = |all: &[crate::fabric::flowlog::FlowRecord]| {
        all.iter()
            .filter(|r| r.state == FlowState::B && PROD_HOSTS.contains(&r.src_host.as_str()))
            .count()
            >= begun
    };
    h.flow_log()
        .wait_for(&FlowFilter::default(), Duration::from_secs(5), enough)
        .await;
    collect()
}

#[then(expr = "the flow log shows {int} connections begun from the prod delegated subnets")]
async fn flows_begun(w: &mut PpvWorld, count: usize) {
    let n = net(w);
    let flows = prod_flows(n, count).await;
    let begun: Vec<_> = flows.iter().filter(|r| r.state == FlowState::B).collect();
    assert_eq!(begun.len(), count, "{flows:#?}");
    assert!(
        begun.iter().all(|r| r.dst_host.starts_with("pe-")),
        "{begun:#?}"
    );
}

#[then("no flow log record of the prod delegated subnets crossed the public internet")]
async fn never_crossed(w: &mut PpvWorld) {
    let n = net(w);
    let internet = n.fabric.handle().oracle().hosts()["internet"].address;
    let flows = prod_flows(n, 0).await;
    assert!(!flows.is_empty());
    for r in flows {
        assert!(!r.crosses_internet, "{r:?}");
        assert!(r.dst != internet && r.dst_host != "internet", "{r:?}");
        assert!(r.dst.is_private(), "left the private address space: {r:?}");
    }
}

#[when(
    expr = "the rule {string} {word} inbound TCP {int} from {string} is added to {string} at priority {int}"
)]
async fn rule_added(
    w: &mut PpvWorld,
    rule: String,
    access: String,
    port: u16,
    source: String,
    nsg: String,
    priority: u32,
) {
    let access = match access.as_str() {
        "allowing" => "Allow",
        "denying" => "Deny",
        other => panic!("'{other}': a rule is allowing or denying"),
    };
    // The same JSON an operator sends to `POST /network/nsgs/{nsg}/rules`.
    let rule: crate::scenario::model::NsgRule = serde_json::from_value(serde_json::json!({
        "name": rule,
        "priority": priority,
        "direction": "Inbound",
        "access": access,
        "protocol": "Tcp",
        "sourceAddressPrefixes": [source],
        "destinationPortRanges": [port.to_string()],
    }))
    .unwrap_or_else(|e| panic!("the rule: {e}"));
    net(w)
        .fabric
        .handle()
        .add_nsg_rule(&nsg, rule)
        .await
        .unwrap_or_else(|e| panic!("adding the rule to {nsg}: {e}"));
}

#[when(expr = "the rule {string} is removed from {string}")]
async fn rule_removed(w: &mut PpvWorld, rule: String, nsg: String) {
    net(w)
        .fabric
        .handle()
        .remove_nsg_rule(&nsg, &rule)
        .await
        .unwrap_or_else(|e| panic!("removing {rule} from {nsg}: {e}"));
}

#[then(expr = "the flow log records {string} denied at {string} by the rule {string}")]
async fn denied_by_rule(w: &mut PpvWorld, host: String, pe: String, rule: String) {
    let n = net(w);
    let filter = FlowFilter {
        src_host: Some(host.clone()),
        dst_host: Some(pe.clone()),
        state: Some(FlowState::D),
        ..Default::default()
    };
    let named = |all: &[crate::fabric::flowlog::FlowRecord]| all.iter().any(|r| r.rule == rule);
    let denied = n
        .fabric
        .handle()
        .flow_log()
        .wait_for(&filter, Duration::from_secs(5), named)
        .await;
    assert!(
        denied.iter().any(|r| r.rule == rule),
        "no D record by {rule}\n{}",
        n.evidence(&host, &pe)
    );
}
