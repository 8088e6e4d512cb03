//! Client-credentials tokens per second through HTTP on loopback (criterion), plus the
//! numbers issue 3 asks for that criterion does not measure, printed once per run:
//! time from start to the first served discovery document (keys reused from a data dir),
//! peak tokens/s, p50/p99 latency at half of the peak rate, and the process RSS.
//!
//! Run: `cargo bench -p ppvnet-entra --bench token`. Compare with
//! `openssl speed -multi 2 rsa2048` (sign/s) on the same machine: every token is one RSA-2048
//! signature, so that is the ceiling.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use ppvnet_common::{Clock, Endpoint};
use ppvnet_entra::config::{ApplicationConfig, PasswordCredential, Timestamp};
use ppvnet_entra::{Entra, EntraConfig};

const TENANT: &str = "8a3b2c1d-4e5f-4a6b-9c8d-7e6f5a4b3c2d";
const CLIENT: &str = "33333333-cccc-4ccc-8ccc-333333333333";
const SECRET: &str = "Cnx8Q~bench-secret-bench-secret-bench";
/// Requests in flight at once (connections kept alive by the client pool).
const CONCURRENCY: usize = 16;
const BATCH: u64 = 256;

fn config() -> EntraConfig {
    let mut client = ApplicationConfig::new("bench client", CLIENT);
    client.password_credentials = vec![PasswordCredential {
        key_id: "c3333333-0000-4000-8000-000000000001".into(),
        display_name: None,
        secret_text: SECRET.into(),
        start_date_time: None,
        end_date_time: Timestamp(4_102_444_800),
    }];
    EntraConfig {
        tenant_id: TENANT.into(),
        domain: "bench.onmicrosoft.com".into(),
        display_name: None,
        tenant_region_scope: "NA".into(),
        users: vec![],
        groups: vec![],
        applications: vec![client, ApplicationConfig::azure_key_vault()],
    }
}

/// Starts the mock; returns its base URL and how long it took until the first discovery
/// document was served.
async fn start(data_dir: &std::path::Path) -> (String, Duration, tokio::sync::oneshot::Sender<()>) {
    let started = Instant::now();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let entra = Entra::new(
        &config(),
        Clock::new(),
        url::Url::parse(&base).unwrap(),
        Some(data_dir),
    )
    .unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(ppvnet_entra::run(
        entra,
        vec![Endpoint::public(listener)],
        None,
        async move {
            let _ = rx.await;
        },
    ));
    let discovery = format!("{base}/{TENANT}/v2.0/.well-known/openid-configuration");
    let client = reqwest::Client::new();
    loop {
        if let Ok(r) = client.get(&discovery).send().await
            && r.status() == 200
        {
            break;
        }
        tokio::task::yield_now().await;
    }
    (base, started.elapsed(), tx)
}

async fn one_token(client: &reqwest::Client, url: &str) -> Duration {
    let t = Instant::now();
    let r = client
        .post(url)
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", CLIENT),
            ("client_secret", SECRET),
            ("scope", "https://vault.azure.net/.default"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let _ = r.bytes().await.unwrap();
    t.elapsed()
}

/// `n` tokens with `CONCURRENCY` requests in flight.
async fn burst(client: &reqwest::Client, url: &Arc<String>, n: u64) -> Duration {
    let start = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for worker in 0..CONCURRENCY as u64 {
        let count = n / CONCURRENCY as u64 + u64::from(worker < n % CONCURRENCY as u64);
        let (client, url) = (client.clone(), url.clone());
        tasks.spawn(async move {
            for _ in 0..count {
                one_token(&client, &url).await;
            }
        });
    }
    while tasks.join_next().await.is_some() {}
    start.elapsed()
}

/// Open-loop load at `rate` tokens/s for `duration`; returns sorted latencies.
async fn latencies_at(
    client: &reqwest::Client,
    url: &Arc<String>,
    rate: f64,
    duration: Duration,
) -> Vec<Duration> {
    let interval = Duration::from_secs_f64(1.0 / rate);
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let end = Instant::now() + duration;
    let mut tasks = tokio::task::JoinSet::new();
    while Instant::now() < end {
        ticker.tick().await;
        let (client, url) = (client.clone(), url.clone());
        tasks.spawn(async move { one_token(&client, &url).await });
    }
    let mut out = Vec::new();
    while let Some(Ok(d)) = tasks.join_next().await {
        out.push(d);
    }
    out.sort();
    out
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

fn token_benchmark(c: &mut Criterion) {
    ppvnet_common::serve::install_crypto_provider();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let data_dir = tempfile::tempdir().unwrap();
    let rss_before = rss_kib();
    // First start generates the signing key; the second reuses it, as `ppvnet up` does.
    let (_, cold, stop) = rt.block_on(start(data_dir.path()));
    let _ = stop.send(());
    let (base, warm, _stop) = rt.block_on(start(data_dir.path()));
    let url = Arc::new(format!("{base}/{TENANT}/oauth2/v2.0/token"));
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(CONCURRENCY)
        .build()
        .unwrap();

    let mut group = c.benchmark_group("entra");
    group.throughput(Throughput::Elements(BATCH));
    group.sample_size(20);
    group.measurement_time(Duration::from_secs(10));
    group.bench_function("client_credentials_http", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    total += burst(&client, &url, BATCH).await;
                }
                total
            })
        })
    });
    group.finish();

    let (peak, lat) = rt.block_on(async {
        let n = 4000;
        let elapsed = burst(&client, &url, n).await;
        let peak = n as f64 / elapsed.as_secs_f64();
        (
            peak,
            latencies_at(&client, &url, peak / 2.0, Duration::from_secs(5)).await,
        )
    });
    let pct = |p: f64| lat[((lat.len() as f64 * p) as usize).min(lat.len() - 1)];
    println!(
        "entra summary: start-to-first-discovery {cold:?} (keys generated) / {warm:?} (keys reused); \
         peak {peak:.0} tokens/s with {CONCURRENCY} in flight; at {:.0}/s: p50 {:?} p99 {:?} ({} requests); \
         RSS {} KiB (process incl. client and criterion; {} KiB before start)",
        peak / 2.0,
        pct(0.50),
        pct(0.99),
        lat.len(),
        rss_kib(),
        rss_before
    );
}

criterion_group!(benches, token_benchmark);
criterion_main!(benches);
