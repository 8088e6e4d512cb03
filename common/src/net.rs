//! Where did a request come from?
//!
//! Azure services decide on public network access, firewall rules and private endpoints by the
//! path a connection took. ppvnet services learn it in two fabric-neutral ways:
//! - the listener a connection arrived on carries its [`Face`], because a private
//!   endpoint is a separate address of the service (its own listener), and
//! - a [`PeerDirectory`], implemented by the harness for its fabric, maps the socket peer to the
//!   emulated client: its address as Azure would see it and the vNet/subnet it sits in.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

/// A network face of a service: its public endpoint, or one of its private endpoints by the
/// private endpoint's resource name. The one face type of the workspace: a listener carries the
/// face its connections arrive on (handlers read it as `Extension<Face>`), the harness binds,
/// names and decides on faces with it, and JSON shows it as its [`Face::label`].
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Face {
    /// The service's public endpoint (its public IP).
    Public,
    /// A private endpoint of the service, by the private endpoint's resource name.
    PrivateEndpoint(String),
}

impl Face {
    /// `public`, or the private endpoint's name (control API, flow log and DNS answer text).
    pub fn label(&self) -> &str {
        match self {
            Face::Public => "public",
            Face::PrivateEndpoint(name) => name,
        }
    }

    /// The inverse of [`Face::label`].
    pub fn from_label(label: &str) -> Self {
        if label == "public" {
            Face::Public
        } else {
            Face::PrivateEndpoint(label.to_string())
        }
    }
}

impl serde::Serialize for Face {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.label())
    }
}

impl<'de> serde::Deserialize<'de> for Face {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let label = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Ok(Face::from_label(&label))
    }
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

/// A subnet by its vNet and subnet names: the one subnet reference of the workspace (landscape
/// files, the oracle's hosts, the vault's virtual network rules, peers).
#[derive(
    Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(deny_unknown_fields)]
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
