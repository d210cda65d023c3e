//! `proxy-connect-timeout`, `proxy-read-timeout`, `proxy-send-timeout`:
//! a route's own upstream timeouts over the global ones; and HTTPRoute's
//! `timeouts.request` and `timeouts.backendRequest`, which bound the time
//! until a response head arrives (`exchange::forward` keeps them).

use crate::upstream::ConnectPolicy;
use std::time::Duration;

/// The timeouts a route sets; the others stay global.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    connect: Option<Duration>,
    read: Option<Duration>,
    send: Option<Duration>,
    deadlines: Deadlines,
}

/// Time limits until the response head arrives.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Deadlines {
    /// From the request head's arrival, all attempts together: then 504.
    pub request: Option<Duration>,
    /// One attempt, from connecting: then the attempt fails as a timeout.
    pub attempt: Option<Duration>,
}

impl Timeouts {
    /// `None` when the route sets none. A request or backend-request
    /// limit of 0 is none (HTTPRoute's `0s` turns the limit off).
    pub fn compile(t: &rauta_shared::policy::Timeouts) -> Option<Timeouts> {
        let ms = |v: Option<u64>| v.map(Duration::from_millis);
        let limit = |v: Option<u64>| ms(v.filter(|ms| *ms > 0));
        let compiled = Timeouts {
            connect: ms(t.connect_ms),
            read: ms(t.read_ms),
            send: ms(t.send_ms),
            deadlines: Deadlines {
                request: limit(t.request_ms),
                attempt: limit(t.backend_request_ms),
            },
        };
        let any = compiled.connect.is_some()
            || compiled.read.is_some()
            || compiled.send.is_some()
            || compiled.deadlines != Deadlines::default();
        any.then_some(compiled)
    }

    /// `global` with the route's values put in.
    pub fn apply(&self, global: &ConnectPolicy) -> ConnectPolicy {
        ConnectPolicy {
            timeout: self.connect.unwrap_or(global.timeout),
            attempts: global.attempts,
            read_timeout: self.read.unwrap_or(global.read_timeout),
            write_timeout: self.send.unwrap_or(global.write_timeout),
        }
    }

    /// The request and attempt limits, when the route sets either.
    pub fn deadlines(&self) -> Option<Deadlines> {
        (self.deadlines != Deadlines::default()).then_some(self.deadlines)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_turns_a_limit_off() {
        let t = |request_ms, backend_request_ms| {
            Timeouts::compile(&rauta_shared::policy::Timeouts {
                request_ms,
                backend_request_ms,
                ..Default::default()
            })
        };
        assert!(t(None, None).is_none());
        assert!(t(Some(0), Some(0)).is_none());
        let both = t(Some(500), Some(200)).and_then(|t| t.deadlines());
        assert_eq!(
            both,
            Some(Deadlines {
                request: Some(Duration::from_millis(500)),
                attempt: Some(Duration::from_millis(200)),
            })
        );
        let one = t(Some(0), Some(200)).and_then(|t| t.deadlines());
        assert_eq!(one.map(|d| d.request), Some(None));
    }
}
