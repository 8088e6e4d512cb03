//! Landscape → `ppvnet_keyvault::KeyVaultConfig`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::Context;

use ppvnet_keyvault::{
    AccessPolicy, Authorization, DefaultAction, KeyVaultConfig, KeyVaultRole, NetworkAcls,
    PublicNetworkAccess, RoleAssignment, SecretPermission, SeedSecret, VaultConfig,
};

use crate::landscape::Landscape;
use crate::scenario::model::{self, VaultAuthorization};
use crate::services::launch::{Launch, Tasks, bind_faces, host_forms};

/// The Key Vault configuration of a landscape. `host_aliases(vault)` names the `host[:port]`
/// forms clients reach the vault at besides `{vault}.vault.azure.net` (fabric addresses).
pub fn config(
    landscape: &Landscape,
    host_aliases: impl Fn(&str) -> Vec<String>,
    data_dir: Option<PathBuf>,
) -> anyhow::Result<KeyVaultConfig> {
    let s = &landscape.scenario;
    let mut vaults = Vec::new();
    for v in &s.key_vaults {
        let vault_id = landscape.vault_id(&v.name).to_ascii_lowercase();
        let authorization = match v.authorization {
            VaultAuthorization::Rbac => Authorization::Rbac {
                role_assignments: s
                    .role_assignments
                    .iter()
                    .filter_map(|ra| role_assignment(landscape, &vault_id, ra))
                    .collect(),
            },
            VaultAuthorization::AccessPolicies => Authorization::AccessPolicies {
                access_policies: v
                    .access_policies
                    .iter()
                    .map(|p| {
                        let permissions = p
                            .secrets
                            .iter()
                            .map(|perm| {
                                serde_json::from_value::<SecretPermission>(serde_json::json!(
                                    perm.to_ascii_lowercase()
                                ))
                                .map_err(|_| {
                                    anyhow::anyhow!(
                                        "vault {}: unknown secret permission '{perm}'",
                                        v.name
                                    )
                                })
                            })
                            .collect::<anyhow::Result<Vec<_>>>()?;
                        Ok(AccessPolicy {
                            object_id: landscape
                                .principal_object_id(&p.principal)
                                .unwrap_or_default()
                                .to_string(),
                            secret_permissions: permissions,
                        })
                    })
                    .collect::<anyhow::Result<Vec<_>>>()?,
            },
        };
        let network_acls = match &v.network_acls {
            None => NetworkAcls::default(),
            Some(acls) => NetworkAcls {
                default_action: match acls.default_action {
                    model::Access::Allow => DefaultAction::Allow,
                    model::Access::Deny => DefaultAction::Deny,
                },
                ip_rules: acls
                    .ip_rules
                    .iter()
                    .map(|r| {
                        // A bare address is a /32 rule, as in the portal.
                        let text = if r.contains('/') {
                            r.clone()
                        } else {
                            format!("{r}/32")
                        };
                        text.parse()
                            .map_err(|e| anyhow::anyhow!("vault {}: ip rule {r}: {e}", v.name))
                    })
                    .collect::<anyhow::Result<Vec<_>>>()?,
                virtual_network_rules: acls.virtual_network_rules.clone(),
            },
        };
        vaults.push(VaultConfig {
            name: v.name.clone(),
            tenant_id: s.tenant.id.clone(),
            subscription_id: s.subscription.clone(),
            resource_group: s.resource_group.clone(),
            region: v.region.clone(),
            public_network_access: match v.public_network_access {
                model::PublicNetworkAccess::Enabled => PublicNetworkAccess::Enabled,
                model::PublicNetworkAccess::Disabled => PublicNetworkAccess::Disabled,
            },
            network_acls,
            private_endpoints: landscape
                .service(&v.name)
                .map(|svc| svc.private_endpoints.clone())
                .unwrap_or_default(),
            host_aliases: host_aliases(&v.name),
            authorization,
            soft_delete_retention_days: v.soft_delete_retention_days,
            purge_protection: v.purge_protection,
            pending_operation_ms: 1500,
            secrets: v
                .secrets
                .iter()
                .map(|x| {
                    let mut seed = SeedSecret::new(&x.name, &x.value);
                    seed.content_type = x.content_type.clone();
                    seed.tags = x.tags.clone();
                    seed
                })
                .collect(),
        });
    }
    Ok(KeyVaultConfig {
        vaults,
        data_dir,
        ..serde_json::from_value(serde_json::json!({"vaults": []}))?
    })
}

/// A landscape role assignment as the vault sees it, if it applies to this vault and grants
/// secrets data actions (Owner or Contributor do not, as in Azure).
fn role_assignment(
    landscape: &Landscape,
    vault_id_lower: &str,
    ra: &model::RoleAssignment,
) -> Option<RoleAssignment> {
    let scope = ra.scope.to_ascii_lowercase();
    let secret = if scope == vault_id_lower {
        None
    } else {
        let rest = scope
            .strip_prefix(vault_id_lower)?
            .strip_prefix("/secrets/")?;
        // Keep the secret name's original case: names compare case-insensitively in the vault.
        Some(ra.scope[ra.scope.len() - rest.len()..].to_string())
    };
    let role = serde_json::from_value::<KeyVaultRole>(serde_json::json!(ra.role)).ok()?;
    Some(RoleAssignment {
        principal_id: landscape.principal_object_id(&ra.principal)?.to_string(),
        role,
        secret,
    })
}

/// Every vault of the landscape in one Key Vault service, on its public face and on each of
/// its private endpoints.
pub fn start(
    run: Launch<'_>,
    entra: &crate::services::entra::Started,
    tasks: &mut Tasks,
) -> anyhow::Result<BTreeMap<String, crate::ready::VaultEntry>> {
    let Launch {
        landscape,
        opts,
        fabric,
        pki,
        clock,
        ..
    } = run;
    let s = &landscape.scenario;
    if s.key_vaults.is_empty() {
        return Ok(BTreeMap::new());
    }
    let mut endpoints = Vec::new();
    let mut entries = BTreeMap::new();
    let mut aliases: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut ips = Vec::new();
    let mut names = vec!["*.vault.azure.net".to_string()];
    for v in &s.key_vaults {
        let service = landscape
            .service(&v.name)
            .with_context(|| format!("vault {} has no service entry", v.name))?;
        let faces = bind_faces(fabric, service, |_| false)?;
        aliases
            .entry(v.name.clone())
            .or_default()
            .extend(faces.addresses.iter().flat_map(|a| host_forms(*a)));
        ips.extend(faces.addresses.iter().map(|a| a.ip()));
        endpoints.extend(faces.endpoints);
        names.push(service.host_name.clone());
        entries.insert(
            v.name.clone(),
            crate::ready::VaultEntry {
                url: format!("{}/", faces.public_url),
                public_network_access: format!("{:?}", v.public_network_access),
                azure_url: format!("https://{}/", service.host_name),
                private_endpoints: faces
                    .private_urls
                    .into_iter()
                    .map(|(pe, url)| (pe, format!("{url}/")))
                    .collect(),
            },
        );
    }
    let store_dir = opts.data_dir.as_ref().map(|d| d.join("keyvault"));
    if let Some(dir) = &store_dir {
        // The vaults' stores hold their secrets: an owner-only folder before the first write.
        ppvnet_common::private_fs::create_dir_all(dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let config = config(
        landscape,
        |v| aliases.get(v).cloned().unwrap_or_default(),
        store_dir,
    )?;
    // Key Vault fetches Entra's signing keys over the public internet, as the real service does.
    let tokens = ppvnet_keyvault::EntraTokenCheck::new(
        &entra.entry.authority_host,
        [s.tenant.id.as_str()],
        run.internet_client()?,
        clock.clone(),
    );
    let kv = ppvnet_keyvault::KeyVault::new(
        config,
        clock.clone(),
        fabric.peer_directory(),
        std::sync::Arc::new(tokens),
    )?;
    let leaf = pki.leaf(&names, &ips)?;
    let tls = pki.server_config(&leaf)?;
    let shutdown = run.stopped();
    tasks.spawn(async move {
        ppvnet_keyvault::run(kv, endpoints, Some(tls), shutdown)
            .await
            .context("Key Vault")
    });
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contoso_vaults_carry_their_role_assignments_and_private_endpoints() {
        let path =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/contoso.yaml");
        let l = crate::scenario::load(&path).unwrap();
        let c = config(&l, |v| vec![format!("{v}.example:8443")], None).unwrap();
        assert_eq!(c.vaults.len(), 3);
        let prod = c
            .vaults
            .iter()
            .find(|v| v.name == "kv-contoso-prod")
            .unwrap();
        assert_eq!(prod.public_network_access, PublicNetworkAccess::Disabled);
        assert_eq!(
            prod.private_endpoints,
            vec!["pe-kv-contoso-prod".to_string()]
        );
        assert_eq!(
            prod.host_aliases,
            vec!["kv-contoso-prod.example:8443".to_string()]
        );
        let Authorization::Rbac { role_assignments } = &prod.authorization else {
            panic!("prod uses RBAC")
        };
        // ops-automation is Secrets Officer and Dataverse Secrets User on prod.
        assert!(
            role_assignments
                .iter()
                .any(|r| r.principal_id == "f62c5d02-54d8-4daa-b1fb-90b79c25423a"
                    && r.role == KeyVaultRole::SecretsOfficer)
        );
        assert!(
            role_assignments
                .iter()
                .any(|r| r.principal_id == "4aa815f4-a715-4895-bce2-a60b787e73bb"
                    && r.role == KeyVaultRole::SecretsUser)
        );
        let dev = c
            .vaults
            .iter()
            .find(|v| v.name == "kv-contoso-dev")
            .unwrap();
        let Authorization::Rbac { role_assignments } = &dev.authorization else {
            panic!("dev uses RBAC")
        };
        // ops-automation writes; Dataverse reads the dev environment's Secret variables.
        assert_eq!(
            role_assignments.len(),
            2,
            "ops-automation and Dataverse on dev"
        );
        assert_eq!(prod.secrets.len(), 2);
    }
}
