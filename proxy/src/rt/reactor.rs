//! The shard's io_uring: readiness waits for sockets and the timer list.
//!
//! Sockets are non-blocking and read and written with plain syscalls; the
//! ring is only told to wait (a one-shot `POLL_ADD`) after a syscall said
//! `EAGAIN`, the way an epoll loop works. The ring is created with
//! `DEFER_TASKRUN` + `SINGLE_ISSUER` where the kernel has them, so a
//! completion never interrupts the running shard with an IPI: completions
//! are reaped once per loop turn, in one `io_uring_enter`.

use io_uring::{opcode, squeue, types, IoUring, Probe};
use slab::Slab;
use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::io;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::task::Waker;
use std::time::{Duration, Instant};

/// Submission queue size. A push into a full queue goes to the backlog,
/// which the next turn moves into the ring: no request is ever dropped.
const SQ_ENTRIES: u32 = 1024;
/// Completion queue size: every socket of a busy shard (16 384 clients plus
/// their upstreams) may have a read and a write poll in flight. 1 MiB of
/// ring memory; the kernel clamps it where its limit is lower.
const CQ_ENTRIES: u32 = 65536;
/// `user_data` of cancel requests, whose completions need no dispatch.
const CANCEL_TAG: u64 = u64::MAX;
/// Largest slab key a `user_data` can carry (31 bits, so that no poll's
/// `user_data` is ever [`CANCEL_TAG`]).
const MAX_KEY: usize = (1 << 31) - 2;
/// The bits of a `user_data` (shifted down by one) that hold the key.
const KEY_MASK: u64 = (1 << 31) - 1;
/// Submit attempts per turn while the backlog does not fit the ring.
const SUBMIT_TRIES: usize = 8;
/// The pause after an `io_uring_enter` failure that retrying will not fix,
/// so a broken ring cannot spin the shard at 100 % CPU.
const ENTER_BACKOFF: Duration = Duration::from_millis(1);
/// At most one log line per this interval for failing enters.
const ENTER_LOG_EVERY: Duration = Duration::from_secs(1);

/// Process-wide counts of ring anomalies (incremented only when one
/// happens, never on the normal path).
static CQ_DROPPED: AtomicU64 = AtomicU64::new(0);
static STALE_CQES: AtomicU64 = AtomicU64::new(0);
static POLL_ERRORS: AtomicU64 = AtomicU64::new(0);
static ENTER_ERRORS: AtomicU64 = AtomicU64::new(0);

/// Ring anomalies counted since the process started, over all shards.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RingCounters {
    /// Times the kernel reported dropped completions (`EBADR`); every
    /// armed wait of that shard was woken to retry its syscall.
    pub cq_dropped: u64,
    /// Completions of polls abandoned by such a recovery, ignored.
    pub stale_completions: u64,
    /// Polls of live sockets that completed with an unexpected error.
    pub poll_errors: u64,
    /// `io_uring_enter` calls that failed for a reason other than a
    /// timeout, a signal or a full ring.
    pub enter_errors: u64,
}

/// Reads the process-wide ring anomaly counters.
pub fn counters() -> RingCounters {
    RingCounters {
        cq_dropped: CQ_DROPPED.load(Relaxed),
        stale_completions: STALE_CQES.load(Relaxed),
        poll_errors: POLL_ERRORS.load(Relaxed),
        enter_errors: ENTER_ERRORS.load(Relaxed),
    }
}

/// Which half of a socket a wait is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dir {
    /// Readable (or accept-able, or hung up).
    Read = 0,
    /// Writable (or connected, or failed).
    Write = 1,
}

/// The only requests the ring is ever given. Neither refers to memory, so
/// no future dropped while its request is in flight can leave the kernel
/// holding a dangling pointer; adding an operation that carries a buffer
/// would need an ownership scheme this reactor does not have.
#[derive(Debug, Clone, Copy)]
enum Op {
    /// A one-shot readiness poll of `fd` for source `key`.
    Poll { fd: RawFd, dir: Dir, key: SourceKey },
    /// Cancels the request with this `user_data`.
    Cancel(u64),
}

/// One direction's wait state. Completions are only reaped between task
/// runs, so "not armed" always means "the last poll fired, or none was
/// needed yet": either way the owner's next step is a syscall.
#[derive(Debug, Default)]
struct Wait {
    /// A `POLL_ADD` is in flight in the kernel (or in the backlog).
    armed: bool,
    waker: Option<Waker>,
}

/// A registered socket: one wait state per direction.
#[derive(Debug, Default)]
struct Source {
    waits: [Wait; 2],
    /// The socket was dropped; the entry lives until its polls complete.
    orphan: bool,
}

/// Key of a registered socket.
pub type SourceKey = usize;
pub use super::wheel::TimerKey;
use super::wheel::TimerWheel;

/// The per-thread reactor.
pub struct Reactor {
    ring: RefCell<IoUring>,
    /// Requests that did not fit the submission queue, in order; moved
    /// into the ring at the start of the next turn.
    backlog: RefCell<VecDeque<squeue::Entry>>,
    sources: RefCell<Slab<Source>>,
    timers: RefCell<TimerWheel>,
    /// Wakers of due timers, kept so firing does not allocate.
    due_buf: RefCell<Vec<Waker>>,
    /// Carried in every poll's `user_data`; bumped when the kernel dropped
    /// completions, so the polls armed before that are told apart.
    epoch: Cell<u32>,
    /// When an enter failure was last logged, and how many were not.
    enter_log: Cell<(Option<Instant>, u64)>,
    /// Wakers collected by a reap, kept so reaping does not allocate.
    wake_buf: RefCell<Vec<Waker>>,
}

impl Reactor {
    /// Creates the ring, with the cheapest completion mode the kernel has.
    /// Fails on a kernel whose io_uring lacks what the reactor relies on.
    pub fn new() -> io::Result<Reactor> {
        Ok(Reactor {
            ring: RefCell::new(build_ring()?),
            backlog: RefCell::new(VecDeque::new()),
            sources: RefCell::new(Slab::with_capacity(256)),
            timers: RefCell::new(TimerWheel::new(Instant::now())),
            due_buf: RefCell::new(Vec::new()),
            epoch: Cell::new(0),
            enter_log: Cell::new((None, 0)),
            wake_buf: RefCell::new(Vec::new()),
        })
    }

    /// Registers a socket for readiness waits.
    pub fn register(&self) -> io::Result<SourceKey> {
        let mut sources = self.sources.borrow_mut();
        if sources.vacant_key() > MAX_KEY {
            return Err(io::Error::other("too many sockets on one shard"));
        }
        Ok(sources.insert(Source::default()))
    }

    /// Forgets a socket that is about to be closed. Polls still in flight
    /// are cancelled first: a pending poll holds the file open, and a
    /// client must see our FIN now, not whenever that poll would fire.
    pub fn deregister(&self, key: SourceKey) {
        let mut sources = self.sources.borrow_mut();
        let Some(source) = sources.get_mut(key) else {
            return;
        };
        let epoch = self.epoch.get();
        let armed = [Dir::Read, Dir::Write].map(|d| {
            let w = &mut source.waits[d as usize];
            w.waker = None;
            w.armed.then(|| user_data(epoch, key, d))
        });
        if armed == [None, None] {
            sources.remove(key);
            return;
        }
        source.orphan = true;
        drop(sources);
        for data in armed.into_iter().flatten() {
            self.push(Op::Cancel(data));
        }
    }

    /// Arranges for `waker` to be woken when `fd` is ready in `dir` (after
    /// a syscall said `EAGAIN`, or while an earlier poll is still armed).
    pub fn wait_ready(&self, key: SourceKey, fd: RawFd, dir: Dir, waker: &Waker) {
        let mut sources = self.sources.borrow_mut();
        let Some(source) = sources.get_mut(key) else {
            return;
        };
        let wait = &mut source.waits[dir as usize];
        match &mut wait.waker {
            Some(w) => w.clone_from(waker),
            None => wait.waker = Some(waker.clone()),
        }
        if !wait.armed {
            wait.armed = true;
            drop(sources);
            self.push(Op::Poll { fd, dir, key });
        }
    }

    /// True while a poll for `dir` is in flight: the socket was not ready
    /// and has not become ready since, so a syscall now would be wasted.
    pub fn is_waiting(&self, key: SourceKey, dir: Dir) -> bool {
        self.sources
            .borrow()
            .get(key)
            .is_some_and(|s| s.waits[dir as usize].armed)
    }

    /// Queues a request: into the ring when it has room and nothing is
    /// waiting ahead of it, else at the end of the backlog (order matters:
    /// a cancel must reach the kernel after the poll it cancels).
    fn push(&self, op: Op) {
        let entry = match op {
            Op::Poll { fd, dir, key } => {
                let events = match dir {
                    Dir::Read => libc::POLLIN | libc::POLLRDHUP,
                    Dir::Write => libc::POLLOUT,
                };
                opcode::PollAdd::new(types::Fd(fd), events as u32)
                    .build()
                    .user_data(user_data(self.epoch.get(), key, dir))
            }
            Op::Cancel(data) => opcode::AsyncCancel::new(data).build().user_data(CANCEL_TAG),
        };
        let mut backlog = self.backlog.borrow_mut();
        if backlog.is_empty() && push_sqe(&mut self.ring.borrow_mut(), &entry) {
            return;
        }
        backlog.push_back(entry);
    }

    /// Moves as much of the backlog into the submission queue as fits.
    fn fill_from_backlog(&self) {
        let mut backlog = self.backlog.borrow_mut();
        let mut ring = self.ring.borrow_mut();
        while let Some(entry) = backlog.front() {
            if !push_sqe(&mut ring, entry) {
                return;
            }
            backlog.pop_front();
        }
    }

    /// Empties the backlog into the kernel, submitting each time the ring
    /// fills. True when some of it is still left (the kernel refused).
    fn flush_backlog(&self) -> bool {
        if self.backlog.borrow().is_empty() {
            return false;
        }
        for _ in 0..SUBMIT_TRIES {
            self.fill_from_backlog();
            if self.backlog.borrow().is_empty() {
                return false;
            }
            let submitted = self.ring.borrow().submit();
            match submitted {
                Ok(_) => {}
                Err(e) => match e.raw_os_error() {
                    Some(libc::EINTR) => {}
                    // The completion ring is full: reaping makes room.
                    Some(libc::EBUSY | libc::EAGAIN) => self.reap(),
                    Some(libc::EBADR) => {
                        self.reap();
                        self.recover_dropped();
                    }
                    _ => {
                        self.enter_failed(&e);
                        break;
                    }
                },
            }
        }
        !self.backlog.borrow().is_empty()
    }
    /// Adds a timer; the waker is woken once `deadline` has passed.
    pub fn add_timer(&self, deadline: Instant, waker: Waker) -> TimerKey {
        self.timers.borrow_mut().add(deadline, waker)
    }

    /// Replaces a pending timer's waker; false when it already fired.
    pub fn update_timer(&self, key: TimerKey, waker: &Waker) -> bool {
        self.timers.borrow_mut().update(key, waker)
    }

    /// Removes a timer that is no longer wanted.
    pub fn remove_timer(&self, key: TimerKey) {
        self.timers.borrow_mut().remove(key);
    }

    /// Wakes every timer whose deadline has passed.
    pub fn fire_timers(&self, now: Instant) {
        let mut due = std::mem::take(&mut *self.due_buf.borrow_mut());
        self.timers.borrow_mut().fire(now, &mut due);
        // Woken outside the borrow: a woken task may add a timer at once.
        for waker in due.drain(..) {
            waker.wake();
        }
        *self.due_buf.borrow_mut() = due;
    }

    /// Submits queued requests and reaps completions; waits for one when
    /// `block` is set, but never past the next timer or `max_wait`.
    pub fn turn(&self, block: bool, max_wait: Duration) {
        let backlog_left = self.flush_backlog();
        let mut wait = if block {
            let next = self.timers.borrow().next();
            let now = Instant::now();
            let wait = match next {
                Some(at) if at <= now => None,
                Some(at) => Some((at - now).min(max_wait)),
                None => Some(max_wait),
            };
            // Requests the kernel refused are retried soon.
            wait.map(|d| {
                if backlog_left {
                    d.min(ENTER_BACKOFF)
                } else {
                    d
                }
            })
        } else {
            None
        };
        if wait.is_none() {
            let mut ring = self.ring.borrow_mut();
            let sq = ring.submission();
            // Nothing queued and no deferred completion work: reaping
            // the completion ring needs no syscall.
            if sq.is_empty() && !sq.taskrun() && !sq.cq_overflow() {
                drop(sq);
                drop(ring);
                self.reap();
                return;
            }
        }
        let mut dropped = false;
        let mut refused = false;
        for _ in 0..SUBMIT_TRIES {
            let result = {
                let ring = self.ring.borrow();
                match wait {
                    Some(d) => {
                        let ts = types::Timespec::new()
                            .sec(d.as_secs())
                            .nsec(d.subsec_nanos());
                        let args = types::SubmitArgs::new().timespec(&ts);
                        ring.submitter().submit_with_args(1, &args)
                    }
                    None => ring.submitter().submit_and_wait(0),
                }
            };
            let Err(e) = result else {
                refused = false;
                break;
            };
            match e.raw_os_error() {
                Some(libc::ETIME) => {
                    refused = false;
                    break;
                }
                Some(libc::EINTR) => {}
                // The completion ring is full (or the kernel is short of
                // memory): reap to make room, then submit again without
                // waiting, since the reap may have woken tasks.
                Some(libc::EBUSY | libc::EAGAIN) => {
                    refused = true;
                    self.reap();
                    wait = None;
                }
                Some(libc::EBADR) => {
                    dropped = true;
                    refused = false;
                    break;
                }
                _ => {
                    self.enter_failed(&e);
                    refused = false;
                    break;
                }
            }
        }
        self.reap();
        if dropped {
            self.recover_dropped();
        }
        if refused && block {
            // The kernel kept refusing; do not spin on it.
            std::thread::sleep(ENTER_BACKOFF);
        }
    }

    fn reap(&self) {
        let mut wakers = self.wake_buf.take();
        {
            let epoch = self.epoch.get();
            let mut ring = self.ring.borrow_mut();
            let mut sources = self.sources.borrow_mut();
            for cqe in ring.completion() {
                let data = cqe.user_data();
                if data == CANCEL_TAG {
                    continue;
                }
                if (data >> 32) as u32 != epoch {
                    // A poll abandoned by `recover_dropped`.
                    STALE_CQES.fetch_add(1, Relaxed);
                    continue;
                }
                let key = ((data >> 1) & KEY_MASK) as usize;
                let dir = (data & 1) as usize;
                let Some(source) = sources.get_mut(key) else {
                    continue;
                };
                let wait = &mut source.waits[dir];
                wait.armed = false;
                if source.orphan {
                    if !source.waits.iter().any(|w| w.armed) {
                        sources.remove(key);
                    }
                    continue;
                }
                let res = cqe.result();
                if res < 0 {
                    // Not a cancellation (only orphans are cancelled), so
                    // unexpected; the woken task's syscall sees the error.
                    POLL_ERRORS.fetch_add(1, Relaxed);
                    tracing::debug!(error = %io::Error::from_raw_os_error(-res), "readiness poll failed");
                }
                if let Some(w) = wait.waker.take() {
                    wakers.push(w);
                }
            }
        }
        for w in wakers.drain(..) {
            w.wake();
        }
        // Keep the buffer (and its capacity) for the next reap.
        *self.wake_buf.borrow_mut() = wakers;
    }

    /// The kernel dropped completions (`EBADR`): some armed waits will
    /// never hear from their poll. Wake every armed wait so its task
    /// retries the syscall (a spurious wake is harmless), cancel the old
    /// polls, and move to a new epoch so their completions, should they
    /// still come, are recognised as stale.
    fn recover_dropped(&self) {
        CQ_DROPPED.fetch_add(1, Relaxed);
        let old = self.epoch.get();
        self.epoch.set(old.wrapping_add(1));
        let mut wakers = Vec::new();
        let mut cancels = Vec::new();
        self.sources.borrow_mut().retain(|key, source| {
            for (d, wait) in source.waits.iter_mut().enumerate() {
                if std::mem::take(&mut wait.armed) {
                    let dir = if d == 0 { Dir::Read } else { Dir::Write };
                    cancels.push(user_data(old, key, dir));
                    wakers.extend(wait.waker.take());
                }
            }
            // An orphan has no poll of this epoch left to wait for.
            !source.orphan
        });
        tracing::warn!(
            woken = wakers.len(),
            "io_uring dropped completions (CQ overflow); every armed wait retries"
        );
        for data in cancels {
            self.push(Op::Cancel(data));
        }
        for w in wakers {
            w.wake();
        }
    }

    /// Logs (at most once per second) an enter failure that retrying will
    /// not fix, and pauses briefly so the shard does not spin on it.
    fn enter_failed(&self, e: &io::Error) {
        ENTER_ERRORS.fetch_add(1, Relaxed);
        let now = Instant::now();
        let (last, suppressed) = self.enter_log.get();
        if last.is_none_or(|t| now.duration_since(t) >= ENTER_LOG_EVERY) {
            tracing::error!(error = %e, suppressed, "io_uring_enter failed");
            self.enter_log.set((Some(now), 0));
        } else {
            self.enter_log.set((last, suppressed + 1));
        }
        std::thread::sleep(ENTER_BACKOFF);
    }

    /// Drops every stored waker, for a clean executor shutdown: tasks that
    /// only these wakers kept alive are dropped with them.
    pub fn clear(&self) -> (Vec<Waker>, Vec<Waker>) {
        let mut wakers = Vec::new();
        for (_, s) in self.sources.borrow_mut().iter_mut() {
            for w in &mut s.waits {
                wakers.extend(w.waker.take());
            }
        }
        let timers = self.timers.borrow_mut().clear();
        (wakers, timers)
    }

    /// Sockets registered (orphans included), for tests.
    #[cfg(test)]
    pub fn source_count(&self) -> usize {
        self.sources.borrow().len()
    }

    /// Requests waiting for room in the submission queue, for tests.
    #[cfg(test)]
    pub fn backlog_len(&self) -> usize {
        self.backlog.borrow().len()
    }

    /// Runs the recovery from dropped completions, for tests.
    #[cfg(test)]
    pub fn simulate_dropped_completions(&self) {
        self.recover_dropped();
    }
}

/// `user_data` of a poll: the epoch in the high 32 bits, then the slab key
/// (at most [`MAX_KEY`]) and the direction in the lowest bit.
fn user_data(epoch: u32, key: SourceKey, dir: Dir) -> u64 {
    (u64::from(epoch) << 32) | ((key as u64) << 1) | dir as u64
}

/// Pushes one entry into the submission queue; false when it is full.
fn push_sqe(ring: &mut IoUring, entry: &squeue::Entry) -> bool {
    // SAFETY: `push` requires every buffer or pointer the entry refers to
    // to stay valid until the kernel is done with it. Entries come only
    // from `Reactor::push`, which builds them from an `Op`: a POLL_ADD
    // (an fd number and an event mask) or an ASYNC_CANCEL (a user_data),
    // neither of which points at memory. The fd of a POLL_ADD may already
    // be closed, even reused by a new socket, by the time the kernel reads
    // the entry (`deregister` only queues its cancel, and the socket is
    // closed right after); the cancel with the same user_data follows it
    // in order and removes the poll, and its completion lands on the
    // orphan entry. That is harmless for a poll; it would not be for an
    // operation carrying a buffer, which is why `Op` has none.
    #[allow(unsafe_code)]
    let pushed = unsafe { ring.submission().push(entry).is_ok() };
    pushed
}

/// Builds the ring in the cheapest completion mode the kernel accepts and
/// checks the features the reactor relies on.
fn build_ring() -> io::Result<IoUring> {
    type Setup = fn(&mut io_uring::Builder);
    // DEFER_TASKRUN (6.1+) runs completion work only when we reap;
    // COOP_TASKRUN (5.19+) at least avoids the IPI; plain rings last.
    let modes: [(&str, Setup); 3] = [
        ("DEFER_TASKRUN", |b| {
            b.setup_single_issuer()
                .setup_defer_taskrun()
                .setup_taskrun_flag();
        }),
        ("COOP_TASKRUN", |b| {
            b.setup_coop_taskrun().setup_taskrun_flag();
        }),
        ("plain", |_| {}),
    ];
    // Once per shard, so the allocations do not matter.
    let mut failed: Vec<String> = Vec::new();
    for (mode, setup) in modes {
        let mut builder = IoUring::builder();
        builder.setup_cqsize(CQ_ENTRIES).setup_clamp();
        setup(&mut builder);
        match builder.build(SQ_ENTRIES) {
            Ok(ring) => {
                check_features(&ring)?;
                let thread = std::thread::current();
                tracing::info!(
                    shard = thread.name().unwrap_or("?"),
                    mode,
                    cq_entries = ring.params().cq_entries(),
                    not_available = ?failed,
                    "io_uring ready"
                );
                return Ok(ring);
            }
            Err(e) => failed.push(format!("{mode}: {e}")),
        }
    }
    Err(io::Error::other(format!(
        "cannot create an io_uring ({}); rauta needs io_uring, Linux >= 5.11, \
         not disabled by sysctl or seccomp",
        failed.join("; ")
    )))
}

/// Refuses a ring whose kernel lacks what the reactor relies on: EXT_ARG
/// (a timed wait, 5.11), NODROP (no completion is lost silently, 5.5),
/// POLL_ADD and ASYNC_CANCEL.
fn check_features(ring: &IoUring) -> io::Result<()> {
    let params = ring.params();
    let mut missing = Vec::new();
    if !params.is_feature_ext_arg() {
        missing.push("EXT_ARG");
    }
    if !params.is_feature_nodrop() {
        missing.push("NODROP");
    }
    let mut probe = Probe::new();
    if ring.submitter().register_probe(&mut probe).is_ok() {
        for (name, code) in [
            ("POLL_ADD", opcode::PollAdd::CODE),
            ("ASYNC_CANCEL", opcode::AsyncCancel::CODE),
        ] {
            if !probe.is_supported(code) {
                missing.push(name);
            }
        }
    } else {
        missing.push("PROBE");
    }
    if missing.is_empty() {
        return Ok(());
    }
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        format!(
            "the kernel's io_uring lacks {}: rauta needs Linux >= 5.11",
            missing.join(", ")
        ),
    ))
}
