//! `rewrite-target` (nginx's `rewrite "(?i)P" T break`): the whole upstream
//! path becomes T, with `$1`..`$9` filled from the rule regex's captures,
//! and the client's query kept.

use regex::Regex;

/// A compiled rewrite.
#[derive(Debug)]
pub struct Rewrite {
    /// The rule's path as a case-insensitive, unanchored regex (as nginx's
    /// `rewrite` directive matches it).
    regex: Regex,
    target: Box<str>,
}

impl Rewrite {
    /// Compiles the rule path `path` and the target; the translation has
    /// already checked that `path` compiles.
    pub fn compile(path: &str, target: &str) -> Result<Rewrite, regex::Error> {
        Ok(Rewrite {
            regex: Regex::new(&format!("(?i){path}"))?,
            target: target.into(),
        })
    }

    /// The upstream target for a request `path` and `query` (without `?`);
    /// `None` when the regex does not match (the path is then unchanged).
    pub fn apply(&self, path: &str, query: Option<&str>) -> Option<String> {
        let captures = self.regex.captures(path)?;
        let mut out = String::with_capacity(self.target.len() + path.len());
        let mut chars = self.target.char_indices().peekable();
        while let Some((_, c)) = chars.next() {
            match (c, chars.peek()) {
                ('$', Some(&(_, d))) if d.is_ascii_digit() => {
                    chars.next();
                    let group = d as usize - '0' as usize;
                    if let Some(m) = captures.get(group) {
                        out.push_str(m.as_str());
                    }
                }
                _ => out.push(c),
            }
        }
        if out.is_empty() || !out.starts_with('/') {
            out.insert(0, '/');
        }
        if let Some(query) = query.filter(|q| !q.is_empty()) {
            out.push(if out.contains('?') { '&' } else { '?' });
            out.push_str(query);
        }
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_whole_path_is_replaced_with_captures_and_the_query_kept() {
        let r = Rewrite::compile("/something(/|$)(.*)", "/$2").expect("compiles");
        assert_eq!(r.apply("/something/new", None).as_deref(), Some("/new"));
        assert_eq!(r.apply("/something", None).as_deref(), Some("/"));
        assert_eq!(
            r.apply("/SOMETHING/a/b", Some("x=1")).as_deref(),
            Some("/a/b?x=1")
        );
        let fixed = Rewrite::compile("/something", "/").expect("compiles");
        assert_eq!(fixed.apply("/something/abc", None).as_deref(), Some("/"));
        let with_query = Rewrite::compile("/a", "/b?v=2").expect("compiles");
        assert_eq!(
            with_query.apply("/a", Some("x=1")).as_deref(),
            Some("/b?v=2&x=1")
        );
        assert_eq!(fixed.apply("/other", None), None);
    }
}
