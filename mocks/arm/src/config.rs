//! The landscape as ARM sees it: one tenant, one subscription, its resource groups, the
//! resources ARM serves and the RBAC role assignments that decide who may read them.
//!
//! The harness fills this in from a landscape; the crate knows nothing of landscapes or fabrics.
//! Every resource names its resource group; ids are built from the subscription, the group,
//! the type and the name (`/subscriptions/{s}/resourceGroups/{g}/providers/{type}/{name}`).

use serde::{Deserialize, Serialize};

/// Everything ARM serves.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
pub struct ArmConfig {
    pub tenant: TenantConfig,
    pub subscription: SubscriptionConfig,
    pub resource_groups: Vec<ResourceGroupConfig>,
    #[serde(default)]
    pub key_vaults: Vec<VaultResource>,
    #[serde(default)]
    pub virtual_networks: Vec<VirtualNetworkResource>,
    #[serde(default)]
    pub network_security_groups: Vec<NsgResource>,
    #[serde(default)]
    pub private_endpoints: Vec<PrivateEndpointResource>,
    #[serde(default)]
    pub private_dns_zones: Vec<PrivateDnsZoneResource>,
    #[serde(default)]
    pub enterprise_policies: Vec<EnterprisePolicyResource>,
    /// Azure RBAC role assignments (group assignments already expanded to their members).
    #[serde(default)]
    pub role_assignments: Vec<RoleAssignment>,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
pub struct TenantConfig {
    pub id: String,
    pub display_name: String,
    /// `contoso.onmicrosoft.com`.
    pub default_domain: String,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
pub struct SubscriptionConfig {
    pub id: String,
    pub display_name: String,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
pub struct ResourceGroupConfig {
    pub name: String,
    pub location: String,
}

/// Where a resource lives.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
pub struct Placement {
    pub resource_group: String,
    pub name: String,
    pub location: String,
}

/// A `Microsoft.KeyVault/vaults` resource.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
pub struct VaultResource {
    #[serde(flatten)]
    pub at: Placement,
    pub enable_rbac_authorization: bool,
    pub public_network_access_enabled: bool,
    pub soft_delete_retention_days: u32,
    pub purge_protection: bool,
    /// `Allow` or `Deny`; `None` when the vault has no firewall.
    pub default_action: Option<String>,
    pub ip_rules: Vec<String>,
    /// Subnet ids with the Key Vault service endpoint rule.
    pub virtual_network_rules: Vec<String>,
    pub access_policies: Vec<VaultAccessPolicy>,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
pub struct VaultAccessPolicy {
    pub object_id: String,
    /// Secret permissions as the portal writes them (`get`, `list`, ...).
    pub secrets: Vec<String>,
}

/// A `Microsoft.Network/virtualNetworks` resource with its subnets and peerings.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
pub struct VirtualNetworkResource {
    #[serde(flatten)]
    pub at: Placement,
    pub address_prefixes: Vec<String>,
    pub dns_servers: Vec<String>,
    pub subnets: Vec<SubnetResource>,
    pub peerings: Vec<PeeringResource>,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
pub struct SubnetResource {
    pub name: String,
    pub address_prefix: String,
    /// Service names the subnet is delegated to (`Microsoft.PowerPlatform/enterprisePolicies`).
    pub delegations: Vec<String>,
    /// NSG resource id.
    pub network_security_group: Option<String>,
    /// NAT gateway resource id.
    pub nat_gateway: Option<String>,
    /// Service endpoints (`Microsoft.KeyVault`).
    pub service_endpoints: Vec<String>,
}

/// One direction of a peering, held by its local virtual network.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
pub struct PeeringResource {
    pub name: String,
    /// The remote virtual network's id.
    pub remote_virtual_network: String,
    pub allow_virtual_network_access: bool,
}

/// A `Microsoft.Network/networkSecurityGroups` resource.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
pub struct NsgResource {
    #[serde(flatten)]
    pub at: Placement,
    pub security_rules: Vec<SecurityRule>,
    /// Ids of the subnets the NSG is associated with.
    pub subnets: Vec<String>,
}

/// A security rule in Azure's model; one-item prefix and port lists are written in the
/// singular properties, as ARM does.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
pub struct SecurityRule {
    pub name: String,
    pub priority: u32,
    /// `Inbound` / `Outbound`.
    pub direction: String,
    /// `Allow` / `Deny`.
    pub access: String,
    pub protocol: String,
    pub source_address_prefixes: Vec<String>,
    pub source_port_ranges: Vec<String>,
    pub destination_address_prefixes: Vec<String>,
    pub destination_port_ranges: Vec<String>,
}

/// A `Microsoft.Network/privateEndpoints` resource.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
pub struct PrivateEndpointResource {
    #[serde(flatten)]
    pub at: Placement,
    pub subnet: String,
    /// The target resource's id (a vault, a web app).
    pub private_link_service_id: String,
    /// `vault`, `sites`.
    pub group_id: String,
    pub private_ip_address: String,
    /// The target's public host name (`kv-contoso-prod.vault.azure.net`).
    pub fqdn: String,
}

/// A `Microsoft.Network/privateDnsZones` resource with its virtual network links.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
pub struct PrivateDnsZoneResource {
    pub resource_group: String,
    /// The zone name, which is the resource name (`privatelink.vaultcore.azure.net`).
    pub name: String,
    pub record_sets: u32,
    pub virtual_network_links: Vec<VirtualNetworkLink>,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
pub struct VirtualNetworkLink {
    pub name: String,
    pub virtual_network: String,
}

/// A `Microsoft.PowerPlatform/enterprisePolicies` resource.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
pub struct EnterprisePolicyResource {
    #[serde(flatten)]
    pub at: Placement,
    /// `NetworkInjection`, ...
    pub kind: String,
    /// (virtual network id, subnet name) pairs.
    pub virtual_networks: Vec<(String, String)>,
}

/// An Azure RBAC role assignment: a built-in role (by name) at a scope.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
pub struct RoleAssignment {
    pub principal_id: String,
    pub role: String,
    pub scope: String,
}

impl ArmConfig {
    /// `/subscriptions/{id}`.
    pub fn subscription_id(&self) -> String {
        format!("/subscriptions/{}", self.subscription.id)
    }

    /// `/subscriptions/{id}/resourceGroups/{group}`.
    pub fn group_id(&self, group: &str) -> String {
        format!("{}/resourceGroups/{group}", self.subscription_id())
    }

    /// The id of a top-level resource.
    pub fn resource_id(&self, group: &str, kind: &str, name: &str) -> String {
        format!("{}/providers/{kind}/{name}", self.group_id(group))
    }
}
