//! Helpers shared by the `xdp_*` tests: privilege checks with printed skip
//! reasons, network namespaces and veth pairs that are deleted even when a
//! test fails, and running code inside a namespace.
#![allow(dead_code)]

use std::fs::File;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};

/// Effective capabilities of this process (from /proc/self/status).
fn cap_eff() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("CapEff:"))
                .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        })
        .unwrap_or(0)
}

/// Why this process cannot run the privileged eBPF tests, if it cannot.
pub fn missing_privilege() -> Option<String> {
    const CAP_NET_ADMIN: u64 = 12;
    const CAP_SYS_ADMIN: u64 = 21;
    const CAP_BPF: u64 = 39;
    let caps = cap_eff();
    let has = |c: u64| caps & (1 << c) != 0;
    if !has(CAP_NET_ADMIN) || !(has(CAP_BPF) || has(CAP_SYS_ADMIN)) {
        return Some(format!(
            "needs root (CAP_BPF and CAP_NET_ADMIN); effective capabilities are {caps:#x}"
        ));
    }
    if rauta_proxy::xdp::object::OBJECT.is_empty() {
        return Some("rauta was built without its eBPF object (AYA_BUILD_SKIP)".into());
    }
    None
}

/// Prints why `test` is skipped and returns true, when it must be.
pub fn skip(test: &str) -> bool {
    match missing_privilege() {
        Some(why) => {
            eprintln!("SKIPPED {test}: {why}");
            true
        }
        None => false,
    }
}

/// Whether an executable named `cmd` is on PATH (or in /sbin, /usr/sbin).
pub fn have(cmd: &str) -> bool {
    let path = std::env::var("PATH").unwrap_or_default();
    let found = path
        .split(':')
        .chain(["/sbin", "/usr/sbin"])
        .any(|dir| std::path::Path::new(dir).join(cmd).is_file());
    found
}

/// Runs a command, panicking with its output when it fails.
pub fn run(cmd: &str, args: &[&str]) -> Output {
    let out = Command::new(cmd)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd}: {e}"));
    assert!(
        out.status.success(),
        "{cmd} {} failed: {}{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// A short name unique to this process and call (interface names are at
/// most 15 bytes).
pub fn unique(prefix: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!("{prefix}{}{n}", std::process::id() % 100_000)
}

/// A network namespace, deleted on drop (with every interface in it).
#[derive(Debug)]
pub struct Netns {
    name: String,
}

impl Netns {
    /// `ip netns add NAME` with loopback up.
    pub fn new(prefix: &str) -> Netns {
        let name = unique(prefix);
        run("ip", &["netns", "add", &name]);
        let ns = Netns { name };
        ns.exec(&["ip", "link", "set", "lo", "up"]);
        ns
    }

    /// The namespace's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Runs a command inside the namespace (`ip netns exec`).
    pub fn exec(&self, args: &[&str]) -> Output {
        let mut all = vec!["netns", "exec", &self.name];
        all.extend_from_slice(args);
        run("ip", &all)
    }

    /// Runs `f` on a thread that has entered this namespace (sockets it
    /// creates, and threads it spawns, live there).
    pub fn enter<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> T {
        enter(&self.name, f)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .output();
    }
}

/// The value of the sample `name` whose label set contains every `k="v"`
/// of `labels` (summed when several match; 0 when none).
pub fn metric(body: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    body.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.rsplit_once(' '))
        .filter(|(series, _)| {
            let (n, rest) = series.split_once('{').unwrap_or((series, ""));
            n == name
                && labels
                    .iter()
                    .all(|(k, v)| rest.contains(&format!("{k}=\"{v}\"")))
        })
        .filter_map(|(_, v)| v.parse::<f64>().ok())
        .sum()
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

/// An Ingress routing every path of every host to `service` (port `http`),
/// with our IngressClass.
pub fn catch_all(ns: &str, service: &str) -> String {
    let class = rauta_testkit::ingress_class("rauta", "rauta.io/ingress-controller", false);
    let ingress = rauta_testkit::ingress(
        ns,
        "all",
        Some("rauta"),
        &[],
        &format!(
            "- http:\n    paths:\n    - path: /\n      pathType: Prefix\n      backend:\n        service:\n          name: {service}\n          port:\n            name: http\n"
        ),
    );
    format!("{class}\n---\n{ingress}")
}

/// A `rauta serve` started inside a network namespace with `ip netns exec`
/// (so it can listen on the namespace's interfaces); killed on drop.
pub struct NsRauta {
    child: std::process::Child,
    log: tempfile::NamedTempFile,
    ns: String,
    admin: std::net::SocketAddr,
}

impl NsRauta {
    /// Starts `rauta serve --manifests DIR --admin ADMIN ARGS...` in `ns`
    /// and returns at once.
    pub fn spawn(
        ns: &Netns,
        manifests: &std::path::Path,
        admin: std::net::SocketAddr,
        args: &[&str],
    ) -> NsRauta {
        let log = tempfile::Builder::new()
            .prefix("rauta-xdp-test-")
            .suffix(".log")
            .tempfile()
            .expect("log file");
        let out = log.as_file().try_clone().expect("log fd");
        let err = log.as_file().try_clone().expect("log fd");
        let child = Command::new("ip")
            .args([
                "netns",
                "exec",
                ns.name(),
                env!("CARGO_BIN_EXE_rauta"),
                "serve",
                "--manifests",
            ])
            .arg(manifests)
            .args(["--admin", &admin.to_string()])
            .args(args)
            .env(
                "RUST_LOG",
                std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into()),
            )
            .stdin(std::process::Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .expect("spawn ip netns exec rauta");
        NsRauta {
            child,
            log,
            ns: ns.name().to_string(),
            admin,
        }
    }

    /// Everything rauta printed so far.
    pub fn log(&self) -> String {
        std::fs::read(self.log.path())
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    }

    /// `GET path` on the admin port, from inside the namespace.
    pub fn admin_get(&self, path: &str) -> std::io::Result<rauta_testkit::Response> {
        let (admin, path) = (self.admin, path.to_string());
        enter(&self.ns, move || rauta_testkit::get(admin, "admin", &path))
    }

    /// Waits until `/readyz` answers 200; panics with the log otherwise.
    pub fn wait_ready(&mut self) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("rauta exited early with {status}; log:\n{}", self.log());
            }
            if self.admin_get("/readyz").is_ok_and(|r| r.status == 200) {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "rauta not ready in 20 s; log:\n{}",
                self.log()
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }

    /// Waits up to `timeout` for the process to exit.
    pub fn wait_exit(&mut self, timeout: std::time::Duration) -> Option<std::process::ExitStatus> {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            if std::time::Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(std::time::Duration::from_millis(25));
        }
    }

    /// Sends SIGTERM.
    pub fn terminate(&self) {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
    }
}

impl Drop for NsRauta {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        if std::thread::panicking() {
            eprintln!(
                "--- rauta log ({}) ---\n{}",
                self.log.path().display(),
                self.log()
            );
        }
    }
}

/// Runs `f` on a thread inside the namespace named `ns`.
pub fn enter<T: Send + 'static>(ns: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let path = format!("/var/run/netns/{ns}");
    std::thread::spawn(move || {
        let file = File::open(&path).unwrap_or_else(|e| panic!("open {path}: {e}"));
        nix::sched::setns(file, nix::sched::CloneFlags::CLONE_NEWNET)
            .unwrap_or_else(|e| panic!("setns {path}: {e}"));
        f()
    })
    .join()
    .unwrap_or_else(|e| std::panic::resume_unwind(e))
}

/// Something that must be dropped inside a namespace (e.g. a test backend
/// whose stop connects to its own listener).
pub struct InNs<T: Send + 'static> {
    value: Option<T>,
    ns: String,
}

impl<T: Send + 'static> InNs<T> {
    /// Creates the value inside `ns`.
    pub fn new(ns: &Netns, make: impl FnOnce() -> T + Send + 'static) -> InNs<T> {
        InNs {
            value: Some(enter(ns.name(), make)),
            ns: ns.name().to_string(),
        }
    }

    /// The value.
    pub fn get(&self) -> &T {
        self.value.as_ref().expect("present until drop")
    }
}

impl<T: Send + 'static> Drop for InNs<T> {
    fn drop(&mut self) {
        if let Some(v) = self.value.take() {
            let path = format!("/var/run/netns/{}", self.ns);
            let _ = std::thread::spawn(move || {
                if let Ok(file) = File::open(&path) {
                    let _ = nix::sched::setns(file, nix::sched::CloneFlags::CLONE_NEWNET);
                }
                drop(v);
            })
            .join();
        }
    }
}

/// A veth pair between two namespaces, with addresses, link up, and
/// transmit checksum offload off on the client side (locally generated
/// traffic over veth with XDP otherwise carries partial checksums).
pub struct VethPair {
    /// Interface in the node namespace.
    pub node_if: String,
    /// Interface in the client namespace.
    pub client_if: String,
}

impl VethPair {
    /// Creates the pair (deleted with the namespaces).
    pub fn new(
        node: &Netns,
        node_addrs: &[&str],
        client: &Netns,
        client_addrs: &[&str],
    ) -> VethPair {
        let base = unique("rxv");
        let (node_if, client_if) = (format!("{base}n"), format!("{base}c"));
        run(
            "ip",
            &[
                "link",
                "add",
                &node_if,
                "netns",
                node.name(),
                "type",
                "veth",
                "peer",
                "name",
                &client_if,
                "netns",
                client.name(),
            ],
        );
        for (ns, ifname, addrs) in [
            (node, &node_if, node_addrs),
            (client, &client_if, client_addrs),
        ] {
            for a in addrs {
                ns.exec(&["ip", "addr", "add", a, "dev", ifname]);
            }
            ns.exec(&["ip", "link", "set", ifname, "up"]);
        }
        client.exec(&["ethtool", "-K", &client_if, "tx", "off"]);
        VethPair { node_if, client_if }
    }
}

/// Why the namespace tests cannot run here, if they cannot.
pub fn missing_netns_tools() -> Option<String> {
    if let Some(why) = missing_privilege() {
        return Some(why);
    }
    for tool in ["ip", "ethtool"] {
        if !have(tool) {
            return Some(format!(
                "`{tool}` is not installed (scripts/setup-ebpf.sh installs iproute2 and ethtool)"
            ));
        }
    }
    None
}
