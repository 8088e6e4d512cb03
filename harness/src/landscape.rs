//! The validated landscape and what follows from it: the hosts that originate traffic, the
//! services that answer it, and the emulated (Azure-side) address of each.
//!
//! Addresses here are the ones Azure would use: subnet addresses inside vNets (Azure reserves
//! the first four and the last address of a subnet, so the first usable one is `.4`) and
//! documentation-range public addresses (203.0.113.0/24 for clients on the internet,
//! 198.51.100.0/24 for Microsoft services' public endpoints). Fabrics map them to real
//! addresses (a 127.0.0.0/8 address each on loopback, the address itself inside namespaces).

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::PathBuf;

use ipnet::Ipv4Net;

use crate::scenario::model::*;

/// Host name of the public internet (tests outside the repo rely on it).
pub const INTERNET: &str = "internet";
/// The host name Entra answers on.
pub const ENTRA_HOST_NAME: &str = "login.microsoftonline.com";
/// The Power Platform service's name among the landscape's services.
pub const POWER_PLATFORM: &str = "powerplatform";
/// Azure Resource Manager's name among the landscape's services.
pub const ARM: &str = "arm";
/// The consent host OAuth connections redirect back to (microsoft/powerplatform-developerhub:
/// docs/custom-connectors/azure-active-directory-authentication.md).
pub const CONSENT_HOST_NAME: &str = "global.consent.azure-apim.net";

/// The API Management host the connector runtime answers on for a geo. Power Fx posts
/// `/invoke` to a host of this form (`{geo}-{nnn}.azure-apim.net`, microsoft/Power-Fx:
/// src/libraries/Microsoft.PowerFx.Connectors/PowerPlatformConnectorClient.cs); the cluster number
/// is not derivable, so ppvnet uses `001` (UNVERIFIED).
pub fn power_platform_host_name(geo: &str) -> String {
    format!("{}-001.azure-apim.net", geo.to_ascii_lowercase())
}

/// A place that originates traffic.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Host {
    pub name: String,
    pub kind: HostKind,
    /// Emulated address as Azure would see it.
    pub address: Ipv4Addr,
    pub subnet: Option<crate::scenario::model::SubnetRef>,
}

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum HostKind {
    /// The public internet.
    Internet,
    /// An environment's runtime in one region: in its delegated subnet, or (no policy) the
    /// Power Platform service's own egress on the internet.
    PowerPlatform { environment: String, region: String },
    /// A private endpoint; it is also where the target service answers inside the vNet.
    PrivateEndpoint { target: String },
    /// A host the scenario declares.
    Declared,
}

/// A service the landscape runs.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Service {
    pub name: String,
    pub kind: ServiceKind,
    /// The public DNS name clients use.
    pub host_name: String,
    /// Public endpoint address (documentation range).
    pub public_address: Ipv4Addr,
    pub public_network_access: bool,
    /// Private endpoints (host names) that front this service.
    pub private_endpoints: Vec<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ServiceKind {
    Entra,
    KeyVault,
    Api,
    /// The Power Platform service: the connector runtime (`/invoke`), connections, consent.
    PowerPlatform,
    /// Azure Resource Manager (`management.azure.com`), which serves the landscape read-only.
    Arm,
}

/// A validated landscape with its derived hosts and services.
#[derive(Clone, Debug)]
pub struct Landscape {
    pub scenario: Scenario,
    pub file: PathBuf,
    /// Directory relative paths in the file (connectors, certificates) are resolved against.
    pub base_dir: PathBuf,
    pub hosts: Vec<Host>,
    pub services: Vec<Service>,
}

/// Counts printed by `ppvnet validate`.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Summary(pub BTreeMap<&'static str, usize>);

impl Landscape {
    pub(crate) fn new(scenario: Scenario, file: PathBuf, base_dir: PathBuf) -> Self {
        let (hosts, services) = derive_hosts_and_services(&scenario);
        Self {
            scenario,
            file,
            base_dir,
            hosts,
            services,
        }
    }

    pub fn host(&self, name: &str) -> Option<&Host> {
        self.hosts.iter().find(|h| h.name == name)
    }

    pub fn service(&self, name: &str) -> Option<&Service> {
        self.services.iter().find(|s| s.name == name)
    }

    /// The ARM id of a vault of this landscape.
    pub fn vault_id(&self, vault: &str) -> String {
        format!(
            "/subscriptions/{}/resourceGroups/{}/providers/Microsoft.KeyVault/vaults/{vault}",
            self.scenario.subscription, self.scenario.resource_group
        )
    }

    /// The object id behind a principal name of the landscape: a user's UPN, a group, an app
    /// (its service principal) or a service principal.
    pub fn principal_object_id(&self, name: &str) -> Option<&str> {
        let s = &self.scenario;
        s.users
            .iter()
            .find(|u| u.upn.eq_ignore_ascii_case(name))
            .map(|u| u.object_id.as_str())
            .or_else(|| {
                s.groups
                    .iter()
                    .find(|g| g.name == name)
                    .map(|g| g.id.as_str())
            })
            .or_else(|| {
                s.apps
                    .iter()
                    .find(|a| a.name == name)
                    .map(|a| a.service_principal_id.as_str())
            })
            .or_else(|| {
                s.service_principals
                    .iter()
                    .find(|p| p.name == name)
                    .map(|p| p.object_id.as_str())
            })
    }

    pub fn summary(&self) -> Summary {
        let s = &self.scenario;
        let mut m = BTreeMap::new();
        m.insert("users", s.users.len());
        m.insert("groups", s.groups.len());
        m.insert("apps", s.apps.len());
        m.insert("service principals", s.service_principals.len());
        m.insert("role assignments", s.role_assignments.len());
        m.insert("regions", s.regions.len());
        m.insert("vnets", s.vnets.len());
        m.insert("subnets", s.vnets.iter().map(|v| v.subnets.len()).sum());
        m.insert("peerings", s.peerings.len());
        m.insert("nsgs", s.nsgs.len());
        m.insert("private dns zones", s.private_dns_zones.len());
        m.insert("private endpoints", s.private_endpoints.len());
        m.insert("key vaults", s.key_vaults.len());
        m.insert(
            "secrets",
            s.key_vaults.iter().map(|v| v.secrets.len()).sum(),
        );
        m.insert("apis", s.apis.len());
        m.insert("enterprise policies", s.enterprise_policies.len());
        m.insert("environments", s.environments.len());
        m.insert(
            "environment variables",
            s.environments.iter().map(|e| e.variables.len()).sum(),
        );
        m.insert("connectors", s.connectors.len());
        m.insert("hosts", self.hosts.len());
        Summary(m)
    }
}

/// Hands out subnet addresses from `.4` upward, skipping static ones.
struct SubnetAllocator {
    next: BTreeMap<(String, String), u32>,
    taken: Vec<Ipv4Addr>,
}

impl SubnetAllocator {
    fn allocate(&mut self, s: &Scenario, vnet: &str, subnet: &str) -> Ipv4Addr {
        let prefix = s
            .vnets
            .iter()
            .find(|v| v.name == vnet)
            .and_then(|v| v.subnets.iter().find(|x| x.name == subnet))
            .and_then(|x| x.prefix.parse::<Ipv4Net>().ok());
        let Some(net) = prefix else {
            // Validation guarantees the subnet; an unspecified address would only show in output.
            return Ipv4Addr::UNSPECIFIED;
        };
        let offset = self
            .next
            .entry((vnet.to_string(), subnet.to_string()))
            .or_insert(4);
        loop {
            let ip = Ipv4Addr::from(u32::from(net.network()) + *offset);
            *offset += 1;
            if !self.taken.contains(&ip) {
                self.taken.push(ip);
                return ip;
            }
        }
    }
}

fn derive_hosts_and_services(s: &Scenario) -> (Vec<Host>, Vec<Service>) {
    (derive_hosts(s), derive_services(s))
}

/// The hosts: the internet, each environment's Power Platform hosts, the private endpoints
/// and the declared hosts, with their addresses.
fn derive_hosts(s: &Scenario) -> Vec<Host> {
    let mut hosts = vec![Host {
        name: INTERNET.into(),
        kind: HostKind::Internet,
        address: Ipv4Addr::new(203, 0, 113, 10),
        subnet: None,
    }];
    let mut alloc = SubnetAllocator {
        next: BTreeMap::new(),
        taken: s
            .private_endpoints
            .iter()
            .filter_map(|p| p.address.as_deref()?.parse().ok())
            .collect(),
    };
    power_platform_hosts(s, &mut alloc, &mut hosts);
    for pe in &s.private_endpoints {
        let address = pe
            .address
            .as_deref()
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| alloc.allocate(s, &pe.vnet, &pe.subnet));
        hosts.push(Host {
            name: pe.name.clone(),
            kind: HostKind::PrivateEndpoint {
                target: pe.target.clone(),
            },
            address,
            subnet: Some(SubnetRef {
                vnet: pe.vnet.clone(),
                subnet: pe.subnet.clone(),
            }),
        });
    }
    let mut internet_client = 11u8;
    for h in &s.hosts {
        let (address, subnet) = match (&h.vnet, &h.subnet) {
            (Some(v), Some(sn)) => (
                alloc.allocate(s, v, sn),
                Some(SubnetRef {
                    vnet: v.clone(),
                    subnet: sn.clone(),
                }),
            ),
            _ => {
                internet_client = internet_client.saturating_add(1);
                (Ipv4Addr::new(203, 0, 113, internet_client), None)
            }
        };
        hosts.push(Host {
            name: h.name.clone(),
            kind: HostKind::Declared,
            address,
            subnet,
        });
    }
    hosts
}

/// Each environment's runtime hosts: one per delegated subnet of its enterprise policy, or
/// without one, one per region of its geo on a Power Platform public address.
fn power_platform_hosts(s: &Scenario, alloc: &mut SubnetAllocator, hosts: &mut Vec<Host>) {
    let mut pp_public = 200u8;
    for env in &s.environments {
        let policy = env
            .enterprise_policy
            .as_ref()
            .and_then(|p| s.enterprise_policies.iter().find(|x| &x.name == p));
        match policy {
            Some(p) => {
                for r in &p.virtual_networks {
                    let region = s
                        .vnets
                        .iter()
                        .find(|v| v.name == r.vnet)
                        .map(|v| v.region.clone())
                        .unwrap_or_default();
                    hosts.push(Host {
                        name: format!("pp-{}-{}", env.name, region),
                        kind: HostKind::PowerPlatform {
                            environment: env.name.clone(),
                            region,
                        },
                        address: alloc.allocate(s, &r.vnet, &r.subnet),
                        subnet: Some(r.clone()),
                    });
                }
            }
            None => {
                // Without vNet support the runtime egresses from the Power Platform service's
                // public addresses, in every region of the geo it can run in.
                let geo_regions = ppvnet_powerplatform::geo(&env.location)
                    .map(|g| g.regions())
                    .unwrap_or_default();
                for region in s
                    .regions
                    .iter()
                    .filter(|r| geo_regions.contains(&r.name.as_str()))
                {
                    hosts.push(Host {
                        name: format!("pp-{}-{}", env.name, region.name),
                        kind: HostKind::PowerPlatform {
                            environment: env.name.clone(),
                            region: region.name.clone(),
                        },
                        address: Ipv4Addr::new(198, 51, 100, pp_public),
                        subnet: None,
                    });
                    pp_public = pp_public.saturating_add(1);
                }
            }
        }
    }
}

/// The services of a landscape with their public addresses: Entra, ARM, the vaults, the APIs
/// and, with environments, the Power Platform service.
fn derive_services(s: &Scenario) -> Vec<Service> {
    let mut services = vec![
        Service {
            name: "entra".into(),
            kind: ServiceKind::Entra,
            host_name: ENTRA_HOST_NAME.into(),
            public_address: Ipv4Addr::new(198, 51, 100, 10),
            public_network_access: true,
            private_endpoints: vec![],
        },
        // Every landscape has ARM, as every Azure subscription does.
        Service {
            name: ARM.into(),
            kind: ServiceKind::Arm,
            host_name: ppvnet_arm::ARM_HOST_NAME.into(),
            public_address: Ipv4Addr::new(198, 51, 100, 12),
            public_network_access: true,
            private_endpoints: vec![],
        },
    ];
    let pes_of = |target: &str| -> Vec<String> {
        s.private_endpoints
            .iter()
            .filter(|p| p.target == target)
            .map(|p| p.name.clone())
            .collect()
    };
    let mut public = 20u8;
    for v in &s.key_vaults {
        services.push(Service {
            name: v.name.clone(),
            kind: ServiceKind::KeyVault,
            host_name: format!("{}.vault.azure.net", v.name),
            public_address: Ipv4Addr::new(198, 51, 100, public),
            public_network_access: v.public_network_access == PublicNetworkAccess::Enabled,
            private_endpoints: pes_of(&v.name),
        });
        public = public.saturating_add(1);
    }
    for a in &s.apis {
        services.push(Service {
            name: a.name.clone(),
            kind: ServiceKind::Api,
            host_name: a.host_name.clone(),
            public_address: Ipv4Addr::new(198, 51, 100, public),
            public_network_access: a.public_network_access == PublicNetworkAccess::Enabled,
            private_endpoints: pes_of(&a.name),
        });
        public = public.saturating_add(1);
    }
    if let Some(env) = s.environments.first() {
        services.push(Service {
            name: POWER_PLATFORM.into(),
            kind: ServiceKind::PowerPlatform,
            host_name: power_platform_host_name(&env.location),
            public_address: Ipv4Addr::new(198, 51, 100, 11),
            public_network_access: true,
            private_endpoints: vec![],
        });
    }
    services
}
