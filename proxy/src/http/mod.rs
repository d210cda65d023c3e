//! HTTP/1.1 on the wire: heads parsed with httparse, heads rewritten for the
//! other side, bodies framed by length, chunked or close. Nothing here knows
//! about routing or the runtime; streams are plain `AsyncRead`/`AsyncWrite`.

pub mod body;
pub mod buf;
pub mod chunked;
pub mod head;
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
