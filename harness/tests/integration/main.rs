//! Integration tests of the harness, in one test binary (`cargo test -p ppvnet --test
//! integration`): each binary is a separate link and tens of megabytes of disk, so the areas are
//! modules here rather than binaries of their own. Run one area with a filter, e.g.
//! `cargo test -p ppvnet --test integration fabric_netns::`. The cucumber acceptance suite
//! (`tests/acceptance.rs`, `harness = false`) stays a binary of its own. Fixtures are in
//! `tests/data/`.
//!
//! The modules' tests run in parallel in one process, so none of them may rely on process-wide
//! state: landscapes and fabrics claim their own addresses (loopback: a /16 block each; netns:
//! namespaces named `ppv-<pid>-<n>-`, and stale-namespace cleanup spares every live pid),
//! control APIs bind port 0, and files go to per-test temporary folders.
//!
//! A test that needs root, Python, port 443 or Docker skips through [`require::skip_unless`], which
//! fails it instead when `PPVNET_REQUIRE` lists the capability (CI sets `all`).

mod e2e_support;
mod fabric_support;
mod require;

mod arm_cli;
mod bench_cli;
mod browser;
mod browser_app;
mod client_samples;
mod containers;
mod control_auth;
mod dashboard;
mod e2e;
mod e2e_connector;
mod e2e_tokens;
mod fabric_docker;
mod fabric_established;
mod fabric_faces_only;
mod fabric_loopback;
mod fabric_matrix;
mod fabric_netns;
mod fabric_nsg_property;
mod fabric_oracle;
mod fabric_proxy;
mod fabric_python_exec;
mod landscapes;
mod parallel;
mod run_files;
mod run_identity;
mod signoff;
mod testcontainers_modules;
mod up_cli;
