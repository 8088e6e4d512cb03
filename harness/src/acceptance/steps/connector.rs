//! Steps of `features/connector.feature`: a landscape user calls a custom connector through
//! the Power Platform connector runtime, with the same browser-less helper `ppvnet pp` uses
//! (the control API's `/pp` routes), and the harness inspects what the runtime, Entra, Key
//! Vault and the flow log saw.

use crate::fabric::FabricKind;
use crate::fabric::flowlog::FlowFilter;
use crate::scenario::model::Scenario;
use cucumber::{given, then, when};
use serde_json::Value;

use super::PpvWorld;
use super::landscape::{Live, control_get, control_post, live, start_with};
use crate::acceptance::{fabric_named, landscape_to_start};

/// Starts the named landscape on a fabric (`None`: the run's default, `--network`).
async fn start(w: &mut PpvWorld, name: &str, kind: Option<&str>, edit: impl FnOnce(&mut Scenario)) {
    let file = landscape_to_start(name);
    let kind: FabricKind = fabric_named(kind);
    start_with(w, &file, kind, edit).await;
}

#[given(expr = "the {word} landscape is running on the {word} fabric")]
async fn running_on(w: &mut PpvWorld, name: String, kind: String) {
    start(w, &name, Some(&kind), |_| {}).await;
}

#[given(expr = "the {word} landscape is running with the redirect URI of {string} unregistered")]
async fn running_without_redirect(w: &mut PpvWorld, name: String, app: String) {
    start(w, &name, None, |s| {
        let a = s.apps.iter_mut().find(|a| a.name == app).expect("the app");
        a.redirect_uris.retain(|u| !u.contains("/redirect/"));
    })
    .await;
}

#[given(expr = "the {word} landscape is running without the role {string} of {string} on {string}")]
async fn running_without_role(
    w: &mut PpvWorld,
    name: String,
    role: String,
    principal: String,
    vault: String,
) {
    start(w, &name, None, |s| {
        let before = s.role_assignments.len();
        s.role_assignments.retain(|r| {
            !(r.role == role
                && r.principal == principal
                && r.scope.ends_with(&format!("/vaults/{vault}")))
        });
        assert_eq!(
            s.role_assignments.len() + 1,
            before,
            "exactly one such role assignment"
        );
    })
    .await;
}

#[given(
    expr = "the {word} landscape is running on the {word} fabric without the link of {string} to {string}"
)]
async fn running_without_link(
    w: &mut PpvWorld,
    name: String,
    kind: String,
    zone: String,
    vnet: String,
) {
    start(w, &name, Some(&kind), |s| {
        let z = s
            .private_dns_zones
            .iter_mut()
            .find(|z| z.name == zone)
            .expect("the zone");
        z.vnet_links.retain(|v| *v != vnet);
    })
    .await;
}

#[given(
    expr = "the {word} landscape is running on the {word} fabric with {string} of {string} set to {string}"
)]
async fn running_with_variable(
    w: &mut PpvWorld,
    name: String,
    kind: String,
    variable: String,
    env: String,
    value: String,
) {
    start(w, &name, Some(&kind), |s| {
        let e = s
            .environments
            .iter_mut()
            .find(|e| e.name == env)
            .expect("the environment");
        let v = e
            .variables
            .iter_mut()
            .find(|v| v.schema_name == variable)
            .expect("the variable");
        v.value = value;
    })
    .await;
}

/// The last call through the runtime, or the last failure of the user flow.
fn last(l: &Live) -> &(u16, Value) {
    l.last.as_ref().expect("a call was made")
}

async fn user_invoke(w: &mut PpvWorld, user: &str, call: &str, connector: &str, env: &str) {
    let (method, path) = call.split_once(' ').expect("METHOD /path");
    let l = live(w);
    let body = serde_json::json!({
        "environment": env, "connector": connector, "user": user, "method": method, "path": path,
    });
    let (status, answer) = control_post(l, "/pp/invoke", body).await;
    // The user flow itself failed (sign-in, consent): keep its error as the last answer.
    l.last = Some(if status == 200 {
        (answer["status"].as_u64().unwrap_or(0) as u16, answer)
    } else {
        (status, answer)
    });
}

#[when(expr = "{string} calls {string} on {string} in {string}")]
async fn calls(w: &mut PpvWorld, user: String, call: String, connector: String, env: String) {
    user_invoke(w, &user, &call, &connector, &env).await;
}

#[when(expr = "{string} connects to {string} in {string}")]
async fn connects(w: &mut PpvWorld, user: String, connector: String, env: String) {
    let l = live(w);
    let body = serde_json::json!({"environment": env, "connector": connector, "user": user});
    let (status, answer) = control_post(l, "/pp/connect", body).await;
    assert_eq!(status, 200, "{answer}");
    l.last = Some((status, answer));
}

#[when(expr = "{string} tries to connect to {string} in {string}")]
async fn tries_to_connect(w: &mut PpvWorld, user: String, connector: String, env: String) {
    let l = live(w);
    let body = serde_json::json!({"environment": env, "connector": connector, "user": user});
    l.last = Some(control_post(l, "/pp/connect", body).await);
}

#[then(expr = "the connection fails with Entra's error {string}")]
fn connection_fails(w: &mut PpvWorld, code: String) {
    let (status, body) = last(live(w));
    assert_ne!(*status, 200, "the connection was made: {body}");
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains(&code), "expected {code} in: {message}");
}

/// The last call as evidence for a failed step: the runtime's answer (status, headers, body)
/// and the flow-log records of the connections that carried it (by its correlation id).
fn call_evidence(l: &Live) -> String {
    let Some((status, body)) = l.last.as_ref() else {
        return "no call was made".into();
    };
    let exchange = serde_json::to_string_pretty(body).unwrap_or_default();
    let correlation = body["headers"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|h| h[0] == "x-ms-correlation-id")
        .and_then(|h| h[1].as_str());
    let flows = correlation.map_or_else(
        || "(the answer carries no correlation id)".to_string(),
        |c| {
            let records = l.running.fabric().handle().flows(&FlowFilter {
                correlation_id: Some(c.to_string()),
                ..Default::default()
            });
            if records.is_empty() {
                format!("(no flow record for correlation id {c})")
            } else {
                records
                    .iter()
                    .map(|r| {
                        format!(
                            "{} -> {} rule {} {}",
                            r.src_host,
                            r.dst_host,
                            r.rule,
                            r.tuple()
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            }
        },
    );
    format!("HTTP exchange: status {status}\n{exchange}\nflow log:\n{flows}")
}

#[then(expr = "the call succeeds from host {string}")]
fn call_succeeds(w: &mut PpvWorld, host: String) {
    let l = live(w);
    let (status, body) = last(l);
    assert_eq!(*status, 200, "{}", call_evidence(l));
    let egress = body["headers"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|h| h[0] == "x-ppvnet-egress-host")
        .and_then(|h| h[1].as_str());
    assert_eq!(egress, Some(host.as_str()), "{}", call_evidence(l));
}

fn user_groups(l: &Live, upn: &str) -> (String, Vec<String>) {
    let file = &l.running.ready().scenario_file;
    let landscape = crate::scenario::load(file).expect("the landscape file");
    let s = &landscape.scenario;
    let user = s.users.iter().find(|u| u.upn == upn).expect("the user");
    let groups = s
        .groups
        .iter()
        .filter(|g| user.groups.contains(&g.name))
        .map(|g| g.id.clone())
        .collect();
    (user.object_id.clone(), groups)
}

fn returned_cases(l: &Live) -> Vec<Value> {
    let (_, body) = last(l);
    let cases = body["body"]["value"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(!cases.is_empty(), "the call returned no case: {body}");
    cases
}

#[then(expr = "every case the call returned belongs to {string} or to a group of hers")]
fn cases_are_hers(w: &mut PpvWorld, upn: String) {
    let l = live(w);
    let (oid, groups) = user_groups(l, &upn);
    for c in returned_cases(l) {
        let team = c["teamGroupId"].as_str().unwrap_or_default();
        assert!(
            c["ownerObjectId"] == oid.as_str() || groups.iter().any(|g| g == team),
            "{c} is neither {upn}'s nor her team's"
        );
    }
}

#[then("the call returned cases of both teams")]
fn both_teams(w: &mut PpvWorld) {
    let l = live(w);
    let mut teams: Vec<String> = returned_cases(l)
        .iter()
        .filter_map(|c| c["teamGroupId"].as_str().map(str::to_string))
        .collect();
    teams.sort();
    teams.dedup();
    assert!(teams.len() >= 2, "only teams {teams:?}");
}

#[then(expr = "the flow log shows the call leaving {string} for {string}")]
async fn flow_log_shows(w: &mut PpvWorld, host: String, service: String) {
    let l = live(w);
    let (_, body) = last(l);
    let correlation = body["headers"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|h| h[0] == "x-ms-correlation-id")
        .and_then(|h| h[1].as_str())
        .unwrap_or_else(|| panic!("the runtime echoes no correlation id: {body}"))
        .to_string();
    // The connections that carried this very call, by its correlation id. The netns fabric
    // logs a flow when its router's reader gets to it, which may be after the call returned:
    // wait for the record (woken by each new one), never a fixed time.
    let filter = FlowFilter {
        correlation_id: Some(correlation.clone()),
        ..Default::default()
    };
    let flows = l
        .running
        .fabric()
        .handle()
        .flow_log()
        .wait_for(&filter, std::time::Duration::from_secs(10), |f| {
            !f.is_empty()
        })
        .await;
    assert!(!flows.is_empty(), "no flow carried the call {correlation}");
    for f in &flows {
        assert_eq!(
            (f.src_host.as_str(), f.service.as_str()),
            (host.as_str(), service.as_str())
        );
    }
}

#[then(expr = "the runtime answers {int}")]
fn runtime_answers(w: &mut PpvWorld, status: u16) {
    let l = live(w);
    let (got, _) = last(l);
    assert_eq!(*got, status, "{}", call_evidence(l));
}

fn runtime_message(body: &Value) -> String {
    body["body"].to_string()
}

#[then(expr = "the runtime's message names the host {string}")]
fn message_names_host(w: &mut PpvWorld, host: String) {
    let l = live(w);
    let m = runtime_message(&last(l).1);
    assert!(
        m.contains(&host),
        "{host} not named in {m}\n{}",
        call_evidence(l)
    );
}

#[then(expr = "the runtime's message says {string}")]
fn message_says(w: &mut PpvWorld, text: String) {
    let l = live(w);
    let m = runtime_message(&last(l).1);
    assert!(
        m.contains(&text),
        "{text:?} not in {m}\n{}",
        call_evidence(l)
    );
}

#[when(expr = "the connector {string} is saved again in {string}")]
async fn resave(w: &mut PpvWorld, connector: String, env: String) {
    let l = live(w);
    let path = format!("/powerplatform/environments/{env}/connectors/{connector}/resave");
    let (status, body) = control_post(l, &path, Value::Null).await;
    assert_eq!(status, 200, "{body}");
}

#[then(
    expr = "the variable {string} of {string} does not resolve, with a message containing {string}"
)]
async fn variable_unresolved(w: &mut PpvWorld, variable: String, env: String, text: String) {
    let l = live(w);
    let list = control_get(l, &format!("/powerplatform/environments/{env}/connectors")).await;
    let text_of = list.to_string();
    let errors: Vec<String> = list["value"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|c| c["errors"].as_array().cloned().unwrap_or_default())
        .filter_map(|e| e.as_str().map(str::to_string))
        .filter(|e| e.contains(&variable))
        .collect();
    assert!(!errors.is_empty(), "{variable} resolved: {text_of}");
    assert!(
        errors.iter().any(|e| e.contains(&text)),
        "{text:?} not in {errors:?}"
    );
}

#[then(
    expr = "{string} cannot create a connection to {string} in {string}, with a message containing {string}"
)]
async fn cannot_connect(
    w: &mut PpvWorld,
    user: String,
    connector: String,
    env: String,
    text: String,
) {
    let l = live(w);
    let body = serde_json::json!({"environment": env, "connector": connector, "user": user});
    let (status, answer) = control_post(l, "/pp/connect", body).await;
    assert_ne!(status, 200, "{answer}");
    assert!(
        answer.to_string().contains(&text),
        "{text:?} not in {answer}"
    );
}

/// The connector app's client secret is replaced: a new one added in Entra and written to the
/// vault (by the ops pipeline, from inside the prod vNet), the old one deleted in Entra.
#[when(expr = "the connector's client secret is rotated in Entra and in {string}")]
async fn rotate_secret(w: &mut PpvWorld, vault: String) {
    let l = live(w);
    let ready = l.running.ready().clone();
    let app = &ready.apps["cases-connector"];
    let (status, created) = control_post(
        l,
        &format!("/entra/applications/{}/secrets", app.client_id),
        serde_json::json!({"displayName": "rotated"}),
    )
    .await;
    assert!(status == 200 || status == 201, "{created}");
    let new_secret = created["secretText"]
        .as_str()
        .expect("the new secret")
        .to_string();
    let old = uuid::Uuid::new_v5(
        &uuid::Uuid::NAMESPACE_URL,
        b"ppvnet:cases-connector:connector",
    );
    let r = l
        .control
        .delete(&format!(
            "/entra/applications/{}/secrets/{old}",
            app.client_id
        ))
        .send()
        .await
        .expect("control API");
    assert!(r.status().is_success(), "{}", r.status());
    let ops = &ready.apps["ops-automation"];
    let form = [
        ("grant_type", "client_credentials"),
        ("client_id", ops.client_id.as_str()),
        (
            "client_secret",
            ops.client_secret.as_deref().unwrap_or_default(),
        ),
        ("scope", "https://vault.azure.net/.default"),
    ];
    let token: Value = l
        .client("internet")
        .post(format!(
            "https://login.microsoftonline.com/{}/oauth2/v2.0/token",
            ready.tenant_id
        ))
        .form(&form)
        .send()
        .await
        .expect("Entra")
        .json()
        .await
        .expect("JSON");
    let token = token["access_token"]
        .as_str()
        .expect("a token for the pipeline");
    let r = l
        .client("pp-prod-westus")
        .put(format!(
            "https://{vault}.vault.azure.net/secrets/cases-connector-secret?api-version=7.5"
        ))
        .bearer_auth(token)
        .json(&serde_json::json!({"value": new_secret}))
        .send()
        .await
        .expect("the vault");
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap_or_default());
}

/// Moves the landscape's shared clock (every service's time) by whole hours or minutes.
#[when(expr = "the clock advances by {int} {word}")]
async fn clock_advances(w: &mut PpvWorld, count: i64, unit: String) {
    let seconds = match unit.as_str() {
        "hour" | "hours" => count * 3600,
        "minute" | "minutes" => count * 60,
        other => panic!("'{other}': the clock advances by hours or minutes"),
    };
    let l = live(w);
    let (status, body) =
        control_post(l, "/clock/shift", serde_json::json!({ "seconds": seconds })).await;
    assert_eq!(status, 200, "POST /clock/shift: {body}");
}

/// The connection of `user` (made by an earlier step) is tested as the maker portal does.
#[then(
    expr = "testing the connection of {string} to {string} in {string} shows the error {string}"
)]
async fn connection_in_error(
    w: &mut PpvWorld,
    user: String,
    connector: String,
    env: String,
    text: String,
) {
    let l = live(w);
    let list = control_get(l, "/powerplatform/connections").await;
    let c = list["value"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| {
            c["connector"] == connector.as_str()
                && c["environment"] == env.as_str()
                && c["owner"].as_str().is_some()
        })
        .unwrap_or_else(|| panic!("no connection of {user}: {list}"))
        .clone();
    let id = c["id"].as_str().expect("an id");
    let (status, tested) = control_post(
        l,
        &format!("/powerplatform/connections/{id}/test"),
        Value::Null,
    )
    .await;
    assert_eq!(status, 200, "{tested}");
    assert_eq!(tested["status"], "Error", "{tested}");
    assert!(
        tested["error"].as_str().unwrap_or_default().contains(&text),
        "{text:?} not in {tested}"
    );
}

#[when(expr = "{string} calls {string} through the connection of {string}")]
async fn calls_through_other(w: &mut PpvWorld, user: String, call: String, owner: String) {
    let l = live(w);
    let (connection, env_id) = {
        let list = control_get(l, "/powerplatform/connections").await;
        let c = list["value"]
            .as_array()
            .and_then(|v| v.first())
            .cloned()
            .unwrap_or_else(|| panic!("{owner} has no connection: {list}"));
        let env = c["environment"].as_str().unwrap_or_default().to_string();
        let id = l
            .running
            .ready()
            .power_platform
            .as_ref()
            .expect("Power Platform")
            .environments[&env]
            .id
            .clone();
        (c["id"].as_str().unwrap_or_default().to_string(), id)
    };
    let (method, path) = call.split_once(' ').expect("METHOD /path");
    let agent = user_agent(l);
    let password = l.running.ready().users[&user].password.clone();
    let token = agent
        .user_token(&user, &password)
        .await
        .expect("a user token");
    let answer = agent
        .invoke(
            &token,
            &crate::powerplatform::user::Call {
                environment_id: &env_id,
                connector: "contoso-cases",
                connection: &connection,
                method,
                path,
                body: None,
                correlation_id: uuid::Uuid::new_v4().to_string(),
            },
        )
        .await
        .expect("the runtime answers");
    l.last = Some((answer.status, serde_json::json!({"body": answer.body})));
}

/// A user agent on the internet host, as the `/pp` routes use.
fn user_agent(l: &Live) -> crate::powerplatform::user::UserAgent {
    let ready = l.running.ready();
    crate::powerplatform::user::UserAgent {
        http: l.client("internet"),
        authority: ready.entra.as_ref().expect("Entra").authority.clone(),
        power_platform: ready
            .power_platform
            .as_ref()
            .expect("Power Platform")
            .url
            .clone(),
    }
}

#[when(expr = "{string} calls the runtime with a token for {string}")]
async fn calls_with_other_token(w: &mut PpvWorld, user: String, resource: String) {
    let l = live(w);
    let ready = l.running.ready().clone();
    let app = &ready.apps["cases-connector"];
    let token = user_agent(l)
        .password_grant(
            &app.client_id,
            app.client_secret.as_deref(),
            &user,
            &ready.users[&user].password,
            &format!("{resource}/.default"),
        )
        .await
        .expect("a token for the other resource");
    let env_id = ready
        .power_platform
        .as_ref()
        .expect("Power Platform")
        .environments["prod"]
        .id
        .clone();
    let answer = user_agent(l)
        .invoke(
            &token,
            &crate::powerplatform::user::Call {
                environment_id: &env_id,
                connector: "contoso-cases",
                connection: "00000000000000000000000000000000",
                method: "GET",
                path: "/cases/search",
                body: None,
                correlation_id: uuid::Uuid::new_v4().to_string(),
            },
        )
        .await
        .expect("the runtime answers");
    l.last = Some((answer.status, serde_json::json!({"body": answer.body})));
}
