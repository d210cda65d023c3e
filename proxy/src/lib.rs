//! rauta-proxy: the data plane. A request goes accept -> parse -> route ->
//! pick -> pool -> forward, each step one module, never back up the chain.

pub mod accept;
pub mod access_log;
pub mod admin;
pub mod balance;
pub mod cli;
pub mod config;
pub mod conn;
pub mod control;
pub mod cpus;
pub mod downstream;
pub mod drain;
pub mod error;
pub mod exchange;
pub mod http;
pub mod limits;
pub mod listener;
pub mod memory;
pub mod metrics;
pub mod router;
pub mod rt;
pub mod serve;
pub mod shard;
pub mod tls;
pub mod upstream;
pub mod xdp;
