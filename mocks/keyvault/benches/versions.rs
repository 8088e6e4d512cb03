//! What a PUT (new version) costs as a secret's history grows: the durable write of one version
//! at 1 and at 5,000 prior versions, through `VaultState::set` with a store file (fsynced
//! SQLite, as served). Storage keeps one row per version, so the two should cost the same; the
//! summary prints the ratio (target ≤ 1.3).
//!
//! Run: `cargo bench -p ppvnet-keyvault --bench versions`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::Criterion;
use ppvnet_keyvault::VaultConfig;
use ppvnet_keyvault::model::SetSecretBody;
use ppvnet_keyvault::persist::VaultFile;
use ppvnet_keyvault::store::{Lifecycle, Now, SecretRecord, SecretVersion, VaultState};

const TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
const SAMPLES: usize = 300;

fn body() -> SetSecretBody {
    SetSecretBody {
        value: Some(serde_json::Value::String("v".repeat(100))),
        tags: None,
        content_type: None,
        attributes: None,
    }
}

/// A vault on disk whose secret `s` already has `prior` versions (written in one restore).
fn vault_with_history(dir: &std::path::Path, prior: usize) -> VaultState {
    let config = Arc::new(VaultConfig::new("kv-bench", TENANT, "westus"));
    let file = VaultFile::open(&VaultFile::path_for(dir, "kv-bench"), "kv-bench").unwrap();
    let now = Now::from_millis(1_700_000_000_000);
    let mut state = VaultState::open(config, Some(file), now).unwrap();
    let versions = (0..prior)
        .map(|i| SecretVersion {
            version: format!("{i:032x}"),
            value: "v".repeat(100),
            content_type: None,
            tags: Default::default(),
            enabled: true,
            nbf: None,
            exp: None,
            created: 1,
            updated: 1,
        })
        .collect();
    let record = SecretRecord {
        name: "s".into(),
        managed: false,
        versions,
        lifecycle: Lifecycle::Active { settles_at_ms: 0 },
    };
    state.restore(record, now).unwrap();
    state
}

fn put(state: &mut VaultState) {
    let now = Now::from_millis(1_700_000_000_000);
    state.set("s", body(), now).unwrap();
}

fn median_put(prior: usize) -> Duration {
    let dir = tempfile::tempdir().unwrap();
    let mut state = vault_with_history(dir.path(), prior);
    let mut times: Vec<Duration> = (0..SAMPLES)
        .map(|_| {
            let started = Instant::now();
            put(&mut state);
            started.elapsed()
        })
        .collect();
    times.sort();
    times[times.len() / 2]
}

fn main() {
    let mut c = Criterion::default()
        .sample_size(30)
        .measurement_time(Duration::from_secs(5))
        .configure_from_args();
    let mut group = c.benchmark_group("put_new_version");
    for prior in [1usize, 5_000] {
        let dir = tempfile::tempdir().unwrap();
        let mut state = vault_with_history(dir.path(), prior);
        group.bench_function(format!("prior_{prior}"), |b| b.iter(|| put(&mut state)));
    }
    group.finish();
    c.final_summary();

    let one = median_put(1);
    let many = median_put(5_000);
    println!("\n== PUT latency vs history ({SAMPLES} PUTs each, median) ==");
    println!("prior versions 1:     {:.3} ms", one.as_secs_f64() * 1e3);
    println!("prior versions 5000:  {:.3} ms", many.as_secs_f64() * 1e3);
    println!(
        "ratio 5000/1:         {:.2} (target <= 1.3)",
        many.as_secs_f64() / one.as_secs_f64()
    );
}
