//! The environment a program gets to act as a host of a running landscape, built in one place
//! for both fabrics and both uses: `ppvnet exec` ([`exec`]) applies it to a child, `ppvnet env`
//! ([`ClientEnv::exports`]) prints it for a shell.
//!
//! - The run's CA for every common bundle variable ([`crate::pki::CA_BUNDLE_VARIABLES`]), so
//!   Python (requests, aiohttp via OpenSSL), curl and rustls-native-certs trust the landscape.
//! - `AZURE_AUTHORITY_HOST` as Entra's real host name, which the host's DNS view resolves.
//! - Loopback: `HTTPS_PROXY`/`HTTP_PROXY` (both cases) at the host's proxy
//!   ([`super::proxy`]), and `NO_PROXY` naming the machine only, replacing whatever the user's
//!   environment had: every landscape name goes through the proxy, so it resolves by the host's
//!   DNS view and leaves from the host; plain HTTP is answered by the proxy with a clear 501
//!   instead of leaving the machine.
//! - Netns: the program runs inside the host's namespace with its vNet DNS; proxy variables
//!   inherited from the user are removed (inside the namespace they would name a proxy that
//!   does not exist there).

use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::Command;

use anyhow::Context;

use crate::ready::ReadyFile;

/// Proxy variables (programs read one case or the other).
const PROXY_VARIABLES: [&str; 4] = ["HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy"];
const NO_PROXY_VARIABLES: [&str; 2] = ["NO_PROXY", "no_proxy"];
/// curl's catch-all proxy variables: removed so the host's proxy (or none) is the only one.
const ALL_PROXY_VARIABLES: [&str; 2] = ["ALL_PROXY", "all_proxy"];
/// What stays direct on loopback: the machine itself (the control API), never a landscape name.
pub const NO_PROXY: &str = "localhost,127.0.0.1,::1";

/// The environment of a program acting as one host.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientEnv {
    pub host: String,
    /// Variables to set, in order.
    pub set: Vec<(String, String)>,
    /// Variables to remove from the inherited environment.
    pub unset: Vec<String>,
    /// The host's network namespace (netns): the program must also run inside it.
    pub namespace: Option<String>,
}

impl ClientEnv {
    /// The environment for `host` of the landscape `ready` describes.
    pub fn for_host(ready: &ReadyFile, host: &str) -> anyhow::Result<Self> {
        let entry = ready.hosts.get(host).with_context(|| {
            format!(
                "host '{host}' is not part of the landscape; hosts: {}",
                ready.hosts.keys().cloned().collect::<Vec<_>>().join(", ")
            )
        })?;
        let ca = ready.ca_cert.to_string_lossy().into_owned();
        let mut set: Vec<(String, String)> = crate::pki::CA_BUNDLE_VARIABLES
            .iter()
            .map(|v| (v.to_string(), ca.clone()))
            .collect();
        if ready.entra.is_some() {
            set.push((
                "AZURE_AUTHORITY_HOST".into(),
                format!("https://{}", crate::landscape::ENTRA_HOST_NAME),
            ));
        }
        let mut unset: Vec<String> = ALL_PROXY_VARIABLES.map(String::from).into();
        match (&entry.namespace, entry.proxy) {
            (Some(_), _) => {
                unset.extend(PROXY_VARIABLES.map(String::from));
                unset.extend(NO_PROXY_VARIABLES.map(String::from));
            }
            (None, Some(proxy)) => {
                let url = format!("http://{proxy}");
                set.extend(PROXY_VARIABLES.map(|v| (v.to_string(), url.clone())));
                set.extend(NO_PROXY_VARIABLES.map(|v| (v.to_string(), NO_PROXY.to_string())));
            }
            (None, None) => anyhow::bail!(
                "the ready file lists neither a namespace nor a proxy for host '{host}': \
                 private endpoints originate no traffic and have none, and a landscape in a \
                 container publishes the internet host's proxy only (or the file was written \
                 by an older ppvnet: restart `ppvnet up`)"
            ),
        }
        Ok(Self {
            host: host.to_string(),
            set,
            unset,
            namespace: entry.namespace.clone(),
        })
    }

    /// Applies the variables to `cmd` (not the namespace: see [`exec`]).
    pub fn apply(&self, cmd: &mut Command) {
        for name in &self.unset {
            cmd.env_remove(name);
        }
        cmd.envs(self.set.iter().map(|(k, v)| (k, v)));
    }

    /// The variables as shell lines (`export NAME='value'`, `unset NAME...`), for
    /// `eval "$(ppvnet env --host H)"`. On netns a comment says how to enter the namespace,
    /// which no variable can do.
    pub fn exports(&self) -> String {
        let mut out = String::new();
        if let Some(ns) = &self.namespace {
            out.push_str(&format!(
                "# host {} is the network namespace {ns}: run programs inside it with\n\
                 # `ppvnet exec --host {} -- CMD` (or `ip netns exec {ns} CMD`)\n",
                self.host, self.host
            ));
        }
        if !self.unset.is_empty() {
            out.push_str(&format!("unset {}\n", self.unset.join(" ")));
        }
        for (name, value) in &self.set {
            out.push_str(&format!(
                "export {name}={}\n",
                crate::up::shell_quote(value)
            ));
        }
        out
    }
}

/// `ppvnet exec`: runs `argv` as `host` of the landscape described by `ready_file` (inside its
/// namespace on netns and Docker, in its team container for a host `{kind: container}`, through
/// its proxy on loopback); returns the program's exit code (128 +
/// signal number when a signal ended it).
pub fn exec(ready_file: &Path, host: &str, argv: &[String]) -> anyhow::Result<i32> {
    let (program, args) = argv.split_first().context("no command to run")?;
    let ready = ReadyFile::read(ready_file)?;
    let env = ClientEnv::for_host(&ready, host)?;
    let mut cmd = match ready.hosts.get(host).and_then(|h| h.container.as_deref()) {
        // A host `{kind: container}`: its own image has the programs and the environment.
        Some(container) => {
            let mut cmd = Command::new("docker");
            cmd.args(["exec", "--interactive", container, program]);
            cmd
        }
        None => {
            let mut cmd = Command::new(program);
            env.apply(&mut cmd);
            if let Some(ns) = &env.namespace {
                super::netns::exec::enter_namespace(&mut cmd, ns)?;
            }
            cmd
        }
    };
    cmd.args(args);
    let status = cmd
        .status()
        .with_context(|| format!("cannot run {program} as host {host}"))?;
    Ok(status
        .code()
        .unwrap_or_else(|| 128 + status.signal().unwrap_or(0)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ready::HostEntry;

    fn ready(namespace: Option<&str>, proxy: Option<&str>) -> ReadyFile {
        let mut r = ReadyFile {
            ca_cert: "/run/it's/ca.pem".into(),
            ..Default::default()
        };
        r.hosts.insert(
            "internet".into(),
            HostEntry {
                address: "127.77.1.1".parse().unwrap(),
                azure_address: "198.51.100.10".parse().unwrap(),
                namespace: namespace.map(String::from),
                proxy: proxy.map(|p| p.parse().unwrap()),
                container: None,
            },
        );
        r
    }

    #[test]
    fn loopback_hosts_get_their_proxy_and_the_ca_and_nothing_stays_direct_but_the_machine() {
        let env = ClientEnv::for_host(&ready(None, Some("127.77.1.1:3128")), "internet").unwrap();
        let get = |k: &str| {
            env.set
                .iter()
                .find(|(n, _)| n == k)
                .map(|(_, v)| v.as_str())
        };
        for v in ["HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy"] {
            assert_eq!(get(v), Some("http://127.77.1.1:3128"), "{v}");
        }
        assert_eq!(get("NO_PROXY"), Some(NO_PROXY));
        assert_eq!(get("SSL_CERT_FILE"), Some("/run/it's/ca.pem"));
        assert_eq!(env.namespace, None);
        let exports = env.exports();
        assert!(
            exports.contains("export REQUESTS_CA_BUNDLE='/run/it'\\''s/ca.pem'\n"),
            "{exports}"
        );
        assert!(
            exports.starts_with("unset ALL_PROXY all_proxy\n"),
            "{exports}"
        );
    }

    #[test]
    fn netns_hosts_drop_inherited_proxies_and_say_how_to_enter_the_namespace() {
        let env = ClientEnv::for_host(&ready(Some("ppv-1-0-internet"), None), "internet").unwrap();
        assert!(env.unset.iter().any(|v| v == "HTTPS_PROXY"));
        assert!(!env.set.iter().any(|(n, _)| n.ends_with("_PROXY")));
        assert!(env.exports().contains("ip netns exec ppv-1-0-internet"));
        let err = ClientEnv::for_host(&ready(None, None), "internet").unwrap_err();
        assert!(
            err.to_string().contains("neither a namespace nor a proxy"),
            "{err}"
        );
        let err = ClientEnv::for_host(&ready(None, None), "nope").unwrap_err();
        assert!(err.to_string().contains("hosts: internet"), "{err}");
    }
}
