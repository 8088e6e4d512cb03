//! Admin routes ([`control_router`]), JSON in and out, nested by the harness under its control
//! API (e.g. `/powerplatform`):
//!
//! | Method | Path | Answer |
//! |---|---|---|
//! | GET | `/environments` | environments, their variables and each variable's resolution status per saved connector (Secret values masked) |
//! | GET | `/environments/{env}/connectors` | connectors saved in `env`: `savedAt`, `errors`, variables |
//! | POST | `/environments/{env}/connectors/{name}/resave` | saves again (variables re-resolved); the new entry |
//! | GET | `/connections` | every connection (`id`, `environment`, `connector`, `owner`, `status`, `error`, …) |
//! | GET | `/connections/{id}` | one connection |
//! | DELETE | `/connections/{id}` | 204 |
//! | POST | `/connections/{id}/test` | "Test connection": a token as a call would get it (refreshed when expired); the connection, with its error if that failed |
//!
//! `{env}` is an environment name or id. Errors are [`ControlError`]s.

use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Value, json};

use super::PowerPlatform;
use super::config::VariableKind;
use super::error::ControlError;
use super::saved::SavedConnector;

/// Control requests carry no body worth more than this.
const MAX_CONTROL_BODY: usize = 16 * 1024;
/// How a resolved Secret value is shown.
pub const MASK: &str = "********";

/// The admin routes listed in the module docs.
pub fn control_router(pp: PowerPlatform) -> Router {
    Router::new()
        .route("/environments", get(environments))
        .route("/environments/{env}/connectors", get(connectors))
        .route("/environments/{env}/connectors/{name}/resave", post(resave))
        .route("/connections", get(connections))
        .route(
            "/connections/{id}",
            get(connection).delete(delete_connection),
        )
        .route("/connections/{id}/test", post(test_connection))
        .layer(DefaultBodyLimit::max(MAX_CONTROL_BODY))
        .with_state(pp)
}

async fn environments(State(pp): State<PowerPlatform>) -> Result<Response, ControlError> {
    let saved = pp.saved_connectors();
    let list: Vec<Value> = pp
        .inner
        .config
        .environments
        .iter()
        .map(|env| {
            let variables: Vec<Value> = env
                .variables
                .iter()
                .map(|v| {
                    let resolutions: Vec<Value> = saved
                        .iter()
                        .filter(|s| s.environment == env.name)
                        .filter_map(|s| {
                            let outcome = s
                                .variables
                                .iter()
                                .find(|o| o.schema_name == v.schema_name)?;
                            Some(json!({
                                "connector": s.name,
                                "savedAt": s.saved_at,
                                "status": if outcome.value.is_ok() { "Resolved" } else { "Error" },
                                "error": outcome.value.as_ref().err().map(|e| e.message()),
                            }))
                        })
                        .collect();
                    let secret = v.kind == VariableKind::Secret;
                    json!({
                        "schemaName": v.schema_name,
                        "type": format!("{:?}", v.kind),
                        "value": if secret { Value::Null } else { Value::from(v.value.clone()) },
                        "reference": if secret { Value::from(v.value.clone()) } else { Value::Null },
                        "resolutions": resolutions,
                    })
                })
                .collect();
            json!({"name": env.name, "id": env.id, "variables": variables})
        })
        .collect();
    Ok(Json(json!({ "value": list })).into_response())
}

/// A saved connector for the control API (Secret values masked).
fn saved_view(s: &SavedConnector) -> Value {
    let variables: Vec<Value> = s
        .variables
        .iter()
        .map(|o| {
            let secret = o.kind == Some(VariableKind::Secret);
            json!({
                "schemaName": o.schema_name,
                "status": if o.value.is_ok() { "Resolved" } else { "Error" },
                "value": match &o.value {
                    Ok(_) if secret => Value::from(MASK),
                    Ok(v) => Value::from(v.clone()),
                    Err(_) => Value::Null,
                },
                "error": o.value.as_ref().err().map(|e| json!({
                    "message": e.message(),
                    "variable": e.variable,
                    "vault": e.vault,
                    "host": e.host,
                    "cause": e.cause,
                })),
            })
        })
        .collect();
    json!({
        "name": s.name,
        "environment": s.environment,
        "savedAt": s.saved_at,
        "imported": s.connector.is_some(),
        "errors": s.errors(),
        "variables": variables,
    })
}

async fn connectors(
    State(pp): State<PowerPlatform>,
    Path(env): Path<String>,
) -> Result<Response, ControlError> {
    let name = pp
        .environment(&env)
        .ok_or_else(|| ControlError::NotFound(format!("No environment '{env}'.")))?
        .name
        .clone();
    let list: Vec<Value> = pp
        .saved_connectors()
        .iter()
        .filter(|s| s.environment == name)
        .map(|s| saved_view(s))
        .collect();
    Ok(Json(json!({ "value": list })).into_response())
}

async fn resave(
    State(pp): State<PowerPlatform>,
    Path((env, name)): Path<(String, String)>,
) -> Result<Response, ControlError> {
    let saved = pp.resave(&env, &name).await?;
    Ok(Json(saved_view(&saved)).into_response())
}

async fn connections(State(pp): State<PowerPlatform>) -> Result<Response, ControlError> {
    let list: Vec<Value> = pp.connections().iter().map(|c| c.view()).collect();
    Ok(Json(json!({ "value": list })).into_response())
}

async fn connection(
    State(pp): State<PowerPlatform>,
    Path(id): Path<String>,
) -> Result<Response, ControlError> {
    let c = find_connection(&pp, &id)?;
    Ok(Json(c.view()).into_response())
}

/// `POST /connections/{id}/test`: the maker portal's "Test connection": gets a token for the
/// connection as a call would (refreshing an expired one), so a revoked grant or a disabled
/// user shows as the connection's error without a call through `/invoke`.
async fn test_connection(
    State(pp): State<PowerPlatform>,
    Path(id): Path<String>,
) -> Result<Response, ControlError> {
    let c = find_connection(&pp, &id)?;
    let saved = pp.saved(&c.environment, &c.connector).ok_or_else(|| {
        ControlError::NotFound(format!(
            "The connector '{}' is not saved in '{}'.",
            c.connector, c.environment
        ))
    })?;
    // A failure is recorded on the connection itself; the answer shows it.
    let _ = pp.access_token(&c, &saved).await;
    let now = find_connection(&pp, &id)?;
    Ok(Json(now.view()).into_response())
}

fn find_connection(
    pp: &PowerPlatform,
    id: &str,
) -> Result<super::connections::Connection, ControlError> {
    pp.connection(id)
        .ok_or_else(|| ControlError::NotFound(format!("No connection '{id}'.")))
}

async fn delete_connection(
    State(pp): State<PowerPlatform>,
    Path(id): Path<String>,
) -> Result<Response, ControlError> {
    if pp.delete_connection(&id) {
        Ok(StatusCode::NO_CONTENT.into_response())
    } else {
        Err(ControlError::NotFound(format!("No connection '{id}'.")))
    }
}
