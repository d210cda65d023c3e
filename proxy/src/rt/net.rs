//! TCP sockets on the shard's reactor: non-blocking syscalls first, a
//! readiness wait on the ring only when the kernel says `EAGAIN`.

use super::executor::{take_budget, with_reactor};
use super::reactor::{Dir, SourceKey};
use super::time::Deadline;
use futures_lite::{AsyncRead, AsyncWrite};
use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use std::cell::Cell;
use std::future::poll_fn;
use std::io::{self, Read, Write};
use std::marker::PhantomData;
use std::net::{Shutdown, SocketAddr};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

/// A non-blocking socket registered with the reactor.
#[derive(Debug)]
struct Registered {
    sock: Socket,
    key: SourceKey,
    /// The key indexes this thread's reactor: the socket must not move to
    /// another thread (`!Send`, `!Sync`).
    _local: PhantomData<*const ()>,
}

impl Registered {
    /// Registers a socket that is already non-blocking.
    fn new(sock: Socket) -> io::Result<Registered> {
        let key = with_reactor(|r| r.register())
            .ok_or_else(|| io::Error::other("socket used outside a shard executor"))??;
        Ok(Registered {
            sock,
            key,
            _local: PhantomData,
        })
    }

    /// Takes one unit of the task's I/O budget; when it is spent, wakes
    /// the task so it yields (before the syscall, so nothing read is held
    /// back) and returns false.
    fn budget(cx: &Context<'_>) -> bool {
        if take_budget() {
            return true;
        }
        cx.waker().wake_by_ref();
        false
    }

    /// Runs `op` unless a wait is already pending; on `EAGAIN` arms a
    /// wait and returns `None`. The caller has taken the I/O budget.
    fn poll_op<T>(
        &self,
        dir: Dir,
        cx: &Context<'_>,
        try_first: bool,
        mut op: impl FnMut(&Socket) -> io::Result<T>,
    ) -> Option<io::Result<T>> {
        let fd = self.sock.as_raw_fd();
        let waiting = with_reactor(|r| r.is_waiting(self.key, dir)).unwrap_or(false);
        if try_first && !waiting {
            loop {
                match op(&self.sock) {
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    done => return Some(done),
                }
            }
        }
        with_reactor(|r| r.wait_ready(self.key, fd, dir, cx.waker()));
        None
    }
}

impl Drop for Registered {
    fn drop(&mut self) {
        with_reactor(|r| r.deregister(self.key));
    }
}

/// The shard's end of a doorbell: an eventfd another thread writes to
/// ([`super::Bell`]), waited on like a socket.
#[derive(Debug)]
pub struct Doorbell {
    inner: Registered,
}

impl Doorbell {
    /// Registers the eventfd with this shard's reactor.
    pub(super) fn register(fd: std::os::fd::OwnedFd) -> io::Result<Doorbell> {
        Ok(Doorbell {
            inner: Registered::new(Socket::from(fd))?,
        })
    }

    /// Waits until the bell was rung since the last wait returned (rings
    /// in between count once).
    pub async fn rung(&self) -> io::Result<()> {
        let mut count = [0u8; 8];
        poll_fn(|cx| {
            let read = |s: &Socket| nix::unistd::read(s, &mut count).map_err(io::Error::from);
            match self.inner.poll_op(Dir::Read, cx, true, read) {
                Some(r) => Poll::Ready(r.map(|_| ())),
                None => Poll::Pending,
            }
        })
        .await
    }
}

/// A listening socket owned by one shard.
#[derive(Debug)]
pub struct TcpListener {
    inner: Registered,
}

impl TcpListener {
    /// Takes over a bound, listening socket (made non-blocking here).
    pub(super) fn from_socket(sock: Socket) -> io::Result<TcpListener> {
        sock.set_nonblocking(true)?;
        Ok(TcpListener {
            inner: Registered::new(sock)?,
        })
    }

    /// Accepts the next connection.
    pub async fn accept(&self) -> io::Result<TcpStream> {
        let flags = libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC;
        let (sock, addr) = poll_fn(|cx| {
            if !Registered::budget(cx) {
                return Poll::Pending;
            }
            match self
                .inner
                .poll_op(Dir::Read, cx, true, |s| s.accept4(flags))
            {
                Some(r) => Poll::Ready(r),
                None => Poll::Pending,
            }
        })
        .await?;
        let mut stream = TcpStream::new(sock)?;
        stream.peer = addr.as_socket();
        Ok(stream)
    }
}

/// A UDP socket owned by one shard (bound; optionally connected).
#[derive(Debug)]
pub struct UdpSocket {
    inner: Registered,
}

impl UdpSocket {
    /// Takes over a bound socket (made non-blocking here).
    pub(super) fn from_socket(sock: Socket) -> io::Result<UdpSocket> {
        sock.set_nonblocking(true)?;
        Ok(UdpSocket {
            inner: Registered::new(sock)?,
        })
    }

    /// A new socket connected to `peer` (an ephemeral local port).
    pub(super) fn connect(peer: SocketAddr) -> io::Result<UdpSocket> {
        let ty = Type::DGRAM.nonblocking().cloexec();
        let sock = Socket::new(Domain::for_address(peer), ty, Some(Protocol::UDP))?;
        sock.connect(&SockAddr::from(peer))?;
        UdpSocket::from_socket(sock)
    }

    /// Receives one datagram and its sender.
    pub async fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        poll_fn(|cx| {
            if !Registered::budget(cx) {
                return Poll::Pending;
            }
            let op = |s: &Socket| {
                use nix::sys::socket::{recvfrom, SockaddrStorage};
                let (n, from) = recvfrom::<SockaddrStorage>(s.as_raw_fd(), buf)?;
                let from = from
                    .and_then(|a| match (a.as_sockaddr_in(), a.as_sockaddr_in6()) {
                        (Some(v4), _) => Some(SocketAddr::V4((*v4).into())),
                        (_, Some(v6)) => Some(SocketAddr::V6((*v6).into())),
                        _ => None,
                    })
                    .ok_or_else(|| io::Error::other("datagram without an IP sender"))?;
                Ok((n, from))
            };
            match self.inner.poll_op(Dir::Read, cx, true, op) {
                Some(r) => Poll::Ready(r),
                None => Poll::Pending,
            }
        })
        .await
    }

    /// Receives one datagram on a connected socket.
    pub async fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        poll_fn(|cx| {
            if !Registered::budget(cx) {
                return Poll::Pending;
            }
            let op = |s: &Socket| {
                use nix::sys::socket::{recv, MsgFlags};
                recv(s.as_raw_fd(), buf, MsgFlags::empty()).map_err(io::Error::from)
            };
            match self.inner.poll_op(Dir::Read, cx, true, op) {
                Some(r) => Poll::Ready(r),
                None => Poll::Pending,
            }
        })
        .await
    }

    /// Sends one datagram without waiting: a full socket buffer drops it
    /// (`WouldBlock`), as a router would, instead of queueing.
    pub fn try_send_to(&self, buf: &[u8], to: SocketAddr) -> io::Result<usize> {
        self.inner.sock.send_to(buf, &SockAddr::from(to))
    }

    /// Sends one datagram on a connected socket without waiting.
    pub fn try_send(&self, buf: &[u8]) -> io::Result<usize> {
        self.inner.sock.send(buf)
    }
}

/// A connected TCP stream with optional read and write timeouts (an
/// operation that waits longer fails with `TimedOut`).
///
/// A timeout is kept per direction: its clock starts when an operation in
/// that direction first has to wait, and stops when one completes or times
/// out. An operation abandoned while waiting (its future dropped, say by
/// [`crate::rt::timeout`]) leaves the clock running, so the next operation
/// in that direction inherits the time already spent; call
/// [`TcpStream::reset_deadlines`] to start afresh.
///
/// Bound to the shard thread that created it (`!Send`).
#[derive(Debug)]
pub struct TcpStream {
    inner: Registered,
    read_timeout: Cell<Option<Duration>>,
    write_timeout: Cell<Option<Duration>>,
    deadlines: [Option<Deadline>; 2],
    /// Per direction: the next operation waits for readiness before it
    /// tries (a read: [`TcpStream::expect_read_wait`]; a write: connect).
    wait_first: [bool; 2],
    /// The remote address, when known without a syscall.
    peer: Option<SocketAddr>,
}

impl TcpStream {
    fn new(sock: Socket) -> io::Result<TcpStream> {
        Ok(TcpStream {
            inner: Registered::new(sock)?,
            read_timeout: Cell::new(None),
            write_timeout: Cell::new(None),
            deadlines: [None, None],
            wait_first: [false; 2],
            peer: None,
        })
    }

    /// Connects to `addr`, giving up after `timeout`.
    pub(super) async fn connect_timeout(
        addr: SocketAddr,
        timeout: Duration,
    ) -> io::Result<TcpStream> {
        let ty = Type::STREAM.nonblocking().cloexec();
        let sock = Socket::new(Domain::for_address(addr), ty, Some(Protocol::TCP))?;
        let mut stream = TcpStream::new(sock)?;
        match stream.inner.sock.connect(&SockAddr::from(addr)) {
            Ok(()) => return Ok(stream),
            Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {}
            Err(e) => return Err(e),
        }
        // Writable means connected or failed; SO_ERROR says which. The
        // connect is the stream's first write wait, bounded by `timeout`.
        stream.wait_first[Dir::Write as usize] = true;
        stream.write_timeout.set(Some(timeout));
        let connected = poll_fn(|cx| {
            stream.poll_io(Dir::Write, cx, |s| match s.take_error()? {
                Some(e) => Err(e),
                None => Ok(()),
            })
        })
        .await;
        stream.write_timeout.set(None);
        match connected {
            Ok(()) => Ok(stream),
            Err(e) if e.kind() == io::ErrorKind::TimedOut => {
                Err(io::Error::new(io::ErrorKind::TimedOut, "connect timed out"))
            }
            Err(e) => Err(e),
        }
    }

    /// The remote address.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        if let Some(peer) = self.peer {
            return Ok(peer);
        }
        self.inner
            .sock
            .peer_addr()?
            .as_socket()
            .ok_or_else(|| io::Error::other("peer is not an IP socket"))
    }

    /// Sets TCP_NODELAY.
    pub fn set_nodelay(&self, on: bool) -> io::Result<()> {
        self.inner.sock.set_tcp_nodelay(on)
    }

    /// Limits how long one read may wait; `None` waits forever.
    pub fn set_read_timeout(&self, d: Option<Duration>) -> io::Result<()> {
        self.read_timeout.set(d);
        Ok(())
    }

    /// Limits how long one write may wait; `None` waits forever.
    pub fn set_write_timeout(&self, d: Option<Duration>) -> io::Result<()> {
        self.write_timeout.set(d);
        Ok(())
    }

    /// Shuts down one or both halves.
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.inner.sock.shutdown(how)
    }

    /// A non-blocking peek at the next byte: `Ok(0)` when the peer closed,
    /// `WouldBlock` when nothing is there.
    pub fn peek_nonblocking(&self) -> io::Result<usize> {
        let mut byte = [std::mem::MaybeUninit::<u8>::uninit()];
        self.inner
            .sock
            .recv_with_flags(&mut byte, libc::MSG_PEEK | libc::MSG_DONTWAIT)
    }

    /// Waits until bytes, the end of the stream or an error can be read,
    /// and copies what is there into `buf` without consuming it: `Ok(0)`
    /// when the peer closed its half. Bound by the read timeout.
    pub async fn peek(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        poll_fn(|cx| {
            self.poll_io(Dir::Read, cx, |s| {
                use nix::sys::socket::{recv, MsgFlags};
                recv(s.as_raw_fd(), buf, MsgFlags::MSG_PEEK).map_err(io::Error::from)
            })
        })
        .await
    }

    /// The local address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner
            .sock
            .local_addr()?
            .as_socket()
            .ok_or_else(|| io::Error::other("socket is not an IP socket"))
    }

    /// Forgets the time already spent waiting by abandoned operations, so
    /// the next operation in each direction gets its full timeout.
    pub fn reset_deadlines(&mut self) {
        self.deadlines = [None, None];
    }

    /// Says that the peer cannot have answered yet (a request was just
    /// sent), so the next read starts by waiting instead of by a syscall
    /// that would say `EAGAIN`. The wait ends at once if data is there.
    pub fn expect_read_wait(&mut self) {
        self.wait_first[Dir::Read as usize] = true;
    }

    fn poll_io<T>(
        &mut self,
        dir: Dir,
        cx: &mut Context<'_>,
        op: impl FnMut(&Socket) -> io::Result<T>,
    ) -> Poll<io::Result<T>> {
        if !Registered::budget(cx) {
            return Poll::Pending;
        }
        let try_first = !std::mem::take(&mut self.wait_first[dir as usize]);
        if let Some(done) = self.inner.poll_op(dir, cx, try_first, op) {
            self.deadlines[dir as usize] = None;
            return Poll::Ready(done);
        }
        let timeout = match dir {
            Dir::Read => self.read_timeout.get(),
            Dir::Write => self.write_timeout.get(),
        };
        if let Some(t) = timeout {
            let deadline = self.deadlines[dir as usize].get_or_insert_with(|| Deadline::after(t));
            if deadline.poll_expired(cx) {
                self.deadlines[dir as usize] = None;
                return Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "socket operation timed out",
                )));
            }
        }
        Poll::Pending
    }
}

impl AsRawFd for TcpStream {
    fn as_raw_fd(&self) -> RawFd {
        self.inner.sock.as_raw_fd()
    }
}

impl AsFd for TcpStream {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.inner.sock.as_fd()
    }
}

impl AsyncRead for TcpStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        self.get_mut().poll_io(Dir::Read, cx, |mut s| s.read(buf))
    }
}

impl AsyncWrite for TcpStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.get_mut().poll_io(Dir::Write, cx, |mut s| s.write(buf))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.get_mut()
            .poll_io(Dir::Write, cx, |mut s| s.write_vectored(bufs))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_close(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(self.inner.sock.shutdown(Shutdown::Write))
    }
}
