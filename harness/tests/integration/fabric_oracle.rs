//! The oracle's answers for the repository's landscapes, rule by rule (what the fabrics are
//! measured against). Facts relied on: Power Platform's vNet support docs
//! (MicrosoftDocs/power-platform: `power-platform/admin/vnet-support-overview.md`: peering for
//! failover, no internet from delegated subnets without a NAT gateway), Azure NSG default rules
//! and service tags, Azure private DNS zone behaviour.

use crate::fabric_support::landscape;
use ppvnet::fabric::Face;
use ppvnet::fabric::oracle::{Decision, Denial, DenyReason, Oracle, Resolution, Route};

fn oracle(name: &str) -> Oracle {
    Oracle::new(&landscape(name))
}

fn pe(n: &str) -> Face {
    Face::PrivateEndpoint(n.into())
}

fn reason(d: Decision) -> DenyReason {
    match d {
        Decision::Deny { reason, .. } => reason,
        other => panic!("expected a denial, got {other:?}"),
    }
}

fn route(d: Decision) -> Route {
    match d {
        Decision::Allow { route, .. } => route,
        other => panic!("expected an allow, got {other:?}"),
    }
}

#[test]
fn contoso_prod_delegated_subnets_reach_both_prod_endpoints_and_nothing_else_private() {
    let o = oracle("contoso");
    for host in ["pp-prod-westus", "pp-prod-eastus"] {
        for (svc, p) in [
            ("kv-contoso-prod", "pe-kv-contoso-prod"),
            ("cases-api-prod", "pe-cases-api-prod"),
        ] {
            assert!(
                o.decide(host, svc, &pe(p), 443).unwrap().connects(),
                "{host} -> {p}"
            );
        }
        for (svc, p) in [
            ("kv-contoso-test", "pe-kv-contoso-test"),
            ("cases-api-test", "pe-cases-api-test"),
        ] {
            assert!(
                matches!(
                    reason(o.decide(host, svc, &pe(p), 443).unwrap()),
                    DenyReason::NoRoute { .. }
                ),
                "{host} -> {p}"
            );
        }
    }
    assert_eq!(
        route(
            o.decide(
                "pp-prod-eastus",
                "kv-contoso-prod",
                &pe("pe-kv-contoso-prod"),
                443
            )
            .unwrap()
        ),
        Route::Peering {
            from: "vnet-prod-eastus".into(),
            to: "vnet-prod-westus".into()
        }
    );
}

#[test]
fn contoso_internet_dev_and_test_cannot_reach_prod_private_endpoints() {
    let o = oracle("contoso");
    for host in [
        "internet",
        "pp-dev-westus",
        "pp-dev-eastus",
        "pp-test-westus",
        "pp-test-eastus",
    ] {
        let d = o
            .decide(host, "kv-contoso-prod", &pe("pe-kv-contoso-prod"), 443)
            .unwrap();
        let r = reason(d.clone());
        assert!(matches!(r, DenyReason::NoRoute { .. }), "{host}: {r:?}");
        assert!(matches!(
            d,
            Decision::Deny {
                behaviour: Denial::Drop,
                ..
            }
        ));
    }
}

#[test]
fn public_face_of_a_vault_with_public_access_disabled_connects_and_the_vault_refuses() {
    let o = oracle("contoso");
    match o
        .decide("internet", "kv-contoso-prod", &Face::Public, 443)
        .unwrap()
    {
        Decision::Allow {
            route: Route::Internet,
            service_refusal: Some(r),
        } => {
            assert!(r.contains("ForbiddenByConnection"), "{r}")
        }
        other => panic!("{other:?}"),
    }
    match o
        .decide("internet", "kv-contoso-dev", &Face::Public, 443)
        .unwrap()
    {
        Decision::Allow {
            service_refusal: None,
            ..
        } => {}
        other => panic!("{other:?}"),
    }
}

#[test]
fn delegated_subnet_without_nat_has_no_internet_but_reaches_entra_by_service_tag() {
    let o = oracle("contoso");
    assert!(matches!(
        reason(
            o.decide("pp-prod-westus", "kv-contoso-dev", &Face::Public, 443)
                .unwrap()
        ),
        DenyReason::NoInternetEgress { .. }
    ));
    assert_eq!(
        route(
            o.decide("pp-prod-westus", "entra", &Face::Public, 443)
                .unwrap()
        ),
        Route::ServiceTag {
            tag: "AzureActiveDirectory".into()
        }
    );
    // Without vNet support, dev egresses from the Power Platform service: the internet.
    assert_eq!(
        route(
            o.decide("pp-dev-westus", "kv-contoso-dev", &Face::Public, 443)
                .unwrap()
        ),
        Route::Internet
    );
}

#[test]
fn nat_gateway_opens_internet_egress_and_an_nsg_can_deny_the_entra_tag() {
    let o = oracle("nat-gateway");
    assert_eq!(
        route(
            o.decide("pp-prod-westus", "kv-public", &Face::Public, 443)
                .unwrap()
        ),
        Route::NatGateway {
            name: "natgw-prod-westus".into()
        }
    );
    assert!(matches!(
        reason(
            o.decide("pp-prod-eastus", "kv-public", &Face::Public, 443)
                .unwrap()
        ),
        DenyReason::NoInternetEgress { .. }
    ));
    assert!(
        o.decide("pp-prod-eastus", "entra", &Face::Public, 443)
            .unwrap()
            .connects()
    );
    match reason(
        o.decide("pp-test-westus", "entra", &Face::Public, 443)
            .unwrap(),
    ) {
        DenyReason::NsgOutbound {
            nsg,
            rule,
            priority,
        } => {
            assert_eq!(
                (nsg.as_str(), rule.as_str(), priority),
                ("nsg-pp-test", "DenyEntraOutbound", 100)
            )
        }
        other => panic!("{other:?}"),
    }
    // The same NSG leaves other internet egress alone (AllowInternetOutBound, 65001).
    assert!(
        o.decide("pp-test-westus", "kv-public", &Face::Public, 443)
            .unwrap()
            .connects()
    );
}

#[test]
fn peering_needs_both_directions() {
    let o = oracle("no-peering");
    assert!(
        o.connected("vnet-prod-eastus", "vnet-prod-westus")
            .is_none()
    );
    let r = reason(
        o.decide(
            "pp-prod-eastus",
            "kv-contoso-prod",
            &pe("pe-kv-contoso-prod"),
            443,
        )
        .unwrap(),
    );
    assert!(matches!(r, DenyReason::NoRoute { .. }), "{r:?}");
    assert!(
        o.decide(
            "pp-prod-westus",
            "kv-contoso-prod",
            &pe("pe-kv-contoso-prod"),
            443
        )
        .unwrap()
        .connects()
    );
}

#[test]
fn nsg_on_the_private_endpoint_subnet_denies_by_priority() {
    let o = oracle("nsg-deny-pe");
    let kv = pe("pe-kv-contoso-prod");
    assert!(
        o.decide("pp-prod-westus", "kv-contoso-prod", &kv, 443)
            .unwrap()
            .connects()
    );
    for host in ["pp-prod-eastus", "jumpbox"] {
        match reason(o.decide(host, "kv-contoso-prod", &kv, 443).unwrap()) {
            DenyReason::NsgInbound { rule, priority, .. } => {
                assert_eq!((rule.as_str(), priority), ("DenyVnetInbound", 200))
            }
            other => panic!("{host}: {other:?}"),
        }
    }
    // Port 80 from westus is not covered by the 443 allow: the deny at 200 applies.
    assert!(
        !o.decide("pp-prod-westus", "kv-contoso-prod", &kv, 80)
            .unwrap()
            .connects()
    );
    // An internet host declared by the scenario behaves like the internet.
    assert!(matches!(
        reason(
            o.decide("on-premises", "kv-contoso-prod", &kv, 443)
                .unwrap()
        ),
        DenyReason::NoRoute { .. }
    ));
}

#[test]
fn region_outage_takes_power_platform_hosts_down_and_fails_the_environment_over() {
    let mut o = oracle("contoso");
    assert_eq!(o.environment_host("prod").unwrap(), "pp-prod-westus");
    let moved = o.set_region_outage("westus", true).unwrap();
    assert!(
        moved.contains(&("prod".to_string(), "eastus".to_string())),
        "{moved:?}"
    );
    assert_eq!(o.environment_host("prod").unwrap(), "pp-prod-eastus");
    let d = o
        .decide(
            "pp-prod-westus",
            "kv-contoso-prod",
            &pe("pe-kv-contoso-prod"),
            443,
        )
        .unwrap();
    assert!(matches!(
        d,
        Decision::Deny {
            behaviour: Denial::Refuse,
            reason: DenyReason::SourceDown { .. }
        }
    ));
    // Azure resources in the region stay up: eastus still reaches the westus endpoint.
    assert!(
        o.decide(
            "pp-prod-eastus",
            "kv-contoso-prod",
            &pe("pe-kv-contoso-prod"),
            443
        )
        .unwrap()
        .connects()
    );
    assert!(o.set_active_region("prod", "westus").is_err());
    o.set_region_outage("westus", false).unwrap();
    o.set_active_region("prod", "westus").unwrap();
    assert_eq!(o.environment_host("prod").unwrap(), "pp-prod-westus");
}

#[test]
fn runtime_nsg_rule_changes_apply_and_are_checked_like_azure() {
    let mut o = oracle("contoso");
    let kv = pe("pe-kv-contoso-prod");
    let rule: ppvnet::scenario::model::NsgRule = serde_json::from_value(serde_json::json!({
        "name": "DenyEastus", "priority": 90, "direction": "Inbound", "access": "Deny",
        "sourceAddressPrefixes": ["10.20.0.0/16"]
    }))
    .unwrap();
    let err = o.add_nsg_rule("nsg-pe-prod", rule.clone()).unwrap_err();
    assert!(
        err.to_string()
            .contains("Allowed values are from 100 to 4096"),
        "{err}"
    );
    let rule = ppvnet::scenario::model::NsgRule {
        priority: 100,
        ..rule
    };
    let err = o.add_nsg_rule("nsg-pe-prod", rule.clone()).unwrap_err();
    assert!(
        err.to_string()
            .contains("conflicts with rule AllowVnetHttpsInbound"),
        "{err}"
    );
    let rule = ppvnet::scenario::model::NsgRule {
        priority: 101,
        ..rule
    };
    // Priority 101 is after AllowVnetHttpsInbound (100): no effect on HTTPS.
    o.add_nsg_rule("nsg-pe-prod", rule.clone()).unwrap();
    assert!(
        o.decide("pp-prod-eastus", "kv-contoso-prod", &kv, 443)
            .unwrap()
            .connects()
    );
    o.remove_nsg_rule("nsg-pe-prod", "DenyEastus").unwrap();
    o.remove_nsg_rule("nsg-pe-prod", "AllowVnetHttpsInbound")
        .unwrap();
    o.add_nsg_rule("nsg-pe-prod", rule).unwrap();
    assert!(matches!(
        reason(
            o.decide("pp-prod-eastus", "kv-contoso-prod", &kv, 443)
                .unwrap()
        ),
        DenyReason::NsgInbound { .. }
    ));
    // westus now falls through to DenyAllOtherInbound (4000).
    match reason(
        o.decide("pp-prod-westus", "kv-contoso-prod", &kv, 443)
            .unwrap(),
    ) {
        DenyReason::NsgInbound { rule, .. } => assert_eq!(rule, "DenyAllOtherInbound"),
        other => panic!("{other:?}"),
    }
}

fn address(r: Resolution) -> (String, std::net::Ipv4Addr) {
    match r {
        Resolution::Address { address, face, .. } => (format!("{face:?}"), address),
        other => panic!("{other:?}"),
    }
}

#[test]
fn private_dns_resolves_the_vault_to_its_private_endpoint_inside_linked_vnets_only() {
    let o = oracle("contoso");
    let pe_addr = o.hosts()["pe-kv-contoso-prod"].address;
    for host in ["pp-prod-westus", "pp-prod-eastus"] {
        let r = o
            .resolve_from(host, "kv-contoso-prod.vault.azure.net")
            .unwrap();
        match &r {
            Resolution::Address { cnames, .. } => {
                assert_eq!(
                    cnames,
                    &vec!["kv-contoso-prod.privatelink.vaultcore.azure.net".to_string()]
                )
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(address(r).1, pe_addr, "{host}");
    }
    let public = o.services()["kv-contoso-prod"].public_address;
    assert_eq!(
        address(
            o.resolve_from("internet", "kv-contoso-prod.vault.azure.net")
                .unwrap()
        )
        .1,
        public
    );
    assert_eq!(
        address(
            o.resolve_from("pp-dev-westus", "KV-CONTOSO-PROD.vault.azure.net.")
                .unwrap()
        )
        .1,
        public
    );
    // The test vNets link a privatelink.vaultcore.azure.net zone without a prod record: NXDOMAIN.
    assert!(matches!(
        o.resolve_from("pp-test-westus", "kv-contoso-prod.vault.azure.net")
            .unwrap(),
        Resolution::NxDomain { .. }
    ));
    // A vault without private endpoints has no privatelink CNAME: public from everywhere.
    let dev = o.services()["kv-contoso-dev"].public_address;
    assert_eq!(
        address(
            o.resolve_from("pp-test-westus", "kv-contoso-dev.vault.azure.net")
                .unwrap()
        )
        .1,
        dev
    );
    assert_eq!(
        address(
            o.resolve_from("pp-prod-eastus", "cases-api-prod.azurewebsites.net")
                .unwrap()
        )
        .1,
        o.hosts()["pe-cases-api-prod"].address
    );
    assert_eq!(
        address(
            o.resolve_from("pp-prod-eastus", "login.microsoftonline.com")
                .unwrap()
        )
        .1,
        o.services()["entra"].public_address
    );
    assert!(matches!(
        o.resolve_from("internet", "example.org").unwrap(),
        Resolution::NxDomain { .. }
    ));
}

#[test]
fn a_private_endpoint_reaching_its_own_address_bypasses_its_nsg() {
    let o = oracle("nsg-deny-pe");
    let d = o
        .decide(
            "pe-kv-contoso-prod",
            "kv-contoso-prod",
            &pe("pe-kv-contoso-prod"),
            443,
        )
        .unwrap();
    assert_eq!(route(d), Route::Local);
}

#[test]
fn the_consent_host_resolves_to_the_power_platform_service_everywhere() {
    let o = oracle("contoso");
    let pp = &o.services()["powerplatform"];
    for host in ["internet", "pp-prod-westus"] {
        match o
            .resolve_from(host, "Global.Consent.Azure-APIM.net.")
            .unwrap()
        {
            Resolution::Address {
                cnames,
                address,
                service,
                face,
            } => {
                assert_eq!(cnames, vec![pp.host_name.clone()]);
                assert_eq!(address, pp.public_address);
                assert_eq!(service, "powerplatform");
                assert_eq!(face, Face::Public);
            }
            other => panic!("{host}: {other:?}"),
        }
    }
}
