//! Step one of an exchange: parse the head, route it, run the route's
//! request policies, pick an endpoint and write the upstream head. Pure
//! with respect to sockets: it reads the client's buffer and writes
//! `conn.out`, nothing else.

use crate::access_log;
use crate::balance::maglev::Maglev;
use crate::downstream::ClientConn;
use crate::error::ProxyError;
use crate::http::head::{self, Forwarded, IpText};
use crate::http::{request, BodyLen, RequestError, MAX_HEADERS};
use crate::metrics;
use crate::otel;
use crate::policy::{self, Policy};
use crate::router::conditions::Facts;
use crate::router::path::RouteId;
use crate::router::{host, Match};
use crate::shard::{LocalTable, Shard};
use rauta_shared::config::HashKey;
use std::io::{self, Write};
use std::net::SocketAddr;

/// What the exchange needs once the parsed head is released.
#[derive(Debug)]
pub(super) struct Plan<'t> {
    pub(super) route: RouteId,
    /// The route's policies, for the response phase.
    pub(super) policy: Option<&'t Policy>,
    /// What the response phase needs from the request phase.
    pub(super) state: policy::State,
    /// The request body limit of the route.
    pub(super) body_limit: Option<u64>,
    /// Only [`Plan::endpoint`] may be tried (affinity without change-on-failure).
    pub(super) pinned: bool,
    pub(super) backend: usize,
    pub(super) endpoint: usize,
    pub(super) method: usize,
    pub(super) head_len: u64,
    pub(super) body: BodyLen,
    pub(super) keep_alive: bool,
    pub(super) http10: bool,
    pub(super) head_request: bool,
    pub(super) upgrade: bool,
    pub(super) expect_continue: bool,
    /// Not POST, PATCH or LOCK: may be retried after it was sent.
    pub(super) idempotent: bool,
    /// The auth subrequest to send first (`auth-url`).
    pub(super) auth: Option<policy::auth::Call>,
    /// The error-page request head, less its X-Code (`custom-http-errors`).
    pub(super) error_page: Option<Vec<u8>>,
    /// The request already goes to the error backend (its own backend has
    /// no endpoint): its answer is not intercepted again.
    pub(super) diverted: bool,
    /// Copies for the route's mirrors (empty for nearly every route).
    pub(super) mirrors: Vec<super::mirror::Copy>,
}

/// A request that cannot be forwarded, with what is known about it.
pub(super) struct Refused {
    pub(super) error: ProxyError,
    /// The request was read whole, so the connection may go on.
    pub(super) keep: bool,
    /// The route, when one was chosen before the refusal.
    pub(super) route: Option<RouteId>,
    pub(super) method: usize,
    pub(super) head_len: u64,
}

/// Parses the head, routes, picks an endpoint and writes the upstream head
/// into `conn.out`; consumes the head from the read buffer when the request
/// goes on (or when a refused request was read whole). The request's trace
/// context, with `--otlp-endpoint` when it has one, goes into `trace`
/// whether the request goes on or is refused.
pub(super) fn plan<'t>(
    shard: &Shard,
    conn: &mut ClientConn,
    table: &'t LocalTable,
    trace: &mut Option<otel::Trace>,
) -> Result<Plan<'t>, Refused> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let limit = shard.cfg.max_headers.min(MAX_HEADERS);
    let refused = |error: ProxyError| Refused {
        error,
        keep: false,
        route: None,
        method: 0,
        head_len: 0,
    };
    let req = match request::parse(conn.rbuf.data(), &mut headers[..limit]) {
        Ok(Some(req)) => req,
        Ok(None) => return Err(refused(RequestError::Bad("incomplete request head").into())),
        Err(e) => return Err(refused(e.into())),
    };
    let method = metrics::method_index(req.method);
    let mut request_id = [0u8; 32];
    shard.next_request_id(&mut request_id);
    if shard.access_log.is_some() {
        let id = upstream_request_id(&req, &request_id);
        access_log::start_line(
            &mut conn.log,
            conn.peer,
            req.method,
            req.host.unwrap_or(b""),
            req.target,
            id,
        );
    }
    let via = Via {
        peer: conn.peer,
        peer_ip: &conn.peer_ip,
        tls: conn.stream.is_tls(),
        port: conn.port,
    };
    let result = route(
        shard,
        &mut conn.out,
        via,
        table,
        &req,
        method,
        &request_id,
        trace,
    );
    // Without a body the request is fully read: a refusal can keep the connection.
    let (len, keep) = (req.len, req.body == BodyLen::None && req.keep_alive);
    match result {
        Ok(plan) => {
            conn.rbuf.consume(len);
            Ok(plan)
        }
        Err((error, route)) => {
            if keep {
                conn.rbuf.consume(len);
            }
            Err(Refused {
                error,
                keep,
                route,
                method,
                head_len: len as u64,
            })
        }
    }
}

/// How the client reached the proxy.
#[derive(Debug, Clone, Copy)]
struct Via<'a> {
    peer: SocketAddr,
    peer_ip: &'a IpText,
    tls: bool,
    /// The local port it connected to.
    port: u16,
}

/// The request as the route's policies see it.
fn policy_request<'r, 'h, 'b>(
    shard: &'r Shard,
    via: Via<'_>,
    table: &'r LocalTable,
    req: &'r request::RequestHead<'h, 'b>,
    host: &'r str,
) -> policy::Request<'r, 'h, 'b> {
    policy::Request {
        head: req,
        host,
        tls: via.tls,
        port: via.port,
        client: via.peer.ip(),
        rng: &shard.rng,
        backends: table.routes.backends(),
    }
}

/// The request id the upstream sees: the client's, else ours.
fn upstream_request_id<'a>(req: &'a request::RequestHead, ours: &'a [u8]) -> &'a [u8] {
    req.header("x-request-id")
        .filter(|v| !v.is_empty())
        .unwrap_or(ours)
}

/// Routes the request and runs its request phase. The trace context is
/// decided as soon as the route is known (or known to be none), into
/// `trace`: a refusal after that point keeps it there, so a request rauta
/// answers itself gets its span like a forwarded one.
#[allow(clippy::too_many_arguments)]
fn route<'t>(
    shard: &Shard,
    out: &mut Vec<u8>,
    via: Via<'_>,
    table: &'t LocalTable,
    req: &request::RequestHead,
    method: usize,
    request_id: &[u8],
    trace: &mut Option<otel::Trace>,
) -> Result<Plan<'t>, (ProxyError, Option<RouteId>)> {
    let mut host_buf = [0u8; host::MAX_HOST_LEN];
    let host = match req.host {
        Some(h) => host::normalize(h, &mut host_buf).ok_or((ProxyError::BadHost, None))?,
        None => "",
    };
    if let Some(path) = &shard.cfg.panic_path {
        assert!(req.path != &**path, "test hook: a request for {path}");
    }
    let scheme = if via.tls { "https" } else { "http" };
    let http_host = req
        .host
        .and_then(|h| std::str::from_utf8(h).ok())
        .unwrap_or(host);
    // Without `--otlp-endpoint` this is the one branch tracing costs.
    let traced = |policy: Option<&Policy>| {
        shard
            .otel
            .as_ref()
            .and_then(|spans| start_trace(spans, shard, via, req, host, policy))
    };
    if let Some(answer) =
        table
            .routes
            .host_answer(host, req.path, req.origin_target, scheme, http_host)
    {
        *trace = traced(None);
        return Err((ProxyError::Policy(answer), None));
    }
    let facts = Facts {
        method: req.method,
        headers: req.headers,
        target: req.origin_target,
        tls: via.tls,
        port: via.port,
    };
    let (route, backend_index) = match table.routes.lookup_with(host, req.path, &facts) {
        Match::Route { route, backend } => (route, backend),
        Match::None => {
            *trace = traced(None);
            return Err((ProxyError::NoRoute, None));
        }
    };
    *trace = traced(table.routes.route(route).policy.as_deref());
    let mut state = policy::State::default();
    let (prepared, body_limit) = request_policies(shard, via, table, route, host, req, &mut state)
        .map_err(|e| (e, Some(route)))?;
    let backend_index = prepared
        .as_ref()
        .and_then(|p| p.backend)
        .unwrap_or(backend_index);
    // The policies stay the rule's; a weighted share's requests are
    // counted under the share's own route, which names its backend.
    let rule = route;
    let route_policy = table.routes.route(route).policy.as_deref();
    let route = match prepared.as_ref().and_then(|p| p.share) {
        Some(share) => table.routes.route(route).share_route(share),
        None => route,
    };
    let backend = table.routes.backend(backend_index);
    let key_hash = backend.hash_key().and_then(|key| match key {
        HashKey::ClientIp => Some(Maglev::hash_ip(via.peer.ip())),
        HashKey::Header(name) => req.header(name).map(Maglev::hash_key),
        HashKey::RequestUri => Some(Maglev::hash_key(req.origin_target.as_bytes())),
        HashKey::Host => Some(Maglev::hash_key(host.as_bytes())),
    });
    let (auth, error_page) = match route_policy {
        Some(p) if p.auth().is_some() || p.error_pages().is_some() => {
            let request = policy_request(shard, via, table, req, host);
            let id = upstream_request_id(req, request_id);
            let ip = via.peer_ip.as_bytes();
            (
                p.auth().map(|a| a.call(&request, ip, id)),
                p.error_pages().map(|e| (e, e.head(&request, ip, id))),
            )
        }
        _ => (None, None),
    };
    let named = prepared.as_ref().and_then(|p| p.endpoint);
    // An endpoint the affinity cookie names is kept; a balancer's pick
    // steers clear of ejected endpoints.
    let picked = named.or_else(|| {
        backend
            .pick(&table.states[backend_index], key_hash, &shard.rng)
            .map(|e| shard.outliers.steer(backend, e))
    });
    let Some(endpoint) = picked else {
        // No endpoint: the error backend answers with X-Code 503 (`default-backend`).
        let Some((pages, head)) = &error_page else {
            return Err((ProxyError::NoEndpoint, Some(route)));
        };
        let error_backend = table.routes.backend(pages.backend);
        let endpoint = error_backend
            .pick(&table.states[pages.backend], None, &shard.rng)
            .ok_or((ProxyError::NoEndpoint, Some(route)))?;
        policy::error_pages::finish(head, 503, out);
        return Ok(Plan {
            route,
            policy: route_policy,
            state,
            body_limit,
            pinned: false,
            backend: pages.backend,
            endpoint,
            method,
            head_len: req.len as u64,
            body: req.body,
            keep_alive: req.keep_alive,
            http10: req.minor == 0,
            head_request: req.is_head(),
            upgrade: false,
            expect_continue: req.expect_continue,
            idempotent: is_idempotent(req.method),
            auth,
            error_page: None,
            diverted: true,
            mirrors: Vec::new(),
        });
    };

    let fwd = Forwarded {
        client_ip: via.peer_ip.as_bytes(),
        proto: if via.tls { "https" } else { "http" },
        port: via.port,
        request_id,
    };
    // Only an HTTP/1.0 request without Host needs the endpoint as Host:
    // format it only then, not on every request.
    let mut fallback_host = [0u8; 64];
    let mut fallback_len = 0;
    if req.host.is_none() {
        let mut cursor = io::Cursor::new(&mut fallback_host[..]);
        let _ = write!(cursor, "{}", backend.endpoints[endpoint].addr);
        fallback_len = cursor.position() as usize;
    }
    let traceparent = trace.as_ref().map(|t| t.ctx.traceparent());
    let mut add: [(&[u8], &[u8]); 2] = [(b"", b""); 2];
    let mut drop: [&str; 2] = [""; 2];
    let mut edited = 0;
    if let Some(prefix) = prepared.as_ref().and_then(|p| p.forwarded_prefix) {
        add[edited] = (b"X-Forwarded-Prefix", prefix.as_bytes());
        drop[edited] = "x-forwarded-prefix";
        edited += 1;
    }
    if let Some(value) = &traceparent {
        add[edited] = (b"traceparent", value);
        drop[edited] = "traceparent";
        edited += 1;
    }
    let edits = head::Edits {
        target: prepared
            .as_ref()
            .and_then(|p| p.target.as_deref())
            .map(str::as_bytes),
        host: prepared.as_ref().and_then(|p| p.host).map(str::as_bytes),
        drop_names: prepared.as_ref().map_or(&[], |p| p.drop),
        drop: &drop[..edited],
        add: &add[..edited],
    };
    let fallback = &fallback_host[..fallback_len];
    head::write_request(out, req, &fwd, &edits, fallback);
    let header_edits = prepared.as_ref().and_then(|p| p.headers);
    if let Some(headers) = header_edits {
        headers.apply(out);
    }
    // An upgrade (a WebSocket) is not mirrored: its copy would turn into a
    // tunnel nobody reads.
    let mirrors = match route_policy.and_then(Policy::mirrors) {
        Some(mirrors) if req.upgrade.is_none() => {
            let request = policy_request(shard, via, table, req, host);
            let mirrored = Mirrored {
                req: &request,
                fwd: &fwd,
                edits: &edits,
                fallback,
                headers: header_edits,
                rule,
            };
            mirror_heads(mirrors, &shard.rng, &mirrored)
        }
        _ => Vec::new(),
    };
    Ok(Plan {
        route,
        policy: route_policy,
        state,
        body_limit,
        pinned: prepared.as_ref().is_some_and(|p| p.pinned),
        backend: backend_index,
        endpoint,
        method,
        head_len: req.len as u64,
        body: req.body,
        keep_alive: req.keep_alive,
        http10: req.minor == 0,
        head_request: req.is_head(),
        upgrade: req.upgrade.is_some(),
        expect_continue: req.expect_continue,
        idempotent: is_idempotent(req.method),
        auth,
        error_page: error_page.map(|(_, head)| head),
        diverted: false,
        mirrors,
    })
}

/// What a mirrored copy's head is written from.
struct Mirrored<'a, 'r, 'h, 'b> {
    req: &'a policy::Request<'r, 'h, 'b>,
    fwd: &'a Forwarded<'a>,
    /// The primary upstream head's edits.
    edits: &'a head::Edits<'a>,
    fallback: &'a [u8],
    headers: Option<&'a policy::headers::HeaderEdits>,
    rule: RouteId,
}

/// The copies this request gets: the primary upstream head with the
/// mirror's target and Host, and without body framing when the mirror
/// does not copy the body.
fn mirror_heads(
    mirrors: &policy::mirror::Mirrors,
    rng: &crate::balance::least_request::Rng,
    m: &Mirrored<'_, '_, '_, '_>,
) -> Vec<super::mirror::Copy> {
    let head = m.req.head;
    let bodyless = request::RequestHead {
        body: BodyLen::None,
        content_length: None,
        ..*head
    };
    mirrors
        .chosen(rng)
        .map(|(index, mirror)| {
            let target = mirror.target_for(m.req);
            let edits = head::Edits {
                target: target.as_deref().map(str::as_bytes).or(m.edits.target),
                host: mirror.host().map(str::as_bytes).or(m.edits.host),
                drop: m.edits.drop,
                drop_names: m.edits.drop_names,
                add: m.edits.add,
            };
            let body = mirror.body && head.body != BodyLen::None;
            let from = if body || head.body == BodyLen::None {
                head
            } else {
                &bodyless
            };
            let mut out = Vec::with_capacity(head.len + 256);
            head::write_request(&mut out, from, m.fwd, &edits, m.fallback);
            if let Some(headers) = m.headers {
                headers.apply(&mut out);
            }
            super::mirror::Copy {
                rule: m.rule,
                index,
                head: out,
                body,
            }
        })
        .collect()
}

/// The request's trace context, when tracing is on for its route: the
/// client's `traceparent` continued (unless the route does not trust it),
/// or a new trace when sampling says so. A sampled request records what
/// its span needs.
fn start_trace(
    spans: &otel::ShardSpans,
    shard: &Shard,
    via: Via<'_>,
    req: &request::RequestHead,
    host: &str,
    policy: Option<&Policy>,
) -> Option<otel::Trace> {
    let (enabled, trust) = policy.map_or((true, true), Policy::tracing);
    if !enabled {
        return None;
    }
    let incoming = if trust {
        req.header("traceparent")
    } else {
        None
    };
    let ctx = otel::decide(&spans.cfg, &shard.rng, incoming)?;
    let started = ctx.sampled.then(|| {
        Box::new(otel::Started {
            start_ns: otel::unix_nanos(),
            method: req.method.into(),
            path: req.path.into(),
            host: host.into(),
            scheme: if via.tls { "https" } else { "http" },
            port: via.port,
            client: via.peer.ip(),
        })
    });
    Some(otel::Trace { ctx, started })
}

/// nginx's idempotence for `proxy_next_upstream`: all but POST, PATCH, LOCK.
fn is_idempotent(method: &str) -> bool {
    !matches!(method, "POST" | "PATCH" | "LOCK")
}

/// The request phase: the chosen route's request-side policies, after the
/// route and before the endpoint is picked and the upstream head written.
/// A policy may answer the request itself (a redirect, a refusal). Every
/// request-side policy runs here and nowhere else. Returns the changes to
/// the upstream head (`None` for a plain route) and the body limit.
fn request_policies<'t>(
    shard: &Shard,
    via: Via<'_>,
    table: &'t LocalTable,
    route: RouteId,
    host: &str,
    req: &request::RequestHead,
    state: &mut policy::State,
) -> Result<(Option<policy::Prepared<'t>>, Option<u64>), ProxyError> {
    let route = table.routes.route(route);
    if !via.tls && !host.is_empty() && route.ssl_redirect {
        if let Some(tls_port) = shard.tls_port {
            let location = https_location(host, tls_port, req.origin_target);
            return Err(ProxyError::HttpsRedirect(location));
        }
    }
    let mut limit = shard.cfg.max_body_bytes;
    let mut prepared = None;
    if let Some(policy) = route.policy.as_deref() {
        let request = policy_request(shard, via, table, req, host);
        prepared = Some(policy::request(policy, &request, state).map_err(ProxyError::Policy)?);
        limit = policy.body_limit(limit);
    }
    if let (BodyLen::Length(n), Some(limit)) = (req.body, limit) {
        if n > limit {
            return Err(ProxyError::BodyTooLarge);
        }
    }
    Ok((prepared, limit))
}

/// `https://host[:port]/target`, the port left out when it is 443.
fn https_location(host: &str, port: u16, target: &str) -> String {
    let mut location = String::with_capacity(16 + host.len() + target.len());
    location.push_str("https://");
    location.push_str(host);
    if port != 443 {
        location.push(':');
        location.push_str(&port.to_string());
    }
    location.push_str(target);
    location
}
