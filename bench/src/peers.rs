//! The backend, the gRPC origin and the three proxies: their configuration
//! files, generated for equal footing, and starting them pinned to a CPU.

use std::fmt::Write as _;
use std::fs;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context, Result};

use crate::procs::{self, Child};
use crate::sys;
use crate::workload::{
    self, Table, GRPC_PREFIX, LARGE_BYTES, LARGE_PATH, POLICY_HOST, POLICY_ORIGIN, SMALL_BODY,
    TLS_HOST,
};

/// Which proxy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// rauta, one shard.
    Rauta,
    /// nginx, one worker.
    Nginx,
    /// HAProxy, one thread.
    Haproxy,
}

impl Kind {
    /// Display name.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Rauta => "rauta",
            Kind::Nginx => "nginx",
            Kind::Haproxy => "HAProxy",
        }
    }

    /// Parses `rauta`, `nginx` or `haproxy`.
    pub fn parse(s: &str) -> Result<Kind> {
        match s.to_ascii_lowercase().as_str() {
            "rauta" => Ok(Kind::Rauta),
            "nginx" => Ok(Kind::Nginx),
            "haproxy" => Ok(Kind::Haproxy),
            other => bail!("unknown proxy {other:?} (rauta, nginx, haproxy)"),
        }
    }
}

/// How a proxy is started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Launch {
    /// As users run it.
    Plain,
    /// Under `valgrind --tool=callgrind` (nginx without a master process).
    Callgrind,
}

/// Where things live and which CPUs they use.
#[derive(Debug, Clone)]
pub struct Env {
    /// Work directory (configs, logs, the large file).
    pub dir: PathBuf,
    /// The rauta binary.
    pub rauta_bin: PathBuf,
    /// Backend and load generator CPU.
    pub client_cpu: usize,
    /// Proxy CPU.
    pub proxy_cpu: usize,
    /// Backend port.
    pub backend_port: u16,
    /// The certificate every proxy serves on its TLS port.
    pub tls: TlsFiles,
    /// The gRPC origin's ports.
    pub grpc: GrpcPorts,
    /// rauta's many-routes table as Gateway API HTTPRoutes, not Ingresses.
    pub gateway_api: bool,
}

/// The gRPC origin's ports: one per proxy, so that it counts each proxy's
/// upstream connections apart (all three run at once and keep theirs
/// open), one for the direct reference run, and its stats port.
#[derive(Debug, Clone, Copy)]
pub struct GrpcPorts {
    /// rauta's upstream.
    pub rauta: u16,
    /// nginx's upstream.
    pub nginx: u16,
    /// HAProxy's upstream.
    pub haproxy: u16,
    /// h2load straight at the origin (the reference run).
    pub direct: u16,
    /// Where the origin reports its connection counts.
    pub stats: u16,
}

impl GrpcPorts {
    /// Free ports for all of them.
    pub fn allocate() -> Result<GrpcPorts> {
        // Held together until all are chosen, so no two are the same.
        let held: Vec<std::net::TcpListener> = (0..5)
            .map(|_| std::net::TcpListener::bind("127.0.0.1:0"))
            .collect::<std::io::Result<_>>()
            .context("bind 127.0.0.1:0")?;
        let p = held
            .iter()
            .map(|l| l.local_addr().map(|a| a.port()))
            .collect::<std::io::Result<Vec<u16>>>()?;
        Ok(GrpcPorts {
            rauta: p[0],
            nginx: p[1],
            haproxy: p[2],
            direct: p[3],
            stats: p[4],
        })
    }

    /// The origin port a proxy sends its gRPC calls to (`None`: the direct
    /// reference run).
    pub fn of(&self, kind: Option<Kind>) -> u16 {
        match kind {
            Some(Kind::Rauta) => self.rauta,
            Some(Kind::Nginx) => self.nginx,
            Some(Kind::Haproxy) => self.haproxy,
            None => self.direct,
        }
    }
}

/// One certificate for all three proxies, made once per run with openssl.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// PEM certificate.
    pub cert: PathBuf,
    /// PEM private key.
    pub key: PathBuf,
    /// Certificate and key in one file (HAProxy's `crt`).
    pub combined: PathBuf,
}

impl TlsFiles {
    /// Generates a self-signed ECDSA P-256 certificate for [`TLS_HOST`] in `dir`.
    pub fn generate(dir: &Path) -> Result<TlsFiles> {
        let files = TlsFiles {
            cert: dir.join("tls.crt"),
            key: dir.join("tls.key"),
            combined: dir.join("tls.pem"),
        };
        let out = std::process::Command::new("openssl")
            .args([
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-nodes",
            ])
            .args(["-days", "30", "-subj", &format!("/CN={TLS_HOST}")])
            .args(["-addext", &format!("subjectAltName=DNS:{TLS_HOST}")])
            .arg("-keyout")
            .arg(&files.key)
            .arg("-out")
            .arg(&files.cert)
            .output()
            .context("run openssl")?;
        if !out.status.success() {
            bail!(
                "openssl req failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let combined = format!(
            "{}{}",
            fs::read_to_string(&files.cert)?,
            fs::read_to_string(&files.key)?
        );
        fs::write(&files.combined, combined)?;
        Ok(files)
    }
}

impl Env {
    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
}

/// Starts the backend: nginx, one worker, `return 200` small body, and a
/// 1 MiB static file at [`LARGE_PATH`], pinned to the client CPU.
pub fn start_backend(env: &Env) -> Result<Child> {
    let www = env.path("www");
    fs::create_dir_all(&www)?;
    let large = www.join("1m.bin");
    fs::write(&large, vec![b'x'; LARGE_BYTES])?;
    let conf = format!(
        "worker_processes 1;\ndaemon off;\nerror_log {dir}/backend-error.log warn;\npid {dir}/backend.pid;\n\
events {{ worker_connections 16384; }}\n\
http {{\n  access_log off;\n  keepalive_requests 100000000;\n  keepalive_timeout 300s;\n  sendfile on;\n  tcp_nopush on;\n\
  client_body_temp_path {dir}/tmp-body;\n  proxy_temp_path {dir}/tmp-proxy;\n\
  server {{\n    listen 127.0.0.1:{port} backlog=4096;\n\
    location = {LARGE_PATH} {{ alias {large}; default_type application/octet-stream; }}\n\
    location / {{ default_type text/plain; return 200 \"{body}\"; }}\n  }}\n}}\n",
        dir = env.dir.display(),
        port = env.backend_port,
        large = large.display(),
        body = SMALL_BODY.replace('\n', "\\n"),
    );
    let path = env.path("backend.conf");
    fs::write(&path, conf)?;
    let mut child = Child::spawn(
        "backend nginx",
        env.client_cpu,
        "nginx",
        &nginx_args(&env.dir, &path),
        &[],
        &env.path("backend.log"),
    )?;
    let addr = SocketAddr::from(([127, 0, 0, 1], env.backend_port));
    procs::wait_until("backend", &mut child, Duration::from_secs(10), || {
        procs::get(addr, "backend", "/", Duration::from_secs(1))
            .is_ok_and(|r| r.status == 200 && r.body == SMALL_BODY.as_bytes())
    })?;
    Ok(child)
}

/// Starts the gRPC origin (this binary with `--serve-grpc-origin`), pinned
/// to the client CPU; returns once its stats port answers.
pub fn start_grpc_origin(env: &Env) -> Result<Child> {
    let g = env.grpc;
    let exe = std::env::current_exe().context("find the rauta-bench binary")?;
    let args = vec![
        "--serve-grpc-origin".into(),
        format!("{},{},{},{}", g.rauta, g.nginx, g.haproxy, g.direct),
        "--grpc-origin-stats".into(),
        g.stats.to_string(),
    ];
    let mut child = Child::spawn(
        "gRPC origin",
        env.client_cpu,
        &exe.display().to_string(),
        &args,
        &[],
        &env.path("grpc-origin.log"),
    )?;
    procs::wait_until("gRPC origin", &mut child, Duration::from_secs(10), || {
        crate::origin::counts(g.stats).is_ok_and(|c| c.len() == 4)
    })?;
    Ok(child)
}

fn nginx_args(prefix: &Path, conf: &Path) -> Vec<String> {
    vec![
        "-p".into(),
        format!("{}/", prefix.display()),
        "-c".into(),
        conf.display().to_string(),
    ]
}

/// A running proxy.
#[derive(Debug)]
pub struct Proxy {
    /// Which one.
    pub kind: Kind,
    /// Its process (tree).
    pub child: Child,
    /// Its client-facing port.
    pub port: u16,
    /// Its HTTPS port (same routes, the certificate of [`Env::tls`]; ALPN
    /// h2 and http/1.1).
    pub tls_port: u16,
    /// Its HTTP/2 cleartext (prior knowledge) port for gRPC: the client
    /// port for rauta (HTTP/1.1 and h2c on one listener), a separate
    /// h2c-only listener for nginx and HAProxy (`Table::Grpc` only).
    pub h2c_port: u16,
    /// From start to the first proxied 200.
    pub startup: Duration,
    /// Largest process RSS once ready, before any load, in KiB.
    pub idle_rss_kb: u64,
    /// Memory (PSS, all processes) once ready, before any load, in KiB.
    pub idle_pss_kb: u64,
    /// rauta's admin port (`/metrics`); none for nginx and HAProxy.
    pub admin_port: Option<u16>,
}

impl Proxy {
    /// The port a scenario talks to: the TLS port for the TLS scenarios,
    /// the h2c port for gRPC.
    pub fn port_for(&self, scenario: crate::load::Scenario) -> u16 {
        if scenario.is_tls() {
            self.tls_port
        } else if scenario == crate::load::Scenario::GrpcUnary {
            self.h2c_port
        } else {
            self.port
        }
    }
}

/// Writes the configuration of `kind` for `table` and starts it pinned to
/// the proxy CPU; returns once a request through it reaches the backend.
pub fn start(kind: Kind, table: Table, launch: Launch, env: &Env) -> Result<Proxy> {
    let port = procs::free_port()?;
    let tls_port = procs::free_port()?;
    let admin = procs::free_port()?;
    let h2c_port = match kind {
        Kind::Rauta => port,
        Kind::Nginx | Kind::Haproxy => procs::free_port()?,
    };
    let tag = match table {
        Table::Basic => "basic",
        Table::Many(_) => "routes",
        Table::Policies => "policies",
        Table::Grpc => "grpc",
    };
    let name = format!("{}-{tag}", kind.name().to_ascii_lowercase());
    let (program, args, envs): (String, Vec<String>, Vec<(&str, &str)>) = match kind {
        Kind::Nginx => {
            let conf = env.path(&format!("{name}.conf"));
            fs::write(
                &conf,
                nginx_conf(env, &name, (port, tls_port, h2c_port), table, launch),
            )?;
            ("nginx".into(), nginx_args(&env.dir, &conf), vec![])
        }
        Kind::Haproxy => {
            let conf = env.path(&format!("{name}.cfg"));
            fs::write(
                &conf,
                haproxy_cfg(env, &name, (port, tls_port, h2c_port), table)?,
            )?;
            let args = vec!["-db".into(), "-f".into(), conf.display().to_string()];
            ("haproxy".into(), args, vec![])
        }
        Kind::Rauta => {
            let dir = env.path(&format!("{name}-manifests"));
            write_manifests(&dir, env, table)?;
            let args = vec![
                "serve".into(),
                "--manifests".into(),
                dir.display().to_string(),
                "--listen".into(),
                format!("127.0.0.1:{port}"),
                "--listen-tls".into(),
                format!("127.0.0.1:{tls_port}"),
                // The Secret serves bench.local; the same certificate for
                // any other name (wrk sends 127.0.0.1 or nothing as SNI).
                "--default-tls-cert".into(),
                env.tls.cert.display().to_string(),
                "--default-tls-key".into(),
                env.tls.key.display().to_string(),
                "--admin".into(),
                format!("127.0.0.1:{admin}"),
                "--shards".into(),
                "1".into(),
                "--cpus".into(),
                env.proxy_cpu.to_string(),
                "--drain-timeout".into(),
                "2s".into(),
            ];
            let bin = env.rauta_bin.display().to_string();
            (bin, args, vec![("RUST_LOG", "warn")])
        }
    };
    let (program, args) = match launch {
        Launch::Plain => (program, args),
        Launch::Callgrind => {
            let mut v = vec![
                "--tool=callgrind".to_string(),
                format!(
                    "--callgrind-out-file={}/callgrind-{name}.%p.out",
                    env.dir.display()
                ),
                "--dump-line=no".into(),
                program,
            ];
            v.extend(args);
            ("valgrind".into(), v)
        }
    };
    let log = env.path(&format!("{name}.log"));
    let mut child = Child::spawn(&name, env.proxy_cpu, &program, &args, &envs, &log)?;
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let (host, path) = workload::probe(table);
    let timeout = match (launch, table) {
        (Launch::Plain, Table::Basic) => Duration::from_secs(15),
        _ => Duration::from_secs(120),
    };
    let startup = procs::wait_until(&name, &mut child, timeout, || {
        procs::get(addr, &host, &path, Duration::from_secs(2))
            .is_ok_and(|r| r.status == 200 && r.body == SMALL_BODY.as_bytes())
    })
    .with_context(|| format!("starting {name}"))?;
    // Let deferred start-up work (worker spawn, table broadcast) settle.
    std::thread::sleep(Duration::from_millis(300));
    let pids = child.pids();
    let idle_rss_kb = sys::rss_kb(&pids);
    let idle_pss_kb = sys::pss_kb(&pids);
    Ok(Proxy {
        kind,
        child,
        port,
        tls_port,
        h2c_port,
        startup,
        idle_rss_kb,
        idle_pss_kb,
        admin_port: (kind == Kind::Rauta).then_some(admin),
    })
}

/// nginx as ingress-nginx configures it where it matters here: upstream
/// keep-alive, HTTP/1.1 upstream, no response buffering, the same
/// X-Forwarded-* / X-Real-IP / X-Request-ID headers rauta sets, HTTP/2 on
/// the TLS port (ingress-nginx's `use-http2` default). gRPC as
/// ingress-nginx renders `backend-protocol: GRPC`: `grpc_pass grpc://`
/// with the same headers through `grpc_set_header`, upstream keep-alive
/// 320 (its `upstream-keepalive-connections` default), behind an h2c-only
/// `listen … http2` (nginx 1.22 cannot take HTTP/1.1 and h2c on one port).
fn nginx_conf(
    env: &Env,
    name: &str,
    (port, tls_port, h2c_port): (u16, u16, u16),
    table: Table,
    launch: Launch,
) -> String {
    let dir = env.dir.display();
    let mut c = String::new();
    let master = if launch == Launch::Callgrind {
        "master_process off;\n"
    } else {
        ""
    };
    let _ = write!(
        c,
        "worker_processes 1;\n{master}daemon off;\nerror_log {dir}/{name}-error.log warn;\npid {dir}/{name}.pid;\n\
events {{ worker_connections 16384; }}\n\
http {{\n  access_log off;\n  keepalive_requests 100000000;\n  keepalive_timeout 300s;\n\
  client_body_temp_path {dir}/tmp-body;\n  proxy_temp_path {dir}/tmp-proxy;\n\
  server_names_hash_max_size 16384;\n  server_names_hash_bucket_size 64;\n\
  upstream be {{ server 127.0.0.1:{backend}; keepalive 64; keepalive_requests 100000000; keepalive_timeout 300s; }}\n\
  proxy_http_version 1.1;\n  proxy_buffering off;\n\
  proxy_set_header Host $host;\n  proxy_set_header Connection \"\";\n\
  proxy_set_header X-Request-ID $request_id;\n  proxy_set_header X-Real-IP $remote_addr;\n\
  proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;\n  proxy_set_header X-Forwarded-Host $host;\n\
  proxy_set_header X-Forwarded-Port $server_port;\n  proxy_set_header X-Forwarded-Proto $scheme;\n\
  ssl_certificate {cert};\n  ssl_certificate_key {key};\n  ssl_protocols TLSv1.2 TLSv1.3;\n\
  ssl_session_cache shared:SSL:10m;\n  ssl_session_tickets on;\n",
        backend = env.backend_port,
        cert = env.tls.cert.display(),
        key = env.tls.key.display(),
    );
    match table {
        Table::Basic | Table::Grpc => {
            let _ = writeln!(
                c,
                "  server {{\n    listen 127.0.0.1:{port} backlog=4096;\n    listen 127.0.0.1:{tls_port} ssl http2 backlog=4096;\n    location / {{ proxy_pass http://be; }}\n  }}"
            );
            if table == Table::Grpc {
                let origin = env.grpc.nginx;
                let lines = [
                    format!("  upstream grpc_origin {{ server 127.0.0.1:{origin}; keepalive 320; keepalive_requests 100000000; keepalive_timeout 300s; }}"),
                    "  server {".into(),
                    format!("    listen 127.0.0.1:{h2c_port} http2 backlog=4096;"),
                    "    http2_max_concurrent_streams 128;".into(),
                    "    location / {".into(),
                    "      grpc_set_header X-Request-ID $request_id;".into(),
                    "      grpc_set_header X-Real-IP $remote_addr;".into(),
                    "      grpc_set_header X-Forwarded-For $proxy_add_x_forwarded_for;".into(),
                    "      grpc_set_header X-Forwarded-Host $host;".into(),
                    "      grpc_set_header X-Forwarded-Port $server_port;".into(),
                    "      grpc_set_header X-Forwarded-Proto $scheme;".into(),
                    "      grpc_pass grpc://grpc_origin;".into(),
                    "    }".into(),
                    "  }".into(),
                ];
                let _ = writeln!(c, "{}", lines.join("\n"));
            }
        }
        Table::Policies => {
            // As ingress-nginx renders the same annotations (regex mode,
            // rewrite, allow-list, limit_req, CORS with `always`).
            let _ = writeln!(
                c,
                "  limit_req_zone $binary_remote_addr zone=bench:10m rate=1000000r/s;\n  limit_req_status 503;\n\
  server {{\n    listen 127.0.0.1:{port} backlog=4096;\n    listen 127.0.0.1:{tls_port} ssl http2 backlog=4096;\n    server_name {POLICY_HOST};\n\
    location ~* \"^/app(/|$)(.*)\" {{\n      allow 127.0.0.0/8;\n      deny all;\n      limit_req zone=bench burst=5000000 nodelay;\n\
      set $cors '';\n      if ($http_origin ~* \"^https://app\\.bench\\.local$\") {{ set $cors 'true'; }}\n\
      if ($request_method = 'OPTIONS') {{ set $cors \"${{cors}}options\"; }}\n\
      if ($cors = 'trueoptions') {{ add_header Access-Control-Allow-Origin $http_origin; add_header Access-Control-Allow-Methods 'GET, PUT, POST, DELETE, PATCH, OPTIONS'; add_header Access-Control-Max-Age 1728000; return 204; }}\n\
      if ($cors = 'true') {{ add_header Access-Control-Allow-Origin $http_origin always; add_header Access-Control-Allow-Credentials true always; add_header Access-Control-Allow-Methods 'GET, PUT, POST, DELETE, PATCH, OPTIONS' always; add_header Access-Control-Allow-Headers 'DNT,Keep-Alive,User-Agent,X-Requested-With,If-Modified-Since,Cache-Control,Content-Type,Range,Authorization' always; add_header Access-Control-Max-Age 1728000 always; }}\n\
      rewrite \"(?i)/app(/|$)(.*)\" /$2 break;\n      proxy_pass http://be;\n    }}\n  }}"
            );
        }
        Table::Many(r) => {
            let _ = writeln!(
                c,
                "  server {{ listen 127.0.0.1:{port} default_server backlog=4096; listen 127.0.0.1:{tls_port} ssl http2 default_server backlog=4096; return 404; }}"
            );
            for h in 0..r.hosts {
                let _ = writeln!(
                    c,
                    "  server {{\n    listen 127.0.0.1:{port};\n    listen 127.0.0.1:{tls_port} ssl http2;\n    server_name h{h}.bench.local;"
                );
                for p in 0..r.paths {
                    // ingress-nginx writes a Prefix path as `location /p/`
                    // plus `location = /p`.
                    let _ = writeln!(
                        c,
                        "    location /p{p}/ {{ proxy_pass http://be; }}\n    location = /p{p} {{ proxy_pass http://be; }}"
                    );
                }
                c.push_str("  }\n");
            }
        }
    }
    c.push_str("}\n");
    c
}

/// The forwarding headers ingress-nginx sets, as HAProxy frontend lines
/// (the same for every HAProxy configuration here).
fn haproxy_forward_headers() -> String {
    [
        "option forwardfor",
        "http-request set-header X-Real-IP %[src]",
        "http-request set-header X-Forwarded-Proto %[ssl_fc,iif(https,http)]",
        "http-request set-header X-Forwarded-Host %[req.hdr(host)]",
        "http-request set-header X-Forwarded-Port %[dst_port]",
        "http-request set-header X-Request-ID %[uuid] unless { req.hdr(x-request-id) -m found }",
    ]
    .map(|l| format!("  {l}\n"))
    .concat()
}

/// HAProxy with one thread, `http-reuse always`, the same forwarded
/// headers, ALPN h2 and http/1.1 on the TLS port; the many-routes table is
/// a `map_beg` over `base` (host + path); gRPC through a second frontend,
/// `bind … proto h2` (h2c only), to `server … proto h2`.
fn haproxy_cfg(
    env: &Env,
    name: &str,
    (port, tls_port, h2c_port): (u16, u16, u16),
    table: Table,
) -> Result<String> {
    let headers = haproxy_forward_headers();
    let mut c = format!(
        "global\n  nbthread 1\n  maxconn 4000\n\
defaults\n  mode http\n  option http-keep-alive\n  timeout connect 5s\n  timeout client 300s\n  timeout server 300s\n  timeout http-keep-alive 300s\n  http-reuse always\n\
frontend fe\n  bind 127.0.0.1:{port}\n  bind 127.0.0.1:{tls_port} ssl crt {pem} alpn h2,http/1.1\n{headers}",
        pem = env.tls.combined.display()
    );
    match table {
        Table::Basic => c.push_str("  default_backend be\n"),
        Table::Grpc => {
            let _ = write!(
                c,
                "  default_backend be\nfrontend fe_grpc\n  bind 127.0.0.1:{h2c_port} proto h2\n{headers}  default_backend grpc\n\
backend grpc\n  server s1 127.0.0.1:{} proto h2\n",
                env.grpc.haproxy
            );
        }
        Table::Policies => c.push_str(
            "  stick-table type ip size 100k expire 10s store http_req_rate(1s)\n\
  http-request deny deny_status 403 unless { src 127.0.0.0/8 }\n\
  http-request track-sc0 src\n\
  http-request deny deny_status 503 if { sc_http_req_rate(0) gt 1000000 }\n\
  http-request set-var(txn.origin) req.hdr(origin)\n\
  acl cors var(txn.origin) -m str -i https://app.bench.local\n\
  http-request return status 204 hdr Access-Control-Allow-Origin %[var(txn.origin)] hdr Access-Control-Max-Age 1728000 if cors METH_OPTIONS\n\
  http-request set-path %[path,regsub(^/app/?,/,i)]\n\
  http-response set-header Access-Control-Allow-Origin %[var(txn.origin)] if cors\n\
  http-response set-header Access-Control-Allow-Credentials true if cors\n\
  http-response set-header Access-Control-Allow-Methods \"GET, PUT, POST, DELETE, PATCH, OPTIONS\" if cors\n\
  http-response set-header Access-Control-Allow-Headers \"DNT,Keep-Alive,User-Agent,X-Requested-With,If-Modified-Since,Cache-Control,Content-Type,Range,Authorization\" if cors\n\
  http-response set-header Access-Control-Max-Age 1728000 if cors\n\
  default_backend be\n",
        ),
        Table::Many(r) => {
            let map = env.path(&format!("{name}.map"));
            let mut m = String::with_capacity(r.total() * 32);
            for h in 0..r.hosts {
                for p in 0..r.paths {
                    // `/p` as an element-wise prefix: `/p` exactly, or `/p/…`.
                    let _ = writeln!(m, "h{h}.bench.local/p{p}/ be");
                }
            }
            fs::write(&map, m).with_context(|| format!("write {}", map.display()))?;
            let _ = writeln!(c, "  use_backend %[base,map_beg({},none)]", map.display());
            c.push_str(
                "  default_backend none\nbackend none\n  http-request deny deny_status 404\n",
            );
        }
    }
    let _ = writeln!(c, "backend be\n  server s1 127.0.0.1:{}", env.backend_port);
    Ok(c)
}

/// The manifests `kubectl apply -f` would send: an IngressClass, a Service
/// with its EndpointSlice at the backend, and Ingresses (for the gRPC
/// table also a Service at rauta's port of the gRPC origin, and an Ingress
/// annotated `backend-protocol: GRPC` for [`GRPC_PREFIX`]).
fn write_manifests(dir: &Path, env: &Env, table: Table) -> Result<()> {
    fs::create_dir_all(dir)?;
    let backend_port = env.backend_port;
    let base = format!(
        "apiVersion: networking.k8s.io/v1\nkind: IngressClass\nmetadata:\n  name: rauta\n  annotations:\n    ingressclass.kubernetes.io/is-default-class: \"true\"\nspec:\n  controller: rauta.io/ingress-controller\n\
---\napiVersion: v1\nkind: Service\nmetadata:\n  name: backend\n  namespace: bench\nspec:\n  ports:\n    - name: http\n      port: 80\n      targetPort: {backend_port}\n\
---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n  name: backend-1\n  namespace: bench\n  labels:\n    kubernetes.io/service-name: backend\naddressType: IPv4\nports:\n  - name: http\n    port: {backend_port}\nendpoints:\n  - addresses: [\"127.0.0.1\"]\n    conditions: {{ready: true}}\n"
    );
    fs::write(dir.join("base.yaml"), base)?;
    let b64 = |p: &Path| -> Result<String> { Ok(base64(&fs::read(p)?)) };
    let secret = format!(
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: bench-tls\n  namespace: bench\ntype: kubernetes.io/tls\ndata:\n  tls.crt: {}\n  tls.key: {}\n",
        b64(&env.tls.cert)?,
        b64(&env.tls.key)?
    );
    fs::write(dir.join("tls.yaml"), secret)?;
    let mut y = String::new();
    let all = "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata:\n  name: all\n  namespace: bench\nspec:\n  ingressClassName: rauta\n  tls:\n    - hosts: [bench.local]\n      secretName: bench-tls\n  rules:\n    - http:\n        paths:\n          - path: /\n            pathType: Prefix\n            backend:\n              service: {name: backend, port: {number: 80}}\n";
    match table {
        Table::Basic => y.push_str(all),
        Table::Grpc => {
            let origin = env.grpc.rauta;
            let service = format!(
                "apiVersion: v1\nkind: Service\nmetadata:\n  name: grpc-origin\n  namespace: bench\nspec:\n  ports:\n    - name: grpc\n      port: 50051\n      targetPort: {origin}\n\
---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n  name: grpc-origin-1\n  namespace: bench\n  labels:\n    kubernetes.io/service-name: grpc-origin\naddressType: IPv4\nports:\n  - name: grpc\n    port: {origin}\nendpoints:\n  - addresses: [\"127.0.0.1\"]\n    conditions: {{ready: true}}\n"
            );
            fs::write(dir.join("grpc-origin.yaml"), service)?;
            y.push_str(all);
            let _ = write!(
                y,
                "---\napiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata:\n  name: grpc\n  namespace: bench\n  annotations:\n    nginx.ingress.kubernetes.io/backend-protocol: GRPC\nspec:\n  ingressClassName: rauta\n  rules:\n    - http:\n        paths:\n          - path: {GRPC_PREFIX}\n            pathType: Prefix\n            backend:\n              service: {{name: grpc-origin, port: {{number: 50051}}}}\n"
            );
        }
        Table::Policies => {
            let n = "nginx.ingress.kubernetes.io";
            let lines = [
                "apiVersion: networking.k8s.io/v1".to_string(),
                "kind: Ingress".into(),
                "metadata:".into(),
                "  name: policies".into(),
                "  namespace: bench".into(),
                "  annotations:".into(),
                format!("    {n}/rewrite-target: \"/$2\""),
                format!("    {n}/enable-cors: \"true\""),
                format!("    {n}/cors-allow-origin: \"{POLICY_ORIGIN}\""),
                format!("    {n}/whitelist-source-range: \"127.0.0.0/8\""),
                format!("    {n}/limit-rps: \"1000000\""),
                "spec:".into(),
                "  ingressClassName: rauta".into(),
                "  rules:".into(),
                format!("    - host: {POLICY_HOST}"),
                "      http:".into(),
                "        paths:".into(),
                "          - path: /app(/|$)(.*)".into(),
                "            pathType: ImplementationSpecific".into(),
                "            backend:".into(),
                "              service: {name: backend, port: {number: 80}}".into(),
            ];
            y.push_str(&lines.join("\n"));
            y.push('\n');
        }
        Table::Many(r) if env.gateway_api => {
            // One HTTPRoute per host on an HTTP-only Gateway (its rules carry
            // the listener condition, as most users' would); at most 64
            // matches per rule, as the CRD allows.
            y.push_str(
                "---\napiVersion: gateway.networking.k8s.io/v1\nkind: GatewayClass\nmetadata: {name: rauta}\nspec: {controllerName: rauta.io/gateway-controller}\n\
---\napiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {name: bench, namespace: bench}\nspec:\n  gatewayClassName: rauta\n  listeners: [{name: http, port: 80, protocol: HTTP}]\n",
            );
            for h in 0..r.hosts {
                let _ = write!(
                    y,
                    "---\napiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {{name: h{h}, namespace: bench}}\nspec:\n  parentRefs: [{{name: bench}}]\n  hostnames: [h{h}.bench.local]\n  rules:\n"
                );
                let paths: Vec<usize> = (0..r.paths).collect();
                for chunk in paths.chunks(64) {
                    y.push_str("  - backendRefs: [{name: backend, port: 80}]\n    matches:\n");
                    for p in chunk {
                        let _ = writeln!(y, "    - {{path: {{type: PathPrefix, value: /p{p}}}}}");
                    }
                }
            }
        }
        Table::Many(r) => {
            for h in 0..r.hosts {
                let _ = write!(
                    y,
                    "---\napiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata:\n  name: h{h}\n  namespace: bench\nspec:\n  ingressClassName: rauta\n  rules:\n    - host: h{h}.bench.local\n      http:\n        paths:\n"
                );
                for p in 0..r.paths {
                    let _ = writeln!(
                        y,
                        "          - {{path: /p{p}, pathType: Prefix, backend: {{service: {{name: backend, port: {{number: 80}}}}}}}}"
                    );
                }
            }
        }
    }
    fs::write(dir.join("ingresses.yaml"), y)?;
    Ok(())
}

/// Standard base64 with padding.
fn base64(data: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(data)
}

/// One backend "pod" of the resilience scenarios: a single-process nginx
/// (no master, so a SIGKILL leaves nothing to respawn a worker and its
/// ports refuse at once, like a dead container). It answers on `port`
/// and, for HAProxy's active checks, on `check_port`, so that the SYNs of
/// checks and of client traffic can be told apart.
#[derive(Debug)]
pub struct Pod {
    /// Port the proxies send traffic to.
    pub port: u16,
    /// Port of HAProxy's active health checks (same process).
    pub check_port: u16,
    /// The process.
    pub child: Child,
}

/// Starts `n` pods pinned to the client CPU; returns once each answers.
pub fn start_pods(env: &Env, tag: &str, n: usize) -> Result<Vec<Pod>> {
    let mut pods = Vec::with_capacity(n);
    for i in 0..n {
        let (port, check_port) = (procs::free_port()?, procs::free_port()?);
        let name = format!("pod-{tag}-{i}");
        let conf = format!(
            "worker_processes 1;\nmaster_process off;\ndaemon off;\nerror_log {dir}/{name}-error.log warn;\npid {dir}/{name}.pid;\n\
events {{ worker_connections 16384; }}\n\
http {{\n  access_log off;\n  keepalive_requests 100000000;\n  keepalive_timeout 300s;\n\
  client_body_temp_path {dir}/tmp-body;\n  proxy_temp_path {dir}/tmp-proxy;\n\
  server {{\n    listen 127.0.0.1:{port} backlog=4096;\n    listen 127.0.0.1:{check_port};\n\
    location / {{ default_type text/plain; return 200 \"{body}\"; }}\n  }}\n}}\n",
            dir = env.dir.display(),
            body = SMALL_BODY.replace('\n', "\\n"),
        );
        let path = env.path(&format!("{name}.conf"));
        fs::write(&path, conf)?;
        let mut child = Child::spawn(
            &name,
            env.client_cpu,
            "nginx",
            &nginx_args(&env.dir, &path),
            &[],
            &env.path(&format!("{name}.log")),
        )?;
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        procs::wait_until(&name, &mut child, Duration::from_secs(10), || {
            procs::get(addr, "pod", "/", Duration::from_secs(1))
                .is_ok_and(|r| r.status == 200 && r.body == SMALL_BODY.as_bytes())
        })?;
        pods.push(Pod {
            port,
            check_port,
            child,
        });
    }
    Ok(pods)
}

/// Starts `kind` in front of `pods` as the resilience scenarios configure
/// it (each proxy's own retry and passive health settings at their
/// ingress defaults, two workers / threads / shards on `cpus`); returns
/// once a request through it is answered.
pub fn start_pool(kind: Kind, pods: &[Pod], env: &Env, cpus: &str, tag: &str) -> Result<Proxy> {
    let port = procs::free_port()?;
    let admin = procs::free_port()?;
    let name = format!("{}-{tag}", kind.name().to_ascii_lowercase());
    let (program, args, envs): (String, Vec<String>, Vec<(&str, &str)>) = match kind {
        Kind::Nginx => {
            let conf = env.path(&format!("{name}.conf"));
            fs::write(&conf, nginx_pool_conf(env, &name, port, pods))?;
            ("nginx".into(), nginx_args(&env.dir, &conf), vec![])
        }
        Kind::Haproxy => {
            let conf = env.path(&format!("{name}.cfg"));
            fs::write(&conf, haproxy_pool_cfg(port, pods))?;
            let args = vec!["-db".into(), "-f".into(), conf.display().to_string()];
            ("haproxy".into(), args, vec![])
        }
        Kind::Rauta => {
            let dir = env.path(&format!("{name}-manifests"));
            write_pool_manifests(&dir, pods)?;
            // Everything else at rauta's defaults: retries of idempotent
            // bodiless requests, the retry budget, outlier ejection.
            let args = vec![
                "serve".into(),
                "--manifests".into(),
                dir.display().to_string(),
                "--listen".into(),
                format!("127.0.0.1:{port}"),
                "--admin".into(),
                format!("127.0.0.1:{admin}"),
                "--shards".into(),
                "2".into(),
                "--cpus".into(),
                cpus.into(),
                "--drain-timeout".into(),
                "2s".into(),
            ];
            let bin = env.rauta_bin.display().to_string();
            (bin, args, vec![("RUST_LOG", "warn")])
        }
    };
    let log = env.path(&format!("{name}.log"));
    let mut child = Child::spawn_on(&name, cpus, &program, &args, &envs, &log)?;
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let startup = procs::wait_until(&name, &mut child, Duration::from_secs(15), || {
        procs::get(addr, "pods.bench.local", "/", Duration::from_secs(2))
            .is_ok_and(|r| r.status == 200 && r.body == SMALL_BODY.as_bytes())
    })
    .with_context(|| format!("starting {name}"))?;
    std::thread::sleep(Duration::from_millis(300));
    let pids = child.pids();
    Ok(Proxy {
        kind,
        idle_rss_kb: sys::rss_kb(&pids),
        idle_pss_kb: sys::pss_kb(&pids),
        child,
        port,
        tls_port: port,
        h2c_port: port,
        startup,
        admin_port: (kind == Kind::Rauta).then_some(admin),
    })
}

/// nginx with ingress-nginx's defaults where they matter for a failing
/// pod: `proxy_next_upstream error timeout` (ingress-nginx's
/// `proxy-next-upstream` default; 502/503/504 answers are not retried),
/// `proxy_next_upstream_tries 3`, `proxy_connect_timeout 5s`,
/// `proxy_read_timeout`/`proxy_send_timeout 60s`, upstream keep-alive 320.
/// Passive health is nginx's own default, `max_fails=1 fail_timeout=10s`,
/// written out; without a `zone` each worker keeps its own count.
/// (ingress-nginx itself balances in Lua and has no max_fails at all.)
fn nginx_pool_conf(env: &Env, name: &str, port: u16, pods: &[Pod]) -> String {
    let dir = env.dir.display();
    let servers: String = pods
        .iter()
        .map(|p| {
            format!(
                "    server 127.0.0.1:{} max_fails=1 fail_timeout=10s;\n",
                p.port
            )
        })
        .collect();
    format!(
        "worker_processes 2;\ndaemon off;\nerror_log {dir}/{name}-error.log warn;\npid {dir}/{name}.pid;\n\
events {{ worker_connections 16384; }}\n\
http {{\n  access_log off;\n  keepalive_requests 100000000;\n  keepalive_timeout 300s;\n\
  client_body_temp_path {dir}/tmp-body;\n  proxy_temp_path {dir}/tmp-proxy;\n\
  upstream pods {{\n{servers}    keepalive 320;\n    keepalive_requests 10000;\n    keepalive_timeout 60s;\n  }}\n\
  proxy_http_version 1.1;\n  proxy_buffering off;\n\
  proxy_connect_timeout 5s;\n  proxy_send_timeout 60s;\n  proxy_read_timeout 60s;\n\
  proxy_next_upstream error timeout;\n  proxy_next_upstream_tries 3;\n  proxy_next_upstream_timeout 0;\n\
  proxy_set_header Host $host;\n  proxy_set_header Connection \"\";\n\
  proxy_set_header X-Request-ID $request_id;\n  proxy_set_header X-Real-IP $remote_addr;\n\
  proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;\n  proxy_set_header X-Forwarded-Host $host;\n\
  proxy_set_header X-Forwarded-Port $server_port;\n  proxy_set_header X-Forwarded-Proto $scheme;\n\
  server {{\n    listen 127.0.0.1:{port} backlog=4096;\n    location / {{ proxy_pass http://pods; }}\n  }}\n}}\n"
    )
}

/// HAProxy with its usual resilience settings: `retries 3`, `retry-on
/// all-retryable-errors`, `option redispatch 1` (every retry to another
/// server), passive health `observe layer7 error-limit 5 on-error
/// mark-down`, and active HTTP checks every 2 s (`option httpchk`, `inter
/// 2s`), which rauta does not have. Checks go to the pod's check port.
/// Timeouts as nginx's above: connect 5 s, server 60 s.
fn haproxy_pool_cfg(port: u16, pods: &[Pod]) -> String {
    let headers = haproxy_forward_headers();
    let servers: String = pods
        .iter()
        .enumerate()
        .map(|(i, p)| {
            format!(
                "  server pod{i} 127.0.0.1:{} check port {}\n",
                p.port, p.check_port
            )
        })
        .collect();
    format!(
        "global\n  nbthread 2\n  maxconn 4000\n\
defaults\n  mode http\n  option http-keep-alive\n  timeout connect 5s\n  timeout client 60s\n  timeout server 60s\n  timeout http-keep-alive 60s\n  http-reuse always\n\
  retries 3\n  retry-on all-retryable-errors\n  option redispatch 1\n\
  default-server inter 2s observe layer7 error-limit 5 on-error mark-down\n\
frontend fe\n  bind 127.0.0.1:{port}\n{headers}  default_backend pods\n\
backend pods\n  balance roundrobin\n  option httpchk GET /\n{servers}"
    )
}

/// An IngressClass, a Service `pods` with one EndpointSlice per pod (all
/// on 127.0.0.1, each its own port), and an Ingress for `/`.
fn write_pool_manifests(dir: &Path, pods: &[Pod]) -> Result<()> {
    fs::create_dir_all(dir)?;
    let mut y = String::from(
        "apiVersion: networking.k8s.io/v1\nkind: IngressClass\nmetadata:\n  name: rauta\n  annotations:\n    ingressclass.kubernetes.io/is-default-class: \"true\"\nspec:\n  controller: rauta.io/ingress-controller\n\
---\napiVersion: v1\nkind: Service\nmetadata:\n  name: pods\n  namespace: bench\nspec:\n  ports:\n    - name: http\n      port: 80\n      targetPort: http\n",
    );
    for (i, p) in pods.iter().enumerate() {
        let _ = write!(
            y,
            "---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n  name: pods-{i}\n  namespace: bench\n  labels:\n    kubernetes.io/service-name: pods\naddressType: IPv4\nports:\n  - name: http\n    port: {}\nendpoints:\n  - addresses: [\"127.0.0.1\"]\n    conditions: {{ready: true}}\n",
            p.port
        );
    }
    y.push_str("---\napiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata:\n  name: pods\n  namespace: bench\nspec:\n  ingressClassName: rauta\n  rules:\n    - http:\n        paths:\n          - path: /\n            pathType: Prefix\n            backend:\n              service: {name: pods, port: {number: 80}}\n");
    fs::write(dir.join("pods.yaml"), y)?;
    Ok(())
}

/// nginx's stream module as Debian's `libnginx-mod-stream` installs it
/// (nginx-light builds it as a dynamic module).
pub const NGINX_STREAM_MODULE: &str = "/usr/lib/nginx/modules/ngx_stream_module.so";
/// The ConfigMap rauta reads its TCP services from (ingress-nginx's
/// tcp-services format), as `namespace/name`.
pub const TCP_SERVICES: &str = "bench/tcp-services";

/// A TCP proxy of the L4 scenarios, started but not yet known to be ready.
#[derive(Debug)]
pub struct TcpRelay {
    /// Its process (tree).
    pub child: Child,
    /// The port it takes TCP connections on.
    pub port: u16,
    /// Name of its configuration and log files in the work directory.
    pub name: String,
    /// rauta's admin port (`/metrics`); none for nginx and HAProxy.
    pub admin: Option<u16>,
}

/// How an L4 proxy is set up beyond its kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpOptions {
    /// rauta: splice in the kernel (no `--l4-splice`: its default) or
    /// relay in user space (`--l4-splice off`).
    pub rauta_splice: bool,
    /// HAProxy: `option splice-auto` (off by default, as HAProxy ships).
    pub haproxy_splice: bool,
}

/// Writes the TCP-proxy configuration of `kind` in front of the TCP
/// origin at 127.0.0.1:`origin` and starts it pinned to the proxy CPU with
/// one worker / thread / shard, as the HTTP scenarios run them. Returns at
/// once; the caller checks readiness through the relay.
pub fn start_tcp(kind: Kind, origin: u16, opts: TcpOptions, env: &Env) -> Result<TcpRelay> {
    let port = procs::free_port()?;
    let admin = procs::free_port()?;
    let name = match (kind, opts.rauta_splice) {
        (Kind::Rauta, false) => "rauta-tcp-userspace".to_string(),
        _ => format!("{}-tcp", kind.name().to_ascii_lowercase()),
    };
    let (program, args, envs): (String, Vec<String>, Vec<(&str, &str)>) = match kind {
        Kind::Nginx => {
            if !Path::new(NGINX_STREAM_MODULE).is_file() {
                bail!("{NGINX_STREAM_MODULE} is missing (Debian libnginx-mod-stream; scripts/bench.sh installs it)");
            }
            let conf = env.path(&format!("{name}.conf"));
            fs::write(&conf, nginx_stream_conf(env, &name, port, origin))?;
            ("nginx".into(), nginx_args(&env.dir, &conf), vec![])
        }
        Kind::Haproxy => {
            let conf = env.path(&format!("{name}.cfg"));
            fs::write(&conf, haproxy_tcp_cfg(port, origin, opts.haproxy_splice))?;
            let args = vec!["-db".into(), "-f".into(), conf.display().to_string()];
            ("haproxy".into(), args, vec![])
        }
        Kind::Rauta => {
            let dir = env.path(&format!("{name}-manifests"));
            write_tcp_manifests(&dir, port, origin)?;
            // The HTTP listener is required and idle here; the TCP service
            // listens on the ConfigMap key's port on the same address.
            let http = procs::free_port()?;
            let mut args = vec![
                "serve".into(),
                "--manifests".into(),
                dir.display().to_string(),
                "--listen".into(),
                format!("127.0.0.1:{http}"),
                "--tcp-services-configmap".into(),
                TCP_SERVICES.into(),
                "--admin".into(),
                format!("127.0.0.1:{admin}"),
                "--shards".into(),
                "1".into(),
                "--cpus".into(),
                env.proxy_cpu.to_string(),
                "--drain-timeout".into(),
                "2s".into(),
            ];
            // Both runs say which relay they want: rauta's default is the
            // user-space relay.
            let splice = if opts.rauta_splice { "auto" } else { "off" };
            args.extend(["--l4-splice".into(), splice.into()]);
            let bin = env.rauta_bin.display().to_string();
            (bin, args, vec![("RUST_LOG", "warn")])
        }
    };
    let log = env.path(&format!("{name}.log"));
    let child = Child::spawn(&name, env.proxy_cpu, &program, &args, &envs, &log)?;
    Ok(TcpRelay {
        child,
        port,
        name,
        admin: (kind == Kind::Rauta).then_some(admin),
    })
}

/// nginx `stream` with one worker: a `server` that `proxy_pass`es to the
/// origin, everything else at nginx's defaults (16 KiB `proxy_buffer_size`,
/// no splicing: nginx's stream proxy always relays in user space).
fn nginx_stream_conf(env: &Env, name: &str, port: u16, origin: u16) -> String {
    let dir = env.dir.display();
    format!(
        "load_module {NGINX_STREAM_MODULE};\nworker_processes 1;\ndaemon off;\nerror_log {dir}/{name}-error.log warn;\npid {dir}/{name}.pid;\n\
events {{ worker_connections 16384; }}\n\
stream {{\n  server {{\n    listen 127.0.0.1:{port} backlog=4096;\n    proxy_connect_timeout 5s;\n    proxy_timeout 300s;\n    proxy_pass 127.0.0.1:{origin};\n  }}\n}}\n"
    )
}

/// HAProxy `mode tcp` with one thread, a frontend on `port` and one server
/// at the origin; `option splice-auto` only when asked for.
fn haproxy_tcp_cfg(port: u16, origin: u16, splice: bool) -> String {
    let splice = if splice { "  option splice-auto\n" } else { "" };
    format!(
        "global\n  nbthread 1\n  maxconn 4000\n\
defaults\n  mode tcp\n  timeout connect 5s\n  timeout client 300s\n  timeout server 300s\n{splice}\
frontend fe\n  bind 127.0.0.1:{port}\n  default_backend origin\n\
backend origin\n  server o1 127.0.0.1:{origin}\n"
    )
}

/// An IngressClass, the [`TCP_SERVICES`] ConfigMap mapping `listen` to
/// the Service `bench/tcp-origin:9000`, and that Service with its
/// EndpointSlice at 127.0.0.1:`origin`.
fn write_tcp_manifests(dir: &Path, listen: u16, origin: u16) -> Result<()> {
    fs::create_dir_all(dir)?;
    let (ns, cm) = TCP_SERVICES
        .split_once('/')
        .unwrap_or(("bench", TCP_SERVICES));
    let y = format!(
        "apiVersion: networking.k8s.io/v1\nkind: IngressClass\nmetadata:\n  name: rauta\n  annotations:\n    ingressclass.kubernetes.io/is-default-class: \"true\"\nspec:\n  controller: rauta.io/ingress-controller\n\
---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {cm}\n  namespace: {ns}\ndata:\n  \"{listen}\": \"bench/tcp-origin:9000\"\n\
---\napiVersion: v1\nkind: Service\nmetadata:\n  name: tcp-origin\n  namespace: bench\nspec:\n  ports:\n    - name: tcp\n      port: 9000\n      targetPort: {origin}\n\
---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n  name: tcp-origin-1\n  namespace: bench\n  labels:\n    kubernetes.io/service-name: tcp-origin\naddressType: IPv4\nports:\n  - name: tcp\n    port: {origin}\nendpoints:\n  - addresses: [\"127.0.0.1\"]\n    conditions: {{ready: true}}\n"
    );
    fs::write(dir.join("tcp-services.yaml"), y)
        .with_context(|| format!("write {}", dir.display()))?;
    Ok(())
}
