//! Request host normalisation: strip the port, lower-case, without allocating.

/// Longest host name accepted (RFC 1035 limits names to 253 characters).
pub const MAX_HOST_LEN: usize = 255;

/// Writes the host part of a `Host` header value (or an absolute-form URI
/// authority), lower-cased and without port or trailing dot, into `out`.
/// Returns `None` for a value that is not a plausible host.
pub fn normalize<'o>(value: &[u8], out: &'o mut [u8; MAX_HOST_LEN]) -> Option<&'o str> {
    let host = strip_port(trim(value))?;
    let host = host.strip_suffix(b".").unwrap_or(host);
    if host.len() > MAX_HOST_LEN {
        return None;
    }
    for (o, b) in out.iter_mut().zip(host) {
        if !is_host_byte(*b) {
            return None;
        }
        *o = b.to_ascii_lowercase();
    }
    std::str::from_utf8(&out[..host.len()]).ok()
}

fn trim(v: &[u8]) -> &[u8] {
    let start = v
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(v.len());
    let end = v
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(start, |e| e + 1);
    &v[start..end]
}

fn strip_port(v: &[u8]) -> Option<&[u8]> {
    if v.first() == Some(&b'[') {
        // IPv6 literal: keep the brackets, drop what follows `]`.
        let end = v.iter().position(|b| *b == b']')?;
        let rest = &v[end + 1..];
        if !rest.is_empty() && !is_port(rest) {
            return None;
        }
        return Some(&v[..=end]);
    }
    match v.iter().rposition(|b| *b == b':') {
        Some(i) if is_port(&v[i..]) => Some(&v[..i]),
        Some(_) => None,
        None => Some(v),
    }
}

fn is_port(v: &[u8]) -> bool {
    // `:` followed by digits; an empty port is allowed by RFC 3986.
    v.first() == Some(&b':') && v[1..].iter().all(u8::is_ascii_digit) && v.len() <= 6
}

fn is_host_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'[' | b']' | b':')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table() {
        let cases: &[(&[u8], Option<&str>)] = &[
            (b"Example.COM", Some("example.com")),
            (b"example.com:8080", Some("example.com")),
            (b"example.com:", Some("example.com")),
            (b"example.com.", Some("example.com")),
            (b" a.b ", Some("a.b")),
            (b"[::1]:80", Some("[::1]")),
            (b"10.0.0.1:80", Some("10.0.0.1")),
            (b"a b", None),
            (b"example.com:80x", None),
            (b"exa/mple", None),
            (b"", Some("")),
        ];
        for (input, want) in cases {
            let mut buf = [0u8; MAX_HOST_LEN];
            assert_eq!(
                normalize(input, &mut buf),
                *want,
                "{:?}",
                String::from_utf8_lossy(input)
            );
        }
    }

    #[test]
    fn too_long_is_rejected() {
        let long = vec![b'a'; 300];
        let mut buf = [0u8; MAX_HOST_LEN];
        assert_eq!(normalize(&long, &mut buf), None);
    }
}
