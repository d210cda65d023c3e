//! A shard-local counting semaphore (the connection cap).

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::future::poll_fn;
use std::rc::Rc;
use std::task::{Poll, Waker};

/// Counts permits; waiters are served first come, first served.
#[derive(Debug)]
pub struct Semaphore {
    available: Cell<u64>,
    waiters: RefCell<VecDeque<Waker>>,
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
        }
    }

    /// Waits for `n` permits and takes them.
    pub async fn acquire(self: &Rc<Self>, n: u64) -> Permit {
        poll_fn(|cx| {
            let have = self.available.get();
            if have >= n {
                self.available.set(have - n);
                return Poll::Ready(());
            }
            let mut waiters = self.waiters.borrow_mut();
            if !waiters.iter().any(|w| w.will_wake(cx.waker())) {
                waiters.push_back(cx.waker().clone());
            }
            Poll::Pending
        })
        .await;
        Permit {
            sem: self.clone(),
            n,
        }
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        let sem = &self.sem;
        sem.available.set(sem.available.get() + self.n);
        let next = sem.waiters.borrow_mut().pop_front();
        if let Some(w) = next {
            w.wake();
        }
    }
}
