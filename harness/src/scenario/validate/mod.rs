//! Landscape validation: the checks Azure and Power Platform make, with their wording.
//!
//! Each rule has a stable code (Azure's error code where one exists) and names the offending
//! item by its path in the file; [`super::load`] turns paths into `file:line:col`. Texts quoted
//! from the Power Platform module or docs are marked with their source
//! (MicrosoftDocs/power-platform: `power-platform/admin/vnet-support-setup-configure.md` and
//! `vnet-support-overview.md`, and the `microsoft/PowerPlatform-EnterprisePolicies` module's
//! `Private/VnetValidations.ps1`, are the sources used here).
//!
//! One submodule per area of the landscape; [`check`] runs them in the order the findings are
//! reported (the order of the file's sections). NSG rule texts live with the typed rule in
//! [`crate::fabric::nsg`], which the control API shares.

use std::collections::HashMap;

use super::model::*;

mod dns;
mod endpoints;
mod environments;
mod identities;
mod nat;
mod networks;
mod nsgs;
mod peerings;
mod policies;
mod vaults;

pub use identities::KNOWN_ROLES;
pub use networks::available_addresses;
pub use vaults::{valid_secret_name, valid_vault_name};

/// The delegation service name for Power Platform vNet support.
pub const POWER_PLATFORM_DELEGATION: &str = "Microsoft.PowerPlatform/enterprisePolicies";

/// Every code `ppvnet validate` can report: this module's checks, the NSG rule checks of
/// [`crate::fabric::nsg::RuleError`], the connector file checks of [`super::connectors`] and
/// the stub mappings checks of [`super::stubs`].
/// A unit test keeps it equal to the codes those sources emit; the landscape tests require an
/// invalid landscape and a feature scenario for each.
pub const CODES: &[&str] = &[
    "ActiveRegionNotInGeo",
    "BadParameter",
    "CannotPeerVirtualNetworkToItself",
    "ConnectorDefinitionInvalid",
    "ConnectorFileUnreadable",
    "DelegatedSubnetSizeMismatch",
    "DuplicateResourceName",
    "EnvironmentLocationMismatch",
    "EnvironmentNotManaged",
    "EnvironmentTypeNotSupported",
    "EnvironmentVariableNotFound",
    "InvalidAccessPolicyPermission",
    "InvalidAccessTokenVersion",
    "InvalidAddressPrefixFormat",
    "InvalidCIDRNotation",
    "InvalidCommand",
    "InvalidGuid",
    "InvalidHost",
    "InvalidIpRule",
    "InvalidKeyVaultReference",
    "InvalidPolicyKind",
    "InvalidPublicIpAddress",
    "InvalidSchemaName",
    "InvalidScope",
    "InvalidServiceNameOnDelegation",
    "InvalidSoftDeleteRetentionDays",
    "InvalidUserPrincipalName",
    "InvalidVariableValue",
    "LocationNotAvailableForResourceType",
    "LocationNotSupported",
    "NatGatewayAndSubnetInDifferentRegions",
    "NatGatewayCannotBeUsedBySubnetsBelongingToDifferentVirtualNetworks",
    "NetcfgSubnetRangeOutsideVnet",
    "NetcfgSubnetRangesOverlap",
    "PolicyNotNetworkInjection",
    "PrincipalNotFound",
    "PrivateIPAddressNotInSubnet",
    "PublicIPAddressInUse",
    "RegionsNotSupportedPair",
    "ResourceNotFound",
    "RoleDefinitionDoesNotExist",
    "SecondVirtualNetworkRequired",
    "SecretNotFound",
    "SecurityRuleConflict",
    "SecurityRuleInvalidAddressPrefix",
    "SecurityRuleInvalidPortRange",
    "SecurityRuleInvalidPriority",
    "SecurityRuleInvalidProtocol",
    "StubMappingsInvalid",
    "SubnetAlreadyUsedByPolicy",
    "SubnetDelegatedCannotHostResources",
    "SubnetNotDelegated",
    "TooManyVirtualNetworks",
    "VaultNameNotValid",
    "VnetAddressSpacesOverlap",
];

/// One broken rule.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Finding {
    /// Stable rule code (Azure's error code where Azure has one).
    pub code: &'static str,
    /// Path of the offending item (`vnets[0].subnets[1].prefix`).
    pub path: String,
    pub message: String,
}

#[derive(Default)]
struct Findings(Vec<Finding>);

impl Findings {
    fn add(&mut self, code: &'static str, path: impl Into<String>, message: impl Into<String>) {
        self.0.push(Finding {
            code,
            path: path.into(),
            message: message.into(),
        });
    }
}

/// Checks the scenario. An empty result means the landscape can be materialized.
pub fn check(s: &Scenario) -> Vec<Finding> {
    let mut f = Findings::default();
    let ix = Index::new(s, &mut f);
    identities::check(s, &ix, &mut f);
    networks::check_regions(s, &mut f);
    nat::check(s, &mut f);
    let spaces = networks::check_vnets(s, &ix, &mut f);
    peerings::check(s, &ix, &spaces, &mut f);
    nsgs::check(s, &mut f);
    dns::check(s, &ix, &mut f);
    endpoints::check(s, &ix, &mut f);
    networks::check_hosts(s, &ix, &mut f);
    vaults::check(s, &ix, &mut f);
    vaults::check_apis(s, &ix, &mut f);
    policies::check(s, &ix, &mut f);
    environments::check(s, &ix, &mut f);
    environments::check_connectors(s, &ix, &mut f);
    f.0
}

/// Names of every kind of resource, for reference checks; duplicates are reported here.
struct Index<'a> {
    groups: HashMap<&'a str, usize>,
    users: HashMap<String, usize>,
    apps: HashMap<&'a str, usize>,
    sps: HashMap<&'a str, usize>,
    regions: HashMap<&'a str, usize>,
    vnets: HashMap<&'a str, usize>,
    nsgs: HashMap<&'a str, usize>,
    nats: HashMap<&'a str, usize>,
    zones: HashMap<&'a str, usize>,
    vaults: HashMap<&'a str, usize>,
    apis: HashMap<&'a str, usize>,
    policies: HashMap<&'a str, usize>,
    environments: HashMap<&'a str, usize>,
}

fn names<'a, T>(
    items: &'a [T],
    name: impl Fn(&'a T) -> &'a str,
    section: &str,
    kind: &str,
    f: &mut Findings,
) -> HashMap<&'a str, usize> {
    let mut map = HashMap::new();
    for (i, item) in items.iter().enumerate() {
        let n = name(item);
        if let Some(first) = map.insert(n, i) {
            map.insert(n, first);
            f.add(
                "DuplicateResourceName",
                format!("{section}[{i}].name"),
                format!(
                    "The {kind} '{n}' is defined more than once (first at {section}[{first}]); resource names must be unique."
                ),
            );
        }
    }
    map
}

impl<'a> Index<'a> {
    fn new(s: &'a Scenario, f: &mut Findings) -> Self {
        let mut users = HashMap::new();
        for (i, u) in s.users.iter().enumerate() {
            if let Some(first) = users.insert(u.upn.to_ascii_lowercase(), i) {
                users.insert(u.upn.to_ascii_lowercase(), first);
                f.add(
                    "DuplicateResourceName",
                    format!("users[{i}].upn"),
                    format!(
                        "The user '{}' is defined more than once (first at users[{first}]); user principal names must be unique.",
                        u.upn
                    ),
                );
            }
        }
        Index {
            groups: names(&s.groups, |g| g.name.as_str(), "groups", "group", f),
            users,
            apps: names(&s.apps, |a| a.name.as_str(), "apps", "app", f),
            sps: names(
                &s.service_principals,
                |a| a.name.as_str(),
                "servicePrincipals",
                "service principal",
                f,
            ),
            regions: names(&s.regions, |r| r.name.as_str(), "regions", "region", f),
            vnets: names(&s.vnets, |v| v.name.as_str(), "vnets", "virtual network", f),
            nsgs: names(
                &s.nsgs,
                |v| v.name.as_str(),
                "nsgs",
                "network security group",
                f,
            ),
            nats: names(
                &s.nat_gateways,
                |v| v.name.as_str(),
                "natGateways",
                "NAT gateway",
                f,
            ),
            zones: names(
                &s.private_dns_zones,
                |v| v.name.as_str(),
                "privateDnsZones",
                "private DNS zone",
                f,
            ),
            vaults: names(
                &s.key_vaults,
                |v| v.name.as_str(),
                "keyVaults",
                "key vault",
                f,
            ),
            apis: names(&s.apis, |v| v.name.as_str(), "apis", "API", f),
            policies: names(
                &s.enterprise_policies,
                |v| v.name.as_str(),
                "enterprisePolicies",
                "enterprise policy",
                f,
            ),
            environments: names(
                &s.environments,
                |v| v.name.as_str(),
                "environments",
                "environment",
                f,
            ),
        }
    }

    fn subnet(&self, s: &'a Scenario, vnet: &str, subnet: &str) -> Option<&'a Subnet> {
        let v = &s.vnets[*self.vnets.get(vnet)?];
        v.subnets.iter().find(|x| x.name == subnet)
    }

    fn principal_exists(&self, name: &str) -> bool {
        self.users.contains_key(&name.to_ascii_lowercase())
            || self.groups.contains_key(name)
            || self.apps.contains_key(name)
            || self.sps.contains_key(name)
    }
}

/// ARM's not-found wording.
fn not_found(s: &Scenario, provider_type: &str, name: &str) -> String {
    format!(
        "The Resource '{provider_type}/{name}' under resource group '{}' was not found.",
        s.resource_group
    )
}

fn vnet_id(s: &Scenario, vnet: &str) -> String {
    format!(
        "/subscriptions/{}/resourceGroups/{}/providers/Microsoft.Network/virtualNetworks/{vnet}",
        s.subscription, s.resource_group
    )
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    /// Every source that emits validation codes: the checks of this module, the NSG rule errors
    /// and the connector checks.
    const SOURCES: &[&str] = &[
        include_str!("mod.rs"),
        include_str!("dns.rs"),
        include_str!("endpoints.rs"),
        include_str!("environments.rs"),
        include_str!("identities.rs"),
        include_str!("nat.rs"),
        include_str!("networks.rs"),
        include_str!("nsgs.rs"),
        include_str!("peerings.rs"),
        include_str!("policies.rs"),
        include_str!("vaults.rs"),
        include_str!("../../fabric/nsg.rs"),
        include_str!("../connectors.rs"),
        include_str!("../stubs.rs"),
    ];

    /// The code-shaped string literals (`ResourceNotFound`) that follow `marker` after optional
    /// whitespace, such as the code argument of `f.add(` or the value of a `code:` field.
    fn literals_after<'a>(source: &'a str, marker: &str) -> Vec<&'a str> {
        source
            .match_indices(marker)
            .filter_map(|(i, _)| {
                let rest = source[i + marker.len()..].trim_start().strip_prefix('"')?;
                let (literal, _) = rest.split_once('"')?;
                let code_shaped = literal.starts_with(|c: char| c.is_ascii_uppercase())
                    && literal.chars().all(|c| c.is_ascii_alphanumeric());
                code_shaped.then_some(literal)
            })
            .collect()
    }

    /// The codes the sources emit: every literal passed as the code of `Findings::add` or set as
    /// the `code` of a finding or NSG rule error.
    fn emitted_codes() -> BTreeSet<&'static str> {
        SOURCES
            .iter()
            .flat_map(|s| {
                let mut codes = literals_after(s, ".add(");
                codes.extend(literals_after(s, "code:"));
                codes
            })
            .collect()
    }

    #[test]
    fn codes_lists_exactly_the_codes_the_sources_emit() {
        let emitted = emitted_codes();
        // The scan must see the sources it is meant to (a broken marker finds nothing).
        for sample in [
            "InvalidGuid",
            "SecurityRuleConflict",
            "ConnectorFileUnreadable",
        ] {
            assert!(emitted.contains(sample), "{sample} not found: {emitted:?}");
        }
        let listed: BTreeSet<&str> = super::CODES.iter().copied().collect();
        assert_eq!(listed.len(), super::CODES.len(), "CODES has duplicates");
        let missing: Vec<_> = emitted.difference(&listed).collect();
        let stale: Vec<_> = listed.difference(&emitted).collect();
        assert!(
            missing.is_empty() && stale.is_empty(),
            "add to CODES: {missing:?}; remove from CODES: {stale:?}"
        );
    }
}
