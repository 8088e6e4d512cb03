//! `ppvnet bench`: starts a landscape in-process on the loopback fabric, the way `ppvnet up`
//! does, and measures the user's path through the fabric, every figure beside a reference
//! measured in the same run (the machine is often shared, so only same-run ratios compare):
//!
//! | row | figure | reference |
//! |---|---|---|
//! | `token` | client-credentials tokens/s from the internet host | aws-lc RSA-2048 signatures/s, one thread |
//! | `kv-get`, `kv-set` | Key Vault requests/s through the fabric | bare axum over rustls answering the same body |
//! | `search-10k`, `search-1m` | case searches/s at 10,000 and 1,000,000 cases | bare axum over rustls running the same store query (the API's database, same text and viewer) and answering its JSON |
//!
//! The search rows' reference does the search itself, so their ratio is what token validation,
//! authorization, the middleware and the fabric add to a search (the overhead issue 16 asks
//! about), not the cost of the full-text query; the bare server answering the same body without
//! searching is measured too and reported in the row's JSON detail (`bare_same_body`).
//! | `invoke` | connector `POST /invoke` p50 | the same call sent directly to the API from the runtime's host |
//! | `up-cold` | start to ready without a cache | aws-lc RSA-2048 key generation |
//! | `up-warm` | start to ready with a warm cache | `up-cold` of the same run |
//! | `relay-connect` | connect + 4-byte echo through a private endpoint's relay | the same on a direct loopback connection |
//! | `up-docker` | start to ready on the docker fabric, warm cache (only with `--only`: root, Docker) | the same start on the netns fabric |
//!
//! The measuring helpers (load generator, references) are [`ppvnet_common::bench`]'s, shared
//! with the crates' criterion benches; the search reference is
//! [`ppvnet_search_api::bench::SearchReference`] served by it. Modules: [`rows`] (the HTTP rows and how their clients
//! find an identity the landscape lets through), [`invoke`] (the connector row, also the
//! `connector` criterion bench's), [`startup`] (`up` cold and warm, the relay), [`report`]
//! (table and JSON).

pub mod invoke;
pub mod report;
mod rows;
mod startup;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;

use crate::fabric::FabricKind;
use crate::landscape::Landscape;
use crate::scenario::model::ApiImplementation;
use crate::up::{self, UpOptions};
pub use report::{Report, Row};

/// The rows `ppvnet bench` measures, in table order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RowName {
    Token,
    KvGet,
    KvSet,
    #[value(name = "search-10k")]
    #[serde(rename = "search-10k")]
    Search10k,
    #[value(name = "search-1m")]
    #[serde(rename = "search-1m")]
    Search1m,
    Invoke,
    UpCold,
    UpWarm,
    RelayConnect,
    UpDocker,
}

impl RowName {
    pub const ALL: [RowName; 9] = [
        RowName::Token,
        RowName::KvGet,
        RowName::KvSet,
        RowName::Search10k,
        RowName::Search1m,
        RowName::Invoke,
        RowName::UpCold,
        RowName::UpWarm,
        RowName::RelayConnect,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RowName::Token => "token",
            RowName::KvGet => "kv-get",
            RowName::KvSet => "kv-set",
            RowName::Search10k => "search-10k",
            RowName::Search1m => "search-1m",
            RowName::Invoke => "invoke",
            RowName::UpCold => "up-cold",
            RowName::UpWarm => "up-warm",
            RowName::RelayConnect => "relay-connect",
            RowName::UpDocker => "up-docker",
        }
    }

    /// Rows measured against the running landscape (the others start their own).
    fn needs_landscape(self) -> bool {
        !matches!(
            self,
            RowName::UpCold | RowName::UpWarm | RowName::RelayConnect | RowName::UpDocker
        )
    }
}

/// What one run measures and how long.
#[derive(Clone, Debug)]
pub struct BenchOptions {
    pub landscape: PathBuf,
    /// Bounded durations, for CI: fewer requests and starts, and no 1,000,000-case database
    /// unless `search-1m` is named in `only`. `up-docker` (root, Docker, the ppvnet image) is
    /// measured only when `only` names it.
    pub quick: bool,
    /// The rows to measure; empty: all of them.
    pub only: Vec<RowName>,
}

impl BenchOptions {
    fn selected(&self) -> Vec<RowName> {
        let mut rows: Vec<RowName> = if self.only.is_empty() {
            RowName::ALL
                .into_iter()
                // Building a million cases takes minutes: never in a quick run unless asked.
                .filter(|r| !(self.quick && *r == RowName::Search1m))
                .collect()
        } else {
            self.only.clone()
        };
        rows.sort();
        rows.dedup();
        rows
    }
}

/// How much of each measurement a run does.
#[derive(Clone, Copy, Debug)]
pub struct Sizes {
    /// Measured requests per HTTP row (and per reference).
    pub requests: u64,
    /// Requests sent before measuring (connections, caches).
    pub warm_up: u64,
    /// Requests in flight in the throughput rows.
    pub concurrency: usize,
    /// Starts of each kind in the `up` rows.
    pub starts: usize,
    /// How long the aws-lc sign rate is measured.
    pub sign_time: Duration,
    /// Keys generated for the key-generation reference.
    pub keys: usize,
}

impl Sizes {
    pub fn new(quick: bool) -> Self {
        if quick {
            Self {
                requests: 200,
                warm_up: 20,
                concurrency: 8,
                starts: 1,
                sign_time: Duration::from_millis(300),
                keys: 3,
            }
        } else {
            Self {
                requests: 3000,
                warm_up: 200,
                concurrency: 8,
                starts: 5,
                sign_time: Duration::from_secs(2),
                keys: 15,
            }
        }
    }
}

/// Cases of the search rows' APIs.
const CASES_10K: u32 = 10_000;
const CASES_1M: u32 = 1_000_000;

/// Runs the selected rows and returns the report (printing and the JSON file are the caller's).
pub async fn run(landscape: &Landscape, opts: &BenchOptions) -> anyhow::Result<Report> {
    let selected = opts.selected();
    let sizes = Sizes::new(opts.quick);
    let dir = tempfile::tempdir().context("a temporary folder for the run")?;
    let mut report = Report::start(opts.quick);
    if selected.contains(&RowName::RelayConnect) {
        report.push(startup::relay_connect(landscape, sizes).await?);
    }
    if selected.contains(&RowName::UpDocker) {
        report.push(startup::up_docker(landscape, sizes, dir.path()).await?);
    }
    let up_rows: Vec<RowName> = selected
        .iter()
        .copied()
        .filter(|r| matches!(r, RowName::UpCold | RowName::UpWarm))
        .collect();
    if !up_rows.is_empty() {
        for row in startup::up_cold_and_warm(landscape, sizes, dir.path(), &up_rows).await? {
            report.push(row);
        }
    }
    let landscape_rows: Vec<RowName> = selected
        .iter()
        .copied()
        .filter(|r| r.needs_landscape())
        .collect();
    if !landscape_rows.is_empty() {
        let sized = with_case_counts(landscape, selected.contains(&RowName::Search1m))?;
        for row in measure_landscape(&sized, sizes, dir.path(), &landscape_rows).await? {
            report.push(row);
        }
    }
    report.finish();
    Ok(report)
}

/// The landscape with its first search API at 10,000 cases and, for `search-1m`, its second at
/// 1,000,000. The names of those APIs are the search rows' subjects.
fn with_case_counts(landscape: &Landscape, million: bool) -> anyhow::Result<Landscape> {
    let mut sized = landscape.clone();
    let mut searches = sized
        .scenario
        .apis
        .iter_mut()
        .filter_map(|a| match &mut a.implementation {
            ApiImplementation::Search { cases, .. } => Some(cases),
            _ => None,
        });
    if let Some(cases) = searches.next() {
        *cases = CASES_10K;
    }
    if million {
        let cases = searches.next().context(
            "search-1m needs a second search API in the landscape (the first serves search-10k)",
        )?;
        *cases = CASES_1M;
    }
    Ok(sized)
}

/// Starts the landscape, measures `rows` against it and stops it (also after a failed row).
async fn measure_landscape(
    landscape: &Landscape,
    sizes: Sizes,
    dir: &std::path::Path,
    rows: &[RowName],
) -> anyhow::Result<Vec<Row>> {
    let mut opts = UpOptions::new(FabricKind::Loopback, dir.join("bench").join("ready.json"));
    // The bench measures the runtime, not its throttle (500 calls a minute per connection).
    opts.power_platform_limits.calls_per_minute = u32::MAX;
    let running = up::start(landscape, &opts).await?;
    if let Some(cache) = &opts.cache {
        // The run tops the key pool up once ready: CPU work that must not overlap a figure.
        startup::wait_for_key_pool(cache).await;
    }
    let measured = async {
        let ctx = rows::Ctx::new(&running, landscape, &opts.run_dir, sizes, dir)?;
        let mut out = Vec::new();
        for &row in rows {
            out.push(
                ctx.measure(row)
                    .await
                    .with_context(|| format!("row {}", row.as_str()))?,
            );
        }
        anyhow::Ok(out)
    }
    .await;
    let stopped = running.stop().await;
    let out = measured?;
    stopped?;
    Ok(out)
}
