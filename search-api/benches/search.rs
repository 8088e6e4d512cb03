//! Criterion bench of a search in a user's context. The database size comes from
//! `PPVNET_BENCH_CASES` (default 1,000,000); the database is kept under `target/` and reused.
//! The full report (percentiles, throughput, build time, RSS) is `search-api bench`.

use criterion::{Criterion, criterion_group, criterion_main};
use ppvnet_search_api::DataConfig;
use ppvnet_search_api::bench::{bench_viewer, sample_queries, synthetic_owners};
use ppvnet_search_api::store::{CaseStore, SearchQuery};

fn search(c: &mut Criterion) {
    let cases = std::env::var("PPVNET_BENCH_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000u64);
    let owners = synthetic_owners(40, 8);
    let data = DataConfig {
        seed: 1,
        count: cases,
        owners: owners.clone(),
    };
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/ppvnet-bench");
    std::fs::create_dir_all(&dir).expect("bench directory");
    let store = CaseStore::open(Some(&dir.join(format!("cases-{cases}.sqlite"))), &data)
        .expect("case database");
    let viewer = bench_viewer(&owners);
    let queries = sample_queries(&data, 1_000);
    let mut i = 0;
    c.bench_function(&format!("search_user_context_{cases}"), |b| {
        b.iter(|| {
            i = (i + 1) % queries.len();
            let query = SearchQuery {
                text: Some(queries[i].clone()),
                status: None,
                top: 25,
                after: None,
            };
            store.search(&query, &viewer).expect("search")
        })
    });
}

criterion_group!(benches, search);
criterion_main!(benches);
