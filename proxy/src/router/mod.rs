//! The compiled route table: host map -> path matcher -> route -> backend.
//!
//! Built once from a [`RouteConfig`] off the shard cores, then immutable and
//! shared read-only by every shard until the next swap. Host choice is
//! exclusive, most specific first (exact host, then one-label wildcard, then
//! the rules without host), as ingress-nginx's server blocks behave: when the
//! chosen host has no matching path, the default backend answers.

pub mod conditions;
pub mod explain;
pub mod host;
pub mod invariants;
pub mod path;
pub mod pattern;

use crate::balance::Backend;
use crate::policy::{Origin, Policy, PolicyAnswer};
use conditions::{Conditions, Facts};
use path::{PathMatcher, RouteId};
use pattern::PatternMatcher;
use rauta_shared::config::{HostMatch, IngressRef, PathType, RouteConfig, RouteKind};
use rauta_shared::policy::HostPolicy;
use rustc_hash::FxHashMap;
use std::sync::Arc;

/// One routing rule (or the default backend) as compiled.
#[derive(Debug)]
pub struct Route {
    /// Namespace of the object the rule came from.
    pub namespace: Box<str>,
    /// Name of that object (an Ingress unless [`Route::kind`] says otherwise).
    pub ingress: Box<str>,
    /// Its kind.
    pub kind: RouteKind,
    /// Host as written in the rule (`*` for any host; empty for the default backend).
    pub host: Box<str>,
    /// Path as written in the rule (empty for the default backend).
    pub path: Box<str>,
    /// How the path matches; `None` for the default backend.
    pub path_type: Option<PathType>,
    /// Index into [`RouteTable::backends`].
    pub backend: usize,
    /// Identity of the route across table generations (for statistics).
    pub key: Arc<str>,
    /// Plain-HTTP requests get a 308 to HTTPS instead of the backend.
    pub ssl_redirect: bool,
    /// The route's policies; `None` for a plain route.
    pub(crate) policy: Option<Box<Policy>>,
    /// What only some HTTPRoute rules need; boxed, so that the routes a
    /// lookup reads stay as small as Ingress rules need them.
    extra: Option<Box<Extra>>,
}

/// A route's conditions, its place in a chain of rules of one path, and
/// its weighted shares.
#[derive(Debug, Default)]
struct Extra {
    /// What the request must carry besides host and path.
    conditions: Option<Conditions>,
    /// The next rule with the same host, path and path type, tried when
    /// this one's conditions fail.
    next: Option<RouteId>,
    /// A rule with weighted backends: per share, the route its requests
    /// are counted under (the rule itself for an unresolved one).
    shares: Box<[RouteId]>,
    /// The rule whose weighted share this route counts.
    share_of: Option<RouteId>,
}

impl Route {
    /// A route from `source` (`None`: a default backend nobody named) to
    /// backend `index`; `backend_name` ends its statistics key.
    fn new(
        source: Option<&IngressRef>,
        host: String,
        path: &str,
        path_type: Option<PathType>,
        backend_name: &str,
        index: usize,
    ) -> Route {
        let (namespace, name, kind) = source.map_or(("", "", RouteKind::Ingress), |s| {
            (&*s.namespace, &*s.name, s.kind)
        });
        let type_name = path_type.map_or("default".to_string(), |t| format!("{t:?}"));
        // `ns/name` for an Ingress (as before kinds), `Kind ns/name` otherwise.
        let object = match kind {
            RouteKind::Ingress => format!("{namespace}/{name}"),
            kind => format!("{} {namespace}/{name}", kind.as_str()),
        };
        let key = format!("{object}|{host}|{path}|{type_name}|{backend_name}");
        Route {
            namespace: namespace.into(),
            ingress: name.into(),
            kind,
            host: host.into(),
            path: path.into(),
            path_type,
            backend: index,
            key: key.into(),
            ssl_redirect: false,
            policy: None,
            extra: None,
        }
    }

    fn extra(&mut self) -> &mut Extra {
        self.extra.get_or_insert_with(Default::default)
    }

    /// What the request must carry besides host and path; `None`: nothing.
    pub fn conditions(&self) -> Option<&Conditions> {
        self.extra.as_ref()?.conditions.as_ref()
    }

    /// The next rule of the same host, path and path type.
    fn next(&self) -> Option<RouteId> {
        self.extra.as_ref()?.next
    }

    /// The rule whose weighted share this route counts; such a route is
    /// never looked up.
    pub fn share_of(&self) -> Option<RouteId> {
        self.extra.as_ref()?.share_of
    }

    /// The route that counts the requests of weighted share `share`.
    #[inline]
    pub fn share_route(&self, share: usize) -> RouteId {
        self.extra.as_ref().map_or(0, |e| e.shares[share])
    }

    /// True for the pseudo-route of the default backend.
    pub fn is_default_backend(&self) -> bool {
        self.path_type.is_none()
    }
}

/// What a lookup found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Match {
    /// A rule, or else the default backend, takes the request.
    Route {
        /// The route (index into the table's routes and route stats).
        route: RouteId,
        /// Its backend (index into the table's backends).
        backend: usize,
    },
    /// Nothing matched and there is no default backend.
    None,
}

/// The immutable, compiled routing table of one generation.
#[derive(Debug, Default)]
pub struct RouteTable {
    exact_hosts: FxHashMap<Box<str>, HostRules>,
    wildcard_hosts: FxHashMap<Box<str>, HostRules>,
    /// Gateway API `*.suffix` hosts: any number of extra labels.
    suffix_hosts: FxHashMap<Box<str>, HostRules>,
    any_host: Option<HostRules>,
    /// `server-alias` names and the exact host whose rules they share.
    aliases: FxHashMap<Box<str>, Box<str>>,
    /// Some host answers before its paths are looked at (app root, www redirect).
    host_answers: bool,
    default_route: Option<RouteId>,
    routes: Vec<Route>,
    backends: Vec<Backend>,
    /// TCP and UDP services, by protocol and port.
    l4: Vec<crate::l4::L4Service>,
    /// `ssl-passthrough` and TLSRoute hosts: exact ones, then one-label
    /// wildcards (by suffix), then TLSRoute `*.` suffixes of any depth,
    /// to the index of their backend.
    passthrough_exact: FxHashMap<Box<str>, usize>,
    passthrough_wildcard: FxHashMap<Box<str>, usize>,
    passthrough_suffix: FxHashMap<Box<str>, usize>,
}

/// The rules of one host and what applies to the whole host.
#[derive(Debug, Default)]
pub(crate) struct HostRules {
    /// Paths matched as Ingress paths.
    paths: PathMatcher,
    /// HTTPRoute `RegularExpression` paths, when the host has any.
    regexes: Option<Box<PatternMatcher>>,
    /// Paths matched as regexes, when the host is in regex mode.
    patterns: Option<PatternMatcher>,
    /// Some rule of the host has conditions.
    conditional: bool,
    /// A request for exactly `/` gets a 302 to this path.
    app_root: Option<Box<str>>,
    /// Every request gets a 308 to the same URL on this host.
    redirect_host: Option<Box<str>>,
}

impl HostRules {
    /// The first rule by path alone: Exact, then regex, then the longest prefix.
    fn lookup(&self, path: &str) -> Option<RouteId> {
        match (&self.patterns, &self.regexes) {
            (None, None) => self.paths.lookup(path),
            (Some(patterns), _) => patterns.lookup(path),
            (None, Some(regexes)) => self.lookup_with_regexes(regexes, path),
        }
    }

    /// [`HostRules::lookup`] for a host with `RegularExpression` paths.
    #[inline(never)]
    fn lookup_with_regexes(&self, regexes: &PatternMatcher, path: &str) -> Option<RouteId> {
        (self.paths.lookup_exact(path))
            .or_else(|| regexes.lookup(path))
            .or_else(|| self.paths.lookup_prefix(path))
    }

    /// Every rule whose path matches, in the order of [`HostRules::lookup`],
    /// until `accept` takes one.
    fn find(
        &self,
        path: &str,
        accept: &mut dyn FnMut(RouteId) -> Option<RouteId>,
    ) -> Option<RouteId> {
        match (&self.patterns, &self.regexes) {
            (Some(patterns), _) => patterns.find(path, accept),
            (None, None) => self.paths.find(path, accept),
            (None, Some(regexes)) => self
                .paths
                .find_exact(path, accept)
                .or_else(|| regexes.find(path, accept))
                .or_else(|| self.paths.find_prefix(path, accept)),
        }
    }

    /// The paths in match order, when the host is in regex mode.
    pub(crate) fn patterns(&self) -> Option<&PatternMatcher> {
        self.patterns.as_ref()
    }
}

/// A rule's host as `/routes` and the metrics show it: `*` for any host,
/// `*.suffix` for a wildcard.
fn host_name(host: &HostMatch) -> String {
    match host {
        HostMatch::Any => "*".to_string(),
        HostMatch::Exact(h) => h.clone(),
        HostMatch::Wildcard(s) | HostMatch::Suffix(s) => format!("*.{s}"),
    }
}

/// Why a [`RouteConfig`] could not be compiled.
#[derive(Debug, thiserror::Error)]
pub enum CompileError {
    /// A rule or the default backend names a backend that does not exist.
    #[error("rule {0} points at backend #{1}, which does not exist")]
    MissingBackend(String, usize),
    /// The TLS configuration could not be built.
    #[error("TLS configuration: {0}")]
    Tls(rustls::Error),
    /// A regex path or rewrite does not compile (the translation checks
    /// them, so this is a translation bug).
    #[error("rule {0}: {1}")]
    Regex(String, regex::Error),
    /// A rule's policies do not compile.
    #[error("rule {0}: {1}")]
    Policy(String, crate::policy::CompileError),
    /// An L4 service names a backend that does not exist.
    #[error("{0} points at backend #{1}, which does not exist")]
    L4Backend(String, usize),
}

impl RouteTable {
    /// Compiles a validated configuration.
    pub fn compile(config: &RouteConfig) -> Result<RouteTable, CompileError> {
        let mut table = RouteTable {
            backends: config.backends.iter().map(Backend::compile).collect(),
            ..RouteTable::default()
        };
        for host in &config.hosts {
            table.host_answers |= host.app_root.is_some() || host.redirect_host.is_some();
            table.add_host_policy(host);
        }
        // The last rule of each (host, path, path type) so far, to chain the next.
        let mut tails: FxHashMap<RouteId, RouteId> = FxHashMap::default();
        let mut regexes = conditions::Regexes::default();
        for rule in &config.rules {
            let Some(backend) = table.backends.get(rule.backend) else {
                let name = format!("{} {:?} {}", rule.source, rule.host, rule.path);
                return Err(CompileError::MissingBackend(name, rule.backend));
            };
            let id = table.routes.len() as RouteId;
            let host = host_name(&rule.host);
            let matcher = match &rule.host {
                HostMatch::Any => table.any_host.get_or_insert_with(Default::default),
                HostMatch::Exact(h) => table.exact_hosts.entry(h.as_str().into()).or_default(),
                HostMatch::Wildcard(s) => {
                    table.wildcard_hosts.entry(s.as_str().into()).or_default()
                }
                HostMatch::Suffix(s) => table.suffix_hosts.entry(s.as_str().into()).or_default(),
            };
            let rule_name = || format!("{} {:?} {}", rule.source, rule.host, rule.path);
            let conditions = match rule.conditions.as_deref() {
                Some(c) => Conditions::compile(c, &mut regexes)
                    .map_err(|e| CompileError::Regex(rule_name(), e))?,
                None => None,
            };
            matcher.conditional |= conditions.is_some();
            // Rules with the same path follow the first in config order
            // (precedence order); one without conditions ends the chain in
            // effect, as the first of duplicates did before conditions.
            let owner = match (&mut matcher.patterns, rule.path_type) {
                (Some(patterns), _) => patterns
                    .insert(&rule.path, id)
                    .map_err(|e| CompileError::Regex(rule_name(), e))?,
                (None, PathType::Exact) => matcher.paths.insert_exact(&rule.path, id),
                (None, PathType::Prefix | PathType::ImplementationSpecific) => {
                    matcher.paths.insert_prefix(&rule.path, id)
                }
                (None, PathType::RegularExpression) => matcher
                    .regexes
                    .get_or_insert_with(Default::default)
                    .insert_whole(&rule.path, id)
                    .map_err(|e| CompileError::Regex(rule_name(), e))?,
            };
            if owner != id {
                let tail = tails.entry(owner).or_insert(owner);
                table.routes[*tail as usize].extra().next = Some(id);
                *tail = id;
            }
            let service = &config.backends[rule.backend];
            let port = service.port.to_string();
            let origin = Origin {
                namespace: &rule.source.namespace,
                ingress: &rule.source.name,
                service: &service.service,
                port: &port,
            };
            let policy = Policy::compile(
                &rule.policy,
                &rule.path,
                rule.path_type,
                rule.backend,
                &table.backends,
                origin,
            )
            .map_err(|e| CompileError::Policy(rule_name(), e))?;
            // A rule with weighted backends counts only the requests no
            // share takes (those answered 500); each share has a route.
            let backend_name = match rule.policy.split {
                Some(_) => "split",
                None => &backend.name,
            };
            let mut route = Route::new(
                Some(&rule.source),
                host,
                &rule.path,
                Some(rule.path_type),
                backend_name,
                rule.backend,
            );
            route.ssl_redirect = rule.ssl_redirect;
            route.policy = policy;
            if conditions.is_some() {
                route.extra().conditions = conditions;
            }
            table.routes.push(route);
        }
        if let Some(b) = config.default_backend {
            let Some(backend) = table.backends.get(b) else {
                return Err(CompileError::MissingBackend("defaultBackend".into(), b));
            };
            table.default_route = Some(table.routes.len() as RouteId);
            let source = config.default_backend_source.as_ref();
            let route = Route::new(source, String::new(), "", None, &backend.name, b);
            table.routes.push(route);
        }
        table.add_share_routes(config);
        table.unique_keys();
        for service in &config.l4 {
            if service.backend >= table.backends.len() {
                let name = service.source.to_string();
                return Err(CompileError::L4Backend(name, service.backend));
            }
            table.l4.push(crate::l4::L4Service::compile(service));
        }
        for p in &config.passthrough {
            if p.backend >= table.backends.len() {
                let name = format!("ssl-passthrough of {} for {:?}", p.source, p.host);
                return Err(CompileError::L4Backend(name, p.backend));
            }
            match &p.host {
                HostMatch::Exact(h) => table.passthrough_exact.insert(h.as_str().into(), p.backend),
                HostMatch::Wildcard(s) => table
                    .passthrough_wildcard
                    .insert(s.as_str().into(), p.backend),
                HostMatch::Suffix(s) => table
                    .passthrough_suffix
                    .insert(s.as_str().into(), p.backend),
                HostMatch::Any => None,
            };
        }
        Ok(table)
    }

    /// A route per backend of each rule with weighted backends, after the
    /// rules and the default backend: what the requests a share takes are
    /// counted under, so that the metrics and the access log name the
    /// backend that served them.
    fn add_share_routes(&mut self, config: &RouteConfig) {
        for (rule_id, rule) in config.rules.iter().enumerate() {
            let Some(split) = &rule.policy.split else {
                continue;
            };
            let mut by_backend: FxHashMap<usize, RouteId> = FxHashMap::default();
            let mut shares = Vec::with_capacity(split.len());
            for share in split {
                // Policy::compile checked every backend a share names.
                let Some((b, backend)) =
                    share.backend.and_then(|b| Some((b, self.backends.get(b)?)))
                else {
                    shares.push(rule_id as RouteId);
                    continue;
                };
                let next = self.routes.len() as RouteId;
                let id = *by_backend.entry(b).or_insert(next);
                if id == next {
                    let host = host_name(&rule.host);
                    let (source, path, path_type) = (&rule.source, &rule.path, rule.path_type);
                    let mut route =
                        Route::new(Some(source), host, path, Some(path_type), &backend.name, b);
                    route.extra().share_of = Some(rule_id as RouteId);
                    self.routes.push(route);
                }
                shares.push(id);
            }
            self.routes[rule_id].extra().shares = shares.into();
        }
    }

    /// Makes every route's statistics key its own: rules that differ only
    /// in their conditions would share one (`#2`, `#3`, ... on the later).
    fn unique_keys(&mut self) {
        let mut seen: rustc_hash::FxHashSet<Arc<str>> = Default::default();
        for route in &mut self.routes {
            let base = route.key.clone();
            let mut n = 1;
            while !seen.insert(route.key.clone()) {
                n += 1;
                route.key = format!("{base}#{n}").into();
            }
        }
    }

    /// Records what `policy` asks of its host: regex mode, the answers
    /// given before any path, and its aliases (an alias that is a host of
    /// its own is ignored, as in ingress-nginx).
    fn add_host_policy(&mut self, policy: &HostPolicy) {
        let rules = match &policy.host {
            HostMatch::Any => self.any_host.get_or_insert_with(Default::default),
            HostMatch::Exact(h) => self.exact_hosts.entry(h.as_str().into()).or_default(),
            HostMatch::Wildcard(s) => self.wildcard_hosts.entry(s.as_str().into()).or_default(),
            HostMatch::Suffix(s) => self.suffix_hosts.entry(s.as_str().into()).or_default(),
        };
        if policy.regex {
            rules.patterns.get_or_insert_with(Default::default);
        }
        rules.app_root = policy.app_root.as_deref().map(Into::into);
        rules.redirect_host = policy.redirect_host.as_deref().map(Into::into);
        if let HostMatch::Exact(h) = &policy.host {
            for alias in &policy.aliases {
                self.aliases
                    .entry(alias.as_str().into())
                    .or_insert_with(|| h.as_str().into());
            }
        }
    }

    /// The answer a host gives before its paths are looked at: `app-root`
    /// for exactly `/` (302), `from-to-www-redirect` (308). `scheme_host`
    /// is `scheme://host[:port]` as the client addressed us.
    pub(crate) fn host_answer(
        &self,
        host: &str,
        path: &str,
        target: &str,
        scheme: &str,
        http_host: &str,
    ) -> Option<PolicyAnswer> {
        if !self.host_answers {
            return None;
        }
        let rules = self.host_rules(host)?;
        if let Some(to) = &rules.redirect_host {
            // The port the client used is kept.
            let port = http_host.rsplit_once(':').map_or("", |(_, p)| p);
            let sep = if port.is_empty() { "" } else { ":" };
            return Some(PolicyAnswer::Redirect {
                code: 308,
                location: format!("{scheme}://{to}{sep}{port}{target}"),
            });
        }
        match &rules.app_root {
            Some(root) if path == "/" => Some(PolicyAnswer::Redirect {
                code: 302,
                location: format!("{scheme}://{http_host}{root}"),
            }),
            _ => None,
        }
    }

    /// The rules a normalised host is matched against: exact host (or the
    /// host an alias names), else its one-label wildcard, else the rules
    /// without host.
    pub(crate) fn host_rules(&self, host: &str) -> Option<&HostRules> {
        self.exact_hosts
            .get(host)
            .or_else(|| {
                if self.aliases.is_empty() || self.exact_hosts.contains_key(host) {
                    return None;
                }
                self.exact_hosts.get(self.aliases.get(host)?)
            })
            .or_else(|| {
                let (_, parent) = host.split_once('.')?;
                self.wildcard_hosts.get(parent)
            })
            .or_else(|| self.suffix_rules(host))
            .or(self.any_host.as_ref())
    }

    /// The rules of the longest Gateway API wildcard suffix of `host`.
    fn suffix_rules(&self, host: &str) -> Option<&HostRules> {
        self.suffix_hosts.get(self.matching_suffix(host)?)
    }

    /// The longest Gateway API wildcard suffix (`*.suffix`) covering `host`.
    pub(crate) fn matching_suffix<'h>(&self, host: &'h str) -> Option<&'h str> {
        if self.suffix_hosts.is_empty() {
            return None;
        }
        let mut rest = host;
        while let Some((_, parent)) = rest.split_once('.') {
            if self.suffix_hosts.contains_key(parent) {
                return Some(parent);
            }
            rest = parent;
        }
        None
    }

    /// True when some host's TLS connections are relayed unterminated: only
    /// then does a TLS listener read the ClientHello before the handshake.
    #[inline]
    pub fn has_passthrough(&self) -> bool {
        !self.passthrough_exact.is_empty()
            || !self.passthrough_wildcard.is_empty()
            || !self.passthrough_suffix.is_empty()
    }

    /// The backend that `ssl-passthrough` relays TLS for `sni` (lower-case) to.
    pub fn passthrough(&self, sni: &str) -> Option<usize> {
        if let Some(b) = self.passthrough_exact.get(sni) {
            return Some(*b);
        }
        let (_, parent) = sni.split_once('.')?;
        if let Some(b) = self.passthrough_wildcard.get(parent) {
            return Some(*b);
        }
        // The longest suffix first: each parent, dropping one label at a time.
        let mut rest = parent;
        loop {
            if let Some(b) = self.passthrough_suffix.get(rest) {
                return Some(*b);
            }
            rest = rest.split_once('.')?.1;
        }
    }

    /// The passthrough hosts (`*.` before wildcard suffixes) and their
    /// backends, sorted.
    pub fn passthrough_hosts(&self) -> Vec<(String, usize)> {
        let exact = self
            .passthrough_exact
            .iter()
            .map(|(h, b)| (h.to_string(), *b));
        let wild = (self.passthrough_wildcard.iter()).map(|(s, b)| (format!("*.{s}"), *b));
        let suffix =
            (self.passthrough_suffix.iter()).map(|(s, b)| (format!("*.{s} (any depth)"), *b));
        let mut all: Vec<_> = exact.chain(wild).chain(suffix).collect();
        all.sort();
        all
    }

    /// The TCP and UDP services.
    pub fn l4_services(&self) -> &[crate::l4::L4Service] {
        &self.l4
    }

    /// The L4 service listening on `key`.
    pub fn l4_service(&self, key: crate::l4::ListenKey) -> Option<&crate::l4::L4Service> {
        self.l4.iter().find(|s| s.key == key)
    }

    /// Finds the route for a normalised (lower-case, port-less) host and a
    /// request path (without query string), for a request that carries
    /// nothing else ([`Facts::NONE`]).
    #[inline]
    pub fn lookup(&self, host: &str, path: &str) -> Match {
        self.lookup_with(host, path, &Facts::NONE)
    }

    /// [`RouteTable::lookup`] for a request with `facts`: the first rule by
    /// path whose conditions hold. When the longest match has conditions,
    /// the rules of its path are tried in config order, and when none
    /// holds, every rule of the host that matches the path in precedence
    /// order (shorter paths, then the default backend); rules without
    /// conditions pay one branch.
    #[inline]
    pub fn lookup_with(&self, host: &str, path: &str, facts: &Facts<'_>) -> Match {
        let route = match self.host_rules(host) {
            Some(rules) if rules.conditional => self.lookup_conditional(rules, path, facts),
            Some(rules) => rules.lookup(path),
            None => None,
        };
        match route.or(self.default_route) {
            Some(route) => Match::Route {
                route,
                backend: self.routes[route as usize].backend,
            },
            None => Match::None,
        }
    }

    /// [`RouteTable::lookup_with`] in a host some of whose rules have
    /// conditions (out of line: the plain lookup stays small).
    #[inline(never)]
    fn lookup_conditional(
        &self,
        rules: &HostRules,
        path: &str,
        facts: &Facts<'_>,
    ) -> Option<RouteId> {
        let first = rules.lookup(path)?;
        if self.routes[first as usize].conditions().is_none() {
            return Some(first);
        }
        self.holding(first, facts).or_else(|| {
            rules.find(path, &mut |owner| match owner == first {
                // Already tried.
                true => None,
                false => self.holding(owner, facts),
            })
        })
    }

    /// The first rule of the chain from `owner` whose conditions hold.
    fn holding(&self, owner: RouteId, facts: &Facts<'_>) -> Option<RouteId> {
        let mut id = Some(owner);
        while let Some(at) = id {
            let route = &self.routes[at as usize];
            if route.conditions().is_none_or(|c| c.holds(facts)) {
                return Some(at);
            }
            id = route.next();
        }
        None
    }

    /// A compiled route by id.
    pub fn route(&self, id: RouteId) -> &Route {
        &self.routes[id as usize]
    }

    /// Every compiled route (rules first, then the default backend).
    pub fn routes(&self) -> &[Route] {
        &self.routes
    }

    /// Every backend.
    pub fn backends(&self) -> &[Backend] {
        &self.backends
    }

    /// A backend by index.
    pub fn backend(&self, index: usize) -> &Backend {
        &self.backends[index]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rauta_shared::config::{BackendConfig, IngressRef, LbPolicy, RuleConfig, ServicePort};

    fn backend(name: &str) -> BackendConfig {
        BackendConfig {
            name: name.into(),
            namespace: "default".into(),
            service: name.into(),
            port: ServicePort::Number(80),
            endpoints: vec![],
            policy: LbPolicy::RoundRobin,
            protocol: Default::default(),
            tls: None,
        }
    }

    fn rule(host: HostMatch, path: &str, path_type: PathType, backend: usize) -> RuleConfig {
        RuleConfig {
            host,
            path: path.into(),
            path_type,
            backend,
            source: IngressRef::ingress("default", "ing"),
            ssl_redirect: false,
            policy: Default::default(),
            conditions: None,
        }
    }

    #[test]
    fn host_precedence_is_exclusive_and_most_specific_first() {
        let config = RouteConfig {
            rules: vec![
                rule(
                    HostMatch::Exact("a.example.com".into()),
                    "/only",
                    PathType::Prefix,
                    0,
                ),
                rule(
                    HostMatch::Wildcard("example.com".into()),
                    "/",
                    PathType::Prefix,
                    1,
                ),
                rule(HostMatch::Any, "/", PathType::Prefix, 2),
            ],
            default_backend: Some(3),
            default_backend_source: None,
            backends: vec![
                backend("a"),
                backend("wild"),
                backend("any"),
                backend("def"),
            ],
            tls: Vec::new(),
            hosts: Vec::new(),
            l4: Vec::new(),
            passthrough: Vec::new(),
        };
        let t = RouteTable::compile(&config).expect("compiles");
        let b = |host: &str, path: &str| match t.lookup(host, path) {
            Match::Route { backend, .. } => Some(backend),
            Match::None => None,
        };
        assert_eq!(b("a.example.com", "/only/x"), Some(0));
        assert_eq!(
            b("a.example.com", "/other"),
            Some(3),
            "exact host owns its paths"
        );
        assert_eq!(b("b.example.com", "/x"), Some(1));
        assert_eq!(
            b("x.b.example.com", "/x"),
            Some(2),
            "wildcard covers one label only"
        );
        assert_eq!(
            b("example.com", "/x"),
            Some(2),
            "wildcard needs one extra label"
        );
        assert_eq!(b("other.org", "/"), Some(2));
    }

    #[test]
    fn no_match_without_default_is_none() {
        let config = RouteConfig {
            rules: vec![rule(HostMatch::Exact("h".into()), "/a", PathType::Exact, 0)],
            backends: vec![backend("a")],
            ..RouteConfig::default()
        };
        let t = RouteTable::compile(&config).expect("compiles");
        assert_eq!(
            t.lookup("h", "/a"),
            Match::Route {
                route: 0,
                backend: 0
            }
        );
        assert_eq!(t.lookup("h", "/b"), Match::None);
        assert_eq!(t.lookup("x", "/a"), Match::None);
    }

    #[test]
    fn each_weighted_backend_has_a_route_that_names_it() {
        use rauta_shared::policy::WeightedBackend;
        let share = |backend, weight| WeightedBackend { backend, weight };
        let mut split = rule(HostMatch::Any, "/", PathType::Prefix, 0);
        split.source.kind = RouteKind::HttpRoute;
        split.policy.split = Some(vec![
            share(Some(0), 1),
            share(None, 1),
            share(Some(1), 0),
            share(Some(0), 2),
        ]);
        let config = RouteConfig {
            rules: vec![split],
            backends: vec![backend("a"), backend("b")],
            ..RouteConfig::default()
        };
        let t = RouteTable::compile(&config).expect("compiles");
        let rule = t.route(0);
        assert_eq!(&*rule.key, "HTTPRoute default/ing|*|/|Prefix|split");
        assert_eq!(rule.kind, RouteKind::HttpRoute);
        // One route per backend, the unresolved share counted on the rule.
        let shares: Vec<RouteId> = (0..4).map(|s| rule.share_route(s)).collect();
        assert_eq!(shares, [1, 0, 2, 1]);
        assert_eq!(&*t.route(1).key, "HTTPRoute default/ing|*|/|Prefix|a");
        assert_eq!(&*t.route(2).key, "HTTPRoute default/ing|*|/|Prefix|b");
        assert_eq!((t.route(2).backend, t.route(2).share_of()), (1, Some(0)));
        // Lookups find the rule, never a share's route.
        assert_eq!(
            t.lookup("h", "/x"),
            Match::Route {
                route: 0,
                backend: 0
            }
        );
    }

    #[test]
    fn rules_that_differ_in_their_conditions_only_get_keys_of_their_own() {
        let conditional = |v: &str| {
            let mut r = rule(HostMatch::Any, "/", PathType::Prefix, 0);
            r.conditions = Some(Box::new(rauta_shared::config::Conditions {
                method: Some(v.into()),
                ..Default::default()
            }));
            r
        };
        let config = RouteConfig {
            rules: vec![conditional("GET"), conditional("POST"), conditional("PUT")],
            backends: vec![backend("a")],
            ..RouteConfig::default()
        };
        let t = RouteTable::compile(&config).expect("compiles");
        let keys: Vec<&str> = t.routes().iter().map(|r| &*r.key).collect();
        assert_eq!(
            keys,
            [
                "default/ing|*|/|Prefix|a",
                "default/ing|*|/|Prefix|a#2",
                "default/ing|*|/|Prefix|a#3"
            ]
        );
    }

    #[test]
    fn missing_backend_is_a_compile_error() {
        let config = RouteConfig {
            rules: vec![rule(HostMatch::Any, "/", PathType::Prefix, 5)],
            ..RouteConfig::default()
        };
        assert!(RouteTable::compile(&config).is_err());
    }
}
