//! rauta-shared: the contract between rauta's parts.
//!
//! Without features this crate is `no_std` and holds only what the eBPF
//! programs and the user-space loader must agree on. With `std` it also holds
//! the route-config model that k8s-sync produces and the proxy compiles.
#![cfg_attr(not(feature = "std"), no_std)]

/// Size of every Maglev lookup table (a prime, per the Maglev paper).
pub const MAGLEV_TABLE_SIZE: usize = 65537;

#[cfg(feature = "std")]
pub mod config;
pub mod ebpf;
#[cfg(feature = "std")]
pub mod policy;
