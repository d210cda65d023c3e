//! Merging the validated Ingresses, oldest first: each rule, the default
//! backend and each TLS host goes to the first Ingress that claims it, and
//! equal backends are shared.

use super::annotations::AuthService;
use super::annotations::BackendTls;
use super::annotations::{check_pattern, WEIGHTS_ANNOTATION};
use super::endpoints::{resolve_endpoints, weighted_endpoints, Asker};
use super::gateway::GatewayRule;
use super::index::Index;
use super::ingress::{BackendRef, Parsed, RuleKey};
use crate::problem::Problem;
use crate::tls;
use rauta_shared::config::{
    BackendConfig, Conditions, HashKey, HostMatch, IngressRef, LbPolicy, PassthroughConfig,
    RouteConfig, RuleConfig, SecretRef, ServicePort, TlsCertConfig, UpstreamProtocol, UpstreamTls,
};
use rauta_shared::policy::{AuthTarget, HostPolicy, RoutePolicy, WeightedBackend};
use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;

/// Identity of a backend: equal keys mean equal [`BackendConfig`]s.
pub(super) type BackendKey = (
    String,
    String,
    ServicePort,
    (u8, String),
    Vec<(SocketAddr, u32)>,
    (UpstreamProtocol, Option<UpstreamTls>),
);

/// An orderable stand-in for [`LbPolicy`].
fn policy_key(policy: &LbPolicy) -> (u8, String) {
    match policy {
        LbPolicy::RoundRobin => (0, String::new()),
        LbPolicy::LeastRequest => (1, String::new()),
        LbPolicy::Maglev(HashKey::ClientIp) => (2, String::new()),
        LbPolicy::Maglev(HashKey::Header(h)) => (3, h.clone()),
        LbPolicy::Maglev(HashKey::RequestUri) => (4, String::new()),
        LbPolicy::Maglev(HashKey::Host) => (5, String::new()),
    }
}

/// A rule as claimed: its Ingress, backend and policies.
struct Claimed {
    source: IngressRef,
    /// A warning about the Ingress, for problems found at the end.
    warn: Problem,
    backend: BackendKey,
    ssl_redirect: bool,
    policy: RoutePolicy,
    /// The canary's backend, resolved to an index at the end.
    canary: Option<BackendKey>,
    /// The error-page backend, resolved to an index at the end.
    error_pages: Option<BackendKey>,
    /// The auth service's backend, resolved to an index at the end.
    auth: Option<BackendKey>,
    /// The `mirror-target` Service's backend, resolved to an index at the end.
    mirror: Option<BackendKey>,
}

/// Collects claimed rules and backends while Ingresses are visited oldest first.
#[derive(Default)]
pub(super) struct Builder {
    rules: BTreeMap<RuleKey, Claimed>,
    /// Host-wide policies, merged over the Ingresses of each host.
    hosts: BTreeMap<HostMatch, HostPolicy>,
    default_backend: Option<(IngressRef, BackendKey)>,
    backends: BTreeMap<BackendKey, BackendConfig>,
    /// Which Secret each TLS host got, and from which Ingress.
    tls_hosts: BTreeMap<HostMatch, (IngressRef, Option<SecretRef>)>,
    /// Certificates in use, by Secret.
    certs: BTreeMap<SecretRef, TlsCertConfig>,
    /// Backend-TLS problems already reported, per Ingress.
    tls_warned: BTreeSet<(IngressRef, String)>,
    /// Secrets already checked: their pair, or `None` when unusable.
    checked: BTreeMap<SecretRef, Option<(String, String, i64)>>,
    /// HTTPRoute rules, added after the Ingress rules (which win a tie).
    gateway: Vec<GatewayRule>,
    /// TLSRoute hosts relayed unterminated, oldest route first.
    gateway_passthrough: Vec<(HostMatch, BackendKey, IngressRef)>,
}

/// A difference from ingress-nginx that only the merged rules show: the
/// verdict on `key` (without prefix) of `ingress` becomes "differs".
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Difference {
    pub(super) ingress: IngressRef,
    pub(super) key: &'static str,
    pub(super) note: String,
}

impl Builder {
    /// Adds the rules and default backend of `ing` that no older Ingress claimed.
    pub(super) fn claim(&mut self, ing: &Parsed, index: &Index<'_>, problems: &mut Vec<Problem>) {
        let mut resolved: BTreeMap<BackendRef, BackendKey> = BTreeMap::new();
        let mut used_weights: BTreeSet<String> = BTreeSet::new();
        for ((host, path, path_type), backend) in &ing.paths {
            let key = (host.clone(), path.clone(), *path_type);
            if let Some(Claimed { source: owner, .. }) = self.rules.get(&key) {
                let message = if *owner == ing.source {
                    format!(
                        "{} is listed more than once; the first one is used",
                        rule_name(&key)
                    )
                } else {
                    format!(
                        "{} is already served by Ingress {owner}; ignored here",
                        rule_name(&key)
                    )
                };
                problems.push(ing.warning(message));
                continue;
            }
            let bkey = self.resolve(
                ing,
                backend,
                index,
                &mut resolved,
                &mut used_weights,
                problems,
            );
            let redirect = ing.redirects(host);
            let mut policy = ing.annotations.route.clone();
            // A rewrite to the path itself is none, and does not turn on regex mode.
            if policy.rewrite.as_ref().is_some_and(|r| r.target == *path) {
                policy.rewrite = None;
            }
            self.claim_host(ing, host, policy.rewrite.is_some());
            let error_pages =
                self.error_backend(ing, index, &mut resolved, &mut used_weights, problems);
            if error_pages.is_none() {
                policy.error_pages = None;
            }
            let auth = ing
                .annotations
                .auth_service
                .as_ref()
                .map(|svc| self.auth_backend(ing, svc, index, problems));
            let mirror = ing
                .annotations
                .mirror_service
                .as_ref()
                .map(|svc| self.auth_backend(ing, svc, index, problems));
            self.rules.insert(
                key,
                Claimed {
                    source: ing.source.clone(),
                    warn: ing.warning(""),
                    backend: bkey,
                    ssl_redirect: redirect,
                    policy,
                    canary: None,
                    error_pages,
                    auth,
                    mirror,
                },
            );
        }
        if let Some(backend) = &ing.default_backend {
            match &self.default_backend {
                Some((owner, _)) => problems.push(ing.warning(format!(
                    "defaultBackend is already set by Ingress {owner}; ignored here"
                ))),
                None => {
                    let bkey = self.resolve(
                        ing,
                        backend,
                        index,
                        &mut resolved,
                        &mut used_weights,
                        problems,
                    );
                    self.default_backend = Some((ing.source.clone(), bkey));
                }
            }
        }
        self.claim_tls(ing, index, problems);
        // Only meaningful when some backend was looked at; otherwise every key is unused.
        if !resolved.is_empty() {
            for w in ing
                .annotations
                .weights
                .iter()
                .filter(|w| !used_weights.contains(&w.raw))
            {
                problems.push(ing.warning(format!(
                    "annotation {WEIGHTS_ANNOTATION}: {} matches no endpoint",
                    w.raw
                )));
            }
        }
    }

    /// Lends the backend of canary Ingress `ing` to the rules of main
    /// Ingresses with the same host, path and pathType (claimed before:
    /// every main Ingress is claimed first). A rule that has no main rule,
    /// or already has a canary, is reported and left out.
    pub(super) fn claim_canary(
        &mut self,
        ing: &Parsed,
        index: &Index<'_>,
        problems: &mut Vec<Problem>,
    ) {
        let Some(template) = &ing.annotations.route.canary else {
            return;
        };
        let mut resolved: BTreeMap<BackendRef, BackendKey> = BTreeMap::new();
        let mut used_weights: BTreeSet<String> = BTreeSet::new();
        for ((host, path, path_type), backend) in &ing.paths {
            let key = (host.clone(), path.clone(), *path_type);
            match self.rules.get(&key) {
                None => {
                    problems.push(ing.warning(format!(
                        "canary: no main Ingress serves {}; ignored (a canary takes effect only on a main Ingress's rule with the same host, path and pathType)",
                        rule_name(&key)
                    )));
                    continue;
                }
                Some(claimed) => {
                    if let Some(other) = &claimed.policy.canary {
                        problems.push(ing.warning(format!(
                            "canary: {} already has the canary of Ingress {}; ignored (at most one canary per rule)",
                            rule_name(&key),
                            other.source
                        )));
                        continue;
                    }
                }
            }
            let bkey = self.resolve(
                ing,
                backend,
                index,
                &mut resolved,
                &mut used_weights,
                problems,
            );
            if let Some(claimed) = self.rules.get_mut(&key) {
                let mut canary = template.clone();
                canary.source = ing.source.clone();
                claimed.policy.canary = Some(canary);
                claimed.canary = Some(bkey);
            }
        }
        if ing.default_backend.is_some() {
            problems.push(
                ing.warning("canary: the defaultBackend of a canary Ingress is ignored by rauta"),
            );
        }
    }

    /// Merges what `ing` asks of `host` into the host's policy: regex mode
    /// if any Ingress of the host asks for it, every other field from the
    /// first (oldest) Ingress that sets it.
    fn claim_host(&mut self, ing: &Parsed, host: &HostMatch, rewrites: bool) {
        let wanted = &ing.annotations.host;
        if ing.annotations.www_redirect {
            if let HostMatch::Exact(name) = host {
                let twin = match name.strip_prefix("www.") {
                    Some(apex) => apex.to_string(),
                    None => format!("www.{name}"),
                };
                let twin = self.host_entry(&HostMatch::Exact(twin));
                if twin.redirect_host.is_none() {
                    twin.redirect_host = Some(name.clone());
                }
            }
        }
        let merged = self.host_entry(host);
        merged.regex |= wanted.regex || rewrites;
        if merged.app_root.is_none() {
            merged.app_root.clone_from(&wanted.app_root);
        }
        if merged.aliases.is_empty() {
            merged.aliases.clone_from(&wanted.aliases);
        }
        if merged.redirect_host.is_none() {
            merged.redirect_host.clone_from(&wanted.redirect_host);
        }
    }

    /// The merged policy of `host`, created empty.
    fn host_entry(&mut self, host: &HostMatch) -> &mut HostPolicy {
        self.hosts
            .entry(host.clone())
            .or_insert_with(|| HostPolicy::new(host.clone()))
    }

    /// Claims the TLS hosts of `ing` that no older Ingress claimed, with
    /// their certificates; whatever is wrong is a warning and only costs
    /// the hosts concerned their own certificate.
    fn claim_tls(&mut self, ing: &Parsed, index: &Index<'_>, problems: &mut Vec<Problem>) {
        for entry in &ing.tls {
            let secret = entry.secret.as_ref().map(|name| SecretRef {
                namespace: ing.source.namespace.clone(),
                name: name.clone(),
            });
            let hosts = entry
                .hosts
                .iter()
                .map(host_name)
                .collect::<Vec<_>>()
                .join(", ");
            let pair = match &secret {
                Some(secret) => {
                    let place = format!("spec.tls[{}]", entry.position);
                    let warn = |m: String| ing.warning(m);
                    self.check_secret(&ing.source, &warn, &place, secret, &hosts, index, problems)
                }
                None => None,
            };
            for host in &entry.hosts {
                if let Some((owner, owned)) = self.tls_hosts.get(host) {
                    if *owned != secret {
                        let what = |s: &Option<SecretRef>| {
                            s.as_ref()
                                .map_or("the default certificate".to_string(), |s| {
                                    format!("Secret {s}")
                                })
                        };
                        problems.push(ing.warning(format!(
                            "spec.tls[{}]: TLS host {} already gets {} from Ingress {owner}; {} ignored for it",
                            entry.position,
                            host_name(host),
                            what(owned),
                            what(&secret)
                        )));
                    }
                    continue;
                }
                let (Some(secret), Some((crt, key, not_after))) = (&secret, &pair) else {
                    // No Secret named, or an unusable one: the default certificate.
                    self.tls_hosts
                        .insert(host.clone(), (ing.source.clone(), secret.clone()));
                    continue;
                };
                if !tls::covers(crt.as_bytes(), host) {
                    // Not claimed: an Ingress with a fitting certificate may still take the host.
                    problems.push(ing.warning(format!(
                        "spec.tls[{}]: the certificate in Secret {secret} does not cover host {}; the host gets the default certificate",
                        entry.position,
                        host_name(host)
                    )));
                    continue;
                }
                self.tls_hosts
                    .insert(host.clone(), (ing.source.clone(), Some(secret.clone())));
                self.certs
                    .entry(secret.clone())
                    .or_insert_with(|| TlsCertConfig {
                        hosts: Vec::new(),
                        secret: secret.clone(),
                        cert_pem: crt.clone(),
                        key_pem: key.clone(),
                        not_after: *not_after,
                        source: ing.source.clone(),
                    })
                    .hosts
                    .push(host.clone());
            }
        }
    }

    /// The PEM pair and expiry of a Secret, checked once; `None` (reported)
    /// when it is missing or unusable.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn check_secret(
        &mut self,
        user: &IngressRef,
        warn: &dyn Fn(String) -> Problem,
        place: &str,
        secret: &SecretRef,
        hosts: &str,
        index: &Index<'_>,
        problems: &mut Vec<Problem>,
    ) -> Option<(String, String, i64)> {
        if let Some(checked) = self.checked.get(secret) {
            return checked.clone();
        }
        let found = index
            .secrets
            .get(&(secret.namespace.as_str(), secret.name.as_str()));
        let result = match found {
            None => {
                problems.push(warn(format!(
                    "{place}: Secret {secret} not found; {hosts} get the default certificate"
                )));
                None
            }
            Some((src, object)) => {
                let checked = tls::secret_pair(object).and_then(|(crt, key)| {
                    let facts = tls::check_pair_cached(&crt, &key)?;
                    let text = |b: Vec<u8>, what: &str| {
                        String::from_utf8(b).map_err(|_| format!("{what} is not text"))
                    };
                    Ok((
                        text(crt, "tls.crt")?,
                        text(key, "tls.key")?,
                        facts.not_after,
                    ))
                });
                match checked {
                    Ok(pair) => Some(pair),
                    Err(message) => {
                        problems.push(
                            Problem::warning(
                                Some(src.object.describe()),
                                format!(
                                    "{message}; not used for {} {}/{} ({hosts} get the default certificate)",
                                    user.kind.as_str(),
                                    user.namespace,
                                    user.name
                                ),
                            )
                            .in_file(src.file.clone()),
                        );
                        None
                    }
                }
            }
        };
        self.checked.insert(secret.clone(), result.clone());
        result
    }

    /// The backend of the `default-backend` Service (its first port), when
    /// the Ingress names one that exists; else `None`, reported.
    fn error_backend(
        &mut self,
        ing: &Parsed,
        index: &Index<'_>,
        resolved: &mut BTreeMap<BackendRef, BackendKey>,
        used_weights: &mut BTreeSet<String>,
        problems: &mut Vec<Problem>,
    ) -> Option<BackendKey> {
        let name = ing.annotations.error_service.as_ref()?;
        let namespace = ing.source.namespace.as_str();
        let port = index
            .services
            .get(&(namespace, name.as_str()))
            .and_then(|svc| svc.spec.as_ref())
            .and_then(|spec| spec.ports.as_ref())
            .and_then(|ports| ports.first())
            .and_then(|p| u16::try_from(p.port).ok());
        let Some(port) = port else {
            problems.push(ing.warning(format!(
                "annotation default-backend: Service {namespace}/{name} not found or without ports; no error pages"
            )));
            return None;
        };
        let backend = BackendRef {
            service: name.clone(),
            port: ServicePort::Number(port),
        };
        Some(self.resolve(ing, &backend, index, resolved, used_weights, problems))
    }

    /// The backend of the Service an `auth-url` names (any namespace, round robin).
    fn auth_backend(
        &mut self,
        ing: &Parsed,
        svc: &AuthService,
        index: &Index<'_>,
        problems: &mut Vec<Problem>,
    ) -> BackendKey {
        let asker = Asker::ingress(ing);
        let http = (UpstreamProtocol::Http, None);
        self.plain_backend(
            &asker,
            index,
            &svc.namespace,
            &svc.name,
            svc.port,
            http,
            problems,
        )
    }

    /// TLS to the backends of `ing` as its `proxy-ssl-*` annotations ask,
    /// with the `proxy-ssl-secret`'s CA and client pair. A missing or bad
    /// Secret is reported once per Ingress; what it would have given is
    /// then absent (with verification on, connects fail: never unverified).
    fn upstream_tls(
        &mut self,
        ing: &Parsed,
        spec: &BackendTls,
        index: &Index<'_>,
        problems: &mut Vec<Problem>,
    ) -> UpstreamTls {
        let mut tls = UpstreamTls {
            verify: spec.verify,
            verify_depth: spec.depth,
            server_name: spec.name.clone(),
            sni: spec.sni,
            ..UpstreamTls::default()
        };
        let Some(secret) = &spec.secret else {
            return tls;
        };
        let mut warn = |message: String| {
            if self
                .tls_warned
                .insert((ing.source.clone(), message.clone()))
            {
                problems.push(ing.warning(message));
            }
        };
        let found = index
            .secrets
            .get(&(secret.namespace.as_str(), secret.name.as_str()));
        let Some((_, object)) = found else {
            warn(format!(
                "annotation proxy-ssl-secret: Secret {secret} not found; no CA and no client certificate for its backends"
            ));
            return tls;
        };
        let field = |name: &str| {
            crate::tls::secret_field(object, name)
                .and_then(|v| String::from_utf8(v).ok())
                .filter(|v| !v.trim().is_empty())
        };
        if let Some(ca) = field("ca.crt") {
            match crate::tls::parse_chain(ca.as_bytes()) {
                Ok(_) => tls.ca_pem = Some(ca),
                Err(e) => warn(format!(
                    "annotation proxy-ssl-secret: Secret {secret}: {}; the backends' certificates cannot be verified",
                    e.replacen("tls.crt", "ca.crt", 1)
                )),
            }
        }
        match (field("tls.crt"), field("tls.key")) {
            (Some(crt), Some(key)) => match crate::tls::check_pair_cached(crt.as_bytes(), key.as_bytes()) {
                Ok(_) => {
                    tls.client_cert_pem = Some(crt);
                    tls.client_key_pem = Some(key);
                }
                Err(e) => warn(format!(
                    "annotation proxy-ssl-secret: Secret {secret}: {e}; no client certificate is sent"
                )),
            },
            (None, None) => {}
            _ => warn(format!(
                "annotation proxy-ssl-secret: Secret {secret} has only one of tls.crt and tls.key; no client certificate is sent"
            )),
        }
        if spec.verify && tls.ca_pem.is_none() {
            warn(format!(
                "annotation proxy-ssl-verify: on, but Secret {secret} gives no usable ca.crt; connects to its backends fail"
            ));
        }
        tls
    }

    /// The key of the backend `backend` resolves to for `ing`, creating it if new.
    fn resolve(
        &mut self,
        ing: &Parsed,
        backend: &BackendRef,
        index: &Index<'_>,
        resolved: &mut BTreeMap<BackendRef, BackendKey>,
        used_weights: &mut BTreeSet<String>,
        problems: &mut Vec<Problem>,
    ) -> BackendKey {
        if let Some(key) = resolved.get(backend) {
            return key.clone();
        }
        let namespace = &ing.source.namespace;
        let endpoints = weighted_endpoints(ing, index, backend, used_weights, problems);
        let tls = ing
            .annotations
            .backend_tls
            .as_ref()
            .map(|spec| self.upstream_tls(ing, spec, index, problems));
        let key: BackendKey = (
            namespace.clone(),
            backend.service.clone(),
            backend.port.clone(),
            policy_key(&ing.annotations.policy),
            endpoints.iter().map(|e| (e.addr, e.weight)).collect(),
            (ing.annotations.protocol, tls.clone()),
        );
        self.backends
            .entry(key.clone())
            .or_insert_with(|| BackendConfig {
                name: String::new(),
                namespace: namespace.clone(),
                service: backend.service.clone(),
                port: backend.port.clone(),
                endpoints,
                policy: ing.annotations.policy.clone(),
                protocol: ing.annotations.protocol,
                tls,
            });
        resolved.insert(backend.clone(), key.clone());
        key
    }

    /// A round-robin backend of a Service port by number, speaking
    /// `protocol` (with `tls` when set), as an `auth-url` or a Gateway API
    /// route names one (no annotations, no endpoint weights).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn plain_backend(
        &mut self,
        asker: &Asker<'_>,
        index: &Index<'_>,
        namespace: &str,
        service: &str,
        port: u16,
        (protocol, tls): (UpstreamProtocol, Option<UpstreamTls>),
        problems: &mut Vec<Problem>,
    ) -> BackendKey {
        let backend = BackendRef {
            service: service.to_string(),
            port: ServicePort::Number(port),
        };
        let endpoints = resolve_endpoints(asker, index, namespace, &backend, problems);
        let key: BackendKey = (
            namespace.to_string(),
            service.to_string(),
            backend.port.clone(),
            policy_key(&LbPolicy::RoundRobin),
            endpoints.iter().map(|e| (e.addr, e.weight)).collect(),
            (protocol, tls.clone()),
        );
        self.backends
            .entry(key.clone())
            .or_insert_with(|| BackendConfig {
                name: String::new(),
                namespace: namespace.to_string(),
                service: service.to_string(),
                port: backend.port,
                endpoints,
                policy: LbPolicy::RoundRobin,
                protocol,
                tls,
            });
        key
    }

    /// The backend a route without any valid backend names: no Service,
    /// no endpoints; its rules answer 500 before using it.
    pub(super) fn no_backend(&mut self, namespace: &str) -> BackendKey {
        let key: BackendKey = (
            namespace.to_string(),
            String::new(),
            ServicePort::Number(0),
            policy_key(&LbPolicy::RoundRobin),
            Vec::new(),
            (UpstreamProtocol::Http, None),
        );
        self.backends
            .entry(key.clone())
            .or_insert_with(|| BackendConfig {
                name: String::new(),
                namespace: namespace.to_string(),
                service: String::new(),
                port: ServicePort::Number(0),
                endpoints: Vec::new(),
                policy: LbPolicy::RoundRobin,
                protocol: UpstreamProtocol::Http,
                tls: None,
            });
        key
    }

    /// Relays TLS connections for `host` to `backend` unterminated (a
    /// TLSRoute); the first route to claim a host keeps it, and an
    /// Ingress's `ssl-passthrough` for the same host wins over both.
    pub(super) fn add_gateway_passthrough(
        &mut self,
        host: HostMatch,
        backend: BackendKey,
        source: IngressRef,
    ) -> Result<(), IngressRef> {
        if let Some((_, _, owner)) = self.gateway_passthrough.iter().find(|(h, ..)| *h == host) {
            return Err(owner.clone());
        }
        self.gateway_passthrough.push((host, backend, source));
        Ok(())
    }

    /// Adds an HTTPRoute rule; [`Builder::finish`] orders and checks them.
    pub(super) fn add_gateway_rule(&mut self, rule: GatewayRule) {
        self.gateway.push(rule);
    }

    /// Gives `host` the certificate of `secret` for a Gateway listener,
    /// unless an Ingress or an older listener already gave it one.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn claim_listener_cert(
        &mut self,
        gateway: &IngressRef,
        warn: &dyn Fn(String) -> Problem,
        place: &str,
        secret: &SecretRef,
        host: &HostMatch,
        index: &Index<'_>,
        problems: &mut Vec<Problem>,
    ) -> Result<(), String> {
        let name = host_name(host);
        let Some((crt, key, not_after)) =
            self.check_secret(gateway, warn, place, secret, &name, index, problems)
        else {
            return Err(format!(
                "Secret {secret} is missing or holds no usable certificate and key"
            ));
        };
        if let Some((owner, _)) = self.tls_hosts.get(host) {
            problems.push(warn(format!(
                "{place}: TLS host {name} already gets its certificate from {owner}; Secret {secret} ignored for it"
            )));
            return Ok(());
        }
        if *host != HostMatch::Any && !tls::covers(crt.as_bytes(), host) {
            let message = format!("the certificate in Secret {secret} does not cover host {name}");
            problems.push(warn(format!(
                "{place}: {message}; the host gets the default certificate"
            )));
            return Err(message);
        }
        self.tls_hosts
            .insert(host.clone(), (gateway.clone(), Some(secret.clone())));
        // A Secret an Ingress also uses keeps one entry; hosts add up.
        self.certs
            .entry(secret.clone())
            .or_insert_with(|| TlsCertConfig {
                hosts: Vec::new(),
                secret: secret.clone(),
                cert_pem: crt,
                key_pem: key,
                not_after,
                source: gateway.clone(),
            })
            .hosts
            .push(host.clone());
        Ok(())
    }

    /// The final configuration: backends in key order, rules in (host, path, type) order.
    pub(super) fn finish(mut self, problems: &mut Vec<Problem>) -> (RouteConfig, Vec<Difference>) {
        // Every path of a regex-mode host must compile; one that does not
        // is left out, and reported against its Ingress.
        let regex_hosts: BTreeSet<HostMatch> = self
            .hosts
            .values()
            .filter(|h| h.regex)
            .map(|h| h.host.clone())
            .collect();
        self.rules.retain(|(host, path, _), claimed| {
            if !regex_hosts.contains(host) {
                return true;
            }
            match check_pattern(path) {
                Ok(()) => true,
                Err(e) => {
                    let mut p = claimed.warn.clone();
                    p.message = format!(
                        "{e}; the host is in regex mode (use-regex or rewrite-target on one of its Ingresses), so this path is left out"
                    );
                    problems.push(p);
                    false
                }
            }
        });
        // A www redirect yields to a twin that is served in its own right.
        let served: BTreeSet<HostMatch> = self.rules.keys().map(|(h, _, _)| h.clone()).collect();
        for host in self.hosts.values_mut() {
            if served.contains(&host.host) {
                host.redirect_host = None;
            }
        }
        let differences = self.scope_differences();
        let mut positions: BTreeMap<BackendKey, usize> = BTreeMap::new();
        let mut backends = Vec::with_capacity(self.backends.len());
        let mut name_uses: BTreeMap<String, usize> = BTreeMap::new();
        for (i, (key, mut backend)) in self.backends.into_iter().enumerate() {
            let base = if backend.service.is_empty() {
                format!("{}/(no valid backend)", backend.namespace)
            } else {
                format!("{}/{}:{}", backend.namespace, backend.service, backend.port)
            };
            // Same Service port with another policy or weights: keep names unique.
            let uses = name_uses.entry(base.clone()).or_insert(0);
            *uses += 1;
            backend.name = if *uses == 1 {
                base
            } else {
                format!("{base}#{uses}")
            };
            positions.insert(key, i);
            backends.push(backend);
        }
        let index_of = |key: &BackendKey| positions.get(key).copied().unwrap_or(0);
        let ingress_keys: BTreeMap<RuleKey, IngressRef> = self
            .rules
            .iter()
            .map(|(k, c)| (k.clone(), c.source.clone()))
            .collect();
        let mut rules: Vec<RuleConfig> = self
            .rules
            .into_iter()
            .map(|((host, path, path_type), claimed)| {
                let mut policy = claimed.policy;
                if let (Some(canary), Some(key)) = (&mut policy.canary, &claimed.canary) {
                    canary.backend = index_of(key);
                }
                if let (Some(pages), Some(key)) = (&mut policy.error_pages, &claimed.error_pages) {
                    pages.backend = index_of(key);
                }
                if let (Some(auth), Some(key)) = (&mut policy.auth, &claimed.auth) {
                    auth.target = AuthTarget::Backend(index_of(key));
                }
                if let (Some(mirror), Some(key)) = (policy.mirrors.first_mut(), &claimed.mirror) {
                    mirror.target = AuthTarget::Backend(index_of(key));
                }
                RuleConfig {
                    host,
                    path,
                    path_type,
                    backend: index_of(&claimed.backend),
                    source: claimed.source,
                    ssl_redirect: claimed.ssl_redirect,
                    policy,
                    conditions: None,
                }
            })
            .collect();
        let gateway = std::mem::take(&mut self.gateway);
        rules.extend(gateway_rules(
            gateway,
            &ingress_keys,
            &regex_hosts,
            &index_of,
            problems,
        ));
        let hosts = self
            .hosts
            .into_values()
            .filter(|h| {
                h.regex
                    || h.app_root.is_some()
                    || !h.aliases.is_empty()
                    || h.redirect_host.is_some()
            })
            .collect();
        let (default_backend, default_backend_source) = match self.default_backend {
            Some((source, bkey)) => (Some(index_of(&bkey)), Some(source)),
            None => (None, None),
        };
        let passthrough = self
            .gateway_passthrough
            .into_iter()
            .map(|(host, key, source)| PassthroughConfig {
                host,
                backend: index_of(&key),
                source,
            })
            .collect();
        let tls = self
            .certs
            .into_values()
            .map(|mut cert| {
                cert.hosts.sort();
                cert
            })
            .collect();
        let config = RouteConfig {
            rules,
            default_backend,
            default_backend_source,
            backends,
            tls,
            hosts,
            l4: Vec::new(),
            passthrough,
        };
        (config, differences)
    }

    /// Where scoping canary and affinity to their rules differs from
    /// ingress-nginx, which applies them to every rule using the same
    /// Service: one difference per Ingress and family, naming a rule
    /// that ingress-nginx would also have affected.
    fn scope_differences(&self) -> Vec<Difference> {
        let service = |k: &BackendKey| (k.0.clone(), k.1.clone(), k.2.clone());
        let mut out: Vec<Difference> = Vec::new();
        for (key, claimed) in &self.rules {
            let families = [
                ("canary", claimed.policy.canary.as_ref().map(|c| &c.source)),
                (
                    "affinity",
                    claimed.policy.affinity.as_ref().map(|_| &claimed.source),
                ),
            ];
            for (family, owner) in families {
                let Some(owner) = owner else { continue };
                if out.iter().any(|d| d.ingress == *owner && d.key == family) {
                    continue;
                }
                let leak = self.rules.iter().find(|(other_key, other)| {
                    *other_key != key
                        && service(&other.backend) == service(&claimed.backend)
                        && match family {
                            "canary" => other.policy.canary.is_none(),
                            _ => other.policy.affinity.is_none(),
                        }
                });
                if let Some((other_key, _)) = leak {
                    out.push(Difference {
                        ingress: owner.clone(),
                        key: family,
                        note: format!(
                            "scoped to this Ingress's rules: {} uses the same Service and is not affected, where ingress-nginx would apply it per Service",
                            rule_name(other_key)
                        ),
                    });
                }
            }
        }
        out
    }
}

/// `path "/api" (Prefix) on host example.com`, for messages.
fn rule_name((host, path, path_type): &RuleKey) -> String {
    let host = match host {
        HostMatch::Any => "any host".to_string(),
        _ => format!("host {}", host_name(host)),
    };
    format!("path {path:?} ({path_type:?}) on {host}")
}

/// A host as written in an Ingress (`*` for any host).
/// The HTTPRoute rules in precedence order within each (host, path, type)
/// key, without those an Ingress rule or an earlier HTTPRoute rule with
/// the same conditions shadows (reported).
fn gateway_rules(
    mut gateway: Vec<GatewayRule>,
    ingress_keys: &BTreeMap<RuleKey, IngressRef>,
    regex_hosts: &BTreeSet<HostMatch>,
    index_of: &dyn Fn(&BackendKey) -> usize,
    problems: &mut Vec<Problem>,
) -> Vec<RuleConfig> {
    gateway.sort_by(|a, b| a.key.cmp(&b.key).then_with(|| a.rank().cmp(&b.rank())));
    let mut out: Vec<RuleConfig> = Vec::with_capacity(gateway.len());
    let mut group: Vec<(Conditions, IngressRef)> = Vec::new();
    let mut group_key: Option<RuleKey> = None;
    for g in gateway {
        if group_key.as_ref() != Some(&g.key) {
            group.clear();
            group_key = Some(g.key.clone());
        }
        let mut warn = |message: String| {
            let mut p = g.warn.clone();
            p.message = message;
            problems.push(p);
        };
        if let Some(owner) = ingress_keys.get(&g.key) {
            warn(format!(
                "{} is already served by Ingress {owner} (an Ingress rule wins over an HTTPRoute rule for the same host, path and path type); left out",
                rule_name(&g.key)
            ));
            continue;
        }
        if regex_hosts.contains(&g.key.0) {
            warn(format!(
                "host {} is in ingress-nginx regex mode (use-regex or rewrite-target on one of its Ingresses); HTTPRoute rules for it are left out",
                host_name(&g.key.0)
            ));
            continue;
        }
        if let Some((_, owner)) = group.iter().find(|(c, _)| *c == g.conditions) {
            let whose = if *owner == g.source {
                "an earlier rule of this HTTPRoute".to_string()
            } else {
                owner.to_string()
            };
            warn(format!(
                "{} with the same matches is already served by {whose}; left out",
                rule_name(&g.key)
            ));
            continue;
        }
        group.push((g.conditions.clone(), g.source.clone()));
        let mut policy = g.policy;
        for (mirror, key) in policy.mirrors.iter_mut().zip(&g.mirrors) {
            mirror.target = AuthTarget::Backend(index_of(key));
        }
        policy.split = g.split.map(|split| {
            split
                .iter()
                .map(|(key, weight)| WeightedBackend {
                    backend: key.as_ref().map(index_of),
                    weight: *weight,
                })
                .collect()
        });
        let (host, path, path_type) = g.key;
        out.push(RuleConfig {
            host,
            path,
            path_type,
            backend: index_of(&g.backend),
            source: g.source,
            ssl_redirect: false,
            policy,
            conditions: (!g.conditions.is_empty()).then(|| Box::new(g.conditions)),
        });
    }
    out
}

fn host_name(host: &HostMatch) -> String {
    match host {
        HostMatch::Any => "*".to_string(),
        HostMatch::Exact(h) => h.clone(),
        HostMatch::Wildcard(h) | HostMatch::Suffix(h) => format!("*.{h}"),
    }
}
