//! No code: this crate only unifies dependency features so that the README's run command
//! (`cargo run --release -p ppvnet -- up`) and its test command (`scripts/test`, which runs
//! `cargo test --release --workspace`) build one dependency graph. Cargo.toml says why;
//! `tests/one_graph.rs` keeps the two graphs equal.
