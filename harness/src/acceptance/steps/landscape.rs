//! Steps that run a landscape and act in it as its users, apps and hosts would:
//! `features/auth.feature`, `features/search.feature`, `features/key_vault.feature`.
//!
//! Each scenario starts its own landscape on the loopback fabric (in-process, about a second)
//! and stops it afterwards, so scenarios never see each other's changes.

use std::collections::BTreeMap;
use std::path::Path;

use crate::fabric::FabricKind;
use crate::up::{self, Running, UpOptions};
use base64::Engine;
use cucumber::{given, then, when};
use serde_json::Value;

use super::PpvWorld;
use crate::acceptance::{fabric_named, landscape_to_start};

/// A running landscape and what scenarios remember about it.
pub struct Live {
    pub running: Running,
    pub dir: tempfile::TempDir,
    /// The control API, with the run's token.
    pub control: crate::control::Client,
    /// Access tokens by the name of whoever obtained them.
    pub tokens: BTreeMap<String, String>,
    /// The last answer from Entra, a vault or an API: status and JSON body (or text).
    pub last: Option<(u16, Value)>,
    /// The `WWW-Authenticate` challenge of the last vault or API answer, if it had one.
    pub challenge: Option<String>,
    /// Search results by user.
    pub results: BTreeMap<String, Vec<Value>>,
}

impl std::fmt::Debug for Live {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Live")
            .field("scenario", &self.running.ready().scenario)
            .field("last", &self.last)
            .finish_non_exhaustive()
    }
}

impl Live {
    pub fn client(&self, host: &str) -> reqwest::Client {
        let ca = std::fs::read(&self.running.ready().ca_cert).expect("the run's CA");
        self.running
            .fabric()
            .http_client(host, &ca)
            .expect("a client on the host")
    }

    fn tenant(&self) -> &str {
        &self.running.ready().tenant_id
    }

    fn app(&self, name: &str) -> (String, String) {
        let app = self
            .running
            .ready()
            .apps
            .get(name)
            .unwrap_or_else(|| panic!("no app {name} in the landscape"));
        (
            app.client_id.clone(),
            app.client_secret.clone().unwrap_or_default(),
        )
    }

    fn password(&self, upn: &str) -> String {
        self.running
            .ready()
            .users
            .get(upn)
            .unwrap_or_else(|| panic!("no user {upn} in the landscape"))
            .password
            .clone()
    }

    async fn token_request(&mut self, host: &str, form: &[(&str, &str)]) -> Option<String> {
        let url = format!(
            "https://login.microsoftonline.com/{}/oauth2/v2.0/token",
            self.tenant()
        );
        let r = self
            .client(host)
            .post(url)
            .form(form)
            .send()
            .await
            .expect("Entra answers");
        let status = r.status().as_u16();
        let body: Value = r.json().await.expect("Entra answers JSON");
        let token = body["access_token"].as_str().map(str::to_string);
        self.last = Some((status, body));
        token
    }
}

/// The token `who` holds (a step named it earlier), or a failure naming the last answer.
pub fn token_of(l: &Live, who: &str) -> String {
    l.tokens
        .get(who)
        .cloned()
        .unwrap_or_else(|| panic!("{who} has no token: {:?}", l.last))
}

pub fn live(w: &mut PpvWorld) -> &mut Live {
    w.live
        .as_mut()
        .expect("a landscape is running (Given the ... landscape is running)")
}

async fn start(w: &mut PpvWorld, file: &Path) {
    start_with(w, file, fabric_named(None), |_| {}).await;
}

/// Starts a landscape on a fabric after `edit` changed its model in memory (a variant of a
/// shipped landscape for one scenario: a role removed, a DNS link missing). The edited model
/// is validated again, as a file would be.
pub async fn start_with(
    w: &mut PpvWorld,
    file: &Path,
    kind: FabricKind,
    edit: impl FnOnce(&mut crate::scenario::model::Scenario),
) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let mut landscape = crate::scenario::load(file).unwrap_or_else(|e| panic!("{e}"));
    edit(&mut landscape.scenario);
    let text = serde_norway::to_string(&landscape.scenario).expect("the model serializes");
    let landscape = crate::scenario::load_str(&text, file).unwrap_or_else(|e| panic!("{e}"));
    let mut opts = UpOptions::new(kind, dir.path().join("ready.json"));
    // A dropped backend connection shows as the runtime's 502 in seconds, not after 120 s.
    opts.power_platform_limits.call_timeout = std::time::Duration::from_secs(20);
    let running = up::start(&landscape, &opts)
        .await
        .unwrap_or_else(|e| panic!("{e:#}"));
    let authority = &running
        .ready()
        .entra
        .as_ref()
        .expect("Entra runs")
        .authority_host;
    assert!(
        kind != FabricKind::Loopback || !authority.trim_start_matches("https://").contains(':'),
        "services must listen on port 443 for host names to work: run as root (as CI does)"
    );
    let control = crate::control::Client::from_ready(running.ready())
        .unwrap_or_else(|e| panic!("the control API: {e:#}"));
    w.live = Some(Live {
        running,
        dir,
        control,
        tokens: BTreeMap::new(),
        last: None,
        challenge: None,
        results: BTreeMap::new(),
    });
}

#[given(expr = "the {word} landscape is running")]
async fn landscape_is_running(w: &mut PpvWorld, name: String) {
    start(w, &landscape_to_start(&name)).await;
}

#[given(expr = "{string} signs in through {string} for {string}")]
#[when(expr = "{string} signs in through {string} for {string}")]
async fn user_signs_in(w: &mut PpvWorld, upn: String, app: String, scope: String) {
    let l = live(w);
    let password = l.password(&upn);
    sign_in(l, &upn, &password, &app, &scope).await;
}

#[when(expr = "{string} signs in through {string} for {string} with password {string}")]
async fn user_signs_in_with(
    w: &mut PpvWorld,
    upn: String,
    app: String,
    scope: String,
    password: String,
) {
    sign_in(live(w), &upn, &password, &app, &scope).await;
}

async fn sign_in(l: &mut Live, upn: &str, password: &str, app: &str, scope: &str) {
    let (id, secret) = l.app(app);
    let form = [
        ("grant_type", "password"),
        ("client_id", id.as_str()),
        ("client_secret", secret.as_str()),
        ("username", upn),
        ("password", password),
        ("scope", scope),
    ];
    if let Some(t) = l.token_request("internet", &form).await {
        l.tokens.insert(upn.to_string(), t);
    }
}

#[given(expr = "the app {string} asks for a token for {string}")]
#[when(expr = "the app {string} asks for a token for {string}")]
async fn app_asks(w: &mut PpvWorld, app: String, scope: String) {
    let l = live(w);
    let (id, secret) = l.app(&app);
    let form = [
        ("grant_type", "client_credentials"),
        ("client_id", id.as_str()),
        ("client_secret", secret.as_str()),
        ("scope", scope.as_str()),
    ];
    if let Some(t) = l.token_request("internet", &form).await {
        l.tokens.insert(app, t);
    }
}

#[when(expr = "the app {string} asks for a token for {string} with secret {string}")]
async fn app_asks_with(w: &mut PpvWorld, app: String, scope: String, secret: String) {
    let l = live(w);
    let (id, _) = l.app(&app);
    let form = [
        ("grant_type", "client_credentials"),
        ("client_id", id.as_str()),
        ("client_secret", secret.as_str()),
        ("scope", scope.as_str()),
    ];
    l.token_request("internet", &form).await;
}

#[given(expr = "the user {string} is disabled")]
#[when(expr = "the user {string} is disabled")]
async fn user_disabled(w: &mut PpvWorld, upn: String) {
    let l = live(w);
    let r = l
        .control
        .post(&format!("/entra/users/{upn}/disable"))
        .send()
        .await
        .expect("control API");
    assert_eq!(r.status(), 204);
}

fn claims(token: &str) -> Value {
    let payload = token.split('.').nth(1).expect("a JWT");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .expect("base64url");
    serde_json::from_slice(&bytes).expect("JSON claims")
}

#[then(expr = "{string} holds an access token whose {string} is {string}")]
fn token_claim_is(w: &mut PpvWorld, who: String, claim: String, value: String) {
    let l = live(w);
    let c = claims(&token_of(l, &who));
    let got = match &c[&claim] {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    assert_eq!(got, value, "claims: {c}");
}

#[then(expr = "{string} holds an access token whose {string} include {string}")]
fn token_claim_includes(w: &mut PpvWorld, who: String, claim: String, value: String) {
    let l = live(w);
    let c = claims(&token_of(l, &who));
    let has = match &c[&claim] {
        Value::Array(items) => items.iter().any(|v| v == &Value::String(value.clone())),
        Value::String(s) => s.split(' ').any(|x| x == value),
        _ => false,
    };
    assert!(has, "{claim} of {c} lacks {value}");
}

#[then(expr = "Entra refuses with {string} and error code {int}")]
fn entra_refuses(w: &mut PpvWorld, error: String, code: u64) {
    let l = live(w);
    let (status, body) = l.last.as_ref().expect("Entra answered");
    assert!(*status == 400 || *status == 401, "status {status}: {body}");
    assert_eq!(body["error"], error, "{body}");
    assert_eq!(body["error_codes"][0], code, "{body}");
    let description = body["error_description"].as_str().unwrap_or_default();
    assert!(
        description.starts_with(&format!("AADSTS{code}:")),
        "{description}"
    );
}

/// Every page of a search: the final status, the cases, and a refusal's body and challenge.
async fn search_all(l: &Live, host: &str, api: &str, token: &str, q: &str) -> Searched {
    let client = l.client(host);
    let mut out = Vec::new();
    let mut next: Option<String> = None;
    loop {
        let mut req = client
            .get(format!("https://{api}/cases/search"))
            .bearer_auth(token)
            .query(&[("q", q), ("top", "100")]);
        if let Some(t) = &next {
            req = req.query(&[("continuationToken", t.as_str())]);
        }
        let r = match req.send().await {
            Ok(r) => r,
            Err(_) => return (0, out, Value::Null, None),
        };
        let status = r.status().as_u16();
        if status != 200 {
            let challenge = www_authenticate(&r);
            let body = r.json().await.unwrap_or(Value::Null);
            return (status, out, body, challenge);
        }
        let body: Value = r.json().await.expect("JSON results");
        out.extend(body["value"].as_array().cloned().unwrap_or_default());
        match body["continuationToken"].as_str() {
            Some(t) => next = Some(t.to_string()),
            None => return (200, out, Value::Null, None),
        }
    }
}

#[when(expr = "{string} searches {string} for {string} from host {string}")]
async fn user_searches(w: &mut PpvWorld, who: String, api: String, q: String, host: String) {
    let l = live(w);
    let token = token_of(l, &who);
    let (status, results, body, challenge) = search_all(l, &host, &api, &token, &q).await;
    l.last = Some((status, body));
    l.challenge = challenge;
    l.results.insert(who, results);
}

/// Status, cases found, the body of a refusal and its `WWW-Authenticate` challenge.
type Searched = (u16, Vec<Value>, Value, Option<String>);

/// The `WWW-Authenticate` header of an answer.
pub fn www_authenticate(r: &reqwest::Response) -> Option<String> {
    r.headers()
        .get(reqwest::header::WWW_AUTHENTICATE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

fn ids(results: &[Value]) -> std::collections::BTreeSet<String> {
    results
        .iter()
        .filter_map(|c| c["id"].as_str().map(str::to_string))
        .collect()
}

#[then(expr = "{string} and {string} see no case in common")]
fn disjoint(w: &mut PpvWorld, a: String, b: String) {
    let l = live(w);
    let (ra, rb) = (&l.results[&a], &l.results[&b]);
    assert!(!ra.is_empty() && !rb.is_empty(), "both find cases");
    assert!(ids(ra).is_disjoint(&ids(rb)));
}

#[then(expr = "{string} sees every case that {string} and {string} see")]
fn superset(w: &mut PpvWorld, all: String, a: String, b: String) {
    let l = live(w);
    let everything = ids(&l.results[&all]);
    assert!(everything.is_superset(&ids(&l.results[&a])));
    assert!(everything.is_superset(&ids(&l.results[&b])));
    assert!(everything.len() > ids(&l.results[&a]).len() + ids(&l.results[&b]).len() - 1);
}

#[then(expr = "every case {string} sees belongs to {string} or to a group of hers")]
fn own_cases(w: &mut PpvWorld, who: String, upn: String) {
    let l = live(w);
    let user = &l.running.ready().users[&upn];
    let token = &l.tokens[&who];
    let groups: Vec<Value> = claims(token)["groups"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    for c in &l.results[&who] {
        assert!(
            c["ownerObjectId"] == Value::String(user.object_id.clone())
                || groups.contains(&c["teamGroupId"]),
            "{c} is neither hers nor her team's"
        );
    }
}

#[then(expr = "the search is refused with status {int}")]
fn search_refused(w: &mut PpvWorld, status: u16) {
    let l = live(w);
    assert_eq!(l.last.as_ref().map(|(s, _)| *s), Some(status));
}

#[then("the search succeeds")]
fn search_succeeds(w: &mut PpvWorld) {
    let l = live(w);
    assert_eq!(l.last.as_ref().map(|(s, _)| *s), Some(200));
}

#[then("the search does not reach the API")]
fn search_unreachable(w: &mut PpvWorld) {
    let l = live(w);
    let status = l.last.as_ref().map(|(s, _)| *s);
    // Either the network drops it (no HTTP status) or App Service's access restriction answers 403.
    assert!(matches!(status, Some(0) | Some(403)), "status {status:?}");
}

#[when(expr = "{string} reads the secret {string} of {string} from host {string}")]
async fn read_secret(w: &mut PpvWorld, who: String, secret: String, vault: String, host: String) {
    let l = live(w);
    let token = token_of(l, &who);
    let url = format!("https://{vault}.vault.azure.net/secrets/{secret}?api-version=2025-07-01");
    let r = l.client(&host).get(url).bearer_auth(token).send();
    record_answer(l, r.await).await;
}

/// Keeps a vault's or an API's answer as the scenario's last one: status (0 when the
/// connection failed), JSON body and challenge.
pub async fn record_answer(l: &mut Live, r: reqwest::Result<reqwest::Response>) {
    let (last, challenge) = match r {
        Ok(r) => {
            let status = r.status().as_u16();
            let challenge = www_authenticate(&r);
            ((status, r.json().await.unwrap_or(Value::Null)), challenge)
        }
        Err(e) => ((0, Value::String(format!("no answer: {e}"))), None),
    };
    l.last = Some(last);
    l.challenge = challenge;
}

#[then(expr = "the vault answers {int} with {string}")]
fn vault_answers(w: &mut PpvWorld, status: u16, code: String) {
    let l = live(w);
    let (got, body) = l.last.as_ref().expect("the vault answered");
    assert_eq!(*got, status, "{body}");
    assert_eq!(body["error"]["innererror"]["code"], code, "{body}");
}

#[then(expr = "the secret's value is the client secret of {string}")]
fn secret_value(w: &mut PpvWorld, app: String) {
    let l = live(w);
    let (_, secret) = l.app(&app);
    let (status, body) = l.last.as_ref().expect("the vault answered");
    assert_eq!(*status, 200, "{body}");
    assert_eq!(body["value"], Value::String(secret));
}

/// Stops the scenario's landscape.
pub async fn stop(w: &mut PpvWorld) {
    if let Some(l) = w.live.take() {
        let Live { running, dir, .. } = l;
        if let Err(e) = running.stop().await {
            eprintln!("stopping the landscape: {e:#}");
        }
        drop(dir);
    }
}

/// POSTs JSON to the running landscape's control API and returns status and body.
pub async fn control_post(l: &Live, path: &str, body: Value) -> (u16, Value) {
    let r = l
        .control
        .post(path)
        .json(&body)
        .send()
        .await
        .expect("control API");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// GETs JSON from the running landscape's control API.
pub async fn control_get(l: &Live, path: &str) -> Value {
    let r = l.control.get(path).send().await.expect("control API");
    assert!(r.status().is_success(), "GET {path}: {}", r.status());
    r.json().await.expect("JSON")
}

async fn environment_state(l: &Live, env: &str) -> Value {
    control_get(l, &format!("/network/environments/{env}")).await
}

#[when(expr = "the region {string} has an outage")]
async fn region_outage(w: &mut PpvWorld, region: String) {
    let l = live(w);
    let (status, body) = control_post(
        l,
        &format!("/network/regions/{region}/outage"),
        serde_json::json!({"down": true}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
}

#[when(expr = "the vNet peering between {string} and {string} is switched off")]
async fn peering_off(w: &mut PpvWorld, a: String, b: String) {
    let l = live(w);
    let (status, body) = control_post(
        l,
        &format!("/network/peerings/between/{a}/{b}"),
        serde_json::json!({"enabled": false}),
    )
    .await;
    assert!(status == 200 || status == 204, "{status}: {body}");
}

#[then(expr = "the environment {string} runs in {string} on host {string}")]
async fn environment_runs_in(w: &mut PpvWorld, env: String, region: String, host: String) {
    let l = live(w);
    let state = environment_state(l, &env).await;
    assert_eq!(state["active_region"], Value::String(region), "{state}");
    assert_eq!(state["host"], Value::String(host), "{state}");
}
