//! One exchange: a request and its answer, a file per step, in the order
//! a request takes them. Later steps use earlier ones, never the reverse;
//! `record` and `tunnel` are leaves every step may use.
//!
//! - [`plan`]: parse -> route -> request policies -> pick -> upstream head
//! - [`forward`]: pool or connect -> send -> response head (the one retry place)
//! - [`answer`]: response policies -> stream back, or a [`tunnel`] -> pool
//! - [`record`]: tally -> route stats -> access log; the error answer

mod answer;
mod forward;
mod plan;
mod record;
mod tunnel;

use crate::downstream::{ClientConn, Outcome};
use crate::shard::Shard;
use std::time::Instant;

/// Serves one request whose head is complete in `conn.rbuf`.
pub async fn exchange(shard: &Shard, conn: &mut ClientConn) -> Outcome {
    let started = Instant::now();
    conn.log.clear();
    let Some(table) = shard.table() else {
        return record::not_ready(shard, conn).await;
    };
    let plan = match plan::plan(shard, conn, &table) {
        Ok(plan) => plan,
        Err(refused) => return record::refused(shard, conn, &table, refused, started).await,
    };
    let stats = record::begin(shard, &table, plan.route);
    let mut tally = record::Tally::new(plan.head_len);
    let forwarded = forward::forward(
        shard,
        conn,
        &table,
        &plan,
        &mut tally,
        answer::response_head,
    )
    .await;
    let outcome = match forwarded {
        Ok(forwarded) => answer::answer(shard, conn, forwarded, &mut tally).await,
        Err(answered) => answered,
    };
    record::end(shard, conn, stats, plan.method, &tally, started);
    outcome
}
