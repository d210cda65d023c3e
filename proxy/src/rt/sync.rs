//! A shard-local counting semaphore (the connection cap).

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

/// Counts permits; waiters are woken first come, first served.
///
/// Each waiting acquire owns one entry in the queue, removed when it
/// succeeds or is dropped. A release wakes the first waiter not woken yet;
/// a woken waiter that is dropped before it took its permits passes the
/// wake on, so a release is never spent on a waiter that is gone.
#[derive(Debug)]
pub struct Semaphore {
    available: Cell<u64>,
    waiters: RefCell<VecDeque<Waiter>>,
    next_id: Cell<u64>,
}

#[derive(Debug)]
struct Waiter {
    id: u64,
    waker: Waker,
    /// Woken by a release and not polled since.
    notified: bool,
}

/// Holds permits until dropped.
#[derive(Debug)]
pub struct Permit {
    sem: Rc<Semaphore>,
    n: u64,
}

impl Semaphore {
    /// A semaphore with `n` permits.
    pub fn new(n: u64) -> Semaphore {
        Semaphore {
            available: Cell::new(n),
            waiters: RefCell::new(VecDeque::new()),
            next_id: Cell::new(0),
        }
    }

    /// Waits for `n` permits and takes them.
    pub async fn acquire(self: &Rc<Self>, n: u64) -> Permit {
        Acquire {
            sem: self,
            n,
            id: None,
        }
        .await;
        Permit {
            sem: self.clone(),
            n,
        }
    }

    /// Wakes the first waiter that has not been woken yet.
    fn wake_next(&self) {
        let waker = {
            let mut waiters = self.waiters.borrow_mut();
            waiters.iter_mut().find(|w| !w.notified).map(|w| {
                w.notified = true;
                w.waker.clone()
            })
        };
        if let Some(w) = waker {
            w.wake();
        }
    }

    /// Removes the waiter `id`; returns whether it had been woken.
    fn remove(&self, id: u64) -> Option<bool> {
        let mut waiters = self.waiters.borrow_mut();
        let at = waiters.iter().position(|w| w.id == id)?;
        waiters.remove(at).map(|w| w.notified)
    }
}

/// One acquire in progress; owns its queue entry while it waits.
struct Acquire<'a> {
    sem: &'a Semaphore,
    n: u64,
    id: Option<u64>,
}

impl Future for Acquire<'_> {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let sem = self.sem;
        let have = sem.available.get();
        if have >= self.n {
            sem.available.set(have - self.n);
            if let Some(id) = self.id.take() {
                sem.remove(id);
            }
            return Poll::Ready(());
        }
        let mut waiters = sem.waiters.borrow_mut();
        let queued = self
            .id
            .and_then(|id| waiters.iter_mut().find(|w| w.id == id));
        match queued {
            Some(w) => {
                w.waker.clone_from(cx.waker());
                // Woken but still short: wait for the next release.
                w.notified = false;
            }
            None => {
                let id = sem.next_id.get();
                sem.next_id.set(id.wrapping_add(1));
                waiters.push_back(Waiter {
                    id,
                    waker: cx.waker().clone(),
                    notified: false,
                });
                drop(waiters);
                self.id = Some(id);
            }
        }
        Poll::Pending
    }
}

impl Drop for Acquire<'_> {
    fn drop(&mut self) {
        if let Some(id) = self.id.take() {
            if self.sem.remove(id) == Some(true) {
                // Its wake came from a release it can no longer use.
                self.sem.wake_next();
            }
        }
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        let sem = &self.sem;
        sem.available.set(sem.available.get() + self.n);
        sem.wake_next();
    }
}
