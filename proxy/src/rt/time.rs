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

/// The furthest a deadline is put: about 30 years, "never" in practice,
/// and far from where `Instant` arithmetic overflows.
const FAR_FUTURE: Duration = Duration::from_secs(86_400 * 365 * 30);

impl Deadline {
    /// A deadline `d` from now (at most [`FAR_FUTURE`], so a huge timeout
    /// from a configuration cannot overflow `Instant`).
    pub fn after(d: Duration) -> Deadline {
        let now = Instant::now();
        let at = now
            .checked_add(d.min(FAR_FUTURE))
            .or_else(|| now.checked_add(Duration::from_secs(86_400)))
            .unwrap_or(now);
        Deadline { at, timer: None }
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
