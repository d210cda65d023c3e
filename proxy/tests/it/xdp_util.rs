//! Helpers shared by the `xdp_*` tests (namespaces, veth pairs and the
//! launcher inside a namespace live in `rauta_testkit::netns` and
//! `rauta_testkit::Builder::in_netns`).

use rauta_testkit::Need;

/// rauta's eBPF object, which a build with `AYA_BUILD_SKIP` lacks.
pub fn ebpf_object() -> Need {
    Need::Built {
        what: "rauta's eBPF object (this build set AYA_BUILD_SKIP)",
        present: !rauta_proxy::xdp::object::OBJECT.is_empty(),
    }
}

/// The CPUs this process may run on.
pub fn allowed_cpus() -> Vec<usize> {
    let set =
        nix::sched::sched_getaffinity(nix::unistd::Pid::from_raw(0)).expect("sched_getaffinity");
    (0..nix::sched::CpuSet::count())
        .filter(|c| set.is_set(*c).unwrap_or(false))
        .collect()
}

/// Pins the calling thread to `cpu`.
pub fn pin_to(cpu: usize) {
    let mut set = nix::sched::CpuSet::new();
    set.set(cpu).expect("cpu in range");
    nix::sched::sched_setaffinity(nix::unistd::Pid::from_raw(0), &set).expect("sched_setaffinity");
}

/// An XDP program that is not rauta's (two instructions: `return
/// XDP_PASS`, named `foreign_pass`), attached to an interface by a
/// bpf_link; detached when dropped. Stands for another product's program.
#[derive(Debug)]
pub struct ForeignXdp {
    _link: std::os::fd::OwnedFd,
    _prog: std::os::fd::OwnedFd,
}

/// Loads and attaches a [`ForeignXdp`] to `iface` of the calling thread's
/// network namespace (the load by hand: aya only loads ELF objects).
pub fn foreign_xdp(iface: &str) -> ForeignXdp {
    use std::os::fd::{AsFd, FromRawFd, OwnedFd};
    const BPF_PROG_LOAD: libc::c_long = 5;
    const BPF_PROG_TYPE_XDP: u32 = 6;
    const BPF_XDP: u32 = 37;
    #[repr(C, align(8))]
    struct Attr([u32; 32]);
    #[allow(unsafe_code)]
    fn bpf(cmd: libc::c_long, attr: &mut Attr) -> OwnedFd {
        // SAFETY: `attr` is a zero-padded bpf_attr buffer for the whole
        // call, and its pointers point at live memory of the caller.
        let fd = unsafe {
            libc::syscall(
                libc::SYS_bpf,
                cmd,
                attr as *mut Attr,
                std::mem::size_of::<Attr>(),
            )
        };
        assert!(fd >= 0, "bpf({cmd}): {}", std::io::Error::last_os_error());
        // SAFETY: a new descriptor the kernel returned to this call alone.
        unsafe { OwnedFd::from_raw_fd(fd as i32) }
    }
    fn ptr<T>(p: *const T, attr: &mut Attr, at: usize) {
        let p = p as u64;
        attr.0[at] = p as u32;
        attr.0[at + 1] = (p >> 32) as u32;
    }
    // r0 = XDP_PASS; exit.
    let insns: [u8; 16] = [0xb7, 0, 0, 0, 2, 0, 0, 0, 0x95, 0, 0, 0, 0, 0, 0, 0];
    let license = c"GPL";
    let mut attr = Attr([0; 32]);
    attr.0[0] = BPF_PROG_TYPE_XDP;
    attr.0[1] = 2;
    ptr(insns.as_ptr(), &mut attr, 2);
    ptr(license.as_ptr(), &mut attr, 4);
    let name = b"foreign_pass";
    for (i, chunk) in name.chunks(4).enumerate() {
        let mut word = [0u8; 4];
        word[..chunk.len()].copy_from_slice(chunk);
        attr.0[12 + i] = u32::from_ne_bytes(word);
    }
    attr.0[17] = BPF_XDP;
    let prog = bpf(BPF_PROG_LOAD, &mut attr);
    let ifindex = nix::net::if_::if_nametoindex(iface).expect("interface");
    let link = rauta_proxy::xdp::handover::link_create(ifindex, prog.as_fd())
        .unwrap_or_else(|e| panic!("attach the foreign program: {e}"));
    ForeignXdp {
        _link: link,
        _prog: prog,
    }
}

/// Busy jiffies of the whole machine so far (user + nice + system + irq +
/// softirq from /proc/stat; idle, iowait and steal left out).
pub fn machine_busy_jiffies() -> u64 {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    stat.lines()
        .next()
        .map(|l| {
            l.split_whitespace()
                .skip(1)
                .filter_map(|v| v.parse::<u64>().ok())
                .enumerate()
                .filter(|(i, _)| [0, 1, 2, 5, 6].contains(i))
                .map(|(_, v)| v)
                .sum()
        })
        .unwrap_or(0)
}
