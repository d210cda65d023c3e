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
    /// Of those, bytes user space read and wrote (all of them unless the
    /// kernel spliced the flow).
    pub copied: u64,
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
    let end = {
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
        future::or(ends(up, down), async {
            idle_wait(&last_activity, idle).await;
            End::Idle
        })
        .await
    };
    if end == End::Reset {
        reset_on_close(&SockRef::from(&*client));
        reset_on_close(&SockRef::from(&*upstream));
    }
    Relayed {
        bytes_in: bytes_in.get(),
        bytes_out: bytes_out.get(),
        copied: bytes_in.get() + bytes_out.get(),
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

/// How often a spliced flow's unflushed bytes are looked at before its
/// half-close is passed on (no event marks the kernel's queue emptying).
const FLUSH_POLL: Duration = Duration::from_millis(1);
/// Longest wait for the kernel to hand a direction's last bytes over.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(5);

/// Watches a flow the kernel relays (`joined`): passes each half-close on
/// once that direction's bytes are through, resets both sides when one
/// fails, and ends the flow when neither moved a byte for `idle`. User
/// space reads no payload: after the join a socket is readable only at its
/// end or on an error.
pub async fn spliced(
    client: &mut TcpStream,
    upstream: &mut TcpStream,
    joined: &super::splice::Joined,
    idle: Duration,
) -> Relayed {
    use std::os::fd::AsFd;
    let _ = client.set_read_timeout(None);
    let _ = upstream.set_read_timeout(None);
    let (mut up_open, mut down_open) = (true, true);
    let mut last_bytes = (0, 0);
    let mut last_change = Instant::now();
    let end = loop {
        if !up_open && !down_open {
            break End::Closed;
        }
        let (mut b1, mut b2) = ([0u8; 1], [0u8; 1]);
        let event = future::or(
            future::or(
                async {
                    if !up_open {
                        future::pending::<()>().await;
                    }
                    (true, client.peek(&mut b1).await)
                },
                async {
                    if !down_open {
                        future::pending::<()>().await;
                    }
                    (false, upstream.peek(&mut b2).await)
                },
            ),
            async {
                rt::sleep(idle.saturating_sub(last_change.elapsed())).await;
                (true, Err(std::io::ErrorKind::WouldBlock.into()))
            },
        )
        .await;
        match event {
            (from_client, Ok(0)) => {
                // One direction ended: its last bytes may still sit in the
                // kernel's queue; the FIN must not overtake them.
                let deadline = Instant::now() + FLUSH_TIMEOUT;
                loop {
                    let left = joined.unflushed(client.as_fd(), upstream.as_fd());
                    let pending = match left {
                        Ok((ab, ba)) => {
                            if from_client {
                                ab
                            } else {
                                ba
                            }
                        }
                        Err(_) => 0,
                    };
                    if pending == 0 || Instant::now() >= deadline {
                        break;
                    }
                    rt::sleep(FLUSH_POLL).await;
                }
                if from_client {
                    let _ = upstream.shutdown(std::net::Shutdown::Write);
                    up_open = false;
                } else {
                    let _ = client.shutdown(std::net::Shutdown::Write);
                    down_open = false;
                }
            }
            (_, Err(e)) if e.kind() == std::io::ErrorKind::WouldBlock => {
                let now = joined.bytes().unwrap_or(last_bytes);
                if now != last_bytes {
                    last_bytes = now;
                    last_change = Instant::now();
                } else if last_change.elapsed() >= idle {
                    break End::Idle;
                }
            }
            (_, Err(_)) => {
                for s in [&*client, &*upstream] {
                    reset_on_close(&SockRef::from(s));
                }
                break End::Reset;
            }
            // Bytes for user space: the peer left the maps (it closed).
            (_, Ok(_)) => break End::Closed,
        }
    };
    let (ab, ba) = joined.bytes().unwrap_or(last_bytes);
    let (qa, qb) = joined.moved_at_join();
    Relayed {
        bytes_in: ab + qa,
        bytes_out: ba + qb,
        copied: qa + qb,
        end,
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
pub fn reset_on_close(socket: &SockRef<'_>) {
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
