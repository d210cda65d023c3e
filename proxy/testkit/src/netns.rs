//! Network namespaces and veth pairs that are deleted even when a test
//! fails, and running code inside a namespace (needs
//! [`Need::Netns`](crate::Need::Netns)).

use std::fs::File;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};

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
    /// `ip netns add NAME` (a unique name starting with `prefix`) with
    /// loopback up.
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
#[derive(Debug)]
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
/// traffic over veth with XDP otherwise carries partial checksums; needs
/// `ethtool`).
#[derive(Debug)]
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
