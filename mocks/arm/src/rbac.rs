//! Azure RBAC for control-plane reads: a caller may perform an action at a scope when one of
//! its role assignments sits at that scope or above it and the role's `Actions` match the
//! action (minus its `NotActions`).
//!
//! Role definitions are the built-in ones (learn.microsoft.com, "Azure built-in roles":
//! Owner `*`; Contributor `*` except authorization writes; Reader `*/read`; the Key Vault
//! roles' control-plane `Actions`, e.g. Key Vault Administrator's in a public role dump:
//! `Microsoft.Authorization/*/read`, `Microsoft.Resources/subscriptions/resourceGroups/read`,
//! `Microsoft.KeyVault/vaults/*/read`, ...; Key Vault Secrets User has none). Wildcards match
//! any run of characters, as in role definitions: `Microsoft.KeyVault/vaults/*/read` covers a
//! vault's sub-resources but not `Microsoft.KeyVault/vaults/read` itself (ARM's matching of
//! that pattern against the bare `vaults/read` is UNVERIFIED; Microsoft documents that data
//! roles do not grant management reads). Data actions never grant control-plane actions.

use crate::config::RoleAssignment;

struct RoleDefinition {
    name: &'static str,
    actions: &'static [&'static str],
    not_actions: &'static [&'static str],
}

const KEY_VAULT_CONTROL_READS: &[&str] = &[
    "Microsoft.Authorization/*/read",
    "Microsoft.Insights/alertRules/*",
    "Microsoft.Resources/deployments/*",
    "Microsoft.Resources/subscriptions/resourceGroups/read",
    "Microsoft.Support/*",
    "Microsoft.KeyVault/checkNameAvailability/read",
    "Microsoft.KeyVault/deletedVaults/read",
    "Microsoft.KeyVault/locations/*/read",
    "Microsoft.KeyVault/vaults/*/read",
    "Microsoft.KeyVault/operations/read",
];

const ROLES: &[RoleDefinition] = &[
    RoleDefinition {
        name: "Owner",
        actions: &["*"],
        not_actions: &[],
    },
    RoleDefinition {
        name: "Contributor",
        actions: &["*"],
        not_actions: &[
            "Microsoft.Authorization/*/Delete",
            "Microsoft.Authorization/*/Write",
            "Microsoft.Authorization/elevateAccess/Action",
            "Microsoft.Blueprint/blueprintAssignments/write",
            "Microsoft.Blueprint/blueprintAssignments/delete",
            "Microsoft.Compute/galleries/share/action",
            "Microsoft.Purview/consents/write",
            "Microsoft.Purview/consents/delete",
            "Microsoft.Resources/deploymentStacks/manageDenySetting/action",
            "Microsoft.Subscription/cancel/action",
            "Microsoft.Subscription/enable/action",
        ],
    },
    RoleDefinition {
        name: "Reader",
        actions: &["*/read"],
        not_actions: &[],
    },
    RoleDefinition {
        name: "Key Vault Administrator",
        actions: KEY_VAULT_CONTROL_READS,
        not_actions: &[],
    },
    RoleDefinition {
        name: "Key Vault Secrets Officer",
        actions: KEY_VAULT_CONTROL_READS,
        not_actions: &[],
    },
    RoleDefinition {
        name: "Key Vault Reader",
        actions: KEY_VAULT_CONTROL_READS,
        not_actions: &[],
    },
    RoleDefinition {
        name: "Key Vault Secrets User",
        actions: &[],
        not_actions: &[],
    },
];

/// Whether `pattern` (with `*` wildcards) matches `action`, case-insensitively.
fn matches(pattern: &str, action: &str) -> bool {
    let pattern = pattern.to_ascii_lowercase();
    let action = action.to_ascii_lowercase();
    let mut parts = pattern.split('*');
    let first = parts.next().unwrap_or_default();
    let Some(mut rest) = action.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    let Some((last, middle)) = parts.split_last() else {
        return rest.is_empty();
    };
    for part in middle {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

/// Whether the built-in role `role` grants `action`.
pub fn role_grants(role: &str, action: &str) -> bool {
    ROLES
        .iter()
        .find(|r| r.name.eq_ignore_ascii_case(role))
        .is_some_and(|r| {
            r.actions.iter().any(|a| matches(a, action))
                && !r.not_actions.iter().any(|a| matches(a, action))
        })
}

/// Whether `outer` is `inner` or one of its ancestors (ARM ids compare case-insensitively,
/// segment by segment).
pub fn scope_contains(outer: &str, inner: &str) -> bool {
    let outer = outer.trim_end_matches('/').to_ascii_lowercase();
    let inner = inner.trim_end_matches('/').to_ascii_lowercase();
    inner == outer || inner.starts_with(&format!("{outer}/"))
}

/// The role assignments of a caller.
pub struct Grants<'a> {
    assignments: Vec<&'a RoleAssignment>,
}

impl<'a> Grants<'a> {
    pub fn of(all: &'a [RoleAssignment], principal_id: &str) -> Self {
        Self {
            assignments: all
                .iter()
                .filter(|a| a.principal_id.eq_ignore_ascii_case(principal_id))
                .collect(),
        }
    }

    /// May the caller perform `action` at `scope`?
    pub fn allows(&self, action: &str, scope: &str) -> bool {
        self.assignments
            .iter()
            .any(|a| scope_contains(&a.scope, scope) && role_grants(&a.role, action))
    }

    /// Does the caller hold any role assignment at `scope` or below it (what makes ARM list a
    /// subscription for it)?
    pub fn any_within(&self, scope: &str) -> bool {
        self.assignments
            .iter()
            .any(|a| scope_contains(scope, &a.scope) || scope_contains(&a.scope, scope))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_match_as_in_role_definitions() {
        assert!(matches("*", "Microsoft.KeyVault/vaults/read"));
        assert!(matches(
            "*/read",
            "Microsoft.Network/virtualNetworks/subnets/read"
        ));
        assert!(!matches(
            "*/read",
            "Microsoft.Network/virtualNetworks/write"
        ));
        assert!(matches(
            "Microsoft.KeyVault/vaults/*/read",
            "Microsoft.KeyVault/vaults/secrets/read"
        ));
        assert!(!matches(
            "Microsoft.KeyVault/vaults/*/read",
            "Microsoft.KeyVault/vaults/read"
        ));
        assert!(matches(
            "microsoft.resources/subscriptions/resourcegroups/read",
            "Microsoft.Resources/subscriptions/resourceGroups/read"
        ));
    }

    #[test]
    fn readers_read_and_data_roles_do_not_grant_management_reads() {
        assert!(role_grants("Reader", "Microsoft.KeyVault/vaults/read"));
        assert!(!role_grants("Reader", "Microsoft.KeyVault/vaults/write"));
        assert!(role_grants(
            "Contributor",
            "Microsoft.KeyVault/vaults/write"
        ));
        assert!(!role_grants(
            "Contributor",
            "Microsoft.Authorization/roleAssignments/write"
        ));
        assert!(role_grants(
            "Owner",
            "Microsoft.Authorization/roleAssignments/write"
        ));
        assert!(!role_grants(
            "Key Vault Secrets User",
            "Microsoft.KeyVault/vaults/read"
        ));
        assert!(!role_grants(
            "Key Vault Secrets Officer",
            "Microsoft.KeyVault/vaults/read"
        ));
        assert!(!role_grants(
            "Unknown Role",
            "Microsoft.KeyVault/vaults/read"
        ));
    }

    #[test]
    fn assignments_apply_at_their_scope_and_below() {
        let all = vec![RoleAssignment {
            principal_id: "P".into(),
            role: "Reader".into(),
            scope: "/subscriptions/s/resourceGroups/rg".into(),
        }];
        let g = Grants::of(&all, "p");
        let action = "Microsoft.Network/virtualNetworks/read";
        assert!(g.allows(action, "/subscriptions/s/resourcegroups/RG/providers/x/y/z"));
        assert!(g.allows(action, "/subscriptions/s/resourceGroups/rg"));
        assert!(!g.allows(action, "/subscriptions/s"));
        assert!(!g.allows(action, "/subscriptions/s/resourceGroups/rg2"));
        assert!(g.any_within("/subscriptions/s"));
        assert!(!Grants::of(&all, "q").any_within("/subscriptions/s"));
    }
}
