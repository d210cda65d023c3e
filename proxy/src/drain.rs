//! A shard-local "drain started" signal that idle waits can race against,
//! without allocating per wait (wakers live in a reused slab).

use slab::Slab;
use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

/// Set once when the shard starts draining; wakes every waiter.
#[derive(Debug, Default)]
pub struct DrainSignal {
    draining: Cell<bool>,
    waiters: RefCell<Slab<Waker>>,
}

impl DrainSignal {
    /// True once the drain has started.
    pub fn is_draining(&self) -> bool {
        self.draining.get()
    }

    /// Starts the drain and wakes every waiter.
    pub fn start(&self) {
        self.draining.set(true);
        let waiters: Vec<Waker> = self.waiters.borrow_mut().drain().collect();
        for waker in waiters {
            waker.wake();
        }
    }

    /// A future that completes when the drain starts.
    pub fn wait(&self) -> DrainWait<'_> {
        DrainWait {
            signal: self,
            slot: None,
        }
    }
}

/// Completes when the shard starts draining.
#[derive(Debug)]
pub struct DrainWait<'a> {
    signal: &'a DrainSignal,
    slot: Option<usize>,
}

impl Future for DrainWait<'_> {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.signal.is_draining() {
            return Poll::Ready(());
        }
        let mut waiters = self.signal.waiters.borrow_mut();
        match self.slot {
            Some(slot) if waiters.contains(slot) => waiters[slot].clone_from(cx.waker()),
            _ => {
                let slot = waiters.insert(cx.waker().clone());
                drop(waiters);
                self.slot = Some(slot);
            }
        }
        Poll::Pending
    }
}

impl Drop for DrainWait<'_> {
    fn drop(&mut self) {
        if let Some(slot) = self.slot {
            let mut waiters = self.signal.waiters.borrow_mut();
            if waiters.contains(slot) {
                waiters.remove(slot);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wakes_waiters_and_frees_slots() {
        let signal = DrainSignal::default();
        let waker = futures_lite::future::block_on(futures_lite::future::poll_fn(|cx| {
            Poll::Ready(cx.waker().clone())
        }));
        let mut cx = Context::from_waker(&waker);
        {
            let mut w = std::pin::pin!(signal.wait());
            assert!(w.as_mut().poll(&mut cx).is_pending());
            assert_eq!(signal.waiters.borrow().len(), 1);
        }
        assert_eq!(
            signal.waiters.borrow().len(),
            0,
            "dropped waiter leaves no slot"
        );
        let mut w = std::pin::pin!(signal.wait());
        assert!(w.as_mut().poll(&mut cx).is_pending());
        signal.start();
        assert!(w.as_mut().poll(&mut cx).is_ready());
    }
}
