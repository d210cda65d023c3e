//! A single-threaded executor: a run queue of tasks and the reactor, one
//! per shard thread, driven by [`block_on`].

use super::reactor::{Dir, Reactor, SourceKey};
use async_task::{Runnable, Task};
use std::any::Any;
use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::future::Future;
use std::io;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

/// Tasks run between two looks at the ring, so I/O stays responsive
/// while many tasks are ready.
const BUDGET: usize = 128;
/// ... and at most this much time: the clock is read every
/// [`CLOCK_EVERY`] tasks, so the check costs next to nothing.
const RUN_SLICE: Duration = Duration::from_millis(1);
const CLOCK_EVERY: usize = 16;
/// The longest the loop sleeps without a timer. Wakes from other threads
/// ring the injector's eventfd, which the ring waits on, so this is only
/// a safety net: an idle shard sleeps this long between looks. Longer
/// than the shard's 1 s chores timer, so that timer alone wakes it: at
/// 1 s, the two fell a fraction of a millisecond apart and woke an idle
/// shard twice a second.
const MAX_SLEEP: Duration = Duration::from_secs(10);

/// Socket operations a task may complete in one run before it yields:
/// a connection streaming a large body must not hold the shard while
/// others wait (16 KiB reads: a yield every 512 KiB relayed).
const IO_BUDGET: u32 = 64;

/// Tasks that panicked, over all shards (touched only by a panic).
static PANICS: AtomicU64 = AtomicU64::new(0);

thread_local! {
    static IO_LEFT: Cell<u32> = const { Cell::new(IO_BUDGET) };
    static CURRENT: RefCell<Option<Rc<Executor>>> = const { RefCell::new(None) };
    static THREAD_TOKEN: Cell<usize> = const { Cell::new(0) };
}

/// Tasks woken from another thread (rare: the shard's code wakes only its
/// own tasks; this keeps a stray foreign wake safe). The flag lets the
/// shard look without taking the lock.
struct Injector {
    queue: Mutex<Vec<Runnable>>,
    pending: AtomicBool,
    /// Rung after a push, so a sleeping shard's ring wakes.
    bell: nix::sys::eventfd::EventFd,
}

impl Injector {
    fn new() -> io::Result<Injector> {
        use nix::sys::eventfd::{EfdFlags, EventFd};
        Ok(Injector {
            queue: Mutex::default(),
            pending: AtomicBool::new(false),
            bell: EventFd::from_flags(EfdFlags::EFD_NONBLOCK | EfdFlags::EFD_CLOEXEC)?,
        })
    }
}

struct Executor {
    token: usize,
    queue: RefCell<VecDeque<Runnable>>,
    injector: Arc<Injector>,
    /// The injector's bell as a source of the reactor.
    bell_key: SourceKey,
    reactor: Reactor,
}

impl Executor {
    /// Makes the ring's next wait end when another thread schedules a task.
    fn arm_injector_bell(&self) {
        if !self.reactor.is_waiting(self.bell_key, Dir::Read) {
            let fd = std::os::fd::AsRawFd::as_raw_fd(&self.injector.bell);
            self.reactor
                .wait_ready(self.bell_key, fd, Dir::Read, Waker::noop());
        }
    }
}

/// How many tasks have panicked since the process started (each panic
/// cost one task, and with it the connection it served).
pub fn panics_total() -> u64 {
    PANICS.load(Ordering::Relaxed)
}

/// Runs `f` with the current thread's reactor; `None` outside an executor
/// (or while it shuts down).
pub fn with_reactor<R>(f: impl FnOnce(&Reactor) -> R) -> Option<R> {
    CURRENT
        .try_with(|c| {
            // A shared borrow: nested calls (a dropped waker dropping a
            // task whose sockets deregister) only borrow it again.
            let current = c.try_borrow().ok()?;
            Some(f(&current.as_ref()?.reactor))
        })
        .ok()
        .flatten()
}

/// Takes one unit of the running task's I/O budget; false when it is
/// spent, and the task should yield (wake itself and return `Pending`).
#[inline]
pub fn take_budget() -> bool {
    IO_LEFT.with(|b| match b.get() {
        0 => false,
        n => {
            b.set(n - 1);
            true
        }
    })
}

/// Gives the running task a fresh I/O budget, for tests that need more
/// socket operations in one task run than the budget allows.
#[cfg(test)]
pub fn refill_budget() {
    IO_LEFT.with(|b| b.set(IO_BUDGET));
}

/// Spawns a task on the current thread's executor.
///
/// A panic in the task ends only that task: its future is dropped (closing
/// its sockets), the panic is logged and counted ([`panics_total`]), and
/// whoever awaits its [`Task`] panics in turn.
///
/// # Panics
/// Outside a thread started by `rt::spawn_pinned` (a programming error).
pub fn spawn_local<F>(fut: F) -> Task<F::Output>
where
    F: Future + 'static,
    F::Output: 'static,
{
    let (token, injector) = CURRENT.with(|c| {
        let c = c.borrow();
        let ex = c.as_ref().expect("rt::spawn_local outside a shard thread");
        (ex.token, ex.injector.clone())
    });
    let schedule = move |runnable: Runnable| {
        if THREAD_TOKEN.try_with(Cell::get) == Ok(token) {
            let mut runnable = Some(runnable);
            // `try_with`/`try_borrow`: this can run while the thread's
            // locals are torn down (a waker dropped by a destructor).
            let _ = CURRENT.try_with(|c| {
                if let Ok(c) = c.try_borrow() {
                    if let Some(ex) = c.as_ref() {
                        if let Ok(mut q) = ex.queue.try_borrow_mut() {
                            q.extend(runnable.take());
                        }
                    }
                }
            });
            // No executor to run it: the thread is ending. Leak the task
            // rather than run its destructors without thread-locals.
            if let Some(r) = runnable {
                std::mem::forget(r);
            }
        } else {
            if let Ok(mut q) = injector.queue.lock() {
                q.push(runnable);
            }
            injector.pending.store(true, Ordering::Release);
            // Fails only when the counter is full: it is rung already.
            let _ = injector.bell.write(1);
        }
    };
    let (runnable, task) = async_task::spawn_local(fut, schedule);
    runnable.schedule();
    task
}

/// Installs a new executor on this thread (creating its io_uring).
pub fn install() -> io::Result<()> {
    static NEXT_TOKEN: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(1);
    let token = NEXT_TOKEN.fetch_add(1, Ordering::Relaxed);
    let reactor = Reactor::new()?;
    let bell_key = reactor.register()?;
    let ex = Rc::new(Executor {
        token,
        queue: RefCell::new(VecDeque::with_capacity(1024)),
        injector: Arc::new(Injector::new()?),
        bell_key,
        reactor,
    });
    THREAD_TOKEN.with(|t| t.set(token));
    CURRENT.with(|c| *c.borrow_mut() = Some(ex));
    Ok(())
}

/// Runs `main` on this thread's executor (see [`install`]) until it
/// completes; the tasks still pending then are dropped.
///
/// # Panics
/// When no executor was installed on this thread, or (after the shutdown)
/// when `main` itself panicked: the shard is gone then, and its thread's
/// `join` says so.
pub fn block_on<F: Future<Output = ()> + 'static>(main: F) {
    let ex = CURRENT.with(|c| {
        c.borrow()
            .clone()
            .expect("rt::block_on without rt::install")
    });
    // Shuts the executor down however this function is left, unwinding
    // included, so no task outlives it into the thread-local teardown.
    let mut guard = ShutdownGuard {
        ex: ex.clone(),
        main: Some(spawn_local(main)),
    };
    while !guard.main.as_ref().is_none_or(Task::is_finished) {
        let now = Instant::now();
        ex.reactor.fire_timers(now);
        // A plain load first: the flag is almost never set.
        if ex.injector.pending.load(Ordering::Relaxed)
            && ex.injector.pending.swap(false, Ordering::Acquire)
        {
            // Reset the bell before taking the queue: a push after this
            // rings it again, so no wake is lost.
            let _ = ex.injector.bell.read();
            if let Ok(mut q) = ex.injector.queue.lock() {
                ex.queue.borrow_mut().extend(q.drain(..));
            }
        }
        run_queue(&ex, now);
        if guard.main.as_ref().is_none_or(Task::is_finished) {
            break;
        }
        let idle = ex.queue.borrow().is_empty() && !ex.injector.pending.load(Ordering::Acquire);
        if idle {
            ex.arm_injector_bell();
        }
        ex.reactor.turn(idle, MAX_SLEEP);
    }
    let main_panicked = guard.main.take().is_some_and(|main| {
        let mut main = std::pin::pin!(main.fallible());
        let poll = main.as_mut().poll(&mut Context::from_waker(Waker::noop()));
        matches!(poll, Poll::Ready(None))
    });
    drop(guard);
    if main_panicked {
        std::panic::resume_unwind(Box::new("the shard's main task panicked"));
    }
}

fn run_queue(ex: &Executor, start: Instant) {
    for n in 1..=BUDGET {
        let next = ex.queue.borrow_mut().pop_front();
        let Some(runnable) = next else {
            return;
        };
        IO_LEFT.with(|b| b.set(IO_BUDGET));
        if let Err(payload) = catch_unwind(AssertUnwindSafe(|| runnable.run())) {
            // async-task has closed the task and dropped its future.
            task_panicked(payload);
        }
        if n % CLOCK_EVERY == 0 && start.elapsed() >= RUN_SLICE {
            return;
        }
    }
}

/// Counts and logs a task's panic.
fn task_panicked(payload: Box<dyn Any + Send>) {
    PANICS.fetch_add(1, Ordering::Relaxed);
    let message = payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(not a string)");
    let thread = std::thread::current();
    tracing::error!(
        shard = thread.name().unwrap_or("?"),
        panic = message,
        "a task panicked; it was dropped, with its connection"
    );
    // A payload's destructor may panic too; that must not unwind further.
    let _ = catch_unwind(AssertUnwindSafe(move || drop(payload)));
}

struct ShutdownGuard {
    ex: Rc<Executor>,
    main: Option<Task<()>>,
}

impl Drop for ShutdownGuard {
    fn drop(&mut self) {
        shutdown(&self.ex, self.main.take());
    }
}

/// Drops every task: queued ones directly, waiting ones by dropping the
/// wakers that kept them alive. Their destructors may still call into the
/// reactor, so nothing is borrowed while they run.
fn shutdown(ex: &Rc<Executor>, main: Option<Task<()>>) {
    drop(main);
    loop {
        let queued: Vec<Runnable> = ex.queue.borrow_mut().drain(..).collect();
        let (wakers, timers) = ex.reactor.clear();
        if queued.is_empty() && wakers.is_empty() && timers.is_empty() {
            break;
        }
        drop(queued);
        drop(wakers);
        drop(timers);
    }
    // Dropped outside the borrow, in case its destructors look for it.
    let ex = CURRENT.with(|c| c.borrow_mut().take());
    THREAD_TOKEN.with(|t| t.set(0));
    drop(ex);
}
