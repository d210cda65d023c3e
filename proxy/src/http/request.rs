//! Client request heads: parsed with httparse, then checked for the shapes
//! that make proxies and servers disagree (request smuggling).

use super::{parse_content_length, tokens, BodyLen, ConnectionOptions, RequestError};
use httparse::{Header, Status};

/// A parsed, validated request head borrowing the read buffer.
#[derive(Debug)]
pub struct RequestHead<'h, 'b> {
    /// Method as sent.
    pub method: &'b str,
    /// Request target as sent (origin- or absolute-form).
    pub target: &'b str,
    /// The target in origin form (path and query), for the upstream.
    pub origin_target: &'b str,
    /// Path without the query, for routing.
    pub path: &'b str,
    /// 0 for HTTP/1.0, 1 for HTTP/1.1.
    pub minor: u8,
    /// Every header, in order.
    pub headers: &'h [Header<'b>],
    /// Length of the head in bytes, including the blank line.
    pub len: usize,
    /// Host: the absolute-form authority, else the Host header.
    pub host: Option<&'b [u8]>,
    /// How the body is delimited.
    pub body: BodyLen,
    /// The Content-Length the client declared (kept even when it is 0).
    pub content_length: Option<u64>,
    /// Whether the client wants the connection kept open.
    pub keep_alive: bool,
    /// The `Upgrade` value when the client asks for a protocol switch
    /// (never `h2c`: see [`parse`]).
    pub upgrade: Option<&'b [u8]>,
    /// `Expect: 100-continue` was sent.
    pub expect_continue: bool,
    /// Header names the client's `Connection` headers list as hop-by-hop.
    pub connection: ConnectionOptions<'h, 'b>,
}

impl RequestHead<'_, '_> {
    /// True for HEAD, whose responses never carry a body.
    pub fn is_head(&self) -> bool {
        self.method == "HEAD"
    }

    /// The first header of that name.
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| h.value)
    }
}

/// Parses a request head from `buf`. `Ok(None)` means more bytes are needed.
pub fn parse<'h, 'b>(
    buf: &'b [u8],
    headers: &'h mut [Header<'b>],
) -> Result<Option<RequestHead<'h, 'b>>, RequestError> {
    let mut req = httparse::Request::new(headers);
    let len = match req.parse(buf) {
        Ok(Status::Complete(len)) => len,
        Ok(Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => return Err(RequestError::HeadTooLarge),
        Err(httparse::Error::Version) => return Err(RequestError::Bad("unsupported HTTP version")),
        Err(_) => return Err(RequestError::Bad("malformed request head")),
    };
    let (Some(method), Some(target), Some(minor)) = (req.method, req.path, req.version) else {
        return Err(RequestError::Bad("incomplete request line"));
    };
    if method == "CONNECT" {
        return Err(RequestError::Method);
    }
    let headers: &'h [Header<'b>] = req.headers;
    let (origin_target, authority) = split_target(target)?;
    let path = origin_target
        .split(['?', '#'])
        .next()
        .unwrap_or(origin_target);

    let mut host = None;
    let mut content_length: Option<u64> = None;
    let mut chunked = false;
    let mut transfer_encoding = false;
    let mut connection = ConnectionOptions::empty(headers);
    let (mut close, mut keep_alive_token, mut upgrade_token) = (false, false, false);
    let mut upgrade = None;
    let mut expect_continue = false;
    for h in headers {
        let name = h.name;
        if name.eq_ignore_ascii_case("host") {
            if host.replace(h.value).is_some() {
                return Err(RequestError::Bad("more than one Host header"));
            }
        } else if name.eq_ignore_ascii_case("content-length") {
            let n =
                parse_content_length(h.value).ok_or(RequestError::Bad("invalid Content-Length"))?;
            if content_length.is_some_and(|prev| prev != n) {
                return Err(RequestError::Bad("conflicting Content-Length headers"));
            }
            content_length = Some(n);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            for t in tokens(h.value) {
                // Only a single, final `chunked` is understood.
                if chunked || !t.eq_ignore_ascii_case(b"chunked") {
                    return Err(RequestError::NotImplemented(
                        "transfer coding other than chunked",
                    ));
                }
                chunked = true;
            }
            transfer_encoding = true;
        } else if name.eq_ignore_ascii_case("connection") {
            connection.add(h.value);
            for t in tokens(h.value) {
                close |= t.eq_ignore_ascii_case(b"close");
                keep_alive_token |= t.eq_ignore_ascii_case(b"keep-alive");
                upgrade_token |= t.eq_ignore_ascii_case(b"upgrade");
            }
        } else if name.eq_ignore_ascii_case("upgrade") {
            upgrade = Some(h.value);
        } else if name.eq_ignore_ascii_case("expect") && minor == 1 {
            if !h.value.trim_ascii().eq_ignore_ascii_case(b"100-continue") {
                return Err(RequestError::Expectation);
            }
            expect_continue = true;
        }
    }
    if transfer_encoding && !chunked {
        return Err(RequestError::Bad("empty Transfer-Encoding"));
    }
    if transfer_encoding && minor == 0 {
        return Err(RequestError::Bad(
            "Transfer-Encoding in an HTTP/1.0 request",
        ));
    }
    if transfer_encoding && content_length.is_some() {
        return Err(RequestError::Bad(
            "both Content-Length and Transfer-Encoding",
        ));
    }
    if minor == 1 && host.is_none() && authority.is_none() {
        return Err(RequestError::Bad("missing Host header"));
    }
    let body = match (chunked, content_length) {
        (true, _) => BodyLen::Chunked,
        (false, Some(0)) | (false, None) => BodyLen::None,
        (false, Some(n)) => BodyLen::Length(n),
    };
    let keep_alive = !close && (minor == 1 || keep_alive_token);
    // An h2c upgrade would let the client talk HTTP/2 straight to the
    // backend past rauta's routing and limits; it stays HTTP/1.1 (the
    // Upgrade header is hop-by-hop and dropped), as in nginx.
    let upgrade = upgrade.filter(|u| upgrade_token && !u.trim_ascii().eq_ignore_ascii_case(b"h2c"));
    Ok(Some(RequestHead {
        method,
        target,
        origin_target,
        path,
        minor,
        headers,
        len,
        host: authority.or(host),
        body,
        content_length,
        keep_alive,
        upgrade,
        expect_continue: expect_continue && body != BodyLen::None,
        connection,
    }))
}

/// Splits a request target into its origin form and, for the absolute
/// form, the authority.
fn split_target(target: &str) -> Result<(&str, Option<&[u8]>), RequestError> {
    if target.starts_with('/') {
        return Ok((target, None));
    }
    if target == "*" {
        return Ok((target, None));
    }
    let rest = strip_prefix_ignore_case(target, "http://")
        .or_else(|| strip_prefix_ignore_case(target, "https://"))
        .ok_or(RequestError::Bad("invalid request target"))?;
    let (authority, origin) = match rest.find(['/', '?']) {
        Some(i) if rest.as_bytes()[i] == b'/' => (&rest[..i], &rest[i..]),
        // `http://host?q` has an empty path; the origin form needs one.
        _ => return Err(RequestError::Bad("absolute-form target without path")),
    };
    if authority.is_empty() || authority.contains('@') {
        return Err(RequestError::Bad("invalid authority in request target"));
    }
    Ok((origin, Some(authority.as_bytes())))
}

fn strip_prefix_ignore_case<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &s[prefix.len()..])
}

/// True when the buffer holds a complete head (an empty line after the
/// request line); the real parse happens once, in [`crate::exchange`]. The search
/// starts at `from`, where the previous one left off less the 3 bytes an
/// end-of-head mark can straddle, so a head sent a byte at a time costs
/// linear time, not quadratic.
pub fn head_complete(data: &[u8], from: usize) -> bool {
    let rest = &data[from.saturating_sub(3).min(data.len())..];
    // An empty line follows a line end; one pass over the line ends (two
    // `memmem::find` calls built two searchers per request).
    memchr::memchr_iter(b'\n', rest)
        .any(|i| matches!(&rest[i + 1..], [b'\n', ..] | [b'\r', b'\n', ..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_ok(raw: &str) -> (BodyLen, bool, Option<String>, String) {
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let head = parse(raw.as_bytes(), &mut headers)
            .expect("valid")
            .expect("complete");
        let host = head.host.map(|h| String::from_utf8_lossy(h).into_owned());
        (head.body, head.keep_alive, host, head.path.to_string())
    }

    fn parse_err(raw: &str) -> RequestError {
        let mut headers = [httparse::EMPTY_HEADER; 32];
        match parse(raw.as_bytes(), &mut headers) {
            Err(e) => e,
            Ok(h) => panic!("accepted {raw:?}: {h:?}"),
        }
    }

    #[test]
    fn accepts_ordinary_requests() {
        let (body, ka, host, path) = parse_ok("GET /a/b?x=1 HTTP/1.1\r\nHost: Ex.com\r\n\r\n");
        assert_eq!(
            (body, ka, host.as_deref(), path.as_str()),
            (BodyLen::None, true, Some("Ex.com"), "/a/b")
        );
        let (body, ka, ..) = parse_ok(
            "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nConnection: close\r\n\r\n",
        );
        assert_eq!((body, ka), (BodyLen::Length(5), false));
        let (body, ..) =
            parse_ok("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: Chunked\r\n\r\n");
        assert_eq!(body, BodyLen::Chunked);
        let (_, ka, host, _) = parse_ok("GET / HTTP/1.0\r\n\r\n");
        assert_eq!((ka, host), (false, None));
        let (_, ka, ..) = parse_ok("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
        assert!(ka);
        let (_, _, host, path) =
            parse_ok("GET http://abs.example:8080/p?q HTTP/1.1\r\nHost: other\r\n\r\n");
        assert_eq!(
            (host.as_deref(), path.as_str()),
            (Some("abs.example:8080"), "/p")
        );
    }

    #[test]
    fn rejects_smuggling_shapes_and_malformed_heads() {
        let cases: &[(&str, RequestError)] = &[
            ("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", RequestError::Bad("both Content-Length and Transfer-Encoding")),
            ("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n", RequestError::Bad("conflicting Content-Length headers")),
            ("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5, 6\r\n\r\n", RequestError::Bad("invalid Content-Length")),
            ("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: -5\r\n\r\n", RequestError::Bad("invalid Content-Length")),
            ("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", RequestError::NotImplemented("transfer coding other than chunked")),
            ("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked, chunked\r\n\r\n", RequestError::NotImplemented("transfer coding other than chunked")),
            ("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", RequestError::Bad("Transfer-Encoding in an HTTP/1.0 request")),
            ("GET / HTTP/1.1\r\n\r\n", RequestError::Bad("missing Host header")),
            ("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", RequestError::Bad("more than one Host header")),
            ("GET / HTTP/1.1\r\nHost: a\r\nExpect: magic\r\n\r\n", RequestError::Expectation),
            ("GET nope HTTP/1.1\r\nHost: a\r\n\r\n", RequestError::Bad("invalid request target")),
            ("CONNECT a:443 HTTP/1.1\r\nHost: a\r\n\r\n", RequestError::Method),
            ("GET / HTTP/1.1\r\nHost : a\r\n\r\n", RequestError::Bad("malformed request head")),
            ("GET / HTTP/2.0\r\nHost: a\r\n\r\n", RequestError::Bad("unsupported HTTP version")),
            ("GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\n\r\n", RequestError::Bad("malformed request head")),
        ];
        for (raw, want) in cases {
            assert_eq!(parse_err(raw), *want, "{raw:?}");
        }
    }

    #[test]
    fn partial_and_too_many_headers() {
        let mut headers = [httparse::EMPTY_HEADER; 2];
        assert!(matches!(
            parse(b"GET / HTTP/1.1\r\nHost: a\r\n", &mut headers),
            Ok(None)
        ));
        let raw = b"GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\n\r\n";
        assert_eq!(
            parse(raw, &mut headers).err(),
            Some(RequestError::HeadTooLarge)
        );
    }

    #[test]
    fn upgrade_needs_the_connection_token() {
        let mut headers = [httparse::EMPTY_HEADER; 8];
        let raw = b"GET /ws HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, Upgrade\r\nUpgrade: websocket\r\n\r\n";
        let head = parse(raw, &mut headers).expect("valid").expect("complete");
        assert_eq!(head.upgrade, Some(&b"websocket"[..]));
        let mut headers = [httparse::EMPTY_HEADER; 8];
        let raw = b"GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n\r\n";
        let head = parse(raw, &mut headers).expect("valid").expect("complete");
        assert_eq!(head.upgrade, None);
    }

    #[test]
    fn head_end_is_found_across_the_resumed_scan() {
        let head = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n";
        // Fed a byte at a time, the end is found exactly when it arrives.
        for end in 1..=head.len() {
            let found = head_complete(&head[..end], end - 1);
            assert_eq!(found, end == head.len(), "at {end}");
        }
        assert!(head_complete(b"GET / HTTP/1.0\n\n", 15));
        assert!(!head_complete(b"GET / HTTP/1.1\r\n", 0));
    }
}
