//! Writing heads for the other side: the request as the upstream gets it
//! (origin form, hop-by-hop headers removed, X-Forwarded-* added) and the
//! response as the client gets it. Output goes into a reused buffer.

use super::request::RequestHead;
use super::response::ResponseHead;
use super::{is_framing, is_hop_by_hop, BodyLen};
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

/// Appends `n` in decimal, without fmt.
fn push_decimal(out: &mut Vec<u8>, n: u64) {
    let mut digits = [0u8; 20];
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

/// What happens to a client request header on its way upstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RequestHeader {
    /// Copied unless `Connection` names it.
    Copy,
    /// Dropped: hop-by-hop, or written by the proxy itself (framing, Host,
    /// the X-Forwarded set; X-Forwarded-For is merged into ours).
    Drop,
    /// Copied, and marks that the client sent a request id.
    RequestId,
}

/// Classifies a request header name with one length match and at most
/// three comparisons (this runs for every header of every request).
fn request_header(name: &str) -> RequestHeader {
    let is = |n: &str| name.eq_ignore_ascii_case(n);
    let drop = match name.len() {
        2 => is("te"),
        4 => is("host"),
        6 => is("expect"),
        7 => is("trailer") || is("upgrade"),
        9 => is("x-real-ip"),
        10 => is("connection") || is("keep-alive"),
        12 => {
            return if is("x-request-id") {
                RequestHeader::RequestId
            } else {
                RequestHeader::Copy
            }
        }
        14 => is("content-length"),
        15 => is("x-forwarded-for"),
        16 => is("proxy-connection") || is("x-forwarded-host") || is("x-forwarded-port"),
        17 => is("transfer-encoding") || is("x-forwarded-proto"),
        _ => false,
    };
    if drop {
        RequestHeader::Drop
    } else {
        RequestHeader::Copy
    }
}

fn header_line(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

fn content_length_line(out: &mut Vec<u8>, n: u64) {
    out.extend_from_slice(b"Content-Length: ");
    push_decimal(out, n);
    out.extend_from_slice(b"\r\n");
}

/// What a route's policies change in the upstream head; [`Edits::NONE`]
/// for a plain route.
#[derive(Debug, Clone, Copy)]
pub struct Edits<'a> {
    /// Replaces the request target (path and query), e.g. a rewrite.
    pub target: Option<&'a [u8]>,
    /// Replaces the Host header (`upstream-vhost`); X-Forwarded-Host keeps the client's.
    pub host: Option<&'a [u8]>,
    /// Client headers by these (lower-case) names are not copied: the
    /// policy sends its own in `add`.
    pub drop: &'a [&'a str],
    /// The same, for names known only per table (`auth-response-headers`).
    pub drop_names: &'a [Box<str>],
    /// Headers added after the forwarding headers.
    pub add: &'a [(&'a [u8], &'a [u8])],
}

impl Edits<'_> {
    /// No change.
    pub const NONE: Edits<'static> = Edits {
        target: None,
        host: None,
        drop: &[],
        drop_names: &[],
        add: &[],
    };
}

/// Writes the upstream request head into `out` (cleared first), with the
/// route's `edits`. `fallback_host` is sent as Host when the client sent
/// none (HTTP/1.0).
///
/// Host and the body's framing come from what rauta parsed and relays, never
/// from the client's copies: the upstream reads exactly the body rauta
/// sends, whatever the client's `Connection` header lists.
pub fn write_request(
    out: &mut Vec<u8>,
    req: &RequestHead,
    fwd: &Forwarded,
    edits: &Edits,
    fallback_host: &[u8],
) {
    out.clear();
    out.extend_from_slice(req.method.as_bytes());
    out.push(b' ');
    out.extend_from_slice(edits.target.unwrap_or(req.origin_target.as_bytes()));
    out.extend_from_slice(b" HTTP/1.1\r\n");
    let host = req.host.unwrap_or(fallback_host);
    header_line(out, b"Host", edits.host.unwrap_or(host));
    let mut request_id_seen = false;
    for h in req.headers {
        let name = h.name;
        match request_header(name) {
            RequestHeader::Drop => continue,
            _ if req.connection.names(name) => continue,
            _ if edits.drop.iter().any(|d| name.eq_ignore_ascii_case(d)) => continue,
            _ if edits
                .drop_names
                .iter()
                .any(|d| name.eq_ignore_ascii_case(d)) =>
            {
                continue
            }
            RequestHeader::RequestId => request_id_seen |= !h.value.is_empty(),
            RequestHeader::Copy => {}
        }
        header_line(out, name.as_bytes(), h.value);
    }
    match req.body {
        BodyLen::Chunked => header_line(out, b"Transfer-Encoding", b"chunked"),
        // A declared length of 0 is kept: some servers want one on a POST.
        _ => {
            if let Some(n) = req.content_length {
                content_length_line(out, n);
            }
        }
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
    push_decimal(out, u64::from(fwd.port));
    out.extend_from_slice(b"\r\n");
    if !request_id_seen {
        header_line(out, b"X-Request-Id", fwd.request_id);
    }
    for (name, value) in edits.add {
        header_line(out, name, value);
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
    KeepAlive {
        /// The client speaks HTTP/1.0 (keep-alive must be said).
        http10: bool,
    },
    /// Close after this response.
    Close,
    /// Protocol switch (101).
    Upgrade,
}

/// Writes the client response head into `out` (cleared first). With
/// `dechunk` the body is decoded and delimited by closing the connection.
///
/// The framing headers are rauta's, as for requests: `Content-Length` for
/// a sized body, `Transfer-Encoding: chunked` for a chunked one (never
/// both, RFC 9112 6.3), whatever the upstream's `Connection` lists. HEAD and
/// 304 answers keep the upstream's length, which describes a body not sent.
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
        if !keep_upgrade && is_hop_by_hop(name) {
            continue;
        }
        if is_framing(name) {
            // A transfer coding other than chunked, read to the close, is
            // passed on as sent: the client needs it to decode the body.
            let other_coding =
                resp.body == BodyLen::Close && name.eq_ignore_ascii_case("transfer-encoding");
            if !other_coding {
                continue;
            }
        } else if !keep_upgrade && resp.connection.names(name) {
            continue;
        }
        header_line(out, name.as_bytes(), h.value);
    }
    match resp.body {
        BodyLen::Length(n) => content_length_line(out, n),
        BodyLen::Chunked if !dechunk => header_line(out, b"Transfer-Encoding", b"chunked"),
        BodyLen::None if resp.status >= 200 && resp.status != 204 => {
            if resp.chunked {
                header_line(out, b"Transfer-Encoding", b"chunked");
            } else if let Some(n) = resp.content_length {
                content_length_line(out, n);
            }
        }
        BodyLen::Chunked | BodyLen::None | BodyLen::Close => {}
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
        write_request(&mut out, &req, &fwd, &Edits::NONE, b"10.0.0.1:8080");
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
            push_decimal(&mut out, u64::from(port));
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

    fn client_head(raw: &str, head_request: bool, conn: ClientConnection) -> String {
        let mut headers = [httparse::EMPTY_HEADER; 16];
        let resp = crate::http::response::parse(raw.as_bytes(), &mut headers, head_request)
            .expect("ok")
            .expect("complete");
        let mut out = Vec::new();
        let dechunk = conn == ClientConnection::Close && resp.body == BodyLen::Chunked;
        write_response(&mut out, &resp, conn, dechunk);
        String::from_utf8(out).expect("ascii")
    }

    #[test]
    fn response_rewrite() {
        let raw = "HTTP/1.1 200 OK\r\nContent-Type: t\r\nConnection: keep-alive\r\nKeep-Alive: timeout=5\r\n\
                   Transfer-Encoding: chunked\r\n\r\n";
        let keep = ClientConnection::KeepAlive { http10: false };
        assert_eq!(
            client_head(raw, false, keep),
            "HTTP/1.1 200 OK\r\nContent-Type: t\r\nTransfer-Encoding: chunked\r\n\r\n"
        );
        assert_eq!(
            client_head(raw, false, ClientConnection::Close),
            "HTTP/1.1 200 OK\r\nContent-Type: t\r\nConnection: close\r\n\r\n"
        );
    }

    /// The smuggling class: whatever `Connection` lists, the upstream head
    /// frames exactly the body rauta relays, and Host stays.
    #[test]
    fn connection_never_removes_framing_or_host() {
        let cases: &[(&str, &str)] = &[
            (
                "POST /a HTTP/1.1\r\nHost: h\r\nConnection: keep-alive, Content-Length\r\nContent-Length: 47\r\n\r\n",
                "Content-Length: 47\r\n",
            ),
            (
                "POST /a HTTP/1.1\r\nHost: h\r\nConnection: Transfer-Encoding\r\nTransfer-Encoding: chunked\r\n\r\n",
                "Transfer-Encoding: chunked\r\n",
            ),
            (
                "POST /a HTTP/1.1\r\nHost: h\r\nConnection: close\r\nConnection: content-length\r\nContent-Length: 3\r\n\r\n",
                "Content-Length: 3\r\n",
            ),
            (
                "POST /a HTTP/1.1\r\nHost: h\r\nProxy-Connection: content-length\r\nContent-Length: 3\r\n\r\n",
                "Content-Length: 3\r\n",
            ),
            (
                "POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n",
                "Content-Length: 0\r\n",
            ),
        ];
        for (raw, framing) in cases {
            let got = upstream_head(raw);
            assert!(
                got.starts_with("POST /a HTTP/1.1\r\nHost: h\r\n"),
                "{raw:?} -> {got}"
            );
            assert_eq!(got.matches(framing).count(), 1, "{raw:?} -> {got}");
        }
        let got = upstream_head("GET / HTTP/1.1\r\nConnection: host\r\nHost: app.example\r\n\r\n");
        assert!(got.contains("\r\nHost: app.example\r\n"), "{got}");
        assert!(
            !got.contains("Content-Length") && !got.contains("Transfer-Encoding"),
            "{got}"
        );
    }

    #[test]
    fn every_connection_header_counts_and_h2c_is_not_an_upgrade() {
        let got = upstream_head(
            "GET / HTTP/1.1\r\nHost: h\r\nConnection: keep-alive\r\nX-A: 1\r\nConnection: x-a\r\n\
             Connection: X-B\r\nX-B: 2\r\nX-C: 3\r\n\r\n",
        );
        assert!(
            !got.contains("X-A") && !got.contains("X-B") && got.contains("X-C: 3"),
            "{got}"
        );
        let got = upstream_head(
            "GET / HTTP/1.1\r\nHost: h\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n\
             HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n",
        );
        assert!(
            !got.to_ascii_lowercase().contains("upgrade") && !got.contains("HTTP2-Settings"),
            "{got}"
        );
        let got = upstream_head(
            "GET /ws HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
        );
        assert!(
            got.ends_with("Connection: upgrade\r\nUpgrade: websocket\r\n\r\n"),
            "{got}"
        );
    }

    #[test]
    fn response_framing_is_rauta_s() {
        let keep = ClientConnection::KeepAlive { http10: false };
        let cases: &[(&str, bool, &str)] = &[
            // The upstream names its own length in Connection: it stays.
            ("HTTP/1.1 200 OK\r\nConnection: content-length\r\nContent-Length: 5\r\n\r\n", false,
             "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n"),
            // Both: chunked wins and the length goes (RFC 9112 6.3).
            ("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", false,
             "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"),
            ("HTTP/1.1 200 OK\r\nConnection: transfer-encoding, x-a\r\nX-A: 1\r\nTransfer-Encoding: chunked\r\n\r\n", false,
             "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"),
            // HEAD and 304 keep the length of the body they describe.
            ("HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n", true,
             "HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n"),
            ("HTTP/1.1 304 Not Modified\r\nContent-Length: 99\r\n\r\n", false,
             "HTTP/1.1 304 Not Modified\r\nContent-Length: 99\r\n\r\n"),
            ("HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n", false,
             "HTTP/1.1 204 No Content\r\n\r\n"),
        ];
        for (raw, head, want) in cases {
            assert_eq!(client_head(raw, *head, keep), *want, "{raw:?}");
        }
        // A close-delimited body in another coding keeps that coding.
        let got = client_head(
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\nContent-Length: 5\r\n\r\n",
            false,
            ClientConnection::Close,
        );
        assert_eq!(
            got,
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\nConnection: close\r\n\r\n"
        );
    }
}
