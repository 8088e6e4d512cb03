//! The few Docker operations the modules need, through the `docker` CLI (which negotiates the
//! API version with whatever engine the machine runs: see Cargo.toml).
//!
//! A [`Container`] is removed (with its anonymous volumes) when dropped, whether the test
//! passed, failed or panicked, so nothing is left running.

use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

use crate::error::{Error, Result};

/// The label every container of this crate carries (`docker ps --filter label=...`).
pub const LABEL: &str = "org.ppvnet.testcontainers";

/// Runs `docker args...`; its stdout, or the error with the last line of its stderr.
async fn docker(args: &[&str]) -> Result<String> {
    let out = Command::new("docker")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .await
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => Error::DockerUnavailable(
                "docker is not installed (no `docker` command on PATH): install Docker Engine and its CLI"
                    .into(),
            ),
            _ => Error::DockerUnavailable(format!("cannot run docker: {e}")),
        })?;
    if out.status.success() {
        return Ok(String::from_utf8_lossy(&out.stdout).into_owned());
    }
    Err(Error::Docker {
        command: args.first().copied().unwrap_or_default().to_string(),
        message: one_line(&String::from_utf8_lossy(&out.stderr)),
    })
}

/// Every line of docker's error output on one line (its last line alone may only say
/// "failed to start containers").
fn one_line(text: &str) -> String {
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    if lines.is_empty() {
        return "no message".into();
    }
    lines.join("; ")
}

/// Checks that the daemon answers and that `image` is on this machine.
pub async fn check(image: &str) -> Result<()> {
    match docker(&["version", "--format", "{{.Server.Version}}"]).await {
        Ok(_) => {}
        Err(Error::Docker { message, .. }) => {
            return Err(Error::DockerUnavailable(format!(
                "the Docker daemon does not answer ({message}): start it (`systemctl start docker` or `dockerd &`)"
            )));
        }
        Err(e) => return Err(e),
    }
    match docker(&["image", "inspect", "--format", "{{.Id}}", image]).await {
        Ok(_) => Ok(()),
        Err(Error::Docker { .. }) => Err(Error::ImageNotBuilt(image.to_string())),
        Err(e) => Err(e),
    }
}

/// A free TCP port on 127.0.0.1 (the kernel's choice; free when this returns).
pub fn free_port() -> Result<u16> {
    std::net::TcpListener::bind(("127.0.0.1", 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| Error::DockerUnavailable(format!("cannot find a free port on 127.0.0.1: {e}")))
}

/// A created container, removed on drop.
#[derive(Debug)]
pub struct Container {
    id: String,
}

impl Container {
    /// `docker create ARGS` (the container is not started yet).
    pub async fn create(args: &[String]) -> Result<Self> {
        let mut all = vec!["create", "--label", LABEL];
        all.extend(args.iter().map(String::as_str));
        let id = docker(&all).await?.trim().to_string();
        Ok(Self { id })
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    /// Copies `bytes` into the (created) container as the file `path`.
    pub async fn copy_in(&self, bytes: &[u8], path: &str) -> Result<()> {
        let local = std::env::temp_dir().join(format!("ppvnet-tc-{}", self.id));
        tokio::fs::write(&local, bytes)
            .await
            .map_err(|e| Error::Ready(format!("cannot write {}: {e}", local.display())))?;
        let target = format!("{}:{path}", self.id);
        let copied = docker(&["cp", &local.to_string_lossy(), &target]).await;
        let _ = tokio::fs::remove_file(&local).await;
        copied.map(|_| ())
    }

    /// Starts the container; a published port another program holds is [`Error::PortTaken`].
    pub async fn start(&self, ports: &[u16]) -> Result<()> {
        match docker(&["start", &self.id]).await {
            Ok(_) => Ok(()),
            Err(Error::Docker { message, .. })
                if message.contains("already allocated") || message.contains("in use") =>
            {
                let port = ports
                    .iter()
                    .copied()
                    .find(|p| message.contains(&format!(":{p}")))
                    .unwrap_or_default();
                Err(Error::PortTaken(port))
            }
            Err(e) => Err(e),
        }
    }

    /// Waits until the container prints a line containing `marker` (stdout or stderr); fails
    /// with the last line it printed when it exits first.
    pub async fn wait_for_line(&self, marker: &str, timeout: Duration) -> Result<()> {
        let mut logs = Command::new("docker")
            .args(["logs", "--follow", &self.id])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| Error::DockerUnavailable(format!("cannot run docker logs: {e}")))?;
        let (Some(out), Some(err)) = (logs.stdout.take(), logs.stderr.take()) else {
            return Err(Error::DockerUnavailable(
                "docker logs gave no output".into(),
            ));
        };
        let (mut out, mut err) = (BufReader::new(out).lines(), BufReader::new(err).lines());
        let mut last = String::new();
        let found = tokio::time::timeout(timeout, async {
            let (mut out_open, mut err_open) = (true, true);
            while out_open || err_open {
                let line = tokio::select! {
                    l = out.next_line(), if out_open => l.unwrap_or(None).or_else(|| { out_open = false; None }),
                    l = err.next_line(), if err_open => l.unwrap_or(None).or_else(|| { err_open = false; None }),
                };
                let Some(line) = line else { continue };
                if line.contains(marker) {
                    return true;
                }
                if !line.trim().is_empty() {
                    last = line;
                }
            }
            false
        })
        .await;
        match found {
            Ok(true) => Ok(()),
            Ok(false) => Err(Error::ExitedEarly {
                code: self.exit_code().await.unwrap_or(-1),
                last_line: if last.is_empty() {
                    "it printed nothing".into()
                } else {
                    last
                },
            }),
            Err(_) => Err(Error::Timeout(timeout.as_secs())),
        }
    }

    async fn exit_code(&self) -> Result<i64> {
        let code = docker(&["inspect", "--format", "{{.State.ExitCode}}", &self.id]).await?;
        code.trim().parse().map_err(|_| Error::Docker {
            command: "inspect".into(),
            message: format!("unexpected exit code {code:?}"),
        })
    }

    /// The content of the file `path` in the container.
    pub async fn copy_out(&self, path: &str) -> Result<Vec<u8>> {
        let out = Command::new("docker")
            .args(["cp", &format!("{}:{path}", self.id), "-"])
            .stdin(Stdio::null())
            .output()
            .await
            .map_err(|e| Error::DockerUnavailable(format!("cannot run docker cp: {e}")))?;
        if !out.status.success() {
            return Err(Error::Docker {
                command: "cp".into(),
                message: one_line(&String::from_utf8_lossy(&out.stderr)),
            });
        }
        first_tar_file(&out.stdout)
            .map(<[u8]>::to_vec)
            .ok_or_else(|| Error::Ready(format!("docker cp of {path} gave no file")))
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        // Synchronous: a drop may run outside any runtime, or while one is shutting down.
        let _ = std::process::Command::new("docker")
            .args(["rm", "--force", "--volumes", &self.id])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// The content of the first regular file of a tar archive (`docker cp CONTAINER:FILE -`).
fn first_tar_file(tar: &[u8]) -> Option<&[u8]> {
    let mut at = 0;
    while at + 512 <= tar.len() {
        let header = &tar[at..at + 512];
        if header.iter().all(|b| *b == 0) {
            return None;
        }
        let size_field = std::str::from_utf8(&header[124..136]).ok()?;
        let size =
            usize::from_str_radix(size_field.trim_matches(|c: char| c == '\0' || c == ' '), 8)
                .ok()?;
        let body = at + 512;
        // Type '0' (or NUL in old archives) is a regular file; skip PAX headers and the like.
        if matches!(header[156], b'0' | 0) {
            return tar.get(body..body + size);
        }
        at = body + size.div_ceil(512) * 512;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(name: &str, kind: u8, size: usize) -> Vec<u8> {
        let mut h = vec![0u8; 512];
        h[..name.len()].copy_from_slice(name.as_bytes());
        let size = format!("{size:011o}\0");
        h[124..136].copy_from_slice(size.as_bytes());
        h[156] = kind;
        h
    }

    #[test]
    fn the_first_regular_file_of_a_tar_is_found_past_extended_headers() {
        let mut tar = header("PaxHeaders/ready.json", b'x', 20);
        tar.extend(b"20 path=ready.json\n\0");
        tar.resize(1024, 0);
        tar.extend(header("ready.json", b'0', 2));
        tar.extend(b"{}");
        tar.resize(2048, 0);
        tar.extend([0u8; 1024]);
        assert_eq!(first_tar_file(&tar), Some(&b"{}"[..]));
        assert_eq!(first_tar_file(&[0u8; 1024]), None);
        assert_eq!(first_tar_file(b"short"), None);
    }
}
