//! The resilience scenarios, apart from the throughput suite:
//!
//! - `kill-pod`: three backend pods behind each proxy, a closed-loop GET
//!   load, and one pod SIGKILLed in the middle of it (its ports then refuse,
//!   like a dead container). Counts the client requests that failed, and
//!   with tcpdump on `lo` every connection attempt (SYN) and every request
//!   written to the dead pod after the kill: how long each proxy keeps
//!   trying it.
//! - `kill-pod-stop`: the same with SIGSTOP instead: connects still succeed
//!   into the backlog but nothing answers, as with a node that vanished
//!   (where timeouts decide).
//! - `idle`: the three proxies started on the same configuration and left
//!   alone; CPU time and wake-ups (voluntary context switches) over a
//!   minute.
//!
//! Each proxy runs with two workers (nginx), threads (HAProxy) or shards
//! (rauta) on the two CPUs; the pods, tcpdump and the load on the client
//! CPU.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context, Result};
use nix::sys::signal::Signal;

use crate::peers::{self, Env, Kind, Pod};
use crate::procs::{self, Child};
use crate::sys;

/// How the killed pod dies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Death {
    /// SIGKILL: its ports refuse connections at once.
    Kill,
    /// SIGSTOP: connects complete into the backlog, nothing answers.
    Stop,
}

impl Death {
    fn id(self) -> &'static str {
        match self {
            Death::Kill => "kill-pod",
            Death::Stop => "kill-pod-stop",
        }
    }
}

/// A resilience scenario.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scenario {
    /// One of three pods dies under load.
    KillPod(Death),
    /// No traffic at all.
    Idle,
}

impl Scenario {
    /// `kill-pod`, `kill-pod-stop` or `idle`; `None` for another id.
    pub fn parse(id: &str) -> Option<Scenario> {
        match id {
            "kill-pod" => Some(Scenario::KillPod(Death::Kill)),
            "kill-pod-stop" => Some(Scenario::KillPod(Death::Stop)),
            "idle" => Some(Scenario::Idle),
            _ => None,
        }
    }
}

/// Settings of the resilience scenarios.
#[derive(Debug, Clone)]
pub struct Options {
    /// Proxies, in run order.
    pub proxies: Vec<Kind>,
    /// Runs of each kill scenario per proxy.
    pub runs: usize,
    /// Length of the load of one kill run.
    pub duration: Duration,
    /// Runs of `kill-pod-stop` per proxy.
    pub stop_runs: usize,
    /// Length of its load (long enough for 60 s timeouts to fire).
    pub stop_duration: Duration,
    /// When the pod dies, from the start of the load.
    pub kill_at: Duration,
    /// Client connections of the load.
    pub connections: usize,
    /// A client gives up on a request after this long and closes its
    /// connection (`None`: it waits as long as the run lasts).
    pub client_timeout: Option<Duration>,
    /// CPUs of the proxies (`taskset` list).
    pub proxy_cpus: String,
    /// Seconds the proxies settle before the idle measurement.
    pub idle_settle: Duration,
    /// Length of the idle measurement.
    pub idle_window: Duration,
}

/// Pods behind each proxy; the second one dies.
const PODS: usize = 3;
const VICTIM: usize = 1;
/// How long requests still in flight when the load ends may take before
/// they count as unanswered.
const GRACE: Duration = Duration::from_secs(2);
/// An answered request slower than this counts as slow.
const SLOW: Duration = Duration::from_secs(1);

/// What the client saw in one run.
#[derive(Debug, Clone, Default)]
pub struct ClientCounts {
    /// Requests written.
    pub sent: u64,
    /// Answered 2xx or 3xx.
    pub ok: u64,
    /// Other statuses, by code.
    pub statuses: BTreeMap<u16, u64>,
    /// Socket errors, by kind (connect, reset, closed, unanswered).
    pub errors: BTreeMap<&'static str, u64>,
    /// Answered (any status) after more than [`SLOW`].
    pub slow: u64,
    /// The slowest answer (any status), seconds.
    pub slowest: f64,
    /// When each failure was seen, in seconds from the start of the load.
    pub failure_times: Vec<f64>,
}

impl ClientCounts {
    /// Requests that did not get a 2xx or 3xx answer.
    pub fn failed(&self) -> u64 {
        self.statuses.values().sum::<u64>() + self.errors.values().sum::<u64>()
    }

    fn fail(&mut self, at: f64, error: Option<&'static str>, status: Option<u16>) {
        if let Some(e) = error {
            *self.errors.entry(e).or_default() += 1;
        }
        if let Some(s) = status {
            *self.statuses.entry(s).or_default() += 1;
        }
        self.failure_times.push(at);
    }

    fn merge(&mut self, o: ClientCounts) {
        self.sent += o.sent;
        self.ok += o.ok;
        self.slow += o.slow;
        self.slowest = self.slowest.max(o.slowest);
        for (k, v) in o.statuses {
            *self.statuses.entry(k).or_default() += v;
        }
        for (k, v) in o.errors {
            *self.errors.entry(k).or_default() += v;
        }
        self.failure_times.extend(o.failure_times);
    }
}

/// One kill run of one proxy.
#[derive(Debug, Clone)]
pub struct KillRun {
    /// Which proxy.
    pub kind: Kind,
    /// Run number, from 1.
    pub run: usize,
    /// What the client saw.
    pub client: ClientCounts,
    /// Seconds from the start of the load to the kill.
    pub kill_at: f64,
    /// SYNs to the dead pod's traffic port after the kill, in seconds
    /// after it.
    pub syns: Vec<f64>,
    /// Packets carrying request bytes to the dead pod's traffic port after
    /// the kill, in seconds after it.
    pub writes: Vec<f64>,
    /// SYNs to the dead pod's check port after the kill (HAProxy's active
    /// checks).
    pub check_syns: Vec<f64>,
    /// Packets tcpdump said the kernel dropped (the counts are then low).
    pub capture_dropped: u64,
    /// rauta: its resilience metrics after the run; nginx: its error log's
    /// upstream lines by kind.
    pub notes: Vec<(String, f64)>,
}

/// Idle cost of one proxy over the window.
#[derive(Debug, Clone)]
pub struct Idle {
    /// Which proxy.
    pub kind: Kind,
    /// Processes measured.
    pub processes: usize,
    /// Threads measured.
    pub threads: usize,
    /// utime + stime from `/proc/PID/stat`, seconds.
    pub cpu_s: f64,
    /// Run time from `schedstat` (ns precision), seconds.
    pub sched_s: f64,
    /// Voluntary context switches.
    pub voluntary: u64,
    /// Involuntary context switches.
    pub involuntary: u64,
    /// Voluntary context switches by thread name, most first.
    pub by_thread: Vec<(String, u64)>,
}

/// Everything the resilience scenarios measured, for the report.
#[derive(Debug, Default)]
pub struct Results {
    /// Kill runs, by death.
    pub kills: Vec<(Death, Vec<KillRun>)>,
    /// The idle measurement, when it ran.
    pub idle: Option<(Duration, Vec<Idle>)>,
    /// Where the configurations are.
    pub dir: PathBuf,
    /// Settings used.
    pub options: Option<Options>,
}

/// Runs the given resilience scenarios; `stop` is checked between runs.
pub fn run(
    scenarios: &[Scenario],
    opts: &Options,
    env: &Env,
    stop: &dyn Fn() -> Result<()>,
) -> Result<Results> {
    if opts.kill_at >= opts.duration.min(opts.stop_duration) {
        bail!("--kill-at must be shorter than --kill-duration and --stop-duration");
    }
    let mut results = Results {
        dir: env.dir.clone(),
        options: Some(opts.clone()),
        ..Results::default()
    };
    for scenario in scenarios {
        match *scenario {
            Scenario::KillPod(death) => {
                if !crate::on_path("tcpdump") {
                    bail!("tcpdump is not installed (Debian tcpdump)");
                }
                let mut runs = Vec::new();
                let n = match death {
                    Death::Kill => opts.runs,
                    Death::Stop => opts.stop_runs,
                };
                for run in 1..=n {
                    for kind in &opts.proxies {
                        stop()?;
                        let r = kill_run(*kind, death, run, env, opts).with_context(|| {
                            format!("{} run {run} of {}", death.id(), kind.name())
                        })?;
                        println!("[{} r{run} {}] {}", death.id(), kind.name(), summary(&r));
                        runs.push(r);
                    }
                }
                results.kills.push((death, runs));
            }
            Scenario::Idle => {
                stop()?;
                results.idle = Some((opts.idle_window, idle(env, opts)?));
            }
        }
    }
    Ok(results)
}

fn summary(r: &KillRun) -> String {
    format!(
        "sent {}, failed {} ({}), SYNs to the dead pod after the kill {} (last at +{}), request writes after {} (last at +{}), check SYNs {}",
        r.client.sent,
        r.client.failed(),
        failure_kinds(&r.client),
        r.syns.len(),
        last(&r.syns),
        r.writes.len(),
        last(&r.writes),
        r.check_syns.len()
    )
}

fn last(v: &[f64]) -> String {
    v.last().map_or("–".into(), |t| format!("{t:.3} s"))
}

fn failure_kinds(c: &ClientCounts) -> String {
    let mut parts: Vec<String> = c.statuses.iter().map(|(s, n)| format!("{n}×{s}")).collect();
    parts.extend(c.errors.iter().map(|(e, n)| format!("{n}×{e}")));
    if parts.is_empty() {
        "none".into()
    } else {
        parts.join(", ")
    }
}

fn epoch_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// One run: fresh pods and a fresh proxy (so no ejection or failure count
/// carries over from the last run), one second of warm-up load so every
/// pod has pooled connections, then the load with the kill in it.
fn kill_run(kind: Kind, death: Death, run: usize, env: &Env, opts: &Options) -> Result<KillRun> {
    let tag = format!("{}-r{run}", death.id());
    let pods = peers::start_pods(env, &tag, PODS)?;
    let mut proxy = peers::start_pool(kind, &pods, env, &opts.proxy_cpus, &tag)?;
    let addr = SocketAddr::from(([127, 0, 0, 1], proxy.port));
    let warm = load(addr, opts.connections, Duration::from_secs(1), None);
    if warm.ok == 0 {
        bail!("the warm-up load got no answer from {}", kind.name());
    }
    let duration = match death {
        Death::Kill => opts.duration,
        Death::Stop => opts.stop_duration,
    };
    let victim = &pods[VICTIM];
    let name = format!("tcpdump-{}-{tag}", kind.name().to_ascii_lowercase());
    let capture = env.dir.join(format!("{name}.txt"));
    let mut tcpdump = start_tcpdump(env, &name, victim, &capture)?;

    let (client, kill_epoch) = std::thread::scope(|s| -> Result<(ClientCounts, f64)> {
        let loader = s.spawn(|| load(addr, opts.connections, duration, opts.client_timeout));
        std::thread::sleep(opts.kill_at);
        let signal = match death {
            Death::Kill => Signal::SIGKILL,
            Death::Stop => Signal::SIGSTOP,
        };
        let sent = victim.child.signal(signal);
        let at = epoch_now();
        let client = loader
            .join()
            .map_err(|_| anyhow::anyhow!("the load thread panicked"))?;
        sent?;
        Ok((client, at))
    })?;
    // Let the last packets reach tcpdump before it stops.
    std::thread::sleep(Duration::from_millis(300));
    tcpdump.stop(Duration::from_secs(5));
    let text = fs::read_to_string(&capture)
        .with_context(|| format!("read the capture {}", capture.display()))?;
    let packets = parse_capture(&text);
    let after = |port: u16, syn: bool| -> Vec<f64> {
        packets
            .iter()
            .filter(|p| p.port == port && p.syn == syn && p.epoch >= kill_epoch)
            .map(|p| p.epoch - kill_epoch)
            .collect()
    };
    let notes = match kind {
        Kind::Rauta => rauta_metrics(&proxy, &env.dir.join(format!("rauta-{tag}-metrics.txt")))?,
        Kind::Nginx => nginx_log(&env.dir.join(format!("nginx-{tag}-error.log"))),
        Kind::Haproxy => Vec::new(),
    };
    proxy.child.check_running()?;
    proxy.child.stop(Duration::from_secs(5));
    if death == Death::Stop {
        // A stopped process takes SIGTERM only once it runs again.
        let _ = victim.child.signal(Signal::SIGCONT);
    }
    let (port, check_port) = (victim.port, victim.check_port);
    drop(pods);
    Ok(KillRun {
        kind,
        run,
        kill_at: opts.kill_at.as_secs_f64(),
        syns: after(port, true),
        writes: after(port, false),
        check_syns: after(check_port, true),
        capture_dropped: dropped(&text),
        notes,
        client,
    })
}

/// tcpdump on `lo`, one line per packet to the pod's ports that is a
/// connection attempt (SYN without ACK) or carries bytes (a request).
fn start_tcpdump(env: &Env, name: &str, pod: &Pod, out: &Path) -> Result<Child> {
    let filter = format!(
        "dst host 127.0.0.1 and (dst port {} or dst port {}) and \
         ((tcp[tcpflags] & (tcp-syn|tcp-ack) == tcp-syn) or \
         (((ip[2:2] - ((ip[0]&0xf)<<2)) - ((tcp[12]&0xf0)>>2)) != 0))",
        pod.port, pod.check_port
    );
    let args: Vec<String> = ["-i", "lo", "-nn", "-tt", "-l", "-B", "16384", &filter]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let mut child = Child::spawn(name, env.client_cpu, "tcpdump", &args, &[], out)?;
    procs::wait_until(name, &mut child, Duration::from_secs(10), || {
        fs::read_to_string(out).is_ok_and(|t| t.contains("listening on"))
    })?;
    Ok(child)
}

/// A packet from tcpdump's text.
#[derive(Debug, Clone, Copy)]
struct Packet {
    epoch: f64,
    port: u16,
    syn: bool,
}

/// Parses lines like `1765100000.123456 IP 127.0.0.1.41234 >
/// 127.0.0.1.38211: Flags [S], seq …`; other lines are skipped.
fn parse_capture(text: &str) -> Vec<Packet> {
    text.lines()
        .filter_map(|l| {
            let mut words = l.split_whitespace();
            let epoch: f64 = words.next()?.parse().ok()?;
            let mut words = words.skip_while(|w| *w != ">");
            words.next()?;
            let dst = words.next()?.trim_end_matches(':');
            let port = dst.rsplit('.').next()?.parse().ok()?;
            let flags = l.split_once("Flags [")?.1.split(']').next()?;
            Some(Packet {
                epoch,
                port,
                syn: flags.contains('S'),
            })
        })
        .collect()
}

/// `N packets dropped by kernel` from tcpdump's closing lines.
fn dropped(text: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_suffix(" packets dropped by kernel"))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0)
}

/// rauta's resilience metrics, summed over their labels; the whole
/// `/metrics` text goes to `keep`.
fn rauta_metrics(proxy: &peers::Proxy, keep: &Path) -> Result<Vec<(String, f64)>> {
    let Some(port) = proxy.admin_port else {
        return Ok(Vec::new());
    };
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let r = procs::get(addr, "127.0.0.1", "/metrics", Duration::from_secs(5))
        .context("GET rauta's /metrics")?;
    let text = String::from_utf8_lossy(&r.body);
    fs::write(keep, text.as_bytes()).with_context(|| format!("write {}", keep.display()))?;
    let wanted = [
        "rauta_upstream_resends_total",
        "rauta_retry_budget_exhausted_total",
        "rauta_outlier_ejections_total",
        "rauta_upstream_ejected_shards",
    ];
    let mut sums: BTreeMap<String, f64> = wanted.iter().map(|w| (w.to_string(), 0.0)).collect();
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let Some((series, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let name = series.split('{').next().unwrap_or(series);
        if let (Some(sum), Ok(v)) = (sums.get_mut(name), value.trim().parse::<f64>()) {
            *sum += v;
        }
    }
    Ok(sums.into_iter().collect())
}

/// nginx's error-log lines about the upstream, by kind.
fn nginx_log(path: &Path) -> Vec<(String, f64)> {
    let text = fs::read_to_string(path).unwrap_or_default();
    let kinds = [
        ("connect() failed", "connect() failed"),
        ("upstream timed out", "upstream timed out"),
        (
            "temporarily disabled",
            "upstream server temporarily disabled",
        ),
        ("no live upstreams", "no live upstreams"),
        ("prematurely closed", "upstream prematurely closed"),
    ];
    kinds
        .iter()
        .map(|(needle, label)| {
            let n = text.lines().filter(|l| l.contains(needle)).count();
            (format!("error log: {label}"), n as f64)
        })
        .collect()
}

/// A closed loop of `conns` keep-alive connections sending `GET /` for
/// `duration`; requests still unanswered [`GRACE`] after that count as
/// failed (`unanswered`), and with a `timeout` those unanswered after it
/// count as `client timeout` (the connection is then closed, as a client
/// that gives up does).
fn load(
    addr: SocketAddr,
    conns: usize,
    duration: Duration,
    timeout: Option<Duration>,
) -> ClientCounts {
    let start = Instant::now();
    let end = start + duration;
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..conns)
            .map(|_| s.spawn(move || client(addr, start, end, timeout)))
            .collect();
        let mut total = ClientCounts::default();
        for h in handles {
            if let Ok(c) = h.join() {
                total.merge(c);
            }
        }
        total
            .failure_times
            .sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
        total
    })
}

const REQUEST: &[u8] =
    b"GET / HTTP/1.1\r\nHost: pods.bench.local\r\nUser-Agent: rauta-bench\r\n\r\n";

/// One client connection's loop (reconnecting after errors and closes).
fn client(
    addr: SocketAddr,
    start: Instant,
    end: Instant,
    timeout: Option<Duration>,
) -> ClientCounts {
    let mut c = ClientCounts::default();
    let mut conn: Option<(TcpStream, Vec<u8>)> = None;
    while Instant::now() < end {
        let (mut stream, mut buf) = match conn.take() {
            Some(x) => x,
            None => match TcpStream::connect_timeout(&addr, Duration::from_secs(2)) {
                Ok(s) => {
                    let _ = s.set_nodelay(true);
                    (s, Vec::with_capacity(4096))
                }
                Err(_) => {
                    c.sent += 1;
                    c.fail(start.elapsed().as_secs_f64(), Some("connect"), None);
                    std::thread::sleep(Duration::from_millis(10));
                    continue;
                }
            },
        };
        c.sent += 1;
        let t = Instant::now();
        if stream.write_all(REQUEST).is_err() {
            c.fail(start.elapsed().as_secs_f64(), Some("write"), None);
            continue;
        }
        let last = end + GRACE;
        let deadline = timeout.map_or(last, |d| (t + d).min(last));
        match read_answer(&mut stream, &mut buf, deadline) {
            Ok((status, keep)) => {
                let took = t.elapsed();
                if took > SLOW {
                    c.slow += 1;
                }
                c.slowest = c.slowest.max(took.as_secs_f64());
                if (200..400).contains(&status) {
                    c.ok += 1;
                } else {
                    c.fail(start.elapsed().as_secs_f64(), None, Some(status));
                }
                if keep {
                    conn = Some((stream, buf));
                }
            }
            Err("unanswered") if deadline < last => {
                c.fail(start.elapsed().as_secs_f64(), Some("client timeout"), None)
            }
            Err(kind) => c.fail(start.elapsed().as_secs_f64(), Some(kind), None),
        }
    }
    c
}

/// Reads one answer; returns (status, connection reusable) or the kind of
/// failure. Bodies here are small: Content-Length or chunked.
fn read_answer(
    stream: &mut TcpStream,
    buf: &mut Vec<u8>,
    deadline: Instant,
) -> Result<(u16, bool), &'static str> {
    let mut chunk = [0u8; 8192];
    let mut fill = |buf: &mut Vec<u8>| -> Result<(), &'static str> {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err("unanswered");
        }
        stream.set_read_timeout(Some(left)).map_err(|_| "socket")?;
        match stream.read(&mut chunk) {
            Ok(0) => Err("closed"),
            Ok(n) => {
                buf.extend_from_slice(&chunk[..n]);
                Ok(())
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                Err("unanswered")
            }
            Err(e) if e.kind() == ErrorKind::ConnectionReset => Err("reset"),
            Err(_) => Err("read"),
        }
    };
    let end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        fill(buf)?;
    };
    let head = std::str::from_utf8(&buf[..end]).map_err(|_| "garbage")?;
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or("garbage")?;
    let mut length = None;
    let mut chunked = false;
    let mut keep = true;
    for line in head.lines().skip(1) {
        if let Some((name, value)) = line.split_once(':') {
            let value = value.trim();
            if name.eq_ignore_ascii_case("content-length") {
                length = Some(value.parse::<usize>().map_err(|_| "garbage")?);
            } else if name.eq_ignore_ascii_case("transfer-encoding") {
                chunked = value.eq_ignore_ascii_case("chunked");
            } else if name.eq_ignore_ascii_case("connection") {
                keep &= !value.eq_ignore_ascii_case("close");
            }
        }
    }
    let body_end = if let Some(n) = length {
        while buf.len() < end + n {
            fill(buf)?;
        }
        end + n
    } else if chunked {
        // Small bodies only: the last chunk and the empty trailer end it.
        loop {
            if let Some(i) = buf[end..].windows(5).position(|w| w == b"0\r\n\r\n") {
                break end + i + 5;
            }
            fill(buf)?;
        }
    } else {
        // Neither: the body runs to the close; the status is what counts.
        keep = false;
        buf.len()
    };
    buf.drain(..body_end);
    Ok((status, keep))
}

/// Starts pods and all proxies, lets them settle, and measures their CPU
/// time and context switches over the idle window, all three at once.
fn idle(env: &Env, opts: &Options) -> Result<Vec<Idle>> {
    let pods = peers::start_pods(env, "idle", PODS)?;
    let mut proxies = Vec::new();
    for kind in &opts.proxies {
        proxies.push(peers::start_pool(
            *kind,
            &pods,
            env,
            &opts.proxy_cpus,
            "idle",
        )?);
    }
    println!(
        "idle: {} started; settling {} s, then measuring {} s",
        opts.proxies.len(),
        opts.idle_settle.as_secs(),
        opts.idle_window.as_secs()
    );
    std::thread::sleep(opts.idle_settle);
    let pids: Vec<Vec<u32>> = proxies.iter().map(|p| p.child.pids()).collect();
    let before: Vec<_> = pids.iter().map(|p| idle_sample(p)).collect();
    let names_before: Vec<_> = pids.iter().map(|p| sys::wakeups_by_thread(p)).collect();
    std::thread::sleep(opts.idle_window);
    let after: Vec<_> = pids.iter().map(|p| idle_sample(p)).collect();
    let names_after: Vec<_> = pids.iter().map(|p| sys::wakeups_by_thread(p)).collect();
    let mut out = Vec::new();
    for (i, proxy) in proxies.iter_mut().enumerate() {
        proxy.child.check_running()?;
        let (a, b) = (before[i], after[i]);
        let threads = pids[i]
            .iter()
            .filter_map(|p| fs::read_dir(format!("/proc/{p}/task")).ok())
            .map(|d| d.count())
            .sum();
        let r = Idle {
            kind: proxy.kind,
            processes: pids[i].len(),
            threads,
            cpu_s: b.0.saturating_sub(a.0) as f64 / 100.0,
            sched_s: b.1.saturating_sub(a.1) as f64 / 1e9,
            voluntary: b.2.saturating_sub(a.2),
            involuntary: b.3.saturating_sub(a.3),
            by_thread: {
                let mut v: Vec<(String, u64)> = names_after[i]
                    .iter()
                    .map(|(name, n)| {
                        let was = names_before[i].get(name).copied().unwrap_or(0);
                        (name.clone(), n.saturating_sub(was))
                    })
                    .filter(|(_, n)| *n > 0)
                    .collect();
                v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
                v
            },
        };
        println!(
            "[idle {}] CPU {:.2} s (schedstat {:.3} s), voluntary context switches {}, involuntary {}",
            r.kind.name(),
            r.cpu_s,
            r.sched_s,
            r.voluntary,
            r.involuntary
        );
        out.push(r);
    }
    for mut p in proxies {
        p.child.stop(Duration::from_secs(5));
    }
    drop(pods);
    Ok(out)
}

/// (stat ticks, schedstat ns, voluntary, involuntary) of a process set.
fn idle_sample(pids: &[u32]) -> (u64, u64, u64, u64) {
    let (v, i) = sys::context_switches(pids);
    (sys::process_ticks(pids), sys::cpu_ns(pids), v, i)
}

fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// Second-by-second counts after the kill, e.g. `0s:41 1s:2 10s:1`.
fn timeline(v: &[f64]) -> String {
    let mut buckets: BTreeMap<u64, u64> = BTreeMap::new();
    for t in v {
        *buckets.entry(t.max(0.0) as u64).or_default() += 1;
    }
    if buckets.is_empty() {
        return "–".into();
    }
    buckets
        .iter()
        .map(|(s, n)| format!("{s}s:{n}"))
        .collect::<Vec<_>>()
        .join(" ")
}

impl Results {
    /// The Markdown report.
    pub fn markdown(&self, started: &str, versions: &[(String, String)]) -> String {
        let mut m = String::new();
        let _ = writeln!(
            m,
            "# rauta resilience: a pod killed under load, and idle cost\n"
        );
        let _ = writeln!(
            m,
            "Run {started} UTC by `rauta-bench` (`bench/src/resilience.rs`).\n"
        );
        for (k, v) in versions {
            let _ = writeln!(m, "- {k}: {v}");
        }
        if let Some(o) = &self.options {
            let _ = writeln!(
                m,
                "\nEach proxy runs with 2 workers / threads / shards on CPUs {}; pods, tcpdump and the load generator on the client CPU. The configurations are in {} (kept after the run), written by `peers::start_pool`.",
                o.proxy_cpus,
                self.dir.display()
            );
            for (death, runs) in &self.kills {
                self.kill_section(&mut m, *death, runs, o);
            }
        }
        if let Some((window, idle)) = &self.idle {
            let _ = writeln!(m, "\n## idle: {} s with no traffic\n", window.as_secs());
            let _ = writeln!(m, "All three proxies started at once in front of the same three pods, settled, then measured together over the same window. CPU from `/proc/PID/stat` (utime + stime, 10 ms ticks, all processes and threads) and from `schedstat` (ns); wake-ups are voluntary context switches summed over `/proc/PID/task/*/status`.\n");
            let _ = writeln!(m, "| proxy | processes / threads | CPU s (stat) | CPU s (schedstat) | voluntary ctx switches | involuntary |");
            let _ = writeln!(m, "|---|---|---|---|---|---|");
            for r in idle {
                let _ = writeln!(
                    m,
                    "| {} | {} / {} | {:.2} | {:.4} | {} | {} |",
                    r.kind.name(),
                    r.processes,
                    r.threads,
                    r.cpu_s,
                    r.sched_s,
                    r.voluntary,
                    r.involuntary
                );
            }
            let _ = writeln!(
                m,
                "\nVoluntary context switches by thread name over the window:\n"
            );
            for r in idle {
                let list: Vec<String> = r
                    .by_thread
                    .iter()
                    .map(|(t, n)| format!("`{t}` {n}"))
                    .collect();
                let list = if list.is_empty() {
                    "none".to_string()
                } else {
                    list.join(", ")
                };
                let _ = writeln!(m, "- {}: {list}", r.kind.name());
            }
        }
        m
    }

    fn kill_section(&self, m: &mut String, death: Death, runs: &[KillRun], o: &Options) {
        let how = match death {
            Death::Kill => "SIGKILL: its ports refuse connections from then on",
            Death::Stop => "SIGSTOP: connects still complete into its backlog, nothing answers (a vanished node)",
        };
        let (duration, n) = match death {
            Death::Kill => (o.duration, o.runs),
            Death::Stop => (o.stop_duration, o.stop_runs),
        };
        let _ = writeln!(
            m,
            "\n## {}: one pod of {PODS} dies under load\n\n{} closed-loop keep-alive connections send `GET /` for {} s; at {} s pod {VICTIM} gets {how}. {n} run(s) per proxy, each with fresh pods and a freshly started proxy. Requests still unanswered {} s after the load ends count as failed (`unanswered`).{} tcpdump on `lo` records every SYN to the dead pod's port and every packet carrying request bytes to it.\n",
            death.id(),
            o.connections,
            duration.as_secs(),
            o.kill_at.as_secs_f64(),
            GRACE.as_secs(),
            o.client_timeout.map_or(String::new(), |d| format!(
                " Clients give up on a request after {:.1} s (`client timeout`) and close its connection.",
                d.as_secs_f64()
            ))
        );
        let _ = writeln!(m, "Medians over the runs:\n");
        let _ = writeln!(m, "| proxy | requests | failed | SYNs to the dead port after the kill | last SYN after the kill | request writes to it after the kill | last write | slow (> 1 s) | slowest |");
        let _ = writeln!(m, "|---|---|---|---|---|---|---|---|---|");
        for kind in &o.proxies {
            let mine: Vec<&KillRun> = runs.iter().filter(|r| r.kind == *kind).collect();
            let med = |f: &dyn Fn(&KillRun) -> f64| median(mine.iter().map(|r| f(r)).collect());
            let last_of = |v: &[f64]| v.last().copied().unwrap_or(f64::NAN);
            let _ = writeln!(
                m,
                "| {} | {:.0} | {:.0} | {:.0} | {} | {:.0} | {} | {:.0} | {} |",
                kind.name(),
                med(&|r| r.client.sent as f64),
                med(&|r| r.client.failed() as f64),
                med(&|r| r.syns.len() as f64),
                secs(med(&|r| last_of(&r.syns))),
                med(&|r| r.writes.len() as f64),
                secs(med(&|r| last_of(&r.writes))),
                med(&|r| r.client.slow as f64),
                secs(med(&|r| r.client.slowest)),
            );
        }
        let _ = writeln!(m, "\nEvery run (times in seconds after the kill; the timelines count per second after it):\n");
        let _ = writeln!(m, "| proxy | run | requests | failed | how they failed | failures seen (s after kill) | SYNs after kill | SYN timeline | writes after kill | write timeline | check SYNs |");
        let _ = writeln!(m, "|---|---|---|---|---|---|---|---|---|---|---|");
        for r in runs {
            let since: Vec<f64> = r
                .client
                .failure_times
                .iter()
                .map(|t| t - r.kill_at)
                .collect();
            let span = match (since.first(), since.last()) {
                (Some(a), Some(b)) => format!("{a:.2} … {b:.2}"),
                _ => "–".into(),
            };
            let _ = writeln!(
                m,
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                r.kind.name(),
                r.run,
                r.client.sent,
                r.client.failed(),
                failure_kinds(&r.client),
                span,
                r.syns.len(),
                timeline(&r.syns),
                r.writes.len(),
                timeline(&r.writes),
                r.check_syns.len()
            );
        }
        let dropped: u64 = runs.iter().map(|r| r.capture_dropped).sum();
        if dropped > 0 {
            let _ = writeln!(m, "\ntcpdump reported {dropped} packets dropped by the kernel over these runs: counts may be low.");
        }
        let notes: Vec<&KillRun> = runs.iter().filter(|r| !r.notes.is_empty()).collect();
        if !notes.is_empty() {
            let _ = writeln!(m, "\nrauta's metrics (summed over labels) and nginx's error-log lines after each run:\n");
            for r in notes {
                let list: Vec<String> = r.notes.iter().map(|(k, v)| format!("{k} = {v}")).collect();
                let _ = writeln!(m, "- {} run {}: {}", r.kind.name(), r.run, list.join(", "));
            }
        }
    }
}

fn secs(v: f64) -> String {
    if v.is_nan() {
        "–".into()
    } else {
        format!("{v:.3} s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capture_lines() {
        let text = "tcpdump: verbose output suppressed\nlistening on lo\n\
1765100000.250000 IP 127.0.0.1.41234 > 127.0.0.1.38211: Flags [S], seq 1, win 65495, length 0\n\
1765100001.500000 IP 127.0.0.1.41236 > 127.0.0.1.38211: Flags [P.], seq 1:70, ack 1, win 512, length 69\n\
3 packets captured\n0 packets dropped by kernel\n";
        let p = parse_capture(text);
        assert_eq!(p.len(), 2);
        assert!(p[0].syn && !p[1].syn);
        assert_eq!(p[1].port, 38211);
        assert!((p[1].epoch - 1765100001.5).abs() < 1e-6);
        assert_eq!(dropped(text), 0);
    }

    #[test]
    fn seconds_timeline() {
        assert_eq!(timeline(&[0.1, 0.5, 10.2]), "0s:2 10s:1");
        assert_eq!(timeline(&[]), "–");
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
    }
}
