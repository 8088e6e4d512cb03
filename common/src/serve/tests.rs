use super::*;
use axum::http::StatusCode;
use axum::routing::{get, post};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// How long a test waits for something that should happen within a limit of a few hundred ms;
/// generous so a loaded CI machine does not flake, and never reached when the server is right.
const PATIENCE: Duration = Duration::from_secs(10);

fn app() -> Router {
    Router::new()
        .route(
            "/",
            get(
                |Extension(ingress): Extension<Face>,
                 ConnectInfo(peer): ConnectInfo<SocketAddr>| async move {
                    format!("{ingress:?} from {}", peer.ip())
                },
            ),
        )
        .route(
            "/echo",
            post(|body: axum::body::Bytes| async move { body.len().to_string() }),
        )
}

struct Running {
    addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<io::Result<()>>,
}

impl Running {
    async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.task.await.unwrap().unwrap();
    }
}

fn start(tls: Option<Arc<rustls::ServerConfig>>, limits: ServeLimits) -> Running {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(serve_with(
        vec![Endpoint::public(listener)],
        app(),
        tls,
        async move {
            let _ = rx.await;
        },
        limits,
    ));
    Running {
        addr,
        stop: Some(tx),
        task,
    }
}

fn tight_limits() -> ServeLimits {
    ServeLimits {
        header_read_timeout: Duration::from_millis(400),
        idle_timeout: Duration::from_millis(400),
        request_timeout: Duration::from_secs(5),
        tls_handshake_timeout: Duration::from_millis(400),
        max_connections: 16,
        max_body_bytes: 1000,
        drain_timeout: Duration::from_secs(1),
    }
}

struct Pki {
    server: Arc<rustls::ServerConfig>,
    client: Arc<rustls::ClientConfig>,
    ca_pem: String,
}

fn pki() -> Pki {
    install_crypto_provider();
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let cert: CertificateDer<'static> = certified.cert.der().clone();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
        certified.signing_key.serialize_der(),
    ));
    let mut server = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(vec![cert.clone()], key)
        .unwrap();
    server.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert).unwrap();
    let client = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    Pki {
        server: Arc::new(server),
        client: Arc::new(client),
        ca_pem: certified.cert.pem(),
    }
}

/// Resolves when the server closes `stream` (EOF or reset); panics after [`PATIENCE`].
async fn closed_by_server(mut stream: impl AsyncRead + Unpin, what: &str) {
    let mut buf = [0u8; 256];
    let outcome = tokio::time::timeout(PATIENCE, async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await;
    assert!(
        outcome.is_ok(),
        "the server kept the {what} connection open"
    );
}

#[tokio::test]
async fn each_listener_tags_its_ingress_and_shutdown_stops_serving() {
    let public = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let private = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let (pa, va) = (public.local_addr().unwrap(), private.local_addr().unwrap());
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(serve(
        vec![Endpoint::public(public), Endpoint::private(private, "pe-x")],
        app(),
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
    assert_eq!(body, "PrivateEndpoint(\"pe-x\") from 127.0.0.1");
    tx.send(()).unwrap();
    task.await.unwrap().unwrap();
    assert!(reqwest::get(format!("http://{pa}/")).await.is_err());
}

#[tokio::test]
async fn slow_and_idle_connections_are_cut_while_new_requests_are_served() {
    let pki = pki();
    let server = start(Some(pki.server.clone()), tight_limits());
    let addr = server.addr;
    let connector = tokio_rustls::TlsConnector::from(pki.client.clone());
    let name = ServerName::try_from("localhost").unwrap();

    // 1. A TCP connection that never starts its TLS handshake.
    let no_handshake = TcpStream::connect(addr).await.unwrap();
    // 2. A TLS connection that is idle once the handshake is done.
    let idle_tls = connector
        .connect(name.clone(), TcpStream::connect(addr).await.unwrap())
        .await
        .unwrap();
    // 3. A TLS connection trickling header lines, one every 100 ms, never ending the head.
    let mut trickle = connector
        .connect(name.clone(), TcpStream::connect(addr).await.unwrap())
        .await
        .unwrap();
    trickle
        .write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\n")
        .await
        .unwrap();
    let trickler = tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_millis(100));
        let started = Instant::now();
        loop {
            tick.tick().await;
            if trickle.write_all(b"X-Slow: 1\r\n").await.is_err() || trickle.flush().await.is_err()
            {
                return Some(started.elapsed());
            }
            if started.elapsed() > PATIENCE {
                return None;
            }
        }
    });

    // Meanwhile a well-behaved client is served at once.
    let client = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(pki.ca_pem.as_bytes()).unwrap()])
        .resolve("localhost", addr)
        .build()
        .unwrap();
    let asked = Instant::now();
    let body = client
        .get(format!("https://localhost:{}/", addr.port()))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(body, "Public from 127.0.0.1");
    assert!(
        asked.elapsed() < Duration::from_millis(400),
        "a new request waited {:?} behind slow connections",
        asked.elapsed()
    );

    closed_by_server(no_handshake, "handshake-less").await;
    closed_by_server(idle_tls, "idle TLS").await;
    let trickled_for = trickler.await.unwrap();
    assert!(
        trickled_for.is_some(),
        "the server kept reading a trickled request head"
    );
    server.stop().await;
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed_after_its_request() {
    let server = start(None, tight_limits());
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut response = Vec::new();
    let mut buf = [0u8; 1024];
    while !String::from_utf8_lossy(&response).contains("from 127.0.0.1") {
        let n = stream.read(&mut buf).await.unwrap();
        assert!(n > 0, "closed before the response");
        response.extend_from_slice(&buf[..n]);
    }
    assert!(String::from_utf8_lossy(&response).starts_with("HTTP/1.1 200"));
    closed_by_server(stream, "kept-alive").await;
    server.stop().await;
}

#[tokio::test]
async fn connections_over_the_cap_wait_until_one_is_released() {
    let limits = ServeLimits {
        max_connections: 1,
        ..tight_limits()
    };
    let server = start(None, limits);
    let holder = TcpStream::connect(server.addr).await.unwrap();
    let url = format!("http://{}/", server.addr);
    let request = tokio::spawn(async move { reqwest::get(url).await.map(|r| r.status()) });
    // The only slot is held by the silent connection; the request is answered only after the
    // server cut that one at its header timeout.
    closed_by_server(holder, "silent").await;
    let status = tokio::time::timeout(PATIENCE, request)
        .await
        .expect("the waiting request was never served")
        .unwrap()
        .unwrap();
    assert_eq!(status, StatusCode::OK);
    server.stop().await;
}

/// Reads an HTTP/1.1 response until its body contains `needle`; panics on close first.
async fn response_containing(stream: &mut (impl AsyncRead + Unpin), needle: &str) -> String {
    let mut response = Vec::new();
    let mut buf = [0u8; 1024];
    while !String::from_utf8_lossy(&response).contains(needle) {
        let n = tokio::time::timeout(PATIENCE, stream.read(&mut buf))
            .await
            .expect("no response")
            .unwrap();
        assert!(
            n > 0,
            "closed before the response: {}",
            String::from_utf8_lossy(&response)
        );
        response.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&response).into_owned()
}

/// A connection handed over through a channel is served like an accepted one, with the ingress
/// of its endpoint and the peer its sender named; it needs no socket at all.
#[tokio::test]
async fn handed_over_connections_are_served_with_the_peer_their_sender_names() {
    let (tx, source) = Source::channel();
    let (tx_stop, rx_stop) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(serve_with(
        vec![Endpoint::private(source, "pe-x")],
        app(),
        None,
        async move {
            let _ = rx_stop.await;
        },
        tight_limits(),
    ));
    let (mut client, server_side) = tokio::io::duplex(4096);
    let peer: SocketAddr = "10.10.1.4:50123".parse().unwrap();
    tx.send(Accepted {
        stream: Box::new(server_side),
        peer,
    })
    .await
    .unwrap();
    client
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let response = response_containing(&mut client, "from 10.10.1.4").await;
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(
        response.ends_with("PrivateEndpoint(\"pe-x\") from 10.10.1.4"),
        "{response}"
    );
    tx_stop.send(()).unwrap();
    task.await.unwrap().unwrap();
}

/// When every sender of a channel is gone, the service keeps serving its other endpoints until
/// it is told to stop, and then stops cleanly.
#[tokio::test]
async fn a_closed_channel_does_not_stop_the_service() {
    let (tx, source) = Source::channel();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx_stop, rx_stop) = tokio::sync::oneshot::channel::<()>();
    let mut task = tokio::spawn(serve_with(
        vec![Endpoint::public(source), Endpoint::public(listener)],
        app(),
        None,
        async move {
            let _ = rx_stop.await;
        },
        tight_limits(),
    ));
    drop(tx);
    // A loop that ended (or failed) on the closed channel would end the service at once.
    let early = tokio::time::timeout(Duration::from_millis(300), &mut task).await;
    assert!(
        early.is_err(),
        "the service ended when a channel closed: {early:?}"
    );
    for _ in 0..2 {
        let body = reqwest::get(format!("http://{addr}/"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert_eq!(body, "Public from 127.0.0.1");
    }
    tx_stop.send(()).unwrap();
    task.await.unwrap().unwrap();
}

/// The connection cap covers handed-over connections: one over it waits in the queue until a
/// served one is released.
#[tokio::test]
async fn handed_over_connections_over_the_cap_wait_until_one_is_released() {
    let (tx, source) = Source::channel();
    let limits = ServeLimits {
        max_connections: 1,
        ..tight_limits()
    };
    let (tx_stop, rx_stop) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(serve_with(
        vec![Endpoint::public(source)],
        app(),
        None,
        async move {
            let _ = rx_stop.await;
        },
        limits,
    ));
    let peer: SocketAddr = "203.0.113.7:40000".parse().unwrap();
    let (holder, held) = tokio::io::duplex(4096);
    let (mut waiting, queued) = tokio::io::duplex(4096);
    for stream in [held, queued] {
        tx.send(Accepted {
            stream: Box::new(stream),
            peer,
        })
        .await
        .unwrap();
    }
    waiting
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    // The only slot is held by the silent connection; the queued one is answered only after
    // the server cut that one at its header timeout.
    closed_by_server(holder, "silent").await;
    let response = response_containing(&mut waiting, "from 203.0.113.7").await;
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    tx_stop.send(()).unwrap();
    task.await.unwrap().unwrap();
}

#[tokio::test]
async fn bodies_over_the_cap_are_refused() {
    let server = start(None, tight_limits());
    let client = reqwest::Client::new();
    let url = format!("http://{}/echo", server.addr);
    let ok = client
        .post(&url)
        .body(vec![b'a'; 1000])
        .send()
        .await
        .unwrap();
    assert_eq!(ok.text().await.unwrap(), "1000");
    let declared = client
        .post(&url)
        .body(vec![b'a'; 1001])
        .send()
        .await
        .unwrap();
    assert_eq!(declared.status(), StatusCode::PAYLOAD_TOO_LARGE);
    // A chunked body declares no length and is cut while streaming.
    let chunks = futures::stream::iter((0..4).map(|_| {
        Ok::<_, io::Error>(hyper::body::Frame::data(axum::body::Bytes::from(vec![
            b'a';
            400
        ])))
    }));
    let streamed = client
        .post(&url)
        .body(reqwest::Body::wrap(http_body_util::StreamBody::new(chunks)))
        .send()
        .await
        .unwrap();
    assert_eq!(streamed.status(), StatusCode::PAYLOAD_TOO_LARGE);
    server.stop().await;
}

#[test]
fn limits_are_read_from_the_environment_and_bad_values_ignored() {
    let env = |name: &str| match name {
        "PPVNET_SERVE_IDLE_TIMEOUT_MS" => Some("2500".to_owned()),
        "PPVNET_SERVE_MAX_CONNECTIONS" => Some("7".to_owned()),
        "PPVNET_SERVE_MAX_BODY_BYTES" => Some("lots".to_owned()),
        "PPVNET_SERVE_HEADER_READ_TIMEOUT_MS" => Some("0".to_owned()),
        _ => None,
    };
    let limits = ServeLimits::from_lookup(env);
    assert_eq!(limits.idle_timeout, Duration::from_millis(2500));
    assert_eq!(limits.max_connections, 7);
    assert_eq!(limits.max_body_bytes, ServeLimits::default().max_body_bytes);
    assert_eq!(
        limits.header_read_timeout,
        ServeLimits::default().header_read_timeout
    );
}
