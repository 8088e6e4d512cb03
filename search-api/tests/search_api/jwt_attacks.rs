//! Every attack of `ppvnet_common::testing::jwt_attacks` against the search API: each must get
//! exactly the status, challenge and JSON error an ASP.NET API protected by
//! Microsoft.Identity.Web answers (and the ambiguity rule of the hardening issue).

use ppvnet_common::testing::{Attack, AttackKit, Expect, jwt_attacks};
use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderValue};
use serde_json::Value;

use crate::support::*;

/// The status, challenge and `error.message` the API must answer.
fn expected(expect: &Expect) -> (u16, String, Option<String>) {
    match expect {
        Expect::Accepted => (200, String::new(), None),
        Expect::Refused(e) => (
            401,
            e.www_authenticate(),
            Some(format!("{}.", e.description())),
        ),
        Expect::Ambiguous => (
            401,
            "Bearer error=\"invalid_request\", error_description=\"The request has more than one Authorization header\"".to_owned(),
            Some("The request has more than one Authorization header.".to_owned()),
        ),
        Expect::NoToken => (
            401,
            "Bearer".to_owned(),
            Some("Access token is missing.".to_owned()),
        ),
    }
}

async fn send(base: &str, attack: &Attack) -> reqwest::Response {
    let mut url = format!("{base}/cases/search?q=printer");
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

#[tokio::test]
async fn every_jwt_attack_gets_the_exact_refusal() {
    let (_issuer, key, running) = landscape(40).await;
    let kit = AttackKit {
        key: key.encoding_key(),
        kid: key.kid.clone(),
        public_pem: key.public_pem.clone(),
        attacker: signing_key("attacker").encoding_key(),
        claims: user_claims(ALICE, &running.clock),
        now: running.clock.unix(),
    };
    let attacks = jwt_attacks(&kit);
    assert!(attacks.len() >= 30, "only {} attacks", attacks.len());
    let mut failures = Vec::new();
    for attack in &attacks {
        let response = send(&running.private, attack).await;
        let (status, challenge, message) = expected(&attack.expect);
        let got_status = response.status().as_u16();
        let got_challenge = www_authenticate(&response);
        let body: Value = response.json().await.unwrap_or(Value::Null);
        let got_message = body["error"]["message"].as_str().map(str::to_owned);
        let code_ok = status == 200 || body["error"]["code"] == "InvalidAuthenticationToken";
        if got_status != status
            || got_challenge != challenge
            || (message.is_some() && got_message != message)
            || !code_ok
        {
            failures.push(format!(
                "{}: got {got_status} {got_challenge:?} {got_message:?}, want {status} {challenge:?} {message:?}",
                attack.name
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
