//! Containers of ppvnet for a team's own Rust tests, one line each: a mock Entra ID, a mock
//! Key Vault, or a whole landscape, from the `ppvnet:<version>` image that `ppvnet image build`
//! builds on the machine (nothing is pulled).
//!
//! ```no_run
//! use testcontainers_ppvnet::{KeyVault, PpvnetImage};
//! # async fn example() -> testcontainers_ppvnet::Result<()> {
//! let vault = KeyVault::default().start().await?; // removed when dropped
//! let credentials = vault.client_credentials()?;
//! let token = vault.token(&credentials, KeyVault::SCOPE).await?;
//! let client = vault.http_client()?; // through the published proxy, trusting the run's CA
//! # Ok(()) }
//! ```
//!
//! Module map (the layout of testcontainers-modules: one module per image):
//! - [`entra`]: [`Entra`], a tenant with a confidential client and an API registration.
//! - [`keyvault`]: [`KeyVault`], a public vault with one secret, and its Entra.
//! - [`landscape`]: [`Landscape`], the seed landscape, another shipped one, or a team's own file.
//! - [`image`]: what they share: the image, the ready condition (`ppvnet is up`), the exposed
//!   ports (control API and the internet host's HTTPS proxy, on the machine's 127.0.0.1 only),
//!   and the [`PpvnetImage`] builder with `start`.
//! - [`ready`]: [`Running`], a started container's typed accessors (authority URL, vault URL,
//!   CA PEM, client credentials, an HTTP client and a token helper).
//! - [`docker`]: the Docker operations, through the `docker` CLI; containers are removed on drop.
//! - [`error`]: one-line errors naming the cause and the fix.

pub mod docker;
pub mod entra;
pub mod error;
pub mod image;
pub mod keyvault;
pub mod landscape;
pub mod ready;

pub use entra::Entra;
pub use error::{Error, Result};
pub use image::PpvnetImage;
pub use keyvault::KeyVault;
pub use landscape::Landscape;
pub use ready::{ClientCredentials, Running};
