//! Any bytes as a route table and requests (`rauta_proxy::router::invariants`
//! reads them): every lookup must pick the route a linear model of the
//! Ingress precedence rules picks.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rauta_proxy::router::invariants;

fuzz_target!(|data: &[u8]| invariants::check_lookup(data));
