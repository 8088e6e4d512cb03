//! The loopback fabric end to end: flow log and metrics, the control router, HTTP clients
//! that originate from a host and resolve names by its private DNS view, and NAT gateway source
//! addresses as a vault firewall sees them.

use crate::fabric_support::*;
use ppvnet::fabric::flowlog::{FlowFilter, FlowState};
use ppvnet::fabric::{FabricKind, control_router};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flow_log_shows_the_prod_path_never_crossed_the_internet() {
    let l = landscape("contoso");
    let f = fabric(&l, FabricKind::Loopback).await;
    let faces = echo_on_every_face(&f);
    let kv = private_endpoint(&faces, "pe-kv-contoso-prod");
    let api = private_endpoint(&faces, "pe-cases-api-prod");
    for host in ["pp-prod-westus", "pp-prod-eastus"] {
        assert!(reaches(&f, host, kv).await);
        assert!(reaches(&f, host, api).await);
    }
    assert!(!echoes(&f, "internet", kv).await);
    let h = f.handle();
    // The relay records each connection's end as it closes: wait for every begun one to end.
    for host in ["pp-prod-westus", "pp-prod-eastus"] {
        let filter = FlowFilter {
            src_host: Some(host.into()),
            ..Default::default()
        };
        let all_ended = |r: &[ppvnet::fabric::flowlog::FlowRecord]| {
            let count = |s| r.iter().filter(|x| x.state == s).count();
            count(FlowState::E) >= count(FlowState::B)
        };
        h.flow_log()
            .wait_for(&filter, std::time::Duration::from_secs(10), all_ended)
            .await;
    }
    let mut prod = Vec::new();
    for host in ["pp-prod-westus", "pp-prod-eastus"] {
        prod.extend(h.flows(&FlowFilter {
            src_host: Some(host.into()),
            ..Default::default()
        }));
    }
    assert_eq!(prod.iter().filter(|r| r.state == FlowState::B).count(), 4);
    let ends: Vec<_> = prod.iter().filter(|r| r.state == FlowState::E).collect();
    assert_eq!(ends.len(), 4, "{prod:#?}");
    for r in &prod {
        assert!(!r.crosses_internet, "{r:?}");
        assert!(r.dst.octets()[0] == 10 && r.src.octets()[0] == 10, "{r:?}");
        assert_ne!(r.dst_host, "internet");
        assert_eq!((r.proto, r.dport, r.direction), (6, 443, 'O'));
    }
    for e in ends {
        assert_eq!((e.bytes_sent, e.bytes_received), (5, 5), "{e:?}");
        assert!(e.tuple().ends_with(",O,E,NX,1,5,1,5"), "{}", e.tuple());
    }
    let denied = h.flows(&FlowFilter {
        src_host: Some("internet".into()),
        state: Some(FlowState::D),
        ..Default::default()
    });
    assert_eq!(denied.len(), 1);
    assert_eq!(denied[0].rule, "no_route");
    assert_eq!(denied[0].src.to_string(), "203.0.113.10");
    let m = h.metrics();
    assert!(
        m.contains("ppvnet_fabric_flows_total{src_host=\"pp-prod-eastus\",decision=\"allow\"} 2"),
        "{m}"
    );
    assert!(
        m.contains("ppvnet_fabric_denies_total{src_host=\"internet\",reason=\"no_route\"} 1"),
        "{m}"
    );
    assert!(
        m.contains(
            "ppvnet_fabric_bytes_total{host=\"pe-kv-contoso-prod\",direction=\"received\"} 10"
        ),
        "{m}"
    );
    f.teardown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flow_log_is_written_as_json_lines() {
    let l = landscape("contoso");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("flows.jsonl");
    let f = ppvnet::fabric::Fabric::materialize_with(
        &l,
        FabricKind::Loopback,
        ppvnet::fabric::FabricOptions {
            drop_hold: std::time::Duration::from_millis(100),
            flow_log_file: Some(path.clone()),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let faces = echo_on_every_face(&f);
    assert!(
        reaches(
            &f,
            "pp-prod-westus",
            private_endpoint(&faces, "pe-kv-contoso-prod")
        )
        .await
    );
    // Records reach the file as they are logged: once the end is logged, the file has it.
    f.handle()
        .flow_log()
        .wait_for(
            &FlowFilter {
                state: Some(FlowState::E),
                ..Default::default()
            },
            std::time::Duration::from_secs(10),
            |r| !r.is_empty(),
        )
        .await;
    let text = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert_eq!(lines[0]["state"], "B");
    assert_eq!(lines[1]["state"], "E");
    assert_eq!(lines[1]["src_host"], "pp-prod-westus");
    f.teardown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_router_changes_the_running_fabric() {
    let l = landscape("contoso");
    let f = fabric(&l, FabricKind::Loopback).await;
    let faces = echo_on_every_face(&f);
    let kv = private_endpoint(&faces, "pe-kv-contoso-prod");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}/network", listener.local_addr().unwrap());
    let app = axum::Router::new().nest("/network", control_router(f.handle()));
    tokio::spawn(async move { axum::serve(listener, app).await });
    let c = reqwest::Client::builder().no_proxy().build().unwrap();

    let r = c
        .post(format!(
            "{base}/peerings/between/vnet-prod-westus/vnet-prod-eastus"
        ))
        .json(&serde_json::json!({"enabled": false}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let names: serde_json::Value = r.json().await.unwrap();
    assert_eq!(names["peerings"].as_array().unwrap().len(), 2);
    assert!(!echoes(&f, "pp-prod-eastus", kv).await);
    let d: serde_json::Value = get_json(
        &c,
        format!(
            "{base}/decide?from=pp-prod-eastus&service=kv-contoso-prod&face=pe-kv-contoso-prod"
        ),
    )
    .await;
    assert_eq!(d["decision"], "deny");
    assert_eq!(d["reason"]["kind"], "no_route");
    assert_eq!(d["behaviour"], "drop");
    let r = c
        .post(format!("{base}/peerings/prod-westus-to-eastus"))
        .json(&serde_json::json!({"enabled": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert!(
        !echoes(&f, "pp-prod-eastus", kv).await,
        "one direction is not enough"
    );
    c.post(format!("{base}/peerings/prod-eastus-to-westus"))
        .json(&serde_json::json!({"enabled": true}))
        .send()
        .await
        .unwrap();
    assert!(reaches(&f, "pp-prod-eastus", kv).await);

    // NSG rules: Azure's checks, then effect, then removal.
    let r = c.post(format!("{base}/nsgs/nsg-pe-prod/rules"))
        .json(&serde_json::json!({"name": "DenyEastus", "priority": 100, "direction": "Inbound", "access": "Deny", "sourceAddressPrefixes": ["10.20.0.0/16"]}))
        .send().await.unwrap();
    assert_eq!(r.status(), 400);
    let body: serde_json::Value = r.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Rules cannot have the same Priority and Direction"),
        "{body}"
    );
    let r = c.post(format!("{base}/nsgs/nsg-pe-prod/rules"))
        .json(&serde_json::json!({"name": "DenyEastus", "priority": 90, "direction": "Inbound", "access": "Deny"}))
        .send().await.unwrap();
    assert_eq!(r.status(), 400);
    let r = c.post(format!("{base}/nsgs/nsg-pe-prod/rules"))
        .json(&serde_json::json!({"name": "DenyEastus", "priority": 101, "direction": "Inbound", "access": "Deny", "sourceAddressPrefixes": ["10.20.0.0/16"]}))
        .send().await.unwrap();
    assert_eq!(r.status(), 201);
    assert!(
        reaches(&f, "pp-prod-eastus", kv).await,
        "priority 100 allow still wins"
    );
    let r = c
        .delete(format!(
            "{base}/nsgs/nsg-pe-prod/rules/AllowVnetHttpsInbound"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(!echoes(&f, "pp-prod-eastus", kv).await);
    assert!(
        !echoes(&f, "pp-prod-westus", kv).await,
        "DenyAllOtherInbound now applies to westus too"
    );
    let r = c
        .delete(format!("{base}/nsgs/nsg-pe-prod/rules/NoSuchRule"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let r = c
        .post(format!("{base}/nsgs/nsg-pe-prod/rules"))
        .body("{")
        .header("content-type", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);

    // Region outage and active region.
    let r: serde_json::Value = c
        .post(format!("{base}/regions/westus/outage"))
        .json(&serde_json::json!({"down": true}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        r["failovers"]
            .as_array()
            .unwrap()
            .contains(&serde_json::json!(["prod", "eastus"])),
        "{r}"
    );
    let e: serde_json::Value = get_json(&c, format!("{base}/environments/prod")).await;
    assert_eq!(
        e,
        serde_json::json!({"active_region": "eastus", "host": "pp-prod-eastus"})
    );
    let r = c
        .post(format!("{base}/environments/prod/active-region"))
        .json(&serde_json::json!({"region": "westus"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    c.post(format!("{base}/regions/westus/outage"))
        .json(&serde_json::json!({"down": false}))
        .send()
        .await
        .unwrap();
    let r = c
        .post(format!("{base}/environments/prod/active-region"))
        .json(&serde_json::json!({"region": "westus"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let r = c
        .post(format!("{base}/regions/mars/outage"))
        .json(&serde_json::json!({"down": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);

    let state: serde_json::Value = get_json(&c, format!("{base}/state")).await;
    let rules = state["nsgs"]["nsg-pe-prod"].as_array().unwrap();
    assert!(rules.iter().any(|r| r["name"] == "DenyEastus"));
    let res: serde_json::Value = get_json(
        &c,
        format!("{base}/resolve?from=pp-prod-eastus&name=kv-contoso-prod.vault.azure.net"),
    )
    .await;
    assert_eq!(res["face"], "pe-kv-contoso-prod");
    let flows: Vec<serde_json::Value> =
        get_json(&c, format!("{base}/flows?src_host=pp-prod-eastus&state=D")).await;
    assert!(!flows.is_empty());
    assert!(
        flows
            .iter()
            .all(|r| r["tuple"].as_str().unwrap().contains(",6,O,D,")),
        "{flows:?}"
    );
    let m = c.get(format!("{base}/metrics")).send().await.unwrap();
    assert!(
        m.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    assert!(
        m.text()
            .await
            .unwrap()
            .contains("ppvnet_fabric_denies_total{src_host=\"pp-prod-eastus\"")
    );
    f.teardown().await.unwrap();
}

/// A TLS service on every face of the prod vault that answers with the face it was reached on
/// and the client the peer directory names.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_client_of_a_host_resolves_by_its_dns_view_and_keeps_its_identity() {
    let l = landscape("contoso");
    let f = fabric(&l, FabricKind::Loopback).await;
    assert_clients_keep_identity_and_dns_view(&f).await;
    f.teardown().await.unwrap();
}

/// A vault firewall sees a NAT gateway's public IP for its subnets' requests, and the private
/// address over a service endpoint (`fabric_support` says what each host gets).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vault_firewall_sees_the_nat_gateway_public_ip() {
    assert_vault_firewall_sees_the_nat_gateway(FabricKind::Loopback).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_flow_is_logged_as_continuing_records_that_add_up() {
    assert_long_flow_continues_then_ends(&landscape("contoso"), FabricKind::Loopback).await;
}

/// GETs a JSON document from the control router.
async fn get_json<T: serde::de::DeserializeOwned>(c: &reqwest::Client, url: String) -> T {
    c.get(url).send().await.unwrap().json().await.unwrap()
}
