//! The Docker fabric: the netns fabric's topology with every namespace a Docker container's.
//!
//! `ppvnet up --network docker` runs each landscape host, each vNet router and the internet
//! router as a container of the ppvnet image (`ppvnet pause`, started `--network none`, labelled
//! with the run, the host or router and its subnet), and attaches each container's network
//! namespace under the name the netns fabric would have created (`ip netns attach`). From there
//! the wiring is the netns fabric's own ([`super::netns`]): point-to-point veth links from every
//! host to its vNet's router container, peering links between router containers, the same
//! nftables rulesets (NSGs, delegated-subnet egress, NAT gateways) in the routers, Azure DNS per
//! vNet on 168.63.129.16, the same flow log readers. One enforcement, so the reachability matrix
//! is the oracle's, as it is for the other two fabrics.
//!
//! Why subnets are not Docker bridge networks (measured on this machine's Docker 20.10, see
//! ARCHITECTURE.md): an internal bridge network gives the machine an address in the subnet (a
//! route from the machine into the landscape); its `DOCKER-ISOLATION-STAGE-1` rules drop every
//! bridged packet whose source is outside the network's subnet, i.e. all traffic a router
//! forwards into it; and hosts sharing a bridge reach each other without crossing the router,
//! where Azure applies NSGs even inside a subnet. A container's `docker inspect` shows network
//! mode `none`; its labels ([`LABEL_SUBNET`]) say where it sits.
//!
//! Team images join a pause container's namespace (`--network container:<pause>`, as a pod's
//! containers share its sandbox), so they start with their host's address, routes and DNS in
//! place: a host `{kind: container}` joins its own host's pause container, an API
//! `{kind: container}` the `internet` host's, where App Service's outbound traffic comes from
//! (see `services::container`).

use std::path::Path;
use std::process::{Command, Output};

use anyhow::Context;

/// Label naming the run (the namespace prefix `ppv-<pid>-<n>`).
pub const LABEL_RUN: &str = "org.ppvnet.run";
/// Label naming what a container is: a host's name, `router-<vnet>` or `router-internet`.
pub const LABEL_ROLE: &str = "org.ppvnet.role";
/// Label naming a host's subnet (`vnet/subnet`), or `internet`.
pub const LABEL_SUBNET: &str = "org.ppvnet.subnet";

/// A container to start for a namespace of the plan.
pub struct Sandbox {
    /// The namespace name, also the container's name.
    pub name: String,
    pub role: String,
    pub subnet: String,
}

/// Runs `docker` with `args`; the error names the subcommand.
pub(crate) fn docker(args: &[&str]) -> anyhow::Result<Output> {
    Command::new("docker")
        .args(args)
        .output()
        .with_context(|| format!("cannot run docker {}", args.first().unwrap_or(&"")))
}

/// The first non-empty line of a command's error output.
pub(crate) fn first_line(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes)
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("no message")
        .to_string()
}

/// Checks that Docker answers and `image` is there; one-line errors with the fix.
pub fn check_image(image: &str) -> anyhow::Result<()> {
    crate::image::docker_ready()?;
    let out = docker(&["image", "inspect", "--format", "{{.Id}}", image])?;
    anyhow::ensure!(
        out.status.success(),
        "the docker fabric runs its hosts and routers as containers of {image}, which is not built: run `ppvnet image build`"
    );
    Ok(())
}

/// Starts one paused container per sandbox (in parallel: each `docker run` is a round trip to
/// the daemon) and attaches its network namespace as `/run/netns/<name>`. On error, whatever was
/// started is removed.
pub fn start_sandboxes(run: &str, image: &str, sandboxes: &[Sandbox]) -> anyhow::Result<()> {
    let result = std::thread::scope(|scope| {
        let started: Vec<_> = sandboxes
            .iter()
            .map(|s| scope.spawn(move || start_one(run, image, s)))
            .collect();
        started
            .into_iter()
            .map(|t| {
                t.join()
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("docker run thread panicked")))
            })
            .collect::<anyhow::Result<Vec<()>>>()
    });
    if let Err(e) = result {
        let names: Vec<String> = sandboxes.iter().map(|s| s.name.clone()).collect();
        let _ = remove_containers(&names);
        return Err(e);
    }
    Ok(())
}

fn start_one(run: &str, image: &str, s: &Sandbox) -> anyhow::Result<()> {
    let labels = [
        format!("{LABEL_RUN}={run}"),
        format!("{LABEL_ROLE}={}", s.role),
        format!("{LABEL_SUBNET}={}", s.subnet),
    ];
    let dns = format!("--dns={}", super::netns::AZURE_DNS);
    let mut args = vec![
        "run",
        "--detach",
        "--network",
        "none",
        &dns,
        "--name",
        &s.name,
        "--hostname",
        &s.role,
    ];
    for l in &labels {
        args.extend(["--label", l]);
    }
    args.extend([image, "pause"]);
    let out = docker(&args)?;
    anyhow::ensure!(
        out.status.success(),
        "cannot start the container of {}: {}",
        s.role,
        first_line(&out.stderr)
    );
    let pid = container_pid(&s.name)?;
    let out = Command::new("ip")
        .args(["netns", "attach", &s.name, &pid.to_string()])
        .output()
        .context("cannot run ip netns attach")?;
    anyhow::ensure!(
        out.status.success(),
        "cannot attach the network namespace of container {}: {}",
        s.name,
        first_line(&out.stderr)
    );
    Ok(())
}

/// The pid of a running container's first process.
pub fn container_pid(name: &str) -> anyhow::Result<u32> {
    let out = docker(&["inspect", "--format", "{{.State.Pid}}", name])?;
    let text = String::from_utf8_lossy(&out.stdout);
    match text.trim().parse::<u32>() {
        Ok(pid) if out.status.success() && pid > 0 => Ok(pid),
        _ if out.status.success() => anyhow::bail!(
            "container {name} exited at once ({}): an image built by an older ppvnet lacks `ppvnet pause`; rebuild it with `ppvnet image build`",
            last_output(name, 3)
        ),
        _ => anyhow::bail!(
            "container {name} is not running: {}",
            first_line(&out.stderr)
        ),
    }
}

/// Removes containers by name (missing ones are fine).
pub fn remove_containers(names: &[String]) -> anyhow::Result<()> {
    if names.is_empty() {
        return Ok(());
    }
    let mut args = vec!["rm", "--force", "--volumes"];
    args.extend(names.iter().map(String::as_str));
    let out = docker(&args)?;
    let err = String::from_utf8_lossy(&out.stderr);
    let real: Vec<&str> = err
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.contains("No such container"))
        .collect();
    anyhow::ensure!(
        real.is_empty(),
        "cannot remove containers: {}",
        real.join("; ")
    );
    Ok(())
}

/// Containers of ppvnet runs whose process is gone (the run label starts `ppv-<pid>-`), removed.
pub fn clean_stale() -> Vec<String> {
    let filter = format!("label={LABEL_RUN}");
    let format = format!("{{{{.Names}}}} {{{{.Label \"{LABEL_RUN}\"}}}}");
    let Ok(out) = docker(&["ps", "--all", "--filter", &filter, "--format", &format]) else {
        return vec![];
    };
    let stale: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let (name, run) = l.split_once(' ')?;
            let pid = run.strip_prefix(super::netns::PREFIX)?.split('-').next()?;
            let alive = Path::new("/proc").join(pid).exists();
            (!alive).then(|| name.to_string())
        })
        .collect();
    match remove_containers(&stale) {
        Ok(()) => stale,
        Err(e) => {
            tracing::warn!("stale ppvnet containers left: {e:#}");
            vec![]
        }
    }
}

/// Containers of the run `run` (its sandboxes and team containers), by name.
pub fn containers_of(run: &str) -> Vec<String> {
    let filter = format!("label={LABEL_RUN}={run}");
    docker(&["ps", "--all", "--filter", &filter, "--format", "{{.Names}}"])
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// A team's image joined to a sandbox's network namespace.
pub struct TeamContainer {
    /// The run's label ([`LABEL_RUN`]): the fabric's teardown removes the container with the rest.
    pub run: String,
    /// The pause container whose namespace it joins.
    pub sandbox: String,
    pub name: String,
    /// What the container is, for its label and messages (`api cases-api-prod`, `host client`).
    pub role: String,
    pub image: String,
    /// Replaces the image's command.
    pub command: Option<Vec<String>>,
    pub env: Vec<(String, String)>,
    /// Read-only bind mounts: file or folder of the machine → path in the container.
    pub mounts: Vec<(std::path::PathBuf, &'static str)>,
}

/// Starts a team container; one-line errors name the image and the fix.
pub fn run_team(c: &TeamContainer) -> anyhow::Result<()> {
    let out = docker(&["image", "inspect", "--format", "{{.Id}}", &c.image])?;
    anyhow::ensure!(
        out.status.success(),
        "{}: image {} is not on this machine (nothing can be pulled here): build it, e.g. `ppvnet image wrap BINARY --tag {}`",
        c.role,
        c.image,
        c.image
    );
    let network = format!("container:{}", c.sandbox);
    let labels = [
        format!("{LABEL_RUN}={}", c.run),
        format!("{LABEL_ROLE}={}", c.role),
    ];
    let mut args: Vec<String> = ["run", "--detach", "--network", &network, "--name", &c.name]
        .map(String::from)
        .to_vec();
    for l in labels {
        args.extend(["--label".into(), l]);
    }
    for (k, v) in &c.env {
        args.extend(["--env".into(), format!("{k}={v}")]);
    }
    for (from, to) in &c.mounts {
        args.extend([
            "--volume".into(),
            format!("{}:{to}:ro", from.to_string_lossy()),
        ]);
    }
    args.push(c.image.to_string());
    args.extend(c.command.iter().flatten().cloned());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = docker(&args)?;
    anyhow::ensure!(
        out.status.success(),
        "{}: cannot start image {}: {}",
        c.role,
        c.image,
        first_line(&out.stderr)
    );
    Ok(())
}

/// The last lines a container wrote (standard output and error), for an error message.
pub fn last_output(name: &str, lines: usize) -> String {
    let tail = lines.to_string();
    match docker(&["logs", "--tail", &tail, name]) {
        Ok(o) => {
            let mut text = String::from_utf8_lossy(&o.stdout).into_owned();
            text.push_str(&String::from_utf8_lossy(&o.stderr));
            let text: Vec<&str> = text
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .collect();
            if text.is_empty() {
                "it wrote nothing".into()
            } else {
                text.join(" | ")
            }
        }
        Err(e) => format!("its output cannot be read: {e}"),
    }
}
