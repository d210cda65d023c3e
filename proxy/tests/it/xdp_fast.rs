//! The XDP L4 fast path end to end, over three network namespaces the test
//! creates: client ns -> veth -> node ns (rauta, `xdp_ingress` on both of
//! its veths, forwarding on) -> veth -> backend ns (a TCP echo server).
//! Real TCP connections from the client to a TCP service marked
//! `rauta.io/xdp-fast-path` arrive intact at the backend from the node's
//! address and a port of the NAT range, and never reach rauta's user-space
//! relay. Needs root, `ip` and `ethtool`.

use crate::common::BIN;
use crate::xdp_util::{ebpf_object, foreign_xdp, machine_busy_jiffies, ForeignXdp};
use rauta_testkit::netns::{InNs, Netns, VethPair};
use rauta_testkit::{
    endpoint_slice, eventually, require, service, EndpointSpec, ManifestDir, Need, Rauta,
};
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

const NODE_CLIENT_IP: &str = "10.78.1.1";
const CLIENT_IP: &str = "10.78.1.2";
const NODE_BACKEND_IP: &str = "10.78.2.1";
const BACKEND_IP: &str = "10.78.2.2";
/// A second endpoint address in the backend namespace.
const BACKEND_2_IP: &str = "10.78.2.3";
const SERVICE_PORT: u16 = 9000;
/// The same service in user space (not on the fast path).
const RELAY_PORT: u16 = 9001;
/// HAProxy `mode tcp` in front of the same backend (benchmark only).
const HAPROXY_PORT: u16 = 9002;
const BACKEND_PORT: u16 = 8080;

/// An echo server in the backend namespace: each connection's bytes come
/// back until the client's half-close, then `bytes: N`. It records each
/// peer address.
struct Echo {
    peers: Arc<Mutex<Vec<SocketAddr>>>,
    stop: Arc<AtomicBool>,
}

impl Drop for Echo {
    fn drop(&mut self) {
        // The listener goes, so the namespace can go with the test.
        self.stop.store(true, Ordering::Relaxed);
    }
}

impl Echo {
    fn start(ns: &Netns) -> Echo {
        Echo::start_on(ns, BACKEND_IP)
    }

    fn start_on(ns: &Netns, ip: &'static str) -> Echo {
        let listener =
            ns.enter(move || TcpListener::bind((ip, BACKEND_PORT)).expect("bind the backend"));
        listener.set_nonblocking(true).expect("nonblocking");
        let peers = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (seen, stopped) = (peers.clone(), stop.clone());
        thread::spawn(move || {
            while !stopped.load(Ordering::Relaxed) {
                let mut conn = match listener.accept() {
                    Ok((conn, _)) => conn,
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        thread::sleep(Duration::from_millis(5));
                        continue;
                    }
                    Err(_) => return,
                };
                let _ = conn.set_nonblocking(false);
                if let Ok(peer) = conn.peer_addr() {
                    seen.lock().expect("peers").push(peer);
                }
                thread::spawn(move || {
                    let mut total = 0usize;
                    let mut chunk = [0u8; 65536];
                    loop {
                        match conn.read(&mut chunk) {
                            Ok(0) | Err(_) => break,
                            Ok(n) => {
                                total += n;
                                if conn.write_all(&chunk[..n]).is_err() {
                                    return;
                                }
                            }
                        }
                    }
                    let _ = conn.write_all(format!("bytes: {total}").as_bytes());
                });
            }
        });
        Echo { peers, stop }
    }

    fn peers(&self) -> Vec<SocketAddr> {
        self.peers.lock().expect("peers").clone()
    }
}

/// The three namespaces, their veths, the peers' pass-through XDP
/// programs (a veth only takes redirected frames when its peer runs XDP)
/// and the manifests. Field order is drop order.
struct Net {
    _xdp_peers: Vec<InNs<ForeignXdp>>,
    dir: ManifestDir,
    to_backend: VethPair,
    to_client: VethPair,
    client: Netns,
    backend: Netns,
    node: Netns,
}

impl Net {
    fn new() -> Net {
        let node = Netns::new("rfn");
        let client = Netns::new("rfc");
        let backend = Netns::new("rfb");
        let to_client = VethPair::new(
            &node,
            &[&format!("{NODE_CLIENT_IP}/24")],
            &client,
            &[&format!("{CLIENT_IP}/24")],
        );
        // The backend side is the "client" of its pair: transmit checksum
        // offload off there too, for its replies.
        let to_backend = VethPair::new(
            &node,
            &[&format!("{NODE_BACKEND_IP}/24")],
            &backend,
            &[&format!("{BACKEND_IP}/24"), &format!("{BACKEND_2_IP}/24")],
        );
        node.exec(&["sysctl", "-qw", "net.ipv4.ip_forward=1"]);
        let peers = vec![
            {
                let iface = to_client.client_if.clone();
                InNs::new(&client, move || foreign_xdp(&iface))
            },
            {
                let iface = to_backend.client_if.clone();
                InNs::new(&backend, move || foreign_xdp(&iface))
            },
        ];
        let dir = ManifestDir::new();
        write_manifests(&dir, BACKEND_IP);
        Net {
            _xdp_peers: peers,
            dir,
            to_backend,
            to_client,
            client,
            backend,
            node,
        }
    }

    fn rauta(&self) -> Rauta {
        self.rauta_with(&[])
    }

    fn rauta_with(&self, extra: &[&str]) -> Rauta {
        Rauta::builder(BIN)
            .manifests(self.dir.path())
            .in_netns(
                self.node.name(),
                SocketAddr::from(([0, 0, 0, 0], 18080)),
                SocketAddr::from(([0, 0, 0, 0], 19901)),
            )
            .args([
                "--xdp",
                "required",
                "--xdp-iface",
                &self.to_client.node_if,
                "--xdp-iface",
                &self.to_backend.node_if,
                "--xdp-fast-path",
                "--tcp-services-configmap",
                "web/tcp-services",
                "--l4-idle-timeout",
                "4s",
            ])
            .args(extra)
            .start()
    }

    /// Neighbour entries in the node for both sides, so that the first SYN
    /// finds them (without, it falls back to user space: see the fixtures):
    /// a connection to the backend, and one to a closed port of the client.
    fn fill_neighbours(&self) {
        self.node.enter(|| {
            for (ip, port) in [(BACKEND_IP, BACKEND_PORT), (CLIENT_IP, 9)] {
                let to = SocketAddr::new(ip.parse().expect("ip"), port);
                let _ = TcpStream::connect_timeout(&to, Duration::from_secs(2));
            }
        });
    }

    /// Sends `payload` to the service from the client namespace, half-closes,
    /// and returns everything that came back.
    fn round_trip(&self, payload: Vec<u8>) -> std::io::Result<Vec<u8>> {
        self.round_trip_to(SERVICE_PORT, payload)
    }

    fn round_trip_to(&self, port: u16, payload: Vec<u8>) -> std::io::Result<Vec<u8>> {
        self.client.enter(move || {
            let to = SocketAddr::new(NODE_CLIENT_IP.parse().expect("ip"), port);
            let mut s = TcpStream::connect_timeout(&to, Duration::from_secs(5))?;
            s.set_read_timeout(Some(Duration::from_secs(20)))?;
            let mut w = s.try_clone()?;
            let writer = thread::spawn(move || {
                w.write_all(&payload)?;
                w.shutdown(Shutdown::Write)
            });
            let mut back = Vec::new();
            s.read_to_end(&mut back)?;
            writer
                .join()
                .map_err(|_| std::io::Error::other("writer panicked"))??;
            Ok(back)
        })
    }
}

/// The service with one endpoint at `endpoint`, and the tcp-services
/// ConfigMap: port 9000 on the fast path, 9001 in user space.
fn write_manifests(dir: &ManifestDir, endpoint: &str) {
    let docs = [
        service("web", "fast", &[(Some("tcp"), 80, BACKEND_PORT)]),
        endpoint_slice(
            "web",
            "fast-0",
            "fast",
            &[(Some("tcp"), BACKEND_PORT)],
            &[EndpointSpec::ready(endpoint)],
        ),
        format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: tcp-services\n  namespace: web\n  annotations:\n    rauta.io/xdp-fast-path: \"{SERVICE_PORT}\"\ndata:\n  \"{SERVICE_PORT}\": \"web/fast:80\"\n  \"{RELAY_PORT}\": \"web/fast:80\"\n"
        ),
    ];
    dir.write("all.yaml", &docs.join("---\n"));
}

/// `n` bytes of a position-dependent pattern (seeded), so that a lost or
/// reordered byte shows.
fn pattern(seed: u8, n: usize) -> Vec<u8> {
    (0..n)
        .map(|i| ((i as u64).wrapping_mul(2_654_435_761) >> 7) as u8 ^ seed)
        .collect()
}

fn expect_echo(back: &[u8], sent: &[u8]) {
    let trailer = format!("bytes: {}", sent.len());
    assert_eq!(back.len(), sent.len() + trailer.len(), "echo length");
    assert!(
        back[..sent.len()] == *sent,
        "the echo differs from what was sent"
    );
    assert_eq!(&back[sent.len()..], trailer.as_bytes());
}

#[test]
fn xdp_fast_path_carries_tcp_flows_to_the_backend_and_back() {
    require!(
        Need::EbpfPrivilege,
        ebpf_object(),
        Need::Netns,
        Need::tool("ethtool")
    );
    let net = Net::new();
    let echo = Echo::start(&net.backend);
    net.fill_neighbours();
    let rauta = net.rauta();
    eventually("port 9000 is on the fast path", || {
        let routes = rauta
            .admin_get("/routes")
            .map(|r| r.text())
            .unwrap_or_default();
        routes.contains("\"on_xdp_fast_path\":true")
    });

    // Many short connections, then one long stream.
    const SHORT: usize = 40;
    for i in 0..SHORT {
        let sent = pattern(i as u8, 10_000 + i * 997);
        let back = net
            .round_trip(sent.clone())
            .unwrap_or_else(|e| panic!("connection {i}: {e}\n{}", rauta.log()));
        expect_echo(&back, &sent);
    }
    let sent = pattern(0xa5, 24 << 20);
    let back = net.round_trip(sent.clone()).expect("the long stream");
    expect_echo(&back, &sent);

    // Every connection reached the backend from the node's address and a
    // port of the NAT range: NATed in XDP, never accepted in user space.
    let peers = echo.peers();
    // (The first peer is the node's own connection that filled its
    // neighbour table.)
    let peers: Vec<SocketAddr> = peers.into_iter().skip(1).collect();
    assert_eq!(peers.len(), SHORT + 1, "{peers:?}");
    for p in &peers {
        assert_eq!(p.ip().to_string(), NODE_BACKEND_IP, "{p}");
        assert!((61000..=65535).contains(&p.port()), "{p}");
    }
    let m = rauta.scrape();
    let service = [("service", "tcp/9000")];
    assert_eq!(m.value("rauta_l4_connections_total", &service), 0.0);
    assert_eq!(
        m.value("rauta_xdp_fast_flows_total", &service),
        (SHORT + 1) as f64
    );
    let to_backend = m.value(
        "rauta_xdp_fast_bytes_total",
        &[("service", "tcp/9000"), ("direction", "to_backend")],
    );
    let to_client = m.value(
        "rauta_xdp_fast_bytes_total",
        &[("service", "tcp/9000"), ("direction", "to_client")],
    );
    assert!(to_backend > (24 << 20) as f64, "{to_backend}");
    assert!(to_client > (24 << 20) as f64, "{to_client}");
    assert_eq!(
        m.value("rauta_xdp_fast_fallbacks_total", &[("reason", "no_route")]),
        0.0
    );
    assert!(m.value("rauta_xdp_fast_flow_events_total", &[("event", "fin")]) >= 2.0);

    // The flow table holds the flows until the sweeper removes them: the
    // closed ones after the closing linger, in any case after the idle
    // timeout (4 s here).
    eventually("the flow table empties", || {
        let m = rauta.scrape();
        let swept = m.value("rauta_xdp_fast_swept_total", &[("cause", "closed")])
            + m.value("rauta_xdp_fast_swept_total", &[("cause", "idle")]);
        swept >= 2.0 * (SHORT + 1) as f64 && m.value("rauta_xdp_fast_flow_entries", &[]) == 0.0
    });
}

/// An open fast flow keeps its endpoint when the service's endpoints
/// change (the flow table, not the Maglev table, decides for it), and new
/// flows go to the new endpoint.
#[test]
fn xdp_fast_flows_keep_their_backend_across_table_changes() {
    require!(
        Need::EbpfPrivilege,
        ebpf_object(),
        Need::Netns,
        Need::tool("ethtool")
    );
    let net = Net::new();
    let first = Echo::start(&net.backend);
    let second = Echo::start_on(&net.backend, BACKEND_2_IP);
    net.fill_neighbours();
    net.node.enter(|| {
        let to = SocketAddr::new(BACKEND_2_IP.parse().expect("ip"), BACKEND_PORT);
        let _ = TcpStream::connect_timeout(&to, Duration::from_secs(2));
    });
    let rauta = net.rauta();
    let on_fast_path = |endpoint: &str| {
        let routes = rauta
            .admin_get("/routes")
            .map(|r| r.text())
            .unwrap_or_default();
        routes.contains("\"on_xdp_fast_path\":true") && routes.contains(endpoint)
    };
    eventually("port 9000 is on the fast path", || on_fast_path(BACKEND_IP));

    // A connection that stays open across the change.
    let (tx, rx) = std::sync::mpsc::channel::<Vec<u8>>();
    let (back_tx, back_rx) = std::sync::mpsc::channel::<std::io::Result<Vec<u8>>>();
    let client = {
        let ns = format!("/var/run/netns/{}", net.client.name());
        thread::spawn(move || {
            let file = std::fs::File::open(&ns).expect("netns");
            nix::sched::setns(file, nix::sched::CloneFlags::CLONE_NEWNET).expect("setns");
            let to = SocketAddr::new(NODE_CLIENT_IP.parse().expect("ip"), SERVICE_PORT);
            let mut s = TcpStream::connect_timeout(&to, Duration::from_secs(5)).expect("connect");
            s.set_read_timeout(Some(Duration::from_secs(10)))
                .expect("timeout");
            for chunk in rx {
                let mut back = vec![0u8; chunk.len()];
                let r = s.write_all(&chunk).and_then(|_| s.read_exact(&mut back));
                let _ = back_tx.send(r.map(|_| back));
            }
        })
    };
    let exchange = |seed: u8| {
        let chunk = pattern(seed, 4096);
        tx.send(chunk.clone()).expect("send");
        let back = back_rx
            .recv_timeout(Duration::from_secs(15))
            .expect("an answer")
            .expect("the echo");
        assert!(back == chunk, "the echo differs");
    };
    exchange(1);
    assert_eq!(
        first.peers().len(),
        2,
        "the neighbour probe and the open flow"
    );

    // The endpoint moves to the second address.
    write_manifests(&net.dir, BACKEND_2_IP);
    eventually("the new endpoint is on the fast path", || {
        on_fast_path(BACKEND_2_IP)
    });
    // The open flow still reaches the first endpoint (documented: a removed
    // endpoint's flows run on until they end)...
    exchange(2);
    exchange(3);
    // ...and new flows go to the second.
    let before = second.peers().len();
    for i in 0..5 {
        let sent = pattern(10 + i, 2000);
        let back = net.round_trip(sent.clone()).expect("a new flow");
        expect_echo(&back, &sent);
    }
    assert_eq!(second.peers().len(), before + 5);
    assert_eq!(
        first.peers().len(),
        2,
        "no new flow reached the removed endpoint"
    );
    let m = rauta.scrape();
    assert_eq!(
        m.value("rauta_xdp_fast_flows_total", &[("service", "tcp/9000")]),
        6.0
    );
    assert_eq!(
        m.value("rauta_l4_connections_total", &[("service", "tcp/9000")]),
        0.0
    );
    drop(tx);
    client.join().expect("client");

    // Back to the first address: that table half was written before and
    // its Maglev entries are unchanged (one endpoint, index 0), so only the
    // backend entry is rewritten, not the 65,537 Maglev slots.
    write_manifests(&net.dir, BACKEND_IP);
    eventually("the first endpoint is back", || {
        let routes = rauta
            .admin_get("/routes")
            .map(|r| r.text())
            .unwrap_or_default();
        routes.contains(BACKEND_IP) && !routes.contains(BACKEND_2_IP)
    });
    let sent = pattern(42, 2000);
    expect_echo(&net.round_trip(sent.clone()).expect("a new flow"), &sent);
    assert_eq!(
        first.peers().len(),
        3,
        "the new flow reached the first endpoint"
    );
    let log = rauta.log();
    let writes: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("XDP fast path: service tables written"))
        .collect();
    assert_eq!(writes.len(), 3, "{log}");
    assert!(
        writes[2].contains("maglev_entries_written=0"),
        "{}",
        writes[2]
    );
}

/// The kernel splice (`--l4-splice auto`) on the same topology: a long
/// two-way stream must come back intact. It does not today: on kernel
/// 6.18 over veth, bytes were duplicated mid-stream in 4 runs of 5
/// (loopback and the user-space relay are clean), so the splice is
/// documented as experimental and warns when on. Kept as the reproduction
/// for whoever fixes it.
#[test]
#[ignore = "known defect: the kernel splice duplicates bytes over veth; cargo test -p rauta-proxy --test it splice_keeps_long -- --ignored"]
fn splice_keeps_long_echoes_intact_over_veth() {
    require!(
        Need::EbpfPrivilege,
        ebpf_object(),
        Need::Netns,
        Need::tool("ethtool")
    );
    let net = Net::new();
    let _echo = Echo::start(&net.backend);
    net.fill_neighbours();
    let rauta = net.rauta_with(&["--l4-splice", "auto"]);
    for round in 0..3u8 {
        let sent = pattern(round, 128 << 20);
        let back = net
            .round_trip_to(RELAY_PORT, sent.clone())
            .unwrap_or_else(|e| panic!("round {round}: {e}"));
        expect_echo(&back, &sent);
    }
    let m = rauta.scrape();
    assert!(
        m.value(
            "rauta_l4_spliced_connections_total",
            &[("service", "tcp/9001")]
        ) >= 3.0
    );
}

// ------------------------------------------------------------ benchmark

/// Busy CPU time of the whole machine so far, in seconds (/proc/stat
/// counts in USER_HZ, 100 on every architecture rauta runs on).
fn machine_busy() -> f64 {
    machine_busy_jiffies() as f64 / 100.0
}

/// One long echoed stream of `bytes` each way through `port`: seconds and
/// whole-machine CPU seconds.
fn stream(net: &Net, port: u16, bytes: usize) -> std::io::Result<(f64, f64)> {
    let payload = pattern(7, bytes);
    let (t0, c0) = (std::time::Instant::now(), machine_busy());
    let back = net.round_trip_to(port, payload)?;
    let (secs, cpu) = (t0.elapsed().as_secs_f64(), machine_busy() - c0);
    if back.len() <= bytes {
        return Err(std::io::Error::other(format!(
            "short echo through port {port}"
        )));
    }
    Ok((secs, cpu))
}

/// Short connections (connect, 32 bytes, half-close, read the echo, close)
/// from 16 loops for `run`: connections and whole-machine CPU seconds.
fn conns(net: &Net, port: u16, run: Duration) -> (u64, f64) {
    let c0 = machine_busy();
    let done = net.client.enter(move || {
        let to = SocketAddr::new(NODE_CLIENT_IP.parse().expect("ip"), port);
        let deadline = std::time::Instant::now() + run;
        let loops: Vec<_> = (0..16)
            .map(|_| {
                thread::spawn(move || {
                    let mut n = 0u64;
                    while std::time::Instant::now() < deadline {
                        let Ok(mut s) = TcpStream::connect_timeout(&to, Duration::from_secs(2))
                        else {
                            continue;
                        };
                        let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
                        let mut back = Vec::new();
                        if s.write_all(&[b'x'; 32]).is_ok()
                            && s.shutdown(Shutdown::Write).is_ok()
                            && s.read_to_end(&mut back).is_ok()
                            && back.len() >= 32
                        {
                            n += 1;
                        }
                    }
                    n
                })
            })
            .collect();
        loops
            .into_iter()
            .map(|l| l.join().unwrap_or(0))
            .sum::<u64>()
    });
    (done, machine_busy() - c0)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

/// HAProxy `mode tcp` in the node namespace on HAPROXY_PORT.
fn haproxy(net: &Net, dir: &std::path::Path) -> std::process::Child {
    let cfg = dir.join("haproxy.cfg");
    std::fs::write(
        &cfg,
        format!(
            "global\n  maxconn 4000\ndefaults\n  mode tcp\n  timeout connect 5s\n  timeout client 60s\n  timeout server 60s\nfrontend f\n  bind {NODE_CLIENT_IP}:{HAPROXY_PORT}\n  default_backend b\nbackend b\n  server s1 {BACKEND_IP}:{BACKEND_PORT}\n"
        ),
    )
    .expect("haproxy.cfg");
    let child = std::process::Command::new("ip")
        .args(["netns", "exec", net.node.name(), "haproxy", "-db", "-f"])
        .arg(&cfg)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start haproxy");
    eventually("haproxy listens", || {
        net.round_trip_to(HAPROXY_PORT, vec![1; 8]).is_ok()
    });
    child
}

/// On the three-namespace topology, one TCP service through the XDP fast
/// path, rauta's user-space relay, rauta's kernel splice and HAProxy
/// `mode tcp`: a long stream's throughput and whole-machine CPU per GB,
/// short connections per second and whole-machine CPU per connection.
/// 3 rounds, medians.
#[test]
#[ignore = "benchmark: cargo test -p rauta-proxy --test it xdp_fast_benchmark -- --ignored --nocapture"]
fn xdp_fast_benchmark() {
    require!(
        Need::EbpfPrivilege,
        ebpf_object(),
        Need::Netns,
        Need::tool("ethtool"),
        Need::tool("haproxy")
    );
    let bytes: usize = std::env::var("XDP_FAST_BENCH_MB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256)
        << 20;
    let run = Duration::from_secs(4);
    let net = Net::new();
    let _echo = Echo::start(&net.backend);
    net.fill_neighbours();
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut ha = haproxy(&net, tmp.path());
    type Row = (Vec<f64>, Vec<f64>, Vec<f64>, Vec<f64>);
    let mut rows: Vec<(&str, Row)> = ["xdp-fast", "rauta-relay", "rauta-splice", "haproxy"]
        .iter()
        .map(|n| (*n, Row::default()))
        .collect();
    let only_splice = std::env::var("XDP_FAST_BENCH_ONLY_SPLICE").is_ok();
    let mut failures: Vec<&str> = Vec::new();
    for _round in 0..3 {
        for splice in [false, true] {
            if only_splice && !splice {
                continue;
            }
            let rauta = net.rauta_with(&["--l4-splice", if splice { "auto" } else { "off" }]);
            eventually("port 9000 is on the fast path", || {
                let r = rauta
                    .admin_get("/routes")
                    .map(|r| r.text())
                    .unwrap_or_default();
                r.contains("\"on_xdp_fast_path\":true")
            });
            let runs: &[(&str, u16)] = if splice {
                &[("rauta-splice", RELAY_PORT)]
            } else {
                &[
                    ("xdp-fast", SERVICE_PORT),
                    ("rauta-relay", RELAY_PORT),
                    ("haproxy", HAPROXY_PORT),
                ]
            };
            for (name, port) in runs {
                eprintln!("{name}: stream");
                let (secs, cpu) = match stream(&net, *port, bytes) {
                    Ok(r) => r,
                    Err(e) => {
                        let log = rauta.log();
                        let tail: Vec<&str> = log.lines().rev().take(15).collect();
                        let metrics = rauta
                            .admin_get("/metrics")
                            .map(|r| r.text())
                            .unwrap_or_default();
                        let l4: Vec<&str> = metrics
                            .lines()
                            .filter(|l| l.starts_with("rauta_l4") && !l.ends_with(" 0"))
                            .collect();
                        eprintln!("{name}: the stream failed: {e}; rauta's log ends:\n{}\nL4 metrics:\n{}", tail.into_iter().rev().collect::<Vec<_>>().join("\n"), l4.join("\n"));
                        failures.push(*name);
                        continue;
                    }
                };
                eprintln!(
                    "{name}: {:.2} Gbit/s; connections",
                    2.0 * bytes as f64 * 8.0 / 1e9 / secs
                );
                let (n, ccpu) = conns(&net, *port, run);
                let gb = 2.0 * bytes as f64 / 1e9;
                let row = &mut rows.iter_mut().find(|r| r.0 == *name).expect("row").1;
                row.0.push(gb * 8.0 / secs);
                row.1.push(cpu / gb);
                row.2.push(n as f64 / run.as_secs_f64());
                row.3.push(ccpu * 1e6 / n.max(1) as f64);
            }
        }
    }
    let _ = ha.kill();
    let _ = ha.wait();
    let medians: Vec<(&str, [f64; 4])> = rows
        .into_iter()
        .map(|(n, r)| (n, [median(r.0), median(r.1), median(r.2), median(r.3)]))
        .collect();
    let peer = medians
        .iter()
        .find(|m| m.0 == "haproxy")
        .map(|m| m.1)
        .unwrap_or([1.0; 4]);
    println!("| path | stream Gbit/s (both ways) | whole machine CPU s/GB | short conn/s | whole machine CPU µs/conn |");
    println!("|---|---|---|---|---|");
    for (name, m) in &medians {
        println!(
            "| {name} | {:.2} ({:.2}×) | {:.2} ({:.2}×) | {:.0} ({:.2}×) | {:.0} ({:.2}×) |",
            m[0],
            m[0] / peer[0],
            m[1],
            m[1] / peer[1],
            m[2],
            m[2] / peer[2],
            m[3],
            m[3] / peer[3]
        );
    }
}
