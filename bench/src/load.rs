//! The scenarios and the load generators that drive them (wrk with a Lua
//! reporter, oha for fixed-rate latency), with their output parsed.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{bail, Context, Result};

use crate::workload::{Routes, Table, LARGE_PATH, POLICY_HOST, POLICY_ORIGIN};

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
}

/// Every scenario, in run order.
pub const ALL: [Scenario; 8] = [
    Scenario::KeepAlive,
    Scenario::FixedRate,
    Scenario::NewConnection,
    Scenario::Large,
    Scenario::TlsNewConnection,
    Scenario::TlsKeepAlive,
    Scenario::ManyRoutes,
    Scenario::Policies,
];

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
        }
    }

    /// True for the scenarios that talk HTTPS to the proxy's TLS port.
    pub fn is_tls(self) -> bool {
        matches!(self, Scenario::TlsNewConnection | Scenario::TlsKeepAlive)
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

/// Writes the wrk scripts into `dir`.
pub fn write_scripts(dir: &Path, routes: Routes) -> Result<()> {
    fs::write(dir.join("report.lua"), WRK_DONE)?;
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
