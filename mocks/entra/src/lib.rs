//! Mock Microsoft Entra ID that official clients (MSAL, azure-identity) accept unmodified:
//! Entra's paths, discovery documents, key sets, grants, claims and AADSTS errors, with every
//! credential really checked.
//!
//! Module map:
//! - [`config`]: [`EntraConfig`], one tenant (users, groups, app registrations) in Graph's terms.
//! - `directory`: the validated tenant the endpoints query; consent and role rules.
//! - `keys`: RSA signing keys, the JWKS, rotation, persistence in a data dir.
//! - `state`: the [`Entra`] handle and its control operations (keys, secrets, users, revocation).
//! - `request`: tenant path resolution, the origin a client used, form bodies.
//! - `scopes`: parsing `scope`/`resource` and granting delegated permissions.
//! - `client_auth`: client secrets (post/Basic) and certificate client assertions.
//! - `tokens`: access/ID token claim sets and signing; reading returned JWTs.
//! - `token_endpoint`: `/oauth2/v2.0/token` and `/oauth2/token`, all grants.
//! - `authorize`: the sign-in page, SSO session, code + PKCE, logout.
//! - `discovery`: OpenID configuration (v1, v2), JWKS, instance discovery, `userrealm`.
//! - [`error`]: [`EntraError`] and its AADSTS envelope.
//! - `control_api`: [`control_router`], the control operations as JSON endpoints.
//!
//! ## Serving and port 443
//! [`run`] serves on whatever listeners it is handed. MSAL Python calls
//! `https://<authority host>/common/userrealm/<upn>` on port 443 (dropping the authority's
//! port) before ROPC and fails if that connection is refused, so whoever starts the mock should
//! also hand it a listener on port 443 of the same address when it can bind one (root or
//! `CAP_NET_BIND_SERVICE`), and say so when it cannot. Discovery documents name the address
//! each request came in on, so both listeners answer consistently.
//!
//! The `ppvnet-entra` binary (`src/main.rs`) serves one tenant from a JSON [`EntraConfig`]
//! outside `ppvnet up` (`--also-port-443` for the listener above).
//!
//! ## Pointing official clients at the mock (checked in `tests/entra/official_clients.rs`)
//! - MSAL Python: `authority="https://<addr>:<port>/<tenant>"` with `instance_discovery=False`
//!   (an unknown host would otherwise be validated against the real
//!   `login.microsoftonline.com`); trust the run CA with `REQUESTS_CA_BUNDLE`. When the mock is
//!   reached as `login.microsoftonline.com` itself, instance discovery is answered here too.
//! - `azure_identity` (Rust): `ClientOptions { cloud: Some(CloudConfiguration::Custom(..
//!   authority_host ..)), transport: Some(Transport::new(reqwest client trusting the CA)) }`;
//!   the authority host must be `https`.
//! - Client assertions may use the mock's token endpoint URL or the real
//!   `https://login.microsoftonline.com/{tenant}/oauth2/v2.0/token` as `aud`.

pub mod config;
pub mod error;

mod authorize;
mod client_auth;
mod control_api;
mod directory;
mod discovery;
mod keys;
mod request;
mod scopes;
mod state;
mod token_endpoint;
mod tokens;

use std::future::Future;
use std::io;
use std::sync::Arc;

use axum::Router;
use axum::routing::{get, post};

pub use config::EntraConfig;
pub use control_api::control_router;
pub use directory::ConfigError;
pub use error::EntraError;
pub use keys::{KeyStatus, SigningKeyInfo, fill_key_pool, use_key_pool};
pub use state::{
    AddClientSecret, ClientSecretInfo, ControlError, Entra, NewClientSecret, StartError,
};

/// Every Entra endpoint, at the URL root (`/{tenant}/...`) as clients expect.
pub fn router(entra: Entra) -> Router {
    Router::new()
        .route(
            "/{tenant}/v2.0/.well-known/openid-configuration",
            get(discovery::openid_configuration_v2),
        )
        .route(
            "/{tenant}/.well-known/openid-configuration",
            get(discovery::openid_configuration_v1),
        )
        .route("/{tenant}/discovery/v2.0/keys", get(discovery::keys))
        .route("/{tenant}/discovery/keys", get(discovery::keys))
        .route(
            "/{tenant}/discovery/instance",
            get(discovery::instance_discovery),
        )
        .route("/{tenant}/userrealm/{upn}", get(discovery::user_realm))
        .route(
            "/{tenant}/oauth2/v2.0/token",
            post(token_endpoint::token_v2).fallback(token_endpoint::not_post),
        )
        .route(
            "/{tenant}/oauth2/token",
            post(token_endpoint::token_v1).fallback(token_endpoint::not_post),
        )
        .route(
            "/{tenant}/oauth2/v2.0/authorize",
            get(authorize::authorize_get).post(authorize::authorize_post),
        )
        .route(
            "/{tenant}/oauth2/authorize",
            get(authorize::authorize_get_v1),
        )
        .route(
            "/{tenant}/oauth2/v2.0/logout",
            get(authorize::logout).post(authorize::logout),
        )
        .with_state(entra)
}

/// Serves [`router`] on `endpoints` (TLS when `tls` is given) until `shutdown` resolves.
pub async fn run(
    entra: Entra,
    endpoints: Vec<ppvnet_common::Endpoint>,
    tls: Option<Arc<rustls::ServerConfig>>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    ppvnet_common::serve(endpoints, router(entra), tls, shutdown).await
}
