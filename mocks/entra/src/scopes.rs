//! What a token request asks for: one resource and its permissions, plus OpenID scopes.
//!
//! v2 requests name permissions as `<resource>/<value>` or `<resource>/.default`; a bare value
//! (`User.Read`) means Microsoft Graph. v1 requests name the resource in `resource=`.
//! Deciding which of the asked permissions are granted (consent) is [`grant_delegated`].

use crate::directory::{App, Directory};
use crate::error::EntraError;

/// Microsoft Graph's identifier, which bare scope values refer to.
pub(crate) const GRAPH: &str = "https://graph.microsoft.com";
const OIDC_SCOPES: [&str; 4] = ["openid", "profile", "email", "offline_access"];

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Permissions {
    /// `/.default` (or a v1 `resource=`): everything consented.
    Default,
    Named(Vec<String>),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ScopeRequest {
    /// The resource as the client named it (app id or identifier URI); `None` when only
    /// OpenID scopes were asked for.
    pub resource: Option<String>,
    pub permissions: Permissions,
    pub oidc: Vec<String>,
}

impl ScopeRequest {
    pub fn has(&self, oidc_scope: &str) -> bool {
        self.oidc.iter().any(|s| s == oidc_scope)
    }

    /// Parses a v2 `scope` parameter.
    pub fn parse_v2(scope: &str) -> Result<Self, EntraError> {
        let mut resource: Option<String> = None;
        let mut named = Vec::new();
        let mut default = false;
        let mut oidc = Vec::new();
        for item in scope.split_whitespace() {
            if OIDC_SCOPES.contains(&item) {
                if !oidc.iter().any(|s| s == item) {
                    oidc.push(item.to_string());
                }
                continue;
            }
            let (res, value) = match item.rsplit_once('/') {
                Some((res, value)) if !res.is_empty() && !value.is_empty() => (res, value),
                Some(_) => {
                    return Err(EntraError::InvalidScope {
                        scope: scope.to_string(),
                    });
                }
                None => (GRAPH, item),
            };
            match &resource {
                Some(r) if !r.eq_ignore_ascii_case(res) => {
                    return Err(EntraError::MultipleResources {
                        scope: scope.to_string(),
                    });
                }
                _ => resource = Some(res.to_string()),
            }
            if value == ".default" {
                default = true;
            } else {
                named.push(value.to_string());
            }
        }
        if resource.is_none() && oidc.is_empty() {
            return Err(EntraError::InvalidScope {
                scope: scope.to_string(),
            });
        }
        if default && !named.is_empty() {
            // Entra refuses mixing `/.default` with named permissions of the same resource.
            return Err(EntraError::InvalidScope {
                scope: scope.to_string(),
            });
        }
        Ok(Self {
            resource,
            permissions: if default || named.is_empty() {
                Permissions::Default
            } else {
                Permissions::Named(named)
            },
            oidc,
        })
    }

    /// A v1 request: `resource=` plus an optional `scope` holding OpenID scopes.
    pub fn v1(resource: &str, scope: Option<&str>) -> Self {
        let oidc = scope
            .unwrap_or_default()
            .split_whitespace()
            .filter(|s| OIDC_SCOPES.contains(s))
            .map(str::to_string)
            .collect();
        Self {
            resource: Some(resource.to_string()),
            permissions: Permissions::Default,
            oidc,
        }
    }

    /// The single `<resource>/.default` client credentials accept.
    pub fn is_app_default(&self) -> bool {
        self.resource.is_some() && self.permissions == Permissions::Default && self.oidc.is_empty()
    }
}

/// Delegated permissions granted for one request.
pub(crate) struct DelegatedGrant<'a> {
    pub resource: &'a App,
    /// The resource as requested; v1 tokens carry it as `aud`.
    pub requested_as: String,
    pub scp: Vec<String>,
}

impl DelegatedGrant<'_> {
    /// The reply's `scope`: granted permissions in the form they were asked for.
    pub fn reply_scope(&self, request: &ScopeRequest) -> String {
        let mut parts: Vec<String> = self
            .scp
            .iter()
            .map(|s| {
                if self.requested_as == GRAPH {
                    s.clone()
                } else {
                    format!("{}/{s}", self.requested_as)
                }
            })
            .collect();
        parts.extend(request.oidc.iter().cloned());
        parts.join(" ")
    }
}

/// Resolves the resource of `request` and decides which delegated permissions `client` gets:
/// all admin-consented ones for `/.default`, else exactly the named ones, each of which must
/// exist (AADSTS70011) and be consented (AADSTS65001). An app asking for its own API needs no
/// consent.
pub(crate) fn grant_delegated<'a>(
    dir: &'a Directory,
    client: &App,
    request: &ScopeRequest,
) -> Result<DelegatedGrant<'a>, EntraError> {
    let requested_as = request
        .resource
        .clone()
        .unwrap_or_else(|| GRAPH.to_string());
    let resource = dir
        .resource(&requested_as)
        .ok_or_else(|| EntraError::ResourceNotFound {
            resource: requested_as.clone(),
            tenant: dir.display_name.clone(),
        })?;
    let own_api = resource.app_id() == client.app_id();
    let consented: Vec<String> = if own_api {
        resource
            .config
            .api
            .oauth2_permission_scopes
            .iter()
            .filter(|s| s.is_enabled)
            .map(|s| s.value.clone())
            .collect()
    } else {
        dir.consented_scopes(client, resource)
    };
    let consent_required = || EntraError::ConsentRequired {
        app_id: client.app_id().to_string(),
        app_name: client.name().to_string(),
    };
    let scp = match &request.permissions {
        Permissions::Default => {
            if consented.is_empty() && !own_api {
                return Err(consent_required());
            }
            consented
        }
        Permissions::Named(values) => {
            for v in values {
                if !Directory::defines_scope(resource, v) {
                    return Err(EntraError::InvalidScope {
                        scope: format!("{requested_as}/{v}"),
                    });
                }
                if !consented.contains(v) {
                    return Err(consent_required());
                }
            }
            values.clone()
        }
    };
    Ok(DelegatedGrant {
        resource,
        requested_as,
        scp,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v2_scopes_split_into_resource_permissions_and_oidc() {
        let r =
            ScopeRequest::parse_v2("api://cases/Cases.Read openid profile offline_access").unwrap();
        assert_eq!(r.resource.as_deref(), Some("api://cases"));
        assert_eq!(r.permissions, Permissions::Named(vec!["Cases.Read".into()]));
        assert!(r.has("offline_access") && r.has("openid"));
        assert!(!r.is_app_default());

        let d = ScopeRequest::parse_v2("https://vault.azure.net/.default").unwrap();
        assert!(d.is_app_default());

        let g = ScopeRequest::parse_v2("User.Read").unwrap();
        assert_eq!(g.resource.as_deref(), Some(GRAPH));
    }

    #[test]
    fn two_resources_or_mixed_default_are_refused() {
        assert_eq!(
            ScopeRequest::parse_v2("api://a/x api://b/y")
                .unwrap_err()
                .code(),
            28000
        );
        assert_eq!(
            ScopeRequest::parse_v2("api://a/.default api://a/y")
                .unwrap_err()
                .code(),
            70011
        );
        assert_eq!(ScopeRequest::parse_v2("  ").unwrap_err().code(), 70011);
    }
}
