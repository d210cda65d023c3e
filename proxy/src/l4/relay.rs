//! The user-space relay of an established L4 flow: bytes copied both ways
//! until each side has closed its half, the flow idles out, or a side
//! fails (then the other side is reset, so neither peer waits for data
//! that will never come).

use crate::rt::{self, TcpStream};
use futures_lite::{future, AsyncRead, AsyncWrite};
use socket2::SockRef;
use std::cell::Cell;
use std::future::poll_fn;
use std::pin::Pin;
use std::task::{Context, Poll};
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

impl Relayed {
    /// A flow that failed before a byte was relayed.
    pub fn reset() -> Relayed {
        Relayed {
            bytes_in: 0,
            bytes_out: 0,
            copied: 0,
            end: End::Reset,
        }
    }

    /// Adds what the flow moved, and an idle end, to its service's counters.
    pub fn record(&self, c: &mut crate::metrics::l4::L4Counters) {
        c.bytes_in += self.bytes_in;
        c.bytes_out += self.bytes_out;
        c.copied += self.copied;
        c.idle_timeouts += u64::from(self.end == End::Idle);
    }
}

/// Copies `client` <-> `upstream` until the flow ends; a half-close is
/// passed on as a half-close. One future drives both directions (no split
/// halves, no lock), over two buffers from the shard's pool.
pub async fn copy_both(
    client: &mut TcpStream,
    upstream: &mut TcpStream,
    idle: Duration,
) -> Relayed {
    let _ = client.set_read_timeout(None);
    let _ = upstream.set_read_timeout(None);
    let last_activity = Cell::new(Instant::now());
    // A backend just connected has rarely spoken yet: its first read waits
    // for readiness instead of trying (no EAGAIN syscall); one that speaks
    // first ends the wait at once.
    upstream.expect_read_wait();
    let mut up = Direction::new();
    let mut down = Direction::new();
    let moved = poll_fn(|cx| loop {
        let a = match up.step(cx, client, upstream, &last_activity) {
            Poll::Ready(Ok(progress)) => progress,
            Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
            Poll::Pending => false,
        };
        let b = match down.step(cx, upstream, client, &last_activity) {
            Poll::Ready(Ok(progress)) => progress,
            Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
            Poll::Pending => false,
        };
        if up.done && down.done {
            return Poll::Ready(Ok(()));
        }
        if !a && !b {
            return Poll::Pending;
        }
    });
    let end = future::or(
        async {
            match moved.await {
                Ok(()) => End::Closed,
                Err(_) => End::Reset,
            }
        },
        async {
            idle_wait(&last_activity, idle).await;
            End::Idle
        },
    )
    .await;
    if end == End::Reset {
        reset_on_close(&SockRef::from(&*client));
        reset_on_close(&SockRef::from(&*upstream));
    }
    Relayed {
        bytes_in: up.bytes,
        bytes_out: down.bytes,
        copied: up.bytes + down.bytes,
        end,
    }
}

/// One direction of a user-space relay: bytes read and not yet written.
struct Direction {
    buf: Buffer,
    start: usize,
    end: usize,
    eof: bool,
    done: bool,
    bytes: u64,
}

impl Direction {
    fn new() -> Direction {
        Direction {
            buf: Buffer::take(),
            start: 0,
            end: 0,
            eof: false,
            done: false,
            bytes: 0,
        }
    }

    /// Moves what it can from `src` to `dst` without waiting: `Ok(true)`
    /// when something happened (the caller steps again), `Ok(false)` when
    /// it waits for a socket (its waker is registered).
    fn step(
        &mut self,
        cx: &mut Context<'_>,
        src: &mut TcpStream,
        dst: &mut TcpStream,
        last_activity: &Cell<Instant>,
    ) -> Poll<std::io::Result<bool>> {
        if self.done {
            return Poll::Ready(Ok(false));
        }
        if self.start < self.end {
            let data = &self.buf.0[self.start..self.end];
            return match Pin::new(dst).poll_write(cx, data) {
                Poll::Ready(Ok(0)) => Poll::Ready(Err(std::io::ErrorKind::WriteZero.into())),
                Poll::Ready(Ok(n)) => {
                    self.start += n;
                    self.bytes += n as u64;
                    last_activity.set(Instant::now());
                    Poll::Ready(Ok(true))
                }
                Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
                Poll::Pending => Poll::Ready(Ok(false)),
            };
        }
        if self.eof {
            // Everything read is written: pass the half-close on.
            self.done = true;
            return match Pin::new(dst).poll_close(cx) {
                Poll::Ready(Err(e)) if e.kind() != std::io::ErrorKind::NotConnected => {
                    Poll::Ready(Err(e))
                }
                _ => Poll::Ready(Ok(true)),
            };
        }
        match Pin::new(src).poll_read(cx, &mut self.buf.0) {
            Poll::Ready(Ok(0)) => {
                self.eof = true;
                Poll::Ready(Ok(true))
            }
            Poll::Ready(Ok(n)) => {
                (self.start, self.end) = (0, n);
                last_activity.set(Instant::now());
                Poll::Ready(Ok(true))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => Poll::Ready(Ok(false)),
        }
    }
}

/// A relay buffer, taken from and given back to this thread's pool, so a
/// connection costs no allocation and no zeroing in the steady state.
struct Buffer(Box<[u8]>);

/// Most idle buffers a shard keeps (4 MiB).
const POOLED: usize = 256;

thread_local! {
    static POOL: std::cell::RefCell<Vec<Box<[u8]>>> = const { std::cell::RefCell::new(Vec::new()) };
}

impl Buffer {
    fn take() -> Buffer {
        let pooled = POOL.with(|p| p.borrow_mut().pop());
        Buffer(pooled.unwrap_or_else(|| vec![0u8; CHUNK].into_boxed_slice()))
    }
}

impl Drop for Buffer {
    fn drop(&mut self) {
        let buf = std::mem::take(&mut self.0);
        POOL.with(|p| {
            let mut pool = p.borrow_mut();
            if pool.len() < POOLED {
                pool.push(buf);
            }
        });
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
