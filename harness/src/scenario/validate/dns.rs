//! Private DNS zones: their vNet links name vNets of the landscape.

use super::{Findings, Index, not_found};
use crate::scenario::model::*;

pub(super) fn check(s: &Scenario, ix: &Index, f: &mut Findings) {
    for (i, z) in s.private_dns_zones.iter().enumerate() {
        for (j, v) in z.vnet_links.iter().enumerate() {
            if !ix.vnets.contains_key(v.as_str()) {
                f.add(
                    "ResourceNotFound",
                    format!("privateDnsZones[{i}].vnetLinks[{j}]"),
                    not_found(s, "Microsoft.Network/virtualNetworks", v),
                );
            }
        }
    }
}
