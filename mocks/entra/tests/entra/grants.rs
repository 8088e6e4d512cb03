//! Every grant through HTTP, with the issued tokens validated against the published JWKS.

use serde_json::{Value, json};

use crate::common::*;

#[tokio::test]
async fn client_credentials_with_secret_gives_a_v2_app_token_with_consented_roles() {
    let m = start().await;
    let (status, reply) = m
        .token(&[
            ("grant_type", "client_credentials"),
            ("client_id", CONNECTOR),
            ("client_secret", CONNECTOR_SECRET),
            ("scope", &format!("{API_URI}/.default")),
            ("client_info", "1"),
        ])
        .await;
    assert_eq!(status, 200, "{reply}");
    // Member set of the recorded client-credentials reply.
    let members: Vec<&str> = reply
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        members,
        ["access_token", "expires_in", "ext_expires_in", "token_type"]
    );
    assert_eq!(reply["token_type"], "Bearer");
    assert_eq!(reply["expires_in"], 3599);
    let c = validate(&m, reply["access_token"].as_str().unwrap(), API, &v2_iss()).await;
    assert_eq!(c["ver"], "2.0");
    assert_eq!(c["azp"], CONNECTOR);
    assert_eq!(c["azpacr"], "1");
    assert_eq!(c["tid"], TENANT);
    assert_eq!(c["roles"], json!(["Cases.Search.All"]));
    assert_eq!(c["oid"], c["sub"]);
    assert!(c.get("scp").is_none());
    assert_eq!(
        c["iat"].as_i64().unwrap() + 300 + 3599,
        c["exp"].as_i64().unwrap()
    );
    let header = jsonwebtoken::decode_header(reply["access_token"].as_str().unwrap()).unwrap();
    assert!(header.x5t.is_none(), "v2 headers carry only kid");
}

#[tokio::test]
async fn client_credentials_with_http_basic_and_a_v1_resource() {
    let m = start().await;
    let r = m
        .http
        .post(m.token_url())
        .header("authorization", basic(CONNECTOR, CONNECTOR_SECRET))
        .form(&[
            ("grant_type", "client_credentials"),
            ("scope", "https://vault.azure.net/.default"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let reply: Value = r.json().await.unwrap();
    let token = reply["access_token"].as_str().unwrap();
    let c = validate(&m, token, "https://vault.azure.net", &v1_iss()).await;
    assert_eq!(c["ver"], "1.0");
    assert_eq!(c["appid"], CONNECTOR);
    assert_eq!(c["appidacr"], "1");
    assert_eq!(c["idp"], v1_iss());
    let header = jsonwebtoken::decode_header(token).unwrap();
    assert_eq!(header.x5t, header.kid, "v1 headers carry x5t = kid");
}

#[tokio::test]
async fn v1_endpoint_takes_resource_and_answers_numbers_as_strings() {
    let m = start().await;
    let (status, reply) = m
        .token_at(
            &format!("{}/{TENANT}/oauth2/token", m.base),
            &[
                ("grant_type", "client_credentials"),
                ("client_id", CONNECTOR),
                ("client_secret", CONNECTOR_SECRET),
                ("resource", LEGACY_URI),
            ],
        )
        .await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["expires_in"], "3599");
    assert_eq!(reply["resource"], LEGACY_URI);
    assert!(reply["expires_on"].as_str().unwrap().parse::<i64>().is_ok());
    assert!(reply["not_before"].as_str().unwrap().parse::<i64>().is_ok());
    validate(
        &m,
        reply["access_token"].as_str().unwrap(),
        LEGACY_URI,
        &v1_iss(),
    )
    .await;
}

#[tokio::test]
async fn client_credentials_with_a_certificate_assertion() {
    let m = start().await;
    let assertion = m.cert.assertion(CONNECTOR, &m.token_url(), 600);
    let (status, reply) = m
        .token(&[
            ("grant_type", "client_credentials"),
            ("client_id", CONNECTOR),
            (
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            ),
            ("client_assertion", &assertion),
            ("scope", &format!("{API}/.default")),
        ])
        .await;
    assert_eq!(status, 200, "{reply}");
    let c = validate(&m, reply["access_token"].as_str().unwrap(), API, &v2_iss()).await;
    assert_eq!(c["azpacr"], "2");

    // The real host name as audience is accepted too (clients built for production).
    let real_aud = format!("https://login.microsoftonline.com/{TENANT}/oauth2/v2.0/token");
    let assertion = m.cert.assertion(CONNECTOR, &real_aud, 600);
    let (status, _) = m
        .token(&[
            ("grant_type", "client_credentials"),
            ("client_id", CONNECTOR),
            (
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            ),
            ("client_assertion", &assertion),
            ("scope", &format!("{API}/.default")),
        ])
        .await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn client_assertion_refusals() {
    let m = start().await;
    let send = |assertion: String| {
        let m = &m;
        async move {
            m.token(&[
                ("grant_type", "client_credentials"),
                ("client_id", CONNECTOR),
                (
                    "client_assertion_type",
                    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                ),
                ("client_assertion", &assertion),
                ("scope", &format!("{API}/.default")),
            ])
            .await
        }
    };
    // Wrong audience.
    let r = send(m.cert.assertion(
        CONNECTOR,
        "https://login.microsoftonline.com/other/oauth2/v2.0/token",
        600,
    ))
    .await;
    assert_aadsts(
        &r,
        401,
        "invalid_client",
        700023,
        "Client assertion failed validation",
    );
    // Expired.
    let r = send(m.cert.assertion(CONNECTOR, &m.token_url(), -900)).await;
    assert_aadsts(
        &r,
        401,
        "invalid_client",
        700024,
        "Client assertion is not within its valid time range.",
    );
    // Signed by a certificate the app does not have.
    let stranger = ClientCert::generate();
    let r = send(stranger.assertion(CONNECTOR, &m.token_url(), 600)).await;
    assert_aadsts(
        &r,
        401,
        "invalid_client",
        700027,
        "Client assertion contains an invalid signature. [Reason - The key was not found.",
    );
    // Tampered payload.
    let good = m.cert.assertion(CONNECTOR, &m.token_url(), 600);
    let parts: Vec<&str> = good.split('.').collect();
    let other = m.cert.assertion(CONNECTOR, &m.token_url(), 1200);
    let forged = format!(
        "{}.{}.{}",
        parts[0],
        other.split('.').nth(1).unwrap(),
        parts[2]
    );
    let r = send(forged).await;
    assert_aadsts(
        &r,
        401,
        "invalid_client",
        700027,
        "Client assertion contains an invalid signature. [Reason - Key was found, but use of the key to verify the signature failed.",
    );
}

#[tokio::test]
async fn ropc_gives_access_id_and_refresh_tokens_with_user_claims() {
    let m = start().await;
    let (status, reply) = m
        .token(&[
            ("grant_type", "password"),
            ("client_id", SPA),
            ("username", ALICE),
            ("password", ALICE_PASSWORD),
            (
                "scope",
                &format!("{API_URI}/Cases.Read openid profile offline_access"),
            ),
            ("client_info", "1"),
        ])
        .await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(
        reply["scope"],
        format!("{API_URI}/Cases.Read openid profile offline_access")
    );
    let expires_in = reply["expires_in"].as_i64().unwrap();
    assert!(
        (3600..5400).contains(&expires_in),
        "60–90 minutes, got {expires_in}"
    );
    assert_eq!(reply["ext_expires_in"], reply["expires_in"]);
    assert!(reply["refresh_token"].is_string());
    let c = validate(&m, reply["access_token"].as_str().unwrap(), API, &v2_iss()).await;
    assert_eq!(c["scp"], "Cases.Read");
    assert_eq!(c["oid"], ALICE_ID);
    assert_eq!(c["preferred_username"], ALICE);
    assert_eq!(c["name"], "Alice Case");
    assert_eq!(c["azp"], SPA);
    assert_eq!(c["azpacr"], "0");
    assert_eq!(
        c["roles"],
        json!(["Cases.Admin"]),
        "role assigned through the group"
    );
    assert_eq!(
        c["groups"],
        json!([CASEWORKERS]),
        "the API asks for group claims"
    );
    assert_eq!(c["sub"].as_str().unwrap().len(), 43);
    assert_ne!(c["sub"], c["oid"], "sub is pairwise");
    for claim in ["aio", "rh", "uti"] {
        assert!(c[claim].is_string(), "{claim}");
    }
    let id = validate(&m, reply["id_token"].as_str().unwrap(), SPA, &v2_iss()).await;
    assert_eq!(id["oid"], ALICE_ID);
    assert_eq!(id["preferred_username"], ALICE);
    assert_eq!(id["ver"], "2.0");
    let info: Value = serde_json::from_slice(
        &base64::Engine::decode(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            reply["client_info"].as_str().unwrap(),
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(info, json!({"uid": ALICE_ID, "utid": TENANT}));
}

#[tokio::test]
async fn v1_resource_user_token_has_v1_claims() {
    let m = start().await;
    let (status, reply) = m
        .ropc(
            BOB,
            BOB_PASSWORD,
            &format!("{LEGACY_URI}/user_impersonation"),
        )
        .await;
    // The SPA has no consent for the legacy API.
    assert_eq!(status, 400, "{reply}");
    let (status, reply) = m
        .token(&[
            ("grant_type", "password"),
            ("client_id", CONNECTOR),
            ("client_secret", CONNECTOR_SECRET),
            ("username", ALICE),
            ("password", ALICE_PASSWORD),
            ("scope", &format!("{LEGACY_URI}/.default")),
        ])
        .await;
    assert_eq!(status, 200, "{reply}");
    let c = validate(
        &m,
        reply["access_token"].as_str().unwrap(),
        LEGACY_URI,
        &v1_iss(),
    )
    .await;
    assert_eq!(c["ver"], "1.0");
    assert_eq!(c["unique_name"], ALICE);
    assert_eq!(c["upn"], ALICE);
    assert_eq!(c["given_name"], "Alice");
    assert_eq!(c["family_name"], "Case");
    assert_eq!(c["scp"], "user_impersonation");
    assert_eq!(c["appid"], CONNECTOR);
    assert_eq!(c["amr"], json!(["pwd"]));
    assert_eq!(c["ipaddr"], "127.0.0.1");
    assert!(
        c.get("groups").is_none(),
        "the legacy API asks for no group claims"
    );
}

#[tokio::test]
async fn refresh_tokens_rotate_and_are_revoked_per_user_and_for_all() {
    let m = start().await;
    let scope = format!("{API_URI}/Cases.Read offline_access");
    let (_, first) = m.ropc(ALICE, ALICE_PASSWORD, &scope).await;
    let rt1 = first["refresh_token"].as_str().unwrap().to_string();
    let refresh = |rt: String| {
        let m = &m;
        let scope = scope.clone();
        async move {
            m.token(&[
                ("grant_type", "refresh_token"),
                ("client_id", SPA),
                ("refresh_token", &rt),
                ("scope", &scope),
            ])
            .await
        }
    };
    let (status, second) = refresh(rt1.clone()).await;
    assert_eq!(status, 200, "{second}");
    let rt2 = second["refresh_token"].as_str().unwrap().to_string();
    assert_ne!(rt1, rt2, "each redemption returns a new refresh token");
    validate(&m, second["access_token"].as_str().unwrap(), API, &v2_iss()).await;
    // Entra does not invalidate the previous refresh token on rotation.
    assert_eq!(refresh(rt1.clone()).await.0, 200);

    // Another client cannot redeem it.
    let r = m
        .token(&[
            ("grant_type", "refresh_token"),
            ("client_id", CONNECTOR),
            ("client_secret", CONNECTOR_SECRET),
            ("refresh_token", &rt2),
            ("scope", &scope),
        ])
        .await;
    assert_aadsts(
        &r,
        400,
        "invalid_grant",
        70000,
        "Provided grant is invalid or malformed.",
    );

    m.entra.revoke_sign_in_sessions(ALICE).unwrap();
    let r = refresh(rt2.clone()).await;
    assert_aadsts(
        &r,
        400,
        "invalid_grant",
        50173,
        "The provided grant has expired due to it being revoked",
    );
    // Signing in again after revocation works.
    let (_, again) = m.ropc(ALICE, ALICE_PASSWORD, &scope).await;
    let rt3 = again["refresh_token"].as_str().unwrap().to_string();
    assert_eq!(refresh(rt3.clone()).await.0, 200);
    m.entra.revoke_all_sign_in_sessions();
    assert_eq!(refresh(rt3).await.0, 400);
}

#[tokio::test]
async fn refresh_token_expires_after_90_days_of_inactivity() {
    let m = start().await;
    let scope = format!("{API_URI}/Cases.Read offline_access");
    let (_, first) = m.ropc(ALICE, ALICE_PASSWORD, &scope).await;
    let rt = first["refresh_token"].as_str().unwrap().to_string();
    m.entra.clock().shift_secs(91 * 24 * 3600);
    let r = m
        .token(&[
            ("grant_type", "refresh_token"),
            ("client_id", SPA),
            ("refresh_token", &rt),
            ("scope", &scope),
        ])
        .await;
    assert_aadsts(
        &r,
        400,
        "invalid_grant",
        700082,
        "The refresh token has expired due to inactivity.",
    );
}

#[tokio::test]
async fn on_behalf_of_exchanges_a_user_token_for_the_middle_tier() {
    let m = start().await;
    let (_, user) = m
        .ropc(
            ALICE,
            ALICE_PASSWORD,
            &format!("{CONNECTOR_URI}/access_as_user"),
        )
        .await;
    let incoming = user["access_token"].as_str().unwrap().to_string();
    let (status, reply) = m
        .token(&[
            ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
            ("client_id", CONNECTOR),
            ("client_secret", CONNECTOR_SECRET),
            ("assertion", &incoming),
            ("scope", &format!("{API_URI}/Cases.Read")),
            ("requested_token_use", "on_behalf_of"),
        ])
        .await;
    assert_eq!(status, 200, "{reply}");
    assert!(
        reply.get("refresh_token").is_none(),
        "no offline_access asked"
    );
    let c = validate(&m, reply["access_token"].as_str().unwrap(), API, &v2_iss()).await;
    assert_eq!(c["oid"], ALICE_ID);
    assert_eq!(c["azp"], CONNECTOR);
    assert_eq!(c["scp"], "Cases.Read");

    // OBO to Key Vault yields a v1 token for https://vault.azure.net.
    let (status, reply) = m
        .token(&[
            ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
            ("client_id", CONNECTOR),
            ("client_secret", CONNECTOR_SECRET),
            ("assertion", &incoming),
            (
                "scope",
                "https://vault.azure.net/user_impersonation offline_access",
            ),
            ("requested_token_use", "on_behalf_of"),
        ])
        .await;
    assert_eq!(status, 200, "{reply}");
    assert!(reply["refresh_token"].is_string());
    let c = validate(
        &m,
        reply["access_token"].as_str().unwrap(),
        "https://vault.azure.net",
        &v1_iss(),
    )
    .await;
    assert_eq!(c["scp"], "user_impersonation");
}

#[tokio::test]
async fn authorization_code_with_pkce_s256_then_single_use() {
    let m = start().await;
    let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    let code = sign_in_for_code(
        &m,
        &[
            ("code_challenge", &s256(verifier)),
            ("code_challenge_method", "S256"),
        ],
    )
    .await;
    let redeem = |code: String, verifier: &'static str| {
        let m = &m;
        async move {
            m.token(&[
                ("grant_type", "authorization_code"),
                ("client_id", SPA),
                ("code", &code),
                ("redirect_uri", SPA_REDIRECT),
                ("code_verifier", verifier),
                (
                    "scope",
                    &format!("{API_URI}/Cases.Read openid offline_access"),
                ),
            ])
            .await
        }
    };
    let (status, reply) = redeem(code.clone(), verifier).await;
    assert_eq!(status, 200, "{reply}");
    let id = validate(&m, reply["id_token"].as_str().unwrap(), SPA, &v2_iss()).await;
    assert_eq!(id["nonce"], "n-0S6_WzA2Mj");
    assert_eq!(
        reply["refresh_token_expires_in"], 86400,
        "SPA refresh tokens live 24 h"
    );
    validate(&m, reply["access_token"].as_str().unwrap(), API, &v2_iss()).await;
    let r = redeem(code, verifier).await;
    assert_aadsts(
        &r,
        400,
        "invalid_grant",
        54005,
        "OAuth2 Authorization code was already redeemed",
    );

    let code = sign_in_for_code(
        &m,
        &[
            ("code_challenge", &s256(verifier)),
            ("code_challenge_method", "S256"),
        ],
    )
    .await;
    let r = redeem(code, "the-wrong-verifier-the-wrong-verifier-0123456").await;
    assert_aadsts(
        &r,
        400,
        "invalid_grant",
        501481,
        "The Code_Verifier does not match",
    );
}

#[tokio::test]
async fn authorization_code_with_plain_pkce_and_a_missing_verifier() {
    let m = start().await;
    let code = sign_in_for_code(
        &m,
        &[(
            "code_challenge",
            "plain-verifier-plain-verifier-plain-verifier-1",
        )],
    )
    .await;
    let (status, reply) = m
        .token(&[
            ("grant_type", "authorization_code"),
            ("client_id", SPA),
            ("code", &code),
            ("redirect_uri", SPA_REDIRECT),
            (
                "code_verifier",
                "plain-verifier-plain-verifier-plain-verifier-1",
            ),
            ("scope", &format!("{API_URI}/Cases.Read")),
        ])
        .await;
    assert_eq!(status, 200, "{reply}");
    let code = sign_in_for_code(
        &m,
        &[(
            "code_challenge",
            "plain-verifier-plain-verifier-plain-verifier-1",
        )],
    )
    .await;
    let r = m
        .token(&[
            ("grant_type", "authorization_code"),
            ("client_id", SPA),
            ("code", &code),
            ("redirect_uri", SPA_REDIRECT),
            ("scope", &format!("{API_URI}/Cases.Read")),
        ])
        .await;
    assert_aadsts(
        &r,
        400,
        "invalid_grant",
        50148,
        "The code_verifier does not match",
    );
}

#[tokio::test]
async fn authorization_code_expires_after_ten_minutes() {
    let m = start().await;
    let code = sign_in_for_code(&m, &[]).await;
    m.entra.clock().shift_secs(601);
    let r = m
        .token(&[
            ("grant_type", "authorization_code"),
            ("client_id", SPA),
            ("code", &code),
            ("redirect_uri", SPA_REDIRECT),
            ("scope", &format!("{API_URI}/Cases.Read")),
        ])
        .await;
    assert_aadsts(
        &r,
        400,
        "invalid_grant",
        70008,
        "The provided authorization code or refresh token has expired",
    );
}

/// Runs the sign-in page for Alice (SPA, query response) and returns the code.
pub async fn sign_in_for_code(m: &Running, extra: &[(&str, &str)]) -> String {
    let mut query: Vec<(&str, &str)> = vec![
        ("client_id", SPA),
        ("response_type", "code"),
        ("redirect_uri", SPA_REDIRECT),
        (
            "scope",
            "api://case-search/Cases.Read openid offline_access",
        ),
        ("state", "xyz"),
        ("nonce", "n-0S6_WzA2Mj"),
        ("login_hint", ALICE),
    ];
    query.extend_from_slice(extra);
    let url = format!("{}/{TENANT}/oauth2/v2.0/authorize", m.base);
    let page = m.http.get(&url).query(&query).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(
        html.contains(&format!("value=\"{ALICE}\"")),
        "login_hint pre-fills the form"
    );
    let mut form: Vec<(&str, &str)> = query.clone();
    form.push(("login", ALICE));
    form.push(("passwd", ALICE_PASSWORD));
    let r = m.http.post(&url).form(&form).send().await.unwrap();
    assert_eq!(r.status(), 302);
    let location = r.headers()["location"].to_str().unwrap().to_string();
    assert!(
        location.starts_with(&format!("{SPA_REDIRECT}?")),
        "{location}"
    );
    let url = url::Url::parse(&location).unwrap();
    let params: std::collections::HashMap<_, _> = url.query_pairs().into_owned().collect();
    assert_eq!(params["state"], "xyz");
    params["code"].clone()
}
