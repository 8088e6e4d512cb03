//! ppvnet-testkit: the fixtures the workspace's tests share, so no crate hand-builds them.
//!
//! Module map:
//! - [`pki`]: a test CA and leaf certificates for host names and addresses, as rustls server
//!   configurations and trusting reqwest clients.
//! - [`authority`]: a token-signing test authority: an RSA key, its JWK / JWKS, JWTs signed
//!   with given claims (and the key material attacks misuse).
//! - [`browser`]: headless Chromium through chromedriver (W3C WebDriver over reqwest): a proxy,
//!   the run CA trusted in an NSS database, DOM waits with a deadline, numbered screenshots.
//! - [`wait`]: `eventually(timeout, check)`, polling with a deadline for the few places no
//!   event exists to await.
//!
//! The typed control-API client stays in the harness (`ppvnet::control::Client`): the harness
//! takes this kit as a dev-dependency, so the kit cannot depend on the harness.

pub mod authority;
pub mod browser;
pub mod pki;
pub mod wait;

pub use authority::TokenAuthority;
pub use browser::{Browser, BrowserOptions};
pub use pki::{Leaf, TestPki};
pub use wait::{TimedOut, eventually, eventually_blocking};
