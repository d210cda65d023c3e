//! The XDP L4 fast path end to end, over three network namespaces the test
//! creates: client ns -> veth -> node ns (rauta, `xdp_ingress` on both of
//! its veths, forwarding on) -> veth -> backend ns (a TCP echo server).
//! Real TCP connections from the client to a TCP service marked
//! `rauta.io/xdp-fast-path` arrive intact at the backend from the node's
//! address and a port of the NAT range, and never reach rauta's user-space
//! relay. Needs root, `ip` and `ethtool`.

use crate::common::BIN;
use crate::xdp_util::{ebpf_object, foreign_xdp, ForeignXdp};
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
const SERVICE_PORT: u16 = 9000;
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
        let listener =
            ns.enter(|| TcpListener::bind((BACKEND_IP, BACKEND_PORT)).expect("bind the backend"));
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
            &[&format!("{BACKEND_IP}/24")],
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
        let mut docs = vec![
            service("web", "fast", &[(Some("tcp"), 80, BACKEND_PORT)]),
            endpoint_slice(
                "web",
                "fast-0",
                "fast",
                &[(Some("tcp"), BACKEND_PORT)],
                &[EndpointSpec::ready(BACKEND_IP)],
            ),
        ];
        docs.push(format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: tcp-services\n  namespace: web\n  annotations:\n    rauta.io/xdp-fast-path: \"{SERVICE_PORT}\"\ndata:\n  \"{SERVICE_PORT}\": \"web/fast:80\"\n"
        ));
        dir.write("all.yaml", &docs.join("---\n"));
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
            .start()
    }

    /// Sends `payload` to the service from the client namespace, half-closes,
    /// and returns everything that came back.
    fn round_trip(&self, payload: Vec<u8>) -> std::io::Result<Vec<u8>> {
        self.client.enter(move || {
            let to = SocketAddr::new(NODE_CLIENT_IP.parse().expect("ip"), SERVICE_PORT);
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
    // Neighbour entries in the node for both sides, so that the first SYN
    // finds them (without, it falls back to user space: see the fixtures):
    // a connection to the backend, and one to a closed port of the client.
    net.node.enter(|| {
        for (ip, port) in [(BACKEND_IP, BACKEND_PORT), (CLIENT_IP, 9)] {
            let to = SocketAddr::new(ip.parse().expect("ip"), port);
            let _ = TcpStream::connect_timeout(&to, Duration::from_secs(2));
        }
    });
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
