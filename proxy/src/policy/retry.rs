//! `proxy-next-upstream`: which failed attempts a route tries again on
//! another endpoint. The decision itself is taken in one place,
//! `exchange::forward`, from the error's [`crate::error::Retry`].

use crate::error::Why;
use rauta_shared::policy::RetryPolicy;
use std::time::Duration;

/// The statuses `proxy-next-upstream` can name, one bit each.
const STATUSES: [u16; 7] = [403, 404, 429, 500, 502, 503, 504];

/// A route's retry policy, compiled.
#[derive(Debug, Clone, Copy)]
pub struct Retries {
    on_error: bool,
    on_timeout: bool,
    on_invalid_header: bool,
    statuses: u8,
    /// POST, PATCH and LOCK are retried after being sent too.
    pub non_idempotent: bool,
    /// Attempts in all, the first included; 0: one per endpoint.
    pub tries: u32,
    /// Time for all attempts (none: no limit).
    pub timeout: Option<Duration>,
}

impl Retries {
    /// Compiles a policy.
    pub fn compile(p: &RetryPolicy) -> Retries {
        let statuses = STATUSES
            .iter()
            .enumerate()
            .filter(|(_, s)| p.on_status.contains(s))
            .fold(0u8, |bits, (i, _)| bits | (1 << i));
        Retries {
            on_error: p.on_error,
            on_timeout: p.on_timeout,
            on_invalid_header: p.on_invalid_header,
            statuses,
            non_idempotent: p.non_idempotent,
            tries: p.tries,
            timeout: (p.timeout_ms > 0).then(|| Duration::from_millis(p.timeout_ms)),
        }
    }

    /// Whether the route retries an attempt that failed this way.
    pub fn covers(&self, why: Why) -> bool {
        match why {
            Why::Error => self.on_error,
            Why::Timeout => self.on_timeout,
            Why::InvalidHeader => self.on_invalid_header,
            Why::Status(code) => self.retries_status(code),
        }
    }

    /// Whether a response with `status` is retried (cheap: checked on every
    /// response head of the route).
    #[inline]
    pub fn retries_status(&self, status: u16) -> bool {
        self.statuses != 0
            && STATUSES
                .iter()
                .position(|s| *s == status)
                .is_some_and(|i| self.statuses & (1 << i) != 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_and_causes() {
        let r = Retries::compile(&RetryPolicy {
            on_error: false,
            on_timeout: true,
            on_invalid_header: false,
            on_status: vec![502, 429],
            non_idempotent: false,
            tries: 2,
            timeout_ms: 0,
        });
        assert!(r.retries_status(502) && r.retries_status(429));
        assert!(!r.retries_status(500) && !r.retries_status(200));
        assert!(r.covers(Why::Timeout) && !r.covers(Why::Error));
        assert!(r.timeout.is_none());
    }
}
