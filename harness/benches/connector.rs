//! The connector runtime's cost, measured beside its same-run reference: one operation invoked
//! through `POST /invoke` (user token check, connection token, definition, policies, sent from
//! `pp-prod-westus` through the loopback fabric) against the same request sent directly to the
//! API from the same host with a token for the API. Issue 9's targets: p50 overhead ≤ 1.5× and
//! ≥ 500 invokes/s on a 2-core machine. The measurement is `ppvnet::bench::invoke`'s (also the
//! `invoke` row of `ppvnet bench`); this bench adds `GetCase` and a higher concurrency.
//!
//! `cargo bench -p ppvnet --bench connector` (prints a table; `PPVNET_BENCH_JSON=FILE` also
//! writes the figures as JSON).

use std::path::Path;

use ppvnet::bench::Sizes;
use ppvnet::bench::invoke::{InvokeBench, Subject};
use ppvnet::fabric::FabricKind;
use ppvnet::up::{self, UpOptions};

const CONCURRENCY: usize = 32;

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` passes nothing and wants no run.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let dir = tempfile::tempdir().expect("a temporary directory");
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/contoso.yaml");
    let landscape = ppvnet::scenario::load(&file).expect("contoso loads");
    let mut opts = UpOptions::new(FabricKind::Loopback, dir.path().join("ready.json"));
    // The bench measures the runtime, not its throttle: one connection makes thousands of
    // calls a minute here, where Power Platform allows 500.
    opts.power_platform_limits.calls_per_minute = u32::MAX;
    let running = rt
        .block_on(up::start(&landscape, &opts))
        .expect("contoso starts");
    let bench = rt
        .block_on(InvokeBench::setup(&running, &Subject::contoso()))
        .expect("a connection");
    let case = rt.block_on(bench.visible_case()).expect("a visible case");
    let sizes = Sizes::new(false);
    let ms = |d: &ppvnet_common::bench::Distribution| d.p50.as_secs_f64() * 1e3;
    let mut rows = Vec::new();
    for (op, label) in [
        (format!("/cases/{case}"), "GetCase"),
        ("/cases/search?q=outage&top=25".to_string(), "SearchCases"),
    ] {
        let c = rt
            .block_on(bench.compare(&op, sizes, CONCURRENCY))
            .expect("both paths answer");
        rows.push(serde_json::json!({
            "operation": label,
            "direct_p50_ms": ms(&c.direct), "invoke_p50_ms": ms(&c.invoke),
            "p50_ratio": ms(&c.invoke) / ms(&c.direct),
            "direct_per_s": c.direct_loaded.per_second, "invoke_per_s": c.invoke_loaded.per_second,
        }));
    }
    println!(
        "{:12} {:>10} {:>10} {:>8} {:>12} {:>12}",
        "operation", "direct p50", "invoke p50", "ratio", "direct /s", "invoke /s"
    );
    for r in &rows {
        println!(
            "{:12} {:>8.2}ms {:>8.2}ms {:>7.2}x {:>12.0} {:>12.0}",
            r["operation"].as_str().unwrap_or_default(),
            r["direct_p50_ms"].as_f64().unwrap_or_default(),
            r["invoke_p50_ms"].as_f64().unwrap_or_default(),
            r["p50_ratio"].as_f64().unwrap_or_default(),
            r["direct_per_s"].as_f64().unwrap_or_default(),
            r["invoke_per_s"].as_f64().unwrap_or_default(),
        );
    }
    if let Ok(path) = std::env::var("PPVNET_BENCH_JSON") {
        std::fs::write(&path, serde_json::to_vec_pretty(&rows).expect("JSON"))
            .expect("the JSON file");
    }
    rt.block_on(running.stop()).expect("contoso stops");
}
