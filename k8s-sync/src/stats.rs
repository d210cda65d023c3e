//! Outcome counters of a configuration source, read by the admin thread
//! for `/metrics`. Updated once per load, never on the request path.

use crate::problem::Severity;
use crate::translate::Translation;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// Counters of configuration loads.
#[derive(Debug, Default)]
pub struct SourceStats {
    loads: AtomicU64,
    rejected: AtomicU64,
    last_rejected: AtomicBool,
    fatal: AtomicU64,
    errors: AtomicU64,
    warnings: AtomicU64,
}

/// A copy of [`SourceStats`] at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SourceCounts {
    /// Loads attempted.
    pub loads: u64,
    /// Loads rejected as a whole.
    pub rejected: u64,
    /// Whether the last load was rejected.
    pub last_rejected: bool,
    /// Fatal problems (the set rejected) in the last load.
    pub fatal: u64,
    /// Error problems (an object left out) in the last load.
    pub errors: u64,
    /// Warning problems in the last load.
    pub warnings: u64,
}

impl SourceStats {
    /// Records one load; it counts as rejected when the set was unusable
    /// ([`Translation::is_rejected`]).
    pub fn record(&self, translation: &Translation) {
        let count = |s: Severity| {
            translation
                .problems
                .iter()
                .filter(|p| p.severity == s)
                .count() as u64
        };
        let (fatal, errors, warnings) = (
            count(Severity::Fatal),
            count(Severity::Error),
            count(Severity::Warning),
        );
        self.loads.fetch_add(1, Ordering::Relaxed);
        if translation.is_rejected() {
            self.rejected.fetch_add(1, Ordering::Relaxed);
        }
        self.last_rejected
            .store(translation.is_rejected(), Ordering::Relaxed);
        self.fatal.store(fatal, Ordering::Relaxed);
        self.errors.store(errors, Ordering::Relaxed);
        self.warnings.store(warnings, Ordering::Relaxed);
    }

    /// The current counts.
    pub fn counts(&self) -> SourceCounts {
        SourceCounts {
            loads: self.loads.load(Ordering::Relaxed),
            rejected: self.rejected.load(Ordering::Relaxed),
            last_rejected: self.last_rejected.load(Ordering::Relaxed),
            fatal: self.fatal.load(Ordering::Relaxed),
            errors: self.errors.load(Ordering::Relaxed),
            warnings: self.warnings.load(Ordering::Relaxed),
        }
    }
}
