//! Landscape → `ppvnet_entra::EntraConfig`: the tenant's users, groups, app registrations and
//! first-party service principals, with consent and app role assignments resolved to ids.

use anyhow::Context;
use serde_json::{Value, json};

use crate::fabric::Face;
use crate::landscape::Landscape;
use crate::scenario::model::{App, ServicePrincipal};
use crate::services::launch::{Launch, Tasks, https_url};

/// A far end date for secrets the landscape gives no expiry (Entra requires one).
const NO_EXPIRY: &str = "2299-12-31T00:00:00Z";

/// The key id of a landscape secret: stable across runs so control calls can name it.
fn credential_key_id(app: &str, credential: &str) -> String {
    uuid::Uuid::new_v5(
        &uuid::Uuid::NAMESPACE_URL,
        format!("ppvnet:{app}:{credential}").as_bytes(),
    )
    .to_string()
}

/// A resource an app asks permissions on: its app id and its (value, id) scopes and roles.
struct Resource<'a> {
    app_id: &'a str,
    scopes: Vec<(&'a str, &'a str)>,
    roles: Vec<(&'a str, &'a str)>,
}

fn value_ids<'a>(items: impl Iterator<Item = (&'a String, &'a String)>) -> Vec<(&'a str, &'a str)> {
    items.map(|(v, id)| (v.as_str(), id.as_str())).collect()
}

/// Resolves a `requiredResourceAccess.resource` (app name, service principal name or
/// identifier URI) to the resource's app id, scopes and roles.
fn resource<'a>(l: &'a Landscape, name: &str) -> Option<Resource<'a>> {
    let s = &l.scenario;
    let app = s
        .apps
        .iter()
        .find(|a| a.name == name || a.identifier_uris.iter().any(|u| u == name));
    if let Some(a) = app {
        return Some(Resource {
            app_id: &a.client_id,
            scopes: value_ids(a.scopes.iter().map(|x| (&x.value, &x.id))),
            roles: value_ids(a.app_roles.iter().map(|x| (&x.value, &x.id))),
        });
    }
    let sp = s
        .service_principals
        .iter()
        .find(|p| p.name == name || p.identifier_uris.iter().any(|u| u == name))?;
    Some(Resource {
        app_id: &sp.app_id,
        scopes: value_ids(sp.scopes.iter().map(|x| (&x.value, &x.id))),
        roles: vec![],
    })
}

fn application(l: &Landscape, a: &App) -> anyhow::Result<Value> {
    let mut password_credentials = Vec::new();
    for sec in &a.secrets {
        password_credentials.push(json!({
            "keyId": credential_key_id(&a.name, &sec.name),
            "displayName": sec.name,
            "secretText": sec.value,
            "endDateTime": sec.expires.as_deref().unwrap_or(NO_EXPIRY),
        }));
    }
    let mut key_credentials = Vec::new();
    for cert in &a.certificates {
        let path = l.base_dir.join(&cert.certificate);
        let pem = std::fs::read_to_string(&path).with_context(|| {
            format!("app {}: cannot read certificate {}", a.name, path.display())
        })?;
        key_credentials.push(json!({
            "keyId": credential_key_id(&a.name, &cert.name),
            "displayName": cert.name,
            "key": pem,
        }));
    }
    let mut required = Vec::new();
    for r in &a.required_resource_access {
        let Resource {
            app_id,
            scopes,
            roles,
        } = resource(l, &r.resource)
            .with_context(|| format!("app {}: unknown resource {}", a.name, r.resource))?;
        let mut access = Vec::new();
        for want in &r.scopes {
            let id = scopes
                .iter()
                .find(|(v, _)| v == want)
                .map(|(_, id)| *id)
                .with_context(|| {
                    format!(
                        "app {}: resource {} has no scope {want}",
                        a.name, r.resource
                    )
                })?;
            access.push(json!({"id": id, "type": "Scope"}));
        }
        for want in &r.roles {
            let id = roles
                .iter()
                .find(|(v, _)| v == want)
                .map(|(_, id)| *id)
                .with_context(|| {
                    format!(
                        "app {}: resource {} has no app role {want}",
                        a.name, r.resource
                    )
                })?;
            access.push(json!({"id": id, "type": "Role"}));
        }
        required.push(json!({
            "resourceAppId": app_id,
            "resourceAccess": access,
            "adminConsentGranted": r.admin_consent,
        }));
    }
    let mut assignments = Vec::new();
    for ra in &a.app_role_assignments {
        let role = a
            .app_roles
            .iter()
            .find(|r| r.value == ra.role)
            .with_context(|| format!("app {}: no app role {}", a.name, ra.role))?;
        let principal = l
            .principal_object_id(&ra.principal)
            .with_context(|| format!("app {}: unknown principal {}", a.name, ra.principal))?;
        assignments.push(json!({"principalId": principal, "appRoleId": role.id}));
    }
    let (web, spa): (Vec<&String>, Vec<&String>) =
        a.redirect_uris.iter().partition(|u| !u.starts_with("spa:"));
    Ok(json!({
        "displayName": a.name,
        "appId": a.client_id,
        "servicePrincipalId": a.service_principal_id,
        "passwordCredentials": password_credentials,
        "keyCredentials": key_credentials,
        "identifierUris": a.identifier_uris,
        "api": {
            "requestedAccessTokenVersion": a.requested_access_token_version,
            "oauth2PermissionScopes": a.scopes.iter().map(|s| json!({"id": s.id, "value": s.value})).collect::<Vec<_>>(),
        },
        "appRoles": a.app_roles.iter().map(|r| json!({
            "id": r.id, "value": r.value, "allowedMemberTypes": r.allowed_member_types,
        })).collect::<Vec<_>>(),
        "web": {"redirectUris": web},
        "spa": {"redirectUris": spa.iter().map(|u| u.trim_start_matches("spa:")).collect::<Vec<_>>()},
        "isFallbackPublicClient": a.public_client,
        "groupMembershipClaims": a.group_membership_claims.as_deref().unwrap_or("None"),
        "requiredResourceAccess": required,
        "appRoleAssignedTo": assignments,
    }))
}

fn first_party(sp: &ServicePrincipal) -> Value {
    json!({
        "displayName": sp.name,
        "appId": sp.app_id,
        "servicePrincipalId": sp.object_id,
        "identifierUris": sp.identifier_uris,
        "api": {
            "requestedAccessTokenVersion": sp.requested_access_token_version,
            "oauth2PermissionScopes": sp.scopes.iter().map(|s| json!({"id": s.id, "value": s.value})).collect::<Vec<_>>(),
        },
    })
}

/// Adds Azure Resource Manager's first-party principal, which exists in every tenant, unless the
/// landscape declares it itself: without it Entra refuses tokens for
/// `https://management.core.windows.net/` (AADSTS500011) and the Azure CLI cannot sign in.
pub fn add_arm_principal(cfg: &mut ppvnet_entra::EntraConfig) {
    use ppvnet_entra::config::{ARM_APP_ID, ApplicationConfig};
    if !cfg
        .applications
        .iter()
        .any(|a| a.app_id.eq_ignore_ascii_case(ARM_APP_ID))
    {
        cfg.applications
            .push(ApplicationConfig::azure_resource_manager());
    }
}

/// Application id of the resource principal behind `https://apihub.azure.com`, the audience of
/// the tokens Power Apps sends to the connector runtime. Microsoft's docs name "Azure API
/// Connections" `fe053c5f-…` as the app connectors use (MicrosoftDocs/powerapps-docs:
/// `…/wrap/wrap-how-to.md`); that it is also the apihub resource is UNVERIFIED.
pub const APIHUB_APP_ID: &str = "fe053c5f-3692-4f14-aef2-ee34fc081cae";
/// Id of the apihub resource's delegated `user_impersonation` scope (ppvnet's own: UNVERIFIED).
const APIHUB_USER_IMPERSONATION_ID: &str = "0d6f5a0e-8b36-4f7e-b1a2-6c9e0d2f7a11";
pub use ppvnet_powerplatform::runtime::config::POWER_APPS_CLIENT_ID;

/// Adds the first-party principals a landscape with Power Platform environments needs, as they
/// exist in every tenant: the connector runtime's resource (`https://apihub.azure.com`), the
/// Power Apps public client pre-consented to it, and Dataverse with the run's own credential
/// (Dataverse reads Secret environment variables from Key Vault as itself; its real credential
/// is Microsoft's, so each run makes one up and hands it to the Power Platform service only).
/// The Power Apps client's reply URLs are the case-search app's sign-in and signed-out pages
/// under `app_url` (public client redirect URIs: the app redeems codes with PKCE, no secret).
pub fn add_power_platform_principals(
    cfg: &mut ppvnet_entra::EntraConfig,
    dataverse_secret: &str,
    app_url: &str,
) -> anyhow::Result<()> {
    use ppvnet_entra::config::{
        ApplicationConfig, PasswordCredential, PermissionScope, RequiredResourceAccess,
        ResourceAccess, ResourceAccessType, Timestamp,
    };
    use ppvnet_powerplatform::runtime::config::{APIHUB_AUDIENCE, DATAVERSE_APP_ID};
    if !cfg.applications.iter().any(|a| a.app_id == APIHUB_APP_ID) {
        let mut apihub = ApplicationConfig::new("Azure API Connections", APIHUB_APP_ID);
        apihub.identifier_uris = vec![APIHUB_AUDIENCE.to_string()];
        apihub.api.oauth2_permission_scopes = vec![PermissionScope {
            id: APIHUB_USER_IMPERSONATION_ID.to_string(),
            value: "user_impersonation".to_string(),
            is_enabled: true,
        }];
        cfg.applications.push(apihub);
    }
    if !cfg
        .applications
        .iter()
        .any(|a| a.app_id == POWER_APPS_CLIENT_ID)
    {
        let mut client = ApplicationConfig::new("PowerApps", POWER_APPS_CLIENT_ID);
        client.is_fallback_public_client = true;
        client.public_client.redirect_uris = vec![
            ppvnet_powerplatform::runtime::app::sign_in_redirect_uri(app_url),
            ppvnet_powerplatform::runtime::app::signed_out_uri(app_url),
        ];
        client.required_resource_access = vec![RequiredResourceAccess {
            resource_app_id: APIHUB_APP_ID.to_string(),
            resource_access: vec![ResourceAccess {
                id: APIHUB_USER_IMPERSONATION_ID.to_string(),
                kind: ResourceAccessType::Scope,
            }],
            admin_consent_granted: true,
        }];
        cfg.applications.push(client);
    }
    let end = Timestamp(
        time::OffsetDateTime::parse(NO_EXPIRY, &time::format_description::well_known::Rfc3339)
            .context("the far expiry date")?
            .unix_timestamp(),
    );
    let credential = PasswordCredential {
        key_id: credential_key_id("Dataverse", "ppvnet-run"),
        display_name: Some("ppvnet run credential".to_string()),
        secret_text: dataverse_secret.to_string(),
        start_date_time: None,
        end_date_time: end,
    };
    match cfg
        .applications
        .iter_mut()
        .find(|a| a.app_id == DATAVERSE_APP_ID)
    {
        Some(app) => app.password_credentials.push(credential),
        None => {
            let mut app = ApplicationConfig::new("Dataverse", DATAVERSE_APP_ID);
            app.password_credentials.push(credential);
            cfg.applications.push(app);
        }
    }
    Ok(())
}

/// The Entra configuration of a landscape.
pub fn config(l: &Landscape) -> anyhow::Result<ppvnet_entra::EntraConfig> {
    let s = &l.scenario;
    let group_id = |name: &str| {
        s.groups
            .iter()
            .find(|g| g.name == name)
            .map(|g| g.id.clone())
    };
    let users: Vec<Value> = s
        .users
        .iter()
        .map(|u| {
            json!({
                "id": u.object_id,
                "userPrincipalName": u.upn,
                "displayName": u.display_name,
                "password": u.password,
                "memberOf": u.groups.iter().filter_map(|g| group_id(g)).collect::<Vec<_>>(),
                "accountEnabled": u.enabled,
            })
        })
        .collect();
    let mut applications = Vec::new();
    for a in &s.apps {
        applications.push(application(l, a)?);
    }
    applications.extend(s.service_principals.iter().map(first_party));
    let value = json!({
        "tenantId": s.tenant.id,
        "domain": s.tenant.domain,
        "displayName": s.name,
        "users": users,
        "groups": s.groups.iter().map(|g| json!({"id": g.id, "displayName": g.name})).collect::<Vec<_>>(),
        "applications": applications,
    });
    serde_json::from_value(value).context("the landscape does not map onto an Entra configuration")
}

/// Entra as the run's other services see it.
pub struct Started {
    pub entra: ppvnet_entra::Entra,
    pub entry: crate::ready::EntraEntry,
    /// The client secret Dataverse gets tokens with in this run (landscapes with environments).
    pub dataverse_secret: Option<String>,
}

/// Entra on the public internet, answering as `login.microsoftonline.com`. MSAL's user realm
/// discovery always goes to port 443 of the authority's address, so the mock also listens there
/// whenever the port can be bound.
pub async fn start(run: Launch<'_>, tasks: &mut Tasks) -> anyhow::Result<Started> {
    let Launch {
        landscape,
        fabric,
        pki,
        clock,
        ..
    } = run;
    let face = fabric
        .bind("entra", &Face::Public)
        .context("Entra's listener")?;
    let address = face.address;
    let mut endpoints = vec![face.into_endpoint()];
    let port_443 = address.port() == 443 || bind_port_443(fabric, address, &mut endpoints);
    // Inside namespaces `login.microsoftonline.com` resolves to the mock (the vNet's DNS), and
    // MSAL accepts only well-known authority hosts by name; on loopback, the address is the name.
    let authority_host = if fabric.kind().namespaced() {
        format!("https://{}", crate::landscape::ENTRA_HOST_NAME)
    } else {
        https_url(address)
    };
    let mut config = config(landscape)?;
    add_arm_principal(&mut config);
    // Dataverse's credential in this run, when there is a Power Platform to use it.
    let dataverse_secret = (!landscape.scenario.environments.is_empty())
        .then(crate::services::powerplatform::dataverse_secret);
    if let Some(secret) = &dataverse_secret {
        let app_url = crate::services::powerplatform::app_url(landscape)?;
        add_power_platform_principals(&mut config, secret, &app_url)?;
    }
    let key_dir = run.state_dir("entra");
    // Before the mock writes its signing keys there: owner-only, like the rest of the run's
    // secrets (a missing `--data-dir` is created the same way).
    ppvnet_common::private_fs::create_dir_all(&key_dir)
        .with_context(|| format!("cannot create {}", key_dir.display()))?;
    let authority = authority_host.parse().context("Entra's authority URL")?;
    let key_clock = clock.clone();
    // RSA key generation and fsynced key files take hundreds of milliseconds: off the async
    // workers, which also carry the loopback fabric's relays (and, in the acceptance suite,
    // every other scenario's traffic).
    let entra = tokio::task::spawn_blocking(move || {
        ppvnet_entra::Entra::new(&config, key_clock, authority, Some(&key_dir))
    })
    .await
    .context("Entra's start")??;
    let leaf = pki.leaf(
        &[
            crate::landscape::ENTRA_HOST_NAME.to_string(),
            "login.windows.net".to_string(),
            "localhost".to_string(),
        ],
        &[address.ip()],
    )?;
    let tls = pki.server_config(&leaf)?;
    let served = entra.clone();
    let shutdown = run.stopped();
    tasks.spawn(async move {
        ppvnet_entra::run(served, endpoints, Some(tls), shutdown)
            .await
            .context("Entra")
    });
    let tenant = &landscape.scenario.tenant.id;
    Ok(Started {
        entra,
        entry: crate::ready::EntraEntry {
            authority: format!("{authority_host}/{tenant}"),
            authority_host,
            port_443,
        },
        dataverse_secret,
    })
}

/// Adds a listener on port 443 of Entra's address when the port can be bound; says why not
/// otherwise (the username/password flow then cannot work).
fn bind_port_443(
    fabric: &crate::fabric::Fabric,
    address: std::net::SocketAddr,
    endpoints: &mut Vec<ppvnet_common::Endpoint>,
) -> bool {
    match fabric.bind_port("entra", &Face::Public, 443) {
        Ok(extra) => {
            endpoints.push(extra.into_endpoint());
            true
        }
        Err(e) => {
            eprintln!(
                "note: Entra cannot listen on port 443 of {} ({e}); MSAL's username/password flow needs it (run as root or grant CAP_NET_BIND_SERVICE)",
                address.ip()
            );
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contoso_maps_onto_a_tenant_entra_accepts() {
        let path =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/contoso.yaml");
        let l = crate::scenario::load(&path).unwrap();
        let cfg = config(&l).unwrap();
        assert_eq!(cfg.users.len(), 3);
        let connector = cfg
            .applications
            .iter()
            .find(|a| a.display_name == "cases-connector")
            .unwrap();
        assert_eq!(connector.required_resource_access.len(), 1);
        assert_eq!(
            connector.required_resource_access[0].resource_access.len(),
            2
        );
        assert!(
            cfg.applications
                .iter()
                .any(|a| a.app_id == "cfa8b339-82a2-471a-a3c9-0fc0be7a4093")
        );
        // Entra's own consistency checks (unknown scope/role/group ids) accept it.
        let dir = tempfile::tempdir().unwrap();
        ppvnet_entra::Entra::new(
            &cfg,
            ppvnet_common::Clock::new(),
            "https://127.0.0.1:1".parse().unwrap(),
            Some(dir.path()),
        )
        .unwrap();
    }
}
