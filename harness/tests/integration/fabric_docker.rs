//! Issue 10, the Docker fabric (`--network docker`): every host and router a container of the
//! ppvnet image built from this test binary, wired as the netns fabric. Its reachability matrix
//! equals the oracle's on the four shipped landscapes; containers carry their labels and nothing
//! is left after teardown; the regional failover feature runs on it through `ppvnet test`; a
//! team's backend image serves the prod API behind its private endpoint (reached from
//! `pp-prod-westus`, refused from `internet`); a team's client image is a host in a subnet that
//! `ppvnet exec` runs commands in; bad input gets one-line errors.
//!
//! Needs root, `ip netns`, nft and Docker (`docker`, `netns`); skips without them unless
//! `PPVNET_REQUIRE` lists them.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::fabric_support::*;
use crate::require::skip_unless;
use ppvnet::fabric::FabricKind;
use ppvnet::scenario::model::{ApiImplementation, DeclaredHost, DeclaredHostKind};

/// Why the docker fabric cannot run here (root, netns, Docker), if it cannot; builds the image.
fn docker_fabric_skips() -> bool {
    if skip_unless("netns", netns_unavailable())
        || skip_unless("docker", crate::containers::docker_missing())
    {
        return true;
    }
    crate::containers::image();
    false
}

fn docker_out(args: &[&str]) -> String {
    let out = Command::new("docker").args(args).output().unwrap();
    assert!(out.status.success(), "docker {args:?}: {out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The containers of runs of this process, as `name role subnet network-mode` lines.
fn containers_of_this_process() -> Vec<String> {
    let prefix = format!("ppv-{}-", std::process::id());
    docker_out(&[
        "ps",
        "--all",
        "--format",
        "{{.Names}} {{.Label \"org.ppvnet.role\"}} {{.Label \"org.ppvnet.subnet\"}}",
        "--filter",
        "label=org.ppvnet.run",
    ])
    .lines()
    .filter(|l| l.starts_with(&prefix))
    .map(str::to_string)
    .collect()
}

async fn docker_matrix_matches(name: &str) {
    if docker_fabric_skips() {
        return;
    }
    let l = landscape(name);
    let f = fabric(&l, FabricKind::Docker).await;
    let faces = echo_on_every_face(&f);
    let (expected, actual) = matrices(&f, &faces).await;
    // One container per host, one per vNet router, one for the internet router, each labelled
    // with its place and started without a Docker network (the fabric wires its namespace).
    let run = f.hosts()["internet"]
        .namespace
        .clone()
        .unwrap()
        .trim_end_matches("-internet")
        .to_string();
    let filter = format!("label=org.ppvnet.run={run}");
    let listed = docker_out(&[
        "ps",
        "--filter",
        &filter,
        "--format",
        "{{.Label \"org.ppvnet.role\"}} {{.Label \"org.ppvnet.subnet\"}} {{.Networks}}",
    ]);
    let vnets = l.scenario.vnets.len();
    assert_eq!(
        listed.lines().count(),
        l.hosts.len() + vnets + 1,
        "{listed}"
    );
    assert!(listed.lines().all(|c| c.ends_with(" none")), "{listed}");
    assert!(
        listed.contains("pp-prod-westus vnet-prod-westus/snet-pp none") || name != "contoso",
        "{listed}"
    );
    f.teardown().await.unwrap();
    assert_same(&expected, &actual);
    let left = docker_out(&["ps", "--all", "--quiet", "--filter", &filter]);
    assert!(left.trim().is_empty(), "containers left: {left}");
    let namespaces = std::fs::read_dir("/run/netns")
        .map(|d| {
            d.flatten()
                .filter(|e| e.file_name().to_string_lossy().starts_with(&run))
                .count()
        })
        .unwrap_or(0);
    assert_eq!(namespaces, 0, "namespaces of {run} left");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_matrix_contoso() {
    docker_matrix_matches("contoso").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_matrix_no_peering() {
    docker_matrix_matches("no-peering").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_matrix_nsg_deny_pe() {
    docker_matrix_matches("nsg-deny-pe").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_matrix_nat_gateway() {
    docker_matrix_matches("nat-gateway").await;
}

/// `ppvnet test --network docker` runs the regional failover feature (its Background starts
/// contoso on the run's fabric) with every scenario passing.
#[test]
fn regional_failover_feature_passes_on_the_docker_fabric() {
    if docker_fabric_skips() {
        return;
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let out = Command::new(env!("CARGO_BIN_EXE_ppvnet"))
        .args(["test", "--network", "docker"])
        .arg(root.join("features/regional_failover.feature"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("acceptance: 7 passed, 0 failed"),
        "{stdout}"
    );
}

/// The example backend (the standalone search API binary, built with the workspace) as a team
/// image, `FROM scratch` by `ppvnet image wrap`; its tag.
fn backend_image() -> String {
    let binary = PathBuf::from(env!("CARGO_BIN_EXE_ppvnet")).with_file_name("search-api");
    assert!(
        binary.is_file(),
        "{} is missing: build the workspace (cargo test --release --workspace builds it)",
        binary.display()
    );
    let tag = "ppvnet-example-backend:dev";
    let out = Command::new(env!("CARGO_BIN_EXE_ppvnet"))
        .args(["image", "wrap"])
        .arg(&binary)
        .args(["--tag", tag])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    tag.to_string()
}

/// A client image of this machine's curl, and sleep to keep it running, `FROM scratch`.
fn client_image() -> String {
    let tag = "ppvnet-example-client:dev";
    let out = Command::new(env!("CARGO_BIN_EXE_ppvnet"))
        .args([
            "image",
            "wrap",
            "/usr/bin/curl",
            "/usr/bin/sleep",
            "--tag",
            tag,
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    tag.to_string()
}

/// `ppvnet exec --host` against a ready file; exit code and standard output.
fn exec(ready: &Path, host: &str, argv: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_ppvnet"))
        .args(["exec", "--ready-file"])
        .arg(ready)
        .args(["--host", host, "--"])
        .args(argv)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

/// A team's client image as a host in prod's private endpoint subnet: `ppvnet exec` runs its
/// curl in the container, which trusts the run's CA from its environment, resolves the prod
/// API to its private endpoint and gets the API's own 401; the test vNet's private endpoint is
/// out of its reach (no peering), as for any host there. A pause host runs the machine's
/// programs in its namespace with its vNet's DNS.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_team_client_image_is_a_host_in_a_subnet() {
    if docker_fabric_skips() {
        return;
    }
    let image = client_image();
    let Some(started) = crate::e2e_support::start_edited("contoso.yaml", |s, opts| {
        opts.network = FabricKind::Docker;
        s.hosts.push(DeclaredHost {
            name: "team-client".into(),
            vnet: Some("vnet-prod-westus".into()),
            subnet: Some("snet-pe".into()),
            kind: Some(DeclaredHostKind::Container),
            image: Some(image.clone()),
            command: Some(vec!["sleep".into(), "infinity".into()]),
            env: Default::default(),
        });
    })
    .await
    else {
        return;
    };
    let running = started.running;
    let dir = tempfile::tempdir().unwrap();
    let ready = dir.path().join("ready.json");
    std::fs::write(&ready, serde_json::to_vec(running.ready()).unwrap()).unwrap();
    assert!(running.ready().hosts["team-client"].container.is_some());
    let (code, status) = exec(
        &ready,
        "team-client",
        &[
            "curl",
            "-sS",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code} %{remote_ip}",
            "https://cases-api-prod.azurewebsites.net/cases/search?q=outage",
        ],
    );
    let pe = running
        .fabric()
        .host_address("pe-cases-api-prod")
        .unwrap()
        .to_string();
    assert_eq!((code, status), (0, format!("401 {pe}")));
    let test_pe = running.fabric().host_address("pe-kv-contoso-test").unwrap();
    let (code, _) = exec(
        &ready,
        "team-client",
        &[
            "curl",
            "-sS",
            "--connect-timeout",
            "3",
            &format!("https://{test_pe}/"),
        ],
    );
    assert_ne!(
        code, 0,
        "the test vNet's private endpoint answered a prod host"
    );
    let (code, resolved) = exec(
        &ready,
        "pp-prod-westus",
        &["getent", "hosts", "kv-contoso-prod.vault.azure.net"],
    );
    let kv_pe = running.fabric().host_address("pe-kv-contoso-prod").unwrap();
    assert_eq!(code, 0);
    assert!(resolved.starts_with(&format!("{kv_pe} ")), "{resolved}");
    running.stop().await.unwrap();
    let (code, _) = exec(&ready, "team-client", &["curl", "--version"]);
    assert_ne!(code, 0, "the team container outlived the landscape");
}

/// The team's backend image serves the prod case API at its private endpoint: `pp-prod-westus`
/// gets answers from it (its 401 without a token, cases with Alice's token), `internet` gets
/// App Service's 403 on the disabled public face and no path to the private endpoint; killing
/// the container takes the API away and the run reports it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_team_backend_image_serves_the_prod_api_behind_its_private_endpoint() {
    if docker_fabric_skips() {
        return;
    }
    let image = backend_image();
    let Some(started) = crate::e2e_support::start_edited("contoso.yaml", |s, opts| {
        opts.network = FabricKind::Docker;
        let api = s
            .apis
            .iter_mut()
            .find(|a| a.name == "cases-api-prod")
            .unwrap();
        // The search API generates its cases for owners it is told of (Alice in Team North).
        let owners = "2276843a-7273-459b-b0e8-730c2b509e9b:8f1da8ea-c517-4c5b-91b3-6952ece13786";
        api.implementation = ApiImplementation::Container {
            image: image.clone(),
            port: 8080,
            command: None,
            env: [("PPVNET_CASE_OWNERS".to_string(), owners.to_string())].into(),
        };
    })
    .await
    else {
        return;
    };
    let running = started.running;
    let url = "https://cases-api-prod.azurewebsites.net/cases/search?q=outage";
    let pp = crate::e2e_support::client(&running, "pp-prod-westus");
    let anonymous = pp.get(url).send().await.unwrap();
    assert_eq!(anonymous.status(), 401);
    let token = crate::e2e_support::user_token(
        &pp,
        "alice@contoso.onmicrosoft.com",
        "Alice-Pass-1!",
        "api://contoso-cases/Cases.Read",
    )
    .await;
    let r = pp.get(url).bearer_auth(&token).send().await.unwrap();
    assert_eq!(r.status(), 200, "{:?}", r.text().await);
    let internet = crate::e2e_support::client(&running, "internet");
    let refused = internet.get(url).bearer_auth(&token).send().await.unwrap();
    assert_eq!(refused.status(), 403);
    // The private endpoint itself is out of the internet's reach (dropped: the connect times
    // out).
    let face = ppvnet::fabric::Face::PrivateEndpoint("pe-cases-api-prod".into());
    let pe = running
        .fabric()
        .face_address("cases-api-prod", &face)
        .unwrap();
    let connect = running.fabric().connect("internet", pe);
    let reached = tokio::time::timeout(std::time::Duration::from_secs(3), connect).await;
    assert!(!matches!(reached, Ok(Ok(_))), "internet reached {pe}");
    let name = containers_of_this_process()
        .into_iter()
        .find(|c| c.contains("-api-cases-api-prod "))
        .expect("the API's container is listed with its run label");
    let name = name.split(' ').next().unwrap().to_string();
    docker_out(&["kill", &name]);
    let mut running = running;
    let crashed = tokio::time::timeout(std::time::Duration::from_secs(30), running.crashed())
        .await
        .expect("the run notices the container's exit");
    let err = format!("{crashed:#}");
    assert!(
        err.contains("api cases-api-prod: the container exited"),
        "{err}"
    );
    let gone = pp.get(url).bearer_auth(&token).send().await;
    assert!(
        gone.is_err(),
        "the API answered without its container: {gone:?}"
    );
    running.stop().await.unwrap();
}

/// Bad input, one line each naming the cause and the fix, and nothing left running: the image
/// of the fabric not built; a team image on a fabric without containers; a team image that is
/// not on the machine (the fabric started for it is removed again).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_docker_input_gets_one_line_errors_and_leaves_nothing() {
    if docker_fabric_skips() {
        return;
    }
    let err = ppvnet::fabric::docker::check_image("ppvnet-no-such-image:0").unwrap_err();
    assert_eq!(
        err.to_string(),
        "the docker fabric runs its hosts and routers as containers of ppvnet-no-such-image:0, \
         which is not built: run `ppvnet image build`"
    );

    let dir = tempfile::tempdir().unwrap();
    let mut l = landscape("contoso");
    let api = l
        .scenario
        .apis
        .iter_mut()
        .find(|a| a.name == "cases-api-prod")
        .unwrap();
    api.implementation = ApiImplementation::Container {
        image: "ppvnet-no-such-image:0".into(),
        port: 8080,
        command: None,
        env: Default::default(),
    };
    // Written elsewhere: the connector files it names are found from the shipped folder.
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios");
    for c in &mut l.scenario.connectors {
        for path in [&mut c.api_definition, &mut c.api_properties] {
            *path = shipped.join(&*path).to_string_lossy().into_owned();
        }
    }
    let file = dir.path().join("team.yaml");
    std::fs::write(&file, serde_norway::to_string(&l.scenario).unwrap()).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_ppvnet"))
        .arg("up")
        .arg(&file)
        .arg("--ready-file")
        .arg(dir.path().join("ready.json"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains(
            "api cases-api-prod (ppvnet-no-such-image:0) runs a team image, which needs the \
             docker fabric: use --network docker"
        ),
        "{stderr}"
    );

    // In a process of its own, so what it leaves is told apart from the other tests' runs.
    let child = Command::new(env!("CARGO_BIN_EXE_ppvnet"))
        .arg("up")
        .arg(&file)
        .args(["--network", "docker", "--ready-file"])
        .arg(dir.path().join("ready.json"))
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains(
            "api cases-api-prod: image ppvnet-no-such-image:0 is not on this machine (nothing can \
             be pulled here)"
        ),
        "{stderr}"
    );
    let filter = "label=org.ppvnet.run";
    let left = docker_out(&["ps", "--all", "--filter", filter, "--format", "{{.Names}}"]);
    let prefix = format!("ppv-{pid}-");
    assert!(
        !left.lines().any(|n| n.starts_with(&prefix)),
        "containers of the failed start left: {left}"
    );
}
