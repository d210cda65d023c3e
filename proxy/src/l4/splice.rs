//! Kernel splice of an established L4 flow: the two sockets of a
//! connection go into a `SOCKHASH` whose `sk_skb` stream verdict
//! (`splice_verdict` in `xdp/`) sends every skb one of them receives out on
//! the other, so the bytes never reach user space. User space keeps owning
//! both sockets: it sees each direction end (EOF, reset) on the socket that
//! received it, decides when to `shutdown`/close the other, and reads the
//! byte counters from the maps.
//!
//! ```text
//! main thread:   Splicer::start(mode) / Splicer::load()   (once; Send)
//! each shard:    splicer.for_shard() -> ShardSplicer      (own map fds)
//! per flow:      shard.join(a, b) -> Joined               (drop = leave)
//! ```
//!
//! # The contract of a joined pair
//!
//! - Before [`ShardSplicer::join`]: no read of either socket may be in
//!   flight (cancel io_uring receives first); bytes the caller already read
//!   must already be written to the other side.
//! - While joined: the caller never reads or writes the sockets for data.
//!   It polls both for readability/errors and reacts:
//!   - **end of a direction**: `poll` reports `POLLIN` (with `POLLRDHUP`) on
//!     `a` and `recv(a, MSG_DONTWAIT)` returns 0. The kernel may still be
//!     moving the last bytes of that direction (a work queue hands them to
//!     `b`'s TCP): wait until [`Joined::unflushed`] says 0 for that
//!     direction (re-check on a timer: no event marks it), then
//!     `shutdown(b, SHUT_WR)`. A FIN is never forwarded by the kernel (the
//!     verdict drops the empty skb of a lone FIN: redirected, the kernel
//!     reports a zero-byte send as `EPIPE` on the peer socket).
//!   - **reset**: `poll` reports `POLLERR`/`POLLHUP` on `b`, `recv(b)` and
//!     `SO_ERROR` give `ECONNRESET`: reset `a` (`SO_LINGER` 0, close).
//!   - `recv` returning data (> 0) means the verdict passed bytes to the
//!     socket itself because its peer has left the maps (closed); the pair
//!     is being torn down.
//! - Dropping [`Joined`] removes every map entry the join added; a closed
//!   socket also leaves both `SOCKHASH`es by itself. Dropping is teardown,
//!   not a way back to a user-space relay: bytes the kernel holds for a
//!   socket when it leaves the maps are discarded.
//!
//! # Fallback
//!
//! [`Splicer::load`] fails with [`SpliceUnavailable`] (no eBPF privilege,
//! kernel without sockmap, binary built without eBPF); [`Splicer::start`]
//! logs that once and the caller relays in user space. A failed
//! [`ShardSplicer::join`] leaves the sockets as they were, with everything
//! read so far delivered, unless [`SpliceError::can_fall_back`] says no.

use crate::xdp::degrade;
use crate::xdp::object::OBJECT;
use aya::maps::{HashMap as BpfHashMap, Map, MapData, MapError, PerCpuArray, SockHash};
use aya::programs::{ProgramError, SkSkb};
use aya::{Ebpf, EbpfLoader};
use rauta_shared::ebpf::{self as abi, splice_counter, SplicePeer};
use std::cell::RefCell;
use std::error::Error;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::rc::Rc;
use std::time::{Duration, Instant};

/// What the opt-out flag (`--l4-splice`) asks for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum SpliceMode {
    /// Splice where the kernel and privileges allow; relay in user space otherwise.
    Auto,
    /// Always relay in user space (the default: measured here, the splice
    /// costs more CPU per byte and per connection than the relay).
    #[default]
    Off,
}

/// Why the kernel splice cannot be used at all (the caller relays every
/// flow in user space).
#[derive(Debug, thiserror::Error)]
pub enum SpliceUnavailable {
    /// Turned off by the operator.
    #[error("turned off (--l4-splice off)")]
    Off,
    /// The binary carries no eBPF object.
    #[error("this rauta binary was built without its eBPF programs (AYA_BUILD_SKIP)")]
    NotBuilt,
    /// The process lacks CAP_BPF / CAP_NET_ADMIN.
    #[error(
        "no permission to use eBPF sockmaps (it needs CAP_BPF and CAP_NET_ADMIN, or root): {0}"
    )]
    NoPrivilege(String),
    /// The kernel refused the maps or the program (no sockmap support, ...).
    #[error("the kernel refused the splice program or its maps: {0}")]
    Kernel(String),
}

impl SpliceUnavailable {
    fn from_error(err: &(dyn Error + 'static)) -> SpliceUnavailable {
        let detail = degrade::chain(err);
        match degrade::errno(err) {
            Some(libc::EPERM | libc::EACCES) => SpliceUnavailable::NoPrivilege(detail),
            _ => SpliceUnavailable::Kernel(degrade::why(err)),
        }
    }
}

/// Why one pair could not be joined. The sockets are left unspliced.
#[derive(Debug, thiserror::Error)]
pub enum SpliceError {
    /// A map holds [`abi::SPLICE_SOCKETS_MAX`] sockets already.
    #[error("the splice maps are full ({} sockets)", abi::SPLICE_SOCKETS_MAX)]
    MapFull,
    /// One of the sockets is joined already.
    #[error("a socket is already spliced")]
    AlreadyJoined,
    /// The kernel does not splice these sockets: not TCP, not established
    /// (a peer that half-closed before the join is in CLOSE_WAIT), or
    /// another user of the socket's BPF slot (kTLS).
    #[error("the kernel does not splice these sockets: {0}")]
    Refused(io::Error),
    /// No privilege for the map update.
    #[error("no permission to update the splice maps: {0}")]
    NoPrivilege(io::Error),
    /// Another error from the kernel's map code.
    #[error("the kernel refused the splice map update: {0}")]
    Kernel(io::Error),
    /// Reading the bytes queued before the join, or writing them to the
    /// other side, failed: the connection is broken (and some of those bytes
    /// may be lost), so it must be closed rather than relayed.
    #[error("the connection failed while the join moved its queued bytes: {0}")]
    Connection(io::Error),
}

impl SpliceError {
    /// Whether the caller may go on relaying the pair in user space.
    pub fn can_fall_back(&self) -> bool {
        !matches!(self, SpliceError::Connection(_))
    }

    fn from_map(err: MapError) -> SpliceError {
        let io = match err {
            MapError::SyscallError(e) => e.io_error,
            other => return SpliceError::Kernel(io::Error::other(other.to_string())),
        };
        match io.raw_os_error() {
            Some(libc::EEXIST) => SpliceError::AlreadyJoined,
            Some(libc::E2BIG | libc::ENOSPC | libc::ENOMEM) => SpliceError::MapFull,
            Some(libc::EPERM | libc::EACCES) => SpliceError::NoPrivilege(io),
            Some(
                libc::EOPNOTSUPP
                | libc::EINVAL
                | libc::EBUSY
                | libc::ENOTCONN
                | libc::EBADF
                | libc::ENOTSOCK,
            ) => SpliceError::Refused(io),
            _ => SpliceError::Kernel(io),
        }
    }
}

/// The splice verdict's counters, summed over CPUs (indexed by
/// `rauta_shared::ebpf::splice_counter`).
pub type SpliceCounters = [u64; splice_counter::COUNT as usize];

/// How many entries each splice map holds (2 per joined pair when idle).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MapEntries {
    /// Sockets in `SPLICE_SOCKETS`.
    pub sockets: usize,
    /// Sockets in `SPLICE_TARGETS`.
    pub targets: usize,
    /// Entries of `SPLICE_PEERS`.
    pub peers: usize,
}

/// The splice maps behind one set of file descriptors.
struct Maps {
    sockets: SockHash<MapData, u64>,
    targets: SockHash<MapData, u64>,
    peers: BpfHashMap<MapData, u64, SplicePeer>,
    counters: PerCpuArray<MapData, u64>,
    /// Spare descriptors of the four maps (in that order), for
    /// [`Maps::reopen`]: aya's typed maps do not lend theirs.
    spare: [OwnedFd; 4],
}

impl Maps {
    /// Wraps the four maps (sockets, targets, peers, counters).
    fn new(data: [MapData; 4]) -> Result<Maps, MapError> {
        let dup = |d: &MapData| d.fd().as_fd().try_clone_to_owned().map_err(dup_error);
        let spare = [
            dup(&data[0])?,
            dup(&data[1])?,
            dup(&data[2])?,
            dup(&data[3])?,
        ];
        let [sockets, targets, peers, counters] = data;
        Ok(Maps {
            sockets: SockHash::try_from(Map::SockHash(sockets))?,
            targets: SockHash::try_from(Map::SockHash(targets))?,
            peers: BpfHashMap::try_from(Map::HashMap(peers))?,
            counters: PerCpuArray::try_from(Map::PerCpuArray(counters))?,
            spare,
        })
    }

    /// Opens the maps again through new descriptors (`dup`), so that the
    /// copy shares nothing with `self` but the kernel objects.
    fn reopen(&self) -> Result<Maps, MapError> {
        let open = |fd: &OwnedFd| MapData::from_fd(fd.try_clone().map_err(dup_error)?);
        Maps::new([
            open(&self.spare[0])?,
            open(&self.spare[1])?,
            open(&self.spare[2])?,
            open(&self.spare[3])?,
        ])
    }

    fn counters(&self) -> Result<SpliceCounters, MapError> {
        let mut out = [0u64; splice_counter::COUNT as usize];
        for (i, slot) in out.iter_mut().enumerate() {
            let values = self.counters.get(&(i as u32), 0)?;
            *slot = values.iter().copied().fold(0u64, u64::wrapping_add);
        }
        Ok(out)
    }

    fn entries(&self) -> Result<MapEntries, MapError> {
        fn count(keys: impl Iterator<Item = Result<u64, MapError>>) -> Result<usize, MapError> {
            keys.map(|k| k.map(|_| 1)).sum()
        }
        Ok(MapEntries {
            sockets: count(self.sockets.keys())?,
            targets: count(self.targets.keys())?,
            peers: count(self.peers.keys())?,
        })
    }

    /// Removes `cookie` from every map; absent entries are fine (a closed
    /// socket has left the `SOCKHASH`es already).
    fn remove(&mut self, cookie: u64) {
        // Verdict first, so nothing is redirected from the socket while its
        // peer entry goes.
        for result in [
            self.sockets.remove(&cookie),
            self.peers.remove(&cookie),
            self.targets.remove(&cookie),
        ] {
            match result {
                Ok(()) => {}
                Err(MapError::SyscallError(e))
                    if e.io_error.raw_os_error() == Some(libc::ENOENT) => {}
                Err(MapError::KeyNotFound) => {}
                Err(e) => {
                    tracing::warn!(target: "rauta::splice", cookie, error = %e, "cannot remove a spliced socket's map entry");
                }
            }
        }
    }
}

fn dup_error(e: io::Error) -> MapError {
    MapError::SyscallError(aya::sys::SyscallError {
        call: "dup",
        io_error: e,
    })
}

/// The loaded splice program and its maps; create once, then hand each
/// shard a [`ShardSplicer`]. Dropping it (and every shard handle) unloads
/// the program; nothing is pinned.
pub struct Splicer {
    maps: Maps,
    // Holds the loaded program and its attachment to `SPLICE_SOCKETS`.
    _ebpf: Ebpf,
}

impl std::fmt::Debug for Splicer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Splicer").finish_non_exhaustive()
    }
}

const _: () = {
    const fn send<T: Send>() {}
    send::<Splicer>();
};

impl Splicer {
    /// [`Splicer::load`] unless `mode` is off, with exactly one log line
    /// saying whether L4 flows are spliced in the kernel and, if not, why.
    pub fn start(mode: SpliceMode) -> Option<Splicer> {
        if mode == SpliceMode::Off {
            tracing::info!("L4 splice off (--l4-splice off): L4 flows are relayed in user space");
            return None;
        }
        match Splicer::load() {
            Ok(s) => {
                tracing::info!("L4 splice on: established L4 flows are moved by the kernel (sockhash stream verdict)");
                // Measured on kernel 6.18 over veth (xdp_fast.rs,
                // splice_corrupts_long_echoes_over_veth): bytes duplicated
                // mid-stream under backpressure; loopback was clean.
                tracing::warn!("--l4-splice auto is experimental: over veth, the kernel splice duplicated bytes of long two-way streams in rauta's tests (kernel 6.18); do not use it for production traffic");
                Some(s)
            }
            Err(e) => {
                tracing::warn!("L4 splice off: {e}; L4 flows are relayed in user space (--l4-splice off silences this)");
                None
            }
        }
    }

    /// Creates the splice maps and loads `splice_verdict` from the proxy's
    /// eBPF object, attached to `SPLICE_SOCKETS`. Independent of the
    /// XDP/reuseport loader (works under `--xdp off`): the object's other
    /// maps are created with one entry and its other programs not loaded.
    pub fn load() -> Result<Splicer, SpliceUnavailable> {
        if OBJECT.is_empty() {
            return Err(SpliceUnavailable::NotBuilt);
        }
        Splicer::load_object().map_err(|e| SpliceUnavailable::from_error(&*e))
    }

    fn load_object() -> Result<Splicer, Box<dyn Error + Send + Sync + 'static>> {
        crate::xdp::object::raise_memlock_limit();
        let mut ebpf = EbpfLoader::new()
            .map_max_entries(abi::MAP_SHARD_SOCKETS, 1)
            .map_max_entries(abi::MAP_SYN_BUCKETS, 1)
            .map_max_entries(abi::MAP_DENY, 1)
            // The XDP fast path's tables belong to the filter's instance.
            .map_max_entries(abi::fast::MAP_FAST_BACKENDS, 1)
            .map_max_entries(abi::fast::MAP_FAST_MAGLEV, 1)
            .map_max_entries(abi::fast::MAP_FAST_FLOWS, 1)
            .load(OBJECT)?;
        let maps = Maps::new([
            take(&mut ebpf, abi::MAP_SPLICE_SOCKETS)?,
            take(&mut ebpf, abi::MAP_SPLICE_TARGETS)?,
            take(&mut ebpf, abi::MAP_SPLICE_PEERS)?,
            take(&mut ebpf, abi::MAP_SPLICE_COUNTERS)?,
        ])?;
        let prog: &mut SkSkb = ebpf
            .program_mut(abi::PROG_SPLICE_VERDICT)
            .ok_or(ProgramError::InvalidName {
                name: abi::PROG_SPLICE_VERDICT.into(),
            })?
            .try_into()?;
        prog.load()?;
        // The attachment belongs to the program (aya keeps the link); it
        // ends when `_ebpf` is dropped.
        prog.attach(maps.sockets.fd())?;
        Ok(Splicer { maps, _ebpf: ebpf })
    }

    /// A handle for one shard thread, with its own descriptors of the maps
    /// (no lock or descriptor shared between cores).
    pub fn for_shard(&self) -> io::Result<ShardSplicer> {
        self.handle().map(SpliceHandle::into_shard)
    }

    /// The maps for one shard, to be sent to its thread and turned into a
    /// [`ShardSplicer`] there.
    pub fn handle(&self) -> io::Result<SpliceHandle> {
        let maps = self.maps.reopen().map_err(map_io_error)?;
        Ok(SpliceHandle { maps })
    }

    /// The verdict's counters, summed over CPUs.
    pub fn counters(&self) -> Result<SpliceCounters, MapError> {
        self.maps.counters()
    }

    /// How many entries each map holds now (iterates the maps).
    pub fn entries(&self) -> Result<MapEntries, MapError> {
        self.maps.entries()
    }
}

/// Takes map `name` out of `ebpf`.
fn take(ebpf: &mut Ebpf, name: &str) -> Result<MapData, MapError> {
    let invalid = || MapError::InvalidName {
        name: name.to_string(),
    };
    match ebpf.take_map(name).ok_or_else(invalid)? {
        Map::SockHash(d) | Map::HashMap(d) | Map::PerCpuArray(d) => Ok(d),
        _ => Err(invalid()),
    }
}

fn map_io_error(e: MapError) -> io::Error {
    match e {
        MapError::SyscallError(e) => e.io_error,
        other => io::Error::other(other.to_string()),
    }
}

/// One shard's access to the splice maps. `!Send`: it stays on its shard.
pub struct ShardSplicer {
    maps: Rc<RefCell<Maps>>,
}

/// A shard's own descriptors of the splice maps on their way to its thread.
pub struct SpliceHandle {
    maps: Maps,
}

impl std::fmt::Debug for SpliceHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SpliceHandle").finish_non_exhaustive()
    }
}

impl SpliceHandle {
    /// The verdict's counters, summed over CPUs (for the admin thread).
    pub fn counters(&self) -> Result<SpliceCounters, MapError> {
        self.maps.counters()
    }

    /// The shard's splicer (on the shard's thread).
    pub fn into_shard(self) -> ShardSplicer {
        ShardSplicer {
            maps: Rc::new(RefCell::new(self.maps)),
        }
    }
}

impl std::fmt::Debug for ShardSplicer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShardSplicer").finish_non_exhaustive()
    }
}

/// `TCP_ESTABLISHED` of the kernel's TCP states (`tcpi_state`).
const TCP_ESTABLISHED: u8 = 1;

/// How long `join` waits for room in a send buffer while it moves the
/// bytes queued before the join (fresh sockets have room; this bounds a
/// peer that stopped reading).
const FORWARD_DEADLINE: Duration = Duration::from_secs(5);

impl ShardSplicer {
    /// Splices `a` and `b` (connected TCP sockets): from now on the bytes
    /// arriving on `a` go out on `b` and the other way round, moved by the
    /// kernel.
    ///
    /// Bytes that arrived before the call are neither lost nor reordered:
    /// 1. each socket's receive queue is read (non-blocking) until empty
    ///    and written to the other socket, so no partly read skb is left
    ///    (the kernel's verdict hands on whole skbs and would send again
    ///    what the caller had read of one);
    /// 2. the peer entries and both sockets go into the maps, targets first;
    /// 3. each socket's `SO_RCVLOWAT` is set to 1, which makes TCP run the
    ///    verdict over whatever arrived between 1 and 2 (sockmap does not
    ///    process data queued before the insert until more arrives).
    ///
    /// Needs: no read in flight on either socket, no data written to either
    /// while joined. Step 1 may wait up to 5 s for room in a send buffer.
    pub fn join(&self, a: BorrowedFd<'_>, b: BorrowedFd<'_>) -> Result<Joined, SpliceError> {
        let ca = cookie(a).map_err(SpliceError::Refused)?;
        let cb = cookie(b).map_err(SpliceError::Refused)?;
        if ca == cb {
            return Err(SpliceError::Refused(io::Error::from_raw_os_error(
                libc::EINVAL,
            )));
        }
        // Refuse what the maps would refuse before any byte is moved.
        for fd in [a, b] {
            let state = sys::tcp_state(fd).map_err(SpliceError::Refused)?;
            if state != TCP_ESTABLISHED {
                return Err(SpliceError::Refused(io::Error::new(
                    io::ErrorKind::NotConnected,
                    format!("TCP state {state}, not ESTABLISHED"),
                )));
            }
        }
        let moved_ab = forward_queued(a, b).map_err(SpliceError::Connection)?;
        let moved_ba = forward_queued(b, a).map_err(SpliceError::Connection)?;
        let base_a = enqueued(a).map_err(SpliceError::Refused)?;
        let base_b = enqueued(b).map_err(SpliceError::Refused)?;
        let mut added: Vec<u64> = Vec::with_capacity(2);
        let inserted = self.insert(a, ca, b, cb, &mut added);
        if let Err(e) = inserted {
            let mut maps = self.maps.borrow_mut();
            for cookie in added {
                maps.remove(cookie);
            }
            return Err(e);
        }
        for fd in [a, b] {
            // Runs the verdict over data that arrived before the insert.
            sys::set_rcvlowat(fd, 1).map_err(SpliceError::Kernel)?;
        }
        Ok(Joined {
            maps: self.maps.clone(),
            a: ca,
            b: cb,
            base_a,
            base_b,
            moved_at_join: (moved_ab, moved_ba),
        })
    }

    fn insert(
        &self,
        a: BorrowedFd<'_>,
        ca: u64,
        b: BorrowedFd<'_>,
        cb: u64,
        added: &mut Vec<u64>,
    ) -> Result<(), SpliceError> {
        let mut maps = self.maps.borrow_mut();
        const NOEXIST: u64 = 1; // BPF_NOEXIST
        for (from, to) in [(ca, cb), (cb, ca)] {
            let peer = SplicePeer {
                peer: to,
                bytes: 0,
                skbs: 0,
            };
            maps.peers
                .insert(from, peer, NOEXIST)
                .map_err(SpliceError::from_map)?;
            added.push(from);
        }
        // Both sockets become redirect targets before either gets the
        // verdict: a redirect never finds its peer missing.
        for (fd, c) in [(a, ca), (b, cb)] {
            maps.targets
                .insert(c, fd, 0)
                .map_err(SpliceError::from_map)?;
        }
        for (fd, c) in [(a, ca), (b, cb)] {
            maps.sockets
                .insert(c, fd, 0)
                .map_err(SpliceError::from_map)?;
        }
        Ok(())
    }

    /// How many entries each map holds now (iterates the maps).
    pub fn entries(&self) -> Result<MapEntries, MapError> {
        self.maps.borrow().entries()
    }
}

/// A spliced pair; dropping it takes both sockets out of the maps (it does
/// not close them).
pub struct Joined {
    maps: Rc<RefCell<Maps>>,
    a: u64,
    b: u64,
    base_a: u64,
    base_b: u64,
    moved_at_join: (u64, u64),
}

impl std::fmt::Debug for Joined {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Joined")
            .field("a", &self.a)
            .field("b", &self.b)
            .finish_non_exhaustive()
    }
}

impl Joined {
    /// Bytes the kernel redirected `(a -> b, b -> a)` since the join, from
    /// the peer map (not counting [`Joined::moved_at_join`]).
    pub fn bytes(&self) -> Result<(u64, u64), MapError> {
        let maps = self.maps.borrow();
        let a = maps.peers.get(&self.a, 0)?;
        let b = maps.peers.get(&self.b, 0)?;
        Ok((a.bytes, b.bytes))
    }

    /// Bytes `join` itself read and wrote `(a -> b, b -> a)`: what was
    /// queued before the join.
    pub fn moved_at_join(&self) -> (u64, u64) {
        self.moved_at_join
    }

    /// Bytes `(a -> b, b -> a)` the verdict has redirected but the
    /// destination's TCP has not taken yet (they wait in a kernel work
    /// queue). `a` and `b` must be the sockets given to `join`. Wait for 0
    /// before `shutdown(SHUT_WR)` of the destination, or those bytes fail
    /// with `EPIPE` in the kernel and are lost.
    pub fn unflushed(&self, a: BorrowedFd<'_>, b: BorrowedFd<'_>) -> io::Result<(u64, u64)> {
        if cookie(a)? != self.a || cookie(b)? != self.b {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "not the sockets of this splice",
            ));
        }
        let (ab, ba) = self.bytes().map_err(map_io_error)?;
        let into_b = enqueued(b)?.wrapping_sub(self.base_b);
        let into_a = enqueued(a)?.wrapping_sub(self.base_a);
        Ok((ab.saturating_sub(into_b), ba.saturating_sub(into_a)))
    }

    /// Waits (sleeping, up to `timeout`) until [`Joined::unflushed`] is 0
    /// for `a -> b` (`a_to_b`) or `b -> a`; false on timeout. For threads
    /// that may block; an event loop checks `unflushed` on its timer.
    pub fn wait_flushed(
        &self,
        a: BorrowedFd<'_>,
        b: BorrowedFd<'_>,
        a_to_b: bool,
        timeout: Duration,
    ) -> io::Result<bool> {
        let deadline = Instant::now() + timeout;
        let mut pause = Duration::from_micros(50);
        loop {
            let (ab, ba) = self.unflushed(a, b)?;
            if (if a_to_b { ab } else { ba }) == 0 {
                return Ok(true);
            }
            if Instant::now() >= deadline {
                return Ok(false);
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(10));
        }
    }
}

impl Drop for Joined {
    fn drop(&mut self) {
        let mut maps = self.maps.borrow_mut();
        maps.remove(self.a);
        maps.remove(self.b);
    }
}

/// The socket's cookie (`SO_COOKIE`): unique for the boot, never reused,
/// and what the verdict computes from an skb.
fn cookie(fd: BorrowedFd<'_>) -> io::Result<u64> {
    socket2::SockRef::from(&fd).cookie()
}

/// Bytes ever put into the socket's send queue (`write_seq` less the
/// initial sequence), as acknowledged bytes plus the send queue
/// (`SIOCOUTQ`), read until the acknowledged count holds still across the
/// two calls so that the sum is exact.
fn enqueued(fd: BorrowedFd<'_>) -> io::Result<u64> {
    for _ in 0..64 {
        let before = sys::bytes_acked(fd)?;
        let queued = sys::outq(fd)?;
        let after = sys::bytes_acked(fd)?;
        if before == after {
            return Ok(after.wrapping_add(queued));
        }
    }
    Err(io::Error::new(
        io::ErrorKind::WouldBlock,
        "the send queue kept moving while it was measured",
    ))
}

/// Reads `from` until its receive queue is empty (or EOF) and writes
/// everything to `to`; the bytes moved.
fn forward_queued(from: BorrowedFd<'_>, to: BorrowedFd<'_>) -> io::Result<u64> {
    let mut buf = vec![0u8; 64 * 1024];
    let mut moved = 0u64;
    let deadline = Instant::now() + FORWARD_DEADLINE;
    loop {
        let n = match sys::recv_dontwait(from, &mut buf) {
            Ok(0) => return Ok(moved),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(moved),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        write_all(to, &buf[..n], deadline)?;
        moved += n as u64;
    }
}

/// Writes all of `data` to `to`, waiting for room until `deadline`.
fn write_all(to: BorrowedFd<'_>, mut data: &[u8], deadline: Instant) -> io::Result<()> {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    let sock = socket2::SockRef::from(&to);
    while !data.is_empty() {
        match sock.send_with_flags(data, libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL) {
            Ok(n) => data = &data[n..],
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "no room in the send buffer",
                    ));
                }
                let ms = i32::try_from(left.as_millis()).unwrap_or(i32::MAX).max(1);
                let timeout = PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX);
                match poll(&mut [PollFd::new(to, PollFlags::POLLOUT)], timeout) {
                    Ok(_) | Err(nix::errno::Errno::EINTR) => {}
                    Err(e) => return Err(e.into()),
                }
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// The socket calls neither std, socket2 nor nix (with the features this
/// workspace enables) wraps.
mod sys {
    use std::io;
    use std::os::fd::{AsRawFd, BorrowedFd};

    /// `recv(MSG_DONTWAIT)` into `buf`.
    #[allow(unsafe_code)]
    pub(super) fn recv_dontwait(fd: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<usize> {
        // SAFETY: `buf` is valid for writes of its length.
        let n = unsafe {
            libc::recv(
                fd.as_raw_fd(),
                buf.as_mut_ptr().cast(),
                buf.len(),
                libc::MSG_DONTWAIT,
            )
        };
        usize::try_from(n).map_err(|_| io::Error::last_os_error())
    }

    /// `SO_RCVLOWAT`; on TCP, setting it also wakes the data-ready
    /// callback when enough bytes wait (`tcp_set_rcvlowat`).
    #[allow(unsafe_code)]
    pub(super) fn set_rcvlowat(fd: BorrowedFd<'_>, bytes: libc::c_int) -> io::Result<()> {
        // SAFETY: a valid int of the size given, for a live descriptor.
        let rc = unsafe {
            libc::setsockopt(
                fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVLOWAT,
                (&bytes as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Bytes of the send queue (`SIOCOUTQ`: sent but not acknowledged,
    /// plus not sent yet).
    #[allow(unsafe_code)]
    pub(super) fn outq(fd: BorrowedFd<'_>) -> io::Result<u64> {
        let mut queued: libc::c_int = 0;
        // SAFETY: SIOCOUTQ (TIOCOUTQ) writes one int to the pointer given.
        let rc = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCOUTQ, &mut queued) };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(u64::try_from(queued).unwrap_or(0))
    }

    /// `tcpi_bytes_acked` of `TCP_INFO`.
    pub(super) fn bytes_acked(fd: BorrowedFd<'_>) -> io::Result<u64> {
        tcp_info(fd).map(|i| i.tcpi_bytes_acked)
    }

    /// `tcpi_state` of `TCP_INFO` (fails on a socket that is not TCP).
    pub(super) fn tcp_state(fd: BorrowedFd<'_>) -> io::Result<u8> {
        tcp_info(fd).map(|i| i.tcpi_state)
    }

    #[allow(unsafe_code)]
    fn tcp_info(fd: BorrowedFd<'_>) -> io::Result<libc::tcp_info> {
        // SAFETY: all-zero is a valid `tcp_info` (plain integers).
        let mut info: libc::tcp_info = unsafe { std::mem::zeroed() };
        let mut len = std::mem::size_of::<libc::tcp_info>() as libc::socklen_t;
        // SAFETY: `info` and `len` are valid for writes of the sizes given.
        let rc = unsafe {
            libc::getsockopt(
                fd.as_raw_fd(),
                libc::IPPROTO_TCP,
                libc::TCP_INFO,
                (&mut info as *mut libc::tcp_info).cast(),
                &mut len,
            )
        };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(info)
    }
}
