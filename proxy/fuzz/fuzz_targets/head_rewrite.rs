//! Any bytes as a request head (first byte even) or a response head (odd;
//! bit 1: the request was HEAD): the head rauta writes for the other side
//! must frame exactly the body rauta relays (`rauta_proxy::http::invariants`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use rauta_proxy::http::invariants;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, head)) = data.split_first() else {
        return;
    };
    if selector & 1 == 0 {
        invariants::check_request(head);
    } else {
        invariants::check_response(head, selector & 2 != 0);
    }
});
