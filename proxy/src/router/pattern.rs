//! Paths matched as regexes, in one ordered list per host, for two uses:
//!
//! - ingress-nginx's host-wide regex mode ([`PatternMatcher::insert`]):
//!   when any Ingress of a host uses `use-regex` or `rewrite-target`, every
//!   path of the host is a case-insensitive regex anchored only at the
//!   start (`~* "^<path>"`), tried longest path string first, then by
//!   string descending, and the first match wins. Exact paths lose their
//!   exactness, as in nginx.
//! - HTTPRoute `RegularExpression` paths ([`PatternMatcher::insert_whole`]):
//!   the whole path must match (anchored at both ends), case-sensitive;
//!   the longest pattern (in bytes, as written) first, equally long ones in
//!   config order. The host tries them after its Exact paths and before
//!   every prefix.

use super::path::RouteId;
use regex::Regex;

/// The regex paths of one host, in match order.
#[derive(Debug, Default)]
pub struct PatternMatcher {
    entries: Vec<(Box<str>, Regex, RouteId)>,
}

impl PatternMatcher {
    /// Adds an ingress-nginx regex-mode path; returns the route that owns
    /// it (`id`, unless an earlier rule has an equal path).
    pub fn insert(&mut self, path: &str, id: RouteId) -> Result<RouteId, regex::Error> {
        if let Some(first) = self.owner(path) {
            return Ok(first);
        }
        let regex = Regex::new(&format!("(?i)^{path}"))?;
        self.entries.push((path.into(), regex, id));
        // Longest first, then by string descending (nginx's location order here).
        self.entries
            .sort_by(|(a, _, _), (b, _, _)| b.len().cmp(&a.len()).then_with(|| b.cmp(a)));
        Ok(id)
    }

    /// Adds an HTTPRoute `RegularExpression` pattern; returns the route
    /// that owns it (`id`, unless an earlier rule has the same pattern).
    pub fn insert_whole(&mut self, pattern: &str, id: RouteId) -> Result<RouteId, regex::Error> {
        if let Some(first) = self.owner(pattern) {
            return Ok(first);
        }
        let regex = Regex::new(&format!("^(?:{pattern})$"))?;
        // After every longer or equally long pattern: config order among equals.
        let at = self
            .entries
            .partition_point(|(p, _, _)| p.len() >= pattern.len());
        self.entries.insert(at, (pattern.into(), regex, id));
        Ok(id)
    }

    /// The route of an equal path already in the list.
    fn owner(&self, path: &str) -> Option<RouteId> {
        let entry = self.entries.iter().find(|(p, _, _)| &**p == path);
        entry.map(|(_, _, id)| *id)
    }

    /// The first route whose regex matches `path`.
    pub fn lookup(&self, path: &str) -> Option<RouteId> {
        self.entries
            .iter()
            .find(|(_, regex, _)| regex.is_match(path))
            .map(|(_, _, id)| *id)
    }

    /// The first route of a matching path that `accept` takes, in match order.
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

    /// The paths in match order (for `explain`).
    pub fn paths(&self) -> impl Iterator<Item = (&str, RouteId)> {
        self.entries.iter().map(|(p, _, id)| (&**p, *id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn longest_path_first_case_insensitive_and_prefix_like() {
        let mut m = PatternMatcher::default();
        m.insert("/foo", 0).expect("compiles");
        m.insert("/foo/bar/.+", 1).expect("compiles");
        m.insert("/", 2).expect("compiles");
        assert_eq!(m.lookup("/FOO"), Some(0));
        assert_eq!(m.lookup("/foobar"), Some(0), "anchored at the start only");
        assert_eq!(m.lookup("/foo/bar/x"), Some(1));
        assert_eq!(m.lookup("/foo/bar/"), Some(0));
        assert_eq!(m.lookup("/other"), Some(2));
    }

    #[test]
    fn whole_path_case_sensitive_longest_first_config_order_on_ties() {
        let mut m = PatternMatcher::default();
        assert_eq!(m.insert_whole("/a/.*", 0), Ok(0));
        assert_eq!(m.insert_whole("/[ab]/x", 1), Ok(1));
        assert_eq!(m.insert_whole("/b/.*", 2), Ok(2));
        assert_eq!(
            m.insert_whole("/a/.*", 3),
            Ok(0),
            "the first rule owns a pattern"
        );
        assert_eq!(m.insert_whole("/v[0-9]+", 4), Ok(4));
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
        let mut m = PatternMatcher::default();
        m.insert_whole("/b.", 0).expect("compiles");
        m.insert_whole("/.c", 1).expect("compiles");
        assert_eq!(m.lookup("/bc"), Some(0));
        let mut none = |_| None;
        assert_eq!(m.find("/bc", &mut none), None);
        let mut second = |id| (id == 1).then_some(id);
        assert_eq!(m.find("/bc", &mut second), Some(1));
    }

    #[test]
    fn a_bad_pattern_is_an_error() {
        assert!(PatternMatcher::default().insert_whole("/(", 0).is_err());
    }
}
