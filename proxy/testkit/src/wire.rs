//! Buffered HTTP/1.1 wire reading shared by the backend and the client:
//! head accumulation, Content-Length and chunked bodies, read-to-close.

use std::io::{self, ErrorKind, Read};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Longest chunk-size or trailer line accepted.
const MAX_LINE: usize = 8 * 1024;
/// Most trailer bytes accepted after the last chunk.
const MAX_TRAILERS: usize = 64 * 1024;
/// Size of one read from the socket.
const READ_PIECE: usize = 64 * 1024;

/// A TCP stream plus the bytes read from it but not consumed yet.
pub(crate) struct Wire {
    pub(crate) stream: TcpStream,
    /// Received bytes; those before `pos` are consumed.
    buf: Vec<u8>,
    /// Start of the unconsumed bytes in `buf`.
    pos: usize,
    /// When set, the stream has a short read timeout and a read that times
    /// out checks this flag (to stop) and the idle limit before retrying.
    stop: Option<Arc<AtomicBool>>,
    /// Longest wait for data in one `fill` when `stop` is set.
    idle: Duration,
}

/// Header or trailer fields as (name, value) pairs.
pub(crate) type Fields = Vec<(String, String)>;

/// Whether an I/O error is a read/write timeout.
pub(crate) fn is_timeout(e: &io::Error) -> bool {
    matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut)
}

/// An `InvalidData` error with a message.
pub(crate) fn invalid(msg: &str) -> io::Error {
    io::Error::new(ErrorKind::InvalidData, msg.to_string())
}

impl Wire {
    /// Wraps a stream; `stop`/`idle` as described on the fields.
    pub(crate) fn new(stream: TcpStream, stop: Option<Arc<AtomicBool>>, idle: Duration) -> Wire {
        Wire {
            stream,
            buf: Vec::new(),
            pos: 0,
            stop,
            idle,
        }
    }

    /// Whether the owner asked to stop.
    pub(crate) fn stopped(&self) -> bool {
        self.stop
            .as_ref()
            .is_some_and(|s| s.load(Ordering::Relaxed))
    }

    /// The received, unconsumed bytes.
    pub(crate) fn pending(&self) -> &[u8] {
        &self.buf[self.pos..]
    }

    /// Takes all unconsumed bytes.
    pub(crate) fn take_pending(&mut self) -> Vec<u8> {
        let rest = self.buf.split_off(self.pos);
        self.buf.clear();
        self.pos = 0;
        rest
    }

    /// Appends received bytes (read elsewhere from the stream).
    pub(crate) fn push(&mut self, data: &[u8]) {
        self.compact();
        self.buf.extend_from_slice(data);
    }

    /// Marks the first `n` pending bytes consumed.
    pub(crate) fn skip(&mut self, n: usize) {
        self.pos = (self.pos + n).min(self.buf.len());
    }

    /// Drops consumed bytes from the buffer when that is cheap or needed.
    fn compact(&mut self) {
        if self.pos == self.buf.len() {
            self.buf.clear();
            self.pos = 0;
        } else if self.pos >= READ_PIECE {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
    }

    /// Reads more bytes into the buffer; `Ok(0)` at end of stream.
    pub(crate) fn fill(&mut self) -> io::Result<usize> {
        self.compact();
        let start = Instant::now();
        let mut piece = [0u8; READ_PIECE];
        loop {
            match self.stream.read(&mut piece) {
                Ok(n) => {
                    self.buf.extend_from_slice(&piece[..n]);
                    return Ok(n);
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) if is_timeout(&e) && self.stop.is_some() => {
                    if self.stopped() {
                        return Err(io::Error::new(ErrorKind::Interrupted, "stopped"));
                    }
                    if start.elapsed() >= self.idle {
                        return Err(io::Error::new(ErrorKind::TimedOut, "idle timeout"));
                    }
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Reads exactly `n` body bytes.
    pub(crate) fn read_exact_body(&mut self, n: u64) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        self.read_exact_into(n, &mut out)?;
        Ok(out)
    }

    /// Appends exactly `n` bytes to `out`.
    fn read_exact_into(&mut self, n: u64, out: &mut Vec<u8>) -> io::Result<()> {
        let mut left = n;
        while left > 0 {
            if self.pending().is_empty() && self.fill()? == 0 {
                return Err(io::Error::new(
                    ErrorKind::UnexpectedEof,
                    format!("connection closed with {left} of {n} body bytes missing"),
                ));
            }
            let pending = self.pending();
            let take = usize::try_from(left)
                .unwrap_or(usize::MAX)
                .min(pending.len());
            out.extend_from_slice(&pending[..take]);
            self.skip(take);
            left -= take as u64;
        }
        Ok(())
    }

    /// Reads everything until the peer closes.
    pub(crate) fn read_to_close(&mut self) -> io::Result<Vec<u8>> {
        loop {
            match self.fill() {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) if e.kind() == ErrorKind::ConnectionReset => break,
                Err(e) => return Err(e),
            }
        }
        Ok(self.take_pending())
    }

    /// Reads one CRLF-terminated line (without the CRLF). A bare LF or an
    /// overlong line is `InvalidData`.
    fn read_line(&mut self) -> io::Result<Vec<u8>> {
        let mut searched = 0;
        loop {
            let pending = self.pending();
            if let Some(i) = pending[searched..].iter().position(|&b| b == b'\n') {
                let end = searched + i;
                if end == 0 || pending[end - 1] != b'\r' {
                    return Err(invalid("line not terminated by CRLF"));
                }
                let line = pending[..end - 1].to_vec();
                self.skip(end + 1);
                return Ok(line);
            }
            searched = pending.len();
            if searched > MAX_LINE {
                return Err(invalid("line too long"));
            }
            if self.fill()? == 0 {
                return Err(io::Error::new(
                    ErrorKind::UnexpectedEof,
                    "connection closed inside a chunked body",
                ));
            }
        }
    }

    /// Decodes a chunked body; returns the data and the trailer fields.
    /// Malformed framing is `InvalidData`.
    pub(crate) fn read_chunked(&mut self) -> io::Result<(Vec<u8>, Fields)> {
        let mut body = Vec::new();
        loop {
            let line = self.read_line()?;
            let size = parse_chunk_size(&line)?;
            if size == 0 {
                break;
            }
            if (body.len() as u64).checked_add(size).is_none() {
                return Err(invalid("chunked body too large"));
            }
            self.read_exact_into(size, &mut body)?;
            if !self.read_line()?.is_empty() {
                return Err(invalid("chunk data not followed by CRLF"));
            }
        }
        let mut trailers = Vec::new();
        let mut total = 0;
        loop {
            let line = self.read_line()?;
            if line.is_empty() {
                break;
            }
            total += line.len() + 2;
            if total > MAX_TRAILERS {
                return Err(invalid("trailers too large"));
            }
            let colon = line
                .iter()
                .position(|&b| b == b':')
                .ok_or_else(|| invalid("trailer line without a colon"))?;
            let name = String::from_utf8_lossy(&line[..colon]).to_string();
            if name.is_empty() || name.bytes().any(|b| b.is_ascii_whitespace()) {
                return Err(invalid("bad trailer name"));
            }
            let value = String::from_utf8_lossy(&line[colon + 1..])
                .trim()
                .to_string();
            trailers.push((name, value));
        }
        Ok((body, trailers))
    }
}

/// Parses a chunk-size line: hex digits, optional whitespace and
/// `;extensions`.
fn parse_chunk_size(line: &[u8]) -> io::Result<u64> {
    let end = line.iter().position(|&b| b == b';').unwrap_or(line.len());
    let digits = line[..end].trim_ascii_end();
    if digits.is_empty() || digits.len() > 16 || !digits.iter().all(u8::is_ascii_hexdigit) {
        return Err(invalid("bad chunk size"));
    }
    let text = std::str::from_utf8(digits).map_err(|_| invalid("bad chunk size"))?;
    u64::from_str_radix(text, 16).map_err(|_| invalid("bad chunk size"))
}

/// Finds header `name` (case-insensitive) in a list of fields.
pub(crate) fn find_header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// All comma-separated tokens of every `name` header, trimmed and
/// lower-cased.
pub(crate) fn header_tokens(headers: &[(String, String)], name: &str) -> Vec<String> {
    headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case(name))
        .flat_map(|(_, v)| v.split(','))
        .map(|t| t.trim().to_ascii_lowercase())
        .filter(|t| !t.is_empty())
        .collect()
}

/// Body framing decided from the header fields.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Framing {
    /// No Transfer-Encoding nor Content-Length.
    None,
    /// `Content-Length: n`.
    Length(u64),
    /// Transfer-Encoding ending in `chunked`.
    Chunked,
    /// Transfer-Encoding present but not ending in `chunked`.
    OtherCoding,
}

/// Decides the framing; `Err` on invalid or conflicting Content-Length
/// values, or on both Transfer-Encoding and Content-Length when
/// `strict` is set (for requests).
pub(crate) fn framing(headers: &[(String, String)], strict: bool) -> Result<Framing, &'static str> {
    let te = header_tokens(headers, "transfer-encoding");
    let mut length: Option<u64> = None;
    let mut has_cl = false;
    for (_, v) in headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("content-length"))
    {
        has_cl = true;
        for part in v.split(',') {
            let part = part.trim();
            if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
                return Err("invalid Content-Length");
            }
            let n: u64 = part.parse().map_err(|_| "invalid Content-Length")?;
            if length.is_some_and(|l| l != n) {
                return Err("conflicting Content-Length values");
            }
            length = Some(n);
        }
    }
    if !te.is_empty() {
        if strict && has_cl {
            return Err("both Transfer-Encoding and Content-Length");
        }
        return Ok(if te.last().map(String::as_str) == Some("chunked") {
            Framing::Chunked
        } else {
            Framing::OtherCoding
        });
    }
    Ok(match length {
        Some(n) => Framing::Length(n),
        None if has_cl => return Err("invalid Content-Length"),
        None => Framing::None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunk_size_lines() {
        assert_eq!(parse_chunk_size(b"1a").unwrap(), 26);
        assert_eq!(parse_chunk_size(b"0").unwrap(), 0);
        assert_eq!(parse_chunk_size(b"ff;ext=1").unwrap(), 255);
        assert_eq!(parse_chunk_size(b"10 ").unwrap(), 16);
        assert!(parse_chunk_size(b"").is_err());
        assert!(parse_chunk_size(b"zz").is_err());
        assert!(parse_chunk_size(b"-1").is_err());
        assert!(parse_chunk_size(b"11111111111111111").is_err());
    }

    #[test]
    fn framing_rules() {
        let h = |v: &[(&str, &str)]| -> Vec<(String, String)> {
            v.iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect()
        };
        assert_eq!(framing(&h(&[]), true), Ok(Framing::None));
        assert_eq!(
            framing(&h(&[("Content-Length", "5")]), true),
            Ok(Framing::Length(5))
        );
        assert_eq!(
            framing(&h(&[("content-length", "5, 5")]), true),
            Ok(Framing::Length(5))
        );
        assert!(framing(
            &h(&[("content-length", "5"), ("content-length", "6")]),
            true
        )
        .is_err());
        assert!(framing(&h(&[("content-length", "+5")]), true).is_err());
        assert_eq!(
            framing(&h(&[("Transfer-Encoding", "gzip, Chunked")]), true),
            Ok(Framing::Chunked)
        );
        assert_eq!(
            framing(&h(&[("Transfer-Encoding", "gzip")]), true),
            Ok(Framing::OtherCoding)
        );
        assert!(framing(
            &h(&[("Transfer-Encoding", "chunked"), ("content-length", "3")]),
            true
        )
        .is_err());
        assert_eq!(
            framing(
                &h(&[("Transfer-Encoding", "chunked"), ("content-length", "3")]),
                false
            ),
            Ok(Framing::Chunked)
        );
    }
}
