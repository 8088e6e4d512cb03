//! The netns fabric beyond the reachability matrix: Azure DNS inside the vNets through libc,
//! `exec`, HTTP clients originating in a host namespace, region outage as a refused connect,
//! runtime NSG rules in nftables, stale namespace cleanup and complete teardown.
//! Every test prints why it skips when it cannot run (not root, no `ip netns`, no `nft`).

mod fabric_support;

use std::path::Path;

use fabric_support::*;
use ppvnet::fabric::{Fabric, FabricKind, Face};

fn skip(test: &str) -> bool {
    match netns_unavailable() {
        Some(why) => {
            eprintln!("SKIP {test}: {why}");
            true
        }
        None => false,
    }
}

/// A ready file as `ppvnet up` writes it, with the fields `exec` reads.
fn ready_file(f: &Fabric, dir: &Path) -> std::path::PathBuf {
    let hosts: serde_json::Map<String, serde_json::Value> = f
        .hosts()
        .into_iter()
        .map(|(n, h)| {
            (
                n,
                serde_json::json!({"address": h.address, "namespace": h.namespace}),
            )
        })
        .collect();
    let path = dir.join("ready.json");
    let ready = serde_json::json!({
        "ca_cert": dir.join("ca.pem"),
        "entra": {"authority_host": "https://login.microsoftonline.com"},
        "hosts": hosts,
        "control_url": "http://127.0.0.1:1",
    });
    std::fs::write(&path, ready.to_string()).unwrap();
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_runs_in_the_host_namespace_with_the_vnet_dns_and_azure_environment() {
    if skip("exec") {
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
    if skip("http client") {
        return;
    }
    let l = landscape("contoso");
    let f = fabric(&l, FabricKind::Netns).await;
    assert_clients_keep_identity_and_dns_view(&f).await;
    f.teardown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn region_outage_refuses_connections_from_the_region_and_nsg_rules_reach_nftables() {
    if skip("outage and nsg") {
        return;
    }
    let l = landscape("contoso");
    let f = fabric(&l, FabricKind::Netns).await;
    let faces = echo_on_every_face(&f);
    let kv = faces
        .iter()
        .find(|(_, face, _)| *face == Face::PrivateEndpoint("pe-kv-contoso-prod".into()))
        .unwrap()
        .2;
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
        echoes(&f, "pp-prod-eastus", kv).await,
        "Azure resources of the region stay up"
    );
    h.set_region_outage("westus", false).await.unwrap();
    assert!(echoes(&f, "pp-prod-westus", kv).await);

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
    assert!(echoes(&f, "pp-prod-westus", kv).await);
    h.remove_nsg_rule("nsg-pe-prod", "DenyEastus")
        .await
        .unwrap();
    assert!(echoes(&f, "pp-prod-eastus", kv).await);
    f.teardown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_namespaces_are_cleaned_at_start_and_teardown_leaves_nothing() {
    if skip("cleanup") {
        return;
    }
    // A pid above the kernel's maximum (4194304) never belongs to a live process.
    let stale = "ppv-4194399-0-pp-prod-westus";
    let out = std::process::Command::new("ip")
        .args(["netns", "add", stale])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::create_dir_all(format!("/etc/netns/{stale}")).unwrap();
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
    assert!(
        names
            .iter()
            .all(|n| Path::new("/run/netns").join(n).exists())
    );
    let prefix = names[0]
        .rsplit_once("-internet")
        .map(|(p, _)| p.to_string());
    f.teardown().await.unwrap();
    for n in &names {
        assert!(!Path::new("/run/netns").join(n).exists(), "{n} left behind");
        assert!(
            !Path::new("/etc/netns").join(n).exists(),
            "/etc/netns/{n} left behind"
        );
    }
    if let Some(p) = prefix {
        let left: Vec<_> = std::fs::read_dir("/run/netns")
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with(&p))
            .collect();
        assert!(left.is_empty(), "{left:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kernel_flow_log_shows_the_prod_path_never_crossed_the_internet() {
    use ppvnet::fabric::flowlog::{FlowFilter, FlowState};
    if skip("kernel flow log") {
        return;
    }
    let l = landscape("contoso");
    let f = fabric(&l, FabricKind::Netns).await;
    let faces = echo_on_every_face(&f);
    let addr = |n: &str| {
        faces
            .iter()
            .find(|(_, face, _)| *face == Face::PrivateEndpoint(n.into()))
            .unwrap()
            .2
    };
    for host in ["pp-prod-westus", "pp-prod-eastus"] {
        assert!(echoes(&f, host, addr("pe-kv-contoso-prod")).await);
        assert!(echoes(&f, host, addr("pe-cases-api-prod")).await);
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
    for _ in 0..50 {
        if prod(&h).len() >= 4
            && !h
                .flows(&FlowFilter {
                    state: Some(FlowState::D),
                    ..Default::default()
                })
                .is_empty()
        {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
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
    if skip("drop") {
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
