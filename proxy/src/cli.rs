//! The command line (clap). Other tools drive exactly these flags.

use crate::config::ProxyConfig;
use crate::upstream::ConnectPolicy;
use clap::{ArgGroup, Args, Parser, Subcommand};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// rauta: a Kubernetes ingress data plane.
#[derive(Debug, Parser)]
#[command(name = "rauta", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve traffic: one pinned shard per CPU, routing by Ingress rules.
    Serve(Box<ServeArgs>),
    /// The migration report: what rauta would do with each Ingress and annotation.
    ///
    /// Translates a manifests directory, or (read-only) the live cluster's
    /// objects, as `serve` would, and prints the route table, every
    /// Ingress annotation with rauta's verdict, every problem and a summary.
    #[command(after_help = CHECK_EXIT_CODES)]
    Check(Box<CheckArgs>),
}

/// The exit codes of `rauta check`, for `--help`.
const CHECK_EXIT_CODES: &str = "\
Verdicts: honoured (as ingress-nginx), differs (served, with a stated difference),
ignored (not acted on, warned), refused (the Ingress is not served, or its paths answer 503).

Exit codes:
  0  everything is honoured (ignored annotations too, with --accept-warnings)
  1  something would be refused, served differently or ignored, or the set has errors
  2  the check could not run: bad flags, unreadable directory, API server unreachable";

/// Output format of `rauta check`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum CheckOutput {
    /// Aligned tables for a person.
    Text,
    /// One JSON document (the shape is in the README).
    Json,
}

/// `rauta check`.
#[derive(Debug, Args)]
#[command(group(ArgGroup::new("source").required(true).args(["manifests", "kubernetes"])))]
pub struct CheckArgs {
    /// Directory of Kubernetes manifests (*.yaml, *.yml, *.json).
    #[arg(long)]
    pub manifests: Option<PathBuf>,
    /// Read the live cluster's objects instead (one list of each kind, then
    /// exit; nothing is written).
    #[arg(long)]
    pub kubernetes: bool,
    /// Kubeconfig file for --kubernetes (default: $KUBECONFIG or
    /// ~/.kube/config, else the in-cluster service account).
    #[arg(long, requires = "kubernetes")]
    pub kubeconfig: Option<PathBuf>,
    /// With --kubernetes: read namespaced objects in this namespace only,
    /// as `serve --watch-namespace` would (repeat, or separate with commas;
    /// default: every namespace).
    #[arg(
        long = "watch-namespace",
        value_name = "NAMESPACE",
        value_delimiter = ',',
        requires = "kubernetes"
    )]
    pub watch_namespace: Vec<String>,
    /// Output format.
    #[arg(long, value_enum, default_value = "text")]
    pub output: CheckOutput,
    /// Let ignored annotations (warnings) pass: exit 0 unless something is
    /// refused, served differently or invalid.
    #[arg(long)]
    pub accept_warnings: bool,
    /// The HTTP address `rauta serve` will listen on (a TCP service on its
    /// port is reported).
    #[arg(long, default_value = "0.0.0.0:80")]
    pub listen: std::net::SocketAddr,
    /// The HTTPS addresses `rauta serve` will listen on.
    #[arg(long = "listen-tls", value_name = "ADDR:PORT", default_values = ["0.0.0.0:443"])]
    pub listen_tls: Vec<std::net::SocketAddr>,
    // Flattened groups take their help from their own fields.
    #[allow(missing_docs)]
    #[command(flatten)]
    pub class: ClassArgs,
}

/// Which IngressClass is ours.
#[derive(Debug, Args, Clone)]
pub struct ClassArgs {
    /// Name of the IngressClass served.
    #[arg(long, default_value = "rauta")]
    pub ingress_class: String,
    /// `spec.controller` of that IngressClass.
    #[arg(long, default_value = "rauta.io/ingress-controller")]
    pub controller_name: String,
    /// `spec.controllerName` of the GatewayClasses served (Gateway API).
    #[arg(long, default_value = "rauta.io/gateway-controller")]
    pub gateway_controller_name: String,
    /// ConfigMap `NAMESPACE/NAME` of TCP services, in ingress-nginx's
    /// format: `"<listen port>": "<namespace>/<service>:<port>[:PROXY[:PROXY]]"`.
    #[arg(long, value_name = "NAMESPACE/NAME")]
    pub tcp_services_configmap: Option<rauta_k8s_sync::ObjectName>,
    /// ConfigMap `NAMESPACE/NAME` of UDP services (same format, no PROXY).
    #[arg(long, value_name = "NAMESPACE/NAME")]
    pub udp_services_configmap: Option<rauta_k8s_sync::ObjectName>,
}

/// Options of `rauta serve --kubernetes`.
#[derive(Debug, Args, Clone)]
pub struct KubeArgs {
    /// Kubeconfig file (default: $KUBECONFIG or ~/.kube/config when present,
    /// else the in-cluster service account).
    #[arg(long, conflicts_with = "manifests")]
    pub kubeconfig: Option<PathBuf>,
    /// Address written to the status of our Ingresses: an IP or a host name
    /// (repeat or separate with commas for several).
    #[arg(long, value_delimiter = ',', conflicts_with = "manifests")]
    pub publish_address: Vec<String>,
    /// Service whose address is written to the status of our Ingresses:
    /// its load-balancer ingress, else its external IPs, else its cluster IP.
    #[arg(
        long,
        value_name = "NAMESPACE/NAME",
        conflicts_with_all = ["manifests", "publish_address"]
    )]
    pub publish_service: Option<String>,
    /// Namespace of the leader-election Lease (default: $POD_NAMESPACE, else `default`).
    #[arg(long, conflicts_with = "manifests")]
    pub lease_namespace: Option<String>,
    /// Name of the leader-election Lease; the leader writes Ingress status and Events.
    #[arg(long, default_value = "rauta-leader", conflicts_with = "manifests")]
    pub lease_name: String,
    /// Watch namespaced objects (Ingresses, Services, EndpointSlices,
    /// Secrets, ConfigMaps, Gateways, HTTPRoutes, ReferenceGrants) in this
    /// namespace only; repeat, or separate with commas, for several
    /// (default: every namespace). IngressClasses, GatewayClasses and
    /// Namespaces are cluster-scoped and always watched.
    #[arg(
        long = "watch-namespace",
        value_name = "NAMESPACE",
        value_delimiter = ',',
        conflicts_with = "manifests"
    )]
    pub watch_namespace: Vec<String>,
}

/// `rauta serve`.
#[derive(Debug, Args)]
#[command(group(ArgGroup::new("source").required(true).args(["manifests", "kubernetes"])))]
pub struct ServeArgs {
    /// Directory of Kubernetes manifests, watched for changes (exactly one
    /// of --manifests and --kubernetes).
    #[arg(long)]
    pub manifests: Option<PathBuf>,
    /// Follow the Kubernetes API server (kubeconfig, or in-cluster).
    #[arg(long)]
    pub kubernetes: bool,
    #[allow(missing_docs)]
    #[command(flatten)]
    pub kube: KubeArgs,
    /// Address for client traffic (every shard listens on it, SO_REUSEPORT).
    #[arg(long, default_value = "0.0.0.0:80")]
    pub listen: SocketAddr,
    /// Address for HTTPS (TLS 1.2 and 1.3, certificates from the Ingresses'
    /// `spec.tls`); repeatable. HTTP -> HTTPS redirects point at the first.
    #[arg(long = "listen-tls", value_name = "ADDR:PORT")]
    pub listen_tls: Vec<SocketAddr>,
    /// PEM certificate (chain) for TLS hosts without their own certificate
    /// and clients without SNI (default: a self-signed one made at start).
    #[arg(long, value_name = "FILE", requires = "default_tls_key")]
    pub default_tls_cert: Option<PathBuf>,
    /// PEM private key of --default-tls-cert.
    #[arg(long, value_name = "FILE", requires = "default_tls_cert")]
    pub default_tls_key: Option<PathBuf>,
    /// Time a client has to complete the TLS handshake.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    pub tls_handshake_timeout: Duration,
    /// Address of the admin listener (/healthz, /readyz, /metrics, /routes,
    /// /debug/route, and the status page at /).
    #[arg(long, default_value = "127.0.0.1:9901")]
    pub admin: SocketAddr,
    /// Bind the admin listener with SO_REUSEPORT, so that the next rauta on
    /// the same host (a DaemonSet rolling update with maxSurge and
    /// hostNetwork) can start while this one drains.
    #[arg(long)]
    pub admin_reuse_port: bool,
    /// A second listener serving only `/metrics` and `/healthz`, for a
    /// Prometheus off the node (the DaemonSet uses 0.0.0.0:10254, as
    /// ingress-nginx does); the rest of the admin API stays on `--admin`.
    #[arg(long)]
    pub metrics_listen: Option<SocketAddr>,
    /// Number of shards (default: one per allowed CPU).
    #[arg(long)]
    pub shards: Option<usize>,
    /// CPUs to pin shards to, e.g. `0-3,6` (default: the allowed CPU set).
    #[arg(long)]
    pub cpus: Option<String>,
    // Flattened groups take their help from their own fields.
    #[allow(missing_docs)]
    #[command(flatten)]
    pub class: ClassArgs,
    /// Wait for quiet this long after a change before rebuilding the table
    /// (default 100ms for --manifests, 50ms for --kubernetes).
    #[arg(long, alias = "debounce", value_parser = humantime::parse_duration)]
    pub reload_debounce: Option<Duration>,
    /// Time a client has to send a complete request head.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    pub header_read_timeout: Duration,
    /// Idle keep-alive timeout, and per-read timeout on request bodies.
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    pub idle_timeout: Duration,
    /// Deadline for one upstream TCP connect.
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    pub connect_timeout: Duration,
    /// Per-read/write timeout on upstream connections (covers the wait for
    /// the response head).
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    pub upstream_timeout: Duration,
    /// How long in-flight requests may run after SIGTERM/SIGINT.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    pub drain_timeout: Duration,
    /// Largest request head in bytes.
    #[arg(long, default_value_t = 64 * 1024)]
    pub max_header_bytes: usize,
    /// HTTP/2 from clients: `on` offers ALPN h2 (preferred) on TLS
    /// listeners and accepts the HTTP/2 preface on plain ones; `off`
    /// speaks HTTP/1.1 only.
    #[arg(long, default_value = "on", value_parser = ["on", "off"])]
    pub http2: String,
    /// Most concurrent streams per HTTP/2 client connection (ingress-nginx's
    /// http2-max-concurrent-streams).
    #[arg(long, default_value_t = 128, value_parser = clap::value_parser!(u32).range(1..))]
    pub http2_max_streams: u32,
    /// How often HTTP/2 client connections are pinged; one that does not
    /// answer within the same time is closed (a vanished peer).
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    pub http2_ping_interval: Duration,
    /// Most headers in a request (at most 128).
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u16).range(1..=128))]
    pub max_headers: u16,
    /// Largest request body in bytes (0: no limit).
    #[arg(long, default_value_t = 0)]
    pub max_body_bytes: u64,
    /// Most client connections per shard; further ones wait in the backlog
    /// (default: 16384, or fewer when the open-file limit cannot carry
    /// that many on every shard).
    #[arg(long)]
    pub max_connections_per_shard: Option<usize>,
    /// Idle upstream connections kept per endpoint and shard (ingress-nginx's
    /// upstream-keepalive-connections: HTTP/2 clients keep many requests to
    /// one endpoint in flight at once, and each needs its own connection).
    #[arg(long, default_value_t = 320)]
    pub upstream_max_idle: usize,
    /// How long an idle upstream connection is kept.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    pub upstream_idle_timeout: Duration,
    /// Most requests one shard has in flight to one backend (connecting,
    /// sending, or waiting for the answer; Envoy's max_requests circuit
    /// breaker). Past it, requests are answered 503 with `Retry-After: 1`
    /// at once rather than piling up behind a slow backend.
    #[arg(long, default_value_t = 1024, value_parser = clap::value_parser!(u32).range(1..))]
    pub backend_max_requests: u32,
    /// Most mirrored requests (`mirror-target`, HTTPRoute `RequestMirror`)
    /// one shard has in flight; past it, further copies are dropped (the
    /// client's request is never affected).
    #[arg(long, default_value_t = 256)]
    pub mirror_max_in_flight: usize,
    /// The largest request body a mirror copies, in bytes: the body is
    /// buffered as it is forwarded, and the copy of a larger one is
    /// skipped (counted `result="skipped"`).
    #[arg(long, default_value_t = 128 * 1024)]
    pub mirror_max_body_bytes: usize,
    /// Failures in a row (connect failures, resets, timeouts, 502/503/504) after
    /// which a shard leaves an endpoint out of its picks; 0: never.
    #[arg(long, default_value_t = 5)]
    pub outlier_consecutive_failures: u32,
    /// How long an endpoint's first ejection lasts; the n-th lasts n times
    /// as long (at most 300 s).
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    pub outlier_ejection_time: Duration,
    /// Most of a backend's endpoints (percent) ejected at once; one always
    /// may be, of two or more.
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u8).range(0..=100))]
    pub outlier_max_ejection_percent: u8,
    /// Most endpoints tried when connecting fails.
    #[arg(long, default_value_t = 3)]
    pub connect_attempts: usize,
    /// eBPF: `auto` steers each new connection to the shard of the CPU that
    /// took its SYN and runs the XDP filter where the kernel and privileges
    /// allow (one log line says what is off and why); `required` fails at
    /// start without them; `off` never loads them.
    #[arg(long, value_enum, default_value_t = crate::xdp::XdpPolicy::Auto)]
    pub xdp: crate::xdp::XdpPolicy,
    /// Interface to attach the XDP ingress filter to (repeatable; none: no
    /// XDP filter, connection steering only).
    #[arg(long = "xdp-iface", value_name = "IFACE")]
    pub xdp_iface: Vec<String>,
    /// Source prefix the XDP filter drops, e.g. `203.0.113.0/24` or
    /// `2001:db8::/32` (repeatable); the admin port is never dropped.
    #[arg(long = "xdp-deny", value_name = "CIDR")]
    pub xdp_deny: Vec<crate::xdp::Cidr>,
    /// New connections (TCP SYNs to --listen's port) per second allowed from
    /// one source address before the XDP filter drops them; 0: no limit.
    #[arg(long, default_value_t = 0)]
    pub xdp_syn_rate: u32,
    /// SYNs one source may send at once above --xdp-syn-rate (default: the rate).
    #[arg(long)]
    pub xdp_syn_burst: Option<u32>,
    /// The XDP L4 fast path: TCP services marked `rauta.io/xdp-fast-path`
    /// get their flows NATed to a backend in XDP on the --xdp-iface
    /// interfaces (which must include the backends' side); off: every
    /// flow goes through user space.
    #[arg(long)]
    pub xdp_fast_path: bool,
    /// Source ports the fast path owns for NAT, `LO-HI` (keep them out of
    /// net.ipv4.ip_local_port_range and of every listening port).
    #[arg(long, default_value = "61000-65535", value_parser = parse_port_range)]
    pub xdp_fast_ports: (u16, u16),
    /// Flow steering on the --xdp-iface interfaces: `cpumap` redirects each
    /// flow to --listen and --listen-tls ports (a hash of its addresses and
    /// ports) to the CPU of one shard, which then accepts it, whatever CPU
    /// the NIC delivered it to; `off` leaves packets where they arrive.
    #[arg(long, value_enum, default_value_t = crate::xdp::XdpSteer::Off)]
    pub xdp_steer: crate::xdp::XdpSteer,
    /// Idle time after which a WebSocket or other upgraded connection is
    /// closed (no bytes either way); dead peers are also found by TCP
    /// keepalive.
    #[arg(long, default_value = "1h", value_parser = humantime::parse_duration)]
    pub tunnel_idle_timeout: Duration,
    /// TCP services: connections with no bytes either way for this long
    /// are closed (ingress-nginx's proxy-stream-timeout).
    #[arg(long, default_value = "600s", value_parser = humantime::parse_duration)]
    pub l4_idle_timeout: Duration,
    /// UDP services: a client's flow with no datagram either way for this
    /// long is forgotten (its socket to the endpoint closed).
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    pub udp_idle_timeout: Duration,
    /// UDP services: most client flows per service and shard; datagrams
    /// from further clients are dropped and counted.
    #[arg(long, default_value_t = 4096)]
    pub udp_max_flows: usize,
    /// When a TCP or UDP service leaves the configuration, its open flows
    /// are closed after this grace period (new ones are refused at once).
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    pub l4_close_grace: Duration,
    /// `auto`: established TCP service, passthrough and plain WebSocket
    /// flows are joined in the kernel (SOCKHASH + sk_skb verdict) so their
    /// bytes never reach user space, where the kernel and privileges allow
    /// (one log line says which). `off` (the default, as the benchmark
    /// favours the relay on this kernel) relays them in user space.
    #[arg(long, value_enum, default_value_t = crate::l4::splice::SpliceMode::Off)]
    pub l4_splice: crate::l4::splice::SpliceMode,
    /// Log as JSON lines instead of human-readable text.
    #[arg(long)]
    pub log_json: bool,
    /// Write an access log (one JSON line per request) to stdout.
    #[arg(long)]
    pub access_log: bool,
    /// Export one OpenTelemetry SERVER span per sampled request over
    /// OTLP/HTTP (JSON) to `{URL}/v1/traces` (e.g. `http://collector:4318`),
    /// and continue or start W3C trace contexts (`traceparent`). Without
    /// it the client's `traceparent`/`tracestate` pass through untouched.
    #[arg(long, value_name = "URL")]
    pub otlp_endpoint: Option<String>,
    /// Share of requests without a sampled parent that start a sampled
    /// trace (0..=1; ingress-nginx's `otel-sampler-ratio` default is 0.01).
    /// A client's sampled `traceparent` is always sampled (parent-based).
    #[arg(long, default_value_t = 0.01, requires = "otlp_endpoint", value_parser = parse_ratio)]
    pub otlp_sample_ratio: f64,
    /// The resource's `service.name`.
    #[arg(long, default_value = "rauta", requires = "otlp_endpoint")]
    pub otlp_service_name: String,
    /// A further resource attribute, `key=value` (repeatable).
    #[arg(long, value_name = "KEY=VALUE", requires = "otlp_endpoint", value_parser = parse_key_value)]
    pub otlp_resource_attribute: Vec<(String, String)>,
    /// Spans queued for the exporter before shards drop them (counted in
    /// `rauta_otel_spans_dropped_total`).
    #[arg(long, default_value_t = 8192, requires = "otlp_endpoint")]
    pub otlp_queue_spans: usize,
    /// Log level or filter (e.g. `debug`, `info,rauta_proxy=debug`);
    /// overrides `RUST_LOG`.
    #[arg(long)]
    pub log_level: Option<String>,
    /// Also serve another controller's metric families on /metrics:
    /// `ingress-nginx` adds the `nginx_ingress_controller_*` families its
    /// Grafana dashboards and alerts query.
    #[arg(long, value_enum, value_name = "CONTROLLER")]
    pub metrics_compat: Option<MetricsCompat>,
    /// `controller_namespace` label of the compatible families (default:
    /// $POD_NAMESPACE).
    #[arg(long, requires = "metrics_compat")]
    pub controller_namespace: Option<String>,
    /// `controller_pod` label of the compatible families (default:
    /// $POD_NAME, else the host name).
    #[arg(long, requires = "metrics_compat")]
    pub controller_pod: Option<String>,
}

/// Metric families of another controller that `/metrics` can add.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum MetricsCompat {
    /// ingress-nginx's `nginx_ingress_controller_*`.
    IngressNginx,
}

impl ServeArgs {
    /// The constant labels of the ingress-nginx families, when they are on:
    /// `controller_class` is the IngressClass controller, as there.
    pub fn ingress_nginx_controller(&self) -> Option<crate::metrics::exposition::Controller> {
        self.metrics_compat?;
        let env = |key: &str| std::env::var(key).ok().filter(|v| !v.is_empty());
        let host = || {
            std::fs::read_to_string("/proc/sys/kernel/hostname")
                .map(|h| h.trim().to_string())
                .unwrap_or_default()
        };
        Some(crate::metrics::exposition::Controller {
            namespace: (self.controller_namespace.clone())
                .or_else(|| env("POD_NAMESPACE"))
                .unwrap_or_default(),
            class: self.class.controller_name.clone(),
            pod: (self.controller_pod.clone())
                .or_else(|| env("POD_NAME"))
                .unwrap_or_else(host),
        })
    }

    /// The data plane's limits and timeouts from these flags.
    pub fn proxy_config(&self) -> ProxyConfig {
        ProxyConfig {
            header_read_timeout: self.header_read_timeout,
            idle_timeout: self.idle_timeout,
            drain_timeout: self.drain_timeout,
            max_header_bytes: self.max_header_bytes.max(1024),
            http2: self.http2 == "on",
            http2_max_streams: self.http2_max_streams,
            http2_ping_interval: self.http2_ping_interval,
            outliers: crate::balance::outlier::OutlierPolicy {
                consecutive: self.outlier_consecutive_failures,
                base: self.outlier_ejection_time,
                max_percent: self.outlier_max_ejection_percent,
            },
            max_headers: usize::from(self.max_headers).min(crate::http::MAX_HEADERS),
            max_body_bytes: (self.max_body_bytes > 0).then_some(self.max_body_bytes),
            max_connections_per_shard: self
                .max_connections_per_shard
                .unwrap_or(crate::config::DEFAULT_MAX_CONNECTIONS_PER_SHARD)
                .max(1),
            tunnel_idle_timeout: self.tunnel_idle_timeout,
            panic_path: std::env::var("RAUTA_TEST_PANIC_PATH")
                .ok()
                .filter(|p| p.starts_with('/'))
                .map(String::into_boxed_str),
            connect: ConnectPolicy {
                timeout: self.connect_timeout,
                attempts: self.connect_attempts.max(1),
                read_timeout: self.upstream_timeout,
                write_timeout: self.upstream_timeout,
            },
            upstream_max_idle: self.upstream_max_idle,
            upstream_idle_timeout: self.upstream_idle_timeout,
            backend_max_requests: self.backend_max_requests,
            mirror_max_in_flight: self.mirror_max_in_flight,
            mirror_max_body_bytes: self.mirror_max_body_bytes,
            tls_handshake_timeout: self.tls_handshake_timeout,
            l4: crate::l4::L4Settings {
                idle_timeout: self.l4_idle_timeout,
                close_grace: self.l4_close_grace,
                udp_idle_timeout: self.udp_idle_timeout,
                udp_max_flows: self.udp_max_flows.max(1),
            },
        }
    }

    /// The eBPF options from these flags, for a client listener on
    /// `listen_port`.
    pub fn xdp_options(&self, listen_port: u16) -> crate::xdp::XdpOptions {
        crate::xdp::XdpOptions {
            policy: self.xdp,
            ifaces: self.xdp_iface.clone(),
            deny: self.xdp_deny.clone(),
            syn_rate: self.xdp_syn_rate,
            syn_burst: self.xdp_syn_burst.unwrap_or(self.xdp_syn_rate).max(1),
            admin_port: self.admin.port(),
            listen_port,
            fast_path: self.xdp_fast_path.then_some(crate::xdp::fast::FastOptions {
                snat_ports: self.xdp_fast_ports,
                idle_timeout: self.l4_idle_timeout,
                close_grace: self.l4_close_grace,
            }),
            steer: self.xdp_steer,
            steer_ports: vec![listen_port],
        }
    }
}

/// `LO-HI`, both ports, LO <= HI.
fn parse_port_range(s: &str) -> Result<(u16, u16), String> {
    let (lo, hi) = s
        .split_once('-')
        .ok_or_else(|| format!("{s:?} is not LO-HI"))?;
    let port = |p: &str| {
        p.trim()
            .parse::<u16>()
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(|| format!("{p:?} is not a port"))
    };
    let (lo, hi) = (port(lo)?, port(hi)?);
    if lo > hi {
        return Err(format!("{lo} is above {hi}"));
    }
    Ok((lo, hi))
}

fn parse_ratio(s: &str) -> Result<f64, String> {
    let r: f64 = s.parse().map_err(|e| format!("{e}"))?;
    if (0.0..=1.0).contains(&r) {
        Ok(r)
    } else {
        Err("a ratio between 0 and 1".into())
    }
}

fn parse_key_value(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err("expected key=value".into()),
    }
}
