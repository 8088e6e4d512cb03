//! The harness's Power Platform routes (nested under `/pp` in the control API): act as a
//! landscape user without a browser. `ppvnet pp connect|invoke` call them, so the CLI works on
//! every fabric: the requests leave from the landscape's `internet` host, where a user's device
//! is, whatever namespace the CLI runs in.
//!
//! | method + path | body | answer |
//! | --- | --- | --- |
//! | `POST /connect` | `{"environment","connector","user"}` | `{"connection"}`: the user's connection, created by consent on Entra's page if it has none |
//! | `POST /invoke` | `{"environment","connector","user","method","path","body"?,"correlationId"?}` | `{"connection","status","headers","body"}` |

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde::Deserialize;

use super::user::{Call, UserAgent};

/// What the routes need: the user agent on the internet host, environment ids and passwords.
#[derive(Clone)]
pub struct UserRoutes {
    agent: UserAgent,
    /// Environment name → id.
    environments: BTreeMap<String, String>,
    /// UPN (lower case) → password.
    passwords: BTreeMap<String, String>,
    /// (environment, connector, user) → connection id, made by [`UserRoutes::connection`].
    connections: Arc<Mutex<HashMap<ConnectionKey, String>>>,
}

/// (environment, connector, user) of a connection the routes made.
type ConnectionKey = (String, String, String);

/// Why a route failed: 400 for unknown names, 502 for a failure on the way.
#[derive(Debug, thiserror::Error)]
pub enum UserRouteError {
    #[error("{0}")]
    Unknown(String),
    #[error("{0:#}")]
    Failed(anyhow::Error),
}

impl IntoResponse for UserRouteError {
    fn into_response(self) -> Response {
        let (status, code) = match &self {
            UserRouteError::Unknown(_) => (StatusCode::NOT_FOUND, "NotFound"),
            UserRouteError::Failed(_) => (StatusCode::BAD_GATEWAY, "UserFlowFailed"),
        };
        let message = self.to_string();
        (
            status,
            Json(serde_json::json!({"error": {"code": code, "message": message}})),
        )
            .into_response()
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ConnectBody {
    environment: String,
    connector: String,
    user: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct InvokeBody {
    environment: String,
    connector: String,
    user: String,
    method: String,
    path: String,
    #[serde(default)]
    body: Option<serde_json::Value>,
    #[serde(default)]
    correlation_id: Option<String>,
}

impl UserRoutes {
    pub fn new(
        agent: UserAgent,
        environments: BTreeMap<String, String>,
        passwords: BTreeMap<String, String>,
    ) -> Self {
        Self {
            agent,
            environments,
            passwords: passwords
                .into_iter()
                .map(|(k, v)| (k.to_ascii_lowercase(), v))
                .collect(),
            connections: Arc::default(),
        }
    }

    pub fn agent(&self) -> &UserAgent {
        &self.agent
    }

    fn password(&self, upn: &str) -> Result<&str, UserRouteError> {
        self.passwords
            .get(&upn.to_ascii_lowercase())
            .map(String::as_str)
            .ok_or_else(|| UserRouteError::Unknown(format!("no user {upn} in the landscape")))
    }

    fn environment_id(&self, env: &str) -> Result<&str, UserRouteError> {
        self.environments
            .get(env)
            .map(String::as_str)
            .ok_or_else(|| {
                UserRouteError::Unknown(format!("no environment {env} in the landscape"))
            })
    }

    /// A token for the user, and the user's connection (made now if it has none).
    pub async fn connection(
        &self,
        env: &str,
        connector: &str,
        upn: &str,
    ) -> Result<(String, String), UserRouteError> {
        let password = self.password(upn)?;
        self.environment_id(env)?;
        let token = self
            .agent
            .user_token(upn, password)
            .await
            .map_err(UserRouteError::Failed)?;
        let key = (
            env.to_string(),
            connector.to_string(),
            upn.to_ascii_lowercase(),
        );
        let known = self
            .connections
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&key)
            .cloned();
        if let Some(id) = known {
            return Ok((token, id));
        }
        let id = self
            .agent
            .connect(&token, env, connector, upn, password)
            .await
            .map_err(UserRouteError::Failed)?;
        self.connections
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key, id.clone());
        Ok((token, id))
    }
}

/// The routes, for nesting under `/pp`.
pub fn router(routes: UserRoutes) -> Router {
    Router::new()
        .route("/connect", post(connect))
        .route("/invoke", post(invoke))
        .with_state(routes)
}

async fn connect(
    State(r): State<UserRoutes>,
    Json(b): Json<ConnectBody>,
) -> Result<Json<serde_json::Value>, UserRouteError> {
    let (_, id) = r.connection(&b.environment, &b.connector, &b.user).await?;
    Ok(Json(serde_json::json!({"connection": id})))
}

async fn invoke(
    State(r): State<UserRoutes>,
    Json(b): Json<InvokeBody>,
) -> Result<Json<serde_json::Value>, UserRouteError> {
    let (token, connection) = r.connection(&b.environment, &b.connector, &b.user).await?;
    let call = Call {
        environment_id: r.environment_id(&b.environment)?,
        connector: &b.connector,
        connection: &connection,
        method: &b.method,
        path: &b.path,
        body: b.body,
        correlation_id: b
            .correlation_id
            .unwrap_or_else(|| uuid::Uuid::new_v4().to_string()),
    };
    let answer = r
        .agent
        .invoke(&token, &call)
        .await
        .map_err(UserRouteError::Failed)?;
    Ok(Json(serde_json::json!({
        "connection": connection,
        "status": answer.status,
        "headers": answer.headers,
        "body": answer.body,
    })))
}
