//! Private endpoints: unique names, an existing target and DNS zone, a subnet that may host
//! them, and a static address inside it.

use std::collections::HashSet;
use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

use super::networks::{Placement, check_subnet_use};
use super::{Findings, Index, not_found};
use crate::scenario::model::*;

pub(super) fn check(s: &Scenario, ix: &Index, f: &mut Findings) {
    let mut pe_names = HashSet::new();
    for (i, pe) in s.private_endpoints.iter().enumerate() {
        let path = format!("privateEndpoints[{i}]");
        if !pe_names.insert(pe.name.as_str()) {
            f.add(
                "DuplicateResourceName",
                format!("{path}.name"),
                format!(
                    "The private endpoint '{}' is defined more than once.",
                    pe.name
                ),
            );
        }
        if !ix.vaults.contains_key(pe.target.as_str()) && !ix.apis.contains_key(pe.target.as_str())
        {
            f.add("ResourceNotFound", format!("{path}.target"), format!("The private link resource '{}' is neither a key vault nor an API of the landscape.", pe.target));
        }
        if let Some(z) = &pe.private_dns_zone
            && !ix.zones.contains_key(z.as_str())
        {
            f.add(
                "ResourceNotFound",
                format!("{path}.privateDnsZone"),
                not_found(s, "Microsoft.Network/privateDnsZones", z),
            );
        }
        check_subnet_use(
            s,
            ix,
            f,
            Placement {
                path: &path,
                vnet: &pe.vnet,
                subnet: &pe.subnet,
                kind: "private endpoint",
                name: &pe.name,
            },
        );
        if let (Some(a), Some(sn)) = (&pe.address, ix.subnet(s, &pe.vnet, &pe.subnet)) {
            let inside = match (a.parse::<Ipv4Addr>(), sn.prefix.parse::<Ipv4Net>()) {
                (Ok(ip), Ok(net)) => net.contains(&ip) && usable_host(&net, ip),
                _ => false,
            };
            if !inside {
                f.add(
                    "PrivateIPAddressNotInSubnet",
                    format!("{path}.address"),
                    format!("Private static IP address {a} does not belong to the range of subnet prefix {} or is reserved by Azure.", sn.prefix),
                );
            }
        }
    }
}

/// Azure reserves the network address, the next three and the broadcast address.
fn usable_host(net: &Ipv4Net, ip: Ipv4Addr) -> bool {
    let offset = u32::from(ip) - u32::from(net.network());
    offset >= 4 && ip != net.broadcast()
}
