//! Shared building blocks of the ppvnet services.
//!
//! Module map:
//! - [`bench`]: measuring helpers every benchmark shares: the closed-loop load generator and its
//!   distribution, and the same-run references (bare axum over rustls, aws-lc RSA sign and key
//!   generation rates, a direct loopback echo), with the machine's load average.
//! - [`clock`]: one shiftable clock per run; token lifetimes, secret `nbf`/`exp` and soft-delete
//!   purge dates all read it, so a scenario can "advance time by 2 hours" for every service at once.
//! - [`cache`]: the user's cache folder (`PPVNET_CACHE`), reused across runs.
//! - [`keypool`]: a per-user pool of RSA keys generated ahead of time, so a run's start does
//!   not wait for prime search.
//! - [`net`]: how a service learns where a connection came from without knowing the fabric:
//!   listeners carry their [`net::Face`] (public endpoint or a named private endpoint; the one
//!   face type, the harness's too) and a [`net::PeerDirectory`] maps the socket peer to its
//!   emulated address and [`net::SubnetRef`] (the one subnet reference).
//! - [`private_fs`]: owner-only (0600/0700) creation of files and folders that hold secrets.
//! - [`serve`]: serves an axum router on any set of std listeners (loopback, bound inside a
//!   network namespace, or in a container) or channels of connections accepted elsewhere in the
//!   process (the loopback fabric's relay), plain HTTP or TLS, with graceful shutdown;
//!   `serve::metered` is the one stream wrapper that reports the bytes passing through it.
//! - [`token`]: validation of Entra access tokens by a resource server (discovery + JWKS with a
//!   rate-limited refresh, RS256 only, exact issuer, audience, lifetime on the run clock, tenant,
//!   ID tokens refused), with ASP.NET-worded `WWW-Authenticate` descriptions.
//! - [`web`]: HTML escaping, cookie reading and the hardening headers of the mocks' browser pages.
//! - `testing` (hidden): test support shared by the crates' integration tests: the `PPVNET_REQUIRE`
//!   skip rule and one list of JWT attacks applied to every resource server.

pub mod bench;
pub mod cache;
pub mod clock;
pub mod keypool;
pub mod net;
pub mod private_fs;
pub mod serve;
#[doc(hidden)]
pub mod testing;
pub mod token;
pub mod web;

pub use clock::Clock;
pub use net::{Face, Peer, PeerDirectory, SubnetRef};
pub use serve::{Endpoint, Source, serve};
