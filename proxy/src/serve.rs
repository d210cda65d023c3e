//! `rauta serve` and `rauta check`: wiring only. CLI -> config source ->
//! shards -> admin; signals start the drain.

use crate::accept::{self, ShardSpec};
use crate::admin::{self, AdminState};
use crate::cli::{CheckArgs, CheckOutput, ClassArgs, KubeArgs, ServeArgs};
use crate::control::{Broadcaster, Readiness};
use crate::metrics::exposition::{self, KubeFigures, KubeResource, KubeStatusWrites};
use crate::router::CompileError;
use crate::tls::{default_cert, TlsSettings};
use crate::{cpus, limits, listener};
use anyhow::{anyhow, Context};
use rauta_k8s_sync::api::{self, leader, ApiOptions, ApiSource, ClientSource, LeaderOptions};
use rauta_k8s_sync::manifests::{self, ManifestSource};
use rauta_k8s_sync::problem::Problem;
use rauta_k8s_sync::stats::{ApiCounts, SourceStats};
use rauta_k8s_sync::{report, ClassSelector, RouteConfig};
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// Default debounce of the manifests source.
const MANIFESTS_DEBOUNCE: Duration = Duration::from_millis(100);

/// The configuration source the flags name, checked before anything starts.
enum SourcePlan {
    Manifests(PathBuf),
    Kubernetes(Box<ApiOptions>),
}

impl SourcePlan {
    fn from_args(args: &ServeArgs) -> anyhow::Result<SourcePlan> {
        match &args.manifests {
            Some(dir) => Ok(SourcePlan::Manifests(dir.clone())),
            None => Ok(SourcePlan::Kubernetes(Box::new(api_options(args)?))),
        }
    }
}

/// The configuration source `rauta serve` runs.
enum Source {
    Manifests(ManifestSource),
    Kubernetes(ApiSource),
}

impl Source {
    /// Starts the planned source; `publish` gets every new configuration.
    fn spawn(
        plan: SourcePlan,
        args: &ServeArgs,
        publish: impl FnMut(RouteConfig) + Send + 'static,
    ) -> anyhow::Result<Source> {
        match plan {
            SourcePlan::Manifests(dir) => {
                Ok(Source::Manifests(manifest_source(args, &dir, publish)?))
            }
            SourcePlan::Kubernetes(opts) => {
                let opts = *opts;
                let what = match &opts.client {
                    ClientSource::Kubeconfig(path) => format!("kubeconfig {}", path.display()),
                    ClientSource::Infer => "the in-cluster or default kubeconfig".to_string(),
                };
                let source = ApiSource::spawn(opts, publish)
                    .with_context(|| format!("connecting to the Kubernetes API ({what})"))?;
                let stats = source.api_stats();
                exposition::kubernetes::set_probe(move || kube_figures(stats.counts()));
                Ok(Source::Kubernetes(source))
            }
        }
    }

    /// Load counters, for metrics.
    fn stats(&self) -> Arc<SourceStats> {
        match self {
            Source::Manifests(s) => s.stats(),
            Source::Kubernetes(s) => s.stats(),
        }
    }

    /// Stops the source thread (the API source releases its Lease).
    fn stop(self) {
        match self {
            Source::Manifests(s) => s.stop(),
            Source::Kubernetes(s) => s.stop(),
        }
    }
}

/// The API source's counters as the exposition takes them.
fn kube_figures(c: ApiCounts) -> KubeFigures {
    KubeFigures {
        resources: (c.resources.iter())
            .map(|r| KubeResource {
                resource: r.resource,
                kind: r.kind,
                watch_errors: r.watch_errors,
                watch_restarts: r.watch_restarts,
                objects: r.objects,
            })
            .collect(),
        last_sync_unix: c.last_sync_unix,
        leader: c.leader,
        leader_since_unix: c.leader_since_unix,
        status_writes: (c.status_writes.iter())
            .map(|w| KubeStatusWrites {
                kind: w.kind,
                ok: w.ok,
                failed: w.failed,
            })
            .collect(),
        events_ok: c.events_ok,
        events_failed: c.events_failed,
    }
}

fn manifest_source(
    args: &ServeArgs,
    dir: &Path,
    publish: impl FnMut(RouteConfig) + Send + 'static,
) -> anyhow::Result<ManifestSource> {
    ManifestSource::spawn(
        dir.to_path_buf(),
        selector(
            &args.class,
            args.listen,
            &args.listen_tls,
            serve_ports(args),
        ),
        args.reload_debounce.unwrap_or(MANIFESTS_DEBOUNCE),
        publish,
    )
    .with_context(|| format!("watching {}", dir.display()))
}

/// The API source's options from the flags and the pod's environment.
fn api_options(args: &ServeArgs) -> anyhow::Result<ApiOptions> {
    let kube: &KubeArgs = &args.kube;
    let client = match &kube.kubeconfig {
        Some(path) => ClientSource::Kubeconfig(path.clone()),
        None => ClientSource::Infer,
    };
    let mut opts = ApiOptions::new(
        client,
        selector(
            &args.class,
            args.listen,
            &args.listen_tls,
            serve_ports(args),
        ),
    );
    opts.debounce = args.reload_debounce.unwrap_or(api::DEFAULT_DEBOUNCE);
    opts.publish = if let Some(service) = &kube.publish_service {
        api::PublishTarget::service(service).map_err(|e| anyhow!("--publish-service: {e}"))?
    } else if !kube.publish_address.is_empty() {
        if let Some(bad) = kube.publish_address.iter().find(|a| !valid_address(a)) {
            return Err(anyhow!(
                "--publish-address {bad:?} is neither an IP address nor a host name"
            ));
        }
        api::PublishTarget::Addresses(kube.publish_address.clone())
    } else {
        api::PublishTarget::None
    };
    let namespace = kube
        .lease_namespace
        .clone()
        .or_else(|| std::env::var("POD_NAMESPACE").ok())
        .filter(|ns| !ns.is_empty())
        .unwrap_or_else(|| "default".to_string());
    let mut lease = LeaderOptions::new(namespace, leader::default_identity());
    lease.name = kube.lease_name.clone();
    opts.leader = Some(lease);
    opts.namespaces = unique(&kube.watch_namespace);
    opts.validate().map_err(|e| anyhow!(e))?;
    Ok(opts)
}

/// `list` without repeats, in the order given.
fn unique(list: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(list.len());
    for item in list {
        if !out.contains(item) {
            out.push(item.clone());
        }
    }
    out
}

/// An IP address or a DNS host name.
fn valid_address(address: &str) -> bool {
    address.parse::<std::net::IpAddr>().is_ok()
        || (!address.is_empty()
            && address.len() <= 253
            && address.split('.').all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && label
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                    && !label.starts_with('-')
                    && !label.ends_with('-')
            }))
}

/// The TCP ports `rauta serve` listens on itself, and what each is.
fn serve_ports(args: &ServeArgs) -> Vec<(u16, String)> {
    let mut ports = vec![
        (args.listen.port(), "HTTP (--listen)".to_string()),
        (args.admin.port(), "admin (--admin)".to_string()),
    ];
    ports.extend(
        args.listen_tls
            .iter()
            .map(|a| (a.port(), "HTTPS (--listen-tls)".to_string())),
    );
    ports.extend(
        args.metrics_listen
            .map(|a| (a.port(), "metrics (--metrics-listen)".to_string())),
    );
    ports
}

fn selector(
    class: &ClassArgs,
    listen: SocketAddr,
    listen_tls: &[SocketAddr],
    reserved_ports: Vec<(u16, String)>,
) -> ClassSelector {
    ClassSelector {
        reserved_ports,
        gateway_controller: class.gateway_controller_name.clone(),
        http_port: Some(listen.port()),
        tls_ports: listen_tls.iter().map(SocketAddr::port).collect(),
        class_name: class.ingress_class.clone(),
        controller: class.controller_name.clone(),
        tcp_services: class.tcp_services_configmap.clone(),
        udp_services: class.udp_services_configmap.clone(),
    }
}

/// `rauta check`: the migration report on the manifests or the live
/// cluster (read-only), as text or JSON; returns the exit code
/// ([`report::migration::EXIT_OK`], `EXIT_FAIL` or `EXIT_USAGE`).
pub fn check(args: &CheckArgs) -> u8 {
    use report::migration::{EXIT_FAIL, EXIT_USAGE};
    let mut ports = vec![(args.listen.port(), "HTTP (--listen)".to_string())];
    ports.extend(
        args.listen_tls
            .iter()
            .map(|a| (a.port(), "HTTPS (--listen-tls)".to_string())),
    );
    let sel = selector(&args.class, args.listen, &args.listen_tls, ports);
    let (source, mut translation) = match &args.manifests {
        Some(dir) => {
            // An unreadable directory is an I/O error, not a finding about the set.
            if let Err(e) = std::fs::read_dir(dir) {
                eprintln!(
                    "rauta check: cannot read manifests directory {}: {e}",
                    dir.display()
                );
                return EXIT_USAGE;
            }
            let translation = manifests::load_and_translate(dir, &sel);
            (format!("manifests {}", dir.display()), translation)
        }
        None => {
            let client = match &args.kubeconfig {
                Some(path) => ClientSource::Kubeconfig(path.clone()),
                None => ClientSource::Infer,
            };
            match api::snapshot::snapshot(&client, &sel, &unique(&args.watch_namespace)) {
                Ok(objects) => (
                    "kubernetes".to_string(),
                    rauta_k8s_sync::translate::translate(&objects, &sel),
                ),
                Err(e) => {
                    eprintln!("rauta check --kubernetes: {e}");
                    return EXIT_USAGE;
                }
            }
        }
    };
    // The same compilation the shards will run, so `check` sees its errors too.
    let compiled = crate::router::RouteTable::compile(&translation.config).and_then(|_| {
        let mut tls =
            tls_settings(None).map_err(|e| CompileError::Tls(rustls::Error::General(e)))?;
        tls.compile(&translation.config.tls)
            .map_err(CompileError::Tls)
    });
    if let Err(e) = compiled {
        translation.problems.push(Problem::fatal(
            None,
            format!("the route table does not compile: {e}"),
        ));
    }
    let report = report::Report::new(source, &translation, args.accept_warnings);
    let out = match args.output {
        CheckOutput::Text => report::text(&report, &translation.config),
        CheckOutput::Json => match serde_json::to_string_pretty(&report) {
            Ok(json) => json + "\n",
            Err(e) => {
                eprintln!("rauta check: rendering JSON: {e}");
                return EXIT_USAGE;
            }
        },
    };
    // A closed stdout (`| head`) must not turn a result into a panic.
    if std::io::Write::write_all(&mut std::io::stdout().lock(), out.as_bytes()).is_err() {
        return EXIT_FAIL.max(report.result.exit_code);
    }
    report.result.exit_code
}

/// The TLS settings: the default certificate from `files` (cert, key), or
/// a self-signed one.
fn tls_settings(files: Option<(&Path, &Path)>) -> Result<TlsSettings, String> {
    let provider = rustls::crypto::ring::default_provider();
    let default = match files {
        Some((cert, key)) => default_cert::load(&provider, cert, key)?,
        None => default_cert::generate(&provider)?,
    };
    TlsSettings::new(default).map_err(|e| e.to_string())
}

/// Binds one SO_REUSEPORT socket per shard on `addr`; returns the address
/// actually bound (a port 0 becomes a real port) and the sockets.
fn bind_per_shard(
    addr: std::net::SocketAddr,
    shards: usize,
) -> anyhow::Result<(std::net::SocketAddr, Vec<socket2::Socket>)> {
    let first = listener::bind_reuseport(addr).with_context(|| format!("listening on {addr}"))?;
    let addr = first
        .local_addr()?
        .as_socket()
        .ok_or_else(|| anyhow!("listener has no IP address"))?;
    let mut sockets = vec![first];
    for _ in 1..shards {
        sockets
            .push(listener::bind_reuseport(addr).with_context(|| format!("listening on {addr}"))?);
    }
    Ok((addr, sockets))
}

/// Raises the open-file limit and sizes the per-shard connection cap to
/// it: a cap the limit cannot carry turns into EMFILE on connect and accept.
fn connection_cap(requested: Option<usize>, shards: usize) -> usize {
    let nofile = match limits::raise_nofile() {
        Ok(n) => {
            if n.soft > n.was {
                tracing::info!(from = n.was, to = n.soft, "raised the open-file limit");
            }
            n.soft
        }
        Err(e) => {
            tracing::warn!(error = %e, "cannot read or raise the open-file limit");
            return requested.unwrap_or(crate::config::DEFAULT_MAX_CONNECTIONS_PER_SHARD);
        }
    };
    let budget = limits::connection_budget(nofile, shards);
    match requested {
        Some(n) if n > budget => {
            tracing::warn!(
                max_connections_per_shard = n,
                shards,
                open_file_limit = nofile,
                fits = budget,
                "the open-file limit cannot carry this many connections on every shard: expect EMFILE; raise LimitNOFILE / ulimit -n"
            );
            n
        }
        Some(n) => n,
        None => {
            let cap = budget.min(crate::config::DEFAULT_MAX_CONNECTIONS_PER_SHARD);
            if cap < crate::config::DEFAULT_MAX_CONNECTIONS_PER_SHARD {
                tracing::info!(
                    max_connections_per_shard = cap,
                    open_file_limit = nofile,
                    shards,
                    "connection cap sized to the open-file limit"
                );
            }
            cap
        }
    }
}

/// `rauta serve`: runs until SIGTERM/SIGINT, then drains and returns.
pub fn serve(args: &ServeArgs) -> anyhow::Result<()> {
    let allowed = cpus::allowed().context("reading the allowed CPU set")?;
    let requested = args
        .cpus
        .as_deref()
        .map(cpus::parse_list)
        .transpose()
        .map_err(|e| anyhow!(e))?;
    let shard_cpus =
        cpus::choose(&allowed, requested.as_deref(), args.shards).map_err(|e| anyhow!(e))?;
    let mut cfg = args.proxy_config();
    cfg.max_connections_per_shard =
        connection_cap(args.max_connections_per_shard, shard_cpus.len()).max(1);
    if let Some(path) = &cfg.panic_path {
        tracing::warn!(%path, "test hook on: requests for this path panic (RAUTA_TEST_PANIC_PATH)");
    }
    let cfg = Arc::new(cfg);
    let plan = SourcePlan::from_args(args)?;

    // Bind everything before starting anything, so a busy port fails fast.
    let (addr, sockets) = bind_per_shard(args.listen, shard_cpus.len())?;
    // tls_sockets[shard][listener]
    let mut tls_sockets: Vec<Vec<socket2::Socket>> =
        (0..shard_cpus.len()).map(|_| Vec::new()).collect();
    let mut tls_addrs = Vec::new();
    for tls_addr in &args.listen_tls {
        let (bound, per_shard) = bind_per_shard(*tls_addr, shard_cpus.len())?;
        tls_addrs.push(bound);
        for (shard, socket) in per_shard.into_iter().enumerate() {
            tls_sockets[shard].push(socket);
        }
    }
    let tls = if args.listen_tls.is_empty() {
        None
    } else {
        let files = args
            .default_tls_cert
            .as_deref()
            .zip(args.default_tls_key.as_deref());
        let mut tls = tls_settings(files).map_err(|e| anyhow!("TLS: {e}"))?;
        tls.http2 = cfg.http2;
        Some(tls)
    };
    let admin_listener = if args.admin_reuse_port {
        listener::bind_reuseport(args.admin).map(std::net::TcpListener::from)
    } else {
        std::net::TcpListener::bind(args.admin)
    }
    .with_context(|| format!("admin listener on {}", args.admin))?;
    let metrics_listener = match args.metrics_listen {
        Some(addr) => Some(
            if args.admin_reuse_port {
                listener::bind_reuseport(addr).map(std::net::TcpListener::from)
            } else {
                std::net::TcpListener::bind(addr)
            }
            .with_context(|| format!("metrics listener on {addr}"))?,
        ),
        None => None,
    };
    let mut signals = Signals::new([SIGTERM, SIGINT]).context("installing signal handlers")?;

    // Control and admin threads inherit this thread's CPUs: keep them off
    // the shard CPUs where there is a choice.
    cpus::keep_off_shards(&allowed, &shard_cpus);
    // eBPF before the listeners go to their shards: each one is registered
    // in the slot of its shard's CPU.
    let mut xdp_options = args.xdp_options(addr.port());
    xdp_options
        .steer_ports
        .extend(tls_addrs.iter().map(|a| a.port()));
    let mut xdp = crate::xdp::Xdp::start(&xdp_options, &shard_cpus, &sockets)?;
    // TCP services, TLS passthrough and WebSocket tunnels are spliced.
    let splicer = crate::l4::splice::Splicer::start(args.l4_splice);
    // Loading parsed the kernel's BTF: megabytes this process never needs again.
    crate::memory::release_unused();
    let readiness = Arc::new(Readiness::new(shard_cpus.len()));
    let (mut broadcaster, receivers) =
        Broadcaster::new(shard_cpus.len(), tls).context("creating the shard doorbells")?;
    let mut reserved = vec![(addr.port(), "HTTP"), (args.admin.port(), "admin")];
    reserved.extend(tls_addrs.iter().map(|a| (a.port(), "HTTPS")));
    reserved.extend(args.metrics_listen.map(|a| (a.port(), "metrics")));
    broadcaster.serve_l4(crate::l4::listeners::L4Listeners::new(
        addr.ip(),
        shard_cpus.clone(),
        reserved,
    ));
    if let Some(fast) = xdp.take_fast_path() {
        broadcaster.serve_fast_path(fast);
    }
    let drainer = broadcaster.drainer();
    let access_log = match args.access_log {
        true => Some(crate::access_log::spawn_writer().context("starting the access-log writer")?),
        false => None,
    };
    let otel = match &args.otlp_endpoint {
        Some(endpoint) => {
            let cfg = Arc::new(crate::otel::OtelConfig {
                endpoint: endpoint.clone(),
                ratio: args.otlp_sample_ratio,
                service_name: args.otlp_service_name.clone(),
                resource: args.otlp_resource_attribute.clone(),
                queue_spans: args.otlp_queue_spans,
            });
            let tx =
                crate::otel::spawn_exporter(cfg.clone()).context("starting the OTLP exporter")?;
            Some((cfg, tx))
        }
        None => None,
    };
    let mut shards = Vec::new();
    for (id, (((cpu, listener), tls_listeners), control)) in shard_cpus
        .iter()
        .zip(sockets)
        .zip(tls_sockets)
        .zip(receivers)
        .enumerate()
    {
        let spec = ShardSpec {
            id,
            cpu: *cpu,
            listener,
            tls_listeners,
            control,
            readiness: readiness.clone(),
            cfg: cfg.clone(),
            access_log: access_log.clone(),
            otel: otel.clone(),
            splice: match &splicer {
                Some(s) => Some(s.handle().context("opening the splice maps for a shard")?),
                None => None,
            },
        };
        shards.push(
            accept::start(spec).with_context(|| format!("starting shard {id} on CPU {cpu}"))?,
        );
    }
    tracing::info!(listen = %addr, listen_tls = ?tls_addrs, admin = %args.admin, cpus = ?shard_cpus, "rauta serving");
    let admin_state = Arc::new(AdminState {
        readiness,
        control: broadcaster.status(),
        snapshotter: broadcaster.snapshotter(),
        source: OnceLock::new(),
        xdp: xdp.stats(),
        splice: match &splicer {
            Some(s) => Some(std::sync::Mutex::new(
                s.handle()
                    .context("opening the splice maps for the admin thread")?,
            )),
            None => None,
        },
        ingress_nginx: args.ingress_nginx_controller(),
    });
    let registry = admin::SharedRegistry::default();
    admin::spawn(
        admin_listener,
        admin_state.clone(),
        registry.clone(),
        admin::Scope::Admin,
    )
    .context("starting the admin listener")?;
    if let Some(listener) = metrics_listener {
        admin::spawn(
            listener,
            admin_state.clone(),
            registry,
            admin::Scope::Metrics,
        )
        .context("starting the metrics listener")?;
    }

    // For the status page: the problems of the last load, read again from
    // the directory (once per load that had any); the API source has no
    // rejected loads, its problems are on the Ingresses' Events.
    let problems = match &plan {
        SourcePlan::Manifests(dir) => {
            let sel = selector(
                &args.class,
                args.listen,
                &args.listen_tls,
                serve_ports(args),
            );
            Some((dir.clone(), sel))
        }
        SourcePlan::Kubernetes(_) => None,
    };
    let source = Source::spawn(plan, args, move |config| {
        match broadcaster.publish(&config) {
            Ok(generation) => tracing::info!(
                generation,
                rules = config.rules.len(),
                backends = config.backends.len(),
                "route table published"
            ),
            Err(e) => {
                tracing::error!(error = %e, "route table rejected; the last good table stays live")
            }
        }
        // What compiling the table allocated on this thread is garbage now.
        crate::memory::release_unused();
    })?;
    let stats = source.stats();
    let mut probe = admin::SourceProbe::new(move || {
        let c = stats.counts();
        admin::SourceFigures {
            loads: c.loads,
            rejected: c.rejected,
            last_rejected: c.last_rejected,
            fatal: c.fatal,
            errors: c.errors,
            warnings: c.warnings,
        }
    });
    if let Some((dir, sel)) = problems {
        probe = probe.with_problems(move || {
            manifests::load_and_translate(&dir, &sel)
                .problems
                .iter()
                .map(|p| admin::ProblemLine {
                    severity: p.severity.to_string(),
                    file: p.file.as_ref().map(|f| f.display().to_string()),
                    object: p.object.clone(),
                    message: p.message.clone(),
                })
                .collect()
        });
    }
    let _ = admin_state.source.set(probe);

    if let Some(signal) = signals.forever().next() {
        tracing::info!(signal, drain_timeout = ?cfg.drain_timeout, "draining: no new connections, finishing in-flight requests");
    }
    drainer.drain();
    for handle in shards {
        if handle.join().is_err() {
            tracing::error!("a shard ended abnormally");
        }
    }
    xdp.stop();
    drop(splicer);
    source.stop();
    tracing::info!("stopped");
    Ok(())
}
