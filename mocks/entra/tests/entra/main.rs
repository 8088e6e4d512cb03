//! Integration tests of the mock Entra ID, in one test binary (`cargo test -p ppvnet-entra
//! --test entra`): each binary is a separate link and tens of megabytes of disk, so the areas
//! are modules here rather than binaries of their own. Fixtures are in `tests/data/`.

mod common;

mod authorize;
mod binary;
mod discovery;
mod errors;
mod grants;
mod official_clients;
mod rotation;
