//! Handing `xdp_ingress` over between rauta processes on the same
//! interface. A DaemonSet rolling with maxSurge 1 starts the new pod while
//! the old one still holds the interface, so the new one's attach gets
//! EBUSY.
//!
//! - Each holder serves its bpf_links on an abstract unix socket
//!   ([`SOCKET`]; abstract names belong to the network namespace, which
//!   hostNetwork pods share and test namespaces separate). The new process
//!   asks for the link of an interface ([`request`]), receives the
//!   descriptor (SCM_RIGHTS, root peers only) and swaps its own program in
//!   with one `BPF_LINK_UPDATE`: the interface is never without the
//!   filter, and no capability beyond CAP_BPF and CAP_NET_ADMIN is needed.
//!   The link then lives while either process holds it.
//! - A holder that serves no socket (a rauta from before this, or another
//!   product) is identified by its program's name where CAP_SYS_ADMIN
//!   allows. Another product's program is never replaced. Otherwise the
//!   new process waits ([`Waiter`]): it tries to attach every 10 ms and
//!   succeeds as soon as the holder has let go.

use super::worker::Worker;
use rauta_shared::ebpf as abi;
use std::io::{self, Read};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Why the interface could not be taken over.
#[derive(Debug, thiserror::Error)]
pub enum TakeoverError {
    /// Not rauta's program: never replaced.
    #[error("another XDP program is already attached there (program {id}, {name:?}) (EBUSY)")]
    Foreign {
        /// Kernel program id.
        id: u32,
        /// Its name.
        name: String,
    },
    /// Held by a program that serves no handover: a rauta from before the
    /// handover socket, or one this process cannot identify without
    /// CAP_SYS_ADMIN. Worth waiting for.
    #[error("{} holds the XDP hook and hands nothing over: a rauta from before the handover, or a program this process cannot identify without CAP_SYS_ADMIN (EBUSY)", .id.map_or("another program".to_string(), |id| format!("program {id}")))]
    Held {
        /// Kernel program id, when rtnetlink said.
        id: Option<u32>,
    },
}

impl TakeoverError {
    /// Whether the holder may let go by itself (a rauta pod draining), so
    /// that waiting for the interface is worth it.
    pub fn worth_waiting(&self) -> bool {
        matches!(self, TakeoverError::Held { .. })
    }
}

/// What holds the XDP hook of an interface.
#[derive(Debug, PartialEq, Eq)]
pub enum Holder {
    /// Nothing (the holder went away since the attach failed).
    Nobody,
    /// Program `id`.
    Program(u32),
}

/// Who the `holder` program of an interface is ([`holder`]; `None`:
/// unknown), when nobody handed its link over: another
/// product's program (never replaced), or someone worth waiting for.
pub fn identify(holder: Option<u32>) -> TakeoverError {
    let Some(id) = holder else {
        return TakeoverError::Held { id: None };
    };
    for p in aya::programs::loaded_programs() {
        match p {
            Ok(p) if p.id() == id => {
                let name = p.name_as_str().unwrap_or("").to_string();
                if name == abi::PROG_XDP_INGRESS {
                    break;
                }
                return TakeoverError::Foreign { id, name };
            }
            Ok(_) => {}
            // Listing programs needs CAP_SYS_ADMIN: the holder stays unknown.
            Err(_) => break,
        }
    }
    TakeoverError::Held { id: Some(id) }
}

/// Swaps `ours` into the bpf_link `link` (received from its holder).
pub fn take_link(link: &OwnedFd, ours: BorrowedFd<'_>) -> io::Result<()> {
    bpf::link_update(link.as_fd(), ours)
}

/// A new XDP bpf_link of `prog` on `ifindex` (flags 0: driver mode where
/// the driver has it), or the kernel's error (EBUSY: held).
pub fn link_create(ifindex: u32, prog: BorrowedFd<'_>) -> io::Result<OwnedFd> {
    bpf::link_create(ifindex, prog)
}

/// The XDP program on `ifindex` in this network namespace (rtnetlink
/// `IFLA_XDP_PROG_ID`; bpf_link info carries no namespace, so an ifindex
/// alone could name another namespace's interface).
pub fn holder(ifindex: u32) -> io::Result<Holder> {
    use netlink_packet_core::{NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_REQUEST};
    use netlink_packet_route::link::{LinkAttribute, LinkMessage, LinkXdp};
    use netlink_packet_route::RouteNetlinkMessage;
    use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};

    let mut socket = Socket::new(NETLINK_ROUTE)?;
    socket.bind_auto()?;
    socket.connect(&SocketAddr::new(0, 0))?;
    let mut request = LinkMessage::default();
    request.header.index = ifindex;
    let mut packet = NetlinkMessage::new(
        NetlinkHeader::default(),
        NetlinkPayload::from(RouteNetlinkMessage::GetLink(request)),
    );
    packet.header.flags = NLM_F_REQUEST;
    packet.header.sequence_number = 1;
    packet.finalize();
    let mut buf = vec![0; packet.buffer_len()];
    packet.serialize(&mut buf);
    socket.send(&buf, 0)?;
    let mut answer = vec![0u8; 64 * 1024];
    let n = socket.recv(&mut &mut answer[..], 0)?;
    let reply: NetlinkMessage<RouteNetlinkMessage> =
        NetlinkMessage::deserialize(&answer[..n]).map_err(io::Error::other)?;
    match reply.payload {
        NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewLink(link)) => {
            let id = link
                .attributes
                .into_iter()
                .filter_map(|a| match a {
                    LinkAttribute::Xdp(xdp) => Some(xdp),
                    _ => None,
                })
                .flatten()
                .find_map(|x| match x {
                    LinkXdp::ProgId(id) => Some(id),
                    _ => None,
                });
            Ok(id
                .filter(|id| *id != 0)
                .map_or(Holder::Nobody, Holder::Program))
        }
        NetlinkPayload::Error(e) => Err(e.to_io()),
        other => Err(io::Error::other(format!(
            "unexpected rtnetlink answer: {other:?}"
        ))),
    }
}

/// The abstract unix socket name a holder serves its links on.
pub const SOCKET: &str = "rauta-xdp-handover";
/// How long a request or an answer may take.
const EXCHANGE_TIMEOUT: Duration = Duration::from_secs(2);
/// How often a [`Server`] tries to bind [`SOCKET`] while another process
/// still serves it, and checks for connections.
const SERVER_POLL: Duration = Duration::from_millis(20);

/// Asks whoever serves [`SOCKET`] for its bpf_link on `iface`, runs
/// `take` on it (the program swap), and tells the server whether that
/// worked: only then does the server let go of its own descriptor, so a
/// failed swap never leaves the link without a holder. `Ok(None)`: nobody
/// serves, or the server holds no link there.
pub fn request(
    iface: &str,
    take: impl FnOnce(&OwnedFd) -> io::Result<()>,
) -> io::Result<Option<OwnedFd>> {
    use std::io::Write;
    use std::os::linux::net::SocketAddrExt;
    let addr = std::os::unix::net::SocketAddr::from_abstract_name(SOCKET)?;
    let mut stream = match UnixStream::connect_addr(&addr) {
        Ok(s) => s,
        Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => return Ok(None),
        Err(e) => return Err(e),
    };
    stream.set_read_timeout(Some(EXCHANGE_TIMEOUT))?;
    stream.set_write_timeout(Some(EXCHANGE_TIMEOUT))?;
    stream.write_all(format!("{iface}\n").as_bytes())?;
    let (answer, fd) = sys::recv_fd(stream.as_fd())?;
    let Some(link) = fd.filter(|_| answer == b'1') else {
        return Ok(None);
    };
    let taken = take(&link);
    stream.write_all(if taken.is_ok() { b"1" } else { b"0" })?;
    taken.map(|()| Some(link))
}

/// What a [`Server`] hands out.
pub trait Links: Send + Sync + 'static {
    /// A duplicate of this process's link on `iface`, if it holds one.
    fn lend(&self, iface: &str) -> Option<OwnedFd>;
    /// The other process has swapped its program into the link on
    /// `iface`: forget ours.
    fn handed(&self, iface: &str);
    /// Whether this process still holds any link.
    fn holds_any(&self) -> bool;
}

/// Serves this process's links on [`SOCKET`] to the next rauta process,
/// binding the name as soon as the previous server has let it go. Stops
/// once it has handed every link over. Dropping it stops the thread.
#[derive(Debug)]
pub struct Server {
    _thread: Worker,
}

impl Server {
    /// Starts serving `links`.
    pub fn start(links: Arc<dyn Links>) -> io::Result<Server> {
        Worker::spawn("xdp-handover".into(), move |stop| serve(&*links, stop))
            .map(|w| Server { _thread: w })
    }
}

fn serve(links: &dyn Links, stop: &AtomicBool) {
    use std::os::linux::net::SocketAddrExt;
    let Ok(addr) = std::os::unix::net::SocketAddr::from_abstract_name(SOCKET) else {
        return;
    };
    let listener = loop {
        if stop.load(Ordering::Relaxed) {
            return;
        }
        match UnixListener::bind_addr(&addr) {
            Ok(l) => break l,
            // The previous holder still serves; it stops once it has
            // handed its links over.
            Err(e) if e.kind() == io::ErrorKind::AddrInUse => std::thread::sleep(SERVER_POLL),
            Err(e) => {
                tracing::warn!(error = %e, "eBPF: cannot serve the XDP handover socket; the next rauta process will wait for the interface instead");
                return;
            }
        }
    };
    if listener.set_nonblocking(true).is_err() {
        return;
    }
    let mut handed = 0usize;
    while !stop.load(Ordering::Relaxed) {
        match listener.accept() {
            Ok((stream, _)) => {
                if answer(links, stream) {
                    handed += 1;
                    if !links.holds_any() {
                        // Everything handed over: free the name for the
                        // process that took it.
                        tracing::info!(handed, "eBPF: every XDP link handed over; no longer serving the handover socket");
                        return;
                    }
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => std::thread::sleep(SERVER_POLL),
            Err(_) => std::thread::sleep(SERVER_POLL),
        }
    }
}

/// Answers one request; true when a link was handed over.
fn answer(links: &dyn Links, stream: UnixStream) -> bool {
    use std::io::BufRead;
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_read_timeout(Some(EXCHANGE_TIMEOUT));
    let _ = stream.set_write_timeout(Some(EXCHANGE_TIMEOUT));
    // Only a process of our own user (root, in the DaemonSet) gets a link.
    let ours = nix::sys::socket::getsockopt(&stream, nix::sys::socket::sockopt::PeerCredentials)
        .is_ok_and(|c| c.uid() == nix::unistd::geteuid().as_raw());
    let mut line = String::new();
    let mut reader = std::io::BufReader::new(stream.take(64));
    if !ours || reader.read_line(&mut line).is_err() {
        return false;
    }
    let mut stream = reader.into_inner().into_inner();
    let iface = line.trim();
    let Some(link) = links.lend(iface) else {
        let _ = sys::send_fd(stream.as_fd(), b'0', None);
        return false;
    };
    if let Err(e) = sys::send_fd(stream.as_fd(), b'1', Some(link.as_fd())) {
        tracing::warn!(iface, error = %e, "eBPF: handing the XDP link over failed");
        return false;
    }
    // Ours goes only once the other process says its program is in.
    let mut confirmed = [0u8; 1];
    if stream.read_exact(&mut confirmed).is_err() || confirmed[0] != b'1' {
        tracing::warn!(
            iface,
            "eBPF: the new rauta process did not take the XDP link; keeping it"
        );
        return false;
    }
    links.handed(iface);
    tracing::info!(
        iface,
        "eBPF: handed the XDP filter on {iface} over to a new rauta process"
    );
    true
}

/// How often [`Waiter`] tries while a rollout's old pod may be draining,
/// and for how long; after that it tries every [`SLOW_POLL`].
const FAST_POLL: Duration = Duration::from_millis(10);
const FAST_FOR: Duration = Duration::from_secs(120);
const SLOW_POLL: Duration = Duration::from_secs(1);

/// A thread that attaches a program to an interface held by someone else
/// the moment they let go. Dropping it stops the thread.
#[derive(Debug)]
pub struct Waiter {
    _thread: Worker,
}

impl Waiter {
    /// Starts waiting for `ifindex` (named `iface`) to attach `prog` by a
    /// new bpf_link; `attached` gets the link once it exists.
    pub fn start(
        iface: String,
        ifindex: u32,
        prog: OwnedFd,
        attached: impl FnOnce(OwnedFd, Duration) + Send + 'static,
    ) -> io::Result<Waiter> {
        Worker::spawn(format!("xdp-wait-{iface}"), move |stop| {
            let started = Instant::now();
            while !stop.load(Ordering::Relaxed) {
                match bpf::link_create(ifindex, prog.as_fd()) {
                    Ok(link) => return attached(link, started.elapsed()),
                    Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {}
                    Err(e) => {
                        tracing::warn!(iface = %iface, error = %e, "eBPF: stopped waiting to attach the XDP filter");
                        return;
                    }
                }
                let poll = if started.elapsed() < FAST_FOR {
                    FAST_POLL
                } else {
                    SLOW_POLL
                };
                std::thread::sleep(poll);
            }
        })
        .map(|w| Waiter { _thread: w })
    }
}

/// The bpf(2) link commands aya 0.14 does not expose with the descriptor.
mod bpf {
    use std::io;
    use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

    const BPF_LINK_CREATE: libc::c_long = 28;
    const BPF_LINK_UPDATE: libc::c_long = 29;
    const BPF_XDP: u32 = 37;

    /// `union bpf_attr`, as far as these commands use it, zero-padded
    /// (the kernel requires unused tail bytes to be zero).
    #[repr(C, align(8))]
    struct Attr([u32; 32]);

    #[allow(unsafe_code)]
    fn bpf(cmd: libc::c_long, attr: &mut Attr) -> io::Result<libc::c_long> {
        // SAFETY: `attr` is a valid, writable bpf_attr-sized buffer for the
        // whole call; every pointer inside it is set by the caller to
        // memory that outlives the call.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_bpf,
                cmd,
                attr as *mut Attr,
                std::mem::size_of::<Attr>(),
            )
        };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(rc)
    }

    fn raw(fd: BorrowedFd<'_>) -> u32 {
        // Descriptors are non-negative.
        fd.as_raw_fd() as u32
    }

    fn owned(fd: libc::c_long) -> io::Result<OwnedFd> {
        let fd = i32::try_from(fd).map_err(io::Error::other)?;
        #[allow(unsafe_code)]
        // SAFETY: the kernel just returned this new descriptor to us alone.
        Ok(unsafe { OwnedFd::from_raw_fd(fd) })
    }

    /// A new XDP bpf_link of `prog` on `ifindex` (flags 0: driver mode
    /// where the driver has it, as aya's default), or EBUSY.
    pub(super) fn link_create(ifindex: u32, prog: BorrowedFd<'_>) -> io::Result<OwnedFd> {
        let mut attr = Attr([0; 32]);
        attr.0[0] = raw(prog);
        attr.0[1] = ifindex;
        attr.0[2] = BPF_XDP;
        owned(bpf(BPF_LINK_CREATE, &mut attr)?)
    }

    /// Puts `new` into `link` in place of whatever program it runs.
    pub(super) fn link_update(link: BorrowedFd<'_>, new: BorrowedFd<'_>) -> io::Result<()> {
        let mut attr = Attr([0; 32]);
        attr.0[0] = raw(link);
        attr.0[1] = raw(new);
        bpf(BPF_LINK_UPDATE, &mut attr).map(drop)
    }
}

/// Descriptor passing over a unix socket (SCM_RIGHTS).
mod sys {
    use nix::sys::socket::{recvmsg, sendmsg, ControlMessage, ControlMessageOwned, MsgFlags};
    use std::io::{self, IoSlice, IoSliceMut};
    use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

    /// Sends one byte and, with `fd`, the descriptor.
    pub(super) fn send_fd(
        to: BorrowedFd<'_>,
        byte: u8,
        fd: Option<BorrowedFd<'_>>,
    ) -> io::Result<()> {
        let buf = [byte];
        let iov = [IoSlice::new(&buf)];
        let fds: Vec<RawFd> = fd.iter().map(|f| f.as_raw_fd()).collect();
        let cmsg = [ControlMessage::ScmRights(&fds)];
        let cmsgs: &[ControlMessage<'_>] = if fds.is_empty() { &[] } else { &cmsg };
        sendmsg::<()>(to.as_raw_fd(), &iov, cmsgs, MsgFlags::empty(), None)?;
        Ok(())
    }

    /// Receives one byte and the descriptor sent with it, if any.
    pub(super) fn recv_fd(from: BorrowedFd<'_>) -> io::Result<(u8, Option<OwnedFd>)> {
        let mut buf = [0u8; 1];
        let mut iov = [IoSliceMut::new(&mut buf)];
        let mut space = nix::cmsg_space!(RawFd);
        let msg = recvmsg::<()>(
            from.as_raw_fd(),
            &mut iov,
            Some(&mut space),
            MsgFlags::MSG_CMSG_CLOEXEC,
        )?;
        let mut fd = None;
        for c in msg.cmsgs()? {
            if let ControlMessageOwned::ScmRights(fds) = c {
                for raw in fds {
                    #[allow(unsafe_code)]
                    // SAFETY: SCM_RIGHTS installed this descriptor in our
                    // table for this message alone; nothing else owns it.
                    let owned = unsafe { OwnedFd::from_raw_fd(raw) };
                    fd.get_or_insert(owned);
                }
            }
        }
        if msg.bytes == 0 {
            return Err(io::Error::from(io::ErrorKind::UnexpectedEof));
        }
        Ok((buf[0], fd))
    }
}
