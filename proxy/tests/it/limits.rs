//! Per-client limits (`limit-rps`, `limit-rpm`, `limit-burst-multiplier`,
//! `limit-connections`, `limit-whitelist`, `rauta.io/limit-status-code`)
//! through the real proxy: a fresh client gets 1 + burst at once and then
//! 503, one budget per Ingress shared by its rules and by every shard.
//! Rates are per minute so that the few milliseconds a test takes refill
//! nothing.

use crate::annotated::{ing, serve, who, who_on, yaml};
use crate::common::service;
use crate::xdp_util::pin_to;
use rauta_testkit::client::{get, Conn};
use rauta_testkit::eventually;
use rauta_testkit::manifests::path;
use std::thread;

/// Statuses of `n` requests on one connection.
fn statuses(conn: &mut Conn, host: &str, p: &str, n: usize) -> Vec<String> {
    (0..n).map(|_| who_on(conn, host, p, &[])).collect()
}

fn count(v: &[String], what: &str) -> usize {
    v.iter().filter(|s| *s == what).count()
}

#[test]
fn a_burst_then_503_one_budget_per_ingress_shared_by_its_rules() {
    let app = service("web", "app");
    // 6/min with multiplier 2: a burst of 12, so 13 at once, then one per 10 s.
    let limited = ing(
        "limited",
        &[("limit-rpm", "6"), ("limit-burst-multiplier", "2")],
        "l.example",
        &[path("/a", "Prefix", "app"), path("/b", "Prefix", "app")],
    );
    let other_zone = ing(
        "other",
        &[("limit-rpm", "6"), ("limit-burst-multiplier", "2")],
        "o.example",
        &[path("/", "Prefix", "app")],
    );
    let coded = ing(
        "coded",
        &[("limit-rpm", "1"), ("rauta.io/limit-status-code", "429")],
        "c.example",
        &[path("/", "Prefix", "app")],
    );
    let (_dir, rauta) = serve(&yaml(&[&app]), &[limited, other_zone, coded], &[]);
    let mut conn = Conn::open(rauta.addr()).expect("connect");
    let mut got = statuses(&mut conn, "l.example", "/a", 10);
    got.extend(statuses(&mut conn, "l.example", "/b", 20));
    assert_eq!(count(&got, "app"), 13, "{got:?}\n{}", rauta.log());
    assert_eq!(count(&got, "503"), 17, "{got:?}");
    assert!(
        got[..13].iter().all(|s| s == "app"),
        "the burst comes first: {got:?}"
    );
    // Another Ingress is another zone: its own budget.
    let other = statuses(&mut conn, "o.example", "/", 14);
    assert_eq!(count(&other, "app"), 13, "{other:?}");
    // rpm 1, multiplier 5: 6 at once, then the configured status.
    let coded = statuses(&mut conn, "c.example", "/", 8);
    assert_eq!(count(&coded, "app"), 6, "{coded:?}");
    assert_eq!(count(&coded, "429"), 2, "{coded:?}");
}

#[test]
fn whitelisted_clients_are_never_limited() {
    let app = service("web", "app");
    let free = ing(
        "free",
        &[
            ("limit-rpm", "1"),
            ("limit-whitelist", "10.0.0.0/8, 127.0.0.0/8"),
        ],
        "w.example",
        &[path("/", "Prefix", "app")],
    );
    let (_dir, rauta) = serve(&yaml(&[&app]), &[free], &[]);
    let mut conn = Conn::open(rauta.addr()).expect("connect");
    let got = statuses(&mut conn, "w.example", "/", 40);
    assert_eq!(count(&got, "app"), 40, "{got:?}\n{}", rauta.log());
}

#[test]
fn limit_connections_counts_in_flight_requests_per_client() {
    let app = service("web", "app");
    let conns = ing(
        "conns",
        &[("limit-connections", "2")],
        "c.example",
        &[path("/", "Prefix", "app")],
    );
    let (_dir, rauta) = serve(&yaml(&[&app]), &[conns], &["--shards", "2"]);
    let addr = rauta.addr();
    // Four slow requests at once from one IP (on both shards): two are served.
    let slow: Vec<_> = (0..4)
        .map(|i| {
            thread::spawn(move || {
                pin_to(i % 2);
                who(addr, "c.example", "/slow?ms=1500", &[])
            })
        })
        .collect();
    let got: Vec<String> = slow
        .into_iter()
        .map(|t| t.join().expect("thread"))
        .collect();
    assert_eq!(count(&got, "app"), 2, "{got:?}\n{}", rauta.log());
    assert_eq!(count(&got, "503"), 2, "{got:?}");
    // The slots are given back when the requests end.
    let after: Vec<String> = (0..5).map(|_| who(addr, "c.example", "/", &[])).collect();
    assert_eq!(count(&after, "app"), 5, "{after:?}");
}

#[test]
fn one_budget_per_node_whatever_shard_the_connections_land_on() {
    let app = service("web", "app");
    let limited = ing(
        "node",
        &[("limit-rpm", "4"), ("limit-burst-multiplier", "5")],
        "n.example",
        &[path("/", "Prefix", "app")],
    );
    let (_dir, rauta) = serve(&yaml(&[&app]), &[limited], &["--shards", "2"]);
    let addr = rauta.addr();
    // 60 fresh connections, from threads pinned to each CPU in turn, so
    // both shards accept some (by reuseport hash, or by CPU with eBPF).
    let workers: Vec<_> = (0..2)
        .map(|cpu| {
            thread::spawn(move || {
                pin_to(cpu);
                (0..30)
                    .map(|_| match get(addr, "n.example", "/") {
                        Ok(r) => r.status,
                        Err(_) => 0,
                    })
                    .collect::<Vec<u16>>()
            })
        })
        .collect();
    let got: Vec<u16> = workers
        .into_iter()
        .flat_map(|t| t.join().expect("thread"))
        .collect();
    let metrics = rauta.scrape();
    let per_shard: Vec<f64> = ["0", "1"]
        .iter()
        .map(|s| metrics.value("rauta_accepted_connections_total", &[("shard", s)]))
        .collect();
    assert!(
        per_shard.iter().all(|n| *n > 0.0),
        "both shards took connections: {per_shard:?}"
    );
    // 4/min, burst 20: 21 for the node, not 21 per shard.
    assert_eq!(got.iter().filter(|s| **s == 200).count(), 21, "{got:?}");
    assert_eq!(got.iter().filter(|s| **s == 503).count(), 39, "{got:?}");
}

#[test]
fn a_limit_that_is_not_a_number_refuses_the_ingress_with_file_and_object() {
    let app = service("web", "app");
    let bad = ing(
        "bad",
        &[("limit-rps", "abc")],
        "bad.example",
        &[path("/", "Prefix", "app")],
    );
    let bad_list = ing(
        "bad-list",
        &[("limit-rps", "5"), ("limit-whitelist", "10.0.0.0/33")],
        "list.example",
        &[path("/", "Prefix", "app")],
    );
    let good = ing(
        "good",
        &[("limit-rps", "100")],
        "good.example",
        &[path("/", "Prefix", "app")],
    );
    let (dir, rauta) = serve(&yaml(&[&app]), &[good], &[]);
    // Added to a live set: whether the set is rejected whole (the last good
    // table stays) or the two Ingresses alone are left out, they are not
    // served and the good one is.
    dir.write(
        "bad.yaml",
        &rauta_testkit::manifests::join(&[&bad, &bad_list]),
    );
    eventually("the bad Ingresses are reported", || {
        rauta.log().contains("Ingress web/bad-list")
    });
    assert_eq!(
        who(rauta.addr(), "good.example", "/", &[]),
        "app",
        "{}",
        rauta.log()
    );
    assert_eq!(
        who(rauta.addr(), "bad.example", "/", &[]),
        "404",
        "the Ingress is not served"
    );
    assert_eq!(who(rauta.addr(), "list.example", "/", &[]), "404");
    let log = rauta.log();
    assert!(
        log.contains(
            "bad.yaml: Ingress web/bad: annotation nginx.ingress.kubernetes.io/limit-rps: \"abc\""
        ),
        "{log}"
    );
    assert!(
        log.contains("bad.yaml: Ingress web/bad-list") && log.contains("10.0.0.0/33"),
        "{log}"
    );
}
