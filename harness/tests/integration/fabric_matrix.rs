//! Reachability matrices: for every landscape, every host × service face pair's real TCP outcome
//! (a line echo on each face) equals the oracle's decision, in the loopback and netns fabrics;
//! runtime control changes the matrix.

use crate::fabric_support::*;
use crate::require::skip_unless;
use ppvnet::fabric::FabricKind;

async fn matrix_matches(name: &str, kind: FabricKind) {
    if kind == FabricKind::Netns && skip_unless("netns", netns_unavailable()) {
        return;
    }
    let l = landscape(name);
    let f = fabric(&l, kind).await;
    let faces = echo_on_every_face(&f);
    let (expected, actual) = matrices(&f, &faces).await;
    f.teardown().await.unwrap();
    assert_same(&expected, &actual);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loopback_matrix_contoso() {
    matrix_matches("contoso", FabricKind::Loopback).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loopback_matrix_no_peering() {
    matrix_matches("no-peering", FabricKind::Loopback).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loopback_matrix_nsg_deny_pe() {
    matrix_matches("nsg-deny-pe", FabricKind::Loopback).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loopback_matrix_nat_gateway() {
    matrix_matches("nat-gateway", FabricKind::Loopback).await;
}

/// Peering off → the eastus delegated subnet loses the westus private endpoints (and only them);
/// peering back on restores them. Checked against both the oracle and real connections.
async fn peering_off_changes_matrix(kind: FabricKind) {
    if kind == FabricKind::Netns && skip_unless("netns", netns_unavailable()) {
        return;
    }
    let l = landscape("contoso");
    let f = fabric(&l, kind).await;
    let faces = echo_on_every_face(&f);
    let h = f.handle();
    let pe = |n: &str| private_endpoint(&faces, n);
    let kv = pe("pe-kv-contoso-prod");
    let api = pe("pe-cases-api-prod");
    assert!(reaches(&f, "pp-prod-eastus", kv).await);
    assert!(reaches(&f, "pp-prod-eastus", api).await);

    h.set_peering("prod-westus-to-eastus", false).await.unwrap();
    let (expected, actual) = matrices(&f, &faces).await;
    assert_same(&expected, &actual);
    assert!(
        !echoes(&f, "pp-prod-eastus", kv).await,
        "eastus still reaches the westus vault endpoint"
    );
    assert!(!echoes(&f, "pp-prod-eastus", api).await);
    assert!(
        reaches(&f, "pp-prod-westus", kv).await,
        "westus must keep its own endpoint"
    );

    h.set_peering("prod-westus-to-eastus", true).await.unwrap();
    assert!(reaches(&f, "pp-prod-eastus", kv).await);
    f.teardown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loopback_peering_off_cuts_eastus_from_westus_endpoints() {
    peering_off_changes_matrix(FabricKind::Loopback).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn netns_matrix_contoso() {
    matrix_matches("contoso", FabricKind::Netns).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn netns_matrix_no_peering() {
    matrix_matches("no-peering", FabricKind::Netns).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn netns_matrix_nsg_deny_pe() {
    matrix_matches("nsg-deny-pe", FabricKind::Netns).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn netns_matrix_nat_gateway() {
    matrix_matches("nat-gateway", FabricKind::Netns).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn netns_peering_off_cuts_eastus_from_westus_endpoints() {
    peering_off_changes_matrix(FabricKind::Netns).await;
}
