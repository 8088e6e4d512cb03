//! Every attack of `ppvnet_common::testing::jwt_attacks` against the vault: each must get
//! exactly Key Vault's 401 (its envelope, its `AKV…` message, its challenge) or be served.

use ppvnet_common::testing::{Attack, AttackKit, Expect, jwt_attacks};
use ppvnet_keyvault::auth::rejection_message;
use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderValue};
use serde_json::Value;

use crate::common::{OFFICER, Running, TENANT, start_with_officer};

const APP_ID: &str = "11111111-2222-3333-4444-555555555555";

async fn send(running: &Running, attack: &Attack) -> reqwest::Response {
    let mut url = format!("http://{}/secrets?api-version=7.6", running.public);
    if let Some(query) = &attack.query {
        url = format!("{url}&{query}");
    }
    let mut headers = HeaderMap::new();
    for value in &attack.authorization {
        headers.append(AUTHORIZATION, HeaderValue::from_str(value).unwrap());
    }
    reqwest::Client::new()
        .get(url)
        .headers(headers)
        .send()
        .await
        .unwrap()
}

/// The status, challenge and `error.message` Key Vault answers.
fn expected(attack: &Attack, challenge: &str) -> (u16, String, Option<String>) {
    let token = attack
        .authorization
        .first()
        .map(|h| h.trim_start_matches("Bearer").trim().to_owned())
        .unwrap_or_default();
    match &attack.expect {
        Expect::Accepted => (200, String::new(), None),
        Expect::Refused(e) => (
            401,
            challenge.to_owned(),
            Some(rejection_message(e, TENANT, &token)),
        ),
        Expect::Ambiguous => (
            401,
            format!("{challenge}, error=\"invalid_request\""),
            Some("AKV10000: Request has more than one Authorization header.".to_owned()),
        ),
        Expect::NoToken => (
            401,
            challenge.to_owned(),
            Some("AKV10000: Request is missing a Bearer, PoP, or MTLS_POP token.".to_owned()),
        ),
    }
}

#[tokio::test]
async fn every_jwt_attack_gets_key_vaults_exact_refusal() {
    let (clock, authority, running) = start_with_officer().await;
    let kit = AttackKit {
        key: authority.encoding_key(),
        kid: authority.kid.clone(),
        public_pem: authority.public_pem.clone(),
        attacker: ppvnet_testkit::TokenAuthority::new("attacker").encoding_key(),
        claims: authority.claims_for(TENANT, OFFICER, APP_ID, "https://vault.azure.net"),
        now: clock.unix(),
    };
    // The challenge names the configured authority host, not where the test authority runs.
    let challenge = format!(
        "Bearer authorization=\"https://login.microsoftonline.com/{TENANT}\", resource=\"https://vault.azure.net\""
    );
    let attacks = jwt_attacks(&kit);
    assert!(attacks.len() >= 30, "only {} attacks", attacks.len());
    let mut failures = Vec::new();
    for attack in &attacks {
        let response = send(&running, attack).await;
        let (status, want_challenge, message) = expected(attack, &challenge);
        let got_status = response.status().as_u16();
        let got_challenge = response
            .headers()
            .get("www-authenticate")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        let got_message = body["error"]["message"].as_str().map(str::to_owned);
        let code_ok = status == 200 || body["error"]["code"] == "Unauthorized";
        if got_status != status
            || got_challenge != want_challenge
            || (message.is_some() && got_message != message)
            || !code_ok
        {
            failures.push(format!(
                "{}: got {got_status} {got_challenge:?} {got_message:?}, want {status} {want_challenge:?} {message:?}",
                attack.name
            ));
        }
    }
    running.stop().await;
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
