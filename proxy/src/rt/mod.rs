//! The shard runtime: one single-threaded executor per pinned thread, with
//! an io_uring reactor, timers and TCP sockets. The rest of the proxy uses
//! only what this module exports.
//!
//! It replaces glommio (which DESIGN names): glommio's rings take every
//! poll completion as an IPI into the running shard and re-arm a poll after
//! each short read, which made rauta cost 1.5x nginx's CPU per request.

mod executor;
mod net;
mod reactor;
mod sync;
#[cfg(test)]
mod tests;
mod time;
mod wheel;

pub use async_task::Task;
pub use executor::{panics_total, spawn_local};
pub use net::{Doorbell, TcpListener, TcpStream, UdpSocket};
pub use reactor::{counters as ring_counters, RingCounters};
pub use sync::{Permit, Semaphore};
pub use time::{sleep, Deadline, Sleep};

use futures_lite::future;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::thread::JoinHandle;
use std::time::Duration;

/// Starts a thread pinned to `cpu` that runs `main` on a fresh executor.
/// Fails when the thread cannot be pinned or its io_uring not created.
pub fn spawn_pinned<F, Fut>(cpu: usize, name: &str, main: F) -> io::Result<JoinHandle<()>>
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = ()> + 'static,
{
    let (started_tx, started_rx) = std::sync::mpsc::sync_channel(1);
    let handle = std::thread::Builder::new()
        .name(name.to_string())
        .spawn(move || {
            let started = pin_to(cpu).and_then(|()| executor::install());
            let ok = started.is_ok();
            let _ = started_tx.send(started);
            if ok {
                executor::block_on(main());
            }
        })?;
    match started_rx.recv() {
        Ok(Ok(())) => Ok(handle),
        Ok(Err(e)) => Err(e),
        Err(_) => Err(io::Error::other("shard thread died while starting")),
    }
}

fn pin_to(cpu: usize) -> io::Result<()> {
    let mut set = nix::sched::CpuSet::new();
    set.set(cpu)
        .and_then(|()| nix::sched::sched_setaffinity(nix::unistd::Pid::from_raw(0), &set))
        .map_err(|e| io::Error::other(format!("pinning to CPU {cpu}: {e}")))
}

/// Hands a bound, listening socket to the current executor.
pub fn listener_from_socket(socket: socket2::Socket) -> io::Result<TcpListener> {
    TcpListener::from_socket(socket)
}

/// The other threads' end of a shard's [`Doorbell`]: rings it without
/// touching the shard's memory (an eventfd write).
#[derive(Debug, Clone)]
pub struct Bell(std::sync::Arc<nix::sys::eventfd::EventFd>);

impl Bell {
    /// Wakes the shard waiting on the doorbell (or makes its next wait
    /// return at once).
    pub fn ring(&self) {
        // Fails only if the counter would overflow: it is rung already.
        let _ = self.0.write(1);
    }
}

/// A doorbell not yet handed to its shard (it may cross threads); the
/// shard registers it with [`DoorbellFd::register`].
#[derive(Debug)]
pub struct DoorbellFd(std::os::fd::OwnedFd);

impl DoorbellFd {
    /// The shard's end, registered with the current executor.
    pub fn register(self) -> io::Result<Doorbell> {
        Doorbell::register(self.0)
    }
}

/// A new doorbell: the bell for other threads, the end for a shard.
pub fn doorbell() -> io::Result<(Bell, DoorbellFd)> {
    use nix::sys::eventfd::{EfdFlags, EventFd};
    let efd = EventFd::from_flags(EfdFlags::EFD_NONBLOCK | EfdFlags::EFD_CLOEXEC)?;
    let shard_end = std::os::fd::AsFd::as_fd(&efd).try_clone_to_owned()?;
    Ok((Bell(std::sync::Arc::new(efd)), DoorbellFd(shard_end)))
}

/// Hands a bound UDP socket to the current executor.
pub fn udp_from_socket(socket: socket2::Socket) -> io::Result<UdpSocket> {
    UdpSocket::from_socket(socket)
}

/// A UDP socket on the current executor connected to `peer`.
pub fn udp_connect(peer: SocketAddr) -> io::Result<UdpSocket> {
    UdpSocket::connect(peer)
}

/// Connects with a deadline.
pub async fn connect(addr: SocketAddr, timeout: Duration) -> io::Result<TcpStream> {
    TcpStream::connect_timeout(addr, timeout).await
}

/// True when an idle pooled connection was closed (or sent unexpected
/// bytes) while it sat in the pool; one non-blocking peek, no await.
pub fn idle_is_dead(stream: &TcpStream) -> bool {
    // 0: peer closed; >0: stray bytes; WouldBlock is the healthy case.
    !matches!(stream.peek_nonblocking(), Err(e) if e.kind() == io::ErrorKind::WouldBlock)
}

/// Runs `fut` for at most `d`; `None` when the time ran out.
pub async fn timeout<T>(d: Duration, fut: impl Future<Output = T>) -> Option<T> {
    future::or(async { Some(fut.await) }, async {
        sleep(d).await;
        None
    })
    .await
}
