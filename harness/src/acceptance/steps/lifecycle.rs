//! Steps that move a running landscape through time and change: the shared clock, Entra's
//! signing-key rollover, secrets written with an expiry or disabled, role assignments per
//! principal, and a region that comes back (`features/token_lifetime.feature`,
//! `features/key_rotation.feature`, `features/secret_lifecycle.feature`,
//! `features/vault_rbac.feature`, `features/regional_failover.feature`).
//!
//! Everything goes through the landscape's control API (`/clock/shift`, `/entra/keys/...`,
//! `/network/...`) or the services' own endpoints, as an operator or an app would; nothing
//! sleeps, the clock is moved instead.

use cucumber::{given, then, when};
use serde_json::{Value, json};

use super::PpvWorld;
use super::landscape::{
    Live, control_get, control_post, live, record_answer, start_with, token_of,
};
use crate::acceptance::{fabric_named, landscape_to_start};

#[given(expr = "the {word} landscape is running with {string} granted {string} on {string}")]
async fn landscape_with_role(
    w: &mut PpvWorld,
    name: String,
    principal: String,
    role: String,
    target: String,
) {
    let file = landscape_to_start(&name);
    start_with(w, &file, fabric_named(None), |s| {
        let group = format!(
            "/subscriptions/{}/resourceGroups/{}",
            s.subscription, s.resource_group
        );
        // A resource group named alone is the scope of a control-plane role (Reader); any other
        // name is a vault of the landscape.
        let scope = if target == s.resource_group {
            group
        } else {
            format!("{group}/providers/Microsoft.KeyVault/vaults/{target}")
        };
        s.role_assignments
            .push(crate::scenario::model::RoleAssignment {
                principal,
                role,
                scope,
            });
    })
    .await;
}

#[when(expr = "{string} keeps that token as {string}")]
fn keep_token(w: &mut PpvWorld, who: String, alias: String) {
    let l = live(w);
    let token = token_of(l, &who);
    l.tokens.insert(alias, token);
}

/// One of Entra's key-rollover steps (`publish-next`, `switch`, `retire-previous`).
async fn entra_keys(l: &Live, action: &str) -> Value {
    let (status, body) = control_post(l, &format!("/entra/keys/{action}"), Value::Null).await;
    assert_eq!(status, 200, "POST /entra/keys/{action}: {body}");
    body
}

#[when("Entra publishes its next signing key")]
async fn publish_next(w: &mut PpvWorld) {
    entra_keys(live(w), "publish-next").await;
}

#[when("Entra switches to its next signing key")]
async fn switch_key(w: &mut PpvWorld) {
    entra_keys(live(w), "switch").await;
}

#[when("Entra retires its previous signing key")]
async fn retire_previous(w: &mut PpvWorld) {
    let body = entra_keys(live(w), "retire-previous").await;
    let retired = body["retired"].as_array().map(Vec::len).unwrap_or(0);
    assert!(retired > 0, "Entra retired no key: {body}");
}

/// The `kid` in a JWT's header.
fn kid(token: &str) -> String {
    use base64::Engine;
    let header = token.split('.').next().unwrap_or_default();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(header)
        .unwrap_or_default();
    let v: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    v["kid"].as_str().unwrap_or_default().to_string()
}

#[then(expr = "{string} and {string} are signed by different keys")]
fn signed_by_different_keys(w: &mut PpvWorld, a: String, b: String) {
    let l = live(w);
    let (ka, kb) = (kid(&token_of(l, &a)), kid(&token_of(l, &b)));
    assert!(!ka.is_empty(), "{a}'s token has no kid");
    assert_ne!(ka, kb, "both tokens are signed by key {ka}");
}

/// The last answer, for error messages.
fn last(l: &Live) -> (u16, Value) {
    l.last.clone().expect("a vault or an API answered")
}

#[then(expr = "the vault refuses the token with 401 saying {string}")]
fn vault_refuses_token(w: &mut PpvWorld, text: String) {
    let l = live(w);
    let (status, body) = last(l);
    let challenge = l.challenge.clone().unwrap_or_default();
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["error"]["code"], "Unauthorized", "{body}");
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains(&text),
        "message {message:?} lacks {text:?}"
    );
    // Every Key Vault 401 sends the client to the tenant's authority for a vault token.
    assert!(
        challenge.starts_with("Bearer authorization=\"")
            && challenge.contains("resource=\"https://vault.azure.net\""),
        "WWW-Authenticate: {challenge:?}"
    );
}

#[then(expr = "the search is refused with 401 and error {string} saying {string}")]
fn search_refuses_token(w: &mut PpvWorld, error: String, text: String) {
    let l = live(w);
    let (status, body) = last(l);
    let challenge = l.challenge.clone().unwrap_or_default();
    assert_eq!(status, 401, "{body}");
    assert!(
        challenge.starts_with(&format!("Bearer error=\"{error}\"")),
        "WWW-Authenticate: {challenge:?}"
    );
    assert!(
        challenge.contains(&text),
        "WWW-Authenticate {challenge:?} lacks {text:?}"
    );
}

fn secret_url(vault: &str, secret: &str) -> String {
    format!("https://{vault}.vault.azure.net/secrets/{secret}?api-version=2025-07-01")
}

/// The landscape's time now (the shared clock, with its shift).
async fn landscape_now(l: &Live) -> i64 {
    let clock = control_get(l, "/clock").await;
    clock["now_unix"]
        .as_i64()
        .unwrap_or_else(|| panic!("GET /clock: {clock}"))
}

/// `PUT` or `PATCH` of a secret as `who`, from `host`; the answer becomes the last one.
async fn write_secret(l: &mut Live, who: &str, method: reqwest::Method, target: Target<'_>) {
    let token = token_of(l, who);
    let r = l
        .client(target.host)
        .request(method, secret_url(target.vault, target.secret))
        .bearer_auth(token)
        .json(&target.body)
        .send();
    record_answer(l, r.await).await;
}

/// A secret of a vault, the host a request leaves from and the JSON it sends.
struct Target<'a> {
    vault: &'a str,
    secret: &'a str,
    host: &'a str,
    body: Value,
}

#[when(expr = "{string} sets the secret {string} of {string} to {string} from host {string}")]
async fn set_secret(
    w: &mut PpvWorld,
    who: String,
    secret: String,
    vault: String,
    value: String,
    host: String,
) {
    let body = json!({ "value": value });
    let t = Target {
        vault: &vault,
        secret: &secret,
        host: &host,
        body,
    };
    write_secret(live(w), &who, reqwest::Method::PUT, t).await;
}

#[when(
    expr = "{string} sets the secret {string} of {string} to {string} expiring in {int} minutes from host {string}"
)]
async fn set_expiring_secret(
    w: &mut PpvWorld,
    who: String,
    secret: String,
    vault: String,
    value: String,
    minutes: i64,
    host: String,
) {
    let l = live(w);
    let exp = landscape_now(l).await + minutes * 60;
    let body = json!({ "value": value, "attributes": { "exp": exp } });
    let t = Target {
        vault: &vault,
        secret: &secret,
        host: &host,
        body,
    };
    write_secret(l, &who, reqwest::Method::PUT, t).await;
    let (status, answer) = last(l);
    assert_eq!(status, 200, "setting {secret}: {answer}");
}

#[when(expr = "{string} disables the secret {string} of {string} from host {string}")]
async fn disable_secret(
    w: &mut PpvWorld,
    who: String,
    secret: String,
    vault: String,
    host: String,
) {
    let l = live(w);
    let body = json!({ "attributes": { "enabled": false } });
    let t = Target {
        vault: &vault,
        secret: &secret,
        host: &host,
        body,
    };
    write_secret(l, &who, reqwest::Method::PATCH, t).await;
    let (status, answer) = last(l);
    assert_eq!(status, 200, "disabling {secret}: {answer}");
}

#[then(expr = "the secret's value is {string}")]
fn secret_value_is(w: &mut PpvWorld, value: String) {
    let (status, body) = last(live(w));
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["value"], Value::String(value), "{body}");
}

#[then("the secret's expiry date has passed")]
async fn secret_expired(w: &mut PpvWorld) {
    let l = live(w);
    let (status, body) = last(l);
    assert_eq!(status, 200, "{body}");
    let exp = body["attributes"]["exp"]
        .as_i64()
        .unwrap_or_else(|| panic!("the secret has no exp: {body}"));
    let now = landscape_now(l).await;
    assert!(
        exp < now,
        "exp {exp} is not before the landscape's now {now}"
    );
}

#[then(expr = "the vault's message names the action {string}")]
fn vault_message_names_action(w: &mut PpvWorld, action: String) {
    let (_, body) = last(live(w));
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains(&format!("Action: '{action}'")),
        "message {message:?} does not name {action}"
    );
}

#[when(expr = "the outage of region {string} ends")]
async fn outage_ends(w: &mut PpvWorld, region: String) {
    let l = live(w);
    let path = format!("/network/regions/{region}/outage");
    let (status, body) = control_post(l, &path, json!({"down": false})).await;
    assert_eq!(status, 200, "POST {path}: {body}");
}

#[when(expr = "the environment {string} fails back to {string}")]
async fn fail_back(w: &mut PpvWorld, env: String, region: String) {
    let l = live(w);
    let path = format!("/network/environments/{env}/active-region");
    let (status, body) = control_post(l, &path, json!({ "region": region })).await;
    assert_eq!(status, 204, "POST {path}: {body}");
}

#[then(expr = "failing {string} back to {string} is refused with {string}")]
async fn fail_back_refused(w: &mut PpvWorld, env: String, region: String, code: String) {
    let l = live(w);
    let path = format!("/network/environments/{env}/active-region");
    let (status, body) = control_post(l, &path, json!({ "region": region })).await;
    assert_eq!(status, 400, "POST {path}: {body}");
    assert_eq!(body["error"]["code"], Value::String(code), "{body}");
}

#[then(expr = "the vault's message names the client address {string}")]
fn vault_message_names_client(w: &mut PpvWorld, address: String) {
    let (_, body) = last(live(w));
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains(&format!("Client address: {address}\r\n")),
        "message {message:?} does not name the client address {address}"
    );
}

#[then("the request does not reach the vault")]
fn vault_not_reached(w: &mut PpvWorld) {
    let (status, body) = last(live(w));
    // No HTTP status at all: the network dropped the connection before any vault answered.
    assert_eq!(status, 0, "the vault answered {status}: {body}");
}
