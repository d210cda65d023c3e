//! Source prefixes for the deny-list (`--xdp-deny 203.0.113.0/24`): the
//! shared [`Cidr`] and its key in the kernel's LPM trie.

use rauta_shared::ebpf::{v4_mapped, DenyAddr};
pub use rauta_shared::policy::Cidr;
use std::net::IpAddr;

/// The LPM-trie key of a prefix: its length in bits over the IPv6 (or
/// IPv4-mapped) address.
pub fn trie_key(cidr: &Cidr) -> (u32, DenyAddr) {
    match cidr.addr() {
        IpAddr::V4(a) => (96 + u32::from(cidr.prefix_len()), v4_mapped(a.octets())),
        IpAddr::V6(a) => (u32::from(cidr.prefix_len()), a.octets()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trie_keys_map_v4_into_v6() {
        let key = |s: &str| trie_key(&s.parse::<Cidr>().expect("cidr"));
        assert_eq!(key("10.1.2.3/8"), (104, v4_mapped([10, 0, 0, 0])));
        assert_eq!(key("2001:db8::1/32").0, 32);
        assert_eq!(key("0.0.0.0/0").0, 96);
    }
}
