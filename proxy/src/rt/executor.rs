//! A single-threaded executor: a run queue of tasks and the reactor, one
//! per shard thread, driven by [`block_on`].

use super::reactor::Reactor;
use async_task::{Runnable, Task};
use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::future::Future;
use std::io;
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Tasks run between two looks at the ring, so I/O stays responsive
/// while many tasks are ready.
const BUDGET: usize = 128;
/// The longest the loop sleeps without a timer: wakes from other threads
/// land in the injector, which is only looked at between sleeps.
const MAX_SLEEP: Duration = Duration::from_millis(50);

/// Socket operations a task may complete in one run before it yields:
/// a connection streaming a large body must not hold the shard while
/// others wait (16 KiB reads: a yield every 512 KiB relayed).
const IO_BUDGET: u32 = 64;

thread_local! {
    static IO_LEFT: Cell<u32> = const { Cell::new(IO_BUDGET) };
    static CURRENT: RefCell<Option<Rc<Executor>>> = const { RefCell::new(None) };
    static THREAD_TOKEN: Cell<usize> = const { Cell::new(0) };
}

struct Executor {
    token: usize,
    queue: RefCell<VecDeque<Runnable>>,
    /// Tasks woken from another thread (rare: the shard's code wakes only
    /// its own tasks; this keeps a stray foreign wake safe).
    injector: Arc<Mutex<Vec<Runnable>>>,
    reactor: Reactor,
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

/// Spawns a task on the current thread's executor.
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
        if THREAD_TOKEN.with(Cell::get) == token {
            CURRENT.with(|c| {
                if let Some(ex) = c.borrow().as_ref() {
                    ex.queue.borrow_mut().push_back(runnable);
                }
            });
        } else if let Ok(mut q) = injector.lock() {
            q.push(runnable);
        }
    };
    let (runnable, task) = async_task::spawn_local(fut, schedule);
    runnable.schedule();
    task
}

/// Installs a new executor on this thread (creating its io_uring).
pub fn install() -> io::Result<()> {
    static NEXT_TOKEN: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(1);
    let token = NEXT_TOKEN.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let ex = Rc::new(Executor {
        token,
        queue: RefCell::new(VecDeque::with_capacity(1024)),
        injector: Arc::new(Mutex::new(Vec::new())),
        reactor: Reactor::new()?,
    });
    THREAD_TOKEN.with(|t| t.set(token));
    CURRENT.with(|c| *c.borrow_mut() = Some(ex));
    Ok(())
}

/// Runs `main` on this thread's executor (see [`install`]) until it
/// completes; the tasks still pending then are dropped.
///
/// # Panics
/// When no executor was installed on this thread.
pub fn block_on<F: Future<Output = ()> + 'static>(main: F) {
    let ex = CURRENT.with(|c| {
        c.borrow()
            .clone()
            .expect("rt::block_on without rt::install")
    });
    let main = spawn_local(main);
    while !main.is_finished() {
        run_queue(&ex);
        ex.reactor.fire_timers(Instant::now());
        let idle = ex.queue.borrow().is_empty();
        ex.reactor.turn(idle, MAX_SLEEP);
        if let Ok(mut q) = ex.injector.lock() {
            ex.queue.borrow_mut().extend(q.drain(..));
        }
    }
    shutdown(&ex, main);
}

fn run_queue(ex: &Executor) {
    for _ in 0..BUDGET {
        let next = ex.queue.borrow_mut().pop_front();
        match next {
            Some(runnable) => {
                IO_LEFT.with(|b| b.set(IO_BUDGET));
                runnable.run();
            }
            None => return,
        }
    }
}

/// Drops every task: queued ones directly, waiting ones by dropping the
/// wakers that kept them alive. Their destructors may still call into the
/// reactor, so nothing is borrowed while they run.
fn shutdown(ex: &Rc<Executor>, main: Task<()>) {
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
