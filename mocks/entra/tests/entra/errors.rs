//! Each AADSTS case through HTTP: status, `error`, `error_codes` and the description's start
//! (texts: `src/error.rs`). PKCE, expired/redeemed code and refresh cases are in `grants.rs`.

use serde_json::Value;

use crate::common::*;

fn cc(scope: &str) -> Vec<(&'static str, String)> {
    vec![
        ("grant_type", "client_credentials".into()),
        ("client_id", CONNECTOR.into()),
        ("client_secret", CONNECTOR_SECRET.into()),
        ("scope", scope.into()),
    ]
}

async fn post(m: &Running, form: &[(&str, String)]) -> (u16, Value) {
    let pairs: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    m.token(&pairs).await
}

#[tokio::test]
async fn aadsts90002_unknown_tenant() {
    let m = start().await;
    let url = format!("{}/fabrikam.onmicrosoft.com/oauth2/v2.0/token", m.base);
    let r = m
        .token_at(
            &url,
            &[
                ("grant_type", "client_credentials"),
                ("client_id", CONNECTOR),
            ],
        )
        .await;
    assert_aadsts(
        &r,
        400,
        "invalid_request",
        90002,
        "Tenant 'fabrikam.onmicrosoft.com' not found.",
    );
}

#[tokio::test]
async fn aadsts700016_unknown_application() {
    let m = start().await;
    let mut form = cc(&format!("{API_URI}/.default"));
    form[1].1 = "99999999-9999-4999-8999-999999999999".into();
    let r = post(&m, &form).await;
    assert_aadsts(
        &r,
        400,
        "unauthorized_client",
        700016,
        "Application with identifier '99999999-9999-4999-8999-999999999999' was not found in the directory",
    );
}

#[tokio::test]
async fn aadsts7000215_wrong_secret_and_7000222_expired_secret() {
    let m = start().await;
    let mut form = cc(&format!("{API_URI}/.default"));
    form[2].1 = "not-the-secret".into();
    let r = post(&m, &form).await;
    assert_aadsts(
        &r,
        401,
        "invalid_client",
        7000215,
        "Invalid client secret provided.",
    );
    form[2].1 = EXPIRED_SECRET.into();
    let r = post(&m, &form).await;
    assert_aadsts(
        &r,
        401,
        "invalid_client",
        7000222,
        &format!("The provided client secret keys for app '{CONNECTOR}' are expired."),
    );
}

#[tokio::test]
async fn aadsts7000218_missing_credential() {
    let m = start().await;
    let mut form = cc(&format!("{API_URI}/.default"));
    form.remove(2);
    let r = post(&m, &form).await;
    assert_aadsts(
        &r,
        401,
        "invalid_client",
        7000218,
        "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
    );
}

#[tokio::test]
async fn aadsts70011_bad_scope_and_28000_two_resources() {
    let m = start().await;
    let r = post(&m, &cc(&format!("{API_URI}/Cases.Read"))).await;
    assert_aadsts(
        &r,
        400,
        "invalid_scope",
        70011,
        "The provided value for the input parameter 'scope' isn't valid.",
    );
    let r = m
        .ropc(ALICE, ALICE_PASSWORD, &format!("{API_URI}/No.Such.Scope"))
        .await;
    assert_aadsts(
        &r,
        400,
        "invalid_scope",
        70011,
        "The provided value for the input parameter 'scope' isn't valid.",
    );
    let r = m
        .ropc(
            ALICE,
            ALICE_PASSWORD,
            &format!("{API_URI}/Cases.Read {CONNECTOR_URI}/access_as_user"),
        )
        .await;
    assert_aadsts(
        &r,
        400,
        "invalid_scope",
        28000,
        "Provided value for the input parameter scope is not valid because it contains more than one resource.",
    );
}

#[tokio::test]
async fn aadsts500011_unknown_resource() {
    let m = start().await;
    let r = post(&m, &cc("api://nobody-home/.default")).await;
    assert_aadsts(
        &r,
        400,
        "invalid_resource",
        500011,
        "The resource principal named api://nobody-home was not found in the tenant named Contoso.",
    );
}

#[tokio::test]
async fn aadsts65001_no_consent() {
    let m = start().await;
    let r = m
        .token(&[
            ("grant_type", "password"),
            ("client_id", UNCONSENTED),
            ("client_secret", UNCONSENTED_SECRET),
            ("username", ALICE),
            ("password", ALICE_PASSWORD),
            ("scope", &format!("{API_URI}/Cases.Read")),
        ])
        .await;
    assert_aadsts(
        &r,
        400,
        "invalid_grant",
        65001,
        &format!(
            "The user or administrator has not consented to use the application with ID '{UNCONSENTED}' named 'Unconsented Client'."
        ),
    );
}

#[tokio::test]
async fn aadsts50126_wrong_password_50034_unknown_user_50057_disabled_user() {
    let m = start().await;
    let scope = format!("{API_URI}/Cases.Read");
    let r = m.ropc(ALICE, "wrong", &scope).await;
    assert_aadsts(
        &r,
        400,
        "invalid_grant",
        50126,
        "Error validating credentials due to invalid username or password.",
    );
    let r = m.ropc("carol@contoso.onmicrosoft.com", "x", &scope).await;
    assert_aadsts(
        &r,
        400,
        "invalid_grant",
        50034,
        "The user account carol@contoso.onmicrosoft.com does not exist",
    );
    m.entra.set_user_enabled(BOB, false).unwrap();
    let r = m.ropc(BOB, BOB_PASSWORD, &scope).await;
    assert_aadsts(
        &r,
        400,
        "invalid_grant",
        50057,
        "The user account is disabled.",
    );
    m.entra.set_user_enabled(BOB_ID, true).unwrap();
    assert_eq!(m.ropc(BOB, BOB_PASSWORD, &scope).await.0, 200);
}

#[tokio::test]
async fn aadsts50011_redirect_uri_mismatch_on_authorize_and_at_redemption() {
    let m = start().await;
    let page = m
        .http
        .get(format!("{}/{TENANT}/oauth2/v2.0/authorize", m.base))
        .query(&[
            ("client_id", SPA),
            ("response_type", "code"),
            ("redirect_uri", "https://evil.example/steal"),
            ("scope", "openid"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(
        page.status(),
        400,
        "an untrusted redirect URI gets an error page, not a redirect"
    );
    let html = page.text().await.unwrap();
    assert!(html.contains("AADSTS50011: The redirect URI &#39;https://evil.example/steal&#39; specified in the request does not match"), "{html}");

    let code = grants_sign_in(&m).await;
    let r = m
        .token(&[
            ("grant_type", "authorization_code"),
            ("client_id", SPA),
            ("code", &code),
            ("redirect_uri", NATIVE_REDIRECT),
            ("scope", &format!("{API_URI}/Cases.Read")),
        ])
        .await;
    assert_aadsts(
        &r,
        400,
        "invalid_request",
        50011,
        "The redirect URI 'http://localhost' specified in the request does not match",
    );
}

async fn grants_sign_in(m: &Running) -> String {
    let url = format!("{}/{TENANT}/oauth2/v2.0/authorize", m.base);
    let form = [
        ("client_id", SPA),
        ("response_type", "code"),
        ("redirect_uri", SPA_REDIRECT),
        ("scope", "api://case-search/Cases.Read"),
        ("login", ALICE),
        ("passwd", ALICE_PASSWORD),
    ];
    let r = m.http.post(&url).form(&form).send().await.unwrap();
    let location = url::Url::parse(r.headers()["location"].to_str().unwrap()).unwrap();
    location
        .query_pairs()
        .find(|(k, _)| k == "code")
        .unwrap()
        .1
        .into_owned()
}

async fn obo(m: &Running, assertion: &str) -> (u16, Value) {
    m.token(&[
        ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
        ("client_id", CONNECTOR),
        ("client_secret", CONNECTOR_SECRET),
        ("assertion", assertion),
        ("scope", &format!("{API_URI}/Cases.Read")),
        ("requested_token_use", "on_behalf_of"),
    ])
    .await
}

#[tokio::test]
async fn aadsts50013_obo_refuses_app_tokens_id_tokens_forged_and_expired_assertions() {
    let m = start().await;
    // App-only token for the connector (aud would even match if it were a user token).
    let (_, app) = post(&m, &cc(&format!("{API_URI}/.default"))).await;
    let r = obo(&m, app["access_token"].as_str().unwrap()).await;
    assert_aadsts(
        &r,
        400,
        "invalid_grant",
        50013,
        "Assertion failed signature validation.",
    );

    // An ID token whose aud is the connector.
    let (_, user) = m
        .token(&[
            ("grant_type", "password"),
            ("client_id", CONNECTOR),
            ("client_secret", CONNECTOR_SECRET),
            ("username", ALICE),
            ("password", ALICE_PASSWORD),
            ("scope", &format!("{API_URI}/Cases.Read openid")),
        ])
        .await;
    let r = obo(&m, user["id_token"].as_str().unwrap()).await;
    assert_aadsts(
        &r,
        400,
        "invalid_grant",
        50013,
        "Assertion failed signature validation.",
    );

    // A user token for the connector with its payload swapped: signature fails.
    let (_, good) = m
        .ropc(
            ALICE,
            ALICE_PASSWORD,
            &format!("{CONNECTOR_URI}/access_as_user"),
        )
        .await;
    let good = good["access_token"].as_str().unwrap().to_string();
    let (_, bob) = m
        .ropc(
            BOB,
            BOB_PASSWORD,
            &format!("{CONNECTOR_URI}/access_as_user"),
        )
        .await;
    let bob = bob["access_token"].as_str().unwrap().to_string();
    let g: Vec<&str> = good.split('.').collect();
    let forged = format!("{}.{}.{}", g[0], bob.split('.').nth(1).unwrap(), g[2]);
    let r = obo(&m, &forged).await;
    assert_aadsts(
        &r,
        400,
        "invalid_grant",
        50013,
        "Assertion failed signature validation.",
    );
    let r = obo(&m, "not-a-jwt").await;
    assert_aadsts(
        &r,
        400,
        "invalid_grant",
        50013,
        "Assertion failed signature validation.",
    );

    // The genuine token works, and stops working once expired.
    assert_eq!(obo(&m, &good).await.0, 200);
    m.entra.clock().shift_secs(2 * 3600);
    let r = obo(&m, &good).await;
    assert_aadsts(
        &r,
        400,
        "invalid_grant",
        50013,
        "Assertion is not within its valid time range.",
    );
}

#[tokio::test]
async fn aadsts500131_obo_assertion_for_another_audience() {
    let m = start().await;
    // A user token for the API (not for the connector) presented by the connector.
    let (_, user) = m
        .ropc(ALICE, ALICE_PASSWORD, &format!("{API_URI}/Cases.Read"))
        .await;
    let r = obo(&m, user["access_token"].as_str().unwrap()).await;
    assert_aadsts(
        &r,
        400,
        "invalid_grant",
        500131,
        &format!(
            "Assertion audience does not match the Client app presenting the assertion. The audience in the assertion was '{API}'"
        ),
    );
}

#[tokio::test]
async fn aadsts900144_missing_parameters_and_json_bodies() {
    let m = start().await;
    let r = m.token(&[("client_id", CONNECTOR)]).await;
    assert_aadsts(
        &r,
        400,
        "invalid_request",
        900144,
        "The request body must contain the following parameter: 'grant_type'.",
    );
    let r = m
        .token(&[("grant_type", "client_credentials"), ("client_secret", "x")])
        .await;
    assert_aadsts(
        &r,
        400,
        "invalid_request",
        900144,
        "The request body must contain the following parameter: 'client_id'.",
    );
    let r = m
        .token(&[
            ("grant_type", "client_credentials"),
            ("client_id", CONNECTOR),
            ("client_secret", CONNECTOR_SECRET),
        ])
        .await;
    assert_aadsts(
        &r,
        400,
        "invalid_request",
        900144,
        "The request body must contain the following parameter: 'scope'.",
    );
    // Entra reads only form bodies: JSON reads as no parameters at all.
    let resp = m
        .http
        .post(m.token_url())
        .json(&serde_json::json!({"grant_type": "client_credentials", "client_id": CONNECTOR}))
        .send()
        .await
        .unwrap();
    let r = (resp.status().as_u16(), resp.json::<Value>().await.unwrap());
    assert_aadsts(
        &r,
        400,
        "invalid_request",
        900144,
        "The request body must contain the following parameter: 'grant_type'.",
    );
}

#[tokio::test]
async fn aadsts70003_unsupported_grant_type_and_9001023_client_credentials_on_common() {
    let m = start().await;
    let r = m
        .token(&[
            ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
            ("client_id", SPA),
        ])
        .await;
    assert_aadsts(
        &r,
        400,
        "unsupported_grant_type",
        70003,
        "The app requested an unsupported grant type 'urn:ietf:params:oauth:grant-type:device_code'.",
    );
    let url = format!("{}/common/oauth2/v2.0/token", m.base);
    let pairs: Vec<(&str, String)> = cc(&format!("{API_URI}/.default"));
    let pairs: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let r = m.token_at(&url, &pairs).await;
    assert_aadsts(
        &r,
        400,
        "invalid_request",
        9001023,
        "The grant type is not supported over the /common or /consumers endpoints.",
    );
}

#[tokio::test]
async fn errors_echo_the_client_request_id_as_correlation_id() {
    let m = start().await;
    let cid = "0b0e5a3c-6a7d-4c53-9d1f-2f5f0d8e6a11";
    let resp = m
        .http
        .post(m.token_url())
        .header("client-request-id", cid)
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["correlation_id"], cid);
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains(&format!("Correlation ID: {cid}"))
    );
}

#[tokio::test]
async fn control_over_http_adds_expires_and_removes_secrets() {
    let m = start().await;
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let control = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(ppvnet_common::serve(
        vec![ppvnet_common::Endpoint::public(listener)],
        ppvnet_entra::control_router(m.entra.clone()),
        None,
        async move {
            let _ = rx.await;
        },
    ));
    let created: Value = m
        .http
        .post(format!("{control}/applications/{CONNECTOR}/secrets"))
        .json(&serde_json::json!({"displayName": "rotated"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let secret = created["secretText"].as_str().unwrap().to_string();
    let key_id = created["keyId"].as_str().unwrap().to_string();
    assert_eq!(created["hint"], &secret[..3]);
    let mut form = cc(&format!("{API_URI}/.default"));
    form[2].1 = secret;
    assert_eq!(post(&m, &form).await.0, 200);

    let r = m
        .http
        .post(format!(
            "{control}/applications/{CONNECTOR}/secrets/{key_id}/expire"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_aadsts(
        &post(&m, &form).await,
        401,
        "invalid_client",
        7000222,
        "The provided client secret keys",
    );

    let r = m
        .http
        .delete(format!(
            "{control}/applications/{CONNECTOR}/secrets/{key_id}"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_aadsts(
        &post(&m, &form).await,
        401,
        "invalid_client",
        7000215,
        "Invalid client secret provided.",
    );

    let r = m
        .http
        .post(format!(
            "{control}/users/nobody@contoso.onmicrosoft.com/disable"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let r = m
        .http
        .post(format!("{control}/users/{BOB}/disable"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(
        m.ropc(BOB, BOB_PASSWORD, &format!("{API_URI}/Cases.Read"))
            .await
            .0,
        400
    );
    let _ = tx.send(());
}

#[tokio::test]
async fn aadsts9000411_a_duplicated_token_parameter_is_refused_whichever_copy_is_valid() {
    let m = start().await;
    let valid = cc(&format!("{API_URI}/.default"));
    for name in ["client_secret", "grant_type", "client_id", "scope"] {
        // The valid copy first and garbage second, then the other way round: neither may win.
        for garbage_first in [false, true] {
            let mut form = valid.clone();
            let position = form.iter().position(|(k, _)| *k == name).unwrap();
            let copy = (form[position].0, "garbage".to_owned());
            form.insert(
                if garbage_first {
                    position
                } else {
                    position + 1
                },
                copy,
            );
            let r = post(&m, &form).await;
            assert_aadsts(
                &r,
                400,
                "invalid_request",
                9000411,
                &format!(
                    "The request is not properly formatted. The parameter '{name}' is duplicated."
                ),
            );
        }
    }
    // Two identical copies are refused as well.
    let mut form = valid.clone();
    form.push(valid[3].clone());
    let r = post(&m, &form).await;
    assert_aadsts(
        &r,
        400,
        "invalid_request",
        9000411,
        "The request is not properly formatted. The parameter 'scope' is duplicated.",
    );
    // Authorization-code parameters, before the code is even looked up.
    for name in ["code", "redirect_uri"] {
        let form = [
            ("grant_type", "authorization_code".to_owned()),
            ("client_id", CONNECTOR.to_owned()),
            ("client_secret", CONNECTOR_SECRET.to_owned()),
            ("code", "c1".to_owned()),
            ("redirect_uri", CONNECTOR_REDIRECT.to_owned()),
            (name, "second".to_owned()),
        ];
        let r = post(&m, &form).await;
        assert_aadsts(
            &r,
            400,
            "invalid_request",
            9000411,
            &format!(
                "The request is not properly formatted. The parameter '{name}' is duplicated."
            ),
        );
    }
}

#[tokio::test]
async fn aadsts9000411_a_duplicated_authorize_query_parameter_is_refused() {
    let m = start().await;
    let url = format!(
        "{}/{TENANT}/oauth2/v2.0/authorize?client_id={CONNECTOR}&response_type=code&redirect_uri={}&scope=openid&login_hint={ALICE}&login_hint={BOB}",
        m.base, CONNECTOR_REDIRECT
    );
    let page = m.http.get(url).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("data-code=\"9000411\""), "{page}");
    // The page HTML-escapes the quotes.
    assert!(
        page.contains("AADSTS9000411: The request is not properly formatted. The parameter &#39;login_hint&#39; is duplicated."),
        "{page}"
    );
}

#[tokio::test]
async fn aadsts900561_other_methods_on_the_token_endpoints_get_the_envelope() {
    let m = start().await;
    for path in ["oauth2/v2.0/token", "oauth2/token"] {
        for method in [reqwest::Method::GET, reqwest::Method::PUT] {
            let response = m
                .http
                .request(method.clone(), format!("{}/{TENANT}/{path}", m.base))
                .send()
                .await
                .unwrap();
            let status = response.status().as_u16();
            assert_eq!(
                response.headers()["content-type"],
                "application/json; charset=utf-8"
            );
            let body: Value = response.json().await.unwrap();
            assert_aadsts(
                &(status, body),
                400,
                "invalid_request",
                900561,
                &format!("The endpoint only accepts POST requests. Received a {method} request."),
            );
        }
    }
}

#[tokio::test]
async fn an_oversized_token_request_body_gets_the_envelope() {
    let m = start().await;
    let mut form = cc(&format!("{API_URI}/.default"));
    form.push(("client_assertion", "A".repeat(70 * 1024)));
    let r = post(&m, &form).await;
    assert_aadsts(
        &r,
        400,
        "invalid_request",
        90014,
        "The request is not valid: the request body is larger than 65536 bytes.",
    );
}
