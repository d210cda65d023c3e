//! End to end over a veth pair between two network namespaces the test
//! creates (and deletes, also on failure): `xdp_ingress` attached on the
//! node side, real HTTP requests through rauta from the client side, a
//! deny-listed source that gets nothing but the admin port, counters that
//! add up, and a clean detach on SIGTERM. Also: another XDP program on the
//! interface (EBUSY) under `--xdp auto` and `--xdp required`. Needs root,
//! `ip` and `ethtool` (`require!`: elsewhere a counted skip, under CI a
//! failure).

use crate::common::BIN;
use crate::xdp_util::{ebpf_object, foreign_xdp};
use rauta_shared::ebpf::counter;
use rauta_testkit::eventually;
use rauta_testkit::netns::{InNs, Netns, VethPair};
use rauta_testkit::{backend_for, catch_all, require, Backend, ManifestDir, Need, Rauta};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
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
        self.rauta_from(Path::new(BIN), port, ADMIN_PORT, args)
    }

    /// rauta started by `bin` (a wrapper, or rauta) in the node namespace
    /// on 0.0.0.0:`port`, admin on 0.0.0.0:`admin`.
    fn rauta_from(
        &self,
        bin: &Path,
        port: u16,
        admin: u16,
        args: &[&str],
    ) -> rauta_testkit::Builder {
        Rauta::builder(bin)
            .manifests(self.dir.path())
            .in_netns(
                self.node.name(),
                SocketAddr::from(([0, 0, 0, 0], port)),
                SocketAddr::from(([0, 0, 0, 0], admin)),
            )
            .args(args)
    }

    /// The flags of a rauta whose XDP filter must run on the node's veth
    /// and drop the deny-listed source.
    fn filter_args(&self) -> [String; 6] {
        [
            "--xdp".into(),
            "required".into(),
            "--xdp-iface".into(),
            self.veth.node_if.clone(),
            "--xdp-deny".into(),
            format!("{DENIED_IP}/32"),
        ]
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
    let mut rauta = net.rauta(LISTEN_PORT, &[]).args(net.filter_args()).start();
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
        Some(200),
        "admin port from the denied source (GET / is the status page there)"
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
    // Another product's XDP program holds the interface (rauta's own
    // program would be taken over: see xdp_veth_rolling_update_hands_over).
    let iface = net.veth.node_if.clone();
    let blocker = InNs::new(&net.node, move || foreign_xdp(&iface));
    let foreign = xdp_prog_id(&net.link()).expect("the foreign program is attached");

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
        lines[0].contains(&net.veth.node_if)
            && lines[0].contains("another XDP program")
            && lines[0].contains("foreign_pass"),
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
    assert_eq!(
        xdp_prog_id(&net.link()),
        Some(foreign),
        "another product's program is never replaced"
    );
    drop(blocker);
    assert!(!net.link().contains("prog/xdp"));
}

/// Datagrams from the deny-listed source to the node, one per millisecond,
/// each numbered; and how many the node received. Both threads stop when
/// the probe is dropped.
struct DeniedProbe {
    received: Arc<AtomicU64>,
    sent: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl DeniedProbe {
    const PORT: u16 = 5454;

    fn start(net: &Net) -> DeniedProbe {
        let receiver = net.node.enter(|| {
            UdpSocket::bind(SocketAddr::new(
                NODE_IP.parse().expect("ip"),
                DeniedProbe::PORT,
            ))
            .expect("bind the receiver")
        });
        receiver
            .set_read_timeout(Some(Duration::from_millis(50)))
            .expect("timeout");
        let (received, sent) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
        let stop = Arc::new(AtomicBool::new(false));
        let rx = {
            let (received, stop) = (received.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut buf = [0u8; 64];
                while !stop.load(Ordering::Relaxed) {
                    if receiver.recv(&mut buf).is_ok() {
                        received.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        };
        let tx = {
            let (sent, stop) = (sent.clone(), stop.clone());
            let ns = format!("/var/run/netns/{}", net.client.name());
            std::thread::spawn(move || {
                let file = std::fs::File::open(&ns).expect("netns");
                nix::sched::setns(file, nix::sched::CloneFlags::CLONE_NEWNET).expect("setns");
                let socket = UdpSocket::bind((DENIED_IP, 0)).expect("bind the sender");
                let to = SocketAddr::new(NODE_IP.parse().expect("ip"), DeniedProbe::PORT);
                let mut n: u64 = 0;
                while !stop.load(Ordering::Relaxed) {
                    n += 1;
                    if socket.send_to(&n.to_be_bytes(), to).is_ok() {
                        sent.fetch_add(1, Ordering::Relaxed);
                    }
                    std::thread::sleep(Duration::from_millis(1));
                }
            })
        };
        DeniedProbe {
            received,
            sent,
            stop,
            threads: vec![rx, tx],
        }
    }

    fn received(&self) -> u64 {
        self.received.load(Ordering::Relaxed)
    }

    fn sent(&self) -> u64 {
        self.sent.load(Ordering::Relaxed)
    }
}

impl Drop for DeniedProbe {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// The number of deny-list drops `rauta` counted.
fn deny_drops(rauta: &Rauta) -> f64 {
    rauta
        .scrape()
        .value("rauta_xdp_drops_total", &[("reason", "deny_list")])
}

fn accepted(rauta: &Rauta) -> f64 {
    rauta
        .scrape()
        .value("rauta_accepted_connections_total", &[])
}

/// Denied datagrams (one per millisecond) that may get through while a
/// new pod waits for a holder that hands nothing over. It tries every
/// 10 ms: 5-11 got through on an idle 2-CPU machine, 36 while it compiled;
/// the bound leaves room for a loaded CI run and still fails a pod that
/// waits for a slow poll.
const WAIT_LEAK_BOUND: u64 = 250;

/// A script that runs rauta with the capabilities deploy/03-daemonset.yaml
/// grants, and no others.
fn daemonset_capabilities(dir: &Path) -> std::path::PathBuf {
    let wrapper = dir.join("rauta-daemonset-caps");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\nexec setpriv --bounding-set -all,+net_bind_service,+ipc_lock,+bpf,+net_admin,+perfmon --inh-caps -all --ambient-caps -all -- {BIN} \"$@\"\n"
        ),
    )
    .expect("write wrapper");
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    wrapper
}

#[test]
fn xdp_veth_rolling_update_hands_over() {
    require!(
        Need::EbpfPrivilege,
        ebpf_object(),
        Need::Netns,
        Need::tool("ethtool")
    );
    rolling_update(Path::new(BIN));
}

#[test]
fn xdp_veth_rolling_update_with_daemonset_capabilities() {
    require!(
        Need::EbpfPrivilege,
        ebpf_object(),
        Need::Netns,
        Need::tool("ethtool"),
        Need::tool("setpriv")
    );
    let dir = tempfile::tempdir().expect("tempdir");
    rolling_update(&daemonset_capabilities(dir.path()));
}

/// Two rauta processes one after the other on one interface, the second
/// started before the first stops, as a DaemonSet rolls with maxSurge 1.
fn rolling_update(bin: &Path) {
    let net = Net::new();
    // Without a filter the denied source's datagrams arrive: the probe
    // would see a gap.
    let probe = DeniedProbe::start(&net);
    eventually("datagrams reach the node without a filter", || {
        probe.received() >= 10
    });

    // The old pod.
    let mut old = net
        .rauta_from(bin, LISTEN_PORT, ADMIN_PORT, &[])
        .args(net.filter_args())
        .start();
    let old_prog = xdp_prog_id(&net.link()).expect("the old pod's program is attached");
    eventually("the old pod drops the denied source", || {
        deny_drops(&old) >= 20.0
    });
    // What was on its way before the attach has arrived by now.
    std::thread::sleep(Duration::from_millis(200));
    let leaked_before = probe.received();
    for _ in 0..3 {
        assert_eq!(net.get_from(CLIENT_IP, LISTEN_PORT).expect("request"), 200);
    }
    assert_eq!(accepted(&old), 3.0);

    // The new pod starts while the old one runs (maxSurge 1), on the same
    // interface and the same port.
    let mut new = net
        .rauta_from(bin, LISTEN_PORT, ADMIN_PORT + 1, &[])
        .args(net.filter_args())
        .start();
    let attached = |r: &Rauta| {
        r.scrape().value(
            "rauta_ebpf_attached",
            &[("program", "xdp_ingress"), ("target", &net.veth.node_if)],
        )
    };
    let log = new.log();
    let new_prog = xdp_prog_id(&net.link()).expect("a program is attached");
    assert_ne!(new_prog, old_prog, "the new pod's program runs now");
    assert!(
        log.contains("took the XDP filter over from another rauta process")
            && log.contains(&format!("its program {old_prog} replaced")),
        "{log}"
    );
    assert_eq!(attached(&new), 1.0);
    eventually("the new pod drops the denied source", || {
        deny_drops(&new) >= 20.0
    });
    // The old pod says it handed over, and no longer claims the interface.
    eventually("the old pod logs the handover", || {
        old.log().contains("handed the XDP filter on")
    });
    assert_eq!(attached(&old), 0.0);
    // The reuseport group hands over too: the new pod's select_by_cpu
    // replaced the old one's, so new connections go to the new pod.
    for _ in 0..10 {
        assert_eq!(net.get_from(CLIENT_IP, LISTEN_PORT).expect("request"), 200);
    }
    assert_eq!(accepted(&new), 10.0, "new connections reach the new pod");
    assert_eq!(accepted(&old), 3.0, "the old pod gets none");

    // The old pod stops; the filter stays: same program, still dropping.
    old.terminate();
    let status = old
        .wait_exit(Duration::from_secs(15))
        .unwrap_or_else(|| panic!("the old pod did not stop; log:\n{}", old.log()));
    assert!(status.success(), "exit {status}; log:\n{}", old.log());
    assert_eq!(xdp_prog_id(&net.link()), Some(new_prog));
    let drops = deny_drops(&new);
    eventually("the new pod keeps dropping", || {
        deny_drops(&new) >= drops + 100.0
    });
    for _ in 0..3 {
        assert_eq!(net.get_from(CLIENT_IP, LISTEN_PORT).expect("request"), 200);
    }
    // Not one datagram of the denied source got through at any moment: from
    // the old pod's attach to now, the hook never ran without the filter
    // (the bound is zero, at a probe every millisecond).
    assert_eq!(
        probe.received(),
        leaked_before,
        "denied datagrams got through during the handover ({} sent)",
        probe.sent()
    );

    // The last holder stops: the link goes, and datagrams arrive again.
    new.terminate();
    let status = new
        .wait_exit(Duration::from_secs(15))
        .unwrap_or_else(|| panic!("the new pod did not stop; log:\n{}", new.log()));
    assert!(status.success(), "exit {status}; log:\n{}", new.log());
    let link = net.link();
    assert!(!link.contains("prog/xdp"), "XDP still attached:\n{link}");
    eventually("datagrams arrive once no pod filters", || {
        probe.received() > leaked_before
    });
}

/// A holder that hands nothing over (a rauta from before the handover
/// socket, here the test's own copy of the filter): the new pod, with the
/// DaemonSet's capabilities, cannot identify it, waits, and attaches as
/// soon as it lets go.
#[test]
fn xdp_veth_new_pod_waits_for_a_holder_that_hands_nothing_over() {
    require!(
        Need::EbpfPrivilege,
        ebpf_object(),
        Need::Netns,
        Need::tool("ethtool"),
        Need::tool("setpriv")
    );
    let net = Net::new();
    let probe = DeniedProbe::start(&net);
    eventually("datagrams reach the node without a filter", || {
        probe.received() >= 10
    });
    let iface = net.veth.node_if.clone();
    let holder = InNs::new(&net.node, move || {
        let mut legacy = rauta_proxy::xdp::Object::open().expect("open");
        let deny: rauta_proxy::xdp::Cidr = format!("{DENIED_IP}/32").parse().expect("cidr");
        legacy.write_deny_list(&[deny]).expect("deny list");
        legacy.load_xdp().expect("load");
        legacy.attach_xdp(&iface).expect("attach");
        legacy
    });
    let legacy_prog = xdp_prog_id(&net.link()).expect("the legacy filter is attached");
    let legacy_drops =
        || holder.get().counters().expect("counters")[counter::DROP_DENY_LIST as usize];
    eventually("the legacy filter drops the denied source", || {
        legacy_drops() >= 20
    });
    std::thread::sleep(Duration::from_millis(200));
    let leaked_before = probe.received();

    let dir = tempfile::tempdir().expect("tempdir");
    let new = net
        .rauta_from(
            &daemonset_capabilities(dir.path()),
            LISTEN_PORT,
            ADMIN_PORT,
            &[],
        )
        .args(net.filter_args())
        .start();
    let attached = || {
        new.scrape().value(
            "rauta_ebpf_attached",
            &[("program", "xdp_ingress"), ("target", &net.veth.node_if)],
        )
    };
    let log = new.log();
    assert!(
        log.contains(&format!("the XDP filter waits for {}", net.veth.node_if))
            && log.contains(&format!("program {legacy_prog} holds the XDP hook")),
        "{log}"
    );
    assert_eq!(attached(), 0.0);
    assert_eq!(xdp_prog_id(&net.link()), Some(legacy_prog));
    assert_eq!(net.get_from(CLIENT_IP, LISTEN_PORT).expect("request"), 200);

    drop(holder);
    eventually("the waiting pod attaches once the holder let go", || {
        attached() == 1.0
    });
    let log = new.log();
    assert!(
        log.contains("XDP filter attached after the previous holder let go"),
        "{log}"
    );
    let drops = deny_drops(&new);
    eventually("the new pod drops the denied source", || {
        deny_drops(&new) >= drops + 20.0
    });
    let leaked = probe.received() - leaked_before;
    eprintln!(
        "waiting handover: {leaked} denied datagrams of {} got through",
        probe.sent()
    );
    assert!(
        leaked <= WAIT_LEAK_BOUND,
        "{leaked} denied datagrams got through while the new pod waited (bound {WAIT_LEAK_BOUND})"
    );
}

/// A process that asks for the link but does not confirm the swap (its
/// `BPF_LINK_UPDATE` failed, or it died): the holder keeps its link and
/// its filter, and still serves the next request.
#[test]
fn xdp_veth_unconfirmed_handover_keeps_the_link() {
    require!(
        Need::EbpfPrivilege,
        ebpf_object(),
        Need::Netns,
        Need::tool("ethtool")
    );
    let net = Net::new();
    let holder = net.rauta(LISTEN_PORT, &[]).args(net.filter_args()).start();
    let prog = xdp_prog_id(&net.link()).expect("attached");
    let iface = net.veth.node_if.clone();
    let refused = net.node.enter(move || {
        rauta_proxy::xdp::handover::request(&iface, |_| {
            Err(std::io::Error::other("this test refuses the swap"))
        })
    });
    assert!(refused.is_err(), "{refused:?}");
    eventually("the holder says it keeps the link", || {
        holder
            .log()
            .contains("did not take the XDP link; keeping it")
    });
    assert_eq!(xdp_prog_id(&net.link()), Some(prog));
    assert_eq!(
        holder.scrape().value(
            "rauta_ebpf_attached",
            &[("program", "xdp_ingress"), ("target", &net.veth.node_if)]
        ),
        1.0
    );
    assert!(
        !net.connects_from(DENIED_IP, LISTEN_PORT, Duration::from_millis(1000)),
        "the filter still drops the denied source"
    );
    // The next request is served, and this one takes it.
    let iface = net.veth.node_if.clone();
    let taken = net.node.enter(move || {
        rauta_proxy::xdp::handover::request(&iface, |_| Ok(())).map(|l| l.is_some())
    });
    assert!(matches!(taken, Ok(true)), "{taken:?}");
    eventually("the holder hands it over", || {
        holder.log().contains("handed the XDP filter on")
    });
}
