//! The search API's token validation against tokens from the mock Entra (issue 5's acceptance):
//! real tokens, and real tokens altered one claim at a time and signed again with the mock's
//! own signing key (read from its key file), so each check is reached with a valid signature.

use std::path::Path;

use crate::e2e_support::{
    CASES_API, CONNECTOR, OPS, TENANT, app_token, client, start, user_tokens,
};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde_json::{Value, json};

const API: &str = "cases-api-prod.azurewebsites.net";

async fn alice(c: &reqwest::Client, scope: &str) -> Value {
    user_tokens(
        c,
        CONNECTOR,
        "alice@contoso.onmicrosoft.com",
        "Alice-Pass-1!",
        scope,
    )
    .await
}

/// Calls the API; returns the status and the `WWW-Authenticate` header.
async fn call(c: &reqwest::Client, token: &str) -> (u16, String) {
    let r = c
        .get(format!("https://{API}/cases/search"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let challenge = r
        .headers()
        .get("www-authenticate")
        .map(|h| h.to_str().unwrap().to_string())
        .unwrap_or_default();
    (r.status().as_u16(), challenge)
}

fn parts(token: &str) -> (Value, Value) {
    let mut it = token.split('.');
    let header =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(it.next().unwrap()).unwrap()).unwrap();
    let claims =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(it.next().unwrap()).unwrap()).unwrap();
    (header, claims)
}

/// Signs `claims` with the mock's current signing key (RS256) under `kid`.
fn resign(run_dir: &Path, kid: &str, claims: &Value) -> String {
    let keys: Value = serde_json::from_slice(
        &std::fs::read(run_dir.join("entra").join("entra-signing-keys.json")).unwrap(),
    )
    .unwrap();
    let signing = keys["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["status"] == "signing")
        .unwrap();
    let der = STANDARD.decode(signing["pkcs8"].as_str().unwrap()).unwrap();
    let body = STANDARD.encode(der);
    let lines: Vec<&str> = body
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    let pem = format!(
        "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
        lines.join("\n")
    );
    ppvnet_testkit::TokenAuthority::from_pem(kid, &pem).sign(claims)
}

fn unsigned(header: &Value, claims: &Value) -> String {
    format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_bad_token_from_entra_is_refused_with_the_reason() {
    let Some(env) = start("contoso.yaml").await else {
        return;
    };
    let pp = &client(&env.running, "pp-prod-westus");
    let good = alice(pp, "api://contoso-cases/Cases.Read").await["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(call(pp, &good).await.0, 200);
    let (header, claims) = parts(&good);
    let kid = header["kid"].as_str().unwrap().to_string();

    // The same claims signed again with the real key still pass: the forgery helper is sound.
    assert_eq!(call(pp, &resign(&env.run_dir, &kid, &claims)).await.0, 200);

    let refused = |status: u16, challenge: &str, want: &str| {
        assert_eq!(status, 401, "{challenge}");
        assert!(
            challenge.starts_with("Bearer error=\"invalid_token\""),
            "{challenge}"
        );
        assert!(challenge.contains(want), "{challenge} lacks {want}");
    };

    // Wrong audience: a real token for Key Vault (cases-api holds consent for it).
    let vault = user_tokens(
        pp,
        CASES_API,
        "alice@contoso.onmicrosoft.com",
        "Alice-Pass-1!",
        "https://vault.azure.net/user_impersonation",
    )
    .await["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let (s, c) = call(pp, &vault).await;
    refused(s, &c, "The audience 'https://vault.azure.net");

    let altered = |f: &dyn Fn(&mut Value)| {
        let mut c = claims.clone();
        f(&mut c);
        resign(&env.run_dir, &kid, &c)
    };
    let (s, c) = call(
        pp,
        &altered(&|c| c["iss"] = json!("https://login.microsoftonline.com/contoso.evil/v2.0")),
    )
    .await;
    refused(s, &c, "The issuer");
    let other_tenant = "11111111-2222-4333-8444-555555555555";
    let (s, c) = call(
        pp,
        &altered(&|c| {
            c["tid"] = json!(other_tenant);
            c["iss"] = json!(format!(
                "https://login.microsoftonline.com/{other_tenant}/v2.0"
            ));
        }),
    )
    .await;
    refused(s, &c, "The issuer");
    let (s, c) = call(pp, &altered(&|c| c["tid"] = json!(other_tenant))).await;
    refused(s, &c, "tenant");
    let now = claims["iat"].as_i64().unwrap();
    let (s, c) = call(
        pp,
        &altered(&|c| {
            c["nbf"] = json!(now + 3600);
        }),
    )
    .await;
    refused(s, &c, "not valid before");
    let (s, c) = call(
        pp,
        &altered(&|c| {
            c["exp"] = json!(now - 3600);
            c["nbf"] = json!(now - 7200);
        }),
    )
    .await;
    refused(s, &c, "expired");

    // alg none, and HS256 keyed with the public certificate (the classic confusion attack).
    let mut none = header.clone();
    none["alg"] = json!("none");
    let (s, c) = call(pp, &unsigned(&none, &claims)).await;
    refused(s, &c, "algorithm");
    let jwks: Value = pp
        .get(format!(
            "https://login.microsoftonline.com/{TENANT}/discovery/v2.0/keys"
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let x5c = jwks["keys"][0]["x5c"][0].as_str().unwrap().to_string();
    let mut hs = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    hs.kid = Some(kid.clone());
    let hs_token = jsonwebtoken::encode(
        &hs,
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(x5c.as_bytes()),
    )
    .unwrap();
    let (s, c) = call(pp, &hs_token).await;
    refused(s, &c, "algorithm");

    // A kid Entra never published.
    let (s, c) = call(pp, &resign(&env.run_dir, "not-a-published-kid", &claims)).await;
    refused(s, &c, "signature key was not found");

    // An id token of the same sign-in.
    let with_id = alice(pp, "openid profile api://contoso-cases/Cases.Read").await;
    let id_token = with_id["id_token"]
        .as_str()
        .expect("an id token")
        .to_string();
    let (s, c) = call(pp, &id_token).await;
    assert_eq!(s, 401, "{c}");

    // Expiry through the shared clock: the real token stops working after its lifetime.
    let shifted = ppvnet::control::Client::from_ready(env.running.ready())
        .unwrap()
        .post("/clock/shift")
        .json(&json!({"seconds": 3 * 3600}))
        .send()
        .await
        .unwrap();
    assert_eq!(shifted.status(), 200);
    let (s, c) = call(pp, &good).await;
    refused(s, &c, "expired");
    env.running.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_without_the_scope_or_role_get_403_insufficient_scope() {
    let Some(env) = start("contoso.yaml").await else {
        return;
    };
    let pp = client(&env.running, "pp-prod-westus");
    // ops-automation has no app role on cases-api: its app-only token carries no roles.
    let token = app_token(&pp, OPS, "api://contoso-cases/.default").await;
    let (s, c) = call(&pp, &token).await;
    assert_eq!(s, 403, "{c}");
    assert!(c.contains("error=\"insufficient_scope\""), "{c}");
    env.running.stop().await.unwrap();
}
