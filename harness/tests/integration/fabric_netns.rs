//! The netns fabric beyond the reachability matrix: Azure DNS inside the vNets through libc,
//! `exec`, HTTP clients originating in a host namespace, region outage as a refused connect,
//! runtime NSG rules in nftables, the kernel flow log (begins, drops, ends with byte counts,
//! metrics), NAT gateway source translation as a vault firewall sees it, stale namespace cleanup
//! and complete teardown.
//! Every test prints why it skips when it cannot run (not root, no `ip netns`, no `nft`), or
//! fails when `PPVNET_REQUIRE` lists `netns`.

use std::path::Path;

use crate::fabric_support::*;
use ppvnet::fabric::flowlog::FlowRecord;
use ppvnet::fabric::{Fabric, FabricKind, Face};

fn skip() -> bool {
    crate::require::skip_unless("netns", netns_unavailable())
}

/// A ready file as `ppvnet up` writes it, with the fields `exec` reads.
fn ready_file(f: &Fabric, dir: &Path) -> std::path::PathBuf {
    let ready = ppvnet::ready::ReadyFile {
        ca_cert: dir.join("ca.pem"),
        entra: Some(ppvnet::ready::EntraEntry {
            authority_host: "https://login.microsoftonline.com".into(),
            authority: "https://login.microsoftonline.com/common".into(),
            port_443: true,
        }),
        hosts: f.hosts(),
        control_url: "http://127.0.0.1:1".into(),
        ..Default::default()
    };
    let path = dir.join("ready.json");
    ready.write(&path).unwrap();
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_runs_in_the_host_namespace_with_the_vnet_dns_and_azure_environment() {
    if skip() {
        return;
    }
    let l = landscape("contoso");
    let f = fabric(&l, FabricKind::Netns).await;
    let dir = tempfile::tempdir().unwrap();
    let ready = ready_file(&f, dir.path());
    let o = f.handle().oracle();
    let run = |host: &str, script: &str| {
        let out = dir.path().join(format!("{host}.out"));
        let argv = vec![
            "sh".to_string(),
            "-c".to_string(),
            format!("{{ {script}; }} > {}", out.display()),
        ];
        let code = ppvnet::fabric::exec(&ready, host, &argv).unwrap();
        (code, std::fs::read_to_string(out).unwrap_or_default())
    };
    let name = "kv-contoso-prod.vault.azure.net";
    let (code, text) = run("pp-prod-eastus", &format!("getent hosts {name}"));
    assert_eq!(code, 0);
    assert!(
        text.starts_with(&format!("{} ", o.hosts()["pe-kv-contoso-prod"].address)),
        "{text}"
    );
    let (_, text) = run("internet", &format!("getent hosts {name}"));
    assert!(
        text.starts_with(&format!(
            "{} ",
            o.services()["kv-contoso-prod"].public_address
        )),
        "{text}"
    );
    let (code, _) = run("pp-test-westus", &format!("getent hosts {name}"));
    assert_eq!(
        code, 2,
        "NXDOMAIN: the test vNets' privatelink zone has no prod record"
    );
    let (code, text) = run(
        "pp-prod-westus",
        "ip -4 -o addr show dev eth0; echo $SSL_CERT_FILE $REQUESTS_CA_BUNDLE $AZURE_AUTHORITY_HOST",
    );
    assert_eq!(code, 0);
    assert!(
        text.contains(&format!("inet {}/32", o.hosts()["pp-prod-westus"].address)),
        "{text}"
    );
    let ca = dir.path().join("ca.pem");
    assert!(
        text.contains(&format!(
            "{} {} https://login.microsoftonline.com",
            ca.display(),
            ca.display()
        )),
        "{text}"
    );
    let (code, _) = run("pp-prod-westus", "exit 7");
    assert_eq!(code, 7);
    let err = ppvnet::fabric::exec(&ready, "nowhere", &["true".to_string()]).unwrap_err();
    assert!(
        err.to_string()
            .contains("host 'nowhere' is not part of the landscape"),
        "{err}"
    );
    f.teardown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_client_leaves_from_the_host_namespace_and_resolves_by_its_view() {
    if skip() {
        return;
    }
    let l = landscape("contoso");
    let f = fabric(&l, FabricKind::Netns).await;
    assert_clients_keep_identity_and_dns_view(&f).await;
    f.teardown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn region_outage_refuses_connections_from_the_region_and_nsg_rules_reach_nftables() {
    if skip() {
        return;
    }
    let l = landscape("contoso");
    let f = fabric(&l, FabricKind::Netns).await;
    let faces = echo_on_every_face(&f);
    let kv = private_endpoint(&faces, "pe-kv-contoso-prod");
    let h = f.handle();
    h.set_region_outage("westus", true).await.unwrap();
    // Refused, not dropped: the connect fails by itself, well before any timeout of ours.
    let r = tokio::time::timeout(
        std::time::Duration::from_secs(20),
        f.connect("pp-prod-westus", kv),
    )
    .await;
    assert!(matches!(r, Ok(Err(_))), "{r:?}");
    assert!(
        reaches(&f, "pp-prod-eastus", kv).await,
        "Azure resources of the region stay up"
    );
    h.set_region_outage("westus", false).await.unwrap();
    assert!(reaches(&f, "pp-prod-westus", kv).await);

    let rule = |v: serde_json::Value| -> ppvnet::scenario::model::NsgRule {
        serde_json::from_value(v).unwrap()
    };
    // Deny eastus ahead of a copy of the HTTPS allow (rules cannot share a priority).
    h.remove_nsg_rule("nsg-pe-prod", "AllowVnetHttpsInbound")
        .await
        .unwrap();
    h.add_nsg_rule(
        "nsg-pe-prod",
        rule(serde_json::json!({
            "name": "DenyEastus", "priority": 101, "direction": "Inbound", "access": "Deny",
            "sourceAddressPrefixes": ["10.20.0.0/16"]
        })),
    )
    .await
    .unwrap();
    h.add_nsg_rule("nsg-pe-prod", rule(serde_json::json!({
        "name": "AllowVnetHttps", "priority": 102, "direction": "Inbound", "access": "Allow", "protocol": "Tcp",
        "sourceAddressPrefixes": ["VirtualNetwork"], "destinationPortRanges": ["443"]
    }))).await.unwrap();
    assert!(!echoes(&f, "pp-prod-eastus", kv).await);
    assert!(reaches(&f, "pp-prod-westus", kv).await);
    h.remove_nsg_rule("nsg-pe-prod", "DenyEastus")
        .await
        .unwrap();
    assert!(reaches(&f, "pp-prod-eastus", kv).await);
    f.teardown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_namespaces_are_cleaned_at_start_and_teardown_leaves_nothing() {
    if skip() {
        return;
    }
    // A pid above the kernel's maximum (4194304) never belongs to a live process. Its DNS folder
    // first: a fabric another test starts meanwhile may clean the namespace as soon as it exists.
    let stale = "ppv-4194399-0-pp-prod-westus";
    std::fs::create_dir_all(format!("/etc/netns/{stale}")).unwrap();
    let out = std::process::Command::new("ip")
        .args(["netns", "add", stale])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let l = landscape("no-peering");
    let f = fabric(&l, FabricKind::Netns).await;
    assert!(
        !Path::new("/run/netns").join(stale).exists(),
        "stale namespace survived"
    );
    assert!(!Path::new("/etc/netns").join(stale).exists());
    let names: Vec<String> = f
        .hosts()
        .values()
        .filter_map(|h| h.namespace.clone())
        .collect();
    let exist = |names: &[String]| {
        names
            .iter()
            .all(|n| Path::new("/run/netns").join(n).exists())
    };
    assert!(exist(&names));
    // Another fabric of this process cleans stale namespaces at its start too; the live ones of
    // this process (other tests' fabrics run in it concurrently) are not stale.
    let other = fabric(&l, FabricKind::Netns).await;
    assert!(
        exist(&names),
        "a fabric's start removed a live fabric's namespaces"
    );
    other.teardown().await.unwrap();
    // Every namespace of the run starts with `ppv-<pid>-<n>-`; `-<n>-` keeps run 1 apart from
    // run 10 of the same process.
    let internet = f.hosts()["internet"].namespace.clone().unwrap();
    let prefix = format!(
        "{}-",
        internet
            .strip_suffix("-internet")
            .expect("ppv-<pid>-<n>-internet")
    );
    assert!(names.iter().all(|n| n.starts_with(&prefix)), "{names:?}");
    f.teardown().await.unwrap();
    for n in &names {
        assert!(!Path::new("/run/netns").join(n).exists(), "{n} left behind");
        assert!(
            !Path::new("/etc/netns").join(n).exists(),
            "/etc/netns/{n} left behind"
        );
    }
    let left: Vec<_> = std::fs::read_dir("/run/netns")
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kernel_flow_log_shows_the_prod_path_never_crossed_the_internet() {
    use ppvnet::fabric::flowlog::{FlowFilter, FlowState};
    if skip() {
        return;
    }
    let l = landscape("contoso");
    let f = fabric(&l, FabricKind::Netns).await;
    let faces = echo_on_every_face(&f);
    let addr = |n: &str| private_endpoint(&faces, n);
    for host in ["pp-prod-westus", "pp-prod-eastus"] {
        assert!(reaches(&f, host, addr("pe-kv-contoso-prod")).await);
        assert!(reaches(&f, host, addr("pe-cases-api-prod")).await);
    }
    assert!(!echoes(&f, "internet", addr("pe-kv-contoso-prod")).await);
    assert!(!echoes(&f, "pp-test-westus", addr("pe-kv-contoso-prod")).await);
    let h = f.handle();
    let prod = |h: &ppvnet::fabric::FabricHandle| {
        let mut v = h.flows(&FlowFilter {
            src_host: Some("pp-prod-westus".into()),
            ..Default::default()
        });
        v.extend(h.flows(&FlowFilter {
            src_host: Some("pp-prod-eastus".into()),
            ..Default::default()
        }));
        v
    };
    let is_prod =
        |r: &FlowRecord| matches!(r.src_host.as_str(), "pp-prod-westus" | "pp-prod-eastus");
    h.flow_log()
        .wait_for(
            &FlowFilter::default(),
            std::time::Duration::from_secs(5),
            |all| {
                all.iter().filter(|r| is_prod(r)).count() >= 4
                    && all.iter().any(|r| r.state == FlowState::D)
            },
        )
        .await;
    let records = prod(&h);
    assert_eq!(
        records.iter().filter(|r| r.state == FlowState::B).count(),
        4,
        "{records:#?}"
    );
    for r in &records {
        assert!(
            !r.crosses_internet && r.dst.octets()[0] == 10 && r.dst_host.starts_with("pe-"),
            "{r:?}"
        );
    }
    let eastus = records
        .iter()
        .find(|r| r.src_host == "pp-prod-eastus")
        .unwrap();
    assert_eq!(eastus.rule, "peering:vnet-prod-eastus->vnet-prod-westus");
    // Each connection ends once, logged by the router that logged its begin, even when it
    // crossed two routers (eastus over the peering).
    let ended = |h: &ppvnet::fabric::FabricHandle| {
        prod(h)
            .into_iter()
            .filter(|r| r.state == FlowState::E)
            .collect::<Vec<_>>()
    };
    h.flow_log()
        .wait_for(
            &FlowFilter {
                state: Some(FlowState::E),
                ..Default::default()
            },
            std::time::Duration::from_secs(5),
            |ends| ends.iter().filter(|r| is_prod(r)).count() >= 4,
        )
        .await;
    // Two more conntrack sweeps of every router: a second E of any connection would be in now.
    let since = h.flow_log().sweeps();
    assert!(!since.is_empty(), "no router reads conntrack");
    assert!(
        h.flow_log()
            .wait_sweeps(&since, 2, std::time::Duration::from_secs(5))
            .await
    );
    let ends = ended(&h);
    assert_eq!(ends.len(), 4, "{ends:#?}");
    for b in records.iter().filter(|r| r.state == FlowState::B) {
        let e = ends.iter().find(|e| e.sport == b.sport && e.src == b.src);
        assert!(
            e.is_some_and(|e| e.rule == b.rule && e.bytes_sent >= 5 && e.bytes_received >= 5),
            "{b:?} {ends:#?}"
        );
    }
    let denied = h.flows(&FlowFilter {
        state: Some(FlowState::D),
        ..Default::default()
    });
    let internet = denied
        .iter()
        .find(|r| r.src_host == "internet")
        .expect("internet drop logged");
    assert_eq!(
        (internet.rule.as_str(), internet.dst_host.as_str()),
        ("no_route", "pe-kv-contoso-prod")
    );
    assert!(
        denied.iter().any(|r| r.src_host == "pp-test-westus"),
        "{denied:#?}"
    );
    f.teardown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fabric_dropped_without_teardown_removes_its_namespaces() {
    if skip() {
        return;
    }
    let l = landscape("nat-gateway");
    let f = fabric(&l, FabricKind::Netns).await;
    let names: Vec<String> = f
        .hosts()
        .values()
        .filter_map(|h| h.namespace.clone())
        .collect();
    assert!(
        names
            .iter()
            .all(|n| Path::new("/run/netns").join(n).exists())
    );
    drop(f);
    for n in &names {
        assert!(!Path::new("/run/netns").join(n).exists(), "{n} left behind");
    }
}

/// The `ppvnet_fabric_bytes_total` sample of a host and direction (0 when absent).
fn bytes_metric(metrics: &str, host: &str, direction: &str) -> u64 {
    let key = format!("ppvnet_fabric_bytes_total{{host=\"{host}\",direction=\"{direction}\"}} ");
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(&key))
        .map(|n| n.parse().unwrap())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kernel_flow_log_ends_each_connection_with_its_byte_counts() {
    use ppvnet::fabric::flowlog::{FlowFilter, FlowState};
    use std::time::{Duration, Instant};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    if skip() {
        return;
    }
    let l = landscape("contoso");
    let f = fabric(&l, FabricKind::Netns).await;
    // A minimal HTTP/1.1 server on the prod vault's private endpoint: one response, then close.
    let body = "s".repeat(3000);
    let head = format!(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    );
    let response = format!("{head}{body}").into_bytes();
    let bound = f
        .bind(
            "kv-contoso-prod",
            &Face::PrivateEndpoint("pe-kv-contoso-prod".into()),
        )
        .unwrap();
    let addr = bound.address;
    let mut connections = bound.source.acceptor().unwrap();
    let served = response.clone();
    tokio::spawn(async move {
        while let Ok(Some(accepted)) = connections.accept().await {
            let served = served.clone();
            let mut s = accepted.stream;
            tokio::spawn(async move {
                let mut req = Vec::new();
                let mut buf = [0u8; 1024];
                while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                    match s.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => req.extend_from_slice(&buf[..n]),
                    }
                }
                let _ = s.write_all(&served).await;
                let _ = s.shutdown().await;
            });
        }
    });
    let h = f.handle();
    let metrics_before = h.metrics();

    let request = b"GET /secrets/db-password?api-version=7.4 HTTP/1.1\r\nhost: kv-contoso-prod.vault.azure.net\r\nconnection: close\r\n\r\n";
    let mut s = f.connect("pp-prod-westus", addr).await.unwrap();
    let sport = s.local_addr().unwrap().port();
    s.write_all(request).await.unwrap();
    let mut received = Vec::new();
    s.read_to_end(&mut received).await.unwrap();
    assert_eq!(received, response);
    drop(s);
    let closed = Instant::now();
    let of_this = |state| {
        h.flows(&FlowFilter {
            src_host: Some("pp-prod-westus".into()),
            state: Some(state),
            ..Default::default()
        })
        .into_iter()
        .filter(|r| r.sport == sport)
        .collect::<Vec<_>>()
    };
    h.flow_log()
        .wait_for(
            &FlowFilter {
                src_host: Some("pp-prod-westus".into()),
                state: Some(FlowState::E),
                ..Default::default()
            },
            Duration::from_secs(5),
            |ends| ends.iter().any(|r| r.sport == sport),
        )
        .await;
    let end = of_this(FlowState::E).pop().unwrap_or_else(|| {
        panic!(
            "no E record 5 s after the close: {:#?}",
            h.flows(&FlowFilter::default())
        )
    });
    eprintln!(
        "E record {} ms after the connection closed",
        closed.elapsed().as_millis()
    );
    let begun = of_this(FlowState::B);
    assert_eq!(begun.len(), 1, "{:#?}", h.flows(&FlowFilter::default()));
    let b = &begun[0];
    assert_eq!(
        (b.src, b.dst, b.sport, b.dport, b.proto),
        (end.src, end.dst, end.sport, end.dport, end.proto)
    );
    assert_eq!(
        (
            b.dst_host.as_str(),
            b.service.as_str(),
            b.dport,
            b.direction
        ),
        ("pe-kv-contoso-prod", "kv-contoso-prod", 443, 'O')
    );
    // The E repeats its B's naming and decision, as the loopback fabric's E does.
    assert_eq!(
        (
            &b.src_host,
            &b.dst_host,
            &b.service,
            &b.rule,
            b.crosses_internet
        ),
        (
            &end.src_host,
            &end.dst_host,
            &end.service,
            &end.rule,
            end.crosses_internet
        )
    );
    assert!(b.time_ms <= end.time_ms, "{b:?} {end:?}");
    assert_eq!(
        (b.bytes_sent, b.bytes_received),
        (0, 0),
        "B has no counters"
    );
    // Wire bytes: at least the payload each way, plus at most an IP and TCP header per packet.
    assert!(
        end.bytes_sent >= request.len() as u64
            && end.bytes_sent <= request.len() as u64 + 80 * end.packets_sent,
        "{end:?}"
    );
    assert!(
        end.bytes_received >= response.len() as u64
            && end.bytes_received <= response.len() as u64 + 80 * end.packets_received,
        "{end:?}"
    );
    assert!(
        end.packets_sent >= 2 && end.packets_received >= 2,
        "{end:?}"
    );
    assert!(end.tuple().contains(",6,O,E,NX,"), "{}", end.tuple());
    assert!(of_this(FlowState::C).is_empty());

    // Denied (no route from the test vNet to prod): a D record, never an E.
    let denied = tokio::time::timeout(
        Duration::from_millis(1500),
        f.connect("pp-test-westus", addr),
    )
    .await;
    assert!(!matches!(denied, Ok(Ok(_))), "{denied:?}");
    let test_flows = |state| {
        h.flows(&FlowFilter {
            src_host: Some("pp-test-westus".into()),
            state: Some(state),
            ..Default::default()
        })
    };
    let d = h
        .flow_log()
        .wait_for(
            &FlowFilter {
                src_host: Some("pp-test-westus".into()),
                state: Some(FlowState::D),
                ..Default::default()
            },
            Duration::from_secs(5),
            |d| !d.is_empty(),
        )
        .await;
    assert!(
        d.iter().any(|r| r.dst_host == "pe-kv-contoso-prod"),
        "{d:#?}"
    );
    // Four conntrack sweeps of every router later, still no end or continuation of the denied
    // attempt.
    let since = h.flow_log().sweeps();
    assert!(!since.is_empty(), "no router reads conntrack");
    assert!(
        h.flow_log()
            .wait_sweeps(&since, 4, Duration::from_secs(5))
            .await
    );
    assert!(test_flows(FlowState::E).is_empty());
    assert!(test_flows(FlowState::C).is_empty());

    let metrics = h.metrics();
    for (host, direction, at_least) in [
        ("pp-prod-westus", "sent", request.len()),
        ("pp-prod-westus", "received", response.len()),
        ("pe-kv-contoso-prod", "received", request.len()),
        ("pe-kv-contoso-prod", "sent", response.len()),
    ] {
        let grew = bytes_metric(&metrics, host, direction)
            - bytes_metric(&metrics_before, host, direction);
        assert!(grew >= at_least as u64, "{host} {direction}: {metrics}");
    }
    assert_eq!(
        bytes_metric(&metrics, "pp-test-westus", "sent"),
        0,
        "{metrics}"
    );
    f.teardown().await.unwrap();
}

/// The vNet router translates a NAT gateway subnet's internet traffic to the gateway's public IP
/// (nftables `snat`), so a vault firewall's IP rule admits it and its 403 names that address; a
/// service endpoint subnet keeps its private source (`fabric_support` says what each host gets).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vault_firewall_sees_the_nat_gateway_public_ip() {
    if skip() {
        return;
    }
    assert_vault_firewall_sees_the_nat_gateway(FabricKind::Netns).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kernel_flow_log_continues_a_long_flow_with_deltas_that_add_up() {
    if skip() {
        return;
    }
    assert_long_flow_continues_then_ends(&landscape("contoso"), FabricKind::Netns).await;
}
