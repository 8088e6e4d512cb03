//! Power Platform environments (type, geo, active region, enterprise policy, environment
//! variables and their values) and the environments connectors name.

use std::collections::HashSet;

use ppvnet_powerplatform::{KeyVaultReference, geo};

use super::vaults::valid_secret_name;
use super::{Findings, Index, not_found};
use crate::scenario::model::*;

pub(super) fn check(s: &Scenario, ix: &Index, f: &mut Findings) {
    for (i, e) in s.environments.iter().enumerate() {
        let path = format!("environments[{i}]");
        let supported = ["Production", "Default", "Sandbox", "Developer"];
        if !supported.contains(&e.kind.as_str()) && e.enterprise_policy.is_some() {
            f.add(
                "EnvironmentTypeNotSupported",
                format!("{path}.type"),
                format!("Virtual Network support needs a Managed Environment of type Production, Default, Sandbox or Developer; '{}' is not supported.", e.kind),
            );
        } else if e.enterprise_policy.is_some() && !e.managed {
            f.add(
                "EnvironmentNotManaged",
                format!("{path}.managed"),
                format!("Environment '{}' must be a Managed Environment to use Virtual Network support.", e.name),
            );
        }
        let Some(g) = geo(&e.location) else {
            f.add(
                "LocationNotSupported",
                format!("{path}.location"),
                format!("The PowerPlatform region [{}] is not supported. The supported enterprise policy locations are {}", e.location, ppvnet_powerplatform::geo::supported_locations()),
            );
            continue;
        };
        if !g.regions().contains(&e.active_region.as_str())
            || !ix.regions.contains_key(e.active_region.as_str())
        {
            f.add(
                "ActiveRegionNotInGeo",
                format!("{path}.activeRegion"),
                format!("Environment '{}' in geo '{}' cannot be active in region '{}'; the geo's regions are {}.", e.name, g.location, e.active_region, g.regions().join(", ")),
            );
        }
        if let Some(pn) = &e.enterprise_policy {
            check_policy_use(s, ix, f, &path, e, pn);
        }
        check_variables(s, ix, f, &path, e);
    }
}

/// The environment's enterprise policy exists, injects subnets and shares its location.
fn check_policy_use(
    s: &Scenario,
    ix: &Index,
    f: &mut Findings,
    path: &str,
    e: &Environment,
    pn: &str,
) {
    match ix.policies.get(pn) {
        None => f.add(
            "ResourceNotFound",
            format!("{path}.enterprisePolicy"),
            not_found(s, "Microsoft.PowerPlatform/enterprisePolicies", pn),
        ),
        Some(&pi) => {
            let p = &s.enterprise_policies[pi];
            if p.kind != "NetworkInjection" {
                f.add(
                    "PolicyNotNetworkInjection",
                    format!("{path}.enterprisePolicy"),
                    "The specified policy is not a Subnet Injection (NetworkInjection) policy",
                );
            } else if !ppvnet_powerplatform::geo::same_location(&e.location, &p.location) {
                f.add(
                "EnvironmentLocationMismatch",
                format!("{path}.location"),
                format!("Environment location '{}' does not match the enterprise policy location '{}'", e.location, p.location),
            );
            }
        }
    }
}

/// Schema names unique and prefixed; each value fits its type.
fn check_variables(s: &Scenario, ix: &Index, f: &mut Findings, path: &str, e: &Environment) {
    let mut var_names = HashSet::new();
    for (j, v) in e.variables.iter().enumerate() {
        let vp = format!("{path}.variables[{j}]");
        if !var_names.insert(v.schema_name.as_str()) {
            f.add(
                "DuplicateResourceName",
                format!("{vp}.schemaName"),
                format!(
                    "The environment variable '{}' is defined more than once in environment '{}'.",
                    v.schema_name, e.name
                ),
            );
        }
        if v.schema_name.len() > 100 || !v.schema_name.contains('_') {
            f.add(
                "InvalidSchemaName",
                format!("{vp}.schemaName"),
                format!("The schema name '{}' must carry a publisher prefix (prefix_Name) and be at most 100 characters.", v.schema_name),
            );
        }
        check_variable_value(s, ix, f, &vp, v);
    }
}

/// Connectors name environments of the landscape.
pub(super) fn check_connectors(s: &Scenario, ix: &Index, f: &mut Findings) {
    for (i, c) in s.connectors.iter().enumerate() {
        for (j, e) in c.environments.iter().enumerate() {
            if !ix.environments.contains_key(e.as_str()) {
                f.add(
                    "ResourceNotFound",
                    format!("connectors[{i}].environments[{j}]"),
                    format!("The environment '{e}' was not found."),
                );
            }
        }
    }
}

fn check_variable_value(
    s: &Scenario,
    ix: &Index,
    f: &mut Findings,
    path: &str,
    v: &EnvironmentVariable,
) {
    let vp = format!("{path}.value");
    match v.kind {
        VariableType::Secret => match KeyVaultReference::parse(&v.value) {
            Err(e) => f.add("InvalidKeyVaultReference", vp, e.to_string()),
            Ok(r) => match ix.vaults.get(r.vault.as_str()) {
                None => f.add(
                    "ResourceNotFound",
                    vp,
                    not_found(s, "Microsoft.KeyVault/vaults", &r.vault),
                ),
                Some(&k) => {
                    if !r.subscription.eq_ignore_ascii_case(&s.subscription)
                        || !r.resource_group.eq_ignore_ascii_case(&s.resource_group)
                    {
                        f.add(
                            "ResourceNotFound",
                            vp.clone(),
                            not_found(s, "Microsoft.KeyVault/vaults", &r.vault),
                        );
                    } else if !valid_secret_name(&r.secret) {
                        f.add("BadParameter", vp, format!("The secret name '{}' in the reference is invalid: a secret name is a 1-127 character string, starting with a letter and containing only 0-9, a-z, A-Z, and -.", r.secret));
                    } else if !s.key_vaults[k]
                        .secrets
                        .iter()
                        .any(|x| x.name.eq_ignore_ascii_case(&r.secret))
                    {
                        f.add(
                            "SecretNotFound",
                            vp,
                            format!("A secret with (name/id) {} was not found in this key vault. If you recently deleted this secret you may be able to recover it using the correct recovery command. For help resolving this issue, please see https://go.microsoft.com/fwlink/?linkid=2125182", r.secret),
                        );
                    }
                }
            },
        },
        VariableType::Number if v.value.trim().parse::<f64>().is_err() => f.add(
            "InvalidVariableValue",
            vp,
            format!("'{}' is not a Number.", v.value),
        ),
        VariableType::Boolean
            if !["true", "false", "yes", "no"].contains(&v.value.to_ascii_lowercase().as_str()) =>
        {
            f.add(
                "InvalidVariableValue",
                vp,
                format!("'{}' is not a Boolean (true or false).", v.value),
            )
        }
        VariableType::Json if serde_json::from_str::<serde_json::Value>(&v.value).is_err() => f
            .add(
                "InvalidVariableValue",
                vp,
                format!("'{}' is not valid JSON.", v.value),
            ),
        _ if v.value.len() > 2000 => f.add(
            "InvalidVariableValue",
            vp,
            "An environment variable value is at most 2000 characters.",
        ),
        _ => {}
    }
}
