//! `proxy-connect-timeout`, `proxy-read-timeout`, `proxy-send-timeout`:
//! whole seconds; read and send are idle times between two I/Os.

use super::Reader;
use rauta_shared::policy::RoutePolicy;

/// The longest timeout accepted (a day); beyond it the default is kept.
const MAX_SECONDS: u64 = 86_400;

/// Reads the three timeouts into `route.timeouts`; a value that is not a
/// positive integer keeps the global value, with a warning (as
/// ingress-nginx keeps its default).
pub(super) fn parse(r: &mut Reader<'_>, route: &mut RoutePolicy) {
    let t = &mut route.timeouts;
    t.connect_ms = seconds(r, "proxy-connect-timeout");
    t.read_ms = seconds(r, "proxy-read-timeout");
    t.send_ms = seconds(r, "proxy-send-timeout");
}

/// `key` in milliseconds, when set to a positive integer number of seconds.
pub(super) fn seconds(r: &mut Reader<'_>, key: &str) -> Option<u64> {
    let value = r.get(key)?;
    match value.trim().parse::<u64>() {
        Ok(s) if (1..=MAX_SECONDS).contains(&s) => Some(s * 1000),
        _ => {
            r.warn(
                key,
                format!("{value:?} is not a whole number of seconds from 1 to {MAX_SECONDS}; the global value is used"),
            );
            None
        }
    }
}
