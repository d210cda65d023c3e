//! The framing invariants of the head rewrite and of the chunked decoder,
//! as checks that panic when broken: the fuzz targets (`proxy/fuzz`) and
//! the unit tests run them on arbitrary input. Whatever a peer sends, the
//! head rauta writes for the other side parses back to exactly the framing
//! rauta relays, and a chunked body ends at the same octet with the same
//! data however it arrives.

use super::chunked::{ChunkError, ChunkedDecoder};
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

/// Longest chunk-size or trailer line the decoder accepts (after the size
/// digits, without CRLF); the reference below states it again.
const CHUNK_LINE_LIMIT: usize = 4096;
/// Most trailer octets (without CRLFs) the decoder accepts.
const CHUNK_TRAILER_LIMIT: usize = 16 * 1024;

/// What a chunked body in `input` comes to.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Chunked {
    /// The body ends `end` octets in; `counted` is its data plus the
    /// octets a body limit also counts (extensions, whitespace, trailers).
    Done {
        end: usize,
        data: Vec<u8>,
        counted: u64,
    },
    /// The input ends inside the body.
    Partial { data: Vec<u8> },
    /// The framing is refused.
    Refused(&'static str),
}

/// Decodes `input` as a chunked body whole, in reads of `step` octets
/// (at least 1) and one octet at a time: all three agree (data, where the
/// body ends, what a limit counts, the refusal's reason), and agree with a
/// plain reading of RFC 9112 §7.1 under rauta's strict rules.
pub fn check_chunked(input: &[u8], step: usize) {
    let whole = decode_in(input, input.len().max(1));
    for step in [step.max(1), 1] {
        let split = decode_in(input, step);
        assert_eq!(whole, split, "whole vs in reads of {step}");
    }
    let model = reference_chunked(input);
    match (&whole, &model) {
        (Chunked::Refused(_), Chunked::Refused(_)) => {}
        _ => assert_eq!(whole, model, "decoder vs reference"),
    }
}

/// Runs the decoder over `input` read `step` octets at a time, as a
/// connection does: each read is offered until it is used up.
fn decode_in(input: &[u8], step: usize) -> Chunked {
    let mut decoder = ChunkedDecoder::default();
    let mut data = Vec::new();
    let mut offset = 0;
    for read in input.chunks(step) {
        let mut rest = read;
        while !rest.is_empty() {
            let p = match decoder.decode(rest) {
                Ok(p) => p,
                Err(ChunkError(why)) => return Chunked::Refused(why),
            };
            assert!(p.consumed <= rest.len(), "{p:?} of {}", rest.len());
            assert!(p.data.end <= p.consumed || p.data.is_empty(), "{p:?}");
            data.extend_from_slice(&rest[p.data.clone()]);
            offset += p.consumed;
            if p.done {
                assert!(decoder.is_done());
                assert_eq!(decoder.data_total(), data.len() as u64);
                return Chunked::Done {
                    end: offset,
                    data,
                    counted: decoder.counted_total(),
                };
            }
            // A call that neither ends the body nor uses an octet would
            // spin the connection's read loop.
            assert!(p.consumed > 0, "no progress on {} octets", rest.len());
            rest = &rest[p.consumed..];
        }
    }
    assert!(!decoder.is_done());
    assert_eq!(decoder.data_total(), data.len() as u64);
    Chunked::Partial { data }
}

/// RFC 9112 §7.1, read line by line over the whole input, with rauta's
/// choices: CRLF only, 1 to 15 hex digits, whitespace then `;` and any
/// field octets as extensions, trailer lines `token ":" field octets`,
/// lines of at most [`CHUNK_LINE_LIMIT`] octets after the size digits,
/// at most [`CHUNK_TRAILER_LIMIT`] trailer octets. A prefix that can no
/// longer become valid is refused at once, as the decoder must.
fn reference_chunked(input: &[u8]) -> Chunked {
    const REFUSED: Chunked = Chunked::Refused("reference");
    let is_hex = |b: &u8| b.is_ascii_hexdigit();
    let is_field = |b: &u8| matches!(*b, b'\t' | b' '..=b'~' | 0x80..);
    let is_token = |b: &u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(b);
    // The line at `at`: its octets before the first CR, and how it ends;
    // `None` when that CR is followed by an octet other than LF.
    let line = |at: usize| -> Option<(&[u8], End)> {
        let rest = &input[at..];
        match rest.iter().position(|b| *b == b'\r') {
            None => Some((rest, End::Open)),
            Some(cr) => match rest.get(cr + 1) {
                None => Some((&rest[..cr], End::Cr)),
                Some(b'\n') => Some((&rest[..cr], End::Crlf(at + cr + 2))),
                Some(_) => None,
            },
        }
    };
    let mut data = Vec::new();
    let mut counted = 0u64;
    let mut at = 0;
    loop {
        // chunk-size [ BWS ";" chunk-ext ] CRLF
        let Some((text, end)) = line(at) else {
            return REFUSED;
        };
        let digits = text.iter().take_while(|b| is_hex(b)).count();
        let after = &text[digits..];
        let spaces = after
            .iter()
            .take_while(|b| matches!(b, b' ' | b'\t'))
            .count();
        let ext_ok = match after[spaces..].split_first() {
            None => true,
            Some((b';', ext)) => ext.iter().all(is_field),
            Some(_) => false,
        };
        // Input that ends inside the size is not refused yet.
        let no_size = digits == 0 && (!text.is_empty() || end != End::Open);
        if digits > 15 || !ext_ok || after.len() > CHUNK_LINE_LIMIT || no_size {
            return REFUSED;
        }
        let End::Crlf(next) = end else {
            return Chunked::Partial { data };
        };
        counted += after.len() as u64;
        let size = text[..digits].iter().fold(0u64, |n, b| {
            n << 4 | u64::from((*b as char).to_digit(16).unwrap_or(0))
        });
        at = next;
        if size == 0 {
            break;
        }
        // chunk-data CRLF
        let available = input.len() - at;
        let take = usize::try_from(size).map_or(available, |s| s.min(available));
        data.extend_from_slice(&input[at..at + take]);
        counted += take as u64;
        at += take;
        if (take as u64) < size {
            return Chunked::Partial { data };
        }
        match &input[at..] {
            [] | [b'\r'] => return Chunked::Partial { data },
            [b'\r', b'\n', ..] => at += 2,
            _ => return REFUSED,
        }
    }
    // trailer-section CRLF
    let mut trailers = 0;
    loop {
        let Some((text, end)) = line(at) else {
            return REFUSED;
        };
        if text.is_empty() {
            return match end {
                End::Crlf(end) => Chunked::Done { end, data, counted },
                End::Open | End::Cr => Chunked::Partial { data },
            };
        }
        let name = text.iter().take_while(|b| is_token(b)).count();
        let field_ok = match text[name..].split_first() {
            // A name without its colon yet; at CR it is refused.
            None => end == End::Open,
            Some((b':', value)) => name > 0 && value.iter().all(is_field),
            Some(_) => false,
        };
        trailers += text.len();
        if !field_ok || text.len() > CHUNK_LINE_LIMIT || trailers > CHUNK_TRAILER_LIMIT {
            return REFUSED;
        }
        let End::Crlf(next) = end else {
            return Chunked::Partial { data };
        };
        counted += text.len() as u64;
        at = next;
    }
}

/// How a line of a chunked body's framing ends in the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    /// The input ends before any CR.
    Open,
    /// The input ends right after a CR.
    Cr,
    /// CRLF; the next line starts here.
    Crlf(usize),
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

#[cfg(test)]
mod chunked_tests {
    use super::*;

    #[test]
    fn the_seed_corpus_passes() {
        for seed in crate::fuzz_seeds("chunked") {
            if let Some((&step, body)) = seed.split_first() {
                check_chunked(body, usize::from(step).max(1));
            }
        }
    }

    /// Pieces of chunked framing, valid and not, that the generator joins.
    const PIECES: &[&[u8]] = &[
        b"5\r\nhello\r\n",
        b"3;a=b\r\nabc\r\n",
        b"1 \t;x\r\nz\r\n",
        b"A\r\n0123456789\r\n",
        b"0\r\n",
        b"0\r\n\r\n",
        b"X-T: 1\r\n",
        b"\r\n",
        b"\r",
        b"\n",
        b"2\r\nab",
        b"1 x\r\n",
        b"fffffffffffffff\r\n",
        b"0\r\nbad line\r\n",
        b";\r\n",
        b"G\r\n",
        b"NEXT",
    ];

    fn next(state: &mut u64) -> u64 {
        *state ^= *state << 13;
        *state ^= *state >> 7;
        *state ^= *state << 17;
        *state
    }

    #[test]
    fn samples_agree_in_every_split_and_with_the_reference() {
        let samples: &[&[u8]] = &[
            b"5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nX-T: 1\r\n\r\nNEXT",
            b"1  ;e\r\nx\r\n0 \r\n\r\n",
            b"0\r\nA:\r\nB: \xff\r\n\r\n",
            b"0\r\nName\r\n\r\n",
            b"2\r\nabX\n",
            b"",
        ];
        for input in samples {
            for step in 1..=input.len().max(1) {
                check_chunked(input, step);
            }
        }
        assert_eq!(
            decode_in(samples[0], 3),
            Chunked::Done {
                end: samples[0].len() - 4,
                data: b"hello world".to_vec(),
                counted: 11 + 6 + 6,
            }
        );
    }

    #[test]
    fn generated_bodies_agree_with_the_reference() {
        let mut state = 0x1234_5678_9abc_def1;
        let mut done = 0;
        for i in 0..20_000 {
            let mut input = Vec::new();
            for _ in 0..(next(&mut state) % 6) {
                input.extend_from_slice(PIECES[(next(&mut state) % PIECES.len() as u64) as usize]);
            }
            done += usize::from(matches!(reference_chunked(&input), Chunked::Done { .. }));
            check_chunked(&input, 1 + i % 5);
        }
        // The generator must reach the end of bodies, not only refusals.
        assert!(done > 1_000, "only {done} generated bodies were complete");
    }

    #[test]
    fn limits_hold_at_the_boundary() {
        let mut line = b"1".to_vec();
        line.extend(std::iter::repeat_n(b' ', CHUNK_LINE_LIMIT));
        line.extend_from_slice(b"\r\nx\r\n0\r\n\r\n");
        check_chunked(&line, 100);
        assert!(matches!(decode_in(&line, 100), Chunked::Done { .. }));
        line.insert(1, b'\t');
        check_chunked(&line, 100);
        assert!(matches!(decode_in(&line, 100), Chunked::Refused(_)));
        let field = format!("X: {}\r\n", "v".repeat(4000));
        let many = format!("0\r\n{}\r\n", field.repeat(5));
        check_chunked(many.as_bytes(), 4096);
        assert!(matches!(
            decode_in(many.as_bytes(), 4096),
            Chunked::Refused("trailers too large")
        ));
    }
}
