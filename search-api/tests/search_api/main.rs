//! Integration tests of the search API, in one test binary (`cargo test -p ppvnet-search-api
//! --test search_api`): each binary is a separate link and tens of megabytes of disk, so the
//! areas are modules here rather than binaries of their own. Fixtures are in `tests/data/`.

mod support;

mod api;
mod contract;
mod jwt_attacks;
mod logs;
