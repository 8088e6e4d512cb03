//! Authorization: Azure RBAC data actions or access-policy permissions, per vault.

use crate::auth::Caller;
use crate::config::{Authorization, KeyVaultRole, RoleAssignment, SecretPermission, VaultConfig};
use crate::error::{KeyVaultError, VaultLabel};

/// A secrets data-plane operation, as authorization sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Operation {
    Get { name: String },
    List,
    ListVersions { name: String },
    Set { name: String },
    Update { name: String },
    Delete { name: String },
    ListDeleted,
    GetDeleted { name: String },
    Recover { name: String },
    Purge { name: String },
    Backup { name: String },
    Restore,
}

const SECRETS: &str = "Microsoft.KeyVault/vaults/secrets/";

impl Operation {
    /// The RBAC data action the operation needs (MicrosoftDocs RBAC permission mapping; the
    /// deleted-secret reads use `readMetadata`, UNVERIFIED).
    pub fn data_action(&self) -> &'static str {
        match self {
            Operation::Get { .. } => "Microsoft.KeyVault/vaults/secrets/getSecret/action",
            Operation::List
            | Operation::ListVersions { .. }
            | Operation::ListDeleted
            | Operation::GetDeleted { .. } => {
                "Microsoft.KeyVault/vaults/secrets/readMetadata/action"
            }
            Operation::Set { .. } => "Microsoft.KeyVault/vaults/secrets/setSecret/action",
            Operation::Update { .. } => "Microsoft.KeyVault/vaults/secrets/update/action",
            Operation::Delete { .. } => "Microsoft.KeyVault/vaults/secrets/delete",
            Operation::Recover { .. } => "Microsoft.KeyVault/vaults/secrets/recover/action",
            Operation::Purge { .. } => "Microsoft.KeyVault/vaults/secrets/purge/action",
            Operation::Backup { .. } => "Microsoft.KeyVault/vaults/secrets/backup/action",
            Operation::Restore => "Microsoft.KeyVault/vaults/secrets/restore/action",
        }
    }

    /// The access-policy permission the operation needs and its name in 403 texts.
    pub fn permission(&self) -> (SecretPermission, &'static str) {
        match self {
            Operation::Get { .. } => (SecretPermission::Get, "get"),
            Operation::List
            | Operation::ListVersions { .. }
            | Operation::ListDeleted
            | Operation::GetDeleted { .. } => (SecretPermission::List, "list"),
            Operation::Set { .. } | Operation::Update { .. } => (SecretPermission::Set, "set"),
            Operation::Delete { .. } => (SecretPermission::Delete, "delete"),
            Operation::Recover { .. } => (SecretPermission::Recover, "recover"),
            Operation::Purge { .. } => (SecretPermission::Purge, "purge"),
            Operation::Backup { .. } => (SecretPermission::Backup, "backup"),
            Operation::Restore => (SecretPermission::Restore, "restore"),
        }
    }

    /// The secret the operation is scoped to; vault-wide operations have none.
    pub fn secret(&self) -> Option<&str> {
        match self {
            Operation::Get { name }
            | Operation::ListVersions { name }
            | Operation::Set { name }
            | Operation::Update { name }
            | Operation::Delete { name }
            | Operation::GetDeleted { name }
            | Operation::Recover { name }
            | Operation::Purge { name }
            | Operation::Backup { name } => Some(name),
            Operation::List | Operation::ListDeleted | Operation::Restore => None,
        }
    }
}

fn role_grants(role: KeyVaultRole, action: &str) -> bool {
    match role {
        KeyVaultRole::Administrator | KeyVaultRole::SecretsOfficer => action.starts_with(SECRETS),
        KeyVaultRole::SecretsUser => {
            action == "Microsoft.KeyVault/vaults/secrets/getSecret/action"
                || action == "Microsoft.KeyVault/vaults/secrets/readMetadata/action"
        }
        KeyVaultRole::Reader => action == "Microsoft.KeyVault/vaults/secrets/readMetadata/action",
    }
}

fn in_scope(assignment: &RoleAssignment, operation: &Operation) -> bool {
    match (&assignment.secret, operation.secret()) {
        (None, _) => true,
        (Some(scoped), Some(target)) => scoped.eq_ignore_ascii_case(target),
        (Some(_), None) => false,
    }
}

/// The ARM id RBAC texts name: lowercase provider path, as the service prints it.
pub fn resource_id(vault: &VaultConfig, secret: Option<&str>) -> String {
    let base = format!(
        "/subscriptions/{}/resourcegroups/{}/providers/microsoft.keyvault/vaults/{}",
        vault.subscription_id,
        vault.resource_group.to_ascii_lowercase(),
        vault.name.to_ascii_lowercase()
    );
    match secret {
        Some(name) => format!("{base}/secrets/{name}"),
        None => base,
    }
}

/// A stable 32-hex id for a role assignment (`x-ms-keyvault-rbac-assignment-id`).
pub fn assignment_id(vault: &VaultConfig, assignment: &RoleAssignment) -> String {
    let key = format!(
        "{}|{}|{:?}|{}",
        resource_id(vault, assignment.secret.as_deref()),
        assignment.principal_id.to_ascii_lowercase(),
        assignment.role,
        vault.name
    );
    uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_URL, key.as_bytes())
        .simple()
        .to_string()
}

/// Allows or refuses `operation` for `caller`. On success under RBAC returns the index (in
/// `role_assignments`) of the assignment that granted it, whose [`assignment_id`] the response
/// names: the service computes those ids once per vault rather than hashing one per request.
pub fn authorize(
    vault: &VaultConfig,
    caller: &Caller,
    operation: &Operation,
) -> Result<Option<usize>, KeyVaultError> {
    let label = || VaultLabel {
        name: vault.name.clone(),
        region: vault.region.clone(),
    };
    match &vault.authorization {
        Authorization::Rbac { role_assignments } => {
            let action = operation.data_action();
            role_assignments
                .iter()
                .position(|a| {
                    a.principal_id.eq_ignore_ascii_case(&caller.object_id)
                        && role_grants(a.role, action)
                        && in_scope(a, operation)
                })
                .map(Some)
                .ok_or_else(|| KeyVaultError::ForbiddenByRbac {
                    caller: Box::new(caller.clone()),
                    action,
                    resource: resource_id(vault, operation.secret()),
                    vault: label(),
                })
        }
        Authorization::AccessPolicies { access_policies } => {
            let (needed, permission) = operation.permission();
            let allowed = access_policies.iter().any(|p| {
                p.object_id.eq_ignore_ascii_case(&caller.object_id)
                    && p.secret_permissions
                        .iter()
                        .any(|granted| *granted == needed || *granted == SecretPermission::All)
            });
            if allowed {
                Ok(None)
            } else {
                Err(KeyVaultError::ForbiddenByPolicy {
                    caller: Box::new(caller.clone()),
                    permission,
                    vault: label(),
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::AccessPolicy;

    fn caller(oid: &str) -> Caller {
        Caller {
            app_id: "app".into(),
            object_id: oid.into(),
            issuer: "https://sts.windows.net/t/".into(),
        }
    }

    fn rbac(assignments: Vec<RoleAssignment>) -> VaultConfig {
        let mut v = VaultConfig::new("kv-a", "t", "westus");
        v.authorization = Authorization::Rbac {
            role_assignments: assignments,
        };
        v
    }

    fn get(name: &str) -> Operation {
        Operation::Get { name: name.into() }
    }

    #[test]
    fn secrets_user_reads_but_cannot_write() {
        let v = rbac(vec![RoleAssignment {
            principal_id: "u".into(),
            role: KeyVaultRole::SecretsUser,
            secret: None,
        }]);
        assert!(authorize(&v, &caller("u"), &get("a")).unwrap().is_some());
        assert!(authorize(&v, &caller("u"), &Operation::List).is_ok());
        let e = authorize(&v, &caller("u"), &Operation::Set { name: "a".into() }).unwrap_err();
        assert!(e.to_string().contains("setSecret/action"));
        assert!(authorize(&v, &caller("other"), &get("a")).is_err());
    }

    #[test]
    fn the_granting_assignment_is_named_by_its_index() {
        let v = rbac(vec![
            RoleAssignment {
                principal_id: "someone-else".into(),
                role: KeyVaultRole::SecretsOfficer,
                secret: None,
            },
            RoleAssignment {
                principal_id: "U".into(),
                role: KeyVaultRole::Reader,
                secret: None,
            },
            RoleAssignment {
                principal_id: "u".into(),
                role: KeyVaultRole::SecretsUser,
                secret: None,
            },
        ]);
        assert_eq!(
            authorize(&v, &caller("u"), &Operation::List).unwrap(),
            Some(1)
        );
        assert_eq!(authorize(&v, &caller("u"), &get("a")).unwrap(), Some(2));
    }

    #[test]
    fn reader_sees_metadata_only() {
        let v = rbac(vec![RoleAssignment {
            principal_id: "r".into(),
            role: KeyVaultRole::Reader,
            secret: None,
        }]);
        assert!(authorize(&v, &caller("r"), &Operation::List).is_ok());
        assert!(authorize(&v, &caller("r"), &get("a")).is_err());
    }

    #[test]
    fn secret_scope_covers_only_that_secret() {
        let v = rbac(vec![RoleAssignment {
            principal_id: "o".into(),
            role: KeyVaultRole::SecretsOfficer,
            secret: Some("only".into()),
        }]);
        assert!(authorize(&v, &caller("o"), &get("ONLY")).is_ok());
        assert!(
            authorize(
                &v,
                &caller("o"),
                &Operation::Purge {
                    name: "only".into()
                }
            )
            .is_ok()
        );
        let e = authorize(&v, &caller("o"), &get("other")).unwrap_err();
        assert!(
            e.to_string().contains(
                "Resource: '/subscriptions/00000000-0000-0000-0000-000000000000/resourcegroups/ppvnet/providers/microsoft.keyvault/vaults/kv-a/secrets/other'"
            ),
            "{e}"
        );
        assert!(authorize(&v, &caller("o"), &Operation::List).is_err());
    }

    #[test]
    fn access_policies_check_the_named_permission() {
        let mut v = VaultConfig::new("kv-a", "t", "westus");
        v.authorization = Authorization::AccessPolicies {
            access_policies: vec![AccessPolicy {
                object_id: "p".into(),
                secret_permissions: vec![SecretPermission::Get, SecretPermission::List],
            }],
        };
        assert_eq!(authorize(&v, &caller("p"), &get("a")).unwrap(), None);
        let e = authorize(&v, &caller("p"), &Operation::Delete { name: "a".into() }).unwrap_err();
        assert_eq!(
            e.to_string(),
            "The user, group or application 'appid=app;oid=p;iss=https://sts.windows.net/t/' does not have secrets delete permission on key vault 'kv-a;location=westus'. For help resolving this issue, please see https://go.microsoft.com/fwlink/?linkid=2125287"
        );
    }
}
