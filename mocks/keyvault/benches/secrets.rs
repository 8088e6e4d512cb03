//! The fake Key Vault's secrets data plane over HTTPS on loopback, every request carrying an
//! RS256 token that `EntraTokenCheck` validates for real (keys from a local discovery/JWKS
//! server), measured against the named reference "bare axum over rustls": the same serve loop
//! and TLS configuration answering a fixed JSON body of the GET response's size.
//!
//! Criterion measures GET (latest version), SET and list (a page of 25) at concurrency 1 (time
//! per iteration = latency) and 8 (time per iteration = 1 / throughput), and the bare GET at
//! both. Measured once per run and printed in the summary block:
//! - p50/p99 latency and requests/s of 5,000 requests at concurrency 8 for each operation;
//! - the fake/bare ratio for GET;
//! - VmRSS before and after loading 10,000 secrets × 5 versions through the API;
//! - time from `KeyVault::new` + `run` to the first served GET (cold key cache, so it includes
//!   fetching discovery and JWKS once), with a fresh and with a connected validator client.
//!
//! Run: `cargo bench -p ppvnet-keyvault --bench secrets` (about 35 s on two cores once built; the
//! client, the vault and the authority share the machine, as in a loopback landscape).

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput};
use ppvnet_common::Clock;
use ppvnet_keyvault::{
    Authorization, KeyVault, KeyVaultConfig, KeyVaultRole, RoleAssignment, SeedSecret, VaultConfig,
};
use reqwest::header::AUTHORIZATION;
use serde_json::{Value, json};
use support::{
    Authority, Distribution, Pki, Served, TENANT, bind, closed_loop, criterion_estimate,
    serve_bare, serve_vault, vm_rss_kib,
};

const OFFICER: &str = "aaaaaaaa-0000-0000-0000-000000000001";
const API_VERSION: &str = "api-version=2025-07-01";
const SECRETS: u64 = 10_000;
const VERSIONS: u64 = 5;
const VALUE_BYTES: usize = 100;
const CONCURRENCY: usize = 8;
const MEASURED_REQUESTS: u64 = 5_000;
const WARM_UP_REQUESTS: u64 = 200;
const STARTS: usize = 5;
const PAGE: usize = 25;

fn secret_name(i: u64) -> String {
    format!("s-{:05}", i % SECRETS)
}

fn secret_value(i: u64) -> String {
    let prefix = format!("value-{i:08}-");
    format!("{prefix}{}", "x".repeat(VALUE_BYTES - prefix.len()))
}

fn vault_config(name: &str, addr: std::net::SocketAddr, seeded: u64) -> KeyVaultConfig {
    let mut vault = VaultConfig::new(name, TENANT, "westus");
    vault.host_aliases.push(addr.to_string());
    vault.authorization = Authorization::Rbac {
        role_assignments: vec![RoleAssignment {
            principal_id: OFFICER.into(),
            role: KeyVaultRole::SecretsOfficer,
            secret: None,
        }],
    };
    vault.secrets = (0..seeded)
        .map(|i| SeedSecret::new(secret_name(i), secret_value(i)))
        .collect();
    KeyVaultConfig {
        vaults: vec![vault],
        ..Default::default()
    }
}

#[derive(Clone, Copy, Debug)]
enum Op {
    Get,
    Set,
    List,
}

/// One server as the client sees it. Every call picks the next secret name, so GETs and SETs
/// walk all 10,000 secrets.
#[derive(Clone)]
struct Target {
    client: reqwest::Client,
    base: Arc<str>,
    authorization: Arc<str>,
    sequence: Arc<AtomicU64>,
}

impl Target {
    fn new(client: reqwest::Client, served: &Served, token: &str) -> Self {
        Self {
            client,
            base: format!("https://{}", served.addr).into(),
            authorization: format!("Bearer {token}").into(),
            sequence: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Sends one request and returns the answered body; anything but 200 aborts the run, so
    /// no number below can come from error responses.
    async fn call(&self, op: Op) -> Vec<u8> {
        let i = self.sequence.fetch_add(1, Ordering::Relaxed);
        let request = match op {
            Op::Get => self.client.get(format!(
                "{}/secrets/{}?{API_VERSION}",
                self.base,
                secret_name(i)
            )),
            Op::Set => self
                .client
                .put(format!(
                    "{}/secrets/{}?{API_VERSION}",
                    self.base,
                    secret_name(i)
                ))
                .json(&json!({ "value": secret_value(i) })),
            Op::List => self.client.get(format!(
                "{}/secrets?maxresults={PAGE}&{API_VERSION}",
                self.base
            )),
        };
        let response = request
            .header(AUTHORIZATION, &*self.authorization)
            .send()
            .await
            .unwrap();
        let status = response.status();
        let body = response.bytes().await.unwrap();
        assert_eq!(
            status,
            200,
            "{op:?} answered {status}: {}",
            String::from_utf8_lossy(&body)
        );
        body.to_vec()
    }

    async fn run(&self, op: Op, count: u64, concurrency: usize) -> (Duration, Vec<Duration>) {
        let target = self.clone();
        closed_loop(count, concurrency, move || {
            let target = target.clone();
            async move {
                target.call(op).await;
            }
        })
        .await
    }

    async fn measure(&self, op: Op) -> Distribution {
        self.run(op, WARM_UP_REQUESTS, CONCURRENCY).await;
        let (wall, latencies) = self.run(op, MEASURED_REQUESTS, CONCURRENCY).await;
        Distribution::new(wall, latencies).expect("requests were measured")
    }
}

struct Env {
    rt: tokio::runtime::Runtime,
    pki: Pki,
    clock: Clock,
    authority: Authority,
    token: String,
    /// The measuring client, shared by every phase.
    client: reqwest::Client,
}

impl Env {
    /// Time from `KeyVault::new` until the (already warm) measuring client holds the first GET
    /// answer, over a new TLS connection. The vault starts with an empty key cache, so serving
    /// that GET includes fetching discovery and JWKS through `validator_http`.
    async fn start_to_first_get(&self, seeded: u64, validator_http: reqwest::Client) -> Duration {
        let listener = bind();
        let addr = listener.local_addr().unwrap();
        let config = vault_config("kv-start", addr, seeded);
        let check = self.authority.check(validator_http);
        let client = &self.client;
        let url = format!("https://{addr}/secrets/{}?{API_VERSION}", secret_name(0));
        let started = Instant::now();
        let kv = KeyVault::new(
            config,
            self.clock.clone(),
            ppvnet_common::net::socket_peers(),
            check,
        )
        .unwrap();
        let _served = serve_vault(kv, listener, self.pki.server.clone());
        loop {
            match client.get(&url).bearer_auth(&self.token).send().await {
                Ok(r) if r.status() == 200 => {
                    r.bytes().await.unwrap();
                    return started.elapsed();
                }
                Ok(r) => panic!(
                    "first GET answered {}: {}",
                    r.status(),
                    r.text().await.unwrap()
                ),
                Err(_) => tokio::task::yield_now().await,
            }
        }
    }
}

/// Start-to-first-GET times of one kind of start.
struct Startup {
    label: &'static str,
    runs: Vec<Duration>,
}

struct Memory {
    before_kib: u64,
    after_kib: u64,
    load: Duration,
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let pki = Pki::new();
    let clock = Clock::new();
    let authority = rt.block_on(Authority::start(clock.clone(), pki.server.clone()));
    let token = authority.token(OFFICER);
    let env = Env {
        client: pki.client(CONCURRENCY * 2),
        rt,
        pki,
        clock,
        authority,
        token,
    };
    // Servers are spawned from the main thread too.
    let _runtime = env.rt.enter();
    let load_average_before = load_average();

    println!("phase: start to first GET ({STARTS} starts each)");
    let startup = env.rt.block_on(async {
        // The validator's first fetch over a new connection to the authority often stalls about
        // 40 ms: the server socket writes with Nagle on (ppvnet_common::serve sets no
        // TCP_NODELAY at the time of writing) while the client delays its ACK. With TCP_NODELAY
        // on both listening sockets every start took under 7 ms. So the vault is measured both
        // with a fresh validator client (a new connection, as in a new process) and with one
        // that already holds a connection to the authority.
        let jwks = format!("{}/{TENANT}/discovery/v2.0/keys", env.authority.base);
        let warm_validator_http = env.pki.client(1);
        for client in [&env.client, &warm_validator_http] {
            client
                .get(&jwks)
                .send()
                .await
                .unwrap()
                .bytes()
                .await
                .unwrap();
        }
        let kinds = [
            ("1 seeded secret, fresh validator client", 1, false),
            ("1 seeded secret, warm validator client", 1, true),
            ("10,000 seeded, fresh validator client", SECRETS, false),
            ("10,000 seeded, warm validator client", SECRETS, true),
        ];
        let mut startups: Vec<Startup> = kinds
            .iter()
            .map(|&(label, _, _)| Startup {
                label,
                runs: Vec::new(),
            })
            .collect();
        // Interleaved, so a burst of load on the shared machine hits every kind alike.
        for _ in 0..STARTS {
            for (startup, &(_, seeded, warm)) in startups.iter_mut().zip(&kinds) {
                let validator_http = if warm {
                    warm_validator_http.clone()
                } else {
                    env.pki.client(1)
                };
                startup
                    .runs
                    .push(env.start_to_first_get(seeded, validator_http).await);
            }
        }
        startups
    });

    println!("phase: loading {SECRETS} secrets x {VERSIONS} versions");
    let client = env.client.clone();
    let before_kib = vm_rss_kib().unwrap();
    let listener = bind();
    let kv = KeyVault::new(
        vault_config("kv-bench", listener.local_addr().unwrap(), 0),
        env.clock.clone(),
        ppvnet_common::net::socket_peers(),
        env.authority.check(env.pki.client(1)),
    )
    .unwrap();
    let vault = serve_vault(kv.clone(), listener, env.pki.server.clone());
    let fake = Target::new(client.clone(), &vault, &env.token);
    let (load, _) = env
        .rt
        .block_on(fake.run(Op::Set, SECRETS * VERSIONS, CONCURRENCY));
    let memory = Memory {
        before_kib,
        after_kib: vm_rss_kib().unwrap(),
        load,
    };
    assert_eq!(kv.secret_count("kv-bench"), Some(SECRETS as usize));

    let get_body = env.rt.block_on(fake.call(Op::Get));
    let first_page: Value = serde_json::from_slice(&env.rt.block_on(fake.call(Op::List))).unwrap();
    assert_eq!(first_page["value"].as_array().map(Vec::len), Some(PAGE));
    assert!(first_page["nextLink"].is_string());
    let bare_server = serve_bare(get_body.clone(), env.pki.server.clone()).unwrap();
    let bare = Target::new(client, &bare_server, &env.token);

    println!("phase: {MEASURED_REQUESTS} requests at concurrency {CONCURRENCY} per operation");
    let (fake_get, bare_get, fake_set, fake_list) = env.rt.block_on(async {
        (
            fake.measure(Op::Get).await,
            bare.measure(Op::Get).await,
            fake.measure(Op::Set).await,
            fake.measure(Op::List).await,
        )
    });

    let mut criterion = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(2))
        .without_plots()
        .configure_from_args();
    let cases = [
        ("keyvault", "get_latest_c1", &fake, Op::Get, 1),
        ("keyvault", "get_latest_c8", &fake, Op::Get, CONCURRENCY),
        ("bare", "get_c1", &bare, Op::Get, 1),
        ("bare", "get_c8", &bare, Op::Get, CONCURRENCY),
        ("keyvault", "set_c1", &fake, Op::Set, 1),
        ("keyvault", "set_c8", &fake, Op::Set, CONCURRENCY),
        ("keyvault", "list_page_c1", &fake, Op::List, 1),
        ("keyvault", "list_page_c8", &fake, Op::List, CONCURRENCY),
    ];
    for (group, function, target, op, concurrency) in cases {
        let mut g = criterion.benchmark_group(group);
        g.throughput(Throughput::Elements(1));
        g.bench_function(function, |b| {
            b.iter_custom(|iters| env.rt.block_on(target.run(op, iters, concurrency)).0)
        });
        g.finish();
    }
    criterion.final_summary();

    print_summary(&Summary {
        startup,
        load_average: (load_average_before, load_average()),
        memory,
        get_body_bytes: get_body.len(),
        fake_get,
        bare_get,
        fake_set,
        fake_list,
    });
}

struct Summary {
    startup: Vec<Startup>,
    load_average: (String, String),
    memory: Memory,
    get_body_bytes: usize,
    fake_get: Distribution,
    bare_get: Distribution,
    fake_set: Distribution,
    fake_list: Distribution,
}

/// The 1/5/15-minute load averages: the numbers above are only comparable between runs on an
/// equally idle machine.
fn load_average() -> String {
    ppvnet_common::bench::load_average().map_or_else(
        || "unknown".to_owned(),
        |[one, five, fifteen]| format!("{one:.2} {five:.2} {fifteen:.2}"),
    )
}

fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1e3)
}

fn median(durations: &[Duration]) -> Duration {
    let mut sorted = durations.to_vec();
    sorted.sort_unstable();
    sorted[sorted.len() / 2]
}

/// Criterion's time per iteration (the slope of its linear sampling) for one benchmark.
fn criterion_line(group: &str, function: &str) -> (String, Option<f64>) {
    match criterion_estimate(group, function) {
        Some((mean, slope)) => {
            let ns = slope.unwrap_or(mean);
            (
                format!("{:>9.1} µs/iter  {:>8.0} req/s", ns / 1e3, 1e9 / ns),
                Some(ns),
            )
        }
        None => ("not run (filtered out)".to_owned(), None),
    }
}

fn print_summary(s: &Summary) {
    let line = "=".repeat(78);
    println!("\n{line}");
    println!("ppvnet-keyvault secrets benchmark: HTTPS on 127.0.0.1, RS256 tokens validated");
    println!(
        "{} CPUs; load average (1/5/15 min) {} at start, {} at end",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        s.load_average.0,
        s.load_average.1
    );
    println!("{line}");
    println!(
        "criterion (time per iteration; c8 = {CONCURRENCY} requests in flight, so 1/throughput):"
    );
    let ids = [
        ("keyvault", "get_latest_c1"),
        ("keyvault", "get_latest_c8"),
        ("bare", "get_c1"),
        ("bare", "get_c8"),
        ("keyvault", "set_c1"),
        ("keyvault", "set_c8"),
        ("keyvault", "list_page_c1"),
        ("keyvault", "list_page_c8"),
    ];
    let mut times = std::collections::HashMap::new();
    for (group, function) in ids {
        let (text, ns) = criterion_line(group, function);
        println!("  {:<24} {text}", format!("{group}/{function}"));
        if let Some(ns) = ns {
            times.insert(function, ns);
        }
    }
    for (fake, bare, label) in [
        ("get_latest_c1", "get_c1", "c1"),
        ("get_latest_c8", "get_c8", "c8"),
    ] {
        if let (Some(f), Some(b)) = (times.get(fake), times.get(bare)) {
            println!("  GET fake/bare time per request ({label}): {:.2}x", f / b);
        }
    }
    println!(
        "\n{MEASURED_REQUESTS} requests at concurrency {CONCURRENCY} (after {WARM_UP_REQUESTS} warm-up):"
    );
    println!(
        "  {:<30} {:>10} {:>12} {:>12} {:>12}",
        "operation", "req/s", "p50", "p99", "max"
    );
    for (label, d) in [
        ("GET latest (fake)", &s.fake_get),
        ("GET (bare axum over rustls)", &s.bare_get),
        ("SET (new version)", &s.fake_set),
        ("list page of 25", &s.fake_list),
    ] {
        assert_eq!(d.requests as u64, MEASURED_REQUESTS);
        println!(
            "  {label:<30} {:>10.0} {:>12} {:>12} {:>12}",
            d.per_second,
            ms(d.p50),
            ms(d.p99),
            ms(d.max)
        );
    }
    let ratio = |f: Duration, b: Duration| f.as_secs_f64() / b.as_secs_f64();
    println!(
        "  GET fake/bare: p50 {:.2}x, p99 {:.2}x, throughput {:.2}x (bare req/s / fake req/s); \
         body {} bytes",
        ratio(s.fake_get.p50, s.bare_get.p50),
        ratio(s.fake_get.p99, s.bare_get.p99),
        s.bare_get.per_second / s.fake_get.per_second,
        s.get_body_bytes
    );
    let m = &s.memory;
    let loaded = SECRETS * VERSIONS;
    let delta_kib = m.after_kib.saturating_sub(m.before_kib);
    println!(
        "\nvault RSS, {SECRETS} secrets x {VERSIONS} versions ({VALUE_BYTES}-byte values) set \
         through the API:"
    );
    println!(
        "  VmRSS before {} KiB, after {} KiB, delta {:.1} MiB ({:.0} bytes per version)",
        m.before_kib,
        m.after_kib,
        delta_kib as f64 / 1024.0,
        delta_kib as f64 * 1024.0 / loaded as f64
    );
    println!(
        "  load: {loaded} SETs at concurrency {CONCURRENCY} in {:.1} s ({:.0} req/s)",
        m.load.as_secs_f64(),
        loaded as f64 / m.load.as_secs_f64()
    );
    println!("\nKeyVault::new + run -> first served GET (cold JWKS cache, new TLS connection):");
    for Startup { label, runs } in &s.startup {
        println!(
            "  {label:<40} median {}, min {}, max {} ({} starts)",
            ms(median(runs)),
            ms(*runs.iter().min().unwrap()),
            ms(*runs.iter().max().unwrap()),
            runs.len()
        );
    }
    println!("{line}");
}
