//! Step two of an exchange: an upstream connection from the pool or a
//! connect, the request head and body sent, the response head read. This
//! is the one place where a failed attempt is retried ([`Retrying`]),
//! starting from the error's own verdict ([`ProxyError::retry`]), where
//! an answer the route's error pages intercept is replaced, and where the
//! route's request and per-attempt time limits are kept.

use super::plan::Plan;
use super::record::{self, Tally};
use crate::downstream::{ClientConn, Outcome};
use crate::error::{Fault, ProxyError, Retry, Why};
use crate::http::body::{self, BodyError};
use crate::http::buf::IoBuf;
use crate::http::head::ClientConnection;
use crate::http::response::{self, ResponseHead};
use crate::http::{BodyLen, MAX_HEADERS};
use crate::http2::Bridge;
use crate::policy::retry::Retries;
use crate::policy::timeouts::Deadlines;
use crate::policy::Policy;
use crate::rt;
use crate::shard::{LocalTable, Shard};
use crate::upstream::h2::H2Call;
use crate::upstream::{self, ConnectPolicy, UpStream, Upstream};
use futures_lite::AsyncWriteExt;
use std::io;
use std::time::{Duration, Instant};

/// The upstream connection and the response head it answered with.
pub(super) struct Forwarded<'s> {
    /// The connection, with the rest of the response to read.
    pub(super) up: Upstream<'s>,
    /// The response head, already written for the client in `conn.out`.
    pub(super) response: ResponseInfo,
    /// When the first attempt started (the upstream time runs from here).
    pub(super) started: Instant,
}

/// Sends the planned request upstream and reads the response head,
/// trying again as [`Retrying::decide`] allows; an answer the route's
/// error pages intercept is replaced by the error backend's. Any other
/// failure is answered here; the outcome is then returned as the error.
/// `arrived`: when the request head was complete (the route's request
/// time limit runs from there).
pub(super) async fn forward<'s>(
    shard: &'s Shard,
    conn: &mut ClientConn,
    table: &LocalTable,
    plan: &Plan<'_>,
    tally: &mut Tally,
    client_head: ClientHead,
    arrived: Instant,
) -> Result<Forwarded<'s>, Outcome> {
    let mut target = plan.backend;
    let mut backend = table.routes.backend(target);
    let Some(_inflight) =
        table.states[plan.backend].start(plan.endpoint, shard.cfg.backend_max_requests)
    else {
        let error = ProxyError::Overloaded;
        return Err(record::fail(
            conn,
            &error,
            plan.keep_alive && plan.body == BodyLen::None,
            tally,
        )
        .await);
    };
    let budget = &table.states[plan.backend].retry_budget;
    budget.earn();
    let started = Instant::now();
    let connect = plan
        .policy
        .map_or(shard.cfg.connect, |p| p.connect_policy(&shard.cfg.connect));
    let pages = plan.policy.and_then(Policy::error_pages);
    let mut retrying = Retrying::new(plan, &connect, backend.endpoints.len(), started);
    let mut first = plan.endpoint;
    let mut endpoint = first;
    // The endpoint the response phase names (the affinity cookie): for an
    // error page, the route's endpoint whose answer it replaces.
    let mut answering = None;
    // The request as it is sent in this attempt: the error-page request
    // that replaces an intercepted answer has no body.
    let mut sending = Sending {
        body: plan.body,
        expect_continue: plan.expect_continue,
        diverted: plan.diverted,
    };
    // After a reused connection failed, the retry takes a new one.
    let mut fresh = false;
    let limits = (plan.policy)
        .and_then(Policy::deadlines)
        .map(|d| Limits::new(d, arrived));
    loop {
        let has_body = sending.body != BodyLen::None;
        // Nothing of a body is read before an attempt: without one, the
        // client connection is in step whatever happens upstream.
        let keep = plan.keep_alive && !has_body;
        let limit = limits.as_ref().map(Limits::next_attempt);
        if limit == Some(Limit::Spent) {
            return Err(record::fail(conn, &ProxyError::UpstreamTimeout, keep, tally).await);
        }
        let mut reused = false;
        let attempt = async {
            let acquired =
                upstream::acquire(&shard.pool, backend, endpoint, &connect, has_body, fresh).await;
            let mut up = acquired.map_err(|error| Failure::Proxy { error, keep })?;
            tally.connect_us = up.connect_us;
            tally.upstream = Some(up.addr);
            reused = up.reused;
            let pooled = up.reused;
            let check = |status: u16, answered: bool| {
                if retrying.retries_status(status)
                    && !matches!(
                        retrying.decide(Retry::Sent(Why::Status(status)), pooled, answered),
                        Next::Answer
                    )
                {
                    Head::Retry
                } else if !sending.diverted
                    && plan.error_page.is_some()
                    && pages.is_some_and(|p| p.intercepts(status))
                {
                    Head::ErrorPage
                } else {
                    Head::Relay
                }
            };
            let response = exchange_on(
                shard,
                conn,
                &mut up,
                plan,
                answering.unwrap_or(endpoint),
                &sending,
                tally,
                client_head,
                &check,
            )
            .await?;
            Ok::<_, Failure>((up, response))
        };
        // A route without time limits runs its attempts with no timer.
        let outcome = match limit {
            Some(Limit::Within {
                time,
                whole_request,
            }) => match rt::timeout(time, attempt).await {
                Some(outcome) => outcome,
                // The request's time is up: no other attempt.
                None if whole_request => {
                    let error = ProxyError::UpstreamTimeout;
                    return Err(record::fail(conn, &error, keep, tally).await);
                }
                None => Err(Failure::Proxy {
                    error: ProxyError::UpstreamTimeout,
                    keep,
                }),
            },
            _ => attempt.await,
        };
        let result = match outcome {
            Ok((up, response)) => {
                shard.endpoint_answered(backend, endpoint, response.status);
                return Ok(Forwarded {
                    up,
                    response,
                    started,
                });
            }
            Err(failure) => (failure, reused),
        };
        let (error, keep, reused) = match result {
            (Failure::ClientGone, _) => return Err(Outcome::Done),
            (Failure::ErrorPage(status), _) => {
                shard.endpoint_answered(backend, endpoint, status);
                // The intercepted answer is dropped with its connection;
                // the error backend is asked instead, once, without body.
                let (Some(pages), Some(head)) = (pages, &plan.error_page) else {
                    // Not reached: only a route with error pages intercepts.
                    let error = ProxyError::UpstreamProtocol("no error page to replace the answer");
                    return Err(record::fail(conn, &error, false, tally).await);
                };
                crate::policy::error_pages::finish(head, status, &mut conn.out);
                target = pages.backend;
                backend = table.routes.backend(target);
                let picked = backend.pick(&table.states[target], None, &shard.rng);
                let Some(picked) = picked else {
                    let error = ProxyError::NoEndpoint;
                    return Err(record::fail(conn, &error, plan.keep_alive, tally).await);
                };
                answering = Some(endpoint);
                (first, endpoint, fresh) = (picked, picked, false);
                sending = Sending {
                    body: BodyLen::None,
                    expect_continue: false,
                    diverted: true,
                };
                retrying = Retrying::plain(&connect, backend.endpoints.len());
                continue;
            }
            (Failure::Proxy { error, keep }, reused) => (error, keep, reused),
        };
        if error.blames_endpoint(reused) {
            shard.endpoint_failed(backend, endpoint);
        }
        let mut next = retrying.decide(error.retry(), reused, tally.bytes_out > 0);
        // Sending the request again (not a connect that failed, nor a
        // pooled connection found closed) spends the backend's budget.
        let resend = next == Next::OtherEndpoint && !matches!(error.retry(), Retry::NotSent(_));
        if resend {
            if budget.spend() {
                shard.metrics.upstream_resent();
            } else {
                shard.metrics.retry_budget_exhausted();
                next = Next::Answer;
            }
        }
        retrying.take(next);
        match next {
            Next::OtherEndpoint => {
                tracing::debug!(upstream = ?tally.upstream, %error, "trying the next endpoint");
                let reason = error.retry().reason();
                shard.metrics.upstream_retried(reason);
                let failed = backend.endpoints[endpoint].addr;
                tally
                    .retried
                    .push((failed, crate::error::RETRY_REASONS[reason]));
                endpoint = shard
                    .outliers
                    .steer(backend, backend.retry(first, retrying.retried));
                fresh = false;
            }
            Next::Fresh => fresh = true,
            Next::Answer => return Err(record::fail(conn, &error, keep, tally).await),
        }
    }
}

/// The route's request and attempt time limits for one request.
#[derive(Debug)]
struct Limits {
    /// When the whole request's time is up.
    request: Option<Instant>,
    attempt: Option<Duration>,
}

/// How long the next attempt may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Limit {
    /// At most `time`; `whole_request`: the request's own limit ends it first.
    Within { time: Duration, whole_request: bool },
    /// The request's time is up already.
    Spent,
}

impl Limits {
    fn new(d: Deadlines, arrived: Instant) -> Limits {
        Limits {
            request: d.request.and_then(|r| arrived.checked_add(r)),
            attempt: d.attempt,
        }
    }

    fn next_attempt(&self) -> Limit {
        let left = (self.request).map(|at| at.saturating_duration_since(Instant::now()));
        match (left, self.attempt) {
            (Some(left), _) if left.is_zero() => Limit::Spent,
            (Some(left), Some(attempt)) if attempt < left => Limit::Within {
                time: attempt,
                whole_request: false,
            },
            (Some(left), _) => Limit::Within {
                time: left,
                whole_request: true,
            },
            (None, attempt) => Limit::Within {
                time: attempt.unwrap_or(Duration::MAX),
                whole_request: false,
            },
        }
    }
}

/// What one attempt sends.
struct Sending {
    body: BodyLen,
    /// A `100 Continue` is owed to the client before the body.
    expect_continue: bool,
    /// The request is the error-page request: its answer is relayed as is.
    diverted: bool,
}

/// What is done with a final response head, before the client sees it.
enum Head {
    /// The response phase writes it for the client.
    Relay,
    /// The route retries this status on another endpoint.
    Retry,
    /// The route's error pages replace it.
    ErrorPage,
}

/// What follows a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Next {
    /// Another endpoint.
    OtherEndpoint,
    /// The same endpoint on a new connection (a pooled one had gone stale).
    Fresh,
    /// No retry: the failure is answered.
    Answer,
}

/// The retry decision for one request, taken in [`Retrying::decide`] and
/// nowhere else: from the error's [`Retry`], the route's
/// `proxy-next-upstream` (or ingress-nginx's default, `error timeout`),
/// the request (method, body) and what was spent (tries, time). A resend
/// also needs the backend's retry budget (checked by the caller).
#[derive(Debug)]
struct Retrying<'p> {
    policy: Option<&'p Retries>,
    /// Attempts allowed in all, the first included; at most one per endpoint.
    limit: usize,
    /// Attempts on other endpoints so far.
    retried: usize,
    /// A stale pooled connection was already replaced once.
    resent: bool,
    has_body: bool,
    idempotent: bool,
    deadline: Option<Instant>,
}

impl<'p> Retrying<'p> {
    fn new(plan: &Plan<'p>, connect: &ConnectPolicy, endpoints: usize, started: Instant) -> Self {
        let policy = plan.policy.and_then(Policy::retries);
        let limit = match policy {
            // Affinity without change-on-failure: the named endpoint or nothing.
            _ if plan.pinned => 1,
            None => connect.attempts,
            Some(p) if p.tries == 0 => endpoints,
            Some(p) => p.tries as usize,
        };
        Retrying {
            policy,
            limit: limit.clamp(1, endpoints.max(1)),
            retried: 0,
            resent: false,
            has_body: plan.body != BodyLen::None,
            idempotent: plan.idempotent,
            deadline: policy.and_then(|p| p.timeout).map(|t| started + t),
        }
    }

    /// rauta's default, for a request without body (the error-page request).
    fn plain(connect: &ConnectPolicy, endpoints: usize) -> Self {
        Retrying {
            policy: None,
            limit: connect.attempts.clamp(1, endpoints.max(1)),
            retried: 0,
            resent: false,
            has_body: false,
            idempotent: true,
            deadline: None,
        }
    }

    /// Whether the route retries responses with `status` at all (a cheap
    /// check made on every response head).
    #[inline]
    fn retries_status(&self, status: u16) -> bool {
        self.policy.is_some_and(|p| p.retries_status(status))
    }

    /// What follows an attempt that failed as `retry`. `reused`: it ran on
    /// a pooled connection; `answered`: bytes already went to the client
    /// (an interim response), so nothing may be tried again.
    fn decide(&self, retry: Retry, reused: bool, answered: bool) -> Next {
        if answered {
            return Next::Answer;
        }
        let stale = reused && !self.resent && !self.has_body;
        let retry = match retry {
            Retry::IfReused if stale => return Next::Fresh,
            // On a new connection (or with a body) a close is a failure.
            Retry::IfReused => Retry::Sent(Why::Error),
            r => r,
        };
        let another =
            self.retried + 1 < self.limit && self.deadline.is_none_or(|d| Instant::now() < d);
        let allowed = match (retry, self.policy) {
            (Retry::NotSent(_), None) => true,
            // ingress-nginx's default, `error timeout`: an idempotent
            // request that can be sent again whole.
            (Retry::Sent(Why::Error | Why::Timeout), None) => !self.has_body && self.idempotent,
            (Retry::NotSent(why), Some(p)) => p.covers(why),
            // The upstream may have acted on it: only a request that can be
            // sent again whole (rauta streams bodies, so one without), and
            // POST/PATCH/LOCK only with non_idempotent.
            (Retry::Sent(why), Some(p)) => {
                p.covers(why) && !self.has_body && (self.idempotent || p.non_idempotent)
            }
            _ => false,
        };
        if another && allowed {
            Next::OtherEndpoint
        } else {
            Next::Answer
        }
    }

    /// Records the decision taken.
    fn take(&mut self, next: Next) {
        match next {
            Next::OtherEndpoint => self.retried += 1,
            Next::Fresh => self.resent = true,
            Next::Answer => {}
        }
    }
}

/// One attempt on one upstream connection: 100 Continue when asked, the
/// request sent, the response head read.
#[allow(clippy::too_many_arguments)]
async fn exchange_on(
    shard: &Shard,
    conn: &mut ClientConn,
    up: &mut Upstream<'_>,
    plan: &Plan<'_>,
    endpoint: usize,
    sending: &Sending,
    tally: &mut Tally,
    client_head: ClientHead,
    check: &dyn Fn(u16, bool) -> Head,
) -> Result<ResponseInfo, Failure> {
    // Sent once at most: a request with a body is never sent twice, and
    // connect failures happen before this.
    if sending.expect_continue
        && conn
            .stream
            .write_all(b"HTTP/1.1 100 Continue\r\n\r\n")
            .await
            .is_err()
    {
        return Err(Failure::ClientGone);
    }
    // A route with mirrors copies the body as it goes (not for the
    // error-page request, which has none), and its copies leave after it.
    let sent = match tally.mirror.take() {
        None => send_request(conn, up, sending.body, plan.body_limit, None).await,
        Some(mut pending) => {
            let tee = (!sending.diverted).then_some(&mut pending.tee);
            let sent = send_request(conn, up, sending.body, plan.body_limit, tee).await;
            (*pending).release();
            sent
        }
    };
    tally.bytes_in += sent?;
    // The body was sent whole: after an upstream failure the client
    // connection is in step and can carry its next request.
    read_response_head(shard, conn, up, plan, endpoint, tally, client_head, check)
        .await
        .map_err(|f| match f {
            Failure::Proxy { error, .. } => {
                let keep = plan.keep_alive && error.fault() == Fault::Upstream;
                Failure::Proxy { error, keep }
            }
            f => f,
        })
}

/// How one attempt failed.
enum Failure {
    /// Answer the client with this error (unless it is retried). `keep`:
    /// the request was read whole, so the client connection can go on.
    Proxy { error: ProxyError, keep: bool },
    /// The client went away; nothing to answer.
    ClientGone,
    /// The answer has this status, which the route's error pages replace.
    ErrorPage(u16),
}

impl Failure {
    fn upstream(error: ProxyError) -> Failure {
        Failure::Proxy { error, keep: false }
    }
}

/// Sends the head in `conn.out` and streams the body; returns body bytes.
async fn send_request(
    conn: &mut ClientConn,
    up: &mut Upstream<'_>,
    body_len: BodyLen,
    limit: Option<u64>,
    tee: Option<&mut super::mirror::Copying>,
) -> Result<u64, Failure> {
    if let Err(e) = up.stream.write_all(&conn.out).await {
        return Err(Failure::upstream(if is_reset(&e) {
            ProxyError::UpstreamClosed(e)
        } else {
            ProxyError::UpstreamIo(e)
        }));
    }
    if let (UpStream::H2(call), Some(bridge)) = (&mut up.stream, conn.stream.bridge()) {
        if body_len != BodyLen::None {
            return stream_h2_body(call, bridge, &mut conn.rbuf, limit).await;
        }
    }
    // A request body is never close-delimited (the parser never says so).
    let result = match tee {
        None => {
            let dst = &mut up.stream;
            body::relay(
                &mut conn.stream,
                &mut conn.rbuf,
                dst,
                body_len,
                false,
                limit,
            )
            .await
        }
        Some(copy) => {
            let mut dst = super::mirror::Tee {
                inner: &mut up.stream,
                copy: &mut *copy,
            };
            let result = body::relay(
                &mut conn.stream,
                &mut conn.rbuf,
                &mut dst,
                body_len,
                false,
                limit,
            )
            .await;
            copy.whole = result.is_ok();
            result
        }
    };
    if result.is_ok() {
        up.stream.expect_read_wait();
    }
    result.map_err(|e| match e {
        BodyError::Write(e) => Failure::upstream(ProxyError::UpstreamIo(e)),
        BodyError::Eof => Failure::ClientGone,
        BodyError::Read(e) if e.kind() == io::ErrorKind::TimedOut => {
            Failure::upstream(ProxyError::ClientTimeout)
        }
        BodyError::Read(_) => Failure::ClientGone,
        e @ (BodyError::Framing(_) | BodyError::TooLarge) => {
            Failure::upstream(ProxyError::ClientBody(e))
        }
    })
}

/// An HTTP/2 client's request body into an HTTP/2 call: what is already
/// read goes first, then the call streams the rest itself, so the response
/// head is read (and the answer streamed) while the body still flows, as a
/// bidirectional gRPC call needs. Returns the body bytes written here.
async fn stream_h2_body(
    call: &mut H2Call,
    bridge: &mut Bridge,
    rbuf: &mut IoBuf,
    limit: Option<u64>,
) -> Result<u64, Failure> {
    let sent_error = |e| Failure::upstream(ProxyError::UpstreamIo(e));
    call.open().await.map_err(sent_error)?;
    let mut sent = rbuf.len() as u64;
    call.write_all(rbuf.data()).await.map_err(sent_error)?;
    rbuf.clear();
    if let Some((staged, body)) = bridge.take_body() {
        sent += staged.len() as u64;
        call.write_all(&staged).await.map_err(sent_error)?;
        call.stream_body_from(body, limit.map(|l| l.saturating_sub(sent)));
    }
    Ok(sent)
}

fn is_reset(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionReset | io::ErrorKind::BrokenPipe | io::ErrorKind::UnexpectedEof
    )
}

/// A final response head, already rewritten for the client in `conn.out`.
#[derive(Debug)]
pub(super) struct ResponseInfo {
    /// Its status.
    pub(super) status: u16,
    /// How its body is framed on the upstream side.
    pub(super) body: BodyLen,
    /// The upstream connection may carry another request after it.
    pub(super) reusable: bool,
    /// A 101 to an upgrade request: the connection becomes a tunnel.
    pub(super) upgraded: bool,
    /// A chunked body goes to an HTTP/1.0 client decoded.
    pub(super) dechunk: bool,
    /// What the client connection does after it.
    pub(super) client: ClientConnection,
}

/// The response phase, which writes the client's head for a final
/// response head from the endpoint that answered (see
/// `answer::response_head`); passed in, so this step does not reach
/// forward into the next one.
pub(super) type ClientHead =
    fn(&Shard, &Plan<'_>, usize, &ResponseHead, &mut Vec<u8>) -> ResponseInfo;

/// Reads until a final (non-1xx) response head is buffered, relaying
/// interim responses other than the 100 the proxy already sent; writes the
/// client's head into `conn.out` and consumes the upstream head.
#[allow(clippy::too_many_arguments)]
async fn read_response_head(
    shard: &Shard,
    conn: &mut ClientConn,
    up: &mut Upstream<'_>,
    plan: &Plan<'_>,
    endpoint: usize,
    tally: &mut Tally,
    client_head: ClientHead,
    check: &dyn Fn(u16, bool) -> Head,
) -> Result<ResponseInfo, Failure> {
    conn.ubuf.clear();
    let mut got_any = false;
    loop {
        let interim = {
            let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
            match response::parse(conn.ubuf.data(), &mut headers, plan.head_request) {
                Ok(Some(resp)) if (100..200).contains(&resp.status) && resp.status != 101 => {
                    Some((resp.len, resp.status))
                }
                Ok(Some(resp)) if resp.status == 101 && !plan.upgrade => {
                    // The client asked for no switch; relaying one would
                    // leave it speaking HTTP to a peer that no longer does.
                    return Err(Failure::upstream(ProxyError::UpstreamProtocol(
                        "101 Switching Protocols without an upgrade request",
                    )));
                }
                Ok(Some(resp)) => {
                    // Decided before the client's head replaces the
                    // upstream request in `conn.out`: a retry sends it again.
                    match check(resp.status, tally.bytes_out > 0) {
                        Head::Relay => {}
                        Head::Retry => {
                            let error = ProxyError::UpstreamStatus(resp.status);
                            return Err(Failure::upstream(error));
                        }
                        Head::ErrorPage => return Err(Failure::ErrorPage(resp.status)),
                    }
                    let info = client_head(shard, plan, endpoint, &resp, &mut conn.out);
                    let len = resp.len;
                    conn.ubuf.consume(len);
                    return Ok(info);
                }
                Ok(None) => None,
                Err(e) => {
                    return Err(Failure::upstream(ProxyError::UpstreamProtocol(match e {
                        response::ResponseError::Malformed(m) => m,
                        response::ResponseError::TooLarge => "response head too large",
                    })))
                }
            }
        };
        if let Some((len, status)) = interim {
            let relay = !(plan.http10 || (status == 100 && plan.expect_continue));
            if relay
                && conn
                    .stream
                    .write_all(&conn.ubuf.data()[..len])
                    .await
                    .is_err()
            {
                return Err(Failure::ClientGone);
            }
            if relay {
                tally.bytes_out += len as u64;
            }
            conn.ubuf.consume(len);
            continue;
        }
        if conn.ubuf.is_full() {
            return Err(Failure::upstream(ProxyError::UpstreamProtocol(
                "response head too large",
            )));
        }
        match conn.ubuf.fill(&mut up.stream).await {
            Ok(0) if !got_any => {
                let closed = io::ErrorKind::UnexpectedEof.into();
                return Err(Failure::upstream(ProxyError::UpstreamClosed(closed)));
            }
            Ok(0) => {
                return Err(Failure::upstream(ProxyError::UpstreamProtocol(
                    "closed inside the response head",
                )))
            }
            Ok(_) => got_any = true,
            Err(e) if e.kind() == io::ErrorKind::TimedOut => {
                return Err(Failure::upstream(ProxyError::UpstreamTimeout))
            }
            Err(e) if !got_any && is_reset(&e) => {
                return Err(Failure::upstream(ProxyError::UpstreamClosed(e)))
            }
            Err(e) => return Err(Failure::upstream(ProxyError::UpstreamIo(e))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rauta_shared::policy::RetryPolicy;
    use std::time::Duration;

    fn retries(tokens: &[u16], non_idempotent: bool) -> Retries {
        Retries::compile(&RetryPolicy {
            on_error: true,
            on_timeout: true,
            on_invalid_header: false,
            on_status: tokens.to_vec(),
            non_idempotent,
            tries: 3,
            timeout_ms: 0,
        })
    }

    fn retrying(policy: Option<&Retries>) -> Retrying<'_> {
        Retrying {
            policy,
            limit: 3,
            retried: 0,
            resent: false,
            has_body: false,
            idempotent: true,
            deadline: None,
        }
    }

    #[test]
    fn the_request_limit_bounds_every_attempt_and_ends_the_retries() {
        let ms = Duration::from_millis;
        let limits = |request: Option<u64>, attempt: Option<u64>, ago: u64| {
            let d = Deadlines {
                request: request.map(ms),
                attempt: attempt.map(ms),
            };
            Limits::new(d, Instant::now() - ms(ago)).next_attempt()
        };
        let within = |time: Duration, whole_request| Limit::Within {
            time,
            whole_request,
        };
        assert_eq!(limits(None, Some(200), 0), within(ms(200), false));
        assert_eq!(limits(Some(5_000), Some(200), 0), within(ms(200), false));
        // Less left of the request than an attempt may take: the request's
        // limit ends the attempt, and with it the request.
        let Limit::Within {
            time,
            whole_request: true,
        } = limits(Some(500), Some(400), 300)
        else {
            panic!("the request's limit is the nearer");
        };
        assert!(time <= ms(200), "{time:?}");
        assert!(matches!(
            limits(Some(500), None, 0),
            Limit::Within {
                whole_request: true,
                ..
            }
        ));
        assert_eq!(limits(Some(500), Some(100), 600), Limit::Spent);
    }

    #[test]
    fn the_decision_follows_the_error_the_policy_and_the_request() {
        let sent502 = Retry::Sent(Why::Status(502));
        // rauta's default: failed connects only, and a stale pooled connection once.
        let plain = retrying(None);
        assert_eq!(
            plain.decide(Retry::NotSent(Why::Error), false, false),
            Next::OtherEndpoint
        );
        assert_eq!(
            plain.decide(Retry::Sent(Why::Timeout), false, false),
            Next::OtherEndpoint,
            "ingress-nginx's default: error timeout, for a GET"
        );
        let plain_post = Retrying {
            idempotent: false,
            ..retrying(None)
        };
        assert_eq!(
            plain_post.decide(Retry::Sent(Why::Error), false, false),
            Next::Answer,
            "never a POST by default"
        );
        assert_eq!(
            plain.decide(Retry::Sent(Why::Status(502)), false, false),
            Next::Answer,
            "statuses only with proxy-next-upstream"
        );
        assert_eq!(plain.decide(Retry::IfReused, true, false), Next::Fresh);
        assert_eq!(
            plain.decide(Retry::IfReused, false, false),
            Next::OtherEndpoint,
            "a new connection closed before answering: an error, retried for a GET"
        );

        let p = retries(&[502], false);
        let r = retrying(Some(&p));
        assert_eq!(r.decide(sent502, false, false), Next::OtherEndpoint);
        assert_eq!(
            r.decide(Retry::Sent(Why::Status(503)), false, false),
            Next::Answer
        );
        assert_eq!(
            r.decide(Retry::Sent(Why::InvalidHeader), false, false),
            Next::Answer
        );
        assert_eq!(
            r.decide(sent502, false, true),
            Next::Answer,
            "bytes reached the client"
        );
        let post = Retrying {
            idempotent: false,
            ..retrying(Some(&p))
        };
        assert_eq!(post.decide(sent502, false, false), Next::Answer);
        assert_eq!(
            post.decide(Retry::NotSent(Why::Error), false, false),
            Next::OtherEndpoint
        );
        let body = Retrying {
            has_body: true,
            ..retrying(Some(&p))
        };
        assert_eq!(
            body.decide(sent502, false, false),
            Next::Answer,
            "a streamed body cannot be resent"
        );
        let spent = Retrying {
            retried: 2,
            ..retrying(Some(&p))
        };
        assert_eq!(
            spent.decide(sent502, false, false),
            Next::Answer,
            "tries spent"
        );
        let late = Retrying {
            deadline: Some(Instant::now() - Duration::from_millis(1)),
            ..retrying(Some(&p))
        };
        assert_eq!(
            late.decide(sent502, false, false),
            Next::Answer,
            "next-upstream-timeout passed"
        );
        let any = retries(&[502], true);
        let post = Retrying {
            idempotent: false,
            ..retrying(Some(&any))
        };
        assert_eq!(
            post.decide(sent502, false, false),
            Next::OtherEndpoint,
            "non_idempotent"
        );
    }
}
