//! The user-space relay of an established L4 flow: bytes copied both ways
//! until each side has closed its half, the flow idles out, or a side
//! fails (then the other side is reset, so neither peer waits for data
//! that will never come).

use crate::rt::{self, TcpStream};
use futures_lite::{future, io, AsyncReadExt, AsyncWriteExt};
use socket2::SockRef;
use std::cell::Cell;
use std::pin::{pin, Pin};
use std::time::{Duration, Instant};

/// Bytes copied per read.
const CHUNK: usize = 16 * 1024;

/// How a relayed flow ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// Both sides closed their halves.
    Closed,
    /// No bytes either way for the idle timeout.
    Idle,
    /// A side reset or failed; the other was reset too.
    Reset,
}

/// What a relay did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Relayed {
    /// Bytes from the client to the backend.
    pub bytes_in: u64,
    /// Bytes from the backend to the client.
    pub bytes_out: u64,
    /// How it ended.
    pub end: End,
}

/// Copies `client` <-> `upstream` until the flow ends; a half-close is
/// passed on as a half-close.
pub async fn copy_both(
    client: &mut TcpStream,
    upstream: &mut TcpStream,
    idle: Duration,
) -> Relayed {
    let _ = client.set_read_timeout(None);
    let _ = upstream.set_read_timeout(None);
    let last_activity = Cell::new(Instant::now());
    let (bytes_in, bytes_out) = (Cell::new(0u64), Cell::new(0u64));
    let client_fd = SockRef::from(&*client).try_clone().ok();
    let upstream_fd = SockRef::from(&*upstream).try_clone().ok();
    let (client_r, mut client_w) = io::split(&mut *client);
    let (upstream_r, mut upstream_w) = io::split(&mut *upstream);
    let up = pin!(async {
        copy(client_r, &mut upstream_w, &last_activity, &bytes_in).await?;
        upstream_w.close().await
    });
    let down = pin!(async {
        copy(upstream_r, &mut client_w, &last_activity, &bytes_out).await?;
        client_w.close().await
    });
    let both = ends(up, down);
    let end = future::or(both, async {
        idle_wait(&last_activity, idle).await;
        End::Idle
    })
    .await;
    if end == End::Reset {
        for fd in [&client_fd, &upstream_fd].into_iter().flatten() {
            reset_on_close(fd);
        }
    }
    Relayed {
        bytes_in: bytes_in.get(),
        bytes_out: bytes_out.get(),
        end,
    }
}

/// Waits for both directions; the first failure ends the flow at once.
async fn ends<A, B>(mut up: Pin<&mut A>, mut down: Pin<&mut B>) -> End
where
    A: std::future::Future<Output = std::io::Result<()>>,
    B: std::future::Future<Output = std::io::Result<()>>,
{
    let first = future::or(async { (true, up.as_mut().await) }, async {
        (false, down.as_mut().await)
    })
    .await;
    let rest = match first {
        (_, Err(_)) => return End::Reset,
        (true, Ok(())) => down.as_mut().await,
        (false, Ok(())) => up.as_mut().await,
    };
    match rest {
        Ok(()) => End::Closed,
        Err(_) => End::Reset,
    }
}

/// Returns once nothing moved for `idle`.
pub async fn idle_wait(last_activity: &Cell<Instant>, idle: Duration) {
    loop {
        let quiet = last_activity.get().elapsed();
        if quiet >= idle {
            return;
        }
        rt::sleep(idle - quiet).await;
    }
}

/// Makes the socket's close send a reset (SO_LINGER 0).
pub fn reset_on_close(socket: &socket2::Socket) {
    let _ = socket.set_linger(Some(Duration::ZERO));
}

async fn copy<R, W>(
    mut src: R,
    dst: &mut W,
    last_activity: &Cell<Instant>,
    count: &Cell<u64>,
) -> std::io::Result<()>
where
    R: futures_lite::AsyncRead + Unpin,
    W: futures_lite::AsyncWrite + Unpin,
{
    let mut buf = vec![0u8; CHUNK];
    loop {
        let n = src.read(&mut buf).await?;
        if n == 0 {
            return Ok(());
        }
        last_activity.set(Instant::now());
        dst.write_all(&buf[..n]).await?;
        count.set(count.get() + n as u64);
        last_activity.set(Instant::now());
    }
}
