//! The live landscape dashboard, served on the control address behind the control API's guard:
//! the landscape drawn as a picture ([`crate::picture`]) with its current state, the
//! reachability matrix host × face, the latest flow-log records, and buttons for the control
//! routes (region outage, failover, peering, clock shift) that ask for confirmation first.
//!
//! Live updates are pushed, not polled: the page opens `GET /dashboard/events` (Server-Sent
//! Events); the stream subscribes to the run's [`crate::events::EventBus`] and, on every event
//! (a batch of queued ones at a time), sends a `view` event with the whole view rendered anew on
//! the server as JSON ([`view::View`]), which the page puts in place. A stream starts with the
//! current view, so nothing that changed between the page load and the subscription is missed.
//! A stream ends itself after half the serve loop's idle timeout (the serve loop counts a
//! response being streamed as idle and would cut it), telling the browser to reconnect after
//! [`RECONNECT_MS`]; the new stream starts with the current view again.
//!
//! | method + path | answer |
//! | --- | --- |
//! | `GET /dashboard` | the page (bearer token or session cookie) |
//! | `GET /dashboard/login?token=T` | one-time login: sets the session cookie, redirects to the page |
//! | `POST /dashboard/login-url` | `{"url"}`: a new one-time login URL |
//! | `GET /dashboard/view` | the current [`view::View`] as JSON |
//! | `GET /dashboard/events` | `text/event-stream` of `view` events |
//! | `GET /dashboard/app.js`, `/dashboard/app.css` | the page's script and style sheet |
//!
//! Browser sessions and their CSRF tokens: [`crate::control::session`]; the guard checks them.

pub mod view;

use std::convert::Infallible;
use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures::Stream;
use tokio::sync::{Semaphore, broadcast, watch};

use crate::control::guard::{Guard, LOGIN_PATH, Refusal};
use crate::events::Event;
use crate::fabric::FabricHandle;
use crate::fabric::oracle::Oracle;
use ppvnet_common::Clock;

/// Event streams served at once; more are refused with 503 (each holds a connection open).
pub const MAX_STREAMS: usize = 16;

/// How soon a browser reconnects when its stream ended (the SSE `retry` field).
pub const RECONNECT_MS: u64 = 250;

/// The page's content security policy: its own script, style and event stream only; nothing
/// inline runs, nothing is framed, no form goes anywhere.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// What the dashboard reads and serves.
#[derive(Clone)]
pub struct Dashboard {
    /// The landscape's name, for the title.
    name: String,
    fabric: FabricHandle,
    /// The landscape as declared (before any control action), to mark what changed.
    declared: Arc<Oracle>,
    clock: Clock,
    guard: Guard,
    /// `http://127.0.0.1:PORT`: where login URLs point.
    control_url: String,
    streams: Arc<Semaphore>,
    /// How long one event stream lasts before it ends itself.
    stream_lifetime: std::time::Duration,
    /// Ends the event streams when the run stops.
    stop: watch::Receiver<bool>,
}

impl Dashboard {
    pub fn new(
        name: &str,
        fabric: FabricHandle,
        clock: Clock,
        guard: Guard,
        control_url: &str,
        stop: watch::Receiver<bool>,
    ) -> Self {
        let declared = Arc::new(fabric.oracle());
        Self {
            name: name.to_string(),
            fabric,
            declared,
            clock,
            guard,
            control_url: control_url.to_string(),
            streams: Arc::new(Semaphore::new(MAX_STREAMS)),
            stream_lifetime: ppvnet_common::serve::ServeLimits::from_env().idle_timeout / 2,
            stop,
        }
    }

    /// A new one-time login URL (`ppvnet up` prints one).
    pub fn login_url(&self) -> String {
        format!(
            "{}{LOGIN_PATH}?token={}",
            self.control_url,
            self.guard.sessions().issue_ticket()
        )
    }

    /// The current view; `change` names what caused it.
    pub fn view(&self, change: Option<&str>) -> view::View {
        let now = self.fabric.oracle();
        let flows = self.fabric.flow_log().latest(view::FLOWS_SHOWN);
        view::render(&view::Inputs {
            now: &now,
            declared: &self.declared,
            flows: &flows,
            clock_offset_seconds: self.clock.offset_millis() / 1000,
            change,
        })
    }

    /// The dashboard's routes (full paths; the caller merges them into the control router and
    /// puts the guard in front).
    pub fn router(self) -> Router {
        Router::new()
            .route("/dashboard", get(page))
            .route(LOGIN_PATH, get(login))
            .route("/dashboard/login-url", post(login_url))
            .route("/dashboard/view", get(view_json))
            .route("/dashboard/events", get(events))
            .route("/dashboard/app.js", get(script))
            .route("/dashboard/app.css", get(style))
            .with_state(self)
    }
}

/// Headers of every dashboard document: no caching (it shows live state and a CSRF token), no
/// sniffing, no framing, no referrer (a login URL's ticket must not travel on).
fn hardened(mut r: Response, content_type: &'static str) -> Response {
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    ppvnet_common::web::hardened(r, CSP)
}

async fn page(State(d): State<Dashboard>, headers: HeaderMap) -> Response {
    // A page opened with the bearer token (no session) shows the state; its buttons need a
    // session's CSRF token, which only the login URL gives.
    let csrf = d
        .guard
        .session(&headers)
        .map(|s| s.csrf)
        .unwrap_or_default();
    let html = view::page(&d.name, &csrf, &d.view(None));
    hardened(html.into_response(), "text/html; charset=utf-8")
}

#[derive(serde::Deserialize)]
struct Ticket {
    token: String,
}

async fn login(
    State(d): State<Dashboard>,
    query: Result<Query<Ticket>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let redeemed = query
        .ok()
        .and_then(|Query(t)| d.guard.sessions().redeem(&t.token));
    let Some(session) = redeemed else {
        return Refusal::UsedTicket.into_response();
    };
    let cookie = format!(
        "{}={}; Path=/; HttpOnly; SameSite=Strict",
        d.guard.cookie_name(),
        session.id
    );
    let mut r = hardened(
        (
            StatusCode::SEE_OTHER,
            [(header::LOCATION, "/dashboard")],
            "logged in; continue at /dashboard\n",
        )
            .into_response(),
        "text/plain; charset=utf-8",
    );
    match HeaderValue::from_str(&cookie) {
        Ok(v) => {
            r.headers_mut().insert(header::SET_COOKIE, v);
            r
        }
        // The id is hexadecimal: this cannot happen, but the answer must not be a panic.
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

async fn login_url(State(d): State<Dashboard>) -> Json<serde_json::Value> {
    Json(serde_json::json!({"url": d.login_url()}))
}

async fn view_json(State(d): State<Dashboard>) -> Response {
    hardened(Json(d.view(None)).into_response(), "application/json")
}

async fn script() -> Response {
    hardened(
        include_str!("app.js").into_response(),
        "text/javascript; charset=utf-8",
    )
}

async fn style() -> Response {
    hardened(
        include_str!("app.css").into_response(),
        "text/css; charset=utf-8",
    )
}

async fn events(State(d): State<Dashboard>) -> Response {
    let Ok(permit) = d.streams.clone().try_acquire_owned() else {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(serde_json::json!({"error": {
                "code": "TooManyStreams",
                "message": format!("at most {MAX_STREAMS} dashboard event streams at once; close a dashboard tab"),
            }})),
        )
            .into_response();
    };
    // Subscribed before the first view is drawn, so no change falls in between.
    let rx = d.fabric.events().subscribe();
    let stream = view_stream(d, rx, permit);
    hardened(
        Sse::new(stream)
            .keep_alive(KeepAlive::default())
            .into_response(),
        "text/event-stream",
    )
}

/// One subscriber's state between events.
struct Subscriber {
    dashboard: Dashboard,
    rx: broadcast::Receiver<Event>,
    first: bool,
    /// The latest network change this stream saw, shown in the status line.
    last_change: Option<String>,
    /// When the stream ends itself (the browser then reconnects).
    ends: tokio::time::Instant,
    _permit: tokio::sync::OwnedSemaphorePermit,
}

impl Subscriber {
    /// Waits for the next batch of events; false when the bus closed or the run stops.
    async fn next_batch(&mut self) -> bool {
        let mut stop = self.dashboard.stop.clone();
        let woke = tokio::select! {
            e = self.rx.recv() => e,
            _ = stop.wait_for(|stopped| *stopped) => return false,
            _ = tokio::time::sleep_until(self.ends) => return false,
        };
        match woke {
            Ok(Event::Network(what)) => self.last_change = Some(what),
            Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
            Err(broadcast::error::RecvError::Closed) => return false,
        }
        // Whatever else queued meanwhile is in the view drawn now.
        while let Ok(e) = self.rx.try_recv() {
            if let Event::Network(what) = e {
                self.last_change = Some(what);
            }
        }
        true
    }
}

/// The `view` events of one stream: the current view, then one per batch of bus events, until
/// the bus closes or the run stops.
fn view_stream(
    dashboard: Dashboard,
    rx: broadcast::Receiver<Event>,
    permit: tokio::sync::OwnedSemaphorePermit,
) -> impl Stream<Item = Result<SseEvent, Infallible>> + Send + 'static {
    let ends = tokio::time::Instant::now() + dashboard.stream_lifetime;
    let start = Subscriber {
        dashboard,
        rx,
        first: true,
        last_change: None,
        ends,
        _permit: permit,
    };
    futures::stream::unfold(start, |mut s| async move {
        let first = std::mem::take(&mut s.first);
        if !first && !s.next_batch().await {
            return None;
        }
        let view = s.dashboard.view(s.last_change.as_deref());
        let mut event = SseEvent::default()
            .event("view")
            .json_data(&view)
            .unwrap_or_else(|_| SseEvent::default().comment("the view could not be encoded"));
        if first {
            event = event.retry(std::time::Duration::from_millis(RECONNECT_MS));
        }
        Some((Ok(event), s))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::StreamExt;

    fn dashboard() -> (Dashboard, watch::Sender<bool>) {
        let path =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/contoso.yaml");
        let l = crate::scenario::load(&path).expect("contoso loads");
        let fabric = FabricHandle::new(&l, crate::fabric::FabricKind::Loopback);
        let addr = "127.0.0.1:7411".parse().expect("an address");
        let (stop, stop_rx) = watch::channel(false);
        let d = Dashboard::new(
            "contoso",
            fabric,
            Clock::new(),
            Guard::new(addr, &crate::control::new_token()),
            "http://127.0.0.1:7411",
            stop_rx,
        );
        (d, stop)
    }

    fn stream(d: &Dashboard) -> impl Stream<Item = Result<SseEvent, Infallible>> + use<> {
        let permit = d
            .streams
            .clone()
            .try_acquire_owned()
            .expect("a free stream");
        view_stream(d.clone(), d.fabric.events().subscribe(), permit)
    }

    #[tokio::test]
    async fn a_stream_sends_a_view_per_change_until_the_run_stops() {
        let (d, stop) = dashboard();
        let mut s = Box::pin(stream(&d));
        assert!(s.next().await.is_some(), "the current view comes first");
        d.fabric
            .set_region_outage("westus", true)
            .await
            .expect("westus");
        assert!(s.next().await.is_some(), "a view after the change");
        stop.send(true).expect("the stream listens");
        assert!(s.next().await.is_none(), "the stream ends with the run");
    }

    #[tokio::test]
    async fn a_stream_ends_itself_at_its_lifetime() {
        let (mut d, _stop) = dashboard();
        d.stream_lifetime = std::time::Duration::ZERO;
        let views: Vec<_> = stream(&d).collect().await;
        assert_eq!(views.len(), 1, "the current view, then the end");
    }

    #[tokio::test]
    async fn streams_over_the_cap_are_refused() {
        let (d, _stop) = dashboard();
        let _held: Vec<_> = (0..MAX_STREAMS)
            .map(|_| {
                d.streams
                    .clone()
                    .try_acquire_owned()
                    .expect("a free stream")
            })
            .collect();
        let r = events(State(d)).await;
        assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    }
}
