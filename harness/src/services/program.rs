//! A team's own API program (`implementation: {kind: command}`): started on the `internet`
//! host with its faces handed over by socket activation ([`spawn_external`] documents the
//! contract), its certificate and environment ([`program_env`]), and App Service's 403 page on
//! a disabled public face.

use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::fabric::Fabric;
use crate::landscape::Landscape;
use crate::ready;
use crate::scenario::model::{Api, App};
use crate::services::launch::{Launch, Tasks};

/// The API a program serves: the landscape's API, its app registration and the command line.
#[derive(Clone, Copy)]
pub struct Program<'a> {
    pub api: &'a Api,
    pub app: &'a App,
    pub argv: &'a [String],
}

/// Starts `program` with `endpoints` (bound by `bind_faces` for a program, except a disabled
/// public face, which App Service itself answers here), its leaf certificate written to the
/// run's folder for it.
pub fn start(
    run: Launch<'_>,
    entra: &crate::services::entra::Started,
    program: Program<'_>,
    endpoints: Vec<ppvnet_common::Endpoint>,
    leaf: &crate::pki::Leaf,
    tasks: &mut Tasks,
) -> anyhow::Result<()> {
    let Program { api, app, argv } = program;
    let (cert_dir, faces) = prepare(run, api, leaf, endpoints, tasks)?;
    let env = program_env(
        run.landscape,
        api,
        app,
        &entra.entry,
        run.pki.ca_path(),
        &cert_dir,
    );
    let mut child = spawn_external(run.fabric, argv, &run.landscape.base_dir, &env, faces)
        .with_context(|| format!("api {}: cannot start {:?}", api.name, argv))?;
    let name = api.name.clone();
    let shutdown = run.stopped();
    tasks.spawn(async move {
        tokio::select! {
            status = child.wait() => {
                let status = status?;
                anyhow::bail!("api {name}: the program exited with {status}")
            }
            _ = shutdown => {
                let _ = child.kill().await;
                Ok(())
            }
        }
    });
    Ok(())
}

/// What a team's API (a program, or an image: `services::container`) needs besides being
/// started: its leaf certificate written to the run's folder (returned), and its faces minus a
/// disabled public face, which App Service answers itself with its 403 page, served here.
pub(crate) fn prepare(
    run: Launch<'_>,
    api: &Api,
    leaf: &crate::pki::Leaf,
    endpoints: Vec<ppvnet_common::Endpoint>,
    tasks: &mut Tasks,
) -> anyhow::Result<(PathBuf, Vec<ppvnet_common::Endpoint>)> {
    let public_enabled =
        api.public_network_access == crate::scenario::model::PublicNetworkAccess::Enabled;
    let cert_dir = run.opts.run_dir.join("apis").join(&api.name);
    ppvnet_common::private_fs::create_dir_all(&cert_dir)?;
    ready::write_atomically(&cert_dir.join("tls.crt"), leaf.cert_pem.as_bytes())?;
    ready::write_atomically(&cert_dir.join("tls.key"), leaf.key_pem.as_bytes())?;
    // App Service evaluates public network access before the app sees a request: with it
    // disabled, the public face answers App Service's 403 page and the program never gets it
    // (as the builtin search API does in its own middleware).
    let (refused, faces): (Vec<_>, Vec<_>) = endpoints
        .into_iter()
        .partition(|e| !public_enabled && e.ingress == crate::fabric::Face::Public);
    if !refused.is_empty() {
        let tls = run.pki.server_config(leaf)?;
        let front = run.stopped();
        let name = api.name.clone();
        tasks.spawn(async move {
            ppvnet_common::serve(refused, app_service_forbidden(), Some(tls), front)
                .await
                .with_context(|| format!("api {name}: public face"))
        });
    }
    Ok((cert_dir, faces))
}

/// The environment of a team's API program besides its faces (README, "The landscape format"),
/// with the CA bundle and the certificate folder at the paths the program sees them.
pub(crate) fn program_env(
    landscape: &Landscape,
    api: &Api,
    app: &App,
    entra: &ready::EntraEntry,
    ca: &Path,
    cert_dir: &Path,
) -> Vec<(&'static str, std::ffi::OsString)> {
    let ca = ca.as_os_str();
    let mut env: Vec<(&str, std::ffi::OsString)> = vec![
        (
            "PPVNET_TENANT_ID",
            landscape.scenario.tenant.id.clone().into(),
        ),
        ("PPVNET_AUTHORITY", entra.authority_host.clone().into()),
        ("AZURE_AUTHORITY_HOST", entra.authority_host.clone().into()),
        ("PPVNET_CLIENT_ID", app.client_id.clone().into()),
        (
            "PPVNET_IDENTIFIER_URI",
            app.identifier_uris
                .first()
                .cloned()
                .unwrap_or_default()
                .into(),
        ),
        ("PPVNET_CA_BUNDLE", ca.to_owned()),
        ("PPVNET_TLS_CERT", cert_dir.join("tls.crt").into()),
        ("PPVNET_TLS_KEY", cert_dir.join("tls.key").into()),
        (
            "PPVNET_PUBLIC_NETWORK_ACCESS",
            format!("{:?}", api.public_network_access).into(),
        ),
    ];
    env.extend(crate::pki::CA_BUNDLE_VARIABLES.map(|v| (v, ca.to_owned())));
    env
}

/// App Service's answer on the public face of an app whose public network access is disabled.
pub(crate) fn app_service_forbidden() -> axum::Router {
    use axum::response::IntoResponse;
    axum::Router::new().fallback(|| async {
        ppvnet_search_api::error::ApiError::PublicAccessDenied.into_response()
    })
}

/// Starts a team's API program with its faces by socket activation, the systemd protocol: the
/// fabric binds every face (in the netns fabric inside namespaces the program cannot bind in;
/// on loopback an internal address behind the face's relay, see
/// [`Fabric::bind_for_program`]), and the program inherits the listeners as descriptors 3, 4,
/// ... with `LISTEN_FDS` (their count), `LISTEN_PID` (its own pid) and `LISTEN_FDNAMES`
/// (`public` or the private endpoint's name, `:`-separated, in descriptor order);
/// `PPVNET_BINDS` lists the listeners as `label=address` and `PPVNET_BIND` is the first address.
/// The program runs on the `internet` host, where App Service's outbound traffic (Entra's keys)
/// comes from, in `dir`, with `env`. Every face must come from `bind_for_program`.
fn spawn_external(
    fabric: &Fabric,
    argv: &[String],
    dir: &Path,
    env: &[(&str, std::ffi::OsString)],
    faces: Vec<ppvnet_common::Endpoint>,
) -> anyhow::Result<tokio::process::Child> {
    use std::os::fd::AsRawFd;
    use std::os::unix::process::CommandExt;
    let (program, args) = argv.split_first().context("no command to run")?;
    let program = find_program(program, dir)?;
    let mut labels = Vec::new();
    let mut binds = Vec::new();
    let mut fds = Vec::new();
    for face in &faces {
        let label = face.ingress.label();
        let ppvnet_common::Source::Listener(listener) = &face.source else {
            anyhow::bail!("face {label} was not bound for a program (no listener to hand over)");
        };
        binds.push(format!("{label}={}", listener.local_addr()?));
        labels.push(label);
        fds.push(listener.as_raw_fd());
    }
    // LISTEN_PID must name the process that reads it, known only after the fork: `$$` is the
    // shell's pid, which `exec` hands on to the program.
    let mut cmd = std::process::Command::new("/bin/sh");
    cmd.arg("-c")
        .arg(r#"LISTEN_PID=$$; export LISTEN_PID; exec "$0" "$@""#)
        .arg(&program)
        .args(args)
        .current_dir(dir)
        .env("LISTEN_FDS", fds.len().to_string())
        .env("LISTEN_FDNAMES", labels.join(":"))
        .env("PPVNET_BINDS", binds.join(","))
        .envs(env.iter().map(|(k, v)| (k, v)));
    match binds.first().and_then(|b| b.split_once('=')) {
        Some((_, address)) => cmd.env("PPVNET_BIND", address),
        None => cmd.env_remove("PPVNET_BIND"),
    };
    fabric.run_as(crate::landscape::INTERNET, &mut cmd)?;
    let mut scratch = vec![0; fds.len()];
    let first_free = 3 + std::os::fd::RawFd::try_from(fds.len()).context("too many faces")?;
    // SAFETY: `hand_over` makes only raw syscalls, on memory allocated before the fork. It is
    // registered after the namespace entry, so it runs last before the exec.
    unsafe {
        cmd.pre_exec(move || hand_over(&fds, &mut scratch, first_free));
    }
    let child = tokio::process::Command::from(cmd)
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("cannot start {}", program.display()))?;
    // The program holds the listeners now; once it exits its faces refuse connections.
    drop(faces);
    Ok(child)
}

/// Between fork and exec: puts the listeners `fds` at descriptors 3, 4, ... `first_free - 1`
/// without close-on-exec, and marks every descriptor from `first_free` on close-on-exec, so the
/// program gets stdio and its listeners only (even descriptors ppvnet itself inherited). Every
/// listener is first copied above that range, since one of them may sit on a number another
/// must take; the copies are close-on-exec and vanish with the exec.
fn hand_over(
    fds: &[std::os::fd::RawFd],
    scratch: &mut [std::os::fd::RawFd],
    first_free: std::os::fd::RawFd,
) -> std::io::Result<()> {
    const FIRST: std::os::fd::RawFd = 3; // SD_LISTEN_FDS_START
    for (fd, copy) in fds.iter().zip(scratch.iter_mut()) {
        // SAFETY: plain syscalls on descriptors this process owns.
        *copy = unsafe { libc::fcntl(*fd, libc::F_DUPFD_CLOEXEC, first_free) };
        if *copy < 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    for (target, copy) in (FIRST..).zip(scratch.iter()) {
        // SAFETY: as above; dup2 leaves the new descriptor without FD_CLOEXEC.
        if unsafe { libc::dup2(*copy, target) } < 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    // SAFETY: as above. Kernels before 5.11 lack close_range (the call fails, harmlessly):
    // there descriptors ppvnet inherited without close-on-exec reach the program too.
    unsafe {
        libc::syscall(
            libc::SYS_close_range,
            first_free as libc::c_uint,
            libc::c_uint::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        );
    }
    Ok(())
}

/// Resolves a program as `execvp` would from `dir` (a name with a slash relative to `dir`, else
/// the first executable file on `PATH`), so a missing program fails the start, not later.
fn find_program(program: &str, dir: &Path) -> anyhow::Result<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let executable = |p: &Path| {
        p.metadata()
            .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if program.contains('/') {
        let path = dir.join(program);
        anyhow::ensure!(
            executable(&path),
            "{} is not an executable file",
            path.display()
        );
        return Ok(path);
    }
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|d| dir.join(d).join(program))
        .find(|p| executable(p))
        .with_context(|| format!("{program} is not found on PATH"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A landscape's `argv` names its program as a shell would: relative to the landscape's
    /// folder when it has a slash, else on PATH; a missing or non-executable program is refused
    /// when the landscape starts, by name.
    #[test]
    fn programs_resolve_like_execvp_and_missing_ones_are_named() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("bin").join("serve");
        std::fs::create_dir_all(script.parent().unwrap()).unwrap();
        std::fs::write(&script, "#!/bin/sh\n").unwrap();
        let err = find_program("bin/serve", dir.path()).unwrap_err();
        assert!(
            err.to_string().ends_with("is not an executable file"),
            "{err}"
        );
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert_eq!(find_program("bin/serve", dir.path()).unwrap(), script);
        assert_eq!(
            find_program("./bin/serve", dir.path()).unwrap(),
            dir.path().join("./bin/serve")
        );
        let sh = find_program("sh", dir.path()).unwrap();
        assert!(sh.is_absolute() && sh.ends_with("sh"), "{}", sh.display());
        let err = find_program("no-such-program-ppvnet", dir.path()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "no-such-program-ppvnet is not found on PATH"
        );
    }
}
