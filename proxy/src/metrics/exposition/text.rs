//! The Prometheus text writer (format 0.0.4): families, samples, label
//! escaping, and the histogram and summary shapes of a [`Timing`].

use crate::metrics::registry::Timing;
use std::fmt::{Display, Write};

/// Upper bounds of the histogram buckets, in microseconds (ingress-nginx's
/// defaults, refined below 5 ms where a proxy's own latency lives).
const BUCKETS_US: [u64; 14] = [
    500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000, 1_000_000,
    2_500_000, 5_000_000, 10_000_000,
];
/// Quantiles exposed as plain gauges.
const QUANTILES: [(f64, &str); 3] = [(0.5, "0.5"), (0.99, "0.99"), (0.999, "0.999")];

/// The page being written.
pub(super) struct Out<'a>(pub(super) &'a mut String);

impl Out<'_> {
    /// The `# HELP` and `# TYPE` lines that open a family.
    pub(super) fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.0, "# HELP {name} {help}\n# TYPE {name} {kind}");
    }

    /// One sample; `labels` is the text between the braces, already escaped.
    pub(super) fn sample(&mut self, name: &str, labels: &str, value: impl Display) {
        if labels.is_empty() {
            let _ = writeln!(self.0, "{name} {value}");
        } else {
            let _ = writeln!(self.0, "{name}{{{labels}}} {value}");
        }
    }

    /// A family of one sample without labels.
    pub(super) fn single(&mut self, name: &str, kind: &str, help: &str, value: impl Display) {
        self.family(name, kind, help);
        self.sample(name, "", value);
    }

    /// A family whose samples differ in one label: `name{label="v"} n` for
    /// each `(v, n)`. The values are written as they are, so they must need
    /// no escaping (numbers, addresses, fixed words).
    pub(super) fn by_label<V: Display, N: Display>(
        &mut self,
        name: &str,
        kind: &str,
        help: &str,
        label: &str,
        samples: impl IntoIterator<Item = (V, N)>,
    ) {
        self.family(name, kind, help);
        for (value, n) in samples {
            self.sample(name, &format!("{label}=\"{value}\""), n);
        }
    }

    /// The samples of a histogram family (none for an empty distribution).
    pub(super) fn histogram(&mut self, name: &str, labels: &str, t: &Timing) {
        let h = &t.hist;
        if h.is_empty() {
            return;
        }
        for le in BUCKETS_US {
            self.sample(
                &format!("{name}_bucket"),
                &format!("{labels},le=\"{}\"", seconds(le)),
                h.count_up_to(le),
            );
        }
        self.sample(
            &format!("{name}_bucket"),
            &format!("{labels},le=\"+Inf\""),
            h.len(),
        );
        self.sample(&format!("{name}_sum"), labels, seconds(t.sum_us));
        self.sample(&format!("{name}_count"), labels, h.len());
    }

    /// The same distribution as a summary: quantiles a person can read
    /// without PromQL (over the route's lifetime).
    pub(super) fn quantiles(&mut self, name: &str, labels: &str, t: &Timing) {
        let h = &t.hist;
        if h.is_empty() {
            return;
        }
        for (q, text) in QUANTILES {
            self.sample(
                name,
                &format!("{labels},quantile=\"{text}\""),
                seconds(h.value_at_quantile(q)),
            );
        }
        self.sample(&format!("{name}_sum"), labels, seconds(t.sum_us));
        self.sample(&format!("{name}_count"), labels, h.len());
    }
}

/// A label value escaped for the text format.
pub(super) fn escape(v: &str) -> String {
    v.replace('\\', r"\\")
        .replace('"', "\\\"")
        .replace('\n', r"\n")
}

/// Microseconds as seconds.
fn seconds(us: u64) -> f64 {
    us as f64 / 1e6
}
