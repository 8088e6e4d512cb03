//! `ppvnet up` end to end as a user runs it: the ready file appears with the landscape's
//! identities and endpoints, the control API answers, and SIGTERM stops everything with exit
//! code 0, leaving no files behind; a team's own API program runs on its faces and stops with
//! the landscape.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

/// Starts `ppvnet up FILE --ready-file PATH` and waits for its ready file.
pub(crate) fn up(
    scenario: &Path,
    ready_path: &Path,
    stdout: Stdio,
    extra: &[&str],
) -> (std::process::Child, serde_json::Value) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ppvnet"))
        .arg("up")
        .arg(scenario)
        .arg("--ready-file")
        .arg(ready_path)
        .args(extra)
        .stdout(stdout)
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let ready = wait_for_file(ready_path, &mut child);
    (child, ready)
}

/// The ready file once `ppvnet up` has written it (atomically, so it is whole when it appears):
/// another process's file has no event to await here, hence the kit's deadline poll.
fn wait_for_file(path: &Path, child: &mut std::process::Child) -> serde_json::Value {
    let text = ppvnet_testkit::eventually_blocking(Duration::from_secs(120), || {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("ppvnet up exited early with {status}");
        }
        std::fs::read_to_string(path).ok()
    })
    .expect("no ready file after 120 s");
    serde_json::from_str(&text).expect("the ready file is JSON")
}

#[test]
fn up_writes_the_ready_file_and_sigterm_leaves_nothing_behind() {
    let dir = tempfile::tempdir().unwrap();
    // A folder that does not exist yet: `up` makes it and removes it again.
    let ready_path = dir.path().join("state").join("ready.json");
    let scenario = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/contoso.yaml");
    let (mut child, ready) = up(&scenario, &ready_path, Stdio::piped(), &[]);

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

    // Owner-only: the ready file holds passwords, client secrets and the control token.
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&ready_path), 0o600, "the ready file");
        assert_eq!(
            mode(ready_path.parent().unwrap()),
            0o700,
            "the folder up made"
        );
    }
    let token = ready["control_token"].as_str().unwrap();
    assert!(
        token.len() >= 32,
        "a control token of 128 bits or more: {token:?}"
    );
    // `up` prints a one-time dashboard login URL after the endpoints (stdout is a pipe here:
    // the read waits for the line itself).
    let login = std::io::BufRead::lines(std::io::BufReader::new(child.stdout.take().unwrap()))
        .map_while(Result::ok)
        .map(|l| l.trim().to_string())
        .find(|l| {
            l.starts_with(&format!(
                "{}/dashboard/login?token=",
                ready["control_url"].as_str().unwrap()
            ))
        })
        .expect("up prints the dashboard's login URL");
    let parsed = ppvnet::ready::ReadyFile::read(&ready_path).unwrap();
    let control = ppvnet::control::Client::from_ready(&parsed).unwrap();
    let logins = std::thread::spawn(move || {
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async {
            let browser = reqwest::Client::builder()
                .no_proxy()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap();
            let mut statuses = Vec::new();
            for _ in 0..2 {
                let r = browser.get(&login).send().await.unwrap();
                statuses.push(r.status().as_u16());
            }
            statuses
        })
    })
    .join()
    .unwrap();
    assert_eq!(logins, [303, 401], "the login URL works once");
    let health = std::thread::spawn(move || {
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async {
            let r = control.get("/healthz").send().await.unwrap();
            let shifted: serde_json::Value = control
                .post("/clock/shift")
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

    terminate(&mut child);
    assert!(!ready_path.exists(), "the ready file was left behind");
    assert!(!ca.exists(), "the run's CA was left behind");
    let leftovers: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert!(leftovers.is_empty(), "files left behind: {leftovers:?}");
}

/// Waits for the child's exit (the event itself: `wait`), killing it when `timeout` passes
/// first; `None` then.
pub(crate) fn wait_exit(
    child: &mut std::process::Child,
    timeout: Duration,
) -> Option<std::process::ExitStatus> {
    let pid = child.id().to_string();
    let (exited, watchdog) = std::sync::mpsc::channel::<()>();
    let killer = std::thread::spawn(move || {
        let timed_out = watchdog.recv_timeout(timeout).is_err();
        if timed_out {
            let _ = Command::new("kill").args(["-KILL", &pid]).status();
        }
        timed_out
    });
    let status = child.wait().unwrap();
    let _ = exited.send(());
    let timed_out = killer.join().unwrap_or(true);
    (!timed_out).then_some(status)
}

/// SIGTERM to `ppvnet up`; waits for its exit and asserts it succeeded.
pub(crate) fn terminate(child: &mut std::process::Child) {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = wait_exit(child, Duration::from_secs(30))
        .unwrap_or_else(|| panic!("ppvnet up did not stop within 30 s of SIGTERM"));
    assert!(exit.success(), "exit status {exit}");
}

/// The external API example on the loopback fabric, by the addresses of the ready file: the
/// program gets its private endpoint face by socket activation, validates an Entra token
/// against keys it fetches itself, never sees the public face (App Service's 403 page answers
/// there), and is gone once `ppvnet up` stops.
#[test]
fn a_team_api_program_serves_its_private_endpoint_and_stops_with_the_landscape() {
    if crate::require::skip_unless("python", crate::require::python3_missing()) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let ready_path = dir.path().join("ready.json");
    let scenario =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/examples/external-api.yaml");
    let (mut child, ready) = up(&scenario, &ready_path, Stdio::null(), &[]);
    let api = &ready["apis"]["orders-api-prod"];
    let private_url = api["private_endpoints"]["pe-orders-api-prod"]
        .as_str()
        .unwrap()
        .to_string();
    let public_url = api["url"].as_str().unwrap().to_string();
    let pipeline = &ready["apps"]["pipeline"];
    let pipeline_id = pipeline["client_id"].as_str().unwrap().to_string();
    let pipeline_secret = pipeline["client_secret"].as_str().unwrap().to_string();
    let authority = ready["entra"]["authority"].as_str().unwrap().to_string();
    let pp_address: std::net::IpAddr = ready["hosts"]["pp-prod-westus"]["address"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let ca = std::fs::read(ready["ca_cert"].as_str().unwrap()).unwrap();
    let client = |from: Option<std::net::IpAddr>| {
        let mut b = reqwest::Client::builder()
            .tls_certs_only([reqwest::Certificate::from_pem(&ca).unwrap()])
            .timeout(Duration::from_secs(20));
        if let Some(ip) = from {
            b = b.local_address(ip);
        }
        b.build().unwrap()
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    // Connections from the delegated subnet's address, and from 127.0.0.1 (the internet).
    let (pp, internet) = (client(Some(pp_address)), client(None));
    rt.block_on(async {
        let token: serde_json::Value = pp
            .post(format!("{authority}/oauth2/v2.0/token"))
            .form(&[
                ("grant_type", "client_credentials"),
                ("client_id", pipeline_id.as_str()),
                ("client_secret", pipeline_secret.as_str()),
                ("scope", "api://fabrikam-orders/.default"),
            ])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let token = token["access_token"].as_str().expect("a token").to_string();
        let r = pp
            .get(format!("{private_url}/caller"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let caller: serde_json::Value = r.json().await.unwrap();
        assert_eq!(caller["app_id"], pipeline_id.as_str(), "{caller}");
        assert_eq!(caller["ingress"], "pe-orders-api-prod", "{caller}");

        // The same claims under a signature no key of the tenant made are refused.
        let (head, rest) = token.split_once('.').unwrap();
        let (body, _) = rest.split_once('.').unwrap();
        let unsigned = format!("{head}.{body}.{}", "A".repeat(342));
        let r = pp
            .get(format!("{private_url}/caller"))
            .bearer_auth(unsigned)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401);
        assert_eq!(
            r.headers()["www-authenticate"],
            r#"Bearer error="invalid_token", error_description="The signature is invalid""#
        );

        let r = internet
            .get(format!("{public_url}/caller"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403);
        assert!(
            r.text()
                .await
                .unwrap()
                .contains("The web app you have attempted to reach has blocked your access.")
        );
    });
    terminate(&mut child);
    // The program stopped with the landscape: nothing answers on its face any more.
    let after = rt.block_on(async { pp.get(format!("{private_url}/whoami")).send().await });
    assert!(after.is_err(), "the external API outlived the landscape");
}
