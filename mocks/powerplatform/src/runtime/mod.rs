//! The Power Platform service: environments, Secret variables, connections and the custom
//! connector runtime (`POST /invoke`).
//!
//! The service knows no fabric: every outbound request goes through the [`Outbound`] the
//! harness hands it. Key Vault reads and backend calls leave from the environment's active host
//! (`outbound.active_host(env)`); token requests to Entra leave from `internet` (Microsoft's
//! cloud side).
//!
//! ## Public API
//! - [`PowerPlatform::new`]`(config, outbound, clock).await`: checks the configuration and saves
//!   every connector in its environments (Secret variables resolved now).
//! - [`router`]: the public routes: `POST /invoke`, `POST /connections` (user token; the caller
//!   owns the connection), `GET /redirect` and `GET /redirect/{*rest}` (consent callback),
//!   `GET /healthz`, and the case-search app's pages under `/apps/` ([`app`]).
//! - [`control_router`]: the admin routes (table in [`control`]).
//! - [`run`]: serves [`router`] on the harness's endpoints.
//!
//! Module map:
//! - [`config`]: what the harness hands the service, and the [`Outbound`] trait its traffic uses.
//! - [`engine`]: [`ConnectorLogic`], the seam to the connector methods (import, prepare,
//!   policies, expressions); [`StandardLogic`] is what runs.
//! - [`variables`]: environment variables; Secret ones read from Key Vault as Dataverse.
//! - [`saved`]: connectors as saved per environment (variables taken at save time).
//! - [`tokens`]: Entra token endpoint requests (client credentials, code, refresh).
//! - [`connections`]: connections, their tokens and refresh, broken-connection states.
//! - [`consent`]: `POST /connections` and the consent callback (authorize link, PKCE).
//! - [`app`]: the case-search app (Power Apps stand-in): sign-in with PKCE, sessions, search
//!   pages over the `/invoke` path.
//! - [`auth`]: validation of the user's API Hub token.
//! - [`invoke`]: `POST /invoke`: checks, backend call, failover, policies.
//! - [`limits`]: calls per minute per connection.
//! - [`egress`]: classification of transport failures (DNS, refused, dropped, timeout).
//! - [`error`]: the runtime's error shapes and [`ControlError`].
//! - [`control`]: the admin routes.

pub mod app;
pub mod auth;
pub mod config;
pub mod connections;
pub mod consent;
pub mod control;
pub mod egress;
pub mod engine;
pub mod error;
pub mod invoke;
pub mod limits;
pub mod saved;
pub mod tokens;
pub mod variables;

use std::collections::BTreeMap;
use std::future::Future;
use std::io;
use std::sync::{Arc, Mutex, RwLock};

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use ppvnet_common::token::Validator;
use ppvnet_common::{Clock, Endpoint};

pub use config::{Outbound, RuntimeConfig};
pub use connections::{Connection, ConnectionStatus, Grant};
pub use control::control_router;
pub use engine::{ConnectorLogic, StandardLogic};
pub use error::{ControlError, RuntimeError};
pub use saved::SavedConnector;

use config::EnvironmentConfig;
use connections::ConnectionStore;
use limits::RateLimiter;

/// Bodies of `POST /connections` are small JSON documents.
const MAX_CONNECTION_BODY: usize = 64 * 1024;

/// Why the service could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("environment '{0}' is configured twice")]
    DuplicateEnvironment(String),
    #[error("connector '{connector}' is saved in unknown environment '{environment}'")]
    UnknownEnvironment {
        connector: String,
        environment: String,
    },
    #[error("connector '{0}' is configured twice")]
    DuplicateConnector(String),
    #[error("no outbound client for the internet host: {0}")]
    NoInternetClient(String),
}

/// The running service's state. Cheap to clone.
#[derive(Clone)]
pub struct PowerPlatform {
    inner: Arc<Inner>,
}

struct Inner {
    config: RuntimeConfig,
    outbound: Arc<dyn Outbound>,
    clock: Clock,
    logic: Arc<dyn ConnectorLogic>,
    validator: Validator,
    /// (environment name, connector name) → the latest save.
    saved: RwLock<BTreeMap<(String, String), Arc<SavedConnector>>>,
    connections: Mutex<ConnectionStore>,
    limiter: RateLimiter,
    /// The case-search app's sessions and sign-ins in progress.
    app_sessions: Mutex<app::session::SessionStore>,
}

impl PowerPlatform {
    /// Checks `config` and saves every connector in its environments, with the connector
    /// methods of [`crate::connector`].
    pub async fn new(
        config: RuntimeConfig,
        outbound: Arc<dyn Outbound>,
        clock: Clock,
    ) -> Result<Self, StartError> {
        Self::with_logic(config, outbound, clock, Arc::new(StandardLogic)).await
    }

    /// [`PowerPlatform::new`] with another [`ConnectorLogic`] (tests exercising the runtime with
    /// a fake definition).
    pub async fn with_logic(
        config: RuntimeConfig,
        outbound: Arc<dyn Outbound>,
        clock: Clock,
        logic: Arc<dyn ConnectorLogic>,
    ) -> Result<Self, StartError> {
        check(&config)?;
        let internet = outbound
            .client("internet")
            .map_err(StartError::NoInternetClient)?;
        let validator = Validator::new(auth::validator_config(&config), internet, clock.clone());
        let pp = Self {
            inner: Arc::new(Inner {
                config,
                outbound,
                clock,
                logic,
                validator,
                saved: RwLock::new(BTreeMap::new()),
                connections: Mutex::new(ConnectionStore::default()),
                limiter: RateLimiter::default(),
                app_sessions: Mutex::new(app::session::SessionStore::default()),
            }),
        };
        let pairs: Vec<(String, String)> = pp
            .inner
            .config
            .connectors
            .iter()
            .flat_map(|c| c.environments.iter().map(|e| (e.clone(), c.name.clone())))
            .collect();
        for (environment, connector) in pairs {
            // Both exist: `check` verified every pair.
            if let Err(e) = pp.resave(&environment, &connector).await {
                tracing::error!(%environment, %connector, error = %e, "initial save failed");
            }
        }
        Ok(pp)
    }

    pub fn config(&self) -> &RuntimeConfig {
        &self.inner.config
    }

    /// An environment by name or id (case-insensitive).
    pub fn environment(&self, name_or_id: &str) -> Option<&EnvironmentConfig> {
        self.inner.config.environments.iter().find(|e| {
            e.name.eq_ignore_ascii_case(name_or_id) || e.id.eq_ignore_ascii_case(name_or_id)
        })
    }

    /// The latest save of `connector` in `environment` (name).
    pub fn saved(&self, environment: &str, connector: &str) -> Option<Arc<SavedConnector>> {
        self.read_saved()
            .get(&(environment.to_owned(), connector.to_owned()))
            .cloned()
    }

    /// Every saved connector, by environment then name.
    pub fn saved_connectors(&self) -> Vec<Arc<SavedConnector>> {
        self.read_saved().values().cloned().collect()
    }

    /// Saves `connector` in `environment` (name or id) again: imports it and takes the
    /// environment variables it refers to as they are now (a rotated secret takes effect).
    pub async fn resave(
        &self,
        environment: &str,
        connector: &str,
    ) -> Result<Arc<SavedConnector>, ControlError> {
        let env = self
            .environment(environment)
            .ok_or_else(|| ControlError::NotFound(format!("No environment '{environment}'.")))?;
        let definition = self
            .inner
            .config
            .connectors
            .iter()
            .find(|c| c.name == connector && c.environments.contains(&env.name))
            .ok_or_else(|| {
                ControlError::NotFound(format!(
                    "Connector '{connector}' is not configured in environment '{}'.",
                    env.name
                ))
            })?;
        let ctx = saved::SaveContext {
            config: &self.inner.config,
            outbound: self.inner.outbound.as_ref(),
            logic: self.inner.logic.as_ref(),
            now: self.inner.clock.unix(),
        };
        let saved = Arc::new(saved::save(&ctx, env, definition).await);
        self.inner
            .saved
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert((env.name.clone(), connector.to_owned()), saved.clone());
        Ok(saved)
    }

    fn read_saved(
        &self,
    ) -> std::sync::RwLockReadGuard<'_, BTreeMap<(String, String), Arc<SavedConnector>>> {
        self.inner
            .saved
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

fn check(config: &RuntimeConfig) -> Result<(), StartError> {
    let mut seen = std::collections::BTreeSet::new();
    for env in &config.environments {
        if !seen.insert(env.name.to_ascii_lowercase()) {
            return Err(StartError::DuplicateEnvironment(env.name.clone()));
        }
    }
    let mut connectors = std::collections::BTreeSet::new();
    for c in &config.connectors {
        if !connectors.insert(c.name.clone()) {
            return Err(StartError::DuplicateConnector(c.name.clone()));
        }
        for env in &c.environments {
            if !config.environments.iter().any(|e| e.name == *env) {
                return Err(StartError::UnknownEnvironment {
                    connector: c.name.clone(),
                    environment: env.clone(),
                });
            }
        }
    }
    Ok(())
}

/// The public routes (see the module docs).
pub fn router(pp: PowerPlatform) -> Router {
    let max_invoke = pp.inner.config.limits.max_request_bytes;
    Router::new()
        .route(
            "/invoke",
            // The handler reads at most `max_request_bytes` itself, to answer in the runtime's
            // error shape; the layer is the backstop.
            post(invoke::invoke).layer(DefaultBodyLimit::max(max_invoke.saturating_add(1))),
        )
        .route(
            "/connections",
            post(consent::create).layer(DefaultBodyLimit::max(MAX_CONNECTION_BODY)),
        )
        .route("/redirect", get(consent::redirect))
        .route("/redirect/{*rest}", get(consent::redirect))
        .route("/healthz", get(|| async { "ok" }))
        .merge(app::routes())
        .with_state(pp)
}

/// Serves [`router`] on `endpoints` (TLS when `tls` is given) until `shutdown` resolves.
pub async fn run(
    pp: PowerPlatform,
    endpoints: Vec<Endpoint>,
    tls: Option<Arc<rustls::ServerConfig>>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    ppvnet_common::serve(endpoints, router(pp), tls, shutdown).await
}
