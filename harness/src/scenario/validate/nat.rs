//! NAT gateways.

use std::collections::HashMap;
use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

use super::{Findings, vnet_id};
use crate::scenario::model::*;

/// NAT gateways: their public IP, and the one-vNet rule.
///
/// Azure assigns a gateway's public IP; a landscape names it, and ppvnet's emulated internet
/// must be able to route it: it has to be an IPv4 address of 203.0.113.0/24 above the block
/// ppvnet gives internet clients (203.0.113.0–99, see `landscape`), and two gateways cannot
/// share it. A gateway serves subnets of one virtual network only; Azure refuses a second one
/// with `NatGatewayCannotBeUsedBySubnetsBelongingToDifferentVirtualNetworks` (text as ARM returns
/// it, seen in microsoft/azure_arc issue #3288).
pub(super) fn check(s: &Scenario, f: &mut Findings) {
    const EGRESS: Ipv4Net = Ipv4Net::new_assert(Ipv4Addr::new(203, 0, 113, 0), 24);
    const CLIENTS_END: u8 = 99;
    let mut owners: HashMap<Ipv4Addr, &str> = HashMap::new();
    for (i, n) in s.nat_gateways.iter().enumerate() {
        let path = format!("natGateways[{i}].publicIp");
        match n.public_ip.parse::<Ipv4Addr>() {
            Err(_) => f.add(
                "InvalidPublicIpAddress",
                path,
                format!(
                    "The public IP '{}' of NAT gateway '{}' is not an IPv4 address.",
                    n.public_ip, n.name
                ),
            ),
            Ok(ip) if !EGRESS.contains(&ip) || ip.octets()[3] <= CLIENTS_END => f.add(
                "InvalidPublicIpAddress",
                path,
                format!(
                    "The public IP '{ip}' of NAT gateway '{}' is outside 203.0.113.100-203.0.113.255, the documentation addresses ppvnet keeps for NAT gateways.",
                    n.name
                ),
            ),
            Ok(ip) => {
                if let Some(other) = owners.insert(ip, n.name.as_str()) {
                    f.add(
                        "PublicIPAddressInUse",
                        path,
                        format!(
                            "The public IP '{ip}' of NAT gateway '{}' is already used by NAT gateway '{other}'.",
                            n.name
                        ),
                    );
                }
            }
        }
    }
    let mut used_on: HashMap<&str, &str> = HashMap::new();
    for (i, v) in s.vnets.iter().enumerate() {
        for (j, sn) in v.subnets.iter().enumerate() {
            let Some(n) = sn.nat_gateway.as_deref() else {
                continue;
            };
            let first = *used_on.entry(n).or_insert(v.name.as_str());
            if first != v.name {
                f.add(
                    "NatGatewayCannotBeUsedBySubnetsBelongingToDifferentVirtualNetworks",
                    format!("vnets[{i}].subnets[{j}].natGateway"),
                    format!(
                        "NAT Gateway cannot be configured on multiple virtual networks. NAT Gateway /subscriptions/{}/resourceGroups/{}/providers/Microsoft.Network/natGateways/{n} is currently used on virtual network {} and cannot be added to virtual network {}.",
                        s.subscription,
                        s.resource_group,
                        vnet_id(s, first),
                        vnet_id(s, &v.name)
                    ),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_nat_gateway_public_ip_that_is_no_address_is_refused() {
        let mut s: Scenario = serde_norway::from_str(
            "name: x\nsubscription: s\nresourceGroup: r\ntenant: {id: t, domain: d}\nnatGateways:\n  - { name: natgw, region: westus, publicIp: natgw.example }\n",
        )
        .unwrap();
        let mut f = Findings::default();
        check(&s, &mut f);
        let codes: Vec<_> = f.0.iter().map(|x| x.code).collect();
        assert_eq!(codes, ["InvalidPublicIpAddress"]);
        s.nat_gateways[0].public_ip = "203.0.113.100".into();
        let mut f = Findings::default();
        check(&s, &mut f);
        assert!(f.0.is_empty());
    }
}
