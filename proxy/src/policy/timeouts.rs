//! `proxy-connect-timeout`, `proxy-read-timeout`, `proxy-send-timeout`:
//! a route's own upstream timeouts over the global ones.

use crate::upstream::ConnectPolicy;
use std::time::Duration;

/// The timeouts a route sets; the others stay global.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    connect: Option<Duration>,
    read: Option<Duration>,
    send: Option<Duration>,
}

impl Timeouts {
    /// `None` when the route sets none.
    pub fn compile(t: &rauta_shared::policy::Timeouts) -> Option<Timeouts> {
        let ms = |v: Option<u64>| v.map(Duration::from_millis);
        let compiled = Timeouts {
            connect: ms(t.connect_ms),
            read: ms(t.read_ms),
            send: ms(t.send_ms),
        };
        (t.connect_ms.is_some() || t.read_ms.is_some() || t.send_ms.is_some()).then_some(compiled)
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
}
