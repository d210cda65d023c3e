//! The thin layer over glommio: executors pinned to CPUs, sockets handed
//! to them, timers. The rest of the proxy names glommio only through here.

use futures_lite::future;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

pub use glommio::net::{TcpListener, TcpStream};
pub use glommio::sync::Semaphore;
pub use glommio::{spawn_local, ExecutorJoinHandle};

/// Starts a single-threaded executor pinned to `cpu`, running `main`.
pub fn spawn_pinned<F, Fut>(cpu: usize, name: &str, main: F) -> io::Result<ExecutorJoinHandle<()>>
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = ()> + 'static,
{
    glommio::LocalExecutorBuilder::new(glommio::Placement::Fixed(cpu))
        .name(name)
        // Registered memory is only for glommio's file I/O, which rauta does
        // not use; keep it minimal so no memlock limit gets in the way.
        .io_memory(64 << 10)
        .spawn(main)
        .map_err(|e| io::Error::other(e.to_string()))
}

/// Hands a bound, listening socket to the current executor.
#[allow(unsafe_code)]
pub fn listener_from_socket(socket: socket2::Socket) -> TcpListener {
    use std::os::fd::{FromRawFd, IntoRawFd};
    let fd = socket.into_raw_fd();
    // SAFETY: `fd` was just released by an owned, listening TCP socket, so
    // it is valid and the listener becomes its only owner.
    unsafe { TcpListener::from_raw_fd(fd) }
}

/// Connects with a deadline.
pub async fn connect(addr: SocketAddr, timeout: Duration) -> io::Result<TcpStream> {
    TcpStream::connect_timeout(addr, timeout)
        .await
        .map_err(io::Error::from)
}

/// True when an idle pooled connection was closed (or sent unexpected
/// bytes) while it sat in the pool; one non-blocking peek, no await.
#[allow(unsafe_code)]
pub fn idle_is_dead(stream: &TcpStream) -> bool {
    use std::os::fd::AsRawFd;
    let mut byte = 0u8;
    // SAFETY: the fd belongs to `stream`, which outlives this call, and the
    // buffer is one valid byte on the stack.
    let n = unsafe {
        libc::recv(
            stream.as_raw_fd(),
            (&mut byte as *mut u8).cast(),
            1,
            libc::MSG_PEEK | libc::MSG_DONTWAIT,
        )
    };
    // 0: peer closed; >0: stray bytes; <0: EAGAIN is the healthy case.
    n >= 0 || io::Error::last_os_error().kind() != io::ErrorKind::WouldBlock
}

/// Sleeps on the executor's timer.
pub async fn sleep(d: Duration) {
    glommio::timer::sleep(d).await;
}

/// Runs `fut` for at most `d`; `None` when the time ran out.
pub async fn timeout<T>(d: Duration, fut: impl Future<Output = T>) -> Option<T> {
    future::or(async { Some(fut.await) }, async {
        sleep(d).await;
        None
    })
    .await
}
