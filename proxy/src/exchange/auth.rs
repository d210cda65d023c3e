//! The auth step of an exchange (`auth-url`), between [`super::plan`]
//! and [`super::forward`]: the subrequest goes to the auth service over a
//! pooled HTTP/1.1 connection on this shard's runtime, and its answer
//! either lets the request through (the copied headers added to the
//! upstream head) or answers it. It fails closed: a connect failure, an
//! answer that does not come within the route's timeouts, or one that is
//! not HTTP, is a 500 for this route only.

use super::plan::Plan;
use super::side_call;
use crate::downstream::ClientConn;
use crate::error::ProxyError;
use crate::http::response;
use crate::http::{BodyLen, MAX_HEADERS};
use crate::policy::auth::Call;
use crate::policy::PolicyAnswer;
use crate::shard::{LocalTable, Shard};
use crate::upstream::{self, Upstream};
use futures_lite::AsyncWriteExt;
use std::io;

/// Asks the route's auth service about the planned request; `Ok` lets it
/// through, an error is the answer the client gets.
pub(super) async fn authorize(
    shard: &Shard,
    conn: &mut ClientConn,
    table: &LocalTable,
    plan: &mut Plan<'_>,
) -> Result<(), ProxyError> {
    let peer = conn.peer;
    let failed = |what: &dyn std::fmt::Display| {
        tracing::debug!(%peer, error = %what, "auth service failed; answering 500");
        ProxyError::Policy(PolicyAnswer::AuthFailed)
    };
    let (Some(policy), Some(mut call)) = (plan.policy, plan.auth.take()) else {
        return Ok(());
    };
    let Some(auth) = policy.auth() else {
        return Ok(());
    };
    let connect = policy.connect_policy(&shard.cfg.connect);
    let (backend, endpoint) = side_call::endpoint(shard, table, auth.target());
    let Some(endpoint) = endpoint else {
        return Err(failed(&"the auth Service has no endpoint"));
    };
    // A pooled connection may have gone stale: asked again once on a new one.
    let mut fresh = false;
    let up = loop {
        let mut up = upstream::acquire(&shard.pool, backend, endpoint, &connect, false, fresh)
            .await
            .map_err(|e| failed(&e))?;
        match ask(conn, &mut up, &call).await {
            Ok(()) => break up,
            Err(e) if up.reused && !fresh && side_call::is_stale(&e) => fresh = true,
            Err(e) => return Err(failed(&e)),
        }
    };
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let (decision, len, body, reusable) =
        match response::parse(conn.ubuf.data(), &mut headers, call.head_request) {
            Ok(Some(resp)) => (
                auth.decide(&resp, &mut call, &mut conn.out, &mut plan.state),
                resp.len,
                resp.body,
                resp.reusable,
            ),
            _ => return Err(failed(&"unreadable answer")),
        };
    conn.ubuf.consume(len);
    // The body of the answer is not used; a connection whose body is
    // already buffered whole goes back to the pool, any other is closed.
    let clean = match body {
        BodyLen::None => true,
        BodyLen::Length(n) if conn.ubuf.len() as u64 >= n => {
            conn.ubuf.consume(n as usize);
            true
        }
        _ => false,
    };
    if clean && reusable && conn.ubuf.is_empty() {
        shard.pool.put(up);
    }
    conn.ubuf.clear();
    decision.map_err(ProxyError::Policy)
}

/// Sends the subrequest and reads until a final response head is in
/// `conn.ubuf` (interim 1xx answers are skipped).
async fn ask(conn: &mut ClientConn, up: &mut Upstream<'_>, call: &Call) -> io::Result<()> {
    conn.ubuf.clear();
    up.stream.write_all(&call.head).await?;
    up.stream.expect_read_wait();
    side_call::final_head(&mut up.stream, &mut conn.ubuf, call.head_request, "auth").await
}
