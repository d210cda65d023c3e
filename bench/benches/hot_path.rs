//! Criterion micro-benchmarks of rauta's per-request hot path: route lookup
//! (Ingress rules, and HTTPRoute rules with header and query conditions),
//! Maglev table build and pick, request-head parse + upstream-head rewrite.
//!
//! Targets (reported, never asserted): route lookup under 100 ns at 100 000
//! rules; Maglev pick under 10 ns. Run with
//! `cargo bench -p rauta-bench --bench hot_path` (add `-- route_lookup` to
//! run one group).

#![forbid(unsafe_code)]

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use rauta_proxy::balance::maglev::Maglev;
use rauta_proxy::http::head::{write_request, Edits, Forwarded, IpText};
use rauta_proxy::http::request::parse;
use rauta_proxy::router::conditions::Facts;
use rauta_proxy::router::{Match, RouteTable};
use rauta_shared::config::{
    BackendConfig, Conditions, HostMatch, IngressRef, LbPolicy, PathType, RouteConfig, RouteKind,
    RuleConfig, ServicePort, StringMatch, ValueMatch,
};

/// Paths per host in the generated tables (fewer when there are fewer rules).
const PATHS_PER_HOST: usize = 100;
/// Lookups per iteration: a fixed, pre-generated spread over the rules.
const LOOKUPS: usize = 1024;

fn host_name(h: usize) -> String {
    format!("svc-{h}.team-{}.example.com", h % 17)
}

fn rule_path(p: usize) -> String {
    format!("/api/v{}/svc{p}", p % 3)
}

/// A config of `rules` Prefix rules: exact hosts, `PATHS_PER_HOST` paths
/// each, spread over 16 backends.
fn route_config(rules: usize) -> RouteConfig {
    let per_host = PATHS_PER_HOST.min(rules);
    let hosts = rules.div_ceil(per_host);
    let backends = (0..16)
        .map(|i| BackendConfig {
            name: format!("bench/svc-{i}:http"),
            namespace: "bench".into(),
            service: format!("svc-{i}"),
            port: ServicePort::Number(80),
            endpoints: vec![],
            policy: LbPolicy::RoundRobin,
            protocol: Default::default(),
            tls: None,
        })
        .collect();
    let mut out = Vec::with_capacity(rules);
    'hosts: for h in 0..hosts {
        for p in 0..per_host {
            if out.len() == rules {
                break 'hosts;
            }
            out.push(RuleConfig {
                host: HostMatch::Exact(host_name(h)),
                path: rule_path(p),
                path_type: PathType::Prefix,
                backend: (h * per_host + p) % 16,
                source: IngressRef::ingress("bench", format!("ing-{h}")),
                ssl_redirect: false,
                policy: Default::default(),
                conditions: None,
            });
        }
    }
    RouteConfig {
        rules: out,
        default_backend: None,
        default_backend_source: None,
        backends,
        tls: Vec::new(),
        hosts: Vec::new(),
        l4: Vec::new(),
        passthrough: Vec::new(),
    }
}

/// Request (host, path) pairs that hit rules spread over the whole table,
/// each path one element deeper than its rule.
fn lookups(config: &RouteConfig) -> Vec<(String, String)> {
    let n = config.rules.len();
    (0..LOOKUPS)
        .map(|i| {
            // A multiplicative spread (odd constant) visits the rules in a
            // cache-unfriendly order, as real traffic would.
            let r = &config.rules[(i.wrapping_mul(2_654_435_761)) % n];
            let HostMatch::Exact(host) = &r.host else {
                unreachable!("the generator writes exact hosts only")
            };
            (host.clone(), format!("{}/items/{i}", r.path))
        })
        .collect()
}

fn route_lookup(c: &mut Criterion) {
    let mut group = c.benchmark_group("route_lookup");
    for rules in [10usize, 1_000, 100_000] {
        let config = route_config(rules);
        let table = RouteTable::compile(&config).expect("generated config compiles");
        let requests = lookups(&config);
        for (host, path) in &requests {
            assert!(
                matches!(table.lookup(host, path), Match::Route { .. }),
                "{host}{path} must match a rule"
            );
        }
        group.throughput(Throughput::Elements(requests.len() as u64));
        group.bench_with_input(BenchmarkId::from_parameter(rules), &requests, |b, reqs| {
            b.iter(|| {
                let mut sum = 0usize;
                for (host, path) in reqs {
                    if let Match::Route { backend, .. } = table.lookup(host, path) {
                        sum += backend;
                    }
                }
                black_box(sum)
            })
        });
        // The same request over and over: the table's hot path stays in
        // cache, so this is the lookup's compute cost without misses.
        let (host, path) = &requests[requests.len() / 2];
        group.throughput(Throughput::Elements(1));
        group.bench_function(BenchmarkId::new("same_request", rules), |b| {
            b.iter(|| table.lookup(black_box(host), black_box(path)))
        });
    }
    group.finish();
}

/// The HTTPRoute shape of `route_config(rules)`: each path has two rules,
/// the first asking for `x-version: v2` and `?tier=gold` (exact), the
/// second for an `x-version` matching `v[0-9]+` (regex).
fn conditional_config(rules: usize) -> RouteConfig {
    let mut config = route_config(rules.div_ceil(2));
    let value = |name: &str, value: StringMatch| ValueMatch {
        name: name.into(),
        value,
    };
    let first = Conditions {
        headers: vec![value("x-version", StringMatch::Exact("v2".into()))],
        query: vec![value("tier", StringMatch::Exact("gold".into()))],
        ..Conditions::default()
    };
    let second = Conditions {
        headers: vec![value(
            "x-version",
            StringMatch::RegularExpression("v[0-9]+".into()),
        )],
        ..Conditions::default()
    };
    let paths = std::mem::take(&mut config.rules);
    for mut rule in paths {
        rule.source.kind = RouteKind::HttpRoute;
        let mut other = rule.clone();
        rule.conditions = Some(Box::new(first.clone()));
        other.conditions = Some(Box::new(second.clone()));
        config.rules.push(rule);
        if config.rules.len() < rules {
            config.rules.push(other);
        }
    }
    config
}

/// A request to a conditional table: its target and headers.
struct ConditionalRequest {
    host: String,
    path: String,
    target: String,
    headers: Vec<(&'static str, &'static [u8])>,
}

/// Requests over the whole table: half meet the first rule of their path,
/// half only the second (the lookup walks on to it).
fn conditional_lookups(config: &RouteConfig) -> Vec<ConditionalRequest> {
    let n = config.rules.len();
    (0..LOOKUPS)
        .map(|i| {
            let r = &config.rules[(i.wrapping_mul(2_654_435_761)) % n];
            let HostMatch::Exact(host) = &r.host else {
                unreachable!("the generator writes exact hosts only")
            };
            let path = format!("{}/items/{i}", r.path);
            let first = i % 2 == 0;
            ConditionalRequest {
                host: host.clone(),
                target: format!("{path}?page=2&tier=gold"),
                path,
                headers: vec![
                    ("accept", b"*/*"),
                    ("user-agent", b"bench/1.0"),
                    ("x-version", if first { b"v2" } else { b"v1" }),
                ],
            }
        })
        .collect()
}

fn route_lookup_conditions(c: &mut Criterion) {
    let mut group = c.benchmark_group("route_lookup_conditions");
    for rules in [10usize, 1_000, 100_000] {
        let config = conditional_config(rules);
        let table = RouteTable::compile(&config).expect("generated config compiles");
        let requests = conditional_lookups(&config);
        let headers: Vec<Vec<httparse::Header<'_>>> = requests
            .iter()
            .map(|r| {
                (r.headers.iter())
                    .map(|(name, value)| httparse::Header { name, value })
                    .collect()
            })
            .collect();
        let facts: Vec<(&str, &str, Facts<'_>)> = requests
            .iter()
            .zip(&headers)
            .map(|(r, headers)| {
                let facts = Facts {
                    method: "GET",
                    headers,
                    target: &r.target,
                    tls: false,
                    port: 80,
                };
                (r.host.as_str(), r.path.as_str(), facts)
            })
            .collect();
        for (i, (host, path, f)) in facts.iter().enumerate() {
            let Match::Route { route, .. } = table.lookup_with(host, path, f) else {
                panic!("{host}{path} must match a rule");
            };
            // The first rule asks two things, the second one.
            let asked = table.route(route).conditions().map(|c| c.describe().len());
            let want = if i % 2 == 0 { 2 } else { 1 };
            assert_eq!(
                asked,
                Some(want),
                "{host}{path}: the rule the request meets"
            );
        }
        group.throughput(Throughput::Elements(facts.len() as u64));
        group.bench_with_input(BenchmarkId::from_parameter(rules), &facts, |b, reqs| {
            b.iter(|| {
                let mut sum = 0usize;
                for (host, path, f) in reqs {
                    if let Match::Route { backend, .. } = table.lookup_with(host, path, f) {
                        sum += backend;
                    }
                }
                black_box(sum)
            })
        });
    }
    group.finish();
}

fn endpoint_names(n: usize) -> Vec<String> {
    (0..n)
        .map(|i| format!("10.{}.{}.{}:8080", i / 65_536, (i / 256) % 256, i % 256))
        .collect()
}

fn maglev(c: &mut Criterion) {
    let mut build = c.benchmark_group("maglev_build");
    build.sample_size(10);
    for n in [10usize, 100, 1_000] {
        let names = endpoint_names(n);
        let endpoints: Vec<(&str, u32)> = names.iter().map(|s| (s.as_str(), 1)).collect();
        build.bench_with_input(BenchmarkId::from_parameter(n), &endpoints, |b, eps| {
            b.iter(|| Maglev::build(black_box(eps)))
        });
    }
    build.finish();

    let mut pick = c.benchmark_group("maglev_pick");
    let names = endpoint_names(100);
    let endpoints: Vec<(&str, u32)> = names.iter().map(|s| (s.as_str(), 1)).collect();
    let table = Maglev::build(&endpoints).expect("positive weights");
    let hashes: Vec<u64> = (0..LOOKUPS as u64)
        .map(|i| Maglev::hash_key(&i.to_le_bytes()))
        .collect();
    pick.throughput(Throughput::Elements(hashes.len() as u64));
    pick.bench_function("pick_100_endpoints", |b| {
        b.iter(|| {
            let mut sum = 0usize;
            for h in &hashes {
                sum += table.pick(black_box(*h));
            }
            black_box(sum)
        })
    });
    let keys: Vec<String> = (0..LOOKUPS)
        .map(|i| format!("10.1.{}.{}", i / 256, i % 256))
        .collect();
    pick.bench_function("hash_and_pick_100_endpoints", |b| {
        b.iter(|| {
            let mut sum = 0usize;
            for k in &keys {
                sum += table.pick(Maglev::hash_key(black_box(k.as_bytes())));
            }
            black_box(sum)
        })
    });
    pick.finish();
}

/// What a desktop browser sends for a page (Chrome-like, 14 headers).
const BROWSER_REQUEST: &[u8] = b"GET /shop/products/42?ref=home&utm_source=newsletter HTTP/1.1\r\n\
Host: www.example.com\r\n\
Connection: keep-alive\r\n\
sec-ch-ua: \"Chromium\";v=\"124\", \"Google Chrome\";v=\"124\", \"Not-A.Brand\";v=\"99\"\r\n\
sec-ch-ua-mobile: ?0\r\n\
sec-ch-ua-platform: \"Linux\"\r\n\
Upgrade-Insecure-Requests: 1\r\n\
User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36\r\n\
Accept: text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,image/apng,*/*;q=0.8\r\n\
Sec-Fetch-Site: same-origin\r\n\
Sec-Fetch-Mode: navigate\r\n\
Sec-Fetch-Dest: document\r\n\
Referer: https://www.example.com/\r\n\
Accept-Encoding: gzip, deflate, br, zstd\r\n\
Accept-Language: en-US,en;q=0.9,fi;q=0.8\r\n\
Cookie: session=9f8e7d6c5b4a39281706f5e4d3c2b1a0; theme=dark; consent=1\r\n\r\n";

fn http_head(c: &mut Criterion) {
    // Formatted once per connection in the proxy, so outside the loop here.
    let ip = IpText::new(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 10)));
    let fwd = Forwarded {
        client_ip: ip.as_bytes(),
        proto: "http",
        port: 80,
        request_id: b"0123456789abcdef0123456789abcdef",
    };
    let mut group = c.benchmark_group("http_head");
    group.throughput(Throughput::Bytes(BROWSER_REQUEST.len() as u64));
    group.bench_function("parse_browser_request", |b| {
        b.iter(|| {
            let mut headers = [httparse::EMPTY_HEADER; 100];
            let head = parse(black_box(BROWSER_REQUEST), &mut headers)
                .expect("valid request")
                .expect("complete head");
            black_box(head.len)
        })
    });
    let mut out = Vec::with_capacity(2048);
    group.bench_function("parse_and_rewrite_browser_request", |b| {
        b.iter(|| {
            let mut headers = [httparse::EMPTY_HEADER; 100];
            let head = parse(black_box(BROWSER_REQUEST), &mut headers)
                .expect("valid request")
                .expect("complete head");
            write_request(&mut out, &head, &fwd, &Edits::NONE, b"www.example.com");
            black_box(out.len())
        })
    });
    group.finish();
}

criterion_group!(
    benches,
    route_lookup,
    route_lookup_conditions,
    maglev,
    http_head
);
criterion_main!(benches);
