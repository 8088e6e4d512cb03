//! Running programs inside a host's namespace, the way `ip netns exec` does: the host's network
//! namespace, plus a private mount namespace in which the vNet's `/etc/netns/<ns>/resolv.conf` is
//! bound over `/etc/resolv.conf`, so the program resolves names by the host's DNS view.
//!
//! - [`enter_namespace`]: `ppvnet exec` on a netns landscape
//!   ([`crate::fabric::client_env::exec`]).
//! - [`NetnsFabric::enter_host`]: the same entry for a program the harness itself starts (an
//!   external API runs on the `internet` host, as App Service's outbound traffic does).

use std::ffi::CString;
use std::fs::File;
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;

use anyhow::Context;

use super::NetnsFabric;

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
pub(crate) fn enter_namespace(cmd: &mut Command, ns: &str) -> anyhow::Result<()> {
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
