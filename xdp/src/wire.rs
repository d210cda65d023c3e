//! Wire formats both XDP paths read: header layouts as `#[repr(C)]` byte
//! structs (alignment 1, valid for any bit pattern, multi-byte fields in
//! network order) and the protocol numbers they are checked against.

pub const ETH_HLEN: usize = 14;
pub const ETH_P_IPV4: u16 = 0x0800;
pub const ETH_P_IPV6: u16 = 0x86dd;
pub const ETH_P_8021Q: u16 = 0x8100;
pub const ETH_P_8021AD: u16 = 0x88a8;
pub const IPV6_HLEN: usize = 40;
pub const IPPROTO_ICMP: u8 = 1;
pub const IPPROTO_TCP: u8 = 6;
pub const IPPROTO_UDP: u8 = 17;
pub const TCP_FIN: u8 = 0x01;
pub const TCP_SYN: u8 = 0x02;
pub const TCP_RST: u8 = 0x04;
pub const TCP_ACK: u8 = 0x10;

/// Ethernet header.
#[repr(C)]
pub struct EthHdr {
    pub dst: [u8; 6],
    pub src: [u8; 6],
    pub proto: [u8; 2],
}

/// 802.1Q / 802.1ad tag (after the outer EtherType).
#[repr(C)]
pub struct VlanTag {
    pub _tci: [u8; 2],
    pub proto: [u8; 2],
}

/// IPv4 header without options.
#[repr(C)]
pub struct Ipv4Hdr {
    pub version_ihl: u8,
    pub tos: u8,
    pub tot_len: [u8; 2],
    pub _id: [u8; 2],
    pub frag: [u8; 2],
    pub _ttl: u8,
    pub proto: u8,
    pub check: [u8; 2],
    pub src: [u8; 4],
    pub dst: [u8; 4],
}

/// IPv6 header.
#[repr(C)]
pub struct Ipv6Hdr {
    pub version: u8,
    pub _flow: [u8; 3],
    pub _payload_len: [u8; 2],
    pub next: u8,
    pub _hop_limit: u8,
    pub src: [u8; 16],
    pub dst: [u8; 16],
}

/// TCP header without options.
#[repr(C)]
pub struct TcpHdr {
    pub sport: [u8; 2],
    pub dport: [u8; 2],
    pub _seq: [u8; 4],
    pub _ack: [u8; 4],
    pub data_off: u8,
    pub flags: u8,
    pub _window: [u8; 2],
    pub check: [u8; 2],
    pub _urg: [u8; 2],
}

/// UDP header.
#[repr(C)]
pub struct UdpHdr {
    pub sport: [u8; 2],
    pub dport: [u8; 2],
    pub _len: [u8; 2],
    pub _check: [u8; 2],
}
