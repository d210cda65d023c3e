//! Real gRPC peers: a grpcio server ([`GrpcServer`]) and client ([`call`])
//! from `proxy/testkit/python/grpc_peer.py`, run by the Python of the
//! `.venv-test` venv that `scripts/setup.sh` creates. The server's service
//! `rauta.test.Echo` (Unary, ServerStream, ClientStream, Bidi, Cancelled,
//! Stats) and the client's scenarios and JSON are described in that script.
//!
//! ```no_run
//! use rauta_testkit::{grpc, require};
//! # fn t() {
//! require!(grpc::need());
//! let server = grpc::GrpcServer::start();
//! let out = grpc::call(server.addr(), "", &["unary", "hello"]);
//! assert_eq!(out["responses"][0], "hello");
//! # }
//! ```

use crate::Need;
use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Seek};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// The testkit's directory (proxy/testkit).
fn testkit_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The venv's Python (`<repo>/.venv-test/bin/python`). Not canonicalized:
/// it is a symlink, and only when run by this path does Python use the venv.
pub fn python() -> PathBuf {
    let repo = testkit_dir()
        .ancestors()
        .nth(2)
        .expect("the testkit is at <repo>/proxy/testkit");
    repo.join(".venv-test/bin/python")
}

/// The peer script, `proxy/testkit/python/grpc_peer.py`.
pub fn script() -> PathBuf {
    testkit_dir().join("python/grpc_peer.py")
}

/// What a gRPC test needs: the venv's Python (with grpcio, as
/// `scripts/setup.sh` installs it).
pub fn need() -> Need {
    Need::tool(&python().to_string_lossy())
}

/// A `grpc_peer.py serve` process on an ephemeral 127.0.0.1 port, killed
/// when dropped. Its stdin is a pipe held open by this process, so it exits
/// by itself if the test process dies without dropping it.
pub struct GrpcServer {
    child: Child,
    addr: SocketAddr,
    log: tempfile::NamedTempFile,
}

impl GrpcServer {
    /// Starts the server and waits for its `ready <port>` line.
    pub fn start() -> GrpcServer {
        let log = tempfile::NamedTempFile::new().expect("log file");
        let stderr = log.reopen().expect("reopen log file");
        let mut child = Command::new(python())
            .arg(script())
            .args(["serve", "--port", "0"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", python().display()));
        let mut line = String::new();
        let read = BufReader::new(child.stdout.take().expect("piped stdout")).read_line(&mut line);
        let port = line
            .trim_end()
            .strip_prefix("ready ")
            .and_then(|p| p.parse::<u16>().ok());
        let mut server = GrpcServer {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            log,
        };
        match port {
            Some(port) => server.addr.set_port(port),
            None => panic!(
                "grpc_peer.py serve did not print `ready <port>` (read {read:?}, got {line:?}); its stderr:\n{}",
                server.stderr()
            ),
        }
        server
    }

    /// The address it listens on (127.0.0.1, h2c).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Everything the server printed to stderr so far.
    pub fn stderr(&self) -> String {
        let mut text = String::new();
        let read = self
            .log
            .reopen()
            .and_then(|mut f| f.rewind().and_then(|_| f.read_to_string(&mut text)));
        if let Err(e) = read {
            text.push_str(&format!("<cannot read {}: {e}>", self.log.path().display()));
        }
        text
    }
}

impl Drop for GrpcServer {
    fn drop(&mut self) {
        // Already exited is fine; the wait reaps it either way.
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!(
                "---- grpc_peer.py serve (pid {}) stderr ----\n{}---- end ----",
                self.child.id(),
                self.stderr()
            );
        }
    }
}

/// Runs `grpc_peer.py call <target> <args...>` (a scenario and its
/// arguments, e.g. `["unary", "hello"]`) with `--authority authority`
/// (left out when empty: grpcio then sends the target) and returns its JSON.
/// Panics, with its stderr, if it fails or prints no JSON; a gRPC error is
/// not a failure but the JSON's `code`.
pub fn call(target: SocketAddr, authority: &str, args: &[&str]) -> Value {
    call_with(target, authority, args, &[])
}

/// [`call`] with extra flags for the client: `--timeout SECONDS` (the call's
/// deadline, 30 by default), `--tls` and `--ca FILE` (TLS, verifying the
/// server's certificate for `authority` against that CA).
pub fn call_with(target: SocketAddr, authority: &str, args: &[&str], flags: &[&str]) -> Value {
    let mut cmd = Command::new(python());
    cmd.arg(script())
        .arg("call")
        .arg(target.to_string())
        .args(args);
    if !authority.is_empty() {
        cmd.args(["--authority", authority]);
    }
    let out = cmd
        .args(flags)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("run {}: {e}", python().display()));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        panic!(
            "grpc_peer.py call {args:?} {flags:?}: {}\nstdout:\n{stdout}\nstderr:\n{stderr}",
            out.status
        );
    }
    if !stderr.is_empty() {
        // grpcio logs here (e.g. TLS handshake failures); the test's output shows it.
        eprint!("grpc_peer.py call {args:?} stderr:\n{stderr}");
    }
    serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!("grpc_peer.py call {args:?} printed no JSON ({e}):\n{stdout}\nstderr:\n{stderr}")
    })
}
