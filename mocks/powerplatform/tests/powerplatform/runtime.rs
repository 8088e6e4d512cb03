//! The Power Platform service against the real mock Entra, the real fake Key Vault and a
//! wiremock backend.

use std::time::Duration;

use crate::support::*;
use ppvnet_powerplatform::runtime::config::Limits;
use reqwest::Method;
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, ResponseTemplate};

async fn backend_ok(l: &Landscape) {
    Mock::given(method("GET"))
        .and(path("/cases/search"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"value": []}))
                .insert_header("x-backend", "cases"),
        )
        .mount(&l.backend)
        .await;
}

fn header(r: &wiremock::Request, name: &str) -> Option<String> {
    r.headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// The claims of a JWT, unverified (the backend's view in tests).
fn claims(token: &str) -> Value {
    use base64::Engine;
    let payload = token.split('.').nth(1).unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

async fn saved_connector(l: &Landscape) -> Value {
    let (status, list) = l
        .control(Method::GET, &format!("/environments/{ENV}/connectors"))
        .await;
    assert_eq!(status, 200, "{list}");
    list["value"][0].clone()
}

fn variable<'a>(saved: &'a Value, name: &str) -> &'a Value {
    saved["variables"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["schemaName"] == name)
        .unwrap_or_else(|| panic!("{name} in {saved}"))
}

#[tokio::test]
async fn secret_variables_are_read_as_dataverse_when_the_connector_is_saved() {
    let l = Landscape::start(Options::default()).await;
    let saved = saved_connector(&l).await;
    assert_eq!(saved["errors"], json!([]), "{saved}");
    let secret = variable(&saved, "cr_ClientSecret");
    assert_eq!(secret["status"], "Resolved");
    assert_eq!(secret["value"], "********", "Secret values are masked");
    assert_eq!(variable(&saved, "cr_ClientId")["value"], CONNECTOR_APP);
    let (_, envs) = l.control(Method::GET, "/environments").await;
    let env = &envs["value"][0];
    assert_eq!(env["id"], ENV_ID);
    let key = env["variables"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["schemaName"] == "cr_ApiKey")
        .unwrap();
    assert_eq!(key["value"], Value::Null);
    assert!(
        key["reference"]
            .as_str()
            .unwrap()
            .ends_with("/vaults/kv-granted/secrets/api-key")
    );
    assert_eq!(key["resolutions"][0]["status"], "Resolved");
}

#[tokio::test]
async fn without_the_role_the_vaults_403_text_is_kept_and_calls_name_the_variable() {
    let l = Landscape::start(Options {
        api_key_vault: ApiKeyVault::Denied,
        ..Options::default()
    })
    .await;
    let saved = saved_connector(&l).await;
    let key = variable(&saved, "cr_ApiKey");
    assert_eq!(key["status"], "Error");
    let error = &key["error"];
    assert_eq!(error["vault"], "kv-denied");
    assert_eq!(error["host"], HOST_A);
    let cause = error["cause"].as_str().unwrap();
    assert!(
        cause.starts_with("Key Vault answered 403 Forbidden: Caller is not authorized to perform action on resource."),
        "{cause}"
    );
    assert!(
        cause.contains(DATAVERSE_SP) || cause.contains("appid="),
        "{cause}"
    );
    assert_eq!(saved["errors"].as_array().unwrap().len(), 1, "{saved}");
    // The connection does not need the key; the call does.
    let (alice, id) = l.alice_app_connection().await;
    let r = l.call(&alice, &id, "/cases/search").await;
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.unwrap();
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("Environment variable 'cr_ApiKey' (Key Vault 'kv-denied', read from 'pp-contoso-dev-westeurope')"), "{message}");
    assert!(message.contains("Caller is not authorized"), "{message}");
    assert_eq!(body["status"], 400);
    assert!(l.backend.received_requests().await.unwrap().is_empty());
}

#[tokio::test]
async fn unreachable_vault_names_the_connection_failure() {
    let l = Landscape::start(Options::default()).await;
    l.outbound.set_active(ENV, HOST_DOWN);
    let (status, saved) = l
        .control(
            Method::POST,
            &format!("/environments/{ENV_ID}/connectors/{CONNECTOR}/resave"),
        )
        .await;
    assert_eq!(status, 200, "{saved}");
    let error = &variable(&saved, "cr_ClientSecret")["error"];
    assert_eq!(error["host"], HOST_DOWN);
    let cause = error["cause"].as_str().unwrap();
    assert!(cause.contains("connection refused"), "{cause}");
}

#[tokio::test]
async fn a_rotated_secret_reaches_calls_only_after_a_resave() {
    let l = Landscape::start(Options::default()).await;
    backend_ok(&l).await;
    let (alice, id) = l.alice_app_connection().await;
    let call = || l.invoke(Some(&alice), &id, "/cases/search?q=x").send();
    assert_eq!(call().await.unwrap().status(), 200);
    l.rotate_secret("api-key", "api-key-version-2").await;
    assert_eq!(call().await.unwrap().status(), 200);
    let (status, _) = l
        .control(
            Method::POST,
            &format!("/environments/{ENV}/connectors/{CONNECTOR}/resave"),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(call().await.unwrap().status(), 200);
    let keys: Vec<String> = l
        .backend
        .received_requests()
        .await
        .unwrap()
        .iter()
        .map(|r| header(r, "x-api-key").unwrap())
        .collect();
    assert_eq!(keys, [API_KEY_V1, API_KEY_V1, "api-key-version-2"]);
}

#[tokio::test]
async fn a_user_connection_is_created_through_consent_and_calls_carry_its_token() {
    let l = Landscape::start(Options::default()).await;
    backend_ok(&l).await;
    let alice = l.user_token(ALICE, ALICE_PASSWORD).await;
    let (_, pending) = l
        .create_connection(&alice, json!({"environment": ENV, "connector": CONNECTOR}))
        .await;
    let link = url::Url::parse(pending["consentLink"].as_str().unwrap()).unwrap();
    assert_eq!(link.path(), format!("/{TENANT}/oauth2/v2.0/authorize"));
    let q: std::collections::HashMap<String, String> = link.query_pairs().into_owned().collect();
    assert_eq!(q["client_id"], CONNECTOR_APP);
    assert_eq!(q["response_type"], "code");
    assert_eq!(
        q["redirect_uri"],
        format!("{}/redirect/{CONNECTOR}", l.base)
    );
    assert_eq!(q["code_challenge_method"], "S256");
    assert_eq!(q["scope"], format!("{CASES_URI}/Cases.Read offline_access"));
    assert!(q["state"].len() >= 32);

    let id = l.user_connection(&alice).await;
    let c = l.connection(&id).await;
    assert_eq!(c["status"], "Connected", "{c}");
    assert_eq!(c["owner"], ALICE_ID);
    let r = l
        .invoke(Some(&alice), &id, "/cases/search?q=fraud")
        .header(
            "x-ms-client-request-id",
            "7d1c0000-0000-4000-8000-00000000c0de",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-ppvnet-egress-host"], HOST_A);
    assert_eq!(
        r.headers()["x-ms-correlation-id"],
        "7d1c0000-0000-4000-8000-00000000c0de"
    );
    assert_eq!(r.headers()["x-backend"], "cases");
    assert_eq!(r.json::<Value>().await.unwrap(), json!({"value": []}));
    let seen = &l.backend.received_requests().await.unwrap()[0];
    assert_eq!(seen.url.query(), Some("q=fraud"));
    assert_eq!(
        header(seen, "x-ms-correlation-id").unwrap(),
        "7d1c0000-0000-4000-8000-00000000c0de"
    );
    assert_eq!(
        header(seen, "x-ms-client-request-id").unwrap(),
        "7d1c0000-0000-4000-8000-00000000c0de"
    );
    let bearer = header(seen, "authorization").unwrap();
    let token = claims(bearer.strip_prefix("Bearer ").unwrap());
    assert_eq!(token["aud"], CASES_API);
    assert_eq!(token["oid"], ALICE_ID);
    assert_eq!(token["scp"], "Cases.Read");
    assert!(
        header(seen, "x-ms-request-url").is_none(),
        "runtime headers stay in the runtime"
    );
}

#[tokio::test]
async fn the_consent_callback_records_entra_errors() {
    let l = Landscape::start(Options::default()).await;
    let alice = l.user_token(ALICE, ALICE_PASSWORD).await;
    let (_, pending) = l
        .create_connection(&alice, json!({"environment": ENV, "connector": CONNECTOR}))
        .await;
    let link = url::Url::parse(pending["consentLink"].as_str().unwrap()).unwrap();
    let state = link
        .query_pairs()
        .find(|(k, _)| k == "state")
        .unwrap()
        .1
        .into_owned();
    let r = l
        .http
        .get(format!("{}/redirect/{CONNECTOR}", l.base))
        .query(&[
            ("error", "access_denied"),
            (
                "error_description",
                "AADSTS65004: User declined to consent to access the app.",
            ),
            ("state", &state),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("AADSTS65004"));
    let c = l.connection(pending["id"].as_str().unwrap()).await;
    assert_eq!(c["status"], "Error");
    // A second use of the state is refused.
    let r = l
        .http
        .get(format!("{}/redirect?code=x&state={state}", l.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
}

#[tokio::test]
async fn a_resource_only_connector_uses_the_v1_endpoints() {
    let l = Landscape::start(Options {
        logic: Some(std::sync::Arc::new(FakeLogic {
            scopes: Vec::new(),
            redirect_url: None,
        })),
        ..Options::default()
    })
    .await;
    backend_ok(&l).await;
    let alice = l.user_token(ALICE, ALICE_PASSWORD).await;
    let (_, pending) = l
        .create_connection(&alice, json!({"environment": ENV, "connector": CONNECTOR}))
        .await;
    let link = url::Url::parse(pending["consentLink"].as_str().unwrap()).unwrap();
    assert_eq!(link.path(), format!("/{TENANT}/oauth2/authorize"));
    let q: std::collections::HashMap<String, String> = link.query_pairs().into_owned().collect();
    assert_eq!(q["resource"], CASES_URI);
    assert!(!q.contains_key("scope"));
    // App-only: `{resource}/.default` at the v2 endpoint.
    let id = l.app_connection(&alice).await;
    let r = l.call(&alice, &id, "/cases/search").await;
    assert_eq!(r.status(), 200);
    let seen = &l.backend.received_requests().await.unwrap()[0];
    let bearer = header(seen, "authorization").unwrap();
    let token = claims(bearer.strip_prefix("Bearer ").unwrap());
    assert_eq!(token["aud"], CASES_API);
    assert_eq!(token["roles"], json!(["Cases.Read.All"]));
}

#[tokio::test]
async fn an_unregistered_redirect_url_stops_at_entras_page() {
    let l = Landscape::start(Options {
        logic: Some(std::sync::Arc::new(FakeLogic {
            redirect_url: Some("https://global.consent.azure-apim.net/redirect".into()),
            ..FakeLogic::default()
        })),
        ..Options::default()
    })
    .await;
    let alice = l.user_token(ALICE, ALICE_PASSWORD).await;
    let (_, pending) = l
        .create_connection(&alice, json!({"environment": ENV, "connector": CONNECTOR}))
        .await;
    let link = url::Url::parse(pending["consentLink"].as_str().unwrap()).unwrap();
    let r = l.http.get(link).send().await.unwrap();
    let page = r.text().await.unwrap();
    assert!(page.contains("AADSTS50011"), "{page}");
    let c = l.connection(pending["id"].as_str().unwrap()).await;
    assert_eq!(c["status"], "Unauthenticated");
}

/// Moves the run clock so that the connection's access token is inside the refresh margin
/// while a user token issued after it is still valid.
async fn near_expiry(l: &Landscape, id: &str) {
    let c = l.connection(id).await;
    let expires = c["tokenExpiresAt"].as_i64().unwrap();
    l.clock.shift_secs(expires - l.clock.unix() - 120);
}

#[tokio::test]
async fn tokens_are_refreshed_on_expiry() {
    let l = Landscape::start(Options::default()).await;
    backend_ok(&l).await;
    let alice = l.user_token(ALICE, ALICE_PASSWORD).await;
    let id = l.user_connection(&alice).await;
    let call = |t: String| l.invoke(Some(&t), &id, "/cases/search").send();
    assert_eq!(call(alice.clone()).await.unwrap().status(), 200);
    let before = l.connection(&id).await["tokenExpiresAt"].as_i64().unwrap();
    near_expiry(&l, &id).await;
    // Entra's token lifetimes vary (60–90 min): the user signs in again at the shifted time.
    let alice = l.user_token(ALICE, ALICE_PASSWORD).await;
    assert_eq!(call(alice.clone()).await.unwrap().status(), 200);
    let after = l.connection(&id).await;
    assert_eq!(after["status"], "Connected");
    assert!(
        after["tokenExpiresAt"].as_i64().unwrap() > before,
        "{after}"
    );
    let seen = l.backend.received_requests().await.unwrap();
    let tokens: Vec<String> = seen
        .iter()
        .map(|r| header(r, "authorization").unwrap())
        .collect();
    assert_ne!(tokens[0], tokens[1], "a new access token after the refresh");
}

/// Calls after the connection's token needs a refresh; `alice` was issued after the shift.
async fn broken_after(l: &Landscape, id: &str, alice: &str, expected: &[&str]) {
    let r = l
        .invoke(Some(alice), id, "/cases/search")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.unwrap();
    let message = body["message"].as_str().unwrap();
    assert!(
        message.starts_with("Error from token exchange: AADSTS"),
        "{body}"
    );
    assert_eq!(
        body["source"],
        format!("{}/tokens/{CONNECTOR}/{id}/exchange", l.base)
    );
    let c = l.connection(id).await;
    assert_eq!(c["status"], "Error", "{c}");
    for text in expected {
        assert!(message.contains(text), "{message}");
        assert!(c["error"].as_str().unwrap().contains(text), "{c}");
    }
    assert!(l.backend.received_requests().await.unwrap().is_empty());
}

#[tokio::test]
async fn revoked_sessions_break_the_connection_with_the_reference_text() {
    let l = Landscape::start(Options::default()).await;
    backend_ok(&l).await;
    let alice = l.user_token(ALICE, ALICE_PASSWORD).await;
    let id = l.user_connection(&alice).await;
    near_expiry(&l, &id).await;
    l.entra.revoke_sign_in_sessions(ALICE).unwrap();
    let alice = l.user_token(ALICE, ALICE_PASSWORD).await;
    broken_after(
        &l,
        &id,
        &alice,
        &[
            "AADSTS50173",
            "The provided grant has expired due to it being revoked",
        ],
    )
    .await;
}

#[tokio::test]
async fn a_disabled_user_breaks_the_connection() {
    let l = Landscape::start(Options::default()).await;
    backend_ok(&l).await;
    let alice = l.user_token(ALICE, ALICE_PASSWORD).await;
    let id = l.user_connection(&alice).await;
    near_expiry(&l, &id).await;
    let alice = l.user_token(ALICE, ALICE_PASSWORD).await;
    l.entra.set_user_enabled(ALICE, false).unwrap();
    broken_after(
        &l,
        &id,
        &alice,
        &["AADSTS50057", "The user account is disabled."],
    )
    .await;
}

#[tokio::test]
async fn a_wrong_client_secret_is_recorded_on_a_service_principal_connection() {
    let l = Landscape::start(Options::default()).await;
    let alice = l.user_token(ALICE, ALICE_PASSWORD).await;
    let (status, c) = l
        .create_connection(
            &alice,
            json!({"environment": ENV, "connector": CONNECTOR, "servicePrincipal": true,
                   "clientId": CONNECTOR_APP, "clientSecret": "Bad8Q~not-the-secret"}),
        )
        .await;
    assert_eq!(status, 201);
    assert_eq!(c["status"], "Error");
    assert!(
        c["error"].as_str().unwrap().starts_with("AADSTS7000215"),
        "{c}"
    );
}

#[tokio::test]
async fn another_user_gets_the_missing_connection_acl_error() {
    let l = Landscape::start(Options::default()).await;
    backend_ok(&l).await;
    let (alice, id) = l.alice_app_connection().await;
    let bob = l.user_token(BOB, BOB_PASSWORD).await;
    let r = l.call(&bob, &id, "/cases/search").await;
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.unwrap();
    assert_eq!(
        body,
        json!({"status": 400,
               "source": format!("{}/tokens/{CONNECTOR}/{id}/exchange", l.base),
               "message": "Error from token exchange. Permission denied due to missing connection ACL."})
    );
    let r = l.call(&alice, &id, "/cases/search").await;
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn invoke_requires_a_valid_api_hub_token() {
    let l = Landscape::start(Options::default()).await;
    backend_ok(&l).await;
    let (_, id) = l.alice_app_connection().await;
    let r = l.invoke(None, &id, "/cases/search").send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(r.headers()["www-authenticate"], "Bearer");
    let other = l
        .ropc(ALICE, ALICE_PASSWORD, &format!("{CASES_URI}/Cases.Read"))
        .await;
    let r = l.call(&other, &id, "/cases/search").await;
    assert_eq!(r.status(), 401);
    let challenge = r.headers()["www-authenticate"].to_str().unwrap().to_owned();
    assert!(
        challenge.contains(&format!("The audience '{CASES_API}' is invalid")),
        "{challenge}"
    );
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["status"], 401);
    let r = l
        .invoke(Some("not.a.jwt"), &id, "/cases/search")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert!(l.backend.received_requests().await.unwrap().is_empty());
}

#[tokio::test]
async fn calls_above_the_per_minute_limit_get_429_with_retry_after() {
    let l = Landscape::start(Options {
        limits: Limits {
            calls_per_minute: 3,
            max_request_bytes: 64,
            ..Limits::default()
        },
        ..Options::default()
    })
    .await;
    backend_ok(&l).await;
    let (alice, id) = l.alice_app_connection().await;
    for _ in 0..3 {
        let r = l.call(&alice, &id, "/cases/search").await;
        assert_eq!(r.status(), 200);
    }
    let r = l.call(&alice, &id, "/cases/search").await;
    assert_eq!(r.status(), 429);
    let wait: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&wait), "{wait}");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["status"], 429);
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .starts_with("Rate limit is exceeded.")
    );
    l.clock.shift_secs(61);
    let r = l.call(&alice, &id, "/cases/search").await;
    assert_eq!(r.status(), 200);
    // The body cap.
    let r = l
        .invoke(Some(&alice), &id, "/cases/search")
        .body(vec![b'x'; 65])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    assert_eq!(l.backend.received_requests().await.unwrap().len(), 4);
}

#[tokio::test]
async fn a_slow_backend_gives_the_gateway_timeout_shape() {
    let l = Landscape::start(Options {
        limits: Limits {
            call_timeout: Duration::from_millis(300),
            ..Limits::default()
        },
        ..Options::default()
    })
    .await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(5)))
        .mount(&l.backend)
        .await;
    let (alice, id) = l.alice_app_connection().await;
    let r = l
        .invoke(Some(&alice), &id, "/cases/search")
        .header(
            "x-ms-client-request-id",
            "11112222-3333-4444-5555-666677778888",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 504);
    assert_eq!(r.headers()["x-failure-policy"], "applied");
    let body: Value = r.json().await.unwrap();
    let source = l.base.trim_start_matches("http://");
    assert_eq!(
        body,
        json!({"error": {"code": 504, "source": source,
            "clientRequestId": "11112222-3333-4444-5555-666677778888",
            "message": "BadGateway",
            "innerError": {"error": {"code": "ResponseTimeout",
                "message": "The server did not receive a timely response from the upstream server. Request tracking id '11112222-3333-4444-5555-666677778888'."}}}})
    );
}

#[tokio::test]
async fn an_unreachable_backend_gives_502_naming_host_and_cause() {
    let l = Landscape::start(Options::default()).await;
    let (alice, id) = l.alice_app_connection().await;
    l.outbound.set_active(ENV, HOST_DOWN);
    let r = l.call(&alice, &id, "/cases/search").await;
    assert_eq!(r.status(), 502);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], 502);
    let inner = &body["error"]["innerError"]["error"];
    assert_eq!(inner["code"], "ConnectionFailure");
    let message = inner["message"].as_str().unwrap();
    assert!(
        message.starts_with(&format!(
            "The backend '{BACKEND_HOST}' could not be reached from '{HOST_DOWN}': connection refused"
        )),
        "{message}"
    );
}

#[tokio::test]
async fn a_failover_during_the_call_is_retried_once_from_the_new_host() {
    let l = Landscape::start(Options::default()).await;
    backend_ok(&l).await;
    let (alice, id) = l.alice_app_connection().await;
    l.outbound.set_active(ENV, HOST_DOWN);
    l.outbound.fail_over_when_used(HOST_DOWN, HOST_B);
    let r = l.call(&alice, &id, "/cases/search").await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-ppvnet-egress-host"], HOST_B);
    assert_eq!(l.backend.received_requests().await.unwrap().len(), 1);
    assert_eq!(l.connection(&id).await["status"], "Connected");
}

#[tokio::test]
async fn definition_errors_and_unauthenticated_policy() {
    let l = Landscape::start(Options::default()).await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(401))
        .mount(&l.backend)
        .await;
    let (alice, id) = l.alice_app_connection().await;
    let r = l.invoke(Some(&alice), &id, "/nope").send().await.unwrap();
    assert_eq!(r.status(), 404);
    let body: Value = r.json().await.unwrap();
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("\r\nclientRequestId: "),
        "{body}"
    );
    let r = l.call(&alice, &id, "/cases/search").await;
    assert_eq!(r.status(), 401, "the backend's answer is passed through");
    let c = l.connection(&id).await;
    assert_eq!(c["status"], "Error", "{c}");
    let (status, _) = l
        .control(Method::DELETE, &format!("/connections/{id}"))
        .await;
    assert_eq!(status, 204);
    let (status, _) = l.control(Method::GET, &format!("/connections/{id}")).await;
    assert_eq!(status, 404);
}

/// The whole path with the connector branch's real import and request building.
#[tokio::test]
async fn end_to_end_with_the_real_connector_logic() {
    let l = Landscape::start(Options {
        logic: Some(std::sync::Arc::new(
            ppvnet_powerplatform::runtime::StandardLogic,
        )),
        ..Options::default()
    })
    .await;
    backend_ok(&l).await;
    let saved = saved_connector(&l).await;
    assert_eq!(saved["errors"], json!([]), "{saved}");
    let alice = l.user_token(ALICE, ALICE_PASSWORD).await;
    let id = l.user_connection(&alice).await;
    let r = l.call(&alice, &id, "/cases/search?q=fraud").await;
    assert_eq!(r.status(), 200);
    let seen = &l.backend.received_requests().await.unwrap()[0];
    assert_eq!(seen.url.path(), "/cases/search");
    assert_eq!(seen.url.query(), Some("q=fraud"));
    assert_eq!(header(seen, "x-api-key").as_deref(), Some(API_KEY_V1));
    assert!(
        header(seen, "authorization")
            .unwrap()
            .starts_with("Bearer ")
    );
}
