//! HTTPRoute `RequestHeaderModifier` and `ResponseHeaderModifier`: set,
//! add and remove header lines of a complete head, in place (the upstream
//! request's once rauta wrote its own forwarding headers, the client's
//! response once the other response policies added theirs). The framing
//! and connection headers are rauta's alone: a modifier naming them does
//! not compile, so it can never change how a body is delimited.

use super::CompileError;
use rauta_shared::policy::HeaderModifier;

/// Which head a modifier applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The upstream request: Host may be set, never added or removed.
    Request,
    /// The client's response.
    Response,
}

/// A compiled [`HeaderModifier`]: set, then add, then remove.
#[derive(Debug)]
pub struct HeaderEdits {
    /// Lines written at the end of the head: the set ones, then the added
    /// ones, less those a remove names.
    lines: Box<[u8]>,
    /// Names whose lines are taken out of the head (set and removed ones).
    drop: Box<[Box<str>]>,
}

impl HeaderEdits {
    /// Compiles `m` for `side` once [`HeaderModifier::check`] passes:
    /// header tokens, no framing header, no line break in a value.
    pub fn compile(m: &HeaderModifier, side: Side) -> Result<HeaderEdits, CompileError> {
        m.check(side == Side::Request)
            .map_err(CompileError::Header)?;
        let removed = |name: &str| m.remove.iter().any(|r| r.eq_ignore_ascii_case(name));
        let mut lines = Vec::new();
        for (name, value) in m.set.iter().chain(&m.add) {
            if !removed(name) {
                lines.extend_from_slice(name.as_bytes());
                lines.extend_from_slice(b": ");
                lines.extend_from_slice(value.as_bytes());
                lines.extend_from_slice(b"\r\n");
            }
        }
        let drop = (m.set.iter().map(|(n, _)| n))
            .chain(&m.remove)
            .map(|n| n.to_ascii_lowercase().into_boxed_str())
            .collect();
        Ok(HeaderEdits {
            lines: lines.into(),
            drop,
        })
    }

    /// Applies the changes to `head`, a complete head ending in a blank
    /// line; anything else is left alone.
    pub fn apply(&self, head: &mut Vec<u8>) {
        if !head.ends_with(b"\r\n\r\n") {
            return;
        }
        let Some(start) = memchr::memmem::find(head, b"\r\n").map(|i| i + 2) else {
            return;
        };
        let end = head.len() - 2;
        if !self.drop.is_empty() {
            // One pass: kept lines move down over the dropped ones.
            let (mut read, mut write) = (start, start);
            while read < end {
                let line_end =
                    memchr::memmem::find(&head[read..end], b"\r\n").map_or(end, |i| read + i + 2);
                let line = &head[read..line_end];
                let name = line.split(|b| *b == b':').next().unwrap_or(line);
                let dropped = self
                    .drop
                    .iter()
                    .any(|d| name.eq_ignore_ascii_case(d.as_bytes()));
                if !dropped {
                    head.copy_within(read..line_end, write);
                    write += line_end - read;
                }
                read = line_end;
            }
            head.truncate(write);
        } else {
            head.truncate(end);
        }
        head.extend_from_slice(&self.lines);
        head.extend_from_slice(b"\r\n");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn modifier(set: &[(&str, &str)], add: &[(&str, &str)], remove: &[&str]) -> HeaderModifier {
        let pairs = |l: &[(&str, &str)]| {
            l.iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect()
        };
        HeaderModifier {
            set: pairs(set),
            add: pairs(add),
            remove: remove.iter().map(|n| n.to_string()).collect(),
        }
    }

    fn apply(m: &HeaderModifier, head: &str) -> String {
        let edits = HeaderEdits::compile(m, Side::Request).expect("compiles");
        let mut out = head.as_bytes().to_vec();
        edits.apply(&mut out);
        String::from_utf8(out).expect("ascii")
    }

    /// The conformance test's `/multiple` and `/case-insensitivity` cases
    /// on a head as rauta writes it upstream.
    #[test]
    fn set_add_remove_on_a_real_head() {
        let m = modifier(
            &[
                ("X-Header-Set-1", "header-set-1"),
                ("X-Header-Set-2", "header-set-2"),
            ],
            &[
                ("X-Header-Add-1", "header-add-1"),
                ("X-Header-Add-2", "header-add-2"),
                ("X-Header-Add-3", "header-add-3"),
            ],
            &["X-Header-Remove-1", "X-Header-Remove-2"],
        );
        let head = "GET /multiple HTTP/1.1\r\nHost: h\r\nx-header-set-2: set-val-2\r\n\
                    X-Header-Add-2: add-val-2\r\nX-HEADER-REMOVE-2: remove-val-2\r\n\
                    Another-Header: another-header-val\r\nContent-Length: 3\r\n\
                    X-Forwarded-For: 192.0.2.1\r\n\r\n";
        assert_eq!(
            apply(&m, head),
            "GET /multiple HTTP/1.1\r\nHost: h\r\nX-Header-Add-2: add-val-2\r\n\
             Another-Header: another-header-val\r\nContent-Length: 3\r\n\
             X-Forwarded-For: 192.0.2.1\r\nX-Header-Set-1: header-set-1\r\n\
             X-Header-Set-2: header-set-2\r\nX-Header-Add-1: header-add-1\r\n\
             X-Header-Add-2: header-add-2\r\nX-Header-Add-3: header-add-3\r\n\r\n"
        );
    }

    #[test]
    fn every_value_of_a_set_header_goes_and_remove_wins_over_set_and_add() {
        let m = modifier(
            &[("x-a", "new"), ("x-gone", "1")],
            &[("x-gone", "2")],
            &["X-Gone"],
        );
        let head = "HTTP/1.1 200 OK\r\nX-A: 1\r\nx-gone: 0\r\nx-a: 2\r\nServer: s\r\n\r\n";
        assert_eq!(
            apply(&m, head),
            "HTTP/1.1 200 OK\r\nServer: s\r\nx-a: new\r\n\r\n"
        );
    }

    #[test]
    fn only_additions_keep_every_line() {
        let m = modifier(&[], &[("X-Header-Add", "add-appends-values")], &[]);
        let head = "GET /add HTTP/1.1\r\nHost: h\r\nX-Header-Add: some-other-value\r\n\r\n";
        assert_eq!(
            apply(&m, head),
            "GET /add HTTP/1.1\r\nHost: h\r\nX-Header-Add: some-other-value\r\n\
             X-Header-Add: add-appends-values\r\n\r\n"
        );
        // Not a complete head: untouched.
        assert_eq!(apply(&m, "GET / HTTP/1.1\r\n"), "GET / HTTP/1.1\r\n");
    }

    #[test]
    fn host_may_be_set_on_requests() {
        let m = modifier(&[("Host", "other.example")], &[], &[]);
        assert_eq!(
            apply(&m, "GET / HTTP/1.1\r\nHost: h\r\nAccept: */*\r\n\r\n"),
            "GET / HTTP/1.1\r\nAccept: */*\r\nHost: other.example\r\n\r\n"
        );
    }

    #[test]
    fn framing_names_bad_names_and_line_breaks_do_not_compile() {
        let refused = [
            modifier(&[("Content-Length", "0")], &[], &[]),
            modifier(&[], &[("transfer-encoding", "chunked")], &[]),
            modifier(&[], &[], &["Connection"]),
            modifier(&[("UPGRADE", "h2c")], &[], &[]),
            modifier(&[], &[("Host", "a")], &[]),
            modifier(&[], &[], &["host"]),
            modifier(&[("X-A", "1\r\nX-Injected: 1")], &[], &[]),
            modifier(&[("X A", "1")], &[], &[]),
            modifier(&[("", "1")], &[], &[]),
        ];
        for m in &refused {
            assert!(HeaderEdits::compile(m, Side::Request).is_err(), "{m:?}");
        }
        // Host on a response is just a header.
        let host = modifier(&[], &[("Host", "a")], &[]);
        assert!(HeaderEdits::compile(&host, Side::Response).is_ok());
        assert!(HeaderEdits::compile(&refused[0], Side::Response).is_err());
    }
}
