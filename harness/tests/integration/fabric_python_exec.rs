//! Issue 6 acceptance: inside the netns fabric, an unmodified Python `azure-keyvault-secrets`
//! program run with `exec` from the prod delegated subnet reads a secret of `kv-contoso-prod` by
//! its real URL (private DNS → private endpoint); the same program on the public internet host
//! gets 403 ForbiddenByConnection. A team's own API program (`scenarios/examples/external-api`)
//! runs on the netns fabric with its faces handed over, validates Entra tokens with keys it
//! fetches itself, and is reached through its private endpoint only. Skips (with the reason)
//! when not root or when Python or its packages are missing
//! (`pip install azure-identity azure-keyvault-secrets`), or fail when `PPVNET_REQUIRE` lists
//! them.

use crate::fabric_support::*;
use crate::require::skip_unless;
use ppvnet::fabric::FabricKind;
use ppvnet::up::{self, UpOptions};

/// Runs `command` with `sh -c` inside `host` by `ppvnet exec`; its exit code and output
/// (stdout and stderr, through a file in `dir`).
pub(crate) fn exec_shell(
    ready: &std::path::Path,
    dir: &std::path::Path,
    host: &'static str,
    command: String,
) -> impl std::future::Future<Output = (i32, String)> + use<> {
    let out = dir.join(format!("{host}.out"));
    let argv = vec![
        "sh".to_string(),
        "-c".to_string(),
        format!("{command} > {} 2>&1", out.display()),
    ];
    let ready = ready.to_path_buf();
    async move {
        let code = tokio::task::spawn_blocking(move || ppvnet::fabric::exec(&ready, host, &argv))
            .await
            .unwrap()
            .unwrap();
        (code, std::fs::read_to_string(out).unwrap_or_default())
    }
}

pub(crate) fn python_ready() -> Option<String> {
    match std::process::Command::new("python3")
        .args(["-c", "import msal, azure.identity, azure.keyvault.secrets"])
        .output()
    {
        Ok(o) if o.status.success() => None,
        Ok(o) => Some(format!(
            "Python packages missing: {}",
            String::from_utf8_lossy(&o.stderr).trim()
        )),
        Err(e) => Some(format!("python3 not available: {e}")),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_sdk_reads_the_prod_secret_from_the_delegated_subnet_and_is_refused_on_the_internet()
{
    if skip_unless("netns", netns_unavailable()) || skip_unless("python", python_ready()) {
        return;
    }
    let l = landscape("contoso");
    let dir = tempfile::tempdir().unwrap();
    let ready = dir.path().join("ready.json");
    let running = up::start(&l, &UpOptions::new(FabricKind::Netns, ready.clone()))
        .await
        .unwrap_or_else(|e| panic!("{e:#}"));
    let r = running.ready().clone();
    let app = &r.apps["ops-automation"];
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/kv_read_secret.py");
    let run = |host: &'static str| {
        let command = format!(
            "python3 {script} {} {} '{}' kv-contoso-prod cases-connector-secret",
            r.tenant_id,
            app.client_id,
            app.client_secret.clone().unwrap_or_default(),
        );
        exec_shell(&ready, dir.path(), host, command)
    };
    let connector_secret = l
        .scenario
        .apps
        .iter()
        .find(|a| a.name == "cases-connector")
        .unwrap()
        .secrets[0]
        .value
        .clone();
    let (code, out) = run("pp-prod-westus").await;
    assert_eq!((code, out.trim()), (0, connector_secret.as_str()), "{out}");
    let (code, out) = run("internet").await;
    assert_eq!(code, 3, "{out}");
    assert!(
        out.starts_with("403 ") && out.contains("ForbiddenByConnection"),
        "{out}"
    );
    running.stop().await.unwrap();
}

/// A stdlib-only Python client: a client-credentials token for the orders API from Entra
/// (`AZURE_AUTHORITY_HOST`, set by `exec`), then `GET /caller` by the API's real host name with
/// that token and with a copy whose signature is broken. Prints one JSON line per call.
const ORDERS_CLIENT: &str = r#"
import json, os, sys, urllib.error, urllib.parse, urllib.request
tenant, client_id, secret = sys.argv[1:4]
form = urllib.parse.urlencode({"grant_type": "client_credentials", "client_id": client_id,
    "client_secret": secret, "scope": "api://fabrikam-orders/.default"}).encode()
token_url = f"{os.environ['AZURE_AUTHORITY_HOST']}/{tenant}/oauth2/v2.0/token"
token = json.load(urllib.request.urlopen(token_url, form, timeout=30))["access_token"]
head, body, signature = token.split(".")
forged = ".".join([head, body, ("A" if signature[0] != "A" else "B") + signature[1:]])
for bearer in (token, forged):
    request = urllib.request.Request("https://orders-api-prod.azurewebsites.net/caller",
                                     headers={"Authorization": "Bearer " + bearer})
    try:
        with urllib.request.urlopen(request, timeout=30) as r:
            status, text, challenge = r.status, r.read().decode(), None
    except urllib.error.HTTPError as e:
        status, text, challenge = e.code, e.read().decode(), e.headers.get("www-authenticate")
    print(json.dumps({"status": status, "body": text, "challenge": challenge}))
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_team_api_program_validates_entra_tokens_behind_its_private_endpoint_on_netns() {
    if skip_unless("netns", netns_unavailable())
        || skip_unless("python", crate::require::python3_missing())
    {
        return;
    }
    let l = landscape("examples/external-api");
    let dir = tempfile::tempdir().unwrap();
    let ready = dir.path().join("ready.json");
    let script = dir.path().join("orders_client.py");
    std::fs::write(&script, ORDERS_CLIENT).unwrap();
    let running = up::start(&l, &UpOptions::new(FabricKind::Netns, ready.clone()))
        .await
        .unwrap_or_else(|e| panic!("{e:#}"));
    let r = running.ready().clone();
    let pipeline = &r.apps["pipeline"];
    let run = |host: &'static str| {
        let command = format!(
            "python3 {} {} {} '{}'",
            script.display(),
            r.tenant_id,
            pipeline.client_id,
            pipeline.client_secret.clone().unwrap_or_default(),
        );
        let exec = exec_shell(&ready, dir.path(), host, command);
        async move {
            let (code, out) = exec.await;
            assert_eq!(code, 0, "{out}");
            out.lines()
                .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
                .collect::<Vec<_>>()
        }
    };

    // From the prod delegated subnet, by the API's real name: private DNS → private endpoint.
    // The program checks the token's signature with keys it fetched from Entra's JWKS itself,
    // over the internet host's network, so a 200 here proves that fetch.
    let answers = run("pp-prod-westus").await;
    assert_eq!(answers.len(), 2, "{answers:?}");
    assert_eq!(answers[0]["status"], 200, "{answers:?}");
    let caller: serde_json::Value =
        serde_json::from_str(answers[0]["body"].as_str().unwrap()).unwrap();
    assert_eq!(caller["app_id"], pipeline.client_id.as_str(), "{caller}");
    assert_eq!(caller["ingress"], "pe-orders-api-prod", "{caller}");
    assert_eq!(answers[1]["status"], 401, "{answers:?}");
    assert_eq!(
        answers[1]["challenge"],
        r#"Bearer error="invalid_token", error_description="The signature is invalid""#
    );

    // From the internet the name resolves to the public face; public network access is
    // disabled, so App Service refuses it before the program sees the request.
    let answers = run("internet").await;
    assert_eq!(answers.len(), 2, "{answers:?}");
    for a in &answers {
        assert_eq!(a["status"], 403, "{a}");
        assert!(
            a["body"]
                .as_str()
                .unwrap()
                .contains("The web app you have attempted to reach has blocked your access."),
            "{a}"
        );
    }
    running.stop().await.unwrap();
}
