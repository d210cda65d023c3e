//! Writing responses: heads, and the generated pattern bodies.

use std::fmt::Write as _;
use std::io::{self, Write};
use std::net::TcpStream;
use std::sync::OnceLock;

use super::PIECE;
use crate::pattern::pattern;

/// Reason phrase for common status codes.
pub(super) fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        101 => "Switching Protocols",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        206 => "Partial Content",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        304 => "Not Modified",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        413 => "Content Too Large",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Status",
    }
}

/// Builds a response head with `x-backend` and the connection header
/// matching `keep_alive` for a client of HTTP minor version `version`.
pub(super) fn response_head(
    status: u16,
    name: &str,
    version: u8,
    keep_alive: bool,
    fields: &[(&str, String)],
) -> Vec<u8> {
    let mut head = format!(
        "HTTP/1.1 {status} {}\r\nx-backend: {name}\r\n",
        reason(status)
    );
    for (n, v) in fields {
        let _ = write!(head, "{n}: {v}\r\n");
    }
    if !keep_alive {
        head.push_str("Connection: close\r\n");
    } else if version == 0 {
        head.push_str("Connection: keep-alive\r\n");
    }
    head.push_str("\r\n");
    head.into_bytes()
}

/// Writes all `parts` to the stream.
pub(super) fn write_all(mut stream: &TcpStream, parts: &[&[u8]]) -> io::Result<()> {
    for part in parts {
        stream.write_all(part)?;
    }
    Ok(())
}

/// 64 KiB + 251 bytes of the pattern, so any piece at any offset is a slice.
pub(super) fn pattern_block() -> &'static [u8] {
    static BLOCK: OnceLock<Vec<u8>> = OnceLock::new();
    BLOCK.get_or_init(|| pattern(PIECE + 251))
}

/// The pattern bytes `[offset, offset + len)` for `len <= PIECE`.
pub(super) fn pattern_slice(offset: u64, len: usize) -> &'static [u8] {
    let start = (offset % 251) as usize;
    &pattern_block()[start..start + len]
}

/// Writes `n` pattern bytes raw, in pieces of at most 64 KiB.
pub(super) fn write_pattern(stream: &TcpStream, n: u64) -> io::Result<()> {
    let mut off = 0;
    while off < n {
        let len = (n - off).min(PIECE as u64) as usize;
        write_all(stream, &[pattern_slice(off, len)])?;
        off += len as u64;
    }
    Ok(())
}

/// Writes `n` pattern bytes as chunks of `size` bytes plus the last chunk.
pub(super) fn write_pattern_chunked(stream: &TcpStream, n: u64, size: u64) -> io::Result<()> {
    let mut out = io::BufWriter::with_capacity(PIECE, stream);
    let mut off = 0;
    while off < n {
        let chunk = (n - off).min(size);
        write!(out, "{chunk:x}\r\n")?;
        let mut done = 0;
        while done < chunk {
            let len = (chunk - done).min(PIECE as u64) as usize;
            out.write_all(pattern_slice(off + done, len))?;
            done += len as u64;
        }
        out.write_all(b"\r\n")?;
        off += chunk;
    }
    out.write_all(b"0\r\n\r\n")?;
    out.flush()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pattern::is_pattern;

    #[test]
    fn pattern_slices_match_pattern() {
        let all = pattern(3 * PIECE);
        for off in [0u64, 1, 250, 251, 1000, 70_000] {
            let s = pattern_slice(off, 500);
            assert_eq!(s, &all[off as usize..off as usize + 500]);
        }
        assert!(is_pattern(&all));
        assert!(!is_pattern(&[1]));
    }
}
