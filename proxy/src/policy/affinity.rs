//! Sticky sessions by cookie (`affinity: cookie`, `session-cookie-*`): the
//! cookie names an endpoint by an opaque, stable id (a hash of the
//! backend's name and the endpoint's address, the same on every node and
//! after restarts), 16 hex digits, decoded without allocation.

use crate::balance::Backend;
use rauta_shared::policy::{Affinity as AffinityPolicy, SameSite};
use std::io::Write;
use std::time::{SystemTime, UNIX_EPOCH};

/// The ids of one backend's endpoints: by endpoint index, and sorted for lookup.
#[derive(Debug, Default)]
struct Ids {
    by_index: Box<[u64]>,
    sorted: Box<[(u64, usize)]>,
}

impl Ids {
    fn new(backend: &Backend) -> Ids {
        // `#n` marks another policy on the same Service port: same endpoints, same ids.
        let name = backend.name.split('#').next().unwrap_or(&backend.name);
        let by_index: Box<[u64]> = backend
            .endpoints
            .iter()
            .map(|e| endpoint_id(name, e.addr))
            .collect();
        let mut sorted: Vec<(u64, usize)> = by_index.iter().copied().zip(0..).collect();
        sorted.sort_unstable();
        Ids {
            by_index,
            sorted: sorted.into(),
        }
    }

    fn find(&self, id: u64) -> Option<usize> {
        self.sorted
            .binary_search_by_key(&id, |(i, _)| *i)
            .ok()
            .map(|at| self.sorted[at].1)
    }
}

/// The id of an endpoint of the backend `name`.
fn endpoint_id(name: &str, addr: std::net::SocketAddr) -> u64 {
    let mut buf = Vec::with_capacity(name.len() + 24);
    buf.extend_from_slice(name.as_bytes());
    buf.push(0);
    match addr.ip() {
        std::net::IpAddr::V4(ip) => buf.extend_from_slice(&ip.octets()),
        std::net::IpAddr::V6(ip) => buf.extend_from_slice(&ip.octets()),
    }
    buf.extend_from_slice(&addr.port().to_be_bytes());
    xxhash_rust::xxh3::xxh3_64(&buf)
}

/// A compiled [`AffinityPolicy`] for one route and its (one or two) backends.
#[derive(Debug)]
pub struct Affinity {
    /// The cookie's name.
    pub cookie: Box<str>,
    /// `Set-Cookie: NAME=`.
    prefix: Box<[u8]>,
    /// `; Path=…` and `; Max-Age=…`, fixed per route.
    attrs: Box<[u8]>,
    expires_s: Option<u64>,
    secure: bool,
    samesite: Option<&'static str>,
    /// After a failed attempt the next endpoint is tried and named by the cookie.
    pub change_on_failure: bool,
    /// A cookie naming a canary endpoint keeps the client on the canary.
    pub canary_sticky: bool,
    /// `[main, canary]`.
    ids: [Ids; 2],
}

impl Affinity {
    /// Compiles the cookie for a rule whose path is `path`, over its main
    /// backend and its canary's, if any.
    pub fn compile(
        policy: &AffinityPolicy,
        path: &str,
        main: &Backend,
        canary: Option<&Backend>,
    ) -> Affinity {
        let mut attrs = Vec::new();
        let _ = write!(attrs, "; Path={}", policy.path.as_deref().unwrap_or(path));
        if let Some(age) = policy.max_age_s {
            let _ = write!(attrs, "; Max-Age={age}");
        }
        Affinity {
            cookie: policy.cookie.as_str().into(),
            prefix: format!("Set-Cookie: {}=", policy.cookie)
                .into_bytes()
                .into(),
            attrs: attrs.into(),
            expires_s: policy.expires_s,
            secure: policy.secure,
            samesite: policy.samesite.map(|s| match s {
                SameSite::None => "None",
                SameSite::Lax => "Lax",
                SameSite::Strict => "Strict",
            }),
            change_on_failure: policy.change_on_failure,
            canary_sticky: policy.canary_sticky,
            ids: [Ids::new(main), canary.map(Ids::new).unwrap_or_default()],
        }
    }

    /// The endpoint of backend `slot` (0 main, 1 canary) a cookie value names.
    pub fn find(&self, slot: usize, value: &[u8]) -> Option<usize> {
        self.ids[slot].find(decode(value)?)
    }

    /// Appends the `Set-Cookie` line naming `endpoint` of backend `slot`.
    /// `Secure` over TLS or when asked; `HttpOnly` always.
    pub fn write(&self, slot: usize, endpoint: usize, tls: bool, out: &mut Vec<u8>) {
        let Some(id) = self.ids[slot].by_index.get(endpoint) else {
            return;
        };
        out.extend_from_slice(&self.prefix);
        let _ = write!(out, "{id:016x}");
        out.extend_from_slice(&self.attrs);
        if let Some(s) = self.expires_s {
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            out.extend_from_slice(b"; Expires=");
            http_date(now.saturating_add(s), out);
        }
        if self.secure || tls {
            out.extend_from_slice(b"; Secure");
        }
        out.extend_from_slice(b"; HttpOnly");
        if let Some(s) = self.samesite {
            out.extend_from_slice(b"; SameSite=");
            out.extend_from_slice(s.as_bytes());
        }
        out.extend_from_slice(b"\r\n");
    }
}

/// 16 hex digits as a number; anything else names no endpoint.
fn decode(value: &[u8]) -> Option<u64> {
    if value.len() != 16 {
        return None;
    }
    value.iter().try_fold(0u64, |acc, &b| {
        let d = (b as char).to_digit(16)?;
        Some(acc << 4 | u64::from(d))
    })
}

/// Writes `secs` since the epoch as an IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`).
fn http_date(secs: u64, out: &mut Vec<u8>) {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let days = secs / 86_400;
    let rem = secs % 86_400;
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let _ = write!(
        out,
        "{}, {day:02} {} {year} {:02}:{:02}:{:02} GMT",
        DAYS[(days % 7) as usize],
        MONTHS[(month - 1) as usize],
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_imf_fixdates() {
        let mut out = Vec::new();
        http_date(784_111_777, &mut out);
        assert_eq!(out, b"Sun, 06 Nov 1994 08:49:37 GMT");
        out.clear();
        http_date(951_782_400, &mut out);
        assert_eq!(out, b"Tue, 29 Feb 2000 00:00:00 GMT");
    }

    #[test]
    fn cookie_values_decode_only_as_16_hex_digits() {
        assert_eq!(decode(b"00000000000000ff"), Some(255));
        assert_eq!(decode(b"ff"), None);
        assert_eq!(decode(b"zzzzzzzzzzzzzzzz"), None);
    }
}
