//! Network security group evaluation, as Azure does it.
//!
//! Azure evaluates the rules of one direction by priority, lowest number first, and stops at the
//! first rule that matches; the default rules (priorities 65000–65500) close every list and cannot
//! be removed. Service tags are resolved per evaluation: `VirtualNetwork` is the subnet's vNet
//! address space plus the spaces of connected peerings, `AzureLoadBalancer` is the platform
//! address 168.63.129.16, `AzureActiveDirectory` the Entra public endpoints, and `Internet`
//! every address outside `VirtualNetwork` and the private ranges.
//! Source: Azure "Network security groups" and "Virtual network service tags" docs.

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

use crate::scenario::model::{Access, Direction, NsgRule};
use crate::scenario::validate::parse_port_range;

/// Azure's platform address (DNS, health probes), behind the `AzureLoadBalancer` tag.
pub const AZURE_PLATFORM_ADDRESS: Ipv4Addr = Ipv4Addr::new(168, 63, 129, 16);

/// The address ranges a service tag stands for in one evaluation.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TagContext {
    /// The vNet's address space and the spaces of its connected peerings.
    pub virtual_network: Vec<Ipv4Net>,
    /// Entra's public endpoints.
    pub azure_active_directory: Vec<Ipv4Net>,
}

/// One TCP or UDP flow as an NSG sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Flow {
    pub protocol: Protocol,
    pub source: Ipv4Addr,
    pub source_port: u16,
    pub destination: Ipv4Addr,
    pub destination_port: u16,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub enum Protocol {
    Tcp,
    Udp,
}

/// The rule that decided a flow.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct RuleVerdict {
    pub access: Access,
    pub rule: String,
    pub priority: u32,
}

/// Azure's default security rules of a direction (they close every rule list).
pub fn default_rules(direction: Direction) -> Vec<NsgRule> {
    let rule = |name: &str, priority, access, src: &str, dst: &str| NsgRule {
        name: name.into(),
        priority,
        direction,
        access,
        protocol: "*".into(),
        source_address_prefixes: vec![src.into()],
        source_port_ranges: vec!["*".into()],
        destination_address_prefixes: vec![dst.into()],
        destination_port_ranges: vec!["*".into()],
    };
    match direction {
        Direction::Inbound => vec![
            rule(
                "AllowVnetInBound",
                65000,
                Access::Allow,
                "VirtualNetwork",
                "VirtualNetwork",
            ),
            rule(
                "AllowAzureLoadBalancerInBound",
                65001,
                Access::Allow,
                "AzureLoadBalancer",
                "*",
            ),
            rule("DenyAllInBound", 65500, Access::Deny, "*", "*"),
        ],
        Direction::Outbound => vec![
            rule(
                "AllowVnetOutBound",
                65000,
                Access::Allow,
                "VirtualNetwork",
                "VirtualNetwork",
            ),
            rule(
                "AllowInternetOutBound",
                65001,
                Access::Allow,
                "*",
                "Internet",
            ),
            rule("DenyAllOutBound", 65500, Access::Deny, "*", "*"),
        ],
    }
}

/// The RFC 1918 ranges: never part of the `Internet` tag.
pub fn private_ranges() -> [Ipv4Net; 3] {
    [
        Ipv4Net::new(Ipv4Addr::new(10, 0, 0, 0), 8).unwrap_or_default(),
        Ipv4Net::new(Ipv4Addr::new(172, 16, 0, 0), 12).unwrap_or_default(),
        Ipv4Net::new(Ipv4Addr::new(192, 168, 0, 0), 16).unwrap_or_default(),
    ]
}

impl TagContext {
    /// Whether `ip` is covered by an address prefix of a rule (CIDR, address, `*` or a tag).
    /// Unknown prefixes match nothing (validation rejects them before a landscape runs).
    pub fn matches(&self, prefix: &str, ip: Ipv4Addr) -> bool {
        match prefix {
            "*" => true,
            "VirtualNetwork" => self.virtual_network.iter().any(|n| n.contains(&ip)),
            "AzureLoadBalancer" => ip == AZURE_PLATFORM_ADDRESS,
            "AzureActiveDirectory" => self.azure_active_directory.iter().any(|n| n.contains(&ip)),
            "Internet" => {
                !self.virtual_network.iter().any(|n| n.contains(&ip))
                    && !private_ranges().iter().any(|n| n.contains(&ip))
                    && ip != AZURE_PLATFORM_ADDRESS
            }
            other => match other.parse::<Ipv4Net>() {
                Ok(net) => net.contains(&ip),
                Err(_) => other.parse::<Ipv4Addr>().is_ok_and(|a| a == ip),
            },
        }
    }
}

fn port_in(ranges: &[String], port: u16) -> bool {
    ranges
        .iter()
        .filter_map(|r| parse_port_range(r))
        .any(|(lo, hi)| (lo..=hi).contains(&port))
}

fn protocol_matches(rule: &str, p: Protocol) -> bool {
    match rule {
        "*" => true,
        "Tcp" => p == Protocol::Tcp,
        "Udp" => p == Protocol::Udp,
        _ => false,
    }
}

/// Whether one rule matches a flow (direction aside).
pub fn rule_matches(rule: &NsgRule, flow: &Flow, tags: &TagContext) -> bool {
    protocol_matches(&rule.protocol, flow.protocol)
        && rule
            .source_address_prefixes
            .iter()
            .any(|p| tags.matches(p, flow.source))
        && rule
            .destination_address_prefixes
            .iter()
            .any(|p| tags.matches(p, flow.destination))
        && port_in(&rule.source_port_ranges, flow.source_port)
        && port_in(&rule.destination_port_ranges, flow.destination_port)
}

/// Evaluates the user rules of one NSG plus Azure's defaults for a direction.
pub fn evaluate(
    rules: &[NsgRule],
    direction: Direction,
    flow: &Flow,
    tags: &TagContext,
) -> RuleVerdict {
    let mut ordered: Vec<NsgRule> = rules
        .iter()
        .filter(|r| r.direction == direction)
        .cloned()
        .chain(default_rules(direction))
        .collect();
    ordered.sort_by_key(|r| r.priority);
    ordered
        .iter()
        .find(|r| rule_matches(r, flow, tags))
        .map(|r| RuleVerdict {
            access: r.access,
            rule: r.name.clone(),
            priority: r.priority,
        })
        // DenyAll* matches every flow, so this is never reached; deny is the safe answer anyway.
        .unwrap_or(RuleVerdict {
            access: Access::Deny,
            rule: "DenyAll".into(),
            priority: 65500,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tags() -> TagContext {
        TagContext {
            virtual_network: vec![
                "10.10.0.0/16".parse().unwrap(),
                "10.20.0.0/16".parse().unwrap(),
            ],
            azure_active_directory: vec!["198.51.100.10/32".parse().unwrap()],
        }
    }

    fn tcp(src: &str, dst: &str, dport: u16) -> Flow {
        Flow {
            protocol: Protocol::Tcp,
            source: src.parse().unwrap(),
            source_port: 50000,
            destination: dst.parse().unwrap(),
            destination_port: dport,
        }
    }

    #[test]
    fn defaults_allow_vnet_and_deny_internet_inbound() {
        let t = tags();
        let v = evaluate(
            &[],
            Direction::Inbound,
            &tcp("10.20.1.4", "10.10.2.4", 443),
            &t,
        );
        assert_eq!(
            (v.access, v.rule.as_str()),
            (Access::Allow, "AllowVnetInBound")
        );
        let v = evaluate(
            &[],
            Direction::Inbound,
            &tcp("203.0.113.10", "10.10.2.4", 443),
            &t,
        );
        assert_eq!(
            (v.access, v.rule.as_str()),
            (Access::Deny, "DenyAllInBound")
        );
        let v = evaluate(
            &[],
            Direction::Inbound,
            &tcp("168.63.129.16", "10.10.2.4", 80),
            &t,
        );
        assert_eq!(v.rule, "AllowAzureLoadBalancerInBound");
    }

    #[test]
    fn defaults_allow_internet_outbound_but_not_unpeered_private_space() {
        let t = tags();
        let v = evaluate(
            &[],
            Direction::Outbound,
            &tcp("10.10.1.4", "198.51.100.20", 443),
            &t,
        );
        assert_eq!(v.rule, "AllowInternetOutBound");
        // 10.30.0.0/16 is private but not peered: neither VirtualNetwork nor Internet.
        let v = evaluate(
            &[],
            Direction::Outbound,
            &tcp("10.10.1.4", "10.30.2.4", 443),
            &t,
        );
        assert_eq!(
            (v.access, v.rule.as_str()),
            (Access::Deny, "DenyAllOutBound")
        );
    }

    #[test]
    fn lowest_priority_number_wins_regardless_of_list_order() {
        let deny = NsgRule {
            name: "DenyHttps".into(),
            priority: 200,
            direction: Direction::Inbound,
            access: Access::Deny,
            protocol: "Tcp".into(),
            source_address_prefixes: vec!["*".into()],
            source_port_ranges: vec!["*".into()],
            destination_address_prefixes: vec!["*".into()],
            destination_port_ranges: vec!["443".into()],
        };
        let allow = NsgRule {
            name: "AllowFromPeer".into(),
            priority: 100,
            access: Access::Allow,
            source_address_prefixes: vec!["10.20.0.0/16".into()],
            ..deny.clone()
        };
        let t = tags();
        let f = tcp("10.20.1.4", "10.10.2.4", 443);
        for rules in [
            vec![deny.clone(), allow.clone()],
            vec![allow.clone(), deny.clone()],
        ] {
            assert_eq!(
                evaluate(&rules, Direction::Inbound, &f, &t).rule,
                "AllowFromPeer"
            );
        }
        let other = tcp("10.10.1.4", "10.10.2.4", 443);
        assert_eq!(
            evaluate(&[deny, allow], Direction::Inbound, &other, &t).rule,
            "DenyHttps"
        );
    }

    #[test]
    fn service_tag_azure_active_directory_matches_only_entra() {
        let t = tags();
        assert!(t.matches("AzureActiveDirectory", "198.51.100.10".parse().unwrap()));
        assert!(!t.matches("AzureActiveDirectory", "198.51.100.20".parse().unwrap()));
        assert!(t.matches("Internet", "198.51.100.20".parse().unwrap()));
        assert!(!t.matches("Internet", "10.10.0.9".parse().unwrap()));
    }
}
