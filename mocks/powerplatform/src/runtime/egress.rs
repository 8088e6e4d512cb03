//! Why an outbound request got no answer, in words that tell a vNet problem apart.
//!
//! reqwest reports every transport failure as one error type; the cause that matters to a user
//! of the emulated network is further down its source chain: a name that does not resolve
//! (private DNS zone not linked), a refused connection (nothing listening, missing peering in the
//! fabric), a reset (an NSG or firewall dropping an established flow), or a timeout (an NSG
//! silently dropping the SYN).

use std::error::Error as _;
use std::io;

/// The class of a transport failure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailureKind {
    /// The host name does not resolve from the sending host.
    Dns,
    /// The connection was refused.
    Refused,
    /// No route to the address (network or host unreachable).
    Unreachable,
    /// The connection was reset or closed before an answer.
    Dropped,
    /// Connecting took longer than the client allows.
    ConnectTimeout,
    /// The whole request took longer than allowed (connected, no timely answer).
    Timeout,
    /// The TLS handshake failed (certificate not trusted, wrong name).
    Tls,
    /// Anything else.
    Other,
}

/// A classified failure: its kind and a one-line description naming the cause.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SendFailure {
    pub kind: FailureKind,
    pub detail: String,
    /// The failure happened while connecting (TCP or TLS handshake): no request byte was sent,
    /// even when the peer reset the connection.
    pub while_connecting: bool,
}

impl SendFailure {
    /// Whether no connection was established at all: the request certainly did not reach the
    /// server, so retrying it from another host cannot run it twice.
    pub fn before_connection(&self) -> bool {
        matches!(
            self.kind,
            FailureKind::Dns
                | FailureKind::Refused
                | FailureKind::Unreachable
                | FailureKind::ConnectTimeout
        ) || (self.kind == FailureKind::Dropped && self.while_connecting)
    }

    /// `{kind}: {detail}` for messages.
    pub fn describe(&self) -> String {
        let kind = match self.kind {
            FailureKind::Dns => "name does not resolve (DNS)",
            FailureKind::Refused => "connection refused",
            FailureKind::Unreachable => "address unreachable",
            FailureKind::Dropped => "connection dropped",
            FailureKind::ConnectTimeout => "connection timed out",
            FailureKind::Timeout => "no response in time",
            FailureKind::Tls => "TLS handshake failed",
            FailureKind::Other => "request failed",
        };
        format!("{kind}: {}", self.detail)
    }
}

/// Classifies a reqwest error by its source chain.
pub fn classify(error: &reqwest::Error) -> SendFailure {
    let mut chain = Vec::new();
    let mut io_kind = None;
    let mut source = error.source();
    while let Some(e) = source {
        chain.push(e.to_string());
        if io_kind.is_none()
            && let Some(io) = e.downcast_ref::<io::Error>()
        {
            io_kind = Some(io.kind());
        }
        source = e.source();
    }
    let detail = if chain.is_empty() {
        error.to_string()
    } else {
        chain.join(": ")
    };
    let lower = detail.to_ascii_lowercase();
    let kind = if error.is_timeout() {
        if error.is_connect() {
            FailureKind::ConnectTimeout
        } else {
            FailureKind::Timeout
        }
    } else if lower.contains("dns error") || lower.contains("failed to lookup address") {
        FailureKind::Dns
    } else if io_kind == Some(io::ErrorKind::ConnectionRefused) {
        FailureKind::Refused
    } else if matches!(
        io_kind,
        Some(io::ErrorKind::NetworkUnreachable | io::ErrorKind::HostUnreachable)
    ) || lower.contains("unreachable")
        // A host that sends through a CONNECT proxy (the netns fabric's per-namespace proxy)
        // learns only that the tunnel could not be made: no route, a drop, or a name its DNS
        // view does not know. Nothing reached the backend, so it counts as unreachable (and a
        // failover may retry it).
        || lower.contains("tunnel error")
    {
        FailureKind::Unreachable
    } else if io_kind == Some(io::ErrorKind::TimedOut) {
        FailureKind::ConnectTimeout
    } else if matches!(
        io_kind,
        Some(
            io::ErrorKind::ConnectionReset
                | io::ErrorKind::ConnectionAborted
                | io::ErrorKind::BrokenPipe
                | io::ErrorKind::UnexpectedEof
        )
    ) || lower.contains("connection closed")
        || lower.contains("reset")
    {
        FailureKind::Dropped
    } else if lower.contains("certificate") || lower.contains("tls") {
        FailureKind::Tls
    } else {
        FailureKind::Other
    };
    SendFailure {
        kind,
        detail,
        while_connecting: error.is_connect(),
    }
}

/// Hop-by-hop headers (RFC 9110 §7.6.1) and the framing headers the server sets itself.
pub fn is_hop_by_hop(name: &str) -> bool {
    const HOP: [&str; 9] = [
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    ];
    HOP.iter().any(|h| name.eq_ignore_ascii_case(h)) || name.eq_ignore_ascii_case("content-length")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A resolver for which no name exists, as a vNet without the private DNS zone sees a
    /// private endpoint's name.
    struct NoSuchName;

    impl reqwest::dns::Resolve for NoSuchName {
        fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
            let name = name.as_str().to_owned();
            Box::pin(async move {
                Err(Box::new(io::Error::other(format!("{name}: no such name")))
                    as Box<dyn std::error::Error + Send + Sync>)
            })
        }
    }

    #[tokio::test]
    async fn unresolved_names_unreachable_addresses_and_closed_ports_are_told_apart() {
        let client = reqwest::Client::builder()
            .no_proxy()
            .dns_resolver(std::sync::Arc::new(NoSuchName))
            .build()
            .unwrap();
        let e = client
            .get("http://nowhere.contoso.example/")
            .send()
            .await
            .unwrap_err();
        let failure = classify(&e);
        assert_eq!(failure.kind, FailureKind::Dns, "{failure:?}");
        assert!(failure.before_connection());
        let e = reqwest::Client::builder()
            .no_proxy()
            .resolve_to_addrs("nowhere.contoso.example", &[])
            .build()
            .unwrap()
            .get("http://nowhere.contoso.example/")
            .send()
            .await
            .unwrap_err();
        assert_eq!(classify(&e).kind, FailureKind::Unreachable, "{e:?}");
        // Nothing listens on port 1 of the loopback.
        let e = reqwest::Client::builder()
            .no_proxy()
            .build()
            .unwrap()
            .get("http://127.0.0.1:1/")
            .send()
            .await
            .unwrap_err();
        let failure = classify(&e);
        assert_eq!(failure.kind, FailureKind::Refused, "{failure:?}");
        assert!(failure.describe().starts_with("connection refused: "));
    }
}
