//! A mock Entra ID (`scenarios/containers/entra.yaml`): one tenant with a confidential client
//! (`app`) allowed app-only tokens for an API registration (`api://ppvnet-api`), and one user.
//!
//! ```no_run
//! use testcontainers_ppvnet::{Entra, PpvnetImage};
//! # async fn example() -> testcontainers_ppvnet::Result<()> {
//! let entra = Entra::default().start().await?;
//! let token = entra.token(&entra.client_credentials()?, Entra::API_SCOPE).await?;
//! # Ok(()) }
//! ```

use crate::error::Result;
use crate::image::{PpvnetImage, Scenario, Spec};
use crate::ready::{ClientCredentials, Running};

/// The Entra module's image configuration.
#[derive(Clone, Debug)]
pub struct Entra {
    spec: Spec,
}

impl Entra {
    /// The confidential client's app registration.
    pub const APP: &'static str = "app";
    /// The scope of app-only tokens for the API registration.
    pub const API_SCOPE: &'static str = "api://ppvnet-api/.default";
    /// The API registration's application id URI.
    pub const API_AUDIENCE: &'static str = "api://ppvnet-api";
    /// The API registration's client id: the `aud` of its v2 access tokens.
    pub const API_CLIENT_ID: &'static str = "7a3b5c9d-1e2f-4a6b-8c0d-2e4f6a8b0c1d";
    /// The user of the landscape.
    pub const USER: &'static str = "dev@testcontainers.onmicrosoft.com";
}

impl Default for Entra {
    fn default() -> Self {
        Self {
            spec: Spec::new(Scenario::Shipped("containers/entra.yaml".into())),
        }
    }
}

impl PpvnetImage for Entra {
    fn spec(&self) -> &Spec {
        &self.spec
    }
    fn spec_mut(&mut self) -> &mut Spec {
        &mut self.spec
    }
}

impl Running<Entra> {
    /// The client credentials of [`Entra::APP`].
    pub fn client_credentials(&self) -> Result<ClientCredentials> {
        self.client_credentials_of(Entra::APP)
    }
}
