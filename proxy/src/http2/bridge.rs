//! One HTTP/2 stream as the byte stream of one HTTP/1.1 exchange. Reads
//! give an HTTP/1.1 request head built from the h2 request, then its body
//! (DATA frames, chunked when the client gave no length). Writes take the
//! HTTP/1.1 response the exchange writes and send it as HEADERS and DATA,
//! under the stream's flow control. Closing ends the stream; dropping it
//! before the answer is complete resets it.

use super::{io_error, poll_capacity};
use crate::http::buf::read_staged;
use crate::http::chunked::ChunkedDecoder;
use crate::http::MAX_HEADERS;
use bytes::Bytes;
use h2::server::SendResponse;
use h2::{Reason, RecvStream, SendStream};
use http::header::{self, HeaderName, HeaderValue};
use http::request::Parts;
use std::io::{self, Write};
use std::task::{ready, Context, Poll};

/// Largest DATA payload passed to `h2` in one write.
const MAX_WRITE: usize = 64 * 1024;
/// Largest response head accepted from the exchange.
const MAX_RESPONSE_HEAD: usize = 128 * 1024;

/// Why an h2 request cannot become an HTTP/1.1 one: the stream is reset
/// with PROTOCOL_ERROR (RFC 9113 §8.1.1, malformed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("malformed HTTP/2 request: {0}")]
pub struct Malformed(pub &'static str);

/// An h2 stream seen as an HTTP/1.1 byte stream.
#[derive(Debug)]
pub struct Bridge {
    tls: bool,
    /// Request bytes not yet read: the head, then framing and DATA.
    staged: Vec<u8>,
    staged_read: usize,
    /// The request body still to read.
    body: Option<RecvStream>,
    /// The body goes out chunked (no content-length from the client).
    chunked: bool,
    /// Body octets the client's content-length still announces.
    length_left: u64,
    /// The DATA that completes the announced length, held back until the
    /// client ends the stream (see [`Bridge::poll_read`]).
    held: Option<Bytes>,
    /// HEAD request: the response has no body.
    head_request: bool,
    /// A gRPC call (`content-type: application/grpc…`): rauta's own
    /// answers take gRPC's form.
    grpc: bool,
    answer: Answer,
    /// Closed by the exchange: reads return end of stream.
    closed: bool,
    /// The answer was cut short, by a timeout or not (see [`Bridge::cut`]).
    cut: Option<bool>,
    /// The client reset the stream before its answer was complete.
    client_reset: bool,
}

/// Where the response stands.
#[derive(Debug)]
enum Answer {
    /// Collecting the head.
    Head {
        respond: SendResponse<Bytes>,
        head: Vec<u8>,
    },
    /// Sending the body.
    Body {
        send: SendStream<Bytes>,
        framing: Framing,
    },
    /// Ended (or reset).
    Done,
}

/// How the HTTP/1.1 response body the exchange writes ends.
#[derive(Debug)]
enum Framing {
    Length(u64),
    /// With the framing bytes since the last data: at the end they hold
    /// the last chunk and the trailers.
    Chunked(ChunkedDecoder, Vec<u8>),
    /// Ends when the exchange closes.
    Close,
}

impl Bridge {
    /// The bridge for an accepted stream, or why the request is malformed.
    pub fn new(
        parts: &Parts,
        body: RecvStream,
        respond: SendResponse<Bytes>,
        tls: bool,
    ) -> Result<Bridge, (Malformed, SendResponse<Bytes>)> {
        let has_body = !body.is_end_stream();
        let mut staged = Vec::with_capacity(512);
        let length = match request_head(parts, has_body, &mut staged) {
            Ok(length) => length,
            Err(e) => return Err((e, respond)),
        };
        Ok(Bridge {
            tls,
            staged,
            staged_read: 0,
            body: has_body.then_some(body),
            chunked: has_body && length.is_none(),
            length_left: length.unwrap_or(0),
            held: None,
            head_request: parts.method == http::Method::HEAD,
            grpc: is_grpc(parts),
            answer: Answer::Head {
                respond,
                head: Vec::new(),
            },
            closed: false,
            cut: None,
            client_reset: false,
        })
    }

    /// The connection under the stream is TLS.
    pub fn is_tls(&self) -> bool {
        self.tls
    }

    /// The request is a gRPC call.
    pub fn is_grpc(&self) -> bool {
        self.grpc
    }

    /// Takes the rest of the request body away from the byte view: the
    /// bytes staged (as the exchange would have read them) and the stream
    /// of DATA still to come. Reads then see the end of the request.
    pub fn take_body(&mut self) -> Option<(Vec<u8>, RecvStream)> {
        let body = self.body.take()?;
        let mut staged = self.staged[self.staged_read..].to_vec();
        staged.extend_from_slice(&self.held.take().unwrap_or_default());
        self.staged.clear();
        self.staged_read = 0;
        Some((staged, body))
    }

    /// Takes the stream's sending half once the answer's head went out as
    /// HEADERS and before any of a chunked body: the body and trailers are
    /// then sent as frames by the caller, and the bridge's answer is done.
    pub fn take_send(&mut self) -> Option<SendStream<Bytes>> {
        let untouched = matches!(
            &self.answer,
            Answer::Body { framing: Framing::Chunked(decoder, _), .. } if decoder.data_total() == 0
        );
        if !untouched {
            return None;
        }
        match std::mem::replace(&mut self.answer, Answer::Done) {
            Answer::Body { send, .. } => Some(send),
            _ => None,
        }
    }

    /// Notes that the client reset the stream (seen by whoever sends its
    /// answer after [`Bridge::take_send`]).
    pub fn client_reset_seen(&mut self) {
        self.client_reset = true;
    }

    /// Whether the client reset the stream before its answer was complete
    /// (a premature reset, counted against abusive connections).
    pub fn client_reset(&self) -> bool {
        self.client_reset
    }

    /// Notes a reset from the client in an I/O result of the stream.
    fn note<T>(&mut self, result: Poll<io::Result<T>>) -> Poll<io::Result<T>> {
        if let Poll::Ready(Err(e)) = &result {
            let h2 = e.get_ref().and_then(|e| e.downcast_ref::<h2::Error>());
            if h2.is_some_and(|e| e.is_reset() && e.is_remote()) {
                self.client_reset = true;
            }
        }
        result
    }

    /// The request, as HTTP/1.1 bytes.
    pub fn poll_read(&mut self, cx: &mut Context<'_>, dst: &mut [u8]) -> Poll<io::Result<usize>> {
        let result = self.poll_read_inner(cx, dst);
        self.note(result)
    }

    /// Takes response bytes of the exchange.
    pub fn poll_write(&mut self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let result = self.poll_write_inner(cx, buf);
        self.note(result)
    }

    /// The answer was cut short (the upstream failed after its head went
    /// out, `timeout` or otherwise): closing ends it as [`Bridge::end_cut`]
    /// does, never as a whole answer.
    pub fn cut(&mut self, timeout: bool) {
        self.cut = Some(timeout);
    }

    /// Ends `send`, whose answer was cut short: a gRPC call with
    /// `grpc-status` trailers (DEADLINE_EXCEEDED after a `timeout`, else
    /// UNAVAILABLE), so the client sees why; anything else with a reset.
    pub fn end_cut(&self, send: &mut SendStream<Bytes>, timeout: bool) -> io::Result<()> {
        if !self.grpc {
            send.send_reset(Reason::INTERNAL_ERROR);
            return Ok(());
        }
        let (status, message) = match timeout {
            true => (4u16, "504 Gateway Timeout: upstream timed out"),
            false => (14, "502 Bad Gateway: upstream failed during the answer"),
        };
        let mut trailers = http::HeaderMap::new();
        trailers.insert("grpc-status", HeaderValue::from(status));
        trailers.insert("grpc-message", HeaderValue::from_static(message));
        send.send_trailers(trailers).map_err(io_error)
    }

    fn poll_read_inner(&mut self, cx: &mut Context<'_>, dst: &mut [u8]) -> Poll<io::Result<usize>> {
        loop {
            if self.closed {
                return Poll::Ready(Ok(0));
            }
            if let Some(n) = read_staged(&mut self.staged, &mut self.staged_read, dst) {
                return Poll::Ready(Ok(n));
            }
            let Some(body) = &mut self.body else {
                return Poll::Ready(Ok(0));
            };
            match ready!(body.poll_data(cx)) {
                Some(Ok(data)) => {
                    // The exchange reads only as fast as the upstream takes
                    // it: releasing on read is the back-pressure.
                    let _ = body.flow_control().release_capacity(data.len());
                    if data.is_empty() {
                        continue;
                    }
                    if self.chunked {
                        let _ = write!(self.staged, "{:x}\r\n", data.len());
                        self.staged.extend_from_slice(&data);
                        self.staged.extend_from_slice(b"\r\n");
                    } else {
                        self.length_left = self.length_left.saturating_sub(data.len() as u64);
                        if self.length_left == 0 && !body.is_end_stream() {
                            // With these octets the upstream has the whole
                            // request. It is whole once the client ends the
                            // stream: DATA beyond the length resets it
                            // instead, and the upstream must not have taken
                            // a request by then.
                            self.held = Some(data);
                            continue;
                        }
                        self.staged.extend_from_slice(&data);
                    }
                }
                Some(Err(e)) => return Poll::Ready(Err(io_error(e))),
                None => {
                    self.body = None;
                    if let Some(held) = self.held.take() {
                        self.staged.extend_from_slice(&held);
                    }
                    if self.chunked {
                        self.staged.extend_from_slice(b"0\r\n\r\n");
                    }
                }
            }
        }
    }

    fn poll_write_inner(&mut self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        match &mut self.answer {
            Answer::Head { head, .. } => {
                let before = head.len();
                head.extend_from_slice(buf);
                let Some(end) = crate::http::head_end(head) else {
                    if head.len() > MAX_RESPONSE_HEAD {
                        return Poll::Ready(Err(io::Error::other("response head too large")));
                    }
                    return Poll::Ready(Ok(buf.len()));
                };
                head.truncate(end);
                let taken = end - before;
                self.send_head()?;
                Poll::Ready(Ok(taken))
            }
            Answer::Body { send, framing } => {
                if buf.is_empty() {
                    return Poll::Ready(Ok(0));
                }
                let want = match framing {
                    Framing::Length(left) => (*left).min(buf.len() as u64) as usize,
                    _ => buf.len(),
                }
                .min(MAX_WRITE);
                if want == 0 {
                    // Bytes past the announced length: not part of the answer.
                    return Poll::Ready(Ok(buf.len()));
                }
                let cap = ready!(poll_capacity(send, cx, want))?;
                let input = &buf[..cap.min(want)];
                let (consumed, data, end) = match framing {
                    Framing::Length(left) => {
                        *left -= input.len() as u64;
                        (input.len(), input, *left == 0)
                    }
                    Framing::Close => (input.len(), input, false),
                    Framing::Chunked(decoder, tail) => {
                        let p = decoder.decode(input).map_err(io::Error::other)?;
                        if p.consumed == 0 && !p.done {
                            return Poll::Ready(Err(io::Error::other("chunked framing stalled")));
                        }
                        if p.data.is_empty() {
                            tail.extend_from_slice(&input[..p.consumed]);
                        } else {
                            tail.clear();
                        }
                        (p.consumed, &input[p.data.clone()], p.done)
                    }
                };
                let trailers = match framing {
                    Framing::Chunked(_, tail) if end => trailers(tail),
                    _ => None,
                };
                if let Some(trailers) = trailers {
                    if !data.is_empty() {
                        send.send_data(Bytes::copy_from_slice(data), false)
                            .map_err(io_error)?;
                    }
                    send.send_trailers(trailers).map_err(io_error)?;
                } else if !data.is_empty() || end {
                    send.send_data(Bytes::copy_from_slice(data), end)
                        .map_err(io_error)?;
                }
                if end {
                    self.answer = Answer::Done;
                }
                Poll::Ready(Ok(consumed))
            }
            Answer::Done => Poll::Ready(Ok(buf.len())),
        }
    }

    /// Ends the stream: cleanly when the answer is complete, otherwise with
    /// a reset, so the client never takes a cut answer for a whole one.
    pub fn poll_close(&mut self) -> Poll<io::Result<()>> {
        self.closed = true;
        match std::mem::replace(&mut self.answer, Answer::Done) {
            Answer::Done => {}
            Answer::Body {
                mut send,
                framing: Framing::Close,
            } => send.send_data(Bytes::new(), true).map_err(io_error)?,
            Answer::Body { mut send, .. } => match self.cut {
                Some(timeout) => self.end_cut(&mut send, timeout)?,
                None => send.send_reset(Reason::INTERNAL_ERROR),
            },
            Answer::Head { mut respond, .. } => respond.send_reset(Reason::INTERNAL_ERROR),
        }
        Poll::Ready(Ok(()))
    }

    /// Sends the collected HTTP/1.1 head as HEADERS (an interim one is
    /// dropped: the exchange never asks for 100-continue on h2).
    fn send_head(&mut self) -> io::Result<()> {
        let Answer::Head { respond, head } = &mut self.answer else {
            return Ok(());
        };
        // A stream the client reset while the upstream worked: h2 would
        // take the answer and drop it; the reset is what counts.
        let mut quiet = Context::from_waker(std::task::Waker::noop());
        if let Poll::Ready(Ok(_)) = respond.poll_reset(&mut quiet) {
            self.client_reset = true;
            return Err(io::ErrorKind::ConnectionReset.into());
        }
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut parsed = httparse::Response::new(&mut headers);
        let status = match parsed.parse(head) {
            Ok(httparse::Status::Complete(_)) => parsed.code.unwrap_or(502),
            _ => return Err(io::Error::other("unparsable response head")),
        };
        if (100..200).contains(&status) {
            head.clear();
            return Ok(());
        }
        let mut response = http::Response::new(());
        *response.status_mut() =
            http::StatusCode::from_u16(status).map_err(|_| io::Error::other("bad status"))?;
        let mut length = None;
        let mut chunked = false;
        for h in parsed.headers.iter() {
            let Ok(name) = HeaderName::from_bytes(h.name.as_bytes()) else {
                continue;
            };
            if name == header::TRANSFER_ENCODING {
                chunked = true;
                continue;
            }
            if is_connection_specific(&name) {
                continue;
            }
            if name == header::CONTENT_LENGTH {
                length = crate::http::parse_content_length(h.value);
            }
            if let Ok(value) = HeaderValue::from_bytes(h.value) {
                response.headers_mut().append(name, value);
            }
        }
        let no_body = self.head_request || status == 204 || status == 304;
        if self.grpc && length == Some(0) {
            // A trailers-only gRPC answer: its fields are the trailers, and
            // a length is no gRPC metadata.
            response.headers_mut().remove(header::CONTENT_LENGTH);
        }
        let framing = match (no_body, chunked, length) {
            (true, _, _) | (false, false, Some(0)) => None,
            (false, true, _) => {
                response.headers_mut().remove(header::CONTENT_LENGTH);
                Some(Framing::Chunked(ChunkedDecoder::default(), Vec::new()))
            }
            (false, false, Some(n)) => Some(Framing::Length(n)),
            (false, false, None) => Some(Framing::Close),
        };
        let send = respond
            .send_response(response, framing.is_none())
            .map_err(io_error)?;
        self.answer = match framing {
            Some(framing) => Answer::Body { send, framing },
            None => Answer::Done,
        };
        Ok(())
    }
}

impl Drop for Bridge {
    fn drop(&mut self) {
        match &mut self.answer {
            Answer::Done => {}
            Answer::Body { send, .. } => send.send_reset(Reason::INTERNAL_ERROR),
            Answer::Head { respond, .. } => respond.send_reset(Reason::INTERNAL_ERROR),
        }
    }
}

/// The trailer fields in the framing after a chunked body's last data
/// (the last-chunk line, the fields, the empty line); `None` when there
/// are none. The decoder has already checked their syntax.
fn trailers(tail: &[u8]) -> Option<http::HeaderMap> {
    let mut lines = tail
        .split(|b| *b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
        .skip_while(|l| l.is_empty());
    // The last chunk's size line ("0", maybe with extensions).
    lines.next()?;
    let mut map = http::HeaderMap::new();
    for line in lines.take_while(|l| !l.is_empty()) {
        let Some(colon) = line.iter().position(|b| *b == b':') else {
            continue;
        };
        let (name, value) = (&line[..colon], line[colon + 1..].trim_ascii());
        let Ok(name) = HeaderName::from_bytes(name) else {
            continue;
        };
        if is_connection_specific(&name) || name == header::CONTENT_LENGTH {
            continue;
        }
        if let Ok(value) = HeaderValue::from_bytes(value) {
            map.append(name, value);
        }
    }
    (!map.is_empty()).then_some(map)
}

/// A gRPC request, by its content type (`application/grpc`, `+proto`, …).
fn is_grpc(parts: &Parts) -> bool {
    parts
        .headers
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/grpc"))
}

/// Fields that are about one HTTP/1.1 connection and mean nothing (or
/// something dangerous) across HTTP/2 (RFC 9113 §8.2.2).
fn is_connection_specific(name: &HeaderName) -> bool {
    name == header::CONNECTION
        || name == header::TRANSFER_ENCODING
        || name == header::UPGRADE
        || name == header::TE
        || name.as_str() == "keep-alive"
        || name.as_str() == "proxy-connection"
}

/// An HTTP/1.1 value may not start or end with whitespace (RFC 9110 §5.5),
/// nor hold CR, LF or NUL (`http` already refuses those).
fn valid_value(v: &[u8]) -> bool {
    !matches!(v.first(), Some(b' ' | b'\t')) && !matches!(v.last(), Some(b' ' | b'\t'))
}

/// Writes the HTTP/1.1 request head for an h2 request into `out`; returns
/// the body's content-length (a body without one is sent chunked).
pub(super) fn request_head(
    parts: &Parts,
    has_body: bool,
    out: &mut Vec<u8>,
) -> Result<Option<u64>, Malformed> {
    if parts.method == http::Method::CONNECT {
        return Err(Malformed("CONNECT is not proxied over HTTP/2"));
    }
    let target = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str())
        .filter(|p| !p.is_empty())
        .ok_or(Malformed("no :path"))?;
    // Origin form, or `*` for OPTIONS (RFC 9113 §8.3.1): an absolute
    // target would make the HTTP/1.1 side take its host over :authority.
    if !(target.starts_with('/') || (target == "*" && parts.method == http::Method::OPTIONS)) {
        return Err(Malformed(":path is not a path"));
    }
    let authority = parts.uri.authority().map(|a| a.as_str());
    if authority.is_some_and(|a| a.contains('@')) {
        return Err(Malformed("userinfo in :authority"));
    }
    let host_field = parts.headers.get(header::HOST).map(HeaderValue::as_bytes);
    let host = match (authority, host_field) {
        (Some(a), Some(h)) if !a.as_bytes().eq_ignore_ascii_case(h) => {
            return Err(Malformed("host field differs from :authority"))
        }
        (Some(a), _) => a.as_bytes(),
        (None, Some(h)) => h,
        (None, None) => return Err(Malformed("no :authority or host")),
    };
    out.extend_from_slice(parts.method.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(target.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\nhost: ");
    out.extend_from_slice(host);
    out.extend_from_slice(b"\r\n");
    let mut length: Option<&[u8]> = None;
    let mut cookies = 0;
    let mut hosts = 0;
    for (name, value) in &parts.headers {
        let v = value.as_bytes();
        if !valid_value(v) {
            return Err(Malformed("whitespace around a field value"));
        }
        if name == header::TE {
            if !v.eq_ignore_ascii_case(b"trailers") {
                return Err(Malformed("te other than trailers"));
            }
            continue;
        }
        if is_connection_specific(name) {
            return Err(Malformed("connection-specific field"));
        }
        if name == header::HOST {
            hosts += 1;
            if hosts > 1 {
                return Err(Malformed("more than one host field"));
            }
            continue;
        }
        if name == header::EXPECT {
            continue;
        }
        if name == header::CONTENT_LENGTH {
            if length.is_some_and(|l| l != v) {
                return Err(Malformed("conflicting content-length"));
            }
            if length.is_some() {
                continue;
            }
            length = Some(v);
        }
        if name == header::COOKIE {
            // Cookie crumbs become one field again (RFC 9113 §8.2.3); an
            // empty crumb holds no cookie and would leave a stray `; `.
            cookies += 1;
            if cookies > 1 {
                continue;
            }
            let mut crumbs = parts
                .headers
                .get_all(header::COOKIE)
                .iter()
                .map(HeaderValue::as_bytes)
                .filter(|c| !c.is_empty());
            if let Some(first) = crumbs.next() {
                out.extend_from_slice(b"cookie: ");
                out.extend_from_slice(first);
                for crumb in crumbs {
                    out.extend_from_slice(b"; ");
                    out.extend_from_slice(crumb);
                }
                out.extend_from_slice(b"\r\n");
            }
            continue;
        }
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(v);
        out.extend_from_slice(b"\r\n");
    }
    if has_body && length.is_none() {
        out.extend_from_slice(b"transfer-encoding: chunked\r\n");
    }
    out.extend_from_slice(b"\r\n");
    // h2 has checked that it is a number (and holds DATA to it); digits
    // only all the same (`str::parse` would take `+5`).
    length
        .map(|v| {
            crate::http::parse_content_length(v).ok_or(Malformed("content-length is not a number"))
        })
        .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(req: http::request::Builder) -> Parts {
        req.body(()).expect("valid request").into_parts().0
    }

    fn head(req: http::request::Builder, has_body: bool) -> Result<(String, bool), Malformed> {
        let mut out = Vec::new();
        let length = request_head(&parts(req), has_body, &mut out)?;
        Ok((
            String::from_utf8(out).expect("ascii"),
            has_body && length.is_none(),
        ))
    }

    #[test]
    fn a_request_becomes_an_http11_head() {
        let (h, chunked) = head(
            http::Request::get("https://example.com/a?b=1")
                .header("cookie", "a=1")
                .header("cookie", "b=2")
                .header("te", "trailers")
                .header("x-y", "z"),
            false,
        )
        .expect("valid");
        assert_eq!(
            h,
            "GET /a?b=1 HTTP/1.1\r\nhost: example.com\r\ncookie: a=1; b=2\r\nx-y: z\r\n\r\n"
        );
        assert!(!chunked);
        let (h, chunked) = head(http::Request::post("http://a/up"), true).expect("valid");
        assert!(h.contains("transfer-encoding: chunked\r\n"), "{h}");
        assert!(chunked);
        let (h, chunked) = head(
            http::Request::post("http://a/up").header("content-length", "5"),
            true,
        )
        .expect("valid");
        assert!(h.contains("content-length: 5\r\n") && !chunked, "{h}");
    }

    #[test]
    fn empty_cookie_crumbs_are_dropped() {
        // The h2_head fuzz target's find: an empty crumb left `a=1; ` (a
        // value ending in whitespace, which HTTP/1.1 parsers trim).
        let (h, _) = head(
            http::Request::get("http://a/")
                .header("cookie", "a=1")
                .header("cookie", "")
                .header("cookie", "b=2")
                .header("cookie", ""),
            false,
        )
        .expect("valid");
        assert_eq!(h, "GET / HTTP/1.1\r\nhost: a\r\ncookie: a=1; b=2\r\n\r\n");
        let (h, _) =
            head(http::Request::get("http://a/").header("cookie", ""), false).expect("valid");
        assert_eq!(h, "GET / HTTP/1.1\r\nhost: a\r\n\r\n");
    }

    #[test]
    fn trailers_come_from_the_end_of_a_chunked_body() {
        let t = trailers(b"\r\n0\r\ngrpc-status: 0\r\ngrpc-message: ok go\r\nx-a:b\r\n\r\n")
            .expect("trailers");
        assert_eq!(t["grpc-status"], "0");
        assert_eq!(t["grpc-message"], "ok go");
        assert_eq!(t["x-a"], "b");
        assert!(trailers(b"0\r\n\r\n").is_none());
        assert!(trailers(b"0;ext=1\r\nconnection: close\r\n\r\n").is_none());
    }

    #[test]
    fn malformed_requests_are_refused() {
        let cases = [
            http::Request::get("http://a/").header("host", "b"),
            http::Request::get("http://a/").header("x", " lead"),
            http::Request::get("http://a/").header("x", "trail\t"),
            http::Request::get("http://a/").header("connection", "close"),
            http::Request::get("http://a/").header("transfer-encoding", "chunked"),
            http::Request::get("http://a/").header("te", "gzip"),
            http::Request::get("http://a/").header("keep-alive", "1"),
            http::Request::get("http://a/").header("upgrade", "websocket"),
            http::Request::get("http://a/")
                .header("content-length", "1")
                .header("content-length", "2"),
            http::Request::connect("a:443"),
            http::Request::get("/no-authority"),
            http::Request::get("http://a/")
                .header("host", "a")
                .header("host", "a"),
            http::Request::get("http://user@a/"),
            http::Request::get("*").header("host", "a"),
        ];
        for (i, req) in cases.into_iter().enumerate() {
            assert!(head(req, false).is_err(), "case {i} was accepted");
        }
        let (h, _) = head(http::Request::options("*").header("host", "a"), false).expect("valid");
        assert!(h.starts_with("OPTIONS * HTTP/1.1\r\nhost: a\r\n"), "{h}");
    }
}
