//! The route-config model: what k8s-sync hands to the proxy.
//!
//! It is the translated, validated and conflict-free form of a set of
//! Kubernetes objects. The proxy compiles it into its own lookup structures;
//! nothing here is tuned for lookup speed.

use crate::policy::{HostPolicy, RoutePolicy};
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;

/// A whole, validated routing configuration.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RouteConfig {
    /// Rules after merging and conflict resolution; at most one rule per
    /// (host, path, path type).
    pub rules: Vec<RuleConfig>,
    /// Index into `backends` of the backend that takes what no rule matches.
    pub default_backend: Option<usize>,
    /// Ingress that supplied `default_backend`.
    pub default_backend_source: Option<IngressRef>,
    /// Every backend that a rule or the default backend points at.
    pub backends: Vec<BackendConfig>,
    /// TLS certificates from the served Ingresses' `spec.tls`, validated
    /// and conflict-free: each host appears in at most one entry.
    #[serde(default)]
    pub tls: Vec<TlsCertConfig>,
    /// What applies per host (app root, aliases, regex mode); hosts
    /// without any are not listed.
    #[serde(default)]
    pub hosts: Vec<HostPolicy>,
    /// TCP and UDP services (`--tcp-services-configmap`,
    /// `--udp-services-configmap`), sorted by protocol and port.
    #[serde(default)]
    pub l4: Vec<L4ServiceConfig>,
    /// Hosts whose TLS connections are relayed unterminated
    /// (`ssl-passthrough`), at most one entry per host.
    #[serde(default)]
    pub passthrough: Vec<PassthroughConfig>,
}

/// A host whose TLS connections (by SNI) go to a backend unterminated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PassthroughConfig {
    /// The host (exact or wildcard).
    pub host: HostMatch,
    /// Index into [`RouteConfig::backends`].
    pub backend: usize,
    /// The Ingress that asked for it.
    pub source: IngressRef,
}

/// One L4 service: a listen port relayed to a Service's endpoints.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct L4ServiceConfig {
    /// TCP or UDP.
    pub protocol: L4Protocol,
    /// Port listened on (the ConfigMap key), on `--listen`'s address.
    pub port: u16,
    /// Index into [`RouteConfig::backends`].
    pub backend: usize,
    /// Send a PROXY protocol v1 header to the backend first (the first `:PROXY`).
    pub proxy_protocol_upstream: bool,
    /// Expect a PROXY protocol header (v1 or v2) from a load balancer in
    /// front, and take the client address from it (the second `:PROXY`).
    pub proxy_protocol_downstream: bool,
    /// Marked for the XDP fast path (`rauta.io/xdp-fast-path`): new flows
    /// are NATed to a backend in XDP when `--xdp-fast-path` is on.
    #[serde(default)]
    pub xdp_fast_path: bool,
    /// The ConfigMap entry it came from.
    pub source: ConfigMapEntry,
}

/// The transport of an L4 service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum L4Protocol {
    /// A TCP listener; each connection relayed to one endpoint.
    Tcp,
    /// A UDP socket; each client address's datagrams relayed to one endpoint.
    Udp,
}

impl L4Protocol {
    /// `tcp` or `udp`, as in metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            L4Protocol::Tcp => "tcp",
            L4Protocol::Udp => "udp",
        }
    }
}

/// A key of a ConfigMap, for messages and labels.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ConfigMapEntry {
    /// Namespace of the ConfigMap.
    pub namespace: String,
    /// Name of the ConfigMap.
    pub name: String,
    /// The data key (the listen port as written).
    pub key: String,
}

impl std::fmt::Display for ConfigMapEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "ConfigMap {}/{} key {:?}",
            self.namespace, self.name, self.key
        )
    }
}

/// One routing rule: host + path [+ conditions] -> backend.
///
/// Rules with the same (host, path, path type) but different
/// [`RuleConfig::conditions`] may follow each other; they are listed in
/// precedence order and the first whose conditions hold takes the request.
/// When none holds, the next shorter matching path is tried.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RuleConfig {
    /// Which hosts the rule applies to.
    pub host: HostMatch,
    /// The path as written in the Ingress (starts with `/`).
    pub path: String,
    /// How `path` is compared with the request path.
    pub path_type: PathType,
    /// Index into [`RouteConfig::backends`].
    pub backend: usize,
    /// The Ingress this rule came from.
    pub source: IngressRef,
    /// Plain-HTTP requests get a 308 to `https://` instead (the Ingress has
    /// TLS for this host and `ssl-redirect` is not off, or `force-ssl-redirect`).
    #[serde(default)]
    pub ssl_redirect: bool,
    /// Everything else the Ingress's annotations ask of this rule.
    #[serde(default)]
    pub policy: RoutePolicy,
    /// What the request must carry besides host and path (HTTPRoute
    /// matches, the Gateway listener it arrived on); `None`: nothing.
    #[serde(default)]
    pub conditions: Option<Box<Conditions>>,
}

/// Conditions on a request beyond host and path; all must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conditions {
    /// The request method, upper-case (`GET`), compared exactly.
    pub method: Option<String>,
    /// Header conditions; names lower-case. A header sent several times is
    /// compared by its first value.
    pub headers: Vec<ValueMatch>,
    /// Query parameter conditions; names compared exactly (case-sensitive),
    /// values as sent (not percent-decoded), first occurrence only.
    pub query: Vec<ValueMatch>,
    /// `Some(true)`: only requests on TLS listeners; `Some(false)`: only
    /// on plain ones (the Gateway listener's protocol).
    pub tls: Option<bool>,
    /// Only requests that reached rauta on this local port (a Gateway
    /// listener port other than 80 and 443).
    pub port: Option<u16>,
}

impl Conditions {
    /// True when no condition is set.
    pub fn is_empty(&self) -> bool {
        *self == Conditions::default()
    }
}

/// A named value (header or query parameter) and how it must match.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ValueMatch {
    /// Header name (lower-case) or query parameter name (as written).
    pub name: String,
    /// How the value must match.
    pub value: StringMatch,
}

/// How a value is compared.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum StringMatch {
    /// Byte-for-byte equal (case-sensitive).
    Exact(String),
    /// The whole value matches this regex (`regex` crate syntax; checked
    /// by the translation).
    RegularExpression(String),
}

/// One certificate (a `kubernetes.io/tls` Secret) and the hosts it serves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TlsCertConfig {
    /// Hosts that get this certificate. [`HostMatch::Any`] (a Gateway HTTPS
    /// listener without hostname) makes it the fallback certificate for
    /// every SNI no other entry covers, and for no SNI, instead of the
    /// built-in default; at most one entry has it.
    pub hosts: Vec<HostMatch>,
    /// The Secret the certificate came from.
    pub secret: SecretRef,
    /// `tls.crt`: the PEM certificate chain, leaf first.
    pub cert_pem: String,
    /// `tls.key`: the PEM private key matching the leaf.
    pub key_pem: String,
    /// The leaf's notAfter, in seconds since the Unix epoch.
    pub not_after: i64,
    /// The (oldest) Ingress that named the Secret for these hosts.
    pub source: IngressRef,
}

/// Namespace and name of a Secret.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct SecretRef {
    /// Namespace of the Secret (always the Ingress's own).
    pub namespace: String,
    /// Name of the Secret.
    pub name: String,
}

impl std::fmt::Display for SecretRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// Host part of a rule.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum HostMatch {
    /// No host in the rule: matches every request host.
    Any,
    /// An exact host, lower-case, without port.
    Exact(String),
    /// `*.example.com`, stored as the suffix `example.com` (lower-case);
    /// matches exactly one extra DNS label.
    Wildcard(String),
    /// Gateway API `*.example.com`, stored as `example.com`: matches one
    /// or more extra labels (`a.example.com`, `a.b.example.com`). Tried
    /// after the one-label wildcard of the same suffix, longest suffix first.
    Suffix(String),
}

/// Ingress path types (networking.k8s.io/v1), and HTTPRoute's
/// `RegularExpression`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum PathType {
    /// The whole path, case-sensitive, trailing slash significant.
    Exact,
    /// Element-wise prefix on `/`-separated segments.
    Prefix,
    /// rauta treats it exactly as `Prefix` (as ingress-nginx does without
    /// its regex annotation).
    ImplementationSpecific,
    /// HTTPRoute `RegularExpression`: the whole path matches the regex
    /// (`regex` crate syntax, case-sensitive). Tried after `Exact` and
    /// before every prefix, longest pattern first.
    RegularExpression,
}

/// Namespace and name of the object a rule came from: an Ingress, or
/// (by [`IngressRef::kind`]) a Gateway API object.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct IngressRef {
    /// Namespace of the object.
    pub namespace: String,
    /// Name of the object.
    pub name: String,
    /// Its kind; Ingress unless said otherwise.
    #[serde(default)]
    pub kind: RouteKind,
}

impl IngressRef {
    /// An Ingress.
    pub fn ingress(namespace: impl Into<String>, name: impl Into<String>) -> IngressRef {
        IngressRef {
            namespace: namespace.into(),
            name: name.into(),
            kind: RouteKind::Ingress,
        }
    }
}

impl std::fmt::Display for IngressRef {
    /// `ns/name` for an Ingress, `Kind ns/name` for the other kinds.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.kind {
            RouteKind::Ingress => write!(f, "{}/{}", self.namespace, self.name),
            kind => write!(f, "{} {}/{}", kind.as_str(), self.namespace, self.name),
        }
    }
}

/// The kind of object rules and certificates come from.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
pub enum RouteKind {
    /// networking.k8s.io/v1 Ingress.
    #[default]
    Ingress,
    /// gateway.networking.k8s.io/v1 HTTPRoute.
    HttpRoute,
    /// gateway.networking.k8s.io/v1 Gateway (its listeners' certificates).
    Gateway,
    /// gateway.networking.k8s.io/v1 GRPCRoute.
    GrpcRoute,
    /// gateway.networking.k8s.io/v1 TLSRoute (passthrough).
    TlsRoute,
    /// gateway.networking.k8s.io/v1 BackendTLSPolicy (TLS to a Service).
    BackendTlsPolicy,
}

impl RouteKind {
    /// The Kubernetes kind, as in labels and messages.
    pub fn as_str(self) -> &'static str {
        match self {
            RouteKind::Ingress => "Ingress",
            RouteKind::HttpRoute => "HTTPRoute",
            RouteKind::Gateway => "Gateway",
            RouteKind::GrpcRoute => "GRPCRoute",
            RouteKind::TlsRoute => "TLSRoute",
            RouteKind::BackendTlsPolicy => "BackendTLSPolicy",
        }
    }
}

/// A set of endpoints behind one Service port, with its balancing policy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BackendConfig {
    /// Human-readable name, e.g. `default/echo:http`.
    pub name: String,
    /// Namespace of the Service.
    pub namespace: String,
    /// Name of the Service.
    pub service: String,
    /// The Service port as the Ingress named it.
    pub port: ServicePort,
    /// Endpoints to send traffic to (already filtered: ready ones, or
    /// serving+terminating ones when none is ready).
    pub endpoints: Vec<EndpointConfig>,
    /// How requests are spread over `endpoints`.
    pub policy: LbPolicy,
    /// What the endpoints speak (`backend-protocol`).
    #[serde(default)]
    pub protocol: UpstreamProtocol,
    /// TLS towards the endpoints, for `Https` and `Grpcs` (`proxy-ssl-*`).
    #[serde(default)]
    pub tls: Option<UpstreamTls>,
}

/// What a backend's endpoints speak (`backend-protocol`).
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
pub enum UpstreamProtocol {
    /// HTTP/1.1 over TCP.
    #[default]
    Http,
    /// HTTP/1.1 over TLS (`HTTPS`).
    Https,
    /// HTTP/2 with prior knowledge over TCP (`GRPC`).
    Grpc,
    /// HTTP/2 over TLS with ALPN `h2` (`GRPCS`).
    Grpcs,
}

impl UpstreamProtocol {
    /// The endpoints speak TLS.
    pub fn is_tls(self) -> bool {
        matches!(self, UpstreamProtocol::Https | UpstreamProtocol::Grpcs)
    }

    /// The endpoints speak HTTP/2.
    pub fn is_h2(self) -> bool {
        matches!(self, UpstreamProtocol::Grpc | UpstreamProtocol::Grpcs)
    }
}

/// TLS towards a backend's endpoints. The defaults are ingress-nginx's:
/// no certificate verification and no SNI.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct UpstreamTls {
    /// Verify the endpoint's certificate against `ca_pem` (`proxy-ssl-verify`).
    pub verify: bool,
    /// Most intermediate certificates accepted when verifying (`proxy-ssl-verify-depth`).
    pub verify_depth: u8,
    /// CA bundle, PEM (`ca.crt` of `proxy-ssl-secret`).
    pub ca_pem: Option<String>,
    /// Client certificate chain, PEM, for mutual TLS (`tls.crt`).
    pub client_cert_pem: Option<String>,
    /// Client private key, PEM (`tls.key`).
    pub client_key_pem: Option<String>,
    /// The name verified and, with `sni`, sent (`proxy-ssl-name`); none:
    /// the Service's `name.namespace.svc`.
    pub server_name: Option<String>,
    /// Send the name as SNI (`proxy-ssl-server-name`).
    pub sni: bool,
}

/// A Service port, by number or by name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum ServicePort {
    /// `port.number` in the Ingress backend.
    Number(u16),
    /// `port.name` in the Ingress backend.
    Name(String),
}

impl std::fmt::Display for ServicePort {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ServicePort::Number(n) => write!(f, "{n}"),
            ServicePort::Name(n) => f.write_str(n),
        }
    }
}

/// One backend address.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EndpointConfig {
    /// IP and target port.
    pub addr: SocketAddr,
    /// Relative weight (>= 1); 1 unless an annotation says otherwise.
    pub weight: u32,
    /// False when the endpoint is only serving+terminating (a fallback).
    pub ready: bool,
    /// The pod (or other object) behind the endpoint, when known.
    pub target: Option<String>,
}

/// Load-balancing policy of a backend.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum LbPolicy {
    /// Weighted round robin (the default).
    RoundRobin,
    /// Power of two random choices on the shard's in-flight request counts.
    LeastRequest,
    /// Maglev consistent hashing on a request key.
    Maglev(HashKey),
}

/// What a consistent hash is computed over.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum HashKey {
    /// The client's IP address (`$remote_addr`).
    ClientIp,
    /// A request header, name lower-case (`$http_x_user` -> `x-user`).
    Header(String),
    /// The request target, path and query (`$request_uri`).
    RequestUri,
    /// The request host (`$host`).
    Host,
}
