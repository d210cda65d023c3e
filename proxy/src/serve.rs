//! `rauta serve` and `rauta check`: wiring only. CLI -> config source ->
//! shards -> admin; signals start the drain.

use crate::admin::{self, AdminState};
use crate::cli::{CheckArgs, ClassArgs, ServeArgs};
use crate::config::ProxyConfig;
use crate::control::{Broadcaster, Readiness};
use crate::shard::{self, ShardSpec};
use crate::{cpus, listener};
use anyhow::{anyhow, Context};
use rauta_k8s_sync::manifests::{self, ManifestSource};
use rauta_k8s_sync::{report, ClassSelector};
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;
use std::sync::{Arc, OnceLock};

fn selector(class: &ClassArgs) -> ClassSelector {
    ClassSelector {
        class_name: class.ingress_class.clone(),
        controller: class.controller_name.clone(),
    }
}

/// `rauta check`: prints the compiled table and every problem; returns
/// whether the set is valid.
pub fn check(args: &CheckArgs) -> bool {
    let translation = manifests::load_and_translate(&args.manifests, &selector(&args.class));
    print!("{}", report::render(&translation.config));
    // The same compilation the shards will run, so `check` sees its errors too.
    let compiled = crate::router::RouteTable::compile(&translation.config);
    for p in &translation.problems {
        println!("{p}");
    }
    if let Err(e) = &compiled {
        println!("error: {e}");
    }
    let ok = !translation.has_errors() && compiled.is_ok();
    let errors = translation.problems.iter().filter(|p| p.is_error()).count();
    let warnings = translation.problems.len() - errors;
    println!(
        "{} ({errors} errors, {warnings} warnings)",
        if ok { "valid" } else { "INVALID" }
    );
    ok
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
    let cfg = Arc::new(ProxyConfig::from_args(args));

    // Bind everything before starting anything, so a busy port fails fast.
    let first = listener::bind_reuseport(args.listen)
        .with_context(|| format!("listening on {}", args.listen))?;
    let addr = first
        .local_addr()?
        .as_socket()
        .ok_or_else(|| anyhow!("listener has no IP address"))?;
    let mut sockets = vec![first];
    for _ in 1..shard_cpus.len() {
        sockets
            .push(listener::bind_reuseport(addr).with_context(|| format!("listening on {addr}"))?);
    }
    let admin_listener = std::net::TcpListener::bind(args.admin)
        .with_context(|| format!("admin listener on {}", args.admin))?;
    let mut signals = Signals::new([SIGTERM, SIGINT]).context("installing signal handlers")?;

    // Control and admin threads inherit this thread's CPUs: keep them off
    // the shard CPUs where there is a choice.
    cpus::keep_off_shards(&allowed, &shard_cpus);
    let readiness = Arc::new(Readiness::new(shard_cpus.len()));
    let (mut broadcaster, receivers) = Broadcaster::new(shard_cpus.len());
    let drainer = broadcaster.drainer();
    let mut shards = Vec::new();
    for (id, ((cpu, listener), control)) in
        shard_cpus.iter().zip(sockets).zip(receivers).enumerate()
    {
        let spec = ShardSpec {
            id,
            cpu: *cpu,
            listener,
            control,
            readiness: readiness.clone(),
            cfg: cfg.clone(),
        };
        shards
            .push(shard::start(spec).with_context(|| format!("starting shard {id} on CPU {cpu}"))?);
    }
    tracing::info!(listen = %addr, admin = %args.admin, cpus = ?shard_cpus, "rauta serving");
    let admin_state = Arc::new(AdminState {
        readiness,
        control: broadcaster.status(),
        snapshotter: broadcaster.snapshotter(),
        source: OnceLock::new(),
    });
    admin::spawn(admin_listener, admin_state.clone()).context("starting the admin listener")?;

    let source = ManifestSource::spawn(
        args.manifests.clone(),
        selector(&args.class),
        args.reload_debounce,
        move |config| match broadcaster.publish(&config) {
            Ok(generation) => tracing::info!(
                generation,
                rules = config.rules.len(),
                backends = config.backends.len(),
                "route table published"
            ),
            Err(e) => {
                tracing::error!(error = %e, "route table rejected; the last good table stays live")
            }
        },
    )
    .with_context(|| format!("watching {}", args.manifests.display()))?;
    let _ = admin_state.source.set(source.stats());

    if let Some(signal) = signals.forever().next() {
        tracing::info!(signal, drain_timeout = ?cfg.drain_timeout, "draining: no new connections, finishing in-flight requests");
    }
    drainer.drain();
    for handle in shards {
        if handle.join().is_err() {
            tracing::error!("a shard ended abnormally");
        }
    }
    source.stop();
    tracing::info!("stopped");
    Ok(())
}
