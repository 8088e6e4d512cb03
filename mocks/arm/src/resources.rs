//! The configured resources rendered once, at start, in ARM's JSON shapes.
//!
//! Shapes follow the examples of azure-rest-api-specs (`resource-manager/Microsoft.KeyVault`
//! `getVault.json`, `Microsoft.Network` `VirtualNetworkGet.json`, `SubnetGet.json`,
//! `VirtualNetworkPeeringGet.json`, `NetworkSecurityGroupGet.json`, `PrivateEndpointGet.json`,
//! `privatedns` `PrivateZoneGet.json` / `VirtualNetworkLinkGet.json`, `Microsoft.PowerPlatform`
//! `preview/2020-10-30-preview/examples/getEnterprisePolicy.json`): `id`, `name`, `type`,
//! `location`, `properties`, and for network resources `etag` and `properties.provisioningState`.
//! Etags and `resourceGuid`s are derived from the id, so they are stable across runs.

use serde_json::{Value, json};

use crate::config::*;

pub const VAULTS: &str = "Microsoft.KeyVault/vaults";
pub const VIRTUAL_NETWORKS: &str = "Microsoft.Network/virtualNetworks";
pub const NETWORK_SECURITY_GROUPS: &str = "Microsoft.Network/networkSecurityGroups";
pub const PRIVATE_ENDPOINTS: &str = "Microsoft.Network/privateEndpoints";
pub const PRIVATE_DNS_ZONES: &str = "Microsoft.Network/privateDnsZones";
pub const ENTERPRISE_POLICIES: &str = "Microsoft.PowerPlatform/enterprisePolicies";

/// A top-level resource as ARM returns it, with its child collections.
#[derive(Clone, Debug, PartialEq)]
pub struct Resource {
    pub id: String,
    pub group: String,
    /// `Microsoft.KeyVault/vaults`.
    pub kind: String,
    pub name: String,
    pub location: String,
    pub body: Value,
    /// Child collections by their type segment (`subnets`, `virtualNetworkPeerings`,
    /// `virtualNetworkLinks`).
    pub children: Vec<(String, Vec<Child>)>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Child {
    pub name: String,
    pub body: Value,
}

impl Resource {
    /// The generic-resources view (`GET /subscriptions/{s}/resources`): no properties.
    pub fn generic(&self) -> Value {
        let mut out = json!({
            "id": self.id,
            "name": self.name,
            "type": self.kind,
            "location": self.location,
        });
        if let Some(kind) = self.body.get("kind") {
            out["kind"] = kind.clone();
        }
        out
    }

    pub fn children(&self, segment: &str) -> Option<&[Child]> {
        self.children
            .iter()
            .find(|(s, _)| s.eq_ignore_ascii_case(segment))
            .map(|(_, c)| c.as_slice())
    }
}

fn etag(id: &str) -> String {
    format!("W/\"{}\"", guid(id, "etag"))
}

fn guid(id: &str, what: &str) -> String {
    uuid::Uuid::new_v5(
        &uuid::Uuid::NAMESPACE_URL,
        format!("ppvnet-arm:{what}:{}", id.to_ascii_lowercase()).as_bytes(),
    )
    .to_string()
}

fn reference(id: &str) -> Value {
    json!({ "id": id })
}

/// Every resource of the configuration, rendered.
pub fn render_all(c: &ArmConfig) -> Vec<Resource> {
    let mut out = Vec::new();
    out.extend(c.key_vaults.iter().map(|v| vault(c, v)));
    out.extend(c.virtual_networks.iter().map(|v| virtual_network(c, v)));
    out.extend(c.network_security_groups.iter().map(|n| nsg(c, n)));
    out.extend(c.private_endpoints.iter().map(|p| private_endpoint(c, p)));
    out.extend(c.private_dns_zones.iter().map(|z| private_dns_zone(c, z)));
    out.extend(
        c.enterprise_policies
            .iter()
            .map(|e| enterprise_policy(c, e)),
    );
    out
}

fn top(c: &ArmConfig, at: &Placement, kind: &str, body: Value) -> Resource {
    Resource {
        id: c.resource_id(&at.resource_group, kind, &at.name),
        group: at.resource_group.clone(),
        kind: kind.to_string(),
        name: at.name.clone(),
        location: at.location.clone(),
        body,
        children: Vec::new(),
    }
}

fn vault(c: &ArmConfig, v: &VaultResource) -> Resource {
    let id = c.resource_id(&v.at.resource_group, VAULTS, &v.at.name);
    let private_endpoint_connections: Vec<Value> = c
        .private_endpoints
        .iter()
        .filter(|p| p.private_link_service_id.eq_ignore_ascii_case(&id))
        .map(|p| {
            let pe = c.resource_id(&p.at.resource_group, PRIVATE_ENDPOINTS, &p.at.name);
            json!({
                "id": format!("{id}/privateEndpointConnections/{}", p.at.name),
                "etag": "",
                "properties": {
                    "privateEndpoint": reference(&pe),
                    "privateLinkServiceConnectionState": {
                        "status": "Approved",
                        "actionsRequired": "None"
                    },
                    "provisioningState": "Succeeded"
                }
            })
        })
        .collect();
    let mut properties = json!({
        "sku": { "family": "A", "name": "standard" },
        "tenantId": c.tenant.id,
        "accessPolicies": v.access_policies.iter().map(|p| json!({
            "tenantId": c.tenant.id,
            "objectId": p.object_id,
            "permissions": { "keys": [], "secrets": p.secrets, "certificates": [] }
        })).collect::<Vec<_>>(),
        "enabledForDeployment": false,
        "enabledForDiskEncryption": false,
        "enabledForTemplateDeployment": false,
        "enableSoftDelete": true,
        "softDeleteRetentionInDays": v.soft_delete_retention_days,
        "enableRbacAuthorization": v.enable_rbac_authorization,
        "vaultUri": format!("https://{}.vault.azure.net/", v.at.name),
        "provisioningState": "Succeeded",
        "publicNetworkAccess": if v.public_network_access_enabled { "Enabled" } else { "Disabled" },
        "privateEndpointConnections": private_endpoint_connections,
    });
    // Azure leaves `enablePurgeProtection` out (null) until it is turned on; it cannot be
    // turned off again.
    if v.purge_protection {
        properties["enablePurgeProtection"] = json!(true);
    }
    if let Some(action) = &v.default_action {
        properties["networkAcls"] = json!({
            "bypass": "AzureServices",
            "defaultAction": action,
            "ipRules": v.ip_rules.iter().map(|r| json!({ "value": r })).collect::<Vec<_>>(),
            "virtualNetworkRules": v.virtual_network_rules.iter().map(|s| json!({
                "id": s, "ignoreMissingVnetServiceEndpoint": false
            })).collect::<Vec<_>>(),
        });
    }
    let body = json!({
        "id": id,
        "name": v.at.name,
        "type": VAULTS,
        "location": v.at.location,
        "tags": {},
        "properties": properties,
    });
    top(c, &v.at, VAULTS, body)
}

fn subnet(c: &ArmConfig, vnet_id: &str, s: &SubnetResource) -> Value {
    let id = format!("{vnet_id}/subnets/{}", s.name);
    let delegations: Vec<Value> = s
        .delegations
        .iter()
        .map(|service| {
            // The portal names a delegation after its service; the name is free (UNVERIFIED
            // which name the Power Platform setup scripts use).
            let name = service.replace('/', ".");
            json!({
                "name": name,
                "id": format!("{id}/delegations/{name}"),
                "etag": etag(&format!("{id}/delegations/{name}")),
                "type": "Microsoft.Network/virtualNetworks/subnets/delegations",
                "properties": {
                    "provisioningState": "Succeeded",
                    "serviceName": service,
                    "actions": ["Microsoft.Network/virtualNetworks/subnets/join/action"]
                }
            })
        })
        .collect();
    let private_endpoints: Vec<Value> = c
        .private_endpoints
        .iter()
        .filter(|p| p.subnet.eq_ignore_ascii_case(&id))
        .map(|p| reference(&c.resource_id(&p.at.resource_group, PRIVATE_ENDPOINTS, &p.at.name)))
        .collect();
    let mut properties = json!({
        "provisioningState": "Succeeded",
        "addressPrefix": s.address_prefix,
        "delegations": delegations,
        "privateEndpointNetworkPolicies": "Disabled",
        "privateLinkServiceNetworkPolicies": "Enabled",
    });
    if let Some(nsg) = &s.network_security_group {
        properties["networkSecurityGroup"] = reference(nsg);
    }
    if let Some(nat) = &s.nat_gateway {
        properties["natGateway"] = reference(nat);
    }
    if !private_endpoints.is_empty() {
        properties["privateEndpoints"] = json!(private_endpoints);
    }
    if !s.service_endpoints.is_empty() {
        properties["serviceEndpoints"] = json!(
            s.service_endpoints
                .iter()
                .map(|e| json!({ "provisioningState": "Succeeded", "service": e, "locations": ["*"] }))
                .collect::<Vec<_>>()
        );
    }
    json!({
        "name": s.name,
        "id": id,
        "etag": etag(&id),
        "type": "Microsoft.Network/virtualNetworks/subnets",
        "properties": properties,
    })
}

fn peering(c: &ArmConfig, vnet_id: &str, p: &PeeringResource) -> Value {
    let id = format!("{vnet_id}/virtualNetworkPeerings/{}", p.name);
    let remote = c.virtual_networks.iter().find(|v| {
        c.resource_id(&v.at.resource_group, VIRTUAL_NETWORKS, &v.at.name)
            .eq_ignore_ascii_case(&p.remote_virtual_network)
    });
    // A peering is `Connected` once the remote network peers back, `Initiated` until then.
    let connected = remote.is_some_and(|r| {
        r.peerings
            .iter()
            .any(|back| back.remote_virtual_network.eq_ignore_ascii_case(vnet_id))
    });
    let remote_prefixes = remote
        .map(|r| r.address_prefixes.clone())
        .unwrap_or_default();
    json!({
        "name": p.name,
        "id": id,
        "etag": etag(&id),
        "type": "Microsoft.Network/virtualNetworks/virtualNetworkPeerings",
        "properties": {
            "provisioningState": "Succeeded",
            "peeringState": if connected { "Connected" } else { "Initiated" },
            "peeringSyncLevel": if connected { "FullyInSync" } else { "RemoteNotInSync" },
            "remoteVirtualNetwork": reference(&p.remote_virtual_network),
            "allowVirtualNetworkAccess": p.allow_virtual_network_access,
            "allowForwardedTraffic": false,
            "allowGatewayTransit": false,
            "useRemoteGateways": false,
            "remoteAddressSpace": { "addressPrefixes": remote_prefixes },
            "remoteVirtualNetworkAddressSpace": { "addressPrefixes": remote_prefixes },
        }
    })
}

fn virtual_network(c: &ArmConfig, v: &VirtualNetworkResource) -> Resource {
    let id = c.resource_id(&v.at.resource_group, VIRTUAL_NETWORKS, &v.at.name);
    let subnets: Vec<Child> = v
        .subnets
        .iter()
        .map(|s| Child {
            name: s.name.clone(),
            body: subnet(c, &id, s),
        })
        .collect();
    let peerings: Vec<Child> = v
        .peerings
        .iter()
        .map(|p| Child {
            name: p.name.clone(),
            body: peering(c, &id, p),
        })
        .collect();
    let body = json!({
        "name": v.at.name,
        "id": id,
        "etag": etag(&id),
        "type": VIRTUAL_NETWORKS,
        "location": v.at.location,
        "properties": {
            "provisioningState": "Succeeded",
            "resourceGuid": guid(&id, "resourceGuid"),
            "addressSpace": { "addressPrefixes": v.address_prefixes },
            "dhcpOptions": { "dnsServers": v.dns_servers },
            "subnets": subnets.iter().map(|s| s.body.clone()).collect::<Vec<_>>(),
            "virtualNetworkPeerings": peerings.iter().map(|p| p.body.clone()).collect::<Vec<_>>(),
            "enableDdosProtection": false,
        }
    });
    let mut r = top(c, &v.at, VIRTUAL_NETWORKS, body);
    r.children = vec![
        ("subnets".to_string(), subnets),
        ("virtualNetworkPeerings".to_string(), peerings),
    ];
    r
}

/// ARM writes a one-item list in the singular property and leaves the plural one empty.
fn singular_or_plural(rule: &mut Value, singular: &str, plural: &str, items: &[String]) {
    if items.len() == 1 {
        rule[singular] = json!(items[0]);
        rule[plural] = json!([]);
    } else {
        rule[plural] = json!(items);
    }
}

fn security_rule(nsg_id: &str, collection: &str, r: &SecurityRule) -> Value {
    let id = format!("{nsg_id}/{collection}/{}", r.name);
    let mut properties = json!({
        "provisioningState": "Succeeded",
        "protocol": r.protocol,
        "access": r.access,
        "priority": r.priority,
        "direction": r.direction,
    });
    singular_or_plural(
        &mut properties,
        "sourceAddressPrefix",
        "sourceAddressPrefixes",
        &r.source_address_prefixes,
    );
    singular_or_plural(
        &mut properties,
        "sourcePortRange",
        "sourcePortRanges",
        &r.source_port_ranges,
    );
    singular_or_plural(
        &mut properties,
        "destinationAddressPrefix",
        "destinationAddressPrefixes",
        &r.destination_address_prefixes,
    );
    singular_or_plural(
        &mut properties,
        "destinationPortRange",
        "destinationPortRanges",
        &r.destination_port_ranges,
    );
    json!({
        "name": r.name,
        "id": id,
        "etag": etag(&id),
        "type": format!("{NETWORK_SECURITY_GROUPS}/{collection}"),
        "properties": properties,
    })
}

/// Azure's six default rules, present in every NSG.
fn default_rules() -> Vec<SecurityRule> {
    let rule =
        |name: &str, priority, direction: &str, access: &str, src: &str, dst: &str| SecurityRule {
            name: name.into(),
            priority,
            direction: direction.into(),
            access: access.into(),
            protocol: "*".into(),
            source_address_prefixes: vec![src.into()],
            source_port_ranges: vec!["*".into()],
            destination_address_prefixes: vec![dst.into()],
            destination_port_ranges: vec!["*".into()],
        };
    vec![
        rule(
            "AllowVnetInBound",
            65000,
            "Inbound",
            "Allow",
            "VirtualNetwork",
            "VirtualNetwork",
        ),
        rule(
            "AllowAzureLoadBalancerInBound",
            65001,
            "Inbound",
            "Allow",
            "AzureLoadBalancer",
            "*",
        ),
        rule("DenyAllInBound", 65500, "Inbound", "Deny", "*", "*"),
        rule(
            "AllowVnetOutBound",
            65000,
            "Outbound",
            "Allow",
            "VirtualNetwork",
            "VirtualNetwork",
        ),
        rule(
            "AllowInternetOutBound",
            65001,
            "Outbound",
            "Allow",
            "*",
            "Internet",
        ),
        rule("DenyAllOutBound", 65500, "Outbound", "Deny", "*", "*"),
    ]
}

fn nsg(c: &ArmConfig, n: &NsgResource) -> Resource {
    let id = c.resource_id(&n.at.resource_group, NETWORK_SECURITY_GROUPS, &n.at.name);
    let body = json!({
        "name": n.at.name,
        "id": id,
        "etag": etag(&id),
        "type": NETWORK_SECURITY_GROUPS,
        "location": n.at.location,
        "properties": {
            "provisioningState": "Succeeded",
            "resourceGuid": guid(&id, "resourceGuid"),
            "securityRules": n.security_rules.iter().map(|r| security_rule(&id, "securityRules", r)).collect::<Vec<_>>(),
            "defaultSecurityRules": default_rules().iter().map(|r| security_rule(&id, "defaultSecurityRules", r)).collect::<Vec<_>>(),
            "subnets": n.subnets.iter().map(|s| reference(s)).collect::<Vec<_>>(),
        }
    });
    top(c, &n.at, NETWORK_SECURITY_GROUPS, body)
}

fn private_endpoint(c: &ArmConfig, p: &PrivateEndpointResource) -> Resource {
    let id = c.resource_id(&p.at.resource_group, PRIVATE_ENDPOINTS, &p.at.name);
    let connection = format!("{id}/privateLinkServiceConnections/{}", p.at.name);
    let nic = c.resource_id(
        &p.at.resource_group,
        "Microsoft.Network/networkInterfaces",
        &format!("{}.nic.{}", p.at.name, guid(&id, "nic")),
    );
    let body = json!({
        "name": p.at.name,
        "id": id,
        "etag": etag(&id),
        "type": PRIVATE_ENDPOINTS,
        "location": p.at.location,
        "properties": {
            "provisioningState": "Succeeded",
            "resourceGuid": guid(&id, "resourceGuid"),
            "subnet": reference(&p.subnet),
            "networkInterfaces": [reference(&nic)],
            "privateLinkServiceConnections": [{
                "name": p.at.name,
                "id": connection,
                "etag": etag(&connection),
                "type": "Microsoft.Network/privateEndpoints/privateLinkServiceConnections",
                "properties": {
                    "provisioningState": "Succeeded",
                    "privateLinkServiceId": p.private_link_service_id,
                    "groupIds": [p.group_id],
                    "privateLinkServiceConnectionState": {
                        "status": "Approved",
                        "description": "Auto-Approved",
                        "actionsRequired": "None"
                    }
                }
            }],
            "manualPrivateLinkServiceConnections": [],
            "customNetworkInterfaceName": "",
            "ipConfigurations": [],
            "applicationSecurityGroups": [],
            "customDnsConfigs": [{ "fqdn": p.fqdn, "ipAddresses": [p.private_ip_address] }],
        }
    });
    top(c, &p.at, PRIVATE_ENDPOINTS, body)
}

fn private_dns_zone(c: &ArmConfig, z: &PrivateDnsZoneResource) -> Resource {
    let id = c.resource_id(&z.resource_group, PRIVATE_DNS_ZONES, &z.name);
    let links: Vec<Child> = z
        .virtual_network_links
        .iter()
        .map(|l| {
            let link = format!("{id}/virtualNetworkLinks/{}", l.name);
            Child {
                name: l.name.clone(),
                body: json!({
                    "id": link,
                    "name": l.name,
                    "type": "Microsoft.Network/privateDnsZones/virtualNetworkLinks",
                    "etag": format!("\"{}\"", guid(&link, "etag")),
                    "location": "global",
                    "tags": {},
                    "properties": {
                        "virtualNetwork": reference(&l.virtual_network),
                        "registrationEnabled": false,
                        "virtualNetworkLinkState": "Completed",
                        "provisioningState": "Succeeded"
                    }
                }),
            }
        })
        .collect();
    let body = json!({
        "id": id,
        "name": z.name,
        "type": PRIVATE_DNS_ZONES,
        "etag": format!("\"{}\"", guid(&id, "etag")),
        "location": "global",
        "tags": {},
        "properties": {
            "maxNumberOfRecordSets": 25000,
            "maxNumberOfVirtualNetworkLinks": 1000,
            "maxNumberOfVirtualNetworkLinksWithRegistration": 100,
            "numberOfRecordSets": z.record_sets,
            "numberOfVirtualNetworkLinks": links.len(),
            "numberOfVirtualNetworkLinksWithRegistration": 0,
            "provisioningState": "Succeeded"
        }
    });
    let at = Placement {
        resource_group: z.resource_group.clone(),
        name: z.name.clone(),
        location: "global".into(),
    };
    let mut r = top(c, &at, PRIVATE_DNS_ZONES, body);
    r.children = vec![("virtualNetworkLinks".to_string(), links)];
    r
}

fn enterprise_policy(c: &ArmConfig, e: &EnterprisePolicyResource) -> Resource {
    let id = c.resource_id(&e.at.resource_group, ENTERPRISE_POLICIES, &e.at.name);
    let body = json!({
        "id": id,
        "name": e.at.name,
        "type": ENTERPRISE_POLICIES,
        "location": e.at.location,
        "kind": e.kind,
        "properties": {
            "networkInjection": {
                "virtualNetworks": e.virtual_networks.iter().map(|(vnet, subnet)| json!({
                    "id": vnet,
                    "subnet": { "name": subnet }
                })).collect::<Vec<_>>()
            }
        }
    });
    top(c, &e.at, ENTERPRISE_POLICIES, body)
}
