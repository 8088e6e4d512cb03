//! Runs `features/network_isolation.feature` with its own small world, so the network steps are
//! exercised even where the whole acceptance suite is not (the lead's `acceptance` runner
//! includes the same step module with the full world).
//! The @netns examples run only as root.

#[path = "steps/network.rs"]
mod network;

use std::path::PathBuf;

use cucumber::World as _;
use cucumber::writer::Stats as _;

#[derive(Debug, Default, cucumber::World)]
pub struct PpvWorld {
    pub network: Option<network::Net>,
}

/// The repository's `scenarios/` folder (as in the acceptance steps).
pub fn scenarios_dir() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../scenarios"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn network_isolation_feature() {
    let feature = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../features/network_isolation.feature"
    );
    let netns = std::fs::read_to_string("/proc/self/status").is_ok_and(|s| {
        s.lines()
            .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"))
    });
    if !netns {
        eprintln!("SKIP the @netns examples: not running as root");
    }
    let writer = PpvWorld::cucumber()
        .after(|_, _, _, _, world| {
            Box::pin(async move {
                if let Some(w) = world {
                    network::stop(w).await;
                }
            })
        })
        .fail_on_skipped()
        .with_cli(cucumber::cli::Opts::<_, _, _, cucumber::cli::Empty>::default())
        .filter_run(feature, move |_, _, sc| {
            netns || !sc.tags.iter().any(|t| t == "netns")
        })
        .await;
    let stats = writer.scenarios_stats();
    assert!(
        stats.failed == 0
            && stats.skipped == 0
            && writer.parsing_errors() == 0
            && writer.hook_errors() == 0,
        "{} passed, {} failed, {} skipped",
        stats.passed,
        stats.failed,
        stats.skipped
    );
    assert!(
        stats.passed >= if netns { 12 } else { 6 },
        "{} passed",
        stats.passed
    );
}
