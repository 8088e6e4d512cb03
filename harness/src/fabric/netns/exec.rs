//! Running programs inside a host's namespace, the way `ip netns exec` does: the host's network
//! namespace, plus a private mount namespace in which the vNet's `/etc/netns/<ns>/resolv.conf` is
//! bound over `/etc/resolv.conf`, so the program resolves names by the host's DNS view.
//!
//! - [`exec`]: `ppvnet exec`, any program on a host of a running landscape, with the run's CA and
//!   Entra authority exported so an unmodified Azure SDK program works against the real host
//!   names.
//! - [`NetnsFabric::enter_host`]: the same entry for a program the harness itself starts (an
//!   external API runs on the `internet` host, as App Service's outbound traffic does).

use std::ffi::CString;
use std::fs::File;
use std::os::fd::AsRawFd;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::Path;
use std::process::Command;

use anyhow::Context;

use super::NetnsFabric;

/// Runs `argv` inside `host`'s namespace of the landscape described by `ready_file`; returns the
/// program's exit code (128 + signal number when a signal ended it).
pub fn exec(ready_file: &Path, host: &str, argv: &[String]) -> anyhow::Result<i32> {
    let (program, args) = argv.split_first().context("no command to run")?;
    let text = std::fs::read_to_string(ready_file).with_context(|| {
        format!(
            "cannot read the ready file {} (is `ppvnet up --network netns` running?)",
            ready_file.display()
        )
    })?;
    let ready: serde_json::Value = serde_json::from_str(&text)
        .with_context(|| format!("{} is not a ppvnet ready file", ready_file.display()))?;
    let hosts = ready["hosts"]
        .as_object()
        .context("the ready file lists no hosts")?;
    let entry = hosts.get(host).with_context(|| {
        format!(
            "host '{host}' is not part of the landscape; hosts: {}",
            hosts.keys().cloned().collect::<Vec<_>>().join(", ")
        )
    })?;
    let ns = entry["namespace"]
        .as_str()
        .context("the landscape does not run in network namespaces; start it with `ppvnet up --network netns`")?
        .to_string();

    let mut cmd = Command::new(program);
    cmd.args(args);
    if let Some(ca) = ready["ca_cert"].as_str() {
        cmd.envs(crate::pki::CA_BUNDLE_VARIABLES.map(|v| (v, ca)));
    }
    if let Some(authority) = ready["entra"]["authority_host"].as_str() {
        cmd.env("AZURE_AUTHORITY_HOST", authority);
    }
    enter_namespace(&mut cmd, &ns)?;
    let status = cmd
        .status()
        .with_context(|| format!("cannot run {program} in {ns}"))?;
    Ok(status
        .code()
        .unwrap_or_else(|| 128 + status.signal().unwrap_or(0)))
}

impl NetnsFabric {
    /// Makes `cmd` run inside `host`'s namespace with the host's vNet DNS (see the module doc).
    /// Needs the privileges the fabric itself needs (root).
    pub fn enter_host(&self, host: &str, cmd: &mut Command) -> anyhow::Result<()> {
        let ns = self
            .namespace(host)
            .with_context(|| format!("host '{host}' is not part of the landscape"))?
            .to_string();
        enter_namespace(cmd, &ns)
    }
}

/// Adds to `cmd` a pre-exec step that joins the network namespace `ns` and binds its
/// resolv.conf, when it has one, over `/etc/resolv.conf` in a private mount namespace.
fn enter_namespace(cmd: &mut Command, ns: &str) -> anyhow::Result<()> {
    let netns = File::open(Path::new("/run/netns").join(ns))
        .with_context(|| format!("namespace {ns} does not exist (has the landscape stopped?)"))?;
    let resolv = Path::new("/etc/netns").join(ns).join("resolv.conf");
    let resolv = resolv
        .exists()
        .then(|| CString::new(resolv.to_string_lossy().into_owned()))
        .transpose()?;
    let root = CString::new("/")?;
    let target = CString::new("/etc/resolv.conf")?;
    // SAFETY: only raw syscalls run between fork and exec, on memory prepared before the fork.
    // The namespace file moves into the closure, so its descriptor stays open until the spawn
    // (it is close-on-exec: the program does not inherit it).
    unsafe {
        cmd.pre_exec(move || {
            if libc::setns(netns.as_raw_fd(), libc::CLONE_NEWNET) != 0
                || libc::unshare(libc::CLONE_NEWNS) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            // Keep our bind mount private to this process tree, as `ip netns exec` does.
            if libc::mount(
                std::ptr::null(),
                root.as_ptr(),
                std::ptr::null(),
                libc::MS_SLAVE | libc::MS_REC,
                std::ptr::null(),
            ) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            if let Some(r) = &resolv
                && libc::mount(
                    r.as_ptr(),
                    target.as_ptr(),
                    std::ptr::null(),
                    libc::MS_BIND,
                    std::ptr::null(),
                ) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    Ok(())
}
