//! Real gRPC peers: a grpcio server ([`GrpcServer`]) and client ([`call`])
//! from `proxy/testkit/python/grpc_peer.py`, run by the Python of the
//! `.venv-test` venv that `scripts/setup.sh` creates. The server's service
//! `rauta.test.Echo` (Unary, ServerStream, ClientStream, Bidi, Cancelled,
//! Stats) and the client's scenarios and JSON are described in that script.
//! [`GrpcServer::start_tls`] serves it over TLS (the backend of a `GRPCS`
//! Ingress), optionally requiring a client certificate.
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
use std::ffi::OsString;
use std::io::{BufRead, BufReader, Read, Seek, Write};
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

/// A PEM (or any text) in a temporary file, for a Python peer's `--cert`,
/// `--ca` and the like; the file is removed when dropped.
pub fn pem_file(pem: &str) -> tempfile::NamedTempFile {
    let mut file = tempfile::Builder::new()
        .suffix(".pem")
        .tempfile()
        .expect("temp file");
    file.write_all(pem.as_bytes()).expect("write temp file");
    file.flush().expect("flush temp file");
    file
}

/// A long-running Python peer (`script args...` run by [`python()`]) that
/// prints `ready <port> [<port>...]` once listening and exits when its
/// stdin, a pipe this process holds, reaches EOF: so it exits by itself if
/// the test process dies without dropping it. Dropping kills and reaps it;
/// its stderr goes to a temp file, printed when dropped during a panic.
pub(crate) struct PythonPeer {
    what: String,
    child: Child,
    ports: Vec<u16>,
    log: tempfile::NamedTempFile,
    /// Files the peer was given (certificates), kept as long as it runs.
    _files: Vec<tempfile::NamedTempFile>,
}

impl PythonPeer {
    /// Starts `script args...` and waits for its `ready` line.
    pub(crate) fn spawn(
        script: &Path,
        args: &[OsString],
        files: Vec<tempfile::NamedTempFile>,
    ) -> PythonPeer {
        let name = script.file_name().unwrap_or_default().to_string_lossy();
        let what = match args.first() {
            Some(first) if !first.to_string_lossy().starts_with('-') => {
                format!("{name} {}", first.to_string_lossy())
            }
            _ => name.into_owned(),
        };
        let log = tempfile::NamedTempFile::new().expect("log file");
        let stderr = log.reopen().expect("reopen log file");
        let mut child = Command::new(python())
            .arg(script)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", python().display()));
        let mut line = String::new();
        let read = BufReader::new(child.stdout.take().expect("piped stdout")).read_line(&mut line);
        let ports: Option<Vec<u16>> = line
            .trim_end()
            .strip_prefix("ready ")
            .map(|rest| rest.split(' ').map(|p| p.parse().ok()).collect())
            .and_then(|ports: Option<Vec<u16>>| ports.filter(|p| !p.is_empty()));
        let mut peer = PythonPeer {
            what,
            child,
            ports: Vec::new(),
            log,
            _files: files,
        };
        match ports {
            Some(ports) => peer.ports = ports,
            None => panic!(
                "{} did not print `ready <port>` (read {read:?}, got {line:?}); its stderr:\n{}",
                peer.what,
                peer.stderr()
            ),
        }
        peer
    }

    /// 127.0.0.1 and the `i`th port of its `ready` line.
    pub(crate) fn addr(&self, i: usize) -> SocketAddr {
        let port = *self
            .ports
            .get(i)
            .unwrap_or_else(|| panic!("{} printed ports {:?}", self.what, self.ports));
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    /// Everything it printed to stderr so far.
    pub(crate) fn stderr(&self) -> String {
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

impl Drop for PythonPeer {
    fn drop(&mut self) {
        // Already exited is fine; the wait reaps it either way.
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!(
                "---- {} (pid {}) stderr ----\n{}---- end ----",
                self.what,
                self.child.id(),
                self.stderr()
            );
        }
    }
}

/// A `grpc_peer.py serve` process on an ephemeral 127.0.0.1 port, killed
/// when dropped. Its stdin is a pipe held open by this process, so it exits
/// by itself if the test process dies without dropping it.
pub struct GrpcServer {
    peer: PythonPeer,
}

impl GrpcServer {
    /// Starts the server (h2c) and waits for its `ready <port>` line.
    pub fn start() -> GrpcServer {
        GrpcServer {
            peer: PythonPeer::spawn(
                &script(),
                &["serve", "--port", "0"].map(OsString::from),
                Vec::new(),
            ),
        }
    }

    /// Starts the server with TLS (ALPN h2; grpcio closes a connection that
    /// did not negotiate h2): `cert_pem` is the chain it presents, `key_pem`
    /// its key; with `client_ca_pem` it requires a client certificate signed
    /// by that CA.
    pub fn start_tls(cert_pem: &str, key_pem: &str, client_ca_pem: Option<&str>) -> GrpcServer {
        let mut args = vec!["serve".into(), "--port".into(), "0".into()];
        let mut files = Vec::new();
        let mut flags = vec![("--tls-cert", cert_pem), ("--tls-key", key_pem)];
        flags.extend(client_ca_pem.map(|ca| ("--client-ca", ca)));
        for (flag, pem) in flags {
            let file = pem_file(pem);
            args.extend([flag.into(), file.path().as_os_str().to_owned()]);
            files.push(file);
        }
        GrpcServer {
            peer: PythonPeer::spawn(&script(), &args, files),
        }
    }

    /// The address it listens on (127.0.0.1; h2c, or TLS from
    /// [`GrpcServer::start_tls`]).
    pub fn addr(&self) -> SocketAddr {
        self.peer.addr(0)
    }

    /// Everything the server printed to stderr so far.
    pub fn stderr(&self) -> String {
        self.peer.stderr()
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
/// server's certificate for `authority`, or the target's IP when empty,
/// against that CA; [`pem_file`] makes the file), `--client-cert FILE
/// --client-key FILE` (a client certificate to present).
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
