//! Serving a router on listeners handed over by the harness.
//!
//! Every mock exposes `run(endpoints, shutdown)`; this is the one loop behind all of them. Each
//! endpoint is a std listener (already bound: on loopback, inside a network namespace, or in a
//! container) plus its [`Ingress`] label, which handlers read as `Extension<Ingress>`. Handlers
//! get the socket peer as `ConnectInfo<SocketAddr>`.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::{Extension, Router};
use axum_server::Handle;
use axum_server::tls_rustls::RustlsConfig;

use crate::net::Ingress;

/// One network face of a service: a bound listener and what it stands for.
#[derive(Debug)]
pub struct Endpoint {
    pub listener: std::net::TcpListener,
    pub ingress: Ingress,
}

impl Endpoint {
    pub fn public(listener: std::net::TcpListener) -> Self {
        Self {
            listener,
            ingress: Ingress::Public,
        }
    }

    pub fn private(listener: std::net::TcpListener, private_endpoint: impl Into<String>) -> Self {
        Self {
            listener,
            ingress: Ingress::PrivateEndpoint {
                name: private_endpoint.into(),
            },
        }
    }
}

/// Installs the process-wide rustls crypto provider (aws-lc-rs) once. Several crates in the
/// dependency graph enable more than one provider, and rustls then refuses to pick one.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}

/// Serves `router` on every endpoint until `shutdown` resolves, then drains open connections
/// for up to five seconds. `tls: None` serves plain HTTP.
pub async fn serve(
    endpoints: Vec<Endpoint>,
    router: Router,
    tls: Option<Arc<rustls::ServerConfig>>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    install_crypto_provider();
    let handle: Handle<SocketAddr> = Handle::new();
    let mut servers = tokio::task::JoinSet::new();
    for endpoint in endpoints {
        endpoint.listener.set_nonblocking(true)?;
        // Accepted sockets inherit TCP_NODELAY from the listener on Linux. Without it a small
        // response on a fresh connection can wait ~40 ms for the client's delayed ACK (Nagle),
        // which showed up as 40 ms stalls on first requests.
        socket2::SockRef::from(&endpoint.listener).set_tcp_nodelay(true)?;
        let app = router
            .clone()
            .layer(Extension(endpoint.ingress.clone()))
            .into_make_service_with_connect_info::<SocketAddr>();
        let handle = handle.clone();
        match &tls {
            Some(config) => {
                let server = axum_server::from_tcp_rustls(
                    endpoint.listener,
                    RustlsConfig::from_config(config.clone()),
                )?
                .handle(handle);
                servers.spawn(async move { server.serve(app).await });
            }
            None => {
                let server = axum_server::from_tcp(endpoint.listener)?.handle(handle);
                servers.spawn(async move { server.serve(app).await });
            }
        }
    }
    let stopper = handle.clone();
    tokio::spawn(async move {
        shutdown.await;
        stopper.graceful_shutdown(Some(Duration::from_secs(5)));
    });
    let mut first_error = None;
    while let Some(result) = servers.join_next().await {
        let outcome = result.map_err(io::Error::other).and_then(|r| r);
        if let Err(e) = outcome {
            tracing::error!(error = %e, "listener stopped with an error");
            handle.shutdown();
            first_error.get_or_insert(e);
        }
    }
    first_error.map_or(Ok(()), Err)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::extract::ConnectInfo;
    use axum::routing::get;

    #[tokio::test]
    async fn each_listener_tags_its_ingress_and_shutdown_stops_serving() {
        let public = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let private = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let (pa, va) = (public.local_addr().unwrap(), private.local_addr().unwrap());
        let router = Router::new().route(
            "/",
            get(
                |Extension(ingress): Extension<Ingress>,
                 ConnectInfo(peer): ConnectInfo<SocketAddr>| async move {
                    format!("{ingress:?} from {}", peer.ip())
                },
            ),
        );
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(serve(
            vec![Endpoint::public(public), Endpoint::private(private, "pe-x")],
            router,
            None,
            async move {
                let _ = rx.await;
            },
        ));
        let body = reqwest::get(format!("http://{pa}/"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert_eq!(body, "Public from 127.0.0.1");
        let body = reqwest::get(format!("http://{va}/"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert_eq!(body, "PrivateEndpoint { name: \"pe-x\" } from 127.0.0.1");
        tx.send(()).unwrap();
        task.await.unwrap().unwrap();
        assert!(reqwest::get(format!("http://{pa}/")).await.is_err());
    }
}
