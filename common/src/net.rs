//! Where did a request come from?
//!
//! Azure services decide on public network access, firewall rules and private endpoints by the
//! path a connection took. ppvnet services learn it in two fabric-neutral ways:
//! - the listener a connection arrived on carries an [`Ingress`] label, because a private
//!   endpoint is a separate address of the service (its own listener), and
//! - a [`PeerDirectory`], implemented by the harness for its fabric, maps the socket peer to the
//!   emulated client: its address as Azure would see it and the vNet/subnet it sits in.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

/// Which of a service's network faces a connection arrived on.
#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Ingress {
    /// The service's public endpoint (its public IP).
    Public,
    /// A private endpoint of the service, by the private endpoint's resource name.
    PrivateEndpoint { name: String },
}

/// The emulated client behind a socket peer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Peer {
    /// The client address as the Azure service would log it (a documentation-range public IP
    /// for internet clients, the subnet address for vNet clients).
    pub address: IpAddr,
    /// The fabric host name (`internet`, `pp-prod-westus`, ...), when known.
    pub host: Option<String>,
    /// The vNet and subnet the client sits in, when it is inside one.
    pub subnet: Option<SubnetRef>,
}

/// A subnet by its vNet and subnet names.
#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct SubnetRef {
    pub vnet: String,
    pub subnet: String,
}

/// Maps socket peers to emulated clients. The harness implements it per fabric.
pub trait PeerDirectory: Send + Sync + 'static {
    fn peer(&self, remote: SocketAddr) -> Peer;
}

/// The directory used when a service runs on its own: the socket address is the client address.
#[derive(Clone, Copy, Debug, Default)]
pub struct SocketPeers;

impl PeerDirectory for SocketPeers {
    fn peer(&self, remote: SocketAddr) -> Peer {
        Peer {
            address: remote.ip(),
            host: None,
            subnet: None,
        }
    }
}

/// A shared directory handle, as services keep it in their state.
pub type SharedPeerDirectory = Arc<dyn PeerDirectory>;

/// The default directory for a service run outside a landscape.
pub fn socket_peers() -> SharedPeerDirectory {
    Arc::new(SocketPeers)
}
