//! Reading rauta's `/metrics`: one parser of the Prometheus text format,
//! and look-ups that match series by their labels.

use std::collections::BTreeMap;

/// One sample of a Prometheus text exposition.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// Metric name (with `_bucket`/`_sum`/`_count` suffixes as written).
    pub name: String,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// Value.
    pub value: f64,
}

impl Sample {
    /// Whether this is `name` with every `(key, value)` of `labels` among
    /// its labels.
    pub fn matches(&self, name: &str, labels: &[(&str, &str)]) -> bool {
        self.name == name
            && labels
                .iter()
                .all(|(k, v)| self.labels.get(*k).map(String::as_str) == Some(*v))
    }
}

/// A scraped exposition: its text and its samples.
#[derive(Debug, Clone)]
pub struct Metrics {
    text: String,
    samples: Vec<Sample>,
}

impl Metrics {
    /// Parses `text` (panics on a line that is not a sample, with the line).
    pub fn parse(text: &str) -> Metrics {
        Metrics {
            text: text.to_string(),
            samples: parse(text),
        }
    }

    /// The exposition as scraped.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Every sample.
    pub fn samples(&self) -> &[Sample] {
        &self.samples
    }

    /// The sum of the samples `name` whose labels include every
    /// `(key, value)` of `labels` (0 when none matches).
    pub fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.samples
            .iter()
            .filter(|s| s.matches(name, labels))
            .map(|s| s.value)
            .sum()
    }

    /// Whether any sample `name` with these labels is exposed.
    pub fn has(&self, name: &str, labels: &[(&str, &str)]) -> bool {
        self.samples.iter().any(|s| s.matches(name, labels))
    }
}

/// Parses the Prometheus text format (enough for rauta's own output:
/// no timestamps). Panics on a malformed sample line.
pub fn parse(text: &str) -> Vec<Sample> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|line| parse_line(line).unwrap_or_else(|| panic!("not a sample line: {line:?}")))
        .collect()
}

fn parse_line(line: &str) -> Option<Sample> {
    let (series, value) = line.rsplit_once(' ')?;
    let value: f64 = value.parse().ok()?;
    let (name, labels) = match series.split_once('{') {
        Some((name, rest)) => (name, rest.strip_suffix('}')?),
        None => (series, ""),
    };
    let mut map = BTreeMap::new();
    let mut rest = labels;
    while let Some((key, after)) = rest.split_once("=\"") {
        let mut val = String::new();
        let mut chars = after.char_indices();
        let mut end = None;
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => {
                    if let Some((_, n)) = chars.next() {
                        val.push(if n == 'n' { '\n' } else { n });
                    }
                }
                '"' => {
                    end = Some(i + 1);
                    break;
                }
                c => val.push(c),
            }
        }
        map.insert(key.trim_start_matches(',').trim().to_string(), val);
        rest = &after[end?..];
    }
    Some(Sample {
        name: name.to_string(),
        labels: map,
        value,
    })
}

/// The promtool to run: `$PROMTOOL`, else `promtool` on the `PATH`.
pub fn promtool() -> String {
    std::env::var("PROMTOOL").unwrap_or_else(|_| "promtool".into())
}

/// `promtool check metrics` on an exposition text: how it exited, and
/// what it printed (stdout then stderr). The caller declares the need.
pub fn promtool_check(text: &str) -> (std::process::ExitStatus, String) {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let promtool = promtool();
    let mut child = Command::new(&promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("run {promtool}: {e}"));
    {
        let mut stdin = child.stdin.take().expect("stdin");
        stdin.write_all(text.as_bytes()).expect("write");
    }
    let out = child.wait_with_output().expect("promtool ran");
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status, report)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "# HELP x_total X.\n# TYPE x_total counter\n\
        x_total{route=\"a\",path=\"/a,b=\\\"c\\\"\"} 3\n\
        x_total{route=\"ab\",path=\"/\"} 4\n\
        x_bucket{le=\"+Inf\"} 2\n\
        up 1\n";

    #[test]
    fn matches_by_label_not_by_substring() {
        let m = Metrics::parse(TEXT);
        assert_eq!(m.samples().len(), 4);
        assert_eq!(m.value("x_total", &[]), 7.0);
        assert_eq!(m.value("x_total", &[("route", "a")]), 3.0);
        assert_eq!(m.value("x_total", &[("path", "/a,b=\"c\"")]), 3.0);
        assert_eq!(m.value("x_total", &[("route", "b")]), 0.0);
        assert_eq!(m.value("x_bucket", &[("le", "+Inf")]), 2.0);
        assert_eq!(m.value("up", &[]), 1.0);
        assert!(m.has("up", &[]) && !m.has("down", &[]));
        assert_eq!(m.value("x", &[]), 0.0, "names match whole");
    }
}
