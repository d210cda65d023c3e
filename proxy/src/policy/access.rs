//! Client IP allow and deny lists (`whitelist-source-range`,
//! `denylist-source-range`): deny first, then allow; with an allow list,
//! everyone else is denied.

use rauta_shared::policy::{AccessList, Cidr};
use std::net::IpAddr;

/// One network as a masked 128-bit address (IPv4 as IPv4-mapped IPv6).
#[derive(Debug, Clone, Copy)]
struct Net {
    addr: u128,
    mask: u128,
}

impl Net {
    fn new(cidr: &Cidr) -> Net {
        let (addr, prefix) = match cidr.addr() {
            IpAddr::V4(v4) => (v4.to_ipv6_mapped(), 96 + u32::from(cidr.prefix_len())),
            IpAddr::V6(v6) => (v6, u32::from(cidr.prefix_len())),
        };
        let mask = u128::MAX.checked_shl(128 - prefix).unwrap_or(0);
        Net {
            addr: u128::from(addr) & mask,
            mask,
        }
    }

    fn contains(&self, ip: u128) -> bool {
        ip & self.mask == self.addr
    }
}

/// The client IP as the 128-bit key the lists compare.
pub fn ip_key(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v4) => u128::from(v4.to_ipv6_mapped()),
        IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map_or(u128::from(v6), |v4| u128::from(v4.to_ipv6_mapped())),
    }
}

/// A set of networks; lists are short, so a scan beats a trie.
#[derive(Debug, Clone, Default)]
pub struct NetSet(Box<[Net]>);

impl NetSet {
    /// The networks of `cidrs`.
    pub fn new(cidrs: &[Cidr]) -> NetSet {
        NetSet(cidrs.iter().map(Net::new).collect())
    }

    /// True when a network of the set holds `ip` (an [`ip_key`]).
    pub fn contains(&self, ip: u128) -> bool {
        self.0.iter().any(|n| n.contains(ip))
    }
}

/// A compiled [`AccessList`].
#[derive(Debug)]
pub struct Access {
    deny: NetSet,
    allow: NetSet,
    allow_only: bool,
}

impl Access {
    /// Compiles the lists.
    pub fn compile(list: &AccessList) -> Access {
        Access {
            deny: NetSet::new(&list.deny),
            allow: NetSet::new(&list.allow),
            allow_only: !list.allow.is_empty(),
        }
    }

    /// Whether a client with this [`ip_key`] is served.
    pub fn permits(&self, ip: u128) -> bool {
        !self.deny.contains(ip) && (!self.allow_only || self.allow.contains(ip))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cidr(s: &str) -> Cidr {
        s.parse().expect("cidr")
    }

    #[test]
    fn deny_beats_allow_and_allow_lists_close_the_rest() {
        let access = Access::compile(&AccessList {
            deny: vec![cidr("10.0.0.5/32")],
            allow: vec![cidr("10.0.0.0/24"), cidr("2001:db8::/32")],
        });
        let key = |s: &str| ip_key(s.parse().expect("ip"));
        assert!(access.permits(key("10.0.0.4")));
        assert!(!access.permits(key("10.0.0.5")), "deny first");
        assert!(!access.permits(key("10.0.1.1")), "not on the allow list");
        assert!(access.permits(key("2001:db8::1")));
        assert!(access.permits(key("::ffff:10.0.0.9")), "v4-mapped is v4");
        let open = Access::compile(&AccessList {
            deny: vec![cidr("0.0.0.0/0")],
            allow: vec![],
        });
        assert!(!open.permits(key("192.0.2.1")));
        assert!(
            open.permits(key("2001:db8::1")),
            "a v4 deny-all leaves v6 alone"
        );
    }
}
