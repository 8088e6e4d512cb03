//! A whole landscape: the seed (`contoso`), another one shipped in the image, or a team's own
//! landscape file. Vaults, apps and users are reached by name through [`Running`]'s accessors
//! (`vault_url_of`, `client_credentials_of`, `password_of`), the control API by `control()`.
//!
//! ```no_run
//! use testcontainers_ppvnet::{Landscape, PpvnetImage};
//! # async fn example() -> testcontainers_ppvnet::Result<()> {
//! let landscape = Landscape::seed().start().await?;
//! let vault = landscape.vault_url_of("kv-contoso-dev")?;
//! # Ok(()) }
//! ```

use crate::image::{PpvnetImage, Scenario, Spec};

/// The Landscape module's image configuration.
#[derive(Clone, Debug)]
pub struct Landscape {
    spec: Spec,
}

impl Landscape {
    /// The seed landscape, `scenarios/contoso.yaml`.
    pub fn seed() -> Self {
        Self::shipped("contoso.yaml")
    }

    /// A landscape shipped in the image, by its path under the checkout's `scenarios/`
    /// (`nat-gateway.yaml`, `examples/minimal.yaml`).
    pub fn shipped(path: impl Into<String>) -> Self {
        Self {
            spec: Spec::new(Scenario::Shipped(path.into())),
        }
    }

    /// A landscape file's text, copied into the container (a team's own landscape; files it
    /// names by relative path are not copied).
    pub fn from_yaml(text: impl Into<Vec<u8>>) -> Self {
        Self {
            spec: Spec::new(Scenario::Yaml(text.into())),
        }
    }
}

impl Default for Landscape {
    fn default() -> Self {
        Self::seed()
    }
}

impl PpvnetImage for Landscape {
    fn spec(&self) -> &Spec {
        &self.spec
    }
    fn spec_mut(&mut self) -> &mut Spec {
        &mut self.spec
    }
}
