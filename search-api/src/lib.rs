//! The case search API: the backend of the architecture, and the reference a team copies for its
//! own API. It validates Entra access tokens strictly and searches a real embedded database
//! (SQLite FTS5) in the caller's context.
//!
//! Module map:
//! - [`config`]: [`SearchApiConfig`], what the harness builds from the landscape.
//! - [`generator`]: deterministic, seeded case data (`ppvnet up` loads 10,000; the bench 1,000,000).
//! - [`store`]: the SQLite/FTS5 database, ranked and newest-first search with keyset pagination;
//!   the index is partitioned by team so a search only reads cases the caller may see.
//! - [`rank`]: `case_rank`, FTS5's bm25 with known document frequencies and row lengths (the
//!   same scores, about a third of the cost).
//! - [`auth`]: scope/role authorization and the caller's view (own cases, group cases, or all);
//!   token validation itself is [`ppvnet_common::token`].
//! - [`continuation`]: opaque continuation tokens bound to query, caller and data set.
//! - [`http`]: routes (`/cases/search`, `/cases/{id}`, `/swagger.json`, `/healthz`), App
//!   Service's public-network-access check and the request log.
//! - [`swagger`]: the OpenAPI 2.0 contract the custom connector is derived from.
//! - [`error`]: every error response (JSON envelope, `WWW-Authenticate` challenges, App Service's
//!   403 page).
//! - [`bench`]: the search benchmark (`search-api bench`, `cargo bench -p ppvnet-search-api`).

pub mod auth;
pub mod bench;
pub mod config;
pub mod continuation;
pub mod error;
pub mod generator;
pub mod http;
pub mod rank;
pub mod store;
pub mod swagger;

use std::future::Future;
use std::io;
use std::sync::Arc;

use ppvnet_common::token::Validator;
use ppvnet_common::{Clock, Endpoint};

pub use config::{ConfigError, SearchApiConfig};
pub use generator::{CaseOwner, DataConfig};
pub use http::router;
pub use store::{BuildReport, CaseStore, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("invalid search API configuration: {0}")]
    Config(#[from] ConfigError),
    #[error("cannot open the case database: {0}")]
    Store(#[from] StoreError),
    #[error("the database build task stopped: {0}")]
    Interrupted(String),
}

/// The running service's state. Cheap to clone.
#[derive(Clone)]
pub struct SearchApi {
    inner: Arc<Inner>,
}

struct Inner {
    config: SearchApiConfig,
    store: Arc<CaseStore>,
    authorizer: auth::Authorizer,
}

impl SearchApi {
    /// Opens (or builds) the database and prepares token validation. `http` is the client the
    /// API reaches Entra with: it must trust the run's CA and, in a landscape, be bound to the
    /// API's own address. Blocking while the database is built: use `spawn_blocking` in async
    /// code, or [`SearchApi::open`].
    pub fn new(
        config: SearchApiConfig,
        http: reqwest::Client,
        clock: Clock,
    ) -> Result<Self, StartError> {
        config.check()?;
        let store = CaseStore::open_cached(
            config.database.as_deref(),
            &config.data,
            config.case_cache.as_deref(),
        )?;
        let report = store.report();
        tracing::info!(
            cases = report.cases,
            rebuilt = report.rebuilt,
            seconds = report.seconds,
            "case database ready"
        );
        let validator = Validator::new(config.validator_config(), http, clock);
        let authorizer = auth::Authorizer::new(&config, validator);
        Ok(Self {
            inner: Arc::new(Inner {
                config,
                store: Arc::new(store),
                authorizer,
            }),
        })
    }

    /// [`SearchApi::new`] off the async runtime's worker threads.
    pub async fn open(
        config: SearchApiConfig,
        http: reqwest::Client,
        clock: Clock,
    ) -> Result<Self, StartError> {
        tokio::task::spawn_blocking(move || Self::new(config, http, clock))
            .await
            .map_err(|e| {
                StartError::Store(StoreError::File {
                    path: std::path::PathBuf::new(),
                    source: io::Error::other(e),
                })
            })?
    }

    pub fn config(&self) -> &SearchApiConfig {
        &self.inner.config
    }

    pub fn store(&self) -> &CaseStore {
        &self.inner.store
    }

    fn store_handle(&self) -> Arc<CaseStore> {
        self.inner.store.clone()
    }

    fn authorizer(&self) -> &auth::Authorizer {
        &self.inner.authorizer
    }

    /// The delegated scope in full form (`api://contoso-cases/Cases.Read`), from the first
    /// audience that is an identifier URI rather than a client id.
    pub fn delegated_scope(&self) -> String {
        let config = &self.inner.config;
        match config.audiences.iter().find(|a| a.contains("://")) {
            Some(uri) => format!("{}/{}", uri.trim_end_matches('/'), config.required_scope),
            None => config.required_scope.clone(),
        }
    }
}

/// Serves the API on the harness's endpoints until `shutdown` resolves.
pub async fn run(
    state: SearchApi,
    endpoints: Vec<Endpoint>,
    tls: Option<Arc<rustls::ServerConfig>>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    ppvnet_common::serve(endpoints, router(state), tls, shutdown).await
}
