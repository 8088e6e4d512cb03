//! The API as a client sees it: tokens from a local issuer, HTTP over loopback.

use std::collections::{BTreeSet, HashSet};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use ppvnet_common::Clock;
use ppvnet_search_api::generator;
use serde_json::{Value, json};

use crate::support::*;

fn ids(cases: &[Value]) -> Vec<String> {
    cases
        .iter()
        .map(|c| c["id"].as_str().unwrap().to_owned())
        .collect()
}

/// The cases `user` may see whose text contains every word, straight from the generator.
fn expected_matches(
    running: &Running,
    user: Option<User>,
    words: &[&str],
    status: Option<&str>,
) -> BTreeSet<String> {
    generator::cases(&running.api.config().data)
        .filter(|c| user.is_none_or(|u| c.owner_object_id == u.oid || c.team_group_id == u.group))
        .filter(|c| status.is_none_or(|s| c.status == s))
        .filter(|c| {
            let text = format!("{} {} {}", c.title, c.description, c.customer).to_lowercase();
            let tokens: HashSet<&str> = text.split(|ch: char| !ch.is_alphanumeric()).collect();
            words.iter().all(|w| tokens.contains(w))
        })
        .map(|c| format!("CAS-{:07}", c.number))
        .collect()
}

#[tokio::test]
async fn alice_and_bob_get_disjoint_own_team_results_for_the_same_query() {
    let (_issuer, key, running) = landscape(3_000).await;
    let alice = sign(&key, &user_claims(ALICE, &running.clock));
    let bob = sign(&key, &user_claims(BOB, &running.clock));
    let a = all_pages(&running.private, &alice, "q=printer", 100).await;
    let b = all_pages(&running.private, &bob, "q=printer", 100).await;
    assert!(!a.is_empty() && !b.is_empty());
    assert!(
        a.iter()
            .all(|c| c["teamGroupId"] == TEAM_NORTH || c["ownerObjectId"] == ALICE.oid)
    );
    assert!(
        b.iter()
            .all(|c| c["teamGroupId"] == TEAM_SOUTH || c["ownerObjectId"] == BOB.oid)
    );
    let (a, b): (BTreeSet<_>, BTreeSet<_>) =
        (ids(&a).into_iter().collect(), ids(&b).into_iter().collect());
    assert!(a.is_disjoint(&b));
    assert_eq!(
        a,
        expected_matches(&running, Some(ALICE), &["printer"], None)
    );
    assert_eq!(b, expected_matches(&running, Some(BOB), &["printer"], None));
}

#[tokio::test]
async fn carol_with_the_role_and_an_app_only_token_see_every_case() {
    let (_issuer, key, running) = landscape(2_000).await;
    let mut carol = user_claims(CAROL, &running.clock);
    carol["roles"] = json!(["Cases.Read.All"]);
    let carol = sign(&key, &carol);
    let app = sign(&key, &app_claims(&running.clock, &["Cases.Read.All"]));
    let everything = expected_matches(&running, None, &["printer"], None);
    for token in [&carol, &app] {
        let found = all_pages(&running.private, token, "q=printer", 100).await;
        let found: BTreeSet<_> = ids(&found).into_iter().collect();
        assert_eq!(found, everything);
    }
    // Without the role, carol only sees Supervisors' cases.
    let plain = sign(&key, &user_claims(CAROL, &running.clock));
    let found = all_pages(&running.private, &plain, "q=printer", 100).await;
    let found: BTreeSet<_> = ids(&found).into_iter().collect();
    assert_eq!(
        found,
        expected_matches(&running, Some(CAROL), &["printer"], None)
    );
    assert!(found.len() < everything.len());
}

#[tokio::test]
async fn pagination_returns_every_visible_match_exactly_once() {
    let (_issuer, key, running) = landscape(4_000).await;
    let alice = sign(&key, &user_claims(ALICE, &running.clock));
    for (query, words, status) in [
        ("q=printer", vec!["printer"], None),
        ("q=printer%20error", vec!["printer", "error"], None),
        ("q=fabrikam&status=Active", vec!["fabrikam"], Some("active")),
    ] {
        let expected = expected_matches(&running, Some(ALICE), &words, status);
        assert!(expected.len() > 7, "{query}: too few matches to page");
        let pages = all_pages(&running.private, &alice, query, 7).await;
        let got = ids(&pages);
        let unique: BTreeSet<_> = got.iter().cloned().collect();
        assert_eq!(unique.len(), got.len(), "{query}: a case came twice");
        assert_eq!(unique, expected, "{query}");
    }
    // Without q: every visible case, newest first, across pages.
    let pages = all_pages(&running.private, &alice, "", 50).await;
    let expected = expected_matches(&running, Some(ALICE), &[], None);
    let got = ids(&pages);
    assert_eq!(got.iter().cloned().collect::<BTreeSet<_>>(), expected);
    assert_eq!(got.len(), expected.len());
    let created: Vec<&str> = pages
        .iter()
        .map(|c| c["createdDateTime"].as_str().unwrap())
        .collect();
    assert!(created.windows(2).all(|w| w[0] >= w[1]), "not newest first");
}

#[tokio::test]
async fn ranked_results_put_title_matches_first() {
    let (_issuer, key, running) = landscape(2_000).await;
    let alice = sign(&key, &user_claims(ALICE, &running.clock));
    let page = all_pages(&running.private, &alice, "q=router", 100).await;
    let in_title: Vec<bool> = page
        .iter()
        .map(|c| {
            c["title"]
                .as_str()
                .unwrap()
                .to_lowercase()
                .contains("router")
        })
        .collect();
    let first_without = in_title.iter().position(|t| !t).unwrap_or(in_title.len());
    assert!(first_without > 0);
    assert!(
        in_title[first_without..].iter().all(|t| !t),
        "a title match ranked below a description-only match"
    );
}

#[tokio::test]
async fn a_case_is_returned_to_those_who_may_see_it_and_404_to_others() {
    let (_issuer, key, running) = landscape(500).await;
    let alice_case = generator::cases(&running.api.config().data)
        .find(|c| c.owner_object_id == ALICE.oid)
        .unwrap();
    let id = format!("CAS-{:07}", alice_case.number);
    let alice = sign(&key, &user_claims(ALICE, &running.clock));
    let bob = sign(&key, &user_claims(BOB, &running.clock));
    let app = sign(&key, &app_claims(&running.clock, &["Cases.Read.All"]));
    let r = get(&format!("{}/cases/{id}", running.private), Some(&alice)).await;
    assert_eq!(r.status(), 200);
    let case: Value = r.json().await.unwrap();
    assert_eq!(case["id"], id.as_str());
    assert_eq!(case["title"], alice_case.title.as_str());
    assert_eq!(case["ownerObjectId"], ALICE.oid);
    assert_eq!(case["teamGroupId"], TEAM_NORTH);
    assert_eq!(
        get(&format!("{}/cases/{id}", running.private), Some(&app))
            .await
            .status(),
        200
    );
    let hidden = get(&format!("{}/cases/{id}", running.private), Some(&bob)).await;
    assert_eq!(hidden.status(), 404);
    let hidden_body: Value = hidden.json().await.unwrap();
    let missing = get(
        &format!("{}/cases/CAS-0999999", running.private),
        Some(&bob),
    )
    .await;
    assert_eq!(missing.status(), 404);
    let missing_body: Value = missing.json().await.unwrap();
    assert_eq!(hidden_body["error"]["code"], "NotFound");
    assert_eq!(missing_body["error"]["code"], "NotFound");
    let garbage = get(
        &format!("{}/cases/x%22%3Cscript%3E", running.private),
        Some(&bob),
    )
    .await;
    assert_eq!(garbage.status(), 404);
}

#[tokio::test]
async fn missing_scope_or_role_is_403_insufficient_scope() {
    let (_issuer, key, running) = landscape(100).await;
    let mut no_scope = user_claims(ALICE, &running.clock);
    no_scope["scp"] = json!("User.Read");
    let no_role = app_claims(&running.clock, &[]);
    let wrong_role = app_claims(&running.clock, &["Cases.Write.All"]);
    for (claims, claim) in [(no_scope, "scp"), (no_role, "roles"), (wrong_role, "roles")] {
        let r = get(
            &format!("{}/cases/search?q=printer", running.private),
            Some(&sign(&key, &claims)),
        )
        .await;
        assert_eq!(r.status(), 403);
        let challenge = www_authenticate(&r);
        assert!(
            challenge.starts_with("Bearer error=\"insufficient_scope\", error_description=\""),
            "{challenge}"
        );
        assert!(
            challenge.contains(&format!("The '{claim}' claim does not contain")),
            "{challenge}"
        );
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["error"]["code"], "Forbidden");
    }
}

#[tokio::test]
async fn a_request_without_a_token_gets_a_bare_bearer_challenge() {
    let (_issuer, _key, running) = landscape(100).await;
    for auth in [None, Some("Basic YWxpY2U6cHc=")] {
        let mut request = reqwest::Client::new().get(format!("{}/cases/search", running.private));
        if let Some(a) = auth {
            request = request.header("authorization", a);
        }
        let r = request.send().await.unwrap();
        assert_eq!(r.status(), 401);
        assert_eq!(www_authenticate(&r), "Bearer");
    }
}

fn b64(v: &Value) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap())
}

#[tokio::test]
async fn each_kind_of_bad_token_is_401_invalid_token() {
    let (_issuer, key, running) = landscape(100).await;
    let clock = &running.clock;
    let now = clock.unix();
    let good = user_claims(ALICE, clock);
    let with = |field: &str, value: Value| {
        let mut c = good.clone();
        c[field] = value;
        c
    };
    let mut id_token = good.clone();
    {
        let o = id_token.as_object_mut().unwrap();
        o.remove("scp");
        o.remove("azp");
        o.remove("azpacr");
        o.insert("nonce".into(), json!("abc"));
    }
    let stranger = signing_key("not-published");
    let mut hs = Header::new(Algorithm::HS256);
    hs.kid = Some(key.kid.clone());
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "wrong audience",
            sign(&key, &with("aud", json!("https://graph.microsoft.com"))),
            "The audience 'https://graph.microsoft.com' is invalid",
        ),
        (
            "wrong issuer",
            sign(
                &key,
                &with(
                    "iss",
                    json!(
                        "https://login.microsoftonline.com/00000000-0000-0000-0000-000000000001/v2.0"
                    ),
                ),
            ),
            "The issuer 'https://login.microsoftonline.com/00000000-0000-0000-0000-000000000001/v2.0' is invalid",
        ),
        (
            "other tenant",
            sign(
                &key,
                &with("tid", json!("00000000-0000-0000-0000-000000000001")),
            ),
            "The token was not issued for this tenant",
        ),
        (
            "expired",
            sign(&key, &with("exp", json!(now - 600))),
            "The token expired at '",
        ),
        (
            "future nbf",
            sign(&key, &with("nbf", json!(now + 600))),
            "The token is not valid before '",
        ),
        (
            "alg none",
            format!(
                "{}.{}.",
                b64(&json!({"alg": "none", "typ": "JWT"})),
                b64(&good)
            ),
            "The token's signing algorithm is not accepted",
        ),
        (
            "HS256 with the public key",
            encode(
                &hs,
                &good,
                &EncodingKey::from_secret(key.public_pem.as_bytes()),
            )
            .unwrap(),
            "The token's signing algorithm is not accepted",
        ),
        (
            "unknown kid",
            sign(&stranger, &good),
            "The signature key was not found",
        ),
        (
            "id token",
            sign(&key, &id_token),
            "The token is not an access token",
        ),
        (
            "tampered payload",
            {
                let t = sign(&key, &good);
                let parts: Vec<&str> = t.split('.').collect();
                format!(
                    "{}.{}.{}",
                    parts[0],
                    b64(&with("roles", json!(["Cases.Read.All"]))),
                    parts[2]
                )
            },
            "The signature is invalid",
        ),
        (
            "not a jwt",
            "not-a-jwt".to_owned(),
            "The token is malformed",
        ),
    ];
    for (what, token, description) in cases {
        let r = get(
            &format!("{}/cases/search?q=printer", running.private),
            Some(&token),
        )
        .await;
        assert_eq!(r.status(), 401, "{what}");
        let challenge = www_authenticate(&r);
        let prefix = format!("Bearer error=\"invalid_token\", error_description=\"{description}");
        assert!(challenge.starts_with(&prefix), "{what}: {challenge}");
        let body = r.text().await.unwrap();
        assert!(
            !body.contains("127.0.0.1") && !body.contains("jsonwebtoken"),
            "{what}: {body}"
        );
    }
    // The good token still works, so the refusals above were about the tokens.
    let r = get(
        &format!("{}/cases/search?q=printer", running.private),
        Some(&sign(&key, &good)),
    )
    .await;
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn a_rotated_key_is_picked_up_without_restart() {
    let (issuer, old, running) = landscape(100).await;
    let url = format!("{}/cases/search?q=printer", running.private);
    assert_eq!(
        get(&url, Some(&sign(&old, &user_claims(ALICE, &running.clock))))
            .await
            .status(),
        200
    );
    let new = signing_key("key-2");
    issuer.publish(vec![new.jwk.clone()]);
    let r = get(&url, Some(&sign(&new, &user_claims(ALICE, &running.clock)))).await;
    assert_eq!(r.status(), 200, "{}", www_authenticate(&r));
    // The retired key no longer validates.
    let r = get(&url, Some(&sign(&old, &user_claims(ALICE, &running.clock)))).await;
    assert_eq!(r.status(), 401);
}

#[tokio::test]
async fn a_v1_token_for_the_identifier_uri_is_accepted() {
    let (_issuer, key, running) = landscape(100).await;
    let mut claims = user_claims(BOB, &running.clock);
    let o = claims.as_object_mut().unwrap();
    o.insert("aud".into(), json!(API_URI));
    o.insert(
        "iss".into(),
        json!(format!("https://sts.windows.net/{TENANT}/")),
    );
    o.insert("ver".into(), json!("1.0"));
    o.remove("azp");
    o.insert("appid".into(), json!(CONNECTOR_CLIENT_ID));
    let r = get(
        &format!("{}/cases/search", running.private),
        Some(&sign(&key, &claims)),
    )
    .await;
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn bad_parameters_are_400_in_the_error_envelope() {
    let (_issuer, key, running) = landscape(300).await;
    let alice = sign(&key, &user_claims(ALICE, &running.clock));
    let bob = sign(&key, &user_claims(BOB, &running.clock));
    for (query, code) in [
        ("top=0", "InvalidQueryParameter"),
        ("top=101", "InvalidQueryParameter"),
        ("top=ten", "InvalidQueryParameter"),
        ("status=open", "InvalidQueryParameter"),
        ("q=%21%21%21", "InvalidQueryParameter"),
        ("continuationToken=garbage", "InvalidContinuationToken"),
    ] {
        let r = get(
            &format!("{}/cases/search?{query}", running.private),
            Some(&alice),
        )
        .await;
        assert_eq!(r.status(), 400, "{query}");
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["error"]["code"], code, "{query}");
        assert!(
            body["error"]["message"].as_str().unwrap().ends_with('.'),
            "{query}"
        );
    }
    // A continuation token is bound to its caller and query.
    let r = get(
        &format!("{}/cases/search?top=5", running.private),
        Some(&alice),
    )
    .await;
    let token = r.json::<Value>().await.unwrap()["continuationToken"]
        .as_str()
        .unwrap()
        .to_owned();
    for (who, query) in [(&bob, "top=5"), (&alice, "top=5&q=printer")] {
        let r = get(
            &format!(
                "{}/cases/search?{query}&continuationToken={token}",
                running.private
            ),
            Some(who),
        )
        .await;
        assert_eq!(r.status(), 400);
        assert_eq!(
            r.json::<Value>().await.unwrap()["error"]["code"],
            "InvalidContinuationToken"
        );
    }
}

#[tokio::test]
async fn with_public_access_disabled_only_the_private_endpoint_answers() {
    let key = signing_key("key-1");
    let issuer = Issuer::start(vec![key.jwk.clone()]).await;
    let mut config = config(&issuer, 100);
    config.public_network_access_enabled = false;
    let running = serve(config, Clock::new()).await;
    let alice = sign(&key, &user_claims(ALICE, &running.clock));
    for path in ["/cases/search?q=printer", "/healthz", "/swagger.json"] {
        let r = get(&format!("{}{path}", running.public), Some(&alice)).await;
        assert_eq!(r.status(), 403, "{path}");
        assert!(
            r.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/html")
        );
        let page = r.text().await.unwrap();
        assert!(page.contains("<h1>Error 403 - Forbidden</h1>"), "{page}");
        assert!(page.contains("The web app you have attempted to reach has blocked your access."));
        assert_eq!(
            get(&format!("{}{path}", running.private), Some(&alice))
                .await
                .status(),
            200,
            "{path}"
        );
    }
}

#[tokio::test]
async fn with_public_access_enabled_both_listeners_answer() {
    let (_issuer, key, running) = landscape(100).await;
    let alice = sign(&key, &user_claims(ALICE, &running.clock));
    assert_eq!(
        get(&format!("{}/cases/search", running.public), Some(&alice))
            .await
            .status(),
        200
    );
    assert_eq!(
        get(&format!("{}/healthz", running.public), None)
            .await
            .text()
            .await
            .unwrap(),
        "Healthy"
    );
}

#[tokio::test]
async fn the_client_request_id_is_echoed_and_each_request_gets_an_id() {
    let (_issuer, key, running) = landscape(100).await;
    let alice = sign(&key, &user_claims(ALICE, &running.clock));
    let r = reqwest::Client::new()
        .get(format!("{}/cases/search", running.private))
        .bearer_auth(&alice)
        .header(
            "x-ms-client-request-id",
            "8a7b6c5d-0000-4000-8000-000000000001",
        )
        .header(
            "traceparent",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.headers()["x-ms-client-request-id"],
        "8a7b6c5d-0000-4000-8000-000000000001"
    );
    let first = r.headers()["x-ms-request-id"].to_str().unwrap().to_owned();
    let r = get(&format!("{}/healthz", running.private), None).await;
    assert!(r.headers().get("x-ms-client-request-id").is_none());
    assert_ne!(r.headers()["x-ms-request-id"].to_str().unwrap(), first);
}

#[tokio::test]
async fn a_token_expires_when_the_run_clock_moves_past_exp_plus_skew() {
    let (_issuer, key, running) = landscape(100).await;
    let token = sign(&key, &user_claims(ALICE, &running.clock));
    let url = format!("{}/cases/search", running.private);
    assert_eq!(get(&url, Some(&token)).await.status(), 200);
    running.clock.shift_secs(3600 + 299);
    assert_eq!(get(&url, Some(&token)).await.status(), 200);
    running.clock.shift_secs(2);
    let r = get(&url, Some(&token)).await;
    assert_eq!(r.status(), 401);
    assert!(www_authenticate(&r).contains("The token expired at '"));
}
