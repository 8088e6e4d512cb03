//! Issue 6 acceptance: inside the netns fabric, an unmodified Python `azure-keyvault-secrets`
//! program run with `exec` from the prod delegated subnet reads a secret of `kv-contoso-prod` by
//! its real URL (private DNS → private endpoint); the same program on the public internet host
//! gets 403 ForbiddenByConnection. Skips (with the reason) when not root or when the Python
//! packages are missing (`pip install azure-identity azure-keyvault-secrets`).

mod fabric_support;

use fabric_support::*;
use ppvnet::fabric::FabricKind;
use ppvnet::up::{self, UpOptions};

fn python_ready() -> Option<String> {
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
    if let Some(why) = netns_unavailable().or_else(python_ready) {
        eprintln!("SKIP python exec acceptance: {why}");
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
        let out = dir.path().join(format!("{host}.out"));
        let argv = vec![
            "sh".to_string(),
            "-c".to_string(),
            format!(
                "python3 {script} {} {} '{}' kv-contoso-prod cases-connector-secret > {} 2>&1",
                r.tenant_id,
                app.client_id,
                app.client_secret.clone().unwrap_or_default(),
                out.display()
            ),
        ];
        let ready = ready.clone();
        async move {
            let code =
                tokio::task::spawn_blocking(move || ppvnet::fabric::exec(&ready, host, &argv))
                    .await
                    .unwrap()
                    .unwrap();
            (code, std::fs::read_to_string(out).unwrap_or_default())
        }
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
