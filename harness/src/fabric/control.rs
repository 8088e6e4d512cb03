//! The fabric's shared handle and runtime control: peering on/off, NSG rules, region outages,
//! an environment's active region; the flow log and metrics; and the JSON router the harness
//! control API nests under `/network`.
//!
//! Changes take effect at once: the loopback relay asks the oracle on every connection (and cuts
//! open ones whose path a change withdrew), and the netns fabric re-applies its routes and
//! nftables rules, and cuts such connections, before the call returns.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock, RwLock};

use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use serde::Deserialize;

use super::flowlog::{FlowFilter, FlowLog, FlowRecord};
use super::oracle::{Decision, NetworkState, Oracle, OracleError, Resolution};
use super::{FabricKind, Face};
use crate::events::{Event, EventBus};
use crate::landscape::Landscape;
use crate::scenario::model::NsgRule;

/// A fabric's way of putting the oracle's state into effect (netns: routes and nftables).
pub(crate) trait Enforcer: Send + Sync {
    fn apply(&self, oracle: &Oracle) -> anyhow::Result<()>;
}

struct Shared {
    kind: FabricKind,
    oracle: RwLock<Oracle>,
    flows: FlowLog,
    /// The address clients connect to for each face (the first one bound).
    faces: RwLock<HashMap<(String, Face), SocketAddr>>,
    enforcer: OnceLock<Arc<dyn Enforcer>>,
    /// Where every change and flow record is announced.
    events: EventBus,
}

/// A cheap-to-clone handle on a running fabric.
#[derive(Clone)]
pub struct FabricHandle(Arc<Shared>);

/// Why a control request failed.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error(transparent)]
    Oracle(#[from] OracleError),
    #[error("the change was recorded but the fabric could not apply it: {0}")]
    Apply(String),
    /// The request's JSON body (`InvalidRequestBody`) or query string (`InvalidQuery`) does
    /// not fit the route.
    #[error("{message}")]
    BadRequest { code: &'static str, message: String },
}

impl From<axum::extract::rejection::JsonRejection> for ControlError {
    fn from(e: axum::extract::rejection::JsonRejection) -> Self {
        ControlError::BadRequest {
            code: "InvalidRequestBody",
            message: e.body_text(),
        }
    }
}

impl From<axum::extract::rejection::QueryRejection> for ControlError {
    fn from(e: axum::extract::rejection::QueryRejection) -> Self {
        ControlError::BadRequest {
            code: "InvalidQuery",
            message: e.body_text(),
        }
    }
}

/// A JSON body whose rejection answers in the control API's error shape.
#[derive(axum::extract::FromRequest)]
#[from_request(via(axum::Json), rejection(ControlError))]
struct Body<T>(T);

/// A query string whose rejection answers in the control API's error shape.
#[derive(axum::extract::FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ControlError))]
struct Params<T>(T);

impl FabricHandle {
    pub(crate) fn new(landscape: &Landscape, kind: FabricKind) -> Self {
        let events = EventBus::default();
        FabricHandle(Arc::new(Shared {
            kind,
            oracle: RwLock::new(Oracle::new(landscape)),
            flows: FlowLog::with_events(events.clone()),
            faces: RwLock::new(HashMap::new()),
            enforcer: OnceLock::new(),
            events,
        }))
    }

    /// The run's event bus: network changes and flow records are published here.
    pub fn events(&self) -> &EventBus {
        &self.0.events
    }

    pub fn kind(&self) -> FabricKind {
        self.0.kind
    }

    pub(crate) fn set_enforcer(&self, e: Arc<dyn Enforcer>) {
        let _ = self.0.enforcer.set(e);
    }

    /// Runs `f` on the current oracle (a read lock; keep `f` short).
    pub fn with_oracle<R>(&self, f: impl FnOnce(&Oracle) -> R) -> R {
        f(&self.0.oracle.read().unwrap_or_else(|e| e.into_inner()))
    }

    /// A copy of the current oracle (for a whole reachability matrix at one instant).
    pub fn oracle(&self) -> Oracle {
        self.with_oracle(Oracle::clone)
    }

    pub fn decide(
        &self,
        from: &str,
        service: &str,
        face: &Face,
        port: u16,
    ) -> Result<Decision, OracleError> {
        self.with_oracle(|o| o.decide(from, service, face, port))
    }

    pub fn resolve(&self, from: &str, name: &str) -> Result<Resolution, OracleError> {
        self.with_oracle(|o| o.resolve_from(from, name))
    }

    pub fn flow_log(&self) -> &FlowLog {
        &self.0.flows
    }

    pub fn flows(&self, filter: &FlowFilter) -> Vec<FlowRecord> {
        self.0.flows.query(filter)
    }

    pub fn metrics(&self) -> String {
        self.0.flows.metrics()
    }

    pub(crate) fn register_face(&self, service: &str, face: &Face, address: SocketAddr) {
        self.0
            .faces
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .entry((service.to_string(), face.clone()))
            .or_insert(address);
    }

    /// The address clients connect to for a face, once the face is bound.
    pub fn face_address(&self, service: &str, face: &Face) -> Option<SocketAddr> {
        self.0
            .faces
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&(service.to_string(), face.clone()))
            .copied()
    }

    /// Applies `f` to the oracle and the fabric, then announces `what` changed.
    async fn change<R: Send + 'static>(
        &self,
        what: String,
        f: impl FnOnce(&mut Oracle) -> Result<R, OracleError> + Send + 'static,
    ) -> Result<R, ControlError> {
        let this = self.clone();
        let run = move || -> Result<R, ControlError> {
            let mut o = this.0.oracle.write().unwrap_or_else(|e| e.into_inner());
            let r = f(&mut o)?;
            if let Some(e) = this.0.enforcer.get() {
                e.apply(&o)
                    .map_err(|e| ControlError::Apply(format!("{e:#}")))?;
            }
            Ok(r)
        };
        let done = if self.0.enforcer.get().is_some() {
            // Applying spawns `ip`/`nft`; keep it off the async workers.
            tokio::task::spawn_blocking(run)
                .await
                .map_err(|e| ControlError::Apply(e.to_string()))?
        } else {
            run()
        };
        if done.is_ok() {
            self.0.events.publish(Event::Network(what));
        }
        done
    }

    /// Turns one direction of a peering on or off (traffic needs both directions).
    pub async fn set_peering(&self, name: &str, enabled: bool) -> Result<(), ControlError> {
        let name = name.to_string();
        let what = format!("peering {name} {}", on_off(enabled));
        self.change(what, move |o| o.set_peering(&name, enabled))
            .await
    }

    /// Turns every peering between two vNets (both directions) on or off.
    pub async fn set_peering_between(
        &self,
        a: &str,
        b: &str,
        enabled: bool,
    ) -> Result<Vec<String>, ControlError> {
        let (a, b) = (a.to_string(), b.to_string());
        let what = format!("peerings between {a} and {b} {}", on_off(enabled));
        self.change(what, move |o| {
            let names: Vec<String> = o
                .peerings()
                .iter()
                .filter(|p| (p.from == a && p.to == b) || (p.from == b && p.to == a))
                .map(|p| p.name.clone())
                .collect();
            if names.is_empty() {
                return Err(OracleError::UnknownPeering(format!("{a} <-> {b}")));
            }
            for n in &names {
                o.set_peering(n, enabled)?;
            }
            Ok(names)
        })
        .await
    }

    pub async fn add_nsg_rule(&self, nsg: &str, rule: NsgRule) -> Result<(), ControlError> {
        let nsg = nsg.to_string();
        let what = format!("NSG {nsg}: rule {} added", rule.name);
        self.change(what, move |o| o.add_nsg_rule(&nsg, rule)).await
    }

    pub async fn remove_nsg_rule(&self, nsg: &str, rule: &str) -> Result<NsgRule, ControlError> {
        let (nsg, rule) = (nsg.to_string(), rule.to_string());
        let what = format!("NSG {nsg}: rule {rule} removed");
        self.change(what, move |o| o.remove_nsg_rule(&nsg, &rule))
            .await
    }

    /// Starts or ends a Power Platform outage of a region; returns the failovers it caused.
    pub async fn set_region_outage(
        &self,
        region: &str,
        down: bool,
    ) -> Result<Vec<(String, String)>, ControlError> {
        let region = region.to_string();
        let what = if down {
            format!("region {region} in outage")
        } else {
            format!("region {region} restored")
        };
        self.change(what, move |o| o.set_region_outage(&region, down))
            .await
    }

    pub async fn set_active_region(
        &self,
        environment: &str,
        region: &str,
    ) -> Result<(), ControlError> {
        let (e, r) = (environment.to_string(), region.to_string());
        let what = format!("environment {e} active in {r}");
        self.change(what, move |o| o.set_active_region(&e, &r))
            .await
    }

    pub fn state(&self) -> NetworkState {
        self.with_oracle(Oracle::state)
    }
}

fn on_off(enabled: bool) -> &'static str {
    if enabled { "on" } else { "off" }
}

fn error(status: StatusCode, code: &str, message: String) -> Response {
    (
        status,
        Json(serde_json::json!({"error": {"code": code, "message": message}})),
    )
        .into_response()
}

impl IntoResponse for ControlError {
    fn into_response(self) -> Response {
        match &self {
            ControlError::Oracle(OracleError::InvalidRule(_))
            | ControlError::Oracle(OracleError::CannotActivate { .. }) => {
                error(StatusCode::BAD_REQUEST, "InvalidRequest", self.to_string())
            }
            ControlError::Oracle(_) => error(StatusCode::NOT_FOUND, "NotFound", self.to_string()),
            ControlError::Apply(_) => error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "ApplyFailed",
                self.to_string(),
            ),
            ControlError::BadRequest { code, .. } => {
                error(StatusCode::BAD_REQUEST, code, self.to_string())
            }
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Enabled {
    enabled: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Outage {
    down: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ActiveRegion {
    region: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DecideQuery {
    from: String,
    service: String,
    /// `public` (default) or a private endpoint name.
    face: Option<String>,
    port: Option<u16>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ResolveQuery {
    from: String,
    name: String,
}

/// The network part of the harness control API; the harness nests it under `/network`.
///
/// | method + path | body / query | answer |
/// | --- | --- | --- |
/// | `GET /state` | | peerings (with `enabled`), NSG rules, region outages, active regions |
/// | `POST /peerings/{name}` | `{"enabled": false}` | 204; one direction of a peering |
/// | `POST /peerings/between/{a}/{b}` | `{"enabled": false}` | `{"peerings": [...]}`: both directions |
/// | `POST /nsgs/{nsg}/rules` | an NSG rule as in the landscape file (camelCase) | 201 |
/// | `DELETE /nsgs/{nsg}/rules/{rule}` | | the removed rule |
/// | `POST /regions/{region}/outage` | `{"down": true}` | `{"failovers": [[env, region]...]}` |
/// | `GET /environments/{env}` | | `{"active_region", "host"}` |
/// | `POST /environments/{env}/active-region` | `{"region": "eastus"}` | 204 |
/// | `GET /decide` | `?from=host&service=name[&face=public\|pe-name][&port=443]` | the oracle's decision |
/// | `GET /resolve` | `?from=host&name=kv-contoso-prod.vault.azure.net` | the DNS answer |
/// | `GET /flows` | `?src_host=&dst_host=&service=&state=B\|C\|E\|D&since_ms=` | flow records, each with its Azure `tuple` |
/// | `GET /metrics` | | Prometheus text: flows, denies, bytes per host |
///
/// Errors are `{"error": {"code", "message"}}` with 400 (invalid rule or body), 404 (unknown
/// name) or 500 (the fabric could not apply a change).
pub fn control_router(handle: FabricHandle) -> Router {
    Router::new()
        .route(
            "/state",
            get(|State(h): State<FabricHandle>| async move { Json(h.state()) }),
        )
        .route("/peerings/{name}", post(peering))
        .route("/peerings/between/{a}/{b}", post(peering_between))
        .route("/nsgs/{nsg}/rules", post(add_rule))
        .route("/nsgs/{nsg}/rules/{rule}", delete(remove_rule))
        .route("/regions/{region}/outage", post(outage))
        .route("/environments/{env}", get(environment))
        .route("/environments/{env}/active-region", post(active_region))
        .route("/decide", get(decide))
        .route("/resolve", get(resolve))
        .route("/flows", get(flows))
        .route("/metrics", get(metrics))
        .with_state(handle)
}

async fn peering(
    State(h): State<FabricHandle>,
    Path(name): Path<String>,
    Body(b): Body<Enabled>,
) -> Result<StatusCode, ControlError> {
    h.set_peering(&name, b.enabled).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn peering_between(
    State(h): State<FabricHandle>,
    Path((a, b)): Path<(String, String)>,
    Body(body): Body<Enabled>,
) -> Result<Json<serde_json::Value>, ControlError> {
    let names = h.set_peering_between(&a, &b, body.enabled).await?;
    Ok(Json(serde_json::json!({"peerings": names})))
}

async fn add_rule(
    State(h): State<FabricHandle>,
    Path(nsg): Path<String>,
    Body(rule): Body<NsgRule>,
) -> Result<StatusCode, ControlError> {
    h.add_nsg_rule(&nsg, rule).await?;
    Ok(StatusCode::CREATED)
}

async fn remove_rule(
    State(h): State<FabricHandle>,
    Path((nsg, rule)): Path<(String, String)>,
) -> Result<Json<NsgRule>, ControlError> {
    Ok(Json(h.remove_nsg_rule(&nsg, &rule).await?))
}

async fn outage(
    State(h): State<FabricHandle>,
    Path(region): Path<String>,
    Body(b): Body<Outage>,
) -> Result<Json<serde_json::Value>, ControlError> {
    let moved = h.set_region_outage(&region, b.down).await?;
    Ok(Json(serde_json::json!({"failovers": moved})))
}

async fn environment(
    State(h): State<FabricHandle>,
    Path(env): Path<String>,
) -> Result<Json<serde_json::Value>, ControlError> {
    let state = h.state();
    let region = state
        .active_regions
        .get(&env)
        .ok_or_else(|| OracleError::UnknownEnvironment(env.clone()))?;
    let host = h.with_oracle(|o| o.environment_host(&env)).ok();
    Ok(Json(
        serde_json::json!({"active_region": region, "host": host}),
    ))
}

async fn active_region(
    State(h): State<FabricHandle>,
    Path(env): Path<String>,
    Body(b): Body<ActiveRegion>,
) -> Result<StatusCode, ControlError> {
    h.set_active_region(&env, &b.region).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn decide(
    State(h): State<FabricHandle>,
    Params(q): Params<DecideQuery>,
) -> Result<Response, ControlError> {
    let face = Face::from_label(q.face.as_deref().unwrap_or("public"));
    let d = h.decide(&q.from, &q.service, &face, q.port.unwrap_or(443))?;
    Ok(Json(d).into_response())
}

async fn resolve(
    State(h): State<FabricHandle>,
    Params(q): Params<ResolveQuery>,
) -> Result<Response, ControlError> {
    Ok(Json(h.resolve(&q.from, &q.name)?).into_response())
}

async fn flows(
    State(h): State<FabricHandle>,
    Params(f): Params<FlowFilter>,
) -> Json<Vec<serde_json::Value>> {
    let records = h
        .flows(&f)
        .into_iter()
        .map(|r| {
            let tuple = r.tuple();
            let mut v = serde_json::to_value(r).unwrap_or_default();
            if let Some(o) = v.as_object_mut() {
                o.insert("tuple".into(), tuple.into());
            }
            v
        })
        .collect();
    Json(records)
}

async fn metrics(State(h): State<FabricHandle>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        h.metrics(),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body as HttpBody;
    use axum::http::Request;
    use tower::ServiceExt;

    async fn answer(router: Router, req: Request<HttpBody>) -> (StatusCode, serde_json::Value) {
        let r = router.oneshot(req).await.expect("the router answers");
        let status = r.status();
        let bytes = axum::body::to_bytes(r.into_body(), 1 << 20)
            .await
            .expect("a body");
        (status, serde_json::from_slice(&bytes).unwrap_or_default())
    }

    /// Bodies, queries and names that do not fit get the control API's one error shape.
    #[tokio::test]
    async fn bad_bodies_queries_and_names_answer_in_one_error_shape() {
        let path =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/contoso.yaml");
        let l = crate::scenario::load(&path).expect("contoso loads");
        let router = control_router(FabricHandle::new(&l, FabricKind::Loopback));
        let post = |uri: &str, body: &str| {
            Request::post(uri)
                .header("content-type", "application/json")
                .body(HttpBody::from(body.to_string()))
                .expect("a request")
        };
        let (s, b) = answer(
            router.clone(),
            post("/peerings/prod-westus-to-eastus", "{\"on\": 1}"),
        )
        .await;
        assert_eq!(
            (s, b["error"]["code"].as_str()),
            (StatusCode::BAD_REQUEST, Some("InvalidRequestBody"))
        );
        let get = |uri: &str| {
            Request::get(uri)
                .body(HttpBody::empty())
                .expect("a request")
        };
        let (s, b) = answer(router.clone(), get("/decide?from=internet")).await;
        assert_eq!(
            (s, b["error"]["code"].as_str()),
            (StatusCode::BAD_REQUEST, Some("InvalidQuery"))
        );
        let (s, b) = answer(router.clone(), get("/environments/nowhere")).await;
        assert_eq!(
            (s, b["error"]["code"].as_str()),
            (StatusCode::NOT_FOUND, Some("NotFound"))
        );
        let (s, _) = answer(
            router,
            post("/peerings/prod-westus-to-eastus", "{\"enabled\": false}"),
        )
        .await;
        assert_eq!(s, StatusCode::NO_CONTENT);
    }
}
