//! Any bytes as what an HTTP/2 client sends (first byte: the read size):
//! the frame check ahead of h2 (`rauta_proxy::http2::invariants`) must
//! refuse the same frames with the same code however the bytes are split
//! into reads, and never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rauta_proxy::http2::invariants;

fuzz_target!(|data: &[u8]| {
    let Some((&step, input)) = data.split_first() else {
        return;
    };
    invariants::check_frame_scan(input, usize::from(step).max(1));
});
