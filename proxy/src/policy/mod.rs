//! Route policies: the compiled form of a rule's [`RoutePolicy`], and the
//! two places they run. The request phase ([`request`]) runs after the
//! route is chosen and before an endpoint is picked; it may answer the
//! request itself ([`PolicyAnswer`]), choose another backend or change the
//! upstream head ([`Prepared`]). The response phase ([`response`]) changes
//! the client's response head. A route without policies has no [`Policy`] at
//! all and pays one branch.
//!
//! One file per family; each compiles its part once per table.

pub mod access;
pub mod affinity;
pub mod answer;
pub mod auth;
pub mod canary;
pub mod cookie;
pub mod cors;
pub mod error_pages;
pub mod headers;
pub mod limit;
pub mod limit_cells;
pub mod mirror;
pub mod path_rewrite;
pub mod request_redirect;
pub mod retry;
pub mod rewrite;
pub mod split;
pub mod timeouts;

pub use answer::PolicyAnswer;

use crate::balance::least_request::Rng;
use crate::balance::Backend;
use crate::http::request::RequestHead;
use crate::upstream::ConnectPolicy;
use rauta_shared::config::PathType;
use rauta_shared::policy::{BodyLimit, Redirect, RoutePolicy};
use std::net::IpAddr;

/// The compiled policies of one route.
#[derive(Debug, Default)]
pub struct Policy {
    /// The route answers 503: a security annotation is broken.
    denied: bool,
    redirect: Option<Redirect>,
    access: Option<access::Access>,
    cors: Option<cors::Cors>,
    rewrite: Option<rewrite::Rewrite>,
    forwarded_prefix: Option<Box<str>>,
    upstream_host: Option<Box<str>>,
    /// `Some(None)`: unlimited; `None`: the global limit.
    body_limit: Option<Option<u64>>,
    limit: Option<limit::Limit>,
    canary: Option<canary::Canary>,
    affinity: Option<affinity::Affinity>,
    timeouts: Option<timeouts::Timeouts>,
    retry: Option<retry::Retries>,
    auth: Option<auth::Auth>,
    error_pages: Option<error_pages::ErrorPages>,
    split: Option<split::Split>,
    request_headers: Option<headers::HeaderEdits>,
    response_headers: Option<headers::HeaderEdits>,
    request_redirect: Option<request_redirect::RequestRedirect>,
    path_rewrite: Option<path_rewrite::PathRewrite>,
    /// Spans on, and the client's `traceparent` trusted.
    tracing: (bool, bool),
    mirrors: Option<mirror::Mirrors>,
}

/// Where a rule comes from, as its error pages tell the error backend.
#[derive(Debug, Clone, Copy)]
pub struct Origin<'a> {
    /// The Ingress's namespace.
    pub namespace: &'a str,
    /// The Ingress's name.
    pub ingress: &'a str,
    /// The rule's Service.
    pub service: &'a str,
    /// The rule's Service port, as the Ingress names it.
    pub port: &'a str,
}

/// Why a route's policies do not compile.
#[derive(Debug, thiserror::Error)]
pub enum CompileError {
    /// A rewrite's regex (checked by the translation, so a translation bug).
    #[error(transparent)]
    Regex(#[from] regex::Error),
    /// The canary, auth service, error pages or a weighted share name a
    /// backend that does not exist.
    #[error("the policy points at backend #{0}, which does not exist")]
    MissingBackend(usize),
    /// A header modifier names a framing header, or is not a header.
    #[error("header modifier: {0}")]
    Header(String),
    /// A path modifier that cannot apply to the rule's path.
    #[error("path modifier: {0}")]
    PathRewrite(&'static str),
    /// A mirror whose share, Host or path cannot be used.
    #[error("mirror: {0}")]
    Mirror(String),
}

impl Policy {
    /// Compiles `policy` for a rule whose path is `path` of `path_type`
    /// and whose backend is `backends[backend]`, from `origin`; `None` for
    /// a plain route.
    pub fn compile(
        policy: &RoutePolicy,
        path: &str,
        path_type: PathType,
        backend: usize,
        backends: &[Backend],
        origin: Origin<'_>,
    ) -> Result<Option<Box<Policy>>, CompileError> {
        if policy.is_plain() {
            return Ok(None);
        }
        let auth_backend = match policy.auth.as_ref().map(|a| &a.target) {
            Some(rauta_shared::policy::AuthTarget::Backend(i)) => Some(*i),
            _ => None,
        };
        let pages_backend = policy.error_pages.as_ref().map(|p| p.backend);
        let mirror_backends = policy.mirrors.iter().filter_map(|m| match m.target {
            rauta_shared::policy::AuthTarget::Backend(i) => Some(i),
            rauta_shared::policy::AuthTarget::Addr(_) => None,
        });
        if let Some(missing) = auth_backend
            .into_iter()
            .chain(pages_backend)
            .chain(mirror_backends)
            .find(|b| *b >= backends.len())
        {
            return Err(CompileError::MissingBackend(missing));
        }
        let canary = match &policy.canary {
            Some(c) if c.backend >= backends.len() => {
                return Err(CompileError::MissingBackend(c.backend))
            }
            Some(c) => Some(canary::Canary::compile(c)),
            None => None,
        };
        let affinity = match (&policy.affinity, backends.get(backend)) {
            (Some(a), Some(main)) => Some(affinity::Affinity::compile(
                a,
                path,
                main,
                canary.as_ref().map(|c| &backends[c.backend]),
            )),
            _ => None,
        };
        let rewrite = match &policy.rewrite {
            Some(r) => Some(rewrite::Rewrite::compile(path, &r.target)?),
            None => None,
        };
        let split = match &policy.split {
            Some(s) => Some(split::Split::compile(s, backends.len())?),
            None => None,
        };
        let header_edits = |m: &Option<_>, side| {
            m.as_ref()
                .map(|m| headers::HeaderEdits::compile(m, side))
                .transpose()
        };
        let request_redirect = match &policy.request_redirect {
            Some(r) => Some(request_redirect::RequestRedirect::compile(
                r, path, path_type,
            )?),
            None => None,
        };
        let path_rewrite = match &policy.path_rewrite {
            Some(r) => Some(path_rewrite::PathRewrite::compile(r, path, path_type)?),
            None => None,
        };
        Ok(Some(Box::new(Policy {
            denied: policy.denied.is_some(),
            redirect: policy.redirect.clone(),
            access: policy.access.as_ref().map(access::Access::compile),
            cors: policy.cors.as_ref().map(cors::Cors::compile),
            forwarded_prefix: policy
                .rewrite
                .as_ref()
                .and_then(|r| r.forwarded_prefix.as_deref())
                .map(Into::into),
            rewrite,
            upstream_host: policy.upstream_host.as_deref().map(Into::into),
            body_limit: policy.body_limit.map(|l| match l {
                BodyLimit::Unlimited => None,
                BodyLimit::Bytes(n) => Some(n),
            }),
            limit: policy.rate_limit.as_ref().map(limit::Limit::compile),
            canary,
            affinity,
            timeouts: timeouts::Timeouts::compile(&policy.timeouts),
            retry: policy.retry.as_ref().map(retry::Retries::compile),
            auth: policy.auth.as_ref().map(auth::Auth::compile),
            error_pages: policy.error_pages.as_ref().map(|p| {
                error_pages::ErrorPages::compile(
                    p,
                    origin.namespace,
                    origin.ingress,
                    origin.service,
                    origin.port,
                )
            }),
            split,
            request_headers: header_edits(&policy.request_headers, headers::Side::Request)?,
            response_headers: header_edits(&policy.response_headers, headers::Side::Response)?,
            request_redirect,
            path_rewrite,
            tracing: policy
                .tracing
                .map_or((true, true), |t| (t.enabled, t.trust_incoming)),
            mirrors: mirror::Mirrors::compile(&policy.mirrors).map_err(CompileError::Mirror)?,
        })))
    }

    /// The upstream connect and I/O settings of the route, given the global ones.
    pub fn connect_policy(&self, global: &ConnectPolicy) -> ConnectPolicy {
        self.timeouts.map_or(*global, |t| t.apply(global))
    }

    /// The route's `proxy-next-upstream`, when it has one.
    pub fn retries(&self) -> Option<&retry::Retries> {
        self.retry.as_ref()
    }

    /// Whether the route records spans, and trusts a client's `traceparent`.
    pub fn tracing(&self) -> (bool, bool) {
        self.tracing
    }

    /// The route's auth service, when it has one.
    pub fn auth(&self) -> Option<&auth::Auth> {
        self.auth.as_ref()
    }

    /// The route's request mirrors, when it has any.
    #[inline]
    pub fn mirrors(&self) -> Option<&mirror::Mirrors> {
        self.mirrors.as_ref()
    }

    /// The route's error pages, when it has them.
    pub fn error_pages(&self) -> Option<&error_pages::ErrorPages> {
        self.error_pages.as_ref()
    }

    /// The request body limit of the route, given the global one.
    pub fn body_limit(&self, global: Option<u64>) -> Option<u64> {
        self.body_limit.unwrap_or(global)
    }

    /// The route's weighted backends, when it has them.
    pub fn split(&self) -> Option<&split::Split> {
        self.split.as_ref()
    }

    /// The time limits of the whole request and of one attempt, when the
    /// route sets either.
    pub fn deadlines(&self) -> Option<timeouts::Deadlines> {
        self.timeouts.and_then(|t| t.deadlines())
    }
}

/// The request as the policies see it.
#[derive(Debug, Clone, Copy)]
pub struct Request<'r, 'h, 'b> {
    /// The parsed head.
    pub head: &'r RequestHead<'h, 'b>,
    /// The normalised host (lower-case, no port).
    pub host: &'r str,
    /// The client reached us over TLS.
    pub tls: bool,
    /// The local port the client connected to.
    pub port: u16,
    /// The client's IP.
    pub client: IpAddr,
    /// The shard's generator, for canary weights.
    pub rng: &'r Rng,
    /// The backends of the table, for a canary's endpoints.
    pub backends: &'r [Backend],
}

impl Request<'_, '_, '_> {
    pub(crate) fn scheme(&self) -> &'static str {
        if self.tls {
            "https"
        } else {
            "http"
        }
    }

    /// The Host as the client sent it (port included), else the normalised host.
    pub(crate) fn http_host(&self) -> &str {
        self.head
            .host
            .and_then(|h| std::str::from_utf8(h).ok())
            .unwrap_or(self.host)
    }
}

/// What the request phase changes in the upstream request.
#[derive(Debug, Default)]
pub struct Prepared<'p> {
    /// The rewritten target, path and query.
    pub target: Option<String>,
    /// `upstream-vhost`.
    pub host: Option<&'p str>,
    /// `X-Forwarded-Prefix`, sent only with a rewrite.
    pub forwarded_prefix: Option<&'p str>,
    /// Client headers never sent upstream (the auth answer's copied ones).
    pub drop: &'p [Box<str>],
    /// The canary's backend takes the request.
    pub backend: Option<usize>,
    /// The endpoint the affinity cookie names.
    pub endpoint: Option<usize>,
    /// The request goes to [`Prepared::endpoint`] or fails: affinity
    /// without `change-on-failure` never tries another endpoint.
    pub pinned: bool,
    /// The weighted share that took the request (its backend is in
    /// [`Prepared::backend`]).
    pub share: Option<usize>,
    /// Header changes to the upstream head, once it is written.
    pub headers: Option<&'p headers::HeaderEdits>,
}

/// What the response phase of one request needs from its request phase.
#[derive(Debug, Default)]
pub struct State {
    /// The `Access-Control-Allow-Origin` the response gets.
    cors: Option<cors::Allowed>,
    /// The auth service's `Set-Cookie` lines, relayed to the client.
    pub auth_cookies: Vec<u8>,
    /// The client's in-flight slot (`limit-connections`), held to the end.
    in_flight: Option<limit_cells::InFlight>,
    /// Affinity: which backend and endpoint the request was sent to.
    sticky: Option<Sticky>,
}

/// The affinity cookie's part of a request.
#[derive(Debug, Clone, Copy)]
struct Sticky {
    /// 0 for the main backend, 1 for the canary.
    slot: usize,
    /// The endpoint the client's cookie named, when it named a known one.
    named: Option<usize>,
    /// The client reached us over TLS (the cookie is then `Secure`).
    tls: bool,
}

/// The request phase of a route with policies, in nginx's order: the
/// route's own refusal, redirects, the IP lists, CORS preflight, then the
/// changes to the upstream head.
pub fn request<'p>(
    policy: &'p Policy,
    req: &Request<'_, '_, '_>,
    state: &mut State,
) -> Result<Prepared<'p>, PolicyAnswer> {
    if policy.denied {
        return Err(PolicyAnswer::Denied);
    }
    if let Some(redirect) = &policy.redirect {
        return Err(PolicyAnswer::Redirect {
            code: redirect.code,
            location: expand(&redirect.location, req),
        });
    }
    if let Some(redirect) = &policy.request_redirect {
        let url = request_redirect::Url {
            scheme: req.scheme(),
            host: req.host,
            port: req.port,
            path: req.head.path,
            query: query(req.head.origin_target),
        };
        return Err(PolicyAnswer::Redirect {
            code: redirect.code,
            location: redirect.location(&url),
        });
    }
    if let Some(access) = &policy.access {
        if !access.permits(access::ip_key(req.client)) {
            return Err(PolicyAnswer::Forbidden);
        }
    }
    if let Some(cors) = &policy.cors {
        let origin = req.head.header("origin");
        state.cors = cors.allow(origin);
        if req.head.method == "OPTIONS" {
            let asked = cors::Asked {
                origin,
                method: req.head.header("access-control-request-method"),
                headers: req.head.header("access-control-request-headers"),
            };
            if let Some(headers) = cors.preflight(state.cors.as_ref(), &asked) {
                return Err(PolicyAnswer::Preflight(headers));
            }
        }
    }
    if let Some(limit) = &policy.limit {
        match limit.admit(access::ip_key(req.client)) {
            Ok(slot) => state.in_flight = slot,
            Err(status) => return Err(PolicyAnswer::Limited(status)),
        }
    }
    let mut prepared = Prepared {
        host: policy.upstream_host.as_deref(),
        drop: policy.auth.as_ref().map_or(&[], auth::Auth::copied),
        headers: policy.request_headers.as_ref(),
        ..Prepared::default()
    };
    if let Some(split) = &policy.split {
        match split.pick(req.rng) {
            split::Pick::Backend { share, backend } => {
                prepared.backend = Some(backend);
                prepared.share = Some(share);
            }
            split::Pick::Invalid => return Err(PolicyAnswer::InvalidBackend),
        }
    } else if policy.canary.is_some() || policy.affinity.is_some() {
        choose_backend(policy, req, state, &mut prepared);
    }
    if let Some(rewrite) = &policy.rewrite {
        let query = req.head.origin_target.split_once('?').map(|(_, q)| q);
        prepared.target = rewrite.apply(req.head.path, query);
        if prepared.target.is_some() {
            prepared.forwarded_prefix = policy.forwarded_prefix.as_deref();
        }
    }
    if let Some(rewrite) = &policy.path_rewrite {
        prepared.target = Some(rewrite.target(req.head.path, query(req.head.origin_target)));
    }
    Ok(prepared)
}

/// The query of an origin-form target, without `?` (and fragment).
fn query(target: &str) -> Option<&str> {
    let (_, query) = target.split_once('?')?;
    query.split('#').next()
}

/// Canary, then affinity: which backend (main or canary) and, when the
/// affinity cookie names a known endpoint, which endpoint. A cookie naming
/// a canary endpoint keeps the client on the canary (`sticky`), one naming
/// a main endpoint on the main backend; otherwise header, cookie and
/// weight decide. A canary without endpoints leaves the request to the
/// main backend.
fn choose_backend(
    policy: &Policy,
    req: &Request<'_, '_, '_>,
    state: &mut State,
    prepared: &mut Prepared<'_>,
) {
    let cookie = policy
        .affinity
        .as_ref()
        .and_then(|a| cookie::get(req.head, &a.cookie).map(|v| (a, v)));
    let mut slot = None;
    let mut named = None;
    if let (Some((a, value)), Some(_)) = (cookie, &policy.canary) {
        if a.canary_sticky {
            if let Some(e) = a.find(1, value) {
                (slot, named) = (Some(1), Some(e));
            } else if let Some(e) = a.find(0, value) {
                (slot, named) = (Some(0), Some(e));
            }
        }
    }
    let slot = slot.unwrap_or_else(|| match &policy.canary {
        Some(c) if !req.backends[c.backend].endpoints.is_empty() => {
            usize::from(c.choose(req.head, req.rng))
        }
        _ => 0,
    });
    if let Some(c) = policy.canary.as_ref().filter(|_| slot == 1) {
        prepared.backend = Some(c.backend);
    }
    if let Some(a) = &policy.affinity {
        if named.is_none() {
            named = cookie.and_then(|(a, v)| a.find(slot, v));
        }
        prepared.endpoint = named;
        prepared.pinned = named.is_some() && !a.change_on_failure;
        state.sticky = Some(Sticky {
            slot,
            named,
            tls: req.tls,
        });
    }
}

/// The response phase: adds the route's response headers to `out`, a
/// complete response head with status `status`, then applies its header
/// modifier. `endpoint` is the endpoint that answered.
pub fn response(policy: &Policy, state: &State, status: u16, endpoint: usize, out: &mut Vec<u8>) {
    add_response_headers(policy, state, status, endpoint, out);
    // Last, so that it sees every line the others wrote.
    if let Some(edits) = &policy.response_headers {
        edits.apply(out);
    }
}

/// CORS, the affinity cookie and the auth service's cookies.
fn add_response_headers(
    policy: &Policy,
    state: &State,
    status: u16,
    endpoint: usize,
    out: &mut Vec<u8>,
) {
    let cors = match (&policy.cors, &state.cors) {
        (Some(cors), Some(allowed)) => Some((cors, allowed)),
        _ => None,
    };
    // A new endpoint was picked (no cookie, an unknown one, or a failover):
    // the cookie names it.
    let cookie = match (&policy.affinity, &state.sticky) {
        (Some(a), Some(s)) if s.named != Some(endpoint) => Some((a, s)),
        _ => None,
    };
    let auth_cookies = !state.auth_cookies.is_empty() && auth::relays_cookies(status);
    if (cors.is_none() && cookie.is_none() && !auth_cookies) || !out.ends_with(b"\r\n\r\n") {
        return;
    }
    out.truncate(out.len() - 2);
    if let Some((cors, allowed)) = cors {
        cors.write(allowed, out);
    }
    if let Some((a, s)) = cookie {
        a.write(s.slot, endpoint, s.tls, out);
    }
    if auth_cookies {
        out.extend_from_slice(&state.auth_cookies);
    }
    out.extend_from_slice(b"\r\n");
}

/// Expands `$request_uri`, `$uri`, `$host`, `$http_host`, `$scheme` and
/// `$server_port`-free forms in a redirect location, as nginx's `return` does.
pub fn expand(template: &str, req: &Request<'_, '_, '_>) -> String {
    if !template.contains('$') {
        return template.to_string();
    }
    let mut out = String::with_capacity(template.len() + req.head.origin_target.len());
    let mut rest = template;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        let name_len = rest[1..]
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .map_or(rest.len() - 1, |n| n);
        let name = &rest[1..1 + name_len];
        match name {
            "request_uri" => out.push_str(req.head.origin_target),
            "escaped_request_uri" => auth::escape_uri(req.head.origin_target, &mut out),
            "uri" => out.push_str(req.head.path),
            "host" => out.push_str(req.host),
            "http_host" => out.push_str(req.http_host()),
            "scheme" => out.push_str(req.scheme()),
            "args" | "query_string" => out.push_str(
                req.head
                    .origin_target
                    .split_once('?')
                    .map_or("", |(_, q)| q),
            ),
            _ => out.push_str(&rest[..1 + name_len]),
        }
        rest = &rest[1 + name_len..];
    }
    out.push_str(rest);
    out
}
