//! The landscape file format: what a scenario YAML may say.
//!
//! Names follow Azure's own resource properties (camelCase, `addressSpace`, `publicNetworkAccess`,
//! `requestedAccessTokenVersion`) so that a reader who knows ARM or Microsoft Graph recognises
//! them. Unknown fields are errors: a typo must not silently drop a rule.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// A whole landscape file.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Scenario {
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    /// Subscription id used in ARM resource ids (role assignment scopes, Key Vault references).
    pub subscription: String,
    /// Resource group of every resource of the landscape.
    pub resource_group: String,
    pub tenant: Tenant,
    #[serde(default)]
    pub groups: Vec<Group>,
    #[serde(default)]
    pub users: Vec<User>,
    #[serde(default)]
    pub apps: Vec<App>,
    /// First-party and other service principals that exist in the tenant without an app
    /// registration of the landscape (Azure Key Vault, Dataverse).
    #[serde(default)]
    pub service_principals: Vec<ServicePrincipal>,
    #[serde(default)]
    pub role_assignments: Vec<RoleAssignment>,
    #[serde(default)]
    pub regions: Vec<Region>,
    #[serde(default)]
    pub vnets: Vec<Vnet>,
    #[serde(default)]
    pub peerings: Vec<Peering>,
    #[serde(default)]
    pub nsgs: Vec<Nsg>,
    #[serde(default)]
    pub nat_gateways: Vec<NatGateway>,
    #[serde(default)]
    pub private_dns_zones: Vec<PrivateDnsZone>,
    #[serde(default)]
    pub private_endpoints: Vec<PrivateEndpoint>,
    #[serde(default)]
    pub key_vaults: Vec<KeyVault>,
    #[serde(default)]
    pub apis: Vec<Api>,
    #[serde(default)]
    pub enterprise_policies: Vec<EnterprisePolicy>,
    #[serde(default)]
    pub environments: Vec<Environment>,
    #[serde(default)]
    pub connectors: Vec<Connector>,
    /// Extra places that originate traffic (a jump box in a subnet, an on-premises client).
    #[serde(default)]
    pub hosts: Vec<DeclaredHost>,
}

impl Scenario {
    /// The resource group of a private DNS zone instance. Azure holds one zone of a name per
    /// resource group, so when several instances share a zone name (contoso's two
    /// `privatelink.vaultcore.azure.net`) each lives in its own group,
    /// `{resourceGroup}-{instance name}`; every other resource lives in `resourceGroup`.
    pub fn dns_zone_group(&self, zone: &PrivateDnsZone) -> String {
        let shared = self
            .private_dns_zones
            .iter()
            .filter(|z| z.zone.eq_ignore_ascii_case(&zone.zone))
            .count()
            > 1;
        if shared {
            format!("{}-{}", self.resource_group, zone.name)
        } else {
            self.resource_group.clone()
        }
    }

    /// Every resource group of the landscape, sorted: `resourceGroup` and the private DNS
    /// zones' own groups.
    pub fn resource_groups(&self) -> Vec<String> {
        let mut groups: Vec<String> = std::iter::once(self.resource_group.clone())
            .chain(
                self.private_dns_zones
                    .iter()
                    .map(|z| self.dns_zone_group(z)),
            )
            .collect();
        groups.sort();
        groups.dedup();
        groups
    }
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Tenant {
    pub id: String,
    pub domain: String,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Group {
    pub name: String,
    pub id: String,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct User {
    pub upn: String,
    pub display_name: String,
    pub object_id: String,
    /// Password for test sign-ins (ROPC, the sign-in page).
    pub password: String,
    /// Group names.
    #[serde(default)]
    pub groups: Vec<String>,
    #[serde(default = "yes")]
    pub enabled: bool,
}

fn yes() -> bool {
    true
}

/// An app registration with its service principal.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct App {
    pub name: String,
    pub client_id: String,
    /// Object id of the app's service principal in the tenant (`oid` of app-only tokens).
    pub service_principal_id: String,
    #[serde(default)]
    pub identifier_uris: Vec<String>,
    #[serde(default)]
    pub scopes: Vec<Scope>,
    #[serde(default)]
    pub app_roles: Vec<AppRole>,
    /// `api.requestedAccessTokenVersion`: null (v1), 1 or 2.
    #[serde(default)]
    pub requested_access_token_version: Option<u8>,
    /// `None`, `SecurityGroup`, `All`, ... as in the app manifest.
    #[serde(default)]
    pub group_membership_claims: Option<String>,
    #[serde(default)]
    pub secrets: Vec<ClientSecret>,
    #[serde(default)]
    pub certificates: Vec<ClientCertificate>,
    #[serde(default)]
    pub redirect_uris: Vec<String>,
    /// Public client flows allowed (ROPC without a secret, device code).
    #[serde(default)]
    pub public_client: bool,
    #[serde(default)]
    pub required_resource_access: Vec<RequiredResourceAccess>,
    /// Who holds which of this app's roles.
    #[serde(default)]
    pub app_role_assignments: Vec<AppRoleAssignment>,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Scope {
    pub value: String,
    pub id: String,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AppRole {
    pub value: String,
    pub id: String,
    /// `User`, `Application` or both.
    #[serde(default = "user_and_application")]
    pub allowed_member_types: Vec<String>,
}

fn user_and_application() -> Vec<String> {
    vec!["User".into(), "Application".into()]
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ClientSecret {
    /// Display name of the credential.
    pub name: String,
    pub value: String,
    /// RFC 3339 end date; absent means it never expires in the emulation.
    #[serde(default)]
    pub expires: Option<String>,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ClientCertificate {
    pub name: String,
    /// PEM file with the public certificate, relative to the landscape file.
    pub certificate: String,
}

/// A delegated permission or application permission the app needs on another resource, and
/// whether an administrator consented to it for the tenant.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RequiredResourceAccess {
    /// The resource: an app name of the landscape, a service principal name, or an identifier
    /// URI (`https://vault.azure.net`).
    pub resource: String,
    /// Delegated scopes (`Cases.Read`).
    #[serde(default)]
    pub scopes: Vec<String>,
    /// Application permissions (app roles, `Cases.Read.All`).
    #[serde(default)]
    pub roles: Vec<String>,
    #[serde(default)]
    pub admin_consent: bool,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AppRoleAssignment {
    /// A user's UPN, a group name or an app name.
    pub principal: String,
    pub role: String,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ServicePrincipal {
    pub name: String,
    pub app_id: String,
    pub object_id: String,
    #[serde(default)]
    pub identifier_uris: Vec<String>,
    #[serde(default)]
    pub scopes: Vec<Scope>,
    #[serde(default)]
    pub requested_access_token_version: Option<u8>,
}

/// An Azure RBAC role assignment.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RoleAssignment {
    /// User UPN, group name, app name or service principal name.
    pub principal: String,
    /// Built-in role name (`Key Vault Secrets User`).
    pub role: String,
    /// ARM scope: a vault id, or a secret id below it.
    pub scope: String,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Region {
    pub name: String,
    /// Power Platform geo (enterprise policy location) this Azure region serves.
    pub geo: String,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Vnet {
    pub name: String,
    pub region: String,
    pub address_space: Vec<String>,
    #[serde(default)]
    pub dns_servers: Vec<String>,
    #[serde(default)]
    pub subnets: Vec<Subnet>,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Subnet {
    pub name: String,
    pub prefix: String,
    /// Service name the subnet is delegated to (`Microsoft.PowerPlatform/enterprisePolicies`).
    #[serde(default)]
    pub delegation: Option<String>,
    #[serde(default)]
    pub nsg: Option<String>,
    #[serde(default)]
    pub nat_gateway: Option<String>,
}

/// One direction of a vNet peering; traffic flows only when both directions exist.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Peering {
    pub name: String,
    pub from: String,
    pub to: String,
    #[serde(default = "yes")]
    pub allow_virtual_network_access: bool,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Nsg {
    pub name: String,
    #[serde(default)]
    pub rules: Vec<NsgRule>,
}

/// A security rule, in Azure's model.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NsgRule {
    pub name: String,
    pub priority: u32,
    pub direction: Direction,
    pub access: Access,
    #[serde(default = "any")]
    pub protocol: String,
    #[serde(default = "any_list")]
    pub source_address_prefixes: Vec<String>,
    #[serde(default = "any_list")]
    pub source_port_ranges: Vec<String>,
    #[serde(default = "any_list")]
    pub destination_address_prefixes: Vec<String>,
    #[serde(default = "any_list")]
    pub destination_port_ranges: Vec<String>,
}

fn any() -> String {
    "*".into()
}

fn any_list() -> Vec<String> {
    vec!["*".into()]
}

#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq, Hash)]
pub enum Direction {
    Inbound,
    Outbound,
}

#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq, Hash)]
pub enum Access {
    Allow,
    Deny,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NatGateway {
    pub name: String,
    pub region: String,
    /// The public address egress traffic leaves with (documentation range).
    pub public_ip: String,
}

/// A private DNS zone and the vNets linked to it.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PrivateDnsZone {
    /// Resource name of this zone instance (two resource groups may each hold
    /// `privatelink.vaultcore.azure.net`; the landscape tells them apart by this name).
    pub name: String,
    /// DNS zone name (`privatelink.vaultcore.azure.net`).
    pub zone: String,
    #[serde(default)]
    pub vnet_links: Vec<String>,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PrivateEndpoint {
    pub name: String,
    pub vnet: String,
    pub subnet: String,
    /// A key vault or API name.
    pub target: String,
    /// The private DNS zone (by resource name) the endpoint registers its A record in.
    #[serde(default)]
    pub private_dns_zone: Option<String>,
    /// Static private address; allocated from the subnet when absent.
    #[serde(default)]
    pub address: Option<String>,
}

#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq, Default)]
pub enum PublicNetworkAccess {
    #[default]
    Enabled,
    Disabled,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KeyVault {
    pub name: String,
    pub region: String,
    #[serde(default)]
    pub public_network_access: PublicNetworkAccess,
    #[serde(default)]
    pub network_acls: Option<NetworkAcls>,
    #[serde(default)]
    pub authorization: VaultAuthorization,
    #[serde(default)]
    pub access_policies: Vec<AccessPolicy>,
    #[serde(default = "ninety")]
    pub soft_delete_retention_days: u32,
    #[serde(default)]
    pub purge_protection: bool,
    #[serde(default)]
    pub secrets: Vec<SeedSecret>,
}

fn ninety() -> u32 {
    90
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NetworkAcls {
    pub default_action: Access,
    #[serde(default)]
    pub ip_rules: Vec<String>,
    #[serde(default)]
    pub virtual_network_rules: Vec<SubnetRef>,
}

/// A subnet by its vNet and subnet names (the workspace's one subnet reference).
pub use ppvnet_common::net::SubnetRef;

#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq, Default)]
#[serde(rename_all = "camelCase")]
pub enum VaultAuthorization {
    /// Azure RBAC (`enableRbacAuthorization: true`), the default for new vaults.
    #[default]
    Rbac,
    AccessPolicies,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AccessPolicy {
    pub principal: String,
    /// Secret permissions: get, list, set, delete, recover, backup, restore, purge.
    pub secrets: Vec<String>,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SeedSecret {
    pub name: String,
    pub value: String,
    #[serde(default)]
    pub content_type: Option<String>,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
}

/// A backend API of the landscape.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Api {
    pub name: String,
    pub region: String,
    /// The app registration the API validates tokens for.
    pub app: String,
    /// Host name clients use (`cases-api-prod.azurewebsites.net`).
    pub host_name: String,
    #[serde(default)]
    pub public_network_access: PublicNetworkAccess,
    /// What runs: the builtin case search API, or a team's own program.
    pub implementation: ApiImplementation,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(tag = "kind", rename_all = "camelCase", deny_unknown_fields)]
pub enum ApiImplementation {
    /// The builtin case search API with a generated database.
    #[serde(rename_all = "camelCase")]
    Search {
        #[serde(default = "ten_thousand")]
        cases: u32,
        #[serde(default)]
        seed: u64,
    },
    /// An external program, run on the `internet` host and handed its faces by socket activation
    /// (see `services::program::spawn_external`).
    #[serde(rename_all = "camelCase")]
    Command { argv: Vec<String> },
    /// A team's image, run by the Docker fabric in the `internet` host's network namespace (as
    /// App Service's outbound traffic), listening on `port` with TLS from the same environment
    /// a command gets; the API's faces forward to it (see `services::container`).
    #[serde(rename_all = "camelCase")]
    Container {
        image: String,
        port: u16,
        /// Replaces the image's command when given.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        command: Option<Vec<String>>,
        /// More environment for the container (its own settings), after ppvnet's.
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        env: BTreeMap<String, String>,
    },
    /// A stubbed third-party API: request matchers and canned responses from `mappings` (a
    /// YAML/JSON file relative to the landscape; see `services::stub`), or none until a test
    /// adds them.
    #[serde(rename_all = "camelCase")]
    Stub {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        mappings: Option<std::path::PathBuf>,
    },
}

fn ten_thousand() -> u32 {
    10_000
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EnterprisePolicy {
    pub name: String,
    /// `NetworkInjection` (others exist in Azure: Encryption, Identity, Lockbox, PrivateEndpoint).
    pub kind: String,
    /// Power Platform geo (`unitedstates`).
    pub location: String,
    #[serde(default)]
    pub virtual_networks: Vec<SubnetRef>,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Environment {
    pub name: String,
    /// Production, Sandbox, Developer, Default, Trial, Teams.
    #[serde(rename = "type")]
    pub kind: String,
    /// Power Platform geo.
    pub location: String,
    #[serde(default = "yes")]
    pub managed: bool,
    #[serde(default)]
    pub enterprise_policy: Option<String>,
    /// The Azure region the environment currently runs in.
    pub active_region: String,
    #[serde(default)]
    pub variables: Vec<EnvironmentVariable>,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EnvironmentVariable {
    pub schema_name: String,
    #[serde(rename = "type")]
    pub kind: VariableType,
    /// The value: text for String/Number/Boolean/JSON, a Key Vault secret reference for Secret.
    pub value: String,
}

#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
pub enum VariableType {
    String,
    Number,
    Boolean,
    #[serde(rename = "JSON")]
    Json,
    Secret,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Connector {
    pub name: String,
    /// Environments the connector is saved in.
    pub environments: Vec<String>,
    /// Paths relative to the landscape file.
    pub api_definition: String,
    pub api_properties: String,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DeclaredHost {
    pub name: String,
    /// In a subnet, or on the public internet when absent.
    #[serde(default)]
    pub vnet: Option<String>,
    #[serde(default)]
    pub subnet: Option<String>,
    /// `container`: the host runs a team's `image` in its network namespace (Docker fabric).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<DeclaredHostKind>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// Replaces the image's command when given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<Vec<String>>,
    /// More environment for the container, after ppvnet's.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
}

/// What a declared host runs besides being an address.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub enum DeclaredHostKind {
    Container,
}

impl DeclaredHost {
    /// The team image the host runs, when it is a container host.
    pub fn container_image(&self) -> Option<&str> {
        (self.kind == Some(DeclaredHostKind::Container))
            .then_some(self.image.as_deref())
            .flatten()
    }
}
