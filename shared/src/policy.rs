//! What a route does besides choosing its backend: the typed, validated
//! form of an Ingress's annotations, shaped after Gateway API HTTPRoute
//! (matches, filters, weighted backends, timeouts, retry, session
//! persistence) plus the policies HTTPRoute has no word for (rate limit,
//! IP lists, body size, external auth, error pages).
//!
//! Everything here is already checked: the proxy compiles it and never
//! sees an annotation string.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

/// The policies of one rule; [`RoutePolicy::default`] is a plain route.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RoutePolicy {
    /// A security annotation was broken (`auth-url` not a URL, a CIDR that
    /// does not parse): the location answers 503 and is never proxied.
    pub denied: Option<String>,
    /// A fixed redirect (`permanent-redirect`, `temporal-redirect`).
    pub redirect: Option<Redirect>,
    /// The upstream path is replaced (`rewrite-target`).
    pub rewrite: Option<Rewrite>,
    /// Client IP allow and deny lists.
    pub access: Option<AccessList>,
    /// Per-client-IP request and connection limits.
    pub rate_limit: Option<RateLimit>,
    /// CORS headers and preflight answers.
    pub cors: Option<Cors>,
    /// An external authentication subrequest before proxying.
    pub auth: Option<ExtAuth>,
    /// The request body limit, when it differs from the global one.
    pub body_limit: Option<BodyLimit>,
    /// Upstream timeouts, when they differ from the global ones.
    pub timeouts: Timeouts,
    /// Which failed attempts are tried again on another endpoint.
    pub retry: Option<RetryPolicy>,
    /// The Host header the upstream sees (`upstream-vhost`).
    pub upstream_host: Option<String>,
    /// A second backend taking part of the traffic (`canary-*`).
    pub canary: Option<Canary>,
    /// Sticky sessions by cookie (`affinity: cookie`).
    pub affinity: Option<Affinity>,
    /// Upstream answers replaced by an error-page backend (`custom-http-errors`).
    pub error_pages: Option<ErrorPages>,
    /// Requests spread over weighted backends (HTTPRoute `backendRefs`);
    /// when set, the rule's own `backend` only names the route.
    #[serde(default)]
    pub split: Option<Vec<WeightedBackend>>,
    /// Headers changed in the upstream request (`RequestHeaderModifier`).
    #[serde(default)]
    pub request_headers: Option<HeaderModifier>,
    /// Headers changed in the client's response (`ResponseHeaderModifier`).
    #[serde(default)]
    pub response_headers: Option<HeaderModifier>,
    /// A redirect built from the request (`RequestRedirect`).
    #[serde(default)]
    pub request_redirect: Option<RequestRedirect>,
    /// The upstream path replaced (`URLRewrite` path); the query is kept.
    #[serde(default)]
    pub path_rewrite: Option<PathRewrite>,
    /// OpenTelemetry spans and trace-context trust, when they differ from
    /// the default (on, and the client's `traceparent` continued).
    #[serde(default)]
    pub tracing: Option<Tracing>,
    /// Copies of each request sent to other backends, their answers
    /// discarded (`mirror-target`, HTTPRoute `RequestMirror`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mirrors: Vec<Mirror>,
}

/// One request mirror: a copy of the request goes to `target`, and its
/// answer is read and dropped; the client's exchange never waits for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mirror {
    /// Where the copy goes: a Service (resolved in k8s-sync) or an IP
    /// literal, as for an auth service.
    pub target: AuthTarget,
    /// The share of requests mirrored: `numerator` out of `denominator`
    /// (`denominator` > 0; `numerator` >= `denominator`: every request).
    pub numerator: u32,
    /// See `numerator`.
    pub denominator: u32,
    /// The copy's `Host`; `None`: the one the primary upstream request carries.
    pub host: Option<String>,
    /// The copy's request target; `$request_uri` is the client's (path
    /// and query). `None`: the primary upstream request's target.
    pub path: Option<String>,
    /// The body is mirrored too (`mirror-request-body`, default on);
    /// without it the copy carries no body and no framing headers.
    pub body: bool,
    /// A name for reports (`ns/svc:port`, or the URL).
    pub name: String,
}

impl Mirror {
    /// Checks what the proxy relies on: a share that makes sense, a Host
    /// and a path template without CR, LF, spaces or NUL, and a path that
    /// starts with `/` or `$request_uri`.
    pub fn check(&self) -> Result<(), String> {
        if self.denominator == 0 {
            return Err("the mirrored fraction has a denominator of 0".to_string());
        }
        let bad = |s: &str| s.bytes().any(|b| !b.is_ascii_graphic());
        if self.host.as_deref().is_some_and(|h| h.is_empty() || bad(h)) {
            return Err("the mirror Host is empty or not printable ASCII".to_string());
        }
        if let Some(p) = &self.path {
            if bad(p) || !(p.starts_with('/') || p.starts_with("$request_uri")) {
                return Err(format!(
                    "mirror path {p:?} does not start with / or $request_uri"
                ));
            }
        }
        Ok(())
    }
}

/// A route's tracing (`enable-opentelemetry`,
/// `opentelemetry-trust-incoming-span`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tracing {
    /// Spans are recorded and `traceparent` rewritten (with `--otlp-endpoint`).
    pub enabled: bool,
    /// The client's `traceparent` is continued; otherwise a new trace starts.
    pub trust_incoming: bool,
}

/// One backend of a weighted split.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct WeightedBackend {
    /// Index into [`crate::config::RouteConfig::backends`]; `None`: an
    /// invalid reference, whose share of requests is answered 500.
    pub backend: Option<usize>,
    /// Relative weight; 0 takes no request. All 0: every request gets 500.
    pub weight: u32,
}

/// Header changes, applied in this order: set, add, remove. Names are
/// compared case-insensitively and written as given.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeaderModifier {
    /// Replace every value of the header with this one (or add it).
    pub set: Vec<(String, String)>,
    /// Add a value; existing values stay (a further header line).
    pub add: Vec<(String, String)>,
    /// Remove every value of these headers.
    pub remove: Vec<String>,
}

impl HeaderModifier {
    /// Headers no modifier may name: they frame the body or the
    /// connection, and changing them would let a route smuggle a second
    /// message past the one rauta framed.
    pub const FRAMING: [&'static str; 7] = [
        "content-length",
        "transfer-encoding",
        "connection",
        "upgrade",
        "keep-alive",
        "te",
        "trailer",
    ];

    /// Checks every name (a header token, not a framing header, and with
    /// `host_fixed` Host only set, never added or removed) and every value
    /// (no CR, LF or NUL). The translation refuses a filter that fails it;
    /// the proxy refuses to compile one.
    pub fn check(&self, host_fixed: bool) -> Result<(), String> {
        let names = (self.set.iter().map(|(n, _)| (n, true)))
            .chain(self.add.iter().map(|(n, _)| (n, false)))
            .chain(self.remove.iter().map(|n| (n, false)));
        for (name, is_set) in names {
            if !is_header_name(name) {
                return Err(format!("header name {name:?} is not valid"));
            }
            if Self::FRAMING.iter().any(|f| name.eq_ignore_ascii_case(f)) {
                return Err(format!(
                    "header {name} frames the message and cannot be changed"
                ));
            }
            if host_fixed && !is_set && name.eq_ignore_ascii_case("host") {
                return Err("Host may be set, not added or removed".to_string());
            }
        }
        let values = self.set.iter().chain(&self.add).map(|(_, v)| v);
        if values
            .into_iter()
            .any(|v| v.bytes().any(|b| matches!(b, b'\r' | b'\n' | 0)))
        {
            return Err("a header value contains CR, LF or NUL".to_string());
        }
        Ok(())
    }
}

/// True for an HTTP field name: a non-empty token (RFC 9110 §5.6.2).
pub fn is_header_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// A redirect whose `Location` is the request's URL with these parts
/// replaced (HTTPRoute `RequestRedirect`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestRedirect {
    /// `http` or `https`; `None`: the request's.
    pub scheme: Option<String>,
    /// `None`: the request's host (without its port).
    pub hostname: Option<String>,
    /// `None`: 80/443 when `scheme` is set, else the port the request
    /// arrived on. Port 80 with http and 443 with https are not written.
    pub port: Option<u16>,
    /// `None`: the request's path. The query string is kept.
    pub path: Option<PathRewrite>,
    /// 301, 302, 303, 307 or 308.
    pub code: u16,
}

/// How a path is replaced (HTTPRoute `HTTPPathModifier`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum PathRewrite {
    /// `ReplaceFullPath`: the whole path becomes this.
    Full(String),
    /// `ReplacePrefixMatch`: the rule's matched prefix (its `Prefix` path,
    /// by `/`-separated elements) becomes this; `/one` for prefix `/foo`
    /// turns `/foo/two` into `/one/two`, and `/` turns `/foo` into `/`
    /// and `/foo/two` into `/two`.
    Prefix(String),
}

impl RoutePolicy {
    /// True when the route does nothing beyond proxying to its backend.
    pub fn is_plain(&self) -> bool {
        *self == RoutePolicy::default()
    }
}

/// A fixed redirect answered by the proxy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Redirect {
    /// 300-308.
    pub code: u16,
    /// The location; `$request_uri`, `$host`, `$scheme` are expanded per request.
    pub location: String,
}

/// A rewrite of the upstream path: nginx's `rewrite "(?i)P" T break`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rewrite {
    /// The replacement for the whole path; `$1`..`$9` are the rule regex's captures.
    pub target: String,
    /// Sent as `X-Forwarded-Prefix` (`x-forwarded-prefix`).
    pub forwarded_prefix: Option<String>,
}

/// An IPv4 or IPv6 prefix; host bits are cleared when made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// A prefix of `prefix` bits of `addr` (host bits cleared); `None` when
    /// `prefix` is longer than the address.
    pub fn new(addr: IpAddr, prefix: u8) -> Option<Cidr> {
        let addr = match addr {
            IpAddr::V4(a) if prefix <= 32 => {
                let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
                IpAddr::V4((u32::from(a) & mask).into())
            }
            IpAddr::V6(a) if prefix <= 128 => {
                let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
                IpAddr::V6((u128::from(a) & mask).into())
            }
            _ => return None,
        };
        Some(Cidr { addr, prefix })
    }

    /// The network address.
    pub fn addr(&self) -> IpAddr {
        self.addr
    }

    /// The prefix length in bits.
    pub fn prefix_len(&self) -> u8 {
        self.prefix
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl FromStr for Cidr {
    type Err = String;

    /// `ADDR/LEN`, or a bare address (a single host).
    fn from_str(s: &str) -> Result<Cidr, String> {
        let (addr, len) = match s.split_once('/') {
            Some((a, l)) => (a, Some(l)),
            None => (s, None),
        };
        let addr: IpAddr = addr
            .parse()
            .map_err(|_| format!("{s:?} is not an IP address or prefix (ADDR/LEN)"))?;
        let len = match len {
            Some(l) => l
                .parse::<u8>()
                .map_err(|_| format!("{s:?}: bad prefix length {l:?}"))?,
            None if addr.is_ipv4() => 32,
            None => 128,
        };
        Cidr::new(addr, len).ok_or_else(|| format!("{s:?}: prefix length {len} is too long"))
    }
}

/// Who may use a route: denied first, then allowed; with an allow list,
/// anyone not on it is denied (nginx's `deny; allow; deny all`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessList {
    /// Answered 403 whatever `allow` says.
    pub deny: Vec<Cidr>,
    /// When not empty, only these are served; the rest get 403.
    pub allow: Vec<Cidr>,
}

/// Per-client-IP limits, shared by every rule of one Ingress.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RateLimit {
    /// The zone (one per Ingress, `namespace/name`): its rules share the counts.
    pub zone: String,
    /// Requests per second, when limited.
    pub rps: Option<u32>,
    /// Requests per minute, when limited.
    pub rpm: Option<u32>,
    /// The burst is rate × this (default 5).
    pub burst_multiplier: u32,
    /// In-flight requests per client IP, when limited.
    pub connections: Option<u32>,
    /// Clients that are never limited.
    pub whitelist: Vec<Cidr>,
    /// The status of a rejected request (default 503).
    pub status: u16,
}

/// Which origins a CORS policy allows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum CorsOrigins {
    /// `*`: every origin.
    Any,
    /// `scheme://host[:port]`, lower-case; a host may start with `*.`, or
    /// be `*`, matched as [`CorsOriginMatch`] says.
    List(Vec<String>),
}

/// How a listed origin's wildcard and port match a request's `Origin`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum CorsOriginMatch {
    /// ingress-nginx: `*.` stands for exactly one DNS label; ports compare
    /// as written (`https://a` does not match `https://a:443`).
    #[default]
    OneLabel,
    /// Gateway API: `*` is a greedy match to the left (`*.bar.com` takes
    /// `a.b.bar.com`; a host of `*` alone takes every host); an absent port
    /// equals the scheme's default (http 80, https 443).
    Greedy,
}

/// Which answers carry which CORS lines.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum CorsAnswers {
    /// ingress-nginx: any OPTIONS from an allowed origin is a preflight
    /// answered 204; every allowed answer carries all the lines (methods,
    /// headers, max-age, expose); other origins are proxied without them.
    #[default]
    Every,
    /// The Fetch standard, as the Gateway API's `CORS` filter asks: a
    /// preflight is an OPTIONS with `Origin` and
    /// `Access-Control-Request-Method`, always answered 204 by rauta (with
    /// no CORS lines for an origin not allowed). Allow-Methods (Allow-Headers)
    /// is sent only when the preflight asks for a method (headers), and
    /// `*` there is echoed from the request when credentials are allowed;
    /// Max-Age only on preflights. Other answers get the origin,
    /// credentials and expose lines.
    Fetch,
}

/// CORS answers for a route (`enable-cors` and `cors-*`, or an HTTPRoute
/// `CORS` filter).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cors {
    /// Allowed origins.
    pub origins: CorsOrigins,
    /// How the listed origins match.
    #[serde(default)]
    pub origin_match: CorsOriginMatch,
    /// `Access-Control-Allow-Methods` (comma-separated; with
    /// [`CorsAnswers::Fetch`], empty: not sent, `*`: any method).
    pub methods: String,
    /// `Access-Control-Allow-Headers` (as `methods`).
    pub headers: String,
    /// `Access-Control-Expose-Headers`, when set.
    pub expose_headers: Option<String>,
    /// Sends `Access-Control-Allow-Credentials: true`. `*` is then never
    /// sent for the origin, methods or headers: the request's Origin
    /// (`Access-Control-Request-Method`, `-Headers`) is echoed instead.
    pub credentials: bool,
    /// `Access-Control-Max-Age`, in seconds.
    pub max_age: u64,
    /// Which answers carry which lines.
    #[serde(default)]
    pub answers: CorsAnswers,
}

/// An external authentication service asked before every request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExtAuth {
    /// `http://host[:port]/path` of the auth service.
    pub url: String,
    /// The subrequest's method (default GET).
    pub method: String,
    /// Where a 401 sends the client (a 302 with `rd=`), when set.
    pub signin: Option<String>,
    /// Auth response headers copied into the upstream request (lower-case);
    /// client-sent headers of these names never reach the upstream.
    pub response_headers: Vec<String>,
    /// The `Host` the subrequest carries (the URL's authority).
    pub host: String,
    /// The subrequest's target: the URL's path and query.
    pub path: String,
    /// Where the subrequest goes.
    pub target: AuthTarget,
}

/// Where an auth subrequest (or a mirrored request) is sent: resolved in
/// k8s-sync, never by DNS on a shard.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum AuthTarget {
    /// An IP literal in the URL.
    Addr(std::net::SocketAddr),
    /// A Service the URL names (`svc.ns[.svc[.cluster.local]]`): index
    /// into [`crate::config::RouteConfig::backends`].
    Backend(usize),
}

/// The request body limit of a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum BodyLimit {
    /// `proxy-body-size: 0`.
    Unlimited,
    /// At most this many bytes; more is answered 413.
    Bytes(u64),
}

/// Upstream timeouts in milliseconds; `None` keeps the global value.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Timeouts {
    /// To establish the upstream connection.
    pub connect_ms: Option<u64>,
    /// Between two reads from the upstream (idle, not total).
    pub read_ms: Option<u64>,
    /// Between two writes to the upstream (idle, not total).
    pub send_ms: Option<u64>,
    /// From the request head's arrival until the response head is
    /// received, all attempts together; then 504 (HTTPRoute `timeouts.request`).
    #[serde(default)]
    pub request_ms: Option<u64>,
    /// One attempt, from connecting until its response head; then the
    /// attempt fails as a timeout (HTTPRoute `timeouts.backendRequest`).
    #[serde(default)]
    pub backend_request_ms: Option<u64>,
}

/// When a failed attempt is tried again on another endpoint
/// (`proxy-next-upstream`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetryPolicy {
    /// A connect failure or a reset before any response byte.
    pub on_error: bool,
    /// A timeout before any response byte.
    pub on_timeout: bool,
    /// A response head that is not valid HTTP.
    pub on_invalid_header: bool,
    /// Response statuses that are retried (500, 502, 503, 504, 403, 404, 429).
    pub on_status: Vec<u16>,
    /// POST, PATCH and LOCK are retried too.
    pub non_idempotent: bool,
    /// Attempts in all, the first included (0: as many as endpoints).
    pub tries: u32,
    /// Time for all attempts, in milliseconds (0: no limit).
    pub timeout_ms: u64,
}

/// A canary backend and when it takes a request: header, then cookie,
/// then weight.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Canary {
    /// Index into [`crate::config::RouteConfig::backends`].
    pub backend: usize,
    /// The header that selects the canary (name lower-case).
    pub header: Option<String>,
    /// An exact value of `header` that selects the canary.
    pub header_value: Option<String>,
    /// A regex on `header` that selects the canary.
    pub header_pattern: Option<String>,
    /// The cookie that selects the canary (`always` / `never`).
    pub cookie: Option<String>,
    /// Requests out of `weight_total` that go to the canary.
    pub weight: u32,
    /// 100 unless `canary-weight-total` is larger.
    pub weight_total: u32,
    /// The Ingress the canary came from.
    pub source: crate::config::IngressRef,
}

/// `SameSite` of the affinity cookie.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SameSite {
    /// `SameSite=None`.
    None,
    /// `SameSite=Lax`.
    Lax,
    /// `SameSite=Strict`.
    Strict,
}

/// Sticky sessions by cookie.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Affinity {
    /// Cookie name (default `INGRESSCOOKIE`).
    pub cookie: String,
    /// Cookie `Path` (default: the rule's path).
    pub path: Option<String>,
    /// `Expires` = now + this many seconds, when set.
    pub expires_s: Option<u64>,
    /// `Max-Age`, when set.
    pub max_age_s: Option<u64>,
    /// `Secure` even over plain HTTP.
    pub secure: bool,
    /// `SameSite`, when set.
    pub samesite: Option<SameSite>,
    /// After a failed attempt, a new endpoint (and cookie) is picked.
    pub change_on_failure: bool,
    /// `persistent`: sessions never move on scale-up (else `balanced`).
    pub persistent: bool,
    /// A client whose cookie names a canary endpoint stays on the canary
    /// (`affinity-canary-behavior: sticky`, the default; `legacy` decides
    /// canary or not first).
    pub canary_sticky: bool,
}

/// Upstream answers with these statuses are replaced by the error
/// backend's; when the route's backend has no endpoint, the error backend
/// is asked with code 503.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorPages {
    /// The intercepted statuses (may be empty: `default-backend` alone).
    pub codes: Vec<u16>,
    /// Index into [`crate::config::RouteConfig::backends`] of the error backend.
    pub backend: usize,
}

/// What applies to a whole host, whichever rule or Ingress takes the request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostPolicy {
    /// The host ([`crate::config::HostMatch::Any`]: the rules without host).
    pub host: crate::config::HostMatch,
    /// A request for exactly `/` gets a 302 here (`app-root`).
    pub app_root: Option<String>,
    /// Other names served by the same rules (`server-alias`).
    pub aliases: Vec<String>,
    /// Every request gets a 308 to the same URL on this host instead
    /// (`from-to-www-redirect`, on the `www.` twin of a served host).
    pub redirect_host: Option<String>,
    /// Paths are matched as case-insensitive regexes anchored at the start,
    /// longest first (ingress-nginx's host-wide regex mode).
    pub regex: bool,
}

impl HostPolicy {
    /// No policy for `host`: no app root, aliases, redirect or regex mode.
    pub fn new(host: crate::config::HostMatch) -> HostPolicy {
        HostPolicy {
            host,
            app_root: None,
            aliases: Vec::new(),
            redirect_host: None,
            regex: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Cidr;

    #[test]
    fn cidrs_parse_and_clear_host_bits() {
        let c: Cidr = "10.1.2.3/8".parse().expect("cidr");
        assert_eq!(c.to_string(), "10.0.0.0/8");
        let c: Cidr = "2001:db8::1/32".parse().expect("cidr");
        assert_eq!(c.to_string(), "2001:db8::/32");
        assert_eq!("192.0.2.7".parse::<Cidr>().map(|c| c.prefix_len()), Ok(32));
        assert_eq!("::1".parse::<Cidr>().map(|c| c.prefix_len()), Ok(128));
        for bad in [
            "",
            "10.0.0.0/33",
            "::/129",
            "foo/8",
            "10.0.0.0/x",
            "10.0.0/8",
        ] {
            assert!(bad.parse::<Cidr>().is_err(), "{bad}");
        }
    }
}
