//! The acceptance suite: every `.feature` file under `features/`, run by `cargo test`.
//!
//! cucumber targets cannot run under cargo-nextest (no `--list`); `cargo test` runs this binary
//! directly. It prints the plain closing line `N passed, N failed` that CI reads and exits
//! non-zero when any scenario fails, is skipped (an undefined step), or a feature fails to parse.

mod steps;

use cucumber::World as _;
use cucumber::writer::Stats as _;
use steps::PpvWorld;

fn main() -> std::process::ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let features = concat!(env!("CARGO_MANIFEST_DIR"), "/../features");
    let writer = runtime.block_on(
        PpvWorld::cucumber()
            .after(|_, _, _, _, world| {
                Box::pin(async move {
                    if let Some(w) = world {
                        steps::landscape::stop(w).await;
                        steps::network::stop(w).await;
                    }
                })
            })
            .fail_on_skipped()
            .with_default_cli()
            .run(features),
    );
    let stats = writer.scenarios_stats();
    let parse_errors = writer.parsing_errors();
    let hook_errors = writer.hook_errors();
    println!(
        "acceptance: {} passed, {} failed",
        stats.passed,
        stats.failed + stats.skipped + parse_errors + hook_errors
    );
    if stats.failed + stats.skipped + parse_errors + hook_errors > 0 || stats.passed == 0 {
        std::process::ExitCode::FAILURE
    } else {
        std::process::ExitCode::SUCCESS
    }
}
