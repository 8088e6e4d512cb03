//! The mock Entra's token endpoints (`POST /{tenant}/oauth2/v2.0/token` and the v1
//! `/{tenant}/oauth2/token`) with arbitrary headers and form bodies (`ppvnet_fuzz` request text),
//! in-process through its axum router, for the tenant of `scenarios/contoso.yaml` (the seed
//! corpus uses its real client ids, secrets and users, so every grant is reachable).
//!
//! Inputs for other methods or paths are skipped: this target is about form parsing, client
//! authentication and the grants. The tenant is built once (its RSA signing keys take a while),
//! so codes and refresh tokens issued by one input stay valid for later ones; a fuzzer cannot
//! guess them, so executions stay independent in practice.
//!
//! Oracle: no panic, no 5xx, the body is JSON (a token response or the AADSTS envelope), and a
//! 200 carries a bearer `access_token`.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use ppvnet_common::Clock;
use ppvnet_entra::Entra;
use serde_json::Value;

fn entra() -> &'static Entra {
    static ENTRA: OnceLock<Entra> = OnceLock::new();
    ENTRA.get_or_init(|| {
        let path =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/contoso.yaml");
        let landscape = ppvnet::scenario::load(&path).expect("contoso.yaml is valid");
        let config = ppvnet::services::entra::config(&landscape).expect("contoso's tenant");
        let authority = url::Url::parse("https://login.microsoftonline.com").expect("a URL");
        Entra::new(&config, Clock::new(), authority, None).expect("the mock Entra starts")
    })
}

fn is_token_endpoint(path: &str) -> bool {
    let mut segments = path.trim_start_matches('/').splitn(2, '/');
    let _tenant = segments.next();
    matches!(segments.next(), Some("oauth2/v2.0/token" | "oauth2/token"))
}

fuzz_target!(|data: &[u8]| {
    let Some(request) = ppvnet_fuzz::parse_request(data) else {
        return;
    };
    if request.method() != "POST" || !is_token_endpoint(request.uri().path()) {
        return;
    }
    let what = format!("POST {}", request.uri());
    // A path whose percent-decoding is not UTF-8 (`/c76c%d3.../oauth2/v2.0/token`) once got
    // axum's plain-text 400; the mock now answers it in Entra's envelope like any other path.
    let (status, _, body) = ppvnet_fuzz::call(ppvnet_entra::router(entra().clone()), request);
    ppvnet_fuzz::assert_well_formed(status, &body, &what);
    if status.is_success() {
        let answer: Value = serde_json::from_slice(&body).expect("checked above");
        assert!(
            answer["access_token"]
                .as_str()
                .is_some_and(|t| !t.is_empty()),
            "{what}: 200 without an access token: {answer}"
        );
        assert!(
            answer["token_type"]
                .as_str()
                .is_some_and(|t| t.eq_ignore_ascii_case("bearer")),
            "{what}: 200 with token_type {}",
            answer["token_type"]
        );
    }
});
