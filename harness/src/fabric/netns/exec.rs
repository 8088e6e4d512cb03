//! `ppvnet exec`: run any program inside a host of a running netns landscape, the way
//! `ip netns exec` does (network namespace, plus a private mount namespace in which the vNet's
//! `/etc/netns/<ns>/resolv.conf` is bound over `/etc/resolv.conf`), with the run's CA and
//! Entra authority exported so an unmodified Azure SDK program works against the real host names.

use std::ffi::CString;
use std::fs::File;
use std::os::fd::AsRawFd;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::Path;
use std::process::Command;

use anyhow::Context;

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
    let netns = File::open(Path::new("/run/netns").join(&ns))
        .with_context(|| format!("namespace {ns} does not exist (has the landscape stopped?)"))?;
    let resolv = Path::new("/etc/netns").join(&ns).join("resolv.conf");
    let resolv = resolv
        .exists()
        .then(|| CString::new(resolv.to_string_lossy().into_owned()))
        .transpose()?;

    let mut cmd = Command::new(program);
    cmd.args(args);
    if let Some(ca) = ready["ca_cert"].as_str() {
        // OpenSSL and Python read the first two; curl ignores SSL_CERT_FILE when it was built
        // with a default bundle (Debian's is) and reads CURL_CA_BUNDLE instead.
        cmd.env("SSL_CERT_FILE", ca)
            .env("REQUESTS_CA_BUNDLE", ca)
            .env("CURL_CA_BUNDLE", ca);
    }
    if let Some(authority) = ready["entra"]["authority_host"].as_str() {
        cmd.env("AZURE_AUTHORITY_HOST", authority);
    }
    let fd = netns.as_raw_fd();
    let root = CString::new("/")?;
    let target = CString::new("/etc/resolv.conf")?;
    // SAFETY: only raw syscalls run between fork and exec, on memory prepared before the fork.
    unsafe {
        cmd.pre_exec(move || {
            if libc::setns(fd, libc::CLONE_NEWNET) != 0 || libc::unshare(libc::CLONE_NEWNS) != 0 {
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
    let status = cmd
        .status()
        .with_context(|| format!("cannot run {program} in {ns}"))?;
    drop(netns);
    Ok(status
        .code()
        .unwrap_or_else(|| 128 + status.signal().unwrap_or(0)))
}
