//! rauta-proxy: the data plane. A request goes accept -> conn -> exchange
//! (plan: parse -> route -> request phase -> pick; forward: pool -> send ->
//! response head; answer: response phase -> stream back; record), each step
//! one module that uses only the ones before it and the leaves beneath
//! (shard state, downstream, upstream, http, router, balance, rt, ...):
//! never back up the chain, and no two files import each other.

pub(crate) mod accept;
pub(crate) mod access_log;
pub(crate) mod admin;
pub mod balance;
pub mod cli;
pub(crate) mod config;
pub(crate) mod conn;
pub(crate) mod control;
pub(crate) mod cpus;
pub(crate) mod downstream;
pub(crate) mod drain;
pub(crate) mod error;
pub(crate) mod exchange;
pub mod http;
pub mod http2;
pub mod l4;
pub(crate) mod limits;
pub(crate) mod listener;
pub(crate) mod memory;
pub mod metrics;
pub(crate) mod otel;
pub(crate) mod policy;
pub mod router;
pub mod rt;
pub mod serve;
pub(crate) mod shard;
pub(crate) mod tls;
pub(crate) mod upstream;
pub mod xdp;

/// The committed seeds of fuzz target `target` (`fuzz/corpus/TARGET`), for
/// the unit tests that run each target's check over them on stable.
#[cfg(test)]
pub(crate) fn fuzz_seeds(target: &str) -> Vec<Vec<u8>> {
    let dir = format!("{}/fuzz/corpus/{target}", env!("CARGO_MANIFEST_DIR"));
    let entries = std::fs::read_dir(&dir).expect("the seed corpus");
    let seeds: Vec<Vec<u8>> = entries
        .map(|e| std::fs::read(e.expect("a seed").path()).expect("a seed"))
        .collect();
    assert!(!seeds.is_empty(), "{dir}");
    seeds
}
