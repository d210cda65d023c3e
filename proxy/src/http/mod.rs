//! HTTP/1.1 on the wire: heads parsed with httparse, heads rewritten for the
//! other side, bodies framed by length, chunked or close. Nothing here knows
//! about routing or the runtime; streams are plain `AsyncRead`/`AsyncWrite`.

pub mod body;
pub mod buf;
pub mod chunked;
pub mod head;
pub mod invariants;
pub mod request;
pub mod response;

/// Most headers any head may carry (the httparse array size); the
/// configured limit may be lower.
pub const MAX_HEADERS: usize = 128;

/// How a message body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyLen {
    /// No body.
    None,
    /// Exactly this many bytes.
    Length(u64),
    /// Chunked transfer coding.
    Chunked,
    /// Until the connection closes (responses only).
    Close,
}

/// A client request that cannot be served as sent; the status says why.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    /// Malformed or ambiguous (400).
    #[error("bad request: {0}")]
    Bad(&'static str),
    /// Head larger than the limit, or too many headers (431).
    #[error("request header fields too large")]
    HeadTooLarge,
    /// An `Expect` other than `100-continue` (417).
    #[error("unsupported expectation")]
    Expectation,
    /// A transfer coding other than chunked (501).
    #[error("not implemented: {0}")]
    NotImplemented(&'static str),
    /// A method the proxy does not forward (405).
    #[error("method not allowed")]
    Method,
}

/// Where a head in `buf` ends (after its `\r\n\r\n`), if it does; the
/// searcher is built once (`memmem::find` builds one per call).
pub fn head_end(buf: &[u8]) -> Option<usize> {
    static END: std::sync::LazyLock<memchr::memmem::Finder<'static>> =
        std::sync::LazyLock::new(|| memchr::memmem::Finder::new(b"\r\n\r\n"));
    END.find(buf).map(|i| i + 4)
}

/// True when `name` is a hop-by-hop header never forwarded as is.
pub fn is_hop_by_hop(name: &str) -> bool {
    const HOP: [&str; 6] = [
        "connection",
        "keep-alive",
        "proxy-connection",
        "te",
        "trailer",
        "upgrade",
    ];
    HOP.iter().any(|h| h.eq_ignore_ascii_case(name))
}

/// True for the headers that frame a message. The proxy writes them itself
/// from the framing it relays, so a peer's copies are never forwarded and a
/// `Connection` header naming them changes nothing (RFC 9112 6.3, and the
/// request-smuggling class where a named `Content-Length` is dropped while
/// the body still goes out).
pub fn is_framing(name: &str) -> bool {
    name.eq_ignore_ascii_case("content-length") || name.eq_ignore_ascii_case("transfer-encoding")
}

/// The extra hop-by-hop header names listed in a message's `Connection`
/// headers (RFC 9110 7.6.1), other than `close`, `keep-alive` and
/// `upgrade`, which every proxy handles anyway. Empty for nearly every
/// message, so checking a header against it then costs nothing.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionOptions<'h, 'b> {
    /// Every header of the message (scanned only with several option lists).
    headers: &'h [httparse::Header<'b>],
    /// The one `Connection` value with options, while there is one.
    single: &'b [u8],
    /// How many `Connection` headers list options.
    lists: u16,
}

impl<'h, 'b> ConnectionOptions<'h, 'b> {
    /// No options yet, for a message with these headers.
    pub(crate) fn empty(headers: &'h [httparse::Header<'b>]) -> ConnectionOptions<'h, 'b> {
        ConnectionOptions {
            headers,
            single: b"",
            lists: 0,
        }
    }

    /// Takes in one `Connection` header's value.
    pub(crate) fn add(&mut self, value: &'b [u8]) {
        if has_options(value) {
            self.single = value;
            self.lists = self.lists.saturating_add(1);
        }
    }

    /// True when `name` is listed as a hop-by-hop option.
    pub fn names(&self, name: &str) -> bool {
        let is = |t: &[u8]| t.eq_ignore_ascii_case(name.as_bytes());
        match self.lists {
            0 => false,
            1 => tokens(self.single).any(is),
            _ => self
                .headers
                .iter()
                .filter(|h| h.name.eq_ignore_ascii_case("connection"))
                .any(|h| tokens(h.value).any(is)),
        }
    }
}

/// True when a `Connection` value lists a name other than the three
/// connection-level tokens.
fn has_options(value: &[u8]) -> bool {
    tokens(value).any(|t| {
        !(t.eq_ignore_ascii_case(b"close")
            || t.eq_ignore_ascii_case(b"keep-alive")
            || t.eq_ignore_ascii_case(b"upgrade"))
    })
}

/// Comma-separated tokens of a header value, trimmed, empty ones skipped.
pub fn tokens(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value
        .split(|b| *b == b',')
        .map(|t| t.trim_ascii())
        .filter(|t| !t.is_empty())
}

/// Parses a Content-Length value: digits only, every comma-separated
/// copy equal (RFC 9110 8.6); anything else is ambiguous.
pub fn parse_content_length(value: &[u8]) -> Option<u64> {
    let mut result = None;
    for t in tokens(value) {
        if t.len() > 19 || !t.iter().all(u8::is_ascii_digit) {
            return None;
        }
        let n = t.iter().fold(0u64, |n, d| n * 10 + u64::from(d - b'0'));
        match result {
            Some(prev) if prev != n => return None,
            _ => result = Some(n),
        }
    }
    result
}

/// The reason phrase of the statuses the proxy itself sends.
pub fn reason(status: u16) -> &'static str {
    match status {
        204 => "No Content",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        403 => "Forbidden",
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        413 => "Content Too Large",
        417 => "Expectation Failed",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Error",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_length_forms() {
        assert_eq!(parse_content_length(b"42"), Some(42));
        assert_eq!(parse_content_length(b"42, 42"), Some(42));
        assert_eq!(parse_content_length(b"42, 43"), None);
        assert_eq!(parse_content_length(b"+42"), None);
        assert_eq!(parse_content_length(b"-1"), None);
        assert_eq!(parse_content_length(b""), None);
        assert_eq!(parse_content_length(b"99999999999999999999"), None);
        assert_eq!(parse_content_length(b"0x10"), None);
    }
}
