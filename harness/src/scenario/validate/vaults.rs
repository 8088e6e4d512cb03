//! Key Vaults (names, region, retention, network ACLs, access policies, seeded secrets) and
//! the APIs of the landscape.

use std::collections::HashSet;
use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

use super::{Findings, Index};
use crate::scenario::model::*;

pub(super) fn check(s: &Scenario, ix: &Index, f: &mut Findings) {
    for (i, v) in s.key_vaults.iter().enumerate() {
        let path = format!("keyVaults[{i}]");
        if !valid_vault_name(&v.name) {
            f.add(
                "VaultNameNotValid",
                format!("{path}.name"),
                format!(
                    "The vault name '{}' is invalid. A vault's name must be between 3-24 alphanumeric characters. The name must begin with a letter, end with a letter or digit, and not contain consecutive hyphens.",
                    v.name
                ),
            );
        }
        if !ix.regions.contains_key(v.region.as_str()) {
            f.add(
                "LocationNotAvailableForResourceType",
                format!("{path}.region"),
                format!(
                    "The provided location '{}' is not one of the landscape's regions.",
                    v.region
                ),
            );
        }
        if !(7..=90).contains(&v.soft_delete_retention_days) {
            f.add(
                "InvalidSoftDeleteRetentionDays",
                format!("{path}.softDeleteRetentionDays"),
                format!(
                    "The soft delete retention period must be between 7 and 90 days, not {}.",
                    v.soft_delete_retention_days
                ),
            );
        }
        if let Some(acls) = &v.network_acls {
            check_network_acls(s, ix, f, &path, acls);
        }
        for (j, p) in v.access_policies.iter().enumerate() {
            check_access_policy(s, ix, f, &format!("{path}.accessPolicies[{j}]"), p);
        }
        check_seeded_secrets(f, &path, v);
    }
}

fn check_network_acls(s: &Scenario, ix: &Index, f: &mut Findings, path: &str, acls: &NetworkAcls) {
    for (j, ip) in acls.ip_rules.iter().enumerate() {
        if ip.parse::<Ipv4Net>().is_err() && ip.parse::<Ipv4Addr>().is_err() {
            f.add(
                "InvalidIpRule",
                format!("{path}.networkAcls.ipRules[{j}]"),
                format!("The IP rule '{ip}' is not an IPv4 address or CIDR range."),
            );
        }
    }
    for (j, r) in acls.virtual_network_rules.iter().enumerate() {
        if ix.subnet(s, &r.vnet, &r.subnet).is_none() {
            f.add(
                "ResourceNotFound",
                format!("{path}.networkAcls.virtualNetworkRules[{j}]"),
                format!(
                    "Subnet '{}' not found in virtual network '{}'.",
                    r.subnet, r.vnet
                ),
            );
        }
    }
}

fn check_access_policy(s: &Scenario, ix: &Index, f: &mut Findings, path: &str, p: &AccessPolicy) {
    if !ix.principal_exists(&p.principal) {
        f.add(
            "PrincipalNotFound",
            format!("{path}.principal"),
            format!(
                "Principal '{}' does not exist in the directory {}.",
                p.principal, s.tenant.id
            ),
        );
    }
    const PERMISSIONS: &[&str] = &[
        "get", "list", "set", "delete", "recover", "backup", "restore", "purge", "all",
    ];
    for (k, perm) in p.secrets.iter().enumerate() {
        if !PERMISSIONS.contains(&perm.to_ascii_lowercase().as_str()) {
            f.add(
                "InvalidAccessPolicyPermission",
                format!("{path}.secrets[{k}]"),
                format!(
                    "'{perm}' is not a secret permission; use {}.",
                    PERMISSIONS.join(", ")
                ),
            );
        }
    }
}

/// Seeded secrets: valid, unique names and values within Key Vault's size limit.
fn check_seeded_secrets(f: &mut Findings, path: &str, v: &KeyVault) {
    let mut secret_names = HashSet::new();
    for (j, sec) in v.secrets.iter().enumerate() {
        let sp = format!("{path}.secrets[{j}]");
        if !valid_secret_name(&sec.name) {
            f.add(
                "BadParameter",
                format!("{sp}.name"),
                format!("The secret name '{}' is invalid: a secret name is a 1-127 character string, starting with a letter and containing only 0-9, a-z, A-Z, and -.", sec.name),
            );
        }
        if !secret_names.insert(sec.name.to_ascii_lowercase()) {
            f.add(
                "DuplicateResourceName",
                format!("{sp}.name"),
                format!(
                    "The secret '{}' is seeded more than once in vault '{}'.",
                    sec.name, v.name
                ),
            );
        }
        if sec.value.len() > 25 * 1024 {
            f.add(
                "BadParameter",
                format!("{sp}.value"),
                format!(
                    "The secret '{}' is {} bytes; a secret value is at most 25 KB.",
                    sec.name,
                    sec.value.len()
                ),
            );
        }
    }
}

pub(super) fn check_apis(s: &Scenario, ix: &Index, f: &mut Findings) {
    for (i, a) in s.apis.iter().enumerate() {
        let path = format!("apis[{i}]");
        if !ix.apps.contains_key(a.app.as_str()) {
            f.add(
                "ResourceNotFound",
                format!("{path}.app"),
                format!(
                    "The app registration '{}' was not found in tenant '{}'.",
                    a.app, s.tenant.domain
                ),
            );
        }
        if !ix.regions.contains_key(a.region.as_str()) {
            f.add(
                "LocationNotAvailableForResourceType",
                format!("{path}.region"),
                format!(
                    "The provided location '{}' is not one of the landscape's regions.",
                    a.region
                ),
            );
        }
        if let ApiImplementation::Command { argv } = &a.implementation
            && argv.is_empty()
        {
            f.add(
                "InvalidCommand",
                format!("{path}.implementation"),
                "An external API needs a command to run (argv is empty).",
            );
        }
        check_container_api(s, i, f);
    }
    // A resource with public access disabled and no private endpoint is unreachable by design;
    // that is legal in Azure, so it is not an error here.
}

/// A container API names an image and a port (1-65535) no other container API of the landscape
/// uses: they all share the `internet` host's network namespace.
fn check_container_api(s: &Scenario, i: usize, f: &mut Findings) {
    let ApiImplementation::Container {
        image,
        port,
        command,
        ..
    } = &s.apis[i].implementation
    else {
        return;
    };
    let path = format!("apis[{i}].implementation");
    if image.trim().is_empty() {
        f.add(
            "InvalidCommand",
            format!("{path}.image"),
            "A container API needs the image it runs (image: my-api:dev).",
        );
    }
    if command.as_ref().is_some_and(Vec::is_empty) {
        f.add(
            "InvalidCommand",
            format!("{path}.command"),
            "A container API's command is empty.",
        );
    }
    let clash = s.apis[..i].iter().find(
        |o| matches!(&o.implementation, ApiImplementation::Container { port: p, .. } if p == port),
    );
    if *port == 0 || clash.is_some() {
        let why = clash.map_or("port 0 cannot be reached".to_string(), |o| {
            format!(
                "API '{}' listens on it too, and container APIs share the internet host's network",
                o.name
            )
        });
        f.add(
            "InvalidCommand",
            format!("{path}.port"),
            format!("Port {port} cannot be this container API's: {why}."),
        );
    }
}

/// Key Vault object names: "1-127 character string, starting with a letter and containing only
/// 0-9, a-z, A-Z, and -" (Microsoft's Key Vault docs, `about-keys-secrets-certificates`).
pub fn valid_secret_name(name: &str) -> bool {
    (1..=127).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_alphabetic())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
}

/// Vault names: 3-24 characters, letters, digits and hyphens, starting with a letter, ending
/// with a letter or digit, no consecutive hyphens (ARM's `VaultNameNotValid`).
pub fn valid_vault_name(name: &str) -> bool {
    (3..=24).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_alphabetic())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        && !name.contains("--")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_key_vault_rules() {
        assert!(valid_secret_name("cases-connector-secret"));
        assert!(!valid_secret_name("1abc"));
        assert!(!valid_secret_name("a_b"));
        assert!(!valid_secret_name(&"a".repeat(128)));
        assert!(valid_vault_name("kv-contoso-prod"));
        assert!(!valid_vault_name("kv--x"));
        assert!(!valid_vault_name("kv-x-"));
        assert!(!valid_vault_name("kv"));
        assert!(!valid_vault_name("1kv"));
    }
}
