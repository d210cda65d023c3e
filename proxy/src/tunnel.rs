//! After a 101 Switching Protocols (WebSocket), the proxy only copies bytes
//! both ways until each side has closed its half.

use crate::conn::ClientConn;
use crate::rt::TcpStream;
use futures_lite::{future, io, AsyncWriteExt};

/// Copies both directions until both are done; bytes already buffered on
/// either side are delivered first.
pub async fn run(conn: &mut ClientConn, upstream: TcpStream) {
    // Tunnels may idle far longer than requests; a WebSocket pinging every
    // few minutes must survive, so reads wait without a timeout.
    let _ = conn.stream.tcp().set_read_timeout(None);
    let _ = upstream.set_read_timeout(None);
    let mut upstream = upstream;
    if !conn.ubuf.is_empty() && conn.stream.write_all(conn.ubuf.data()).await.is_err() {
        return;
    }
    if !conn.rbuf.is_empty() && upstream.write_all(conn.rbuf.data()).await.is_err() {
        return;
    }
    conn.ubuf.clear();
    conn.rbuf.clear();
    let (client_r, mut client_w) = io::split(&mut conn.stream);
    let (upstream_r, mut upstream_w) = io::split(&mut upstream);
    let up = async {
        let _ = io::copy(client_r, &mut upstream_w).await;
        let _ = upstream_w.close().await;
    };
    let down = async {
        let _ = io::copy(upstream_r, &mut client_w).await;
        let _ = client_w.close().await;
    };
    future::zip(up, down).await;
}
