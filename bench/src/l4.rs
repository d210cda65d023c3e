//! The L4 scenarios: TCP relayed byte for byte through a TCP service.
//!
//! - `tcp-stream`: one connection downloads `--tcp-bytes` (default 1 GiB)
//!   from the origin through the proxy; throughput and CPU per GB.
//! - `tcp-conns`: `--tcp-concurrency` loops of connect → 32-byte request →
//!   32-byte echo → close for `--duration`; connections per second and CPU
//!   per 1000 connections.
//!
//! The proxies: nginx `stream`, HAProxy `mode tcp`, and rauta twice, with
//! its kernel splice (`--l4-splice auto`) and with `--l4-splice off` (user-space
//! relay); each with one worker / thread / shard on the proxy CPU. A
//! "direct" run (client straight at the origin) is the floor.
//!
//! Two CPU figures per run: the proxy's own processes (utime + stime, as
//! for HTTP), and the whole machine's busy time from `/proc/stat` (user,
//! nice, system, irq, softirq). Spliced bytes are forwarded in softirq
//! context, which no process is charged for, so the process figure alone
//! would flatter a splicing proxy; the whole-machine figure catches it, at
//! the price of also counting the origin and the load generator (the same
//! for every proxy; the direct run shows how much that is).
//!
//! The origin (`--serve-tcp-origin`) and the client (`--tcp-client`) are
//! this binary in other modes, on the client CPU. Their protocol: the
//! client sends [`REQUEST_BYTES`] bytes, the first 8 a big-endian count N;
//! the origin echoes the request, sends N more bytes, and closes.

use std::fmt::Write as _;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::rc::Rc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::peers::{self, Env, Kind, TcpOptions};
use crate::procs::{self, Child};
use crate::report::{spread, OTHER_LOAD_FLAG};
use crate::sys;

/// Size of a client request (and of the echo that opens every answer).
pub const REQUEST_BYTES: usize = 32;
/// The origin's and the stream client's I/O chunk.
const CHUNK: usize = 256 << 10;
/// How long one connect, write or read of the client may take.
const IO_TIMEOUT: Duration = Duration::from_secs(10);
/// Bytes of the warm-up download before a stream scenario's first round.
const WARM_BYTES: u64 = 64 << 20;
/// Prefix of the client's one result line.
const RESULT_PREFIX: &str = "RAUTA-BENCH-TCP";

/// An L4 scenario.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scenario {
    /// One long download through the proxy.
    Stream,
    /// Many short connections, each open → 32 bytes each way → close.
    Conns,
}

impl Scenario {
    /// `tcp-stream` or `tcp-conns`; `None` for another id.
    pub fn parse(id: &str) -> Option<Scenario> {
        match id {
            "tcp-stream" => Some(Scenario::Stream),
            "tcp-conns" => Some(Scenario::Conns),
            _ => None,
        }
    }

    /// The id on the command line and in the CSV.
    pub fn id(self) -> &'static str {
        match self {
            Scenario::Stream => "tcp-stream",
            Scenario::Conns => "tcp-conns",
        }
    }

    fn title(self) -> &'static str {
        match self {
            Scenario::Stream => "long TCP stream",
            Scenario::Conns => "many short TCP connections",
        }
    }
}

/// Who carries the bytes between client and origin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Relay {
    /// Nobody: the client talks to the origin (the floor).
    Direct,
    /// nginx `stream`.
    Nginx,
    /// HAProxy `mode tcp`.
    Haproxy,
    /// rauta with its kernel splice (`--l4-splice auto`).
    Rauta,
    /// rauta relaying in user space (`--l4-splice off`).
    RautaUserspace,
}

impl Relay {
    /// Display name.
    pub fn name(self) -> &'static str {
        match self {
            Relay::Direct => "direct",
            Relay::Nginx => "nginx",
            Relay::Haproxy => "HAProxy",
            Relay::Rauta => "rauta",
            Relay::RautaUserspace => "rauta-userspace",
        }
    }

    /// The relays for `--proxies` (rauta stands for both of its modes),
    /// after the direct run.
    pub fn for_proxies(kinds: &[Kind]) -> Vec<Relay> {
        let mut v = vec![Relay::Direct];
        for k in kinds {
            match k {
                Kind::Nginx => v.push(Relay::Nginx),
                Kind::Haproxy => v.push(Relay::Haproxy),
                Kind::Rauta => v.extend([Relay::Rauta, Relay::RautaUserspace]),
            }
        }
        v
    }

    fn is_peer(self) -> bool {
        matches!(self, Relay::Nginx | Relay::Haproxy)
    }

    fn is_rauta(self) -> bool {
        matches!(self, Relay::Rauta | Relay::RautaUserspace)
    }

    fn kind(self) -> Option<(Kind, bool)> {
        match self {
            Relay::Direct => None,
            Relay::Nginx => Some((Kind::Nginx, false)),
            Relay::Haproxy => Some((Kind::Haproxy, false)),
            Relay::Rauta => Some((Kind::Rauta, true)),
            Relay::RautaUserspace => Some((Kind::Rauta, false)),
        }
    }
}

/// A request: answer `n` bytes after the echo; `tag` makes it unique.
fn request(n: u64, tag: u64) -> [u8; REQUEST_BYTES] {
    let mut r = [b'.'; REQUEST_BYTES];
    r[..8].copy_from_slice(&n.to_be_bytes());
    r[8..16].copy_from_slice(&tag.to_be_bytes());
    r
}

/// Parses `1073741824`, `64M`, `1G`, `512KiB` (binary multiples).
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let digits = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(digits);
    let n: u64 = num.parse().map_err(|_| format!("not a size: {s:?}"))?;
    let shift = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kib" | "kb" => 10,
        "m" | "mib" | "mb" => 20,
        "g" | "gib" | "gb" => 30,
        _ => return Err(format!("unknown unit in {s:?} (K, M, G)")),
    };
    n.checked_mul(1 << shift)
        .filter(|b| *b > 0)
        .ok_or_else(|| format!("size out of range: {s:?}"))
}

// ---------------------------------------------------------------- origin

/// Serves the TCP origin on 127.0.0.1:`port` until killed: reads a
/// request, echoes it, sends the count it names, closes. One thread
/// (tokio current-thread), pinned to the client CPU by the driver.
pub fn serve_origin(port: u16) -> Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .context("start the tokio runtime")?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .with_context(|| format!("bind 127.0.0.1:{port}"))?;
        let fill: Rc<[u8]> = vec![b'x'; CHUNK].into();
        let local = tokio::task::LocalSet::new();
        local
            .run_until(async move {
                loop {
                    let (s, _) = match listener.accept().await {
                        Ok(x) => x,
                        // Out of file descriptors and the like: the client
                        // sees the failure; keep serving the others.
                        Err(_) => continue,
                    };
                    let fill = Rc::clone(&fill);
                    tokio::task::spawn_local(async move {
                        // A client that goes away mid-answer is its problem.
                        let _ = answer(s, &fill).await;
                    });
                }
            })
            .await
    })
}

async fn answer(mut s: tokio::net::TcpStream, fill: &[u8]) -> std::io::Result<()> {
    let mut req = [0u8; REQUEST_BYTES];
    s.read_exact(&mut req).await?;
    s.write_all(&req).await?;
    let mut left = u64::from_be_bytes(req[..8].try_into().unwrap_or_default());
    while left > 0 {
        let n = left.min(fill.len() as u64) as usize;
        s.write_all(&fill[..n]).await?;
        left -= n as u64;
    }
    s.shutdown().await
}

// ---------------------------------------------------------------- client

/// What one client run saw.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ClientOutcome {
    /// Completed exchanges (connections; 1 for a complete stream).
    pub ok: u64,
    /// Bytes received.
    pub bytes: u64,
    /// Seconds from the first connect to the end.
    pub secs: f64,
    /// Failed connections.
    pub errors: u64,
    /// Median time of a whole connection (connect to close), µs.
    pub p50_us: f64,
    /// 99th percentile of it, µs.
    pub p99_us: f64,
    /// The first failure, if any.
    pub first_error: String,
}

impl ClientOutcome {
    fn line(&self) -> String {
        format!(
            "{RESULT_PREFIX} ok={} bytes={} secs={:.6} errors={} p50_us={:.1} p99_us={:.1} first_error={}",
            self.ok,
            self.bytes,
            self.secs,
            self.errors,
            self.p50_us,
            self.p99_us,
            self.first_error.replace('\n', " ")
        )
    }

    /// Parses the client's result line out of its stdout.
    pub fn parse(out: &str) -> Result<ClientOutcome> {
        let line = out
            .lines()
            .find_map(|l| l.strip_prefix(RESULT_PREFIX))
            .context("no result line from the TCP client")?;
        let (fields, first_error) = line.split_once(" first_error=").unwrap_or((line, ""));
        let mut o = ClientOutcome {
            first_error: first_error.trim().to_string(),
            ..ClientOutcome::default()
        };
        for kv in fields.split_whitespace() {
            let (k, v) = kv.split_once('=').context("malformed client field")?;
            let f = || {
                v.parse::<f64>()
                    .with_context(|| format!("client field {k}={v}"))
            };
            let u = || {
                v.parse::<u64>()
                    .with_context(|| format!("client field {k}={v}"))
            };
            match k {
                "ok" => o.ok = u()?,
                "bytes" => o.bytes = u()?,
                "secs" => o.secs = f()?,
                "errors" => o.errors = u()?,
                "p50_us" => o.p50_us = f()?,
                "p99_us" => o.p99_us = f()?,
                _ => {}
            }
        }
        Ok(o)
    }
}

/// Runs the client (`--tcp-client stream|conns`) and prints its result
/// line: `stream` downloads `bytes` over one connection; `conns` runs
/// `concurrency` loops of short connections for `duration`.
pub fn client(
    mode: &str,
    addr: SocketAddr,
    bytes: u64,
    concurrency: usize,
    duration: Duration,
) -> Result<()> {
    let o = match mode {
        "stream" => stream_client(addr, bytes),
        "conns" => conns_client(addr, concurrency.max(1), duration)?,
        other => bail!("unknown TCP client mode {other:?} (stream, conns)"),
    };
    println!("{}", o.line());
    Ok(())
}

fn stream_client(addr: SocketAddr, bytes: u64) -> ClientOutcome {
    let t = Instant::now();
    let mut o = ClientOutcome::default();
    let result = (|| -> Result<u64, String> {
        let mut s =
            TcpStream::connect_timeout(&addr, IO_TIMEOUT).map_err(|e| format!("connect: {e}"))?;
        s.set_read_timeout(Some(IO_TIMEOUT))
            .map_err(|e| format!("set_read_timeout: {e}"))?;
        s.write_all(&request(bytes, 0))
            .map_err(|e| format!("write: {e}"))?;
        let mut buf = vec![0u8; CHUNK];
        let mut got = 0u64;
        loop {
            match s.read(&mut buf) {
                Ok(0) => return Ok(got),
                Ok(n) => got += n as u64,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(format!("read after {got} bytes: {e}")),
            }
        }
    })();
    o.secs = t.elapsed().as_secs_f64();
    let want = bytes + REQUEST_BYTES as u64;
    match result {
        Ok(got) if got == want => {
            o.ok = 1;
            o.bytes = got;
        }
        Ok(got) => {
            o.bytes = got;
            o.errors = 1;
            o.first_error = format!("the stream ended after {got} of {want} bytes");
        }
        Err(e) => {
            o.errors = 1;
            o.first_error = e;
        }
    }
    o.p50_us = o.secs * 1e6;
    o.p99_us = o.p50_us;
    o
}

/// One task's tally in the short-connection loop.
#[derive(Default)]
struct Tally {
    ok: u64,
    bytes: u64,
    errors: u64,
    first_error: Option<String>,
    micros: Vec<u32>,
}

fn conns_client(addr: SocketAddr, concurrency: usize, duration: Duration) -> Result<ClientOutcome> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("start the tokio runtime")?;
    let start = Instant::now();
    let end = start + duration;
    let tallies = rt.block_on(async move {
        let local = tokio::task::LocalSet::new();
        local
            .run_until(async move {
                let tasks: Vec<_> = (0..concurrency)
                    .map(|i| tokio::task::spawn_local(conns_loop(addr, end, i as u64)))
                    .collect();
                let mut v = Vec::with_capacity(tasks.len());
                for t in tasks {
                    v.push(t.await.unwrap_or_default());
                }
                v
            })
            .await
    });
    let secs = start.elapsed().as_secs_f64();
    let mut o = ClientOutcome {
        secs,
        ..ClientOutcome::default()
    };
    let mut micros = Vec::new();
    for t in tallies {
        o.ok += t.ok;
        o.bytes += t.bytes;
        o.errors += t.errors;
        if o.first_error.is_empty() {
            o.first_error = t.first_error.unwrap_or_default();
        }
        micros.extend(t.micros);
    }
    micros.sort_unstable();
    let pct = |p: f64| -> f64 {
        if micros.is_empty() {
            return f64::NAN;
        }
        let i = ((micros.len() as f64 * p).ceil() as usize).clamp(1, micros.len()) - 1;
        f64::from(micros[i])
    };
    o.p50_us = pct(0.50);
    o.p99_us = pct(0.99);
    Ok(o)
}

async fn conns_loop(addr: SocketAddr, end: Instant, task: u64) -> Tally {
    let mut t = Tally::default();
    let mut n = 0u64;
    while Instant::now() < end {
        let began = Instant::now();
        n += 1;
        match exchange(addr, (task << 40) | n).await {
            Ok(bytes) => {
                t.ok += 1;
                t.bytes += bytes;
                t.micros
                    .push(u32::try_from(began.elapsed().as_micros()).unwrap_or(u32::MAX));
            }
            Err(e) => {
                t.errors += 1;
                t.first_error.get_or_insert(e);
                // A refusing or broken relay must not turn this into a
                // busy loop that starves the origin on the same CPU.
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
    t
}

/// One short connection: connect, send a request for no extra bytes, read
/// the echo to the origin's close. Returns the bytes read.
async fn exchange(addr: SocketAddr, tag: u64) -> Result<u64, String> {
    let timed = |what: &'static str| move |_| format!("{what}: timed out");
    let mut s = tokio::time::timeout(IO_TIMEOUT, tokio::net::TcpStream::connect(addr))
        .await
        .map_err(timed("connect"))?
        .map_err(|e| format!("connect: {e}"))?;
    let req = request(0, tag);
    tokio::time::timeout(IO_TIMEOUT, s.write_all(&req))
        .await
        .map_err(timed("write"))?
        .map_err(|e| format!("write: {e}"))?;
    let mut got = Vec::with_capacity(2 * REQUEST_BYTES);
    tokio::time::timeout(IO_TIMEOUT, s.read_to_end(&mut got))
        .await
        .map_err(timed("read"))?
        .map_err(|e| format!("read: {e}"))?;
    if got != req {
        return Err(format!(
            "answer of {} bytes, not the {REQUEST_BYTES}-byte echo",
            got.len()
        ));
    }
    Ok(got.len() as u64)
}

// ---------------------------------------------------------------- driver

/// Settings of the L4 scenarios.
#[derive(Debug, Clone)]
pub struct Options {
    /// Scenarios, in run order.
    pub scenarios: Vec<Scenario>,
    /// Relays in run order (direct first).
    pub relays: Vec<Relay>,
    /// Rounds; each runs every relay once.
    pub rounds: usize,
    /// Length of a `tcp-conns` run.
    pub duration: Duration,
    /// Warm-up of `tcp-conns` per relay.
    pub warmup: Duration,
    /// Bytes of a `tcp-stream` download.
    pub bytes: u64,
    /// Concurrent loops of `tcp-conns`.
    pub concurrency: usize,
    /// HAProxy with `option splice-auto`.
    pub haproxy_splice: bool,
    /// CPU of the origin and the client.
    pub client_cpu: usize,
    /// CPU of the proxy under test.
    pub proxy_cpu: usize,
    /// CPUs on the machine (for the other-load snapshot).
    pub ncpu: usize,
    /// Our pid (our tree is not "other load").
    pub me: u32,
}

/// One measured run's figures.
#[derive(Debug, Clone)]
pub struct Measured {
    /// What the client saw.
    pub client: ClientOutcome,
    /// CPU time of the proxy's processes, ns.
    pub proxy_ns: u64,
    /// CPU time of the origin, ns.
    pub origin_ns: u64,
    /// CPU time of the client process, ns.
    pub client_ns: u64,
    /// Busy time of the whole machine (all CPUs, softirq included), ns.
    pub machine_ns: u64,
    /// Wall time of the run as the driver saw it, seconds.
    pub wall_secs: f64,
    /// CPUs' worth used by processes outside the benchmark.
    pub other_cpus: f64,
    /// The busiest of them.
    pub top_other: Option<(String, f64)>,
}

impl Measured {
    /// Throughput (Gbit/s) of a stream, connections/s of short ones.
    fn rate(&self, s: Scenario) -> f64 {
        let secs = self.client.secs.max(1e-9);
        match s {
            Scenario::Stream => self.client.bytes as f64 * 8.0 / secs / 1e9,
            Scenario::Conns => self.client.ok as f64 / secs,
        }
    }

    /// The whole machine's busy time less what processes outside the
    /// benchmark used meanwhile (an estimate from their tick counts, for
    /// a shared machine; the targets use the raw figure).
    fn machine_less_others_ns(&self) -> u64 {
        let others = self.other_cpus * self.wall_secs * 1e9;
        (self.machine_ns as f64 - others).max(0.0) as u64
    }

    /// CPU ns as ms per GB moved (stream) or ms per 1000 connections.
    fn per_unit(&self, s: Scenario, ns: u64) -> f64 {
        let ms = ns as f64 / 1e6;
        match s {
            Scenario::Stream if self.client.bytes > 0 => ms / (self.client.bytes as f64 / 1e9),
            Scenario::Conns if self.client.ok > 0 => ms / (self.client.ok as f64 / 1000.0),
            _ => f64::NAN,
        }
    }
}

/// One run of one relay in one scenario.
#[derive(Debug, Clone)]
pub struct Run {
    /// The scenario.
    pub scenario: Scenario,
    /// Round, from 1.
    pub round: usize,
    /// Who relayed.
    pub relay: Relay,
    /// The figures, or why there are none.
    pub result: Result<Measured, String>,
}

/// Everything the L4 scenarios measured.
#[derive(Debug, Default)]
pub struct Results {
    /// Measured runs.
    pub runs: Vec<Run>,
    /// Relays that did not start (or never relayed a test exchange), and why.
    pub failed_starts: Vec<(Relay, String)>,
    /// The settings.
    pub options: Option<Options>,
    /// What the relays said about themselves (rauta: connections it
    /// spliced, from `/metrics`).
    pub notes: Vec<String>,
}

/// A running relay (or the direct pseudo-relay) and its port.
struct Running {
    relay: Relay,
    port: u16,
    child: Option<Child>,
    admin: Option<u16>,
}

/// Runs the L4 scenarios; `before_run` is called before every measured
/// run (interruption check, waiting for a quiet machine).
pub fn run(opts: &Options, env: &Env, before_run: &dyn Fn() -> Result<()>) -> Result<Results> {
    let mut results = Results {
        options: Some(opts.clone()),
        ..Results::default()
    };
    let origin_port = procs::free_port()?;
    let mut origin = start_origin(env, origin_port)?;
    let mut running = Vec::new();
    for relay in &opts.relays {
        let Some((kind, splice)) = relay.kind() else {
            running.push(Running {
                relay: *relay,
                port: origin_port,
                child: None,
                admin: None,
            });
            continue;
        };
        let tcp = TcpOptions {
            rauta_splice: splice,
            haproxy_splice: opts.haproxy_splice,
        };
        let started = peers::start_tcp(kind, origin_port, tcp, env).and_then(|mut r| {
            let addr = SocketAddr::from(([127, 0, 0, 1], r.port));
            let took = procs::wait_until(&r.name, &mut r.child, Duration::from_secs(15), || {
                probe(addr).is_ok()
            })
            .with_context(|| format!("starting {}", r.name))?;
            Ok((r, took))
        });
        match started {
            Ok((r, took)) => {
                println!(
                    "started {} (TCP) in {:.2} s on port {}",
                    relay.name(),
                    took.as_secs_f64(),
                    r.port
                );
                running.push(Running {
                    relay: *relay,
                    port: r.port,
                    child: Some(r.child),
                    admin: r.admin,
                });
            }
            Err(e) => {
                let why = one_line(&format!("{e:#}"));
                println!("[l4] {} failed to start: {why}", relay.name());
                results.failed_starts.push((*relay, why));
            }
        }
    }
    let client_cpu = env.client_cpu;
    for scenario in &opts.scenarios {
        for r in &running {
            if *scenario == Scenario::Conns && opts.warmup.is_zero() {
                break;
            }
            // Warm-up: page cache of the binaries, socket buffers, the
            // relays' first allocations; not recorded.
            let addr = SocketAddr::from(([127, 0, 0, 1], r.port));
            let warm = match scenario {
                Scenario::Stream => client_process(
                    client_cpu,
                    "stream",
                    addr,
                    WARM_BYTES.min(opts.bytes),
                    opts.concurrency,
                    opts.duration,
                ),
                Scenario::Conns => {
                    client_process(client_cpu, "conns", addr, 0, opts.concurrency, opts.warmup)
                }
            };
            if let Err(e) = warm {
                println!("[l4] warm-up of {}: {e:#}", r.relay.name());
            }
        }
        for round in 1..=opts.rounds {
            for r in running.iter_mut() {
                before_run()?;
                let result = match r.child.as_mut().map(Child::check_running) {
                    Some(Err(e)) => Err(one_line(&format!("{e:#}"))),
                    _ => measure(*scenario, r, &origin, env, opts)
                        .map_err(|e| one_line(&format!("{e:#}"))),
                };
                println!(
                    "[{} r{round} {}] {}",
                    scenario.id(),
                    r.relay.name(),
                    progress(*scenario, &result)
                );
                results.runs.push(Run {
                    scenario: *scenario,
                    round,
                    relay: r.relay,
                    result,
                });
            }
        }
    }
    for r in running.iter_mut() {
        if let Some(port) = r.admin {
            // Whether the kernel splice engaged: the proxy CPU figure
            // alone cannot tell a splice from a fast user-space relay.
            let note = match spliced_connections(port) {
                Ok(n) => format!(
                    "{} counted {n} spliced connections (`rauta_l4_spliced_connections_total`) over all its runs.",
                    r.relay.name()
                ),
                Err(e) => format!("{}: /metrics not read: {e:#}", r.relay.name()),
            };
            println!("[l4] {note}");
            results.notes.push(note);
        }
        if let Some(c) = r.child.as_mut() {
            c.stop(Duration::from_secs(5));
        }
    }
    origin.check_running()?;
    origin.stop(Duration::from_secs(5));
    Ok(results)
}

/// rauta's `rauta_l4_spliced_connections_total`, summed over its labels.
fn spliced_connections(admin: u16) -> Result<f64> {
    let addr = SocketAddr::from(([127, 0, 0, 1], admin));
    let r = procs::get(addr, "127.0.0.1", "/metrics", Duration::from_secs(5))
        .context("GET rauta's /metrics")?;
    let text = String::from_utf8_lossy(&r.body);
    Ok(text
        .lines()
        .filter(|l| l.starts_with("rauta_l4_spliced_connections_total"))
        .filter_map(|l| l.rsplit_once(' ')?.1.trim().parse::<f64>().ok())
        .sum())
}

/// One short exchange, as readiness check (the relay reached the origin).
fn probe(addr: SocketAddr) -> Result<()> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    s.set_read_timeout(Some(Duration::from_secs(2)))?;
    let req = request(0, u64::MAX);
    s.write_all(&req)?;
    let mut got = Vec::new();
    s.read_to_end(&mut got)?;
    if got != req {
        bail!("answer of {} bytes, not the echo", got.len());
    }
    Ok(())
}

fn start_origin(env: &Env, port: u16) -> Result<Child> {
    let exe = std::env::current_exe().context("find the rauta-bench binary")?;
    let mut child = Child::spawn(
        "TCP origin",
        env.client_cpu,
        &exe.display().to_string(),
        &["--serve-tcp-origin".into(), port.to_string()],
        &[],
        &env.dir.join("tcp-origin.log"),
    )?;
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    procs::wait_until("TCP origin", &mut child, Duration::from_secs(10), || {
        probe(addr).is_ok()
    })?;
    Ok(child)
}

/// Runs the client process (`--tcp-client`) pinned to `cpu`; its outcome.
fn client_process(
    cpu: usize,
    mode: &str,
    addr: SocketAddr,
    bytes: u64,
    concurrency: usize,
    duration: Duration,
) -> Result<ClientOutcome> {
    let exe = std::env::current_exe().context("find the rauta-bench binary")?;
    let out = Command::new("taskset")
        .arg("-c")
        .arg(cpu.to_string())
        .arg(exe)
        .args(["--tcp-client", mode, "--tcp-target", &addr.to_string()])
        .args(["--tcp-bytes", &bytes.max(1).to_string()])
        .args(["--tcp-concurrency", &concurrency.to_string()])
        .args(["--duration", &duration.as_secs().max(1).to_string()])
        .output()
        .context("run the TCP client")?;
    if !out.status.success() {
        bail!(
            "the TCP client failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    ClientOutcome::parse(&String::from_utf8_lossy(&out.stdout))
}

/// One measured run: the client against the relay's port, with the CPU
/// time of relay, origin, client and the whole machine around it.
fn measure(
    scenario: Scenario,
    r: &Running,
    origin: &Child,
    env: &Env,
    opts: &Options,
) -> Result<Measured> {
    let addr = SocketAddr::from(([127, 0, 0, 1], r.port));
    let proxy_pids = r.child.as_ref().map(Child::pids).unwrap_or_default();
    let origin_pids = origin.pids();
    let snap0 = sys::snapshot(opts.me, opts.ncpu);
    let p0 = sys::cpu_ns(&proxy_pids);
    let o0 = sys::cpu_ns(&origin_pids);
    let c0 = sys::children_cpu_ns()?;
    let m0 = sys::machine_busy_ns()?;
    let t0 = Instant::now();
    let mode = match scenario {
        Scenario::Stream => "stream",
        Scenario::Conns => "conns",
    };
    let client = client_process(
        env.client_cpu,
        mode,
        addr,
        opts.bytes,
        opts.concurrency,
        opts.duration,
    )?;
    let wall_secs = t0.elapsed().as_secs_f64();
    let m1 = sys::machine_busy_ns()?;
    let c1 = sys::children_cpu_ns()?;
    let o1 = sys::cpu_ns(&origin_pids);
    let p1 = sys::cpu_ns(&proxy_pids);
    let snap1 = sys::snapshot(opts.me, opts.ncpu);
    if client.ok == 0 {
        bail!(
            "nothing got through ({} errors; first: {})",
            client.errors,
            client.first_error
        );
    }
    let interval = sys::interval(&snap0, &snap1);
    Ok(Measured {
        proxy_ns: p1.saturating_sub(p0),
        origin_ns: o1.saturating_sub(o0),
        client_ns: c1.saturating_sub(c0),
        machine_ns: m1.saturating_sub(m0),
        wall_secs,
        other_cpus: interval.other_cpus,
        top_other: interval.top_other.map(|(pid, c)| (sys::comm(pid), c)),
        client,
    })
}

/// An error as one line of at most 400 characters.
fn one_line(s: &str) -> String {
    let joined: Vec<&str> = s.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
    let mut out = joined.join(" / ");
    if out.chars().count() > 400 {
        out = out.chars().take(400).collect::<String>() + "…";
    }
    out
}

fn progress(s: Scenario, result: &Result<Measured, String>) -> String {
    let m = match result {
        Ok(m) => m,
        Err(e) => return format!("FAILED: {e}"),
    };
    let warn = if m.other_cpus > OTHER_LOAD_FLAG {
        format!("  ⚠ other load {:.2} CPUs", m.other_cpus)
    } else {
        String::new()
    };
    let (rate, unit) = match s {
        Scenario::Stream => (format!("{:.2} Gbit/s", m.rate(s)), "ms/GB"),
        Scenario::Conns => (format!("{:.0} conn/s", m.rate(s)), "ms/1k conns"),
    };
    format!(
        "{rate}, proxy CPU {:.1} {unit}, whole machine {:.1} {unit}, origin {:.1}, client {:.1}, errors {}{warn}",
        m.per_unit(s, m.proxy_ns),
        m.per_unit(s, m.machine_ns),
        m.per_unit(s, m.origin_ns),
        m.per_unit(s, m.client_ns),
        m.client.errors
    )
}

// ---------------------------------------------------------------- report

/// A figure of a run, with its name and direction.
struct Metric {
    name: &'static str,
    higher_is_better: bool,
    get: fn(Scenario, &Measured) -> f64,
    fmt: fn(f64) -> String,
}

/// Indices into a scenario's metrics compared against the peers.
const RATE: usize = 0;
const PROXY_CPU: usize = 1;
const MACHINE_CPU: usize = 2;

fn metrics(s: Scenario) -> [Metric; 6] {
    let f1 = |v: f64| format!("{v:.1}");
    match s {
        Scenario::Stream => [
            Metric {
                name: "throughput Gbit/s",
                higher_is_better: true,
                get: |s, m| m.rate(s),
                fmt: |v| format!("{v:.2}"),
            },
            Metric {
                name: "proxy CPU ms/GB",
                higher_is_better: false,
                get: |s, m| m.per_unit(s, m.proxy_ns),
                fmt: f1,
            },
            Metric {
                name: "whole machine CPU ms/GB",
                higher_is_better: false,
                get: |s, m| m.per_unit(s, m.machine_ns),
                fmt: f1,
            },
            Metric {
                name: "whole machine less other processes ms/GB",
                higher_is_better: false,
                get: |s, m| m.per_unit(s, m.machine_less_others_ns()),
                fmt: f1,
            },
            Metric {
                name: "origin + client CPU ms/GB",
                higher_is_better: false,
                get: |s, m| m.per_unit(s, m.origin_ns + m.client_ns),
                fmt: f1,
            },
            Metric {
                name: "seconds",
                higher_is_better: false,
                get: |_, m| m.client.secs,
                fmt: |v| format!("{v:.2}"),
            },
        ],
        Scenario::Conns => [
            Metric {
                name: "conn/s",
                higher_is_better: true,
                get: |s, m| m.rate(s),
                fmt: |v| format!("{v:.0}"),
            },
            Metric {
                name: "proxy CPU ms/1k conns",
                higher_is_better: false,
                get: |s, m| m.per_unit(s, m.proxy_ns),
                fmt: f1,
            },
            Metric {
                name: "whole machine CPU ms/1k conns",
                higher_is_better: false,
                get: |s, m| m.per_unit(s, m.machine_ns),
                fmt: f1,
            },
            Metric {
                name: "whole machine less other processes ms/1k conns",
                higher_is_better: false,
                get: |s, m| m.per_unit(s, m.machine_less_others_ns()),
                fmt: f1,
            },
            Metric {
                name: "origin + client CPU ms/1k conns",
                higher_is_better: false,
                get: |s, m| m.per_unit(s, m.origin_ns + m.client_ns),
                fmt: f1,
            },
            Metric {
                name: "p99 connection",
                higher_is_better: false,
                get: |_, m| m.client.p99_us,
                fmt: |v| format!("{v:.0} µs"),
            },
        ],
    }
}

fn cell(values: &[f64], fmt: fn(f64) -> String) -> String {
    match spread(values) {
        None => "n/a".into(),
        Some((m, lo, hi)) if values.len() == 1 || lo == hi => fmt(m),
        Some((m, lo, hi)) => format!("{} ({}–{})", fmt(m), fmt(lo), fmt(hi)),
    }
}

impl Results {
    fn measured(&self, s: Scenario, relay: Relay) -> Vec<(usize, &Measured)> {
        self.runs
            .iter()
            .filter(|r| r.scenario == s && r.relay == relay)
            .filter_map(|r| r.result.as_ref().ok().map(|m| (r.round, m)))
            .collect()
    }

    fn values(&self, s: Scenario, relay: Relay, m: &Metric) -> Vec<f64> {
        self.measured(s, relay)
            .iter()
            .map(|(_, x)| (m.get)(s, x))
            .collect()
    }

    fn median(&self, s: Scenario, relay: Relay, m: &Metric) -> Option<f64> {
        spread(&self.values(s, relay, m)).map(|x| x.0)
    }

    /// The peer with the best median of `m`.
    fn best_peer(&self, s: Scenario, m: &Metric) -> Option<(Relay, f64)> {
        let relays = self
            .options
            .as_ref()
            .map(|o| o.relays.clone())
            .unwrap_or_default();
        let candidates = relays
            .into_iter()
            .filter(|r| r.is_peer())
            .filter_map(|r| Some((r, self.median(s, r, m)?)));
        if m.higher_is_better {
            candidates.max_by(|a, b| a.1.total_cmp(&b.1))
        } else {
            candidates.min_by(|a, b| a.1.total_cmp(&b.1))
        }
    }

    /// `relay` ÷ `peer` per round, for rounds where both were measured.
    fn paired(&self, s: Scenario, relay: Relay, peer: Relay, m: &Metric) -> Vec<f64> {
        let theirs = self.measured(s, peer);
        self.measured(s, relay)
            .iter()
            .filter_map(|(round, x)| {
                let (_, p) = theirs.iter().find(|(r, _)| r == round)?;
                let (a, b) = ((m.get)(s, x), (m.get)(s, p));
                (b > 0.0 && a.is_finite()).then_some(a / b)
            })
            .collect()
    }

    fn why_failed(&self, s: Scenario, relay: Relay) -> Option<String> {
        if let Some((_, why)) = self.failed_starts.iter().find(|(r, _)| *r == relay) {
            return Some(format!("did not start: {why}"));
        }
        self.runs
            .iter()
            .filter(|r| r.scenario == s && r.relay == relay)
            .find_map(|r| r.result.as_ref().err().cloned())
    }

    /// The L4 section of the results Markdown.
    pub fn markdown(&self, md: &mut String) {
        let Some(o) = &self.options else {
            return;
        };
        md.push_str("## L4: TCP through a TCP service\n\n");
        let _ = writeln!(
            md,
            "The proxies relay plain TCP to rauta-bench's TCP origin (tokio, one thread, on CPU {} with the load client, also rauta-bench's, tokio, one thread); the proxy runs on CPU {}: nginx `stream {{ server {{ listen; proxy_pass; }} }}` (1 worker; nginx always relays in user space), HAProxy `mode tcp` (nbthread 1{}), rauta with a TCP service from a tcp-services ConfigMap (`--tcp-services-configmap {}`, `--shards 1`) twice: **rauta** with its kernel splice (`--l4-splice auto`) and **rauta-userspace** (`--l4-splice off`, rauta's default). **direct** is the client straight at the origin. {} round(s); in each round every relay runs once in this order: {}.\n",
            o.client_cpu,
            o.proxy_cpu,
            if o.haproxy_splice { ", `option splice-auto`" } else { ", no splicing, as it ships" },
            peers::TCP_SERVICES,
            o.rounds,
            o.relays.iter().map(|r| r.name()).collect::<Vec<_>>().join(", ")
        );
        md.push_str("CPU figures: **proxy CPU** is utime + stime of the proxy's own processes; **whole machine** is the busy time of all CPUs from `/proc/stat` (user + nice + system + irq + softirq; idle, iowait and steal left out). Bytes a proxy splices are forwarded in softirq context, which no process is charged for, so only the whole-machine figure shows their cost. It also includes the origin and the load generator, the same work for every relay: the **direct** row is that floor, and the *above direct* column subtracts it. Compare the ratios, not the absolute figures. It includes other processes on the machine too; *less other processes* takes off their CPU time as their `/proc/PID/stat` ticks give it (an estimate; ratios and targets use the raw figure). GB = 10⁹ bytes.\n\n");
        for s in &o.scenarios {
            self.scenario_section(md, *s, o);
        }
        self.targets(md);
        for n in &self.notes {
            let _ = writeln!(md, "- {n}");
        }
        if !self.notes.is_empty() {
            md.push('\n');
        }
        let disturbed: Vec<&Run> = self
            .runs
            .iter()
            .filter(|r| {
                r.result
                    .as_ref()
                    .is_ok_and(|m| m.other_cpus > OTHER_LOAD_FLAG)
            })
            .collect();
        if !disturbed.is_empty() {
            let _ = writeln!(md, "Runs during which processes outside the benchmark used more than {OTHER_LOAD_FLAG:.2} CPUs (their CPU is in the whole-machine figure):\n");
            for r in disturbed {
                if let Ok(m) = &r.result {
                    let top = m
                        .top_other
                        .as_ref()
                        .map_or(String::new(), |(n, c)| format!(", busiest {n} {c:.2}"));
                    let _ = writeln!(
                        md,
                        "- ⚠ {} round {} {}: other processes {:.2} CPUs{top}",
                        r.scenario.id(),
                        r.round,
                        r.relay.name(),
                        m.other_cpus
                    );
                }
            }
            md.push('\n');
        }
    }

    fn scenario_section(&self, md: &mut String, s: Scenario, o: &Options) {
        let _ = writeln!(md, "### {} (`{}`)\n", s.title(), s.id());
        let _ = match s {
            Scenario::Stream => writeln!(
                md,
                "One connection downloads {} bytes ({:.2} GiB) from the origin through the relay; the client reads in 256 KiB chunks to the origin's close. One download per round.\n",
                o.bytes,
                o.bytes as f64 / (1u64 << 30) as f64
            ),
            Scenario::Conns => writeln!(
                md,
                "{} concurrent loops of connect → send 32 bytes → read the 32-byte echo to the origin's close → close, for {} s: every connection is a full open, transfer and close on both sides of the relay. Connection time is connect to close as the client sees it.\n",
                o.concurrency,
                o.duration.as_secs()
            ),
        };
        let ms = metrics(s);
        let machine = &ms[MACHINE_CPU];
        let floor = self.median(s, Relay::Direct, machine);
        md.push_str("| relay |");
        for m in &ms {
            let _ = write!(md, " {} |", m.name);
        }
        md.push_str(" whole machine above direct | errors |\n|---|");
        for _ in 0..ms.len() + 2 {
            md.push_str("---|");
        }
        md.push('\n');
        for relay in &o.relays {
            let runs = self.measured(s, *relay);
            if runs.is_empty() {
                let why = self
                    .why_failed(s, *relay)
                    .unwrap_or_else(|| "not run".into());
                let _ = writeln!(
                    md,
                    "| {} | **failed**: {} |{}",
                    relay.name(),
                    why.replace('|', "\\|"),
                    " |".repeat(ms.len() + 1)
                );
                continue;
            }
            let _ = write!(md, "| {} |", relay.name());
            for m in &ms {
                let _ = write!(md, " {} |", cell(&self.values(s, *relay, m), m.fmt));
            }
            let above = match (self.median(s, *relay, machine), floor) {
                (Some(v), Some(f)) if *relay != Relay::Direct => format!("{:.1}", v - f),
                _ => "–".into(),
            };
            let errors: u64 = runs.iter().map(|(_, m)| m.client.errors).sum();
            let failed = self
                .runs
                .iter()
                .filter(|r| r.scenario == s && r.relay == *relay && r.result.is_err())
                .count();
            let failed = if failed > 0 {
                format!(" ({failed} run(s) failed)")
            } else {
                String::new()
            };
            let _ = writeln!(md, " {above} | {errors}{failed} |");
        }
        md.push('\n');
        // Ratios of the rauta rows against the best peer of each figure.
        let rautas: Vec<Relay> = o.relays.iter().copied().filter(|r| r.is_rauta()).collect();
        if rautas.is_empty() {
            return;
        }
        md.push_str("Against the best peer of each figure (median of per-round ratios, min–max in brackets; ↑ higher is better for rauta, ↓ lower):\n\n| figure | best peer |");
        for r in &rautas {
            let _ = write!(md, " {} ÷ best peer |", r.name());
        }
        md.push_str("\n|---|---|");
        for _ in &rautas {
            md.push_str("---|");
        }
        md.push('\n');
        for i in [RATE, PROXY_CPU, MACHINE_CPU] {
            let m = &ms[i];
            let arrow = if m.higher_is_better { "↑" } else { "↓" };
            let Some((peer, best)) = self.best_peer(s, m) else {
                let _ = writeln!(
                    md,
                    "| {} {arrow} | n/a |{}",
                    m.name,
                    " n/a |".repeat(rautas.len())
                );
                continue;
            };
            let _ = write!(
                md,
                "| {} {arrow} | {} {} |",
                m.name,
                peer.name(),
                (m.fmt)(best)
            );
            for r in &rautas {
                let ratios = self.paired(s, *r, peer, m);
                let c = match spread(&ratios) {
                    None => "n/a".into(),
                    Some((x, _, _)) if ratios.len() == 1 => format!("{x:.2}×"),
                    Some((x, lo, hi)) => format!("**{x:.2}×** ({lo:.2}–{hi:.2})"),
                };
                let _ = write!(md, " {c} |");
            }
            md.push('\n');
        }
        md.push('\n');
    }

    fn targets(&self, md: &mut String) {
        let Some(o) = &self.options else {
            return;
        };
        if !o.relays.contains(&Relay::Rauta) {
            return;
        }
        md.push_str("### L4 targets\n\n| target | figure | met? |\n|---|---|---|\n");
        let yes = |ok: bool| if ok { "yes" } else { "**no**" };
        let row = |md: &mut String, s: Scenario, i: usize, what: &str, limit: f64| {
            let ms = metrics(s);
            let m = &ms[i];
            let rauta = self.median(s, Relay::Rauta, m);
            let _ = match (rauta, self.best_peer(s, m)) {
                (Some(r), Some((p, best))) if best > 0.0 => writeln!(
                    md,
                    "| {what} | rauta {} vs {} {} = {:.2}× | {} |",
                    (m.fmt)(r),
                    p.name(),
                    (m.fmt)(best),
                    r / best,
                    yes(r / best <= limit)
                ),
                (None, _) => writeln!(
                    md,
                    "| {what} | not measured: rauta {} | – |",
                    self.why_failed(s, Relay::Rauta)
                        .unwrap_or_else(|| "has no runs".into())
                        .replace('|', "\\|")
                ),
                _ => writeln!(md, "| {what} | no peer measured | – |"),
            };
        };
        if o.scenarios.contains(&Scenario::Stream) {
            row(
                md,
                Scenario::Stream,
                MACHINE_CPU,
                "spliced stream: whole-machine CPU per GB ≤ 0.6× best peer",
                0.6,
            );
            row(
                md,
                Scenario::Stream,
                PROXY_CPU,
                "spliced stream: rauta's own CPU per GB near zero (≤ 0.1× best peer)",
                0.1,
            );
        }
        if o.scenarios.contains(&Scenario::Conns) {
            row(
                md,
                Scenario::Conns,
                PROXY_CPU,
                "short connections: proxy CPU per connection ≤ best peer",
                1.0,
            );
        }
        md.push('\n');
    }

    /// Every L4 run as CSV (one header line).
    pub fn csv(&self) -> String {
        let mut c = String::from("scenario,round,relay,ok,bytes,secs,errors,p50_us,p99_us,proxy_ns,origin_ns,client_ns,machine_ns,wall_secs,other_cpus,failure\n");
        for r in &self.runs {
            let _ = match &r.result {
                Ok(m) => writeln!(
                    c,
                    "{},{},{},{},{},{:.6},{},{:.1},{:.1},{},{},{},{},{:.3},{:.3},",
                    r.scenario.id(),
                    r.round,
                    r.relay.name(),
                    m.client.ok,
                    m.client.bytes,
                    m.client.secs,
                    m.client.errors,
                    m.client.p50_us,
                    m.client.p99_us,
                    m.proxy_ns,
                    m.origin_ns,
                    m.client_ns,
                    m.machine_ns,
                    m.wall_secs,
                    m.other_cpus
                ),
                Err(e) => writeln!(
                    c,
                    "{},{},{},,,,,,,,,,,,,\"{}\"",
                    r.scenario.id(),
                    r.round,
                    r.relay.name(),
                    e.replace('"', "'")
                ),
            };
        }
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse() {
        assert_eq!(parse_size("1G"), Ok(1 << 30));
        assert_eq!(parse_size("64MiB"), Ok(64 << 20));
        assert_eq!(parse_size("4096"), Ok(4096));
        assert!(parse_size("0").is_err());
        assert!(parse_size("1T").is_err());
        assert!(parse_size("x").is_err());
    }

    #[test]
    fn client_line_round_trips() {
        let o = ClientOutcome {
            ok: 12,
            bytes: 384,
            secs: 3.0,
            errors: 2,
            p50_us: 150.0,
            p99_us: 900.5,
            first_error: "connect: Connection refused (os error 111)".into(),
        };
        let parsed = ClientOutcome::parse(&format!("noise\n{}\n", o.line())).expect("parses");
        assert_eq!(parsed, o);
        assert!(ClientOutcome::parse("nothing").is_err());
    }

    #[test]
    fn requests_carry_their_count() {
        let r = request(1 << 30, 7);
        assert_eq!(u64::from_be_bytes(r[..8].try_into().expect("8")), 1 << 30);
        assert_ne!(r, request(1 << 30, 8));
    }

    #[test]
    fn origin_and_client_talk() {
        let port = procs::free_port().expect("port");
        std::thread::spawn(move || serve_origin(port));
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let start = Instant::now();
        while probe(addr).is_err() {
            assert!(start.elapsed() < Duration::from_secs(5), "origin never up");
            std::thread::sleep(Duration::from_millis(20));
        }
        let s = stream_client(addr, 3 << 20);
        assert_eq!((s.ok, s.bytes, s.errors), (1, (3 << 20) + 32, 0), "{s:?}");
        let c = conns_client(addr, 4, Duration::from_millis(300)).expect("runs");
        assert!(c.ok > 0 && c.errors == 0, "{c:?}");
        assert_eq!(c.bytes, c.ok * REQUEST_BYTES as u64);
    }

    fn measured(bytes: u64, ok: u64, proxy_ms: u64, machine_ms: u64) -> Measured {
        Measured {
            client: ClientOutcome {
                ok,
                bytes,
                secs: 1.0,
                ..ClientOutcome::default()
            },
            proxy_ns: proxy_ms * 1_000_000,
            origin_ns: 0,
            client_ns: 0,
            machine_ns: machine_ms * 1_000_000,
            wall_secs: 1.0,
            other_cpus: 0.0,
            top_other: None,
        }
    }

    #[test]
    fn markdown_ratios_targets_and_failed_rows() {
        let relays = vec![
            Relay::Direct,
            Relay::Nginx,
            Relay::Haproxy,
            Relay::Rauta,
            Relay::RautaUserspace,
        ];
        let opts = Options {
            scenarios: vec![Scenario::Stream, Scenario::Conns],
            relays: relays.clone(),
            rounds: 2,
            duration: Duration::from_secs(3),
            warmup: Duration::from_secs(1),
            bytes: 1_000_000_000,
            concurrency: 64,
            haproxy_splice: false,
            client_cpu: 0,
            proxy_cpu: 1,
            ncpu: 2,
            me: 1,
        };
        let mut res = Results {
            options: Some(opts),
            failed_starts: vec![(Relay::RautaUserspace, "exited: unknown flag".into())],
            ..Results::default()
        };
        for round in 1..=2 {
            for (relay, proxy, machine) in [
                (Relay::Direct, 0, 400),
                (Relay::Nginx, 500, 1200),
                (Relay::Haproxy, 400, 1000),
                (Relay::Rauta, 10, 500),
            ] {
                res.runs.push(Run {
                    scenario: Scenario::Stream,
                    round,
                    relay,
                    result: Ok(measured(1_000_000_000, 1, proxy, machine)),
                });
                res.runs.push(Run {
                    scenario: Scenario::Conns,
                    round,
                    relay,
                    result: Ok(measured(32_000, 1000, proxy / 10, machine / 10)),
                });
            }
        }
        let mut md = String::new();
        res.markdown(&mut md);
        assert!(md.contains("| HAProxy | 8.00 | 400.0 | 1000.0 |"), "{md}");
        assert!(
            md.contains("| whole machine CPU ms/GB ↓ | HAProxy 1000.0 | **0.50×** (0.50–0.50) |"),
            "{md}"
        );
        assert!(
            md.contains("| rauta-userspace | **failed**: did not start: exited: unknown flag |"),
            "{md}"
        );
        assert!(md.contains("= 0.50× | yes |"), "{md}");
        assert!(md.contains("| short connections: proxy CPU per connection ≤ best peer | rauta 1.0 vs HAProxy 40.0 = 0.03× | yes |"), "{md}");
        assert_eq!(res.csv().lines().count(), 17);
    }
}
