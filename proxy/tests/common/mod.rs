//! Shared set-up for the integration tests: the real `rauta` binary on
//! manifests written to a temporary directory, in front of real backends.
#![allow(dead_code)]

use rauta_testkit::{backend_for, ingress_class, Backend, ManifestDir, Rauta};
use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Our IngressClass, not marked default.
pub fn class() -> String {
    ingress_class("rauta", "rauta.io/ingress-controller", false)
}

/// Starts rauta on `dir` with extra flags.
pub fn start(dir: &ManifestDir, extra: &[&str]) -> Rauta {
    Rauta::start(env!("CARGO_BIN_EXE_rauta"), dir.path(), extra)
}

/// Starts rauta on `dir` with extra flags and a launch environment.
pub fn start_with(dir: &ManifestDir, extra: &[&str], launch: &rauta_testkit::Launch) -> Rauta {
    Rauta::start_with(env!("CARGO_BIN_EXE_rauta"), dir.path(), extra, launch)
}

/// A named backend and the Service + EndpointSlices for it in `ns`
/// (Service port 80 named `http`).
pub fn service(ns: &str, name: &str) -> (Backend, String) {
    let b = Backend::start(name);
    let yaml = backend_for(ns, name, "http", &[&b]);
    (b, yaml)
}

/// One path entry of an Ingress rule (YAML list item).
pub fn path(path: &str, path_type: &str, service: &str) -> String {
    format!(
        "- path: {path}\n  pathType: {path_type}\n  backend:\n    service:\n      name: {service}\n      port:\n        name: http\n"
    )
}

/// An Ingress rule (YAML list item) for `host` (None: no host) with paths.
pub fn rule(host: Option<&str>, paths: &[String]) -> String {
    let mut y = String::new();
    match host {
        Some(h) => y.push_str(&format!("- host: \"{h}\"\n  http:\n    paths:\n")),
        None => y.push_str("- http:\n    paths:\n"),
    }
    for p in paths {
        for line in p.lines() {
            y.push_str("      ");
            y.push_str(line);
            y.push('\n');
        }
    }
    y
}

/// Which backend answered a GET (its `x-backend` header), or the status
/// when the proxy answered itself.
pub fn who(rauta: &Rauta, host: &str, path: &str) -> String {
    match rauta_testkit::get(rauta.addr(), host, path) {
        Ok(r) => r
            .header("x-backend")
            .map(str::to_string)
            .unwrap_or_else(|| r.status.to_string()),
        Err(e) => format!("error: {e}"),
    }
}

/// Polls until `f` returns true (panics after `timeout`).
pub fn eventually(timeout: Duration, what: &str, mut f: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + timeout;
    while !f() {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for: {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A minimal keep-alive backend with scripted timing: every request is
/// answered `delay` after it arrived (200, `x-backend: scripted`, empty
/// body), and with `idle_close` the connection is closed once it has been
/// idle that long, as an upstream with a short keepalive_timeout does.
pub struct ScriptedBackend {
    /// Port it listens on (127.0.0.1).
    pub port: u16,
    /// Requests answered.
    pub requests: Arc<AtomicU64>,
    /// Connections accepted.
    pub accepted: Arc<AtomicU64>,
}

impl ScriptedBackend {
    /// Starts it on an ephemeral port.
    pub fn start(delay: Duration, idle_close: Option<Duration>) -> ScriptedBackend {
        let answer = b"HTTP/1.1 200 OK\r\nx-backend: scripted\r\nContent-Length: 0\r\n\r\n";
        ScriptedBackend::start_with(delay, idle_close, answer.to_vec())
    }

    /// Starts one that answers every request head with `answer` as is
    /// (for upstream responses no real server would send).
    pub fn answering(answer: &[u8]) -> ScriptedBackend {
        ScriptedBackend::start_with(Duration::ZERO, None, answer.to_vec())
    }

    fn start_with(
        delay: Duration,
        idle_close: Option<Duration>,
        answer: Vec<u8>,
    ) -> ScriptedBackend {
        let answer: Arc<[u8]> = answer.into();
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let requests = Arc::new(AtomicU64::new(0));
        let accepted = Arc::new(AtomicU64::new(0));
        let (req, acc) = (requests.clone(), accepted.clone());
        std::thread::spawn(move || {
            for mut stream in listener.incoming().flatten() {
                acc.fetch_add(1, Ordering::SeqCst);
                let req = req.clone();
                let answer = answer.clone();
                std::thread::spawn(move || {
                    let _ = stream
                        .set_read_timeout(Some(idle_close.unwrap_or(Duration::from_secs(60))));
                    let mut buf = Vec::new();
                    let mut piece = [0u8; 4096];
                    loop {
                        match stream.read(&mut piece) {
                            Ok(0) | Err(_) => return, // closed, or idle too long
                            Ok(n) => buf.extend_from_slice(&piece[..n]),
                        }
                        while let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                            buf.drain(..end + 4);
                            req.fetch_add(1, Ordering::SeqCst);
                            std::thread::sleep(delay);
                            if stream.write_all(&answer).is_err() {
                                return;
                            }
                        }
                    }
                });
            }
        });
        ScriptedBackend {
            port,
            requests,
            accepted,
        }
    }
}

/// One sample of a Prometheus text exposition.
#[derive(Debug, Clone)]
pub struct Sample {
    /// Metric name (with `_bucket`/`_sum`/`_count` suffixes as written).
    pub name: String,
    /// Labels.
    pub labels: std::collections::BTreeMap<String, String>,
    /// Value.
    pub value: f64,
}

/// Parses Prometheus text format (enough for rauta's own output).
pub fn parse_metrics(text: &str) -> Vec<Sample> {
    let mut out = Vec::new();
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
    {
        let (series, value) = line.rsplit_once(' ').expect("sample line has a value");
        let value: f64 = value.parse().expect("numeric value");
        let (name, labels) = match series.split_once('{') {
            Some((name, rest)) => (name, rest.strip_suffix('}').expect("closing brace")),
            None => (series, ""),
        };
        let mut map = std::collections::BTreeMap::new();
        let mut rest = labels;
        while let Some((key, after)) = rest.split_once("=\"") {
            let mut val = String::new();
            let mut chars = after.char_indices();
            let mut end = after.len();
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => {
                        if let Some((_, n)) = chars.next() {
                            val.push(if n == 'n' { '\n' } else { n });
                        }
                    }
                    '"' => {
                        end = i + 1;
                        break;
                    }
                    c => val.push(c),
                }
            }
            map.insert(key.trim_start_matches(',').to_string(), val);
            rest = &after[end..];
        }
        out.push(Sample {
            name: name.to_string(),
            labels: map,
            value,
        });
    }
    out
}

/// The value of the sample named `name` whose labels include all of
/// `labels` (0 when absent).
pub fn metric(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> f64 {
    samples
        .iter()
        .filter(|s| {
            s.name == name
                && labels
                    .iter()
                    .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|s| s.value)
        .sum()
}

/// Scrapes `/metrics` from rauta's admin port.
pub fn scrape(rauta: &Rauta) -> (String, Vec<Sample>) {
    let r = rauta.admin_get("/metrics").expect("scrape");
    assert_eq!(r.status, 200);
    let text = r.text();
    let samples = parse_metrics(&text);
    (text, samples)
}

/// Sends `texts` text messages and one binary message of `big` bytes over
/// a WebSocket whose far end echoes, checks every echo, then closes.
pub fn websocket_echoes<S: Read + Write>(
    ws: &mut tungstenite::WebSocket<S>,
    texts: usize,
    big: usize,
) {
    for i in 0..texts {
        ws.send(tungstenite::Message::text(format!("hello {i}")))
            .expect("send");
        let echo = ws.read().expect("echo");
        assert_eq!(
            echo.into_text().expect("text").as_str(),
            format!("hello {i}")
        );
    }
    let big = vec![7u8; big];
    ws.send(tungstenite::Message::binary(big.clone()))
        .expect("send binary");
    assert_eq!(ws.read().expect("echo").into_data().as_ref(), &big[..]);
    ws.close(None).expect("close");
}
