//! The ClientHello at the start of a TLS connection, read without
//! terminating TLS, so the listener can pick by SNI between relaying the
//! raw stream (`ssl-passthrough`) and handing it to rustls. [`peek`] takes
//! the bytes read so far, however the client framed them: the hello in one
//! record, fragmented over several handshake records (RFC 8446 §5.1), split
//! anywhere by TCP. It copies nothing but the host name and allocates
//! nothing; the answer for a prefix is `NeedMore` or the whole input's.

use std::fmt;
use std::net::IpAddr;

pub mod invariants;

/// The most bytes, record headers included, from the connection's first
/// byte through the end of the hello's last record: a hello that has not
/// ended by then is [`Reject::TooLarge`], so a peek buffer this big always
/// suffices. Real hellos are 0.2-2 KiB (a post-quantum key share included).
pub const MAX_HELLO_BYTES: usize = 16 * 1024;

/// Alert `unexpected_message`.
pub const UNEXPECTED_MESSAGE: u8 = 10;
/// Alert `record_overflow`.
pub const RECORD_OVERFLOW: u8 = 22;
/// Alert `illegal_parameter`.
pub const ILLEGAL_PARAMETER: u8 = 47;
/// Alert `decode_error`.
pub const DECODE_ERROR: u8 = 50;
/// Alert `protocol_version`.
pub const PROTOCOL_VERSION: u8 = 70;
/// Alert `unrecognized_name` (RFC 6066 §3), also the caller's answer to a
/// name that is no host of ours when there is no default certificate.
pub const UNRECOGNIZED_NAME: u8 = 112;

/// Content type, legacy version, fragment length.
const RECORD_HEADER: usize = 5;
/// RFC 8446 §5.1: a plaintext fragment holds at most 2^14 bytes.
const MAX_FRAGMENT: usize = 1 << 14;
const ALERT: u8 = 21;
const HANDSHAKE: u8 = 22;
const CLIENT_HELLO: u8 = 1;
/// Message type and 24-bit length.
const HANDSHAKE_HEADER: usize = 4;
/// The handshake header and the shortest body: version, random, empty
/// session id, one cipher suite, one compression method, no extensions.
const MIN_HELLO: usize = HANDSHAKE_HEADER + 2 + 32 + 1 + 2 + 2 + 1 + 1;
const EXT_SERVER_NAME: u16 = 0;
const EXT_ALPN: u16 = 16;
/// RFC 6066's only name type.
const NAME_TYPE_HOST: u8 = 0;
/// A DNS name's text form without the trailing dot (RFC 1035 §2.3.4).
const MAX_HOST_NAME: usize = 253;

/// What the bytes read so far say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
// A `Hello` carries its host name inline (254 bytes) so as not to allocate;
// a `Peek` lives on the stack for one decision, never in a collection.
#[allow(clippy::large_enum_variant)]
pub enum Peek<'a> {
    /// The hello is not complete: at least this many more bytes (1 or
    /// more, never past `MAX_HELLO_BYTES` in all) before it can be, though
    /// fewer may show it invalid.
    NeedMore(usize),
    /// A whole, well-formed ClientHello.
    Hello(Hello<'a>),
    /// Not a ClientHello this listener can route, for good: more bytes
    /// cannot change it.
    Invalid(Reject),
}

/// What routing needs from a well-formed ClientHello.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hello<'a> {
    /// The `server_name` extension's host name, ASCII-lowercased and without
    /// a trailing dot; `None` without the extension or when it names an IP
    /// address (RFC 6066 forbids them; some clients send them; rustls ignores
    /// them too).
    pub sni: Option<HostName>,
    /// The ALPN extension's protocol list, `None` without it.
    pub alpn: Option<Alpn<'a>>,
    /// Input bytes through the end of the hello's last record; what follows
    /// (a change_cipher_spec, early data) belongs to later records.
    pub len: usize,
}

/// Why a connection's first bytes are not a routable ClientHello; each has
/// a metric label and the alert to answer with before closing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reject {
    /// The first byte is no TLS content type (plain HTTP on the TLS port,
    /// say): close without an alert, which the peer would not read.
    NotTls,
    /// An SSL 2.0-format hello (high bit set, message type 1), which
    /// rustls never accepted and which cannot carry SNI.
    Sslv2,
    /// A record of another content type (alert, application data, ...)
    /// before the hello ended.
    NotHandshake,
    /// The first handshake message is not a ClientHello.
    NotClientHello,
    /// A record's major version is not 3 (SSL 3.0 to TLS 1.3).
    Version,
    /// A record longer than 2^14 bytes.
    RecordOverflow,
    /// The hello does not end within `MAX_HELLO_BYTES`.
    TooLarge,
    /// An empty handshake record (RFC 8446 §5.1), or a length in the hello
    /// that disagrees with what holds it: a vector running past its end, bytes
    /// left over, a session id over 32 bytes, no cipher suite or compression
    /// method.
    BadLength,
    /// The record carrying the hello's end runs on past it, which RFC 8446
    /// §5.1 answers with `unexpected_message`.
    Unaligned,
    /// Two `server_name` or two ALPN extensions (RFC 8446 §4.2): a relay
    /// reading the first and a backend the second would disagree on the host.
    DuplicateExtension,
    /// The `server_name` extension is malformed: lengths, an empty list, two
    /// host names (RFC 6066 §3).
    BadSni,
    /// The host name is no DNS name: empty, over 253 bytes, not ASCII
    /// letters, digits, `-` and `_` in dot-separated labels of 1 to 63.
    BadHostName,
    /// The ALPN extension is malformed: lengths, an empty list or an empty
    /// protocol name (RFC 7301 §3.1).
    BadAlpn,
}

impl Reject {
    /// Every reason, for registering one metric series each.
    pub const ALL: [Reject; 13] = [
        Reject::NotTls,
        Reject::Sslv2,
        Reject::NotHandshake,
        Reject::NotClientHello,
        Reject::Version,
        Reject::RecordOverflow,
        Reject::TooLarge,
        Reject::BadLength,
        Reject::Unaligned,
        Reject::DuplicateExtension,
        Reject::BadSni,
        Reject::BadHostName,
        Reject::BadAlpn,
    ];

    /// The metric label.
    pub fn label(self) -> &'static str {
        match self {
            Reject::NotTls => "not_tls",
            Reject::Sslv2 => "sslv2",
            Reject::NotHandshake => "not_handshake",
            Reject::NotClientHello => "not_client_hello",
            Reject::Version => "version",
            Reject::RecordOverflow => "record_overflow",
            Reject::TooLarge => "too_large",
            Reject::BadLength => "bad_length",
            Reject::Unaligned => "unaligned",
            Reject::DuplicateExtension => "duplicate_extension",
            Reject::BadSni => "bad_sni",
            Reject::BadHostName => "bad_host_name",
            Reject::BadAlpn => "bad_alpn",
        }
    }

    /// The alert description to send (see [`alert`]) before closing; `None`
    /// for a peer that does not speak TLS.
    pub fn alert(self) -> Option<u8> {
        // rustls's choices where RFC 8446 names none: decode_error for what
        // does not parse, illegal_parameter for a duplicate extension.
        match self {
            Reject::NotTls => None,
            Reject::Sslv2 | Reject::Version => Some(PROTOCOL_VERSION),
            Reject::NotHandshake | Reject::NotClientHello | Reject::Unaligned => {
                Some(UNEXPECTED_MESSAGE)
            }
            Reject::RecordOverflow => Some(RECORD_OVERFLOW),
            Reject::TooLarge | Reject::BadLength | Reject::BadSni | Reject::BadAlpn => {
                Some(DECODE_ERROR)
            }
            Reject::DuplicateExtension => Some(ILLEGAL_PARAMETER),
            Reject::BadHostName => Some(UNRECOGNIZED_NAME),
        }
    }
}

/// A fatal alert record with `description`, to write before closing.
pub fn alert(description: u8) -> [u8; 7] {
    // Record version 0x0303: what TLS 1.2 and 1.3 (§5.1) both send.
    [ALERT, 3, 3, 0, 2, 2, description]
}

/// A host name from the `server_name` extension, held inline.
#[derive(Clone, Copy)]
pub struct HostName {
    len: u8,
    bytes: [u8; MAX_HOST_NAME],
}

impl HostName {
    /// The name, lowercase ASCII.
    pub fn as_str(&self) -> &str {
        let bytes = self.bytes.get(..usize::from(self.len)).unwrap_or_default();
        // Only ASCII is ever stored.
        std::str::from_utf8(bytes).unwrap_or_default()
    }
}

impl std::ops::Deref for HostName {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl PartialEq for HostName {
    fn eq(&self, other: &HostName) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for HostName {}

impl PartialEq<str> for HostName {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for HostName {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl fmt::Debug for HostName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for HostName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The ALPN protocol list, read in place (it may span records).
#[derive(Clone, Copy)]
pub struct Alpn<'a> {
    list: Cursor<'a>,
}

impl<'a> Alpn<'a> {
    /// The protocols in the client's order of preference.
    pub fn protocols(&self) -> Protocols<'a> {
        Protocols { list: self.list }
    }

    /// Whether the client offers `protocol` (`b"h2"`, say).
    pub fn contains(&self, protocol: &[u8]) -> bool {
        self.protocols().any(|p| p.as_bytes() == protocol)
    }
}

impl PartialEq for Alpn<'_> {
    fn eq(&self, other: &Alpn<'_>) -> bool {
        self.protocols().eq(other.protocols())
    }
}

impl Eq for Alpn<'_> {}

impl fmt::Debug for Alpn<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.protocols()).finish()
    }
}

/// The protocols of an [`Alpn`] list, each copied out (a name may span
/// records).
pub struct Protocols<'a> {
    list: Cursor<'a>,
}

impl fmt::Debug for Protocols<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Protocols")
    }
}

impl Iterator for Protocols<'_> {
    type Item = Protocol;
    fn next(&mut self) -> Option<Protocol> {
        // The list was checked whole when the hello was read.
        let len = self.list.u8()?;
        let mut protocol = Protocol {
            len,
            bytes: [0; 255],
        };
        self.list
            .copy(protocol.bytes.get_mut(..usize::from(len))?)?;
        Some(protocol)
    }
}

/// One ALPN protocol name (1 to 255 bytes).
#[derive(Clone, Copy)]
pub struct Protocol {
    len: u8,
    bytes: [u8; 255],
}

impl Protocol {
    /// The name's bytes (`h2`, `http/1.1`, ...).
    pub fn as_bytes(&self) -> &[u8] {
        self.bytes.get(..usize::from(self.len)).unwrap_or_default()
    }
}

impl PartialEq for Protocol {
    fn eq(&self, other: &Protocol) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl Eq for Protocol {}

impl fmt::Debug for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "\"{}\"", self.as_bytes().escape_ascii())
    }
}

/// Reads `buf`, a new TLS connection's first bytes: a whole ClientHello,
/// more bytes needed, or a reason to refuse.
pub fn peek(buf: &[u8]) -> Peek<'_> {
    match frame(buf) {
        Ok(Framed::Short(more)) => Peek::NeedMore(more),
        Ok(Framed::Whole { body, len }) => match read_body(body) {
            Ok((sni, alpn)) => Peek::Hello(Hello { sni, alpn, len }),
            Err(reject) => Peek::Invalid(reject),
        },
        Err(reject) => Peek::Invalid(reject),
    }
}

enum Framed<'a> {
    /// Need this many more bytes at least.
    Short(usize),
    /// The hello's body, whole, and where its last record ends.
    Whole { body: Cursor<'a>, len: usize },
}

/// Where the hello can end at the earliest when `need` handshake bytes are
/// missing from the record at `start` on, whose fragment length is `len`
/// if its header is in: the record's end, or another record after it.
fn earliest_end(start: usize, len: Option<usize>, need: usize) -> usize {
    let end = start + RECORD_HEADER;
    match len {
        Some(len) if len >= need => end + len,
        Some(len) => end + len + RECORD_HEADER + (need - len),
        None => end + need,
    }
}

/// Walks the records up to the hello's end. Every check reads only bytes
/// before the point the walk has reached, in input order, so a prefix
/// stops with `Short` or with the same reason as the whole input.
fn frame(buf: &[u8]) -> Result<Framed<'_>, Reject> {
    match *buf {
        [] => return Ok(Framed::Short(RECORD_HEADER + MIN_HELLO)),
        [HANDSHAKE, ..] => {}
        // change_cipher_spec, alert, application_data, heartbeat.
        [20..=24, ..] => return Err(Reject::NotHandshake),
        // SSL 2.0: a two-byte length with the high bit set, then the type.
        [0x80..=0xff, _, CLIENT_HELLO, ..] => return Err(Reject::Sslv2),
        [0x80..=0xff] | [0x80..=0xff, _] => return Ok(Framed::Short(3 - buf.len())),
        _ => return Err(Reject::NotTls),
    }
    let mut start = 0;
    // Handshake bytes in the records before `start`.
    let mut seen = 0;
    let mut header = [0u8; HANDSHAKE_HEADER];
    // The hello's length with its header, once the header is in.
    let mut total: Option<usize> = None;
    // Where the body starts: its index and the bytes of its record from it.
    let mut body_at = (0, 0);
    loop {
        // At least 1: the walk stops where the hello is whole.
        let mut need = match total {
            Some(total) => total - seen,
            None => MIN_HELLO - seen,
        };
        let rest = buf.get(start..).unwrap_or_default();
        if let Some(&kind) = rest.first() {
            if kind != HANDSHAKE {
                return Err(Reject::NotHandshake);
            }
        }
        if earliest_end(start, None, need) > MAX_HELLO_BYTES {
            return Err(Reject::TooLarge);
        }
        if let Some(&major) = rest.get(1) {
            if major != 3 {
                return Err(Reject::Version);
            }
        }
        let Some(&[_, _, _, hi, lo]) = rest.get(..RECORD_HEADER) else {
            return Ok(Framed::Short(earliest_end(start, None, need) - buf.len()));
        };
        let len = usize::from(u16::from_be_bytes([hi, lo]));
        if len == 0 {
            return Err(Reject::BadLength);
        }
        if len > MAX_FRAGMENT {
            return Err(Reject::RecordOverflow);
        }
        if total.is_some() && len > need {
            return Err(Reject::Unaligned);
        }
        if earliest_end(start, Some(len), need) > MAX_HELLO_BYTES {
            return Err(Reject::TooLarge);
        }
        let first = start + RECORD_HEADER;
        let fragment = buf.get(first..).unwrap_or_default();
        let fragment = fragment.get(..len).unwrap_or(fragment);
        if total.is_none() {
            // The handshake header may itself be split over records.
            let take = (HANDSHAKE_HEADER - seen).min(fragment.len());
            for (i, &byte) in fragment.iter().take(take).enumerate() {
                if let Some(slot) = header.get_mut(seen + i) {
                    *slot = byte;
                }
            }
            if seen + take > 0 && header[0] != CLIENT_HELLO {
                return Err(Reject::NotClientHello);
            }
            if seen + take == HANDSHAKE_HEADER {
                let [_, a, b, c] = header;
                let body_len = u32::from_be_bytes([0, a, b, c]) as usize;
                let hello = HANDSHAKE_HEADER + body_len;
                total = Some(hello);
                body_at = (first + take, len - take);
                need = hello - seen;
                if len > need {
                    return Err(Reject::Unaligned);
                }
                if earliest_end(start, Some(len), need) > MAX_HELLO_BYTES {
                    return Err(Reject::TooLarge);
                }
            }
        }
        if fragment.len() < len {
            return Ok(Framed::Short(
                earliest_end(start, Some(len), need) - buf.len(),
            ));
        }
        seen += len;
        start = first + len;
        if let Some(total) = total.filter(|&total| total == seen) {
            let (at, in_record) = body_at;
            let body = Cursor {
                buf,
                at,
                in_record,
                left: total - HANDSHAKE_HEADER,
            };
            return Ok(Framed::Whole { body, len: start });
        }
    }
}

/// The ClientHello's body (RFC 8446 §4.1.2; TLS 1.2's is the same shape,
/// with extensions optional): the SNI and ALPN extensions, the rest only
/// checked for lengths.
fn read_body(mut body: Cursor<'_>) -> Result<(Option<HostName>, Option<Alpn<'_>>), Reject> {
    let bad = Reject::BadLength;
    // legacy_version and random: the version is rustls's or the backend's
    // to judge (rustls reads a hello of any).
    body.skip(2 + 32).ok_or(bad)?;
    let session_id = body.u8().ok_or(bad)?;
    if session_id > 32 {
        return Err(bad);
    }
    body.skip(usize::from(session_id)).ok_or(bad)?;
    let suites = body.u16().ok_or(bad)?;
    if suites == 0 || suites % 2 != 0 {
        return Err(bad);
    }
    body.skip(usize::from(suites)).ok_or(bad)?;
    let methods = body.u8().ok_or(bad)?;
    if methods == 0 {
        return Err(bad);
    }
    body.skip(usize::from(methods)).ok_or(bad)?;
    if body.is_empty() {
        return Ok((None, None));
    }
    let len = body.u16().ok_or(bad)?;
    let mut extensions = body.sub(usize::from(len)).ok_or(bad)?;
    if !body.is_empty() {
        return Err(bad);
    }
    let (mut sni, mut alpn) = (None, None);
    let (mut seen_sni, mut seen_alpn) = (false, false);
    while !extensions.is_empty() {
        let kind = extensions.u16().ok_or(bad)?;
        let len = extensions.u16().ok_or(bad)?;
        let data = extensions.sub(usize::from(len)).ok_or(bad)?;
        // Only the two extensions routing reads are checked for duplicates:
        // the rest are for rustls or the backend to judge.
        match kind {
            EXT_SERVER_NAME if seen_sni => return Err(Reject::DuplicateExtension),
            EXT_SERVER_NAME => {
                seen_sni = true;
                sni = server_name(data)?;
            }
            EXT_ALPN if seen_alpn => return Err(Reject::DuplicateExtension),
            EXT_ALPN => {
                seen_alpn = true;
                alpn = Some(protocol_list(data)?);
            }
            _ => {}
        }
    }
    Ok((sni, alpn))
}

/// RFC 6066 §3's `ServerNameList`: at most one `host_name`; other name
/// types (none is defined) are skipped as the same `opaque<1..2^16-1>`.
fn server_name(mut data: Cursor<'_>) -> Result<Option<HostName>, Reject> {
    let bad = Reject::BadSni;
    let len = data.u16().ok_or(bad)?;
    let mut list = data.sub(usize::from(len)).ok_or(bad)?;
    if !data.is_empty() || list.is_empty() {
        return Err(bad);
    }
    let mut found = None;
    while !list.is_empty() {
        let kind = list.u8().ok_or(bad)?;
        let len = list.u16().ok_or(bad)?;
        let name = list.sub(usize::from(len)).ok_or(bad)?;
        if kind != NAME_TYPE_HOST {
            continue;
        }
        if found.is_some() {
            return Err(bad);
        }
        found = Some(host_name(name)?);
    }
    Ok(found.flatten())
}

/// The host name in `name`, lowercased; `None` for an IP address.
fn host_name(mut name: Cursor<'_>) -> Result<Option<HostName>, Reject> {
    // One byte more than a name for a trailing dot.
    let mut raw = [0u8; MAX_HOST_NAME + 1];
    let raw = raw.get_mut(..name.left).ok_or(Reject::BadHostName)?;
    name.copy(raw).ok_or(Reject::BadSni)?;
    let text = raw.strip_suffix(b".").unwrap_or(raw);
    if is_ip_address(text) {
        return Ok(None);
    }
    if !is_dns_name(text) {
        return Err(Reject::BadHostName);
    }
    let mut host = HostName {
        len: 0,
        bytes: [0; MAX_HOST_NAME],
    };
    let slot = host
        .bytes
        .get_mut(..text.len())
        .ok_or(Reject::BadHostName)?;
    slot.copy_from_slice(text);
    slot.make_ascii_lowercase();
    host.len = u8::try_from(text.len()).map_err(|_| Reject::BadHostName)?;
    Ok(Some(host))
}

fn is_ip_address(text: &[u8]) -> bool {
    std::str::from_utf8(text).is_ok_and(|text| text.parse::<IpAddr>().is_ok())
}

/// Letters, digits, `-` (not first or last in a label) and `_` (seen in
/// the wild, and accepted by rustls), labels of 1 to 63, 253 in all.
fn is_dns_name(text: &[u8]) -> bool {
    (1..=MAX_HOST_NAME).contains(&text.len())
        && text.split(|&b| b == b'.').all(|label| {
            (1..=63).contains(&label.len())
                && !label.starts_with(b"-")
                && !label.ends_with(b"-")
                && label
                    .iter()
                    .all(|&b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

/// RFC 7301 §3.1's `ProtocolNameList`, checked whole so that iterating it
/// later cannot fail.
fn protocol_list(mut data: Cursor<'_>) -> Result<Alpn<'_>, Reject> {
    let bad = Reject::BadAlpn;
    let len = data.u16().ok_or(bad)?;
    let list = data.sub(usize::from(len)).ok_or(bad)?;
    if !data.is_empty() || list.is_empty() {
        return Err(bad);
    }
    let mut walk = list;
    while !walk.is_empty() {
        let len = walk.u8().ok_or(bad)?;
        if len == 0 {
            return Err(bad);
        }
        walk.skip(usize::from(len)).ok_or(bad)?;
    }
    Ok(Alpn { list })
}

/// Reads handshake bytes across record boundaries, stepping over the
/// headers, within a vector of `left` bytes. Only made over records
/// [`frame`] walked whole, so running out of `buf` cannot happen; it is
/// still an error rather than a panic.
#[derive(Clone, Copy)]
struct Cursor<'a> {
    buf: &'a [u8],
    /// The next byte, or the next record's header once `in_record` is 0.
    at: usize,
    /// Fragment bytes of the current record from `at` on.
    in_record: usize,
    /// Bytes left in this cursor's vector.
    left: usize,
}

impl<'a> Cursor<'a> {
    fn is_empty(&self) -> bool {
        self.left == 0
    }

    /// Hands the next `n` bytes to `piece`, one slice per record they lie in.
    fn take(&mut self, mut n: usize, mut piece: impl FnMut(&'a [u8])) -> Option<()> {
        self.left = self.left.checked_sub(n)?;
        while n > 0 {
            while self.in_record == 0 {
                let header = self.buf.get(self.at..)?.get(..RECORD_HEADER)?;
                let &[_, _, _, hi, lo] = header else {
                    return None;
                };
                self.in_record = usize::from(u16::from_be_bytes([hi, lo]));
                self.at += RECORD_HEADER;
            }
            let k = n.min(self.in_record);
            piece(self.buf.get(self.at..)?.get(..k)?);
            self.at += k;
            self.in_record -= k;
            n -= k;
        }
        Some(())
    }

    fn skip(&mut self, n: usize) -> Option<()> {
        self.take(n, |_| {})
    }

    fn copy(&mut self, out: &mut [u8]) -> Option<()> {
        let mut filled = 0;
        let mut complete = true;
        self.take(out.len(), |piece| {
            match out.get_mut(filled..filled + piece.len()) {
                Some(slot) => slot.copy_from_slice(piece),
                None => complete = false,
            }
            filled += piece.len();
        })?;
        complete.then_some(())
    }

    fn u8(&mut self) -> Option<u8> {
        let mut out = [0; 1];
        self.copy(&mut out)?;
        Some(out[0])
    }

    fn u16(&mut self) -> Option<u16> {
        let mut out = [0; 2];
        self.copy(&mut out)?;
        Some(u16::from_be_bytes(out))
    }

    /// The next `n` bytes as a cursor of their own, stepping over them here.
    fn sub(&mut self, n: usize) -> Option<Cursor<'a>> {
        let sub = Cursor { left: n, ..*self };
        self.skip(n)?;
        Some(sub)
    }
}

#[cfg(test)]
mod tests;
