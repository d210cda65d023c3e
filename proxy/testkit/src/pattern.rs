//! The deterministic body pattern the backend's generated bodies
//! (`/bytes`, `/chunked`, `/close-delimited`) are made of, and the body
//! hash it reports; tests use these without a server.

/// The byte at offset `i` of every generated body (`/bytes`, `/chunked`,
/// `/close-delimited`): `(i % 251) as u8`.
pub fn pattern_byte(i: u64) -> u8 {
    (i % 251) as u8
}

/// The first `n` bytes of the deterministic body pattern (see [`pattern_byte`]).
pub fn pattern(n: usize) -> Vec<u8> {
    (0..n as u64).map(pattern_byte).collect()
}

/// Whether `data` is exactly the first `data.len()` bytes of [`pattern`].
pub fn is_pattern(data: &[u8]) -> bool {
    data.iter()
        .enumerate()
        .all(|(i, &b)| b == pattern_byte(i as u64))
}

/// XXH3-64 of `data`, as reported in `RecordedRequest::body_xxh3`.
pub fn xxh3(data: &[u8]) -> u64 {
    xxhash_rust::xxh3::xxh3_64(data)
}

/// XXH3-64 of `data` formatted as the `body-xxh3=` line does (16 lower-case hex digits).
pub fn xxh3_hex(data: &[u8]) -> String {
    format!("{:016x}", xxh3(data))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pattern_checks() {
        assert!(is_pattern(&pattern(1000)));
        assert!(!is_pattern(&[1]));
        assert_eq!(xxh3_hex(b"").len(), 16);
    }
}
