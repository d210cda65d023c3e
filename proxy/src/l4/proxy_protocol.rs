//! The PROXY protocol (HAProxy's, versions 1 and 2): read from a load
//! balancer in front of a TCP service, and written (version 1, as
//! ingress-nginx's nginx does) to the backend.

use std::io::Write as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// The version 2 signature.
const V2_SIGNATURE: [u8; 12] = *b"\r\n\r\n\0\r\nQUIT\n";
/// A version 1 line is at most 107 bytes, CRLF included.
const V1_MAX: usize = 107;
/// Largest version 2 header accepted: the addresses plus TLVs a load
/// balancer adds (AWS and GCP send well under this).
pub const V2_MAX: usize = 16 + 536;

/// What a header says about the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Addresses {
    /// The client, as the load balancer saw it.
    pub source: SocketAddr,
    /// The address the client connected to.
    pub destination: SocketAddr,
}

/// The result of reading the bytes received so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Header {
    /// Not enough bytes yet to decide.
    Incomplete,
    /// A header of `len` bytes; `None` for `UNKNOWN`/`LOCAL` (a health
    /// check: the connection's own addresses apply).
    Complete {
        /// Bytes of the header, to be consumed before the payload.
        len: usize,
        /// The addresses it carries.
        addresses: Option<Addresses>,
    },
    /// Not a PROXY protocol header, or a malformed one.
    Invalid(&'static str),
}

/// Reads a version 1 or 2 header at the start of `buf`.
pub fn parse(buf: &[u8]) -> Header {
    if buf.is_empty() {
        return Header::Incomplete;
    }
    if buf[0] == V2_SIGNATURE[0] {
        return parse_v2(buf);
    }
    if buf[0] == b'P' {
        return parse_v1(buf);
    }
    Header::Invalid("no PROXY protocol signature")
}

fn parse_v1(buf: &[u8]) -> Header {
    let prefix = b"PROXY ";
    let n = buf.len().min(prefix.len());
    if buf[..n] != prefix[..n] {
        return Header::Invalid("no PROXY protocol signature");
    }
    let Some(end) = buf.windows(2).take(V1_MAX - 1).position(|w| w == b"\r\n") else {
        return if buf.len() >= V1_MAX {
            Header::Invalid("version 1 line longer than 107 bytes")
        } else {
            Header::Incomplete
        };
    };
    let Ok(line) = std::str::from_utf8(&buf[prefix.len()..end]) else {
        return Header::Invalid("version 1 line is not text");
    };
    let len = end + 2;
    let mut fields = line.split(' ');
    let family = fields.next().unwrap_or("");
    if family == "UNKNOWN" {
        return Header::Complete {
            len,
            addresses: None,
        };
    }
    let parts: Vec<&str> = fields.collect();
    let [src, dst, sport, dport] = parts.as_slice() else {
        return Header::Invalid("version 1 line does not have four addresses and ports");
    };
    let ip = |s: &str| -> Option<IpAddr> {
        match family {
            "TCP4" => s.parse::<Ipv4Addr>().ok().map(IpAddr::V4),
            "TCP6" => s.parse::<Ipv6Addr>().ok().map(IpAddr::V6),
            _ => None,
        }
    };
    // Ports are decimal without a leading zero or sign.
    let port = |s: &str| -> Option<u16> {
        (!s.is_empty()
            && s.bytes().all(|b| b.is_ascii_digit())
            && (s == "0" || !s.starts_with('0')))
        .then(|| s.parse().ok())
        .flatten()
    };
    match (ip(src), ip(dst), port(sport), port(dport)) {
        (Some(s), Some(d), Some(sp), Some(dp)) => Header::Complete {
            len,
            addresses: Some(Addresses {
                source: SocketAddr::new(s, sp),
                destination: SocketAddr::new(d, dp),
            }),
        },
        _ => Header::Invalid("version 1 addresses or ports malformed"),
    }
}

fn parse_v2(buf: &[u8]) -> Header {
    let n = buf.len().min(V2_SIGNATURE.len());
    if buf[..n] != V2_SIGNATURE[..n] {
        return Header::Invalid("no PROXY protocol signature");
    }
    let Some(fixed) = buf.get(..16) else {
        return Header::Incomplete;
    };
    if fixed[12] >> 4 != 2 {
        return Header::Invalid("version 2 header with another version number");
    }
    let len = 16 + usize::from(u16::from_be_bytes([fixed[14], fixed[15]]));
    if len > V2_MAX {
        return Header::Invalid("version 2 header too large");
    }
    let Some(body) = buf.get(16..len) else {
        return Header::Incomplete;
    };
    match fixed[12] & 0x0f {
        // LOCAL: the balancer's own connection (a health check).
        0 => {
            return Header::Complete {
                len,
                addresses: None,
            }
        }
        1 => {}
        _ => return Header::Invalid("version 2 command is neither LOCAL nor PROXY"),
    }
    let addresses = match fixed[13] {
        // TCP or UDP over IPv4.
        0x11 | 0x12 => body.get(..12).map(|a| {
            let ip = |o: usize| IpAddr::V4(Ipv4Addr::new(a[o], a[o + 1], a[o + 2], a[o + 3]));
            let port = |o: usize| u16::from_be_bytes([a[o], a[o + 1]]);
            Addresses {
                source: SocketAddr::new(ip(0), port(8)),
                destination: SocketAddr::new(ip(4), port(10)),
            }
        }),
        // TCP or UDP over IPv6.
        0x21 | 0x22 => body.get(..36).map(|a| {
            let ip = |o: usize| {
                let mut b = [0u8; 16];
                b.copy_from_slice(&a[o..o + 16]);
                IpAddr::V6(Ipv6Addr::from(b))
            };
            let port = |o: usize| u16::from_be_bytes([a[o], a[o + 1]]);
            Addresses {
                source: SocketAddr::new(ip(0), port(32)),
                destination: SocketAddr::new(ip(16), port(34)),
            }
        }),
        // UNSPEC or UNIX sockets: the connection's own addresses apply.
        _ => {
            return Header::Complete {
                len,
                addresses: None,
            }
        }
    };
    match addresses {
        Some(a) => Header::Complete {
            len,
            addresses: Some(a),
        },
        None => Header::Invalid("version 2 address block shorter than its family needs"),
    }
}

/// Writes the version 1 line for a connection from `source` to
/// `destination` into `out`; returns its length. Mixed families (an IPv4
/// client on an IPv6 socket) are written as `TCP6` with mapped addresses.
pub fn write_v1(source: SocketAddr, destination: SocketAddr, out: &mut [u8; V1_MAX]) -> usize {
    let (src, dst) = (source.ip(), destination.ip());
    let mut cursor = std::io::Cursor::new(&mut out[..]);
    let written = match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => write!(
            cursor,
            "PROXY TCP4 {s} {d} {} {}\r\n",
            source.port(),
            destination.port()
        ),
        _ => write!(
            cursor,
            "PROXY TCP6 {} {} {} {}\r\n",
            v6(src),
            v6(dst),
            source.port(),
            destination.port()
        ),
    };
    // The longest line (two full IPv6 addresses) fits in 107 bytes.
    debug_assert!(written.is_ok());
    cursor.position() as usize
}

fn v6(ip: IpAddr) -> Ipv6Addr {
    match ip {
        IpAddr::V4(v4) => v4.to_ipv6_mapped(),
        IpAddr::V6(v6) => v6,
    }
}

/// The fuzz target's check: never a panic; a complete header lies within
/// the bytes, every shorter prefix of it is incomplete, and bytes after it
/// do not change the verdict.
pub fn check(data: &[u8]) {
    let Header::Complete { len, addresses } = parse(data) else {
        return;
    };
    assert!(len <= data.len());
    for end in 0..len {
        assert_eq!(parse(&data[..end]), Header::Incomplete, "prefix {end}");
    }
    assert_eq!(parse(&data[..len]), Header::Complete { len, addresses });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_seed_corpus_passes() {
        for seed in crate::fuzz_seeds("proxy_protocol") {
            check(&seed);
        }
    }

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn v1_lines_round_trip_and_every_prefix_is_incomplete() {
        for (src, dst) in [
            ("192.0.2.10:51000", "198.51.100.1:9000"),
            ("[2001:db8::1]:443", "[2001:db8::2]:9000"),
            ("192.0.2.10:1", "[2001:db8::2]:9000"),
        ] {
            let mut out = [0u8; V1_MAX];
            let n = write_v1(addr(src), addr(dst), &mut out);
            let mut wire = out[..n].to_vec();
            wire.extend_from_slice(b"payload");
            for end in 0..n {
                assert_eq!(
                    parse(&wire[..end]),
                    Header::Incomplete,
                    "{src} prefix {end}"
                );
            }
            let Header::Complete { len, addresses } = parse(&wire) else {
                panic!("{src}: {:?}", parse(&wire));
            };
            assert_eq!(len, n);
            let a = addresses.unwrap();
            let expect_src = match addr(src) {
                SocketAddr::V4(v4) if addr(dst).is_ipv6() => {
                    SocketAddr::new(IpAddr::V6(v4.ip().to_ipv6_mapped()), v4.port())
                }
                s => s,
            };
            assert_eq!(a.source, expect_src);
            assert_eq!(a.destination.port(), 9000);
        }
        let longest = "[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535";
        let mut out = [0u8; V1_MAX];
        let n = write_v1(addr(longest), addr(longest), &mut out);
        assert_eq!(&out[n - 14..n], b" 65535 65535\r\n");
    }

    #[test]
    fn v1_unknown_and_malformed_lines() {
        assert_eq!(
            parse(b"PROXY UNKNOWN\r\nGET"),
            Header::Complete {
                len: 15,
                addresses: None
            }
        );
        for bad in [
            &b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n"[..],
            b"PROXY TCP4 1.2.3.4 5.6.7.8 01 2\r\n",
            b"PROXY TCP4 1.2.3.4 ::1 1 2\r\n",
            b"PROXY TCP5 1.2.3.4 5.6.7.8 1 2\r\n",
            b"PROXY TCP4 1.2.3.4 5.6.7.8 1 70000\r\n",
            b"GET / HTTP/1.1\r\n",
        ] {
            assert!(matches!(parse(bad), Header::Invalid(_)), "{bad:?}");
        }
        let endless = [b'P', b'R', b'O', b'X', b'Y', b' '].repeat(20);
        assert!(matches!(parse(&endless), Header::Invalid(_)));
    }

    fn v2(command: u8, family: u8, body: &[u8]) -> Vec<u8> {
        let mut h = V2_SIGNATURE.to_vec();
        h.push(0x20 | command);
        h.push(family);
        h.extend_from_slice(&(body.len() as u16).to_be_bytes());
        h.extend_from_slice(body);
        h
    }

    #[test]
    fn v2_headers() {
        let mut body = vec![192, 0, 2, 10, 198, 51, 100, 1];
        body.extend_from_slice(&51000u16.to_be_bytes());
        body.extend_from_slice(&9000u16.to_be_bytes());
        // A TLV after the addresses (AWS's VPC endpoint id, say) is skipped.
        body.extend_from_slice(&[0xea, 0, 3, b'v', b'p', b'c']);
        let mut wire = v2(1, 0x11, &body);
        let header_len = wire.len();
        wire.extend_from_slice(b"\x16\x03\x01");
        for end in 0..header_len {
            assert_eq!(parse(&wire[..end]), Header::Incomplete, "prefix {end}");
        }
        assert_eq!(
            parse(&wire),
            Header::Complete {
                len: header_len,
                addresses: Some(Addresses {
                    source: addr("192.0.2.10:51000"),
                    destination: addr("198.51.100.1:9000"),
                })
            }
        );
        let mut body6 = [0u8; 36].to_vec();
        body6[15] = 1;
        body6[31] = 2;
        body6[32..34].copy_from_slice(&443u16.to_be_bytes());
        let Header::Complete { addresses, .. } = parse(&v2(1, 0x21, &body6)) else {
            panic!()
        };
        assert_eq!(addresses.unwrap().source, addr("[::1]:443"));
        assert_eq!(
            parse(&v2(0, 0x11, &body)),
            Header::Complete {
                len: 16 + body.len(),
                addresses: None
            }
        );
        assert!(matches!(
            parse(&v2(1, 0x11, &body[..8])),
            Header::Invalid(_)
        ));
        assert!(matches!(parse(&v2(2, 0x11, &body)), Header::Invalid(_)));
        let mut huge = V2_SIGNATURE.to_vec();
        huge.extend_from_slice(&[0x21, 0x11, 0xff, 0xff]);
        assert!(matches!(parse(&huge), Header::Invalid(_)));
    }
}
