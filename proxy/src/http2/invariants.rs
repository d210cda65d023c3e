//! The frame check's and the request conversion's invariants, as checks
//! that panic when broken: the fuzz targets (`proxy/fuzz`, `h2_frames`,
//! `h2_head`) and the unit tests run them on arbitrary bytes. However a
//! client's bytes are split into reads, the check refuses the same frames
//! with the same code, never later than where the frame starts whole, and
//! never panics. Whatever header list an h2 request carries, the HTTP/1.1
//! head it becomes parses back to the same request, or the stream is
//! refused, for exactly the reasons RFC 9113 §8 names.

use super::bridge::request_head;
use super::frames::FrameCheck;
use crate::http::{request, BodyLen};
use h2::Reason;
use http::header::{self, HeaderName, HeaderValue};
use http::request::Parts;
use http::uri::{Authority, PathAndQuery, Scheme};
use http::{Method, Uri};

/// Scans `input` whole and in reads of `step` octets (at least 1): both
/// refuse, or neither, with the same code; split reads refuse no earlier
/// than the whole scan does.
pub fn check_frame_scan(input: &[u8], step: usize) {
    let whole = scan_in(input, input.len().max(1));
    let split = scan_in(input, step.max(1));
    match (whole, split) {
        (None, None) => {}
        (Some((w, rw)), Some((s, rs))) => {
            assert_eq!(rw, rs, "the code differs when read {step} octets at a time");
            assert!(
                w <= s,
                "refused at {s} in reads of {step}, before the frame at {w}"
            );
        }
        _ => panic!("whole: {whole:?}, in reads of {step}: {split:?}"),
    }
}

/// Where (absolute offset) and why the check refuses `input` read `step`
/// octets at a time.
fn scan_in(input: &[u8], step: usize) -> Option<(usize, Reason)> {
    let mut check = FrameCheck::default();
    let mut offset = 0;
    for read in input.chunks(step) {
        if let Err((at, reason)) = check.scan(read) {
            assert!(
                at <= read.len(),
                "cut at {at} of a {}-octet read",
                read.len()
            );
            // Refused once, refused for good.
            assert_eq!(check.scan(b"more").map_err(|e| e.1), Err(reason));
            return Some((offset + at, reason));
        }
        offset += read.len();
    }
    None
}

/// Reads `input` as an h2 request as h2 hands it over (first octet: bit 0
/// a body follows, bit 1 an :authority is there; then lines: :method,
/// :authority, :path, then `name:value` fields) and checks its HTTP/1.1
/// head. What `http` or h2 refuse before the bridge sees it is skipped.
pub fn check_request_head(input: &[u8]) {
    let Some((&flags, rest)) = input.split_first() else {
        return;
    };
    let Some((parts, has_body)) = h2_request(flags, rest) else {
        return;
    };
    let mut out = Vec::new();
    let result = request_head(&parts, has_body, &mut out);
    let why = refusal(&parts);
    let length = match (result, why) {
        (Ok(length), None) => length,
        (Err(_), Some(_)) => return,
        (result, why) => panic!("{result:?}, but the request is {why:?}:\n{parts:#?}"),
    };
    let show = || format!("{}\n{parts:#?}", String::from_utf8_lossy(&out));
    let mut fields = vec![httparse::EMPTY_HEADER; parts.headers.len() + 4];
    let head = match request::parse(&out, &mut fields) {
        Ok(Some(head)) => head,
        other => panic!("the head does not parse ({other:?}):\n{}", show()),
    };
    assert_eq!(
        head.len,
        out.len(),
        "one head, nothing after it:\n{}",
        show()
    );
    assert_eq!(head.method, parts.method.as_str(), "{}", show());
    let target = parts.uri.path_and_query().map(PathAndQuery::as_str);
    assert_eq!(Some(head.target), target, "{}", show());
    let host = parts.uri.authority().map(|a| a.as_str().as_bytes());
    let host = host.or(parts.headers.get(header::HOST).map(HeaderValue::as_bytes));
    assert_eq!(head.host, host, "{}", show());
    assert_eq!(head.content_length, length, "{}", show());
    let body = match length {
        Some(0) => BodyLen::None,
        Some(n) => BodyLen::Length(n),
        None if has_body => BodyLen::Chunked,
        None => BodyLen::None,
    };
    assert_eq!(head.body, body, "{}", show());
    assert_eq!(head.upgrade, None, "{}", show());
    // Every other field arrives with its values in order; cookie crumbs
    // as one field (RFC 9113 §8.2.3), empty ones left out, content-length
    // once.
    let sent = |name: &str| -> Vec<Vec<u8>> {
        head.headers
            .iter()
            .filter(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| h.value.to_vec())
            .collect()
    };
    for name in parts.headers.keys() {
        let values: Vec<&[u8]> = parts
            .headers
            .get_all(name)
            .iter()
            .map(HeaderValue::as_bytes)
            .collect();
        let want = match name {
            _ if *name == header::HOST || *name == header::TE || *name == header::EXPECT => {
                Vec::new()
            }
            _ if *name == header::COOKIE => {
                let crumbs: Vec<&[u8]> = values.iter().copied().filter(|c| !c.is_empty()).collect();
                match crumbs.is_empty() {
                    true => Vec::new(),
                    false => vec![crumbs.join(&b"; "[..])],
                }
            }
            _ if *name == header::CONTENT_LENGTH => vec![values[0].to_vec()],
            _ => values.iter().map(|v| v.to_vec()).collect(),
        };
        let name = name.as_str();
        if name != "host" {
            assert_eq!(sent(name), want, "field {name}:\n{}", show());
        }
    }
    assert_eq!(sent("host").len(), 1, "{}", show());
    for name in [
        "connection",
        "keep-alive",
        "proxy-connection",
        "te",
        "upgrade",
        "expect",
    ] {
        assert!(sent(name).is_empty(), "{name} forwarded:\n{}", show());
    }
    let chunked = sent("transfer-encoding");
    assert_eq!(
        chunked.len(),
        usize::from(body == BodyLen::Chunked),
        "{}",
        show()
    );
    assert!(chunked.iter().all(|v| *v == b"chunked"), "{}", show());
}

/// The request h2 would hand over for these pseudo-header and field
/// lines, or `None` where h2 or `http` refuse it first (a name or value
/// they do not take, a content-length that is not digits, which h2
/// refuses as malformed itself).
fn h2_request(flags: u8, input: &[u8]) -> Option<(Parts, bool)> {
    let mut lines = input.split(|b| *b == b'\n');
    let method = Method::from_bytes(lines.next()?).ok()?;
    let mut uri = http::uri::Parts::default();
    if flags & 2 != 0 {
        // h2 keeps :scheme only beside an :authority.
        uri.authority = Some(Authority::try_from(lines.next()?).ok()?);
        uri.scheme = Some(Scheme::HTTPS);
    }
    let path = lines.next()?;
    if !path.is_empty() {
        uri.path_and_query = Some(PathAndQuery::try_from(path).ok()?);
    }
    let uri = Uri::from_parts(uri).ok()?;
    let mut request = http::Request::builder().method(method).uri(uri);
    for line in lines {
        let colon = line.iter().position(|b| *b == b':').unwrap_or(line.len());
        let name = HeaderName::from_bytes(&line[..colon]).ok()?;
        let value = HeaderValue::from_bytes(line.get(colon + 1..).unwrap_or_default()).ok()?;
        if name == header::CONTENT_LENGTH
            && (value.is_empty() || !value.as_bytes().iter().all(u8::is_ascii_digit))
        {
            return None;
        }
        request = request.header(name, value);
    }
    let parts = request.body(()).ok()?.into_parts().0;
    Some((parts, flags & 1 != 0))
}

/// Why RFC 9113 §8 (and rauta's refusal of CONNECT) makes the request
/// malformed, if it is: listed plainly, apart from the conversion.
fn refusal(parts: &Parts) -> Option<&'static str> {
    if parts.method == Method::CONNECT {
        return Some("CONNECT");
    }
    let path = parts.uri.path_and_query().map_or("", PathAndQuery::as_str);
    let asterisk = path == "*" && parts.method == Method::OPTIONS;
    if !path.starts_with('/') && !asterisk {
        return Some("a :path that is not a path");
    }
    let authority = parts.uri.authority().map(Authority::as_str);
    if authority.is_some_and(|a| a.contains('@')) {
        return Some("userinfo in :authority");
    }
    let hosts: Vec<&HeaderValue> = parts.headers.get_all(header::HOST).iter().collect();
    if hosts.len() > 1 {
        return Some("two host fields");
    }
    match (authority, hosts.first()) {
        (None, None) => return Some("without :authority or host"),
        (Some(a), Some(h)) if !a.as_bytes().eq_ignore_ascii_case(h.as_bytes()) => {
            return Some("a host other than :authority")
        }
        _ => {}
    }
    for (name, value) in &parts.headers {
        let v = value.as_bytes();
        let edge = |b: Option<&u8>| matches!(b, Some(b' ' | b'\t'));
        if edge(v.first()) || edge(v.last()) {
            return Some("whitespace around a value");
        }
        let connection = [
            "connection",
            "keep-alive",
            "proxy-connection",
            "transfer-encoding",
            "upgrade",
        ];
        if connection.contains(&name.as_str()) {
            return Some("a connection-specific field");
        }
        if *name == header::TE && !v.eq_ignore_ascii_case(b"trailers") {
            return Some("te other than trailers");
        }
    }
    let lengths: Vec<&HeaderValue> = parts
        .headers
        .get_all(header::CONTENT_LENGTH)
        .iter()
        .collect();
    if lengths.iter().any(|l| *l != lengths[0]) {
        return Some("conflicting content-length");
    }
    if lengths
        .first()
        .is_some_and(|l| l.to_str().map_or(true, |l| l.parse::<u64>().is_err()))
    {
        return Some("a content-length out of range");
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A frame header: length, type, flags, stream.
    fn frame(len: u32, kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
        let mut f = len.to_be_bytes()[1..].to_vec();
        f.extend([kind, flags]);
        f.extend(stream.to_be_bytes());
        f.extend_from_slice(payload);
        f
    }

    #[test]
    fn every_split_agrees() {
        let mut input = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
        input.extend(frame(6, 0x4, 0, 0, &[0, 4, 0xff, 0xff, 0xff, 0xff]));
        input.extend(frame(8, 0x6, 0, 0, &[0; 8]));
        input.extend(frame(3, 0x0, 1, 1, b"abc"));
        input.extend(frame(3, 0x0, 0, 1, b"def"));
        for step in 1..input.len() {
            check_frame_scan(&input, step);
        }
        assert_eq!(
            scan_in(&input, 7).map(|r| r.1),
            Some(Reason::FLOW_CONTROL_ERROR),
            "the window above 2^31-1 is refused first"
        );
    }
}

#[cfg(test)]
mod head_tests {
    use super::*;

    #[test]
    fn the_seed_corpus_passes() {
        for seed in crate::fuzz_seeds("h2_head") {
            check_request_head(&seed);
        }
    }

    #[test]
    fn sample_requests_convert_or_are_refused() {
        let samples: &[&[u8]] = &[
            b"\x02GET\nexample.com\n/a?b=1\ncookie:a=1\ncookie:b=2\nte:trailers\nx-y:z",
            b"\x03POST\nexample.com\n/up\ncontent-length:5\ncontent-length:5",
            b"\x01POST\n/up\nhost:a\nexpect:100-continue",
            b"\x00OPTIONS\n*\nhost:a",
            b"\x02GET\nexample.com\n/\nhost:other",
            b"\x02GET\nexample.com\n/\nconnection:close",
            b"\x02GET\nexample.com\n/\nte:gzip",
            b"\x02GET\nexample.com\n/\nx: lead",
            b"\x02GET\nu@example.com\n/",
            b"\x02GET\nexample.com\n/\ncontent-length:1\ncontent-length:2",
            b"\x02GET\nexample.com\n/\ncontent-length:99999999999999999999",
            b"\x00GET\n/",
        ];
        for input in samples {
            check_request_head(input);
        }
        let (parts, _) = h2_request(2, b"GET\nexample.com\n/\nte:gzip").expect("h2 takes it");
        assert_eq!(refusal(&parts), Some("te other than trailers"));
    }

    #[test]
    fn generated_requests_convert_or_are_refused() {
        const LINES: &[&[u8]] = &[
            b"host:a",
            b"host:A",
            b"cookie:c=1",
            b"content-length:0",
            b"content-length:7",
            b"te:trailers",
            b"te:TRAILERS",
            b"expect:100-continue",
            b"x-a:1",
            b"x-a:",
            b"x-b:\xff",
            b"connection:x",
            b"upgrade:h2c",
            b"transfer-encoding:chunked",
        ];
        let firsts: &[&[u8]] = &[b"\x02GET\na\n/p", b"\x01POST\n/p", b"\x03PUT\nA\n/?q"];
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for i in 0..20_000 {
            let mut input = firsts[i % firsts.len()].to_vec();
            for _ in 0..(next() % 5) {
                input.push(b'\n');
                input.extend_from_slice(LINES[(next() % LINES.len() as u64) as usize]);
            }
            check_request_head(&input);
        }
    }
}
