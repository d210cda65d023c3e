use super::*;
use std::sync::Arc;

/// The first flight of a rustls client for `name` (an IP address sends no
/// SNI) offering `alpn`.
fn rustls_hello(name: &str, alpn: &[&[u8]]) -> Vec<u8> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("the versions")
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    let name = rustls::pki_types::ServerName::try_from(name.to_owned()).expect("a name");
    let mut client = rustls::ClientConnection::new(Arc::new(config), name).expect("a client");
    let mut out = Vec::new();
    client.write_tls(&mut out).expect("the hello");
    out
}

/// A ClientHello body: TLS 1.2 version, `session` id, one suite, null
/// compression, then `extensions` (no block at all for `None`).
fn body(session: &[u8], extensions: Option<&[(u16, Vec<u8>)]>) -> Vec<u8> {
    let mut body = vec![3, 3];
    body.extend([7; 32]);
    body.push(session.len() as u8);
    body.extend(session);
    body.extend([0, 2, 0x13, 0x01, 1, 0]);
    if let Some(extensions) = extensions {
        let mut block = Vec::new();
        for (kind, data) in extensions {
            block.extend(kind.to_be_bytes());
            block.extend((data.len() as u16).to_be_bytes());
            block.extend(data);
        }
        body.extend((block.len() as u16).to_be_bytes());
        body.extend(block);
    }
    body
}

/// `body` as a handshake message of type `kind`.
fn message_of(kind: u8, body: &[u8]) -> Vec<u8> {
    let mut message = vec![kind];
    message.extend(&(body.len() as u32).to_be_bytes()[1..]);
    message.extend(body);
    message
}

/// A ClientHello message with `extensions`.
fn message(extensions: &[(u16, Vec<u8>)]) -> Vec<u8> {
    message_of(CLIENT_HELLO, &body(&[], Some(extensions)))
}

/// `message` in handshake records of `sizes`, then one for the rest.
fn records(message: &[u8], sizes: &[usize]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut rest = message;
    for &size in sizes.iter().chain([&usize::MAX]) {
        if rest.is_empty() {
            break;
        }
        let (record, tail) = rest.split_at(size.min(rest.len()));
        out.extend([22, 3, 1]);
        out.extend((record.len() as u16).to_be_bytes());
        out.extend(record);
        rest = tail;
    }
    out
}

/// The `message` bytes of the records in `wire` (one hello, whole).
fn unframe(mut wire: &[u8]) -> Vec<u8> {
    let mut message = Vec::new();
    while let [22, _, _, hi, lo, rest @ ..] = wire {
        let len = usize::from(u16::from_be_bytes([*hi, *lo]));
        message.extend(&rest[..len]);
        wire = &rest[len..];
    }
    message
}

fn sni(names: &[(u8, &[u8])]) -> (u16, Vec<u8>) {
    let mut list = Vec::new();
    for (kind, name) in names {
        list.push(*kind);
        list.extend((name.len() as u16).to_be_bytes());
        list.extend(*name);
    }
    let mut data = (list.len() as u16).to_be_bytes().to_vec();
    data.extend(list);
    (EXT_SERVER_NAME, data)
}

fn host(name: &str) -> (u16, Vec<u8>) {
    sni(&[(NAME_TYPE_HOST, name.as_bytes())])
}

fn alpn(protocols: &[&[u8]]) -> (u16, Vec<u8>) {
    let mut list = Vec::new();
    for p in protocols {
        list.push(p.len() as u8);
        list.extend(*p);
    }
    let mut data = (list.len() as u16).to_be_bytes().to_vec();
    data.extend(list);
    (EXT_ALPN, data)
}

fn hello(input: &[u8]) -> Hello<'_> {
    match peek(input) {
        Peek::Hello(hello) => hello,
        other => panic!("{other:?}"),
    }
}

fn protocols(hello: &Hello<'_>) -> Vec<Vec<u8>> {
    let alpn = hello.alpn.expect("ALPN");
    alpn.protocols().map(|p| p.as_bytes().to_vec()).collect()
}

/// Every proper prefix of `input` (a whole hello) needs more, and never
/// more than the hello's remaining bytes.
fn assert_prefixes_need_more(input: &[u8]) {
    let len = hello(input).len;
    for k in 0..len {
        match peek(&input[..k]) {
            Peek::NeedMore(more) => assert!(k + more <= len, "{k} + {more} past {len}"),
            other => panic!("the {k}-byte prefix: {other:?}"),
        }
    }
}

fn fixture(name: &str) -> Vec<u8> {
    let path = format!(
        "{}/fuzz/corpus/client_hello/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&path).expect(&path)
}

#[test]
fn a_rustls_hello_gives_its_name_and_protocols() {
    let input = rustls_hello("Example.COM", &[b"h2", b"http/1.1"]);
    let hello = hello(&input);
    assert_eq!(hello.sni.as_deref(), Some("example.com"));
    assert_eq!(protocols(&hello), [b"h2".to_vec(), b"http/1.1".to_vec()]);
    assert!(hello
        .alpn
        .is_some_and(|a| a.contains(b"h2") && !a.contains(b"h3")));
    assert_eq!(hello.len, input.len());
    assert_prefixes_need_more(&input);
    invariants::check(&input);
}

#[test]
fn an_ip_address_server_name_sends_no_sni() {
    for name in ["192.0.2.7", "2001:db8::1"] {
        let input = rustls_hello(name, &[b"http/1.1"]);
        let hello = hello(&input);
        assert_eq!(hello.sni, None, "{name}");
        assert_eq!(protocols(&hello), [b"http/1.1".to_vec()]);
        assert_prefixes_need_more(&input);
    }
    let input = rustls_hello("192.0.2.7", &[]);
    assert_eq!(hello(&input).alpn, None);
}

#[test]
fn a_hello_fragmented_over_records_reads_the_same() {
    let input = rustls_hello("passthrough.example.com", &[b"h2"]);
    let whole = hello(&input);
    let message = unframe(&input);
    let name_at = message
        .windows(11)
        .position(|w| w == b"passthrough")
        .expect("the name");
    let cuts: &[&[usize]] = &[
        &[1],
        &[2],
        &[3],
        &[4],
        &[5],
        &[1, 1, 1],
        &[2, 2],
        &[40, 1],
        &[message.len() / 2],
        &[name_at + 5],
        &[name_at - 2, 3],
        &[name_at + 3, 10, 100],
        &[message.len() - 1],
    ];
    for sizes in cuts {
        let input = records(&message, sizes);
        let hello = hello(&input);
        assert_eq!(
            (hello.sni, hello.alpn),
            (whole.sni, whole.alpn),
            "{sizes:?}"
        );
        assert_eq!(hello.len, input.len());
        assert_prefixes_need_more(&input);
        invariants::check(&input);
    }
    // In one-byte records: the name and the protocol straddle every boundary.
    let input = records(&message, &vec![1; message.len()]);
    let hello = hello(&input);
    assert_eq!((hello.sni, hello.alpn), (whole.sni, whole.alpn));
    assert_eq!(protocols(&hello), [b"h2".to_vec()]);
}

#[test]
fn a_hello_arriving_in_tcp_segments_needs_more_until_whole() {
    // The pieces a listener would append to its buffer one by one.
    let input = records(&message(&[host("a.example"), alpn(&[b"h2"])]), &[20, 30]);
    let mut read = 0;
    for segment in [1, 4, 10, 33, 7] {
        read += segment;
        assert!(matches!(peek(&input[..read]), Peek::NeedMore(_)), "{read}");
    }
    assert_eq!(hello(&input).sni.as_deref(), Some("a.example"));
}

#[test]
fn openssl_s_client_hellos_read() {
    /// A fixture, its host name and protocols.
    type Case<'a> = (&'a str, Option<&'a str>, Option<&'a [&'a [u8]]>);
    let cases: &[Case<'_>] = &[
        (
            "openssl-sni-alpn",
            Some("echo.example.com"),
            Some(&[b"h2", b"http/1.1"]),
        ),
        ("openssl-no-sni", None, None),
        ("openssl-tls12-sni", Some("api.example.org"), None),
    ];
    for (name, sni, alpn) in cases {
        let input = fixture(name);
        let hello = hello(&input);
        assert_eq!(hello.sni.as_deref(), *sni, "{name}");
        let wanted = alpn.map(|list| list.iter().map(|p| p.to_vec()).collect::<Vec<_>>());
        assert_eq!(hello.alpn.map(|_| protocols(&hello)), wanted, "{name}");
        assert_eq!(hello.len, input.len());
        assert_prefixes_need_more(&input);
    }
}

#[test]
fn the_seed_corpus_passes() {
    for seed in crate::fuzz_seeds("client_hello") {
        invariants::check(&seed);
    }
}

#[test]
fn host_names_are_normalized_or_refused() {
    let read = |name: &[u8]| peek_owned(&records(&message(&[sni(&[(0, name)])]), &[]));
    assert_eq!(
        read(b"WWW.Example.COM."),
        Ok(Some("www.example.com".into()))
    );
    assert_eq!(
        read(b"_acme.x-y.example"),
        Ok(Some("_acme.x-y.example".into()))
    );
    assert_eq!(read(b"10.0.0.1"), Ok(None));
    assert_eq!(read(b"::1"), Ok(None));
    let long_label = [b'a'; 64];
    let long_name = [b"a.".repeat(126).as_slice(), b"ab"].concat();
    assert_eq!(long_name.len(), 254);
    for bad in [
        &b""[..],
        b".",
        b"a..b",
        b".a",
        b"-a.example",
        b"a-.example",
        b"a b",
        b"ex\xc3\xa4mple.com",
        b"a.example:443",
        &long_label,
        &long_name,
    ] {
        assert_eq!(
            read(bad),
            Err(Reject::BadHostName),
            "{}",
            bad.escape_ascii()
        );
    }
    // 253 bytes and a trailing dot is the longest name.
    let longest = [b"a.".repeat(126).as_slice(), b"a."].concat();
    assert_eq!(read(&longest).map(|n| n.map(|n| n.len())), Ok(Some(253)));
    // Other name types are skipped; only one host_name may be there.
    let skipped = sni(&[(7, b"\x00\x01"), (0, b"b.example")]);
    assert_eq!(
        peek_owned(&records(&message(&[skipped]), &[])),
        Ok(Some("b.example".into()))
    );
}

/// The host name `input` gives, or why it is refused.
fn peek_owned(input: &[u8]) -> Result<Option<String>, Reject> {
    match peek(input) {
        Peek::Hello(hello) => Ok(hello.sni.map(|n| n.to_string())),
        Peek::Invalid(reject) => Err(reject),
        Peek::NeedMore(more) => panic!("needs {more} more"),
    }
}

#[test]
fn malformed_hellos_are_refused_for_their_reason() {
    let good = message(&[host("a.example"), alpn(&[b"h2"])]);
    let mut wrong_record = records(&good, &[]);
    wrong_record[0] = 23;
    let mut alert_first = alert(DECODE_ERROR).to_vec();
    alert_first.extend(records(&good, &[]));
    let mut interleaved = records(&good, &[10]);
    interleaved[15] = 23;
    let mut record_v2 = records(&good, &[]);
    record_v2[1] = 2;
    let mut empty_record = vec![22, 3, 1, 0, 0];
    empty_record.extend(records(&good, &[]));
    let mut overflow = records(&good, &[]);
    overflow[3..5].copy_from_slice(&0x4001u16.to_be_bytes());
    let server_hello = records(&message_of(2, &body(&[], None)), &[]);
    let long_session = body(&[1; 33], None);
    let mut odd_suites = body(&[], None);
    odd_suites[36] = 3;
    odd_suites.push(0);
    let no_methods = {
        let mut b = body(&[], None);
        b[39] = 0;
        b.pop();
        b
    };
    let mut trailing = body(&[], Some(&[host("a.example")]));
    trailing.push(0);
    let mut past_end = body(&[], Some(&[host("a.example")]));
    let at = past_end.len() - 2 - 4 - 9 - 2; // the extension's length field
    past_end[at + 1] += 1;
    let mut unaligned = records(&good, &[]);
    unaligned.push(0);
    unaligned[4] += 1;
    let too_long = {
        let mut m = good.clone();
        m[1..4].copy_from_slice(&[0, 0x40, 0]);
        m
    };
    let cases: Vec<(&str, Vec<u8>, Reject)> = vec![
        (
            "plain HTTP",
            b"GET / HTTP/1.1\r\nHost: a\r\n\r\n".to_vec(),
            Reject::NotTls,
        ),
        ("a null byte", vec![0, 0, 0, 0, 0], Reject::NotTls),
        ("application data", wrong_record, Reject::NotHandshake),
        ("an alert", alert_first, Reject::NotHandshake),
        ("data between fragments", interleaved, Reject::NotHandshake),
        ("SSL 2.0", vec![0x80, 0x2e, 1, 3, 1, 0, 0x15], Reject::Sslv2),
        ("record major 2", record_v2, Reject::Version),
        ("empty record", empty_record, Reject::BadLength),
        ("record over 2^14", overflow, Reject::RecordOverflow),
        ("ServerHello", server_hello, Reject::NotClientHello),
        (
            "session id of 33",
            records(&message_of(1, &long_session), &[]),
            Reject::BadLength,
        ),
        (
            "odd suites",
            records(&message_of(1, &odd_suites), &[]),
            Reject::BadLength,
        ),
        (
            "no compression",
            records(&message_of(1, &no_methods), &[]),
            Reject::BadLength,
        ),
        (
            "empty body",
            records(&message_of(1, &[]), &[]),
            Reject::BadLength,
        ),
        (
            "bytes after extensions",
            records(&message_of(1, &trailing), &[]),
            Reject::BadLength,
        ),
        (
            "extension past the block",
            records(&message_of(1, &past_end), &[]),
            Reject::BadLength,
        ),
        ("record past the hello", unaligned, Reject::Unaligned),
        (
            "hello over the bound",
            records(&too_long, &[]),
            Reject::TooLarge,
        ),
        (
            "two host names",
            records(
                &message(&[sni(&[(0, b"a.example"), (0, b"b.example")])]),
                &[],
            ),
            Reject::BadSni,
        ),
        (
            "empty name list",
            records(&message(&[sni(&[])]), &[]),
            Reject::BadSni,
        ),
        (
            "empty extension",
            records(&message(&[(0, vec![])]), &[]),
            Reject::BadSni,
        ),
        (
            "name past its list",
            records(&message(&[(0, vec![0, 4, 0, 0, 9, b'a', b'b'])]), &[]),
            Reject::BadSni,
        ),
        (
            "two server_name extensions",
            records(&message(&[host("a.example"), host("a.example")]), &[]),
            Reject::DuplicateExtension,
        ),
        (
            "two ALPN extensions",
            records(&message(&[alpn(&[b"h2"]), alpn(&[b"h2"])]), &[]),
            Reject::DuplicateExtension,
        ),
        (
            "empty protocol",
            records(&message(&[alpn(&[b"h2", b""])]), &[]),
            Reject::BadAlpn,
        ),
        (
            "empty protocol list",
            records(&message(&[alpn(&[])]), &[]),
            Reject::BadAlpn,
        ),
    ];
    for (what, input, reject) in cases {
        assert_eq!(peek(&input), Peek::Invalid(reject), "{what}");
        invariants::check(&input);
    }
}

#[test]
fn the_size_bound_is_exact() {
    // Two full-size records' worth of padding (extension 21) puts the
    // hello's end exactly at the bound, then one byte past it.
    let fits = |extra: usize| {
        let padding = MAX_HELLO_BYTES
            - 2 * RECORD_HEADER
            - message(&[host("big.example"), (21, vec![])]).len()
            + extra;
        records(
            &message(&[host("big.example"), (21, vec![0; padding])]),
            &[8000],
        )
    };
    let input = fits(0);
    assert_eq!(input.len(), MAX_HELLO_BYTES);
    assert_eq!(hello(&input).sni.as_deref(), Some("big.example"));
    invariants::check(&input);
    let input = fits(1);
    assert_eq!(peek(&input), Peek::Invalid(Reject::TooLarge));
    // Refused once the hello's length is in: 9 bytes.
    assert_eq!(peek(&input[..9]), Peek::Invalid(Reject::TooLarge));
    assert_eq!(peek(&input[..8]), Peek::NeedMore(RECORD_HEADER + 8000 - 8));
    invariants::check(&input);
    // A small hello in one-byte records outgrows the bound on the wire.
    let message = message(&[(21, vec![0; 3000])]);
    let input = records(&message, &vec![1; message.len()]);
    assert_eq!(peek(&input), Peek::Invalid(Reject::TooLarge));
    invariants::check(&input);
}

#[test]
fn the_hello_version_is_left_to_the_server() {
    let mut message = message(&[host("a.example")]);
    message[4..6].copy_from_slice(&[0, 0]);
    assert_eq!(
        hello(&records(&message, &[])).sni.as_deref(),
        Some("a.example")
    );
}

#[test]
fn what_follows_the_hello_is_left_alone() {
    let mut input = rustls_hello("a.example", &[]);
    let len = input.len();
    input.extend([20, 3, 3, 0, 1, 1, 23, 3, 3, 0, 1]);
    assert_eq!(hello(&input).len, len);
}

#[test]
fn need_more_counts_the_bytes_known_missing() {
    let input = records(&message(&[host("a.example")]), &[]);
    assert_eq!(peek(&[]), Peek::NeedMore(RECORD_HEADER + MIN_HELLO));
    assert_eq!(
        peek(&input[..2]),
        Peek::NeedMore(RECORD_HEADER + MIN_HELLO - 2)
    );
    // The record's length is in: the rest of it.
    for k in 5..input.len() {
        assert_eq!(peek(&input[..k]), Peek::NeedMore(input.len() - k), "{k}");
    }
    // An SSL 2.0 header: one byte more says which.
    assert_eq!(peek(&[0x80, 0x2e]), Peek::NeedMore(1));
}

#[test]
fn alerts_and_labels() {
    assert_eq!(alert(UNRECOGNIZED_NAME), [21, 3, 3, 0, 2, 2, 112]);
    let mut labels: Vec<_> = Reject::ALL.iter().map(|r| r.label()).collect();
    labels.sort_unstable();
    labels.dedup();
    assert_eq!(labels.len(), Reject::ALL.len());
    assert_eq!(Reject::NotTls.alert(), None);
    assert_eq!(Reject::Unaligned.alert(), Some(UNEXPECTED_MESSAGE));
    assert_eq!(Reject::RecordOverflow.alert(), Some(RECORD_OVERFLOW));
    assert_eq!(Reject::BadHostName.alert(), Some(UNRECOGNIZED_NAME));
    assert_eq!(Reject::DuplicateExtension.alert(), Some(ILLEGAL_PARAMETER));
    assert_eq!(Reject::Sslv2.alert(), Some(PROTOCOL_VERSION));
}
