//! The tenant's directory as the endpoints query it: users, groups, applications with their
//! credentials, and the consent and role-assignment rules that decide `scp` and `roles`.
//!
//! Built once from [`EntraConfig`] (validated, so a bad landscape fails at start with a clear
//! message) and then changed only by the control API (secrets, enabled flags, revocation).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use sha1::Sha1;
use sha2::{Digest, Sha256};

use crate::config::{
    AppRoleMemberType, ApplicationConfig, EntraConfig, ResourceAccessType, Timestamp,
};

/// Why a configuration cannot be served.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{what} `{value}` is not a GUID")]
    NotAGuid { what: String, value: String },
    #[error("{what} `{value}` appears more than once")]
    Duplicate { what: String, value: String },
    #[error("user `{user}` is a member of group `{group}`, which the tenant does not define")]
    UnknownGroup { user: String, group: String },
    #[error("application `{app}`: {reason}")]
    Application { app: String, reason: String },
    #[error("key credential `{key_id}` of application `{app}`: {reason}")]
    Certificate {
        app: String,
        key_id: String,
        reason: String,
    },
}

pub(crate) struct User {
    pub id: String,
    pub upn: String,
    pub display_name: String,
    pub given_name: Option<String>,
    pub surname: Option<String>,
    pub password: String,
    pub groups: Vec<String>,
    pub enabled: bool,
    /// Refresh tokens issued before this instant (Unix milliseconds) are revoked.
    pub tokens_valid_from_ms: i64,
}

pub(crate) struct Secret {
    pub key_id: String,
    pub display_name: Option<String>,
    pub value: String,
    pub start: Option<i64>,
    pub end: i64,
}

pub(crate) struct Certificate {
    pub sha1: [u8; 20],
    pub sha256: [u8; 32],
    /// PKCS#1 `RSAPublicKey`, what signature verification takes.
    pub public_key: Vec<u8>,
    pub end: i64,
}

pub(crate) struct App {
    pub config: ApplicationConfig,
    pub service_principal_id: String,
    pub secrets: Vec<Secret>,
    pub certificates: Vec<Certificate>,
}

impl App {
    pub fn app_id(&self) -> &str {
        &self.config.app_id
    }

    pub fn name(&self) -> &str {
        &self.config.display_name
    }

    /// v2.0 tokens only when the resource asks for them (entra-docs `reference-app-manifest.md`:
    /// `null` means 1).
    pub fn wants_v2_tokens(&self) -> bool {
        self.config.api.requested_access_token_version == Some(2)
    }

    /// Whether `identifier` (an app id or identifier URI, as used in `scope`, `resource` or
    /// an `aud` claim) names this app.
    pub fn is_named(&self, identifier: &str) -> bool {
        let identifier = identifier.trim_end_matches('/');
        self.config.app_id.eq_ignore_ascii_case(identifier)
            || self
                .config
                .identifier_uris
                .iter()
                .any(|u| u.trim_end_matches('/').eq_ignore_ascii_case(identifier))
    }

    pub fn redirect_uri_kind(&self, uri: &str) -> Option<RedirectKind> {
        let c = &self.config;
        if c.web.redirect_uris.iter().any(|u| u == uri) {
            Some(RedirectKind::Web)
        } else if c.spa.redirect_uris.iter().any(|u| u == uri) {
            Some(RedirectKind::Spa)
        } else if c.public_client.redirect_uris.iter().any(|u| u == uri) {
            Some(RedirectKind::PublicClient)
        } else {
            None
        }
    }

    pub fn all_redirect_uris(&self) -> impl Iterator<Item = &String> {
        let c = &self.config;
        c.web
            .redirect_uris
            .iter()
            .chain(&c.spa.redirect_uris)
            .chain(&c.public_client.redirect_uris)
    }
}

/// Which platform a redirect URI is registered under; web redirects belong to confidential
/// clients, the others redeem codes without a secret.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RedirectKind {
    Web,
    Spa,
    PublicClient,
}

pub(crate) struct Directory {
    pub tenant_id: String,
    pub domain: String,
    pub display_name: String,
    pub region_scope: String,
    pub users: Vec<User>,
    pub apps: Vec<App>,
}

fn guid(what: &str, value: &str) -> Result<String, ConfigError> {
    uuid::Uuid::parse_str(value)
        .map(|u| u.hyphenated().to_string())
        .map_err(|_| ConfigError::NotAGuid {
            what: what.to_string(),
            value: value.to_string(),
        })
}

impl Directory {
    pub fn build(config: &EntraConfig) -> Result<Self, ConfigError> {
        let tenant_id = guid("tenantId", &config.tenant_id)?;
        let mut group_ids = Vec::new();
        for g in &config.groups {
            let id = guid("group id", &g.id)?;
            if group_ids.contains(&id) {
                return Err(ConfigError::Duplicate {
                    what: "group id".into(),
                    value: id,
                });
            }
            group_ids.push(id);
        }
        let mut users: Vec<User> = Vec::new();
        for u in &config.users {
            let id = guid("user id", &u.id)?;
            if users
                .iter()
                .any(|o| o.id == id || o.upn.eq_ignore_ascii_case(&u.user_principal_name))
            {
                return Err(ConfigError::Duplicate {
                    what: "user".into(),
                    value: u.user_principal_name.clone(),
                });
            }
            let mut groups = Vec::new();
            for g in &u.member_of {
                let gid = guid("group id", g)?;
                if !group_ids.contains(&gid) {
                    return Err(ConfigError::UnknownGroup {
                        user: u.user_principal_name.clone(),
                        group: g.clone(),
                    });
                }
                groups.push(gid);
            }
            users.push(User {
                id,
                upn: u.user_principal_name.clone(),
                display_name: u.display_name.clone(),
                given_name: u.given_name.clone(),
                surname: u.surname.clone(),
                password: u.password.clone(),
                groups,
                enabled: u.account_enabled,
                tokens_valid_from_ms: i64::MIN,
            });
        }
        let mut apps: Vec<App> = Vec::new();
        for a in &config.applications {
            apps.push(build_app(&tenant_id, a)?);
            let app_id = &apps[apps.len() - 1].config.app_id;
            if apps[..apps.len() - 1]
                .iter()
                .any(|o| o.config.app_id == *app_id)
            {
                return Err(ConfigError::Duplicate {
                    what: "appId".into(),
                    value: app_id.clone(),
                });
            }
        }
        for app in &apps {
            check_references(app, &apps)?;
        }
        Ok(Self {
            tenant_id,
            domain: config.domain.clone(),
            display_name: config
                .display_name
                .clone()
                .unwrap_or_else(|| config.domain.clone()),
            region_scope: config.tenant_region_scope.clone(),
            users,
            apps,
        })
    }

    pub fn app(&self, app_id: &str) -> Option<&App> {
        self.apps
            .iter()
            .find(|a| a.config.app_id.eq_ignore_ascii_case(app_id))
    }

    pub fn app_mut(&mut self, app_id: &str) -> Option<&mut App> {
        self.apps
            .iter_mut()
            .find(|a| a.config.app_id.eq_ignore_ascii_case(app_id))
    }

    /// The resource named by an app id or identifier URI.
    pub fn resource(&self, identifier: &str) -> Option<&App> {
        self.apps.iter().find(|a| a.is_named(identifier))
    }

    pub fn user_by_upn(&self, upn: &str) -> Option<&User> {
        self.users.iter().find(|u| u.upn.eq_ignore_ascii_case(upn))
    }

    pub fn user_by_id(&self, id: &str) -> Option<&User> {
        self.users.iter().find(|u| u.id.eq_ignore_ascii_case(id))
    }

    /// A user by UPN or object id (the control API takes either).
    pub fn user_mut(&mut self, upn_or_id: &str) -> Option<&mut User> {
        self.users
            .iter_mut()
            .find(|u| u.upn.eq_ignore_ascii_case(upn_or_id) || u.id.eq_ignore_ascii_case(upn_or_id))
    }

    /// Delegated permissions of `resource` an admin consented to for `client`, in the
    /// resource's declaration order.
    pub fn consented_scopes(&self, client: &App, resource: &App) -> Vec<String> {
        let ids = consented_ids(client, resource, ResourceAccessType::Scope);
        resource
            .config
            .api
            .oauth2_permission_scopes
            .iter()
            .filter(|s| s.is_enabled && ids.iter().any(|id| id.eq_ignore_ascii_case(&s.id)))
            .map(|s| s.value.clone())
            .collect()
    }

    /// Whether `resource` defines an enabled delegated permission named `value`.
    pub fn defines_scope(resource: &App, value: &str) -> bool {
        resource
            .config
            .api
            .oauth2_permission_scopes
            .iter()
            .any(|s| s.is_enabled && s.value == value)
    }

    /// Application permissions (`roles` of an app-only token): roles of `resource` granted
    /// by admin consent of `client`'s required permissions, or assigned to its service
    /// principal directly.
    pub fn application_roles(&self, client: &App, resource: &App) -> Vec<String> {
        let consented = consented_ids(client, resource, ResourceAccessType::Role);
        roles_where(resource, AppRoleMemberType::Application, |role_id| {
            consented.iter().any(|id| id.eq_ignore_ascii_case(role_id))
                || resource.config.app_role_assigned_to.iter().any(|a| {
                    a.app_role_id.eq_ignore_ascii_case(role_id)
                        && a.principal_id
                            .eq_ignore_ascii_case(&client.service_principal_id)
                })
        })
    }

    /// App roles of `resource` assigned to `user` directly or through a group.
    pub fn user_roles(&self, user: &User, resource: &App) -> Vec<String> {
        roles_where(resource, AppRoleMemberType::User, |role_id| {
            resource.config.app_role_assigned_to.iter().any(|a| {
                a.app_role_id.eq_ignore_ascii_case(role_id)
                    && (a.principal_id.eq_ignore_ascii_case(&user.id)
                        || user
                            .groups
                            .iter()
                            .any(|g| g.eq_ignore_ascii_case(&a.principal_id)))
            })
        })
    }
}

fn consented_ids(client: &App, resource: &App, kind: ResourceAccessType) -> Vec<String> {
    client
        .config
        .required_resource_access
        .iter()
        .filter(|r| r.admin_consent_granted && resource.is_named(&r.resource_app_id))
        .flat_map(|r| r.resource_access.iter())
        .filter(|a| a.kind == kind)
        .map(|a| a.id.clone())
        .collect()
}

fn roles_where(
    resource: &App,
    member: AppRoleMemberType,
    granted: impl Fn(&str) -> bool,
) -> Vec<String> {
    resource
        .config
        .app_roles
        .iter()
        .filter(|r| r.is_enabled && r.allowed_member_types.contains(&member) && granted(&r.id))
        .map(|r| r.value.clone())
        .collect()
}

fn build_app(tenant_id: &str, a: &ApplicationConfig) -> Result<App, ConfigError> {
    let app_id = guid("appId", &a.app_id)?;
    let fail = |reason: String| ConfigError::Application {
        app: a.display_name.clone(),
        reason,
    };
    if let Some(v) = a.api.requested_access_token_version
        && v != 1
        && v != 2
    {
        return Err(fail(format!(
            "api.requestedAccessTokenVersion must be null, 1 or 2, not {v}"
        )));
    }
    let service_principal_id = match &a.service_principal_id {
        Some(id) => guid("servicePrincipalId", id)?,
        None => uuid::Uuid::new_v5(
            &uuid::Uuid::NAMESPACE_URL,
            format!("ppvnet-entra:{tenant_id}:servicePrincipal:{app_id}").as_bytes(),
        )
        .to_string(),
    };
    let mut secrets = Vec::new();
    for p in &a.password_credentials {
        if p.secret_text.is_empty() {
            return Err(fail(format!(
                "password credential `{}` has an empty secretText",
                p.key_id
            )));
        }
        secrets.push(Secret {
            key_id: guid("password credential keyId", &p.key_id)?,
            display_name: p.display_name.clone(),
            value: p.secret_text.clone(),
            start: p.start_date_time.map(|t| t.0),
            end: p.end_date_time.0,
        });
    }
    let mut certificates = Vec::new();
    for k in &a.key_credentials {
        certificates.push(parse_certificate(
            &a.display_name,
            &k.key_id,
            &k.key,
            k.custom_key_identifier.as_deref(),
            k.end_date_time,
        )?);
    }
    let mut config = a.clone();
    config.app_id = app_id;
    // Credentials live in `secrets`/`certificates`, where the control API changes them.
    config.password_credentials.clear();
    config.key_credentials.clear();
    Ok(App {
        config,
        service_principal_id,
        secrets,
        certificates,
    })
}

fn parse_certificate(
    app: &str,
    key_id: &str,
    key: &str,
    thumbprint: Option<&str>,
    end: Option<Timestamp>,
) -> Result<Certificate, ConfigError> {
    let fail = |reason: String| ConfigError::Certificate {
        app: app.to_string(),
        key_id: key_id.to_string(),
        reason,
    };
    let der = if key.contains("-----BEGIN") {
        let (_, pem) = x509_parser::pem::parse_x509_pem(key.trim().as_bytes())
            .map_err(|e| fail(format!("not a PEM certificate: {e}")))?;
        pem.contents
    } else {
        STANDARD
            .decode(key.trim())
            .map_err(|e| fail(format!("not base64 DER: {e}")))?
    };
    let (_, cert) = x509_parser::parse_x509_certificate(&der)
        .map_err(|e| fail(format!("not an X.509 certificate: {e}")))?;
    let spki = cert.public_key();
    if spki.algorithm.algorithm != x509_parser::oid_registry::OID_PKCS1_RSAENCRYPTION {
        return Err(fail("only RSA certificates are supported".into()));
    }
    let sha1: [u8; 20] = Sha1::digest(&der).into();
    let sha256: [u8; 32] = Sha256::digest(&der).into();
    if let Some(t) = thumbprint {
        let given: String = t.chars().filter(|c| c.is_ascii_hexdigit()).collect();
        let actual: String = sha1.iter().map(|b| format!("{b:02x}")).collect();
        if !given.eq_ignore_ascii_case(&actual) {
            return Err(fail(format!(
                "customKeyIdentifier {t} is not the certificate's SHA-1 thumbprint {actual}"
            )));
        }
    }
    Ok(Certificate {
        sha1,
        sha256,
        public_key: spki.subject_public_key.data.to_vec(),
        end: end.map_or_else(|| cert.validity().not_after.timestamp(), |t| t.0),
    })
}

/// Role assignments must name roles the app defines, and permissions requested from a resource
/// in this tenant must exist on it: a typo would otherwise silently drop a role or scope.
fn check_references(app: &App, apps: &[App]) -> Result<(), ConfigError> {
    let fail = |reason: String| ConfigError::Application {
        app: app.config.display_name.clone(),
        reason,
    };
    for a in &app.config.app_role_assigned_to {
        if !app
            .config
            .app_roles
            .iter()
            .any(|r| r.id.eq_ignore_ascii_case(&a.app_role_id))
        {
            return Err(fail(format!(
                "appRoleAssignedTo names appRoleId {} which the app does not define",
                a.app_role_id
            )));
        }
    }
    for rra in &app.config.required_resource_access {
        let Some(resource) = apps.iter().find(|r| r.is_named(&rra.resource_app_id)) else {
            continue;
        };
        for access in &rra.resource_access {
            let known = match access.kind {
                ResourceAccessType::Scope => resource
                    .config
                    .api
                    .oauth2_permission_scopes
                    .iter()
                    .any(|s| s.id.eq_ignore_ascii_case(&access.id)),
                ResourceAccessType::Role => resource
                    .config
                    .app_roles
                    .iter()
                    .any(|r| r.id.eq_ignore_ascii_case(&access.id)),
            };
            if !known {
                return Err(fail(format!(
                    "requiredResourceAccess names {:?} {} which `{}` does not define",
                    access.kind,
                    access.id,
                    resource.name()
                )));
            }
        }
    }
    Ok(())
}
