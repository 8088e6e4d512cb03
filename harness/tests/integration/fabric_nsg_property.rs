//! Property test: the NSG evaluator agrees with a deliberately naive reference evaluator on
//! random rule sets and flows (seeded, so failures reproduce).
//!
//! The reference follows Azure's documentation literally: "Rules are processed in priority
//! order, with lower numbers processed before higher numbers... Once traffic matches a rule,
//! processing stops", defaults at 65000/65001/65500, and service tags as address sets. It takes
//! the minimum over matching rules and matches addresses with integer masks: no sorting, no
//! parsing shared with the implementation.

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;
use ppvnet::fabric::nsg::{Flow, Protocol, Rule, TagContext, evaluate};
use ppvnet::scenario::model::{Access, Direction, NsgRule};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const ADDRESSES: &[[u8; 4]] = &[
    [10, 10, 1, 4],
    [10, 10, 2, 5],
    [10, 20, 1, 4],
    [10, 30, 1, 4],
    [198, 51, 100, 10],
    [198, 51, 100, 20],
    [203, 0, 113, 10],
    [168, 63, 129, 16],
    [192, 168, 1, 1],
];
const PREFIXES: &[&str] = &[
    "*",
    "VirtualNetwork",
    "Internet",
    "AzureLoadBalancer",
    "AzureActiveDirectory",
    "10.10.0.0/16",
    "10.10.1.0/24",
    "10.20.0.0/16",
    "10.0.0.0/8",
    "198.51.100.10",
    "203.0.113.0/24",
    "0.0.0.0/0",
];
const PORTS: &[&str] = &["*", "443", "80", "53", "1-1024", "440-450", "49152-65535"];
const PROTOCOLS: &[&str] = &["*", "Tcp", "Udp", "Icmp"];

fn in_cidr(ip: [u8; 4], net: [u8; 4], len: u32) -> bool {
    let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
    u32::from_be_bytes(ip) & mask == u32::from_be_bytes(net) & mask
}

fn ref_prefix(p: &str, ip: [u8; 4]) -> bool {
    let vnet = in_cidr(ip, [10, 10, 0, 0], 16) || in_cidr(ip, [10, 20, 0, 0], 16);
    let private = in_cidr(ip, [10, 0, 0, 0], 8)
        || in_cidr(ip, [172, 16, 0, 0], 12)
        || in_cidr(ip, [192, 168, 0, 0], 16);
    match p {
        "*" => true,
        "VirtualNetwork" => vnet,
        "Internet" => !vnet && !private && ip != [168, 63, 129, 16],
        "AzureLoadBalancer" => ip == [168, 63, 129, 16],
        "AzureActiveDirectory" => ip == [198, 51, 100, 10],
        "10.10.0.0/16" => in_cidr(ip, [10, 10, 0, 0], 16),
        "10.10.1.0/24" => in_cidr(ip, [10, 10, 1, 0], 24),
        "10.20.0.0/16" => in_cidr(ip, [10, 20, 0, 0], 16),
        "10.0.0.0/8" => in_cidr(ip, [10, 0, 0, 0], 8),
        "198.51.100.10" => ip == [198, 51, 100, 10],
        "203.0.113.0/24" => in_cidr(ip, [203, 0, 113, 0], 24),
        "0.0.0.0/0" => true,
        other => panic!("unknown prefix {other}"),
    }
}

fn ref_port(p: &str, port: u16) -> bool {
    match p {
        "*" => true,
        "443" => port == 443,
        "80" => port == 80,
        "53" => port == 53,
        "1-1024" => (1..=1024).contains(&port),
        "440-450" => (440..=450).contains(&port),
        "49152-65535" => port >= 49152,
        other => panic!("unknown port {other}"),
    }
}

struct RefFlow {
    tcp: bool,
    src: [u8; 4],
    sport: u16,
    dst: [u8; 4],
    dport: u16,
}

fn ref_matches(r: &NsgRule, f: &RefFlow) -> bool {
    let proto = match r.protocol.as_str() {
        "*" => true,
        "Tcp" => f.tcp,
        "Udp" => !f.tcp,
        _ => false,
    };
    proto
        && r.source_address_prefixes
            .iter()
            .any(|p| ref_prefix(p, f.src))
        && r.destination_address_prefixes
            .iter()
            .any(|p| ref_prefix(p, f.dst))
        && r.source_port_ranges.iter().any(|p| ref_port(p, f.sport))
        && r.destination_port_ranges
            .iter()
            .any(|p| ref_port(p, f.dport))
}

/// (access, rule name): the matching rule with the lowest priority number, found by a linear
/// minimum search over user rules and the three defaults of the direction.
fn reference(rules: &[NsgRule], dir: Direction, f: &RefFlow) -> (Access, String) {
    let vnet_pair = ref_prefix("VirtualNetwork", f.src) && ref_prefix("VirtualNetwork", f.dst);
    let defaults: [(u32, bool, Access, &str); 3] = match dir {
        Direction::Inbound => [
            (65000, vnet_pair, Access::Allow, "AllowVnetInBound"),
            (
                65001,
                f.src == [168, 63, 129, 16],
                Access::Allow,
                "AllowAzureLoadBalancerInBound",
            ),
            (65500, true, Access::Deny, "DenyAllInBound"),
        ],
        Direction::Outbound => [
            (65000, vnet_pair, Access::Allow, "AllowVnetOutBound"),
            (
                65001,
                ref_prefix("Internet", f.dst),
                Access::Allow,
                "AllowInternetOutBound",
            ),
            (65500, true, Access::Deny, "DenyAllOutBound"),
        ],
    };
    let mut best: Option<(u32, Access, String)> = None;
    let mut consider = |priority: u32, access: Access, name: &str| {
        if best.as_ref().is_none_or(|(p, _, _)| priority < *p) {
            best = Some((priority, access, name.to_string()));
        }
    };
    for r in rules {
        if r.direction == dir && ref_matches(r, f) {
            consider(r.priority, r.access, &r.name);
        }
    }
    for (priority, matched, access, name) in defaults {
        if matched {
            consider(priority, access, name);
        }
    }
    let (_, access, name) = best.expect("DenyAll matches everything");
    (access, name)
}

fn pick<'a, T>(rng: &mut StdRng, from: &'a [T]) -> &'a T {
    &from[rng.random_range(0..from.len())]
}

fn some<T: Clone>(rng: &mut StdRng, from: &[T]) -> Vec<T> {
    (0..rng.random_range(1..=3))
        .map(|_| pick(rng, from).clone())
        .collect()
}

fn random_rules(rng: &mut StdRng) -> Vec<NsgRule> {
    let mut used = std::collections::HashSet::new();
    let mut rules = Vec::new();
    for i in 0..rng.random_range(0..12) {
        let direction = if rng.random_bool(0.5) {
            Direction::Inbound
        } else {
            Direction::Outbound
        };
        // Few distinct priorities so rules overlap and order matters.
        let priority = 100 + 100 * rng.random_range(0..20u32);
        if !used.insert((direction, priority)) {
            continue;
        }
        rules.push(NsgRule {
            name: format!("r{i}"),
            priority,
            direction,
            access: if rng.random_bool(0.5) {
                Access::Allow
            } else {
                Access::Deny
            },
            protocol: pick(rng, PROTOCOLS).to_string(),
            source_address_prefixes: some(rng, PREFIXES).into_iter().map(String::from).collect(),
            source_port_ranges: some(rng, PORTS).into_iter().map(String::from).collect(),
            destination_address_prefixes: some(rng, PREFIXES)
                .into_iter()
                .map(String::from)
                .collect(),
            destination_port_ranges: some(rng, PORTS).into_iter().map(String::from).collect(),
        });
    }
    rules
}

#[test]
fn nsg_evaluation_agrees_with_the_reference_evaluator() {
    let tags = TagContext {
        virtual_network: vec![
            "10.10.0.0/16".parse::<Ipv4Net>().unwrap(),
            "10.20.0.0/16".parse().unwrap(),
        ],
        azure_active_directory: vec!["198.51.100.10/32".parse().unwrap()],
    };
    let mut rng = StdRng::seed_from_u64(0x5eed_6e76);
    let (mut cases, mut by_user_rule) = (0, 0);
    for _ in 0..400 {
        let rules = random_rules(&mut rng);
        // The implementation evaluates rules parsed once; the reference reads the declared text.
        let parsed: Vec<Rule> = rules
            .iter()
            .map(|r| Rule::try_from(r).expect("generated rules are valid"))
            .collect();
        for _ in 0..50 {
            let f = RefFlow {
                tcp: rng.random_bool(0.8),
                src: *pick(&mut rng, ADDRESSES),
                sport: *pick(&mut rng, &[443u16, 80, 53, 50000, 1024, 445]),
                dst: *pick(&mut rng, ADDRESSES),
                dport: *pick(&mut rng, &[443u16, 80, 53, 50000, 1024, 445]),
            };
            let flow = Flow {
                protocol: if f.tcp { Protocol::Tcp } else { Protocol::Udp },
                source: Ipv4Addr::from(f.src),
                source_port: f.sport,
                destination: Ipv4Addr::from(f.dst),
                destination_port: f.dport,
            };
            for dir in [Direction::Inbound, Direction::Outbound] {
                let got = evaluate(&parsed, dir, &flow, &tags);
                let want = reference(&rules, dir, &f);
                assert_eq!(
                    (got.access, got.rule.clone()),
                    want,
                    "rules {rules:#?}\nflow {flow:?} {dir:?}"
                );
                cases += 1;
                if got.rule.starts_with('r') {
                    by_user_rule += 1;
                }
            }
        }
    }
    // The generator must exercise user rules, not only the defaults.
    assert!(
        by_user_rule > cases / 10,
        "{by_user_rule} of {cases} decided by user rules"
    );
}
