//! Integration tests of the fake Key Vault, in one test binary (`cargo test -p ppvnet-keyvault
//! --test keyvault`): each binary is a separate link and tens of megabytes of disk, so the areas
//! are modules here rather than binaries of their own. Recordings are in `tests/data/`.

mod common;

mod crash;
mod data_plane;
mod jwt_attacks;
mod limits;
mod python_sdk;
mod replay;
mod rust_sdk;
