//! `ppvnet up` end to end as a user runs it: the ready file appears with the landscape's
//! identities and endpoints, the control API answers, and SIGTERM stops everything with exit
//! code 0, leaving no files behind.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn wait_for_file(path: &Path, child: &mut std::process::Child) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if let Ok(text) = std::fs::read_to_string(path) {
            return serde_json::from_str(&text).expect("the ready file is JSON");
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("ppvnet up exited early with {status}");
        }
        assert!(Instant::now() < deadline, "no ready file after 120 s");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn up_writes_the_ready_file_and_sigterm_leaves_nothing_behind() {
    let dir = tempfile::tempdir().unwrap();
    // A folder that does not exist yet: `up` makes it and removes it again.
    let ready_path = dir.path().join("state").join("ready.json");
    let scenario = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/contoso.yaml");
    let mut child = Command::new(env!("CARGO_BIN_EXE_ppvnet"))
        .arg("up")
        .arg(&scenario)
        .arg("--ready-file")
        .arg(&ready_path)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let ready = wait_for_file(&ready_path, &mut child);

    assert_eq!(ready["scenario"], "contoso");
    assert_eq!(ready["network"], "loopback");
    assert_eq!(ready["tenant_domain"], "contoso.onmicrosoft.com");
    assert_eq!(ready["tenant_id"], "c76cdc05-9ef7-4021-9a9c-171dd3832ea4");
    let ca = Path::new(ready["ca_cert"].as_str().unwrap());
    assert!(ca.is_absolute() && ca.exists(), "{ca:?}");
    assert!(
        std::fs::read_to_string(ca)
            .unwrap()
            .contains("BEGIN CERTIFICATE")
    );
    assert_eq!(
        ready["apps"]["cases-connector"]["client_id"],
        "3eb65b93-4e4d-414a-bce7-1d626fd5acf6"
    );
    assert_eq!(
        ready["apps"]["cases-connector"]["client_secret"],
        "cases-connector-secret-Vb8~pK3z"
    );
    assert_eq!(
        ready["users"]["alice@contoso.onmicrosoft.com"]["password"],
        "Alice-Pass-1!"
    );
    assert_eq!(
        ready["users"]["bob@contoso.onmicrosoft.com"]["object_id"],
        "963b66a7-fcf7-47df-93c8-b847268009a4"
    );
    for host in [
        "internet",
        "pp-prod-westus",
        "pp-prod-eastus",
        "pp-dev-westus",
        "pe-kv-contoso-prod",
    ] {
        assert!(
            ready["hosts"][host]["address"].is_string(),
            "host {host} missing: {}",
            ready["hosts"]
        );
    }

    let control = ready["control_url"].as_str().unwrap().to_string();
    let health = std::thread::spawn(move || {
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async {
            let r = reqwest::get(format!("{control}/healthz")).await.unwrap();
            let shifted: serde_json::Value = reqwest::Client::new()
                .post(format!("{control}/clock/shift"))
                .json(&serde_json::json!({"seconds": 3600}))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            (r.status().as_u16(), shifted)
        })
    })
    .join()
    .unwrap();
    assert_eq!(health.0, 200);
    assert_eq!(health.1["offset_seconds"], 3600);

    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(30);
    let exit = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "ppvnet up did not stop within 30 s of SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(exit.success(), "exit status {exit}");
    assert!(!ready_path.exists(), "the ready file was left behind");
    assert!(!ca.exists(), "the run's CA was left behind");
    let leftovers: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert!(leftovers.is_empty(), "files left behind: {leftovers:?}");
}
