//! The case-search app in headless Chromium, as a user opens it from the internet: the contoso
//! landscape runs in-process on the loopback fabric, the browser goes through the `internet`
//! host's proxy and trusts the run's CA, signs in on Entra's page, allows the connection and
//! searches. Each step's screenshot is saved under `target/screenshots/<test>/`.

use std::time::Duration;

use ppvnet::scenario::model::ApiImplementation;
use ppvnet::services::stub::{Canned, Mapping, RequestMatch};
use ppvnet_testkit::browser::{self, Browser, BrowserOptions};
use serde_json::{Value, json};

use crate::e2e_support::{self, Started};

/// Pages load through Entra, the runtime and the backend; generous for a loaded CI machine.
const WAIT: Duration = Duration::from_secs(60);
const ALICE: (&str, &str) = ("alice@contoso.onmicrosoft.com", "Alice-Pass-1!");
const BOB: (&str, &str) = ("bob@contoso.onmicrosoft.com", "Bob-Pass-1!");
const CAROL: (&str, &str) = ("carol@contoso.onmicrosoft.com", "Carol-Pass-1!");
const ALICE_OID: &str = "2276843a-7273-459b-b0e8-730c2b509e9b";
const TEAM_NORTH: &str = "8f1da8ea-c517-4c5b-91b3-6952ece13786";
const TEAM_SOUTH: &str = "8a039948-af2d-4408-8900-b16181b8d55f";

/// A running contoso landscape and a browser on its internet host.
struct Session {
    started: Started,
    browser: Browser,
    control: ppvnet::control::Client,
    /// `https://unitedstates-001.azure-apim.net`.
    app_url: String,
}

/// Starts the landscape (changed by `edit`) and the browser; `None` when the test skips.
async fn open(
    test: &str,
    edit: impl FnOnce(&mut ppvnet::scenario::model::Scenario, &mut ppvnet::up::UpOptions),
) -> Option<Session> {
    if crate::require::skip_unless("chromium", browser::missing()) {
        return None;
    }
    let started = e2e_support::start_edited("contoso.yaml", edit).await?;
    let ready = started.running.ready();
    let proxy = ready.hosts["internet"]
        .proxy
        .expect("the internet host has a proxy on loopback");
    let shots = browser::screenshot_dir(test);
    let _ = std::fs::remove_dir_all(&shots);
    let browser = Browser::start(BrowserOptions {
        proxy: Some(proxy.to_string()),
        ca_pem: Some(ready.ca_cert.clone()),
        screenshots: Some(shots),
    })
    .await
    .unwrap();
    let control = ppvnet::control::Client::from_ready(ready).unwrap();
    let pp = ready.power_platform.as_ref().expect("Power Platform runs");
    let app_url = format!("https://{}", pp.host_name);
    Some(Session {
        started,
        browser,
        control,
        app_url,
    })
}

impl Session {
    async fn goto_app(&self, environment: &str, q: &str) {
        let mut url = format!("{}/apps/{environment}", self.app_url);
        if !q.is_empty() {
            url.push_str(&format!("?q={q}"));
        }
        self.browser.goto(&url).await.unwrap();
    }

    /// Fills Entra's sign-in form (already open) and submits it.
    async fn sign_in(&self, (upn, password): (&str, &str)) {
        let b = &self.browser;
        let login = b.wait_for("input[name=login]", WAIT).await.unwrap();
        b.type_into(&login, upn).await.unwrap();
        let passwd = b.find("input[name=passwd]").await.unwrap();
        b.type_into(&passwd, password).await.unwrap();
        b.click(&b.find("#idSIButton9").await.unwrap())
            .await
            .unwrap();
    }

    /// After sign-in: allows the connection when the app asks, and waits for results or an
    /// error banner.
    async fn results(&self, step: &str) {
        let b = &self.browser;
        b.wait_for("#connect, #results, #no-results, #error-banner", WAIT)
            .await
            .unwrap();
        if !b.find_all("#connect").await.unwrap().is_empty() {
            b.screenshot("app-connect").await.unwrap();
            b.click(&b.find("#connect").await.unwrap()).await.unwrap();
        }
        if let Err(e) = b
            .wait_for("#results, #no-results, #error-banner", WAIT)
            .await
        {
            let _ = b.screenshot(&format!("{step}-failed")).await;
            let url = b.url().await.unwrap_or_default();
            let page = b.source().await.unwrap_or_default();
            panic!("{e} at {url}:\n{page}");
        }
        b.screenshot(step).await.unwrap();
    }

    /// `(owner, team)` of each case shown.
    async fn cases(&self) -> Vec<(String, String)> {
        let v = self
            .browser
            .execute(
                "return Array.from(document.querySelectorAll('tr.case'))\
                 .map(function(r){return [r.dataset.owner, r.dataset.team];});",
                vec![],
            )
            .await
            .unwrap();
        serde_json::from_value(v).unwrap()
    }

    async fn egress(&self) -> String {
        self.browser.text("#egress").await.unwrap()
    }

    async fn control(&self, path: &str, body: Value) {
        let (status, answer) = self
            .control
            .send_json(reqwest::Method::POST, path, Some(&body))
            .await
            .unwrap();
        assert!((200..300).contains(&status), "{path}: {status} {answer}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn alice_sees_her_teams_cases_carol_sees_all_and_sign_out_works() {
    let Some(s) = open("app_users", |_, _| {}).await else {
        return;
    };
    let b = &s.browser;
    assert!(
        b.trusts_ca(),
        "certutil is installed: the CA is trusted for real"
    );
    // `ppvnet up` tells users the command this test's browser stands for.
    let ready = s.started.running.ready();
    let proxy = ready.hosts["internet"].proxy.unwrap();
    let steps = ppvnet::up::next_steps(ready, std::path::Path::new("ready.json"));
    let command = format!(
        "chromium --proxy-server=http://{proxy} --proxy-bypass-list='<-loopback>' {}/apps/",
        s.app_url
    );
    assert!(steps.contains(&command), "{steps}");
    s.goto_app("prod", "").await;
    b.wait_for("input[name=passwd]", WAIT).await.unwrap();
    b.screenshot("entra-sign-in").await.unwrap();
    s.sign_in(ALICE).await;
    s.results("alice-results").await;
    let cases = s.cases().await;
    assert!(!cases.is_empty(), "{}", b.source().await.unwrap());
    for (owner, team) in &cases {
        assert!(
            owner == ALICE_OID || team == TEAM_NORTH,
            "Alice sees a case of owner {owner}, team {team}"
        );
    }
    assert_eq!(s.egress().await, "pp-prod-westus");
    assert_eq!(b.text("#user").await.unwrap(), "Alice Anders");
    // Sign-out ends the app's and Entra's sessions: signing in again needs the password.
    b.click(&b.find("#sign-out").await.unwrap()).await.unwrap();
    b.wait_for("#signed-out", WAIT).await.unwrap();
    b.screenshot("signed-out").await.unwrap();
    b.click(&b.find("#sign-in-again").await.unwrap())
        .await
        .unwrap();
    b.wait_for("input[name=passwd]", WAIT).await.unwrap();
    s.sign_in(CAROL).await;
    s.results("carol-results").await;
    let teams: std::collections::BTreeSet<String> =
        s.cases().await.into_iter().map(|(_, team)| team).collect();
    assert!(
        teams.contains(TEAM_NORTH) && teams.contains(TEAM_SOUTH),
        "Carol (Cases.Read.All) sees every team's cases: {teams:?}"
    );
    s.started.running.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_wrong_password_shows_entras_error_and_an_expired_session_asks_again() {
    let Some(s) = open("app_sign_in", |_, _| {}).await else {
        return;
    };
    let b = &s.browser;
    s.goto_app("prod", "").await;
    s.sign_in((BOB.0, "not-the-password")).await;
    let error = b.wait_for("#error", WAIT).await.unwrap();
    let text = b.element_text(&error).await.unwrap();
    assert!(text.contains("AADSTS50126"), "{text}");
    b.screenshot("entra-wrong-password").await.unwrap();
    s.sign_in(BOB).await;
    s.results("bob-results").await;
    assert!(!s.cases().await.is_empty());
    // Two hours on the landscape's clock: the user's token, and so the session, expired.
    s.control("/clock/shift", json!({"seconds": 7200})).await;
    s.goto_app("prod", "printer").await;
    let login = b.wait_for("input[name=passwd]", WAIT).await.unwrap();
    drop(login);
    let hint = b
        .execute(
            "return document.querySelector('input[name=login]').value;",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(hint, BOB.0, "the sign-in page names the user again");
    b.screenshot("expired-session-re-prompt").await.unwrap();
    s.sign_in(BOB).await;
    s.results("bob-results-again").await;
    assert!(b.url().await.unwrap().ends_with("/apps/prod?q=printer"));
    s.started.running.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_westus_outage_leaves_the_app_working_from_eastus_and_the_peering_switched_off_shows_the_runtimes_error()
 {
    let Some(s) = open("app_network", |_, opts| {
        // A dropped backend connection shows as the runtime's error in seconds.
        opts.power_platform_limits.call_timeout = Duration::from_secs(20);
    })
    .await
    else {
        return;
    };
    let b = &s.browser;
    let peering = "/network/peerings/between/vnet-prod-westus/vnet-prod-eastus";
    s.goto_app("prod", "").await;
    s.sign_in(ALICE).await;
    s.results("alice-westus").await;
    assert_eq!(s.egress().await, "pp-prod-westus");
    // The environment fails over to eastus, which reaches the backend over the peering.
    s.control("/network/regions/westus/outage", json!({"down": true}))
        .await;
    s.goto_app("prod", "").await;
    s.results("outage-eastus").await;
    assert!(!s.cases().await.is_empty(), "{}", b.source().await.unwrap());
    assert_eq!(s.egress().await, "pp-prod-eastus");
    // Switching the peering off also cuts the runtime's kept-alive connection over it: the
    // next search fails as a new connection would.
    s.control(peering, json!({"enabled": false})).await;
    s.goto_app("prod", "").await;
    s.results("peering-off-error").await;
    let message = b.text("#error-message").await.unwrap();
    assert!(
        message.contains("cases-api-prod.azurewebsites.net") && message.contains("pp-prod-eastus"),
        "{message}"
    );
    let status = b.text("#error-status").await.unwrap();
    assert_eq!(
        status,
        "The server returned an HTTP error with code 502 (Bad Gateway)."
    );
    assert!(b.find_all("#results").await.unwrap().is_empty());
    // With the peering back, the app works from eastus again while westus is down.
    s.control(peering, json!({"enabled": true})).await;
    s.goto_app("prod", "").await;
    s.results("peering-on-eastus").await;
    assert!(!s.cases().await.is_empty(), "{}", b.source().await.unwrap());
    assert_eq!(s.egress().await, "pp-prod-eastus");
    s.started.running.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_case_title_with_markup_renders_as_text() {
    let stubbed = |sc: &mut ppvnet::scenario::model::Scenario, _: &mut ppvnet::up::UpOptions| {
        let api = sc.apis.iter_mut().find(|a| a.name == "cases-api-dev");
        api.expect("contoso has cases-api-dev").implementation =
            ApiImplementation::Stub { mappings: None };
    };
    let Some(s) = open("app_escaping", stubbed).await else {
        return;
    };
    let title = "<script>document.title='pwned'</script><b>bold</b> & \"quoted\"";
    let mapping = Mapping {
        request: RequestMatch {
            method: Some("GET".into()),
            path: Some("/cases/search".into()),
            ..Default::default()
        },
        response: Canned {
            status: 200,
            json_body: Some(json!({"value": [{
                "id": "CAS-XSS", "title": title, "status": "active", "priority": "high",
                "customer": "<img src=x onerror=alert(1)>", "ownerObjectId": ALICE_OID,
                "teamGroupId": TEAM_NORTH,
            }]})),
            ..Default::default()
        },
    };
    let stub = s.started.running.stub("cases-api-dev").expect("a stub");
    stub.answer(&mapping).await.unwrap();
    let b = &s.browser;
    s.goto_app("dev", "").await;
    s.sign_in(ALICE).await;
    s.results("markup-as-text").await;
    assert_eq!(b.text("tr.case td.title").await.unwrap(), title);
    assert_eq!(b.title().await.unwrap(), "Case search", "no script ran");
    assert!(
        b.find_all("tr.case b, tr.case img")
            .await
            .unwrap()
            .is_empty()
    );
    let scripts = b
        .execute("return document.scripts.length;", vec![])
        .await
        .unwrap();
    assert_eq!(scripts, 1, "only the app's own script");
    s.started.running.stop().await.unwrap();
}

/// Issue 14 end to end: Alice has the app open in one browser, an operator opens the dashboard
/// in another through its one-time login URL and starts a westus outage with its button; Alice's
/// next search is served from eastus.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_westus_outage_from_the_dashboard_leaves_the_app_working_from_eastus() {
    let test = "app_dashboard_outage";
    let Some(s) = open(test, |_, _| {}).await else {
        return;
    };
    let app = &s.browser;
    s.goto_app("prod", "").await;
    s.sign_in(ALICE).await;
    s.results("alice-westus").await;
    let before = s.cases().await;
    assert!(!before.is_empty(), "{}", app.source().await.unwrap());
    assert_eq!(s.egress().await, "pp-prod-westus");

    // The dashboard is on the control address, not in the landscape: no proxy.
    let dashboard = Browser::start(BrowserOptions {
        screenshots: Some(browser::screenshot_dir(&format!("{test}/dashboard"))),
        ..Default::default()
    })
    .await
    .unwrap();
    let (status, answer) = s
        .control
        .send_json(
            reqwest::Method::POST,
            "/dashboard/login-url",
            Some(&json!({})),
        )
        .await
        .unwrap();
    assert_eq!(status, 200, "{answer}");
    let login = answer["url"].as_str().expect("a login url");
    dashboard.goto(login).await.unwrap();
    dashboard
        .wait_for("body[data-live=\"true\"] #picture [data-vnet]", WAIT)
        .await
        .unwrap();
    dashboard.screenshot("dashboard").await.unwrap();
    let button = dashboard
        .find("button[data-action=\"outage:westus\"]")
        .await
        .unwrap();
    dashboard.click(&button).await.unwrap();
    assert!(dashboard.alert_text().await.unwrap().contains("westus"));
    dashboard.accept_alert().await.unwrap();
    dashboard
        .wait_for(
            "#picture [data-region=\"westus\"][data-outage=\"true\"]",
            WAIT,
        )
        .await
        .unwrap();
    dashboard.screenshot("westus-outage").await.unwrap();

    let fabric = s.started.running.fabric().handle();
    let since_ms = ppvnet::fabric::flowlog::now_ms();
    s.goto_app("prod", "").await;
    s.results("outage-eastus").await;
    assert_eq!(s.cases().await, before, "the same cases, from eastus");
    assert_eq!(s.egress().await, "pp-prod-eastus");
    let from_east = fabric.flows(&ppvnet::fabric::flowlog::FlowFilter {
        src_host: Some("pp-prod-eastus".into()),
        dst_host: Some("pe-cases-api-prod".into()),
        state: Some(ppvnet::fabric::flowlog::FlowState::B),
        since_ms: Some(since_ms),
        ..Default::default()
    });
    assert!(
        !from_east.is_empty(),
        "the flow log shows the backend call from eastus"
    );
    drop(dashboard);
    s.started.running.stop().await.unwrap();
}
