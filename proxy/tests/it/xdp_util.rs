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
