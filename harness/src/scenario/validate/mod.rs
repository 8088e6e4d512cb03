//! Landscape validation: the checks Azure and Power Platform make, with their wording.
//!
//! Each rule has a stable code (Azure's error code where one exists) and names the offending
//! item by its path in the file; [`super::load`] turns paths into `file:line:col`. Texts quoted
//! from the Power Platform module or docs are marked with their source
//! (`powerplatform-vnet.md` §1.4–1.6 is the reference used here).

use std::collections::{HashMap, HashSet};
use std::net::Ipv4Addr;

use ipnet::Ipv4Net;
use ppvnet_powerplatform::{KeyVaultReference, geo};

use super::model::*;

/// The delegation service name for Power Platform vNet support.
pub const POWER_PLATFORM_DELEGATION: &str = "Microsoft.PowerPlatform/enterprisePolicies";

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

/// Built-in role names that can be assigned in a landscape.
pub const KNOWN_ROLES: &[&str] = &[
    "Key Vault Administrator",
    "Key Vault Secrets Officer",
    "Key Vault Secrets User",
    "Key Vault Reader",
    "Owner",
    "Contributor",
    "Reader",
];

/// Checks the scenario. An empty result means the landscape can be materialized.
pub fn check(s: &Scenario) -> Vec<Finding> {
    let mut f = Findings::default();
    let ix = Index::new(s, &mut f);
    check_identities(s, &ix, &mut f);
    check_network(s, &ix, &mut f);
    check_vaults_and_apis(s, &ix, &mut f);
    check_policies_and_environments(s, &ix, &mut f);
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

fn check_guid(f: &mut Findings, path: String, what: &str, value: &str) {
    if uuid::Uuid::parse_str(value).is_err() {
        f.add(
            "InvalidGuid",
            path,
            format!("The {what} '{value}' is not a valid GUID."),
        );
    }
}

fn check_identities(s: &Scenario, ix: &Index, f: &mut Findings) {
    check_guid(f, "tenant.id".into(), "tenant id", &s.tenant.id);
    check_guid(f, "subscription".into(), "subscription id", &s.subscription);
    for (i, g) in s.groups.iter().enumerate() {
        check_guid(f, format!("groups[{i}].id"), "group object id", &g.id);
    }
    for (i, u) in s.users.iter().enumerate() {
        check_guid(
            f,
            format!("users[{i}].objectId"),
            "user object id",
            &u.object_id,
        );
        let domain_ok = u.upn.rsplit_once('@').is_some_and(|(local, d)| {
            !local.is_empty() && d.eq_ignore_ascii_case(&s.tenant.domain)
        });
        if !domain_ok {
            f.add(
                "InvalidUserPrincipalName",
                format!("users[{i}].upn"),
                format!(
                    "The user principal name '{}' must be name@{} (the tenant's verified domain).",
                    u.upn, s.tenant.domain
                ),
            );
        }
        for (j, g) in u.groups.iter().enumerate() {
            if !ix.groups.contains_key(g.as_str()) {
                f.add(
                    "ResourceNotFound",
                    format!("users[{i}].groups[{j}]"),
                    format!(
                        "The group '{g}' was not found in tenant '{}'.",
                        s.tenant.domain
                    ),
                );
            }
        }
    }
    for (i, a) in s.apps.iter().enumerate() {
        check_guid(
            f,
            format!("apps[{i}].clientId"),
            "application (client) id",
            &a.client_id,
        );
        check_guid(
            f,
            format!("apps[{i}].servicePrincipalId"),
            "service principal object id",
            &a.service_principal_id,
        );
        if let Some(v) = a.requested_access_token_version
            && !(1..=2).contains(&v)
        {
            f.add(
                "InvalidAccessTokenVersion",
                format!("apps[{i}].requestedAccessTokenVersion"),
                format!("requestedAccessTokenVersion must be null, 1 or 2, not {v}."),
            );
        }
        for (j, r) in a.required_resource_access.iter().enumerate() {
            let known = ix.apps.contains_key(r.resource.as_str())
                || ix.sps.contains_key(r.resource.as_str())
                || s.apps
                    .iter()
                    .any(|x| x.identifier_uris.contains(&r.resource))
                || s.service_principals
                    .iter()
                    .any(|x| x.identifier_uris.contains(&r.resource));
            if !known {
                f.add(
                    "ResourceNotFound",
                    format!("apps[{i}].requiredResourceAccess[{j}].resource"),
                    format!(
                        "The resource '{}' is neither an app, a service principal nor an identifier URI of this tenant.",
                        r.resource
                    ),
                );
            }
        }
        for (j, ra) in a.app_role_assignments.iter().enumerate() {
            if !ix.principal_exists(&ra.principal) {
                f.add(
                    "PrincipalNotFound",
                    format!("apps[{i}].appRoleAssignments[{j}].principal"),
                    format!(
                        "Principal '{}' does not exist in the directory {}.",
                        ra.principal, s.tenant.id
                    ),
                );
            }
            if !a.app_roles.iter().any(|r| r.value == ra.role) {
                f.add(
                    "ResourceNotFound",
                    format!("apps[{i}].appRoleAssignments[{j}].role"),
                    format!("The app '{}' defines no app role '{}'.", a.name, ra.role),
                );
            }
        }
    }
    for (i, sp) in s.service_principals.iter().enumerate() {
        check_guid(
            f,
            format!("servicePrincipals[{i}].appId"),
            "application id",
            &sp.app_id,
        );
        check_guid(
            f,
            format!("servicePrincipals[{i}].objectId"),
            "object id",
            &sp.object_id,
        );
    }
    for (i, ra) in s.role_assignments.iter().enumerate() {
        if !ix.principal_exists(&ra.principal) {
            f.add(
                "PrincipalNotFound",
                format!("roleAssignments[{i}].principal"),
                format!(
                    "Principal '{}' does not exist in the directory {}.",
                    ra.principal, s.tenant.id
                ),
            );
        }
        if !KNOWN_ROLES.contains(&ra.role.as_str()) {
            f.add(
                "RoleDefinitionDoesNotExist",
                format!("roleAssignments[{i}].role"),
                format!(
                    "The specified role definition '{}' does not exist.",
                    ra.role
                ),
            );
        }
        check_scope(s, ix, f, format!("roleAssignments[{i}].scope"), &ra.scope);
    }
}

/// A role assignment scope: a vault, or a secret below it.
fn check_scope(s: &Scenario, ix: &Index, f: &mut Findings, path: String, scope: &str) {
    let prefix = format!(
        "/subscriptions/{}/resourceGroups/{}/providers/Microsoft.KeyVault/vaults/",
        s.subscription, s.resource_group
    );
    let Some(rest) = scope
        .get(..prefix.len())
        .filter(|p| p.eq_ignore_ascii_case(&prefix))
        .map(|_| &scope[prefix.len()..])
    else {
        f.add(
            "InvalidScope",
            path,
            format!(
                "The scope '{scope}' is not valid for a role assignment in this landscape; expected {prefix}{{vault}}[/secrets/{{name}}]."
            ),
        );
        return;
    };
    let vault = rest.split('/').next().unwrap_or_default();
    let tail: Vec<&str> = rest.split('/').skip(1).collect();
    if !(tail.is_empty() || (tail.len() == 2 && tail[0] == "secrets" && !tail[1].is_empty())) {
        f.add(
            "InvalidScope",
            path,
            format!("The scope '{scope}' must name a vault or a secret of a vault."),
        );
    } else if !ix.vaults.contains_key(vault) {
        f.add(
            "ResourceNotFound",
            path,
            not_found(s, "Microsoft.KeyVault/vaults", vault),
        );
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

fn overlaps(a: &Ipv4Net, b: &Ipv4Net) -> bool {
    a.contains(&b.network()) || b.contains(&a.network())
}

/// Addresses Azure lets a subnet's resources use: the size minus the five it reserves (§1.6).
pub fn available_addresses(prefix: &Ipv4Net) -> u64 {
    (1u64 << (32 - u32::from(prefix.prefix_len()))).saturating_sub(5)
}

fn check_network(s: &Scenario, ix: &Index, f: &mut Findings) {
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
    check_nat_gateways(s, f);
    let mut spaces: HashMap<&str, Vec<Ipv4Net>> = HashMap::new();
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
            if let Some(net) = parse_net(f, format!("{path}.prefix"), &sn.prefix) {
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
        spaces.insert(v.name.as_str(), space);
    }
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
    for (i, n) in s.nsgs.iter().enumerate() {
        let mut by_priority: HashMap<(Direction, u32), &str> = HashMap::new();
        for (j, r) in n.rules.iter().enumerate() {
            let path = format!("nsgs[{i}].rules[{j}]");
            if !(100..=4096).contains(&r.priority) {
                f.add(
                    "SecurityRuleInvalidPriority",
                    format!("{path}.priority"),
                    format!(
                        "Security rule has invalid Priority. Value provided: {}. Allowed values are from 100 to 4096.",
                        r.priority
                    ),
                );
            } else if let Some(other) =
                by_priority.insert((r.direction, r.priority), r.name.as_str())
            {
                f.add(
                    "SecurityRuleConflict",
                    format!("{path}.priority"),
                    format!(
                        "Security rule {} conflicts with rule {other}. Rules cannot have the same Priority and Direction.",
                        r.name
                    ),
                );
            }
            if !["*", "Tcp", "Udp", "Icmp", "Esp", "Ah"].contains(&r.protocol.as_str()) {
                f.add(
                    "SecurityRuleInvalidProtocol",
                    format!("{path}.protocol"),
                    format!("Security rule {} has invalid Protocol '{}'. Allowed values are *, Tcp, Udp, Icmp, Esp, Ah.", r.name, r.protocol),
                );
            }
            for (field, list) in [
                ("sourceAddressPrefixes", &r.source_address_prefixes),
                (
                    "destinationAddressPrefixes",
                    &r.destination_address_prefixes,
                ),
            ] {
                for (k, a) in list.iter().enumerate() {
                    let tag = [
                        "*",
                        "VirtualNetwork",
                        "Internet",
                        "AzureLoadBalancer",
                        "AzureActiveDirectory",
                    ]
                    .contains(&a.as_str());
                    let addr = a.parse::<Ipv4Net>().is_ok() || a.parse::<Ipv4Addr>().is_ok();
                    if !tag && !addr {
                        f.add(
                            "SecurityRuleInvalidAddressPrefix",
                            format!("{path}.{field}[{k}]"),
                            format!(
                                "Security rule {} has invalid Address prefix. Value provided: {a}",
                                r.name
                            ),
                        );
                    }
                }
            }
            for (field, list) in [
                ("sourcePortRanges", &r.source_port_ranges),
                ("destinationPortRanges", &r.destination_port_ranges),
            ] {
                for (k, p) in list.iter().enumerate() {
                    if parse_port_range(p).is_none() {
                        f.add(
                            "SecurityRuleInvalidPortRange",
                            format!("{path}.{field}[{k}]"),
                            format!("Security rule {} has invalid Port range. Value provided: {p}. Value should be an integer OR integer range with '-' delimiter. Valid range 0-65535.", r.name),
                        );
                    }
                }
            }
        }
    }
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
            &path,
            &pe.vnet,
            &pe.subnet,
            "private endpoint",
            &pe.name,
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
    for (i, h) in s.hosts.iter().enumerate() {
        match (&h.vnet, &h.subnet) {
            (Some(v), Some(sn)) => {
                check_subnet_use(s, ix, f, &format!("hosts[{i}]"), v, sn, "host", &h.name)
            }
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
    }
}

/// Azure reserves the network address, the next three and the broadcast address.
fn usable_host(net: &Ipv4Net, ip: Ipv4Addr) -> bool {
    let offset = u32::from(ip) - u32::from(net.network());
    offset >= 4 && ip != net.broadcast()
}

/// `*`, `443` or `1000-2000`.
pub fn parse_port_range(text: &str) -> Option<(u16, u16)> {
    if text == "*" {
        return Some((0, 65535));
    }
    let (a, b) = text.split_once('-').unwrap_or((text, text));
    let (a, b) = (a.trim().parse::<u16>().ok()?, b.trim().parse::<u16>().ok()?);
    (a <= b).then_some((a, b))
}

/// A resource placed in a subnet: the subnet must exist and must not be delegated (§1.2: "the
/// delegated subnet can't be used for any other resources or delegated to other services").
#[allow(clippy::too_many_arguments)]
fn check_subnet_use(
    s: &Scenario,
    ix: &Index,
    f: &mut Findings,
    path: &str,
    vnet: &str,
    subnet: &str,
    kind: &str,
    name: &str,
) {
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

/// Key Vault object names: "1-127 character string, starting with a letter and containing only
/// 0-9, a-z, A-Z, and -" (keyvault.md §5).
pub fn valid_secret_name(name: &str) -> bool {
    (1..=127).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_alphabetic())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
}

/// Vault names: 3-24 characters, letters, digits and hyphens, starting with a letter, ending
/// with a letter or digit, no consecutive hyphens (ARM's `VaultNameNotValid`).
pub fn valid_vault_name(name: &str) -> bool {
    (3..=24).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_alphabetic())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        && !name.contains("--")
}

fn check_vaults_and_apis(s: &Scenario, ix: &Index, f: &mut Findings) {
    for (i, v) in s.key_vaults.iter().enumerate() {
        let path = format!("keyVaults[{i}]");
        if !valid_vault_name(&v.name) {
            f.add(
                "VaultNameNotValid",
                format!("{path}.name"),
                format!(
                    "The vault name '{}' is invalid. A vault's name must be between 3-24 alphanumeric characters. The name must begin with a letter, end with a letter or digit, and not contain consecutive hyphens.",
                    v.name
                ),
            );
        }
        if !ix.regions.contains_key(v.region.as_str()) {
            f.add(
                "LocationNotAvailableForResourceType",
                format!("{path}.region"),
                format!(
                    "The provided location '{}' is not one of the landscape's regions.",
                    v.region
                ),
            );
        }
        if !(7..=90).contains(&v.soft_delete_retention_days) {
            f.add(
                "InvalidSoftDeleteRetentionDays",
                format!("{path}.softDeleteRetentionDays"),
                format!(
                    "The soft delete retention period must be between 7 and 90 days, not {}.",
                    v.soft_delete_retention_days
                ),
            );
        }
        if let Some(acls) = &v.network_acls {
            for (j, ip) in acls.ip_rules.iter().enumerate() {
                if ip.parse::<Ipv4Net>().is_err() && ip.parse::<Ipv4Addr>().is_err() {
                    f.add(
                        "InvalidIpRule",
                        format!("{path}.networkAcls.ipRules[{j}]"),
                        format!("The IP rule '{ip}' is not an IPv4 address or CIDR range."),
                    );
                }
            }
            for (j, r) in acls.virtual_network_rules.iter().enumerate() {
                if ix.subnet(s, &r.vnet, &r.subnet).is_none() {
                    f.add(
                        "ResourceNotFound",
                        format!("{path}.networkAcls.virtualNetworkRules[{j}]"),
                        format!(
                            "Subnet '{}' not found in virtual network '{}'.",
                            r.subnet, r.vnet
                        ),
                    );
                }
            }
        }
        for (j, p) in v.access_policies.iter().enumerate() {
            if !ix.principal_exists(&p.principal) {
                f.add(
                    "PrincipalNotFound",
                    format!("{path}.accessPolicies[{j}].principal"),
                    format!(
                        "Principal '{}' does not exist in the directory {}.",
                        p.principal, s.tenant.id
                    ),
                );
            }
            const PERMISSIONS: &[&str] = &[
                "get", "list", "set", "delete", "recover", "backup", "restore", "purge", "all",
            ];
            for (k, perm) in p.secrets.iter().enumerate() {
                if !PERMISSIONS.contains(&perm.to_ascii_lowercase().as_str()) {
                    f.add(
                        "InvalidAccessPolicyPermission",
                        format!("{path}.accessPolicies[{j}].secrets[{k}]"),
                        format!(
                            "'{perm}' is not a secret permission; use {}.",
                            PERMISSIONS.join(", ")
                        ),
                    );
                }
            }
        }
        let mut secret_names = HashSet::new();
        for (j, sec) in v.secrets.iter().enumerate() {
            let sp = format!("{path}.secrets[{j}]");
            if !valid_secret_name(&sec.name) {
                f.add(
                    "BadParameter",
                    format!("{sp}.name"),
                    format!("The secret name '{}' is invalid: a secret name is a 1-127 character string, starting with a letter and containing only 0-9, a-z, A-Z, and -.", sec.name),
                );
            }
            if !secret_names.insert(sec.name.to_ascii_lowercase()) {
                f.add(
                    "DuplicateResourceName",
                    format!("{sp}.name"),
                    format!(
                        "The secret '{}' is seeded more than once in vault '{}'.",
                        sec.name, v.name
                    ),
                );
            }
            if sec.value.len() > 25 * 1024 {
                f.add(
                    "BadParameter",
                    format!("{sp}.value"),
                    format!(
                        "The secret '{}' is {} bytes; a secret value is at most 25 KB.",
                        sec.name,
                        sec.value.len()
                    ),
                );
            }
        }
    }
    for (i, a) in s.apis.iter().enumerate() {
        let path = format!("apis[{i}]");
        if !ix.apps.contains_key(a.app.as_str()) {
            f.add(
                "ResourceNotFound",
                format!("{path}.app"),
                format!(
                    "The app registration '{}' was not found in tenant '{}'.",
                    a.app, s.tenant.domain
                ),
            );
        }
        if !ix.regions.contains_key(a.region.as_str()) {
            f.add(
                "LocationNotAvailableForResourceType",
                format!("{path}.region"),
                format!(
                    "The provided location '{}' is not one of the landscape's regions.",
                    a.region
                ),
            );
        }
        if let ApiImplementation::Command { argv } = &a.implementation
            && argv.is_empty()
        {
            f.add(
                "InvalidCommand",
                format!("{path}.implementation"),
                "An external API needs a command to run (argv is empty).",
            );
        }
    }
    // A resource with public access disabled and no private endpoint is unreachable by design;
    // that is legal in Azure, so it is not an error here.
}

fn check_policies_and_environments(s: &Scenario, ix: &Index, f: &mut Findings) {
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
                f.add("TooManyVirtualNetworks", format!("{path}.virtualNetworks"), "A NetworkInjection policy takes exactly two virtual networks in a two-region geo.");
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
    for (i, e) in s.environments.iter().enumerate() {
        let path = format!("environments[{i}]");
        let supported = ["Production", "Default", "Sandbox", "Developer"];
        if !supported.contains(&e.kind.as_str()) && e.enterprise_policy.is_some() {
            f.add(
                "EnvironmentTypeNotSupported",
                format!("{path}.type"),
                format!("Virtual Network support needs a Managed Environment of type Production, Default, Sandbox or Developer; '{}' is not supported.", e.kind),
            );
        } else if e.enterprise_policy.is_some() && !e.managed {
            f.add(
                "EnvironmentNotManaged",
                format!("{path}.managed"),
                format!("Environment '{}' must be a Managed Environment to use Virtual Network support.", e.name),
            );
        }
        let Some(g) = geo(&e.location) else {
            f.add(
                "LocationNotSupported",
                format!("{path}.location"),
                format!("The PowerPlatform region [{}] is not supported. The supported enterprise policy locations are {}", e.location, ppvnet_powerplatform::geo::supported_locations()),
            );
            continue;
        };
        if !g.regions().contains(&e.active_region.as_str())
            || !ix.regions.contains_key(e.active_region.as_str())
        {
            f.add(
                "ActiveRegionNotInGeo",
                format!("{path}.activeRegion"),
                format!("Environment '{}' in geo '{}' cannot be active in region '{}'; the geo's regions are {}.", e.name, g.location, e.active_region, g.regions().join(", ")),
            );
        }
        if let Some(pn) = &e.enterprise_policy {
            match ix.policies.get(pn.as_str()) {
                None => f.add(
                    "ResourceNotFound",
                    format!("{path}.enterprisePolicy"),
                    not_found(s, "Microsoft.PowerPlatform/enterprisePolicies", pn),
                ),
                Some(&pi) => {
                    let p = &s.enterprise_policies[pi];
                    if p.kind != "NetworkInjection" {
                        f.add("PolicyNotNetworkInjection", format!("{path}.enterprisePolicy"), "The specified policy is not a Subnet Injection (NetworkInjection) policy");
                    } else if !ppvnet_powerplatform::geo::same_location(&e.location, &p.location) {
                        f.add(
                            "EnvironmentLocationMismatch",
                            format!("{path}.location"),
                            format!("Environment location '{}' does not match the enterprise policy location '{}'", e.location, p.location),
                        );
                    }
                }
            }
        }
        let mut var_names = HashSet::new();
        for (j, v) in e.variables.iter().enumerate() {
            let vp = format!("{path}.variables[{j}]");
            if !var_names.insert(v.schema_name.as_str()) {
                f.add("DuplicateResourceName", format!("{vp}.schemaName"), format!("The environment variable '{}' is defined more than once in environment '{}'.", v.schema_name, e.name));
            }
            if v.schema_name.len() > 100 || !v.schema_name.contains('_') {
                f.add(
                    "InvalidSchemaName",
                    format!("{vp}.schemaName"),
                    format!("The schema name '{}' must carry a publisher prefix (prefix_Name) and be at most 100 characters.", v.schema_name),
                );
            }
            check_variable_value(s, ix, f, &vp, v);
        }
    }
    for (i, c) in s.connectors.iter().enumerate() {
        for (j, e) in c.environments.iter().enumerate() {
            if !ix.environments.contains_key(e.as_str()) {
                f.add(
                    "ResourceNotFound",
                    format!("connectors[{i}].environments[{j}]"),
                    format!("The environment '{e}' was not found."),
                );
            }
        }
    }
}

/// NAT gateways: their public IP, and the one-vNet rule.
///
/// Azure assigns a gateway's public IP; a landscape names it, and ppvnet's emulated internet
/// must be able to route it: it has to be an IPv4 address of 203.0.113.0/24 above the block
/// ppvnet gives internet clients (203.0.113.0–99, see `landscape`), and two gateways cannot
/// share it. A gateway serves subnets of one virtual network only; Azure refuses a second one
/// with `NatGatewayCannotBeUsedBySubnetsBelongingToDifferentVirtualNetworks` (text as ARM returns
/// it, seen in microsoft/azure_arc issue #3288).
fn check_nat_gateways(s: &Scenario, f: &mut Findings) {
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

fn vnet_id(s: &Scenario, vnet: &str) -> String {
    format!(
        "/subscriptions/{}/resourceGroups/{}/providers/Microsoft.Network/virtualNetworks/{vnet}",
        s.subscription, s.resource_group
    )
}

fn check_variable_value(
    s: &Scenario,
    ix: &Index,
    f: &mut Findings,
    path: &str,
    v: &EnvironmentVariable,
) {
    let vp = format!("{path}.value");
    match v.kind {
        VariableType::Secret => match KeyVaultReference::parse(&v.value) {
            Err(e) => f.add("InvalidKeyVaultReference", vp, e.to_string()),
            Ok(r) => match ix.vaults.get(r.vault.as_str()) {
                None => f.add(
                    "ResourceNotFound",
                    vp,
                    not_found(s, "Microsoft.KeyVault/vaults", &r.vault),
                ),
                Some(&k) => {
                    if !r.subscription.eq_ignore_ascii_case(&s.subscription)
                        || !r.resource_group.eq_ignore_ascii_case(&s.resource_group)
                    {
                        f.add(
                            "ResourceNotFound",
                            vp.clone(),
                            not_found(s, "Microsoft.KeyVault/vaults", &r.vault),
                        );
                    } else if !valid_secret_name(&r.secret) {
                        f.add("BadParameter", vp, format!("The secret name '{}' in the reference is invalid: a secret name is a 1-127 character string, starting with a letter and containing only 0-9, a-z, A-Z, and -.", r.secret));
                    } else if !s.key_vaults[k]
                        .secrets
                        .iter()
                        .any(|x| x.name.eq_ignore_ascii_case(&r.secret))
                    {
                        f.add(
                            "SecretNotFound",
                            vp,
                            format!("A secret with (name/id) {} was not found in this key vault. If you recently deleted this secret you may be able to recover it using the correct recovery command. For help resolving this issue, please see https://go.microsoft.com/fwlink/?linkid=2125182", r.secret),
                        );
                    }
                }
            },
        },
        VariableType::Number if v.value.trim().parse::<f64>().is_err() => f.add(
            "InvalidVariableValue",
            vp,
            format!("'{}' is not a Number.", v.value),
        ),
        VariableType::Boolean
            if !["true", "false", "yes", "no"].contains(&v.value.to_ascii_lowercase().as_str()) =>
        {
            f.add(
                "InvalidVariableValue",
                vp,
                format!("'{}' is not a Boolean (true or false).", v.value),
            )
        }
        VariableType::Json if serde_json::from_str::<serde_json::Value>(&v.value).is_err() => f
            .add(
                "InvalidVariableValue",
                vp,
                format!("'{}' is not valid JSON.", v.value),
            ),
        _ if v.value.len() > 2000 => f.add(
            "InvalidVariableValue",
            vp,
            "An environment variable value is at most 2000 characters.",
        ),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_key_vault_rules() {
        assert!(valid_secret_name("cases-connector-secret"));
        assert!(!valid_secret_name("1abc"));
        assert!(!valid_secret_name("a_b"));
        assert!(!valid_secret_name(&"a".repeat(128)));
        assert!(valid_vault_name("kv-contoso-prod"));
        assert!(!valid_vault_name("kv--x"));
        assert!(!valid_vault_name("kv-x-"));
        assert!(!valid_vault_name("kv"));
        assert!(!valid_vault_name("1kv"));
    }

    #[test]
    fn port_ranges() {
        assert_eq!(parse_port_range("*"), Some((0, 65535)));
        assert_eq!(parse_port_range("443"), Some((443, 443)));
        assert_eq!(parse_port_range("1000-2000"), Some((1000, 2000)));
        assert_eq!(parse_port_range("2000-1000"), None);
        assert_eq!(parse_port_range("http"), None);
    }

    #[test]
    fn a_nat_gateway_public_ip_that_is_no_address_is_refused() {
        let mut s: Scenario = serde_norway::from_str(
            "name: x\nsubscription: s\nresourceGroup: r\ntenant: {id: t, domain: d}\nnatGateways:\n  - { name: natgw, region: westus, publicIp: natgw.example }\n",
        )
        .unwrap();
        let mut f = Findings::default();
        check_nat_gateways(&s, &mut f);
        let codes: Vec<_> = f.0.iter().map(|x| x.code).collect();
        assert_eq!(codes, ["InvalidPublicIpAddress"]);
        s.nat_gateways[0].public_ip = "203.0.113.100".into();
        let mut f = Findings::default();
        check_nat_gateways(&s, &mut f);
        assert!(f.0.is_empty());
    }

    #[test]
    fn available_addresses_subtract_azure_reserved_five() {
        assert_eq!(available_addresses(&"10.0.0.0/24".parse().unwrap()), 251);
        assert_eq!(available_addresses(&"10.0.0.0/25".parse().unwrap()), 123);
    }
}
