//! The architecture end to end on the loopback fabric: real tokens from the mock Entra, the
//! search API and Key Vault reached by their Azure host names from the hosts of the landscape,
//! private endpoints and public network access enforced.
//!
//! Host names resolve per host (private DNS zones linked to the host's vNet) to addresses on
//! port 443, so these tests need to bind port 443 (root, as in CI); without it they say so and
//! skip.

use crate::e2e_support::{CASES_API, CONNECTOR, OPS, TENANT, app_token, client, start, user_token};
use serde_json::Value;

async fn search_all(c: &reqwest::Client, api: &str, token: &str) -> Vec<Value> {
    let mut out = Vec::new();
    let mut next: Option<String> = None;
    loop {
        let mut req = c
            .get(format!("https://{api}/cases/search"))
            .bearer_auth(token)
            .query(&[("q", "outage"), ("top", "100")]);
        if let Some(t) = &next {
            req = req.query(&[("continuationToken", t.as_str())]);
        }
        let r = req.send().await.unwrap();
        assert_eq!(r.status(), 200);
        let body: Value = r.json().await.unwrap();
        out.extend(body["value"].as_array().unwrap().iter().cloned());
        match body["continuationToken"].as_str() {
            Some(t) => next = Some(t.to_string()),
            None => return out,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_search_prod_cases_through_the_private_endpoint_in_their_own_context() {
    let Some(started) = start("contoso.yaml").await else {
        return;
    };
    let running = started.running;
    let pp = client(&running, "pp-prod-westus");
    let api = "cases-api-prod.azurewebsites.net";
    let scope = "api://contoso-cases/Cases.Read";
    let alice = user_token(&pp, "alice@contoso.onmicrosoft.com", "Alice-Pass-1!", scope).await;
    let bob = user_token(&pp, "bob@contoso.onmicrosoft.com", "Bob-Pass-1!", scope).await;
    let carol = user_token(&pp, "carol@contoso.onmicrosoft.com", "Carol-Pass-1!", scope).await;
    let a = search_all(&pp, api, &alice).await;
    let b = search_all(&pp, api, &bob).await;
    let all = search_all(&pp, api, &carol).await;
    assert!(!a.is_empty() && !b.is_empty());
    let ids = |v: &[Value]| {
        v.iter()
            .map(|c| c["id"].as_str().unwrap().to_string())
            .collect::<std::collections::HashSet<_>>()
    };
    assert!(ids(&a).is_disjoint(&ids(&b)), "alice and bob share cases");
    assert!(a.iter().all(
        |c| c["teamGroupId"] == "8f1da8ea-c517-4c5b-91b3-6952ece13786"
            || c["ownerObjectId"] == "2276843a-7273-459b-b0e8-730c2b509e9b"
    ));
    assert!(ids(&all).is_superset(&ids(&a)) && ids(&all).is_superset(&ids(&b)));
    assert!(all.len() > a.len() + b.len() - 1);

    // The connector's app-only token holds Cases.Read.All and sees everything too.
    let app = app_token(&pp, CONNECTOR, "api://contoso-cases/.default").await;
    assert_eq!(search_all(&pp, api, &app).await.len(), all.len());

    // From the public internet the prod API is not reachable.
    let internet = client(&running, "internet");
    let r = internet
        .get(format!("https://{api}/cases/search"))
        .bearer_auth(&alice)
        .send()
        .await;
    assert!(
        r.map(|r| r.status() != 200).unwrap_or(true),
        "internet reached the prod API"
    );
    running.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prod_vault_answers_through_its_private_endpoint_and_refuses_the_internet() {
    let Some(started) = start("contoso.yaml").await else {
        return;
    };
    let running = started.running;
    let pp = client(&running, "pp-prod-westus");
    let token = app_token(&pp, OPS, "https://vault.azure.net/.default").await;
    let url = "https://kv-contoso-prod.vault.azure.net/secrets/cases-connector-secret?api-version=2025-07-01";
    let r = pp.get(url).bearer_auth(&token).send().await.unwrap();
    let status = r.status();
    let body: Value = r.json().await.unwrap();
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["value"], CONNECTOR.1);

    let internet = client(&running, "internet");
    let token = app_token(&internet, OPS, "https://vault.azure.net/.default").await;
    let r = internet.get(url).bearer_auth(&token).send().await.unwrap();
    let status = r.status();
    let body: Value = r.json().await.unwrap();
    assert_eq!(status, 403, "{body}");
    assert_eq!(
        body["error"]["innererror"]["code"], "ForbiddenByConnection",
        "{body}"
    );

    // No role on the vault: the cases API's own identity is refused by RBAC.
    let api_token = app_token(&pp, CASES_API, "https://vault.azure.net/.default").await;
    let r = pp.get(url).bearer_auth(&api_token).send().await.unwrap();
    let status = r.status();
    let body: Value = r.json().await.unwrap();
    assert_eq!(status, 403, "{body}");
    assert_eq!(
        body["error"]["innererror"]["code"], "ForbiddenByRbac",
        "{body}"
    );
    running.stop().await.unwrap();
}

/// Control through the harness control API: key rotation reaches the API without a restart,
/// and a disabled user can no longer sign in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_api_rotates_keys_and_disables_users_at_once() {
    let Some(started) = start("contoso.yaml").await else {
        return;
    };
    let running = started.running;
    let ops = ppvnet::control::Client::from_ready(running.ready()).unwrap();
    let pp = client(&running, "pp-prod-westus");
    let api = "cases-api-prod.azurewebsites.net";
    let scope = "api://contoso-cases/Cases.Read";
    let search = |token: String| {
        let pp = pp.clone();
        async move {
            pp.get(format!("https://{api}/cases/search"))
                .bearer_auth(token)
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    let before = user_token(&pp, "alice@contoso.onmicrosoft.com", "Alice-Pass-1!", scope).await;
    assert_eq!(search(before.clone()).await, 200);

    let rotated = ops.post("/entra/keys/rotate").send().await.unwrap();
    assert_eq!(rotated.status(), 200);
    let after = user_token(&pp, "alice@contoso.onmicrosoft.com", "Alice-Pass-1!", scope).await;
    let kid = |t: &str| jsonwebtoken::decode_header(t).unwrap().kid.unwrap();
    assert_ne!(
        kid(&before),
        kid(&after),
        "the new token is signed by the new key"
    );
    assert_eq!(
        search(after.clone()).await,
        200,
        "the API picked up the new key"
    );
    assert_eq!(
        search(before.clone()).await,
        200,
        "the old key is still published"
    );

    let retired = ops
        .post("/entra/keys/retire-previous")
        .send()
        .await
        .unwrap();
    assert_eq!(retired.status(), 200);
    // Microsoft.IdentityModel keeps a fetched key for 24 hours, so the API does not notice a
    // retirement at once; what matters is that tokens issued afterwards keep working.
    let fresh = user_token(&pp, "alice@contoso.onmicrosoft.com", "Alice-Pass-1!", scope).await;
    assert_eq!(search(fresh).await, 200);

    let disabled = ops
        .post("/entra/users/bob@contoso.onmicrosoft.com/disable")
        .send()
        .await
        .unwrap();
    assert_eq!(disabled.status(), 204);
    let r = pp
        .post(format!(
            "https://login.microsoftonline.com/{TENANT}/oauth2/v2.0/token"
        ))
        .form(&[
            ("grant_type", "password"),
            ("client_id", CONNECTOR.0),
            ("client_secret", CONNECTOR.1),
            ("username", "bob@contoso.onmicrosoft.com"),
            ("password", "Bob-Pass-1!"),
            ("scope", scope),
        ])
        .send()
        .await
        .unwrap();
    let status = r.status();
    let body: Value = r.json().await.unwrap();
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error_codes"][0], 50057, "{body}");
    running.stop().await.unwrap();
}

/// A team's own backend (`implementation: {kind: command}`) runs on the API's faces with the
/// tenant settings in its environment, and is reached by its host name through its private
/// endpoint; `ppvnet` stops it with the landscape.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_external_api_program_runs_on_its_faces() {
    if crate::require::skip_unless("python", crate::require::python3_missing()) {
        return;
    }
    let Some(started) = start("examples/external-api.yaml").await else {
        return;
    };
    let running = started.running;
    let authority = running
        .ready()
        .entra
        .as_ref()
        .unwrap()
        .authority_host
        .clone();
    let pp = client(&running, "pp-prod-westus");
    let url = "https://orders-api-prod.azurewebsites.net/whoami";
    // No wait for the program to listen: its faces were bound before it started (socket
    // activation), so the request waits in the listener's backlog until the program accepts.
    let answer = tokio::time::timeout(std::time::Duration::from_secs(20), pp.get(url).send())
        .await
        .expect("the external API answers within 20 s");
    let r = answer.expect("the external API answers");
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["tenant"], "0b6f8c8e-7a51-4d0e-9a43-3b1f2f5d9c11");
    assert_eq!(body["client_id"], "2f8c1d3e-4a5b-4c6d-8e7f-9a0b1c2d3e4f");
    assert_eq!(body["authority"], authority.as_str());
    assert_eq!(body["ingress"], "pe-orders-api-prod");
    let public = running.ready().apis["orders-api-prod"].url.clone();
    running.stop().await.unwrap();
    // Stopped with the landscape: nothing answers on its address any more.
    let after = reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .timeout(std::time::Duration::from_secs(2))
        .build()
        .unwrap()
        .get(format!("{public}/whoami"))
        .send()
        .await;
    assert!(after.is_err(), "the external API outlived the landscape");
}
