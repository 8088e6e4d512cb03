//! Client-credentials tokens per second through HTTP on loopback (criterion), plus the
//! numbers issue 3 asks for that criterion does not measure, printed once per run:
//! time from start to the first served discovery document (keys reused from a data dir),
//! peak tokens/s, p50/p99 latency at half of the peak rate, and RSS.
//!
//! The mock's own RSS and start-up time come from the `ppvnet-entra` binary run as a child
//! process with the same tenant and load: `VmRSS`/`VmHWM` of that process after the load, and
//! the time from spawn to its `ready` line and to its first discovery document (second start,
//! keys reused from the data dir). The in-process figures include the client and criterion.
//!
//! Run: `cargo bench -p ppvnet-entra --bench token`. Compare with
//! `openssl speed -multi 2 rsa2048` (sign/s) on the same machine: every token is one RSA-2048
//! signature, so that is the ceiling.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
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

/// A field of `/proc/<pid>/status` in KiB (`VmRSS`, `VmHWM`).
fn status_kib(pid: &str, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.strip_prefix(field).is_some_and(|r| r.starts_with(':')))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

fn rss_kib() -> u64 {
    status_kib("self", "VmRSS")
}

/// The `ppvnet-entra` binary serving plain HTTP; killed if the bench stops early.
struct MockProcess {
    child: Child,
    base: String,
}

impl MockProcess {
    /// Spawns the binary and returns it with the time from spawn to its `ready` line.
    fn spawn(config: &Path, data_dir: &Path) -> (Self, Duration) {
        let started = Instant::now();
        let mut child = Command::new(env!("CARGO_BIN_EXE_ppvnet-entra"))
            .arg("--config")
            .arg(config)
            .args(["--bind", "127.0.0.1:0", "--plain-http", "--data-dir"])
            .arg(data_dir)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let ready = started.elapsed();
        let base = line.trim_end().strip_prefix("ready ").unwrap().to_string();
        (Self { child, base }, ready)
    }

    fn pid(&self) -> String {
        self.child.id().to_string()
    }

    fn stop(mut self) {
        let _ = Command::new("kill").args(["-TERM", &self.pid()]).status();
        let _ = self.child.wait();
    }
}

impl Drop for MockProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct ProcessFigures {
    ready_cold: Duration,
    ready_warm: Duration,
    first_discovery: Duration,
    idle_rss: u64,
    peak: f64,
    p50: Duration,
    p99: Duration,
    rss: u64,
    hwm: u64,
}

/// Starts the binary twice on one data dir (the first start generates the signing key) and
/// drives the in-process load against the second.
fn mock_process(rt: &tokio::runtime::Runtime) -> ProcessFigures {
    let dir = tempfile::tempdir().unwrap();
    let config_file = dir.path().join("tenant.json");
    std::fs::write(&config_file, serde_json::to_vec(&config()).unwrap()).unwrap();
    let data_dir = dir.path().join("data");
    let (first, ready_cold) = MockProcess::spawn(&config_file, &data_dir);
    first.stop();

    let started = Instant::now();
    let (mock, ready_warm) = MockProcess::spawn(&config_file, &data_dir);
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(CONCURRENCY)
        .build()
        .unwrap();
    let discovery = format!(
        "{}/{TENANT}/v2.0/.well-known/openid-configuration",
        mock.base
    );
    rt.block_on(async {
        let r = client.get(&discovery).send().await.unwrap();
        assert_eq!(r.status(), 200);
    });
    let first_discovery = started.elapsed();
    let idle_rss = status_kib(&mock.pid(), "VmRSS");

    let url = Arc::new(format!("{}/{TENANT}/oauth2/v2.0/token", mock.base));
    let (peak, lat) = rt.block_on(async {
        let n = 4000;
        let peak = n as f64 / burst(&client, &url, n).await.as_secs_f64();
        (
            peak,
            latencies_at(&client, &url, peak / 2.0, Duration::from_secs(5)).await,
        )
    });
    let figures = ProcessFigures {
        ready_cold,
        ready_warm,
        first_discovery,
        idle_rss,
        peak,
        p50: percentile(&lat, 0.50),
        p99: percentile(&lat, 0.99),
        rss: status_kib(&mock.pid(), "VmRSS"),
        hwm: status_kib(&mock.pid(), "VmHWM"),
    };
    drop(client); // idle keep-alive connections would hold up the graceful stop
    mock.stop();
    figures
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 * p) as usize).min(sorted.len() - 1)]
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
    let process = mock_process(&rt);
    println!(
        "entra summary: start-to-first-discovery {cold:?} (keys generated) / {warm:?} (keys reused); \
         peak {peak:.0} tokens/s with {CONCURRENCY} in flight; at {:.0}/s: p50 {:?} p99 {:?} ({} requests); \
         bench process RSS {} KiB (mock in-process plus client and criterion; {} KiB before start) \
         | mock process (ppvnet-entra binary, same load): spawn-to-ready {:?} (keys generated) / {:?} \
         (keys reused), spawn-to-first-discovery {:?}; peak {:.0} tokens/s, at half: p50 {:?} p99 {:?}; \
         mock process RSS {} KiB idle, {} KiB after load, VmHWM {} KiB",
        peak / 2.0,
        percentile(&lat, 0.50),
        percentile(&lat, 0.99),
        lat.len(),
        rss_kib(),
        rss_before,
        process.ready_cold,
        process.ready_warm,
        process.first_discovery,
        process.peak,
        process.p50,
        process.p99,
        process.idle_rss,
        process.rss,
        process.hwm,
    );
}

criterion_group!(benches, token_benchmark);
criterion_main!(benches);
