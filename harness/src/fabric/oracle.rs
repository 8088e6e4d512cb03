//! The reachability oracle: from the landscape and the runtime network state, may a host open a
//! TCP connection to a service face, and what does a host name resolve to from a host?
//!
//! Every fabric enforces these answers in its own way and is tested against them. The rules, with
//! what they rely on (Power Platform's vNet support docs, MicrosoftDocs/power-platform:
//! power-platform/admin/vnet-support-overview.md, unless said otherwise):
//! - Routing: a vNet reaches its own address space; a peered vNet's space only when the peering is
//!   *connected* (both directions exist, both allow virtual network access, both enabled), and
//!   only directly (peering is not transitive). Private addresses are not routable from the
//!   internet.
//! - NSGs: outbound rules of the source subnet, then inbound rules of the destination subnet,
//!   with Azure's default rules and service tags ([`super::nsg`]). NSGs apply to private endpoint
//!   traffic as if the subnet's `privateEndpointNetworkPolicies` were `Enabled` (the landscape
//!   attaches NSGs to private endpoint subnets precisely to filter that traffic).
//! - Egress: "Internet access from containers is turned off by default": a delegated subnet
//!   reaches public endpoints only through a NAT gateway; Entra stays reachable through the
//!   `AzureActiveDirectory` service tag unless an NSG denies it. Other subnets use Azure's default
//!   outbound access.
//! - Source address translation: a connection that leaves through a NAT gateway reaches the
//!   public endpoint from the gateway's public IP ([`Oracle::seen_source`]), which is what a
//!   vault firewall's IP rules and its `Client address:` text see; private destinations (same
//!   vNet, peering, private endpoints) see the private address. Azure's default outbound access
//!   also translates, to a Microsoft-owned address the landscape does not name; the fabrics keep
//!   the private source there.
//! - Service endpoints: a subnet named in a vault's `networkAcls.virtualNetworkRules` has the
//!   `Microsoft.KeyVault` service endpoint (Azure refuses such a rule on a subnet without it).
//!   The endpoint's system route (next hop `VirtualNetworkServiceEndpoint`) carries the subnet's
//!   traffic to every Key Vault's public address over the backbone, ahead of the NAT gateway and
//!   the default route, with the private source and the vNet identity the vault's vNet rules
//!   match on ([`Route::ServiceEndpoint`]).
//! - Public network access disabled is enforced by the service, not the network: the TCP
//!   connection opens and the service answers 403 (`ForbiddenByConnection` for Key Vault), so the
//!   oracle allows the connection and names the refusal.
//! - A region outage is a Power Platform regional outage (the "Secure Power Platform access to
//!   resources inside your virtual network" article, MicrosoftDocs/power-platform): the
//!   environments' runtime hosts in that region (`pp-*-<region>`) are down, and an environment
//!   running there fails over to its other region "without explicit action by the customer".
//!   Azure resources stay up.
//! - Private DNS: `<vault>.vault.azure.net` is a CNAME to `<vault>.privatelink.vaultcore.azure.net`
//!   once the vault has a private endpoint (App Service: `privatelink.azurewebsites.net`). A vNet
//!   linked to a zone of that name gets the zone's A record, or NXDOMAIN when the zone has none
//!   (Azure's well-known behaviour without the `NxDomainRedirect` fallback); any other vNet and
//!   the internet get the public address.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

use super::Face;
use super::nsg::{self, Flow, Protocol, Rule, RuleError, ServiceTag, TagContext};
use crate::landscape::{HostKind, Landscape, Service, ServiceKind};
use crate::scenario::model::{Access, Direction, NsgRule, Scenario};
use ppvnet_common::net::SubnetRef;

/// A source port the oracle assumes when the caller has none (the start of the IANA ephemeral range).
pub const EPHEMERAL_PORT: u16 = 49152;

/// Where a host sits.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct HostInfo {
    pub name: String,
    pub address: Ipv4Addr,
    /// Its subnet, or `None` on the public internet.
    pub subnet: Option<SubnetRef>,
    /// Environment and region of a Power Platform runtime host.
    pub power_platform: Option<(String, String)>,
    pub private_endpoint_of: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SubnetInfo {
    pub prefix: Ipv4Net,
    pub nsg: Option<String>,
    pub nat_gateway: Option<String>,
    pub delegated: bool,
    /// Has the `Microsoft.KeyVault` service endpoint (a vault's vNet rule names the subnet).
    pub key_vault_endpoint: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VnetInfo {
    pub region: String,
    pub address_space: Vec<Ipv4Net>,
    pub subnets: BTreeMap<String, SubnetInfo>,
}

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct PeeringInfo {
    pub name: String,
    pub from: String,
    pub to: String,
    pub allow_virtual_network_access: bool,
    /// Runtime switch (the control API's "peering off").
    pub enabled: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct ZoneInfo {
    zone: String,
    links: Vec<String>,
}

/// How an allowed connection travels.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "via", rename_all = "snake_case")]
pub enum Route {
    /// Within one vNet.
    SameVnet { vnet: String },
    /// Over a connected peering.
    Peering { from: String, to: String },
    /// From the public internet to a public endpoint.
    Internet,
    /// Out of a subnet through its NAT gateway (the source becomes the gateway's public IP).
    NatGateway { name: String },
    /// Over the subnet's service endpoint to the service's public address (Azure backbone, private
    /// source address and vNet identity kept).
    ServiceEndpoint { service: String },
    /// Azure's default outbound access of a non-delegated subnet.
    DefaultOutbound,
    /// Platform path of a service tag (Entra from a delegated subnet).
    ServiceTag { tag: String },
    /// A host connecting to its own address: the traffic never leaves it, no NSG sees it.
    Local,
}

impl Route {
    /// Whether the connection leaves the vNets for the public internet.
    pub fn crosses_internet(&self) -> bool {
        matches!(
            self,
            Route::Internet | Route::NatGateway { .. } | Route::DefaultOutbound
        )
    }
}

/// Why a connection is refused or dropped.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum DenyReason {
    /// The source is a Power Platform host of a region in outage.
    SourceDown { host: String, region: String },
    /// An NSG rule of the source subnet denies the flow.
    NsgOutbound {
        nsg: String,
        rule: String,
        priority: u32,
    },
    /// An NSG rule of the destination subnet denies the flow.
    NsgInbound {
        nsg: String,
        rule: String,
        priority: u32,
    },
    /// The destination address is not routable from the source.
    NoRoute { detail: String },
    /// A delegated subnet without a NAT gateway has no internet egress.
    NoInternetEgress { vnet: String, subnet: String },
}

/// How a denial looks to the client.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Denial {
    /// Packets are discarded: the client waits until it times out (NSG deny, no route).
    Drop,
    /// The connection is reset at once (the source host is down).
    Refuse,
}

impl DenyReason {
    pub fn denial(&self) -> Denial {
        match self {
            DenyReason::SourceDown { .. } => Denial::Refuse,
            _ => Denial::Drop,
        }
    }

    /// A short machine-friendly label (metrics).
    pub fn kind(&self) -> &'static str {
        match self {
            DenyReason::SourceDown { .. } => "source_down",
            DenyReason::NsgOutbound { .. } => "nsg_outbound",
            DenyReason::NsgInbound { .. } => "nsg_inbound",
            DenyReason::NoRoute { .. } => "no_route",
            DenyReason::NoInternetEgress { .. } => "no_internet_egress",
        }
    }
}

impl fmt::Display for DenyReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DenyReason::SourceDown { host, region } => {
                write!(f, "host {host} is down (region {region} outage)")
            }
            DenyReason::NsgOutbound {
                nsg,
                rule,
                priority,
            } => {
                write!(
                    f,
                    "outbound rule {rule} ({priority}) of NSG {nsg} denies the flow"
                )
            }
            DenyReason::NsgInbound {
                nsg,
                rule,
                priority,
            } => {
                write!(
                    f,
                    "inbound rule {rule} ({priority}) of NSG {nsg} denies the flow"
                )
            }
            DenyReason::NoRoute { detail } => write!(f, "no route: {detail}"),
            DenyReason::NoInternetEgress { vnet, subnet } => write!(
                f,
                "subnet {subnet} of {vnet} is delegated to Power Platform and has no NAT gateway: internet access from containers is turned off"
            ),
        }
    }
}

/// The oracle's answer for one connection.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "decision", rename_all = "snake_case")]
pub enum Decision {
    Allow {
        route: Route,
        /// The service refuses at the application layer (public network access disabled).
        #[serde(skip_serializing_if = "Option::is_none")]
        service_refusal: Option<String>,
    },
    Deny {
        reason: DenyReason,
        behaviour: Denial,
    },
}

impl Decision {
    /// The deciding rule or route as flow log text (`same_vnet`, `peering:a->b`, an NSG rule name).
    pub fn label(&self) -> String {
        match self {
            Decision::Allow { route, .. } => match route {
                Route::SameVnet { .. } => "same_vnet".into(),
                Route::Peering { from, to } => format!("peering:{from}->{to}"),
                Route::Internet => "internet".into(),
                Route::NatGateway { name } => format!("nat_gateway:{name}"),
                Route::ServiceEndpoint { service } => format!("service_endpoint:{service}"),
                Route::DefaultOutbound => "default_outbound".into(),
                Route::ServiceTag { tag } => format!("service_tag:{tag}"),
                Route::Local => "local".into(),
            },
            Decision::Deny { reason, .. } => match reason {
                DenyReason::NsgOutbound { rule, .. } | DenyReason::NsgInbound { rule, .. } => {
                    rule.clone()
                }
                other => other.kind().into(),
            },
        }
    }

    /// Whether a TCP connection opens.
    pub fn connects(&self) -> bool {
        matches!(self, Decision::Allow { .. })
    }

    fn deny(reason: DenyReason) -> Self {
        Decision::Deny {
            behaviour: reason.denial(),
            reason,
        }
    }
}

/// What a host name resolves to from somewhere.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "answer", rename_all = "snake_case")]
pub enum Resolution {
    Address {
        /// CNAMEs followed, in order.
        cnames: Vec<String>,
        address: Ipv4Addr,
        service: String,
        face: Face,
    },
    NxDomain {
        cnames: Vec<String>,
    },
}

/// The face a DNS answer leads to: the one [`Face`] type, under the name the Gherkin steps
/// import (`tests/steps/network.rs`); it serializes as the face's label.
pub use ppvnet_common::Face as FaceName;

/// Errors of oracle queries and runtime changes.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum OracleError {
    #[error("host '{0}' is not part of the landscape")]
    UnknownHost(String),
    #[error("service '{0}' is not part of the landscape")]
    UnknownService(String),
    #[error("service '{service}' has no private endpoint '{endpoint}'")]
    UnknownFace { service: String, endpoint: String },
    #[error("peering '{0}' is not part of the landscape")]
    UnknownPeering(String),
    #[error("network security group '{0}' is not part of the landscape")]
    UnknownNsg(String),
    #[error("network security group '{nsg}' has no rule '{rule}'")]
    UnknownRule { nsg: String, rule: String },
    #[error("{0}")]
    InvalidRule(String),
    #[error("region '{0}' is not part of the landscape")]
    UnknownRegion(String),
    #[error("environment '{0}' is not part of the landscape")]
    UnknownEnvironment(String),
    #[error("environment '{environment}' cannot run in region '{region}': {why}")]
    CannotActivate {
        environment: String,
        region: String,
        why: String,
    },
}

/// A snapshot of the runtime network state.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct NetworkState {
    pub peerings: Vec<PeeringInfo>,
    pub nsgs: BTreeMap<String, Vec<NsgRule>>,
    pub region_outages: BTreeSet<String>,
    /// Environment → active region.
    pub active_regions: BTreeMap<String, String>,
}

/// An environment's runtime hosts and where it runs now.
#[derive(Clone, Debug, PartialEq, Eq)]
struct EnvironmentInfo {
    /// Region → host name.
    hosts: BTreeMap<String, String>,
    active_region: String,
}

/// The service endpoint type a Key Vault vNet rule needs on its subnet.
pub const KEY_VAULT_SERVICE_ENDPOINT: &str = "Microsoft.KeyVault";

/// The rules of one NSG as declared (what the state and the control API report back, in their
/// own spelling) and as parsed once for evaluation; both lists are kept index-aligned.
#[derive(Clone, Debug, Default)]
struct NsgRules {
    declared: Vec<NsgRule>,
    parsed: Vec<Rule>,
}

impl NsgRules {
    /// The rules of a validated landscape. Validation refuses unparsable rules, so none is
    /// dropped here in practice; one that were would match no flow, as it always did.
    fn from_landscape(rules: &[NsgRule]) -> Self {
        let mut out = Self::default();
        for declared in rules {
            if let Ok(rule) = Rule::try_from(declared) {
                out.push(declared.clone(), rule);
            }
        }
        out
    }

    fn push(&mut self, declared: NsgRule, rule: Rule) {
        self.declared.push(declared);
        self.parsed.push(rule);
    }

    fn remove(&mut self, name: &str) -> Option<NsgRule> {
        let i = self.declared.iter().position(|r| r.name == name)?;
        self.parsed.remove(i);
        Some(self.declared.remove(i))
    }
}

/// The oracle for one landscape, with its runtime state.
#[derive(Clone, Debug)]
pub struct Oracle {
    hosts: BTreeMap<String, HostInfo>,
    services: BTreeMap<String, Service>,
    vnets: BTreeMap<String, VnetInfo>,
    peerings: Vec<PeeringInfo>,
    nsgs: BTreeMap<String, NsgRules>,
    nat_gateways: BTreeMap<String, Ipv4Addr>,
    zones: BTreeMap<String, ZoneInfo>,
    /// Private endpoint → its DNS zone (resource name).
    pe_zones: BTreeMap<String, Option<String>>,
    environments: BTreeMap<String, EnvironmentInfo>,
    regions: BTreeSet<String>,
    outages: BTreeSet<String>,
}

/// The vNets of a landscape with their subnets; a subnet named in a vault's vNet rules has the
/// `Microsoft.KeyVault` service endpoint.
fn vnet_infos(s: &Scenario) -> BTreeMap<String, VnetInfo> {
    let key_vault_endpoints: BTreeSet<(&str, &str)> = s
        .key_vaults
        .iter()
        .filter_map(|v| v.network_acls.as_ref())
        .flat_map(|a| &a.virtual_network_rules)
        .map(|r| (r.vnet.as_str(), r.subnet.as_str()))
        .collect();
    s.vnets
        .iter()
        .map(|v| {
            let subnets = v
                .subnets
                .iter()
                .filter_map(|sn| {
                    Some((
                        sn.name.clone(),
                        SubnetInfo {
                            prefix: sn.prefix.parse().ok()?,
                            nsg: sn.nsg.clone(),
                            nat_gateway: sn.nat_gateway.clone(),
                            delegated: sn.delegation.is_some(),
                            key_vault_endpoint: key_vault_endpoints
                                .contains(&(v.name.as_str(), sn.name.as_str())),
                        },
                    ))
                })
                .collect();
            (
                v.name.clone(),
                VnetInfo {
                    region: v.region.clone(),
                    address_space: v
                        .address_space
                        .iter()
                        .filter_map(|a| a.parse().ok())
                        .collect(),
                    subnets,
                },
            )
        })
        .collect()
}

/// Where each host of a landscape sits.
fn host_infos(landscape: &Landscape) -> BTreeMap<String, HostInfo> {
    landscape
        .hosts
        .iter()
        .map(|h| {
            (
                h.name.clone(),
                HostInfo {
                    name: h.name.clone(),
                    address: h.address,
                    subnet: h.subnet.clone(),
                    power_platform: match &h.kind {
                        HostKind::PowerPlatform {
                            environment,
                            region,
                        } => Some((environment.clone(), region.clone())),
                        _ => None,
                    },
                    private_endpoint_of: match &h.kind {
                        HostKind::PrivateEndpoint { target } => Some(target.clone()),
                        _ => None,
                    },
                },
            )
        })
        .collect()
}

/// The private DNS zone a service's private endpoints register in, and the record label.
pub fn privatelink_zone(service: &Service) -> Option<(&'static str, String)> {
    let label = service.host_name.split('.').next()?.to_ascii_lowercase();
    match service.kind {
        ServiceKind::KeyVault => Some(("privatelink.vaultcore.azure.net", label)),
        ServiceKind::Api => Some(("privatelink.azurewebsites.net", label)),
        ServiceKind::Entra | ServiceKind::PowerPlatform | ServiceKind::Arm => None,
    }
}

impl Oracle {
    pub fn new(landscape: &Landscape) -> Self {
        let s = &landscape.scenario;
        let vnets = vnet_infos(s);
        let hosts = host_infos(landscape);
        let mut environments: BTreeMap<String, EnvironmentInfo> = s
            .environments
            .iter()
            .map(|e| {
                (
                    e.name.clone(),
                    EnvironmentInfo {
                        hosts: BTreeMap::new(),
                        active_region: e.active_region.clone(),
                    },
                )
            })
            .collect();
        for h in hosts.values() {
            if let Some((env, region)) = &h.power_platform
                && let Some(e) = environments.get_mut(env)
            {
                e.hosts.insert(region.clone(), h.name.clone());
            }
        }
        Self {
            services: landscape
                .services
                .iter()
                .map(|x| (x.name.clone(), x.clone()))
                .collect(),
            hosts,
            vnets,
            peerings: s
                .peerings
                .iter()
                .map(|p| PeeringInfo {
                    name: p.name.clone(),
                    from: p.from.clone(),
                    to: p.to.clone(),
                    allow_virtual_network_access: p.allow_virtual_network_access,
                    enabled: true,
                })
                .collect(),
            nsgs: s
                .nsgs
                .iter()
                .map(|n| (n.name.clone(), NsgRules::from_landscape(&n.rules)))
                .collect(),
            nat_gateways: s
                .nat_gateways
                .iter()
                .filter_map(|n| Some((n.name.clone(), n.public_ip.parse().ok()?)))
                .collect(),
            zones: s
                .private_dns_zones
                .iter()
                .map(|z| {
                    (
                        z.name.clone(),
                        ZoneInfo {
                            zone: z.zone.to_ascii_lowercase(),
                            links: z.vnet_links.clone(),
                        },
                    )
                })
                .collect(),
            pe_zones: s
                .private_endpoints
                .iter()
                .map(|p| (p.name.clone(), p.private_dns_zone.clone()))
                .collect(),
            environments,
            regions: s.regions.iter().map(|r| r.name.clone()).collect(),
            outages: BTreeSet::new(),
        }
    }

    pub fn hosts(&self) -> &BTreeMap<String, HostInfo> {
        &self.hosts
    }

    pub fn host(&self, name: &str) -> Result<&HostInfo, OracleError> {
        self.hosts
            .get(name)
            .ok_or_else(|| OracleError::UnknownHost(name.into()))
    }

    pub fn services(&self) -> &BTreeMap<String, Service> {
        &self.services
    }

    pub fn vnets(&self) -> &BTreeMap<String, VnetInfo> {
        &self.vnets
    }

    /// The parsed rules of an NSG (none for an unknown one).
    pub fn nsg_rules(&self, nsg: &str) -> &[Rule] {
        self.nsgs
            .get(nsg)
            .map(|n| n.parsed.as_slice())
            .unwrap_or_default()
    }

    pub fn nat_gateway_address(&self, name: &str) -> Option<Ipv4Addr> {
        self.nat_gateways.get(name).copied()
    }

    /// Every NAT gateway and its public IP.
    pub fn nat_gateways(&self) -> &BTreeMap<String, Ipv4Addr> {
        &self.nat_gateways
    }

    /// The source address the destination of an allowed connection from `source` sees: the NAT
    /// gateway's public IP on a [`Route::NatGateway`], else the host's own address.
    pub fn seen_source(&self, source: &HostInfo, route: &Route) -> Ipv4Addr {
        match route {
            Route::NatGateway { name } => self.nat_gateway_address(name).unwrap_or(source.address),
            _ => source.address,
        }
    }

    /// The public addresses of every Key Vault (the destinations of a `Microsoft.KeyVault`
    /// service endpoint).
    pub fn key_vault_addresses(&self) -> Vec<Ipv4Net> {
        self.services
            .values()
            .filter(|s| s.kind == ServiceKind::KeyVault)
            .map(|s| Ipv4Net::from(s.public_address))
            .collect()
    }

    /// Every face of every service.
    pub fn faces(&self) -> Vec<(String, Face)> {
        self.services
            .values()
            .flat_map(|s| {
                std::iter::once((s.name.clone(), Face::Public)).chain(
                    s.private_endpoints
                        .iter()
                        .map(|pe| (s.name.clone(), Face::PrivateEndpoint(pe.clone()))),
                )
            })
            .collect()
    }

    /// The emulated address of a face and the subnet it sits in.
    pub fn face_address(
        &self,
        service: &str,
        face: &Face,
    ) -> Result<(Ipv4Addr, Option<SubnetRef>), OracleError> {
        let svc = self
            .services
            .get(service)
            .ok_or_else(|| OracleError::UnknownService(service.into()))?;
        match face {
            Face::Public => Ok((svc.public_address, None)),
            Face::PrivateEndpoint(pe) => {
                let unknown = || OracleError::UnknownFace {
                    service: service.into(),
                    endpoint: pe.clone(),
                };
                if !svc.private_endpoints.contains(pe) {
                    return Err(unknown());
                }
                let h = self.hosts.get(pe).ok_or_else(unknown)?;
                Ok((h.address, h.subnet.clone()))
            }
        }
    }

    /// Whether an established connection from `source` to `service`'s `face` still has a path:
    /// its source is not a host of a region in outage, and a connection between two vNets still
    /// has their peering. NSG rules are left out on purpose: an NSG keeps a flow record per
    /// connection and judges an established one by that record, so a rule change affects new
    /// connections only (learn.microsoft.com, "Network security groups": "A flow record is created
    /// for existing connections. Communication is allowed or denied based on the connection state
    /// of the flow record"; re-evaluating existing flows is the opt-in `flushConnection` NSG
    /// property, which landscapes do not model). A peering switched off withdraws its routes
    /// and an outage stops the region's hosts, established connections included.
    /// UNVERIFIED: how quickly Azure stops an established flow over a disconnected peering; the
    /// fabrics cut it at once.
    pub fn path_holds(
        &self,
        source: &str,
        service: &str,
        face: &Face,
    ) -> Result<bool, OracleError> {
        let src = self.host(source)?;
        if let Some((_, region)) = &src.power_platform
            && self.outages.contains(region)
        {
            return Ok(false);
        }
        let (_, dst_subnet) = self.face_address(service, face)?;
        Ok(match (&src.subnet, &dst_subnet) {
            (Some(s), Some(d)) if s.vnet != d.vnet => self.connected(&s.vnet, &d.vnet).is_some(),
            _ => true,
        })
    }

    /// Whether traffic flows between two vNets over a peering right now.
    pub fn connected(&self, a: &str, b: &str) -> Option<&PeeringInfo> {
        let dir = |x: &str, y: &str| {
            self.peerings
                .iter()
                .find(|p| p.from == x && p.to == y && p.enabled && p.allow_virtual_network_access)
        };
        dir(b, a)?;
        dir(a, b)
    }

    /// The vNets connected to `vnet` by peering (direct ones only: peering is not transitive).
    pub fn peers_of(&self, vnet: &str) -> Vec<String> {
        self.vnets
            .keys()
            .filter(|o| o.as_str() != vnet && self.connected(vnet, o).is_some())
            .cloned()
            .collect()
    }

    /// The service tags as seen from a subnet of `vnet`.
    pub fn tags_for(&self, vnet: &str) -> TagContext {
        let mut virtual_network = self
            .vnets
            .get(vnet)
            .map(|v| v.address_space.clone())
            .unwrap_or_default();
        for p in self.peers_of(vnet) {
            if let Some(v) = self.vnets.get(&p) {
                virtual_network.extend(v.address_space.iter().copied());
            }
        }
        TagContext {
            virtual_network,
            azure_active_directory: self.entra_addresses(),
        }
    }

    /// The public addresses behind the `AzureActiveDirectory` tag.
    pub fn entra_addresses(&self) -> Vec<Ipv4Net> {
        self.services
            .values()
            .filter(|s| s.kind == ServiceKind::Entra)
            .map(|s| Ipv4Net::from(s.public_address))
            .collect()
    }

    fn subnet(&self, vnet: &str, subnet: &str) -> Option<&SubnetInfo> {
        self.vnets.get(vnet)?.subnets.get(subnet)
    }

    fn nsg_check(
        &self,
        vnet: &str,
        subnet: &str,
        direction: Direction,
        flow: &Flow,
    ) -> Result<(), DenyReason> {
        let Some(nsg) = self.subnet(vnet, subnet).and_then(|s| s.nsg.clone()) else {
            return Ok(());
        };
        let v = nsg::evaluate(self.nsg_rules(&nsg), direction, flow, &self.tags_for(vnet));
        match v.access {
            Access::Allow => Ok(()),
            Access::Deny => Err(match direction {
                Direction::Outbound => DenyReason::NsgOutbound {
                    nsg,
                    rule: v.rule,
                    priority: v.priority,
                },
                Direction::Inbound => DenyReason::NsgInbound {
                    nsg,
                    rule: v.rule,
                    priority: v.priority,
                },
            }),
        }
    }

    /// May `source` open a TCP connection to `service`'s `face` on `port`?
    pub fn decide(
        &self,
        source: &str,
        service: &str,
        face: &Face,
        port: u16,
    ) -> Result<Decision, OracleError> {
        self.decide_flow(source, EPHEMERAL_PORT, service, face, port)
    }

    /// [`Self::decide`] with the client's source port (NSG rules may name source ports).
    pub fn decide_flow(
        &self,
        source: &str,
        source_port: u16,
        service: &str,
        face: &Face,
        port: u16,
    ) -> Result<Decision, OracleError> {
        let src = self.host(source)?;
        let (dst, dst_subnet) = self.face_address(service, face)?;
        let svc = &self.services[service];
        if let Some((_, region)) = &src.power_platform
            && self.outages.contains(region)
        {
            return Ok(Decision::deny(DenyReason::SourceDown {
                host: source.into(),
                region: region.clone(),
            }));
        }
        if src.address == dst {
            return Ok(Decision::Allow {
                route: Route::Local,
                service_refusal: None,
            });
        }
        let flow = Flow {
            protocol: Protocol::Tcp,
            source: src.address,
            source_port,
            destination: dst,
            destination_port: port,
        };
        let route = match (&src.subnet, &dst_subnet) {
            // Public internet to a private address.
            (None, Some(SubnetRef { vnet, .. })) => {
                return Ok(Decision::deny(DenyReason::NoRoute {
                    detail: format!(
                        "{dst} is a private address of {vnet}, not routable from the internet"
                    ),
                }));
            }
            (None, None) => Route::Internet,
            (
                Some(SubnetRef {
                    vnet: sv,
                    subnet: ss,
                }),
                Some(SubnetRef {
                    vnet: dv,
                    subnet: ds,
                }),
            ) => {
                if let Err(r) = self.nsg_check(sv, ss, Direction::Outbound, &flow) {
                    return Ok(Decision::deny(r));
                }
                let route = if sv == dv {
                    Route::SameVnet { vnet: sv.clone() }
                } else if self.connected(sv, dv).is_some() {
                    Route::Peering {
                        from: sv.clone(),
                        to: dv.clone(),
                    }
                } else {
                    return Ok(Decision::deny(DenyReason::NoRoute {
                        detail: format!("{sv} has no connected peering with {dv}"),
                    }));
                };
                if let Err(r) = self.nsg_check(dv, ds, Direction::Inbound, &flow) {
                    return Ok(Decision::deny(r));
                }
                route
            }
            (
                Some(SubnetRef {
                    vnet: sv,
                    subnet: ss,
                }),
                None,
            ) => {
                if let Err(r) = self.nsg_check(sv, ss, Direction::Outbound, &flow) {
                    return Ok(Decision::deny(r));
                }
                let sub = self.subnet(sv, ss);
                let endpoint =
                    svc.kind == ServiceKind::KeyVault && sub.is_some_and(|x| x.key_vault_endpoint);
                match sub.and_then(|x| x.nat_gateway.clone()) {
                    // The service endpoint's route is more specific than the NAT gateway's and
                    // the default route, and is not internet egress.
                    _ if endpoint => Route::ServiceEndpoint {
                        service: KEY_VAULT_SERVICE_ENDPOINT.into(),
                    },
                    Some(name) => Route::NatGateway { name },
                    None if sub.is_some_and(|x| x.delegated) => {
                        if svc.kind == ServiceKind::Entra {
                            Route::ServiceTag {
                                tag: ServiceTag::AzureActiveDirectory.to_string(),
                            }
                        } else {
                            return Ok(Decision::deny(DenyReason::NoInternetEgress {
                                vnet: sv.clone(),
                                subnet: ss.clone(),
                            }));
                        }
                    }
                    None => Route::DefaultOutbound,
                }
            }
        };
        let service_refusal = (*face == Face::Public && !svc.public_network_access).then(|| {
            match svc.kind {
                ServiceKind::KeyVault => "403 ForbiddenByConnection: public network access is disabled and the request is not from a trusted service nor via an approved private link".to_string(),
                _ => "403 Forbidden: public network access to the app is disabled".to_string(),
            }
        });
        Ok(Decision::Allow {
            route,
            service_refusal,
        })
    }

    /// What `name` resolves to from `host` (by its vNet's DNS view).
    pub fn resolve_from(&self, host: &str, name: &str) -> Result<Resolution, OracleError> {
        let h = self.host(host)?;
        Ok(self.resolve_in(h.subnet.as_ref().map(|r| r.vnet.as_str()), name))
    }

    /// What `name` resolves to inside `vnet` (`None`: on the public internet).
    pub fn resolve_in(&self, vnet: Option<&str>, name: &str) -> Resolution {
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        // OAuth connections' consent redirect (`global.consent.azure-apim.net`) is answered by
        // the Power Platform service, whose certificate names it: a browser following Entra's
        // redirect there reaches the consent callback (UNVERIFIED: Microsoft's real chain of
        // CNAMEs behind the name is not published; one CNAME to the service stands for it).
        if name == crate::landscape::CONSENT_HOST_NAME
            && let Some(pp) = self
                .services
                .values()
                .find(|s| s.kind == ServiceKind::PowerPlatform)
        {
            return Resolution::Address {
                cnames: vec![pp.host_name.clone()],
                address: pp.public_address,
                service: pp.name.clone(),
                face: Face::Public,
            };
        }
        let mut cnames = Vec::new();
        let mut target: Option<(&Service, String)> = None;
        for svc in self.services.values() {
            let zone = privatelink_zone(svc);
            if svc.host_name.eq_ignore_ascii_case(&name) {
                if let (Some((zone, label)), false) = (&zone, svc.private_endpoints.is_empty()) {
                    let cname = format!("{label}.{zone}");
                    cnames.push(cname);
                    target = Some((svc, zone.to_string()));
                } else {
                    return Resolution::Address {
                        cnames,
                        address: svc.public_address,
                        service: svc.name.clone(),
                        face: Face::Public,
                    };
                }
                break;
            }
            if let Some((zone, label)) = &zone
                && name == format!("{label}.{zone}")
            {
                target = Some((svc, zone.to_string()));
                break;
            }
        }
        let Some((svc, zone)) = target else {
            return Resolution::NxDomain { cnames };
        };
        let linked: Vec<&String> = self
            .zones
            .iter()
            .filter(|(_, z)| z.zone == zone && vnet.is_some_and(|v| z.links.iter().any(|l| l == v)))
            .map(|(n, _)| n)
            .collect();
        if linked.is_empty() {
            return Resolution::Address {
                cnames,
                address: svc.public_address,
                service: svc.name.clone(),
                face: Face::Public,
            };
        }
        // The record of a zone instance: the private endpoints registered in it for this label.
        for pe in &svc.private_endpoints {
            let registered = self
                .pe_zones
                .get(pe)
                .and_then(|z| z.as_ref())
                .is_some_and(|z| linked.contains(&z));
            if registered && let Some(h) = self.hosts.get(pe) {
                return Resolution::Address {
                    cnames,
                    address: h.address,
                    service: svc.name.clone(),
                    face: Face::PrivateEndpoint(pe.clone()),
                };
            }
        }
        Resolution::NxDomain { cnames }
    }

    /// The host an environment runs on now.
    pub fn environment_host(&self, environment: &str) -> Result<String, OracleError> {
        let e = self
            .environments
            .get(environment)
            .ok_or_else(|| OracleError::UnknownEnvironment(environment.into()))?;
        e.hosts
            .get(&e.active_region)
            .cloned()
            .ok_or_else(|| OracleError::CannotActivate {
                environment: environment.into(),
                region: e.active_region.clone(),
                why: "it has no runtime host there".into(),
            })
    }

    pub fn state(&self) -> NetworkState {
        NetworkState {
            peerings: self.peerings.clone(),
            nsgs: self
                .nsgs
                .iter()
                .map(|(name, rules)| (name.clone(), rules.declared.clone()))
                .collect(),
            region_outages: self.outages.clone(),
            active_regions: self
                .environments
                .iter()
                .map(|(n, e)| (n.clone(), e.active_region.clone()))
                .collect(),
        }
    }

    pub fn peerings(&self) -> &[PeeringInfo] {
        &self.peerings
    }

    /// Turns one direction of a peering on or off.
    pub fn set_peering(&mut self, name: &str, enabled: bool) -> Result<(), OracleError> {
        let p = self
            .peerings
            .iter_mut()
            .find(|p| p.name == name)
            .ok_or_else(|| OracleError::UnknownPeering(name.into()))?;
        p.enabled = enabled;
        Ok(())
    }

    /// Adds a rule to an NSG, with Azure's checks (priority 100–4096, unique per direction,
    /// unique name, valid protocol, prefixes and ports), answering the first that fails.
    pub fn add_nsg_rule(&mut self, nsg: &str, rule: NsgRule) -> Result<(), OracleError> {
        let rules = self
            .nsgs
            .get_mut(nsg)
            .ok_or_else(|| OracleError::UnknownNsg(nsg.into()))?;
        let invalid = |e: RuleError| OracleError::InvalidRule(e.to_string());
        let parsed = Rule::try_from(&rule);
        // Azure checks a priority out of range first, then the rule against its neighbours,
        // then the rule's other properties.
        if nsg::PRIORITIES.contains(&rule.priority) {
            if let Some(other) = rules
                .parsed
                .iter()
                .find(|r| r.direction == rule.direction && r.priority == rule.priority)
            {
                return Err(invalid(RuleError::conflict(&rule.name, &other.name)));
            }
            if rules.parsed.iter().any(|r| r.name == rule.name) {
                return Err(OracleError::InvalidRule(nsg::duplicate_rule_message(
                    &rule.name, nsg,
                )));
            }
        }
        let parsed = parsed.map_err(invalid)?;
        rules.push(rule, parsed);
        Ok(())
    }

    pub fn remove_nsg_rule(&mut self, nsg: &str, rule: &str) -> Result<NsgRule, OracleError> {
        self.nsgs
            .get_mut(nsg)
            .ok_or_else(|| OracleError::UnknownNsg(nsg.into()))?
            .remove(rule)
            .ok_or_else(|| OracleError::UnknownRule {
                nsg: nsg.into(),
                rule: rule.into(),
            })
    }

    /// Starts or ends a Power Platform outage of a region. Environments running there fail over
    /// to another of their regions that is up; the result lists them as (environment, region).
    pub fn set_region_outage(
        &mut self,
        region: &str,
        down: bool,
    ) -> Result<Vec<(String, String)>, OracleError> {
        if !self.regions.contains(region) {
            return Err(OracleError::UnknownRegion(region.into()));
        }
        if !down {
            self.outages.remove(region);
            return Ok(vec![]);
        }
        self.outages.insert(region.into());
        let mut moved = Vec::new();
        for (name, e) in self.environments.iter_mut() {
            if e.active_region != region {
                continue;
            }
            if let Some(to) = e.hosts.keys().find(|r| !self.outages.contains(*r)) {
                e.active_region = to.clone();
                moved.push((name.clone(), to.clone()));
            }
        }
        Ok(moved)
    }

    /// Moves an environment to a region (a manual failover or failback).
    pub fn set_active_region(
        &mut self,
        environment: &str,
        region: &str,
    ) -> Result<(), OracleError> {
        let e = self
            .environments
            .get_mut(environment)
            .ok_or_else(|| OracleError::UnknownEnvironment(environment.into()))?;
        let fail = |why: &str| OracleError::CannotActivate {
            environment: environment.into(),
            region: region.into(),
            why: why.into(),
        };
        if !e.hosts.contains_key(region) {
            return Err(fail(
                "it has no delegated subnet or runtime host in that region",
            ));
        }
        if self.outages.contains(region) {
            return Err(fail("the region is in outage"));
        }
        e.active_region = region.into();
        Ok(())
    }
}

/// Landscapes for the unit tests of the oracle and of the fabrics built on it.
#[cfg(test)]
pub(crate) mod test_landscapes {
    use super::Oracle;

    /// The oracle of a landscape text (variants of `nat-gateway.yaml`).
    pub fn oracle(text: &str) -> Oracle {
        let l = crate::scenario::load_str(text, std::path::Path::new("nat-gateway.yaml"))
            .unwrap_or_else(|e| panic!("{e}"));
        Oracle::new(&l)
    }

    /// The text of `scenarios/nat-gateway.yaml`.
    pub fn nat_gateway_yaml() -> String {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../scenarios/nat-gateway.yaml");
        std::fs::read_to_string(path).unwrap()
    }
}

#[cfg(test)]
mod tests {
    use super::test_landscapes::{nat_gateway_yaml, oracle};
    use super::*;

    fn allowed_route(d: Decision) -> Route {
        match d {
            Decision::Allow { route, .. } => route,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_nat_gateway_is_the_source_public_endpoints_see_and_a_service_endpoint_bypasses_it() {
        let o = oracle(&nat_gateway_yaml());
        let seen = |host: &str, service: &str| {
            let d = o.decide(host, service, &Face::Public, 443).unwrap();
            o.seen_source(o.host(host).unwrap(), &allowed_route(d))
        };
        assert_eq!(
            seen("pp-prod-westus", "kv-firewall"),
            Ipv4Addr::new(203, 0, 113, 100)
        );
        assert_eq!(
            seen("pp-test-westus", "kv-public"),
            Ipv4Addr::new(203, 0, 113, 101)
        );
        assert_eq!(
            seen("internet", "kv-firewall"),
            Ipv4Addr::new(203, 0, 113, 10)
        );
        // snet-app shares the prod gateway for Entra, and reaches every vault (the endpoint is
        // per service type, not per vault) over its service endpoint with its own address.
        assert_eq!(
            seen("app-prod-westus", "entra"),
            Ipv4Addr::new(203, 0, 113, 100)
        );
        let app = o.host("app-prod-westus").unwrap().address;
        for vault in ["kv-firewall", "kv-public"] {
            let route = allowed_route(
                o.decide("app-prod-westus", vault, &Face::Public, 443)
                    .unwrap(),
            );
            assert_eq!(
                route,
                Route::ServiceEndpoint {
                    service: KEY_VAULT_SERVICE_ENDPOINT.into()
                }
            );
            assert!(!route.crosses_internet());
            assert_eq!(seen("app-prod-westus", vault), app);
        }
    }

    #[test]
    fn a_runtime_rule_is_refused_for_its_first_fault_in_azures_order_and_state_keeps_its_text() {
        let mut o = oracle(&nat_gateway_yaml());
        let rule = |json: serde_json::Value| -> NsgRule { serde_json::from_value(json).unwrap() };
        let refusal = |o: &mut Oracle, r: NsgRule| o.add_nsg_rule("nsg-pp-test", r).unwrap_err();
        // A name already taken is reported before the rule's own faults.
        let err = refusal(
            &mut o,
            rule(serde_json::json!({
                "name": "DenyEntraOutbound", "priority": 300, "direction": "Outbound",
                "access": "Deny", "protocol": "Gre"
            })),
        );
        assert_eq!(
            err.to_string(),
            "Security rule DenyEntraOutbound already exists in network security group nsg-pp-test."
        );
        let err = refusal(
            &mut o,
            rule(serde_json::json!({
                "name": "AllowApp", "priority": 300, "direction": "Outbound", "access": "Allow",
                "destinationAddressPrefixes": ["10.10.3.0/24", "Storage"], "destinationPortRanges": ["x"]
            })),
        );
        assert_eq!(
            err.to_string(),
            "Security rule AllowApp has invalid Address prefix. Value provided: Storage"
        );
        // An accepted rule is reported back as declared, not as ppvnet parsed it.
        let declared = rule(serde_json::json!({
            "name": "AllowApp", "priority": 300, "direction": "Outbound", "access": "Allow",
            "destinationAddressPrefixes": ["10.10.3.5/24", "198.51.100.7"], "destinationPortRanges": ["443-443"]
        }));
        o.add_nsg_rule("nsg-pp-test", declared.clone()).unwrap();
        assert!(o.state().nsgs["nsg-pp-test"].contains(&declared));
        assert_eq!(
            o.remove_nsg_rule("nsg-pp-test", "AllowApp").unwrap(),
            declared
        );
        assert!(
            o.nsg_rules("nsg-pp-test")
                .iter()
                .all(|r| r.name != "AllowApp")
        );
    }

    #[test]
    fn a_service_endpoint_reaches_key_vault_from_a_delegated_subnet_without_nat_gateway() {
        let text = nat_gateway_yaml().replace(
            "{ vnet: vnet-prod-westus, subnet: snet-app }",
            "{ vnet: vnet-prod-eastus, subnet: snet-pp }",
        );
        let o = oracle(&text);
        let d = o
            .decide("pp-prod-eastus", "kv-public", &Face::Public, 443)
            .unwrap();
        assert_eq!(d.label(), "service_endpoint:Microsoft.KeyVault");
        // A delegated subnet without the endpoint still has no way to the vault.
        let d = o
            .decide("pp-test-eastus", "kv-public", &Face::Public, 443)
            .unwrap();
        assert!(!d.connects(), "{d:?}");
    }
}
