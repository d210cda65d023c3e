//! Path matching for one host. Exact paths sit in a hash map of strings.
//! Prefix rules sit in one flat map keyed by a hash of their first n path
//! elements (every ancestor of a rule is a node too), so a lookup hashes
//! the request path once, element by element, and probes one small map per
//! element, never comparing strings until the one winner is verified.

use rustc_hash::{FxHashMap, FxHasher};
use std::hash::Hasher;

/// Index of a route in its [`super::RouteTable`].
pub type RouteId = u32;

/// The path rules of one host.
#[derive(Debug, Default)]
pub struct PathMatcher {
    exact: FxHashMap<Box<str>, RouteId>,
    /// Prefix `/` (no elements).
    root: Option<RouteId>,
    /// Hash of the first n elements -> node.
    nodes: FxHashMap<u64, Node>,
    /// Normalised prefix (`api/v1`) of every node, by [`Node::key`].
    keys: Vec<Box<str>>,
    /// Hash seed; changed (and every node rehashed) on a collision.
    seed: u64,
}

#[derive(Debug, Clone, Copy)]
struct Node {
    route: Option<RouteId>,
    /// Some rule is longer than this prefix: the walk goes on.
    has_children: bool,
    key: u32,
}

/// Path elements as Ingress Prefix matching sees them: split on `/`, empty
/// elements ignored (so a trailing slash never matters).
fn elements(path: &str) -> impl Iterator<Item = &str> {
    path.split('/').filter(|e| !e.is_empty())
}

/// Folds one path element into the running hash, a word at a time (path
/// elements are short; hashing them is most of a lookup's work).
fn mix(h: u64, element: &str) -> u64 {
    scan_element(h, element.as_bytes(), 0).0
}

/// Hashes the element of `bytes` that starts at `start` (up to the next
/// `/` or the end) into `h`, in the same pass that finds its end; returns
/// the new hash and the end.
#[inline]
fn scan_element(h: u64, bytes: &[u8], start: usize) -> (u64, usize) {
    let mut hasher = FxHasher::default();
    hasher.write_u64(h);
    let (mut word, mut shift) = (0u64, 0u32);
    let mut i = start;
    while i < bytes.len() && bytes[i] != b'/' {
        word |= u64::from(bytes[i]) << shift;
        shift += 8;
        if shift == 64 {
            hasher.write_u64(word);
            (word, shift) = (0, 0);
        }
        i += 1;
    }
    hasher.write_u64(word);
    hasher.write_usize(i - start);
    (hasher.finish(), i)
}

/// True when the first elements of `path` are exactly those of `key`.
fn same_elements(key: &str, path: &str) -> bool {
    let mut want = elements(key);
    let mut got = elements(path);
    loop {
        match want.next() {
            None => return true,
            Some(w) if got.next() == Some(w) => {}
            Some(_) => return false,
        }
    }
}

impl PathMatcher {
    /// Adds an Exact rule; returns the route that owns the path (`id`,
    /// unless an earlier rule has it).
    pub fn insert_exact(&mut self, path: &str, id: RouteId) -> RouteId {
        *self.exact.entry(path.into()).or_insert(id)
    }

    /// Adds a Prefix rule; returns the route that owns the prefix (`id`,
    /// unless an earlier rule has it).
    pub fn insert_prefix(&mut self, path: &str, id: RouteId) -> RouteId {
        let elems: Vec<&str> = elements(path).collect();
        if elems.is_empty() {
            return *self.root.get_or_insert(id);
        }
        'seeds: loop {
            let mut h = self.seed;
            let mut key = String::new();
            for (depth, element) in elems.iter().enumerate() {
                h = mix(h, element);
                if depth > 0 {
                    key.push('/');
                }
                key.push_str(element);
                let last = depth + 1 == elems.len();
                let node = match self.nodes.get_mut(&h) {
                    Some(node) if *self.keys[node.key as usize] == *key => node,
                    Some(_) => {
                        self.reseed();
                        continue 'seeds;
                    }
                    None => {
                        self.keys.push(key.as_str().into());
                        let key = (self.keys.len() - 1) as u32;
                        self.nodes.entry(h).or_insert(Node {
                            route: None,
                            has_children: false,
                            key,
                        })
                    }
                };
                if last {
                    return *node.route.get_or_insert(id);
                }
                node.has_children = true;
            }
            unreachable!("the last element returns");
        }
    }

    /// Two different prefixes hashed alike: rehash every node with new
    /// seeds until none collide (for one table in billions).
    fn reseed(&mut self) {
        let nodes: Vec<Node> = self.nodes.drain().map(|(_, node)| node).collect();
        loop {
            self.seed = self.seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut map = FxHashMap::with_capacity_and_hasher(nodes.len(), Default::default());
            let clean = nodes.iter().all(|node| {
                let h = elements(&self.keys[node.key as usize]).fold(self.seed, mix);
                map.insert(h, *node).is_none()
            });
            if clean {
                self.nodes = map;
                return;
            }
        }
    }

    /// The longest matching rule; an Exact match beats every Prefix match,
    /// because it always covers the whole path (and wins ties by the spec).
    pub fn lookup(&self, path: &str) -> Option<RouteId> {
        if let Some(id) = self.lookup_exact(path) {
            return Some(id);
        }
        self.walk_prefix(path)
    }

    /// The Exact rule for `path`.
    #[inline]
    pub fn lookup_exact(&self, path: &str) -> Option<RouteId> {
        if self.exact.is_empty() {
            return None;
        }
        self.exact.get(path).copied()
    }

    /// The Prefix rule with the most elements that are `path`'s first.
    pub fn lookup_prefix(&self, path: &str) -> Option<RouteId> {
        self.walk_prefix(path)
    }

    /// [`PathMatcher::lookup_prefix`], inlined into [`PathMatcher::lookup`]
    /// so that the plain lookup stays one function.
    #[inline(always)]
    fn walk_prefix(&self, path: &str) -> Option<RouteId> {
        let mut best = self.root;
        // The winner's text and where its prefix ends in `path`.
        let mut best_key = None;
        let mut best_end = 0;
        let mut h = self.seed;
        // Where the first element starts, and whether the elements after
        // it are separated by single slashes, so that the normalised prefix
        // is a plain slice of `path`.
        let mut first = None;
        let mut single_slashes = true;
        let bytes = path.as_bytes();
        let mut i = 0;
        while i < bytes.len() {
            let slashes = i;
            while i < bytes.len() && bytes[i] == b'/' {
                i += 1;
            }
            if i == bytes.len() {
                break;
            }
            match first {
                None => first = Some(i),
                Some(_) => single_slashes &= i - slashes == 1,
            }
            let end;
            (h, end) = scan_element(h, bytes, i);
            i = end;
            let Some(node) = self.nodes.get(&h) else {
                break;
            };
            if node.route.is_some() {
                best = node.route;
                best_key = Some((node.key, single_slashes));
                best_end = end;
            }
            if !node.has_children {
                break;
            }
        }
        // The walk trusted hashes; the winner is checked by its text.
        let verified = match best_key {
            None => return best,
            Some((key, true)) => {
                let start = first.unwrap_or(0);
                *self.keys[key as usize] == path[start..best_end]
            }
            Some((key, false)) => same_elements(&self.keys[key as usize], path),
        };
        if verified {
            best
        } else {
            self.lookup_verified(path)
        }
    }

    /// The same walk, checking every node's text: only after a request
    /// path hashed like a rule it does not match.
    fn lookup_verified(&self, path: &str) -> Option<RouteId> {
        let mut best = self.root;
        let mut h = self.seed;
        for element in elements(path) {
            h = mix(h, element);
            match self.nodes.get(&h) {
                Some(node) if same_elements(&self.keys[node.key as usize], path) => {
                    best = node.route.or(best);
                    if !node.has_children {
                        break;
                    }
                }
                _ => break,
            }
        }
        best
    }
}

impl PathMatcher {
    /// Every rule that matches `path`, in precedence order (Exact, then
    /// Prefix from the most elements to `/`), until `accept` takes one:
    /// what a lookup with conditions walks when the longest match's
    /// conditions may fail. Every node's text is checked on the way.
    pub fn find(
        &self,
        path: &str,
        accept: &mut dyn FnMut(RouteId) -> Option<RouteId>,
    ) -> Option<RouteId> {
        self.find_exact(path, accept)
            .or_else(|| self.find_prefix(path, accept))
    }

    /// The Exact rule for `path`, if `accept` takes it.
    pub fn find_exact(
        &self,
        path: &str,
        accept: &mut dyn FnMut(RouteId) -> Option<RouteId>,
    ) -> Option<RouteId> {
        self.lookup_exact(path).and_then(&mut *accept)
    }

    /// The matching Prefix rules, the most elements first, until `accept`
    /// takes one.
    pub fn find_prefix(
        &self,
        path: &str,
        accept: &mut dyn FnMut(RouteId) -> Option<RouteId>,
    ) -> Option<RouteId> {
        self.find_below(self.seed, &mut elements(path), path, accept)
            .or_else(|| self.root.and_then(&mut *accept))
    }

    /// The rules at and below the next element of `rest`, deepest first.
    fn find_below<'p>(
        &self,
        h: u64,
        rest: &mut impl Iterator<Item = &'p str>,
        path: &str,
        accept: &mut dyn FnMut(RouteId) -> Option<RouteId>,
    ) -> Option<RouteId> {
        let h = mix(h, rest.next()?);
        let node = self.nodes.get(&h)?;
        if !same_elements(&self.keys[node.key as usize], path) {
            return None;
        }
        let deeper = match node.has_children {
            true => self.find_below(h, rest, path, accept),
            false => None,
        };
        deeper.or_else(|| node.route.and_then(&mut *accept))
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
    fn a_colliding_hash_never_picks_the_wrong_rule() {
        let mut m = PathMatcher::default();
        m.insert_prefix("/", 0);
        m.insert_prefix("/api", 1);
        // Forge a collision: a rule for "/zzz" stored under the hash that
        // the request prefix "/other" has.
        m.keys.push("zzz".into());
        let forged = Node {
            route: Some(9),
            has_children: false,
            key: (m.keys.len() - 1) as u32,
        };
        m.nodes.insert(mix(m.seed, "other"), forged);
        assert_eq!(m.lookup("/other/x"), Some(0));
        assert_eq!(m.lookup("/api/x"), Some(1));
        // A rule whose hash is taken by another prefix reseeds the table
        // instead of merging the two.
        m.insert_prefix("/other", 2);
        assert_ne!(m.seed, 0);
        assert_eq!(m.lookup("/other/x"), Some(2));
        assert_eq!(m.lookup("/zzz"), Some(9));
        assert_eq!(m.lookup("/api/x"), Some(1));
    }

    #[test]
    fn find_walks_every_match_in_precedence_order() {
        let m = matcher();
        let mut seen = Vec::new();
        let mut none = |id| {
            seen.push(id);
            None
        };
        assert_eq!(m.find("/foo/bar/x", &mut none), None);
        assert_eq!(seen, [2, 1, 0]);
        seen.clear();
        let mut none = |id| {
            seen.push(id);
            None
        };
        assert_eq!(m.find("/foo", &mut none), None);
        assert_eq!(seen, [3, 1, 0], "Exact first");
        let mut not_two = |id| (id != 2).then_some(id);
        assert_eq!(m.find("/foo//bar/", &mut not_two), Some(1));
        assert_eq!(m.find("/foobar", &mut not_two), Some(0));
        // A prefix owned by an earlier rule stays its.
        let mut m = matcher();
        assert_eq!(m.insert_prefix("/foo/", 9), 1);
        assert_eq!(m.insert_exact("/foo", 9), 3);
        assert_eq!(m.insert_prefix("/new", 9), 9);
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
