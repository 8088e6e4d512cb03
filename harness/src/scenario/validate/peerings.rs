//! vNet peerings: both ends exist, differ, and their address spaces do not overlap.

use super::networks::{Spaces, overlaps};
use super::{Findings, Index, not_found};
use crate::scenario::model::*;

pub(super) fn check(s: &Scenario, ix: &Index, spaces: &Spaces, f: &mut Findings) {
    for (i, p) in s.peerings.iter().enumerate() {
        let path = format!("peerings[{i}]");
        let mut ok = true;
        for (field, v) in [("from", &p.from), ("to", &p.to)] {
            if !ix.vnets.contains_key(v.as_str()) {
                f.add(
                    "ResourceNotFound",
                    format!("{path}.{field}"),
                    not_found(s, "Microsoft.Network/virtualNetworks", v),
                );
                ok = false;
            }
        }
        if !ok {
            continue;
        }
        if p.from == p.to {
            f.add(
                "CannotPeerVirtualNetworkToItself",
                format!("{path}.to"),
                format!("Virtual network '{}' cannot be peered with itself.", p.from),
            );
            continue;
        }
        let (a, b) = (&spaces[p.from.as_str()], &spaces[p.to.as_str()]);
        let common: Vec<String> = a
            .iter()
            .filter(|x| b.iter().any(|y| overlaps(x, y)))
            .map(|x| x.to_string())
            .collect();
        if !common.is_empty() {
            f.add(
                "VnetAddressSpacesOverlap",
                format!("{path}.to"),
                format!(
                    "Cannot create or update peering '{}'. Virtual networks '{}' and '{}' cannot be peered because their address spaces overlap. Overlapping address prefixes: {}",
                    p.name, p.from, p.to, common.join(", ")
                ),
            );
        }
    }
}
