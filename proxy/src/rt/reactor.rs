//! The shard's io_uring: readiness waits for sockets and the timer list.
//!
//! Sockets are non-blocking and read and written with plain syscalls; the
//! ring is only told to wait (a one-shot `POLL_ADD`) after a syscall said
//! `EAGAIN`, the way an epoll loop works. The ring is created with
//! `DEFER_TASKRUN` + `SINGLE_ISSUER` where the kernel has them, so a
//! completion never interrupts the running shard with an IPI: completions
//! are reaped once per loop turn, in one `io_uring_enter`.

use io_uring::{opcode, squeue, types, IoUring};
use slab::Slab;
use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::io;
use std::os::fd::RawFd;
use std::task::Waker;
use std::time::{Duration, Instant};

/// Ring size; a push into a full submission queue submits first.
const RING_ENTRIES: u32 = 1024;
/// `user_data` of cancel requests, whose completions need no dispatch.
const CANCEL_TAG: u64 = u64::MAX;

/// Which half of a socket a wait is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dir {
    /// Readable (or accept-able, or hung up).
    Read = 0,
    /// Writable (or connected, or failed).
    Write = 1,
}

/// One direction's wait state. Completions are only reaped between task
/// runs, so "not armed" always means "the last poll fired, or none was
/// needed yet": either way the owner's next step is a syscall.
#[derive(Debug, Default)]
struct Wait {
    /// A `POLL_ADD` is in flight in the kernel.
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
/// Key of a pending timer: deadline plus a sequence number for uniqueness.
pub type TimerKey = (Instant, u64);

/// The per-thread reactor.
pub struct Reactor {
    ring: RefCell<IoUring>,
    sources: RefCell<Slab<Source>>,
    timers: RefCell<BTreeMap<TimerKey, Waker>>,
    timer_seq: Cell<u64>,
}

impl Reactor {
    /// Creates the ring, with the cheapest completion mode the kernel has.
    pub fn new() -> io::Result<Reactor> {
        // DEFER_TASKRUN (6.1+) runs completion work only when we reap;
        // COOP_TASKRUN (5.19+) at least avoids the IPI; plain rings last.
        let ring = IoUring::builder()
            .setup_single_issuer()
            .setup_defer_taskrun()
            .setup_taskrun_flag()
            .build(RING_ENTRIES)
            .or_else(|_| {
                IoUring::builder()
                    .setup_coop_taskrun()
                    .setup_taskrun_flag()
                    .build(RING_ENTRIES)
            })
            .or_else(|_| IoUring::new(RING_ENTRIES))?;
        Ok(Reactor {
            ring: RefCell::new(ring),
            sources: RefCell::new(Slab::with_capacity(256)),
            timers: RefCell::new(BTreeMap::new()),
            timer_seq: Cell::new(0),
        })
    }

    /// Registers a socket for readiness waits.
    pub fn register(&self) -> SourceKey {
        self.sources.borrow_mut().insert(Source::default())
    }

    /// Forgets a socket that is about to be closed. Polls still in flight
    /// are cancelled first: a pending poll holds the file open, and a
    /// client must see our FIN now, not whenever that poll would fire.
    pub fn deregister(&self, key: SourceKey) {
        let mut sources = self.sources.borrow_mut();
        let Some(source) = sources.get_mut(key) else {
            return;
        };
        let armed = [Dir::Read, Dir::Write].map(|d| {
            let w = &mut source.waits[d as usize];
            w.waker = None;
            w.armed.then(|| user_data(key, d))
        });
        if armed == [None, None] {
            sources.remove(key);
            return;
        }
        source.orphan = true;
        drop(sources);
        for data in armed.into_iter().flatten() {
            self.push(opcode::AsyncCancel::new(data).build().user_data(CANCEL_TAG));
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
            let events = match dir {
                Dir::Read => libc::POLLIN | libc::POLLRDHUP,
                Dir::Write => libc::POLLOUT,
            };
            self.push(
                opcode::PollAdd::new(types::Fd(fd), events as u32)
                    .build()
                    .user_data(user_data(key, dir)),
            );
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

    fn push(&self, entry: squeue::Entry) {
        let mut ring = self.ring.borrow_mut();
        // SAFETY: polls and cancels reference no user memory; the fd of a
        // poll stays open until its completion or cancellation (see
        // `deregister`, which runs before the socket is closed).
        #[allow(unsafe_code)]
        let pushed = unsafe { ring.submission().push(&entry).is_ok() };
        if pushed {
            return;
        }
        if let Err(e) = ring.submit() {
            tracing::error!(error = %e, "io_uring submit failed");
        }
        // SAFETY: as above.
        #[allow(unsafe_code)]
        let pushed = unsafe { ring.submission().push(&entry).is_ok() };
        if !pushed {
            tracing::error!("io_uring submission queue stays full; a wait is lost");
        }
    }

    /// Adds a timer; the waker is woken once `deadline` has passed.
    pub fn add_timer(&self, deadline: Instant, waker: Waker) -> TimerKey {
        let seq = self.timer_seq.get();
        self.timer_seq.set(seq.wrapping_add(1));
        let key = (deadline, seq);
        self.timers.borrow_mut().insert(key, waker);
        key
    }

    /// Replaces a pending timer's waker; false when it already fired.
    pub fn update_timer(&self, key: TimerKey, waker: &Waker) -> bool {
        match self.timers.borrow_mut().get_mut(&key) {
            Some(w) => {
                w.clone_from(waker);
                true
            }
            None => false,
        }
    }

    /// Removes a timer that is no longer wanted.
    pub fn remove_timer(&self, key: TimerKey) {
        self.timers.borrow_mut().remove(&key);
    }

    /// Wakes every timer whose deadline has passed.
    pub fn fire_timers(&self, now: Instant) {
        loop {
            let mut timers = self.timers.borrow_mut();
            let Some(entry) = timers.first_entry() else {
                return;
            };
            if entry.key().0 > now {
                return;
            }
            let waker = entry.remove();
            drop(timers);
            waker.wake();
        }
    }

    /// Submits queued requests and reaps completions; waits for one when
    /// `block` is set, but never past the next timer or `max_wait`.
    pub fn turn(&self, block: bool, max_wait: Duration) {
        let wait = if block {
            let next = self.timers.borrow().first_key_value().map(|(k, _)| k.0);
            let now = Instant::now();
            match next {
                Some(at) if at <= now => None,
                Some(at) => Some((at - now).min(max_wait)),
                None => Some(max_wait),
            }
        } else {
            None
        };
        {
            let mut ring = self.ring.borrow_mut();
            if wait.is_none() {
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
            let result = match wait {
                Some(d) => {
                    let ts = types::Timespec::new()
                        .sec(d.as_secs())
                        .nsec(d.subsec_nanos());
                    let args = types::SubmitArgs::new().timespec(&ts);
                    ring.submitter().submit_with_args(1, &args)
                }
                None => ring.submitter().submit_and_wait(0),
            };
            if let Err(e) = result {
                match e.raw_os_error() {
                    Some(libc::ETIME | libc::EINTR | libc::EBUSY | libc::EAGAIN) => {}
                    _ => tracing::error!(error = %e, "io_uring_enter failed"),
                }
            }
        }
        self.reap();
    }

    fn reap(&self) {
        let mut wakers: Vec<Waker> = Vec::new();
        {
            let mut ring = self.ring.borrow_mut();
            let mut sources = self.sources.borrow_mut();
            for cqe in ring.completion() {
                let data = cqe.user_data();
                if data == CANCEL_TAG {
                    continue;
                }
                let key = (data >> 1) as usize;
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
                if let Some(w) = wait.waker.take() {
                    wakers.push(w);
                }
            }
        }
        for w in wakers {
            w.wake();
        }
    }

    /// Drops every stored waker, for a clean executor shutdown: tasks that
    /// only these wakers kept alive are dropped with them.
    pub fn clear(&self) -> (Vec<Waker>, BTreeMap<TimerKey, Waker>) {
        let mut wakers = Vec::new();
        for (_, s) in self.sources.borrow_mut().iter_mut() {
            for w in &mut s.waits {
                wakers.extend(w.waker.take());
            }
        }
        (wakers, std::mem::take(&mut *self.timers.borrow_mut()))
    }
}

fn user_data(key: SourceKey, dir: Dir) -> u64 {
    ((key as u64) << 1) | dir as u64
}
