//! HTTPRoute's path modifier (`ReplaceFullPath`, `ReplacePrefixMatch`),
//! shared by `URLRewrite` (the upstream path) and `RequestRedirect` (the
//! `Location`'s path). A prefix is replaced by whole path elements, as a
//! `PathPrefix` match matches them: the rule's prefix `/foo` covers `/foo`,
//! `/foo/` and `/foo/bar`, and its trailing slash is ignored.

use super::CompileError;
use rauta_shared::config::PathType;
use rauta_shared::policy::PathRewrite as Config;

/// A compiled path modifier.
#[derive(Debug)]
pub enum PathRewrite {
    /// The whole path becomes this.
    Full(Box<str>),
    /// The rule's matched prefix becomes `to`.
    Prefix {
        /// The rule's path: the prefix the request matched.
        rule: Box<str>,
        /// The replacement, its trailing slashes taken off (the rest of
        /// the path brings its own).
        to: Box<str>,
    },
}

impl PathRewrite {
    /// Compiles `rewrite` for a rule with `path` of `path_type`; a prefix
    /// replacement needs a rule path that is a prefix (or an Exact path,
    /// the whole of which is then the prefix), never a regex.
    pub fn compile(
        rewrite: &Config,
        path: &str,
        path_type: PathType,
    ) -> Result<PathRewrite, CompileError> {
        Ok(match rewrite {
            Config::Full(to) => PathRewrite::Full(to.as_str().into()),
            Config::Prefix(_) if path_type == PathType::RegularExpression => {
                return Err(CompileError::PathRewrite(
                    "ReplacePrefixMatch needs a prefix path, not a regular expression",
                ))
            }
            Config::Prefix(to) => PathRewrite::Prefix {
                rule: path.into(),
                to: to.trim_end_matches('/').into(),
            },
        })
    }

    /// Appends the new path for request path `path` (without query) to `out`.
    pub fn write(&self, path: &str, out: &mut String) {
        let start = out.len();
        match self {
            PathRewrite::Full(to) => out.push_str(to),
            PathRewrite::Prefix { rule, to } => match prefix_end(rule, path) {
                Some(end) => {
                    out.push_str(to);
                    out.push_str(&path[end..]);
                }
                // Only a host in ingress-nginx's regex mode matches a
                // prefix rule by regex: nothing to replace by element.
                None => out.push_str(path),
            },
        }
        if !out[start..].starts_with('/') {
            out.insert(start, '/');
        }
    }

    /// The new path for `path`, with `query` (without `?`) kept.
    pub fn target(&self, path: &str, query: Option<&str>) -> String {
        let mut out = String::with_capacity(path.len() + query.map_or(0, |q| q.len() + 1) + 16);
        self.write(path, &mut out);
        if let Some(query) = query {
            out.push('?');
            out.push_str(query);
        }
        out
    }
}

/// Where the elements of prefix `rule` end in `path`, when they are its
/// first elements (empty elements skipped, as matching skips them).
fn prefix_end(rule: &str, path: &str) -> Option<usize> {
    let bytes = path.as_bytes();
    let mut at = 0;
    for want in rule.split('/').filter(|e| !e.is_empty()) {
        while bytes.get(at) == Some(&b'/') {
            at += 1;
        }
        let end = path[at..].find('/').map_or(path.len(), |i| at + i);
        if &path[at..end] != want {
            return None;
        }
        at = end;
    }
    Some(at)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prefix(rule: &str, to: &str) -> PathRewrite {
        PathRewrite::compile(&Config::Prefix(to.into()), rule, PathType::Prefix).expect("compiles")
    }

    /// The table in the Gateway API's `ReplacePrefixMatch` documentation.
    #[test]
    fn the_api_reference_table() {
        let cases = [
            ("/foo/bar", "/foo", "/xyz", "/xyz/bar"),
            ("/foo/bar", "/foo", "/xyz/", "/xyz/bar"),
            ("/foo/bar", "/foo/", "/xyz", "/xyz/bar"),
            ("/foo/bar", "/foo/", "/xyz/", "/xyz/bar"),
            ("/foo", "/foo", "/xyz", "/xyz"),
            ("/foo/", "/foo", "/xyz", "/xyz/"),
            ("/foo/bar", "/foo", "", "/bar"),
            ("/foo/", "/foo", "", "/"),
            ("/foo", "/foo", "", "/"),
            ("/foo/", "/foo", "/", "/"),
            ("/foo", "/foo", "/", "/"),
        ];
        for (path, rule, to, want) in cases {
            assert_eq!(
                prefix(rule, to).target(path, None),
                want,
                "{path} {rule} {to}"
            );
        }
    }

    /// httproute-rewrite-path: the upstream path, the query kept.
    #[test]
    fn the_conformance_rewrites() {
        let full = |to: &str| {
            PathRewrite::compile(&Config::Full(to.into()), "/x", PathType::Prefix)
                .expect("compiles")
        };
        let cases = [
            (prefix("/prefix/one", "/one"), "/prefix/one/two", "/one/two"),
            (
                prefix("/strip-prefix", "/"),
                "/strip-prefix/three",
                "/three",
            ),
            (prefix("/strip-prefix", "/"), "/strip-prefix", "/"),
            (full("/one"), "/full/one/two", "/one"),
            (
                full("/test"),
                "/full/rewrite-path-and-modify-headers/test",
                "/test",
            ),
            (
                prefix("/prefix/rewrite-path-and-modify-headers", "/prefix"),
                "/prefix/rewrite-path-and-modify-headers/one",
                "/prefix/one",
            ),
        ];
        for (rewrite, path, want) in &cases {
            assert_eq!(rewrite.target(path, None), *want, "{path}");
        }
        assert_eq!(
            prefix("/prefix/one", "/one").target("/prefix/one/two", Some("a=1&b")),
            "/one/two?a=1&b"
        );
    }

    #[test]
    fn elements_not_strings_and_the_root_prefix() {
        assert_eq!(prefix("/", "/xyz").target("/foo/bar", None), "/xyz/foo/bar");
        assert_eq!(prefix("/", "/").target("/foo", None), "/foo");
        assert_eq!(prefix("/a//b", "/c").target("/a/b/d", None), "/c/d");
        assert_eq!(prefix("/a/b", "/c").target("/a//b//d", None), "/c//d");
        // Not a match by element (a regex-mode host): unchanged.
        assert_eq!(prefix("/foo", "/xyz").target("/foobar", None), "/foobar");
        let exact = PathRewrite::compile(&Config::Prefix("/new".into()), "/old/", PathType::Exact)
            .expect("compiles");
        assert_eq!(exact.target("/old/", None), "/new/");
        let regex = PathRewrite::compile(
            &Config::Prefix("/new".into()),
            "/v[0-9]+",
            PathType::RegularExpression,
        );
        assert!(regex.is_err());
    }
}
