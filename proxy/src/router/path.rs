//! Path matching for one host: Exact paths in a hash map, Prefix paths in a
//! trie of `/`-separated elements, so a lookup costs one hash probe per
//! request path element, whatever the number of rules.

use rustc_hash::FxHashMap;

/// Index of a route in its [`super::RouteTable`].
pub type RouteId = u32;

/// The path rules of one host.
#[derive(Debug, Default)]
pub struct PathMatcher {
    exact: FxHashMap<Box<str>, RouteId>,
    prefix: PrefixNode,
}

#[derive(Debug, Default)]
struct PrefixNode {
    route: Option<RouteId>,
    children: FxHashMap<Box<str>, PrefixNode>,
}

/// Path elements as Ingress Prefix matching sees them: split on `/`, empty
/// elements ignored (so a trailing slash never matters).
fn elements(path: &str) -> impl Iterator<Item = &str> {
    path.split('/').filter(|e| !e.is_empty())
}

impl PathMatcher {
    /// Adds an Exact rule; the first rule for a path stays (returns false
    /// when one was already there).
    pub fn insert_exact(&mut self, path: &str, id: RouteId) -> bool {
        let slot = self.exact.entry(path.into()).or_insert(id);
        *slot == id
    }

    /// Adds a Prefix rule; the first rule for a path stays (returns false
    /// when one was already there).
    pub fn insert_prefix(&mut self, path: &str, id: RouteId) -> bool {
        let mut node = &mut self.prefix;
        for element in elements(path) {
            node = node.children.entry(element.into()).or_default();
        }
        *node.route.get_or_insert(id) == id
    }

    /// The longest matching rule; an Exact match beats every Prefix match,
    /// because it always covers the whole path (and wins ties by the spec).
    pub fn lookup(&self, path: &str) -> Option<RouteId> {
        if let Some(id) = self.exact.get(path) {
            return Some(*id);
        }
        let mut node = &self.prefix;
        let mut best = node.route;
        for element in elements(path) {
            match node.children.get(element) {
                Some(child) => {
                    node = child;
                    if node.route.is_some() {
                        best = node.route;
                    }
                }
                None => break,
            }
        }
        best
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matcher() -> PathMatcher {
        let mut m = PathMatcher::default();
        m.insert_prefix("/", 0);
        m.insert_prefix("/foo", 1);
        m.insert_prefix("/foo/bar/", 2);
        m.insert_exact("/foo", 3);
        m.insert_exact("/exact/", 4);
        m
    }

    #[test]
    fn table() {
        let m = matcher();
        let cases: &[(&str, Option<RouteId>)] = &[
            ("/", Some(0)),
            ("/foo", Some(3)),     // Exact beats Prefix on a tie
            ("/foo/", Some(1)),    // Prefix /foo matches /foo/
            ("/foo/baz", Some(1)), // element-wise prefix
            ("/foobar", Some(0)),  // never a string prefix
            ("/foo/bar", Some(2)), // rule's trailing slash ignored
            ("/foo/bar/x", Some(2)),
            ("/foo/barx", Some(1)),
            ("/FOO", Some(0)),      // case-sensitive
            ("/exact/", Some(4)),   // trailing slash significant for Exact
            ("/exact", Some(0)),    // ... so this is not the Exact rule
            ("/exact/x", Some(0)),  // Exact is not a prefix
            ("/foo//bar", Some(2)), // empty elements ignored
        ];
        for (path, want) in cases {
            assert_eq!(m.lookup(path), *want, "path {path}");
        }
    }

    #[test]
    fn no_root_rule_means_no_match() {
        let mut m = PathMatcher::default();
        m.insert_prefix("/api", 7);
        assert_eq!(m.lookup("/"), None);
        assert_eq!(m.lookup("/ap"), None);
        assert_eq!(m.lookup("/api/v1"), Some(7));
    }
}
