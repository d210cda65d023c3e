//! The ClientHello reader's invariants, as a check that panics when broken:
//! the fuzz target (`proxy/fuzz`, `client_hello`) and the unit tests run it
//! on arbitrary bytes. However the bytes are cut, a prefix answers
//! `NeedMore` (no hello in fewer more bytes than it says) or the whole input's
//! answer; a hello re-framed over other records reads the same; and a hello
//! rustls accepts reads here with rustls's host name and ALPN list.

use super::{peek, Peek, Reject, MAX_FRAGMENT, MAX_HELLO_BYTES, RECORD_HEADER};

/// Runs every invariant on `data`, a connection's first bytes.
pub fn check(data: &[u8]) {
    let whole = peek(data);
    if let Peek::NeedMore(more) = whole {
        assert!(
            more >= 1 && data.len() + more <= MAX_HELLO_BYTES,
            "{more} more after {}",
            data.len()
        );
    }
    for k in prefixes(data.len()) {
        match peek(&data[..k]) {
            Peek::NeedMore(more) => {
                assert!(
                    more >= 1 && k + more <= MAX_HELLO_BYTES,
                    "{more} more after {k}"
                );
                let short = (k + more - 1).min(data.len());
                assert!(
                    !matches!(peek(&data[..short]), Peek::Hello(_)),
                    "{k} bytes needed {more} more, {short} were enough"
                );
            }
            answer => assert_eq!(answer, whole, "the {k}-byte prefix"),
        }
    }
    if let Peek::Hello(hello) = whole {
        let reframed = reframe(&handshake_message(&data[..hello.len]), data);
        if reframed.len() <= MAX_HELLO_BYTES {
            match peek(&reframed) {
                Peek::Hello(again) => {
                    assert_eq!((again.sni, again.alpn), (hello.sni, hello.alpn));
                    assert_eq!(again.len, reframed.len());
                }
                other => panic!("re-framed: {other:?}, whole: {whole:?}"),
            }
        }
    }
    agrees_with_rustls(data, whole);
}

/// Every length up to 64, then about 64 more spread over the rest.
fn prefixes(len: usize) -> impl Iterator<Item = usize> {
    let step = len / 64 + 1;
    (0..len.min(64))
        .chain((64..len).step_by(step))
        .chain(len.checked_sub(1))
}

/// The handshake bytes of `records`, records a `peek` walked whole.
fn handshake_message(mut records: &[u8]) -> Vec<u8> {
    let mut message = Vec::new();
    while let [_, _, _, hi, lo, rest @ ..] = records {
        let len = usize::from(u16::from_be_bytes([*hi, *lo]));
        message.extend_from_slice(&rest[..len]);
        records = &rest[len..];
    }
    message
}

/// `message` in handshake records whose sizes `sizes` picks (cycling over
/// its bytes; small and large alternately).
fn reframe(message: &[u8], sizes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut rest = message;
    let mut i = 0;
    while !rest.is_empty() {
        let byte = usize::from(sizes.get(i % sizes.len().max(1)).copied().unwrap_or(0));
        let size = if i % 2 == 0 {
            1 + byte % 16
        } else {
            1 + byte * 61
        };
        let (record, tail) = rest.split_at(size.min(MAX_FRAGMENT).min(rest.len()));
        out.extend_from_slice(&[22, 3, 1]);
        out.extend_from_slice(&(record.len() as u16).to_be_bytes());
        out.extend_from_slice(record);
        rest = tail;
        i += 1;
    }
    debug_assert!(out.len() >= message.len() + RECORD_HEADER || message.is_empty());
    out
}

/// When rustls's `Acceptor` takes `data`'s hello, `whole` is that hello
/// with rustls's host name (normalized) and protocols, or one of two
/// refusals where this reader is stricter: a host name rustls ignores, or a
/// name list rustls stops reading at a name type it does not know (this
/// reader reads every entry, as Go's crypto/tls does).
fn agrees_with_rustls(data: &[u8], whole: Peek<'_>) {
    let Some((name, protocols)) = rustls_reads(data) else {
        return;
    };
    let hello = match whole {
        Peek::Hello(hello) => hello,
        Peek::Invalid(Reject::BadHostName) if name.is_none() => return,
        Peek::Invalid(Reject::BadSni) => return,
        other => panic!("rustls read {name:?} {protocols:?}, this: {other:?}"),
    };
    if let Some(name) = name {
        let name = name.to_ascii_lowercase();
        let name = name.strip_suffix('.').unwrap_or(&name);
        assert_eq!(hello.sni.as_deref(), Some(name));
    }
    let ours = hello.alpn.map(|alpn| {
        alpn.protocols()
            .map(|p| p.as_bytes().to_vec())
            .collect::<Vec<_>>()
    });
    assert_eq!(ours, protocols, "ALPN");
}

type Read = (Option<String>, Option<Vec<Vec<u8>>>);

/// The host name and ALPN list rustls reads from `data`, if it takes the
/// hello.
fn rustls_reads(data: &[u8]) -> Option<Read> {
    let mut acceptor = rustls::server::Acceptor::default();
    let mut input = data;
    loop {
        if acceptor.read_tls(&mut input).ok()? == 0 {
            return None;
        }
        if let Some(accepted) = acceptor.accept().ok()? {
            let hello = accepted.client_hello();
            let name = hello.server_name().map(str::to_owned);
            let alpn = hello.alpn().map(|list| list.map(<[u8]>::to_vec).collect());
            return Some((name, alpn));
        }
    }
}
