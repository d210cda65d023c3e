//! The scenarios and the load generators that drive them (wrk with a Lua
//! reporter, oha for fixed-rate latency, openssl s_time for handshakes,
//! h2load for HTTP/2 and gRPC), with their output parsed.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{bail, Context, Result};

use crate::workload::{
    grpc_frame, Routes, Table, GRPC_PATH, GRPC_PAYLOAD, LARGE_PATH, POLICY_HOST, POLICY_ORIGIN,
};

/// One benchmark scenario.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scenario {
    /// Small GET over keep-alive at saturation (wrk, 64 connections).
    KeepAlive,
    /// Fixed request rate, latency percentiles (oha with latency correction).
    FixedRate,
    /// A new connection per request (`Connection: close`).
    NewConnection,
    /// 1 MiB responses.
    Large,
    /// Requests spread over the many-routes table.
    ManyRoutes,
    /// HTTPS, a new TLS connection (handshake) per request.
    TlsNewConnection,
    /// HTTPS, small GET over kept-alive TLS connections.
    TlsKeepAlive,
    /// Small GET over keep-alive on a route with a policy stack (rewrite,
    /// CORS, allow-list, rate limit).
    Policies,
    /// HTTP/2 over TLS (ALPN h2) to the proxy, HTTP/1.1 upstream, small
    /// GET (h2load, 16 connections × 10 streams).
    H2Tls,
    /// Unary gRPC calls over h2c (prior knowledge) to the proxy, HTTP/2
    /// cleartext upstream to the gRPC origin (h2load, 16 × 10 streams).
    GrpcUnary,
}

/// Every scenario, in run order.
pub const ALL: [Scenario; 10] = [
    Scenario::KeepAlive,
    Scenario::FixedRate,
    Scenario::NewConnection,
    Scenario::Large,
    Scenario::TlsNewConnection,
    Scenario::TlsKeepAlive,
    Scenario::H2Tls,
    Scenario::ManyRoutes,
    Scenario::Policies,
    Scenario::GrpcUnary,
];

/// h2load's connections in the HTTP/2 scenarios.
pub const H2_CONNECTIONS: u32 = 16;
/// h2load's concurrent streams per connection (`-m`) in the HTTP/2
/// scenarios: with one stream per connection every request costs a read
/// and a write, and the HTTP/2 layer's batching never shows.
pub const H2_STREAMS: u32 = 10;
/// The file h2load posts in the gRPC scenario (in the work directory).
pub const GRPC_MESSAGE_FILE: &str = "grpc-unary.bin";

impl Scenario {
    /// Short id used on the command line and in the CSV.
    pub fn id(self) -> &'static str {
        match self {
            Scenario::KeepAlive => "keepalive",
            Scenario::FixedRate => "fixed-rate",
            Scenario::NewConnection => "new-conn",
            Scenario::Large => "1mb",
            Scenario::ManyRoutes => "routes",
            Scenario::TlsNewConnection => "tls-new-conn",
            Scenario::TlsKeepAlive => "tls-keepalive",
            Scenario::Policies => "policies",
            Scenario::H2Tls => "h2-tls",
            Scenario::GrpcUnary => "grpc-unary",
        }
    }

    /// True for the scenarios that talk HTTPS to the proxy's TLS port.
    pub fn is_tls(self) -> bool {
        matches!(
            self,
            Scenario::TlsNewConnection | Scenario::TlsKeepAlive | Scenario::H2Tls
        )
    }

    /// Parses an id.
    pub fn parse(s: &str) -> Result<Scenario> {
        ALL.into_iter().find(|sc| sc.id() == s).with_context(|| {
            let ids: Vec<&str> = ALL.iter().map(|s| s.id()).collect();
            format!("unknown scenario {s:?} (one of {})", ids.join(", "))
        })
    }

    /// The routing table the proxies need for this scenario.
    pub fn table(self, routes: Routes) -> Table {
        match self {
            Scenario::ManyRoutes => Table::Many(routes),
            Scenario::Policies => Table::Policies,
            Scenario::GrpcUnary => Table::Grpc,
            _ => Table::Basic,
        }
    }
}

/// Load-generator settings shared by all runs.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Length of one measured run.
    pub duration: Duration,
    /// CPU of the load generator.
    pub cpu: usize,
    /// Request rate of the fixed-rate scenario.
    pub rate: u32,
    /// Connections of the saturation scenarios.
    pub connections: u32,
    /// Connections of the 1 MiB scenario.
    pub large_connections: u32,
    /// Whether oha is available (else wrk stands in, closed-loop).
    pub have_oha: bool,
    /// Directory for the Lua scripts.
    pub dir: PathBuf,
}

/// What one load run measured.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    /// Which tool produced it.
    pub tool: &'static str,
    /// Completed requests (any status).
    pub requests: u64,
    /// Seconds the load ran.
    pub secs: f64,
    /// Requests per second.
    pub rps: f64,
    /// Median latency in µs.
    pub p50_us: f64,
    /// 99th percentile latency in µs.
    pub p99_us: f64,
    /// 99.9th percentile latency in µs.
    pub p999_us: f64,
    /// Responses with a status of 400 or more (wrk) / not 2xx (oha).
    pub status_errors: u64,
    /// Connect, read, write and timeout errors.
    pub socket_errors: u64,
}

/// The Lua reporter appended to every wrk script: one parseable line.
const WRK_DONE: &str = r#"
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "RAUTA-BENCH requests=%d duration_us=%d bytes=%d connect=%d read=%d write=%d status=%d timeout=%d p50=%d p99=%d p999=%d\n",
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(99), latency:percentile(99.9)))
end
"#;

/// Writes the wrk scripts and h2load's gRPC message into `dir`.
pub fn write_scripts(dir: &Path, routes: Routes) -> Result<()> {
    fs::write(dir.join("report.lua"), WRK_DONE)?;
    fs::write(dir.join(GRPC_MESSAGE_FILE), grpc_frame(GRPC_PAYLOAD))?;
    let mut spread = String::new();
    let _ = write!(
        spread,
        "math.randomseed(20261122)\nlocal hosts, paths = {}, {}\n\
request = function()\n  local h = math.random(0, hosts - 1)\n  local p = math.random(0, paths - 1)\n  \
return wrk.format(\"GET\", \"/p\" .. p .. \"/item\", {{[\"Host\"] = \"h\" .. h .. \".bench.local\"}})\nend\n{WRK_DONE}",
        routes.hosts, routes.paths
    );
    fs::write(dir.join("routes.lua"), spread)?;
    Ok(())
}

/// Runs `scenario` against 127.0.0.1:`port` for `duration`.
pub fn run(scenario: Scenario, port: u16, s: &Settings, duration: Duration) -> Result<Outcome> {
    let secs = duration.as_secs().max(1);
    let scheme = if scenario.is_tls() { "https" } else { "http" };
    let url = |path: &str| format!("{scheme}://127.0.0.1:{port}{path}");
    let report = s.dir.join("report.lua").display().to_string();
    let c = s.connections.to_string();
    match scenario {
        Scenario::KeepAlive | Scenario::TlsKeepAlive => {
            wrk(s.cpu, &[&c, &format!("{secs}s"), "-s", &report], &url("/"))
        }
        Scenario::TlsNewConnection => s_time(s.cpu, TLS_CLIENTS, secs, port),
        Scenario::NewConnection => wrk(
            s.cpu,
            &[
                &c,
                &format!("{secs}s"),
                "-s",
                &report,
                "-H",
                "Connection: close",
            ],
            &url("/"),
        ),
        Scenario::Large => wrk(
            s.cpu,
            &[
                &s.large_connections.to_string(),
                &format!("{secs}s"),
                "-s",
                &report,
            ],
            &url(LARGE_PATH),
        ),
        Scenario::Policies => {
            let host = format!("Host: {POLICY_HOST}");
            let origin = format!("Origin: {POLICY_ORIGIN}");
            let duration = format!("{secs}s");
            let args: [&str; 8] = [&c, &duration, "-s", &report, "-H", &host, "-H", &origin];
            wrk(s.cpu, &args, &url("/app/item"))
        }
        Scenario::ManyRoutes => {
            let script = s.dir.join("routes.lua").display().to_string();
            wrk(s.cpu, &[&c, &format!("{secs}s"), "-s", &script], &url("/"))
        }
        Scenario::H2Tls => h2load(s.cpu, secs, &[], &url("/"), "h2"),
        Scenario::GrpcUnary => {
            let message = s.dir.join(GRPC_MESSAGE_FILE).display().to_string();
            let grpc = [
                "-d",
                &message,
                "-H",
                "content-type: application/grpc",
                "-H",
                "te: trailers",
            ];
            h2load(s.cpu, secs, &grpc, &url(GRPC_PATH), "h2c")
        }
        Scenario::FixedRate if s.have_oha => oha(s.cpu, secs, s.rate, &url("/")),
        // Without oha: a closed loop of few connections (latency then
        // suffers from coordinated omission; the report says so).
        Scenario::FixedRate => {
            let mut o = wrk(s.cpu, &["4", &format!("{secs}s"), "-s", &report], &url("/"))?;
            o.tool = "wrk -c4 (closed loop)";
            Ok(o)
        }
    }
}

/// Parallel `openssl s_time` clients of the TLS new-connection scenario.
const TLS_CLIENTS: usize = 16;

/// `clients` × `openssl s_time -new` for `secs`, pinned: full TLS
/// handshakes (s_time offers no session with `-new`; wrk would resume
/// one), one `GET /` each. Requests are the connections it completed.
fn s_time(cpu: usize, clients: usize, secs: u64, port: u16) -> Result<Outcome> {
    let started = std::time::Instant::now();
    let children = (0..clients)
        .map(|_| {
            Command::new("taskset")
                .args(["-c", &cpu.to_string(), "openssl", "s_time"])
                .args(["-connect", &format!("127.0.0.1:{port}"), "-new"])
                .args(["-time", &secs.to_string(), "-www", "/"])
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .context("run openssl s_time")
        })
        .collect::<Result<Vec<_>>>()?;
    let mut requests = 0;
    let mut failed = 0;
    for child in children {
        let out = child
            .wait_with_output()
            .context("wait for openssl s_time")?;
        let text = String::from_utf8_lossy(&out.stdout);
        match parse_s_time(&text) {
            Some(n) if out.status.success() => requests += n,
            _ => failed += 1,
        }
    }
    let secs = started.elapsed().as_secs_f64();
    if requests == 0 {
        bail!("openssl s_time completed no connection ({failed} clients failed)");
    }
    Ok(Outcome {
        tool: "openssl s_time -new",
        requests,
        secs,
        rps: requests as f64 / secs,
        p50_us: f64::NAN,
        p99_us: f64::NAN,
        p999_us: f64::NAN,
        status_errors: 0,
        socket_errors: failed,
    })
}

/// The N of s_time's `N connections in T real seconds` line.
pub fn parse_s_time(out: &str) -> Option<u64> {
    out.lines()
        .find(|l| l.contains("connections in") && l.contains("real seconds"))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.parse().ok())
}

/// `wrk -t1 -c<conns> -d<dur> [more] url`, pinned; `args` starts with the
/// connection count and the duration.
fn wrk(cpu: usize, args: &[&str], url: &str) -> Result<Outcome> {
    let [conns, duration, more @ ..] = args else {
        bail!("wrk needs connections and a duration");
    };
    let mut cmd = Command::new("taskset");
    cmd.args(["-c", &cpu.to_string(), "wrk", "-t1"])
        .arg(format!("-c{conns}"))
        .arg(format!("-d{duration}"))
        .args(["--timeout", "5s"])
        .args(more)
        .arg(url);
    let out = output(cmd, "wrk")?;
    let mut o = parse_wrk(&out).with_context(|| format!("wrk's output:\n{out}"))?;
    o.tool = "wrk";
    Ok(o)
}

/// Parses the `RAUTA-BENCH` line of the Lua reporter.
pub fn parse_wrk(out: &str) -> Result<Outcome> {
    let line = out
        .lines()
        .find_map(|l| l.strip_prefix("RAUTA-BENCH "))
        .context("no RAUTA-BENCH line (did the Lua reporter run?)")?;
    let fields: HashMap<&str, f64> = line
        .split_whitespace()
        .filter_map(|kv| {
            let (k, v) = kv.split_once('=')?;
            Some((k, v.parse().ok()?))
        })
        .collect();
    let get = |k: &str| {
        fields
            .get(k)
            .copied()
            .with_context(|| format!("field {k} missing from {line:?}"))
    };
    let requests = get("requests")?;
    let secs = get("duration_us")? / 1e6;
    if secs <= 0.0 {
        bail!("wrk reported a zero duration");
    }
    Ok(Outcome {
        tool: "wrk",
        requests: requests as u64,
        secs,
        rps: requests / secs,
        p50_us: get("p50")?,
        p99_us: get("p99")?,
        p999_us: get("p999")?,
        status_errors: get("status")? as u64,
        socket_errors: (get("connect")? + get("read")? + get("write")? + get("timeout")?) as u64,
    })
}

/// `h2load -t1 -c16 -m10 -D secs [more] url` ([`H2_CONNECTIONS`],
/// [`H2_STREAMS`]), pinned; fails unless the
/// connections negotiated `protocol` (`h2` through ALPN, `h2c` for prior
/// knowledge) and at least one request succeeded. Errors go to stderr
/// with h2load's own lines.
fn h2load(cpu: usize, secs: u64, more: &[&str], url: &str, protocol: &str) -> Result<Outcome> {
    let mut cmd = Command::new("taskset");
    cmd.args(["-c", &cpu.to_string(), "h2load", "-t", "1"])
        .args(["-c", &H2_CONNECTIONS.to_string()])
        .args(["-m", &H2_STREAMS.to_string()])
        .args(["-D", &secs.to_string()])
        .args(more)
        .arg(url);
    let out = output(cmd, "h2load")?;
    let mut h = parse_h2load(&out).with_context(|| format!("h2load's output:\n{out}"))?;
    h.outcome.tool = "h2load -t1 -c16 -m10";
    if h.protocol.as_deref() != Some(protocol) {
        bail!(
            "h2load negotiated {:?}, not {protocol}; its output:\n{out}",
            h.protocol
        );
    }
    if h.succeeded == 0 {
        bail!("h2load: no request succeeded; its output:\n{out}");
    }
    if h.outcome.status_errors + h.outcome.socket_errors > 0 {
        let lines: Vec<&str> = out
            .lines()
            .filter(|l| {
                l.starts_with("finished in")
                    || l.starts_with("requests:")
                    || l.starts_with("status codes:")
            })
            .collect();
        eprintln!("h2load {url}: errors:\n  {}", lines.join("\n  "));
    }
    Ok(h.outcome)
}

/// What h2load's summary says.
#[derive(Debug, Clone, Default)]
pub struct H2load {
    /// The figures (h2load gives no latency percentiles: NaN).
    pub outcome: Outcome,
    /// Requests answered 2xx or 3xx.
    pub succeeded: u64,
    /// `Application protocol:` (`h2`, `h2c`, `http/1.1`).
    pub protocol: Option<String>,
}

/// Parses h2load's summary: `finished in 7.00s, …`, `requests: N total, N
/// started, N done, N succeeded, N failed, N errored, N timeout` and
/// `status codes: N 2xx, N 3xx, N 4xx, N 5xx`. Requests are the done ones
/// (any status); status errors the 4xx and 5xx; socket errors the failed
/// ones (reset streams, lost connections; errored and timed-out requests
/// count as failed too).
pub fn parse_h2load(out: &str) -> Result<H2load> {
    let line = |prefix: &str| {
        out.lines()
            .find_map(|l| l.strip_prefix(prefix))
            .with_context(|| format!("no {prefix:?} line"))
    };
    // "N word, N word, …" -> the N before `word`.
    let count = |text: &str, word: &str| -> Result<u64> {
        text.split(',')
            .find_map(|part| {
                let mut it = part.split_whitespace();
                let n = it.next()?;
                (it.next() == Some(word)).then(|| n.parse().ok())?
            })
            .with_context(|| format!("no {word:?} count in {text:?}"))
    };
    let finished = line("finished in ")?;
    let secs: f64 = finished
        .split(',')
        .next()
        .and_then(|t| t.trim().strip_suffix('s'))
        .and_then(|t| t.parse().ok())
        .with_context(|| format!("no duration in {finished:?}"))?;
    if secs <= 0.0 {
        bail!("h2load reported a zero duration");
    }
    let requests = line("requests: ")?;
    let codes = line("status codes: ")?;
    let done = count(requests, "done")?;
    let protocol = out
        .lines()
        .find_map(|l| l.strip_prefix("Application protocol:"))
        .map(|p| p.trim().to_string());
    Ok(H2load {
        outcome: Outcome {
            tool: "h2load",
            requests: done,
            secs,
            rps: done as f64 / secs,
            p50_us: f64::NAN,
            p99_us: f64::NAN,
            p999_us: f64::NAN,
            status_errors: count(codes, "4xx")? + count(codes, "5xx")?,
            socket_errors: count(requests, "failed")?,
        },
        succeeded: count(requests, "succeeded")?,
        protocol,
    })
}

/// `oha` at a fixed rate with latency correction, JSON output, pinned.
fn oha(cpu: usize, secs: u64, rate: u32, url: &str) -> Result<Outcome> {
    let mut cmd = Command::new("taskset");
    cmd.args([
        "-c",
        &cpu.to_string(),
        "oha",
        "--no-tui",
        "--output-format",
        "json",
    ])
    .args([
        "-z",
        &format!("{secs}s"),
        "-q",
        &rate.to_string(),
        "-c",
        "32",
    ])
    .args(["--latency-correction", url]);
    let out = output(cmd, "oha")?;
    parse_oha(&out).with_context(|| format!("oha's output:\n{out}"))
}

/// Parses oha's JSON report (times in seconds).
pub fn parse_oha(out: &str) -> Result<Outcome> {
    let v: serde_json::Value = serde_json::from_str(out).context("oha's output is not JSON")?;
    let num = |ptr: &str| {
        v.pointer(ptr)
            .and_then(serde_json::Value::as_f64)
            .with_context(|| format!("oha's JSON has no number at {ptr}"))
    };
    let secs = num("/summary/total")?;
    let codes = v
        .pointer("/statusCodeDistribution")
        .and_then(serde_json::Value::as_object)
        .context("oha's JSON has no statusCodeDistribution")?;
    let mut ok = 0u64;
    let mut bad = 0u64;
    for (code, n) in codes {
        let n = n.as_u64().unwrap_or(0);
        if code.starts_with('2') {
            ok += n;
        } else {
            bad += n;
        }
    }
    // Requests cut off by the deadline are not errors of the proxy.
    let socket_errors = v
        .pointer("/errorDistribution")
        .and_then(serde_json::Value::as_object)
        .map_or(0, |m| {
            m.iter()
                .filter(|(k, _)| !k.contains("deadline"))
                .map(|(_, n)| n.as_u64().unwrap_or(0))
                .sum()
        });
    let requests = ok + bad;
    if secs <= 0.0 {
        bail!("oha reported a zero duration");
    }
    Ok(Outcome {
        tool: "oha",
        requests,
        secs,
        rps: requests as f64 / secs,
        p50_us: num("/latencyPercentiles/p50")? * 1e6,
        p99_us: num("/latencyPercentiles/p99")? * 1e6,
        p999_us: num("/latencyPercentiles/p99.9")? * 1e6,
        status_errors: bad,
        socket_errors,
    })
}

fn output(mut cmd: Command, name: &str) -> Result<String> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("run {name}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        bail!(
            "{name} failed ({}):\n{stdout}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(stdout)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrk_line_parses_and_missing_fields_are_named() {
        let out = "Running 1s test\nRAUTA-BENCH requests=2000 duration_us=1000000 bytes=1 connect=0 read=1 write=0 status=3 timeout=2 p50=100 p99=900 p999=1500\n";
        let o = parse_wrk(out).expect("parses");
        assert_eq!(o.requests, 2000);
        assert!((o.rps - 2000.0).abs() < 1e-9);
        assert_eq!(o.status_errors, 3);
        assert_eq!(o.socket_errors, 3);
        assert!((o.p999_us - 1500.0).abs() < 1e-9);
        let err = parse_wrk("RAUTA-BENCH requests=1 duration_us=1").expect_err("incomplete");
        assert!(format!("{err:#}").contains("field"), "{err:#}");
        assert!(parse_wrk("no line").is_err());
    }

    #[test]
    fn s_time_line_parses() {
        let out = "Collecting connection statistics for 2 seconds\n***\n\n129 connections in 0.27s; 477.78 connections/user sec, bytes read 19737\n129 connections in 3 real seconds, 153 bytes read per connection\n";
        assert_eq!(parse_s_time(out), Some(129));
        assert_eq!(parse_s_time("no line"), None);
    }

    #[test]
    fn h2load_summary_parses() {
        let out = "starting benchmark...\nApplication protocol: h2c\n\nfinished in 2.00s, 144944.00 req/s, 9.54MB/s\n\
requests: 289888 total, 289928 started, 289888 done, 289880 succeeded, 3 failed, 2 errored, 1 timeout\n\
status codes: 289870 2xx, 10 3xx, 4 4xx, 1 5xx\ntraffic: 19.08MB (20002468) total\n";
        let h = parse_h2load(out).expect("parses");
        assert_eq!(h.protocol.as_deref(), Some("h2c"));
        assert_eq!(h.succeeded, 289_880);
        assert_eq!(h.outcome.requests, 289_888);
        assert!((h.outcome.rps - 144_944.0).abs() < 1e-6);
        assert_eq!(h.outcome.status_errors, 5);
        assert_eq!(h.outcome.socket_errors, 3);
        assert!(h.outcome.p99_us.is_nan());
        assert!(parse_h2load("finished in 2.00s, 1 req/s\n").is_err());
    }

    #[test]
    fn oha_json_parses() {
        let json = r#"{"summary":{"total":2.0,"requestsPerSec":100.0},
            "latencyPercentiles":{"p50":0.0001,"p99":0.002,"p99.9":0.003},
            "statusCodeDistribution":{"200":198,"502":2},
            "errorDistribution":{"aborted due to deadline":5,"connection reset":1}}"#;
        let o = parse_oha(json).expect("parses");
        assert_eq!(o.requests, 200);
        assert_eq!(o.status_errors, 2);
        assert_eq!(o.socket_errors, 1);
        assert!((o.p50_us - 100.0).abs() < 1e-6);
        assert!(parse_oha(r#"{"summary":{}}"#).is_err());
    }
}
