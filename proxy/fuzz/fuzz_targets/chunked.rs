//! Any bytes as a chunked request or response body (first byte: the read
//! size): the decoder must end the body at the same octet with the same
//! data, count and refusal however the bytes arrive, agree with the
//! reference decoder of `rauta_proxy::http::invariants`, and never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rauta_proxy::http::invariants;

fuzz_target!(|data: &[u8]| {
    let Some((&step, body)) = data.split_first() else {
        return;
    };
    invariants::check_chunked(body, usize::from(step).max(1));
});
