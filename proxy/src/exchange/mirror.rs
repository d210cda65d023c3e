//! Mirrored copies of a request (`mirror-target`, HTTPRoute
//! `RequestMirror`): each goes to its mirror from a task of its own on
//! this shard, and its answer is read and dropped. Nothing here can delay,
//! change or fail the client's exchange: a copy that cannot be sent is
//! counted and forgotten.
//!
//! Bounds: at most `--mirror-max-in-flight` copies per shard (past it a
//! copy is dropped), and a body is copied only up to
//! `--mirror-max-body-bytes`: it is kept as it is forwarded to the primary
//! ([`Tee`]), and the copies with a body leave once the primary has it
//! whole. A larger body (or one not sent whole) skips those copies.
//!
//! A leaf of the exchange: it uses the upstream pool and the policies,
//! never another step.

use super::side_call;
use crate::http::body;
use crate::http::buf::IoBuf;
use crate::http::response;
use crate::http::{BodyLen, MAX_HEADERS};
use crate::metrics::route::RouteStats;
use crate::metrics::MirrorResult;
use crate::router::path::RouteId;
use crate::rt;
use crate::shard::{LocalTable, Shard};
use crate::upstream::{self, UpStream};
use futures_lite::{AsyncWrite, AsyncWriteExt};
use std::io;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

/// One copy of a request, its head written in the request phase.
#[derive(Debug)]
pub(super) struct Copy {
    /// The rule whose policy holds the mirror.
    pub(super) rule: RouteId,
    /// Which of its mirrors.
    pub(super) index: usize,
    /// The whole head of the copy.
    pub(super) head: Vec<u8>,
    /// The body follows the head (the request has one and the mirror copies it).
    pub(super) body: bool,
}

/// The copies that wait for the request body, and the body kept so far.
#[derive(Debug)]
pub(super) struct Pending {
    shard: Rc<Shard>,
    table: Rc<LocalTable>,
    stats: Rc<RouteStats>,
    copies: Vec<Copy>,
    /// The body as forwarded to the primary.
    pub(super) tee: Copying,
}

/// A body copied as it is forwarded, up to a bound.
#[derive(Debug, Default)]
pub(super) struct Copying {
    data: Vec<u8>,
    max: usize,
    /// More than `max` bytes went by: the copy is abandoned.
    over: bool,
    /// The body reached the primary whole through the [`Tee`].
    pub(super) whole: bool,
}

/// Starts the copies of a request: those without a body leave now, the
/// others wait in the returned [`Pending`] for the body to be forwarded.
pub(super) fn start(
    shard: &Rc<Shard>,
    table: &Rc<LocalTable>,
    route: RouteId,
    copies: Vec<Copy>,
    body: BodyLen,
) -> Option<Box<Pending>> {
    let stats = table.stats[route as usize].clone();
    let max = shard.cfg.mirror_max_body_bytes;
    let mut waiting = Vec::new();
    for copy in copies {
        if !copy.body {
            send(shard, table, &stats, copy, None);
        } else if matches!(body, BodyLen::Length(n) if n > max as u64) {
            count(shard, &stats, MirrorResult::Skipped);
        } else {
            waiting.push(copy);
        }
    }
    if waiting.is_empty() {
        return None;
    }
    let capacity = match body {
        BodyLen::Length(n) => n as usize,
        _ => 0,
    };
    Some(Box::new(Pending {
        shard: shard.clone(),
        table: table.clone(),
        stats,
        copies: waiting,
        tee: Copying {
            data: Vec::with_capacity(capacity),
            max,
            over: false,
            whole: false,
        },
    }))
}

impl Pending {
    /// The primary has the body (when [`Copying::whole`]): the copies leave
    /// with it; otherwise they are skipped.
    pub(super) fn release(mut self) {
        let copies = std::mem::take(&mut self.copies);
        if !self.tee.whole || self.tee.over {
            for _ in copies {
                count(&self.shard, &self.stats, MirrorResult::Skipped);
            }
            return;
        }
        let body: Rc<[u8]> = std::mem::take(&mut self.tee.data).into();
        for copy in copies {
            send(
                &self.shard,
                &self.table,
                &self.stats,
                copy,
                Some(body.clone()),
            );
        }
    }
}

impl Drop for Pending {
    /// Copies never released (the body was not forwarded) are skipped.
    fn drop(&mut self) {
        for _ in std::mem::take(&mut self.copies) {
            count(&self.shard, &self.stats, MirrorResult::Skipped);
        }
    }
}

fn count(shard: &Shard, stats: &Rc<RouteStats>, result: MirrorResult) {
    stats.mirrored(result);
    shard.metrics.touch(stats);
}

/// Spawns the task that sends `copy`, unless the shard has as many in
/// flight as it may.
fn send(
    shard: &Rc<Shard>,
    table: &Rc<LocalTable>,
    stats: &Rc<RouteStats>,
    copy: Copy,
    body: Option<Rc<[u8]>>,
) {
    if shard.mirrors.get() >= shard.cfg.mirror_max_in_flight {
        count(shard, stats, MirrorResult::Dropped);
        return;
    }
    let slot = Slot::take(shard);
    let (table, stats) = (table.clone(), stats.clone());
    rt::spawn_local(async move {
        let shard = &slot.0;
        let result = match exchange(shard, &table, &copy, body.as_deref()).await {
            Ok(()) => MirrorResult::Sent,
            Err(e) => {
                tracing::debug!(error = %e, "mirrored request failed");
                MirrorResult::Failed
            }
        };
        count(shard, &stats, result);
    })
    .detach();
}

/// One of the shard's `--mirror-max-in-flight` places, given back when
/// the copy's task ends (or its future is dropped).
struct Slot(Rc<Shard>);

impl Slot {
    fn take(shard: &Rc<Shard>) -> Slot {
        shard.mirrors.set(shard.mirrors.get() + 1);
        Slot(shard.clone())
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.mirrors.set(self.0.mirrors.get().saturating_sub(1));
    }
}

/// Sends one copy and reads its answer to the end (a pooled connection
/// found stale is replaced once), within the route's connect timeout plus
/// its read timeout in all: a mirror that trickles its answer does not
/// keep its place for longer.
async fn exchange(
    shard: &Shard,
    table: &LocalTable,
    copy: &Copy,
    body: Option<&[u8]>,
) -> io::Result<()> {
    let policy = table.routes.route(copy.rule).policy.as_deref();
    let mirror = policy
        .and_then(|p| p.mirrors())
        .and_then(|m| m.get(copy.index));
    let (Some(policy), Some(mirror)) = (policy, mirror) else {
        return Err(io::Error::other("the mirror left the table"));
    };
    let (backend, endpoint) = side_call::endpoint(shard, table, &mirror.target);
    let endpoint = endpoint.ok_or_else(|| io::Error::other("the mirror has no endpoint"))?;
    let connect = policy.connect_policy(&shard.cfg.connect);
    let head_request = copy.head.starts_with(b"HEAD ");
    let limit = connect.timeout.saturating_add(connect.read_timeout);
    let mut buf = IoBuf::new(4096, shard.cfg.max_header_bytes.max(4096));
    let mut fresh = false;
    let copied = async {
        loop {
            let acquired = upstream::acquire(
                &shard.pool,
                backend,
                endpoint,
                &connect,
                body.is_some(),
                fresh,
            )
            .await;
            let mut up = acquired.map_err(|e| io::Error::other(e.to_string()))?;
            buf.clear();
            let answer = async {
                up.stream.write_all(&copy.head).await?;
                if let Some(body) = body {
                    up.stream.write_all(body).await?;
                }
                up.stream.expect_read_wait();
                read_answer(&mut up.stream, &mut buf, head_request).await
            }
            .await;
            match answer {
                Ok(reusable) => {
                    if reusable && buf.is_empty() {
                        shard.pool.put(up);
                    }
                    return Ok(());
                }
                Err(e) if up.reused && !fresh && buf.is_empty() && side_call::is_stale(&e) => {
                    fresh = true
                }
                Err(e) => return Err(e),
            }
        }
    };
    rt::timeout(limit, copied)
        .await
        .unwrap_or_else(|| Err(io::ErrorKind::TimedOut.into()))
}

/// Reads a final response head and its body, dropping both; true when the
/// connection may carry another request.
async fn read_answer(up: &mut UpStream, buf: &mut IoBuf, head_request: bool) -> io::Result<bool> {
    side_call::final_head(up, buf, head_request, "mirror").await?;
    let (len, body_len, reusable) = {
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        match response::parse(buf.data(), &mut headers, head_request) {
            Ok(Some(resp)) => (resp.len, resp.body, resp.reusable),
            _ => return Err(io::Error::other("the mirror answer is not valid HTTP")),
        }
    };
    buf.consume(len);
    let mut sink = futures_lite::io::sink();
    body::relay(up, buf, &mut sink, body_len, true, None)
        .await
        .map_err(|e| io::Error::other(format!("{e:?}")))?;
    Ok(reusable && body_len != BodyLen::Close)
}

/// A writer that keeps a copy of what it writes (up to the bound) while
/// forwarding the body to the primary.
pub(super) struct Tee<'a, W> {
    pub(super) inner: &'a mut W,
    pub(super) copy: &'a mut Copying,
}

impl<W: AsyncWrite + Unpin> AsyncWrite for Tee<'_, W> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let written = Pin::new(&mut *this.inner).poll_write(cx, data);
        if let Poll::Ready(Ok(n)) = written {
            let copy = &mut *this.copy;
            if !copy.over {
                if copy.data.len() + n > copy.max {
                    copy.over = true;
                    copy.data = Vec::new();
                } else {
                    copy.data.extend_from_slice(&data[..n]);
                }
            }
        }
        written
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.get_mut().inner).poll_flush(cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.get_mut().inner).poll_close(cx)
    }
}
