//! Ingress annotations, read once per table build into typed policy.
//!
//! Each key is read under every accepted prefix, `rauta.io/` first, then
//! `nginx.ingress.kubernetes.io/`, by a [`Reader`] that records a
//! [`Verdict`] for every annotation the Ingress carries: honoured, honoured
//! with a stated difference, ignored with a warning, or refused. A bad
//! value has the outcome ingress-nginx gives it: the default with a
//! warning, the location denied (503), or the whole Ingress refused. A key
//! that no family reads is a warning, and a raw-nginx-config key
//! (snippets, ModSecurity) refuses the Ingress, as ingress-nginx's
//! defaults do.
//!
//! One file per family of annotations; each has a `parse` that reads its
//! keys from the [`Reader`].

mod access;
mod affinity;
mod auth;
mod backend_tls;
mod balance;
mod canary;
mod cors;
mod error_pages;
mod limits;
mod mirror;
mod redirect;
mod registry;
mod retry;
mod rewrite;
mod telemetry;
mod timeouts;
mod upstream;
mod verdict;

pub(in crate::translate) use auth::AuthService;
pub(in crate::translate) use balance::{weights_for, Weight};
pub(in crate::translate) use rewrite::check_pattern;
pub use verdict::{AnnotationVerdict, Verdict};

pub(crate) use backend_tls::BackendTls;
use k8s_openapi::api::networking::v1::Ingress;
use rauta_shared::config::LbPolicy;
use rauta_shared::policy::{HostPolicy, RoutePolicy};
use registry::Support;
use std::collections::BTreeMap;

/// Annotation prefixes we read, strongest first.
const ANNOTATION_PREFIXES: [&str; 2] = ["rauta.io/", "nginx.ingress.kubernetes.io/"];
/// Per-endpoint weights (rauta only).
pub(super) const WEIGHTS_ANNOTATION: &str = "rauta.io/endpoint-weights";

/// What an Ingress's annotations ask for.
pub(super) struct Annotations {
    /// `upstream-hash-by` or `load-balance`.
    pub(super) policy: LbPolicy,
    /// `rauta.io/endpoint-weights`, in order.
    pub(super) weights: Vec<Weight>,
    /// `ssl-redirect` (default true): redirect hosts that have TLS.
    pub(super) ssl_redirect: bool,
    /// `force-ssl-redirect` (default false): redirect every rule.
    pub(super) force_ssl_redirect: bool,
    /// What every rule of the Ingress gets (per location, in ingress-nginx's terms).
    pub(super) route: RoutePolicy,
    /// What the Ingress asks of each of its hosts (the first Ingress of a host wins).
    pub(super) host: HostPolicy,
    /// `from-to-www-redirect`: the `www.` twin of each host (or the apex
    /// of a `www.` host) redirects to it.
    pub(super) www_redirect: bool,
    /// `service-upstream`: the Service's cluster IP is the one endpoint.
    pub(super) service_upstream: bool,
    /// `ssl-passthrough`: TLS connections for the Ingress's hosts are
    /// relayed to the first path's backend, unterminated.
    pub(super) ssl_passthrough: bool,
    /// `backend-protocol`: what the rules' backends speak.
    pub(super) protocol: rauta_shared::config::UpstreamProtocol,
    /// `proxy-ssl-*`, for a TLS protocol.
    pub(super) backend_tls: Option<BackendTls>,
    /// The Service `auth-url` names, resolved to a backend when merging.
    pub(super) auth_service: Option<AuthService>,
    /// The Service `mirror-target` names, resolved to a backend when merging.
    pub(super) mirror_service: Option<AuthService>,
    /// The `default-backend` Service (this namespace), when the rules get error pages.
    pub(super) error_service: Option<String>,
    /// The verdict on every annotation the Ingress carries, by full key.
    pub(super) verdicts: Vec<AnnotationVerdict>,
}

/// What reading the annotations found wrong.
#[derive(Debug, Default)]
pub(super) struct Findings {
    /// The Ingress is refused for these.
    pub(super) errors: Vec<String>,
    /// Reported; the Ingress is served.
    pub(super) warnings: Vec<String>,
}

impl Annotations {
    /// Reads every annotation of `ing`; what is wrong goes to `findings`.
    pub(super) fn parse(ing: &Ingress, findings: &mut Findings) -> Annotations {
        let mut r = Reader::new(ing);
        let policy = balance::parse_policy(&mut r);
        let weights = balance::parse_weights_annotation(&mut r);
        let ssl_redirect = r.bool("ssl-redirect", true);
        let force_ssl_redirect = r.bool("force-ssl-redirect", false);
        let ssl_passthrough = r.bool("ssl-passthrough", false);
        let mut route = RoutePolicy::default();
        let mut host = HostPolicy::new(rauta_shared::config::HostMatch::Any);
        let www_redirect = redirect::parse(&mut r, &mut route, &mut host);
        rewrite::parse(&mut r, &mut route, &mut host);
        access::parse(&mut r, &mut route);
        cors::parse(&mut r, &mut route);
        let (mut service_upstream, protocol) = upstream::parse(&mut r, &mut route, &mut host);
        let namespace = ing.metadata.namespace.as_deref().unwrap_or("default");
        let backend_tls = backend_tls::parse(&mut r, protocol, namespace);
        let zone = format!("{namespace}/{}", ing.metadata.name.as_deref().unwrap_or(""));
        limits::parse(&mut r, &mut route, zone);
        affinity::parse(&mut r, &mut route);
        let mut www_redirect = www_redirect;
        let (mut auth_service, mut error_service, mut mirror_service) = (None, None, None);
        if let Some(c) = canary::parse(&mut r) {
            // A canary Ingress only lends its backend: nothing else of it applies.
            canary::ignore_the_rest(&mut r);
            route = RoutePolicy {
                canary: Some(c),
                ..RoutePolicy::default()
            };
            host = HostPolicy::new(rauta_shared::config::HostMatch::Any);
            www_redirect = false;
            service_upstream = false;
        } else {
            timeouts::parse(&mut r, &mut route);
            telemetry::parse(&mut r, &mut route);
            retry::parse(&mut r, &mut route);
            auth_service = auth::parse(&mut r, &mut route);
            error_service = error_pages::parse(&mut r, &mut route);
            mirror_service = mirror::parse(&mut r, &mut route);
        }
        let verdicts = r.finish(findings, &mut route);
        Annotations {
            policy,
            weights,
            ssl_redirect,
            force_ssl_redirect,
            route,
            host,
            www_redirect,
            service_upstream,
            ssl_passthrough,
            protocol,
            backend_tls,
            auth_service,
            mirror_service,
            error_service,
            verdicts,
        }
    }
}

/// Reads an Ingress's annotations and keeps the verdict on each.
pub(super) struct Reader<'a> {
    annotations: Option<&'a BTreeMap<String, String>>,
    /// Verdicts given so far, by full key.
    verdicts: BTreeMap<String, Verdict>,
    errors: Vec<String>,
    warnings: Vec<String>,
}

impl<'a> Reader<'a> {
    fn new(ing: &'a Ingress) -> Reader<'a> {
        Reader {
            annotations: ing.metadata.annotations.as_ref(),
            verdicts: BTreeMap::new(),
            errors: Vec::new(),
            warnings: Vec::new(),
        }
    }

    /// The full key and value of `key` under the strongest prefix that has it.
    fn find(&self, key: &str) -> Option<(String, &'a str)> {
        let annotations = self.annotations?;
        ANNOTATION_PREFIXES.iter().find_map(|prefix| {
            let full = format!("{prefix}{key}");
            annotations.get(&full).map(|v| (full, v.as_str()))
        })
    }

    /// The value of `key` (without prefix); records it as read, honoured
    /// as the registry says unless a later call says otherwise. The weaker
    /// prefix's value, when both are set, is reported as overridden.
    pub(super) fn get(&mut self, key: &str) -> Option<&'a str> {
        let (full, value) = self.find(key)?;
        for prefix in ANNOTATION_PREFIXES {
            let other = format!("{prefix}{key}");
            if other != full && self.annotations.is_some_and(|a| a.contains_key(&other)) {
                self.verdicts
                    .entry(other)
                    .or_insert_with(|| Verdict::Ignored(format!("overridden by {full}")));
            }
        }
        let verdict = registry::support(key).verdict();
        self.verdicts.entry(full).or_insert(verdict);
        Some(value)
    }

    /// The value of a full key read under no other prefix (rauta-only keys).
    pub(super) fn get_exact(&mut self, full: &str) -> Option<&'a str> {
        let value = self.annotations?.get(full)?;
        let key = full.strip_prefix("rauta.io/").unwrap_or(full);
        let verdict = registry::support(key).verdict();
        self.verdicts.entry(full.to_string()).or_insert(verdict);
        Some(value)
    }

    /// Whether `key` is set under any prefix, without reading it.
    // Part of the API the annotation families build on; used as they land.
    pub(super) fn has(&self, key: &str) -> bool {
        self.find(key).is_some()
    }

    /// A boolean (`true`/`false`, any case); `default` when absent or bad (warned).
    pub(super) fn bool(&mut self, key: &str, default: bool) -> bool {
        let Some(value) = self.get(key) else {
            return default;
        };
        match value.trim().to_ascii_lowercase().as_str() {
            "true" => true,
            "false" => false,
            other => {
                self.warn(
                    key,
                    format!("{other:?} is not true or false; the default ({default}) is used"),
                );
                default
            }
        }
    }

    fn full_key(&self, key: &str) -> String {
        self.find(key).map_or_else(
            || format!("{}{key}", ANNOTATION_PREFIXES[1]),
            |(full, _)| full,
        )
    }

    /// A bad value that falls back to the default: reported, the Ingress served.
    pub(super) fn warn(&mut self, key: &str, message: impl Into<String>) {
        let full = self.full_key(key);
        let message = message.into();
        self.warnings.push(format!("annotation {full}: {message}"));
        self.verdicts.insert(full, Verdict::Ignored(message));
    }

    /// Like [`Reader::warn`], for a full key read with [`Reader::get_exact`].
    pub(super) fn warn_exact(&mut self, full: &str, message: impl Into<String>) {
        let message = message.into();
        self.warnings.push(format!("annotation {full}: {message}"));
        self.verdicts
            .insert(full.to_string(), Verdict::Ignored(message));
    }

    /// Honoured, but not exactly as ingress-nginx does it.
    pub(super) fn differs(&mut self, key: &str, note: impl Into<String>) {
        let full = self.full_key(key);
        self.verdicts.insert(full, Verdict::Differs(note.into()));
    }

    /// A broken security annotation: every rule of the Ingress answers 503
    /// (`RoutePolicy::denied`); reported, other Ingresses unaffected.
    pub(super) fn deny(&mut self, key: &str, message: impl Into<String>, route: &mut RoutePolicy) {
        let full = self.full_key(key);
        let message = message.into();
        self.warnings.push(format!(
            "annotation {full}: {message}; its paths answer 503"
        ));
        route
            .denied
            .get_or_insert_with(|| format!("{full}: {message}"));
        self.verdicts.insert(
            full,
            Verdict::Refused(format!("{message}; the paths answer 503")),
        );
    }

    /// A value for which the whole Ingress is refused.
    pub(super) fn refuse(&mut self, key: &str, message: impl Into<String>) {
        let full = self.full_key(key);
        self.refuse_exact(&full, message);
    }

    fn refuse_exact(&mut self, full: &str, message: impl Into<String>) {
        let message = message.into();
        self.errors.push(format!("annotation {full}: {message}"));
        self.verdicts.insert(
            full.to_string(),
            Verdict::Refused(format!("{message}; the Ingress is not served")),
        );
    }

    /// Gives every annotation nobody read its verdict (refused for raw
    /// nginx config, else ignored with a warning) and hands over the findings.
    fn finish(
        mut self,
        findings: &mut Findings,
        route: &mut RoutePolicy,
    ) -> Vec<AnnotationVerdict> {
        let mut unread = Vec::new();
        for full in self.annotations.into_iter().flatten().map(|(k, _)| k) {
            let Some(key) = ANNOTATION_PREFIXES
                .iter()
                .find_map(|p| full.strip_prefix(p))
            else {
                continue;
            };
            if self.verdicts.contains_key(full) {
                continue;
            }
            unread.push((full.clone(), key.to_string()));
        }
        for (full, key) in unread {
            match registry::support(&key) {
                Support::Refused(why) => self.refuse_exact(&full, why),
                // An access control rauta lacks: closed, never served open.
                Support::Closes(why) => self.deny(&key, why, route),
                _ => {
                    let message = "not supported by rauta; ignored".to_string();
                    self.warnings.push(format!("annotation {full}: {message}"));
                    self.verdicts.insert(full, Verdict::Ignored(message));
                }
            }
        }
        findings.errors.append(&mut self.errors);
        findings.warnings.append(&mut self.warnings);
        let values = self.annotations;
        self.verdicts
            .into_iter()
            .map(|(key, verdict)| AnnotationVerdict {
                value: values
                    .and_then(|a| a.get(&key))
                    .cloned()
                    .unwrap_or_default(),
                key,
                verdict,
            })
            .collect()
    }
}
