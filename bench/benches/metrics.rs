//! Criterion micro-benchmark of per-request metrics recording on a shard
//! (issue 3's budget: tens of nanoseconds per request), and of the snapshot
//! a scrape takes from a shard.
//!
//! Run with `cargo bench -p rauta-bench --bench metrics`.

#![forbid(unsafe_code)]

use std::hint::black_box;
use std::rc::Rc;

use criterion::{criterion_group, criterion_main, Criterion};
use rauta_proxy::metrics::route::RouteStats;
use rauta_proxy::metrics::shard::ShardMetrics;

fn record(c: &mut Criterion) {
    let shard = ShardMetrics::default();
    let stats = Rc::new(RouteStats::new("ns/ing|host|/|Prefix|ns/svc:80".into()));
    let mut us = 100u64;
    c.bench_function("metrics/record_request", |b| {
        b.iter(|| {
            // What forward.rs does per request: begin, touch, end (+ touch).
            stats.begin();
            shard.touch(&stats);
            us = us
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407)
                % 50_000
                + 50;
            stats.end(
                black_box(0), // protocol: HTTP/1.1
                black_box(0),
                black_box(200),
                black_box(120),
                black_box(900),
                us,
                Some(us / 2),
            );
            shard.touch(&stats);
        })
    });
}

fn snapshot(c: &mut Criterion) {
    let shard = ShardMetrics::default();
    let routes: Vec<Rc<RouteStats>> = (0..1000)
        .map(|i| {
            Rc::new(RouteStats::new(
                format!("ns/ing|h{i}|/|Prefix|ns/svc:80").into(),
            ))
        })
        .collect();
    c.bench_function("metrics/snapshot_1000_touched_routes", |b| {
        b.iter(|| {
            for r in &routes {
                r.begin();
                shard.touch(r);
                r.end(0, 0, 200, 100, 100, 250, Some(200));
            }
            black_box(shard.take_route_deltas())
        })
    });
}

criterion_group!(benches, record, snapshot);
criterion_main!(benches);
