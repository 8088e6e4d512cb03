//! Who is calling and what they may see.
//!
//! The token is validated by [`ppvnet_common::token::Validator`]; this module applies the API's
//! own authorization, as `[RequiredScopeOrAppPermission]` does in Microsoft.Identity.Web:
//! a delegated (user) token needs the `Cases.Read` scope; an app-only token needs the
//! `Cases.Read.All` app role. The role, held by a user or an application, widens the view to
//! every case; otherwise a user sees the cases they own and those of their groups.
//!
//! Groups come from the token's `groups` claim when it has one (the API app requests security
//! group claims); otherwise from the configured directory, standing in for the Microsoft Graph
//! lookup a real API does when group claims are absent or replaced by the overage marker.

use std::collections::HashMap;

use axum::http::HeaderMap;
use ppvnet_common::token::{Bearer, Claims, Validator, request_bearer};

use crate::config::SearchApiConfig;
use crate::error::ApiError;
use crate::store::Viewer;

/// An authenticated, authorized caller.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Caller {
    /// The user's or the client service principal's object id.
    pub object_id: String,
    pub app_only: bool,
    pub viewer: Viewer,
}

pub struct Authorizer {
    validator: Validator,
    required_scope: String,
    read_all_role: String,
    /// Lower-cased object id -> group ids.
    directory: HashMap<String, Vec<String>>,
}

impl Authorizer {
    pub fn new(config: &SearchApiConfig, validator: Validator) -> Self {
        Self {
            validator,
            required_scope: config.required_scope.clone(),
            read_all_role: config.read_all_role.clone(),
            directory: config
                .directory
                .iter()
                .map(|(oid, groups)| (oid.to_ascii_lowercase(), groups.clone()))
                .collect(),
        }
    }

    pub async fn caller(&self, headers: &HeaderMap) -> Result<Caller, ApiError> {
        let token = match request_bearer(headers) {
            Bearer::Token(token) => token,
            Bearer::Missing => return Err(ApiError::MissingToken),
            Bearer::Ambiguous => return Err(ApiError::AmbiguousToken),
        };
        let claims = self
            .validator
            .validate(token)
            .await
            .map_err(|e| ApiError::InvalidToken {
                description: e.description(),
            })?;
        self.authorize(&claims)
    }

    fn authorize(&self, claims: &Claims) -> Result<Caller, ApiError> {
        let object_id = claims
            .oid()
            .ok_or_else(|| ApiError::InvalidToken {
                description: "The token has no 'oid' claim".to_owned(),
            })?
            .to_ascii_lowercase();
        let reads_all = claims.roles().contains(&self.read_all_role.as_str());
        let app_only = claims.is_app_only();
        if app_only {
            if !reads_all {
                return Err(ApiError::InsufficientScope {
                    description: format!(
                        "The 'roles' claim does not contain '{}' or was not found",
                        self.read_all_role
                    ),
                });
            }
        } else if !claims.scopes().contains(&self.required_scope.as_str()) {
            return Err(ApiError::InsufficientScope {
                description: format!(
                    "The 'scp' claim does not contain '{}' or was not found",
                    self.required_scope
                ),
            });
        }
        let viewer = if reads_all {
            Viewer::All
        } else {
            let group_ids = if claims.get("groups").is_some() {
                claims
                    .groups()
                    .iter()
                    .map(|g| g.to_ascii_lowercase())
                    .collect()
            } else {
                self.directory
                    .get(&object_id)
                    .map(|groups| groups.iter().map(|g| g.to_ascii_lowercase()).collect())
                    .unwrap_or_default()
            };
            Viewer::Scoped {
                object_id: object_id.clone(),
                group_ids,
            }
        };
        Ok(Caller {
            object_id,
            app_only,
            viewer,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ppvnet_common::Clock;
    use serde_json::json;

    fn authorizer() -> Authorizer {
        let mut config = SearchApiConfig::for_entra("https://login", "t", "c", "api://x");
        config
            .directory
            .insert("USER-2".into(), vec!["G-From-Directory".into()]);
        let validator = Validator::new(
            config.validator_config(),
            reqwest::Client::new(),
            Clock::new(),
        );
        Authorizer::new(&config, validator)
    }

    fn claims(v: serde_json::Value) -> Claims {
        Claims::from_map(v.as_object().unwrap().clone())
    }

    #[test]
    fn delegated_calls_need_the_scope_and_see_own_and_group_cases() {
        let a = authorizer();
        let caller = a
            .authorize(&claims(
                json!({"oid": "User-1", "scp": "User.Read Cases.Read", "groups": ["G1"]}),
            ))
            .unwrap();
        assert_eq!(
            caller.viewer,
            Viewer::Scoped {
                object_id: "user-1".into(),
                group_ids: vec!["g1".into()]
            }
        );
        let e = a
            .authorize(&claims(json!({"oid": "u", "scp": "Cases.Write"})))
            .unwrap_err();
        assert!(matches!(e, ApiError::InsufficientScope { .. }), "{e:?}");
    }

    #[test]
    fn the_role_widens_a_user_view_to_every_case_but_does_not_replace_the_scope() {
        let a = authorizer();
        let carol = claims(json!({"oid": "c", "scp": "Cases.Read", "roles": ["Cases.Read.All"]}));
        assert_eq!(a.authorize(&carol).unwrap().viewer, Viewer::All);
        let no_scope = claims(json!({"oid": "c", "scp": "Other", "roles": ["Cases.Read.All"]}));
        assert!(a.authorize(&no_scope).is_err());
    }

    #[test]
    fn app_only_calls_need_the_role() {
        let a = authorizer();
        let app = a
            .authorize(&claims(
                json!({"oid": "sp", "idtyp": "app", "roles": ["Cases.Read.All"]}),
            ))
            .unwrap();
        assert!(app.app_only);
        assert_eq!(app.viewer, Viewer::All);
        let e = a
            .authorize(&claims(json!({"oid": "sp", "roles": []})))
            .unwrap_err();
        assert!(e.to_string().contains("'roles' claim"), "{e}");
    }

    #[test]
    fn groups_fall_back_to_the_directory_only_without_a_groups_claim() {
        let a = authorizer();
        let without = a
            .authorize(&claims(json!({"oid": "user-2", "scp": "Cases.Read"})))
            .unwrap();
        assert_eq!(
            without.viewer,
            Viewer::Scoped {
                object_id: "user-2".into(),
                group_ids: vec!["g-from-directory".into()]
            }
        );
        let with_empty = a
            .authorize(&claims(
                json!({"oid": "user-2", "scp": "Cases.Read", "groups": []}),
            ))
            .unwrap();
        assert_eq!(
            with_empty.viewer,
            Viewer::Scoped {
                object_id: "user-2".into(),
                group_ids: vec![]
            }
        );
    }

    #[test]
    fn a_token_without_oid_is_refused() {
        let e = authorizer()
            .authorize(&claims(json!({"scp": "Cases.Read"})))
            .unwrap_err();
        assert!(matches!(e, ApiError::InvalidToken { .. }));
    }
}
