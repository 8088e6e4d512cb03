//! Landscape → `ppvnet_arm::ArmConfig`, and Azure Resource Manager's start on its public face.
//!
//! Identity of the landscape in ARM: the subscription is the landscape's `subscription`
//! (display name: the landscape's `name`), the tenant's display name is the first label of its
//! domain. Every resource lives in the landscape's `resourceGroup`, located in the landscape's
//! first region, except private DNS zones whose zone name several zone instances share (contoso
//! has two `privatelink.vaultcore.azure.net`): Azure allows one zone of a name per resource
//! group, so each of those lives in its own group `{resourceGroup}-{zone instance name}` (same
//! location). A zone's virtual network links are named `{vnet}-link`. Network security groups
//! carry no region in the landscape: each is located where the first subnet using it is.

use anyhow::Context;
use ppvnet_arm::config::*;
use ppvnet_arm::resources::{NETWORK_SECURITY_GROUPS, VAULTS, VIRTUAL_NETWORKS};

use crate::landscape::Landscape;
use crate::scenario::model::{self, Scenario};
use crate::services::launch::{Launch, Tasks};

/// The location of the landscape's resource group: its first region (or first vNet's).
fn home_location(s: &Scenario) -> String {
    s.regions
        .first()
        .map(|r| r.name.clone())
        .or_else(|| s.vnets.first().map(|v| v.region.clone()))
        .unwrap_or_else(|| "westus".to_string())
}

struct Ids<'a> {
    c: &'a ArmConfig,
    group: &'a str,
}

impl Ids<'_> {
    fn vnet(&self, name: &str) -> String {
        self.c.resource_id(self.group, VIRTUAL_NETWORKS, name)
    }

    fn subnet(&self, vnet: &str, subnet: &str) -> String {
        format!("{}/subnets/{subnet}", self.vnet(vnet))
    }

    fn at(&self, name: &str, location: &str) -> Placement {
        Placement {
            resource_group: self.group.to_string(),
            name: name.to_string(),
            location: location.to_string(),
        }
    }
}

/// ARM's view of a landscape.
pub fn config(l: &Landscape) -> ArmConfig {
    let s = &l.scenario;
    let home = home_location(s);
    let mut c = ArmConfig {
        tenant: TenantConfig {
            id: s.tenant.id.clone(),
            display_name: s
                .tenant
                .domain
                .split('.')
                .next()
                .unwrap_or_default()
                .to_string(),
            default_domain: s.tenant.domain.clone(),
        },
        subscription: SubscriptionConfig {
            id: s.subscription.clone(),
            display_name: s.name.clone(),
        },
        resource_groups: Vec::new(),
        ..Default::default()
    };
    c.resource_groups = s
        .resource_groups()
        .into_iter()
        .map(|name| ResourceGroupConfig {
            name,
            location: home.clone(),
        })
        .collect();
    c.key_vaults = vaults(l, &c);
    c.virtual_networks = vnets(s, &c);
    c.network_security_groups = nsgs(s, &c, &home);
    c.private_endpoints = private_endpoints(l, &c);
    c.private_dns_zones = dns_zones(s, &c);
    let ids = Ids {
        c: &c,
        group: &s.resource_group,
    };
    c.enterprise_policies = s
        .enterprise_policies
        .iter()
        .map(|e| EnterprisePolicyResource {
            at: ids.at(&e.name, &e.location),
            kind: e.kind.clone(),
            virtual_networks: e
                .virtual_networks
                .iter()
                .map(|r| (ids.vnet(&r.vnet), r.subnet.clone()))
                .collect(),
        })
        .collect();
    c.role_assignments = role_assignments(l);
    c
}

fn vaults(l: &Landscape, c: &ArmConfig) -> Vec<VaultResource> {
    let s = &l.scenario;
    let ids = Ids {
        c,
        group: &s.resource_group,
    };
    s.key_vaults
        .iter()
        .map(|v| VaultResource {
            at: ids.at(&v.name, &v.region),
            enable_rbac_authorization: v.authorization == model::VaultAuthorization::Rbac,
            public_network_access_enabled: v.public_network_access
                == model::PublicNetworkAccess::Enabled,
            soft_delete_retention_days: v.soft_delete_retention_days,
            purge_protection: v.purge_protection,
            default_action: v
                .network_acls
                .as_ref()
                .map(|a| format!("{:?}", a.default_action)),
            ip_rules: v
                .network_acls
                .iter()
                .flat_map(|a| a.ip_rules.iter())
                .map(|r| {
                    if r.contains('/') {
                        r.clone()
                    } else {
                        format!("{r}/32")
                    }
                })
                .collect(),
            virtual_network_rules: v
                .network_acls
                .iter()
                .flat_map(|a| a.virtual_network_rules.iter())
                .map(|r| ids.subnet(&r.vnet, &r.subnet))
                .collect(),
            access_policies: v
                .access_policies
                .iter()
                .map(|p| VaultAccessPolicy {
                    object_id: l
                        .principal_object_id(&p.principal)
                        .unwrap_or_default()
                        .to_string(),
                    secrets: p.secrets.iter().map(|x| x.to_ascii_lowercase()).collect(),
                })
                .collect(),
        })
        .collect()
}

fn vnets(s: &Scenario, c: &ArmConfig) -> Vec<VirtualNetworkResource> {
    let ids = Ids {
        c,
        group: &s.resource_group,
    };
    // A subnet named in a vault's virtual network rules has the Key Vault service endpoint.
    let kv_endpoint = |vnet: &str, subnet: &str| {
        s.key_vaults.iter().any(|v| {
            v.network_acls.as_ref().is_some_and(|a| {
                a.virtual_network_rules
                    .iter()
                    .any(|r| r.vnet == vnet && r.subnet == subnet)
            })
        })
    };
    s.vnets
        .iter()
        .map(|v| VirtualNetworkResource {
            at: ids.at(&v.name, &v.region),
            address_prefixes: v.address_space.clone(),
            dns_servers: v.dns_servers.clone(),
            subnets: v
                .subnets
                .iter()
                .map(|sn| SubnetResource {
                    name: sn.name.clone(),
                    address_prefix: sn.prefix.clone(),
                    delegations: sn.delegation.iter().cloned().collect(),
                    network_security_group: sn
                        .nsg
                        .as_ref()
                        .map(|n| c.resource_id(&s.resource_group, NETWORK_SECURITY_GROUPS, n)),
                    nat_gateway: sn.nat_gateway.as_ref().map(|n| {
                        c.resource_id(&s.resource_group, "Microsoft.Network/natGateways", n)
                    }),
                    service_endpoints: if kv_endpoint(&v.name, &sn.name) {
                        vec!["Microsoft.KeyVault".to_string()]
                    } else {
                        Vec::new()
                    },
                })
                .collect(),
            peerings: s
                .peerings
                .iter()
                .filter(|p| p.from == v.name)
                .map(|p| PeeringResource {
                    name: p.name.clone(),
                    remote_virtual_network: ids.vnet(&p.to),
                    allow_virtual_network_access: p.allow_virtual_network_access,
                })
                .collect(),
        })
        .collect()
}

fn nsgs(s: &Scenario, c: &ArmConfig, home: &str) -> Vec<NsgResource> {
    let ids = Ids {
        c,
        group: &s.resource_group,
    };
    s.nsgs
        .iter()
        .map(|n| {
            let users: Vec<(&model::Vnet, &model::Subnet)> = s
                .vnets
                .iter()
                .flat_map(|v| v.subnets.iter().map(move |sn| (v, sn)))
                .filter(|(_, sn)| sn.nsg.as_deref() == Some(n.name.as_str()))
                .collect();
            let location = users
                .first()
                .map(|(v, _)| v.region.clone())
                .unwrap_or_else(|| home.to_string());
            NsgResource {
                at: ids.at(&n.name, &location),
                security_rules: n
                    .rules
                    .iter()
                    .map(|r| SecurityRule {
                        name: r.name.clone(),
                        priority: r.priority,
                        direction: format!("{:?}", r.direction),
                        access: format!("{:?}", r.access),
                        protocol: r.protocol.clone(),
                        source_address_prefixes: r.source_address_prefixes.clone(),
                        source_port_ranges: r.source_port_ranges.clone(),
                        destination_address_prefixes: r.destination_address_prefixes.clone(),
                        destination_port_ranges: r.destination_port_ranges.clone(),
                    })
                    .collect(),
                subnets: users
                    .iter()
                    .map(|(v, sn)| ids.subnet(&v.name, &sn.name))
                    .collect(),
            }
        })
        .collect()
}

fn private_endpoints(l: &Landscape, c: &ArmConfig) -> Vec<PrivateEndpointResource> {
    let s = &l.scenario;
    let ids = Ids {
        c,
        group: &s.resource_group,
    };
    s.private_endpoints
        .iter()
        .map(|p| {
            let region = s
                .vnets
                .iter()
                .find(|v| v.name == p.vnet)
                .map(|v| v.region.clone())
                .unwrap_or_default();
            let (target, group_id) = if s.key_vaults.iter().any(|v| v.name == p.target) {
                (c.resource_id(&s.resource_group, VAULTS, &p.target), "vault")
            } else {
                (
                    c.resource_id(&s.resource_group, "Microsoft.Web/sites", &p.target),
                    "sites",
                )
            };
            PrivateEndpointResource {
                at: ids.at(&p.name, &region),
                subnet: ids.subnet(&p.vnet, &p.subnet),
                private_link_service_id: target,
                group_id: group_id.to_string(),
                private_ip_address: l
                    .host(&p.name)
                    .map(|h| h.address.to_string())
                    .unwrap_or_default(),
                fqdn: l
                    .service(&p.target)
                    .map(|svc| svc.host_name.clone())
                    .unwrap_or_default(),
            }
        })
        .collect()
}

fn dns_zones(s: &Scenario, c: &ArmConfig) -> Vec<PrivateDnsZoneResource> {
    let ids = Ids {
        c,
        group: &s.resource_group,
    };
    s.private_dns_zones
        .iter()
        .map(|z| {
            let records = s
                .private_endpoints
                .iter()
                .filter(|p| p.private_dns_zone.as_deref() == Some(z.name.as_str()))
                .count();
            PrivateDnsZoneResource {
                resource_group: s.dns_zone_group(z),
                name: z.zone.clone(),
                // The zone's SOA record set, plus one A record set per registered endpoint.
                record_sets: u32::try_from(records + 1).unwrap_or(u32::MAX),
                virtual_network_links: z
                    .vnet_links
                    .iter()
                    .map(|v| VirtualNetworkLink {
                        name: format!("{v}-link"),
                        virtual_network: ids.vnet(v),
                    })
                    .collect(),
            }
        })
        .collect()
}

/// The landscape's RBAC role assignments by object id; a group's assignments apply to its
/// members, as in Azure (ARM evaluates membership itself, not from the token).
fn role_assignments(l: &Landscape) -> Vec<RoleAssignment> {
    let s = &l.scenario;
    let mut out = Vec::new();
    for ra in &s.role_assignments {
        let mut principals: Vec<String> = l
            .principal_object_id(&ra.principal)
            .map(str::to_string)
            .into_iter()
            .collect();
        if s.groups.iter().any(|g| g.name == ra.principal) {
            principals.extend(
                s.users
                    .iter()
                    .filter(|u| u.groups.iter().any(|g| g == &ra.principal))
                    .map(|u| u.object_id.clone()),
            );
        }
        out.extend(principals.into_iter().map(|principal_id| RoleAssignment {
            principal_id,
            role: ra.role.clone(),
            scope: ra.scope.clone(),
        }));
    }
    out
}

/// Starts ARM on its public face (the internet side; every host resolves
/// `management.azure.com` to it) and returns its ready-file entry. It fetches Entra's signing
/// keys from the internet, as Azure's services do.
pub fn start(
    run: Launch<'_>,
    entra: &crate::services::entra::Started,
    tasks: &mut Tasks,
) -> anyhow::Result<crate::ready::ArmEntry> {
    use crate::fabric::Face;
    use crate::landscape::ARM;
    let l = run.landscape;
    let service = l.service(ARM).context("the landscape has no ARM service")?;
    let face = run
        .fabric
        .bind(ARM, &Face::Public)
        .context("Azure Resource Manager's listener")?;
    let url = crate::services::launch::face_url(run.fabric, face.address, &service.host_name);
    let config = config(l);
    let tokens = ppvnet_arm::ArmTokens::new(
        &entra.entry.authority_host,
        &l.scenario.tenant.id,
        run.internet_client()?,
        run.clock.clone(),
    );
    let entry = crate::ready::ArmEntry {
        url,
        host_name: service.host_name.clone(),
        subscription_id: config.subscription.id.clone(),
        resource_groups: config
            .resource_groups
            .iter()
            .map(|g| g.name.clone())
            .collect(),
    };
    let arm = ppvnet_arm::Arm::new(config, tokens);
    let leaf = run.pki.leaf(
        std::slice::from_ref(&service.host_name),
        &[face.address.ip()],
    )?;
    let tls = run.pki.server_config(&leaf)?;
    let endpoints = vec![face.into_endpoint()];
    let shutdown = run.stopped();
    tasks.spawn(async move {
        ppvnet_arm::run(arm, endpoints, Some(tls), shutdown)
            .await
            .context("Azure Resource Manager")
    });
    Ok(entry)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn contoso() -> Landscape {
        let path =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/contoso.yaml");
        crate::scenario::load(&path).unwrap()
    }

    #[test]
    fn contoso_as_arm_resources() {
        let c = config(&contoso());
        assert_eq!(c.subscription.id, "6f1a2b3c-4d5e-4f60-8a7b-9c0d1e2f3a4b");
        assert_eq!(c.subscription.display_name, "contoso");
        // The two `privatelink.vaultcore.azure.net` (and azurewebsites) zones each get a group.
        let groups: Vec<&str> = c.resource_groups.iter().map(|g| g.name.as_str()).collect();
        assert_eq!(
            groups,
            [
                "rg-contoso",
                "rg-contoso-pdz-vault-prod",
                "rg-contoso-pdz-vault-test",
                "rg-contoso-pdz-web-prod",
                "rg-contoso-pdz-web-test"
            ]
        );
        assert!(c.resource_groups.iter().all(|g| g.location == "westus"));
        let prod = c
            .virtual_networks
            .iter()
            .find(|v| v.at.name == "vnet-prod-westus")
            .unwrap();
        assert_eq!(
            prod.subnets[0].delegations,
            ["Microsoft.PowerPlatform/enterprisePolicies"]
        );
        assert_eq!(
            prod.peerings[0].remote_virtual_network,
            c.resource_id("rg-contoso", VIRTUAL_NETWORKS, "vnet-prod-eastus")
        );
        let pe = c
            .private_endpoints
            .iter()
            .find(|p| p.at.name == "pe-kv-contoso-prod")
            .unwrap();
        assert_eq!(pe.group_id, "vault");
        assert_eq!(pe.fqdn, "kv-contoso-prod.vault.azure.net");
        assert_eq!(pe.private_ip_address, "10.10.2.4");
        let nsg = &c.network_security_groups[0];
        assert_eq!(nsg.at.location, "westus");
        assert_eq!(
            nsg.subnets,
            [
                c.resource_id("rg-contoso", VIRTUAL_NETWORKS, "vnet-prod-westus")
                    + "/subnets/snet-pe"
            ]
        );
        // ops-automation reads the resource group (contoso's Reader assignment).
        assert!(c.role_assignments.iter().any(|r| r.principal_id
            == "f62c5d02-54d8-4daa-b1fb-90b79c25423a"
            && r.role == "Reader"
            && r.scope == "/subscriptions/6f1a2b3c-4d5e-4f60-8a7b-9c0d1e2f3a4b/resourceGroups/rg-contoso"));
        assert_eq!(c.enterprise_policies.len(), 2);
        assert_eq!(c.key_vaults.len(), 3);
        assert!(c.key_vaults.iter().all(|v| v.enable_rbac_authorization));
    }

    #[test]
    fn group_assignments_reach_their_members() {
        let mut l = contoso();
        l.scenario.role_assignments = vec![model::RoleAssignment {
            principal: "Team North".into(),
            role: "Reader".into(),
            scope: "/subscriptions/6f1a2b3c-4d5e-4f60-8a7b-9c0d1e2f3a4b".into(),
        }];
        let ras = role_assignments(&l);
        // The group itself and Alice, its member.
        assert_eq!(ras.len(), 2);
        assert!(
            ras.iter()
                .any(|r| r.principal_id == "2276843a-7273-459b-b0e8-730c2b509e9b")
        );
    }
}
