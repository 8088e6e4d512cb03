//! Issue 10, containers: the `ppvnet:<version>` image built offline from this package's own
//! binary (once per test run, and again only when the binary changed), holding exactly the
//! binary, its `ldd` libraries and the landscapes; `docker-compose up` of the seed landscape,
//! healthy, reached from the machine by an unmodified Python Key Vault client through the
//! published proxy, and `down` leaving no container, network, volume or file behind.
//!
//! Needs a running Docker engine and docker-compose (`docker`) and, for the compose test, the
//! Python clients (`python`); skips without them unless `PPVNET_REQUIRE` lists them.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::time::Duration;

use crate::require::skip_unless;

/// Why Docker (with docker-compose) cannot be used here, if it cannot.
pub(crate) fn docker_missing() -> Option<String> {
    if let Err(e) = ppvnet::image::docker_ready() {
        return Some(e.to_string());
    }
    match Command::new("docker-compose").arg("version").output() {
        Ok(o) if o.status.success() => None,
        Ok(o) => Some(format!("docker-compose version failed: {}", o.status)),
        Err(e) => Some(format!("docker-compose is not installed: {e}")),
    }
}

/// The image built from this test binary's ppvnet, once per process; its tag.
pub(crate) fn image() -> &'static str {
    static BUILT: OnceLock<Result<String, String>> = OnceLock::new();
    let built = BUILT.get_or_init(|| {
        let opts = ppvnet::image::BuildOptions {
            binary: PathBuf::from(env!("CARGO_BIN_EXE_ppvnet")),
            tag: ppvnet::image::default_tag(),
            scenarios: root().join("scenarios"),
            force: false,
        };
        ppvnet::image::build(&opts)
            .map(|b| b.tag)
            .map_err(|e| format!("{e:#}"))
    });
    match built {
        Ok(tag) => tag,
        Err(e) => panic!("cannot build the image: {e}"),
    }
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn run(program: &str, args: &[&str]) -> Output {
    Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"))
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn the_image_holds_the_test_binary_its_ldd_libraries_and_the_landscapes_only() {
    if skip_unless("docker", docker_missing()) {
        return;
    }
    let tag = image();
    let binary = Path::new(env!("CARGO_BIN_EXE_ppvnet"));
    let version = run("docker", &["run", "--rm", tag, "--version"]);
    assert!(version.status.success(), "{version:?}");
    assert_eq!(
        stdout(&version).trim(),
        format!("ppvnet {}", env!("CARGO_PKG_VERSION"))
    );
    // What the image's file system holds, by `docker export` of a container never started.
    let created = run("docker", &["create", tag]);
    assert!(created.status.success(), "{created:?}");
    let id = stdout(&created).trim().to_string();
    let listing = Command::new("sh")
        .args(["-c", &format!("docker export {id} | tar -t")])
        .output()
        .unwrap();
    let _ = run("docker", &["rm", "--force", &id]);
    let files: Vec<String> = stdout(&listing)
        .lines()
        .filter(|l| !l.ends_with('/'))
        .map(|l| format!("/{l}"))
        .collect();
    let mut expected: Vec<String> = ppvnet::image::shared_libraries(binary)
        .unwrap()
        .iter()
        .map(|p| p.display().to_string())
        .collect();
    expected.push("/usr/local/bin/ppvnet".into());
    expected.push(ppvnet::image::CA_BUNDLE.into());
    for file in &expected {
        assert!(files.contains(file), "{file} is missing from {files:#?}");
    }
    let other: Vec<&String> = files
        .iter()
        .filter(|f| !expected.contains(f) && !f.starts_with("/scenarios/"))
        // Docker's own mount points of every container.
        .filter(|f| {
            ![
                "/.dockerenv",
                "/etc/hostname",
                "/etc/hosts",
                "/etc/mtab",
                "/etc/resolv.conf",
            ]
            .contains(&f.as_str())
        })
        .filter(|f| !f.starts_with("/dev/") && !f.starts_with("/proc/") && !f.starts_with("/sys/"))
        .collect();
    assert!(
        other.is_empty(),
        "unexpected files in the image: {other:#?}"
    );
    assert!(files.contains(&"/scenarios/contoso.yaml".to_string()));
    // Built once: the same inputs keep the image.
    let again = ppvnet::image::build(&ppvnet::image::BuildOptions {
        binary: binary.to_path_buf(),
        tag: tag.to_string(),
        scenarios: root().join("scenarios"),
        force: false,
    })
    .unwrap();
    assert!(!again.rebuilt);
    assert!(again.size > 0);
    // A changed binary is rebuilt, and the image it replaces does not linger untagged.
    let changed = tempfile::tempdir().unwrap();
    let copy = changed.path().join("ppvnet");
    std::fs::copy(binary, &copy).unwrap();
    std::fs::OpenOptions::new()
        .append(true)
        .open(&copy)
        .and_then(|mut f| std::io::Write::write_all(&mut f, b"\0changed"))
        .unwrap();
    let other_tag = format!("ppvnet-test-rebuild:{}", std::process::id());
    let build = |binary: &Path| {
        ppvnet::image::build(&ppvnet::image::BuildOptions {
            binary: binary.to_path_buf(),
            tag: other_tag.clone(),
            scenarios: root().join("scenarios"),
            force: false,
        })
        .unwrap()
    };
    // First the changed binary (an image of its own), then the test binary again: the same
    // content as `tag`, so the same image, which must survive under `tag`.
    assert!(build(&copy).rebuilt);
    let first = stdout(&run(
        "docker",
        &["image", "inspect", "--format", "{{.Id}}", &other_tag],
    ));
    assert!(build(binary).rebuilt);
    let gone = run("docker", &["image", "inspect", first.trim()]);
    let _ = run("docker", &["image", "rm", &other_tag]);
    assert!(ppvnet::image::size_of(tag).is_ok(), "{tag} was removed too");
    assert!(!gone.status.success(), "the replaced image is still there");
}

#[test]
fn image_build_names_a_missing_binary_in_one_line() {
    let out = run(
        env!("CARGO_BIN_EXE_ppvnet"),
        &["image", "build", "--binary", "/nonexistent/ppvnet"],
    );
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    // Without Docker the daemon is named instead; with it, the binary.
    assert!(
        err.contains("/nonexistent/ppvnet") || err.contains("docker"),
        "{err}"
    );
}

/// A compose project of the top-level `docker-compose.yml`, taken down on drop (the test may
/// fail half-way): containers, networks and volumes, and whatever else it created.
struct Compose {
    project: String,
    env: Vec<(String, String)>,
}

impl Compose {
    fn command(&self, args: &[&str]) -> Output {
        let file = root().join("docker-compose.yml");
        Command::new("docker-compose")
            .arg("--file")
            .arg(&file)
            .args(["--project-name", &self.project])
            .args(args)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .output()
            .unwrap()
    }

    /// What is left of the project, by Docker's compose label.
    fn leftovers(&self) -> String {
        let label = format!("label=com.docker.compose.project={}", self.project);
        ["ps -a", "network ls", "volume ls"]
            .iter()
            .map(|what| {
                let mut args: Vec<&str> = what.split(' ').collect();
                args.extend(["--quiet", "--filter", &label]);
                stdout(&run("docker", &args))
            })
            .collect()
    }
}

impl Drop for Compose {
    fn drop(&mut self) {
        let _ = self.command(&["down", "--volumes", "--remove-orphans"]);
    }
}

/// Waits until the project's container is healthy; panics with its logs when it dies first.
fn wait_healthy(compose: &Compose) -> String {
    let id = stdout(&compose.command(&["ps", "--quiet", "ppvnet"]))
        .trim()
        .to_string();
    assert!(!id.is_empty(), "docker-compose started no container");
    // Another process's state: the kit's deadline poll (README, Tests).
    let state = ppvnet_testkit::eventually_blocking(Duration::from_secs(120), || {
        let out = run(
            "docker",
            &[
                "inspect",
                "--format",
                "{{.State.Status}} {{.State.Health.Status}}",
                &id,
            ],
        );
        let state = stdout(&out).trim().to_string();
        (state == "running healthy" || state.starts_with("exited")).then_some(state)
    })
    .unwrap_or_else(|_| {
        panic!(
            "not healthy after 120 s: {}",
            stdout(&run("docker", &["logs", &id]))
        )
    });
    if state != "running healthy" {
        let logs = run("docker", &["logs", &id]);
        panic!(
            "the container exited: {}{}",
            stdout(&logs),
            String::from_utf8_lossy(&logs.stderr)
        );
    }
    id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compose_up_serves_the_seed_landscape_to_the_machine_and_down_leaves_nothing() {
    if skip_unless("docker", docker_missing())
        || skip_unless("python", crate::fabric_python_exec::python_ready())
    {
        return;
    }
    image();
    let dir = tempfile::tempdir().unwrap();
    let (control, proxy) = (free_port(), free_port());
    let compose = Compose {
        project: format!("ppvnet-test-{}", std::process::id()),
        env: vec![
            ("PPVNET_DIR".into(), dir.path().display().to_string()),
            ("PPVNET_CONTROL_PORT".into(), control.to_string()),
            ("PPVNET_PROXY_PORT".into(), proxy.to_string()),
        ],
    };
    let up = compose.command(&["up", "--detach"]);
    assert!(
        up.status.success(),
        "{}",
        String::from_utf8_lossy(&up.stderr)
    );
    wait_healthy(&compose);

    // The ready file in the mounted folder speaks of the machine's addresses.
    let ready_path = dir.path().join("ready.json");
    let ready = ppvnet::ready::ReadyFile::read(&ready_path).unwrap();
    assert_eq!(ready.control_url, format!("http://127.0.0.1:{control}"));
    assert_eq!(
        ready.hosts["internet"].proxy,
        Some(format!("127.0.0.1:{proxy}").parse().unwrap())
    );
    assert!(ready.ca_cert.starts_with(dir.path()) && ready.ca_cert.is_file());
    assert_eq!(
        ready.key_vaults["kv-contoso-dev"].url,
        "https://kv-contoso-dev.vault.azure.net/"
    );
    let clock = reqwest::Client::new()
        .get(format!("{}/clock", ready.control_url))
        .bearer_auth(&ready.control_token)
        .send()
        .await
        .unwrap();
    assert_eq!(clock.status(), 200, "{:?}", clock.text().await);

    // An unmodified Python client on the machine: token from Entra, then the dev secret, by
    // real names through the published proxy (`ppvnet exec` sets HTTPS_PROXY and the CA).
    let app = &ready.apps["ops-automation"];
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/kv_read_secret.py");
    let read = |vault: &str| {
        run(
            env!("CARGO_BIN_EXE_ppvnet"),
            &[
                "exec",
                "--ready-file",
                &ready_path.to_string_lossy(),
                "--host",
                "internet",
                "--",
                "python3",
                script,
                &ready.tenant_id,
                &app.client_id,
                app.client_secret.as_deref().unwrap_or_default(),
                vault,
                "cases-connector-secret",
            ],
        )
    };
    let dev = read("kv-contoso-dev");
    assert!(dev.status.success(), "{dev:?}");
    assert_eq!(stdout(&dev).trim(), "cases-connector-secret-Vb8~pK3z");
    // The machine is the public internet: the private prod vault refuses it by connection.
    let prod = read("kv-contoso-prod");
    assert_eq!(prod.status.code(), Some(3), "{prod:?}");
    assert!(stdout(&prod).contains("ForbiddenByConnection"), "{prod:?}");

    let down = compose.command(&["down", "--volumes", "--remove-orphans"]);
    assert!(down.status.success(), "{down:?}");
    assert_eq!(compose.leftovers().trim(), "", "left behind");
    // The landscape stopped cleanly: its ready file and run folder are gone.
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

/// A free port on 127.0.0.1 for a published port.
pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn a_published_port_another_program_holds_fails_up_in_one_line_before_anything_starts() {
    let held = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = held.local_addr().unwrap().port().to_string();
    let dir = tempfile::tempdir().unwrap();
    let ready = dir.path().join("ready.json");
    let scenario = root().join("scenarios/containers/entra.yaml");
    let out = run(
        env!("CARGO_BIN_EXE_ppvnet"),
        &[
            "up",
            &scenario.to_string_lossy(),
            "--ready-file",
            &ready.to_string_lossy(),
            "--listen",
            "127.0.0.1",
            "--control-port",
            &port,
        ],
    );
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(
        err.contains(&format!("127.0.0.1:{port}")) && err.contains("--control-port"),
        "{err}"
    );
    assert!(!ready.exists());
}

#[test]
fn image_build_without_docker_says_so_in_one_line() {
    let empty = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_ppvnet"))
        .args(["image", "build"])
        .env("PATH", empty.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(
        err.contains("docker is not installed") && err.contains("install Docker Engine"),
        "{err}"
    );
}
