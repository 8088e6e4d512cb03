//! The acceptance suite: every `.feature` file under `features/`, run by `cargo test` through
//! the same code as `ppvnet test` (`ppvnet::acceptance`), with the same options
//! (`cargo test --test acceptance -- --tags @loopback --html target/acceptance.html`; CI passes
//! report paths as `PPVNET_TEST_JUNIT`/`_JSON`/`_HTML`).
//!
//! cucumber targets cannot run under cargo-nextest (no `--list`); `cargo test` runs this binary
//! directly. It prints the closing line `acceptance: N passed, N failed` that CI reads and
//! exits non-zero when any scenario fails, a step is undefined, or a feature fails to parse.

use clap::Parser;

#[derive(Parser)]
struct Args {
    #[command(flatten)]
    test: ppvnet::acceptance::run::TestArgs,
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    ppvnet::acceptance::run::main(&args.test, env!("CARGO_BIN_EXE_ppvnet").into())
}
