//! L4 services: TCP flows proxied without looking at HTTP (TCP services,
//! TLS passthrough, the tunnel after an HTTP Upgrade), and the kernel
//! splice that moves their bytes once both sockets are established.

pub mod splice;
