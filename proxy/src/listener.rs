//! Client listeners: one socket per shard on the same address, with
//! SO_REUSEPORT so the kernel spreads connections over the shards.

use socket2::{Domain, Protocol, Socket, Type};
use std::io;
use std::net::SocketAddr;

/// Backlog of each shard's listener.
const BACKLOG: i32 = 4096;

/// A bound, listening SO_REUSEPORT socket.
pub fn bind_reuseport(addr: SocketAddr) -> io::Result<Socket> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    socket.set_tcp_nodelay(true)?;
    socket.bind(&addr.into())?;
    socket.listen(BACKLOG)?;
    Ok(socket)
}
