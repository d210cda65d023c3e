//! HTTPRoute `RegularExpression` paths of one host: the whole path must
//! match (anchored at both ends), case-sensitive. Tried after the Exact
//! paths and before every prefix, the longest pattern (in bytes, as
//! written) first; equally long ones in config order.

use super::path::RouteId;
use regex::Regex;

/// The regex paths of one host, in match order.
#[derive(Debug, Default)]
pub struct RegexPaths {
    entries: Vec<(Box<str>, Regex, RouteId)>,
}

impl RegexPaths {
    /// Adds a rule's pattern; returns the route that owns it (`id`, unless
    /// an earlier rule has the same pattern).
    pub fn insert(&mut self, pattern: &str, id: RouteId) -> Result<RouteId, regex::Error> {
        if let Some((_, _, first)) = self.entries.iter().find(|(p, _, _)| &**p == pattern) {
            return Ok(*first);
        }
        let regex = Regex::new(&format!("^(?:{pattern})$"))?;
        // After every longer or equally long pattern: config order among equals.
        let at = self
            .entries
            .partition_point(|(p, _, _)| p.len() >= pattern.len());
        self.entries.insert(at, (pattern.into(), regex, id));
        Ok(id)
    }

    /// The first route whose pattern matches the whole `path`.
    pub fn lookup(&self, path: &str) -> Option<RouteId> {
        self.entries
            .iter()
            .find(|(_, regex, _)| regex.is_match(path))
            .map(|(_, _, id)| *id)
    }

    /// The first route of a matching pattern that `accept` takes, in match order.
    pub fn find(
        &self,
        path: &str,
        accept: &mut dyn FnMut(RouteId) -> Option<RouteId>,
    ) -> Option<RouteId> {
        self.entries
            .iter()
            .filter(|(_, regex, _)| regex.is_match(path))
            .find_map(|(_, _, id)| accept(*id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_path_case_sensitive_longest_first_config_order_on_ties() {
        let mut m = RegexPaths::default();
        assert_eq!(m.insert("/a/.*", 0), Ok(0));
        assert_eq!(m.insert("/[ab]/x", 1), Ok(1));
        assert_eq!(m.insert("/b/.*", 2), Ok(2));
        assert_eq!(m.insert("/a/.*", 3), Ok(0), "the first rule owns a pattern");
        assert_eq!(m.insert("/v[0-9]+", 4), Ok(4));
        let cases = [
            ("/a/x", Some(1)), // the longest pattern first
            ("/a/y", Some(0)),
            ("/b/y", Some(2)),
            ("/A/y", None), // case-sensitive
            ("/v12", Some(4)),
            ("/v12/x", None), // anchored at the end
            ("/x/v12", None), // and at the start
        ];
        for (path, want) in cases {
            assert_eq!(m.lookup(path), want, "{path}");
        }
        // Equally long: config order.
        let mut m = RegexPaths::default();
        m.insert("/b.", 0).expect("compiles");
        m.insert("/.c", 1).expect("compiles");
        assert_eq!(m.lookup("/bc"), Some(0));
        let mut none = |_| None;
        assert_eq!(m.find("/bc", &mut none), None);
        let mut second = |id| (id == 1).then_some(id);
        assert_eq!(m.find("/bc", &mut second), Some(1));
    }

    #[test]
    fn a_bad_pattern_is_an_error() {
        assert!(RegexPaths::default().insert("/(", 0).is_err());
    }
}
