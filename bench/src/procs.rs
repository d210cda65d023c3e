//! Child processes pinned to a CPU and stopped on drop, free ports, and a
//! tiny blocking HTTP/1.1 client for readiness checks.

use std::fs::File;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::sys;

/// A long-running child (backend or proxy) that is stopped when dropped.
#[derive(Debug)]
pub struct Child {
    name: String,
    child: std::process::Child,
    log: PathBuf,
}

impl Child {
    /// Starts `program args` pinned to `cpu` (through `taskset`), with
    /// stdout and stderr going to `log`.
    pub fn spawn(
        name: &str,
        cpu: usize,
        program: &str,
        args: &[String],
        env: &[(&str, &str)],
        log: &Path,
    ) -> Result<Child> {
        Child::spawn_on(name, &cpu.to_string(), program, args, env, log)
    }

    /// Like [`Child::spawn`], pinned to a `taskset` CPU list (`0,1`).
    pub fn spawn_on(
        name: &str,
        cpus: &str,
        program: &str,
        args: &[String],
        env: &[(&str, &str)],
        log: &Path,
    ) -> Result<Child> {
        let out = File::create(log).with_context(|| format!("create {}", log.display()))?;
        let err = out.try_clone()?;
        let mut cmd = Command::new("taskset");
        cmd.arg("-c")
            .arg(cpus)
            .arg(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd
            .spawn()
            .with_context(|| format!("start {name}: taskset -c {cpus} {program}"))?;
        Ok(Child {
            name: name.to_string(),
            child,
            log: log.to_path_buf(),
        })
    }

    /// The process id (taskset execs the program, so this is its pid).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends `signal` to this process alone (a pod's SIGKILL or SIGSTOP).
    pub fn signal(&self, signal: Signal) -> Result<()> {
        let raw = i32::try_from(self.pid()).context("pid out of range")?;
        kill(Pid::from_raw(raw), signal).with_context(|| format!("{signal} to {}", self.name))?;
        Ok(())
    }

    /// This process and its descendants (nginx's workers).
    pub fn pids(&self) -> Vec<u32> {
        sys::process_tree(self.pid())
    }

    /// Fails with the tail of the log when the process has exited.
    pub fn check_running(&mut self) -> Result<()> {
        if let Some(status) = self.child.try_wait()? {
            bail!(
                "{} exited ({status}); its log {} ends with:\n{}",
                self.name,
                self.log.display(),
                log_tail(&self.log)
            );
        }
        Ok(())
    }

    /// Sends SIGTERM to the whole tree, waits up to `grace`, then SIGKILLs
    /// whatever is left. Only processes this benchmark started are touched.
    pub fn stop(&mut self, grace: Duration) {
        if matches!(self.child.try_wait(), Ok(Some(_))) {
            return;
        }
        let tree = self.pids();
        signal_all(&tree, Signal::SIGTERM);
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                break;
            }
            sleep(Duration::from_millis(20));
        }
        // Workers of a killed master would be orphaned: kill them by pid.
        signal_all(&tree, Signal::SIGKILL);
        let _ = self.child.wait();
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        self.stop(Duration::from_secs(5));
    }
}

fn signal_all(pids: &[u32], signal: Signal) {
    for pid in pids {
        if let Ok(raw) = i32::try_from(*pid) {
            let _ = kill(Pid::from_raw(raw), signal);
        }
    }
}

/// The last lines of a log file, for error messages.
pub fn log_tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(15)..].join("\n")
}

/// A free TCP port on 127.0.0.1 (bound once, then released).
pub fn free_port() -> Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").context("bind 127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

/// The answer to [`get`].
#[derive(Debug)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// Body bytes (read to close).
    pub body: Vec<u8>,
}

/// One `GET` with `Connection: close`, read to the end.
pub fn get(addr: SocketAddr, host: &str, path: &str, timeout: Duration) -> Result<Response> {
    let mut s = TcpStream::connect_timeout(&addr, timeout)?;
    s.set_read_timeout(Some(timeout))?;
    s.set_write_timeout(Some(timeout))?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nUser-Agent: rauta-bench\r\n\r\n"
    )?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .context("response without a complete head")?;
    let status = std::str::from_utf8(&raw[..end])
        .ok()
        .and_then(|h| h.split_whitespace().nth(1))
        .and_then(|c| c.parse().ok())
        .context("response without a status code")?;
    Ok(Response {
        status,
        body: raw[end + 4..].to_vec(),
    })
}

/// Requests written per batch by [`walk`] (more than one pipelines them).
const WALK_BATCH: usize = 1;

/// Sends `GET path` with `Host: host` once for each pair, over `conns`
/// keep-alive connections in parallel, pipelined in batches; stops at
/// `deadline`. Returns (answered 200, failed or other status).
pub fn walk(
    addr: SocketAddr,
    requests: &[(String, String)],
    conns: usize,
    deadline: Instant,
) -> (u64, u64) {
    let chunk = requests.len().div_ceil(conns.max(1)).max(1);
    std::thread::scope(|scope| {
        let handles: Vec<_> = requests
            .chunks(chunk)
            .map(|part| scope.spawn(move || walk_one(addr, part, deadline)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or((0, 0)))
            .fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1))
    })
}

fn walk_one(addr: SocketAddr, requests: &[(String, String)], deadline: Instant) -> (u64, u64) {
    let (mut ok, mut failed) = (0u64, 0u64);
    let mut conn: Option<(TcpStream, Vec<u8>)> = None;
    for batch in requests.chunks(WALK_BATCH) {
        if Instant::now() > deadline {
            failed += batch.len() as u64;
            continue;
        }
        let (stream, buf) = match conn.take() {
            Some(c) => c,
            None => match TcpStream::connect_timeout(&addr, Duration::from_secs(2)) {
                Ok(s) => {
                    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
                    let _ = s.set_nodelay(true);
                    (s, Vec::with_capacity(16 << 10))
                }
                Err(_) => {
                    failed += batch.len() as u64;
                    continue;
                }
            },
        };
        let mut stream = stream;
        let mut buf = buf;
        let mut out = String::new();
        for (host, path) in batch {
            out.push_str(&format!(
                "GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: rauta-bench\r\n\r\n"
            ));
        }
        if stream.write_all(out.as_bytes()).is_err() {
            failed += batch.len() as u64;
            continue;
        }
        let mut answered = 0;
        let mut healthy = true;
        while answered < batch.len() {
            match read_response(&mut stream, &mut buf) {
                Some((status, keep)) => {
                    answered += 1;
                    if status == 200 {
                        ok += 1;
                    } else {
                        failed += 1;
                    }
                    if !keep {
                        healthy = false;
                        break;
                    }
                }
                None => {
                    healthy = false;
                    break;
                }
            }
        }
        failed += (batch.len() - answered) as u64;
        if healthy {
            conn = Some((stream, buf));
        }
    }
    (ok, failed)
}

/// Reads one response with a Content-Length body from `stream`, keeping
/// surplus bytes in `buf`; returns (status, connection stays open).
fn read_response(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Option<(u16, bool)> {
    let mut chunk = [0u8; 16 << 10];
    let end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = stream.read(&mut chunk).ok().filter(|n| *n > 0)?;
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = std::str::from_utf8(&buf[..end]).ok()?;
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    let mut length = 0usize;
    let mut keep = true;
    for line in head.lines().skip(1) {
        if let Some((name, value)) = line.split_once(':') {
            if name.eq_ignore_ascii_case("content-length") {
                length = value.trim().parse().ok()?;
            } else if name.eq_ignore_ascii_case("connection") {
                keep &= !value.trim().eq_ignore_ascii_case("close");
            }
        }
    }
    while buf.len() < end + length {
        let n = stream.read(&mut chunk).ok().filter(|n| *n > 0)?;
        buf.extend_from_slice(&chunk[..n]);
    }
    buf.drain(..end + length);
    Some((status, keep))
}

/// Polls `check` every 50 ms until it succeeds, `child` exits, or
/// `timeout` passes; returns how long it took.
pub fn wait_until(
    what: &str,
    child: &mut Child,
    timeout: Duration,
    mut check: impl FnMut() -> bool,
) -> Result<Duration> {
    let start = Instant::now();
    loop {
        child.check_running()?;
        if check() {
            return Ok(start.elapsed());
        }
        if start.elapsed() > timeout {
            bail!(
                "{what} not ready after {timeout:?}; log:\n{}",
                log_tail(&child.log)
            );
        }
        sleep(Duration::from_millis(50));
    }
}
