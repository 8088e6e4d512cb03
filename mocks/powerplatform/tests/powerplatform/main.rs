//! The crate's integration tests in one binary (one link of the whole service instead of one
//! per file keeps test builds small): connector import over real definitions, and the runtime
//! against the real mock Entra, the real fake Key Vault and a recording backend, and the
//! case-search app's routes.

mod app;
mod connectors;
mod runtime;
mod support;
