//! The landscape parser and validator (`ppvnet::scenario::load_str`) on arbitrary text.
//!
//! Beyond "no panic" (also while rendering every finding at its `file:line:col`), a landscape the
//! validator accepts must map onto the Entra and Key Vault configurations `ppvnet up` builds from
//! it: the validator's job is to refuse, with a located finding, whatever `up` could not run.
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use ppvnet::scenario::{LoadError, load_str};

/// A file in `scenarios/`, so that the connector folders the shipped landscapes name
/// (`connectors/contoso-cases/...`) resolve and their import is fuzzed too.
fn landscape_path() -> &'static PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scenarios/fuzz-input.yaml")
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match load_str(text, landscape_path()) {
        Err(e) => {
            let rendered = e.to_string();
            assert!(!rendered.is_empty());
            if let LoadError::Invalid { findings, .. } = &e {
                assert!(!findings.is_empty(), "refused without a finding");
            }
        }
        Ok(landscape) => {
            let _ = landscape.summary();
            if let Err(e) = ppvnet::services::entra::config(&landscape) {
                panic!("valid landscape that Entra cannot be configured from: {e:#}");
            }
            match ppvnet::services::keyvault::config(&landscape, |_| Vec::new(), None) {
                Ok(vaults) => {
                    if let Err(e) = vaults.validate() {
                        panic!("valid landscape whose vaults the fake Key Vault refuses: {e}");
                    }
                }
                Err(e) => panic!("valid landscape that Key Vault cannot be configured from: {e:#}"),
            }
        }
    }
});
