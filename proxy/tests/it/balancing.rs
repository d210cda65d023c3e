//! Load balancing through the real proxy: round robin, weights, least
//! request, Maglev consistent hashing.

use crate::common::start;
use rauta_testkit::manifests::join;
use rauta_testkit::rauta_class;
use rauta_testkit::{
    backend_for, endpoint_slice, ingress, service, Backend, Conn, EndpointSpec, ManifestDir,
};
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::time::Duration;

fn ingress_for(annotations: &[(&str, &str)]) -> String {
    ingress(
        "lb",
        "pool",
        Some("rauta"),
        annotations,
        "- host: lb.example\n  http:\n    paths:\n    - path: /\n      pathType: Prefix\n      backend:\n        service:\n          name: pool\n          port:\n            name: http\n",
    )
}

/// Counts which backend answered `n` requests sent on one keep-alive
/// connection (one connection means one shard, so the sequence is exact).
fn spread(conn: &mut Conn, n: usize, headers: &[(&str, &str)]) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for _ in 0..n {
        let r = conn
            .request("GET", "lb.example", "/", headers, b"")
            .expect("response");
        assert_eq!(r.status, 200, "{}", r.text());
        *counts
            .entry(r.header("x-backend").unwrap_or("?").to_string())
            .or_default() += 1;
    }
    counts
}

#[test]
fn round_robin_alternates_over_endpoints() {
    let backends: Vec<Backend> = (0..3).map(|i| Backend::start(&format!("rr-{i}"))).collect();
    let refs: Vec<&Backend> = backends.iter().collect();
    let dir = ManifestDir::new();
    dir.write(
        "all.yaml",
        &join(&[
            &rauta_class(),
            &backend_for("lb", "pool", "http", &refs),
            &ingress_for(&[]),
        ]),
    );
    let rauta = start(&dir, &[]);
    let mut conn = Conn::open(rauta.addr()).expect("connect");
    let counts = spread(&mut conn, 30, &[]);
    for b in &backends {
        assert_eq!(counts.get(b.name()), Some(&10), "{counts:?}");
    }
}

#[test]
fn endpoint_weights_shape_the_share() {
    let (a, b) = (Backend::start("heavy"), Backend::start("light"));
    let weights = format!("127.0.0.1:{}=3,127.0.0.1:{}=1", a.port(), b.port());
    let dir = ManifestDir::new();
    dir.write(
        "all.yaml",
        &join(&[
            &rauta_class(),
            &backend_for("lb", "pool", "http", &[&a, &b]),
            &ingress_for(&[("rauta.io/endpoint-weights", &weights)]),
        ]),
    );
    let rauta = start(&dir, &[]);
    let mut conn = Conn::open(rauta.addr()).expect("connect");
    let counts = spread(&mut conn, 40, &[]);
    assert_eq!(
        (counts.get("heavy"), counts.get("light")),
        (Some(&30), Some(&10)),
        "{counts:?}"
    );
}

#[test]
fn least_request_steers_away_from_a_slow_endpoint() {
    let fast = Backend::start("fast");
    let slow = rauta_testkit::ScriptedBackend::start(Duration::from_millis(400), None);
    let (slow_port, slow_count) = (slow.port, slow.requests.clone());
    let svc = service("lb", "pool", &[(Some("http"), 80, fast.port())]);
    let slices = [
        endpoint_slice(
            "lb",
            "pool-fast",
            "pool",
            &[(Some("http"), fast.port())],
            &[EndpointSpec::ready("127.0.0.1")],
        ),
        endpoint_slice(
            "lb",
            "pool-slow",
            "pool",
            &[(Some("http"), slow_port)],
            &[EndpointSpec::ready("127.0.0.1")],
        ),
    ];
    let dir = ManifestDir::new();
    let ing = ingress_for(&[("nginx.ingress.kubernetes.io/load-balance", "least_request")]);
    dir.write(
        "all.yaml",
        &join(&[&rauta_class(), &svc, &slices[0], &slices[1], &ing]),
    );
    // One shard: in-flight counts are per shard, and the test wants them all in one place.
    let rauta = start(&dir, &["--shards", "1"]);
    let addr = rauta.addr();
    let clients: Vec<_> = (0..20)
        .map(|i| {
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(10 * i)); // pacing: staggered arrivals
                rauta_testkit::get(addr, "lb.example", "/").map(|r| r.status)
            })
        })
        .collect();
    for c in clients {
        assert_eq!(c.join().expect("client thread").expect("response"), 200);
    }
    // Round robin would send 10 of 20 to the slow endpoint; least request
    // sends it only what arrives while the fast one is busier.
    let slow = slow_count.load(Ordering::SeqCst);
    assert!(
        slow <= 4,
        "slow endpoint got {slow} of 20 requests; fast got {}",
        fast.requests()
    );
    assert_eq!(slow + fast.requests(), 20);
}

#[test]
fn maglev_keeps_keys_on_their_endpoint_and_moves_few_when_one_goes() {
    let backends: Vec<Backend> = (0..4).map(|i| Backend::start(&format!("mg-{i}"))).collect();
    let refs: Vec<&Backend> = backends.iter().collect();
    let ing = ingress_for(&[(
        "nginx.ingress.kubernetes.io/upstream-hash-by",
        "$http_x_user",
    )]);
    let dir = ManifestDir::new();
    dir.write(
        "all.yaml",
        &join(&[
            &rauta_class(),
            &backend_for("lb", "pool", "http", &refs),
            &ing,
        ]),
    );
    let rauta = start(&dir, &[]);
    let users: Vec<String> = (0..400).map(|i| format!("user-{i}")).collect();
    let place = |rauta: &rauta_testkit::Rauta| -> Vec<String> {
        let mut conn = Conn::open(rauta.addr()).expect("connect");
        users
            .iter()
            .map(|u| {
                let r = conn
                    .request("GET", "lb.example", "/", &[("X-User", u)], b"")
                    .expect("response");
                r.header("x-backend").unwrap_or("?").to_string()
            })
            .collect()
    };
    let before = place(&rauta);
    assert_eq!(
        place(&rauta),
        before,
        "the same key must reach the same endpoint"
    );
    // Across new connections (and so across shards) too.
    for (u, want) in users.iter().zip(&before).take(20) {
        let r = rauta_testkit::client::request(
            rauta.addr(),
            "GET",
            "lb.example",
            "/",
            &[("X-User", u)],
            b"",
        )
        .expect("response");
        assert_eq!(r.header("x-backend"), Some(want.as_str()));
    }
    let distinct: std::collections::HashSet<_> = before.iter().collect();
    assert_eq!(distinct.len(), 4, "keys spread over every endpoint");

    // Remove mg-3 from the EndpointSlices.
    let generation = rauta.generation().expect("ready");
    dir.write(
        "all.yaml",
        &join(&[
            &rauta_class(),
            &backend_for("lb", "pool", "http", &refs[..3]),
            &ing,
        ]),
    );
    rauta.wait_generation(generation + 1);
    let after = place(&rauta);
    let moved_others = before
        .iter()
        .zip(&after)
        .filter(|(b, a)| b.as_str() != "mg-3" && b != a)
        .count();
    let on_removed = before.iter().filter(|b| b.as_str() == "mg-3").count();
    assert!(after.iter().all(|a| a != "mg-3"));
    // Ideal Maglev moves only the removed endpoint's keys (~1/4); allow a
    // little disruption among the rest.
    assert!(
        moved_others * 100 <= users.len() * 6,
        "{moved_others} keys of surviving endpoints moved"
    );
    assert!(
        (60..140).contains(&on_removed),
        "{on_removed} keys were on the removed endpoint"
    );
}

#[test]
fn hash_by_client_ip_pins_a_client() {
    let backends: Vec<Backend> = (0..3).map(|i| Backend::start(&format!("ip-{i}"))).collect();
    let refs: Vec<&Backend> = backends.iter().collect();
    let ing = ingress_for(&[("rauta.io/upstream-hash-by", "$remote_addr")]);
    let dir = ManifestDir::new();
    dir.write(
        "all.yaml",
        &join(&[
            &rauta_class(),
            &backend_for("lb", "pool", "http", &refs),
            &ing,
        ]),
    );
    let rauta = start(&dir, &[]);
    let mut seen = std::collections::HashSet::new();
    for _ in 0..20 {
        let r = rauta_testkit::get(rauta.addr(), "lb.example", "/").expect("response");
        seen.insert(r.header("x-backend").unwrap_or("?").to_string());
    }
    assert_eq!(seen.len(), 1, "one client IP, one endpoint: {seen:?}");
}
