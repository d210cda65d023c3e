//! End to end over a veth pair between two network namespaces the test
//! creates (and deletes, also on failure): `xdp_ingress` attached on the
//! node side, real HTTP requests through rauta from the client side, a
//! deny-listed source that gets nothing but the admin port, counters that
//! add up, and a clean detach on SIGTERM. Also: another XDP program on the
//! interface (EBUSY) under `--xdp auto` and `--xdp required`. Needs root,
//! `ip` and `ethtool` (`require!`: elsewhere a counted skip, under CI a
//! failure).

use crate::common::BIN;
use crate::xdp_util::ebpf_object;
use rauta_testkit::netns::{InNs, Netns, VethPair};
use rauta_testkit::{backend_for, catch_all, require, Backend, ManifestDir, Need, Rauta};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

const NODE_IP: &str = "10.77.0.1";
const CLIENT_IP: &str = "10.77.0.2";
const DENIED_IP: &str = "10.77.0.3";
const LISTEN_PORT: u16 = 8080;
const ADMIN_PORT: u16 = 9901;
const REQUESTS: usize = 10;

/// Two namespaces joined by a veth pair, a backend in the node namespace
/// and manifests routing everything to it. Field order is drop order:
/// the backend goes before the namespaces.
struct Net {
    backend: InNs<Backend>,
    dir: ManifestDir,
    veth: VethPair,
    client: Netns,
    node: Netns,
}

impl Net {
    fn new() -> Net {
        let node = Netns::new("rxn");
        let client = Netns::new("rxc");
        let veth = VethPair::new(
            &node,
            &[&format!("{NODE_IP}/24")],
            &client,
            &[&format!("{CLIENT_IP}/24"), &format!("{DENIED_IP}/24")],
        );
        let backend = InNs::new(&node, || Backend::start("veth-backend"));
        let dir = ManifestDir::new();
        dir.write("ingress.yaml", &catch_all("default", "veth"));
        dir.write(
            "backend.yaml",
            &backend_for("default", "veth", "http", &[backend.get()]),
        );
        Net {
            backend,
            dir,
            veth,
            client,
            node,
        }
    }

    /// rauta in the node namespace on 0.0.0.0:`port`, admin on 0.0.0.0:9901.
    fn rauta(&self, port: u16, args: &[&str]) -> rauta_testkit::Builder {
        Rauta::builder(BIN)
            .manifests(self.dir.path())
            .in_netns(
                self.node.name(),
                SocketAddr::from(([0, 0, 0, 0], port)),
                SocketAddr::from(([0, 0, 0, 0], ADMIN_PORT)),
            )
            .args(args)
    }

    /// `GET /` through rauta from `source` in the client namespace.
    fn get_from(&self, source: &str, port: u16) -> std::io::Result<u16> {
        let source: std::net::IpAddr = source.parse().expect("source address");
        let target = SocketAddr::new(NODE_IP.parse().expect("node address"), port);
        self.client.enter(move || {
            let stream = connect_from(source, target, Duration::from_secs(5))?;
            request(stream)
        })
    }

    /// Whether a TCP connection from `source` to the node's `port` opens
    /// within `wait`.
    fn connects_from(&self, source: &str, port: u16, wait: Duration) -> bool {
        let source: std::net::IpAddr = source.parse().expect("source address");
        let target = SocketAddr::new(NODE_IP.parse().expect("node address"), port);
        self.client
            .enter(move || connect_from(source, target, wait).is_ok())
    }

    fn link(&self) -> String {
        let out = self
            .node
            .exec(&["ip", "-d", "link", "show", "dev", &self.veth.node_if]);
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

fn connect_from(
    source: std::net::IpAddr,
    target: SocketAddr,
    wait: Duration,
) -> std::io::Result<TcpStream> {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)?;
    socket.bind(&SocketAddr::new(source, 0).into())?;
    socket.connect_timeout(&target.into(), wait)?;
    Ok(socket.into())
}

/// One `GET /` with `Connection: close`; the status code.
fn request(mut stream: TcpStream) -> std::io::Result<u16> {
    use std::io::{Read, Write};
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    stream.write_all(b"GET / HTTP/1.1\r\nHost: veth.test\r\nConnection: close\r\n\r\n")?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer)?;
    rauta_testkit::status_of(&answer)
        .ok_or_else(|| std::io::Error::other(format!("no status in {answer:?}")))
}

/// The id of the XDP program attached to the link, from `ip -d link`.
fn xdp_prog_id(link: &str) -> Option<u32> {
    let rest = &link[link.find("prog/xdp id ")? + "prog/xdp id ".len()..];
    rest.split_whitespace().next()?.parse().ok()
}

#[test]
fn xdp_veth_end_to_end() {
    require!(
        Need::EbpfPrivilege,
        ebpf_object(),
        Need::Netns,
        Need::tool("ethtool")
    );
    let net = Net::new();
    let deny = format!("{DENIED_IP}/32");
    let mut rauta = net
        .rauta(
            LISTEN_PORT,
            &[
                "--xdp",
                "required",
                "--xdp-iface",
                &net.veth.node_if,
                "--xdp-deny",
                &deny,
            ],
        )
        .start();
    let link = net.link();
    let prog = xdp_prog_id(&link).unwrap_or_else(|| panic!("no XDP program on the link:\n{link}"));

    // Real requests through rauta from the allowed source.
    for i in 0..REQUESTS {
        let status = net
            .get_from(CLIENT_IP, LISTEN_PORT)
            .unwrap_or_else(|e| panic!("request {i}: {e}\n{}", rauta.log()));
        assert_eq!(status, 200, "request {i}");
    }
    assert_eq!(net.backend.get().requests(), REQUESTS as u64);

    // The deny-listed source gets nothing on the client port...
    assert!(
        !net.connects_from(DENIED_IP, LISTEN_PORT, Duration::from_millis(1500)),
        "the denied source connected"
    );
    // ...but still reaches the admin port.
    let health = net.client.enter(move || {
        let stream = connect_from(
            DENIED_IP.parse().expect("ip"),
            SocketAddr::new(NODE_IP.parse().expect("ip"), ADMIN_PORT),
            Duration::from_secs(5),
        )?;
        request(stream)
    });
    assert_eq!(
        health.ok(),
        Some(404),
        "admin port from the denied source (GET / is 404 there)"
    );

    let metrics = rauta.scrape();
    let body = metrics.text();
    let m = |name: &str, labels: &[(&str, &str)]| metrics.value(name, labels);
    assert_eq!(
        m(
            "rauta_ebpf_attached",
            &[("program", "xdp_ingress"), ("target", &net.veth.node_if)]
        ),
        1.0
    );
    let denied = m("rauta_xdp_drops_total", &[("reason", "deny_list")]);
    assert!(denied >= 1.0, "deny-list drops: {denied}\n{body}");
    assert_eq!(m("rauta_xdp_drops_total", &[("reason", "syn_rate")]), 0.0);
    assert_eq!(
        m("rauta_xdp_packets_total", &[("action", "drop")]),
        denied,
        "every drop has its reason"
    );
    let accepted = m("rauta_accepted_connections_total", &[]);
    assert_eq!(accepted, REQUESTS as f64);
    assert_eq!(
        m("rauta_xdp_syns_total", &[]),
        accepted,
        "one SYN per accepted connection (the denied and admin SYNs are not counted)"
    );
    assert!(m("rauta_xdp_uninspected_total", &[("reason", "admin_port")]) >= 3.0);
    assert!(m("rauta_xdp_packets_total", &[("action", "pass")]) >= 3.0 * REQUESTS as f64);
    let steered = m("rauta_reuseport_selections_total", &[("result", "hit")])
        + m(
            "rauta_reuseport_selections_total",
            &[("result", "fallback")],
        );
    assert_eq!(
        steered, accepted,
        "every connection went through select_by_cpu"
    );

    // SIGTERM: rauta exits 0, the link has no program, the program is gone
    // from the kernel and nothing is pinned.
    let pins_before = pins();
    rauta.terminate();
    let status = rauta
        .wait_exit(Duration::from_secs(15))
        .unwrap_or_else(|| panic!("rauta did not stop; log:\n{}", rauta.log()));
    assert!(status.success(), "exit {status}; log:\n{}", rauta.log());
    let link = net.link();
    assert!(
        !link.contains("prog/xdp"),
        "XDP still attached after exit:\n{link}"
    );
    let loaded: Vec<u32> = aya::programs::loaded_programs()
        .filter_map(Result::ok)
        .map(|p| p.id())
        .collect();
    assert!(
        !loaded.contains(&prog),
        "program {prog} still loaded after exit"
    );
    assert_eq!(pins(), pins_before, "pins left in /sys/fs/bpf");
    assert!(rauta.log().contains("eBPF programs detached and unloaded"));
}

/// Everything under /sys/fs/bpf (empty when bpffs is not mounted).
fn pins() -> Vec<String> {
    fn walk(dir: &std::path::Path, out: &mut Vec<String>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            out.push(e.path().display().to_string());
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                walk(&e.path(), out);
            }
        }
    }
    let mut out = Vec::new();
    walk(std::path::Path::new("/sys/fs/bpf"), &mut out);
    out.retain(|p| p.contains("rauta") || p.contains("xdp") || p.contains("SHARD"));
    out.sort();
    out
}

#[test]
fn xdp_veth_busy_interface() {
    require!(
        Need::EbpfPrivilege,
        ebpf_object(),
        Need::Netns,
        Need::tool("ethtool")
    );
    let net = Net::new();
    // Another XDP program (a second copy of ours) holds the interface.
    let iface = net.veth.node_if.clone();
    let blocker = InNs::new(&net.node, move || {
        let mut other = rauta_proxy::xdp::Object::open().expect("open");
        other.load_xdp().expect("load");
        other
            .attach_xdp(&iface)
            .expect("attach the blocking program");
        other
    });
    assert!(net.link().contains("prog/xdp"));

    // required: the start fails, saying why.
    let mut strict = net
        .rauta(
            LISTEN_PORT + 1,
            &["--xdp", "required", "--xdp-iface", &net.veth.node_if],
        )
        .spawn()
        .expect("spawn rauta");
    let status = strict
        .wait_exit(Duration::from_secs(20))
        .unwrap_or_else(|| panic!("--xdp required kept running; log:\n{}", strict.log()));
    assert!(!status.success());
    let log = strict.log();
    assert!(
        log.contains("--xdp required, but the XDP filter")
            && log.contains("another XDP program")
            && log.contains("EBUSY"),
        "{log}"
    );

    // auto: one clear line, and traffic is served without the filter.
    let lenient = net
        .rauta(LISTEN_PORT, &["--xdp-iface", &net.veth.node_if])
        .start();
    let status = net.get_from(CLIENT_IP, LISTEN_PORT).expect("request");
    assert_eq!(status, 200);
    let log = lenient.log();
    let lines: Vec<&str> = log.lines().filter(|l| l.contains("eBPF off for")).collect();
    assert_eq!(lines.len(), 1, "{log}");
    assert!(
        lines[0].contains(&net.veth.node_if) && lines[0].contains("another XDP program"),
        "{}",
        lines[0]
    );
    let body = lenient.scrape();
    assert_eq!(
        body.value("rauta_ebpf_attached", &[("program", "xdp_ingress")]),
        0.0
    );
    assert_eq!(
        body.value("rauta_ebpf_attached", &[("program", "select_by_cpu")]),
        1.0,
        "steering does not depend on the interface"
    );
    drop(lenient);
    drop(blocker);
    assert!(!net.link().contains("prog/xdp"));
}
