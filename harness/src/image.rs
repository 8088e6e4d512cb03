//! `ppvnet image build`: the `ppvnet:<version>` container image, built offline.
//!
//! The machine has no registry, so no base image can be pulled. The image is `FROM scratch`
//! (`docker/Dockerfile`, compiled in) over a root file system assembled here: the ppvnet binary,
//! exactly the shared libraries `ldd` lists for it and the dynamic loader, each at the path
//! `ldd` names (symbolic links resolved to their files), the shipped landscapes under
//! `/scenarios`, an empty `/tmp`, `/ppvnet` for the ready file's mounted folder, and the
//! machine's CA bundle ([`CA_BUNDLE`]): reqwest's TLS setup loads the system's roots whenever a
//! client is built and fails without any, even for the plain-HTTP health probe; no endpoint of
//! the landscape is trusted through it (their clients trust the run's CA only).
//!
//! The image carries a label with the SHA-256 of what went into it (binary, Dockerfile,
//! landscapes): a build whose inputs did not change keeps the existing image, and a changed
//! binary is always rebuilt, so tests can call [`build`] at every run.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::Context;
use sha2::{Digest, Sha256};

use crate::fabric::docker::{docker, first_line};

/// The Dockerfile of the image (`docker/Dockerfile` in the checkout).
pub const DOCKERFILE: &str = include_str!("../../docker/Dockerfile");
/// The system CA bundle (Debian's path), copied into the image when the machine has it.
pub const CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";
/// The label that holds the hash of the image's inputs.
pub const CONTENT_LABEL: &str = "org.ppvnet.content-sha256";

/// The image's default name: `ppvnet:<version of this build>`.
pub fn default_tag() -> String {
    format!("ppvnet:{}", env!("CARGO_PKG_VERSION"))
}

/// What to build.
#[derive(Clone, Debug)]
pub struct BuildOptions {
    /// The ppvnet binary to put in the image (a Linux binary of this machine's architecture).
    pub binary: PathBuf,
    pub tag: String,
    /// The landscapes copied to `/scenarios` (the checkout's `scenarios/`).
    pub scenarios: PathBuf,
    /// Build even when an image with the same inputs exists.
    pub force: bool,
}

/// A built (or kept) image.
#[derive(Clone, Debug)]
pub struct Built {
    pub tag: String,
    /// Its size as Docker reports it, in bytes.
    pub size: u64,
    /// False when an image with the same inputs was already there.
    pub rebuilt: bool,
}

/// Checks that the Docker CLI is installed and its daemon answers; the error is one line that
/// names the cause and the fix.
pub fn docker_ready() -> anyhow::Result<()> {
    let out = Command::new("docker")
        .args(["version", "--format", "{{.Server.Version}}"])
        .output();
    match out {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => anyhow::bail!(
            "docker is not installed (no `docker` command on PATH): install Docker Engine and its CLI"
        ),
        Err(e) => anyhow::bail!("cannot run docker: {e}"),
        Ok(o) if !o.status.success() => anyhow::bail!(
            "the Docker daemon does not answer ({}): start it (`systemctl start docker` or `dockerd &`)",
            first_line(&o.stderr)
        ),
        Ok(_) => Ok(()),
    }
}

/// Builds the image unless one with the same inputs is there already.
pub fn build(opts: &BuildOptions) -> anyhow::Result<Built> {
    docker_ready()?;
    let hash = content_hash(opts)?;
    build_if_changed(&opts.tag, &hash, opts.force, |context| {
        assemble_rootfs(opts, &context.join("rootfs"))?;
        Ok(std::fs::write(context.join("Dockerfile"), DOCKERFILE)?)
    })
}

/// `ppvnet image wrap`: an image `FROM scratch` of programs of this machine, for a team's
/// backend or client in the Docker fabric (`implementation: {kind: container}`, hosts
/// `{kind: container}`): each binary at `/usr/local/bin/<name>` with its `ldd` libraries, the
/// machine's CA bundle, an empty `/tmp`, `PATH=/usr/local/bin`; the first program is the
/// image's command (a landscape's `command` replaces it). Kept when its content did not change.
pub fn wrap(binaries: &[PathBuf], tag: &str) -> anyhow::Result<Built> {
    docker_ready()?;
    let names = binaries
        .iter()
        .map(|b| {
            b.file_name()
                .and_then(|n| n.to_str())
                .map(str::to_string)
                .with_context(|| format!("{} names no program", b.display()))
        })
        .collect::<anyhow::Result<Vec<String>>>()?;
    let first = names.first().context("name at least one program to wrap")?;
    let dockerfile = format!(
        "FROM scratch\nCOPY rootfs/ /\nENV PATH=/usr/local/bin\nCMD [\"/usr/local/bin/{first}\"]\n"
    );
    let mut hasher = Sha256::new();
    for (binary, name) in binaries.iter().zip(&names) {
        hasher.update(name.as_bytes());
        hasher.update([0]);
        hasher.update(read(binary)?);
    }
    hasher.update(dockerfile.as_bytes());
    let hash = format!("{:x}", hasher.finalize());
    build_if_changed(tag, &hash, false, |context| {
        let root = context.join("rootfs");
        for (binary, name) in binaries.iter().zip(&names) {
            add_program(binary, &root.join("usr/local/bin").join(name), &root)?;
        }
        Ok(std::fs::write(context.join("Dockerfile"), dockerfile)?)
    })
}

/// Builds `tag` from a context folder `fill` lays out, labelled with the content hash `hash`,
/// unless (without `force`) the image there already has that hash.
fn build_if_changed(
    tag: &str,
    hash: &str,
    force: bool,
    fill: impl FnOnce(&Path) -> anyhow::Result<()>,
) -> anyhow::Result<Built> {
    if !force && label_of(tag).as_deref() == Some(hash) {
        return Ok(Built {
            tag: tag.to_string(),
            size: size_of(tag)?,
            rebuilt: false,
        });
    }
    let context = tempfile::Builder::new()
        .prefix("ppvnet-image-")
        .tempdir()
        .context("cannot create the build context folder")?;
    fill(context.path())?;
    let context = context.path();
    let previous = id_of(tag);
    let label = format!("{CONTENT_LABEL}={hash}");
    let out = docker(&[
        "build",
        "--quiet",
        "--label",
        &label,
        "--tag",
        tag,
        &context.to_string_lossy(),
    ])?;
    if !out.status.success() {
        anyhow::bail!("docker build of {tag} failed: {}", last_line(&out.stderr));
    }
    // The image the tag named before is left untagged by the build: remove it, so rebuilding at
    // every changed binary does not pile up images. Only when no other tag names it (identical
    // content builds to the same image under several tags), and a container still using it
    // keeps it.
    if let Some(old) = previous.filter(|old| id_of(tag).as_ref() != Some(old)) {
        let tags = docker(&["image", "inspect", "--format", "{{len .RepoTags}}", &old]);
        if tags
            .is_ok_and(|o| o.status.success() && String::from_utf8_lossy(&o.stdout).trim() == "0")
        {
            let _ = docker(&["image", "rm", &old]);
        }
    }
    Ok(Built {
        tag: tag.to_string(),
        size: size_of(tag)?,
        rebuilt: true,
    })
}

/// The id of the image `tag`, when it exists.
fn id_of(tag: &str) -> Option<String> {
    let out = docker(&["image", "inspect", "--format", "{{.Id}}", tag]).ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// Lays out the image's root file system under `root`.
fn assemble_rootfs(opts: &BuildOptions, root: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    add_program(&opts.binary, &root.join("usr/local/bin/ppvnet"), root)?;
    copy_tree(&opts.scenarios, &root.join("scenarios"))?;
    let path = root.join("ppvnet");
    std::fs::create_dir_all(&path)?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))?;
    Ok(())
}

/// A program at `at` under `root` with what it needs to run there: the libraries `ldd` lists at
/// their paths, the machine's CA bundle ([`CA_BUNDLE`]) and an empty `/tmp`.
fn add_program(binary: &Path, at: &Path, root: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    copy_file(binary, at)?;
    for lib in shared_libraries(binary)? {
        let relative = lib.strip_prefix("/").unwrap_or(&lib);
        copy_file(&lib, &root.join(relative))?;
    }
    if Path::new(CA_BUNDLE).is_file() {
        copy_file(Path::new(CA_BUNDLE), &root.join(&CA_BUNDLE[1..]))?;
    }
    let tmp = root.join("tmp");
    std::fs::create_dir_all(&tmp)?;
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o1777))?;
    Ok(())
}

/// The shared libraries and the loader `ldd` lists for `binary` (none for a static binary).
pub fn shared_libraries(binary: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let out = Command::new("ldd")
        .arg(binary)
        .output()
        .context("cannot run ldd (install libc-bin)")?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        // "not a dynamic executable": a static binary needs nothing beside it.
        let err = String::from_utf8_lossy(&out.stderr);
        if text.contains("statically linked") || err.contains("not a dynamic executable") {
            return Ok(Vec::new());
        }
        anyhow::bail!(
            "ldd {} failed: {}",
            binary.display(),
            first_line(&out.stderr)
        );
    }
    parse_ldd(&text)
}

/// The absolute paths in `ldd` output; a library `ldd` could not find is an error.
fn parse_ldd(text: &str) -> anyhow::Result<Vec<PathBuf>> {
    let mut libs = Vec::new();
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        if line.contains("statically linked") {
            continue;
        }
        if line.contains("=> not found") {
            anyhow::bail!("a library of the binary is missing on this machine: {line}");
        }
        // `name => /path (0x…)`, or the loader as `/path (0x…)`; the vDSO has no path.
        let path = line.split("=>").nth(1).unwrap_or(line).trim();
        let path = path.split(" (").next().unwrap_or_default().trim();
        if path.starts_with('/') {
            libs.push(PathBuf::from(path));
        }
    }
    Ok(libs)
}

/// SHA-256 over the binary, the Dockerfile and every landscape file (by relative path).
fn content_hash(opts: &BuildOptions) -> anyhow::Result<String> {
    let mut hasher = Sha256::new();
    hasher.update(read(&opts.binary)?);
    hasher.update(DOCKERFILE.as_bytes());
    let mut files = Vec::new();
    list_files(&opts.scenarios, &mut files)?;
    files.sort();
    for file in files {
        hasher.update(
            file.strip_prefix(&opts.scenarios)?
                .to_string_lossy()
                .as_bytes(),
        );
        hasher.update([0]);
        hasher.update(read(&file)?);
    }
    Ok(format!("{:x}", hasher.finalize()))
}

fn read(path: &Path) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))
}

fn list_files(dir: &Path, out: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    let entries =
        std::fs::read_dir(dir).with_context(|| format!("cannot read {}", dir.display()))?;
    for entry in entries {
        let path = entry?.path();
        if path.is_dir() {
            list_files(&path, out)?;
        } else {
            out.push(path);
        }
    }
    Ok(())
}

fn copy_tree(from: &Path, to: &Path) -> anyhow::Result<()> {
    let mut files = Vec::new();
    list_files(from, &mut files)?;
    for file in files {
        copy_file(&file, &to.join(file.strip_prefix(from)?))?;
    }
    Ok(())
}

/// Copies a file's content (a symbolic link's target) with its permissions.
fn copy_file(from: &Path, to: &Path) -> anyhow::Result<()> {
    if let Some(dir) = to.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::copy(from, to)
        .with_context(|| format!("cannot copy {} into the image", from.display()))?;
    Ok(())
}

/// The content label of the image `tag`, when it exists.
fn label_of(tag: &str) -> Option<String> {
    let format = format!("{{{{index .Config.Labels \"{CONTENT_LABEL}\"}}}}");
    let out = docker(&["image", "inspect", "--format", &format, tag]).ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// The size of the image `tag` in bytes.
pub fn size_of(tag: &str) -> anyhow::Result<u64> {
    let out = docker(&["image", "inspect", "--format", "{{.Size}}", tag])?;
    if !out.status.success() {
        anyhow::bail!(
            "image {tag} is not built: build it with `ppvnet image build` ({})",
            first_line(&out.stderr)
        );
    }
    let text = String::from_utf8_lossy(&out.stdout);
    text.trim()
        .parse()
        .with_context(|| format!("docker reported the size of {tag} as {text:?}"))
}

fn last_line(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes)
        .lines()
        .map(str::trim)
        .rfind(|l| !l.is_empty())
        .unwrap_or("no message")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ldd_output_gives_every_library_and_the_loader_but_not_the_vdso() {
        let text = "\tlinux-vdso.so.1 (0x00007ffd)\n\
                    \tlibgcc_s.so.1 => /lib/x86_64-linux-gnu/libgcc_s.so.1 (0x00007f1)\n\
                    \tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f2)\n\
                    \t/lib64/ld-linux-x86-64.so.2 (0x00007f3)\n";
        assert_eq!(
            parse_ldd(text).unwrap(),
            [
                "/lib/x86_64-linux-gnu/libgcc_s.so.1",
                "/lib/x86_64-linux-gnu/libc.so.6",
                "/lib64/ld-linux-x86-64.so.2"
            ]
            .map(PathBuf::from)
        );
        let err = parse_ldd("\tlibfoo.so.1 => not found\n").unwrap_err();
        assert!(err.to_string().contains("libfoo.so.1"), "{err}");
        assert!(parse_ldd("\tstatically linked\n").unwrap().is_empty());
    }

    #[test]
    fn the_content_hash_follows_the_binary() {
        let dir = tempfile::tempdir().unwrap();
        let scenarios = dir.path().join("scenarios");
        std::fs::create_dir_all(scenarios.join("sub")).unwrap();
        std::fs::write(scenarios.join("sub/a.yaml"), "a").unwrap();
        let binary = dir.path().join("ppvnet");
        std::fs::write(&binary, "one").unwrap();
        let opts = BuildOptions {
            binary: binary.clone(),
            tag: default_tag(),
            scenarios: scenarios.clone(),
            force: false,
        };
        let first = content_hash(&opts).unwrap();
        assert_eq!(content_hash(&opts).unwrap(), first);
        std::fs::write(&binary, "two").unwrap();
        assert_ne!(content_hash(&opts).unwrap(), first);
        std::fs::write(&binary, "one").unwrap();
        std::fs::write(scenarios.join("sub/a.yaml"), "b").unwrap();
        assert_ne!(content_hash(&opts).unwrap(), first);
    }
}
