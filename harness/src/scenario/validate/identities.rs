//! The tenant's identities: GUIDs, users, app registrations, service principals and RBAC role
//! assignments.

use super::{Findings, Index, not_found};
use crate::scenario::model::*;

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

pub(super) fn check(s: &Scenario, ix: &Index, f: &mut Findings) {
    check_guid(f, "tenant.id".into(), "tenant id", &s.tenant.id);
    check_guid(f, "subscription".into(), "subscription id", &s.subscription);
    for (i, g) in s.groups.iter().enumerate() {
        check_guid(f, format!("groups[{i}].id"), "group object id", &g.id);
    }
    for (i, u) in s.users.iter().enumerate() {
        check_user(s, ix, f, i, u);
    }
    for (i, a) in s.apps.iter().enumerate() {
        check_app(s, ix, f, i, a);
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
        check_role_assignment(s, ix, f, i, ra);
    }
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

fn check_user(s: &Scenario, ix: &Index, f: &mut Findings, i: usize, u: &User) {
    check_guid(
        f,
        format!("users[{i}].objectId"),
        "user object id",
        &u.object_id,
    );
    let domain_ok = u
        .upn
        .rsplit_once('@')
        .is_some_and(|(local, d)| !local.is_empty() && d.eq_ignore_ascii_case(&s.tenant.domain));
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

fn check_app(s: &Scenario, ix: &Index, f: &mut Findings, i: usize, a: &App) {
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
        } else {
            check_permissions(s, f, i, j, r);
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

/// Every delegated permission and app role an app asks for must be one its resource exposes
/// (Entra could not grant it; found by the `landscape` fuzz target, where a misspelt scope made a
/// landscape valid that the mock Entra then refused to load).
fn check_permissions(
    s: &Scenario,
    f: &mut Findings,
    i: usize,
    j: usize,
    r: &crate::scenario::model::RequiredResourceAccess,
) {
    let app = s
        .apps
        .iter()
        .find(|x| x.name == r.resource || x.identifier_uris.contains(&r.resource));
    let (scopes, roles): (Vec<&str>, Vec<&str>) = match app {
        Some(x) => (
            x.scopes.iter().map(|v| v.value.as_str()).collect(),
            x.app_roles.iter().map(|v| v.value.as_str()).collect(),
        ),
        None => match s
            .service_principals
            .iter()
            .find(|x| x.name == r.resource || x.identifier_uris.contains(&r.resource))
        {
            Some(x) => (x.scopes.iter().map(|v| v.value.as_str()).collect(), vec![]),
            None => return,
        },
    };
    for (k, want) in r.scopes.iter().enumerate() {
        if !scopes.contains(&want.as_str()) {
            f.add(
                "ResourceNotFound",
                format!("apps[{i}].requiredResourceAccess[{j}].scopes[{k}]"),
                format!(
                    "The resource '{}' exposes no delegated permission '{want}'.",
                    r.resource
                ),
            );
        }
    }
    for (k, want) in r.roles.iter().enumerate() {
        if !roles.contains(&want.as_str()) {
            f.add(
                "ResourceNotFound",
                format!("apps[{i}].requiredResourceAccess[{j}].roles[{k}]"),
                format!(
                    "The resource '{}' defines no app role '{want}'.",
                    r.resource
                ),
            );
        }
    }
}

fn check_role_assignment(
    s: &Scenario,
    ix: &Index,
    f: &mut Findings,
    i: usize,
    ra: &RoleAssignment,
) {
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
    let path = format!("roleAssignments[{i}].scope");
    if CONTROL_PLANE_ROLES.contains(&ra.role.as_str()) {
        check_control_scope(s, ix, f, path, &ra.scope);
    } else {
        check_scope(s, ix, f, path, &ra.scope);
    }
}

/// Roles whose assignments Azure Resource Manager evaluates for reads of the landscape's
/// resources; they may sit at the subscription, a resource group or a resource.
const CONTROL_PLANE_ROLES: &[&str] = &["Owner", "Contributor", "Reader"];

/// The scope of an Owner, Contributor or Reader assignment: the landscape's subscription, one
/// of its resource groups, or one of its resources (`.../providers/{type}/{name}`).
fn check_control_scope(s: &Scenario, ix: &Index, f: &mut Findings, path: String, scope: &str) {
    let subscription = format!("/subscriptions/{}", s.subscription);
    let invalid = |f: &mut Findings| {
        f.add(
            "InvalidScope",
            path.clone(),
            format!(
                "The scope '{scope}' is not valid for a role assignment in this landscape; expected {subscription}[/resourceGroups/{{group}}[/providers/{{type}}/{{name}}]]."
            ),
        );
    };
    let Some(rest) = scope
        .get(..subscription.len())
        .filter(|p| p.eq_ignore_ascii_case(&subscription))
        .map(|_| &scope[subscription.len()..])
    else {
        return invalid(f);
    };
    let segments: Vec<&str> = rest.split('/').skip(1).collect();
    let (group, resource) = match segments.as_slice() {
        [] => return,
        [g, group] if g.eq_ignore_ascii_case("resourceGroups") => (*group, None),
        [g, group, p, ns, t, name]
            if g.eq_ignore_ascii_case("resourceGroups") && p.eq_ignore_ascii_case("providers") =>
        {
            (*group, Some((format!("{ns}/{t}"), *name)))
        }
        _ => return invalid(f),
    };
    let groups = s.resource_groups();
    if !groups.iter().any(|g| g.eq_ignore_ascii_case(group)) {
        return f.add(
            "InvalidScope",
            path,
            format!(
                "The scope '{scope}' names resource group '{group}', which the landscape does not have (its groups: {}).",
                groups.join(", ")
            ),
        );
    }
    let Some((kind, name)) = resource else { return };
    if !landscape_has(s, ix, group, &kind, name) {
        f.add(
            "ResourceNotFound",
            path,
            format!("The Resource '{kind}/{name}' under resource group '{group}' was not found."),
        );
    }
}

/// Whether the landscape has the resource `{kind}/{name}` in `group`.
fn landscape_has(s: &Scenario, ix: &Index, group: &str, kind: &str, name: &str) -> bool {
    let in_main = group.eq_ignore_ascii_case(&s.resource_group);
    let named = |n: &str| n.eq_ignore_ascii_case(name);
    match kind.to_ascii_lowercase().as_str() {
        "microsoft.keyvault/vaults" => in_main && ix.vaults.contains_key(name),
        "microsoft.network/virtualnetworks" => in_main && s.vnets.iter().any(|v| named(&v.name)),
        "microsoft.network/networksecuritygroups" => {
            in_main && s.nsgs.iter().any(|n| named(&n.name))
        }
        "microsoft.network/privateendpoints" => {
            in_main && s.private_endpoints.iter().any(|p| named(&p.name))
        }
        "microsoft.powerplatform/enterprisepolicies" => {
            in_main && s.enterprise_policies.iter().any(|p| named(&p.name))
        }
        "microsoft.network/privatednszones" => s
            .private_dns_zones
            .iter()
            .any(|z| named(&z.zone) && s.dns_zone_group(z).eq_ignore_ascii_case(group)),
        _ => false,
    }
}

/// A Key Vault data role's scope: a vault, or a secret below it.
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

#[cfg(test)]
mod tests {
    /// The `landscape` fuzz target's finding: contoso with a misspelt Key Vault scope was valid,
    /// and the mock Entra then refused to start from it.
    #[test]
    fn a_permission_the_resource_does_not_expose_is_refused() {
        let path =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/contoso.yaml");
        let text = std::fs::read_to_string(&path).expect("contoso");
        let broken = text.replacen(
            "scopes: [user_impersonation]",
            "scopes: [user_esoirpnmation]",
            1,
        );
        assert_ne!(broken, text);
        let err = crate::scenario::load_str(&broken, &path).expect_err("refused");
        let text = err.to_string();
        assert!(
            text.contains("ResourceNotFound (apps[0].requiredResourceAccess[0].scopes[0]): The resource 'https://vault.azure.net' exposes no delegated permission 'user_esoirpnmation'."),
            "{text}"
        );
        let broken_role = std::fs::read_to_string(&path).expect("contoso").replacen(
            "roles: [Cases.Read.All]",
            "roles: [Cases.Write.All]",
            1,
        );
        let err = crate::scenario::load_str(&broken_role, &path).expect_err("refused");
        assert!(
            err.to_string()
                .contains("defines no app role 'Cases.Write.All'"),
            "{err}"
        );
    }

    /// Owner, Contributor and Reader may sit at the subscription, a resource group (the DNS
    /// zones' own groups included) or a resource of the landscape; Key Vault data roles keep
    /// to vaults and secrets.
    #[test]
    fn control_plane_roles_take_subscription_group_and_resource_scopes() {
        let path =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/contoso.yaml");
        let text = std::fs::read_to_string(&path).expect("contoso");
        let reader = "role: Reader, scope: /subscriptions/6f1a2b3c-4d5e-4f60-8a7b-9c0d1e2f3a4b/resourceGroups/rg-contoso }";
        assert!(text.contains(reader));
        let sub = "/subscriptions/6f1a2b3c-4d5e-4f60-8a7b-9c0d1e2f3a4b";
        let with_scope = |role: &str, scope: &str| {
            text.replacen(reader, &format!("role: {role}, scope: {scope} }}"), 1)
        };
        for (role, scope) in [
            ("Reader", sub.to_string()),
            (
                "Owner",
                format!("{sub}/resourceGroups/rg-contoso-pdz-vault-prod"),
            ),
            (
                "Contributor",
                format!(
                    "{sub}/resourceGroups/rg-contoso/providers/Microsoft.Network/virtualNetworks/vnet-prod-westus"
                ),
            ),
            (
                "Reader",
                format!(
                    "{sub}/resourceGroups/rg-contoso-pdz-web-test/providers/Microsoft.Network/privateDnsZones/privatelink.azurewebsites.net"
                ),
            ),
        ] {
            crate::scenario::load_str(&with_scope(role, &scope), &path)
                .unwrap_or_else(|e| panic!("{role} at {scope}: {e}"));
        }
        let refused = |role: &str, scope: &str| {
            crate::scenario::load_str(&with_scope(role, scope), &path)
                .expect_err("refused")
                .to_string()
        };
        let err = refused("Reader", &format!("{sub}/resourceGroups/rg-other"));
        assert!(
            err.contains("InvalidScope") && err.contains("'rg-other'"),
            "{err}"
        );
        let err = refused(
            "Reader",
            &format!(
                "{sub}/resourceGroups/rg-contoso/providers/Microsoft.Network/virtualNetworks/vnet-none"
            ),
        );
        assert!(
            err.contains("ResourceNotFound")
                && err.contains("'Microsoft.Network/virtualNetworks/vnet-none'"),
            "{err}"
        );
        let err = refused(
            "Reader",
            "/subscriptions/00000000-0000-4000-8000-000000000000",
        );
        assert!(err.contains("InvalidScope"), "{err}");
        let err = refused(
            "Key Vault Secrets User",
            &format!("{sub}/resourceGroups/rg-contoso"),
        );
        assert!(
            err.contains("InvalidScope") && err.contains("/secrets/{name}]"),
            "{err}"
        );
    }
}
