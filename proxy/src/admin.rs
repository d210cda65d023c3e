//! The admin listener: a small blocking HTTP server on its own thread, off
//! the shard cores and never on the client port. `/healthz`, `/readyz`,
//! `/metrics`, `/routes`, `/debug/route`, and the status page: `/` with its
//! script and style ([`page`]), fed by `/status.json` ([`status`]).

pub mod page;
pub mod status;
pub mod window;

use crate::balance::Endpoint;
use crate::control::{ControlStatus, Readiness, Snapshotter};
use crate::metrics::exposition::{self, ProcessInfo};
use crate::metrics::registry::Registry;
use crate::router::conditions::Facts;
use crate::router::{explain, Match};
use serde_json::json;
use std::collections::{HashMap, HashSet};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, UNIX_EPOCH};

/// How long a scrape waits for the shards' snapshots.
const SNAPSHOT_TIMEOUT: Duration = Duration::from_secs(1);

/// The configuration source's load counters, as `/metrics` shows them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SourceFigures {
    /// Loads attempted.
    pub loads: u64,
    /// Loads rejected as a whole.
    pub rejected: u64,
    /// Whether the last load was rejected.
    pub last_rejected: bool,
    /// Fatal problems (the set rejected) in the last load.
    pub fatal: u64,
    /// Error problems (an object left out) in the last load.
    pub errors: u64,
    /// Warning problems in the last load.
    pub warnings: u64,
}

/// One problem of a configuration load, as the status page lists it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ProblemLine {
    /// `fatal` (the set rejected), `error` (an object left out) or `warning`.
    pub severity: String,
    /// The manifest file, when known.
    pub file: Option<String>,
    /// The object, e.g. `Ingress demo/web`.
    pub object: Option<String>,
    /// What is wrong.
    pub message: String,
}

/// Reads the source's counters at scrape time, and the problems of its
/// last load when the status page asks. Closures, so the data plane does
/// not depend on the control-plane crate that keeps them.
pub struct SourceProbe {
    read: Box<dyn Fn() -> SourceFigures + Send + Sync>,
    problems: Option<ProblemReader>,
    /// The problems read for the load with this number.
    cache: Mutex<Option<(u64, Arc<Vec<ProblemLine>>)>>,
}

/// Reads the problems of the source's last load.
type ProblemReader = Box<dyn Fn() -> Vec<ProblemLine> + Send + Sync>;

impl SourceProbe {
    /// A probe calling `read`.
    pub fn new(read: impl Fn() -> SourceFigures + Send + Sync + 'static) -> SourceProbe {
        SourceProbe {
            read: Box::new(read),
            problems: None,
            cache: Mutex::new(None),
        }
    }

    /// The counters now, and the problems of the last load: read once per
    /// load, and only when its counts say it had some.
    pub fn last_load(&self) -> status::LastLoad {
        let figures = (self.read)();
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((loads, problems)) = &*cache {
            if *loads == figures.loads {
                return (figures, problems.clone());
            }
        }
        let any = figures.fatal + figures.errors + figures.warnings > 0;
        let problems = Arc::new(match &self.problems {
            Some(read) if any => read(),
            _ => Vec::new(),
        });
        *cache = Some((figures.loads, problems.clone()));
        (figures, problems)
    }

    /// The same probe, with `problems` telling what the last load's
    /// problems were (called only after a load, and only when its counts
    /// say it had some).
    pub fn with_problems(
        mut self,
        problems: impl Fn() -> Vec<ProblemLine> + Send + Sync + 'static,
    ) -> SourceProbe {
        self.problems = Some(Box::new(problems));
        self
    }
}

impl std::fmt::Debug for SourceProbe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("SourceProbe").field(&(self.read)()).finish()
    }
}

/// What the admin thread reads from the rest of the process.
#[derive(Debug)]
pub struct AdminState {
    /// Which generation every shard serves.
    pub readiness: Arc<Readiness>,
    /// The latest published table and compile failures.
    pub control: Arc<ControlStatus>,
    /// Asks shards for statistics.
    pub snapshotter: Snapshotter,
    /// Load counters of the configuration source, once it runs.
    pub source: OnceLock<SourceProbe>,
    /// eBPF counters and attachments.
    pub xdp: Arc<crate::xdp::XdpStats>,
    /// The kernel splice's maps, when L4 flows are spliced.
    pub splice: Option<std::sync::Mutex<crate::l4::splice::SpliceHandle>>,
    /// With `--metrics-compat ingress-nginx`: the constant labels of the
    /// `nginx_ingress_controller_*` families, which are then served too.
    pub ingress_nginx: Option<exposition::Controller>,
}

/// What a listener serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Every admin endpoint (`--admin`: the node's own loopback).
    Admin,
    /// `/metrics` and `/healthz` only (`--metrics-listen`: for a Prometheus
    /// off the node; the route table and explanations stay local).
    Metrics,
}

/// What the admin threads keep between requests: the running totals, the
/// status page's recent window (both fed by every refresh), what it saw
/// of reloads, and its table serialised for the live generation.
#[derive(Debug, Default)]
pub struct Totals {
    /// The running totals `/metrics` shows.
    pub registry: Registry,
    /// The recent window of the status page.
    pub window: window::Window,
    reloads: status::ReloadLog,
    table_json: Option<(u64, Arc<str>)>,
}

/// The totals the admin threads share: each scrape drains the shards'
/// deltas into them, so every listener must see the same ones. Only
/// admin threads take them, never a shard.
pub type SharedRegistry = Arc<Mutex<Totals>>;

/// Starts an admin server on an already bound listener.
pub fn spawn(
    listener: TcpListener,
    state: Arc<AdminState>,
    registry: SharedRegistry,
    scope: Scope,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    let name = match scope {
        Scope::Admin => "rauta-admin",
        Scope::Metrics => "rauta-metrics",
    };
    std::thread::Builder::new()
        .name(name.into())
        .spawn(move || {
            for stream in listener.incoming().flatten() {
                if let Err(e) = handle(stream, &state, &registry, scope) {
                    tracing::debug!(error = %e, "admin request failed");
                }
            }
        })
}

fn handle(
    mut stream: TcpStream,
    state: &AdminState,
    registry: &Mutex<Totals>,
    scope: Scope,
) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    stream.set_write_timeout(Some(Duration::from_secs(5)))?;
    let mut buf = [0u8; 8192];
    let mut len = 0;
    let target = loop {
        let n = stream.read(&mut buf[len..])?;
        if n == 0 {
            return Ok(());
        }
        len += n;
        let mut headers = [httparse::EMPTY_HEADER; 64];
        let mut req = httparse::Request::new(&mut headers);
        match req.parse(&buf[..len]) {
            Ok(httparse::Status::Complete(_))
                if req.method == Some("GET") || req.method == Some("HEAD") =>
            {
                break req.path.unwrap_or("/").to_string()
            }
            Ok(httparse::Status::Complete(_)) => {
                return respond(&mut stream, 405, "text/plain", "only GET and HEAD\n")
            }
            Ok(httparse::Status::Partial) if len < buf.len() => continue,
            _ => return respond(&mut stream, 400, "text/plain", "bad request\n"),
        }
    };
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    if scope == Scope::Metrics && !matches!(path, "/metrics" | "/healthz") {
        return respond(&mut stream, 404, "text/plain", "not found\n");
    }
    match path {
        "/" | "/status.js" | "/status.css" => {
            let (content_type, body) = page::asset(path);
            respond_with(&mut stream, 200, content_type, page::HEADERS, body)
        }
        "/status.json" => {
            let have = form_urlencoded::parse(query.as_bytes())
                .find(|(k, _)| k == "have")
                .and_then(|(_, v)| v.parse().ok());
            // Outside the lock: the problems may be read from the source.
            let source = state
                .source
                .get()
                .map(SourceProbe::last_load)
                .unwrap_or_default();
            let body = {
                let mut totals = registry.lock().unwrap_or_else(|e| e.into_inner());
                status::render(state, &mut totals, have, &source)
            };
            respond_with(
                &mut stream,
                200,
                "application/json",
                "Cache-Control: no-store\r\n",
                &body,
            )
        }
        "/healthz" => respond(&mut stream, 200, "text/plain", "ok\n"),
        "/readyz" => match ready_generation(state) {
            Some(generation) => respond(
                &mut stream,
                200,
                "text/plain",
                &format!("ready generation={generation}\n"),
            ),
            None => respond(
                &mut stream,
                503,
                "text/plain",
                "not ready: no route table live on every shard yet\n",
            ),
        },
        "/metrics" => {
            let body = {
                let mut totals = registry.lock().unwrap_or_else(|e| e.into_inner());
                metrics(state, &mut totals)
            };
            respond(
                &mut stream,
                200,
                "text/plain; version=0.0.4; charset=utf-8",
                &body,
            )
        }
        "/routes" => {
            let ejected = ejected(state, registry);
            respond(
                &mut stream,
                200,
                "application/json",
                &routes(state, &ejected),
            )
        }
        "/debug/route" => {
            let ejected = ejected(state, registry);
            debug_route(&mut stream, state, query, &ejected)
        }
        _ => respond(&mut stream, 404, "text/plain", "not found\n"),
    }
}

/// The generation live on every shard, once the admin views (`/routes`,
/// `/status.json`) show it or a later one: ready means both.
fn ready_generation(state: &AdminState) -> Option<u64> {
    let live = state.readiness.ready_generation()?;
    let shown = state.control.latest()?.generation;
    (shown >= live).then_some(live)
}

/// Brings the registry up to date with every shard (a snapshot hands over
/// the routes' figures since the last one, so it is always merged), and
/// files the same deltas in the status page's window.
fn refresh(state: &AdminState, totals: &mut Totals) {
    let latest = state.control.latest();
    let live: HashSet<&str> = latest
        .as_ref()
        .map(|p| p.table.routes().iter().map(|r| &*r.key).collect())
        .unwrap_or_default();
    let snapshots = state.snapshotter.collect(SNAPSHOT_TIMEOUT);
    totals
        .window
        .add(&snapshots, &live, std::time::Instant::now());
    for snapshot in snapshots {
        totals.registry.merge(snapshot, &live);
    }
    totals.registry.retain(&live);
}

/// Endpoints out of some shard's picks now (outlier ejection), with how
/// many shards left each out.
fn ejected(state: &AdminState, totals: &Mutex<Totals>) -> HashMap<SocketAddr, usize> {
    let mut totals = totals.lock().unwrap_or_else(|e| e.into_inner());
    refresh(state, &mut totals);
    let mut ejected = HashMap::new();
    for s in totals.registry.shards.values() {
        for addr in &s.ejected {
            *ejected.entry(*addr).or_default() += 1;
        }
    }
    ejected
}

/// An endpoint as `/routes` and `/debug/route` show it.
fn endpoint_json(e: &Endpoint, ejected: &HashMap<SocketAddr, usize>) -> serde_json::Value {
    let shards = ejected.get(&e.addr).copied().unwrap_or(0);
    json!({
        "address": e.addr.to_string(),
        "weight": e.weight,
        "state": if e.ready { "ready" } else { "serving-terminating" },
        "target": e.target.as_deref(),
        // Shards that leave it out of their picks after failures in a row.
        "ejected_shards": shards,
    })
}

fn metrics(state: &AdminState, totals: &mut Totals) -> String {
    refresh(state, totals);
    let registry = &totals.registry;
    let latest = state.control.latest();
    let counts = state
        .source
        .get()
        .map(|probe| (probe.read)())
        .unwrap_or_default();
    // jemalloc caches its statistics; advancing the epoch refreshes them.
    let _ = tikv_jemalloc_ctl::epoch::advance();
    let process = ProcessInfo {
        generation: latest.as_ref().map_or(0, |p| p.generation),
        last_swap_unix: latest
            .as_ref()
            .and_then(|p| p.at.duration_since(UNIX_EPOCH).ok())
            .map_or(0.0, |d| d.as_secs_f64()),
        reloads: counts.loads,
        reloads_failed: counts.rejected + state.control.compile_failures(),
        config_fatal: counts.fatal,
        config_errors: counts.errors,
        config_warnings: counts.warnings,
        allocated_bytes: tikv_jemalloc_ctl::stats::allocated::read()
            .ok()
            .map(|v| v as u64),
        resident_bytes: tikv_jemalloc_ctl::stats::resident::read()
            .ok()
            .map(|v| v as u64),
    };
    let mut body = exposition::render(registry, latest.as_ref().map(|p| &*p.table), &process);
    if let Some(tls) = latest.as_ref().and_then(|p| p.tls.as_deref()) {
        exposition::render_tls(&mut body, registry, tls);
    }
    exposition::render_xdp(&mut body, &state.xdp.figures());
    let splice = state
        .splice
        .as_ref()
        .and_then(|s| s.lock().ok()?.counters().ok());
    if let Some(counters) = splice {
        exposition::render_splice(&mut body, &counters);
    }
    if let Some(controller) = &state.ingress_nginx {
        let failed = counts.rejected + state.control.compile_failures();
        let inputs = exposition::CompatInputs {
            controller,
            reloads: exposition::Reloads {
                config_hash: latest.as_ref().map_or(0, |p| p.config_hash),
                last_ok: !counts.last_rejected,
                last_ok_unix: process.last_swap_unix,
                ok: counts.loads.saturating_sub(failed),
                failed,
            },
            proc: crate::metrics::procfs::read(),
            table: latest.as_ref().map(|p| &*p.table),
            tls: latest.as_ref().and_then(|p| p.tls.as_deref()),
        };
        exposition::render_ingress_nginx(&mut body, registry, &inputs);
    }
    body
}

fn routes(state: &AdminState, ejected: &HashMap<SocketAddr, usize>) -> String {
    let Some(published) = state.control.latest() else {
        return json!({ "generation": 0, "rules": [], "default_backend": null, "backends": [], "l4_services": [] })
            .to_string();
    };
    let table = &published.table;
    let rules: Vec<_> = table
        .routes()
        .iter()
        .filter(|r| !r.is_default_backend() && r.share_of().is_none())
        .map(|r| {
            let mut rule = json!({
                "ingress": format!("{}/{}", r.namespace, r.ingress),
                "kind": r.kind.as_str(),
                "host": &*r.host,
                "path": &*r.path,
                "path_type": r.path_type.map(|t| format!("{t:?}")),
                "backend": &*table.backend(r.backend).name,
            });
            let Some(obj) = rule.as_object_mut() else {
                return rule;
            };
            if let Some(c) = r.conditions() {
                obj.insert("conditions".into(), json!(c.describe()));
            }
            if let Some(split) = r.policy.as_deref().and_then(|p| p.split()) {
                let shares: Vec<_> = split
                    .shares()
                    .map(|(b, weight)| {
                        let backend = b.map(|b| &*table.backend(b).name);
                        json!({ "backend": backend, "weight": weight })
                    })
                    .collect();
                obj.insert("split".into(), json!(shares));
            }
            rule
        })
        .collect();
    let default_backend = table.routes().iter().find(|r| r.is_default_backend()).map(|r| {
        json!({ "ingress": format!("{}/{}", r.namespace, r.ingress), "backend": &*table.backend(r.backend).name })
    });
    let backends: Vec<_> = table
        .backends()
        .iter()
        .map(|b| {
            let endpoints: Vec<_> = b
                .endpoints
                .iter()
                .map(|e| endpoint_json(e, ejected))
                .collect();
            json!({ "name": &*b.name, "service": &*b.service, "policy": b.policy_name(), "endpoints": endpoints })
        })
        .collect();
    let l4: Vec<_> = table
        .l4_services()
        .iter()
        .map(|s| {
            let failure = published.l4_failures.iter().find(|(k, _)| *k == s.key);
            json!({
                "protocol": s.key.0.as_str(),
                "port": s.key.1,
                "source": s.source.to_string(),
                "backend": &*table.backend(s.backend).name,
                "proxy_protocol_from_clients": s.proxy_protocol_downstream,
                "proxy_protocol_to_backend": s.proxy_protocol_upstream,
                "xdp_fast_path": s.xdp_fast_path,
                "on_xdp_fast_path": published.fast_ports.contains(&s.key.1) && s.key.0 == rauta_shared::config::L4Protocol::Tcp,
                "listening": failure.is_none(),
                "error": failure.map(|(_, why)| why),
            })
        })
        .collect();
    json!({
        "generation": published.generation,
        "live_on_every_shard": state.readiness.ready_generation() == Some(published.generation),
        "rules": rules,
        "default_backend": default_backend,
        "backends": backends,
        "l4_services": l4,
        "passthrough": table.passthrough_hosts().iter().map(|(host, b)| {
            json!({ "host": host, "backend": &*table.backend(*b).name })
        }).collect::<Vec<_>>(),
    })
    .to_string()
}

fn debug_route(
    stream: &mut TcpStream,
    state: &AdminState,
    query: &str,
    ejected: &HashMap<SocketAddr, usize>,
) -> std::io::Result<()> {
    let (mut host, mut path, mut method) = (None, None, None);
    let (mut headers, mut tls, mut port) = (Vec::new(), false, 0);
    for (k, v) in form_urlencoded::parse(query.as_bytes()) {
        match &*k {
            "host" => host = Some(v.into_owned()),
            "path" => path = Some(v.into_owned()),
            "method" => method = Some(v.into_owned()),
            "header" => {
                let (name, value) = v.split_once(':').unwrap_or((&v, ""));
                headers.push((name.trim().to_string(), value.trim().to_string()));
            }
            "tls" => tls = matches!(&*v, "true" | "1" | "on"),
            "port" => port = v.parse().unwrap_or(0),
            _ => {}
        }
    }
    let (Some(host), Some(path)) = (host, path) else {
        return respond(
            stream,
            400,
            "text/plain",
            "usage: /debug/route?host=HOST&path=/PATH[?QUERY][&method=GET][&header=NAME:VALUE]...[&tls=true][&port=PORT]\n",
        );
    };
    let Some(published) = state.control.latest() else {
        return respond(stream, 503, "text/plain", "no route table loaded yet\n");
    };
    let method = method.unwrap_or_else(|| "GET".into());
    let headers: Vec<httparse::Header<'_>> = headers
        .iter()
        .map(|(name, value)| httparse::Header {
            name,
            value: value.as_bytes(),
        })
        .collect();
    let facts = Facts {
        method: &method,
        headers: &headers,
        target: &path,
        tls,
        port,
    };
    let explanation = explain::explain(&published.table, &host, &path, &facts);
    let winner = match (published.table).lookup_with(&explanation.host, &explanation.path, &facts) {
        Match::Route { backend, .. } if explanation.result != "no-route" => Some(backend),
        _ => None,
    };
    let mut body = serde_json::to_value(&explanation).unwrap_or_default();
    if let Some(obj) = body.as_object_mut() {
        obj.insert("generation".into(), json!(published.generation));
        // Ingress rules do not match on methods; said so that nobody wonders.
        obj.insert("method".into(), json!(method));
        obj.insert(
            "method_note".into(),
            json!("Ingress rules do not depend on the method; HTTPRoute rules with conditions may (see each candidate's conditions)"),
        );
        obj.insert("tls".into(), json!(tls));
        obj.insert("port".into(), json!(port));
        // Where the winner's requests can go now.
        if let Some(backend) = winner.map(|b| published.table.backend(b)) {
            let endpoints: Vec<_> = backend
                .endpoints
                .iter()
                .map(|e| endpoint_json(e, ejected))
                .collect();
            obj.insert("endpoints".into(), json!(endpoints));
        }
    }
    respond(stream, 200, "application/json", &body.to_string())
}

fn respond(
    stream: &mut TcpStream,
    status: u16,
    content_type: &str,
    body: &str,
) -> std::io::Result<()> {
    respond_with(stream, status, content_type, "", body)
}

/// Like [`respond`], with `headers` (complete lines, each ending in CRLF).
fn respond_with(
    stream: &mut TcpStream,
    status: u16,
    content_type: &str,
    headers: &str,
    body: &str,
) -> std::io::Result<()> {
    let reason = match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        _ => "Service Unavailable",
    };
    write!(
        stream,
        "HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n{headers}Connection: close\r\n\r\n{body}",
        body.len()
    )
}
