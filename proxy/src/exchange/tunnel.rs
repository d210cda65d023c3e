//! After a 101 Switching Protocols (WebSocket), the proxy only copies bytes
//! both ways until each side has closed its half, the tunnel has been idle
//! for `--tunnel-idle-timeout`, or TCP keepalive finds a peer gone. A plain
//! (not TLS) client's tunnel is joined in the kernel when the shard can
//! splice ([`crate::l4::splice`]): then its bytes never reach user space.

use crate::downstream::{ClientConn, ClientStream};
use crate::http::buf::IoBuf;
use crate::rt::{self, TcpStream};
use futures_lite::{future, io, AsyncRead, AsyncWrite, AsyncWriteExt};
use socket2::{SockRef, TcpKeepalive};
use std::cell::Cell;
use std::time::{Duration, Instant};

/// Keepalive probes start after this much silence on a tunnel socket.
const KEEPALIVE_IDLE: Duration = Duration::from_secs(60);
/// Time between unanswered probes.
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(10);
/// Unanswered probes after which the kernel resets the connection.
const KEEPALIVE_PROBES: u32 = 6;
/// Sent data left unacknowledged this long also ends the connection
/// (TCP_USER_TIMEOUT), as long as keepalive would take to notice.
const USER_TIMEOUT: Duration = Duration::from_secs(120);

/// Copies both directions until both are done or the tunnel idles out;
/// bytes already buffered on either side are delivered first.
pub(super) async fn run(
    conn: &mut ClientConn,
    upstream: &mut TcpStream,
    idle_timeout: Duration,
    splicer: Option<&crate::l4::splice::ShardSplicer>,
) {
    // A tunnel may idle far longer than a request; the per-read timeouts
    // of requests give way to the tunnel's own idle timeout and keepalive,
    // so a WebSocket pinging every few minutes survives and a vanished
    // peer (a phone, a NAT that forgot the flow) does not hold its fds.
    if let Some(tcp) = conn.stream.tcp() {
        let _ = tcp.set_read_timeout(None);
        keep_alive(tcp);
    }
    let _ = upstream.set_read_timeout(None);
    keep_alive(upstream);
    if !conn.ubuf.is_empty() && conn.stream.write_all(conn.ubuf.data()).await.is_err() {
        return;
    }
    if !conn.rbuf.is_empty() && upstream.write_all(conn.rbuf.data()).await.is_err() {
        return;
    }
    conn.ubuf.clear();
    conn.rbuf.clear();
    if let (Some(splicer), ClientStream::Plain(client)) = (splicer, &mut conn.stream) {
        use std::os::fd::AsFd;
        match splicer.join(client.as_fd(), upstream.as_fd()) {
            Ok(joined) => {
                crate::l4::relay::spliced(client, upstream, &joined, idle_timeout).await;
                return;
            }
            Err(e) if e.can_fall_back() => {
                tracing::debug!(error = %e, "tunnel splice refused; copying in user space");
            }
            Err(_) => return,
        }
    }
    let last_activity = Cell::new(Instant::now());
    let (client_r, mut client_w) = io::split(&mut conn.stream);
    let (upstream_r, mut upstream_w) = io::split(upstream);
    let (rbuf, ubuf) = (&mut conn.rbuf, &mut conn.ubuf);
    let up = async {
        let _ = copy(client_r, rbuf, &mut upstream_w, &last_activity).await;
        let _ = upstream_w.close().await;
    };
    let down = async {
        let _ = copy(upstream_r, ubuf, &mut client_w, &last_activity).await;
        let _ = client_w.close().await;
    };
    let idle = async {
        loop {
            let quiet = last_activity.get().elapsed();
            if quiet >= idle_timeout {
                return;
            }
            rt::sleep(idle_timeout - quiet).await;
        }
    };
    future::or(future::zip(up, down), async {
        idle.await;
        tracing::debug!(idle = ?idle_timeout, "tunnel idle: closing");
        ((), ())
    })
    .await;
}

/// Copies `src` to `dst` through `buf` until `src` ends, noting each
/// transfer in `last_activity`.
async fn copy<R, W>(
    mut src: R,
    buf: &mut IoBuf,
    dst: &mut W,
    last_activity: &Cell<Instant>,
) -> std::io::Result<()>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    loop {
        buf.clear();
        if buf.fill(&mut src).await? == 0 {
            return Ok(());
        }
        last_activity.set(Instant::now());
        dst.write_all(buf.data()).await?;
        last_activity.set(Instant::now());
    }
}

/// Turns on TCP keepalive and the matching user timeout (best effort: a
/// socket that refuses keeps only the idle timeout).
fn keep_alive(stream: &TcpStream) {
    let sock = SockRef::from(stream);
    let probes = TcpKeepalive::new()
        .with_time(KEEPALIVE_IDLE)
        .with_interval(KEEPALIVE_INTERVAL)
        .with_retries(KEEPALIVE_PROBES);
    if let Err(e) = sock
        .set_tcp_keepalive(&probes)
        .and_then(|()| sock.set_tcp_user_timeout(Some(USER_TIMEOUT)))
    {
        tracing::debug!(error = %e, "tunnel: cannot set TCP keepalive");
    }
}
