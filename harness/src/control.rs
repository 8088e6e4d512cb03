//! The harness control API: drive a running landscape (clock, and the parts each component
//! contributes: Entra key rotation and secrets, network state).
//!
//! Plain HTTP on 127.0.0.1 only: it is the operator's and the tests' handle, not part of the
//! emulated landscape, so no fabric rule applies to it. [`guard`] admits only requests with the
//! run's token (or a dashboard browser's [`session`]), addressed to the control API by name, and
//! not sent by a web page of another origin; [`Client`] is how tools and tests call it.

mod client;
pub mod guard;
pub mod session;

pub use client::Client;
pub use guard::{Guard, new_token};

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use ppvnet_common::Clock;
use serde::Deserialize;

/// What the control API can reach.
#[derive(Clone)]
pub struct ControlState {
    pub clock: Clock,
    pub summary: serde_json::Value,
    /// Clock shifts and resets are announced here (the dashboard shows the offset).
    pub events: crate::events::EventBus,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Shift {
    /// Seconds to move the clock by (negative moves it back).
    seconds: i64,
}

/// The control router; component routers are nested under their prefixes by `up`, which then
/// puts [`guard::layer`] in front of all of them.
pub fn router(state: ControlState) -> Router {
    Router::new()
        .route(guard::HEALTH_PATH, get(|| async { "ok" }))
        .route("/landscape", get(landscape))
        .route("/clock", get(clock))
        .route("/clock/shift", post(shift))
        .route("/clock/reset", post(reset))
        .with_state(state)
}

async fn landscape(State(s): State<ControlState>) -> Json<serde_json::Value> {
    Json(s.summary.clone())
}

fn clock_json(clock: &Clock) -> serde_json::Value {
    serde_json::json!({
        "now_unix": clock.unix(),
        "offset_seconds": clock.offset_millis() / 1000,
    })
}

async fn clock(State(s): State<ControlState>) -> Json<serde_json::Value> {
    Json(clock_json(&s.clock))
}

async fn shift(State(s): State<ControlState>, body: Option<Json<Shift>>) -> Response {
    let Some(Json(shift)) = body else {
        return (
            StatusCode::BAD_REQUEST,
            Json(serde_json::json!({"error": "expected a JSON body {\"seconds\": N}"})),
        )
            .into_response();
    };
    s.clock.shift_secs(shift.seconds);
    s.events.publish(crate::events::Event::Clock);
    Json(clock_json(&s.clock)).into_response()
}

async fn reset(State(s): State<ControlState>) -> Json<serde_json::Value> {
    s.clock.reset();
    s.events.publish(crate::events::Event::Clock);
    Json(clock_json(&s.clock))
}
