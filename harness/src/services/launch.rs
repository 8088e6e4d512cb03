//! What every service's start shares: the run's launch context, the task set services are
//! spawned into, the stop signal, and the binding of a service's faces.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use anyhow::Context;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::fabric::Fabric;
use crate::landscape::Landscape;
use crate::pki::Pki;
use crate::up::UpOptions;
use ppvnet_common::Clock;

/// The tasks of a run's services; `up` waits on them and reports the first that fails.
pub type Tasks = JoinSet<anyhow::Result<()>>;

/// What every service's start needs from the run: one launch context instead of a list of
/// arguments.
#[derive(Clone, Copy)]
pub struct Launch<'a> {
    pub landscape: &'a Landscape,
    pub opts: &'a UpOptions,
    pub fabric: &'a Fabric,
    pub pki: &'a Pki,
    pub clock: &'a Clock,
    pub stop_rx: &'a watch::Receiver<bool>,
}

impl Launch<'_> {
    /// A future that resolves when the run is told to stop.
    pub fn stopped(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        stopped(self.stop_rx)
    }

    /// The folder a service keeps its state in: under `--data-dir` when set, else in the run's
    /// folder (removed at stop).
    pub fn state_dir(&self, service: &str) -> std::path::PathBuf {
        self.opts
            .data_dir
            .clone()
            .unwrap_or_else(|| self.opts.run_dir.clone())
            .join(service)
    }

    /// An HTTP client on the public internet host, trusting the run's CA: how the services
    /// reach Entra (and Key Vault the Entra keys), as Azure's do.
    pub fn internet_client(&self) -> anyhow::Result<reqwest::Client> {
        self.fabric
            .http_client(crate::landscape::INTERNET, self.pki.ca_pem().as_bytes())
    }
}

/// A future that resolves when the run is told to stop.
pub fn stopped(
    rx: &watch::Receiver<bool>,
) -> impl std::future::Future<Output = ()> + Send + 'static {
    let mut rx = rx.clone();
    async move {
        let _ = rx.wait_for(|stop| *stop).await;
    }
}

/// The URL of a socket address, without the port when it is HTTPS's 443.
pub fn https_url(addr: SocketAddr) -> String {
    if addr.port() == 443 {
        format!("https://{}", addr.ip())
    } else {
        format!("https://{addr}")
    }
}

/// The URL of a service face for the ready file: its address on loopback; in the netns fabric
/// its Azure host name, which each namespace's DNS resolves to the face that host may use.
pub fn face_url(fabric: &Fabric, address: SocketAddr, host_name: &str) -> String {
    if fabric.kind().namespaced() {
        format!("https://{host_name}")
    } else {
        https_url(address)
    }
}

/// A service's faces, bound: its public endpoint and each of its private endpoints.
pub struct BoundFaces {
    pub endpoints: Vec<ppvnet_common::Endpoint>,
    /// The public face's URL (no trailing slash).
    pub public_url: String,
    /// Private endpoint name → URL.
    pub private_urls: BTreeMap<String, String>,
    /// Every face's address.
    pub addresses: Vec<SocketAddr>,
}

/// Faces for which `for_program` holds are bound for an external program
/// ([`Fabric::bind_for_program`]), the others for a service in this process.
pub fn bind_faces(
    fabric: &Fabric,
    service: &crate::landscape::Service,
    for_program: impl Fn(&crate::fabric::Face) -> bool,
) -> anyhow::Result<BoundFaces> {
    use crate::fabric::Face;
    let mut faces = vec![Face::Public];
    faces.extend(
        service
            .private_endpoints
            .iter()
            .cloned()
            .map(Face::PrivateEndpoint),
    );
    let mut out = BoundFaces {
        endpoints: Vec::new(),
        public_url: String::new(),
        private_urls: BTreeMap::new(),
        addresses: Vec::new(),
    };
    for face in faces {
        let bound = if for_program(&face) {
            fabric.bind_for_program(&service.name, &face)
        } else {
            fabric.bind(&service.name, &face)
        }
        .with_context(|| format!("{} face {face:?}", service.name))?;
        out.addresses.push(bound.address);
        let url = face_url(fabric, bound.address, &service.host_name);
        match face {
            Face::Public => out.public_url = url,
            Face::PrivateEndpoint(pe) => {
                out.private_urls.insert(pe, url);
            }
        }
        out.endpoints.push(bound.into_endpoint());
    }
    Ok(out)
}

/// `host[:port]` forms a client may send in `Host` for an address.
pub fn host_forms(addr: SocketAddr) -> Vec<String> {
    let mut forms = vec![addr.to_string()];
    if addr.port() == 443 {
        forms.push(addr.ip().to_string());
    }
    forms
}
