//! JSON over HTTP for the control operations of [`Entra`], for the harness to nest under its
//! control API (e.g. `Router::new().nest("/entra", ppvnet_entra::control_router(entra))`).
//!
//! | method and path | effect | reply |
//! | --- | --- | --- |
//! | `GET /keys` | list published keys | `[{"kid","status"}]` |
//! | `POST /keys/publish-next` | publish a new key, not yet signing | `{"kid"}` |
//! | `POST /keys/switch` | sign with the published next key | `{"kid"}` |
//! | `POST /keys/retire-previous` | unpublish keys that no longer sign | `{"retired":[kid]}` |
//! | `POST /keys/rotate` | publish-next + switch | `{"kid"}` |
//! | `GET /applications/{appId}/secrets` | list secrets (no values) | `[{"keyId","displayName","hint","endDateTime"}]` |
//! | `POST /applications/{appId}/secrets` | body `{"displayName"?, "endDateTime"?}` | `{"keyId","secretText","hint","endDateTime",...}` |
//! | `DELETE /applications/{appId}/secrets/{keyId}` | remove a secret | 204 |
//! | `POST /applications/{appId}/secrets/{keyId}/expire` | expire a secret now | 204 |
//! | `POST /users/{user}/disable`, `/enable` | `user` is a UPN or object id | 204 |
//! | `POST /users/{user}/revoke-sessions` | revoke refresh tokens and SSO sessions | 204 |
//! | `POST /revoke-all-sessions` | same for every user | 204 |
//! | `POST /clock/shift` | body `{"seconds": n}` (negative goes back) | `{"offsetMillis"}` |
//!
//! Failures answer `{"error": "..."}` with 404 (unknown app, secret or user) or 409/500.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use crate::state::{AddClientSecret, ControlError, Entra};

impl IntoResponse for ControlError {
    fn into_response(self) -> Response {
        let status = match &self {
            ControlError::UnknownApplication(_)
            | ControlError::UnknownSecret { .. }
            | ControlError::UnknownUser(_) => StatusCode::NOT_FOUND,
            ControlError::NoNextKey => StatusCode::CONFLICT,
            ControlError::SigningKeys(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        (status, Json(json!({"error": self.to_string()}))).into_response()
    }
}

type Reply = Result<Response, ControlError>;

#[derive(Deserialize)]
struct Shift {
    seconds: i64,
}

/// The control endpoints listed in this module's docs.
pub fn control_router(entra: Entra) -> Router {
    Router::new()
        .route(
            "/keys",
            get(|State(e): State<Entra>| async move { Json(e.signing_keys()) }),
        )
        .route(
            "/keys/publish-next",
            post(|State(e): State<Entra>| async move {
                let kid = e.publish_next_signing_key()?;
                Reply::Ok(Json(json!({ "kid": kid })).into_response())
            }),
        )
        .route(
            "/keys/switch",
            post(|State(e): State<Entra>| async move {
                let kid = e.switch_signing_key()?;
                Reply::Ok(Json(json!({ "kid": kid })).into_response())
            }),
        )
        .route(
            "/keys/retire-previous",
            post(|State(e): State<Entra>| async move {
                let retired = e.retire_previous_signing_keys()?;
                Reply::Ok(Json(json!({ "retired": retired })).into_response())
            }),
        )
        .route(
            "/keys/rotate",
            post(|State(e): State<Entra>| async move {
                let kid = e.rotate_signing_keys()?;
                Reply::Ok(Json(json!({ "kid": kid })).into_response())
            }),
        )
        .route(
            "/applications/{app_id}/secrets",
            get(
                |State(e): State<Entra>, Path(app_id): Path<String>| async move {
                    Reply::Ok(Json(e.client_secrets(&app_id)?).into_response())
                },
            )
            .post(
                |State(e): State<Entra>,
                 Path(app_id): Path<String>,
                 body: Option<Json<AddClientSecret>>| async move {
                    let request = body.map(|Json(b)| b).unwrap_or_default();
                    let created = e.add_client_secret(&app_id, request)?;
                    Reply::Ok((StatusCode::CREATED, Json(created)).into_response())
                },
            ),
        )
        .route(
            "/applications/{app_id}/secrets/{key_id}",
            delete(
                |State(e): State<Entra>, Path((app_id, key_id)): Path<(String, String)>| async move {
                    e.remove_client_secret(&app_id, &key_id)?;
                    Reply::Ok(StatusCode::NO_CONTENT.into_response())
                },
            ),
        )
        .route(
            "/applications/{app_id}/secrets/{key_id}/expire",
            post(
                |State(e): State<Entra>, Path((app_id, key_id)): Path<(String, String)>| async move {
                    e.expire_client_secret(&app_id, &key_id)?;
                    Reply::Ok(StatusCode::NO_CONTENT.into_response())
                },
            ),
        )
        .route(
            "/users/{user}/disable",
            post(|State(e): State<Entra>, Path(user): Path<String>| async move {
                e.set_user_enabled(&user, false)?;
                Reply::Ok(StatusCode::NO_CONTENT.into_response())
            }),
        )
        .route(
            "/users/{user}/enable",
            post(|State(e): State<Entra>, Path(user): Path<String>| async move {
                e.set_user_enabled(&user, true)?;
                Reply::Ok(StatusCode::NO_CONTENT.into_response())
            }),
        )
        .route(
            "/users/{user}/revoke-sessions",
            post(|State(e): State<Entra>, Path(user): Path<String>| async move {
                e.revoke_sign_in_sessions(&user)?;
                Reply::Ok(StatusCode::NO_CONTENT.into_response())
            }),
        )
        .route(
            "/revoke-all-sessions",
            post(|State(e): State<Entra>| async move {
                e.revoke_all_sign_in_sessions();
                StatusCode::NO_CONTENT
            }),
        )
        .route(
            "/clock/shift",
            post(
                |State(e): State<Entra>, Json(shift): Json<Shift>| async move {
                    e.clock().shift_secs(shift.seconds);
                    Json(json!({ "offsetMillis": e.clock().offset_millis() }))
                },
            ),
        )
        .with_state(entra)
}
