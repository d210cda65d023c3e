//! ingress-nginx's host-wide regex mode: when any Ingress of a host uses
//! `use-regex` or `rewrite-target`, every path of the host is a
//! case-insensitive regex anchored only at the start (`~* "^<path>"`),
//! tried longest path string first, then by string descending, and the
//! first match wins. Exact paths lose their exactness, as in nginx.

use super::path::RouteId;
use regex::Regex;

/// The regex paths of one host, in match order.
#[derive(Debug, Default)]
pub struct PatternMatcher {
    entries: Vec<(Box<str>, Regex, RouteId)>,
}

impl PatternMatcher {
    /// Adds a rule path; returns the route that owns it (`id`, unless an
    /// earlier rule has an equal path).
    pub fn insert(&mut self, path: &str, id: RouteId) -> Result<RouteId, regex::Error> {
        if let Some((_, _, first)) = self.entries.iter().find(|(p, _, _)| &**p == path) {
            return Ok(*first);
        }
        let regex = Regex::new(&format!("(?i)^{path}"))?;
        self.entries.push((path.into(), regex, id));
        // Longest first, then by string descending (nginx's location order here).
        self.entries
            .sort_by(|(a, _, _), (b, _, _)| b.len().cmp(&a.len()).then_with(|| b.cmp(a)));
        Ok(id)
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
}
