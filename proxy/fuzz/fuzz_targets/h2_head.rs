//! Any bytes as an h2 request's pseudo-headers and fields
//! (`rauta_proxy::http2::invariants` reads them): the HTTP/1.1 head the
//! bridge writes must parse back to the same request, without
//! connection-specific fields, or the request must be malformed by
//! RFC 9113 §8.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rauta_proxy::http2::invariants;

fuzz_target!(|data: &[u8]| invariants::check_request_head(data));
