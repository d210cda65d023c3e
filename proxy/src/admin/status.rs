//! `GET /status.json`: what the status page (`GET /`) shows, built in the
//! admin thread from the same shard snapshots `/metrics` merges.
//!
//! Kept compact for tables of many thousand routes:
//! - the table itself (routes, backends with endpoints, certificates) only
//!   changes with the generation, so it is sent only when the page does
//!   not have it yet (`?have=GENERATION` names the one it has), and is
//!   serialised once per generation;
//! - the live figures are arrays of numbers that name a route by its index
//!   in that table, and only routes with requests in the window (or in
//!   flight) are listed; endpoints likewise.

use super::window::WINDOW;
use super::{AdminState, ProblemLine, SourceFigures, Totals};
use crate::metrics::exposition;
use rauta_shared::config::RouteKind;
use serde::Serialize;
use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Refreshes closer together than this reuse the last one: however many
/// pages poll, the shards are asked at most this often for the page.
pub const MIN_REFRESH: Duration = Duration::from_millis(500);
/// Failed reloads remembered.
const FAILED_KEPT: usize = 10;
/// Problems listed per load.
const PROBLEMS_SHOWN: usize = 200;

fn unix(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// Rounded to 1/1000 (rates and ratios: short in JSON).
fn short(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// What the admin thread saw of the configuration source's loads: the
/// failed ones with their problems, noticed when the page asked.
#[derive(Debug, Default)]
pub struct ReloadLog {
    /// (loads, rejected, compile failures) at the previous look.
    seen: Option<(u64, u64, u64)>,
    /// Failed reloads seen, oldest first.
    failed: VecDeque<FailedReload>,
}

/// The source's counters and the problems of its last load, read before
/// the totals are locked ([`super::SourceProbe::last_load`]).
pub type LastLoad = (SourceFigures, Arc<Vec<ProblemLine>>);

/// A failed reload, as noticed.
#[derive(Debug, Clone, Serialize)]
struct FailedReload {
    /// When the admin thread noticed it (Unix seconds).
    seen: f64,
    /// `rejected` (by the source: a file that does not parse) or
    /// `compile` (by the proxy: a table that does not compile).
    kind: &'static str,
    /// The generation that stayed live.
    generation: u64,
    /// Why: the source's problems that reject the set, or the compile error.
    problems: Vec<ProblemLine>,
}

#[derive(Serialize)]
struct Reloads<'a> {
    loads: u64,
    failed: u64,
    last_failed: bool,
    problem_counts: [u64; 3],
    /// Every problem of the latest load (fatal, error, warning).
    problems: &'a [ProblemLine],
    recent_failures: Vec<&'a FailedReload>,
}

impl ReloadLog {
    /// Looks at the counters; a new failed load (the set rejected, or a
    /// table that did not compile) is remembered with its problems.
    fn update<'a>(
        &'a mut self,
        state: &AdminState,
        generation: u64,
        counts: SourceFigures,
        problems: &'a [ProblemLine],
    ) -> Reloads<'a> {
        let compile = state.control.compile_failures();
        let now = (counts.loads, counts.rejected, compile);
        let before = self.seen.replace(now);
        let new_rejection =
            counts.last_rejected && before.is_none_or(|(_, rejected, _)| rejected < now.1);
        let new_compile_failure = before.map_or(compile > 0, |(_, _, c)| c < compile);
        if new_rejection {
            let fatal: Vec<ProblemLine> = problems
                .iter()
                .filter(|p| p.severity == "fatal")
                .cloned()
                .collect();
            let why = if fatal.is_empty() {
                problems.to_vec()
            } else {
                fatal
            };
            self.remember("rejected", generation, why);
        }
        if new_compile_failure {
            if let Some((_, why)) = state.control.last_compile_failure() {
                let line = ProblemLine {
                    severity: "fatal".into(),
                    file: None,
                    object: None,
                    message: format!("the route table did not compile: {why}"),
                };
                self.remember("compile", generation, vec![line]);
            }
        }
        Reloads {
            loads: counts.loads,
            failed: counts.rejected + compile,
            last_failed: counts.last_rejected,
            problem_counts: [counts.fatal, counts.errors, counts.warnings],
            problems: &problems[..problems.len().min(PROBLEMS_SHOWN)],
            recent_failures: self.failed.iter().rev().collect(),
        }
    }

    fn remember(&mut self, kind: &'static str, generation: u64, mut problems: Vec<ProblemLine>) {
        problems.truncate(PROBLEMS_SHOWN);
        if self.failed.len() == FAILED_KEPT {
            self.failed.pop_front();
        }
        self.failed.push_back(FailedReload {
            seen: unix(SystemTime::now()),
            kind,
            generation,
            problems,
        });
    }
}

/// An endpoint in the table: [address, weight, ready|terminating, pod].
type EndpointRow<'a> = (String, u32, &'static str, Option<&'a str>);
/// A backend in the table: [name, Service, policy, endpoints].
type BackendRow<'a> = (&'a str, &'a str, String, Vec<EndpointRow<'a>>);

/// The table part: changes only with the generation.
#[derive(Serialize)]
struct Table<'a> {
    generation: u64,
    /// [host, path, type, object, backend index], in the table's order
    /// (the index the live figures use); the object is `namespace/name`
    /// of an Ingress, or `KIND namespace/name` (`HTTPRoute web/shop`).
    routes: Vec<(&'a str, &'a str, &'static str, String, usize)>,
    /// [route index, its conditions in words, the rule whose weighted share
    /// it is]: only routes with either.
    extras: Vec<(usize, Vec<String>, Option<crate::router::path::RouteId>)>,
    backends: Vec<BackendRow<'a>>,
    /// [host, namespace/secret, notAfter (Unix seconds)].
    certificates: Vec<(&'a str, String, i64)>,
    certificates_skipped: usize,
}

fn path_type(t: Option<rauta_shared::config::PathType>) -> &'static str {
    use rauta_shared::config::PathType as P;
    match t {
        None => "default",
        Some(P::Exact) => "Exact",
        Some(P::Prefix) => "Prefix",
        Some(P::ImplementationSpecific) => "ImplementationSpecific",
        Some(P::RegularExpression) => "RegularExpression",
    }
}

fn table_json(published: &crate::control::Published) -> String {
    let table = &published.table;
    let routes = table
        .routes()
        .iter()
        .map(|r| {
            let object = match r.kind {
                RouteKind::Ingress => format!("{}/{}", r.namespace, r.ingress),
                kind => format!("{} {}/{}", kind.as_str(), r.namespace, r.ingress),
            };
            (
                &*r.host,
                &*r.path,
                path_type(r.path_type),
                object,
                r.backend,
            )
        })
        .collect();
    let extras = table
        .routes()
        .iter()
        .enumerate()
        .filter(|(_, r)| r.conditions().is_some() || r.share_of().is_some())
        .map(|(i, r)| {
            let conditions = r.conditions().map(|c| c.describe());
            (i, conditions.unwrap_or_default(), r.share_of())
        })
        .collect();
    let backends = table
        .backends()
        .iter()
        .map(|b| {
            let endpoints = b
                .endpoints
                .iter()
                .map(|e| {
                    let state = if e.ready { "ready" } else { "terminating" };
                    (e.addr.to_string(), e.weight, state, e.target.as_deref())
                })
                .collect();
            (&*b.name, &*b.service, b.policy_name(), endpoints)
        })
        .collect();
    let (certificates, certificates_skipped) = match published.tls.as_deref() {
        Some(tls) => (
            tls.certs
                .iter()
                .map(|c| {
                    (
                        &*c.host,
                        format!("{}/{}", c.namespace, c.secret),
                        c.not_after,
                    )
                })
                .collect(),
            tls.skipped,
        ),
        None => (Vec::new(), 0),
    };
    serde_json::to_string(&Table {
        generation: published.generation,
        routes,
        extras,
        backends,
        certificates,
        certificates_skipped,
    })
    .unwrap_or_else(|_| "null".into())
}

#[derive(Serialize)]
struct WindowInfo {
    /// The time the figures cover (from the refresh before the oldest
    /// slot kept to the latest refresh).
    seconds: f64,
    /// What it is kept at when the page polls.
    nominal: u64,
}

#[derive(Serialize)]
struct Shard {
    shard: usize,
    generation: u64,
    open_connections: u64,
    accepted_per_s: f64,
    requests_per_s: f64,
}

#[derive(Serialize)]
struct Ebpf {
    /// [program, target, attached].
    attachments: Vec<(&'static str, String, bool)>,
    /// [series as on /metrics, value]: the eBPF and splice counters.
    counters: Vec<(String, f64)>,
}

/// This process, for pages that outlive it: generations restart at 1.
fn instance() -> u64 {
    static INSTANCE: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *INSTANCE.get_or_init(|| {
        let t = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        (t.as_nanos() as u64 ^ u64::from(std::process::id())) >> 11
    })
}

#[derive(Serialize)]
struct Live<'a> {
    /// Which process answered (a page that has a table of another one's
    /// generation asks for the table again).
    instance: u64,
    now: f64,
    generation: u64,
    live_on_every_shard: bool,
    /// When the live table was published (Unix seconds).
    published: Option<f64>,
    window: WindowInfo,
    reloads: Reloads<'a>,
    shards: Vec<Shard>,
    /// [route index, requests/s, 5xx ratio, p50 µs, p99 µs, p99.9 µs,
    /// in flight]: routes with requests in the window or in flight.
    routes: Vec<(usize, f64, f64, u64, u64, u64, i64)>,
    /// [address, requests in flight, idle connections, shards that eject
    /// it]: endpoints where one of these is not zero.
    endpoints: Vec<(String, u64, u64, usize)>,
    ebpf: Ebpf,
    /// The TCP and UDP services of the live table with their counters
    /// (summed over shards, since start).
    l4_services: Vec<L4Row<'a>>,
    /// The ssl-passthrough hosts of the live table.
    passthrough: Vec<PassthroughRow<'a>>,
    /// [result, ClientHellos] read on TLS listeners while passthrough
    /// hosts exist (as `rauta_tls_client_hellos_total`).
    client_hellos: Vec<(&'static str, u64)>,
    /// The Kubernetes API source's figures; `null` with `--manifests`.
    kubernetes: Option<crate::metrics::exposition::kubernetes::KubeFigures>,
}

/// A TCP or UDP service (a tcp/udp-services ConfigMap entry) and its
/// counters.
#[derive(Serialize)]
struct L4Row<'a> {
    /// `tcp/9000`, the `service` label of its metrics.
    service: &'a str,
    protocol: &'static str,
    port: u16,
    backend: &'a str,
    /// The ConfigMap entry it comes from.
    source: String,
    /// False when its port could not be bound (then `error` says why).
    listening: bool,
    error: Option<&'a str>,
    active: u64,
    connections: u64,
    bytes_in: u64,
    bytes_out: u64,
    connect_failures: u64,
    unserved: u64,
}

/// An ssl-passthrough host and the backend its TLS connections go to.
#[derive(Serialize)]
struct PassthroughRow<'a> {
    host: String,
    backend: &'a str,
}

/// The L4 services of `published` with their counters summed over shards.
fn l4_rows<'a>(published: &'a crate::control::Published, totals: &Totals) -> Vec<L4Row<'a>> {
    let table = &published.table;
    table
        .l4_services()
        .iter()
        .map(|s| {
            let mut sum = crate::metrics::l4::L4Counters::default();
            for shard in totals.registry.shards.values() {
                for (_, c) in shard.l4.iter().filter(|(label, _)| *label == s.label) {
                    sum.active += c.active;
                    sum.connections += c.connections;
                    sum.bytes_in += c.bytes_in;
                    sum.bytes_out += c.bytes_out;
                    sum.connect_failures += c.connect_failures;
                    sum.unserved += c.unserved;
                }
            }
            let failure = published.l4_failures.iter().find(|(k, _)| *k == s.key);
            L4Row {
                service: &s.label,
                protocol: s.key.0.as_str(),
                port: s.key.1,
                backend: &table.backend(s.backend).name,
                source: s.source.to_string(),
                listening: failure.is_none(),
                error: failure.map(|(_, why)| why.as_str()),
                active: sum.active,
                connections: sum.connections,
                bytes_in: sum.bytes_in,
                bytes_out: sum.bytes_out,
                connect_failures: sum.connect_failures,
                unserved: sum.unserved,
            }
        })
        .collect()
}

/// The series of an exposition text, comments left out.
fn samples(text: &str) -> impl Iterator<Item = (String, f64)> + '_ {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            Some((series.to_string(), value.parse().ok()?))
        })
}

fn ebpf(state: &AdminState) -> Ebpf {
    let figures = state.xdp.figures();
    let mut text = String::new();
    exposition::render_xdp(&mut text, &figures);
    let splice = state
        .splice
        .as_ref()
        .and_then(|s| s.lock().ok()?.counters().ok());
    if let Some(counters) = splice {
        exposition::render_splice(&mut text, &counters);
    }
    Ebpf {
        attachments: figures
            .attachments
            .iter()
            .map(|a| (a.program, a.target.clone(), a.attached))
            .collect(),
        counters: samples(&text)
            .filter(|(series, _)| !series.starts_with("rauta_ebpf_attached"))
            .collect(),
    }
}

/// `/status.json`: the live figures, and the table unless `have` is its
/// generation. The shards are asked for their snapshot as `/metrics` asks
/// them, unless a refresh happened less than [`MIN_REFRESH`] ago.
pub(super) fn render(
    state: &AdminState,
    totals: &mut Totals,
    have: Option<u64>,
    source: &LastLoad,
) -> String {
    let now = Instant::now();
    if now.saturating_duration_since(totals.window.last_refresh()) >= MIN_REFRESH {
        super::refresh(state, totals);
    }
    let latest = state.control.latest();
    let generation = latest.as_ref().map_or(0, |p| p.generation);
    let table = match &latest {
        Some(p) if have != Some(p.generation) => match &totals.table_json {
            Some((g, json)) if *g == p.generation => Some(json.clone()),
            _ => {
                let json: Arc<str> = table_json(p).into();
                totals.table_json = Some((p.generation, json.clone()));
                Some(json)
            }
        },
        _ => None,
    };
    let span = totals.window.span().as_secs_f64();
    let per_s = |n: u64| {
        if span > 0.0 {
            short(n as f64 / span)
        } else {
            0.0
        }
    };

    let requests = totals.window.shard_requests();
    let accepted = totals.window.shard_accepted();
    let shards = totals
        .registry
        .shards
        .iter()
        .map(|(id, level)| Shard {
            shard: *id,
            generation: level.generation,
            open_connections: level.open_connections,
            accepted_per_s: per_s(accepted.get(id).copied().unwrap_or(0)),
            requests_per_s: per_s(requests.get(id).copied().unwrap_or(0)),
        })
        .collect();

    let mut routes = Vec::new();
    if let Some(p) = &latest {
        for (i, r) in p.table.routes().iter().enumerate() {
            let w = totals.window.route(&r.key).unwrap_or_default();
            let in_flight: i64 = totals
                .registry
                .routes
                .get(&r.key)
                .map_or(0, |t| t.in_flight.values().sum());
            if w.requests == 0 && in_flight == 0 {
                continue;
            }
            let errors = if w.requests > 0 {
                short(w.errors as f64 / w.requests as f64)
            } else {
                0.0
            };
            let [p50, p99, p999] = w.quantiles;
            routes.push((i, per_s(w.requests), errors, p50, p99, p999, in_flight));
        }
    }

    let mut endpoints: HashMap<SocketAddr, (u64, u64, usize)> = HashMap::new();
    for s in totals.registry.shards.values() {
        for g in &s.pool {
            let e = endpoints.entry(g.endpoint).or_default();
            e.0 += g.active;
            e.1 += g.idle;
        }
        for addr in &s.ejected {
            endpoints.entry(*addr).or_default().2 += 1;
        }
    }
    let mut endpoints: Vec<_> = endpoints
        .into_iter()
        .filter(|(_, (a, i, e))| *a + *i > 0 || *e > 0)
        .map(|(addr, (a, i, e))| (addr.to_string(), a, i, e))
        .collect();
    endpoints.sort_unstable();

    let l4_services = latest
        .as_ref()
        .map(|p| l4_rows(p, totals))
        .unwrap_or_default();
    let passthrough = latest
        .as_ref()
        .map(|p| {
            (p.table.passthrough_hosts().into_iter())
                .map(|(host, b)| PassthroughRow {
                    host,
                    backend: &p.table.backend(b).name,
                })
                .collect()
        })
        .unwrap_or_default();
    let mut hellos: std::collections::BTreeMap<&'static str, u64> = Default::default();
    for shard in totals.registry.shards.values() {
        for (result, n) in &shard.hellos {
            *hellos.entry(result).or_default() += n;
        }
    }
    let reloads = totals
        .reloads
        .update(state, generation, source.0, &source.1);
    let live = Live {
        instance: instance(),
        now: unix(SystemTime::now()),
        generation,
        live_on_every_shard: state.readiness.ready_generation() == Some(generation),
        published: latest.as_ref().map(|p| unix(p.at)),
        window: WindowInfo {
            seconds: short(span),
            nominal: WINDOW.as_secs(),
        },
        reloads,
        shards,
        routes,
        endpoints,
        ebpf: ebpf(state),
        l4_services,
        passthrough,
        client_hellos: hellos.into_iter().collect(),
        kubernetes: crate::metrics::exposition::kubernetes::figures(),
    };
    let body = serde_json::to_string(&live).unwrap_or_else(|_| "{}".into());
    match table {
        // `{"table":{...},` followed by the live object's fields.
        Some(table) => {
            let mut out = String::with_capacity(table.len() + body.len() + 16);
            out.push_str("{\"table\":");
            out.push_str(&table);
            out.push(',');
            out.push_str(&body[1..]);
            out
        }
        None => body,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposition_samples() {
        let text = "# HELP a x\n# TYPE a counter\na{b=\"c d\"} 3\nz 4.5\n";
        let got: Vec<_> = samples(text).collect();
        assert_eq!(got, vec![("a{b=\"c d\"}".into(), 3.0), ("z".into(), 4.5)]);
    }
}

#[cfg(test)]
mod cost {
    use super::*;
    use crate::control::{Broadcaster, Readiness};
    use crate::metrics::snapshot::{OutcomeDelta, RouteDelta, ShardLevel, ShardSnapshot};
    use rauta_testkit::manifests::{join, path, rule};
    use rauta_testkit::{endpoint_slice, ingress, rauta_class, service, EndpointSpec};
    use std::collections::HashSet;
    use std::sync::OnceLock;

    /// Size and build time of `/status.json` with 10 000 routes (100
    /// hosts × 100 paths), every one of them in the window
    /// (`cargo test --release -p rauta-proxy --lib status_json_cost --
    /// --ignored --nocapture`): what the admin thread pays per poll, apart
    /// from asking the shards.
    #[test]
    #[ignore = "a measurement, run by hand in release"]
    fn status_json_cost() {
        let mut docs = vec![rauta_class()];
        for s in 0..10 {
            let name = format!("svc{s}");
            docs.push(service("web", &name, &[(Some("http"), 80, 8080)]));
            let mut ep = EndpointSpec::ready(&format!("10.0.0.{}", s + 1));
            ep.pod = Some(format!("{name}-0"));
            docs.push(endpoint_slice(
                "web",
                &name,
                &name,
                &[(Some("http"), 8080)],
                &[ep],
            ));
        }
        for h in 0..100 {
            let paths: Vec<String> = (0..100)
                .map(|p| path(&format!("/p{p}"), "Prefix", &format!("svc{}", (h + p) % 10)))
                .collect();
            let rules = rule(Some(&format!("h{h}.example")), &paths);
            docs.push(ingress(
                "web",
                &format!("ing{h}"),
                Some("rauta"),
                &[],
                &rules,
            ));
        }
        let dir = tempfile::tempdir().expect("dir");
        let refs: Vec<&str> = docs.iter().map(String::as_str).collect();
        std::fs::write(dir.path().join("all.yaml"), join(&refs)).expect("write");
        let sel = rauta_k8s_sync::ClassSelector::default();
        let translation = rauta_k8s_sync::manifests::load_and_translate(dir.path(), &sel);
        let (mut broadcaster, _inboxes) = Broadcaster::new(0, None).expect("broadcaster");
        broadcaster.publish(&translation.config).expect("compiles");
        let state = AdminState {
            readiness: Arc::new(Readiness::new(0)),
            control: broadcaster.status(),
            snapshotter: broadcaster.snapshotter(),
            source: OnceLock::new(),
            xdp: Arc::new(crate::xdp::XdpStats::default()),
            splice: None,
            ingress_nginx: None,
        };
        let published = state.control.latest().expect("published");
        let keys: Vec<Arc<str>> = published
            .table
            .routes()
            .iter()
            .map(|r| r.key.clone())
            .collect();
        assert_eq!(keys.len(), 10_000);
        let live: HashSet<&str> = keys.iter().map(|k| &**k).collect();
        let mut totals = Totals::default();
        // 30 one-second slots, each with a few requests on every route.
        let start = Instant::now();
        let mut add_time = Duration::ZERO;
        for second in 0..30u32 {
            let routes = keys
                .iter()
                .enumerate()
                .map(|(i, key)| RouteDelta {
                    key: key.clone(),
                    outcomes: vec![OutcomeDelta {
                        protocol: 0,
                        method: 0,
                        status: if i % 50 == 0 { 503 } else { 200 },
                        requests: 4,
                        bytes_in: 400,
                        bytes_out: 4000,
                        in_sizes: [0; 11],
                        out_sizes: [0; 11],
                        request_us: vec![(800 + i as u64 % 300, 2), (2_000, 1), (40_000, 1)],
                        request_us_sum: 43_600,
                        upstream_us: vec![],
                        upstream_us_sum: 0,
                    }],
                    in_flight: 0,
                    errors: [0; crate::metrics::CAUSES],
                    mirrors: [0; 4],
                    connect_us: vec![],
                    connect_us_sum: 0,
                })
                .collect();
            let snapshot = ShardSnapshot {
                shard: 0,
                routes,
                level: ShardLevel::default(),
            };
            let at = start + Duration::from_secs(u64::from(second) + 1);
            let t = Instant::now();
            totals
                .window
                .add(std::slice::from_ref(&snapshot), &live, at);
            add_time += t.elapsed();
            totals.registry.merge(snapshot, &live);
        }
        let t = Instant::now();
        let source = LastLoad::default();
        let full = render(&state, &mut totals, None, &source);
        let first = t.elapsed();
        let t = Instant::now();
        let again = render(&state, &mut totals, None, &source);
        let cached = t.elapsed();
        let t = Instant::now();
        let figures = render(&state, &mut totals, Some(published.generation), &source);
        let live_only = t.elapsed();
        assert!(full.starts_with("{\"table\":") && again.starts_with("{\"table\":"));
        assert!(!figures.contains("\"table\""));
        println!(
            "10 000 routes, all in the window: filing one refresh's deltas {:?}; \
             /status.json with the table {} bytes in {first:?} ({cached:?} with the table \
             serialised already), the live figures alone {} bytes in {live_only:?}",
            add_time / 30,
            full.len(),
            figures.len()
        );
    }
}
