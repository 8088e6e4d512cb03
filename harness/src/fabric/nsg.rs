//! Network security group rules, parsed once, and their evaluation as Azure does it.
//!
//! A landscape or the control API declares a rule as text ([`NsgRule`]); [`Rule`] is that rule
//! parsed, with Azure's wording for every way the text can be wrong ([`RuleError`]). Validation,
//! the oracle, this evaluator and the nftables renderer all work on [`Rule`], so a rule is
//! checked in one place and never re-parsed per connection.
//!
//! Azure evaluates the rules of one direction by priority, lowest number first, and stops at the
//! first rule that matches; the default rules (priorities 65000–65500) close every list and cannot
//! be removed. Service tags are resolved per evaluation: `VirtualNetwork` is the subnet's vNet
//! address space plus the spaces of connected peerings, `AzureLoadBalancer` is the platform
//! address 168.63.129.16, `AzureActiveDirectory` the Entra public endpoints, and `Internet`
//! every address outside `VirtualNetwork` and the private ranges.
//! Source: Azure "Network security groups", "Virtual network service tags" and "Security rule"
//! REST docs.

use std::fmt;
use std::net::Ipv4Addr;
use std::ops::RangeInclusive;
use std::sync::LazyLock;

use ipnet::Ipv4Net;

use crate::scenario::model::{Access, Direction, NsgRule};

/// Azure's platform address (DNS, health probes), behind the `AzureLoadBalancer` tag.
pub const AZURE_PLATFORM_ADDRESS: Ipv4Addr = Ipv4Addr::new(168, 63, 129, 16);

/// The priorities a user rule may have (Azure keeps the rest for its default rules).
pub const PRIORITIES: RangeInclusive<u32> = 100..=4096;

/// The service tags a rule may name in place of an address prefix.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ServiceTag {
    VirtualNetwork,
    Internet,
    AzureLoadBalancer,
    AzureActiveDirectory,
}

impl ServiceTag {
    /// Every tag ppvnet knows, in the order Azure's docs list them.
    pub const ALL: [ServiceTag; 4] = [
        ServiceTag::VirtualNetwork,
        ServiceTag::Internet,
        ServiceTag::AzureLoadBalancer,
        ServiceTag::AzureActiveDirectory,
    ];

    /// The tag's name as a rule spells it (case-sensitive, as ppvnet has always read it).
    pub fn name(self) -> &'static str {
        match self {
            ServiceTag::VirtualNetwork => "VirtualNetwork",
            ServiceTag::Internet => "Internet",
            ServiceTag::AzureLoadBalancer => "AzureLoadBalancer",
            ServiceTag::AzureActiveDirectory => "AzureActiveDirectory",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.name() == name)
    }
}

impl fmt::Display for ServiceTag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The protocol a rule applies to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RuleProtocol {
    Any,
    Tcp,
    Udp,
    Icmp,
    Esp,
    Ah,
}

impl RuleProtocol {
    fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "*" => RuleProtocol::Any,
            "Tcp" => RuleProtocol::Tcp,
            "Udp" => RuleProtocol::Udp,
            "Icmp" => RuleProtocol::Icmp,
            "Esp" => RuleProtocol::Esp,
            "Ah" => RuleProtocol::Ah,
            _ => return None,
        })
    }

    /// Whether a rule of this protocol applies to a TCP or UDP flow. ICMP, ESP and AH rules
    /// never match the flows ppvnet emulates.
    pub fn matches(self, flow: Protocol) -> bool {
        match self {
            RuleProtocol::Any => true,
            RuleProtocol::Tcp => flow == Protocol::Tcp,
            RuleProtocol::Udp => flow == Protocol::Udp,
            RuleProtocol::Icmp | RuleProtocol::Esp | RuleProtocol::Ah => false,
        }
    }
}

/// One source or destination address prefix of a rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Prefix {
    /// `*`.
    Any,
    /// A bare address (`203.0.113.7`).
    Address(Ipv4Addr),
    /// A CIDR range; Azure accepts host bits and ignores them (`10.10.1.5/24`).
    Net(Ipv4Net),
    Tag(ServiceTag),
}

impl Prefix {
    fn parse(text: &str) -> Option<Self> {
        if text == "*" {
            return Some(Prefix::Any);
        }
        if let Some(tag) = ServiceTag::from_name(text) {
            return Some(Prefix::Tag(tag));
        }
        match text.parse::<Ipv4Net>() {
            Ok(net) => Some(Prefix::Net(net)),
            Err(_) => text.parse().ok().map(Prefix::Address),
        }
    }
}

/// A port range of a rule, both ends included; `*` is the whole range.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PortRange {
    pub first: u16,
    pub last: u16,
}

impl PortRange {
    pub const ALL: PortRange = PortRange {
        first: 0,
        last: 65535,
    };

    /// `*`, `443` or `1000-2000` (a reversed range is refused, as Azure does).
    pub fn parse(text: &str) -> Option<Self> {
        if text == "*" {
            return Some(Self::ALL);
        }
        let (a, b) = text.split_once('-').unwrap_or((text, text));
        let (first, last) = (a.trim().parse::<u16>().ok()?, b.trim().parse::<u16>().ok()?);
        (first <= last).then_some(PortRange { first, last })
    }

    pub fn contains(&self, port: u16) -> bool {
        (self.first..=self.last).contains(&port)
    }
}

/// A security rule, parsed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    pub name: String,
    pub priority: u32,
    pub direction: Direction,
    pub access: Access,
    pub protocol: RuleProtocol,
    pub sources: Vec<Prefix>,
    pub source_ports: Vec<PortRange>,
    pub destinations: Vec<Prefix>,
    pub destination_ports: Vec<PortRange>,
}

/// Why Azure refuses a security rule: its code and its wording, in the one place ppvnet keeps
/// them (validation and the control API both report these).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct RuleError {
    /// Azure's error code.
    pub code: &'static str,
    /// The offending property, relative to the rule (`priority`, `sourceAddressPrefixes[1]`).
    pub field: String,
    pub message: String,
}

impl RuleError {
    fn priority(priority: u32) -> Self {
        RuleError {
            code: "SecurityRuleInvalidPriority",
            field: "priority".into(),
            message: format!(
                "Security rule has invalid Priority. Value provided: {priority}. Allowed values are from {} to {}.",
                PRIORITIES.start(),
                PRIORITIES.end()
            ),
        }
    }

    /// Two rules of one direction share a priority.
    pub fn conflict(rule: &str, other: &str) -> Self {
        RuleError {
            code: "SecurityRuleConflict",
            field: "priority".into(),
            message: format!(
                "Security rule {rule} conflicts with rule {other}. Rules cannot have the same Priority and Direction."
            ),
        }
    }

    fn protocol(rule: &str, protocol: &str) -> Self {
        RuleError {
            code: "SecurityRuleInvalidProtocol",
            field: "protocol".into(),
            message: format!(
                "Security rule {rule} has invalid Protocol '{protocol}'. Allowed values are *, Tcp, Udp, Icmp, Esp, Ah."
            ),
        }
    }

    fn address_prefix(rule: &str, field: String, value: &str) -> Self {
        RuleError {
            code: "SecurityRuleInvalidAddressPrefix",
            field,
            message: format!(
                "Security rule {rule} has invalid Address prefix. Value provided: {value}"
            ),
        }
    }

    fn port_range(rule: &str, field: String, value: &str) -> Self {
        RuleError {
            code: "SecurityRuleInvalidPortRange",
            field,
            message: format!(
                "Security rule {rule} has invalid Port range. Value provided: {value}. Value should be an integer OR integer range with '-' delimiter. Valid range 0-65535."
            ),
        }
    }
}

/// Azure's text when a rule's name is already taken in its NSG (the control API checks it).
pub fn duplicate_rule_message(rule: &str, nsg: &str) -> String {
    format!("Security rule {rule} already exists in network security group {nsg}.")
}

impl Rule {
    /// Parses a declared rule, reporting every reason Azure refuses it, in Azure's order
    /// (priority, protocol, source then destination prefixes, source then destination ports).
    pub fn parse(declared: &NsgRule) -> Result<Rule, Vec<RuleError>> {
        let (rule, errors) = Self::parse_lenient(declared);
        if errors.is_empty() {
            Ok(rule)
        } else {
            Err(errors)
        }
    }

    /// The rule with its valid parts, and the errors of the others.
    fn parse_lenient(d: &NsgRule) -> (Rule, Vec<RuleError>) {
        let mut errors = Vec::new();
        if !PRIORITIES.contains(&d.priority) {
            errors.push(RuleError::priority(d.priority));
        }
        let protocol = RuleProtocol::parse(&d.protocol).unwrap_or_else(|| {
            errors.push(RuleError::protocol(&d.name, &d.protocol));
            // A placeholder: the error keeps this rule from being used.
            RuleProtocol::Any
        });
        let prefix_error = |field, text: &str| RuleError::address_prefix(&d.name, field, text);
        let port_error = |field, text: &str| RuleError::port_range(&d.name, field, text);
        let sources = parse_each(
            "sourceAddressPrefixes",
            &d.source_address_prefixes,
            Prefix::parse,
            prefix_error,
            &mut errors,
        );
        let destinations = parse_each(
            "destinationAddressPrefixes",
            &d.destination_address_prefixes,
            Prefix::parse,
            prefix_error,
            &mut errors,
        );
        let source_ports = parse_each(
            "sourcePortRanges",
            &d.source_port_ranges,
            PortRange::parse,
            port_error,
            &mut errors,
        );
        let destination_ports = parse_each(
            "destinationPortRanges",
            &d.destination_port_ranges,
            PortRange::parse,
            port_error,
            &mut errors,
        );
        let rule = Rule {
            name: d.name.clone(),
            priority: d.priority,
            direction: d.direction,
            access: d.access,
            protocol,
            sources,
            source_ports,
            destinations,
            destination_ports,
        };
        (rule, errors)
    }

    /// Whether this rule matches a flow (direction aside).
    pub fn matches(&self, flow: &Flow, tags: &TagContext) -> bool {
        self.protocol.matches(flow.protocol)
            && self.sources.iter().any(|p| tags.matches(p, flow.source))
            && self
                .destinations
                .iter()
                .any(|p| tags.matches(p, flow.destination))
            && self
                .source_ports
                .iter()
                .any(|r| r.contains(flow.source_port))
            && self
                .destination_ports
                .iter()
                .any(|r| r.contains(flow.destination_port))
    }
}

impl TryFrom<&NsgRule> for Rule {
    type Error = RuleError;

    /// The rule, or the first reason Azure refuses it (what the control API answers).
    fn try_from(declared: &NsgRule) -> Result<Self, RuleError> {
        let (rule, errors) = Rule::parse_lenient(declared);
        match errors.into_iter().next() {
            Some(e) => Err(e),
            None => Ok(rule),
        }
    }
}

/// The parsed items of one list property; each unparsable item becomes an error naming its
/// index (`sourcePortRanges[2]`).
fn parse_each<T>(
    field: &str,
    texts: &[String],
    parse: fn(&str) -> Option<T>,
    error: impl Fn(String, &str) -> RuleError,
    errors: &mut Vec<RuleError>,
) -> Vec<T> {
    let mut parsed = Vec::with_capacity(texts.len());
    for (k, text) in texts.iter().enumerate() {
        match parse(text) {
            Some(item) => parsed.push(item),
            None => errors.push(error(format!("{field}[{k}]"), text)),
        }
    }
    parsed
}

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

/// The protocol of a flow (a rule's protocol is a [`RuleProtocol`]).
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
pub fn default_rules(direction: Direction) -> &'static [Rule] {
    static INBOUND: LazyLock<Vec<Rule>> = LazyLock::new(|| build_default_rules(Direction::Inbound));
    static OUTBOUND: LazyLock<Vec<Rule>> =
        LazyLock::new(|| build_default_rules(Direction::Outbound));
    match direction {
        Direction::Inbound => &INBOUND,
        Direction::Outbound => &OUTBOUND,
    }
}

fn build_default_rules(direction: Direction) -> Vec<Rule> {
    use Prefix::{Any, Tag};
    use ServiceTag::{AzureLoadBalancer, Internet, VirtualNetwork};
    let rule = |name: &str, priority, access, source, destination| Rule {
        name: name.into(),
        priority,
        direction,
        access,
        protocol: RuleProtocol::Any,
        sources: vec![source],
        source_ports: vec![PortRange::ALL],
        destinations: vec![destination],
        destination_ports: vec![PortRange::ALL],
    };
    let vnet = Tag(VirtualNetwork);
    match direction {
        Direction::Inbound => vec![
            rule("AllowVnetInBound", 65000, Access::Allow, vnet, vnet),
            rule(
                "AllowAzureLoadBalancerInBound",
                65001,
                Access::Allow,
                Tag(AzureLoadBalancer),
                Any,
            ),
            rule("DenyAllInBound", 65500, Access::Deny, Any, Any),
        ],
        Direction::Outbound => vec![
            rule("AllowVnetOutBound", 65000, Access::Allow, vnet, vnet),
            rule(
                "AllowInternetOutBound",
                65001,
                Access::Allow,
                Any,
                Tag(Internet),
            ),
            rule("DenyAllOutBound", 65500, Access::Deny, Any, Any),
        ],
    }
}

/// The user rules of one direction and Azure's defaults, by priority: the order Azure evaluates
/// them in, which the nftables chains follow too.
pub fn ordered_rules(rules: &[Rule], direction: Direction) -> Vec<&Rule> {
    let mut ordered: Vec<&Rule> = rules
        .iter()
        .filter(|r| r.direction == direction)
        .chain(default_rules(direction))
        .collect();
    ordered.sort_by_key(|r| r.priority);
    ordered
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
    /// Whether `ip` is covered by an address prefix of a rule.
    pub fn matches(&self, prefix: &Prefix, ip: Ipv4Addr) -> bool {
        match prefix {
            Prefix::Any => true,
            Prefix::Address(a) => *a == ip,
            Prefix::Net(net) => net.contains(&ip),
            Prefix::Tag(tag) => self.tag_contains(*tag, ip),
        }
    }

    /// Whether `ip` is one of the addresses a service tag stands for.
    pub fn tag_contains(&self, tag: ServiceTag, ip: Ipv4Addr) -> bool {
        match tag {
            ServiceTag::VirtualNetwork => self.virtual_network.iter().any(|n| n.contains(&ip)),
            ServiceTag::AzureLoadBalancer => ip == AZURE_PLATFORM_ADDRESS,
            ServiceTag::AzureActiveDirectory => {
                self.azure_active_directory.iter().any(|n| n.contains(&ip))
            }
            ServiceTag::Internet => {
                !self.virtual_network.iter().any(|n| n.contains(&ip))
                    && !private_ranges().iter().any(|n| n.contains(&ip))
                    && ip != AZURE_PLATFORM_ADDRESS
            }
        }
    }
}

/// Evaluates the user rules of one NSG plus Azure's defaults for a direction.
pub fn evaluate(
    rules: &[Rule],
    direction: Direction,
    flow: &Flow,
    tags: &TagContext,
) -> RuleVerdict {
    ordered_rules(rules, direction)
        .into_iter()
        .find(|r| r.matches(flow, tags))
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

    fn declared(json: serde_json::Value) -> NsgRule {
        serde_json::from_value(json).unwrap()
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
        let deny = Rule::try_from(&declared(serde_json::json!({
            "name": "DenyHttps", "priority": 200, "direction": "Inbound", "access": "Deny",
            "protocol": "Tcp", "destinationPortRanges": ["443"]
        })))
        .unwrap();
        let allow = Rule {
            name: "AllowFromPeer".into(),
            priority: 100,
            access: Access::Allow,
            sources: vec![Prefix::Net("10.20.0.0/16".parse().unwrap())],
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
        let ip = |s: &str| s.parse::<Ipv4Addr>().unwrap();
        assert!(t.tag_contains(ServiceTag::AzureActiveDirectory, ip("198.51.100.10")));
        assert!(!t.tag_contains(ServiceTag::AzureActiveDirectory, ip("198.51.100.20")));
        assert!(t.tag_contains(ServiceTag::Internet, ip("198.51.100.20")));
        assert!(!t.tag_contains(ServiceTag::Internet, ip("10.10.0.9")));
    }

    #[test]
    fn port_ranges() {
        let range = |first, last| Some(PortRange { first, last });
        assert_eq!(PortRange::parse("*"), range(0, 65535));
        assert_eq!(PortRange::parse("443"), range(443, 443));
        assert_eq!(PortRange::parse("1000-2000"), range(1000, 2000));
        assert_eq!(PortRange::parse("2000-1000"), None);
        assert_eq!(PortRange::parse("http"), None);
    }

    #[test]
    fn a_declared_rule_parses_into_typed_prefixes_tags_and_ports() {
        let rule = Rule::try_from(&declared(serde_json::json!({
            "name": "AllowVnetHttps", "priority": 100, "direction": "Inbound", "access": "Allow",
            "protocol": "Tcp", "sourceAddressPrefixes": ["VirtualNetwork", "203.0.113.7", "10.10.1.5/24"],
            "destinationPortRanges": ["443", "8000-8080"]
        })))
        .unwrap();
        assert_eq!(rule.protocol, RuleProtocol::Tcp);
        assert_eq!(
            rule.sources,
            [
                Prefix::Tag(ServiceTag::VirtualNetwork),
                Prefix::Address(Ipv4Addr::new(203, 0, 113, 7)),
                Prefix::Net("10.10.1.5/24".parse().unwrap()),
            ]
        );
        assert_eq!(rule.destinations, [Prefix::Any]);
        assert_eq!(rule.source_ports, [PortRange::ALL]);
        assert_eq!(
            rule.destination_ports,
            [
                PortRange {
                    first: 443,
                    last: 443
                },
                PortRange {
                    first: 8000,
                    last: 8080
                }
            ]
        );
        for tag in ServiceTag::ALL {
            assert_eq!(ServiceTag::from_name(&tag.to_string()), Some(tag));
        }
    }

    #[test]
    fn every_fault_of_a_rule_is_reported_in_azures_order_with_its_words() {
        let bad = declared(serde_json::json!({
            "name": "Bad", "priority": 5000, "direction": "Inbound", "access": "Allow",
            "protocol": "Gre", "sourceAddressPrefixes": ["Storage"],
            "destinationAddressPrefixes": ["*", "10.0.0.0/33"], "destinationPortRanges": ["http"]
        }));
        let errors = Rule::parse(&bad).unwrap_err();
        let summary: Vec<(&str, &str)> =
            errors.iter().map(|e| (e.code, e.field.as_str())).collect();
        assert_eq!(
            summary,
            [
                ("SecurityRuleInvalidPriority", "priority"),
                ("SecurityRuleInvalidProtocol", "protocol"),
                (
                    "SecurityRuleInvalidAddressPrefix",
                    "sourceAddressPrefixes[0]"
                ),
                (
                    "SecurityRuleInvalidAddressPrefix",
                    "destinationAddressPrefixes[1]"
                ),
                ("SecurityRuleInvalidPortRange", "destinationPortRanges[0]"),
            ]
        );
        assert_eq!(
            errors[2].message,
            "Security rule Bad has invalid Address prefix. Value provided: Storage"
        );
        assert_eq!(Rule::try_from(&bad).unwrap_err(), errors[0]);
        assert_eq!(
            errors[0].to_string(),
            "Security rule has invalid Priority. Value provided: 5000. Allowed values are from 100 to 4096."
        );
    }
}
