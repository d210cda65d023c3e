//! TCP and UDP services (`--tcp-services-configmap`,
//! `--udp-services-configmap`): real TCP and UDP backends behind the real
//! binary, clients on real sockets.

use crate::annotated::{serve_docs_with, service_on};
use rauta_testkit::{eventually, free_port, require, ManifestDir, Need, Rauta};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

/// A ConfigMap `web/NAME` with `entries` (key, value).
fn config_map(name: &str, entries: &[(String, String)]) -> String {
    let mut y = format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n  namespace: web\ndata:\n"
    );
    for (k, v) in entries {
        y.push_str(&format!("  \"{k}\": \"{v}\"\n"));
    }
    y
}

/// A TCP backend: each connection's first line is sent back as
/// `first: LINE` when it is a PROXY header, then every byte is echoed until
/// the client's half-close, then `bytes: N` and close.
fn echo_backend() -> (u16, mpsc::Receiver<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(conn) = conn else { return };
            let tx = tx.clone();
            thread::spawn(move || {
                let mut reader = BufReader::new(conn.try_clone().unwrap());
                let mut writer = conn;
                let mut total = 0usize;
                let buf = reader.fill_buf().map(<[u8]>::to_vec).unwrap_or_default();
                if buf.starts_with(b"PROXY ") {
                    let mut line = String::new();
                    reader.read_line(&mut line).unwrap();
                    let _ = tx.send(line.trim_end().to_string());
                }
                let mut chunk = [0u8; 65536];
                loop {
                    match reader.read(&mut chunk) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            total += n;
                            if writer.write_all(&chunk[..n]).is_err() {
                                return;
                            }
                        }
                    }
                }
                let _ = writer.write_all(format!("bytes: {total}").as_bytes());
            });
        }
    });
    (port, rx)
}

fn serve_tcp(
    entries: &[(String, String)],
    services: &[String],
    flags: &[&str],
) -> (ManifestDir, Rauta) {
    let map = config_map("tcp-services", entries);
    let mut docs: Vec<&str> = services.iter().map(String::as_str).collect();
    docs.push(&map);
    let mut args = vec![
        "--shards",
        "2",
        "--tcp-services-configmap",
        "web/tcp-services",
    ];
    args.extend_from_slice(flags);
    serve_docs_with(&docs, &args)
}

/// Connects to the service port, retrying while rauta's sockets appear.
fn connect(port: u16) -> TcpStream {
    let mut last = None;
    for _ in 0..100 {
        match TcpStream::connect(("127.0.0.1", port)) {
            Ok(s) => {
                s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                return s;
            }
            Err(e) => last = Some(e),
        }
        thread::sleep(Duration::from_millis(50));
    }
    panic!("port {port} never accepted: {last:?}");
}

/// Sends `payload`, half-closes, and reads everything back.
fn round_trip(port: u16, payload: &[u8]) -> Vec<u8> {
    let mut s = connect(port);
    let writer = {
        let mut w = s.try_clone().unwrap();
        let payload = payload.to_vec();
        thread::spawn(move || {
            w.write_all(&payload).unwrap();
            w.shutdown(Shutdown::Write).unwrap();
        })
    };
    let mut back = Vec::new();
    s.read_to_end(&mut back).unwrap();
    writer.join().unwrap();
    back
}

fn metric(rauta: &Rauta, name: &str, port: u16) -> f64 {
    rauta
        .scrape()
        .value(name, &[("service", &format!("tcp/{port}"))])
}

#[test]
fn a_tcp_service_relays_megabytes_both_ways_and_passes_the_half_close_on() {
    let (backend, _) = echo_backend();
    let port = free_port();
    let (_dir, rauta) = serve_tcp(
        &[(port.to_string(), "web/db:80".into())],
        &[service_on("db", &[backend])],
        &[],
    );
    let payload: Vec<u8> = (0..4 << 20).map(|i| (i % 251) as u8).collect();
    let back = round_trip(port, &payload);
    // The echo, then the backend's count: it saw the client's half-close
    // (or it would never have counted), and its answer still came back.
    assert_eq!(&back[..payload.len()], &payload[..]);
    assert_eq!(
        String::from_utf8_lossy(&back[payload.len()..]),
        format!("bytes: {}", payload.len())
    );
    eventually("the expected state", || {
        metric(&rauta, "rauta_l4_active_connections", port) == 0.0
    });
    assert_eq!(metric(&rauta, "rauta_l4_connections_total", port), 1.0);
    assert_eq!(
        metric(&rauta, "rauta_l4_received_bytes_total", port),
        payload.len() as f64
    );
    let routes = String::from_utf8_lossy(&rauta.admin_get("/routes").unwrap().body).into_owned();
    assert!(routes.contains(&format!("\"port\":{port}")), "{routes}");
    assert!(routes.contains("\"listening\":true"), "{routes}");
}

#[test]
fn proxy_protocol_is_read_from_the_balancer_and_written_to_the_backend() {
    let (backend, seen) = echo_backend();
    let port = free_port();
    let (_dir, rauta) = serve_tcp(
        &[(port.to_string(), "web/db:80:PROXY:PROXY".into())],
        &[service_on("db", &[backend])],
        &[],
    );
    // A load balancer's header: the backend must see the client it names.
    let header = format!("PROXY TCP4 203.0.113.7 127.0.0.1 40000 {port}\r\n");
    let mut wire = header.into_bytes();
    wire.extend_from_slice(b"hello");
    let back = round_trip(port, &wire);
    assert_eq!(String::from_utf8_lossy(&back), "hellobytes: 5");
    let line = seen.recv_timeout(Duration::from_secs(5)).unwrap();
    assert_eq!(
        line,
        format!("PROXY TCP4 203.0.113.7 127.0.0.1 40000 {port}")
    );

    // A version 2 header works too.
    let mut v2 = b"\r\n\r\n\0\r\nQUIT\n\x21\x11\x00\x0c".to_vec();
    v2.extend_from_slice(&[198, 51, 100, 9, 127, 0, 0, 1]);
    v2.extend_from_slice(&5555u16.to_be_bytes());
    v2.extend_from_slice(&port.to_be_bytes());
    v2.extend_from_slice(b"v2");
    assert_eq!(
        String::from_utf8_lossy(&round_trip(port, &v2)),
        "v2bytes: 2"
    );
    let line = seen.recv_timeout(Duration::from_secs(5)).unwrap();
    assert_eq!(
        line,
        format!("PROXY TCP4 198.51.100.9 127.0.0.1 5555 {port}")
    );

    // Without a header the connection is refused, and counted.
    let back = round_trip(port, b"GET / HTTP/1.1\r\n\r\n");
    assert!(back.is_empty(), "{:?}", String::from_utf8_lossy(&back));
    eventually("the expected state", || {
        metric(&rauta, "rauta_l4_proxy_header_errors_total", port) == 1.0
    });
}

#[test]
fn connects_go_on_to_the_next_endpoint_when_one_refuses() {
    let (backend, _) = echo_backend();
    let refused = free_port();
    let port = free_port();
    let (_dir, rauta) = serve_tcp(
        &[(port.to_string(), "web/db:80".into())],
        &[service_on("db", &[refused, backend])],
        &[],
    );
    for i in 0..10 {
        let msg = format!("try {i}");
        let back = round_trip(port, msg.as_bytes());
        assert_eq!(
            String::from_utf8_lossy(&back),
            format!("{msg}bytes: {}", msg.len())
        );
    }
    assert!(metric(&rauta, "rauta_l4_connect_failures_total", port) >= 1.0);
    assert_eq!(metric(&rauta, "rauta_l4_unserved_total", port), 0.0);
}

#[test]
fn bad_entries_are_reported_and_everything_else_is_served() {
    let (backend, _) = echo_backend();
    let good = free_port();
    let (dir, rauta) = serve_tcp(
        &[
            (good.to_string(), "web/db:80".into()),
            ("http".into(), "web/db:80".into()),
            ("9".into(), "db-without-namespace:80".into()),
        ],
        &[service_on("db", &[backend])],
        &[],
    );
    let log = rauta.log();
    for says in ["port number from 1 to 65535", "db-without-namespace"] {
        assert!(
            log.lines().any(|l| l.contains("ConfigMap web/tcp-services")
                && l.contains(says)
                && l.contains("all.yaml")),
            "no report saying {says}:\n{log}"
        );
    }
    assert_eq!(round_trip(good, b"ok"), b"okbytes: 2");
    // An entry on rauta's own HTTP port is refused with the ConfigMap and
    // key; a port another process holds cannot listen and /routes says
    // why; HTTP is still served, and so is the good entry.
    let http = rauta.addr().port();
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let taken_port = taken.local_addr().unwrap().port();
    let map = config_map(
        "tcp-services",
        &[
            (good.to_string(), "web/db:80".into()),
            (http.to_string(), "web/db:80".into()),
            (taken_port.to_string(), "web/db:80".into()),
        ],
    );
    let generation = rauta.generation().unwrap_or(0);
    let class = rauta_testkit::manifests::rauta_class();
    let svc = service_on("db", &[backend]);
    dir.write(
        "all.yaml",
        &rauta_testkit::manifests::join(&[&class, &svc, &map]),
    );
    rauta.wait_generation(generation + 1);
    let log = rauta.log();
    assert!(
        log.lines().any(|l| l.contains("ConfigMap web/tcp-services")
            && l.contains(&format!("port {http} is rauta's own HTTP"))),
        "{log}"
    );
    let routes = String::from_utf8_lossy(&rauta.admin_get("/routes").unwrap().body).into_owned();
    let json: serde_json::Value = serde_json::from_str(&routes).unwrap();
    let services = json["l4_services"].as_array().unwrap();
    let taken_entry = services.iter().find(|s| s["port"] == taken_port).unwrap();
    assert_eq!(taken_entry["listening"], false, "{routes}");
    assert!(
        taken_entry["error"].as_str().unwrap().contains("in use"),
        "{routes}"
    );
    assert!(!services.iter().any(|s| s["port"] == http), "{routes}");
    assert_eq!(round_trip(good, b"still"), b"stillbytes: 5");
    let mut http_client = connect(http);
    http_client
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut answer = String::new();
    http_client.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 404"), "{answer}");
    drop(taken);
}

#[test]
fn a_removed_service_refuses_new_connections_and_closes_old_ones_after_the_grace() {
    let (backend, _) = echo_backend();
    let port = free_port();
    let kept = free_port();
    let (dir, rauta) = serve_tcp(
        &[
            (port.to_string(), "web/db:80".into()),
            (kept.to_string(), "web/db:80".into()),
        ],
        &[service_on("db", &[backend])],
        &["--l4-close-grace", "1s"],
    );
    let mut old = connect(port);
    old.write_all(b"before").unwrap();
    let mut buf = [0u8; 6];
    old.read_exact(&mut buf).unwrap();
    let mut survivor = connect(kept);
    survivor.write_all(b"x").unwrap();
    survivor.read_exact(&mut buf[..1]).unwrap();

    let generation = rauta.generation().unwrap_or(0);
    let class = rauta_testkit::manifests::rauta_class();
    let svc = service_on("db", &[backend]);
    let map = config_map("tcp-services", &[(kept.to_string(), "web/db:80".into())]);
    dir.write(
        "all.yaml",
        &rauta_testkit::manifests::join(&[&class, &svc, &map]),
    );
    rauta.wait_generation(generation + 1);
    eventually("the expected state", || {
        TcpStream::connect(("127.0.0.1", port)).is_err()
    });
    // The old flow still works within the grace period, then is closed.
    old.write_all(b"during").unwrap();
    old.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"during");
    let mut rest = Vec::new();
    old.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let _ = old.read_to_end(&mut rest);
    assert_eq!(metric(&rauta, "rauta_l4_removed_closed_total", port), 1.0);
    // The service that stayed kept its flow through the swap.
    survivor.write_all(b"y").unwrap();
    survivor.read_exact(&mut buf[..1]).unwrap();
    assert_eq!(buf[0], b'y');
}

#[test]
fn connections_leave_no_descriptors_behind() {
    let (backend, _) = echo_backend();
    let port = free_port();
    let (_dir, rauta) = serve_tcp(
        &[(port.to_string(), "web/db:80".into())],
        &[service_on("db", &[backend])],
        &[],
    );
    let fds = || {
        std::fs::read_dir(format!("/proc/{}/fd", rauta.pid()))
            .unwrap()
            .count()
    };
    assert_eq!(round_trip(port, b"warm"), b"warmbytes: 4");
    eventually("the expected state", || {
        metric(&rauta, "rauta_l4_active_connections", port) == 0.0
    });
    let baseline = fds();
    for _ in 0..200 {
        assert_eq!(round_trip(port, b"x"), b"xbytes: 1");
    }
    // A client that resets mid-flow is cleaned up too.
    let s = connect(port);
    socket2::SockRef::from(&s)
        .set_linger(Some(Duration::ZERO))
        .unwrap();
    drop(s);
    eventually("the expected state", || {
        metric(&rauta, "rauta_l4_active_connections", port) == 0.0 && fds() <= baseline
    });
    assert_eq!(metric(&rauta, "rauta_l4_connections_total", port), 202.0);
}

/// A UDP backend answering each datagram with `echo: DATAGRAM`.
fn udp_echo() -> u16 {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = socket.local_addr().unwrap().port();
    thread::spawn(move || {
        let mut buf = [0u8; 2048];
        while let Ok((n, from)) = socket.recv_from(&mut buf) {
            let mut answer = b"echo: ".to_vec();
            answer.extend_from_slice(&buf[..n]);
            let _ = socket.send_to(&answer, from);
        }
    });
    port
}

#[test]
fn a_udp_service_relays_each_clients_datagrams_and_bounds_its_flows() {
    let backend = udp_echo();
    let port = free_port();
    let map = config_map("udp-services", &[(port.to_string(), "web/dns:80".into())]);
    let svc = service_on("dns", &[backend]);
    let (_dir, rauta) = serve_docs_with(
        &[&svc, &map],
        &[
            "--shards",
            "1",
            "--udp-services-configmap",
            "web/udp-services",
            "--udp-max-flows",
            "2",
        ],
    );
    let target: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let ask = |client: &UdpSocket, msg: &str| -> Option<String> {
        client.send_to(msg.as_bytes(), target).ok()?;
        let mut buf = [0u8; 2048];
        let n = client.recv(&mut buf).ok()?;
        Some(String::from_utf8_lossy(&buf[..n]).into_owned())
    };
    let clients: Vec<UdpSocket> = (0..3)
        .map(|_| {
            let c = UdpSocket::bind("127.0.0.1:0").unwrap();
            c.set_read_timeout(Some(Duration::from_millis(300)))
                .unwrap();
            c
        })
        .collect();
    // The socket appears with the table; ask until it answers.
    eventually("the expected state", || ask(&clients[0], "hi").is_some());
    assert_eq!(ask(&clients[0], "again").as_deref(), Some("echo: again"));
    assert_eq!(ask(&clients[1], "second").as_deref(), Some("echo: second"));
    // A third client would need a third flow: dropped and counted.
    assert_eq!(ask(&clients[2], "third"), None);
    let udp = |name: &str| {
        rauta
            .scrape()
            .value(name, &[("service", &format!("udp/{port}"))])
    };
    assert!(udp("rauta_l4_dropped_datagrams_total") >= 1.0);
    assert_eq!(udp("rauta_l4_connections_total"), 2.0);
    assert_eq!(udp("rauta_l4_active_connections"), 2.0);
}

/// Sends 16 MB each way through a TCP service of a rauta started with
/// `flags`; returns its metrics after, and the service label.
fn sixteen_megabytes_through(flags: &[&str]) -> (rauta_testkit::Metrics, String) {
    let (backend, _) = echo_backend();
    let port = free_port();
    let (_dir, rauta) = serve_tcp(
        &[(port.to_string(), "web/db:80".into())],
        &[service_on("db", &[backend])],
        flags,
    );
    let payload: Vec<u8> = (0..16 << 20).map(|i| (i % 253) as u8).collect();
    let back = round_trip(port, &payload);
    assert_eq!(&back[..payload.len()], &payload[..]);
    eventually("the flow closed", || {
        metric(&rauta, "rauta_l4_active_connections", port) == 0.0
    });
    (rauta.scrape(), format!("tcp/{port}"))
}

#[test]
fn spliced_flows_move_megabytes_that_user_space_never_copies() {
    require!(Need::EbpfPrivilege, crate::xdp_util::ebpf_object());
    let (metrics, service) = sixteen_megabytes_through(&["--l4-splice", "auto"]);
    let labels = [("service", service.as_str())];
    let relayed = metrics.value("rauta_l4_received_bytes_total", &labels)
        + metrics.value("rauta_l4_sent_bytes_total", &labels);
    assert!(relayed >= (32 << 20) as f64, "{relayed}");
    assert_eq!(
        metrics.value("rauta_l4_spliced_connections_total", &labels),
        1.0
    );
    // User space copied at most what was queued before the join; the
    // kernel's own counter shows the megabytes it moved.
    let copied = metrics.value("rauta_l4_user_space_bytes_total", &labels);
    assert!(
        copied < (1 << 20) as f64,
        "user space copied {copied} bytes"
    );
    let kernel = metrics.value("rauta_l4_splice_bytes_total", &[]);
    assert!(
        kernel >= relayed - copied,
        "kernel moved {kernel} of {relayed}"
    );

    // Relayed in user space (the default), every byte is copied there.
    let (metrics, service) = sixteen_megabytes_through(&[]);
    let labels = [("service", service.as_str())];
    assert_eq!(
        metrics.value("rauta_l4_spliced_connections_total", &labels),
        0.0
    );
    assert!(metrics.value("rauta_l4_user_space_bytes_total", &labels) >= (32 << 20) as f64);
}

#[test]
fn without_the_capability_flows_are_relayed_in_user_space_and_the_log_says_so() {
    require!(
        Need::EbpfPrivilege,
        crate::xdp_util::ebpf_object(),
        Need::tool("setpriv")
    );
    let tmp = tempfile::tempdir().unwrap();
    let wrapper = tmp.path().join("rauta-without-bpf");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\nexec setpriv --bounding-set=-bpf,-net_admin,-sys_admin,-perfmon --inh-caps=-bpf,-net_admin,-sys_admin,-perfmon -- {} \"$@\"\n",
            crate::common::BIN
        ),
    )
    .unwrap();
    std::fs::set_permissions(
        &wrapper,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let (backend, _) = echo_backend();
    let port = free_port();
    let map = config_map("tcp-services", &[(port.to_string(), "web/db:80".into())]);
    let dir = ManifestDir::new();
    let class = rauta_testkit::manifests::rauta_class();
    let svc = service_on("db", &[backend]);
    dir.write(
        "all.yaml",
        &rauta_testkit::manifests::join(&[&class, &svc, &map]),
    );
    let rauta = Rauta::start(
        &wrapper,
        dir.path(),
        &[
            "--xdp",
            "off",
            "--l4-splice",
            "auto",
            "--tcp-services-configmap",
            "web/tcp-services",
        ],
    );
    assert_eq!(round_trip(port, b"unprivileged"), b"unprivilegedbytes: 12");
    let log = rauta.log();
    let lines: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("L4 splice off"))
        .collect();
    assert_eq!(lines.len(), 1, "one line about the splice:\n{log}");
    assert!(lines[0].contains("CAP_BPF"), "{}", lines[0]);
    assert_eq!(
        metric(&rauta, "rauta_l4_spliced_connections_total", port),
        0.0
    );
}

#[test]
fn rauta_check_reports_bad_entries_with_their_file_and_key() {
    let map = config_map(
        "tcp-services",
        &[
            ("5432".into(), "web/db:80".into()),
            ("80".into(), "web/db:80".into()),
            ("6379".into(), "web/missing:6379".into()),
            ("x".into(), "web/db:80".into()),
        ],
    );
    let dir = ManifestDir::new();
    let class = rauta_testkit::manifests::rauta_class();
    let svc = service_on("db", &[9]);
    dir.write(
        "all.yaml",
        &rauta_testkit::manifests::join(&[&class, &svc, &map]),
    );
    let out = std::process::Command::new(crate::common::BIN)
        .args(["check", "--manifests"])
        .arg(dir.path())
        .args(["--tcp-services-configmap", "web/tcp-services"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    // The good entry is listed with the table.
    assert!(
        text.lines()
            .any(|l| l.contains("5432") && l.contains("tcp") && l.contains("web/db:80")),
        "{text}"
    );
    for says in [
        "port 80 is rauta's own HTTP (--listen) port",
        "Service web/missing not found",
        "\"x\": the key must be a port number",
    ] {
        assert!(
            text.lines().any(|l| l.contains(says)
                && l.contains("ConfigMap web/tcp-services")
                && l.contains("all.yaml")),
            "no line saying {says}:\n{text}"
        );
    }
}

#[test]
fn a_backend_reset_reaches_the_client_as_a_reset() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let backend = listener.local_addr().unwrap().port();
    thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { return };
            let mut buf = [0u8; 5];
            let _ = conn.read_exact(&mut buf);
            socket2::SockRef::from(&conn)
                .set_linger(Some(Duration::ZERO))
                .unwrap();
        }
    });
    let port = free_port();
    let (_dir, rauta) = serve_tcp(
        &[(port.to_string(), "web/db:80".into())],
        &[service_on("db", &[backend])],
        &[],
    );
    let mut client = connect(port);
    client.write_all(b"hello").unwrap();
    let mut buf = [0u8; 16];
    let read = client.read(&mut buf);
    assert_eq!(
        read.map_err(|e| e.kind()),
        Err(std::io::ErrorKind::ConnectionReset),
        "the client should see the backend's reset, not a clean close"
    );
    eventually("the flow closed", || {
        metric(&rauta, "rauta_l4_active_connections", port) == 0.0
    });
}

#[test]
fn a_backend_that_speaks_first_is_heard_before_the_client_sends() {
    // SMTP, MySQL, SSH: the server greets first.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let backend = listener.local_addr().unwrap().port();
    thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { return };
            let _ = conn.write_all(b"220 ready\r\n");
            let mut buf = [0u8; 64];
            if let Ok(n) = conn.read(&mut buf) {
                let _ = conn.write_all(&buf[..n]);
            }
        }
    });
    let port = free_port();
    let (_dir, _rauta) = serve_tcp(
        &[(port.to_string(), "web/mail:80".into())],
        &[service_on("mail", &[backend])],
        &[],
    );
    let mut client = connect(port);
    let mut greeting = [0u8; 11];
    client.read_exact(&mut greeting).unwrap();
    assert_eq!(&greeting, b"220 ready\r\n");
    client.write_all(b"EHLO x").unwrap();
    let mut echo = [0u8; 6];
    client.read_exact(&mut echo).unwrap();
    assert_eq!(&echo, b"EHLO x");
}

#[test]
fn a_flood_of_connections_waits_within_the_shards_connection_cap() {
    let (backend, _) = echo_backend();
    let port = free_port();
    let (_dir, rauta) = serve_docs_with(
        &[
            &service_on("db", &[backend]),
            &config_map("tcp-services", &[(port.to_string(), "web/db:80".into())]),
        ],
        &[
            "--shards",
            "1",
            // Each accept loop holds a permit while it waits (the HTTP
            // listener's too): 3 leaves two for TCP service connections.
            "--max-connections-per-shard",
            "3",
            "--tcp-services-configmap",
            "web/tcp-services",
        ],
    );
    let echo = |s: &mut TcpStream, msg: &[u8]| -> bool {
        let mut buf = vec![0u8; msg.len()];
        s.write_all(msg).is_ok() && s.read_exact(&mut buf).is_ok() && buf == msg
    };
    let mut first = connect(port);
    let mut second = connect(port);
    assert!(echo(&mut first, b"1") && echo(&mut second, b"2"));
    // The third waits in the backlog: nothing relayed while two are open.
    let mut third = connect(port);
    third
        .set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    assert!(
        !echo(&mut third, b"3"),
        "a third connection was served past the cap"
    );
    drop(first);
    third
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut buf = [0u8; 1];
    third.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"3");
    assert_eq!(metric(&rauta, "rauta_l4_active_connections", port), 2.0);
}

/// A ConfigMap marking services for the XDP fast path on a rauta without
/// `--xdp-fast-path`: the services are relayed in user space, the log says
/// why once, and an entry the fast path could never carry (a PROXY field)
/// is reported with its key.
#[test]
fn fast_path_marks_without_the_fast_path_are_relayed_and_explained() {
    let (backend, _) = echo_backend();
    let (port, proxied) = (free_port(), free_port());
    let map = format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: tcp-services\n  namespace: web\n  annotations:\n    rauta.io/xdp-fast-path: \"*\"\ndata:\n  \"{port}\": \"web/db:80\"\n  \"{proxied}\": \"web/db:80::PROXY\"\n"
    );
    let db = service_on("db", &[backend]);
    let (_dir, rauta) = serve_docs_with(
        &[&db, &map],
        &["--tcp-services-configmap", "web/tcp-services"],
    );
    let back = round_trip(port, b"hello");
    assert_eq!(&back[..5], b"hello");
    assert_eq!(metric(&rauta, "rauta_l4_connections_total", port), 1.0);
    let log = rauta.log();
    let marked: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("marked rauta.io/xdp-fast-path, but the XDP fast path is off"))
        .collect();
    assert_eq!(marked.len(), 1, "{log}");
    assert!(
        log.lines()
            .any(|l| l.contains(&format!("key \"{proxied}\""))
                && l.contains("PROXY protocol field stays in user space")),
        "{log}"
    );
    let routes = String::from_utf8_lossy(&rauta.admin_get("/routes").unwrap().body).into_owned();
    assert!(routes.contains("\"xdp_fast_path\":true"), "{routes}");
    assert!(!routes.contains("\"on_xdp_fast_path\":true"), "{routes}");
}
