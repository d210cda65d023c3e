//! A small blocking HTTP/1.1 client over std `TcpStream` (read/write
//! timeouts 10 s) for talking to the proxy in tests, including raw bytes.

use std::fmt::Write as _;
use std::io::{self, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use crate::wire::{find_header, framing, invalid, is_timeout, Framing, Wire};

/// Connect, read and write timeout used by the client.
pub const TIMEOUT: Duration = Duration::from_secs(10);
/// Most response header fields parsed.
const MAX_HEADERS: usize = 256;
/// Largest response head accepted.
const MAX_HEAD: usize = 256 * 1024;

/// One parsed HTTP response.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// HTTP minor version of the status line: 0 or 1.
    pub version: u8,
    /// Header fields in order, names as received.
    pub headers: Vec<(String, String)>,
    /// The body (de-chunked; empty for HEAD, 1xx, 204 and 304).
    pub body: Vec<u8>,
    /// Trailer fields of a chunked body, in order.
    pub trailers: Vec<(String, String)>,
}

impl Response {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        find_header(&self.headers, name)
    }

    /// Every value of header `name` (case-insensitive), in order.
    pub fn header_all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// The body as text (invalid UTF-8 replaced).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Opens a TCP connection with the client timeouts set.
fn connect(addr: SocketAddr) -> io::Result<TcpStream> {
    let stream = TcpStream::connect_timeout(&addr, TIMEOUT)?;
    stream.set_read_timeout(Some(TIMEOUT))?;
    stream.set_write_timeout(Some(TIMEOUT))?;
    let _ = stream.set_nodelay(true);
    Ok(stream)
}

/// `GET path` with `Host: host` and `Connection: close` on a new connection.
pub fn get(addr: SocketAddr, host: &str, path: &str) -> io::Result<Response> {
    request(addr, "GET", host, path, &[], &[])
}

/// One request on a new connection with `Connection: close` added (see
/// [`Conn::request`] for the other rules).
pub fn request(
    addr: SocketAddr,
    method: &str,
    host: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> io::Result<Response> {
    let mut all: Vec<(&str, &str)> = headers.to_vec();
    if !headers
        .iter()
        .any(|(n, _)| n.eq_ignore_ascii_case("connection"))
    {
        all.push(("Connection", "close"));
    }
    Conn::open(addr)?.request(method, host, path, &all, body)
}

/// One client connection that can carry several (also pipelined) requests.
pub struct Conn {
    wire: Wire,
}

impl std::fmt::Debug for Conn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Conn")
            .field("peer", &self.wire.stream.peer_addr().ok())
            .field("buffered", &self.wire.pending().len())
            .finish()
    }
}

impl Conn {
    /// Connects to `addr` (timeouts 10 s).
    pub fn open(addr: SocketAddr) -> io::Result<Conn> {
        Ok(Conn {
            wire: Wire::new(connect(addr)?, None, TIMEOUT),
        })
    }

    /// The underlying stream (e.g. to shut down one direction).
    pub fn stream(&self) -> &TcpStream {
        &self.wire.stream
    }

    /// Changes the read and write timeouts (default 10 s).
    pub fn set_timeout(&mut self, timeout: Duration) -> io::Result<()> {
        self.wire.stream.set_read_timeout(Some(timeout))?;
        self.wire.stream.set_write_timeout(Some(timeout))
    }

    /// Writes raw bytes.
    pub fn send(&mut self, raw: &[u8]) -> io::Result<()> {
        self.wire.stream.write_all(raw)?;
        self.wire.stream.flush()
    }

    /// Sends `METHOD path HTTP/1.1` with `Host: host` (omitted when `host`
    /// is empty), then `headers`, a `Content-Length` when the body is
    /// non-empty or the method is POST/PUT/PATCH (unless `headers` has
    /// Content-Length or Transfer-Encoding: `body` is then sent as given),
    /// and `body`; returns the final response (1xx other than 101 skipped).
    pub fn request(
        &mut self,
        method: &str,
        host: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> io::Result<Response> {
        let mut head = format!("{method} {path} HTTP/1.1\r\n");
        if !host.is_empty() {
            let _ = write!(head, "Host: {host}\r\n");
        }
        for (n, v) in headers {
            let _ = write!(head, "{n}: {v}\r\n");
        }
        let framed = headers.iter().any(|(n, _)| {
            n.eq_ignore_ascii_case("content-length") || n.eq_ignore_ascii_case("transfer-encoding")
        });
        let wants_length = !body.is_empty()
            || ["POST", "PUT", "PATCH"]
                .iter()
                .any(|m| m.eq_ignore_ascii_case(method));
        if !framed && wants_length {
            let _ = write!(head, "Content-Length: {}\r\n", body.len());
        }
        head.push_str("\r\n");
        let mut raw = head.into_bytes();
        raw.extend_from_slice(body);
        self.send(&raw)?;
        let head_request = method.eq_ignore_ascii_case("HEAD");
        loop {
            let resp = self.read_response(head_request)?;
            if !(100..200).contains(&resp.status) || resp.status == 101 {
                return Ok(resp);
            }
        }
    }

    /// Reads the next response (1xx interim responses included), framing
    /// the body by HEAD/1xx/204/304 (none), chunked (trailers kept),
    /// Content-Length, or else the connection closing. Bytes after it stay
    /// buffered for the next call.
    pub fn read_response(&mut self, head_request: bool) -> io::Result<Response> {
        let wire = &mut self.wire;
        let (n, mut resp) = loop {
            if !wire.pending().is_empty() {
                let mut fields = [httparse::EMPTY_HEADER; MAX_HEADERS];
                let mut parsed = httparse::Response::new(&mut fields);
                match parsed.parse(wire.pending()) {
                    Ok(httparse::Status::Complete(n)) => {
                        let resp = Response {
                            status: parsed.code.unwrap_or_default(),
                            version: parsed.version.unwrap_or_default(),
                            headers: parsed
                                .headers
                                .iter()
                                .map(|h| {
                                    (
                                        h.name.to_string(),
                                        String::from_utf8_lossy(h.value).into_owned(),
                                    )
                                })
                                .collect(),
                            ..Response::default()
                        };
                        break (n, resp);
                    }
                    Ok(httparse::Status::Partial) if wire.pending().len() > MAX_HEAD => {
                        return Err(invalid("response head too large"));
                    }
                    Ok(httparse::Status::Partial) => {}
                    Err(e) => {
                        return Err(invalid(&format!(
                            "malformed response head ({e}): {:?}",
                            String::from_utf8_lossy(
                                &wire.pending()[..wire.pending().len().min(200)]
                            )
                        )));
                    }
                }
            }
            if wire.fill()? == 0 {
                return Err(io::Error::new(
                    ErrorKind::UnexpectedEof,
                    if wire.pending().is_empty() {
                        "connection closed before a response".to_string()
                    } else {
                        format!(
                            "connection closed inside a response head: {:?}",
                            String::from_utf8_lossy(
                                &wire.pending()[..wire.pending().len().min(200)]
                            )
                        )
                    },
                ));
            }
        };
        wire.skip(n);
        if head_request || (100..200).contains(&resp.status) || matches!(resp.status, 204 | 304) {
            return Ok(resp);
        }
        match framing(&resp.headers, false).map_err(invalid)? {
            Framing::Chunked => {
                let (body, trailers) = wire.read_chunked()?;
                resp.body = body;
                resp.trailers = trailers;
            }
            Framing::Length(len) => resp.body = wire.read_exact_body(len)?,
            Framing::None | Framing::OtherCoding => resp.body = wire.read_to_close()?,
        }
        Ok(resp)
    }

    /// Whether the peer closed (or reset) the connection within `wait`;
    /// false if bytes arrive instead (they stay buffered) or nothing happens.
    pub fn is_closed_by_peer(&mut self, wait: Duration) -> bool {
        if !self.wire.pending().is_empty() {
            return false;
        }
        let old = self.wire.stream.read_timeout().ok().flatten();
        let _ = self
            .wire
            .stream
            .set_read_timeout(Some(wait.max(Duration::from_millis(1))));
        let mut piece = [0u8; 16 * 1024];
        let closed = loop {
            match self.wire.stream.read(&mut piece) {
                Ok(0) => break true,
                Ok(n) => {
                    self.wire.push(&piece[..n]);
                    break false;
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) if is_timeout(&e) => break false,
                Err(_) => break true,
            }
        };
        let _ = self.wire.stream.set_read_timeout(old);
        closed
    }
}

/// Connects, writes `bytes`, then reads until the peer closes or `wait`
/// expires; returns what was read (a write or reset error after connecting
/// just ends the exchange).
pub fn raw_exchange(addr: SocketAddr, bytes: &[u8], wait: Duration) -> io::Result<Vec<u8>> {
    let mut stream = connect(addr)?;
    let deadline = Instant::now() + wait;
    let _ = stream.write_all(bytes);
    let mut out = Vec::new();
    let mut piece = [0u8; 64 * 1024];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        stream.set_read_timeout(Some(left))?;
        match stream.read(&mut piece) {
            Ok(0) => break,
            Ok(n) => out.extend_from_slice(&piece[..n]),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    Ok(out)
}

/// The status code of the first status line in `raw`
/// (`HTTP/1.x NNN ...`), if it has one.
pub fn status_of(raw: &[u8]) -> Option<u16> {
    let rest = raw.strip_prefix(b"HTTP/")?;
    match rest {
        [major, b'.', minor, b' ', a, b, c, ..]
            if major.is_ascii_digit()
                && minor.is_ascii_digit()
                && [a, b, c].iter().all(|d| d.is_ascii_digit()) =>
        {
            Some(u16::from(a - b'0') * 100 + u16::from(b - b'0') * 10 + u16::from(c - b'0'))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_lines() {
        assert_eq!(status_of(b"HTTP/1.1 200 OK\r\n"), Some(200));
        assert_eq!(status_of(b"HTTP/1.0 404"), Some(404));
        assert_eq!(status_of(b"HTTP/1.1 20"), None);
        assert_eq!(status_of(b""), None);
        assert_eq!(status_of(b"garbage"), None);
    }
}
