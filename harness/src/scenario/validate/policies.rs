//! Enterprise policies: their kind and location, and for a NetworkInjection policy its
//! delegated subnets: delegated, one policy each, in the geo's regions, paired where the geo
//! needs two, and of equal size (MicrosoftDocs/power-platform
//! `admin/vnet-support-setup-configure.md`).

use std::collections::HashMap;

use ipnet::Ipv4Net;
use ppvnet_powerplatform::{Geo, geo};

use super::networks::available_addresses;
use super::{Findings, Index, POWER_PLATFORM_DELEGATION, vnet_id};
use crate::scenario::model::*;

/// A delegated subnet's (subnet, vNet, available addresses).
type SubnetSize<'a> = (&'a str, &'a str, u64);

pub(super) fn check(s: &Scenario, ix: &Index, f: &mut Findings) {
    // (vNet, subnet) → the policy that uses it.
    let mut subnet_policy: HashMap<(&str, &str), &str> = HashMap::new();
    for (i, p) in s.enterprise_policies.iter().enumerate() {
        let path = format!("enterprisePolicies[{i}]");
        let known_kinds = [
            "NetworkInjection",
            "Encryption",
            "Identity",
            "Lockbox",
            "PrivateEndpoint",
        ];
        if !known_kinds.contains(&p.kind.as_str()) {
            f.add(
                "InvalidPolicyKind",
                format!("{path}.kind"),
                format!(
                    "The enterprise policy kind '{}' is not one of {}.",
                    p.kind,
                    known_kinds.join(", ")
                ),
            );
        }
        let Some(g) = geo(&p.location) else {
            f.add(
                "LocationNotSupported",
                format!("{path}.location"),
                format!(
                    "The PowerPlatform region [{}] is not supported. The supported enterprise policy locations are {}",
                    p.location,
                    ppvnet_powerplatform::geo::supported_locations()
                ),
            );
            continue;
        };
        if p.kind != "NetworkInjection" {
            continue;
        }
        check_network_injection(s, ix, f, &path, p, g, &mut subnet_policy);
    }
}

/// The virtual networks of a NetworkInjection policy.
fn check_network_injection<'a>(
    s: &'a Scenario,
    ix: &Index,
    f: &mut Findings,
    path: &str,
    p: &'a EnterprisePolicy,
    g: &Geo,
    subnet_policy: &mut HashMap<(&'a str, &'a str), &'a str>,
) {
    let mut regions = Vec::new();
    let mut sizes = Vec::new();
    for (j, r) in p.virtual_networks.iter().enumerate() {
        let vp = format!("{path}.virtualNetworks[{j}]");
        let Some(&vi) = ix.vnets.get(r.vnet.as_str()) else {
            f.add(
                "ResourceNotFound",
                format!("{vp}.vnet"),
                format!("Error getting virtual network for {}", vnet_id(s, &r.vnet)),
            );
            continue;
        };
        let vnet = &s.vnets[vi];
        let Some(sn) = ix.subnet(s, &r.vnet, &r.subnet) else {
            f.add(
                "ResourceNotFound",
                format!("{vp}.subnet"),
                format!(
                    "Subnet '{}' not found in virtual network '{}'",
                    r.subnet, r.vnet
                ),
            );
            continue;
        };
        if sn.delegation.as_deref() != Some(POWER_PLATFORM_DELEGATION) {
            f.add(
                "SubnetNotDelegated",
                format!("{vp}.subnet"),
                format!("Subnet '{}' of virtual network '{}' is not delegated to '{POWER_PLATFORM_DELEGATION}'.", r.subnet, r.vnet),
            );
        }
        if let Some(other) =
            subnet_policy.insert((r.vnet.as_str(), r.subnet.as_str()), p.name.as_str())
            && other != p.name
        {
            f.add(
                "SubnetAlreadyUsedByPolicy",
                format!("{vp}.subnet"),
                format!("Subnet '{}' of virtual network '{}' is already used by enterprise policy '{other}'; a subnet can't be reused across policies.", r.subnet, r.vnet),
            );
        }
        if !g.regions().contains(&vnet.region.as_str()) {
            f.add(
                "LocationNotSupported",
                format!("{vp}.vnet"),
                format!(
                    "The location {} is not supported for enterprise policy location {}. The supported vnet location for the enterprise policy location are {}",
                    vnet.region, g.location, g.regions().join(", ")
                ),
            );
        }
        regions.push(vnet.region.as_str());
        if let Ok(net) = sn.prefix.parse::<Ipv4Net>() {
            sizes.push((
                r.subnet.as_str(),
                r.vnet.as_str(),
                available_addresses(&net),
            ));
        }
    }
    check_pair_and_sizes(f, path, p, g, &regions, &sizes);
}

/// A two-region geo needs exactly two vNets in a supported pair; the delegated subnets must
/// offer the same number of addresses.
fn check_pair_and_sizes(
    f: &mut Findings,
    path: &str,
    p: &EnterprisePolicy,
    g: &Geo,
    regions: &[&str],
    sizes: &[SubnetSize],
) {
    if g.requires_pair() {
        if p.virtual_networks.len() < 2 {
            f.add(
                "SecondVirtualNetworkRequired",
                format!("{path}.virtualNetworks"),
                "A second virtual network ID and subnet name must be provided when the selected Power Platform region requires 2 delegated subnets.",
            );
        } else if regions.len() == 2 && !g.is_pair(regions[0], regions[1]) {
            f.add(
                "RegionsNotSupportedPair",
                format!("{path}.virtualNetworks"),
                format!(
                    "The regions {} and {} of the provided vnets are not a supported pair for enterprise policy location {}. The supported region pairs are: {}",
                    regions[0], regions[1], g.location, g.pairs_text()
                ),
            );
        }
        if p.virtual_networks.len() > 2 {
            f.add(
                "TooManyVirtualNetworks",
                format!("{path}.virtualNetworks"),
                "A NetworkInjection policy takes exactly two virtual networks in a two-region geo.",
            );
        }
    }
    if sizes.len() == 2 && sizes[0].2 != sizes[1].2 {
        f.add(
            "DelegatedSubnetSizeMismatch",
            format!("{path}.virtualNetworks"),
            format!(
                "Subnets '{}' ({} available addresses) and '{}' ({} available addresses) differ: both subnets must have the same number of available IP addresses.",
                format_args!("{}/{}", sizes[0].1, sizes[0].0), sizes[0].2,
                format_args!("{}/{}", sizes[1].1, sizes[1].0), sizes[1].2
            ),
        );
    }
}
