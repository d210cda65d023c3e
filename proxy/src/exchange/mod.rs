//! One exchange: a request and its answer, a file per step, in the order
//! a request takes them. Later steps use earlier ones, never the reverse;
//! `record` and `tunnel` are leaves every step may use.
//!
//! - [`plan`]: parse -> route -> request policies -> pick -> upstream head
//! - [`auth`]: the auth subrequest, for a route with `auth-url`
//! - [`forward`]: pool or connect -> send -> response head (the one retry place)
//! - [`answer`]: response policies -> stream back, or a [`tunnel`] -> pool
//! - [`record`]: tally -> route stats -> access log; the error answer
//! - [`mirror`]: copies of the request for the route's mirrors, sent
//!   from tasks of their own (a leaf, like `record`)
//! - [`side_call`]: what the auth subrequest and the mirrored copies share
//!   (a leaf)

mod answer;
mod auth;
mod forward;
mod mirror;
mod plan;
mod record;
mod side_call;
mod tunnel;

use crate::downstream::{ClientConn, Outcome};
use crate::shard::{LocalTable, Shard};
use std::rc::Rc;
use std::time::Instant;

/// Serves one request whose head is complete in `conn.rbuf`.
pub async fn exchange(shard: &Rc<Shard>, conn: &mut ClientConn) -> Outcome {
    let started = Instant::now();
    conn.log.clear();
    let Some(table) = shard.table() else {
        return record::not_ready(shard, conn).await;
    };
    let mut tally = record::Tally::new(0);
    let outcome = serve(shard, conn, &table, &mut tally, started).await;
    // The one place every way an exchange ends (forwarded, answered by a
    // policy or by rauta's own error, refused by auth) records its span.
    record::span(shard, &table, &mut tally);
    outcome
}

async fn serve(
    shard: &Rc<Shard>,
    conn: &mut ClientConn,
    table: &Rc<LocalTable>,
    tally: &mut record::Tally,
    started: Instant,
) -> Outcome {
    let mut plan = match plan::plan(shard, conn, table, &mut tally.trace) {
        Ok(plan) => plan,
        Err(refused) => return record::refused(shard, conn, table, refused, tally, started).await,
    };
    tally.bytes_in = plan.head_len;
    tally.route = Some(plan.route);
    if plan.auth.is_some() {
        if let Err(error) = auth::authorize(shard, conn, table, &mut plan).await {
            // Nothing of a body was read: the connection goes on without one.
            let refused = plan::Refused {
                error,
                keep: plan.keep_alive && plan.body == crate::http::BodyLen::None,
                route: Some(plan.route),
                method: plan.method,
                head_len: plan.head_len,
            };
            return record::refused(shard, conn, table, refused, tally, started).await;
        }
    }
    let stats = record::begin(shard, table, plan.route);
    if !plan.mirrors.is_empty() {
        let copies = std::mem::take(&mut plan.mirrors);
        tally.mirror = mirror::start(shard, table, plan.route, copies, plan.body);
    }
    let forwarded = forward::forward(
        shard,
        conn,
        table,
        &plan,
        tally,
        answer::response_head,
        started,
    )
    .await;
    let outcome = match forwarded {
        Ok(forwarded) => answer::answer(shard, conn, forwarded, tally).await,
        Err(answered) => answered,
    };
    record::end(shard, conn, stats, plan.method, tally, started);
    outcome
}
