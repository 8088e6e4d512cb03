//! Serving a router on listeners, or on connections, handed over by the harness.
//!
//! Every mock exposes `run(endpoints, shutdown)`; this is the one loop behind all of them. Each
//! endpoint is a [`Source`] of connections plus its [`Face`] label, which handlers read as
//! `Extension<Face>`. A source is either a std listener (already bound: inside a network
//! namespace, or on an address of its own for a service run alone) or a channel of connections
//! another part of the process accepted and handed over: the loopback fabric's relay, which
//! must be the only way to a service, so the service has no address of its own to connect to.
//! Handlers get the socket peer (for a handed-over connection, the peer its sender named) as
//! `ConnectInfo<SocketAddr>`.
//!
//! The loop is hand-written on hyper rather than delegated to a server crate because every
//! connection has to be bounded in time and number, the way a front door in Azure bounds it: a
//! client that never finishes its TLS handshake, trickles request headers (slowloris), or parks an
//! idle keep-alive connection is disconnected, and at most [`ServeLimits::max_connections`]
//! connections are served at once (further ones wait in the kernel backlog). See [`ServeLimits`].

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use std::time::Duration;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, Response};
use axum::{Extension, Router};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, mpsc, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tower::ServiceExt;

use crate::net::Face;

/// One network face of a service: where its connections come from and what it stands for.
#[derive(Debug)]
pub struct Endpoint {
    pub source: Source,
    pub ingress: Face,
}

impl Endpoint {
    pub fn new(source: impl Into<Source>, ingress: Face) -> Self {
        Self {
            source: source.into(),
            ingress,
        }
    }

    pub fn public(listener: impl Into<Source>) -> Self {
        Self::new(listener, Face::Public)
    }

    pub fn private(listener: impl Into<Source>, private_endpoint: impl Into<String>) -> Self {
        Self::new(listener, Face::PrivateEndpoint(private_endpoint.into()))
    }
}

/// What a served connection carries: a TCP stream, or a stream its sender wraps (the loopback
/// relay counts the bytes for the flow log) or encrypts (TLS).
pub trait Connection: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Connection for T {}

/// A connection accepted by someone, with the socket peer the service is to see.
pub struct Accepted {
    pub stream: Box<dyn Connection>,
    /// What handlers get as `ConnectInfo`: the real peer for a listener; for a handed-over
    /// connection whatever its sender says, which must be an address the service's
    /// `PeerDirectory` resolves as it would the real socket peer.
    pub peer: SocketAddr,
}

impl std::fmt::Debug for Accepted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Accepted")
            .field("peer", &self.peer)
            .finish_non_exhaustive()
    }
}

/// How many handed-over connections may wait for a service that serves
/// [`ServeLimits::max_connections`] already: the depth of a std listener's backlog, so a busy
/// service is no different from one behind a listener. A sender waits while the queue is full.
pub const HANDOVER_BACKLOG: usize = 128;

/// Where an endpoint's connections come from.
#[derive(Debug)]
pub enum Source {
    /// A bound listener; the service accepts from it.
    Listener(std::net::TcpListener),
    /// Connections accepted elsewhere in the process and sent here ([`Source::channel`]).
    /// Senders set `TCP_NODELAY` on their sockets: the listener's inherited setting does not
    /// reach them.
    Channel(mpsc::Receiver<Accepted>),
}

impl From<std::net::TcpListener> for Source {
    fn from(listener: std::net::TcpListener) -> Self {
        Source::Listener(listener)
    }
}

impl Source {
    /// A channel source and the sender that hands connections to it. Once every sender is
    /// dropped, the endpoint gets no more connections; the service keeps running until its
    /// shutdown.
    pub fn channel() -> (mpsc::Sender<Accepted>, Source) {
        let (tx, rx) = mpsc::channel(HANDOVER_BACKLOG);
        (tx, Source::Channel(rx))
    }

    /// Starts accepting on the current tokio runtime (for code that serves a source itself,
    /// such as a test's echo server).
    pub fn acceptor(self) -> io::Result<Acceptor> {
        match self {
            Source::Listener(listener) => {
                listener.set_nonblocking(true)?;
                // Accepted sockets inherit TCP_NODELAY from the listener on Linux. Without it a
                // small response on a fresh connection can wait ~40 ms for the client's delayed
                // ACK (Nagle), which showed up as 40 ms stalls on first requests.
                socket2::SockRef::from(&listener).set_tcp_nodelay(true)?;
                Ok(Acceptor::Listener(TcpListener::from_std(listener)?))
            }
            Source::Channel(rx) => Ok(Acceptor::Channel(rx)),
        }
    }
}

/// A [`Source`] accepting on a runtime.
#[derive(Debug)]
pub enum Acceptor {
    Listener(TcpListener),
    Channel(mpsc::Receiver<Accepted>),
}

impl Acceptor {
    /// The next connection, or `None` once none can come (every sender of a channel is gone).
    /// Errors are the listener's accept errors, after which accepting may be retried.
    pub async fn accept(&mut self) -> io::Result<Option<Accepted>> {
        match self {
            Acceptor::Listener(listener) => {
                let (stream, peer) = listener.accept().await?;
                Ok(Some(Accepted {
                    stream: Box::new(stream),
                    peer,
                }))
            }
            Acceptor::Channel(rx) => Ok(rx.recv().await),
        }
    }
}

/// Bounds on what one client can hold. Defaults suit a test landscape (a handful of clients);
/// each value can be overridden with the environment variable named on the field, so
/// `ppvnet up` and the service binaries share one way to tune them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServeLimits {
    /// A new connection must complete its first request head within this time, and a request
    /// head started on a kept-alive connection must complete within it
    /// (`PPVNET_SERVE_HEADER_READ_TIMEOUT_MS`, default 10 s).
    pub header_read_timeout: Duration,
    /// A connection with no request in flight is closed after this long
    /// (`PPVNET_SERVE_IDLE_TIMEOUT_MS`, default 120 s, under the 4 minutes an Azure load
    /// balancer keeps an idle flow).
    pub idle_timeout: Duration,
    /// A connection whose requests make no progress (a trickled body, a stuck handler) is closed
    /// after this long (`PPVNET_SERVE_REQUEST_TIMEOUT_MS`, default 120 s).
    pub request_timeout: Duration,
    /// The TLS handshake must complete within this time
    /// (`PPVNET_SERVE_TLS_HANDSHAKE_TIMEOUT_MS`, default 10 s).
    pub tls_handshake_timeout: Duration,
    /// Connections served at once per service, over all its endpoints
    /// (`PPVNET_SERVE_MAX_CONNECTIONS`, default 1024).
    pub max_connections: usize,
    /// Largest request body any handler can read (`PPVNET_SERVE_MAX_BODY_BYTES`, default
    /// 64 MiB): reading past it fails. Services enforce their own, smaller limits in their own
    /// error format (draining a little more so the client can read it); this cap is the
    /// backstop for routes that do not (axum's extractors answer a bare 413).
    pub max_body_bytes: usize,
    /// How long open connections may drain after shutdown was requested (default 5 s).
    pub drain_timeout: Duration,
}

impl Default for ServeLimits {
    fn default() -> Self {
        Self {
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(120),
            request_timeout: Duration::from_secs(120),
            tls_handshake_timeout: Duration::from_secs(10),
            max_connections: 1024,
            max_body_bytes: 64 * 1024 * 1024,
            drain_timeout: Duration::from_secs(5),
        }
    }
}

impl ServeLimits {
    /// The defaults, with any `PPVNET_SERVE_*` override applied. A malformed value is reported
    /// and ignored rather than failing the service.
    pub fn from_env() -> Self {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Self {
        let mut limits = Self::default();
        let number = |name: &str| -> Option<u64> {
            let raw = lookup(name)?;
            match raw.trim().parse::<u64>() {
                Ok(n) if n > 0 => Some(n),
                _ => {
                    tracing::warn!(variable = name, value = %raw, "ignoring a malformed limit");
                    None
                }
            }
        };
        let millis = |name: &str, field: &mut Duration| {
            if let Some(ms) = number(name) {
                *field = Duration::from_millis(ms);
            }
        };
        millis(
            "PPVNET_SERVE_HEADER_READ_TIMEOUT_MS",
            &mut limits.header_read_timeout,
        );
        millis("PPVNET_SERVE_IDLE_TIMEOUT_MS", &mut limits.idle_timeout);
        millis(
            "PPVNET_SERVE_REQUEST_TIMEOUT_MS",
            &mut limits.request_timeout,
        );
        millis(
            "PPVNET_SERVE_TLS_HANDSHAKE_TIMEOUT_MS",
            &mut limits.tls_handshake_timeout,
        );
        let count = |name: &str, field: &mut usize| {
            if let Some(n) = number(name).and_then(|n| usize::try_from(n).ok()) {
                *field = n;
            }
        };
        count("PPVNET_SERVE_MAX_CONNECTIONS", &mut limits.max_connections);
        count("PPVNET_SERVE_MAX_BODY_BYTES", &mut limits.max_body_bytes);
        limits
    }
}

/// Installs the process-wide rustls crypto provider (aws-lc-rs) once. Several crates in the
/// dependency graph enable more than one provider, and rustls then refuses to pick one.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}

/// How a service is reached, as its own links must say it (`nextLink`, ids, `Location`): every
/// request carries it as an extension, set by [`serve_with`] from whether it serves TLS.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scheme {
    Http,
    Https,
}

impl Scheme {
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
        }
    }
}

/// Serves `router` on every endpoint until `shutdown` resolves, then drains open connections
/// for up to five seconds. `tls: None` serves plain HTTP. Limits come from [`ServeLimits::from_env`].
pub async fn serve(
    endpoints: Vec<Endpoint>,
    router: Router,
    tls: Option<Arc<rustls::ServerConfig>>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    serve_with(endpoints, router, tls, shutdown, ServeLimits::from_env()).await
}

/// [`serve`] with explicit limits.
pub async fn serve_with(
    endpoints: Vec<Endpoint>,
    router: Router,
    tls: Option<Arc<rustls::ServerConfig>>,
    shutdown: impl Future<Output = ()> + Send + 'static,
    limits: ServeLimits,
) -> io::Result<()> {
    install_crypto_provider();
    let scheme = if tls.is_some() {
        Scheme::Https
    } else {
        Scheme::Http
    };
    let router = router.layer(Extension(scheme));
    let limits = Arc::new(limits);
    let permits = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
    let (stop_tx, stop_rx) = watch::channel(false);
    let stop_tx = Arc::new(stop_tx);
    let mut listeners = JoinSet::new();
    for endpoint in endpoints {
        let connections = endpoint.source.acceptor()?;
        let listening = Listening {
            app: router.clone().layer(Extension(endpoint.ingress)),
            acceptor: acceptor.clone(),
            limits: limits.clone(),
            permits: permits.clone(),
            stop: stop_rx.clone(),
        };
        listeners.spawn(listening.run(connections));
    }
    let stopper = stop_tx.clone();
    tokio::spawn(async move {
        shutdown.await;
        let _ = stopper.send(true);
    });
    let mut first_error = None;
    while let Some(result) = listeners.join_next().await {
        let outcome = result.map_err(io::Error::other).and_then(|r| r);
        if let Err(e) = outcome {
            tracing::error!(error = %e, "listener stopped with an error");
            let _ = stop_tx.send(true);
            first_error.get_or_insert(e);
        }
    }
    first_error.map_or(Ok(()), Err)
}

/// One endpoint's accept loop and what its connections share.
struct Listening {
    app: Router,
    acceptor: Option<tokio_rustls::TlsAcceptor>,
    limits: Arc<ServeLimits>,
    permits: Arc<Semaphore>,
    stop: watch::Receiver<bool>,
}

impl Listening {
    async fn run(self, mut source: Acceptor) -> io::Result<()> {
        let mut stop = self.stop.clone();
        let mut connections = JoinSet::new();
        loop {
            while connections.try_join_next().is_some() {}
            // The permit is taken before accepting, so connections over the cap wait in the
            // kernel backlog (or the handover queue) instead of being accepted and starved.
            let permit = tokio::select! {
                permit = self.permits.clone().acquire_owned() => permit.map_err(io::Error::other)?,
                _ = stop.wait_for(|stopped| *stopped) => break,
            };
            let accepted = tokio::select! {
                accepted = source.accept() => accepted,
                _ = stop.wait_for(|stopped| *stopped) => break,
            };
            let Accepted { stream, peer } = match accepted {
                Ok(Some(accepted)) => accepted,
                Ok(None) => {
                    // Whoever handed connections over is gone (a fabric torn down before its
                    // services): nothing can arrive here any more, but the service runs until
                    // it is told to stop, as it would behind a listener nobody connects to.
                    drop(permit);
                    let _ = stop.wait_for(|stopped| *stopped).await;
                    break;
                }
                Err(e) => {
                    // EMFILE and friends: keep serving the connections we have and retry
                    // shortly rather than spinning or giving up the listener.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            connections.spawn(self.connection(stream, peer, permit));
        }
        drop(source);
        let drained = tokio::time::timeout(self.limits.drain_timeout * 2, async {
            while connections.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            connections.abort_all();
        }
        Ok(())
    }

    fn connection(
        &self,
        stream: Box<dyn Connection>,
        peer: SocketAddr,
        permit: OwnedSemaphorePermit,
    ) -> impl Future<Output = ()> + Send + 'static {
        let app = self.app.clone();
        let acceptor = self.acceptor.clone();
        let limits = self.limits.clone();
        let stop = self.stop.clone();
        async move {
            let _permit = permit;
            let io: Box<dyn Connection> = match acceptor {
                Some(acceptor) => {
                    let handshake =
                        tokio::time::timeout(limits.tls_handshake_timeout, acceptor.accept(stream));
                    match handshake.await {
                        Ok(Ok(tls)) => Box::new(tls),
                        Ok(Err(e)) => {
                            tracing::debug!(%peer, error = %e, "TLS handshake failed");
                            return;
                        }
                        Err(_) => {
                            tracing::debug!(%peer, "TLS handshake timed out");
                            return;
                        }
                    }
                }
                None => stream,
            };
            // The clocks start once the connection can carry requests.
            let activity = Arc::new(Activity::new());
            let io = Tracked {
                inner: io,
                meter: activity.clone(),
            };
            let service = request_service(app, peer, activity.clone(), limits.max_body_bytes);
            drive(io, service, &activity, &limits, stop, peer).await;
        }
    }
}

/// The per-request service: the body is cut at the cap (handlers see a read error and answer in
/// their service's own format; a declared length alone is not refused here for that reason), the
/// peer is attached as `ConnectInfo`, and the request counts as in flight until its response is
/// ready.
fn request_service(
    app: Router,
    peer: SocketAddr,
    activity: Arc<Activity>,
    max_body_bytes: usize,
) -> impl tower::Service<
    Request<Incoming>,
    Response = Response<Body>,
    Error = Infallible,
    Future = impl Future<Output = Result<Response<Body>, Infallible>> + Send,
> + Clone
+ Send
+ 'static {
    tower::service_fn(move |mut request: Request<Incoming>| {
        let app = app.clone();
        let in_flight = InFlight::begin(activity.clone());
        async move {
            let _in_flight = in_flight;
            request.extensions_mut().insert(ConnectInfo(peer));
            let request =
                request.map(|b| Body::new(http_body_util::Limited::new(b, max_body_bytes)));
            app.oneshot(request).await
        }
    })
}

/// Runs one connection until it ends, the server stops, or a limit expires.
async fn drive<S>(
    io: Tracked,
    service: S,
    activity: &Activity,
    limits: &ServeLimits,
    mut stop: watch::Receiver<bool>,
    peer: SocketAddr,
) where
    S: tower::Service<Request<Incoming>, Response = Response<Body>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    /// After a graceful close was asked for (GOAWAY on HTTP/2), the peer gets this long to
    /// finish before the socket is dropped.
    const CLOSE_GRACE: Duration = Duration::from_secs(1);
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder.http2().max_concurrent_streams(100);
    let conn =
        builder.serve_connection_with_upgrades(TokioIo::new(io), TowerToHyperService::new(service));
    tokio::pin!(conn);
    let mut hard_deadline: Option<Instant> = None;
    loop {
        let deadline = hard_deadline.unwrap_or_else(|| activity.deadline(limits));
        let changed = activity.changed.notified();
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!(%peer, error = %e, "connection ended with an error");
                }
                return;
            }
            _ = stop.wait_for(|stopped| *stopped), if hard_deadline.is_none() => {
                conn.as_mut().graceful_shutdown();
                hard_deadline = Some(Instant::now() + limits.drain_timeout);
            }
            _ = changed => {}
            _ = tokio::time::sleep_until(deadline) => {
                if hard_deadline.is_some() {
                    tracing::debug!(%peer, "closing a connection that did not finish in time");
                    return;
                }
                if activity.deadline(limits) <= Instant::now() {
                    tracing::debug!(%peer, "closing an idle or stalled connection");
                    conn.as_mut().graceful_shutdown();
                    hard_deadline = Some(Instant::now() + CLOSE_GRACE);
                }
            }
        }
    }
}

/// When a connection last made progress, which decides when it is cut.
struct Activity {
    state: Mutex<ActivityState>,
    /// Wakes the connection's watchdog so it recomputes its deadline.
    changed: Notify,
}

struct ActivityState {
    in_flight: usize,
    /// Requests started so far.
    started: u64,
    /// The last change of `in_flight` (or the connection's start).
    since: Instant,
    /// First bytes read while no request was in flight, after the first request: a new
    /// request head is being received.
    reading_since: Option<Instant>,
}

impl Activity {
    fn new() -> Self {
        Self {
            state: Mutex::new(ActivityState {
                in_flight: 0,
                started: 0,
                since: Instant::now(),
                reading_since: None,
            }),
            changed: Notify::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, ActivityState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn deadline(&self, limits: &ServeLimits) -> Instant {
        let s = self.lock();
        if s.in_flight > 0 {
            return s.since + limits.request_timeout;
        }
        if s.started == 0 {
            // Nothing asked yet: the first request head must arrive within the header timeout,
            // whether the client trickles it or sends nothing at all.
            return s.since + limits.header_read_timeout;
        }
        let idle = s.since + limits.idle_timeout;
        match s.reading_since {
            Some(reading) => idle.min(reading + limits.header_read_timeout),
            None => idle,
        }
    }

    fn bytes_read(&self) {
        let mut s = self.lock();
        if s.in_flight == 0 && s.started > 0 && s.reading_since.is_none() {
            s.reading_since = Some(Instant::now());
            drop(s);
            self.changed.notify_one();
        }
    }
}

/// Counts a request as in flight for as long as it lives.
struct InFlight(Arc<Activity>);

impl InFlight {
    fn begin(activity: Arc<Activity>) -> Self {
        {
            let mut s = activity.lock();
            s.in_flight += 1;
            s.started += 1;
            s.since = Instant::now();
            s.reading_since = None;
        }
        activity.changed.notify_one();
        Self(activity)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        {
            let mut s = self.0.lock();
            s.in_flight = s.in_flight.saturating_sub(1);
            s.since = Instant::now();
        }
        self.0.changed.notify_one();
    }
}

/// The connection's byte stream, reporting reads to its [`Activity`].
type Tracked = metered::Metered<Box<dyn Connection>, Arc<Activity>>;

impl metered::Meter for Arc<Activity> {
    fn read(&self, bytes: usize) {
        if bytes > 0 {
            self.bytes_read();
        }
    }
}

pub mod metered;

#[cfg(test)]
mod tests;
