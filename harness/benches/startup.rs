//! Start-up at CI scale, measured as a user sees it: `ppvnet up` as a process, from spawn to
//! its ready file.
//!
//! - **cold start**: contoso on the loopback fabric, alternately with the user cache off (every
//!   run generates its RSA signing key and builds its case databases: the same-run reference)
//!   and with a warm cache (a pooled key, copied databases). Goal: warm under 150 ms.
//! - **many at once**: `PPVNET_BENCH_LANDSCAPES` (default 50) landscapes started together
//!   with a warm cache: time until every ready file exists, each process's resident memory,
//!   and each stopping cleanly (exit 0, no ready file left). Goal: all ready within 10 s, each
//!   under 30 MB.
//!
//! `cargo bench -p ppvnet --bench startup`; `PPVNET_BENCH_ROUNDS` sets the cold-start rounds
//! (default 15). Output: a table, and JSON lines with `--json FILE` semantics via
//! `PPVNET_BENCH_JSON=FILE`. The runs' cache is a temporary folder, not the user's.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn scenario() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/contoso.yaml")
}

fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Spawns `ppvnet up` with `cache` as its user cache (`off` or a folder).
fn spawn(ready: &Path, cache: &str) -> Child {
    Command::new(env!("CARGO_BIN_EXE_ppvnet"))
        .arg("up")
        .arg(scenario())
        .arg("--ready-file")
        .arg(ready)
        .env("PPVNET_CACHE", cache)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("ppvnet up starts")
}

/// Waits for `ready` to exist; the bench's only poll (a measurement, not a test), at a finer
/// grain than the figures it reports.
fn wait_ready(ready: &Path, child: &mut Child, limit: Duration) {
    let deadline = Instant::now() + limit;
    while !ready.exists() {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("ppvnet up exited with {status} before its ready file");
        }
        assert!(Instant::now() < deadline, "no ready file within {limit:?}");
        std::thread::sleep(Duration::from_micros(500));
    }
}

fn stop(child: &mut Child) {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let status = child.wait().expect("ppvnet up is waited for");
    assert!(status.success(), "ppvnet up stopped with {status}");
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.split_whitespace().next()?.parse().ok())
        })
        .unwrap_or(0)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// One start to ready, in milliseconds. With a cache, waits until the run has topped the key
/// pool up again before stopping it, so every warm round finds a key.
fn one_start(dir: &Path, cache: &str, round: usize) -> f64 {
    let ready = dir.join(format!("ready-{round}.json"));
    let started = Instant::now();
    let mut child = spawn(&ready, cache);
    wait_ready(&ready, &mut child, Duration::from_secs(60));
    let ms = started.elapsed().as_secs_f64() * 1e3;
    if cache != "off" {
        let pool = Path::new(cache).join("keys/rsa-2048");
        let deadline = Instant::now() + Duration::from_secs(30);
        while count_keys(&pool) < ppvnet_common::keypool::DEFAULT_DEPTH && Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    stop(&mut child);
    ms
}

fn count_keys(pool: &Path) -> usize {
    ppvnet_common::keypool::KeyPool::at(pool.to_path_buf()).len()
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` passes nothing and wants no run.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let dir = tempfile::tempdir().expect("a temporary folder");
    let cache = dir.path().join("cache");
    let cache = cache.to_str().expect("a UTF-8 temporary path").to_string();
    // Warm the cache once (a build of each case database, a full key pool).
    one_start(dir.path(), &cache, 0);

    let rounds = env_number("PPVNET_BENCH_ROUNDS", 15);
    let (mut off, mut warm) = (Vec::new(), Vec::new());
    for round in 1..=rounds {
        off.push(one_start(dir.path(), "off", round));
        warm.push(one_start(dir.path(), &cache, rounds + round));
    }
    let (off, warm) = (median(off), median(warm));
    println!("startup: cold start of contoso on loopback, median of {rounds} rounds");
    println!("  {:<34} {:>9.1} ms", "cache off (reference)", off);
    println!(
        "  {:<34} {:>9.1} ms   {:.2}x the reference",
        "warm cache",
        warm,
        warm / off
    );

    let n = env_number("PPVNET_BENCH_LANDSCAPES", 50);
    let started = Instant::now();
    let mut runs: Vec<(PathBuf, Child)> = (0..n)
        .map(|i| {
            let ready = dir.path().join(format!("many-{i}.json"));
            let child = spawn(&ready, &cache);
            (ready, child)
        })
        .collect();
    for (ready, child) in &mut runs {
        wait_ready(ready, child, Duration::from_secs(120));
    }
    let all_ready = started.elapsed().as_secs_f64();
    let rss: Vec<u64> = runs.iter().map(|(_, c)| rss_kib(c.id())).collect();
    let max_rss = rss.iter().copied().max().unwrap_or(0) as f64 / 1024.0;
    let median_rss = median(rss.iter().map(|&k| k as f64 / 1024.0).collect());
    for (ready, child) in &mut runs {
        stop(child);
        assert!(!ready.exists(), "{} left behind", ready.display());
    }
    println!("startup: {n} landscapes started together (warm cache)");
    println!("  {:<34} {:>9.2} s", "all ready after", all_ready);
    println!(
        "  {:<34} {:>9.1} MB (max {max_rss:.1} MB)",
        "resident memory, median", median_rss
    );
    println!("  {:<34} {:>9}", "stopped cleanly", n);
    if let Ok(file) = std::env::var("PPVNET_BENCH_JSON") {
        let json = format!(
            "{{\"cold_start_ms\":{{\"cache_off\":{off:.1},\"warm\":{warm:.1},\"ratio\":{:.3}}},\
             \"landscapes\":{{\"count\":{n},\"all_ready_s\":{all_ready:.3},\
             \"rss_mb_median\":{median_rss:.1},\"rss_mb_max\":{max_rss:.1}}}}}\n",
            warm / off
        );
        std::fs::write(&file, json).expect("the JSON file is written");
    }
}
