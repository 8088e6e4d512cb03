//! Measuring helpers every ppvnet benchmark shares (the crates' criterion benches and
//! `ppvnet bench`), so each figure and its same-run reference come from one implementation:
//!
//! - [`closed_loop`] and [`Distribution`]: the load generator (N workers, each sending its next
//!   request when the previous one is answered) and its latency percentiles and rate;
//! - [`serve_bare`] and [`serve_bare_with`]: the reference "bare axum over rustls": the same
//!   serve loop and TLS configuration as every service, answering a fixed body with no other
//!   work, or the body of the service's own work minus its HTTP stack (the search rows' store
//!   query, `ppvnet_search_api::bench::SearchReference`);
//! - [`rsa_sign_rate`] and [`rsa_key_generation`]: the aws-lc reference for work that is one
//!   RSA-2048 signature (a token) or one key (a cold start's signing key);
//! - [`echo`] and [`echo_round_trip`]: a 4-byte echo, the reference for a connection's cost
//!   (direct loopback connect) and the service behind a relay when measuring its overhead;
//! - [`load_average`] and [`vm_rss_kib`]: the machine facts printed beside every figure.

use std::future::Future;
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{RSA_PKCS1_SHA256, RsaKeyPair};
use axum::Router;
use axum::body::Bytes;
use axum::http::{StatusCode, header};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::oneshot;

use crate::serve::{Endpoint, Source};

/// Runs `count` requests through `concurrency` closed-loop workers (each sends its next request
/// when the previous one is answered). Returns the wall time and every request's latency.
pub async fn closed_loop<F, Fut>(
    count: u64,
    concurrency: usize,
    request: F,
) -> (Duration, Vec<Duration>)
where
    F: Fn() -> Fut + Clone + Send + 'static,
    Fut: Future<Output = ()> + Send,
{
    let next = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let workers: Vec<_> = (0..concurrency.min(count.max(1) as usize))
        .map(|_| {
            let next = next.clone();
            let request = request.clone();
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                loop {
                    if next.fetch_add(1, Ordering::Relaxed) >= count {
                        return latencies;
                    }
                    let sent = Instant::now();
                    request().await;
                    latencies.push(sent.elapsed());
                }
            })
        })
        .collect();
    let mut latencies = Vec::with_capacity(count as usize);
    for worker in workers {
        // A worker that panicked (a request's assertion) fails the whole measurement.
        match worker.await {
            Ok(l) => latencies.extend(l),
            Err(e) => std::panic::resume_unwind(e.into_panic()),
        }
    }
    (started.elapsed(), latencies)
}

/// Latency distribution of one measured phase.
#[derive(Clone, Debug)]
pub struct Distribution {
    pub requests: usize,
    pub per_second: f64,
    pub p50: Duration,
    pub p99: Duration,
    pub max: Duration,
}

impl Distribution {
    /// The distribution of `latencies` measured over `wall`; `None` when nothing was measured.
    pub fn new(wall: Duration, mut latencies: Vec<Duration>) -> Option<Self> {
        if latencies.is_empty() {
            return None;
        }
        latencies.sort_unstable();
        let at = |q: f64| latencies[((latencies.len() as f64 * q).ceil() as usize).max(1) - 1];
        Some(Self {
            requests: latencies.len(),
            per_second: latencies.len() as f64 / wall.as_secs_f64().max(1e-9),
            p50: at(0.50),
            p99: at(0.99),
            max: at(1.0),
        })
    }

    /// [`closed_loop`] measured as a distribution.
    pub async fn measure<F, Fut>(count: u64, concurrency: usize, request: F) -> Option<Self>
    where
        F: Fn() -> Fut + Clone + Send + 'static,
        Fut: Future<Output = ()> + Send,
    {
        let (wall, latencies) = closed_loop(count, concurrency, request).await;
        Self::new(wall, latencies)
    }
}

/// A server running on the current tokio runtime until dropped.
pub struct Served {
    pub addr: SocketAddr,
    _stop: oneshot::Sender<()>,
}

impl Served {
    /// The handle of a server at `addr` and the shutdown future to serve it with: the future
    /// resolves when the handle is dropped.
    pub fn until_dropped(addr: SocketAddr) -> (Self, impl Future<Output = ()> + Send + 'static) {
        let (stop, stopped) = oneshot::channel::<()>();
        (Self { addr, _stop: stop }, async move {
            let _ = stopped.await;
        })
    }
}

/// The named reference "bare axum over rustls": [`crate::serve`] with `tls`, answering every
/// request with `body` as JSON and no other work. Spawns on the current runtime.
pub fn serve_bare(body: Vec<u8>, tls: Arc<rustls::ServerConfig>) -> std::io::Result<Served> {
    let body = Bytes::from(body);
    serve_bare_with(move || std::future::ready(Ok(body.clone())), tls)
}

/// [`serve_bare`] answering every request with the JSON body `answer` produces: the reference
/// for a service whose work is more than its HTTP stack (a search runs the same store query
/// here, so the ratio is what authentication, middleware and routing add). An `Err` answers
/// 500 with its text, which fails a measurement that expects 200.
pub fn serve_bare_with<F, Fut>(answer: F, tls: Arc<rustls::ServerConfig>) -> std::io::Result<Served>
where
    F: Fn() -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Result<Bytes, String>> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let router = Router::new().fallback(move || {
        let answer = answer.clone();
        async move {
            match answer().await {
                Ok(body) => (
                    StatusCode::OK,
                    [(header::CONTENT_TYPE, "application/json; charset=utf-8")],
                    body,
                ),
                Err(message) => (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                    Bytes::from(message),
                ),
            }
        }
    });
    let (served, shutdown) = Served::until_dropped(addr);
    tokio::spawn(crate::serve(
        vec![Endpoint::public(listener)],
        router,
        Some(tls),
        shutdown,
    ));
    Ok(served)
}

/// RSA-2048 PKCS#1 SHA-256 signatures per second on one thread with aws-lc (what Entra signs
/// every token with), signing a token-sized message for about `duration`.
pub fn rsa_sign_rate(duration: Duration) -> Result<f64, aws_lc_rs::error::Unspecified> {
    let key = RsaKeyPair::generate(KeySize::Rsa2048)?;
    let rng = SystemRandom::new();
    let message = [0x5a_u8; 600];
    let mut signature = vec![0; key.public_modulus_len()];
    let started = Instant::now();
    let mut signed = 0_u64;
    while signed == 0 || started.elapsed() < duration {
        key.sign(&RSA_PKCS1_SHA256, &rng, &message, &mut signature)?;
        signed += 1;
    }
    Ok(signed as f64 / started.elapsed().as_secs_f64())
}

/// The median time of `keys` RSA-2048 key generations with aws-lc (at least one): the largest
/// single cost of a cold start (see [`crate::keypool`]).
pub fn rsa_key_generation(keys: usize) -> Result<Duration, aws_lc_rs::error::Unspecified> {
    let mut times = Vec::with_capacity(keys.max(1));
    for _ in 0..keys.max(1) {
        let started = Instant::now();
        RsaKeyPair::generate(KeySize::Rsa2048)?;
        times.push(started.elapsed());
    }
    times.sort_unstable();
    Ok(times[times.len() / 2])
}

/// Echoes whatever each connection of `source` sends until it closes: the service of a
/// connection benchmark (on a plain listener, or behind a fabric relay).
pub async fn echo(source: Source) {
    let Ok(mut connections) = source.acceptor() else {
        return;
    };
    while let Ok(Some(accepted)) = connections.accept().await {
        let mut stream = accepted.stream;
        tokio::spawn(async move {
            let mut buf = [0u8; 64];
            while let Ok(n) = stream.read(&mut buf).await {
                if n == 0 || stream.write_all(&buf[..n]).await.is_err() {
                    break;
                }
            }
        });
    }
}

/// One 4-byte round trip on a fresh connection to [`echo`].
pub async fn echo_round_trip<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
) -> std::io::Result<()> {
    stream.write_all(b"ping").await?;
    let mut buf = [0u8; 4];
    stream.read_exact(&mut buf).await?;
    if &buf != b"ping" {
        return Err(std::io::Error::other("the echo answered something else"));
    }
    Ok(())
}

/// The 1/5/15-minute load averages: figures are only comparable between runs on an equally
/// idle machine.
pub fn load_average() -> Option<[f64; 3]> {
    let text = std::fs::read_to_string("/proc/loadavg").ok()?;
    let mut fields = text.split_whitespace().map(str::parse::<f64>);
    Some([
        fields.next()?.ok()?,
        fields.next()?.ok()?,
        fields.next()?.ok()?,
    ])
}

/// `VmRSS` of this process in KiB, from `/proc/self/status`.
pub fn vm_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}
