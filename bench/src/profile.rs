//! Per-request costs the kernel and valgrind can count: `perf stat`
//! software events and tracepoints (context switches, syscalls, io_uring
//! submissions) and callgrind's user-space instruction count.

use std::fs;
use std::process::{Command, Stdio};
use std::thread::sleep;
use std::time::Duration;

use anyhow::{bail, Context, Result};

use crate::load::{self, Scenario, Settings};
use crate::peers::{self, Env, Kind, Launch, Proxy};
use crate::workload::Table;

/// The events counted by `perf stat`, in report order.
pub const PERF_EVENTS: [&str; 5] = [
    "context-switches",
    "raw_syscalls:sys_enter",
    "syscalls:sys_enter_io_uring_enter",
    "io_uring:io_uring_submit_req",
    "irq_vectors:reschedule_entry",
];

/// Event counts of one `perf stat` run, divided by the requests served.
#[derive(Debug, Clone, Default)]
pub struct PerfPerRequest {
    /// Per event (same order as [`PERF_EVENTS`]): count per request, or
    /// `None` when perf could not count it.
    pub per_request: Vec<Option<f64>>,
}

/// Counts [`PERF_EVENTS`] on every process of `proxy` while a small-GET
/// keep-alive load of `secs` runs.
pub fn perf_stat(
    proxy: &Proxy,
    s: &Settings,
    secs: u64,
    dir: &std::path::Path,
) -> Result<PerfPerRequest> {
    let out = dir.join(format!("perf-{}.csv", proxy.kind.name()));
    let pids: Vec<String> = proxy.child.pids().iter().map(u32::to_string).collect();
    let perf = Command::new("perf")
        .args(["stat", "-x,", "-o"])
        .arg(&out)
        .args(["-e", &PERF_EVENTS.join(",")])
        .args(["-p", &pids.join(",")])
        .args(["--", "sleep", &format!("{}", secs as f64 + 0.6)])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .context("start perf stat")?;
    sleep(Duration::from_millis(300));
    let load = load::run(
        Scenario::KeepAlive,
        proxy.port,
        s,
        Duration::from_secs(secs),
    );
    let status = perf.wait_with_output().context("wait for perf stat")?;
    let load = load?;
    if !status.status.success() {
        bail!(
            "perf stat failed: {}",
            String::from_utf8_lossy(&status.stderr).trim()
        );
    }
    let text = fs::read_to_string(&out).with_context(|| format!("read {}", out.display()))?;
    let counts = parse_perf_csv(&text);
    if load.requests == 0 {
        bail!("no request completed while perf counted");
    }
    let per_request = PERF_EVENTS
        .iter()
        .map(|e| counts.iter().find(|(n, _)| n == e).and_then(|(_, v)| *v))
        .map(|v| v.map(|c| c / load.requests as f64))
        .collect();
    Ok(PerfPerRequest { per_request })
}

/// (event, count) from `perf stat -x,` output; `None` for an event perf
/// listed as not counted or not supported.
pub fn parse_perf_csv(text: &str) -> Vec<(String, Option<f64>)> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            let event = f.get(2)?.trim();
            if event.is_empty() {
                return None;
            }
            Some((event.to_string(), f.first()?.trim().parse::<f64>().ok()))
        })
        .collect()
}

/// What callgrind measured for one proxy.
#[derive(Debug, Clone)]
pub struct Callgrind {
    /// User-space instructions (Ir) per request.
    pub instructions_per_request: f64,
    /// Requests counted.
    pub requests: u64,
}

/// Starts `kind` under callgrind, zeroes the counters once it serves,
/// drives a small-GET load (16 connections) for `secs`, dumps, and divides
/// the instructions by the requests.
pub fn callgrind(kind: Kind, env: &Env, s: &Settings, secs: u64) -> Result<Callgrind> {
    let mut proxy = peers::start(kind, Table::Basic, Launch::Callgrind, env)?;
    let pid = proxy.child.pid();
    control(pid, "-z").context("zero callgrind's counters (callgrind_control -z)")?;
    let mut slow = s.clone();
    slow.connections = 16;
    let load = load::run(
        Scenario::KeepAlive,
        proxy.port,
        &slow,
        Duration::from_secs(secs),
    );
    let dumped = control(pid, "-d").context("dump callgrind's counters (callgrind_control -d)");
    proxy.child.stop(Duration::from_secs(10));
    let load = load?;
    dumped?;
    if load.requests == 0 {
        bail!("no request completed under callgrind");
    }
    let name = format!(
        "callgrind-{}-basic.{pid}.out",
        kind.name().to_ascii_lowercase()
    );
    let mut dumps: Vec<_> = fs::read_dir(&env.dir)?
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_str()
                .is_some_and(|n| n.starts_with(&name) && n != name)
        })
        .map(|e| e.path())
        .collect();
    dumps.sort();
    let dump = dumps
        .first()
        .with_context(|| format!("no callgrind dump {name}.N in {}", env.dir.display()))?;
    let text = fs::read_to_string(dump)?;
    let ir = parse_callgrind_total(&text)
        .with_context(|| format!("no totals/summary line in {}", dump.display()))?;
    Ok(Callgrind {
        instructions_per_request: ir as f64 / load.requests as f64,
        requests: load.requests,
    })
}

/// The first event (Ir) of a callgrind dump's `totals:` or `summary:` line.
pub fn parse_callgrind_total(text: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| {
            l.strip_prefix("totals:")
                .or_else(|| l.strip_prefix("summary:"))
        })
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
}

fn control(pid: u32, op: &str) -> Result<()> {
    let out = Command::new("timeout")
        .args(["60", "callgrind_control", op, &pid.to_string()])
        .stdin(Stdio::null())
        .output()
        .context("run callgrind_control")?;
    if !out.status.success() {
        bail!(
            "callgrind_control {op} {pid} failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout).trim(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn perf_csv() {
        let text = "# started on x\n\n1200,,context-switches,5000,100.00,,\n<not supported>,,io_uring:io_uring_submit_req,0,100.00,,\n90000,,raw_syscalls:sys_enter,5000,100.00,,\n";
        let c = parse_perf_csv(text);
        assert_eq!(c.len(), 3);
        assert_eq!(c[0], ("context-switches".into(), Some(1200.0)));
        assert_eq!(c[1].1, None);
    }

    #[test]
    fn callgrind_totals() {
        assert_eq!(
            parse_callgrind_total("events: Ir\ntotals: 12345\n"),
            Some(12345)
        );
        assert_eq!(parse_callgrind_total("summary: 99 1\n"), Some(99));
        assert_eq!(parse_callgrind_total("events: Ir\n"), None);
    }
}
