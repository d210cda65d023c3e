//! Upstream response heads, parsed with httparse; framing decided per
//! RFC 9112 section 6.3.

use super::{parse_content_length, tokens, BodyLen, ConnectionOptions};
use httparse::{Header, Status};

/// A parsed upstream response head borrowing the upstream read buffer.
#[derive(Debug)]
pub struct ResponseHead<'h, 'b> {
    /// Status code.
    pub status: u16,
    /// Reason phrase as sent (may be empty).
    pub reason: &'b str,
    /// Every header, in order.
    pub headers: &'h [Header<'b>],
    /// Length of the head in bytes.
    pub len: usize,
    /// How the body is delimited.
    pub body: BodyLen,
    /// The Content-Length the upstream declared (for HEAD and 304 answers
    /// it describes a body that is not sent).
    pub content_length: Option<u64>,
    /// A Transfer-Encoding was sent, and its final coding is chunked.
    pub chunked: bool,
    /// Whether the upstream connection may carry another request after this
    /// response has been read whole.
    pub reusable: bool,
    /// Header names the upstream's `Connection` headers list as hop-by-hop.
    pub connection: ConnectionOptions<'h, 'b>,
}

/// Why a response head is unusable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ResponseError {
    /// httparse rejected it, or a field is ambiguous.
    #[error("malformed response head: {0}")]
    Malformed(&'static str),
    /// The head exceeds the buffer or header-count limit.
    #[error("response head too large")]
    TooLarge,
}

/// Parses a response head. `Ok(None)` means more bytes are needed.
/// `head_request` is true when the request was HEAD.
pub fn parse<'h, 'b>(
    buf: &'b [u8],
    headers: &'h mut [Header<'b>],
    head_request: bool,
) -> Result<Option<ResponseHead<'h, 'b>>, ResponseError> {
    let mut resp = httparse::Response::new(headers);
    let len = match resp.parse(buf) {
        Ok(Status::Complete(len)) => len,
        Ok(Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => return Err(ResponseError::TooLarge),
        Err(_) => return Err(ResponseError::Malformed("httparse")),
    };
    let (Some(minor), Some(status)) = (resp.version, resp.code) else {
        return Err(ResponseError::Malformed("incomplete status line"));
    };
    // httparse takes any three digits; "020" would reach the client as
    // status 20, which no client can parse (found by the head_rewrite fuzz
    // target).
    if status < 100 {
        return Err(ResponseError::Malformed("status code below 100"));
    }
    let reason = resp.reason.unwrap_or("");
    let headers: &'h [Header<'b>] = resp.headers;
    let mut content_length = None;
    let mut transfer_encoding: Option<bool> = None; // Some(final coding is chunked)
    let mut connection = ConnectionOptions::empty(headers);
    let (mut close, mut keep_alive) = (false, false);
    for h in headers {
        if h.name.eq_ignore_ascii_case("content-length") {
            let n = parse_content_length(h.value)
                .ok_or(ResponseError::Malformed("invalid Content-Length"))?;
            if content_length.is_some_and(|prev| prev != n) {
                return Err(ResponseError::Malformed(
                    "conflicting Content-Length headers",
                ));
            }
            content_length = Some(n);
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            let last = tokens(h.value)
                .last()
                .map(|t| t.eq_ignore_ascii_case(b"chunked"));
            transfer_encoding = Some(last.unwrap_or(false));
        } else if h.name.eq_ignore_ascii_case("connection") {
            connection.add(h.value);
            for t in tokens(h.value) {
                close |= t.eq_ignore_ascii_case(b"close");
                keep_alive |= t.eq_ignore_ascii_case(b"keep-alive");
            }
        }
    }
    let body = if head_request || (100..200).contains(&status) || status == 204 || status == 304 {
        BodyLen::None
    } else {
        match (transfer_encoding, content_length) {
            (Some(true), _) => BodyLen::Chunked,
            (Some(false), _) => BodyLen::Close,
            (None, Some(n)) => BodyLen::Length(n),
            (None, None) => BodyLen::Close,
        }
    };
    let reusable = !close && (minor == 1 || keep_alive) && body != BodyLen::Close && status != 101;
    Ok(Some(ResponseHead {
        status,
        reason,
        headers,
        len,
        body,
        content_length,
        chunked: transfer_encoding == Some(true),
        reusable,
        connection,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn framing(raw: &str, head_request: bool) -> (BodyLen, bool) {
        let mut headers = [httparse::EMPTY_HEADER; 16];
        let r = parse(raw.as_bytes(), &mut headers, head_request)
            .expect("valid")
            .expect("complete");
        (r.body, r.reusable)
    }

    #[test]
    fn framing_table() {
        let cases: &[(&str, bool, (BodyLen, bool))] = &[
            (
                "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n",
                false,
                (BodyLen::Length(3), true),
            ),
            (
                "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n",
                false,
                (BodyLen::Chunked, true),
            ),
            ("HTTP/1.1 200 OK\r\n\r\n", false, (BodyLen::Close, false)),
            (
                "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
                false,
                (BodyLen::Close, false),
            ),
            (
                "HTTP/1.1 204 No Content\r\n\r\n",
                false,
                (BodyLen::None, true),
            ),
            (
                "HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n",
                false,
                (BodyLen::None, true),
            ),
            (
                "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n",
                true,
                (BodyLen::None, true),
            ),
            (
                "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nConnection: close\r\n\r\n",
                false,
                (BodyLen::Length(1), false),
            ),
            (
                "HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\n",
                false,
                (BodyLen::Length(1), false),
            ),
            (
                "HTTP/1.0 200 OK\r\nContent-Length: 1\r\nConnection: keep-alive\r\n\r\n",
                false,
                (BodyLen::Length(1), true),
            ),
            (
                "HTTP/1.1 100 Continue\r\n\r\n",
                false,
                (BodyLen::None, true),
            ),
        ];
        for (raw, head, want) in cases {
            assert_eq!(framing(raw, *head), *want, "{raw:?}");
        }
    }

    #[test]
    fn rejects_ambiguous_lengths() {
        let mut headers = [httparse::EMPTY_HEADER; 16];
        let raw = b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n";
        assert!(parse(raw, &mut headers, false).is_err());
        let mut headers = [httparse::EMPTY_HEADER; 16];
        assert!(parse(b"HTTP/1.1 abc\r\n\r\n", &mut headers, false).is_err());
        let mut headers = [httparse::EMPTY_HEADER; 16];
        assert!(parse(b"HTTP/1.1 020 OK\r\n\r\n", &mut headers, false).is_err());
    }
}
