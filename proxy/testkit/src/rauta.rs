//! Launching the real `rauta` binary for integration tests.

use std::fs::File;
use std::io;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

pub use nix::sys::signal::Signal;
use tempfile::NamedTempFile;

use crate::client::{Conn, Response};
use crate::metrics::Metrics;
use crate::wait::patience;

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
    netns: Option<String>,
    log: NamedTempFile,
    exit: Option<ExitStatus>,
}

impl std::fmt::Debug for Rauta {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rauta")
            .field("pid", &self.child.id())
            .field("addr", &self.addr)
            .field("admin_addr", &self.admin_addr)
            .field("netns", &self.netns)
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

/// Where the process takes its objects from.
#[derive(Debug, Clone)]
enum Source {
    /// `--manifests DIR`.
    Manifests(PathBuf),
    /// `--kubernetes --kubeconfig FILE`.
    Kubernetes(PathBuf),
}

/// How to start `rauta serve`: the one launcher of the binary, for
/// manifests or `--kubernetes`, on 127.0.0.1 or inside a network
/// namespace. Made by [`Rauta::builder`].
#[derive(Debug, Clone)]
pub struct Builder {
    bin: PathBuf,
    source: Option<Source>,
    args: Vec<String>,
    launch: Launch,
    netns: Option<(String, SocketAddr, SocketAddr)>,
}

impl Builder {
    /// `--manifests DIR`.
    pub fn manifests(mut self, dir: impl AsRef<Path>) -> Builder {
        self.source = Some(Source::Manifests(dir.as_ref().to_path_buf()));
        self
    }

    /// `--kubernetes --kubeconfig FILE`.
    pub fn kubernetes(mut self, kubeconfig: impl AsRef<Path>) -> Builder {
        self.source = Some(Source::Kubernetes(kubeconfig.as_ref().to_path_buf()));
        self
    }

    /// More flags, after the source and listener flags.
    pub fn args<S: AsRef<str>>(mut self, args: impl IntoIterator<Item = S>) -> Builder {
        self.args
            .extend(args.into_iter().map(|a| a.as_ref().to_string()));
        self
    }

    /// An environment variable of the process.
    pub fn env(mut self, key: &str, value: &str) -> Builder {
        self.launch.env.push((key.to_string(), value.to_string()));
        self
    }

    /// Everything of `launch` (environment, open-file limit).
    pub fn launch(mut self, launch: &Launch) -> Builder {
        self.launch.env.extend(launch.env.iter().cloned());
        if launch.nofile.is_some() {
            self.launch.nofile = launch.nofile;
        }
        self
    }

    /// Starts the process with `RLIMIT_NOFILE` (soft, hard) (through
    /// `prlimit`, [`Need::Tool`](crate::Need::Tool) `prlimit`).
    pub fn nofile(mut self, soft: u64, hard: u64) -> Builder {
        self.launch.nofile = Some((soft, hard));
        self
    }

    /// Runs the process inside network namespace `ns` (`ip netns exec`)
    /// listening on `listen` with its admin port on `admin` (addresses of
    /// that namespace; admin requests are made from inside it).
    pub fn in_netns(mut self, ns: &str, listen: SocketAddr, admin: SocketAddr) -> Builder {
        self.netns = Some((ns.to_string(), listen, admin));
        self
    }

    /// Starts it and waits until `GET /readyz` on the admin port answers
    /// 200 (within [`patience`]; 3 attempts if the process exits early,
    /// e.g. when a free port was taken meanwhile). Panics with the log on
    /// failure.
    pub fn start(&self) -> Rauta {
        self.try_start().unwrap_or_else(|e| panic!("{e}"))
    }

    /// Like [`Builder::start`] but returns the failure (with the log)
    /// instead of panicking.
    pub fn try_start(&self) -> Result<Rauta, String> {
        let mut failures = String::new();
        let patience = patience();
        for attempt in 1..=START_ATTEMPTS {
            let mut rauta = self
                .spawn()
                .map_err(|e| format!("cannot run {}: {e}", self.bin.display()))?;
            let deadline = Instant::now() + patience;
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
                        "{failures}rauta not ready within {patience:?} (last /readyz: {last}); log:\n{}",
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

    /// Starts the process and returns at once, without waiting for
    /// readiness or retrying (for tests expecting a failed start: use
    /// [`Rauta::wait_exit`] and [`Rauta::log`]).
    pub fn spawn(&self) -> io::Result<Rauta> {
        let (addr, admin_addr) = match &self.netns {
            Some((_, listen, admin)) => (*listen, *admin),
            None => {
                let (port, admin_port) = two_free_ports();
                (
                    SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
                    SocketAddr::from((Ipv4Addr::LOCALHOST, admin_port)),
                )
            }
        };
        let log = tempfile::Builder::new()
            .prefix("rauta-test-")
            .suffix(".log")
            .tempfile()?;
        let out: File = log.as_file().try_clone()?;
        let err: File = log.as_file().try_clone()?;
        // `ip netns exec` and prlimit(1) set things up and then exec the
        // next program: the pid is rauta's.
        let mut argv: Vec<std::ffi::OsString> = Vec::new();
        if let Some((ns, _, _)) = &self.netns {
            argv.extend(["ip", "netns", "exec", ns.as_str()].map(Into::into));
        }
        if let Some((soft, hard)) = self.launch.nofile {
            argv.push("prlimit".into());
            argv.push(format!("--nofile={soft}:{hard}").into());
            argv.push("--".into());
        }
        argv.push(self.bin.clone().into_os_string());
        argv.push("serve".into());
        match &self.source {
            Some(Source::Manifests(dir)) => {
                argv.push("--manifests".into());
                argv.push(dir.clone().into_os_string());
            }
            Some(Source::Kubernetes(kubeconfig)) => {
                argv.push("--kubernetes".into());
                argv.push("--kubeconfig".into());
                argv.push(kubeconfig.clone().into_os_string());
            }
            None => {}
        }
        argv.extend(
            [
                "--listen",
                &addr.to_string(),
                "--admin",
                &admin_addr.to_string(),
            ]
            .map(Into::into),
        );
        argv.extend(self.args.iter().map(Into::into));
        let mut cmd = Command::new(&argv[0]);
        cmd.args(&argv[1..]);
        cmd.envs(self.launch.env.iter().map(|(k, v)| (k, v)));
        cmd.stdin(Stdio::null())
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
            netns: self.netns.as_ref().map(|(ns, _, _)| ns.clone()),
            log,
            exit: None,
        })
    }
}

impl Rauta {
    /// A [`Builder`] for `bin serve` with no source yet.
    pub fn builder(bin: impl AsRef<Path>) -> Builder {
        Builder {
            bin: bin.as_ref().to_path_buf(),
            source: None,
            args: Vec::new(),
            launch: Launch::default(),
            netns: None,
        }
    }

    /// Runs `bin serve --manifests DIR --listen 127.0.0.1:P --admin
    /// 127.0.0.1:Q EXTRA...` on free ports and waits until `GET /readyz` on
    /// the admin port answers 200 (see [`Builder::start`]).
    pub fn start(bin: impl AsRef<Path>, manifests: impl AsRef<Path>, extra_args: &[&str]) -> Rauta {
        Rauta::builder(bin)
            .manifests(manifests)
            .args(extra_args)
            .start()
    }

    /// Like [`Rauta::start`] but returns the failure (with the log) instead
    /// of panicking.
    pub fn try_start(
        bin: impl AsRef<Path>,
        manifests: impl AsRef<Path>,
        extra_args: &[&str],
    ) -> Result<Rauta, String> {
        Rauta::builder(bin)
            .manifests(manifests)
            .args(extra_args)
            .try_start()
    }

    /// Like [`Rauta::start`], with the process environment of `launch`.
    pub fn start_with(
        bin: impl AsRef<Path>,
        manifests: impl AsRef<Path>,
        extra_args: &[&str],
        launch: &Launch,
    ) -> Rauta {
        Rauta::builder(bin)
            .manifests(manifests)
            .args(extra_args)
            .launch(launch)
            .start()
    }

    /// Like [`Rauta::try_start`], with the process environment of `launch`.
    pub fn try_start_with(
        bin: impl AsRef<Path>,
        manifests: impl AsRef<Path>,
        extra_args: &[&str],
        launch: &Launch,
    ) -> Result<Rauta, String> {
        Rauta::builder(bin)
            .manifests(manifests)
            .args(extra_args)
            .launch(launch)
            .try_start()
    }

    /// Starts the process like [`Rauta::start`] but returns at once
    /// (see [`Builder::spawn`]).
    pub fn spawn(
        bin: impl AsRef<Path>,
        manifests: impl AsRef<Path>,
        extra_args: &[&str],
    ) -> io::Result<Rauta> {
        Rauta::builder(bin)
            .manifests(manifests)
            .args(extra_args)
            .spawn()
    }

    /// Like [`Rauta::spawn`], with the process environment of `launch`.
    pub fn spawn_with(
        bin: impl AsRef<Path>,
        manifests: impl AsRef<Path>,
        extra_args: &[&str],
        launch: &Launch,
    ) -> io::Result<Rauta> {
        Rauta::builder(bin)
            .manifests(manifests)
            .args(extra_args)
            .launch(launch)
            .spawn()
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
    /// (From inside the network namespace when it runs in one.)
    pub fn admin_get(&self, path: &str) -> io::Result<Response> {
        let (admin, path) = (self.admin_addr, path.to_string());
        let get = move || {
            let mut conn = Conn::open(admin)?;
            conn.set_timeout(PROBE_TIMEOUT)?;
            conn.request("GET", "localhost", &path, &[("Connection", "close")], &[])
        };
        match &self.netns {
            Some(ns) => crate::netns::enter(ns, get),
            None => get(),
        }
    }

    /// Scrapes `/metrics` (panics unless it answers 200).
    pub fn scrape(&self) -> Metrics {
        let r = self
            .admin_get("/metrics")
            .unwrap_or_else(|e| panic!("GET /metrics: {e}; log:\n{}", self.log()));
        assert_eq!(r.status, 200, "GET /metrics: {}", r.text());
        Metrics::parse(&r.text())
    }

    /// Which backend answered `GET path` for `host` (its `x-backend`
    /// header), the status when rauta answered itself, or the error.
    pub fn who(&self, host: &str, path: &str) -> String {
        match crate::client::get(self.addr, host, path) {
            Ok(r) => r
                .header("x-backend")
                .map(str::to_string)
                .unwrap_or_else(|| r.status.to_string()),
            Err(e) => format!("error: {e}"),
        }
    }

    /// The N of `generation=N` in the current `/readyz` body, if any.
    pub fn generation(&self) -> Option<u64> {
        let resp = self.admin_get("/readyz").ok()?;
        parse_generation(&resp.text())
    }

    /// Polls `/readyz` until its body has `generation=N` with `N >= min`
    /// and returns N; panics with the log after [`patience`].
    pub fn wait_generation(&self, min: u64) -> u64 {
        let timeout = patience();
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

    /// Sends signal `sig` (e.g. `Signal::SIGHUP`) unless the process was
    /// already reaped (the pid of an unreaped child cannot be reused).
    pub fn signal(&self, sig: Signal) {
        if self.exit.is_some() {
            return;
        }
        let Ok(pid) = i32::try_from(self.child.id()) else {
            return;
        };
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), sig);
    }

    /// Sends SIGTERM (graceful shutdown) unless the process already exited.
    pub fn terminate(&mut self) {
        if self.try_exit().is_none() {
            self.signal(Signal::SIGTERM);
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

    /// Waits up to [`patience`] for the process to exit; panics with the
    /// log if it is still running.
    pub fn wait_exited(&mut self) -> ExitStatus {
        let timeout = patience();
        self.wait_exit(timeout).unwrap_or_else(|| {
            panic!(
                "rauta still running after {timeout:?}; log:\n{}",
                self.log()
            )
        })
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
