//! Any bytes as a manifest file (first byte: bit 0, JSON rather than YAML):
//! loading and translating never panic and every problem names the file
//! and its object (`rauta_k8s_sync::manifests::invariants`); a set the
//! translation lets through compiles into a route table.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rauta_k8s_sync::manifests::invariants;

fuzz_target!(|data: &[u8]| {
    if let Some(translation) = invariants::check_manifest(data) {
        if !translation.is_rejected() {
            rauta_proxy::router::invariants::check_compiles(&translation.config);
        }
    }
});
