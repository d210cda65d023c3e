//! rauta-bench: the side-by-side load benchmark. Starts one backend and
//! nginx, HAProxy and rauta in front of it (each proxy on the same CPU, the
//! backend and load generator on the other), runs every scenario round by
//! round with the proxies interleaved, measures throughput, latency, CPU per
//! request, memory, syscalls and instructions, and writes a Markdown report.
//! `scripts/bench.sh` installs the tools, builds, and runs this. With
//! `--serve-grpc-origin` it is instead the gRPC origin (`origin.rs`) that
//! the driver starts for the `grpc-unary` scenario; with
//! `--serve-tcp-origin` or `--tcp-client` the TCP origin or load client of
//! the L4 scenarios (`l4.rs`).

#![forbid(unsafe_code)]

mod l4;
mod load;
mod micro;
mod origin;
mod peers;
mod procs;
mod profile;
mod report;
mod resilience;
mod sys;
mod workload;

use std::cell::Cell;
use std::fs;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Parser;

use load::{Scenario, Settings};
use peers::{Env, GrpcPorts, Kind, Launch, Proxy};
use procs::Child;
use report::{Report, Run, Startup, Walk};
use workload::{Routes, Table};

/// Other processes' CPUs' worth below which the machine counts as quiet.
const QUIET: f64 = 0.25;

/// Command line of `rauta-bench`.
#[derive(Debug, Parser)]
#[command(about = "Side-by-side load benchmark of rauta, nginx and HAProxy on 127.0.0.1")]
struct Args {
    /// The rauta binary (a release build).
    #[arg(long, default_value = "target/release/rauta")]
    rauta: PathBuf,
    /// Where the Markdown report goes (a CSV of every run goes beside it).
    #[arg(long, default_value = "bench/results/latest.md")]
    out: PathBuf,
    /// Work directory for configs and logs (default: a new one in /tmp).
    #[arg(long)]
    work_dir: Option<PathBuf>,
    /// Seconds per measured run.
    #[arg(long, default_value_t = 7)]
    duration: u64,
    /// Seconds of warm-up per proxy before a scenario's first round.
    #[arg(long, default_value_t = 1)]
    warmup: u64,
    /// Rounds; each round runs every proxy once, in the same order.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Request rate of the fixed-rate scenario.
    #[arg(long, default_value_t = 5000)]
    rate: u32,
    /// rauta's many-routes table as Gateway API HTTPRoutes (one per host,
    /// on an HTTP-only Gateway) instead of Ingresses; the peers are unchanged.
    #[arg(long)]
    gateway_api: bool,
    /// Rules in the many-routes table.
    #[arg(long, default_value_t = 100_000)]
    routes: usize,
    /// Scenarios to run (keepalive, fixed-rate, new-conn, 1mb,
    /// tls-new-conn, tls-keepalive, h2-tls, routes, policies, grpc-unary;
    /// and, not in the default list, the L4 scenarios tcp-stream and
    /// tcp-conns, and the resilience scenarios kill-pod, kill-pod-stop and
    /// idle, reported to --resilience-out).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "keepalive,fixed-rate,new-conn,1mb,tls-new-conn,tls-keepalive,h2-tls,routes,grpc-unary"
    )]
    scenarios: Vec<String>,
    /// Proxies in run order.
    #[arg(long, value_delimiter = ',', default_value = "nginx,haproxy,rauta")]
    proxies: Vec<String>,
    /// Skip the `perf stat` pass.
    #[arg(long)]
    no_perf: bool,
    /// Seconds of the `perf stat` run per proxy.
    #[arg(long, default_value_t = 4)]
    perf_secs: u64,
    /// Proxies to run under callgrind (empty: none).
    #[arg(long, value_delimiter = ',', default_value = "rauta,nginx,haproxy")]
    callgrind: Vec<String>,
    /// Seconds of load under callgrind per proxy.
    #[arg(long, default_value_t = 4)]
    callgrind_secs: u64,
    /// Criterion's output directory to include micro-benchmark results from.
    #[arg(long)]
    criterion_dir: Option<PathBuf>,
    /// Before a run, wait up to this many seconds for other processes to
    /// use less than 0.25 CPUs (0: never wait).
    #[arg(long, default_value_t = 15)]
    quiet_wait: u64,
    /// Total seconds the whole suite may spend waiting for quiet.
    #[arg(long, default_value_t = 90)]
    quiet_budget: u64,
    /// CPU of the backend and the load generator.
    #[arg(long, default_value_t = 0)]
    client_cpu: usize,
    /// CPU of the proxy under test.
    #[arg(long, default_value_t = 1)]
    proxy_cpu: usize,
    /// Where the resilience scenarios' Markdown report goes.
    #[arg(long, default_value = "bench/results/resilience-latest.md")]
    resilience_out: PathBuf,
    /// Runs per proxy of each kill scenario.
    #[arg(long, default_value_t = 3)]
    kill_runs: usize,
    /// Seconds of load in a kill run (long enough to see nginx's
    /// fail_timeout of 10 s end after a kill at 4 s).
    #[arg(long, default_value_t = 20)]
    kill_duration: u64,
    /// Runs per proxy of kill-pod-stop.
    #[arg(long, default_value_t = 1)]
    stop_runs: usize,
    /// Seconds of load in a kill-pod-stop run (long enough for the 60 s
    /// read timeouts to fire after a stop at 4 s).
    #[arg(long, default_value_t = 80)]
    stop_duration: u64,
    /// Seconds after which the kill scenarios' clients give up on a
    /// request and close the connection (0: they wait to the run's end).
    #[arg(long, default_value_t = 0.0)]
    client_timeout: f64,
    /// Seconds into the load at which the pod dies.
    #[arg(long, default_value_t = 4.0)]
    kill_at: f64,
    /// Client connections of the kill scenarios' load.
    #[arg(long, default_value_t = 32)]
    kill_connections: usize,
    /// Seconds the proxies settle before the idle window.
    #[arg(long, default_value_t = 5)]
    idle_settle: u64,
    /// Seconds of the idle window.
    #[arg(long, default_value_t = 60)]
    idle_secs: u64,
    /// Bytes of the tcp-stream download (K, M, G suffixes: binary).
    #[arg(long, default_value = "1G", value_parser = l4::parse_size)]
    tcp_bytes: u64,
    /// Concurrent connect-send-read-close loops of tcp-conns.
    #[arg(long, default_value_t = 64)]
    tcp_concurrency: usize,
    /// Run HAProxy's L4 scenarios with `option splice-auto` (off, as
    /// HAProxy ships, unless given).
    #[arg(long)]
    l4_haproxy_splice: bool,
    /// Internal: serve as the TCP origin of the L4 scenarios on this port
    /// (127.0.0.1) and nothing else.
    #[arg(long, hide = true)]
    serve_tcp_origin: Option<u16>,
    /// Internal: be the L4 scenarios' client (`stream` or `conns`) against
    /// --tcp-target, print one result line, exit.
    #[arg(long, hide = true, requires = "tcp_target")]
    tcp_client: Option<String>,
    /// Internal: the TCP client's target.
    #[arg(long, hide = true)]
    tcp_target: Option<SocketAddr>,
    /// Internal: serve as the gRPC origin on these ports (127.0.0.1) and
    /// nothing else; the driver starts this itself.
    #[arg(long, value_delimiter = ',', hide = true)]
    serve_grpc_origin: Vec<u16>,
    /// Internal: the gRPC origin's stats port.
    #[arg(long, hide = true, requires = "serve_grpc_origin")]
    grpc_origin_stats: Option<u16>,
}

fn main() {
    let args = Args::parse();
    let result = if let Some(port) = args.serve_tcp_origin {
        l4::serve_origin(port)
    } else if let (Some(mode), Some(target)) = (&args.tcp_client, args.tcp_target) {
        l4::client(
            mode,
            target,
            args.tcp_bytes,
            args.tcp_concurrency,
            Duration::from_secs(args.duration),
        )
    } else if args.serve_grpc_origin.is_empty() {
        run(args)
    } else {
        origin::serve(&args.serve_grpc_origin, args.grpc_origin_stats.unwrap_or(0))
    };
    if let Err(e) = result {
        eprintln!("rauta-bench: {e:#}");
        std::process::exit(1);
    }
}

fn run(args: Args) -> Result<()> {
    let started = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, Arc::clone(&stop))?;
    }
    // The resilience scenarios have their own driver and report.
    let mut scenarios: Vec<Scenario> = Vec::new();
    let mut resilient: Vec<resilience::Scenario> = Vec::new();
    let mut tcp: Vec<l4::Scenario> = Vec::new();
    for id in args.scenarios.iter().filter(|s| !s.is_empty()) {
        if let Some(r) = resilience::Scenario::parse(id) {
            resilient.push(r);
        } else if let Some(t) = l4::Scenario::parse(id) {
            tcp.push(t);
        } else {
            scenarios.push(Scenario::parse(id)?);
        }
    }
    let proxies: Vec<Kind> = args
        .proxies
        .iter()
        .filter(|s| !s.is_empty())
        .map(|s| Kind::parse(s))
        .collect::<Result<_>>()?;
    let callgrind: Vec<Kind> = args
        .callgrind
        .iter()
        .filter(|s| !s.is_empty())
        .map(|s| Kind::parse(s))
        .collect::<Result<_>>()?;
    if args.rounds == 0 || args.duration == 0 {
        bail!("--rounds and --duration must be positive");
    }

    let machine = sys::machine();
    let ncpu = machine.nproc;
    if args.client_cpu >= ncpu || args.proxy_cpu >= ncpu || args.client_cpu == args.proxy_cpu {
        bail!(
            "need two distinct CPUs below {ncpu} (client {}, proxy {})",
            args.client_cpu,
            args.proxy_cpu
        );
    }
    let mut report = Report {
        machine: Some(machine),
        started: command_line("date", &["-u", "+%Y-%m-%d %H:%M"]).unwrap_or_default(),
        proxies: proxies.clone(),
        scenarios: scenarios.clone(),
        ..Report::default()
    };

    // wrk drives only the HTTP scenarios.
    let tools: &[&str] = if scenarios.is_empty() {
        &["taskset", "nginx"]
    } else {
        &["taskset", "wrk", "nginx"]
    };
    for tool in tools {
        if !on_path(tool) {
            bail!("{tool} is not installed (scripts/bench.sh installs it)");
        }
    }
    if proxies.contains(&Kind::Haproxy) && !on_path("haproxy") {
        bail!("haproxy is not installed (scripts/bench.sh installs it)");
    }
    let http2 = scenarios
        .iter()
        .any(|s| matches!(s, Scenario::H2Tls | Scenario::GrpcUnary));
    if http2 && !on_path("h2load") {
        bail!("h2load is not installed (Debian nghttp2-client; scripts/bench.sh installs it)");
    }
    if proxies.contains(&Kind::Rauta) && !args.rauta.is_file() {
        bail!(
            "{} does not exist: build it with `cargo build --release -p rauta-proxy`",
            args.rauta.display()
        );
    }
    let have_oha = on_path("oha");
    if !have_oha && scenarios.contains(&Scenario::FixedRate) {
        report.notes.push("oha is missing: the fixed-rate scenario ran as a closed loop (wrk, 4 connections), so its latencies suffer from coordinated omission.".into());
    }
    report.versions = versions(&args.rauta, have_oha);

    let dir = match &args.work_dir {
        Some(d) => d.clone(),
        None => std::env::temp_dir().join(format!("rauta-bench-{}", std::process::id())),
    };
    fs::create_dir_all(&dir).with_context(|| format!("create {}", dir.display()))?;
    let dir = dir.canonicalize()?;
    let routes = Routes::with_total(args.routes);
    let env = Env {
        dir: dir.clone(),
        rauta_bin: args.rauta.canonicalize().unwrap_or(args.rauta.clone()),
        client_cpu: args.client_cpu,
        proxy_cpu: args.proxy_cpu,
        backend_port: procs::free_port()?,
        tls: peers::TlsFiles::generate(&dir)?,
        gateway_api: args.gateway_api,
        grpc: GrpcPorts::allocate()?,
    };
    let settings = Settings {
        duration: Duration::from_secs(args.duration),
        cpu: args.client_cpu,
        rate: args.rate,
        connections: 64,
        large_connections: 16,
        have_oha,
        dir: dir.clone(),
    };
    load::write_scripts(&dir, routes)?;
    report.setup = if scenarios.is_empty() {
        vec![format!("Work directory: {}.", dir.display())]
    } else {
        vec![
        format!(
            "CPU {}: backend (nginx, 1 worker, `return 200` + a 1 MiB static file; for gRPC the origin) and the load generator (wrk -t1 / oha / openssl s_time / h2load); CPU {}: the proxy under test.",
            args.client_cpu, args.proxy_cpu
        ),
        "nginx: 1 worker, upstream keepalive 64, HTTP/1.1 upstream, proxy_buffering off. HAProxy: nbthread 1, http-reuse always, maxconn 4000. rauta: `--shards 1 --cpus 1`. All three send the same X-Forwarded-For/-Proto/-Host/-Port, X-Real-IP and X-Request-ID upstream, and offer ALPN h2 and http/1.1 on their TLS port.".into(),
        format!(
            "{} rounds × {} proxies × {} scenarios, {} s per run, {} s warm-up per proxy and scenario; order per round: {}. Before each run the driver waits (≤ {} s, ≤ {} s per suite) until other processes use < {QUIET} CPUs.",
            args.rounds,
            proxies.len(),
            scenarios.len(),
            args.duration,
            args.warmup,
            proxies.iter().map(|k| k.name()).collect::<Vec<_>>().join(", "),
            args.quiet_wait,
            args.quiet_budget
        ),
        format!(
            "Fixed rate: {} req/s. Many routes: {} rules ({} hosts × {} paths). Work directory: {}.",
            args.rate,
            routes.total(),
            routes.hosts,
            routes.paths,
            dir.display()
        ),
    ]
    };

    if http2 {
        report.setup.push(format!(
            "HTTP/2 scenarios: h2load -t1, {} connections × {} streams (`-m`). gRPC: rauta takes h2c (prior knowledge) on its client port and sends the calls over HTTP/2 cleartext (Ingress annotated `backend-protocol: GRPC`); nginx `listen … http2` + `grpc_pass grpc://` with upstream keepalive 320; HAProxy `bind … proto h2` + `server … proto h2`. The origin (rauta-bench's own, tokio + h2, CPU {}) counts each proxy's upstream connections on a port of its own.",
            load::H2_CONNECTIONS,
            load::H2_STREAMS,
            args.client_cpu
        ));
    }

    let ctx = Ctx {
        grpc: env.grpc,
        settings,
        ncpu,
        me: std::process::id(),
        stop: Arc::clone(&stop),
        quiet_wait: Duration::from_secs(args.quiet_wait),
        quiet_left: Cell::new(Duration::from_secs(args.quiet_budget)),
        waited: Cell::new(Duration::ZERO),
    };
    println!("rauta-bench: work directory {}", dir.display());
    if !resilient.is_empty() {
        if args.kill_at.is_nan()
            || args.kill_at <= 0.0
            || args.kill_runs == 0
            || args.kill_connections == 0
        {
            bail!("--kill-at, --kill-runs and --kill-connections must be positive");
        }
        let opts = resilience::Options {
            proxies: proxies.clone(),
            runs: args.kill_runs,
            duration: Duration::from_secs(args.kill_duration),
            stop_runs: args.stop_runs,
            stop_duration: Duration::from_secs(args.stop_duration),
            kill_at: Duration::from_secs_f64(args.kill_at),
            connections: args.kill_connections,
            client_timeout: (args.client_timeout > 0.0)
                .then(|| Duration::from_secs_f64(args.client_timeout)),
            proxy_cpus: format!("{},{}", args.client_cpu, args.proxy_cpu),
            idle_settle: Duration::from_secs(args.idle_settle),
            idle_window: Duration::from_secs(args.idle_secs),
        };
        let check = || ctx.check();
        let results = resilience::run(&resilient, &opts, &env, &check)?;
        let out = &args.resilience_out;
        if let Some(parent) = out.parent() {
            fs::create_dir_all(parent)?;
        }
        fs::write(out, results.markdown(&report.started, &report.versions))
            .with_context(|| format!("write {}", out.display()))?;
        println!("rauta-bench: wrote {}", out.display());
        if scenarios.is_empty() && tcp.is_empty() {
            return Ok(());
        }
    }
    if !tcp.is_empty() {
        if args.tcp_concurrency == 0 {
            bail!("--tcp-concurrency must be positive");
        }
        let opts = l4::Options {
            scenarios: tcp.clone(),
            relays: l4::Relay::for_proxies(&proxies),
            rounds: args.rounds,
            duration: Duration::from_secs(args.duration),
            warmup: Duration::from_secs(args.warmup),
            bytes: args.tcp_bytes,
            concurrency: args.tcp_concurrency,
            haproxy_splice: args.l4_haproxy_splice,
            client_cpu: args.client_cpu,
            proxy_cpu: args.proxy_cpu,
            ncpu,
            me: ctx.me,
        };
        let before_run = || -> Result<()> {
            ctx.check()?;
            if !ctx.quiet_wait.is_zero() {
                ctx.wait_for_quiet();
            }
            Ok(())
        };
        report.l4 = Some(l4::run(&opts, &env, &before_run)?);
        if scenarios.is_empty() {
            return finish(report, &args, ctx.waited.get(), started);
        }
    }
    let mut backend = peers::start_backend(&env)?;

    if scenarios.contains(&Scenario::KeepAlive) {
        let run = ctx.measure(Scenario::KeepAlive, 0, None, env.backend_port, &backend)?;
        println!("[direct] {}", progress(&run));
        report.baselines.push(run);
    }

    for table in [
        Table::Basic,
        Table::Many(routes),
        Table::Policies,
        Table::Grpc,
    ] {
        let group: Vec<Scenario> = scenarios
            .iter()
            .copied()
            .filter(|s| s.table(routes) == table)
            .collect();
        if group.is_empty() {
            continue;
        }
        // The gRPC origin, for the gRPC table only; h2load straight at it
        // first, for reference (what CPU 0 manages without a proxy).
        let mut grpc_origin = None;
        if table == Table::Grpc {
            let origin = peers::start_grpc_origin(&env)?;
            load::run(
                Scenario::GrpcUnary,
                env.grpc.direct,
                &ctx.settings,
                Duration::from_secs(args.warmup.max(1)),
            )
            .context("warm-up of the gRPC origin")?;
            let run = ctx.measure(Scenario::GrpcUnary, 0, None, env.grpc.direct, &origin)?;
            println!("[direct gRPC] {}", progress(&run));
            report.baselines.push(run);
            grpc_origin = Some(origin);
        }
        // Where upstream requests of this table go: the origin for gRPC.
        let upstream = grpc_origin.as_ref().unwrap_or(&backend);
        let mut running: Vec<Proxy> = Vec::new();
        for kind in &proxies {
            let proxy = peers::start(*kind, table, Launch::Plain, &env)?;
            println!(
                "started {} ({}) in {:.2} s, idle RSS {:.1} MB, PSS {:.1} MB",
                kind.name(),
                table_name(table),
                proxy.startup.as_secs_f64(),
                proxy.idle_rss_kb as f64 / 1024.0,
                proxy.idle_pss_kb as f64 / 1024.0
            );
            report.startups.push(Startup {
                kind: *kind,
                table: table_name(table),
                took: proxy.startup,
                idle_rss_kb: proxy.idle_rss_kb,
                idle_pss_kb: proxy.idle_pss_kb,
            });
            running.push(proxy);
        }
        for scenario in group {
            for proxy in &running {
                ctx.check()?;
                // Warm-up: connections, pools, caches; not recorded.
                // Many routes: one request to every route first, so that
                // per-route state is warm in every proxy.
                if let Table::Many(r) = table {
                    if scenario == Scenario::ManyRoutes {
                        let t = Instant::now();
                        let pids = proxy.child.pids();
                        let cpu0 = sys::cpu_ns(&pids);
                        let (ok, failed) = procs::walk(
                            SocketAddr::from(([127, 0, 0, 1], proxy.port)),
                            &route_requests(r),
                            32,
                            t + Duration::from_secs(60),
                        );
                        let walk = Walk {
                            kind: proxy.kind,
                            took: t.elapsed(),
                            cpu_us_per_req: sys::cpu_ns(&pids).saturating_sub(cpu0) as f64
                                / 1e3
                                / (ok + failed).max(1) as f64,
                            rss_after_kb: sys::rss_kb(&pids),
                        };
                        println!(
                            "walked the routes of {}: {ok} answered 200, {failed} failed, in {:.1} s, {:.0} µs CPU/req, RSS now {:.1} MB",
                            proxy.kind.name(),
                            walk.took.as_secs_f64(),
                            walk.cpu_us_per_req,
                            walk.rss_after_kb as f64 / 1024.0
                        );
                        report.walks.push(walk);
                        if failed > 0 {
                            report.notes.push(format!(
                                "The route walk before the many-routes scenario had {failed} failed requests on {}.",
                                proxy.kind.name()
                            ));
                        }
                    }
                }
                if args.warmup > 0 {
                    load::run(
                        scenario,
                        proxy.port_for(scenario),
                        &ctx.settings,
                        Duration::from_secs(args.warmup),
                    )
                    .with_context(|| format!("warm-up of {}", proxy.kind.name()))?;
                }
            }
            for round in 1..=args.rounds {
                for proxy in running.iter_mut() {
                    ctx.check()?;
                    proxy.child.check_running()?;
                    let port = proxy.port_for(scenario);
                    let run = ctx.measure(scenario, round, Some(proxy), port, upstream)?;
                    println!(
                        "[{} r{round} {}] {}",
                        scenario.id(),
                        proxy.kind.name(),
                        progress(&run)
                    );
                    report.runs.push(run);
                }
            }
        }
        if table == Table::Basic && !args.no_perf {
            for proxy in &running {
                ctx.check()?;
                let r = if on_path("perf") {
                    profile::perf_stat(proxy, &ctx.settings, args.perf_secs, &dir)
                        .map_err(|e| format!("{e:#}"))
                } else {
                    Err("perf is not installed".into())
                };
                match &r {
                    Ok(p) => println!(
                        "perf stat {}: {:?} per request",
                        proxy.kind.name(),
                        p.per_request
                    ),
                    Err(e) => println!("perf stat {}: {e}", proxy.kind.name()),
                }
                report.perf.push((proxy.kind, r));
            }
        }
        for mut proxy in running {
            proxy.child.stop(Duration::from_secs(5));
        }
        if let Some(mut origin) = grpc_origin {
            origin.stop(Duration::from_secs(5));
        }
    }

    for kind in &callgrind {
        ctx.check()?;
        if !on_path("valgrind") || !on_path("callgrind_control") {
            report
                .callgrind
                .push((*kind, Err("valgrind is not installed".into())));
            continue;
        }
        let r = profile::callgrind(*kind, &env, &ctx.settings, args.callgrind_secs)
            .map_err(|e| format!("{e:#}"));
        match &r {
            Ok(c) => println!(
                "callgrind {}: {:.0} instructions per request over {} requests",
                kind.name(),
                c.instructions_per_request,
                c.requests
            ),
            Err(e) => println!("callgrind {}: failed: {e}", kind.name()),
        }
        report.callgrind.push((*kind, r));
    }
    backend.stop(Duration::from_secs(5));
    finish(report, &args, ctx.waited.get(), started)
}

/// Adds the micro-benchmarks and the wait note, writes the report.
fn finish(mut report: Report, args: &Args, waited: Duration, started: Instant) -> Result<()> {
    if let Some(cdir) = &args.criterion_dir {
        report.micro = Some(micro::read(cdir).map_err(|e| format!("{e:#}")));
    }
    if waited >= Duration::from_secs(1) {
        report.notes.push(format!(
            "The suite waited {:.0} s in all for other processes to quieten before runs (at most {} s per run, {} s in all).",
            waited.as_secs_f64(),
            args.quiet_wait,
            args.quiet_budget
        ));
    }
    report.elapsed = started.elapsed();
    write_report(&report, &args.out)?;
    println!(
        "rauta-bench: wrote {} in {:.0} s",
        args.out.display(),
        report.elapsed.as_secs_f64()
    );
    Ok(())
}

/// Shared state of the measuring loop.
struct Ctx {
    settings: Settings,
    /// The gRPC origin's ports (its stats port says how many upstream
    /// connections each proxy opened).
    grpc: GrpcPorts,
    ncpu: usize,
    me: u32,
    stop: Arc<AtomicBool>,
    /// Longest wait for quiet before one run.
    quiet_wait: Duration,
    /// What is left of the suite's budget for waiting.
    quiet_left: Cell<Duration>,
    /// Time spent waiting so far.
    waited: Cell<Duration>,
}

impl Ctx {
    fn check(&self) -> Result<()> {
        if self.stop.load(Ordering::Relaxed) {
            bail!("interrupted");
        }
        Ok(())
    }

    /// Waits (bounded) until processes outside the benchmark use less than
    /// [`QUIET`] CPUs, so that runs land in calmer moments of a shared
    /// machine. Runs that start disturbed anyway are flagged in the report.
    fn wait_for_quiet(&self) {
        let limit = self.quiet_wait.min(self.quiet_left.get());
        let start = Instant::now();
        loop {
            let a = sys::snapshot(self.me, self.ncpu);
            std::thread::sleep(Duration::from_millis(300));
            let b = sys::snapshot(self.me, self.ncpu);
            let other = sys::interval(&a, &b).other_cpus;
            if other < QUIET || start.elapsed() >= limit || self.stop.load(Ordering::Relaxed) {
                break;
            }
            std::thread::sleep(Duration::from_millis(700));
        }
        // The first probe is part of every run; only longer waits count.
        let waited = start.elapsed().saturating_sub(Duration::from_millis(300));
        self.quiet_left
            .set(self.quiet_left.get().saturating_sub(waited));
        self.waited.set(self.waited.get() + waited);
    }

    /// One measured run: load, plus CPU time of proxy, backend (the gRPC
    /// origin for gRPC) and load generator, peak RSS, the machine's other
    /// load around it, and for gRPC the proxy's upstream connections.
    fn measure(
        &self,
        scenario: Scenario,
        round: usize,
        proxy: Option<&Proxy>,
        port: u16,
        backend: &Child,
    ) -> Result<Run> {
        if !self.quiet_wait.is_zero() {
            self.wait_for_quiet();
        }
        let proxy_pids = proxy.map(|p| p.child.pids()).unwrap_or_default();
        let backend_pids = backend.pids();
        sys::reset_peak_rss(&proxy_pids);
        let loadavg = sys::loadavg().unwrap_or(f64::NAN);
        let snap0 = sys::snapshot(self.me, self.ncpu);
        let p0 = sys::cpu_ns(&proxy_pids);
        let b0 = sys::cpu_ns(&backend_pids);
        let c0 = sys::children_cpu_ns()?;
        // gRPC: the origin's counts for this proxy's port; reading them
        // restarts the peak from the connections open now.
        let counted =
            (scenario == Scenario::GrpcUnary).then(|| self.grpc.of(proxy.map(|p| p.kind)));
        let before = match counted {
            Some(port) => Some(self.upstream_counts(port)?),
            None => None,
        };
        let t0 = Instant::now();
        let load = load::run(scenario, port, &self.settings, self.settings.duration).with_context(
            || {
                format!(
                    "{} round {round} against {}",
                    scenario.id(),
                    proxy.map_or("the backend", |p| p.kind.name())
                )
            },
        )?;
        let wall = t0.elapsed().as_secs_f64() * 1e9;
        let after = match counted {
            Some(port) => Some(self.upstream_counts(port)?),
            None => None,
        };
        let p1 = sys::cpu_ns(&proxy_pids);
        let b1 = sys::cpu_ns(&backend_pids);
        let c1 = sys::children_cpu_ns()?;
        let snap1 = sys::snapshot(self.me, self.ncpu);
        let interval = sys::interval(&snap0, &snap1);
        let proxy_ns = p1.saturating_sub(p0) as f64;
        Ok(Run {
            scenario,
            round,
            proxy: proxy.map(|p| p.kind),
            cpu_us_per_req: if load.requests == 0 {
                f64::NAN
            } else {
                proxy_ns / 1e3 / load.requests as f64
            },
            proxy_util: proxy_ns / wall,
            backend_util: b1.saturating_sub(b0) as f64 / wall,
            loadgen_util: c1.saturating_sub(c0) as f64 / wall,
            peak_rss_kb: sys::peak_rss_kb(&proxy_pids),
            cpu_busy: interval.cpu_busy,
            other_cpus: interval.other_cpus,
            top_other: interval.top_other.map(|(pid, c)| (sys::comm(pid), c)),
            loadavg,
            load,
            upstream_opened: before
                .zip(after)
                .map(|(b, a)| a.accepted.saturating_sub(b.accepted)),
            upstream_peak: after.map(|a| a.peak),
        })
    }

    /// The gRPC origin's counts for one of its ports.
    fn upstream_counts(&self, port: u16) -> Result<origin::Counts> {
        origin::counts(self.grpc.stats)?
            .into_iter()
            .find_map(|(p, c)| (p == port).then_some(c))
            .with_context(|| format!("the gRPC origin does not count port {port}"))
    }
}

fn progress(r: &Run) -> String {
    let warn = if r.disturbed() {
        format!(
            "  ⚠ other load {:.2} CPUs (busiest {})",
            r.other_cpus,
            r.top_other.as_ref().map_or("?", |t| t.0.as_str())
        )
    } else {
        String::new()
    };
    let latency = if r.load.p50_us.is_nan() {
        String::new()
    } else {
        format!(
            ", p50 {:.0} µs, p99 {:.0} µs, p99.9 {:.0} µs",
            r.load.p50_us, r.load.p99_us, r.load.p999_us
        )
    };
    let upstream = match (r.upstream_opened, r.upstream_peak) {
        (Some(o), Some(p)) => format!(", upstream connections opened {o}, peak open {p}"),
        _ => String::new(),
    };
    format!(
        "{:.0} req/s, {:.1} µs CPU/req{latency}, errors {}+{}, proxy {:.2} cores, backend {:.2}, loadgen {:.2}{upstream}{warn}",
        r.load.rps,
        r.cpu_us_per_req,
        r.load.status_errors,
        r.load.socket_errors,
        r.proxy_util,
        r.backend_util,
        r.loadgen_util
    )
}

/// (host, path) of a request to each rule of the many-routes table.
fn route_requests(r: Routes) -> Vec<(String, String)> {
    (0..r.hosts)
        .flat_map(|h| {
            (0..r.paths).map(move |p| (format!("h{h}.bench.local"), format!("/p{p}/item")))
        })
        .collect()
}

fn table_name(t: Table) -> String {
    match t {
        Table::Basic => "basic".into(),
        Table::Many(r) => format!("{} routes", r.total()),
        Table::Policies => "policy stack".into(),
        Table::Grpc => "gRPC".into(),
    }
}

fn write_report(report: &Report, out: &Path) -> Result<()> {
    if let Some(parent) = out.parent() {
        fs::create_dir_all(parent)?;
    }
    fs::write(out, report.markdown()).with_context(|| format!("write {}", out.display()))?;
    if !report.runs.is_empty() || report.l4.is_none() {
        let csv = out.with_extension("csv");
        fs::write(&csv, report.csv()).with_context(|| format!("write {}", csv.display()))?;
    }
    if let Some(l4) = &report.l4 {
        // Beside the HTTP CSV: `latest.md` → `latest-l4.csv`.
        let stem = out
            .file_stem()
            .map_or("latest".into(), |s| s.to_string_lossy());
        let csv = out.with_file_name(format!("{stem}-l4.csv"));
        fs::write(&csv, l4.csv()).with_context(|| format!("write {}", csv.display()))?;
    }
    Ok(())
}

fn on_path(tool: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|d| d.join(tool).is_file()))
}

/// First line of a command's stdout, or else its stderr.
fn command_line(program: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(program).args(args).output().ok()?;
    let text = if out.stdout.is_empty() {
        out.stderr
    } else {
        out.stdout
    };
    String::from_utf8_lossy(&text)
        .lines()
        .next()
        .map(|l| l.trim().to_string())
        .filter(|l| !l.is_empty())
}

fn versions(rauta: &Path, have_oha: bool) -> Vec<(String, String)> {
    let mut v = Vec::new();
    let git = command_line("git", &["rev-parse", "--short", "HEAD"]);
    let dirty = command_line("git", &["status", "--porcelain", "--untracked-files=no"]).is_some();
    if let Some(g) = git {
        let d = if dirty { " + local changes" } else { "" };
        v.push(("rauta".into(), format!("{g}{d} ({})", rauta.display())));
    }
    let word = |line: Option<String>, n: usize| {
        line.and_then(|l| l.split_whitespace().nth(n).map(str::to_string))
    };
    if let Some(n) = word(command_line("nginx", &["-v"]), 2) {
        v.push(("nginx".into(), n.trim_start_matches("nginx/").to_string()));
    }
    if let Some(h) = word(command_line("haproxy", &["-v"]), 2) {
        v.push(("HAProxy".into(), h));
    }
    if let Some(w) = word(command_line("wrk", &["--version"]), 1) {
        v.push(("wrk".into(), w));
    }
    if have_oha {
        if let Some(o) = word(command_line("oha", &["--version"]), 1) {
            v.push(("oha".into(), o));
        }
    }
    v
}
