//! Launching the real `rauta` binary for integration tests.

use std::fs::File;
use std::io;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use tempfile::NamedTempFile;

use crate::client::{Conn, Response};

/// How long [`Rauta::start`] waits for `/readyz` to answer 200.
pub const READY_TIMEOUT: Duration = Duration::from_secs(20);
/// Start attempts when the process exits early (e.g. a port race).
const START_ATTEMPTS: usize = 3;
/// Timeout of one admin probe.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);
/// Interval between readiness polls.
const POLL: Duration = Duration::from_millis(25);
/// Most log bytes printed when a test panics while a `Rauta` is alive.
const LOG_TAIL: usize = 64 * 1024;

/// A port on 127.0.0.1 that was free a moment ago (bound to port 0, then
/// released).
pub fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("cannot bind 127.0.0.1:0 to find a free port")
}

/// Two distinct free ports.
fn two_free_ports() -> (u16, u16) {
    loop {
        let (a, b) = (free_port(), free_port());
        if a != b {
            return (a, b);
        }
    }
}

/// Extracts N from the first `generation=N` in `body`.
fn parse_generation(body: &str) -> Option<u64> {
    let rest = &body[body.find("generation=")? + "generation=".len()..];
    let end = rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len());
    rest[..end].parse().ok()
}

/// A running `rauta serve` process with its output captured to a log file;
/// killed on drop.
pub struct Rauta {
    child: Child,
    addr: SocketAddr,
    admin_addr: SocketAddr,
    log: NamedTempFile,
    exit: Option<ExitStatus>,
}

impl std::fmt::Debug for Rauta {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rauta")
            .field("pid", &self.child.id())
            .field("addr", &self.addr)
            .field("admin_addr", &self.admin_addr)
            .field("log", &self.log.path())
            .field("exit", &self.exit)
            .finish()
    }
}

/// How the process is started, beyond its flags.
#[derive(Debug, Clone, Default)]
pub struct Launch {
    /// Extra environment variables.
    pub env: Vec<(String, String)>,
    /// `RLIMIT_NOFILE` (soft, hard) to start with (through `prlimit`).
    pub nofile: Option<(u64, u64)>,
}

impl Rauta {
    /// Runs `bin serve --manifests DIR --listen 127.0.0.1:P --admin
    /// 127.0.0.1:Q EXTRA...` on free ports and waits until `GET /readyz` on
    /// the admin port answers 200 (20 s; 3 attempts if the process exits
    /// early). Panics with the log on failure.
    pub fn start(bin: impl AsRef<Path>, manifests: impl AsRef<Path>, extra_args: &[&str]) -> Rauta {
        Rauta::try_start(bin, manifests, extra_args).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Like [`Rauta::start`] but returns the failure (with the log) instead
    /// of panicking.
    pub fn try_start(
        bin: impl AsRef<Path>,
        manifests: impl AsRef<Path>,
        extra_args: &[&str],
    ) -> Result<Rauta, String> {
        Rauta::try_start_with(bin, manifests, extra_args, &Launch::default())
    }

    /// Like [`Rauta::start`], with the process environment of `launch`.
    pub fn start_with(
        bin: impl AsRef<Path>,
        manifests: impl AsRef<Path>,
        extra_args: &[&str],
        launch: &Launch,
    ) -> Rauta {
        Rauta::try_start_with(bin, manifests, extra_args, launch).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Like [`Rauta::try_start`], with the process environment of `launch`.
    pub fn try_start_with(
        bin: impl AsRef<Path>,
        manifests: impl AsRef<Path>,
        extra_args: &[&str],
        launch: &Launch,
    ) -> Result<Rauta, String> {
        let (bin, manifests) = (bin.as_ref(), manifests.as_ref());
        let mut failures = String::new();
        for attempt in 1..=START_ATTEMPTS {
            let mut rauta = Rauta::spawn_with(bin, manifests, extra_args, launch)
                .map_err(|e| format!("cannot run {}: {e}", bin.display()))?;
            let deadline = Instant::now() + READY_TIMEOUT;
            loop {
                if let Some(status) = rauta.try_exit() {
                    failures.push_str(&format!(
                        "attempt {attempt}: rauta exited early with {status}; log:\n{}\n",
                        rauta.log()
                    ));
                    break;
                }
                if rauta.admin_get("/readyz").is_ok_and(|r| r.status == 200) {
                    return Ok(rauta);
                }
                if Instant::now() >= deadline {
                    let last = match rauta.admin_get("/readyz") {
                        Ok(r) => format!("{} {:?}", r.status, r.text()),
                        Err(e) => e.to_string(),
                    };
                    rauta.kill();
                    return Err(format!(
                        "{failures}rauta not ready within {READY_TIMEOUT:?} (last /readyz: {last}); log:\n{}",
                        rauta.log()
                    ));
                }
                thread::sleep(POLL);
            }
        }
        Err(format!(
            "rauta failed to start {START_ATTEMPTS} times:\n{failures}"
        ))
    }

    /// Starts the process like [`Rauta::start`] but returns at once,
    /// without waiting for readiness or retrying (for tests expecting a
    /// failed start: use [`Rauta::wait_exit`] and [`Rauta::log`]).
    pub fn spawn(
        bin: impl AsRef<Path>,
        manifests: impl AsRef<Path>,
        extra_args: &[&str],
    ) -> io::Result<Rauta> {
        Rauta::spawn_with(bin, manifests, extra_args, &Launch::default())
    }

    /// Like [`Rauta::spawn`], with the process environment of `launch`.
    pub fn spawn_with(
        bin: impl AsRef<Path>,
        manifests: impl AsRef<Path>,
        extra_args: &[&str],
        launch: &Launch,
    ) -> io::Result<Rauta> {
        let (port, admin_port) = two_free_ports();
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        let admin_addr = SocketAddr::from((Ipv4Addr::LOCALHOST, admin_port));
        let log = tempfile::Builder::new()
            .prefix("rauta-test-")
            .suffix(".log")
            .tempfile()?;
        let out: File = log.as_file().try_clone()?;
        let err: File = log.as_file().try_clone()?;
        // prlimit(1) sets the limits and then execs rauta: same pid.
        let mut cmd = match launch.nofile {
            Some((soft, hard)) => {
                let mut c = Command::new("prlimit");
                c.arg(format!("--nofile={soft}:{hard}"))
                    .arg("--")
                    .arg(bin.as_ref());
                c
            }
            None => Command::new(bin.as_ref()),
        };
        cmd.envs(launch.env.iter().map(|(k, v)| (k, v)));
        cmd.arg("serve")
            .arg("--manifests")
            .arg(manifests.as_ref())
            .arg("--listen")
            .arg(addr.to_string())
            .arg("--admin")
            .arg(admin_addr.to_string())
            .args(extra_args)
            .stdin(Stdio::null())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err));
        if std::env::var_os("RUST_LOG").is_none() {
            cmd.env("RUST_LOG", "info");
        }
        let child = cmd.spawn()?;
        Ok(Rauta {
            child,
            addr,
            admin_addr,
            log,
            exit: None,
        })
    }

    /// The proxy listener address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The admin listener address.
    pub fn admin_addr(&self) -> SocketAddr {
        self.admin_addr
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The path of the captured stdout+stderr log.
    pub fn log_path(&self) -> PathBuf {
        self.log.path().to_path_buf()
    }

    /// Everything the process printed so far (stdout and stderr).
    pub fn log(&self) -> String {
        std::fs::read(self.log.path())
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_else(|e| format!("<cannot read log {}: {e}>", self.log.path().display()))
    }

    /// `GET path` on the admin port (`Connection: close`, 2 s timeouts).
    pub fn admin_get(&self, path: &str) -> io::Result<Response> {
        let mut conn = Conn::open(self.admin_addr)?;
        conn.set_timeout(PROBE_TIMEOUT)?;
        conn.request("GET", "localhost", path, &[("Connection", "close")], &[])
    }

    /// The N of `generation=N` in the current `/readyz` body, if any.
    pub fn generation(&self) -> Option<u64> {
        let resp = self.admin_get("/readyz").ok()?;
        parse_generation(&resp.text())
    }

    /// Polls `/readyz` until its body has `generation=N` with `N >= min`
    /// and returns N; panics with the log after `timeout`.
    pub fn wait_ready_generation(&self, min: u64, timeout: Duration) -> u64 {
        let deadline = Instant::now() + timeout;
        loop {
            let last = match self.admin_get("/readyz") {
                Ok(resp) => {
                    let text = resp.text();
                    if let Some(g) = parse_generation(&text).filter(|&g| g >= min) {
                        return g;
                    }
                    format!("{} {text:?}", resp.status)
                }
                Err(e) => e.to_string(),
            };
            if Instant::now() >= deadline {
                panic!(
                    "rauta: no generation >= {min} within {timeout:?} (last /readyz: {last}); log:\n{}",
                    self.log()
                );
            }
            thread::sleep(POLL);
        }
    }

    /// Sends signal `sig` (e.g. `libc::SIGHUP`) unless the process was
    /// already reaped.
    #[allow(unsafe_code)]
    pub fn signal(&self, sig: i32) {
        if self.exit.is_some() {
            return;
        }
        let Ok(pid) = libc::pid_t::try_from(self.child.id()) else {
            return;
        };
        // SAFETY: kill(2) takes plain integers and touches no memory of
        // ours; the pid is our unreaped child, so it cannot have been reused.
        unsafe {
            libc::kill(pid, sig);
        }
    }

    /// Sends SIGTERM (graceful shutdown) unless the process already exited.
    pub fn terminate(&mut self) {
        if self.try_exit().is_none() {
            self.signal(libc::SIGTERM);
        }
    }

    /// Kills the process (SIGKILL) and reaps it.
    pub fn kill(&mut self) {
        if self.try_exit().is_none() {
            let _ = self.child.kill();
            if let Ok(status) = self.child.wait() {
                self.exit = Some(status);
            }
        }
    }

    /// The exit status if the process has exited (non-blocking).
    pub fn try_exit(&mut self) -> Option<ExitStatus> {
        if self.exit.is_none() {
            self.exit = self.child.try_wait().ok().flatten();
        }
        self.exit
    }

    /// Waits up to `timeout` for the process to exit; `None` if still running.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.try_exit() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Rauta {
    fn drop(&mut self) {
        self.kill();
        if thread::panicking() {
            let log = self.log();
            let mut start = log.len().saturating_sub(LOG_TAIL);
            while !log.is_char_boundary(start) {
                start += 1;
            }
            eprintln!(
                "---- rauta (pid {}) log {}{} ----\n{}\n---- end of rauta log ----",
                self.child.id(),
                self.log.path().display(),
                if start > 0 { " (tail)" } else { "" },
                &log[start..]
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generations() {
        assert_eq!(parse_generation("ready generation=12\n"), Some(12));
        assert_eq!(parse_generation("ready generation=0"), Some(0));
        assert_eq!(parse_generation("ready"), None);
        assert_eq!(parse_generation("generation=x"), None);
    }

    #[test]
    fn free_ports_are_bindable() {
        let port = free_port();
        assert_ne!(port, 0);
        TcpListener::bind((Ipv4Addr::LOCALHOST, port)).expect("free port bindable");
    }
}
