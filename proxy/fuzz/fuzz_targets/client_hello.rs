//! Any bytes as a TLS connection's first bytes
//! (`rauta_proxy::l4::client_hello::invariants` reads them): no panic; a
//! prefix answers `NeedMore` or what the whole does; a hello reads the same
//! re-framed over other records and as rustls reads it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rauta_proxy::l4::client_hello::invariants;

fuzz_target!(|data: &[u8]| invariants::check(data));
