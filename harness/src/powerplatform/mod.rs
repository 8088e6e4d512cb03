//! Power Platform from the user's side and the harness's: the browser-less Power Apps user
//! ([`user`]) that the CLI's `ppvnet pp` commands and the acceptance steps drive.
//!
//! - [`user`]: sign in with a password, consent to a connection on Entra's real pages, invoke.

pub mod cli;
pub mod control;
pub mod user;
