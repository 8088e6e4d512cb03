//! The tenant a mock Entra serves, as the harness builds it from the landscape.
//!
//! Field names follow Microsoft Graph's `user`, `group`, `application` and `servicePrincipal`
//! resources (serialized in camelCase like Graph), so a landscape author can copy values from
//! an app registration manifest. One [`ApplicationConfig`] stands for an application object
//! together with its service principal in this tenant, the way a single-tenant app is used.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Application id of the first-party "Azure Key Vault" resource principal, the same in every
/// tenant.
pub const AZURE_KEY_VAULT_APP_ID: &str = "cfa8b339-82a2-471a-a3c9-0fc0be7a4093";
/// Id of Key Vault's delegated `user_impersonation` permission (as it appears in
/// `requiredResourceAccess` of apps that call Key Vault as a user).
pub const AZURE_KEY_VAULT_USER_IMPERSONATION_ID: &str = "f53da476-18e3-4152-8e01-aec403e6edc0";

/// One Entra tenant: its users, groups and application registrations.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EntraConfig {
    /// The directory (tenant) id, a GUID. Tokens carry it as `tid` and in `iss`.
    pub tenant_id: String,
    /// The tenant's initial verified domain (e.g. `contoso.onmicrosoft.com`); accepted in place
    /// of the tenant id in every path, and the domain `userrealm` reports as `Managed`.
    pub domain: String,
    /// The tenant's display name, quoted by AADSTS500011. Defaults to the domain.
    #[serde(default)]
    pub display_name: Option<String>,
    /// `tenant_region_scope` of the tenant's discovery documents (`NA`, `EU`, `WW`, ...).
    #[serde(default = "default_region_scope")]
    pub tenant_region_scope: String,
    #[serde(default)]
    pub users: Vec<UserConfig>,
    #[serde(default)]
    pub groups: Vec<GroupConfig>,
    /// Application registrations with their service principals, including first-party
    /// resource principals such as [`ApplicationConfig::azure_key_vault`].
    #[serde(default)]
    pub applications: Vec<ApplicationConfig>,
}

fn default_region_scope() -> String {
    "NA".to_string()
}

fn enabled() -> bool {
    true
}

/// A member user (Graph `user`).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UserConfig {
    /// Object id (GUID); tokens carry it as `oid`.
    pub id: String,
    /// Sign-in name, e.g. `alice@contoso.onmicrosoft.com`.
    pub user_principal_name: String,
    pub display_name: String,
    #[serde(default)]
    pub given_name: Option<String>,
    #[serde(default)]
    pub surname: Option<String>,
    /// Password for the sign-in page and ROPC.
    pub password: String,
    /// Object ids of the groups the user is a member of.
    #[serde(default)]
    pub member_of: Vec<String>,
    #[serde(default = "enabled")]
    pub account_enabled: bool,
}

/// A security group (Graph `group`).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GroupConfig {
    pub id: String,
    pub display_name: String,
}

/// An application object plus its service principal in this tenant.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ApplicationConfig {
    pub display_name: String,
    /// The client id (Graph `appId`).
    pub app_id: String,
    /// Object id of the service principal; app-only tokens carry it as `oid` and `sub`.
    /// Defaults to a stable GUID derived from the tenant and app id.
    #[serde(default)]
    pub service_principal_id: Option<String>,
    /// Client secrets (Graph `passwordCredentials`).
    #[serde(default)]
    pub password_credentials: Vec<PasswordCredential>,
    /// Certificates for `private_key_jwt` client assertions (Graph `keyCredentials`).
    #[serde(default)]
    pub key_credentials: Vec<KeyCredential>,
    /// Application ID URIs, e.g. `api://case-search` or `https://vault.azure.net`.
    #[serde(default)]
    pub identifier_uris: Vec<String>,
    /// What the app exposes as an API.
    #[serde(default)]
    pub api: ApiApplication,
    #[serde(default)]
    pub app_roles: Vec<AppRole>,
    #[serde(default)]
    pub web: WebApplication,
    #[serde(default)]
    pub spa: RedirectUris,
    #[serde(default)]
    pub public_client: RedirectUris,
    /// "Allow public client flows": ROPC without a client credential.
    #[serde(default)]
    pub is_fallback_public_client: bool,
    /// Which groups go into the `groups` claim of tokens issued *for* this app
    /// (and of ID tokens issued *to* it).
    #[serde(default)]
    pub group_membership_claims: GroupMembershipClaims,
    /// API permissions this app requests, with whether an admin granted consent.
    #[serde(default)]
    pub required_resource_access: Vec<RequiredResourceAccess>,
    /// App role assignments *of this app's roles* (Graph `servicePrincipal.appRoleAssignedTo`):
    /// users, groups or service principals holding a role of this app.
    #[serde(default)]
    pub app_role_assigned_to: Vec<AppRoleAssignment>,
}

/// Graph `passwordCredential`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PasswordCredential {
    /// The secret's id (what the portal calls "Secret ID"), a GUID.
    pub key_id: String,
    #[serde(default)]
    pub display_name: Option<String>,
    /// The secret value clients send.
    pub secret_text: String,
    #[serde(default)]
    pub start_date_time: Option<Timestamp>,
    pub end_date_time: Timestamp,
}

/// Graph `keyCredential` of type `AsymmetricX509Cert`, usage `Verify`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KeyCredential {
    pub key_id: String,
    #[serde(default)]
    pub display_name: Option<String>,
    /// The public certificate: PEM, or base64 DER as Graph's `key` holds it.
    pub key: String,
    /// Hex SHA-1 thumbprint as Graph reports it; checked against `key` when given.
    #[serde(default)]
    pub custom_key_identifier: Option<String>,
    /// Defaults to the certificate's `notAfter`.
    #[serde(default)]
    pub end_date_time: Option<Timestamp>,
}

/// Graph `apiApplication`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ApiApplication {
    /// `null` or `1` issues v1.0 access tokens for this resource, `2` v2.0 ones.
    #[serde(default)]
    pub requested_access_token_version: Option<u8>,
    #[serde(default)]
    pub oauth2_permission_scopes: Vec<PermissionScope>,
}

/// Graph `permissionScope` (a delegated permission).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PermissionScope {
    pub id: String,
    /// What appears in `scp`, e.g. `Cases.Read`.
    pub value: String,
    #[serde(default = "enabled")]
    pub is_enabled: bool,
}

/// Graph `appRole`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AppRole {
    pub id: String,
    /// What appears in `roles`.
    pub value: String,
    pub allowed_member_types: Vec<AppRoleMemberType>,
    #[serde(default)]
    pub display_name: Option<String>,
    #[serde(default = "enabled")]
    pub is_enabled: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum AppRoleMemberType {
    User,
    Application,
}

/// Graph `webApplication`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WebApplication {
    #[serde(default)]
    pub redirect_uris: Vec<String>,
    #[serde(default)]
    pub implicit_grant_settings: ImplicitGrantSettings,
}

/// Graph `implicitGrantSettings`: whether `/authorize` may return an ID token directly.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ImplicitGrantSettings {
    #[serde(default)]
    pub enable_id_token_issuance: bool,
}

/// Graph `spaApplication` / `publicClientApplication`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RedirectUris {
    #[serde(default)]
    pub redirect_uris: Vec<String>,
}

/// Graph `groupMembershipClaims`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum GroupMembershipClaims {
    #[default]
    None,
    SecurityGroup,
    All,
    ApplicationGroup,
    DirectoryRole,
}

/// Graph `requiredResourceAccess`, plus the tenant-side consent state.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RequiredResourceAccess {
    /// `appId` of the resource (API) application.
    pub resource_app_id: String,
    pub resource_access: Vec<ResourceAccess>,
    /// Whether an administrator granted tenant-wide consent ("Grant admin consent"). Without it
    /// user flows for these scopes fail with AADSTS65001 and app roles are not granted.
    #[serde(default = "enabled")]
    pub admin_consent_granted: bool,
}

/// Graph `resourceAccess`: a scope id (`Scope`) or app role id (`Role`) of the resource.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ResourceAccess {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: ResourceAccessType,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ResourceAccessType {
    Scope,
    Role,
}

/// Graph `appRoleAssignment` as listed under the resource's `appRoleAssignedTo`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AppRoleAssignment {
    /// A user, group or service principal object id.
    pub principal_id: String,
    pub app_role_id: String,
}

impl ApplicationConfig {
    /// A bare registration: no credentials, URIs, scopes or roles.
    pub fn new(display_name: impl Into<String>, app_id: impl Into<String>) -> Self {
        Self {
            display_name: display_name.into(),
            app_id: app_id.into(),
            service_principal_id: None,
            password_credentials: Vec::new(),
            key_credentials: Vec::new(),
            identifier_uris: Vec::new(),
            api: ApiApplication::default(),
            app_roles: Vec::new(),
            web: WebApplication::default(),
            spa: RedirectUris::default(),
            public_client: RedirectUris::default(),
            is_fallback_public_client: false,
            group_membership_claims: GroupMembershipClaims::None,
            required_resource_access: Vec::new(),
            app_role_assigned_to: Vec::new(),
        }
    }

    /// The first-party "Azure Key Vault" resource principal as it exists in every tenant:
    /// identifier `https://vault.azure.net`, delegated scope `user_impersonation`, v1.0 tokens.
    pub fn azure_key_vault() -> Self {
        let mut app = Self::new("Azure Key Vault", AZURE_KEY_VAULT_APP_ID);
        app.identifier_uris = vec!["https://vault.azure.net".to_string()];
        app.api.oauth2_permission_scopes = vec![PermissionScope {
            id: AZURE_KEY_VAULT_USER_IMPERSONATION_ID.to_string(),
            value: "user_impersonation".to_string(),
            is_enabled: true,
        }];
        app
    }

    /// The first-party "Windows Azure Service Management API" principal (Azure Resource
    /// Manager) as it exists in every tenant: app id `797f4846-…`, identifiers
    /// `https://management.core.windows.net/` (what the Azure CLI asks for, as
    /// `https://management.core.windows.net//.default`) and `https://management.azure.com/`,
    /// delegated scope `user_impersonation`, v1.0 tokens.
    pub fn azure_resource_manager() -> Self {
        let mut app = Self::new("Windows Azure Service Management API", ARM_APP_ID);
        app.identifier_uris = vec![
            "https://management.core.windows.net/".to_string(),
            "https://management.azure.com/".to_string(),
        ];
        app.api.oauth2_permission_scopes = vec![PermissionScope {
            id: ARM_USER_IMPERSONATION_ID.to_string(),
            value: "user_impersonation".to_string(),
            is_enabled: true,
        }];
        app
    }
}

/// Azure Resource Manager's application id.
pub const ARM_APP_ID: &str = "797f4846-ba00-4fd7-ba43-dac1f8f63013";
/// The id of ARM's `user_impersonation` scope (UNVERIFIED: as seen in public manifests).
pub const ARM_USER_IMPERSONATION_ID: &str = "41094075-9dad-400e-a0bd-54e686782033";

/// A point in time given as Unix seconds or an RFC 3339 string; serialized as RFC 3339.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Timestamp(pub i64);

impl Timestamp {
    pub fn to_rfc3339(self) -> String {
        OffsetDateTime::from_unix_timestamp(self.0)
            .ok()
            .and_then(|t| t.format(&Rfc3339).ok())
            .unwrap_or_else(|| self.0.to_string())
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_rfc3339())
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Timestamp;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("Unix seconds or an RFC 3339 date-time")
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Timestamp, E> {
                Ok(Timestamp(v))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Timestamp, E> {
                i64::try_from(v)
                    .map(Timestamp)
                    .map_err(|_| E::custom("timestamp out of range"))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Timestamp, E> {
                OffsetDateTime::parse(v, &Rfc3339)
                    .map(|t| Timestamp(t.unix_timestamp()))
                    .map_err(|e| E::custom(format!("`{v}` is not an RFC 3339 date-time: {e}")))
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_accept_unix_seconds_and_rfc3339_and_serialize_as_rfc3339() {
        let a: Timestamp = serde_json::from_str("1767225600").unwrap();
        let b: Timestamp = serde_json::from_str("\"2026-01-01T00:00:00Z\"").unwrap();
        assert_eq!(a, b);
        assert_eq!(
            serde_json::to_string(&a).unwrap(),
            "\"2026-01-01T00:00:00Z\""
        );
        assert!(serde_json::from_str::<Timestamp>("\"next tuesday\"").is_err());
    }

    #[test]
    fn graph_shaped_json_deserializes_with_defaults() {
        let config: EntraConfig = serde_json::from_value(serde_json::json!({
            "tenantId": "72f988bf-86f1-41af-91ab-2d7cd011db47",
            "domain": "contoso.onmicrosoft.com",
            "users": [{"id": "2c5c8c1e-7b2c-4f7e-9d1a-0f3c7a1e9b11",
                       "userPrincipalName": "alice@contoso.onmicrosoft.com",
                       "displayName": "Alice", "password": "pw"}],
            "applications": [{"displayName": "api", "appId": "11111111-1111-1111-1111-111111111111",
                              "api": {"requestedAccessTokenVersion": 2},
                              "requiredResourceAccess": [{"resourceAppId": AZURE_KEY_VAULT_APP_ID,
                                  "resourceAccess": [{"id": AZURE_KEY_VAULT_USER_IMPERSONATION_ID, "type": "Scope"}]}]}]
        }))
        .unwrap();
        assert!(config.users[0].account_enabled);
        assert_eq!(config.tenant_region_scope, "NA");
        let app = &config.applications[0];
        assert_eq!(app.api.requested_access_token_version, Some(2));
        assert!(app.required_resource_access[0].admin_consent_granted);
        assert_eq!(
            app.required_resource_access[0].resource_access[0].kind,
            ResourceAccessType::Scope
        );
    }
}
