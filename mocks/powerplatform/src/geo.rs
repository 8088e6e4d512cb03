//! Geos and their delegation regions.
//!
//! Source: the "Supported regions" table of the Virtual Network support overview
//! (MicrosoftDocs/power-platform `admin/vnet-support-overview.md`) and the module
//! `microsoft/PowerPlatform-EnterprisePolicies` (`VnetValidations.ps1`), which also accepts
//! `centralus`/`eastus2` for `unitedstates`. Two-region geos need one delegated vNet in each
//! region of one pair; single-region geos take one vNet.

/// One Power Platform geo and the Azure regions it accepts for delegated vNets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Geo {
    /// Enterprise policy `location` value.
    pub location: &'static str,
    /// Supported region pairs; a single-region geo has one "pair" with the same region twice.
    pub pairs: &'static [(&'static str, &'static str)],
}

impl Geo {
    /// Whether the geo needs two delegated vNets (`Test-PowerPlatformRegionRequiresPair`).
    pub fn requires_pair(&self) -> bool {
        self.pairs.iter().any(|(a, b)| a != b)
    }

    /// Every Azure region the geo accepts.
    pub fn regions(&self) -> Vec<&'static str> {
        let mut out = Vec::new();
        for (a, b) in self.pairs {
            for r in [*a, *b] {
                if !out.contains(&r) {
                    out.push(r);
                }
            }
        }
        out
    }

    /// Whether two regions, in either order, are a supported pair (`Assert-RegionPairing`).
    pub fn is_pair(&self, r1: &str, r2: &str) -> bool {
        r1 != r2
            && self
                .pairs
                .iter()
                .any(|(a, b)| (*a == r1 && *b == r2) || (*a == r2 && *b == r1))
    }

    /// The pairs in the wording of the module's error text (`eastus, westus; centralus, eastus2`).
    pub fn pairs_text(&self) -> String {
        self.pairs
            .iter()
            .map(|(a, b)| format!("{a}, {b}"))
            .collect::<Vec<_>>()
            .join("; ")
    }
}

const GEOS: &[Geo] = &[
    Geo {
        location: "unitedstates",
        pairs: &[("eastus", "westus"), ("centralus", "eastus2")],
    },
    Geo {
        location: "southafrica",
        pairs: &[("southafricanorth", "southafricawest")],
    },
    Geo {
        location: "uk",
        pairs: &[("uksouth", "ukwest")],
    },
    Geo {
        location: "japan",
        pairs: &[("japaneast", "japanwest")],
    },
    Geo {
        location: "india",
        pairs: &[("centralindia", "southindia")],
    },
    Geo {
        location: "france",
        pairs: &[("francecentral", "francesouth")],
    },
    Geo {
        location: "europe",
        pairs: &[("westeurope", "northeurope")],
    },
    Geo {
        location: "germany",
        pairs: &[("germanynorth", "germanywestcentral")],
    },
    Geo {
        location: "switzerland",
        pairs: &[("switzerlandnorth", "switzerlandwest")],
    },
    Geo {
        location: "canada",
        pairs: &[("canadacentral", "canadaeast")],
    },
    Geo {
        location: "brazil",
        pairs: &[("brazilsouth", "brazilsouth")],
    },
    Geo {
        location: "australia",
        pairs: &[("australiasoutheast", "australiaeast")],
    },
    Geo {
        location: "asia",
        pairs: &[("eastasia", "southeastasia")],
    },
    Geo {
        location: "uae",
        pairs: &[("uaenorth", "uaenorth")],
    },
    Geo {
        location: "korea",
        pairs: &[("koreasouth", "koreacentral")],
    },
    Geo {
        location: "norway",
        pairs: &[("norwaywest", "norwayeast")],
    },
    Geo {
        location: "singapore",
        pairs: &[("southeastasia", "southeastasia")],
    },
    Geo {
        location: "sweden",
        pairs: &[("swedencentral", "swedencentral")],
    },
    Geo {
        location: "italy",
        pairs: &[("italynorth", "italynorth")],
    },
    Geo {
        location: "usgov",
        pairs: &[("usgovtexas", "usgovvirginia")],
    },
];

/// Looks a geo up by its enterprise policy location.
pub fn geo(location: &str) -> Option<&'static Geo> {
    GEOS.iter()
        .find(|g| g.location.eq_ignore_ascii_case(location))
}

/// All supported enterprise policy locations, comma separated, as the module lists them.
pub fn supported_locations() -> String {
    GEOS.iter()
        .map(|g| g.location)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Whether an environment location matches a policy location, with the aliases
/// `Enable-SubnetInjection` tolerates (unitedstates↔unitedstateseuap, unitedkingdom↔uk).
pub fn same_location(environment: &str, policy: &str) -> bool {
    fn canonical(s: &str) -> String {
        match s.to_ascii_lowercase().as_str() {
            "unitedstateseuap" => "unitedstates".into(),
            "unitedkingdom" => "uk".into(),
            other => other.into(),
        }
    }
    canonical(environment) == canonical(policy)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn united_states_needs_a_pair_and_accepts_both_documented_pairs() {
        let us = geo("unitedstates").unwrap();
        assert!(us.requires_pair());
        assert!(us.is_pair("westus", "eastus"));
        assert!(us.is_pair("eastus2", "centralus"));
        assert!(!us.is_pair("westus", "eastus2"));
        assert!(!us.is_pair("westus", "westus"));
    }

    #[test]
    fn single_region_geos_need_one_vnet() {
        let br = geo("brazil").unwrap();
        assert!(!br.requires_pair());
        assert_eq!(br.regions(), vec!["brazilsouth"]);
    }

    #[test]
    fn location_aliases_match() {
        assert!(same_location("unitedstateseuap", "unitedstates"));
        assert!(same_location("unitedkingdom", "uk"));
        assert!(!same_location("europe", "unitedstates"));
        assert!(geo("atlantis").is_none());
    }
}
