//! Steps for stubbed third-party APIs (`implementation: {kind: stub}`): start a landscape with
//! an API stubbed, give it answers, and check what it received.

use std::collections::BTreeMap;

use base64::Engine as _;
use cucumber::gherkin::Step;
use cucumber::{given, then};
use serde_json::Value;

use super::PpvWorld;
use super::landscape::{live, start_with};
use crate::acceptance::{fabric_named, landscape_file, landscape_to_start};
use crate::scenario::model::ApiImplementation;
use crate::services::stub::{Canned, Mapping, RequestMatch, Stub};

async fn start_stubbed(w: &mut PpvWorld, name: &str, api: &str, mappings: Option<String>) {
    let file = landscape_to_start(name);
    if let Some(m) = &mappings {
        landscape_file(m);
    }
    start_with(w, &file, fabric_named(None), |s| {
        let a = s
            .apis
            .iter_mut()
            .find(|a| a.name == api)
            .unwrap_or_else(|| panic!("no API {api} in the landscape"));
        a.implementation = ApiImplementation::Stub {
            mappings: mappings.map(Into::into),
        };
    })
    .await;
}

#[given(expr = "the {word} landscape is running with the API {string} as a stub")]
async fn running_with_stub(w: &mut PpvWorld, name: String, api: String) {
    start_stubbed(w, &name, &api, None).await;
}

#[given(expr = "the {word} landscape is running with the API {string} stubbed by {string}")]
async fn running_with_stub_file(w: &mut PpvWorld, name: String, api: String, file: String) {
    start_stubbed(w, &name, &api, Some(file)).await;
}

fn stub<'a>(w: &'a mut PpvWorld, api: &str) -> &'a Stub {
    live(w)
        .running
        .stub(api)
        .unwrap_or_else(|| panic!("the API {api} is not a stub"))
}

/// `GET "/v1.0/me?x=1"` as a request matcher (path exact, each query parameter required).
fn request(method: &str, target: &str) -> RequestMatch {
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    RequestMatch {
        method: Some(method.to_string()),
        path: Some(path.to_string()),
        query: url::form_urlencoded::parse(query.as_bytes())
            .into_owned()
            .collect::<BTreeMap<_, _>>(),
        ..Default::default()
    }
}

async fn answer(w: &mut PpvWorld, api: &str, method: &str, target: &str, response: Canned) {
    let mapping = Mapping {
        request: request(method, target),
        response,
    };
    stub(w, api)
        .answer(&mapping)
        .await
        .unwrap_or_else(|e| panic!("{e:#}"));
}

#[given(expr = "the API {string} answers {word} {string} with {int}")]
async fn answers(w: &mut PpvWorld, api: String, method: String, target: String, status: u16) {
    let response = Canned {
        status,
        ..Default::default()
    };
    answer(w, &api, &method, &target, response).await;
}

#[given(expr = "the API {string} answers {word} {string} with {int} and the JSON body:")]
async fn answers_json(
    w: &mut PpvWorld,
    step: &Step,
    api: String,
    method: String,
    target: String,
    status: u16,
) {
    let text = step
        .docstring
        .as_deref()
        .expect("the JSON body as a docstring");
    let body: Value =
        serde_json::from_str(text).unwrap_or_else(|e| panic!("the docstring is not JSON: {e}"));
    let response = Canned {
        status,
        json_body: Some(body),
        headers: BTreeMap::from([("content-type".into(), "application/json".into())]),
        ..Default::default()
    };
    answer(w, &api, &method, &target, response).await;
}

#[given(expr = "the API {string} answers {word} {string} with {int} after {int} seconds")]
async fn answers_late(
    w: &mut PpvWorld,
    api: String,
    method: String,
    target: String,
    status: u16,
    seconds: u64,
) {
    let response = Canned {
        status,
        delay_ms: seconds * 1000,
        ..Default::default()
    };
    answer(w, &api, &method, &target, response).await;
}

/// The `aud` claim of a request's bearer token, if it carries one.
fn bearer_audience(r: &crate::services::stub::Received) -> Option<String> {
    let auth = r.headers.get("authorization")?.to_str().ok()?;
    let token = auth.strip_prefix("Bearer ")?;
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .ok()?;
    let claims: Value = serde_json::from_slice(&bytes).ok()?;
    claims["aud"].as_str().map(str::to_string)
}

/// What the stub received, one line per request, for a failed step's evidence.
fn listing(received: &[crate::services::stub::Received]) -> String {
    if received.is_empty() {
        return "(no request)".into();
    }
    received
        .iter()
        .map(|r| {
            format!(
                "{} {} (token audience: {})",
                r.method,
                r.url,
                bearer_audience(r).unwrap_or_else(|| "none".into())
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[then(expr = "the API {string} received {int} request(s)")]
async fn received(w: &mut PpvWorld, api: String, count: usize) {
    let got = stub(w, &api).received().await;
    assert_eq!(
        got.len(),
        count,
        "the stub {api} received:\n{}",
        listing(&got)
    );
}

/// The audiences a token "for `name`" may carry: `name` itself, the client id of the app of
/// that name, and the client id of an API whose application ID URI is `name` (Entra's v2
/// tokens carry the client id as `aud`).
fn audiences(ready: &crate::ready::ReadyFile, name: &str) -> Vec<String> {
    let mut out = vec![name.to_string()];
    out.extend(ready.apps.get(name).map(|a| a.client_id.clone()));
    out.extend(
        ready
            .apis
            .values()
            .filter(|a| a.app_id_uri == name)
            .map(|a| a.client_id.clone()),
    );
    out
}

#[then(expr = "the API {string} received {int} request(s) with a bearer token for {string}")]
async fn received_with_token(w: &mut PpvWorld, api: String, count: usize, audience: String) {
    let accepted = audiences(live(w).running.ready(), &audience);
    let got = stub(w, &api).received().await;
    let with = got
        .iter()
        .filter(|r| bearer_audience(r).is_some_and(|a| accepted.contains(&a)))
        .count();
    assert_eq!(
        (got.len(), with),
        (count, count),
        "expected {count} request(s), all with a token for {audience}; the stub {api} received:\n{}",
        listing(&got)
    );
}
