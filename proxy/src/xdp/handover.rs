//! Taking `xdp_ingress` over from another rauta process on the same
//! interface. A DaemonSet rolling with maxSurge 1 starts the new pod while
//! the old one still holds the attachment, so the new one's attach gets
//! EBUSY. When the program holding the interface is rauta's, the new
//! process opens the old one's bpf_link by id and swaps its own program in
//! with one `BPF_LINK_UPDATE` (compare-and-replace, `BPF_F_REPLACE`): the
//! interface is never without the filter. The link then lives while either
//! process holds it open, and goes when both have closed it.
//!
//! Opening a link by id needs CAP_SYS_ADMIN, which the DaemonSet does not
//! grant. Without it the holder cannot be identified, and the new process
//! waits instead ([`Waiter`]): it tries to attach every 10 ms and succeeds
//! as soon as the old process has closed its link, so the interface is
//! without the filter for at most about one interval.
//!
//! Anything known to be another product's program is left alone.

use rauta_shared::ebpf as abi;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
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
    /// rauta's program, attached without a bpf_link (older kernels,
    /// `ip link set … xdp`): there is no link to update atomically.
    #[error("rauta's xdp_ingress (program {id}) is attached there by netlink, not by a bpf_link, so it cannot be replaced atomically (EBUSY)")]
    NoLink {
        /// Kernel program id.
        id: u32,
    },
    /// A system call failed.
    #[error("{call}: {source}")]
    Sys {
        /// What was called.
        call: &'static str,
        /// The kernel's answer.
        #[source]
        source: io::Error,
    },
}

impl TakeoverError {
    /// Whether the holder may be another rauta process that will let go
    /// (this process could not tell: no CAP_SYS_ADMIN), so that waiting
    /// for the interface is worth it.
    pub fn worth_waiting(&self) -> bool {
        match self {
            TakeoverError::Sys { source, .. } => matches!(
                source.raw_os_error(),
                Some(libc::EPERM | libc::EACCES | libc::EBUSY)
            ),
            _ => false,
        }
    }
}

fn sys(call: &'static str) -> impl FnOnce(io::Error) -> TakeoverError {
    move |source| TakeoverError::Sys { call, source }
}

/// An interface taken over: the link, held open for as long as this
/// process keeps the filter, and the program that was replaced.
#[derive(Debug)]
pub struct Taken {
    /// The bpf_link, now running our program.
    pub link: OwnedFd,
    /// Id of the program it ran before.
    pub replaced: u32,
}

/// What holds the XDP hook of an interface.
#[derive(Debug, PartialEq, Eq)]
pub enum Holder {
    /// Nothing (the holder went away since the attach failed).
    Nobody,
    /// Program `id`.
    Program(u32),
}

/// Replaces whatever rauta program holds `ifindex` (in this network
/// namespace) with `ours`. `Ok(None)`: nothing holds it any more, attach
/// normally.
pub fn take_over(ifindex: u32, ours: BorrowedFd<'_>) -> Result<Option<Taken>, TakeoverError> {
    let Holder::Program(id) = holder(ifindex).map_err(sys("RTM_GETLINK"))? else {
        return Ok(None);
    };
    let mut programs = aya::programs::loaded_programs();
    let info = loop {
        match programs.next() {
            // Unloaded between the two questions: the interface is free now.
            None => return Ok(None),
            Some(Ok(p)) if p.id() == id => break p,
            Some(Ok(_)) => {}
            // Listing programs needs CAP_SYS_ADMIN; other errors are
            // programs unloaded while listing.
            Some(Err(e)) => {
                let errno = super::degrade::errno(&e);
                if matches!(errno, Some(libc::EPERM | libc::EACCES)) {
                    return Err(TakeoverError::Sys {
                        call: "listing BPF programs",
                        source: io::Error::from_raw_os_error(errno.unwrap_or(libc::EPERM)),
                    });
                }
            }
        }
    };
    let name = info.name_as_str().unwrap_or("").to_string();
    if name != abi::PROG_XDP_INGRESS {
        return Err(TakeoverError::Foreign { id, name });
    }
    let old = info.fd().map_err(|e| TakeoverError::Sys {
        call: "BPF_PROG_GET_FD_BY_ID",
        source: io::Error::other(e),
    })?;
    let link = find_link(id, ifindex)?.ok_or(TakeoverError::NoLink { id })?;
    // Compare-and-replace: fails if the link moved on to another program
    // meanwhile (a third process took it), rather than undoing that.
    bpf::link_update(link.as_fd(), ours, old.as_fd()).map_err(sys("BPF_LINK_UPDATE"))?;
    Ok(Some(Taken { link, replaced: id }))
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

/// The XDP bpf_link of program `prog` on `ifindex`, opened.
fn find_link(prog: u32, ifindex: u32) -> Result<Option<OwnedFd>, TakeoverError> {
    for info in aya::programs::loaded_links().filter_map(Result::ok) {
        if info.program_id() != prog {
            continue;
        }
        // A link can go away between listing and opening.
        let Ok(fd) = bpf::link_fd_by_id(info.id()) else {
            continue;
        };
        let (link_prog, link_ifindex) =
            bpf::xdp_link_info(fd.as_fd()).map_err(sys("BPF_OBJ_GET_INFO_BY_FD"))?;
        if link_prog == prog && link_ifindex == Some(ifindex) {
            return Ok(Some(fd));
        }
    }
    Ok(None)
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
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
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
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name(format!("xdp-wait-{iface}"))
            .spawn(move || {
                let started = Instant::now();
                while !flag.load(Ordering::Relaxed) {
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
            })?;
        Ok(Waiter {
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for Waiter {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The bpf(2) commands aya 0.14 does not expose.
mod bpf {
    use std::io;
    use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

    const BPF_OBJ_GET_INFO_BY_FD: libc::c_long = 15;
    const BPF_LINK_CREATE: libc::c_long = 28;
    const BPF_LINK_UPDATE: libc::c_long = 29;
    const BPF_LINK_GET_FD_BY_ID: libc::c_long = 30;
    const BPF_F_REPLACE: u32 = 4;
    const BPF_LINK_TYPE_XDP: u32 = 6;
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

    /// Opens the bpf_link `id` (needs CAP_SYS_ADMIN).
    pub(super) fn link_fd_by_id(id: u32) -> io::Result<OwnedFd> {
        let mut attr = Attr([0; 32]);
        attr.0[0] = id;
        owned(bpf(BPF_LINK_GET_FD_BY_ID, &mut attr)?)
    }

    /// Program id and, for an XDP link, its ifindex.
    pub(super) fn xdp_link_info(link: BorrowedFd<'_>) -> io::Result<(u32, Option<u32>)> {
        // struct bpf_link_info: type, id, prog_id, then a union aligned to
        // 8 whose XDP member starts with ifindex.
        let mut info = [0u32; 16];
        let mut attr = Attr([0; 32]);
        attr.0[0] = raw(link);
        attr.0[1] = std::mem::size_of_val(&info) as u32;
        let ptr = info.as_mut_ptr() as u64;
        attr.0[2] = ptr as u32;
        attr.0[3] = (ptr >> 32) as u32;
        bpf(BPF_OBJ_GET_INFO_BY_FD, &mut attr)?;
        let ifindex = (info[0] == BPF_LINK_TYPE_XDP).then_some(info[4]);
        Ok((info[2], ifindex))
    }

    /// Puts `new` into `link` if it still runs `old`.
    pub(super) fn link_update(
        link: BorrowedFd<'_>,
        new: BorrowedFd<'_>,
        old: BorrowedFd<'_>,
    ) -> io::Result<()> {
        let mut attr = Attr([0; 32]);
        attr.0[0] = raw(link);
        attr.0[1] = raw(new);
        attr.0[2] = BPF_F_REPLACE;
        attr.0[3] = raw(old);
        bpf(BPF_LINK_UPDATE, &mut attr).map(drop)
    }
}
