//! A landscape published from a container (`ppvnet up --listen`): what the machine outside can
//! reach, and a ready file that speaks of that.
//!
//! Inside a container the loopback fabric's 127.B.x.y addresses belong to the container's own
//! loopback: a published port cannot reach them. Two listeners go on the container's interface
//! instead, and they are enough for any unmodified client on the machine:
//!
//! - the control API (`--control-port`);
//! - the `internet` host's HTTPS proxy (`--proxy-port`): a client sets `HTTPS_PROXY` to it and
//!   trusts the run's CA, and reaches every public face by its real Azure name
//!   (`login.microsoftonline.com`, `kv-….vault.azure.net`) exactly as `ppvnet exec --host
//!   internet` does on one machine. Its tunnels leave from the internet host's own address, so
//!   the fabric's relays, NSGs and flow log see the internet host.
//!
//! The ready file written into the mounted folder ([`machine_view`]) gives the addresses the
//! machine publishes those two at (`--advertise-control`, `--advertise-proxy`: docker's
//! `127.0.0.1:HOST_PORT`), the public URLs by Azure name (reached through the proxy), and the
//! CA's path relative to the ready file's folder (the container cannot know where the machine
//! mounted it; [`crate::ready::ReadyFile::read`] resolves it). Addresses only reachable inside
//! the container (private endpoints, the other hosts' proxies) are left out.

use std::net::{IpAddr, SocketAddr};
use std::path::Path;

use anyhow::Context;

use crate::ready::ReadyFile;

/// The port of the internet host's published proxy inside the container (Squid's customary
/// port, as [`crate::fabric::proxy::PROXY_PORT`]).
pub const PROXY_PORT: u16 = crate::fabric::proxy::PROXY_PORT;

/// How a run is published: where it listens, and what the machine calls those listeners.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Publish {
    /// The container's address the control API and the internet host's proxy listen on
    /// (`0.0.0.0`).
    pub listen: IpAddr,
    /// The proxy's port on `listen`.
    pub proxy_port: u16,
    /// The control API as the machine reaches it; `None`: `127.0.0.1` and the control port.
    pub advertise_control: Option<SocketAddr>,
    /// The proxy as the machine reaches it; `None`: `127.0.0.1` and `proxy_port`.
    pub advertise_proxy: Option<SocketAddr>,
}

/// The published listeners, bound before anything starts so a taken port fails the run at once.
pub struct Listeners {
    pub control: std::net::TcpListener,
    pub proxy: std::net::TcpListener,
}

impl Publish {
    /// Binds the control API on `control_port` and the proxy on [`Publish::proxy_port`].
    pub fn bind(&self, control_port: u16) -> anyhow::Result<Listeners> {
        let bind = |port: u16, what: &str| {
            std::net::TcpListener::bind((self.listen, port)).with_context(|| {
                format!(
                    "cannot bind the {what} on {}:{port} (another program holds the port? \
                     choose another with --{}-port)",
                    self.listen,
                    if what == "control API" {
                        "control"
                    } else {
                        "proxy"
                    }
                )
            })
        };
        Ok(Listeners {
            control: bind(control_port, "control API")?,
            proxy: bind(self.proxy_port, "internet host's proxy")?,
        })
    }

    /// The control API's address on the machine, for a control API bound at `bound`.
    pub fn control_on_machine(&self, bound: SocketAddr) -> SocketAddr {
        self.advertise_control
            .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], bound.port())))
    }

    fn proxy_on_machine(&self) -> SocketAddr {
        self.advertise_proxy
            .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], self.proxy_port)))
    }
}

/// `ready` as the machine outside the container sees it (module docs), for a ready file
/// written at `ready_path`.
pub fn machine_view(ready: &ReadyFile, publish: &Publish, ready_path: &Path) -> ReadyFile {
    let mut view = ready.clone();
    let control = publish.control_on_machine(
        ready
            .control_url
            .trim_start_matches("http://")
            .parse()
            .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 0))),
    );
    view.control_url = format!("http://{control}");
    if let Some(dir) = ready_path.parent()
        && let Ok(relative) = ready.ca_cert.strip_prefix(dir)
    {
        view.ca_cert = relative.to_path_buf();
    }
    for (name, host) in &mut view.hosts {
        host.proxy = (name == crate::landscape::INTERNET).then(|| publish.proxy_on_machine());
    }
    if let Some(entra) = &mut view.entra {
        entra.authority_host = format!("https://{}", crate::landscape::ENTRA_HOST_NAME);
        entra.authority = format!("{}/{}", entra.authority_host, ready.tenant_id);
    }
    for vault in view.key_vaults.values_mut() {
        vault.url = vault.azure_url.clone();
        vault.private_endpoints.clear();
    }
    for api in view.apis.values_mut() {
        api.url = format!("https://{}", api.host_name);
        api.private_endpoints.clear();
    }
    if let Some(arm) = &mut view.arm {
        arm.url = format!("https://{}", arm.host_name);
    }
    if let Some(pp) = &mut view.power_platform {
        pp.url = format!("https://{}", pp.host_name);
        pp.control_url = format!("{}/powerplatform", view.control_url);
    }
    view
}

/// What to do next, printed under the endpoint table of a published run: the machine's client
/// environment, from the ready file in the mounted folder.
pub fn next_steps(view: &ReadyFile) -> String {
    let proxy = view
        .hosts
        .get(crate::landscape::INTERNET)
        .and_then(|h| h.proxy)
        .map(|p| format!("http://{p}"))
        .unwrap_or_default();
    format!(
        "\nOn the machine, with the folder this container writes its ready file to as DIR:\n  \
         eval \"$(ppvnet env --ready-file DIR/ready.json --host internet)\"\n\
         or by hand: HTTPS_PROXY={proxy}, the CA at DIR/{ca} (SSL_CERT_FILE, \
         REQUESTS_CA_BUNDLE), AZURE_AUTHORITY_HOST=https://{entra}\n\n",
        ca = view.ca_cert.display(),
        entra = crate::landscape::ENTRA_HOST_NAME,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ready::{HostEntry, VaultEntry};

    fn host(proxy: Option<&str>) -> HostEntry {
        HostEntry {
            address: "127.77.1.1".parse().unwrap(),
            azure_address: "198.51.100.10".parse().unwrap(),
            namespace: None,
            proxy: proxy.map(|p| p.parse().unwrap()),
            container: None,
        }
    }

    #[test]
    fn the_machine_view_names_published_ports_azure_names_and_a_relative_ca() {
        let mut ready = ReadyFile {
            ca_cert: "/ppvnet/run-1/ca.pem".into(),
            tenant_id: "t1".into(),
            control_url: "http://0.0.0.0:8400".into(),
            entra: Some(crate::ready::EntraEntry {
                authority_host: "https://127.77.2.1".into(),
                authority: "https://127.77.2.1/t1".into(),
                port_443: true,
            }),
            ..Default::default()
        };
        ready
            .hosts
            .insert("internet".into(), host(Some("127.77.1.1:3128")));
        ready
            .hosts
            .insert("pp-prod-westus".into(), host(Some("127.77.1.2:3128")));
        ready.key_vaults.insert(
            "kv".into(),
            VaultEntry {
                url: "https://127.77.2.3/".into(),
                public_network_access: "Enabled".into(),
                azure_url: "https://kv.vault.azure.net/".into(),
                private_endpoints: [("pe".to_string(), "https://127.77.1.9/".to_string())].into(),
            },
        );
        let publish = Publish {
            listen: "0.0.0.0".parse().unwrap(),
            proxy_port: 3128,
            advertise_control: Some("127.0.0.1:18400".parse().unwrap()),
            advertise_proxy: None,
        };
        let view = machine_view(&ready, &publish, Path::new("/ppvnet/ready.json"));
        assert_eq!(view.control_url, "http://127.0.0.1:18400");
        assert_eq!(view.ca_cert, Path::new("run-1/ca.pem"));
        assert_eq!(
            view.hosts["internet"].proxy,
            Some("127.0.0.1:3128".parse().unwrap())
        );
        assert_eq!(view.hosts["pp-prod-westus"].proxy, None);
        let entra = view.entra.unwrap();
        assert_eq!(entra.authority, "https://login.microsoftonline.com/t1");
        assert_eq!(view.key_vaults["kv"].url, "https://kv.vault.azure.net/");
        assert!(view.key_vaults["kv"].private_endpoints.is_empty());
        // The file the container keeps for itself is untouched.
        assert_eq!(ready.control_url, "http://0.0.0.0:8400");
    }
}
