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
pub(crate) mod limits;
pub(crate) mod listener;
pub(crate) mod memory;
pub mod metrics;
pub(crate) mod policy;
pub mod router;
pub mod rt;
pub mod serve;
pub(crate) mod shard;
pub(crate) mod tls;
pub(crate) mod upstream;
pub mod xdp;
