//! Timers on the shard's reactor: [`sleep`] and [`Deadline`].

use super::executor::with_reactor;
use super::reactor::TimerKey;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

/// Completes once `d` has passed.
pub fn sleep(d: Duration) -> Sleep {
    Sleep {
        deadline: Deadline::after(d),
    }
}

/// The future returned by [`sleep`].
#[derive(Debug)]
pub struct Sleep {
    deadline: Deadline,
}

impl Future for Sleep {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.deadline.poll_expired(cx) {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }
}

/// A point in time that a waiting task can be woken at; the timer is
/// registered only when the task actually waits, and removed on drop.
#[derive(Debug)]
pub struct Deadline {
    at: Instant,
    timer: Option<TimerKey>,
}

impl Deadline {
    /// A deadline `d` from now.
    pub fn after(d: Duration) -> Deadline {
        Deadline {
            at: Instant::now() + d,
            timer: None,
        }
    }

    /// True once the deadline has passed; otherwise makes sure the task
    /// is woken when it does.
    pub fn poll_expired(&mut self, cx: &mut Context<'_>) -> bool {
        if let Some(key) = self.timer {
            let pending = with_reactor(|r| r.update_timer(key, cx.waker())).unwrap_or(false);
            if pending {
                return false;
            }
            self.timer = None;
            return true;
        }
        if Instant::now() >= self.at {
            return true;
        }
        let at = self.at;
        self.timer = with_reactor(|r| r.add_timer(at, cx.waker().clone()));
        // Without a reactor nobody would wake us: treat as expired.
        self.timer.is_none()
    }
}

impl Drop for Deadline {
    fn drop(&mut self) {
        if let Some(key) = self.timer.take() {
            with_reactor(|r| r.remove_timer(key));
        }
    }
}
