//! Writing heads for the other side: the request as the upstream gets it
//! (origin form, hop-by-hop headers removed, X-Forwarded-* added) and the
//! response as the client gets it. Output goes into a reused buffer.

use super::request::RequestHead;
use super::response::ResponseHead;
use super::{is_hop_by_hop, tokens};
use std::io::Write;
use std::net::IpAddr;

/// What the proxy adds about the client connection.
#[derive(Debug, Clone, Copy)]
pub struct Forwarded<'a> {
    /// The client's address, as text (see [`IpText`]).
    pub client_ip: &'a [u8],
    /// `http` or `https`.
    pub proto: &'a str,
    /// The port the client connected to.
    pub port: u16,
    /// A request id to add when the client sent none.
    pub request_id: &'a [u8],
}

/// A client address formatted once per connection, not per request.
#[derive(Debug, Clone, Copy)]
pub struct IpText {
    buf: [u8; 46],
    len: u8,
}

impl IpText {
    /// Formats `ip` (IPv6 at most 45 characters).
    pub fn new(ip: IpAddr) -> IpText {
        let mut buf = [0u8; 46];
        let mut cursor = std::io::Cursor::new(&mut buf[..]);
        // 46 bytes hold every IPv4 and IPv6 text form.
        let _ = write!(cursor, "{ip}");
        let len = cursor.position() as u8;
        IpText { buf, len }
    }

    /// The text.
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..usize::from(self.len)]
    }
}

fn push_u16(out: &mut Vec<u8>, n: u16) {
    let mut digits = [0u8; 5];
    let mut i = digits.len();
    let mut n = n;
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
}

/// Headers the proxy sets itself; client-sent copies are dropped (or, for
/// X-Forwarded-For, merged).
const OVERWRITTEN: [&str; 6] = [
    "x-forwarded-for",
    "x-forwarded-proto",
    "x-forwarded-host",
    "x-forwarded-port",
    "x-real-ip",
    "expect",
];

fn named_in(connection: Option<&[u8]>, name: &str) -> bool {
    connection.is_some_and(|c| tokens(c).any(|t| t.eq_ignore_ascii_case(name.as_bytes())))
}

fn header_line(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

/// Writes the upstream request head into `out` (cleared first).
/// `fallback_host` is sent as Host when the client sent none (HTTP/1.0).
pub fn write_request(out: &mut Vec<u8>, req: &RequestHead, fwd: &Forwarded, fallback_host: &[u8]) {
    out.clear();
    out.extend_from_slice(req.method.as_bytes());
    out.push(b' ');
    out.extend_from_slice(req.origin_target.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");
    let absolute_form = !std::ptr::eq(req.origin_target, req.target);
    let host = req.host.unwrap_or(fallback_host);
    if absolute_form || req.header("host").is_none() {
        header_line(out, b"Host", host);
    }
    let mut request_id_seen = false;
    for h in req.headers {
        let name = h.name;
        if is_hop_by_hop(name) || named_in(req.connection, name) {
            continue;
        }
        if (name.eq_ignore_ascii_case("host") && absolute_form)
            || OVERWRITTEN.iter().any(|o| o.eq_ignore_ascii_case(name))
        {
            continue;
        }
        request_id_seen |= name.eq_ignore_ascii_case("x-request-id") && !h.value.is_empty();
        header_line(out, name.as_bytes(), h.value);
    }
    // Every client-sent hop, merged into one list, then ours.
    out.extend_from_slice(b"X-Forwarded-For: ");
    for h in req
        .headers
        .iter()
        .filter(|h| h.name.eq_ignore_ascii_case("x-forwarded-for"))
    {
        out.extend_from_slice(h.value.trim_ascii());
        out.extend_from_slice(b", ");
    }
    out.extend_from_slice(fwd.client_ip);
    out.extend_from_slice(b"\r\n");
    header_line(out, b"X-Real-IP", fwd.client_ip);
    header_line(out, b"X-Forwarded-Proto", fwd.proto.as_bytes());
    header_line(out, b"X-Forwarded-Host", host);
    out.extend_from_slice(b"X-Forwarded-Port: ");
    push_u16(out, fwd.port);
    out.extend_from_slice(b"\r\n");
    if !request_id_seen {
        header_line(out, b"X-Request-Id", fwd.request_id);
    }
    if let Some(protocol) = req.upgrade {
        header_line(out, b"Connection", b"upgrade");
        header_line(out, b"Upgrade", protocol);
    }
    out.extend_from_slice(b"\r\n");
}

/// How the response body reaches the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientConnection {
    /// Keep the connection; HTTP/1.0 clients are told so explicitly.
    KeepAlive { http10: bool },
    /// Close after this response.
    Close,
    /// Protocol switch (101).
    Upgrade,
}

/// Writes the client response head into `out` (cleared first). With
/// `dechunk` the Transfer-Encoding header is dropped (the body is decoded
/// and delimited by closing the connection).
pub fn write_response(
    out: &mut Vec<u8>,
    resp: &ResponseHead,
    conn: ClientConnection,
    dechunk: bool,
) {
    out.clear();
    let _ = write!(out, "HTTP/1.1 {} ", resp.status);
    out.extend_from_slice(resp.reason.as_bytes());
    out.extend_from_slice(b"\r\n");
    for h in resp.headers {
        let name = h.name;
        let keep_upgrade =
            conn == ClientConnection::Upgrade && name.eq_ignore_ascii_case("upgrade");
        if !keep_upgrade && (is_hop_by_hop(name) || named_in(resp.connection, name)) {
            continue;
        }
        if dechunk && name.eq_ignore_ascii_case("transfer-encoding") {
            continue;
        }
        header_line(out, name.as_bytes(), h.value);
    }
    match conn {
        ClientConnection::KeepAlive { http10: true } => {
            header_line(out, b"Connection", b"keep-alive")
        }
        ClientConnection::KeepAlive { http10: false } => {}
        ClientConnection::Close => header_line(out, b"Connection", b"close"),
        ClientConnection::Upgrade => header_line(out, b"Connection", b"upgrade"),
    }
    out.extend_from_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::request;

    fn upstream_head(raw: &str) -> String {
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let req = request::parse(raw.as_bytes(), &mut headers)
            .expect("valid")
            .expect("complete");
        let ip = IpText::new([192, 0, 2, 1].into());
        let fwd = Forwarded {
            client_ip: ip.as_bytes(),
            proto: "http",
            port: 80,
            request_id: b"rid",
        };
        let mut out = Vec::new();
        write_request(&mut out, &req, &fwd, b"10.0.0.1:8080");
        String::from_utf8(out).expect("ascii")
    }

    #[test]
    fn addresses_and_ports_are_written_whole() {
        let longest: IpAddr = "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255"
            .parse()
            .unwrap();
        for ip in [longest, "::1".parse().unwrap(), [10, 0, 0, 1].into()] {
            assert_eq!(IpText::new(ip).as_bytes(), ip.to_string().as_bytes());
        }
        for port in [0u16, 7, 80, 443, 65535] {
            let mut out = Vec::new();
            push_u16(&mut out, port);
            assert_eq!(out, port.to_string().as_bytes());
        }
    }

    #[test]
    fn request_rewrite() {
        let got = upstream_head(
            "GET /p?q=1 HTTP/1.1\r\nHost: ex.com\r\nConnection: keep-alive, X-Secret\r\nKeep-Alive: 5\r\n\
             X-Secret: s\r\nX-Forwarded-For: 1.1.1.1\r\nAccept: */*\r\nX-Forwarded-For: 2.2.2.2\r\n\
             X-Forwarded-Proto: https\r\nTE: trailers\r\n\r\n",
        );
        assert_eq!(
            got,
            "GET /p?q=1 HTTP/1.1\r\nHost: ex.com\r\nAccept: */*\r\nX-Forwarded-For: 1.1.1.1, 2.2.2.2, 192.0.2.1\r\n\
             X-Real-IP: 192.0.2.1\r\nX-Forwarded-Proto: http\r\nX-Forwarded-Host: ex.com\r\nX-Forwarded-Port: 80\r\n\
             X-Request-Id: rid\r\n\r\n"
        );
    }

    #[test]
    fn absolute_form_http10_and_request_id_kept() {
        let got = upstream_head(
            "GET http://abs.ex/x HTTP/1.1\r\nHost: other\r\nX-Request-Id: abc\r\n\r\n",
        );
        assert!(
            got.starts_with("GET /x HTTP/1.1\r\nHost: abs.ex\r\nX-Request-Id: abc\r\n"),
            "{got}"
        );
        assert!(!got.contains("other") && !got.contains("rid"), "{got}");
        let got = upstream_head("GET / HTTP/1.0\r\n\r\n");
        assert!(
            got.starts_with("GET / HTTP/1.1\r\nHost: 10.0.0.1:8080\r\n"),
            "{got}"
        );
    }

    #[test]
    fn response_rewrite() {
        let raw = "HTTP/1.1 200 OK\r\nContent-Type: t\r\nConnection: keep-alive\r\nKeep-Alive: timeout=5\r\n\
                   Transfer-Encoding: chunked\r\n\r\n";
        let mut headers = [httparse::EMPTY_HEADER; 16];
        let resp = crate::http::response::parse(raw.as_bytes(), &mut headers, false)
            .expect("ok")
            .expect("complete");
        let mut out = Vec::new();
        write_response(
            &mut out,
            &resp,
            ClientConnection::KeepAlive { http10: false },
            false,
        );
        assert_eq!(
            out,
            b"HTTP/1.1 200 OK\r\nContent-Type: t\r\nTransfer-Encoding: chunked\r\n\r\n"
        );
        write_response(&mut out, &resp, ClientConnection::Close, true);
        assert_eq!(
            out,
            b"HTTP/1.1 200 OK\r\nContent-Type: t\r\nConnection: close\r\n\r\n"
        );
    }
}
