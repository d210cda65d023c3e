//! The hang and crash paths, through the real binary: a panicking
//! connection, idle and dead tunnel peers, the open-file limit.

use crate::common::{service, start, start_with};
use rauta_testkit::manifests::join;
use rauta_testkit::{eventually, patience, rauta_class, require, Need};
use rauta_testkit::{get, ingress, Backend, Conn, Launch, ManifestDir, Rauta};
use std::net::TcpStream;
use std::process::Command;
use std::time::Duration;

/// Manifests routing every host and path to one backend.
fn manifests() -> (Backend, ManifestDir) {
    let (backend, svc) = service("h", "app");
    let ing = ingress(
        "h",
        "all",
        Some("rauta"),
        &[],
        "defaultBackend:\n  service:\n    name: app\n    port:\n      name: http\n",
    );
    let dir = ManifestDir::new();
    dir.write("all.yaml", &join(&[&rauta_class(), &svc, &ing]));
    (backend, dir)
}

#[test]
fn a_panicking_connection_costs_only_itself() {
    let (_backend, dir) = manifests();
    let launch = Launch {
        env: vec![("RAUTA_TEST_PANIC_PATH".into(), "/__panic".into())],
        ..Launch::default()
    };
    // One shard: the panic and the requests after it share it.
    let rauta = start_with(&dir, &["--shards", "1"], &launch);
    let mut neighbour = Conn::open(rauta.addr()).expect("connect");
    let r = neighbour
        .request("GET", "a", "/before", &[], b"")
        .expect("response");
    assert_eq!(r.status, 200);

    let mut victim = Conn::open(rauta.addr()).expect("connect");
    victim
        .send(b"GET /__panic HTTP/1.1\r\nHost: a\r\n\r\n")
        .expect("send");
    assert!(
        victim.is_closed_by_peer(patience()),
        "the panicking connection is closed"
    );
    // The other connection on the same shard, and new ones, go on.
    let r = neighbour
        .request("GET", "a", "/after", &[], b"")
        .expect("the neighbour's keep-alive connection still works");
    assert_eq!(r.status, 200);
    assert_eq!(get(rauta.addr(), "a", "/new").expect("new").status, 200);
    let samples = rauta.scrape();
    assert_eq!(samples.value("rauta_panics_total", &[]), 1.0);
    // The runtime's own anomaly counters are exported, and quiet.
    for name in [
        "rauta_io_uring_dropped_completions_total",
        "rauta_io_uring_poll_errors_total",
        "rauta_io_uring_enter_errors_total",
    ] {
        assert!(samples.has(name, &[]), "{name} on /metrics");
        assert_eq!(samples.value(name, &[]), 0.0, "{name}");
    }
    assert!(
        rauta.log().contains("test hook: a request for /__panic"),
        "the panic is logged with its message:\n{}",
        rauta.log()
    );
}

/// rauta's sockets towards `port` (either end) as `ss -tnoH` shows them.
fn sockets_on(port: u16) -> String {
    let out = Command::new("ss")
        .args(["-tnoH", "state", "established"])
        .arg(format!("( sport = :{port} or dport = :{port} )"))
        .output()
        .expect("ss (iproute2) runs");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn websocket(rauta: &Rauta) -> tungstenite::WebSocket<TcpStream> {
    let stream = TcpStream::connect(rauta.addr()).expect("connect");
    stream.set_read_timeout(Some(patience())).expect("timeout");
    let url = format!("ws://{}/ws", rauta.addr());
    let (ws, resp) = tungstenite::client::client(url.as_str(), stream).expect("handshake");
    assert_eq!(resp.status(), 101);
    ws
}

#[test]
fn tunnels_idle_out_and_probe_their_peers() {
    require!(Need::tool("ss"));
    let (backend, dir) = manifests();
    let rauta = start(&dir, &["--tunnel-idle-timeout", "1s"]);

    // A busy tunnel outlives the idle timeout.
    let mut busy = websocket(&rauta);
    for i in 0..8 {
        busy.send(tungstenite::Message::text(format!("m{i}")))
            .expect("send");
        let echo = busy.read().expect("echo while busy");
        assert_eq!(echo.into_text().expect("text").as_str(), format!("m{i}"));
        std::thread::sleep(Duration::from_millis(250)); // pacing: 2 s in all
    }
    // Both of rauta's tunnel sockets probe with TCP keepalive: on the
    // client side (rauta's listen port) and towards the backend.
    let client_side = sockets_on(rauta.addr().port());
    let backend_side = sockets_on(backend.port());
    assert!(
        client_side.contains("keepalive") && backend_side.contains("keepalive"),
        "keepalive timers on the tunnel sockets:\nclient side:\n{client_side}\nbackend side:\n{backend_side}"
    );

    // A silent one is closed by rauta, towards the client...
    let mut silent = websocket(&rauta);
    silent
        .get_mut()
        .set_read_timeout(Some(patience()))
        .expect("timeout");
    let started = std::time::Instant::now();
    let end = silent.read();
    assert!(
        matches!(
            end,
            Err(tungstenite::Error::ConnectionClosed
                | tungstenite::Error::AlreadyClosed
                | tungstenite::Error::Protocol(_)
                | tungstenite::Error::Io(_))
        ),
        "the idle tunnel ends: {end:?}"
    );
    assert!(
        started.elapsed() < patience(),
        "closed by the idle timeout, not the test's read timeout"
    );
    // ...and towards the backend: only the busy tunnel's socket is left.
    eventually("the idle tunnel's upstream socket closes", || {
        sockets_on(backend.port()).lines().count() <= 2
    });
}

#[test]
fn the_open_file_limit_is_raised_and_sizes_the_connection_cap() {
    require!(Need::tool("prlimit"));
    let (_backend, dir) = manifests();
    // A low soft limit under a higher hard one: raised to the hard one.
    let launch = Launch {
        nofile: Some((200, 4096)),
        ..Launch::default()
    };
    let rauta = start_with(&dir, &["--shards", "1"], &launch);
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", rauta.pid())).expect("limits");
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .expect("Max open files line");
    let fields: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(&fields[3..5], ["4096", "4096"], "{line}");
    drop(rauta);

    // A hard limit too low for the default cap: the cap shrinks to fit, so
    // connections beyond it wait in the backlog instead of failing.
    let launch = Launch {
        nofile: Some((200, 200)),
        ..Launch::default()
    };
    let rauta = start_with(&dir, &["--shards", "1"], &launch);
    assert!(
        rauta
            .log()
            .contains("connection cap sized to the open-file limit"),
        "{}",
        rauta.log()
    );
    // 75 fit (200 less 50 reserved, 2 per connection); 100 are opened.
    let idle: Vec<TcpStream> = (0..100)
        .map(|_| TcpStream::connect(rauta.addr()).expect("connect"))
        .collect();
    eventually("75 connections accepted", || {
        let samples = rauta.scrape();
        samples.value("rauta_open_connections", &[]) == 75.0
    });
    let samples = rauta.scrape();
    assert_eq!(
        samples.value("rauta_accept_errors_total", &[]),
        0.0,
        "no accept failed"
    );
    drop(idle);
    assert_eq!(get(rauta.addr(), "a", "/").expect("request").status, 200);
}

#[test]
fn accept_failures_back_off_and_are_counted_not_logged_each_time() {
    require!(Need::tool("prlimit"));
    let (_backend, dir) = manifests();
    // An explicit cap above what the limit carries: rauta warns, keeps it,
    // and then runs out of descriptors.
    let launch = Launch {
        nofile: Some((120, 120)),
        ..Launch::default()
    };
    let rauta = start_with(
        &dir,
        &["--shards", "1", "--max-connections-per-shard", "1000"],
        &launch,
    );
    assert!(rauta.log().contains("expect EMFILE"), "{}", rauta.log());
    let idle: Vec<TcpStream> = (0..150)
        .filter_map(|_| TcpStream::connect(rauta.addr()).ok())
        .collect();
    std::thread::sleep(Duration::from_secs(2)); // pacing: let accept fail for a while
    let warnings = rauta.log().matches("accept failing").count();
    assert!(
        (1..=2).contains(&warnings),
        "one warning per interval, got {warnings}:\n{}",
        rauta.log()
    );
    drop(idle);
    // Descriptors come back: rauta serves again and the failures are counted.
    eventually("serving again", || {
        get(rauta.addr(), "a", "/").is_ok_and(|r| r.status == 200)
    });
    let samples = rauta.scrape();
    assert!(samples.value("rauta_accept_errors_total", &[("reason", "descriptors")]) > 0.0);
}
