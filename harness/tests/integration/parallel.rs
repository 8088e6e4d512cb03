//! Several landscapes at once in one process, as a test suite runs them: each claims its own
//! addresses, control port, keys and files, a client of one cannot use another's services, and
//! each stops cleanly without touching the others.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::e2e_support::{OPS, Started, app_token, client, start};

const LANDSCAPES: usize = 6;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn landscapes_started_together_are_isolated_and_stop_cleanly() {
    let started: Vec<Option<Started>> =
        futures::future::join_all((0..LANDSCAPES).map(|_| start("contoso.yaml"))).await;
    let Some(started) = started.into_iter().collect::<Option<Vec<Started>>>() else {
        return; // skipped (port 443), as start says
    };
    let ready: Vec<_> = started.iter().map(|s| s.running.ready().clone()).collect();

    // No address, port or key in common.
    let distinct = |values: Vec<String>, what: &str| {
        let set: BTreeSet<&String> = values.iter().collect();
        assert_eq!(set.len(), LANDSCAPES, "{what} clash: {values:?}");
    };
    distinct(
        ready.iter().map(|r| r.control_url.clone()).collect(),
        "control API",
    );
    distinct(
        ready
            .iter()
            .map(|r| r.hosts["internet"].address.to_string())
            .collect(),
        "host address",
    );
    distinct(
        ready
            .iter()
            .map(|r| r.key_vaults["kv-contoso-prod"].url.clone())
            .collect(),
        "vault face",
    );
    let mut kids = Vec::new();
    for s in &started {
        let c = client(&s.running, "internet");
        let jwks: Value = c
            .get(format!(
                "https://login.microsoftonline.com/{}/discovery/v2.0/keys",
                s.running.ready().tenant_id
            ))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        kids.push(jwks["keys"][0]["kid"].as_str().unwrap().to_string());
    }
    distinct(kids, "Entra signing key");

    // A token of the first landscape's Entra is worthless at the second one's vault, even for
    // the same app and secret: the keys differ.
    let first = client(&started[0].running, "pp-prod-westus");
    let foreign = app_token(&first, OPS, "https://vault.azure.net/.default").await;
    let second = client(&started[1].running, "pp-prod-westus");
    let own = app_token(&second, OPS, "https://vault.azure.net/.default").await;
    let url = "https://kv-contoso-prod.vault.azure.net/secrets/cases-connector-secret?api-version=2025-07-01";
    let status = |token: String| {
        let second = second.clone();
        async move {
            second
                .get(url)
                .bearer_auth(token)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    assert_eq!(status(own).await, 200);
    assert_eq!(
        status(foreign).await,
        401,
        "another landscape's token is refused"
    );

    // Stopped in reverse order: each leaves nothing behind and the others keep running.
    let mut started = started;
    while let Some(s) = started.pop() {
        let ready_file = s.run_dir.parent().unwrap().join("ready.json");
        assert!(ready_file.exists());
        s.running.stop().await.unwrap();
        assert!(!ready_file.exists() && !s.run_dir.exists());
        for other in &started {
            let c = client(&other.running, "internet");
            let url = format!(
                "https://login.microsoftonline.com/{}/v2.0/.well-known/openid-configuration",
                other.running.ready().tenant_id
            );
            assert_eq!(c.get(url).send().await.unwrap().status(), 200);
        }
    }
}
