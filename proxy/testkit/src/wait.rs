//! Waiting on evidence: one patience for every test, set from the
//! environment for slow machines.

use std::thread;
use std::time::{Duration, Instant};

/// The environment variable that sets [`patience`] in milliseconds.
pub const PATIENCE_ENV: &str = "RAUTA_TEST_PATIENCE_MS";
/// [`patience`] when [`PATIENCE_ENV`] is not set.
pub const DEFAULT_PATIENCE: Duration = Duration::from_secs(20);
/// How often [`eventually`] checks again.
const POLL: Duration = Duration::from_millis(20);

/// How long anything a test waits for may take: `RAUTA_TEST_PATIENCE_MS`
/// milliseconds, 20 s when unset (or unparsable).
pub fn patience() -> Duration {
    std::env::var(PATIENCE_ENV)
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map_or(DEFAULT_PATIENCE, Duration::from_millis)
}

/// Polls `f` until it returns true; panics naming `what` after
/// [`patience`].
#[track_caller]
pub fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    eventually_some(what, || f().then_some(()));
}

/// Polls `f` until it returns `Some`, and returns its value; panics naming
/// `what` after [`patience`].
#[track_caller]
pub fn eventually_some<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let patience = patience();
    let deadline = Instant::now() + patience;
    loop {
        if let Some(v) = f() {
            return v;
        }
        if Instant::now() >= deadline {
            panic!("timed out after {patience:?} ({PATIENCE_ENV}) waiting for: {what}");
        }
        thread::sleep(POLL);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn returns_once_true() {
        let mut n = 0;
        eventually("the third poll", || {
            n += 1;
            n == 3
        });
        assert_eq!(eventually_some("a value", || Some(7)), 7);
        assert!(patience() > Duration::ZERO);
    }
}
