//! HTTP clients that act as a host of the fabric: connections originate from the host and host
//! names resolve by the host's DNS view (the oracle's private DNS answer), so
//! `https://kv-contoso-prod.vault.azure.net/` reaches the private endpoint from a linked vNet,
//! the public face from the internet, and fails with NXDOMAIN where Azure's DNS would.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

use super::FabricHandle;
use super::oracle::Resolution;

/// Resolves names as `host` would, to the fabric's real address of the answering face.
struct HostResolver {
    handle: FabricHandle,
    host: String,
}

/// Why a name did not resolve.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    #[error("{name}: NXDOMAIN (as resolved from host {host})")]
    NxDomain { name: String, host: String },
    #[error("{name}: the {service} face {face} is not bound in the fabric")]
    NotBound {
        name: String,
        service: String,
        face: String,
    },
    #[error(transparent)]
    Oracle(#[from] super::oracle::OracleError),
}

impl HostResolver {
    fn lookup(&self, name: &str) -> Result<SocketAddr, ResolveError> {
        face_for_name(&self.handle, &self.host, name)
    }
}

/// The real address of the face `name` resolves to from `host`: the host's DNS view (the
/// oracle's answer) turned into the address the fabric bound for that face. The host's proxy
/// ([`super::proxy`]) resolves the same way.
pub(crate) fn face_for_name(
    handle: &FabricHandle,
    host: &str,
    name: &str,
) -> Result<SocketAddr, ResolveError> {
    match handle.resolve(host, name)? {
        Resolution::NxDomain { .. } => Err(ResolveError::NxDomain {
            name: name.into(),
            host: host.to_string(),
        }),
        Resolution::Address { service, face, .. } => handle
            .face_address(&service, &face)
            .ok_or_else(|| ResolveError::NotBound {
                name: name.into(),
                service,
                face: face.label().to_string(),
            }),
    }
}

impl Resolve for HostResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let r = self.lookup(name.as_str());
        Box::pin(async move {
            let addr = r.map_err(|e| Box::new(e) as Box<dyn std::error::Error + Send + Sync>)?;
            Ok(Box::new(std::iter::once(addr)) as Addrs)
        })
    }
}

/// Builds a client for `host`: bound to `local` (loopback) or through `proxy` (an HTTP proxy
/// whose connections originate inside the host's namespace), trusting `root_ca_pem` only.
pub(crate) fn build(
    handle: FabricHandle,
    host: &str,
    local: Option<IpAddr>,
    proxy: Option<String>,
    root_ca_pem: &[u8],
) -> anyhow::Result<reqwest::Client> {
    let ca = reqwest::Certificate::from_pem(root_ca_pem)
        .map_err(|e| anyhow::anyhow!("the root CA is not a PEM certificate: {e}"))?;
    let mut b = reqwest::Client::builder()
        .tls_certs_only([ca])
        // A host's client shows redirects to its caller instead of following them: services
        // never rely on them, and the browser-less sign-in reads each hop of Entra's pages.
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .dns_resolver(Arc::new(HostResolver {
            handle,
            host: host.to_string(),
        }));
    if let Some(ip) = local {
        b = b.local_address(ip);
    }
    if let Some(p) = proxy {
        b = b.proxy(reqwest::Proxy::all(p)?);
    }
    Ok(b.build()?)
}
