//! The nftables ruleset of a vNet router namespace: the oracle's NSG and egress rules, compiled.
//!
//! Every packet between two hosts crosses a router's `forward` hook (hosts have /32 addresses and
//! route everything through their vNet router), so:
//! - the outbound NSG of the source subnet is a chain jumped to by input interface,
//! - the inbound NSG of the destination subnet a chain jumped to by output interface,
//! - Azure rules become nft rules in priority order; an Allow `return`s to the forward chain (the
//!   next stage decides), a Deny drops; a rule with several prefixes becomes one nft rule per
//!   source × destination prefix (first match wins either way),
//! - new connections from the uplink (the internet) are dropped: private addresses are not
//!   reachable from the internet,
//! - a delegated subnet without NAT gateway may leave by the uplink only towards the
//!   `AzureActiveDirectory` addresses (and the Key Vaults, over a `Microsoft.KeyVault` service
//!   endpoint),
//! - a subnet with a NAT gateway leaves by the uplink from the gateway's public IP: `snat` in
//!   `postrouting`, after the `forward` chain has logged the connection with its private tuple
//!   (Azure's VNet flow logs also record the pre-NAT address), except towards the Key Vaults
//!   when the subnet has their service endpoint (the backbone keeps the private source).

use std::fmt::Write;

use ipnet::Ipv4Net;

use crate::fabric::nsg::{
    self, AZURE_PLATFORM_ADDRESS, PortRange, Prefix, Rule, RuleProtocol, ServiceTag, TagContext,
    private_ranges,
};
use crate::fabric::oracle::Oracle;
use crate::scenario::model::{Access, Direction};

/// The NFLOG group flow events go to (read by [`super::flows`]).
pub const LOG_GROUP: u16 = 1;
/// Conntrack mark of a connection whose `B` record this router logged: the flow log reports
/// the connection's end (with byte counts) from the same router, once ([`super::flows`]).
pub const BEGUN_MARK: u32 = 1;

/// A host attached to a vNet router: the router-side interface and the host's subnet.
pub struct Attachment<'a> {
    pub interface: &'a str,
    pub subnet: &'a str,
}

fn set(nets: &[Ipv4Net]) -> String {
    let merged = Ipv4Net::aggregate(&nets.to_vec());
    let items: Vec<String> = merged.iter().map(|n| n.to_string()).collect();
    format!("{{ {} }}", items.join(", "))
}

/// The nft condition for one address prefix on one side (`saddr`/`daddr`); `Some("")` matches
/// everything, `None` nothing (a tag that stands for no address here).
fn prefix_condition(prefix: &Prefix, side: &str, tags: &TagContext) -> Option<String> {
    match prefix {
        Prefix::Any => Some(String::new()),
        Prefix::Address(a) => Some(format!("ip {side} {a}")),
        Prefix::Net(n) => Some(format!("ip {side} {}", n.trunc())),
        Prefix::Tag(ServiceTag::VirtualNetwork) => (!tags.virtual_network.is_empty())
            .then(|| format!("ip {side} {}", set(&tags.virtual_network))),
        Prefix::Tag(ServiceTag::AzureLoadBalancer) => {
            Some(format!("ip {side} {AZURE_PLATFORM_ADDRESS}"))
        }
        Prefix::Tag(ServiceTag::AzureActiveDirectory) => (!tags.azure_active_directory.is_empty())
            .then(|| format!("ip {side} {}", set(&tags.azure_active_directory))),
        Prefix::Tag(ServiceTag::Internet) => {
            let mut not: Vec<Ipv4Net> = private_ranges().to_vec();
            not.extend(tags.virtual_network.iter().copied());
            not.push(Ipv4Net::from(AZURE_PLATFORM_ADDRESS));
            Some(format!("ip {side} != {}", set(&not)))
        }
    }
}

/// The nft condition for a rule's port ranges; `None` when they cover every port.
fn ports_condition(ranges: &[PortRange], field: &str) -> Option<String> {
    if ranges.contains(&PortRange::ALL) {
        return None;
    }
    let items: Vec<String> = ranges
        .iter()
        .map(|r| {
            if r.first == r.last {
                r.first.to_string()
            } else {
                format!("{}-{}", r.first, r.last)
            }
        })
        .collect();
    Some(format!("th {field} {{ {} }}", items.join(", ")))
}

/// The alternatives of one side of a rule: one condition per prefix, or the single empty
/// condition when a prefix matches everything.
fn side_conditions(prefixes: &[Prefix], side: &str, tags: &TagContext) -> Vec<String> {
    let conds: Vec<Option<String>> = prefixes
        .iter()
        .map(|p| prefix_condition(p, side, tags))
        .collect();
    if conds.iter().any(|c| c.as_deref() == Some("")) {
        vec![String::new()]
    } else {
        conds.into_iter().flatten().collect()
    }
}

/// The nft rules of one NSG direction (user rules and Azure's defaults, by priority).
pub fn nsg_chain(rules: &[Rule], direction: Direction, tags: &TagContext) -> Vec<String> {
    let mut out = Vec::new();
    for r in nsg::ordered_rules(rules, direction) {
        let proto = match r.protocol {
            RuleProtocol::Any => "",
            RuleProtocol::Tcp => "meta l4proto tcp",
            RuleProtocol::Udp => "meta l4proto udp",
            // ICMP, ESP and AH never carry the emulated TCP flows; such rules match none of them.
            RuleProtocol::Icmp | RuleProtocol::Esp | RuleProtocol::Ah => continue,
        };
        let sport = ports_condition(&r.source_ports, "sport");
        let dport = ports_condition(&r.destination_ports, "dport");
        let proto = if proto.is_empty() && (sport.is_some() || dport.is_some()) {
            "meta l4proto { tcp, udp }"
        } else {
            proto
        };
        let name: String = r.name.replace('"', "'").chars().take(100).collect();
        let verdict = match r.access {
            Access::Allow => "return".to_string(),
            Access::Deny => format!("log prefix \"D:{name}\" group {LOG_GROUP} drop"),
        };
        let srcs = side_conditions(&r.sources, "saddr", tags);
        let dsts = side_conditions(&r.destinations, "daddr", tags);
        for s in &srcs {
            for d in &dsts {
                let comment = format!("comment \"{name}\"");
                let parts: Vec<&str> = [
                    proto,
                    s,
                    d,
                    sport.as_deref().unwrap_or(""),
                    dport.as_deref().unwrap_or(""),
                    &verdict,
                    &comment,
                ]
                .into_iter()
                .filter(|p| !p.is_empty())
                .collect();
                out.push(parts.join(" "));
            }
        }
    }
    out
}

fn quoted(names: &[&str]) -> String {
    let q: Vec<String> = names.iter().map(|n| format!("\"{n}\"")).collect();
    format!("{{ {} }}", q.join(", "))
}

/// The full ruleset of a vNet router (replaces whatever the namespace had, atomically).
pub fn vnet_ruleset(
    oracle: &Oracle,
    vnet: &str,
    attachments: &[Attachment<'_>],
    uplink: &str,
) -> String {
    let tags = oracle.tags_for(vnet);
    let mut chains = String::new();
    let mut forward = vec![
        "ct state established,related accept".to_string(),
        "ct state invalid drop".to_string(),
        "meta nfproto ipv6 drop".to_string(),
        format!("iifname \"{uplink}\" log prefix \"D:no_route\" group {LOG_GROUP} drop"),
    ];
    let Some(info) = oracle.vnets().get(vnet) else {
        return "flush ruleset\n".into();
    };
    let mut no_egress = Vec::new();
    let mut inbound_jumps = Vec::new();
    let mut snat = Vec::new();
    let key_vaults = oracle.key_vault_addresses();
    for (i, (subnet, sinfo)) in info.subnets.iter().enumerate() {
        let ifaces: Vec<&str> = attachments
            .iter()
            .filter(|a| a.subnet == subnet)
            .map(|a| a.interface)
            .collect();
        if ifaces.is_empty() {
            continue;
        }
        if let Some(nsg) = &sinfo.nsg {
            let rules = oracle.nsg_rules(nsg);
            for (dir, name) in [
                (Direction::Outbound, format!("out_{i}")),
                (Direction::Inbound, format!("in_{i}")),
            ] {
                let _ = writeln!(chains, "  chain {name} {{ # {nsg} {dir:?} ({subnet})");
                for r in nsg_chain(rules, dir, &tags) {
                    let _ = writeln!(chains, "    {r}");
                }
                let _ = writeln!(chains, "  }}");
            }
            forward.push(format!("iifname {} jump out_{i}", quoted(&ifaces)));
            inbound_jumps.push(format!("oifname {} jump in_{i}", quoted(&ifaces)));
        }
        // The destinations this subnet's service endpoint carries off the internet path.
        let endpoint_dsts: &[Ipv4Net] = if sinfo.key_vault_endpoint {
            &key_vaults
        } else {
            &[]
        };
        match &sinfo.nat_gateway {
            Some(gw) => {
                if let Some(public) = oracle.nat_gateway_address(gw) {
                    let keep = if endpoint_dsts.is_empty() {
                        String::new()
                    } else {
                        format!(" ip daddr != {}", set(endpoint_dsts))
                    };
                    snat.push(format!(
                        "oifname \"{uplink}\" ip saddr {}{keep} snat ip to {public} comment \"{gw}\"",
                        sinfo.prefix.trunc()
                    ));
                }
            }
            None if sinfo.delegated => no_egress.push((ifaces, endpoint_dsts)),
            None => {}
        }
    }
    // Private destinations outside this vNet and its connected peers have no route (the peer
    // routes are more specific than the default route to the uplink).
    forward.push(format!(
        "oifname \"{uplink}\" ip daddr {} log prefix \"D:no_route\" group {LOG_GROUP} drop",
        set(&private_ranges())
    ));
    let entra = oracle.entra_addresses();
    for (ifaces, endpoint_dsts) in no_egress {
        let mut allowed = entra.clone();
        allowed.extend_from_slice(endpoint_dsts);
        let cond = if allowed.is_empty() {
            String::new()
        } else {
            format!(" ip daddr != {}", set(&allowed))
        };
        forward.push(format!(
            "oifname \"{uplink}\" iifname {}{cond} drop",
            quoted(&ifaces)
        ));
    }
    forward.extend(inbound_jumps);
    // Each allowed connection begins once, where it leaves the last router: to a host of this
    // vNet or to the internet (not towards a peer, whose router logs it). The mark tells this
    // router's conntrack reader which connections are its to report.
    let mut exits: Vec<&str> = attachments.iter().map(|a| a.interface).collect();
    exits.push(uplink);
    forward.push(format!(
        "ct state new oifname {} ct mark set {BEGUN_MARK:#x} log prefix \"B\" group {LOG_GROUP}",
        quoted(&exits)
    ));
    forward.push("accept".into());
    let mut out = String::from("flush ruleset\ntable inet ppv {\n");
    out.push_str(&chains);
    out.push_str("  chain forward {\n    type filter hook forward priority filter; policy drop;\n");
    for r in forward {
        let _ = writeln!(out, "    {r}");
    }
    out.push_str("  }\n");
    if !snat.is_empty() {
        out.push_str("  chain postrouting {\n    type nat hook postrouting priority srcnat; policy accept;\n");
        for r in snat {
            let _ = writeln!(out, "    {r}");
        }
        out.push_str("  }\n");
    }
    out.push_str("}\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_compile_in_priority_order_with_tags_expanded() {
        let tags = TagContext {
            virtual_network: vec![
                "10.10.0.0/16".parse().unwrap(),
                "10.20.0.0/16".parse().unwrap(),
            ],
            azure_active_directory: vec!["198.51.100.10/32".parse().unwrap()],
        };
        let declared: Vec<crate::scenario::model::NsgRule> = serde_json::from_value(serde_json::json!([
            {"name": "DenyAll", "priority": 4000, "direction": "Inbound", "access": "Deny"},
            {"name": "AllowVnetHttps", "priority": 100, "direction": "Inbound", "access": "Allow", "protocol": "Tcp",
             "sourceAddressPrefixes": ["VirtualNetwork", "203.0.113.7"], "destinationPortRanges": ["443", "8000-8080"]}
        ]))
        .unwrap();
        let rules: Vec<Rule> = declared
            .iter()
            .map(|r| Rule::try_from(r).unwrap())
            .collect();
        let chain = nsg_chain(&rules, Direction::Inbound, &tags);
        assert_eq!(
            chain[0],
            "meta l4proto tcp ip saddr { 10.10.0.0/16, 10.20.0.0/16 } th dport { 443, 8000-8080 } return comment \"AllowVnetHttps\""
        );
        assert_eq!(
            chain[1],
            "meta l4proto tcp ip saddr 203.0.113.7 th dport { 443, 8000-8080 } return comment \"AllowVnetHttps\""
        );
        assert_eq!(
            chain[2],
            "log prefix \"D:DenyAll\" group 1 drop comment \"DenyAll\""
        );
        // Azure's defaults follow (unreachable here, but present as in Azure).
        assert!(chain[3].contains("AllowVnetInBound"));
        assert!(
            chain
                .last()
                .unwrap()
                .ends_with("drop comment \"DenyAllInBound\"")
        );
        let out = nsg_chain(&[], Direction::Outbound, &tags);
        assert_eq!(
            out[1],
            "ip daddr != { 10.0.0.0/8, 168.63.129.16/32, 172.16.0.0/12, 192.168.0.0/16 } return comment \"AllowInternetOutBound\""
        );
    }
}

#[cfg(test)]
mod nat_tests {
    use super::*;
    use crate::fabric::oracle::test_landscapes::{nat_gateway_yaml, oracle};

    fn attach<'a>(subnets: &[(&'a str, &'a str)]) -> Vec<Attachment<'a>> {
        subnets
            .iter()
            .map(|(interface, subnet)| Attachment { interface, subnet })
            .collect()
    }

    #[test]
    fn nat_gateway_subnets_leave_the_uplink_from_its_public_ip_except_over_a_service_endpoint() {
        let o = oracle(&nat_gateway_yaml());
        let rules = vnet_ruleset(
            &o,
            "vnet-prod-westus",
            &attach(&[("h1", "snet-pp"), ("h2", "snet-app")]),
            "uplink",
        );
        assert!(
            rules.contains("type nat hook postrouting priority srcnat; policy accept;"),
            "{rules}"
        );
        assert!(
            rules.contains(
                "oifname \"uplink\" ip saddr 10.10.1.0/24 snat ip to 203.0.113.100 comment \"natgw-prod-westus\""
            ),
            "{rules}"
        );
        // The vaults' public addresses: kv-public 198.51.100.20, kv-firewall .21.
        assert!(
            rules.contains(
                "oifname \"uplink\" ip saddr 10.10.3.0/24 ip daddr != { 198.51.100.20/31 } snat ip to 203.0.113.100"
            ),
            "{rules}"
        );
        // No gateway, no translation: the eastus subnet has no internet egress at all.
        let eastus = vnet_ruleset(
            &o,
            "vnet-prod-eastus",
            &attach(&[("h3", "snet-pp")]),
            "uplink",
        );
        assert!(!eastus.contains("snat"), "{eastus}");
        assert!(
            eastus.contains(
                "oifname \"uplink\" iifname { \"h3\" } ip daddr != { 198.51.100.10/32 } drop"
            ),
            "{eastus}"
        );
    }

    #[test]
    fn a_delegated_subnet_without_nat_gateway_reaches_the_vaults_over_its_service_endpoint() {
        let text = nat_gateway_yaml().replace(
            "{ vnet: vnet-prod-westus, subnet: snet-app }",
            "{ vnet: vnet-prod-eastus, subnet: snet-pp }",
        );
        let o = oracle(&text);
        let eastus = vnet_ruleset(
            &o,
            "vnet-prod-eastus",
            &attach(&[("h3", "snet-pp")]),
            "uplink",
        );
        assert!(
            eastus.contains(
                "oifname \"uplink\" iifname { \"h3\" } ip daddr != { 198.51.100.10/32, 198.51.100.20/31 } drop"
            ),
            "{eastus}"
        );
    }
}
