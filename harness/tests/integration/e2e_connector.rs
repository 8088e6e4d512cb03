//! The custom connector runtime end to end as a user runs it: `ppvnet up` on each fabric, then
//! `ppvnet pp invoke` as each contoso user (connection by consent on Entra's page, secrets from
//! the prod vault through its private endpoint, the call from the delegated subnet), `ppvnet pp
//! connections`, and the flow log file showing the calls leave from `pp-prod-westus`.

use std::path::Path;
use std::process::{Command, Stdio};

use crate::fabric_support::netns_unavailable;
use crate::up_cli::{terminate, up};

/// `ppvnet pp ARGS --ready-file READY`: exit code and stdout.
fn pp(ready: &Path, args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_ppvnet"))
        .arg("pp")
        .args(args)
        .arg("--ready-file")
        .arg(ready)
        .stderr(Stdio::inherit())
        .output()
        .expect("ppvnet pp runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

/// GET a JSON document from the control API of the landscape behind `ready_path`, with the
/// run's token, from this synchronous test.
fn control_get(ready_path: &Path, path: &str) -> serde_json::Value {
    let ready = ppvnet::ready::ReadyFile::read(ready_path).expect("the ready file");
    let client = ppvnet::control::Client::from_ready(&ready).expect("a control client");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (status, body) = rt
        .block_on(client.send_json(reqwest::Method::GET, path, None))
        .expect("the control API answers");
    assert_eq!(status, 200, "{body}");
    body
}

/// Each user's object id and group ids, from the landscape file.
fn identities() -> Vec<(String, String, Vec<String>)> {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/contoso.yaml");
    let l = ppvnet::scenario::load(&file).expect("contoso loads");
    let s = &l.scenario;
    s.users
        .iter()
        .map(|u| {
            let groups = s
                .groups
                .iter()
                .filter(|g| u.groups.contains(&g.name))
                .map(|g| g.id.clone())
                .collect();
            (u.upn.clone(), u.object_id.clone(), groups)
        })
        .collect()
}

fn invoke_as_each_user(network: &str) {
    let dir = tempfile::tempdir().unwrap();
    let ready_path = dir.path().join("ready.json");
    let flow_log = dir.path().join("flows.jsonl");
    let scenario = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/contoso.yaml");
    let (mut child, ready) = up(
        &scenario,
        &ready_path,
        Stdio::null(),
        &[
            "--network",
            network,
            "--flow-log",
            &flow_log.to_string_lossy(),
        ],
    );
    let pp_entry = &ready["power_platform"];
    assert_eq!(
        pp_entry["environments"]["prod"]["active_host"],
        "pp-prod-westus"
    );
    assert!(
        pp_entry["connectors"]["contoso-cases"]["redirect_url"]
            .as_str()
            .is_some_and(|u| u.starts_with("https://global.consent.azure-apim.net/redirect/"))
    );
    let mut seen = Vec::new();
    for (upn, oid, groups) in identities() {
        let (code, out) = pp(
            &ready_path,
            &[
                "invoke",
                "--env",
                "prod",
                "--connector",
                "contoso-cases",
                "--user",
                &upn,
                "GET",
                "/cases/search?q=outage&top=50",
            ],
        );
        assert_eq!(code, 0, "{upn}: {out}");
        assert!(out.starts_with("HTTP 200\n"), "{out}");
        assert!(
            out.contains("\nx-ppvnet-egress-host: pp-prod-westus\n"),
            "{out}"
        );
        let body: serde_json::Value =
            serde_json::from_str(out.split_once("\n\n").map(|(_, b)| b).unwrap_or_default())
                .expect("the body is JSON");
        let cases = body["value"].as_array().cloned().unwrap_or_default();
        assert!(!cases.is_empty(), "{upn} found nothing");
        // Carol (Supervisors) holds Cases.Read.All; Alice and Bob see their own and their team's.
        if groups
            .iter()
            .all(|g| g != "03adf887-ed2f-4962-8530-7bf50650efcb")
        {
            for c in &cases {
                assert!(
                    c["ownerObjectId"] == oid.as_str()
                        || groups.iter().any(|g| c["teamGroupId"] == g.as_str()),
                    "{upn} got someone else's case {c}"
                );
            }
        }
        seen.push(cases.len());
        // The call's correlation id names the connection that carried it in the flow log.
        let correlation = out
            .lines()
            .find_map(|l| l.strip_prefix("x-ms-correlation-id: "))
            .expect("the runtime echoes the correlation id");
        let flows = control_get(
            &ready_path,
            &format!("/network/flows?correlation_id={correlation}"),
        );
        let flows = flows.as_array().cloned().unwrap_or_default();
        assert!(!flows.is_empty(), "no flow carried {correlation}");
        for f in &flows {
            assert_eq!(f["src_host"], "pp-prod-westus", "{f}");
            assert_eq!(f["service"], "cases-api-prod", "{f}");
        }
    }
    let (code, out) = pp(&ready_path, &["connections"]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(out.matches("Connected").count(), 3, "{out}");
    // A call's connection to the API shows in the flow log as leaving the delegated subnet.
    terminate(&mut child);
    let flows = std::fs::read_to_string(&flow_log).expect("the flow log file");
    let from_prod = flows
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|r| r["src_host"] == "pp-prod-westus" && r["service"] == "cases-api-prod")
        .count();
    assert!(
        from_prod >= 1,
        "no flow from pp-prod-westus to cases-api-prod in {flows}"
    );
}

#[test]
fn each_contoso_user_searches_through_the_connector_on_loopback() {
    invoke_as_each_user("loopback");
}

#[test]
fn each_contoso_user_searches_through_the_connector_on_netns() {
    if crate::require::skip_unless("netns", netns_unavailable()) {
        return;
    }
    invoke_as_each_user("netns");
}
