//! A [`RouteConfig`] as `rauta check` shows it: aligned plain-text tables,
//! and the same facts as a JSON-ready [`ConfigView`].

use rauta_shared::config::{
    Conditions, HashKey, HostMatch, LbPolicy, PathType, RouteConfig, RouteKind, StringMatch,
};
use rauta_shared::policy::{AuthTarget, Mirror, WeightedBackend};
use serde::Serialize;
use std::fmt::Write;

/// Renders rules, backends, certificates and the default backend as
/// aligned plain-text tables.
pub fn render(config: &RouteConfig) -> String {
    let backend_name = |i: usize| {
        config
            .backends
            .get(i)
            .map_or_else(|| format!("<missing backend {i}>"), |b| b.name.clone())
    };
    let mut out = String::new();

    out.push_str("Rules:\n");
    if config.rules.is_empty() {
        out.push_str("  (none)\n");
    } else {
        // The HTTP column only when some rule redirects to HTTPS.
        let redirects = config.rules.iter().any(|r| r.ssl_redirect);
        // The WHEN column only when some rule has conditions (HTTPRoute matches).
        let when = config.rules.iter().any(|r| r.conditions.is_some());
        let mut header = row(["HOST", "PATH", "MATCH", "BACKEND", "SOURCE"]);
        if redirects {
            header.push("HTTP".to_string());
        }
        if when {
            header.push("WHEN".to_string());
        }
        let mut rows = vec![header];
        for rule in &config.rules {
            let mut cells = vec![
                host(&rule.host),
                rule.path.clone(),
                path_type(rule.path_type).to_string(),
                match &rule.policy.split {
                    Some(split) => split_name(split, &backend_name),
                    None => backend_name(rule.backend),
                } + &mirrors_name(&rule.policy.mirrors, &backend_name),
                match rule.source.kind {
                    RouteKind::Ingress => format!("Ingress {}", rule.source),
                    _ => rule.source.to_string(),
                },
            ];
            if redirects {
                let http = if rule.ssl_redirect {
                    "308 to https"
                } else {
                    "served"
                };
                cells.push(http.to_string());
            }
            if when {
                cells.push(rule.conditions.as_deref().map_or(String::new(), conditions));
            }
            rows.push(cells);
        }
        table(&mut out, &rows);
    }

    out.push_str("\nBackends:\n");
    if config.backends.is_empty() {
        out.push_str("  (none)\n");
    }
    for backend in &config.backends {
        let _ = writeln!(
            out,
            "  {}  policy {}",
            backend.name,
            policy(&backend.policy)
        );
        if backend.endpoints.is_empty() {
            out.push_str("    no endpoints\n");
            continue;
        }
        let mut rows = vec![row(["ADDRESS", "WEIGHT", "STATE", "TARGET"])];
        for ep in &backend.endpoints {
            rows.push(vec![
                ep.addr.to_string(),
                ep.weight.to_string(),
                if ep.ready { "ready" } else { "terminating" }.to_string(),
                ep.target.clone().unwrap_or_else(|| "-".to_string()),
            ]);
        }
        let mut endpoints = String::new();
        table(&mut endpoints, &rows);
        for line in endpoints.lines() {
            let _ = writeln!(out, "  {line}");
        }
    }

    if !config.tls.is_empty() {
        out.push_str("\nTLS certificates:\n");
        let mut rows = vec![row(["HOST", "SECRET", "EXPIRES", "SOURCE"])];
        for cert in &config.tls {
            for h in &cert.hosts {
                rows.push(vec![
                    host(h),
                    cert.secret.to_string(),
                    date(cert.not_after),
                    format!("Ingress {}", cert.source),
                ]);
            }
        }
        table(&mut out, &rows);
    }

    if !config.l4.is_empty() {
        out.push_str("\nTCP and UDP services:\n");
        let mut rows = vec![row([
            "PORT",
            "PROTOCOL",
            "BACKEND",
            "PROXY PROTOCOL",
            "XDP FAST PATH",
            "SOURCE",
        ])];
        for s in &config.l4 {
            let proxy = match (s.proxy_protocol_downstream, s.proxy_protocol_upstream) {
                (false, false) => "-",
                (true, false) => "from clients",
                (false, true) => "to backend",
                (true, true) => "from clients, to backend",
            };
            rows.push(vec![
                s.port.to_string(),
                s.protocol.as_str().to_string(),
                backend_name(s.backend),
                proxy.to_string(),
                if s.xdp_fast_path { "yes" } else { "-" }.to_string(),
                s.source.to_string(),
            ]);
        }
        table(&mut out, &rows);
    }

    if !config.passthrough.is_empty() {
        out.push_str("\nTLS passthrough (relayed unterminated by SNI):\n");
        let mut rows = vec![row(["HOST", "BACKEND", "SOURCE"])];
        for p in &config.passthrough {
            rows.push(vec![
                host(&p.host),
                backend_name(p.backend),
                format!("Ingress {}", p.source),
            ]);
        }
        table(&mut out, &rows);
    }

    out.push_str("\nDefault backend: ");
    match (config.default_backend, &config.default_backend_source) {
        (Some(i), Some(source)) => {
            let _ = writeln!(out, "{} (from Ingress {source})", backend_name(i));
        }
        (Some(i), None) => {
            let _ = writeln!(out, "{}", backend_name(i));
        }
        (None, _) => out.push_str("none (unmatched requests get 404)\n"),
    }
    out
}

/// Seconds since the epoch as a UTC date (`2031-06-30`).
fn date(unix: i64) -> String {
    match time::OffsetDateTime::from_unix_timestamp(unix) {
        Ok(t) => t.date().to_string(),
        Err(_) => format!("@{unix}"),
    }
}

/// A row of owned cells from string literals.
pub(super) fn row<const N: usize>(cells: [&str; N]) -> Vec<String> {
    cells.iter().map(|c| c.to_string()).collect()
}

/// Appends `rows` indented by two spaces, columns padded to their widest cell.
pub(super) fn table(out: &mut String, rows: &[Vec<String>]) {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|cell| cell.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    for r in rows {
        let mut line = String::from(" ");
        for (cell, width) in r.iter().zip(&widths) {
            let _ = write!(line, " {cell:<width$} ");
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
}

/// `*` for any host, `*.example.com` for a wildcard.
fn host(host: &HostMatch) -> String {
    match host {
        HostMatch::Any => "*".to_string(),
        HostMatch::Exact(h) => h.clone(),
        HostMatch::Wildcard(h) | HostMatch::Suffix(h) => format!("*.{h}"),
    }
}

/// The path type as written in an Ingress.
fn path_type(path_type: PathType) -> &'static str {
    match path_type {
        PathType::Exact => "Exact",
        PathType::Prefix => "Prefix",
        PathType::ImplementationSpecific => "ImplementationSpecific",
        PathType::RegularExpression => "RegularExpression",
    }
}

/// A rule's mirrors in words, after its backend: ` + mirror ns/m:80 50%`.
fn mirrors_name(mirrors: &[Mirror], name: &dyn Fn(usize) -> String) -> String {
    let mut out = String::new();
    for m in mirrors {
        let _ = write!(out, " + mirror {}", mirror_name(m, name));
    }
    out
}

/// One mirror in words: `ns/m:80 50% (no body)`.
fn mirror_name(m: &Mirror, name: &dyn Fn(usize) -> String) -> String {
    let mut out = match m.target {
        AuthTarget::Backend(i) => name(i),
        AuthTarget::Addr(addr) => addr.to_string(),
    };
    if m.numerator < m.denominator {
        let share = f64::from(m.numerator) * 100.0 / f64::from(m.denominator);
        let _ = write!(out, " {share}%");
    }
    if !m.body {
        out.push_str(" (no body)");
    }
    out
}

/// A weighted split in words: `ns/a:80 70%, (invalid: 500) 30%`.
fn split_name(split: &[WeightedBackend], name: &dyn Fn(usize) -> String) -> String {
    let total: u64 = split.iter().map(|w| u64::from(w.weight)).sum();
    if total == 0 {
        return "(500: no backend with weight)".to_string();
    }
    split
        .iter()
        .filter(|w| w.weight > 0)
        .map(|w| {
            let who = w.backend.map_or("(invalid: 500)".to_string(), name);
            format!("{who} {}%", u64::from(w.weight) * 100 / total)
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Conditions in words: `method=GET header x-env=canary query q~^a+$ tls`.
fn conditions(c: &Conditions) -> String {
    let value = |v: &StringMatch| match v {
        StringMatch::Exact(s) => format!("={s}"),
        StringMatch::RegularExpression(r) => format!("~{r}"),
    };
    let mut parts = Vec::new();
    if let Some(m) = &c.method {
        parts.push(format!("method={m}"));
    }
    for h in &c.headers {
        parts.push(format!("header {}{}", h.name, value(&h.value)));
    }
    for q in &c.query {
        parts.push(format!("query {}{}", q.name, value(&q.value)));
    }
    match (c.tls, c.port) {
        (Some(true), Some(p)) => parts.push(format!("https :{p}")),
        (Some(true), None) => parts.push("https".to_string()),
        (Some(false), _) => parts.push("http".to_string()),
        _ => {}
    }
    parts.join(" ")
}

/// A policy in words.
fn policy(policy: &LbPolicy) -> String {
    match policy {
        LbPolicy::RoundRobin => "round-robin".to_string(),
        LbPolicy::LeastRequest => "least-request".to_string(),
        LbPolicy::Maglev(key) => match key {
            HashKey::ClientIp => "maglev(client-ip)".to_string(),
            HashKey::Header(h) => format!("maglev(header {h})"),
            HashKey::RequestUri => "maglev(request-uri)".to_string(),
            HashKey::Host => "maglev(host)".to_string(),
        },
    }
}

/// The route table in the JSON report: what the text tables show.
#[derive(Debug, Clone, Serialize)]
pub struct ConfigView {
    /// Every rule, in table order.
    pub rules: Vec<RuleView>,
    /// Every backend with its endpoints.
    pub backends: Vec<BackendView>,
    /// One entry per TLS host.
    pub tls: Vec<TlsView>,
    /// What answers unmatched requests; `None`: 404.
    pub default_backend: Option<DefaultView>,
}

/// One rule.
#[derive(Debug, Clone, Serialize)]
pub struct RuleView {
    /// `*`, `*.example.com` or an exact host.
    pub host: String,
    /// The path as written.
    pub path: String,
    /// `Exact`, `Prefix` or `ImplementationSpecific`.
    #[serde(rename = "match")]
    pub path_type: &'static str,
    /// `namespace/service:port`.
    pub backend: String,
    /// `namespace/name` of the Ingress.
    pub ingress: String,
    /// Plain HTTP redirected with 308 to https.
    pub ssl_redirect: bool,
    /// Where copies of its requests go (`ns/svc:port`, with the share
    /// when not all, and `(no body)`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub mirrors: Vec<String>,
}

/// One backend.
#[derive(Debug, Clone, Serialize)]
pub struct BackendView {
    /// `namespace/service:port`.
    pub name: String,
    /// `round-robin`, `least-request` or `maglev(...)`.
    pub policy: String,
    /// Its endpoints.
    pub endpoints: Vec<EndpointView>,
}

/// One endpoint.
#[derive(Debug, Clone, Serialize)]
pub struct EndpointView {
    /// `ip:port`.
    pub address: String,
    /// Relative weight (0: no traffic).
    pub weight: u32,
    /// `ready` or `terminating`.
    pub state: &'static str,
    /// The targetRef (pod) name.
    pub target: Option<String>,
}

/// One TLS host and its certificate.
#[derive(Debug, Clone, Serialize)]
pub struct TlsView {
    /// The host.
    pub host: String,
    /// `namespace/name` of the Secret.
    pub secret: String,
    /// notAfter, `YYYY-MM-DD` (UTC).
    pub expires: String,
    /// `namespace/name` of the Ingress.
    pub ingress: String,
}

/// The default backend.
#[derive(Debug, Clone, Serialize)]
pub struct DefaultView {
    /// `namespace/service:port`.
    pub backend: String,
    /// `namespace/name` of the Ingress it came from, if any.
    pub ingress: Option<String>,
}

impl ConfigView {
    /// The view of `config`.
    pub fn new(config: &RouteConfig) -> ConfigView {
        let backend_name = |i: usize| {
            config
                .backends
                .get(i)
                .map_or_else(|| format!("<missing backend {i}>"), |b| b.name.clone())
        };
        ConfigView {
            rules: config
                .rules
                .iter()
                .map(|r| RuleView {
                    host: host(&r.host),
                    path: r.path.clone(),
                    path_type: path_type(r.path_type),
                    backend: backend_name(r.backend),
                    ingress: r.source.to_string(),
                    ssl_redirect: r.ssl_redirect,
                    mirrors: (r.policy.mirrors.iter())
                        .map(|m| mirror_name(m, &backend_name))
                        .collect(),
                })
                .collect(),
            backends: config
                .backends
                .iter()
                .map(|b| BackendView {
                    name: b.name.clone(),
                    policy: policy(&b.policy),
                    endpoints: b
                        .endpoints
                        .iter()
                        .map(|ep| EndpointView {
                            address: ep.addr.to_string(),
                            weight: ep.weight,
                            state: if ep.ready { "ready" } else { "terminating" },
                            target: ep.target.clone(),
                        })
                        .collect(),
                })
                .collect(),
            tls: config
                .tls
                .iter()
                .flat_map(|cert| {
                    cert.hosts.iter().map(|h| TlsView {
                        host: host(h),
                        secret: cert.secret.to_string(),
                        expires: date(cert.not_after),
                        ingress: cert.source.to_string(),
                    })
                })
                .collect(),
            default_backend: config.default_backend.map(|i| DefaultView {
                backend: backend_name(i),
                ingress: config
                    .default_backend_source
                    .as_ref()
                    .map(|s| s.to_string()),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn dates() {
        assert_eq!(super::date(0), "1970-01-01");
        assert_eq!(super::date(1_940_544_000), "2031-06-30");
        assert_eq!(super::date(951_868_800), "2000-03-01");
    }
}
