//! Turning the runs into `bench/results/latest.md` (medians, min–max,
//! per-round paired ratios, targets) and a CSV of every run.

use std::fmt::Write as _;
use std::time::Duration;

use crate::load::{Outcome, Scenario};
use crate::micro::Micro;
use crate::peers::Kind;
use crate::profile::{Callgrind, PerfPerRequest, PERF_EVENTS};
use crate::sys::Machine;

/// Other processes using more than this many CPUs' worth during a run
/// flag it as disturbed.
pub const OTHER_LOAD_FLAG: f64 = 0.10;

/// One measured run of one proxy in one scenario.
#[derive(Debug, Clone)]
pub struct Run {
    /// The scenario.
    pub scenario: Scenario,
    /// 1-based round.
    pub round: usize,
    /// The proxy, or `None` for the direct (no proxy) baseline.
    pub proxy: Option<Kind>,
    /// What the load generator saw.
    pub load: Outcome,
    /// Proxy CPU time (all threads and processes) per request, µs.
    pub cpu_us_per_req: f64,
    /// Proxy CPU time over wall time (1.0 = one core busy).
    pub proxy_util: f64,
    /// Backend CPU time over wall time.
    pub backend_util: f64,
    /// Load generator CPU time over wall time.
    pub loadgen_util: f64,
    /// Peak RSS during the run (VmHWM after a reset), KiB.
    pub peak_rss_kb: u64,
    /// Busy fraction of each CPU.
    pub cpu_busy: Vec<f64>,
    /// CPUs' worth used by processes outside the benchmark.
    pub other_cpus: f64,
    /// The busiest outside process and its share.
    pub top_other: Option<(String, f64)>,
    /// 1-minute load average at the start.
    pub loadavg: f64,
    /// gRPC: connections the proxy opened to the origin during the run.
    pub upstream_opened: Option<u64>,
    /// gRPC: the most connections the proxy held open to the origin at
    /// once during the run (kept-alive ones included).
    pub upstream_peak: Option<u64>,
}

impl Run {
    /// True when other processes used enough CPU to disturb the run.
    pub fn disturbed(&self) -> bool {
        self.other_cpus > OTHER_LOAD_FLAG
    }
}

/// How a proxy started.
#[derive(Debug, Clone)]
pub struct Startup {
    /// Which proxy.
    pub kind: Kind,
    /// `basic` or `N routes`.
    pub table: String,
    /// Time to the first proxied 200.
    pub took: Duration,
    /// Largest process RSS once ready, KiB.
    pub idle_rss_kb: u64,
    /// PSS of all processes once ready, KiB.
    pub idle_pss_kb: u64,
}

/// The first request to every route of the many-routes table.
#[derive(Debug, Clone)]
pub struct Walk {
    /// Which proxy.
    pub kind: Kind,
    /// How long the pass took (32 connections).
    pub took: Duration,
    /// Proxy CPU time per request during the pass, µs.
    pub cpu_us_per_req: f64,
    /// Largest process RSS after the pass, KiB.
    pub rss_after_kb: u64,
}

/// Everything the report shows.
#[derive(Debug, Default)]
pub struct Report {
    /// The machine.
    pub machine: Option<Machine>,
    /// (tool, version) pairs.
    pub versions: Vec<(String, String)>,
    /// When the suite started (UTC, as `date -u` prints it).
    pub started: String,
    /// Wall time of the suite.
    pub elapsed: Duration,
    /// Setup lines (durations, rates, connections).
    pub setup: Vec<String>,
    /// Proxies in run order.
    pub proxies: Vec<Kind>,
    /// Scenarios run.
    pub scenarios: Vec<Scenario>,
    /// Every measured run.
    pub runs: Vec<Run>,
    /// The backend (or the gRPC origin) driven directly, for reference.
    pub baselines: Vec<Run>,
    /// Start-up figures.
    pub startups: Vec<Startup>,
    /// First passes over the many-routes table.
    pub walks: Vec<Walk>,
    /// `perf stat` per proxy.
    pub perf: Vec<(Kind, Result<PerfPerRequest, String>)>,
    /// callgrind per proxy.
    pub callgrind: Vec<(Kind, Result<Callgrind, String>)>,
    /// Criterion results, or why there are none.
    pub micro: Option<Result<Vec<Micro>, String>>,
    /// Free-form notes (tools missing, fallbacks used).
    pub notes: Vec<String>,
    /// The L4 (TCP service) scenarios, when they ran.
    pub l4: Option<crate::l4::Results>,
}

/// A metric of a run, with its name and direction.
struct Metric {
    name: &'static str,
    higher_is_better: bool,
    get: fn(&Run) -> f64,
    fmt: fn(f64) -> String,
}

/// Indices into [`METRICS`] of the figures the summary shows.
const REQ_S: usize = 0;
const CPU: usize = 1;
const P50: usize = 2;
const P99: usize = 3;
const P999: usize = 4;
const UPSTREAM_PEAK: usize = 8;

const METRICS: [Metric; 9] = [
    Metric {
        name: "req/s",
        higher_is_better: true,
        get: |r| r.load.rps,
        fmt: fmt_rate,
    },
    Metric {
        name: "CPU µs/req",
        higher_is_better: false,
        get: |r| r.cpu_us_per_req,
        fmt: |v| format!("{v:.1}"),
    },
    Metric {
        name: "p50",
        higher_is_better: false,
        get: |r| r.load.p50_us,
        fmt: fmt_us,
    },
    Metric {
        name: "p99",
        higher_is_better: false,
        get: |r| r.load.p99_us,
        fmt: fmt_us,
    },
    Metric {
        name: "p99.9",
        higher_is_better: false,
        get: |r| r.load.p999_us,
        fmt: fmt_us,
    },
    Metric {
        name: "errors",
        higher_is_better: false,
        get: |r| (r.load.status_errors + r.load.socket_errors) as f64,
        fmt: |v| format!("{v:.0}"),
    },
    Metric {
        name: "peak RSS",
        higher_is_better: false,
        get: |r| r.peak_rss_kb as f64,
        fmt: fmt_kb,
    },
    Metric {
        name: "upstream conns opened",
        higher_is_better: false,
        get: |r| r.upstream_opened.map_or(f64::NAN, |n| n as f64),
        fmt: |v| format!("{v:.0}"),
    },
    Metric {
        name: "upstream conns peak open",
        higher_is_better: false,
        get: |r| r.upstream_peak.map_or(f64::NAN, |n| n as f64),
        fmt: |v| format!("{v:.0}"),
    },
];

fn fmt_rate(v: f64) -> String {
    if v >= 10_000.0 {
        format!("{:.1}k", v / 1000.0)
    } else {
        format!("{v:.0}")
    }
}

fn fmt_us(v: f64) -> String {
    if v.is_nan() {
        "–".to_string()
    } else if v >= 1000.0 {
        format!("{:.2} ms", v / 1000.0)
    } else {
        format!("{v:.0} µs")
    }
}

fn fmt_kb(v: f64) -> String {
    format!("{:.1} MB", v / 1024.0)
}

/// Median, min and max of values (the median of an even count is the mean
/// of the middle two).
pub fn spread(values: &[f64]) -> Option<(f64, f64, f64)> {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    let median = if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    };
    Some((median, v[0], v[n - 1]))
}

fn cell(values: &[f64], fmt: fn(f64) -> String) -> String {
    match spread(values) {
        None => "n/a".into(),
        Some((m, lo, hi)) if values.len() == 1 || lo == hi => fmt(m),
        Some((m, lo, hi)) => format!("{} ({}–{})", fmt(m), fmt(lo), fmt(hi)),
    }
}

fn ratio_cell(ratios: &[f64]) -> String {
    match spread(ratios) {
        None => "n/a".into(),
        Some((m, _, _)) if ratios.len() == 1 => format!("{m:.2}×"),
        Some((m, lo, hi)) => format!("**{m:.2}×** ({lo:.2}–{hi:.2})"),
    }
}

impl Report {
    fn runs_of(&self, s: Scenario, k: Kind) -> Vec<&Run> {
        let mut v: Vec<&Run> = self
            .runs
            .iter()
            .filter(|r| r.scenario == s && r.proxy == Some(k))
            .collect();
        v.sort_by_key(|r| r.round);
        v
    }

    fn values(&self, s: Scenario, k: Kind, m: &Metric) -> Vec<f64> {
        self.runs_of(s, k).iter().map(|r| (m.get)(r)).collect()
    }

    /// rauta ÷ peer per round (rounds where both ran).
    fn paired(&self, s: Scenario, peer: Kind, m: &Metric) -> Vec<(usize, f64)> {
        let peer_runs = self.runs_of(s, peer);
        self.runs_of(s, Kind::Rauta)
            .iter()
            .filter_map(|r| {
                let p = peer_runs.iter().find(|p| p.round == r.round)?;
                let (a, b) = ((m.get)(r), (m.get)(p));
                (b > 0.0 && a.is_finite()).then(|| (r.round, a / b))
            })
            .collect()
    }

    fn peers(&self) -> Vec<Kind> {
        self.proxies
            .iter()
            .copied()
            .filter(|k| *k != Kind::Rauta)
            .collect()
    }

    fn median_of(&self, s: Scenario, k: Kind, m: &Metric) -> Option<f64> {
        spread(&self.values(s, k, m)).map(|x| x.0)
    }

    /// The whole Markdown document.
    pub fn markdown(&self) -> String {
        let mut md = String::new();
        let peers = self.peers();
        let has_rauta = self.proxies.contains(&Kind::Rauta);
        md.push_str("# rauta load benchmark: latest results\n\n");
        md.push_str("Written by `scripts/bench.sh` (see `bench/README.md` for what each figure means and its caveats). ");
        md.push_str("Medians over the rounds, min–max in brackets; ratios are rauta ÷ peer, computed per round from adjacent runs, then the median (min–max) of those.\n\n");
        if let Some(m) = &self.machine {
            let _ = writeln!(
                md,
                "**Machine:** {} CPUs ({}), {} MiB RAM, kernel {}, {}. **Run:** {} UTC, suite took {:.0} s.\n",
                m.nproc,
                m.cpu_model,
                m.mem_mib,
                m.kernel,
                m.os,
                self.started,
                self.elapsed.as_secs_f64()
            );
        }
        if !self.versions.is_empty() {
            let v: Vec<String> = self
                .versions
                .iter()
                .map(|(k, v)| format!("{k} {v}"))
                .collect();
            let _ = writeln!(md, "**Versions:** {}.\n", v.join(", "));
        }
        for line in &self.setup {
            let _ = writeln!(md, "- {line}");
        }
        md.push('\n');

        // HTTP sections only when HTTP scenarios ran (an L4-only run has
        // none of their figures).
        let http = !self.scenarios.is_empty();
        // The summary: key metrics as ratios.
        if http && has_rauta && !peers.is_empty() {
            md.push_str("## rauta ÷ peers\n\n");
            md.push_str("↑: above 1× means rauta is better; ↓: below 1× means rauta is better.\n\n| scenario | metric |");
            for p in &peers {
                let _ = write!(md, " rauta ÷ {} |", p.name());
            }
            md.push_str("\n|---|---|");
            for _ in &peers {
                md.push_str("---|");
            }
            md.push('\n');
            for s in &self.scenarios {
                let key: &[usize] = match s {
                    Scenario::FixedRate => &[CPU, P50, P99, P999],
                    // openssl s_time and h2load report no percentiles.
                    Scenario::TlsNewConnection | Scenario::H2Tls => &[REQ_S, CPU],
                    Scenario::GrpcUnary => &[REQ_S, CPU, UPSTREAM_PEAK],
                    _ => &[REQ_S, CPU, P99],
                };
                for (i, mi) in key.iter().enumerate() {
                    let m = &METRICS[*mi];
                    let title = if i == 0 { title(*s) } else { String::new() };
                    let arrow = if m.higher_is_better { "↑" } else { "↓" };
                    let _ = write!(md, "| {title} | {} {arrow} |", m.name);
                    for p in &peers {
                        let r: Vec<f64> = self.paired(*s, *p, m).iter().map(|x| x.1).collect();
                        let _ = write!(md, " {} |", ratio_cell(&r));
                    }
                    md.push('\n');
                }
            }
            md.push('\n');
        }

        // Targets.
        if http && has_rauta {
            self.targets(&mut md);
        }

        // Absolute figures.
        if http {
            md.push_str("## Figures per scenario\n\n");
        }
        for s in &self.scenarios {
            let _ = writeln!(md, "### {}\n", title(*s));
            let _ = writeln!(md, "{}\n", describe(*s));
            for b in self.baselines.iter().filter(|b| b.scenario == *s) {
                let backend_us = b.backend_util * b.load.secs * 1e6 / b.load.requests.max(1) as f64;
                let _ = match s {
                    Scenario::GrpcUnary => writeln!(
                        md,
                        "Reference: h2load straight at the gRPC origin (no proxy): {} calls/s, origin {backend_us:.1} µs CPU/call, origin + h2load {:.2} cores of CPU 0.\n",
                        fmt_rate(b.load.rps),
                        b.backend_util + b.loadgen_util
                    ),
                    _ => writeln!(
                        md,
                        "Reference: {} straight at the backend (no proxy): {} req/s, p99 {}, backend {backend_us:.1} µs CPU/req.\n",
                        b.load.tool,
                        fmt_rate(b.load.rps),
                        fmt_us(b.load.p99_us),
                    ),
                };
            }
            md.push_str("| metric |");
            for k in &self.proxies {
                let _ = write!(md, " {} |", k.name());
            }
            md.push_str("\n|---|");
            for _ in &self.proxies {
                md.push_str("---|");
            }
            md.push('\n');
            let has_runs = self.runs.iter().any(|r| r.scenario == *s);
            for m in &METRICS {
                // Leave out figures this scenario's tools do not give
                // (percentiles from s_time and h2load, upstream
                // connections outside gRPC).
                let given = self
                    .proxies
                    .iter()
                    .any(|k| self.values(*s, *k, m).iter().any(|v| v.is_finite()));
                if has_runs && !given {
                    continue;
                }
                let _ = write!(md, "| {} |", m.name);
                for k in &self.proxies {
                    let _ = write!(md, " {} |", cell(&self.values(*s, *k, m), m.fmt));
                }
                md.push('\n');
            }
            // CPU use on each side, to show which side limited the run.
            md.push_str("| proxy CPU / backend CPU / load generator CPU (cores) |");
            for k in &self.proxies {
                let runs = self.runs_of(*s, *k);
                let f = |g: fn(&Run) -> f64| {
                    spread(&runs.iter().map(|r| g(r)).collect::<Vec<_>>()).map_or(f64::NAN, |x| x.0)
                };
                let _ = write!(
                    md,
                    " {:.2} / {:.2} / {:.2} |",
                    f(|r| r.proxy_util),
                    f(|r| r.backend_util),
                    f(|r| r.loadgen_util)
                );
            }
            md.push('\n');
            if has_rauta && !peers.is_empty() {
                md.push_str("\nPer-round paired ratios (rauta ÷ peer, round 1, 2, …):\n\n");
                for m in METRICS.iter().take(4) {
                    for p in &peers {
                        let r = self.paired(*s, *p, m);
                        if r.is_empty() {
                            continue;
                        }
                        let list: Vec<String> = r.iter().map(|(_, x)| format!("{x:.2}")).collect();
                        let _ = writeln!(md, "- {} vs {}: {}", m.name, p.name(), list.join(", "));
                    }
                }
            }
            let tools: Vec<&str> = self
                .runs
                .iter()
                .filter(|r| r.scenario == *s)
                .map(|r| r.load.tool)
                .collect();
            if let Some(t) = tools.first() {
                let _ = writeln!(md, "\nLoad generator: {t}.");
            }
            md.push('\n');
        }

        if let Some(l4) = &self.l4 {
            l4.markdown(&mut md);
        }
        if http {
            self.costs(&mut md);
            self.machine_load(&mut md);
        }
        self.micro(&mut md);
        if !self.notes.is_empty() {
            md.push_str("## Notes\n\n");
            for n in &self.notes {
                let _ = writeln!(md, "- {n}");
            }
            md.push('\n');
        }
        md
    }

    fn targets(&self, md: &mut String) {
        md.push_str("## Targets (issue 6)\n\n| target | figure | met? |\n|---|---|---|\n");
        let peers = self.peers();
        let yes = |ok: bool| if ok { "yes" } else { "**no**" };
        let s = Scenario::KeepAlive;
        if self.scenarios.contains(&s) {
            let rps = &METRICS[REQ_S];
            let cpu = &METRICS[CPU];
            let best_rps = peers
                .iter()
                .filter_map(|p| Some((*p, self.median_of(s, *p, rps)?)))
                .max_by(|a, b| a.1.total_cmp(&b.1));
            if let (Some((p, best)), Some(r)) = (best_rps, self.median_of(s, Kind::Rauta, rps)) {
                let _ = writeln!(
                    md,
                    "| small GET req/s ≥ 1.3× best peer | rauta {} vs {} {} = {:.2}× | {} |",
                    fmt_rate(r),
                    p.name(),
                    fmt_rate(best),
                    r / best,
                    yes(r / best >= 1.3)
                );
            }
            let best_cpu = peers
                .iter()
                .filter_map(|p| Some((*p, self.median_of(s, *p, cpu)?)))
                .min_by(|a, b| a.1.total_cmp(&b.1));
            if let (Some((p, best)), Some(r)) = (best_cpu, self.median_of(s, Kind::Rauta, cpu)) {
                let _ = writeln!(
                    md,
                    "| small GET CPU µs/req ≤ 0.7× best peer | rauta {r:.1} vs {} {best:.1} = {:.2}× | {} |",
                    p.name(),
                    r / best,
                    yes(r / best <= 0.7)
                );
            }
        }
        let s = Scenario::FixedRate;
        if self.scenarios.contains(&s) {
            let p99 = &METRICS[P99];
            let best = peers
                .iter()
                .filter_map(|p| Some((*p, self.median_of(s, *p, p99)?)))
                .min_by(|a, b| a.1.total_cmp(&b.1));
            if let (Some((p, best)), Some(r)) = (best, self.median_of(s, Kind::Rauta, p99)) {
                let _ = writeln!(
                    md,
                    "| fixed-rate p99 ≤ best peer | rauta {} vs {} {} | {} |",
                    fmt_us(r),
                    p.name(),
                    fmt_us(best),
                    yes(r <= best)
                );
            }
        }
        if let Some(st) = self
            .startups
            .iter()
            .find(|st| st.kind == Kind::Rauta && st.table == "basic")
        {
            let mb = st.idle_rss_kb as f64 / 1024.0;
            let _ = writeln!(md, "| idle RSS < 20 MB | {mb:.1} MB | {} |", yes(mb < 20.0));
        }
        if let Some(Ok(micro)) = &self.micro {
            let find = |id: &str| micro.iter().find(|m| m.id == id).map(Micro::ns_per_op);
            if let Some(ns) = find("route_lookup/100000") {
                let _ = writeln!(
                    md,
                    "| route lookup < 100 ns at 100 000 rules | {ns:.1} ns | {} |",
                    yes(ns < 100.0)
                );
            }
            if let Some(ns) = find("maglev_pick/pick_100_endpoints") {
                let _ = writeln!(
                    md,
                    "| Maglev lookup < 10 ns | {ns:.2} ns | {} |",
                    yes(ns < 10.0)
                );
            }
        }
        md.push('\n');
    }

    fn costs(&self, md: &mut String) {
        md.push_str("## Per-request costs and memory\n\n");
        md.push_str("`perf stat` counts on every thread of the proxy during a separate small-GET keep-alive run (reschedule IPIs: `irq_vectors:reschedule_entry` taken while a proxy thread ran, e.g. io_uring task_work notifications); callgrind counts user-space instructions (`Ir`) of the proxy under valgrind between `callgrind_control -z` and `-d`, 16 connections.\n\n");
        md.push_str("| proxy | syscalls/req | io_uring_enter/req | io_uring SQEs/req | reschedule IPIs/req | context switches/req | user instructions/req (callgrind) | idle RSS / PSS | start-up; idle RSS / PSS with the many-routes table | first request to every route: time, CPU µs/req, RSS after |\n|---|---|---|---|---|---|---|---|---|---|\n");
        for k in &self.proxies {
            let perf = self.perf.iter().find(|(p, _)| p == k).map(|(_, r)| r);
            let ev = |name: &str| -> String {
                let i = PERF_EVENTS.iter().position(|e| *e == name);
                match (perf, i) {
                    (Some(Ok(p)), Some(i)) => p
                        .per_request
                        .get(i)
                        .copied()
                        .flatten()
                        .map_or("n/a".into(), |v| format!("{v:.2}")),
                    (Some(Err(_)), _) => "failed".into(),
                    _ => "n/a".into(),
                }
            };
            let cg = match self.callgrind.iter().find(|(p, _)| p == k).map(|(_, r)| r) {
                Some(Ok(c)) => format!("{:.0} ({} req)", c.instructions_per_request, c.requests),
                Some(Err(_)) => "failed (see notes)".into(),
                None => "not run".into(),
            };
            let idle = self
                .startups
                .iter()
                .find(|s| s.kind == *k && s.table == "basic")
                .map_or("n/a".into(), |s| {
                    format!(
                        "{} / {}",
                        fmt_kb(s.idle_rss_kb as f64),
                        fmt_kb(s.idle_pss_kb as f64)
                    )
                });
            let many = self
                .startups
                .iter()
                .find(|s| s.kind == *k && s.table.ends_with("routes"))
                .map_or("n/a".into(), |s| {
                    format!(
                        "{:.1} s; {} / {}",
                        s.took.as_secs_f64(),
                        fmt_kb(s.idle_rss_kb as f64),
                        fmt_kb(s.idle_pss_kb as f64)
                    )
                });
            let walk = self
                .walks
                .iter()
                .find(|w| w.kind == *k)
                .map_or("n/a".into(), |w| {
                    format!(
                        "{:.1} s, {:.0} µs, {}",
                        w.took.as_secs_f64(),
                        w.cpu_us_per_req,
                        fmt_kb(w.rss_after_kb as f64)
                    )
                });
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} | {} | {} | {cg} | {idle} | {many} | {walk} |",
                k.name(),
                ev("raw_syscalls:sys_enter"),
                ev("syscalls:sys_enter_io_uring_enter"),
                ev("io_uring:io_uring_submit_req"),
                ev("irq_vectors:reschedule_entry"),
                ev("context-switches"),
            );
        }
        for (k, r) in &self.perf {
            if let Err(e) = r {
                let _ = writeln!(md, "\nperf stat on {}: {e}", k.name());
            }
        }
        for (k, r) in &self.callgrind {
            if let Err(e) = r {
                let _ = writeln!(md, "\ncallgrind on {}: {e}", k.name());
            }
        }
        md.push('\n');
    }

    fn machine_load(&self, md: &mut String) {
        md.push_str("## Load from other processes\n\n");
        let disturbed: Vec<&Run> = self.runs.iter().filter(|r| r.disturbed()).collect();
        let worst = self
            .runs
            .iter()
            .map(|r| r.other_cpus)
            .fold(0.0f64, f64::max);
        let _ = writeln!(
            md,
            "A run is flagged when processes outside the benchmark used more than {OTHER_LOAD_FLAG:.2} CPUs' worth during it (from /proc/*/stat: each process's own CPU time plus its reaped children's, so processes that came and went count through their parents; kernel threads are left out). Flagged: {} of {} runs; the most any run saw was {worst:.2} CPUs.\n",
            disturbed.len(),
            self.runs.len()
        );
        for r in disturbed {
            let top = r
                .top_other
                .as_ref()
                .map_or(String::new(), |(n, c)| format!(", busiest {n} {c:.2}"));
            let _ = writeln!(
                md,
                "- ⚠ {} round {} {}: other processes {:.2} CPUs{top}, load average {:.2}",
                r.scenario.id(),
                r.round,
                r.proxy.map_or("direct", Kind::name),
                r.other_cpus,
                r.loadavg
            );
        }
        md.push('\n');
    }

    fn micro(&self, md: &mut String) {
        md.push_str(
            "## Micro-benchmarks (criterion, `cargo bench -p rauta-bench --bench hot_path --bench metrics`)\n\n",
        );
        match &self.micro {
            None => md.push_str("Not run (no `--criterion-dir`).\n\n"),
            Some(Err(e)) => {
                let _ = writeln!(md, "Not available: {e}\n");
            }
            Some(Ok(list)) => {
                md.push_str(
                    "| benchmark | median per operation | per iteration |\n|---|---|---|\n",
                );
                for m in list {
                    let per_iter = match m.elements {
                        Some(n) if n > 1 => format!("{} ({n} ops)", fmt_ns(m.ns_per_iter)),
                        _ => fmt_ns(m.ns_per_iter),
                    };
                    let _ = writeln!(md, "| {} | {} | {per_iter} |", m.id, fmt_ns(m.ns_per_op()));
                }
                md.push('\n');
            }
        }
    }

    /// Every run as CSV (one header line).
    pub fn csv(&self) -> String {
        let mut c = String::from("scenario,round,proxy,tool,requests,secs,rps,p50_us,p99_us,p999_us,status_errors,socket_errors,cpu_us_per_req,proxy_cores,backend_cores,loadgen_cores,peak_rss_kb,cpu0_busy,cpu1_busy,other_cpus,loadavg,upstream_opened,upstream_peak\n");
        let opt = |v: Option<u64>| v.map_or(String::new(), |n| n.to_string());
        for r in self.baselines.iter().chain(&self.runs) {
            let busy = |i: usize| r.cpu_busy.get(i).copied().unwrap_or(f64::NAN);
            let _ = writeln!(
                c,
                "{},{},{},{},{},{:.3},{:.1},{:.0},{:.0},{:.0},{},{},{:.2},{:.3},{:.3},{:.3},{},{:.3},{:.3},{:.3},{:.2},{},{}",
                r.scenario.id(),
                r.round,
                r.proxy.map_or("direct", Kind::name),
                r.load.tool,
                r.load.requests,
                r.load.secs,
                r.load.rps,
                r.load.p50_us,
                r.load.p99_us,
                r.load.p999_us,
                r.load.status_errors,
                r.load.socket_errors,
                r.cpu_us_per_req,
                r.proxy_util,
                r.backend_util,
                r.loadgen_util,
                r.peak_rss_kb,
                busy(0),
                busy(1),
                r.other_cpus,
                r.loadavg,
                opt(r.upstream_opened),
                opt(r.upstream_peak)
            );
        }
        c
    }
}

fn fmt_ns(v: f64) -> String {
    if v >= 1e6 {
        format!("{:.2} ms", v / 1e6)
    } else if v >= 1e3 {
        format!("{:.2} µs", v / 1e3)
    } else {
        format!("{v:.2} ns")
    }
}

/// A scenario's title.
pub fn title(s: Scenario) -> String {
    match s {
        Scenario::KeepAlive => "small GET, keep-alive, saturation".into(),
        Scenario::FixedRate => "fixed rate, latency".into(),
        Scenario::NewConnection => "new connection per request".into(),
        Scenario::Large => "1 MiB response".into(),
        Scenario::ManyRoutes => "many routes".into(),
        Scenario::Policies => "small GET, keep-alive, policy stack".into(),
        Scenario::TlsNewConnection => "TLS, new connection per request".into(),
        Scenario::TlsKeepAlive => "TLS, small GET, keep-alive".into(),
        Scenario::H2Tls => "HTTP/2 over TLS, small GET".into(),
        Scenario::GrpcUnary => "gRPC unary, h2c both sides".into(),
    }
}

fn describe(s: Scenario) -> &'static str {
    match s {
        Scenario::KeepAlive => "wrk -t1, 64 keep-alive connections, `GET /`, 36-byte body; as fast as the proxy goes.",
        Scenario::FixedRate => "oha at a fixed request rate over 32 connections with `--latency-correction` (latency measured from when each request was due, so no coordinated omission); CPU per request at a moderate load.",
        Scenario::NewConnection => "wrk, 64 connections, `Connection: close` on every request: one TCP handshake and close per request.",
        Scenario::Large => "wrk, 16 keep-alive connections, `GET /1m`: 1 MiB bodies streamed from the backend.",
        Scenario::TlsNewConnection => "16 `openssl s_time -new -www /` clients in parallel against the TLS port: a new TCP connection and a full TLS 1.3 handshake (no resumption) per request, one HTTP/1.0 GET each. req/s is handshakes per second; s_time reports no latencies. All three proxies serve the same ECDSA P-256 certificate.",
        Scenario::TlsKeepAlive => "wrk (OpenSSL), 64 keep-alive TLS 1.3 connections to the TLS port, `GET /`, 36-byte body; as fast as the proxy goes.",
        Scenario::Policies => "As the keep-alive scenario, on one rule with rewrite-target (regex mode), CORS for one origin (the load sends it), an allow-list and limit-rps 1000000 (far above the load); nginx with the same annotations as ingress-nginx renders them (regex location, rewrite, allow/deny, limit_req, add_header always); HAProxy with the equivalent rules.",
        Scenario::H2Tls => "h2load -t1, 16 TLS connections (ALPN h2) × 10 concurrent streams (`-m 10`) to the TLS port, `GET /`, 36-byte body; HTTP/1.1 upstream to the same backend as the other scenarios. nginx `listen … ssl http2`, HAProxy `bind … ssl crt … alpn h2,http/1.1`, rauta `--listen-tls` (ALPN h2 preferred). h2load gives no latency percentiles. As fast as the proxy goes.",
        Scenario::GrpcUnary => "h2load -t1, 16 h2c connections (prior knowledge) × 10 concurrent streams, each a unary gRPC call: POST `/bench.Echo/Unary`, `content-type: application/grpc`, `te: trailers`, a 40-byte length-prefixed message; the origin (tokio + h2, on CPU 0) echoes it in one DATA frame with trailers `grpc-status: 0`. rauta: one port for HTTP/1.1 and h2c, an Ingress annotated `backend-protocol: GRPC` (HTTP/2 cleartext upstream, calls multiplexed over a connection per shard and endpoint); nginx: `listen … http2` + `grpc_pass grpc://` with upstream keepalive 320 (ingress-nginx's default); HAProxy: `bind … proto h2` + `server … proto h2`, `http-reuse always`. req/s counts calls answered (h2load cannot see `grpc-status`; the origin always sends 0). Upstream connections are counted at the origin on a port of each proxy's own: opened during the run, and the most open at once (kept-alive ones included).",
        Scenario::ManyRoutes => "Each proxy loaded with the generated table (hosts × 100 Prefix paths each; nginx: one `server` per host with `location /pN/` and `location = /pN`; HAProxy: one `map_beg` over host+path); wrk, 64 connections, a Lua script picks a random host and path per request.",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(s: Scenario, round: usize, proxy: Kind, rps: f64, cpu: f64) -> Run {
        Run {
            scenario: s,
            round,
            proxy: Some(proxy),
            load: Outcome {
                tool: "wrk",
                requests: (rps * 8.0) as u64,
                secs: 8.0,
                rps,
                p50_us: 100.0,
                p99_us: 1000.0,
                p999_us: 2000.0,
                status_errors: 0,
                socket_errors: 0,
            },
            cpu_us_per_req: cpu,
            proxy_util: 1.0,
            backend_util: 0.3,
            loadgen_util: 0.4,
            peak_rss_kb: 10_240,
            cpu_busy: vec![0.7, 1.0],
            other_cpus: if round == 2 { 0.5 } else { 0.0 },
            top_other: None,
            loadavg: 1.0,
            upstream_opened: None,
            upstream_peak: None,
        }
    }

    #[test]
    fn spread_is_median_min_max() {
        assert_eq!(spread(&[3.0, 1.0, 2.0]), Some((2.0, 1.0, 3.0)));
        assert_eq!(spread(&[1.0, 3.0]), Some((2.0, 1.0, 3.0)));
        assert_eq!(spread(&[]), None);
    }

    #[test]
    fn paired_ratios_and_markdown() {
        let s = Scenario::KeepAlive;
        let mut report = Report {
            proxies: vec![Kind::Nginx, Kind::Haproxy, Kind::Rauta],
            scenarios: vec![s],
            ..Report::default()
        };
        for round in 1..=3 {
            let f = round as f64;
            report
                .runs
                .push(run(s, round, Kind::Nginx, 30_000.0 * f, 30.0));
            report
                .runs
                .push(run(s, round, Kind::Haproxy, 20_000.0, 25.0));
            report
                .runs
                .push(run(s, round, Kind::Rauta, 15_000.0 * f, 45.0));
        }
        let ratios = report.paired(s, Kind::Nginx, &METRICS[REQ_S]);
        assert_eq!(ratios.len(), 3);
        assert!(ratios.iter().all(|(_, r)| (r - 0.5).abs() < 1e-9));
        let md = report.markdown();
        assert!(md.contains("**0.50×**"), "{md}");
        assert!(md.contains("small GET req/s ≥ 1.3× best peer"), "{md}");
        assert!(md.contains("Flagged: 3 of 9 runs"), "{md}");
        assert!(!md.contains("upstream conns"), "{md}");
        let csv = report.csv();
        assert_eq!(csv.lines().count(), 10);
    }

    #[test]
    fn grpc_upstream_connections_and_missing_percentiles() {
        let s = Scenario::GrpcUnary;
        let mut report = Report {
            proxies: vec![Kind::Nginx, Kind::Rauta],
            scenarios: vec![s],
            ..Report::default()
        };
        for round in 1..=2 {
            for (kind, peak) in [(Kind::Nginx, 160), (Kind::Rauta, 2)] {
                let mut r = run(s, round, kind, 20_000.0, 30.0);
                r.load.p50_us = f64::NAN;
                r.load.p99_us = f64::NAN;
                r.load.p999_us = f64::NAN;
                r.upstream_opened = Some(0);
                r.upstream_peak = Some(peak);
                report.runs.push(r);
            }
        }
        let md = report.markdown();
        assert!(
            md.contains("| upstream conns peak open | 160 | 2 |"),
            "{md}"
        );
        assert!(
            md.contains("| upstream conns peak open ↓ | **0.01×**"),
            "{md}"
        );
        assert!(!md.contains("| p50 |"), "{md}");
        assert!(report
            .csv()
            .lines()
            .nth(1)
            .is_some_and(|l| l.ends_with(",0,160")));
    }
}
