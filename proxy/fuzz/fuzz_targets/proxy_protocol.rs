//! Any bytes as the start of a connection that must begin with a PROXY
//! protocol header (v1 or v2): never a panic, and a complete header's
//! verdict does not depend on how much of what follows has arrived.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    rauta_proxy::l4::proxy_protocol::check(data);
});
