//! The framing invariants of the head rewrite, as checks that panic when
//! broken: the fuzz target (`proxy/fuzz`) and the unit tests run them on
//! arbitrary heads. Whatever a peer sends, the head rauta writes for the
//! other side parses back to exactly the framing rauta relays.

use super::head::{self, ClientConnection, Forwarded, IpText};
use super::{request, response, BodyLen, MAX_HEADERS};

/// Room for the headers rauta adds to a request (Host, framing, the
/// X-Forwarded set, request id, upgrade).
const ADDED: usize = 12;

/// Checks the request rewrite on `input`; a head rauta refuses passes.
pub fn check_request(input: &[u8]) {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let Ok(Some(req)) = request::parse(input, &mut headers) else {
        return;
    };
    let ip = IpText::new([192, 0, 2, 1].into());
    let fwd = Forwarded {
        client_ip: ip.as_bytes(),
        proto: "http",
        port: 80,
        request_id: b"0123456789abcdef",
    };
    let mut out = Vec::new();
    head::write_request(&mut out, &req, &fwd, &head::Edits::NONE, b"10.0.0.1:8080");
    let mut up_headers = [httparse::EMPTY_HEADER; MAX_HEADERS + ADDED];
    let up = match request::parse(&out, &mut up_headers) {
        Ok(Some(up)) => up,
        other => panic!(
            "the upstream head does not parse ({other:?}):\n{}",
            String::from_utf8_lossy(&out)
        ),
    };
    let show = || String::from_utf8_lossy(&out).into_owned();
    assert_eq!(up.len, out.len(), "one head, nothing after it:\n{}", show());
    assert_eq!(up.body, req.body, "body framing changed:\n{}", show());
    assert_eq!(up.content_length, req.content_length, "{}", show());
    assert_eq!(up.method, req.method);
    assert_eq!(up.origin_target, req.origin_target);
    assert!(up.host.is_some(), "no Host upstream:\n{}", show());
    if let Some(host) = req.host {
        assert_eq!(up.host, Some(host), "Host changed:\n{}", show());
    }
    assert_eq!(up.upgrade, req.upgrade, "{}", show());
    let count = |name: &str| {
        up.headers
            .iter()
            .filter(|h| h.name.eq_ignore_ascii_case(name))
            .count()
    };
    assert!(
        count("content-length") + count("transfer-encoding") <= 1,
        "{}",
        show()
    );
    for hop in ["keep-alive", "proxy-connection", "te", "trailer"] {
        assert_eq!(count(hop), 0, "hop-by-hop {hop} forwarded:\n{}", show());
    }
    assert_eq!(
        count("connection"),
        usize::from(req.upgrade.is_some()),
        "{}",
        show()
    );
}

/// Checks the response rewrite on `input` (`head_request`: the request
/// was HEAD); a head rauta refuses passes.
pub fn check_response(input: &[u8], head_request: bool) {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let Ok(Some(resp)) = response::parse(input, &mut headers, head_request) else {
        return;
    };
    if resp.status == 101 || (100..200).contains(&resp.status) {
        return; // interim and switching answers carry no body
    }
    for conn in [
        ClientConnection::KeepAlive { http10: false },
        ClientConnection::Close,
    ] {
        let dechunk = conn == ClientConnection::Close && resp.body == BodyLen::Chunked;
        let mut out = Vec::new();
        head::write_response(&mut out, &resp, conn, dechunk);
        let mut client_headers = [httparse::EMPTY_HEADER; MAX_HEADERS + ADDED];
        let show = || String::from_utf8_lossy(&out).into_owned();
        let client = match response::parse(&out, &mut client_headers, head_request) {
            Ok(Some(c)) => c,
            other => panic!("the client head does not parse ({other:?}):\n{}", show()),
        };
        assert_eq!(client.len, out.len(), "{}", show());
        let want = if dechunk { BodyLen::Close } else { resp.body };
        assert_eq!(client.body, want, "body framing changed:\n{}", show());
        let count = |name: &str| {
            client
                .headers
                .iter()
                .filter(|h| h.name.eq_ignore_ascii_case(name))
                .count()
        };
        assert!(count("content-length") <= 1, "{}", show());
        if count("transfer-encoding") > 0 {
            assert_eq!(count("content-length"), 0, "TE and CL:\n{}", show());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Header lines the generator splices into heads: the framing and
    /// hop-by-hop names in their tricky spellings.
    const LINES: &[&str] = &[
        "Connection: keep-alive, Content-Length",
        "Connection: transfer-encoding",
        "Connection: host",
        "Connection: close",
        "Connection: upgrade",
        "connection: X-A, te",
        "Proxy-Connection: content-length",
        "Keep-Alive: timeout=5",
        "Content-Length: 7",
        "Content-Length: 0",
        "content-length: 7, 7",
        "Transfer-Encoding: chunked",
        "transfer-encoding: CHUNKED",
        "Host: app.example",
        "host: other.example:8080",
        "Upgrade: websocket",
        "Upgrade: h2c",
        "TE: trailers",
        "Trailer: X-T",
        "X-A: 1",
        "X-Forwarded-For: 1.1.1.1",
        "X-Request-Id: abc",
        "Expect: 100-continue",
        "X-Long: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
    ];

    /// xorshift64: the same cases on every run.
    fn next(state: &mut u64) -> u64 {
        *state ^= *state << 13;
        *state ^= *state >> 7;
        *state ^= *state << 17;
        *state
    }

    fn generated(state: &mut u64, first: &str) -> Vec<u8> {
        let mut head = String::from(first);
        for _ in 0..(next(state) % 7) {
            let line = LINES[(next(state) % LINES.len() as u64) as usize];
            head.push_str(line);
            head.push_str("\r\n");
        }
        head.push_str("\r\n");
        head.into_bytes()
    }

    #[test]
    fn request_rewrite_keeps_framing_on_generated_heads() {
        let firsts = [
            "POST /a HTTP/1.1\r\n",
            "GET /ws HTTP/1.1\r\n",
            "GET http://abs.example/p?q HTTP/1.1\r\n",
            "POST / HTTP/1.0\r\n",
            "OPTIONS * HTTP/1.1\r\n",
        ];
        let mut state = 0x9e37_79b9_7f4a_7c15;
        let mut parsed = 0;
        for i in 0..20_000 {
            let head = generated(&mut state, firsts[i % firsts.len()]);
            let mut h = [httparse::EMPTY_HEADER; MAX_HEADERS];
            parsed += usize::from(matches!(request::parse(&head, &mut h), Ok(Some(_))));
            check_request(&head);
        }
        // The generator must reach the rewrite, not only the refusals.
        assert!(parsed > 5_000, "only {parsed} generated heads were valid");
    }

    #[test]
    fn response_rewrite_keeps_framing_on_generated_heads() {
        let firsts = [
            "HTTP/1.1 200 OK\r\n",
            "HTTP/1.1 304 Not Modified\r\n",
            "HTTP/1.0 200 OK\r\n",
            "HTTP/1.1 204 No Content\r\n",
            // Three digits, but not a status (the fuzzer's first find).
            "HTTP/1.1 020 OK\r\n",
        ];
        let mut state = 0x2545_f491_4f6c_dd1d;
        for i in 0..20_000 {
            let head = generated(&mut state, firsts[i % firsts.len()]);
            check_response(&head, i % 3 == 0);
        }
    }
}
