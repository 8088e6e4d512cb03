//! Established connections when the network changes, on both fabrics: a peering switched off and
//! a region in outage cut the connections whose path they withdraw (the next read on the same
//! connection ends, and a new connection is refused as before), while an NSG rule change leaves
//! established connections alone and affects new ones only (Azure's NSGs judge an established
//! connection by its flow record). Nothing sleeps: each step waits for the connection's own
//! end (a read returning end-of-stream or an error), bounded by a deadline.

use std::net::SocketAddr;
use std::time::Duration;

use crate::fabric_support::*;
use ppvnet::fabric::flowlog::{FlowFilter, FlowState};
use ppvnet::fabric::{Fabric, FabricKind};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const PROD_EAST: &str = "vnet-prod-eastus";
const PROD_WEST: &str = "vnet-prod-westus";

/// A connection from `host` to `addr` that has carried a line both ways.
async fn open(f: &Fabric, host: &str, addr: SocketAddr) -> TcpStream {
    let mut s = tokio::time::timeout(CONNECT_WAIT, f.connect(host, addr))
        .await
        .unwrap_or_else(|_| panic!("{host} -> {addr}: connect timed out"))
        .unwrap_or_else(|e| panic!("{host} -> {addr}: {e}"));
    assert_answers(&mut s, host).await;
    s
}

/// The connection still carries a line both ways.
async fn assert_answers(s: &mut TcpStream, host: &str) {
    let round = async {
        s.write_all(b"ping\n").await?;
        let mut buf = [0u8; 5];
        s.read_exact(&mut buf).await?;
        Ok::<_, std::io::Error>(buf)
    };
    let got = tokio::time::timeout(CONNECT_WAIT, round).await;
    assert!(
        matches!(&got, Ok(Ok(b)) if b == b"ping\n"),
        "the established connection from {host} should still work: {got:?}"
    );
}

/// Waits for the flow log to end a flow from `host` (`E`), as it does for a cut one. Loopback
/// only: the netns routers' reader ends a flow it has seen in a conntrack dump, and a flow cut
/// within its first dump interval is deleted from conntrack before any dump showed it.
async fn assert_flow_ended(f: &Fabric, host: &str) {
    let from = FlowFilter {
        src_host: Some(host.into()),
        state: Some(FlowState::E),
        ..Default::default()
    };
    let ended = f
        .handle()
        .flow_log()
        .wait_for(&from, Duration::from_secs(15), |r| !r.is_empty())
        .await;
    assert!(!ended.is_empty(), "no E record of the cut flow from {host}");
}

/// The connection was cut: its read ends (end of stream or an error) without any data, and a
/// request on it afterwards gets no answer.
async fn assert_cut(s: &mut TcpStream, host: &str) {
    let mut buf = [0u8; 16];
    let read = tokio::time::timeout(CONNECT_WAIT, s.read(&mut buf)).await;
    assert!(
        matches!(read, Ok(Ok(0)) | Ok(Err(_))),
        "the connection from {host} should have been cut: {read:?}"
    );
    let again = async {
        s.write_all(b"ping\n").await?;
        s.read(&mut buf).await
    };
    let again = tokio::time::timeout(CONNECT_WAIT, again).await;
    assert!(
        matches!(again, Ok(Ok(0)) | Ok(Err(_))),
        "a request on the cut connection from {host} should fail: {again:?}"
    );
}

async fn assert_changes_cut_paths_not_nsg_flows(kind: FabricKind) {
    let l = landscape("contoso");
    let f = fabric(&l, kind).await;
    let faces = echo_on_every_face(&f);
    let kv = private_endpoint(&faces, "pe-kv-contoso-prod");
    let h = f.handle();

    // A peering switched off cuts what crossed it, and only that.
    let mut across = open(&f, "pp-prod-eastus", kv).await;
    let mut inside = open(&f, "pp-prod-westus", kv).await;
    h.set_peering_between(PROD_EAST, PROD_WEST, false)
        .await
        .unwrap();
    assert_cut(&mut across, "pp-prod-eastus").await;
    if kind == FabricKind::Loopback {
        assert_flow_ended(&f, "pp-prod-eastus").await;
    }
    assert!(
        !echoes(&f, "pp-prod-eastus", kv).await,
        "new connections too"
    );
    assert_answers(&mut inside, "pp-prod-westus").await;
    h.set_peering_between(PROD_EAST, PROD_WEST, true)
        .await
        .unwrap();

    // A westus outage stops westus's hosts; eastus's connection over the peering stays.
    let mut across = open(&f, "pp-prod-eastus", kv).await;
    h.set_region_outage("westus", true).await.unwrap();
    assert_cut(&mut inside, "pp-prod-westus").await;
    if kind == FabricKind::Loopback {
        assert_flow_ended(&f, "pp-prod-westus").await;
    }
    assert!(
        !echoes(&f, "pp-prod-westus", kv).await,
        "new connections too"
    );
    assert_answers(&mut across, "pp-prod-eastus").await;
    h.set_region_outage("westus", false).await.unwrap();

    // Removing the rule that allowed the flow refuses new connections only.
    h.remove_nsg_rule("nsg-pe-prod", "AllowVnetHttpsInbound")
        .await
        .unwrap();
    assert!(
        !echoes(&f, "pp-prod-eastus", kv).await,
        "a new connection meets DenyAllOtherInbound"
    );
    assert_answers(&mut across, "pp-prod-eastus").await;
    drop(across);
    f.teardown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loopback_cuts_connections_over_a_withdrawn_path_but_not_over_an_nsg_change() {
    assert_changes_cut_paths_not_nsg_flows(FabricKind::Loopback).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn netns_cuts_connections_over_a_withdrawn_path_but_not_over_an_nsg_change() {
    if crate::require::skip_unless("netns", netns_unavailable()) {
        return;
    }
    assert_changes_cut_paths_not_nsg_flows(FabricKind::Netns).await;
}

/// On loopback the relay ends a cut flow in the flow log: an `E` record with what it carried, as
/// for any other end, so the flow's records add up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loopback_logs_the_end_of_a_cut_flow() {
    let l = landscape("contoso");
    let f = fabric(&l, FabricKind::Loopback).await;
    let faces = echo_on_every_face(&f);
    let kv = private_endpoint(&faces, "pe-kv-contoso-prod");
    let mut across = open(&f, "pp-prod-eastus", kv).await;
    f.handle()
        .set_peering_between(PROD_EAST, PROD_WEST, false)
        .await
        .unwrap();
    assert_cut(&mut across, "pp-prod-eastus").await;
    let from_east = FlowFilter {
        src_host: Some("pp-prod-eastus".into()),
        dst_host: Some("pe-kv-contoso-prod".into()),
        ..Default::default()
    };
    let ended =
        |r: &[ppvnet::fabric::flowlog::FlowRecord]| r.iter().any(|x| x.state == FlowState::E);
    let records = f
        .handle()
        .flow_log()
        .wait_for(&from_east, Duration::from_secs(10), ended)
        .await;
    let end = records
        .iter()
        .find(|r| r.state == FlowState::E)
        .unwrap_or_else(|| panic!("no E record: {records:?}"));
    assert_eq!(end.rule, "peering:vnet-prod-eastus->vnet-prod-westus");
    assert_eq!((end.bytes_sent, end.bytes_received), (5, 5), "{end:?}");
    f.teardown().await.unwrap();
}
