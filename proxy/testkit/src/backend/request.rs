//! Reading one request (head and body) off a connection, and the parts
//! of its target.

use std::io::ErrorKind;

use super::write::write_all;
use super::{MAX_HEAD, MAX_HEADERS};
use crate::wire::{find_header, framing, header_tokens, Framing, Wire};

/// A parsed request with its body.
pub(super) struct Request {
    pub(super) method: String,
    pub(super) target: String,
    pub(super) version: u8,
    pub(super) headers: Vec<(String, String)>,
    pub(super) body: Vec<u8>,
}

impl Request {
    /// The first value of header `name`.
    pub(super) fn header(&self, name: &str) -> Option<&str> {
        find_header(&self.headers, name)
    }

    /// Whether the connection stays open after this request.
    pub(super) fn keep_alive(&self) -> bool {
        let tokens = header_tokens(&self.headers, "connection");
        if self.version == 0 {
            tokens.iter().any(|t| t == "keep-alive")
        } else {
            !tokens.iter().any(|t| t == "close")
        }
    }

    /// Whether this is a WebSocket upgrade request.
    pub(super) fn is_websocket_upgrade(&self) -> bool {
        header_tokens(&self.headers, "upgrade")
            .iter()
            .any(|t| t == "websocket")
    }
}

/// Why reading a request failed.
pub(super) enum ReadError {
    /// Answer with this status and message, then close.
    Bad(u16, &'static str),
    /// The connection failed, was closed mid-request or we are stopping.
    Io,
}

/// Reads one request (head and body). `Ok(None)` on a clean close before
/// any byte of a new request.
pub(super) fn read_request(wire: &mut Wire) -> Result<Option<Request>, ReadError> {
    let (head_len, method, target, version, headers) = loop {
        if !wire.pending().is_empty() {
            let mut fields = [httparse::EMPTY_HEADER; MAX_HEADERS];
            let mut parsed = httparse::Request::new(&mut fields);
            match parsed.parse(wire.pending()) {
                Ok(httparse::Status::Complete(n)) if n > MAX_HEAD => {
                    return Err(ReadError::Bad(431, "request head too large"));
                }
                Ok(httparse::Status::Complete(n)) => {
                    let headers: Vec<(String, String)> = parsed
                        .headers
                        .iter()
                        .map(|h| {
                            (
                                h.name.to_string(),
                                String::from_utf8_lossy(h.value).to_string(),
                            )
                        })
                        .collect();
                    break (
                        n,
                        parsed.method.unwrap_or_default().to_string(),
                        parsed.path.unwrap_or_default().to_string(),
                        parsed.version.unwrap_or(1),
                        headers,
                    );
                }
                Ok(httparse::Status::Partial) => {
                    if wire.pending().len() > MAX_HEAD {
                        return Err(ReadError::Bad(431, "request head too large"));
                    }
                }
                Err(httparse::Error::TooManyHeaders) => {
                    return Err(ReadError::Bad(431, "too many header fields"));
                }
                Err(_) => return Err(ReadError::Bad(400, "malformed request head")),
            }
        }
        match wire.fill() {
            Ok(0) if wire.pending().is_empty() => return Ok(None),
            Ok(0) | Err(_) => return Err(ReadError::Io),
            Ok(_) => {}
        }
    };
    wire.skip(head_len);
    let framing = framing(&headers, true).map_err(|m| ReadError::Bad(400, m))?;
    let expects_body = match framing {
        Framing::None => false,
        Framing::Length(n) => n > 0,
        Framing::Chunked => true,
        Framing::OtherCoding => {
            return Err(ReadError::Bad(
                400,
                "request Transfer-Encoding does not end in chunked",
            ))
        }
    };
    let expect_continue = header_tokens(&headers, "expect")
        .iter()
        .any(|t| t == "100-continue");
    if expects_body && expect_continue && version == 1 && wire.pending().is_empty() {
        write_all(&wire.stream, &[b"HTTP/1.1 100 Continue\r\n\r\n"]).map_err(|_| ReadError::Io)?;
    }
    let body = match framing {
        Framing::Length(n) => wire.read_exact_body(n).map_err(|_| ReadError::Io)?,
        Framing::Chunked => match wire.read_chunked() {
            Ok((body, _trailers)) => body,
            Err(e) if e.kind() == ErrorKind::InvalidData => {
                return Err(ReadError::Bad(400, "malformed chunked body"))
            }
            Err(_) => return Err(ReadError::Io),
        },
        Framing::None | Framing::OtherCoding => Vec::new(),
    };
    Ok(Some(Request {
        method,
        target,
        version,
        headers,
        body,
    }))
}

/// Query parameter `key` of a query string (no percent-decoding).
pub(super) fn query_param<'a>(query: &'a str, key: &str) -> Option<&'a str> {
    query
        .split('&')
        .filter_map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (k == key).then_some(v)
        })
        .next()
}

/// Parses numeric query parameter `key`; `Ok(default)` when absent.
pub(super) fn num_param(query: &str, key: &str, default: Option<u64>) -> Result<u64, String> {
    match (query_param(query, key), default) {
        (Some(v), _) => v
            .parse()
            .map_err(|_| format!("query parameter {key}={v:?} is not a number")),
        (None, Some(d)) => Ok(d),
        (None, None) => Err(format!("missing query parameter {key}")),
    }
}

/// The path part of a request target (absolute-form authority stripped).
pub(super) fn target_path(target: &str) -> (&str, &str) {
    let mut t = target;
    if let Some(rest) = t
        .strip_prefix("http://")
        .or_else(|| t.strip_prefix("https://"))
    {
        t = rest.find('/').map_or("/", |i| &rest[i..]);
    }
    t.split_once('?').unwrap_or((t, ""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_and_queries() {
        assert_eq!(target_path("/a/b?x=1"), ("/a/b", "x=1"));
        assert_eq!(target_path("/a"), ("/a", ""));
        assert_eq!(target_path("http://h:1/p?q"), ("/p", "q"));
        assert_eq!(target_path("http://h"), ("/", ""));
        assert_eq!(query_param("n=5&size=7", "size"), Some("7"));
        assert_eq!(query_param("n", "n"), Some(""));
        assert_eq!(query_param("m=1", "n"), None);
        assert_eq!(num_param("n=12", "n", None), Ok(12));
        assert!(num_param("n=x", "n", None).is_err());
        assert!(num_param("", "n", None).is_err());
        assert_eq!(num_param("", "size", Some(1000)), Ok(1000));
    }
}
