//! Regions, virtual networks and their subnets, and the hosts a landscape places in them.

use std::collections::{HashMap, HashSet};

use ipnet::Ipv4Net;
use ppvnet_powerplatform::geo;

use super::{Findings, Index, POWER_PLATFORM_DELEGATION, not_found};
use crate::scenario::model::*;

/// Each vNet's address space, as far as it parses (peerings compare them).
pub(super) type Spaces<'a> = HashMap<&'a str, Vec<Ipv4Net>>;

/// A landscape region must be one of its Power Platform geo's Azure regions.
pub(super) fn check_regions(s: &Scenario, f: &mut Findings) {
    for (i, r) in s.regions.iter().enumerate() {
        match geo(&r.geo) {
            None => f.add(
                "LocationNotSupported",
                format!("regions[{i}].geo"),
                format!(
                    "The PowerPlatform region [{}] is not supported. The supported enterprise policy locations are {}",
                    r.geo,
                    ppvnet_powerplatform::geo::supported_locations()
                ),
            ),
            Some(g) if !g.regions().contains(&r.name.as_str()) => f.add(
                "LocationNotSupported",
                format!("regions[{i}].name"),
                format!(
                    "The location {} is not supported for enterprise policy location {}. The supported vnet location for the enterprise policy location are {}",
                    r.name,
                    g.location,
                    g.regions().join(", ")
                ),
            ),
            Some(_) => {}
        }
    }
}

pub(super) fn check_vnets<'a>(s: &'a Scenario, ix: &Index, f: &mut Findings) -> Spaces<'a> {
    let mut spaces = Spaces::new();
    for (i, v) in s.vnets.iter().enumerate() {
        if !ix.regions.contains_key(v.region.as_str()) {
            f.add(
                "LocationNotAvailableForResourceType",
                format!("vnets[{i}].region"),
                format!(
                    "The provided location '{}' is not one of the landscape's regions.",
                    v.region
                ),
            );
        }
        let space: Vec<Ipv4Net> = v
            .address_space
            .iter()
            .enumerate()
            .filter_map(|(j, p)| parse_net(f, format!("vnets[{i}].addressSpace[{j}]"), p))
            .collect();
        // Subnets seen so far, for the overlap check.
        let mut seen: Vec<(String, Ipv4Net)> = Vec::new();
        let mut subnet_names = HashSet::new();
        for (j, sn) in v.subnets.iter().enumerate() {
            let path = format!("vnets[{i}].subnets[{j}]");
            if !subnet_names.insert(sn.name.as_str()) {
                f.add(
                    "DuplicateResourceName",
                    format!("{path}.name"),
                    format!(
                        "The subnet '{}' is defined more than once in virtual network '{}'.",
                        sn.name, v.name
                    ),
                );
            }
            check_subnet_prefix(f, &path, v, sn, &space, &mut seen);
            check_subnet_attachments(s, ix, f, &path, v, sn);
        }
        spaces.insert(v.name.as_str(), space);
    }
    spaces
}

/// The subnet's prefix: well-formed, inside the vNet's space, clear of the earlier subnets.
fn check_subnet_prefix(
    f: &mut Findings,
    path: &str,
    v: &Vnet,
    sn: &Subnet,
    space: &[Ipv4Net],
    seen: &mut Vec<(String, Ipv4Net)>,
) {
    let Some(net) = parse_net(f, format!("{path}.prefix"), &sn.prefix) else {
        return;
    };
    if !space.is_empty() && !space.iter().any(|s| s.contains(&net)) {
        f.add(
            "NetcfgSubnetRangeOutsideVnet",
            format!("{path}.prefix"),
            format!(
                "Subnet '{}' is not valid because its IP address range is outside the IP address range of virtual network '{}'.",
                sn.name, v.name
            ),
        );
    }
    if let Some((other, _)) = seen.iter().find(|(_, o)| overlaps(o, &net)) {
        f.add(
            "NetcfgSubnetRangesOverlap",
            format!("{path}.prefix"),
            format!(
                "Subnet '{}' is not valid because its IP address range overlaps with that of an existing subnet '{other}' in virtual network '{}'.",
                sn.name, v.name
            ),
        );
    }
    seen.push((sn.name.clone(), net));
}

/// The subnet's delegation, NSG and NAT gateway.
fn check_subnet_attachments(
    s: &Scenario,
    ix: &Index,
    f: &mut Findings,
    path: &str,
    v: &Vnet,
    sn: &Subnet,
) {
    if let Some(d) = &sn.delegation
        && d != POWER_PLATFORM_DELEGATION
        && !d.contains('/')
    {
        f.add(
            "InvalidServiceNameOnDelegation",
            format!("{path}.delegation"),
            format!("Delegation service name '{d}' is not valid; expected a resource provider type such as '{POWER_PLATFORM_DELEGATION}'."),
        );
    }
    if let Some(n) = &sn.nsg
        && !ix.nsgs.contains_key(n.as_str())
    {
        f.add(
            "ResourceNotFound",
            format!("{path}.nsg"),
            not_found(s, "Microsoft.Network/networkSecurityGroups", n),
        );
    }
    if let Some(n) = &sn.nat_gateway {
        match ix.nats.get(n.as_str()) {
            None => f.add("ResourceNotFound", format!("{path}.natGateway"), not_found(s, "Microsoft.Network/natGateways", n)),
            Some(&k) if s.nat_gateways[k].region != v.region => f.add(
                "NatGatewayAndSubnetInDifferentRegions",
                format!("{path}.natGateway"),
                format!(
                    "NAT gateway '{n}' in region '{}' cannot be used by subnet '{}' of virtual network '{}' in region '{}'.",
                    s.nat_gateways[k].region, sn.name, v.name, v.region
                ),
            ),
            Some(_) => {}
        }
    }
}

fn parse_net(f: &mut Findings, path: String, text: &str) -> Option<Ipv4Net> {
    match text.parse::<Ipv4Net>() {
        Ok(n) if n.network() == n.addr() => Some(n),
        Ok(n) => {
            f.add(
                "InvalidCIDRNotation",
                path,
                format!(
                    "{text} is an invalid CIDR notation. For the given prefix length, the address prefix should be {}.",
                    n.trunc()
                ),
            );
            None
        }
        Err(_) => {
            f.add(
                "InvalidAddressPrefixFormat",
                path,
                format!("Address prefix {text} does not have a valid format."),
            );
            None
        }
    }
}

pub(super) fn overlaps(a: &Ipv4Net, b: &Ipv4Net) -> bool {
    a.contains(&b.network()) || b.contains(&a.network())
}

/// Addresses Azure lets a subnet's resources use: the size minus the five it reserves (Azure vNet FAQ).
pub fn available_addresses(prefix: &Ipv4Net) -> u64 {
    (1u64 << (32 - u32::from(prefix.prefix_len()))).saturating_sub(5)
}

/// A declared host sits in a subnet of the landscape, or on the public internet.
pub(super) fn check_hosts(s: &Scenario, ix: &Index, f: &mut Findings) {
    for (i, h) in s.hosts.iter().enumerate() {
        match (&h.vnet, &h.subnet) {
            (Some(v), Some(sn)) => check_subnet_use(
                s,
                ix,
                f,
                Placement {
                    path: &format!("hosts[{i}]"),
                    vnet: v,
                    subnet: sn,
                    kind: "host",
                    name: &h.name,
                },
            ),
            (None, None) => {}
            _ => f.add(
                "InvalidHost",
                format!("hosts[{i}]"),
                format!(
                    "Host '{}' must give both vnet and subnet, or neither (public internet).",
                    h.name
                ),
            ),
        }
        check_container_host(h, i, f);
    }
}

/// `kind: container` needs an image; an image or a command needs `kind: container`.
fn check_container_host(h: &crate::scenario::model::DeclaredHost, i: usize, f: &mut Findings) {
    let container = h.kind.is_some();
    let image = h.image.as_deref().map(str::trim);
    if container && image.is_none_or(str::is_empty) {
        f.add(
            "InvalidHost",
            format!("hosts[{i}].image"),
            format!(
                "Host '{}' is a container: give the image it runs (image: my-client:dev).",
                h.name
            ),
        );
    }
    if !container && (h.image.is_some() || h.command.is_some() || !h.env.is_empty()) {
        f.add(
            "InvalidHost",
            format!("hosts[{i}].kind"),
            format!(
                "Host '{}' names an image, a command or an environment: add kind: container.",
                h.name
            ),
        );
    }
    if h.command.as_ref().is_some_and(Vec::is_empty) {
        f.add(
            "InvalidCommand",
            format!("hosts[{i}].command"),
            format!("Host '{}' has an empty command.", h.name),
        );
    }
}

/// A resource that stands in a subnet, as its findings name it: the item's path, the subnet,
/// and the resource's kind and name for the messages.
#[derive(Clone, Copy)]
pub(super) struct Placement<'a> {
    pub path: &'a str,
    pub vnet: &'a str,
    pub subnet: &'a str,
    pub kind: &'a str,
    pub name: &'a str,
}

/// A resource placed in a subnet: the subnet must exist and must not be delegated ("the
/// delegated subnet can't be used for any other resources or delegated to other services",
/// MicrosoftDocs/power-platform `admin/vnet-support-overview.md`).
pub(super) fn check_subnet_use(s: &Scenario, ix: &Index, f: &mut Findings, at: Placement<'_>) {
    let Placement {
        path,
        vnet,
        subnet,
        kind,
        name,
    } = at;
    if !ix.vnets.contains_key(vnet) {
        f.add(
            "ResourceNotFound",
            format!("{path}.vnet"),
            not_found(s, "Microsoft.Network/virtualNetworks", vnet),
        );
        return;
    }
    match ix.subnet(s, vnet, subnet) {
        None => f.add(
            "ResourceNotFound",
            format!("{path}.subnet"),
            format!("Subnet '{subnet}' not found in virtual network '{vnet}'."),
        ),
        Some(sn) if sn.delegation.is_some() => f.add(
            "SubnetDelegatedCannotHostResources",
            format!("{path}.subnet"),
            format!(
                "The {kind} '{name}' cannot be placed in subnet '{subnet}' of virtual network '{vnet}': it is delegated to '{}', and the delegated subnet can't be used for any other resources or delegated to other services.",
                sn.delegation.as_deref().unwrap_or_default()
            ),
        ),
        Some(_) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn available_addresses_subtract_azure_reserved_five() {
        assert_eq!(available_addresses(&"10.0.0.0/24".parse().unwrap()), 251);
        assert_eq!(available_addresses(&"10.0.0.0/25".parse().unwrap()), 123);
    }
}
