//! The status page (`GET /` on the admin port) in a real browser: headless
//! Chromium, driven through chromedriver, loads the page from the real
//! `rauta` binary while real clients send traffic to real backends, and
//! the tests read what the page rendered.

use crate::annotated::{ing, serve_docs_with, service_on};
use rauta_testkit::browser::Browser;
use rauta_testkit::manifests::{path, rauta_gateway};
use rauta_testkit::tls::Ca;
use rauta_testkit::{free_port, require, tls_secret, Backend, Conn, Need, Rauta};
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The generous bound for anything the page has to show.
const SHOWN: Duration = Duration::from_secs(120);

/// One browser at a time: each test runs a whole Chromium.
static ONE_BROWSER: Mutex<()> = Mutex::new(());

/// Clients sending requests in a loop until dropped, each on its own
/// keep-alive connection, `pace` apart.
struct Traffic {
    stop: Arc<AtomicBool>,
    sent: Arc<AtomicU64>,
    threads: Vec<JoinHandle<()>>,
}

impl Traffic {
    /// `clients` threads, each going round `targets` (host, path).
    fn start(
        addr: SocketAddr,
        clients: usize,
        targets: &[(&str, &str)],
        pace: Duration,
    ) -> Traffic {
        let stop = Arc::new(AtomicBool::new(false));
        let sent = Arc::new(AtomicU64::new(0));
        let targets: Vec<(String, String)> = targets
            .iter()
            .map(|(h, p)| (h.to_string(), p.to_string()))
            .collect();
        let threads = (0..clients)
            .map(|c| {
                let (stop, sent, targets) = (stop.clone(), sent.clone(), targets.clone());
                std::thread::spawn(move || {
                    let mut conn = None;
                    let mut i = c;
                    while !stop.load(Ordering::SeqCst) {
                        let (host, path) = &targets[i % targets.len()];
                        i += 1;
                        if conn.is_none() {
                            conn = Conn::open(addr).ok();
                        }
                        let ok = conn
                            .as_mut()
                            .is_some_and(|c| c.request("GET", host, path, &[], b"").is_ok());
                        if !ok {
                            conn = None;
                        }
                        sent.fetch_add(1, Ordering::SeqCst);
                        std::thread::sleep(pace);
                    }
                })
            })
            .collect();
        Traffic {
            stop,
            sent,
            threads,
        }
    }

    fn sent(&self) -> u64 {
        self.sent.load(Ordering::SeqCst)
    }
}

impl Drop for Traffic {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// Opens the status page of `rauta` and waits for its first figures.
fn open(rauta: &Rauta) -> Browser {
    let browser = Browser::start();
    browser.goto(&format!("http://{}/", rauta.admin_addr()));
    browser.wait_for(
        "the page's first figures",
        SHOWN,
        "return document.getElementById('generation').textContent !== '–'",
        &[],
    );
    browser
}

/// The route rows on the page now.
const ROUTE_ROWS: &str = r#"
return Array.from(document.querySelectorAll('#routes tbody tr')).map(tr => {
  const td = c => tr.querySelector('td.' + c);
  return {
    host: td('host').textContent, path: td('path').textContent, type: td('type').textContent,
    ingress: td('ingress').textContent, backend: td('backend').textContent,
    rps: Number(td('rps').dataset.value), err: Number(td('err').dataset.value),
    p50: Number(td('p50').dataset.us), p99: Number(td('p99').dataset.us),
    p99_text: td('p99').textContent, inflight: Number(td('inflight').textContent),
  };
});"#;

/// The endpoint rows on the page now.
const ENDPOINT_ROWS: &str = r#"
return Array.from(document.querySelectorAll('#endpoints tbody tr')).map(tr => {
  const td = c => tr.querySelector('td.' + c);
  return {
    backend: td('backend').textContent, addr: td('addr').textContent, pod: td('pod').textContent,
    state: td('state').textContent, inflight: Number(td('inflight').textContent),
  };
});"#;

fn rows(browser: &Browser, script: &str) -> Vec<Value> {
    browser
        .eval(script, &[])
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn row<'a>(
    rows: &'a [Value],
    key: &str,
    value: &str,
    key2: &str,
    value2: &str,
) -> Option<&'a Value> {
    rows.iter().find(|r| r[key] == value && r[key2] == value2)
}

fn text(browser: &Browser, id: &str) -> String {
    browser
        .eval(
            "return document.getElementById(arguments[0]).textContent",
            &[json!(id)],
        )
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[test]
fn every_route_has_a_row_and_the_explain_form_answers() {
    require!(Need::tool("chromium"), Need::tool("chromedriver"));
    let _one = ONE_BROWSER.lock().unwrap_or_else(|e| e.into_inner());
    let (a1, a2, b1, g1) = (
        Backend::start("alpha-1"),
        Backend::start("alpha-2"),
        Backend::start("beta"),
        Backend::start("gamma"),
    );
    b1.set_delay(Duration::from_millis(20));
    let dead = free_port();
    let ca = Ca::new();
    let leaf = ca.issue_for_days(&["shop.example"], 60);
    // Plain HTTP is served too (a TLS host would get redirects).
    let front = ing(
        "front",
        &[("ssl-redirect", "false")],
        "shop.example",
        &[path("/", "Prefix", "alpha"), path("/b", "Exact", "beta")],
    )
    .replace(
        "spec:\n",
        "spec:\n  tls:\n  - hosts: [\"shop.example\"]\n    secretName: shop-tls\n",
    );
    let api = ing(
        "api",
        &[],
        "api.example",
        &[
            path("/v1", "Prefix", "gamma"),
            path("/v2", "Prefix", "gamma"),
        ],
    );
    let https = format!("127.0.0.1:{}", free_port());
    let (_dir, rauta) = serve_docs_with(
        &[
            &service_on("alpha", &[a1.port(), a2.port(), dead]),
            &service_on("beta", &[b1.port()]),
            &service_on("gamma", &[g1.port()]),
            &tls_secret("web", "shop-tls", &leaf.cert_pem, &leaf.key_pem),
            &front,
            &api,
        ],
        &[
            "--shards",
            "2",
            "--listen-tls",
            &https,
            "--outlier-ejection-time",
            "300s",
        ],
    );
    let traffic = Traffic::start(
        rauta.addr(),
        3,
        &[
            ("shop.example", "/"),
            ("shop.example", "/b"),
            ("api.example", "/v1/users"),
            ("shop.example", "/cart"),
            ("api.example", "/v2/orders"),
            ("shop.example", "/slow?ms=60"),
            ("shop.example", "/b"),
            ("api.example", "/v1/users/7"),
            ("shop.example", "/status/500"),
        ],
        Duration::from_millis(5),
    );
    let browser = open(&rauta);

    // Every route, with its host, path, type, Ingress and backend, and
    // figures once traffic went through it.
    let expected = [
        ("shop.example", "/", "Prefix", "web/front", "web/alpha:http"),
        ("shop.example", "/b", "Exact", "web/front", "web/beta:http"),
        ("api.example", "/v1", "Prefix", "web/api", "web/gamma:http"),
        ("api.example", "/v2", "Prefix", "web/api", "web/gamma:http"),
    ];
    let deadline = Instant::now() + SHOWN;
    let shown = loop {
        let shown = rows(&browser, ROUTE_ROWS);
        let complete = expected.iter().all(|(host, p, _, _, _)| {
            row(&shown, "host", host, "path", p).is_some_and(|r| r["rps"].as_f64() > Some(0.0))
        });
        if complete && shown.len() == expected.len() {
            break shown;
        }
        assert!(
            Instant::now() < deadline,
            "rows with traffic for every route: {shown:?}\n{}",
            rauta.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    for (host, p, kind, ingress, backend) in expected {
        let r = row(&shown, "host", host, "path", p).expect("row");
        assert_eq!(
            (
                r["type"].as_str(),
                r["ingress"].as_str(),
                r["backend"].as_str()
            ),
            (Some(kind), Some(ingress), Some(backend)),
            "{r}"
        );
        assert!(r["p99"].as_u64() > Some(0), "{r}");
    }
    // /status/500 answers count as 5xx of the `/` route.
    browser.wait_for(
        "a 5xx share on shop.example /",
        SHOWN,
        "return Array.from(document.querySelectorAll('#routes tbody tr')).some(tr => \
         tr.querySelector('td.host').textContent === 'shop.example' && \
         tr.querySelector('td.path').textContent === '/' && \
         Number(tr.querySelector('td.err').dataset.value) > 0)",
        &[],
    );
    assert_eq!(text(&browser, "generation"), "1");
    let shards = browser.eval(
        "return document.querySelectorAll('#shards tbody tr').length",
        &[],
    );
    assert_eq!(shards, 2, "a row per shard");
    let cert = browser.eval(
        "const tr = document.querySelector('#certs tbody tr[data-host=\"shop.example\"]'); \
         return tr && tr.textContent",
        &[],
    );
    assert!(
        cert.as_str().is_some_and(|t| t.contains("web/shop-tls")),
        "the certificate row: {cert}"
    );

    // The explain form asks /debug/route and shows the decision.
    browser.type_into("#explain-host", "shop.example");
    browser.clear("#explain-path");
    browser.type_into("#explain-path", "/b");
    browser.click("#explain-form button");
    let why = browser.wait_for(
        "the explanation",
        SHOWN,
        "const w = document.getElementById('explain-why'); return w && w.textContent",
        &[],
    );
    assert!(why.as_str().is_some_and(|w| w.contains("Exact")), "{why}");
    let winner = browser.eval(
        "const w = document.querySelector('#explain-candidates tr.winner'); return w && w.textContent",
        &[],
    );
    assert!(
        winner.as_str().is_some_and(|w| w.contains("web/beta:http")),
        "{winner}"
    );

    // The README's screenshot: the whole page, under this traffic, once
    // the window holds some seconds of it.
    browser.wait_for(
        "a window of 10 s",
        SHOWN,
        "return parseFloat(document.getElementById('window').textContent) >= 10",
        &[],
    );
    browser.eval("window.scrollTo(0, 0)", &[]);
    let height = browser
        .eval("return document.documentElement.scrollHeight", &[])
        .as_u64()
        .unwrap_or(1000);
    browser.set_window(
        1400,
        u32::try_from(height.clamp(600, 4000)).unwrap_or(1000) + 140,
    );
    std::thread::sleep(Duration::from_millis(2500));
    let png = browser.screenshot();
    assert!(png.starts_with(b"\x89PNG"), "a PNG");
    let out = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("status-page.png");
    std::fs::write(&out, &png).expect("write the screenshot");
    println!(
        "screenshot: {} ({} requests sent)",
        out.display(),
        traffic.sent()
    );
}

#[test]
fn a_slow_backend_raises_the_p99_shown() {
    require!(Need::tool("chromium"), Need::tool("chromedriver"));
    let _one = ONE_BROWSER.lock().unwrap_or_else(|e| e.into_inner());
    let app = Backend::start("app");
    let (_dir, rauta) = serve_docs_with(
        &[
            &service_on("app", &[app.port()]),
            &ing("app", &[], "app.example", &[path("/", "Prefix", "app")]),
        ],
        &["--shards", "1"],
    );
    let p99 = "const tr = Array.from(document.querySelectorAll('#routes tbody tr'))\
               .find(tr => tr.querySelector('td.host').textContent === 'app.example'); \
               return tr ? Number(tr.querySelector('td.p99').dataset.us) : 0";
    let _traffic = Traffic::start(
        rauta.addr(),
        1,
        &[("app.example", "/")],
        Duration::from_millis(50),
    );
    let browser = open(&rauta);
    let before = browser.wait_for("a p99 for app.example", SHOWN, p99, &[]);
    let before = before.as_u64().expect("µs");
    assert!(before < 250_000, "a fast backend: p99 {before} µs");

    app.set_delay(Duration::from_millis(400));
    let after = browser.wait_for(
        "the p99 to show the slow backend",
        SHOWN,
        &format!("const v = (() => {{ {p99} }})(); return v >= 380000 ? v : 0"),
        &[],
    );
    let after = after.as_u64().expect("µs");
    assert!(after > before, "{before} -> {after}");
    let shown = rows(&browser, ROUTE_ROWS);
    let text = shown[0]["p99_text"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        text.ends_with(" ms") || text.ends_with(" s"),
        "shown with its unit: {text:?}"
    );
    // A 400 ms request is in flight most of the time: the endpoint's
    // in-flight count shows it.
    let endpoint = format!("127.0.0.1:{}", app.port());
    browser.wait_for(
        "a request in flight to the endpoint",
        SHOWN,
        "const tr = document.querySelector(`#endpoints tbody tr[data-endpoint=\"${arguments[0]}\"]`); \
         return tr && Number(tr.querySelector('td.inflight').textContent) >= 1",
        &[json!(endpoint)],
    );
}

#[test]
fn an_ejected_endpoint_is_shown_as_ejected() {
    require!(Need::tool("chromium"), Need::tool("chromedriver"));
    let _one = ONE_BROWSER.lock().unwrap_or_else(|e| e.into_inner());
    let (a, b) = (Backend::start("a"), Backend::start("b"));
    let dead = free_port();
    let (_dir, rauta) = serve_docs_with(
        &[
            &service_on("app", &[a.port(), dead, b.port()]),
            &ing("app", &[], "app.example", &[path("/", "Prefix", "app")]),
        ],
        &[
            "--shards",
            "1",
            "--connect-attempts",
            "1",
            "--outlier-ejection-time",
            "300s",
        ],
    );
    // Five failures in a row eject the dead endpoint (as in
    // upstream_attempts.rs).
    let mut conn = Conn::open(rauta.addr()).expect("connect");
    let failed = (0..30)
        .filter(|_| {
            let r = conn
                .request("GET", "app.example", "/", &[], b"")
                .expect("answer");
            r.status != 200
        })
        .count();
    assert_eq!(failed, 5, "ejected after 5 failures in a row");
    let browser = open(&rauta);
    let dead = format!("127.0.0.1:{dead}");
    let state = browser.wait_for(
        "the dead endpoint's row",
        SHOWN,
        "const tr = document.querySelector(`#endpoints tbody tr[data-endpoint=\"${arguments[0]}\"]`); \
         return tr && tr.dataset.state === 'ejected' && tr.querySelector('td.state').textContent",
        &[json!(dead)],
    );
    assert_eq!(state, "ejected (1/1 shards)");
    let endpoints = rows(&browser, ENDPOINT_ROWS);
    assert_eq!(endpoints.len(), 3, "{endpoints:?}");
    for live in [a.port(), b.port()] {
        let addr = format!("127.0.0.1:{live}");
        let r = endpoints
            .iter()
            .find(|e| e["addr"] == addr.as_str())
            .expect("row");
        assert_eq!(r["state"], "ready", "{r}");
        assert_eq!(r["backend"], "web/app:http", "{r}");
    }
    // The filter finds it by its state.
    browser.type_into("#endpoint-filter", "ejected");
    browser.wait_for(
        "only the ejected endpoint",
        SHOWN,
        "return document.querySelectorAll('#endpoints tbody tr').length === 1 && \
         document.querySelector('#endpoints tbody tr').dataset.endpoint",
        &[],
    );
}

#[test]
fn a_bad_manifest_shows_the_failed_reload_and_the_last_good_generation_stays() {
    require!(Need::tool("chromium"), Need::tool("chromedriver"));
    let _one = ONE_BROWSER.lock().unwrap_or_else(|e| e.into_inner());
    let app = Backend::start("app");
    let (dir, rauta) = serve_docs_with(
        &[
            &service_on("app", &[app.port()]),
            &ing("app", &[], "app.example", &[path("/", "Prefix", "app")]),
        ],
        &["--shards", "1"],
    );
    let browser = open(&rauta);
    assert_eq!(text(&browser, "generation"), "1");
    let hidden = "return document.getElementById('reload-failed').hidden";
    assert_eq!(browser.eval(hidden, &[]), true, "no failure yet");

    dir.write(
        "broken.yaml",
        "kind: Ingress\napiVersion: networking.k8s.io/v1\nmetadata: [\n",
    );
    let banner = browser.wait_for(
        "the failed reload",
        SHOWN,
        "const s = document.getElementById('reload-failed'); return !s.hidden && s.textContent",
        &[],
    );
    let banner = banner.as_str().unwrap_or_default();
    assert!(
        banner.contains("broken.yaml"),
        "the problem names the file: {banner}"
    );
    assert!(banner.contains("fatal"), "{banner}");
    assert!(banner.contains("generation 1"), "{banner}");
    assert_eq!(
        text(&browser, "generation"),
        "1",
        "the last good generation stays"
    );
    let failed: u64 = text(&browser, "failed-count").parse().expect("a count");
    assert!(failed >= 1, "{failed} failed reloads counted");
    let shown = rows(&browser, ROUTE_ROWS);
    assert_eq!(shown.len(), 1, "its routes stay: {shown:?}");
    assert_eq!(shown[0]["host"], "app.example");
    assert_eq!(rauta.who("app.example", "/"), "app", "and are served");

    // Fixed: the banner goes; the failure stays listed.
    dir.remove("broken.yaml");
    browser.wait_for(
        "the banner to go",
        SHOWN,
        "return document.getElementById('reload-failed').hidden",
        &[],
    );
    let listed = text(&browser, "failures");
    assert!(listed.contains("broken.yaml"), "{listed}");
}

#[test]
fn ten_thousand_routes_are_paged_and_filtered() {
    require!(Need::tool("chromium"), Need::tool("chromedriver"));
    let _one = ONE_BROWSER.lock().unwrap_or_else(|e| e.into_inner());
    let (a, b) = (Backend::start("a"), Backend::start("b"));
    // 100 hosts with 100 paths each, over 10 Services.
    let services: Vec<String> = (0..10)
        .map(|s| service_on(&format!("svc{s}"), &[a.port(), b.port()]))
        .collect();
    let ingresses: Vec<String> = (0..100)
        .map(|h| {
            let paths: Vec<String> = (0..100)
                .map(|p| path(&format!("/p{p}"), "Prefix", &format!("svc{}", (h + p) % 10)))
                .collect();
            ing(&format!("ing{h}"), &[], &format!("h{h}.example"), &paths)
        })
        .collect();
    let mut docs: Vec<&str> = services.iter().map(String::as_str).collect();
    docs.extend(ingresses.iter().map(String::as_str));
    let (_dir, rauta) = serve_docs_with(&docs, &["--shards", "1"]);

    // What /status.json costs with 10 000 routes: the whole document
    // (table included), then the live figures alone, idle and then with
    // every route in the window.
    let measure = |what: &str, target: &str| {
        let started = Instant::now();
        let r = rauta.admin_get(target).expect("status.json");
        let took = started.elapsed();
        assert_eq!(r.status, 200);
        let v: Value = serde_json::from_slice(&r.body).expect("JSON");
        println!(
            "/status.json with 10 000 routes, {what}: {} bytes in {took:?}",
            r.body.len()
        );
        v
    };
    // The admin side learns of the table just after the shards do (its
    // hash is computed after they have it).
    rauta_testkit::eventually("the table on the admin side", || {
        rauta
            .admin_get("/routes")
            .is_ok_and(|r| r.text().starts_with("{") && !r.text().contains("\"generation\":0"))
    });
    let full = measure("with the table", "/status.json");
    assert_eq!(
        full["table"]["routes"].as_array().map(Vec::len),
        Some(10_000),
        "{full}\n{}",
        rauta.log()
    );
    let generation = full["generation"].as_u64().expect("generation");
    std::thread::sleep(Duration::from_millis(600));
    measure(
        "live figures, idle",
        &format!("/status.json?have={generation}"),
    );
    let mut conn = Conn::open(rauta.addr()).expect("connect");
    for h in 0..100 {
        for p in 0..100 {
            let r = conn
                .request("GET", &format!("h{h}.example"), &format!("/p{p}"), &[], b"")
                .expect("answer");
            assert_eq!(r.status, 200);
        }
    }
    std::thread::sleep(Duration::from_millis(600));
    let busy = measure(
        "live figures, every route in the window",
        &format!("/status.json?have={generation}"),
    );
    assert_eq!(busy["routes"].as_array().map(Vec::len), Some(10_000));
    assert!(busy.get("table").is_none(), "the table is not sent again");

    let browser = open(&rauta);
    let count = browser.wait_for(
        "10 000 routes counted",
        SHOWN,
        "const t = document.getElementById('routes-count').textContent; return t === '(10000)' && t",
        &[],
    );
    assert_eq!(count, "(10000)");
    let first_page = rows(&browser, ROUTE_ROWS);
    assert_eq!(first_page.len(), 50, "one page of rows in the DOM");
    let pager = browser.eval(
        "return document.querySelector('#routes-pager .range').textContent",
        &[],
    );
    assert_eq!(pager, "1–50 of 10000");

    browser.type_into("#route-filter", "h42.example /p7");
    browser.wait_for(
        "the filter to narrow the rows",
        SHOWN,
        "return document.getElementById('routes-count').textContent === '(11 of 10000 match)'",
        &[],
    );
    let narrowed = rows(&browser, ROUTE_ROWS);
    assert_eq!(narrowed.len(), 11, "/p7 and /p70../p79: {narrowed:?}");
    for r in &narrowed {
        assert_eq!(r["host"], "h42.example", "{r}");
        assert!(
            r["path"].as_str().is_some_and(|p| p.starts_with("/p7")),
            "{r}"
        );
    }
    // The next page of all rows, after clearing the filter.
    browser.clear("#route-filter");
    browser.type_into("#route-filter", " ");
    browser.wait_for(
        "all rows again",
        SHOWN,
        "return document.getElementById('routes-count').textContent === '(10000)'",
        &[],
    );
    browser.click("#routes-pager .next");
    let pager = browser.eval(
        "return document.querySelector('#routes-pager .range').textContent",
        &[],
    );
    assert_eq!(pager, "51–100 of 10000");
}

#[test]
fn httproute_conditions_and_weighted_shares_are_noted() {
    require!(Need::tool("chromium"), Need::tool("chromedriver"));
    let _one = ONE_BROWSER.lock().unwrap_or_else(|e| e.into_inner());
    let (v1, v2) = (Backend::start("v1"), Backend::start("v2"));
    let gateway = rauta_gateway("web", "gw", &["{name: http, port: 80, protocol: HTTP}"]);
    let route = "\
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: shop, namespace: web}
spec:
  parentRefs: [{name: gw}]
  hostnames: [gw.example]
  rules:
  - matches: [{path: {type: PathPrefix, value: /api}, method: POST}]
    backendRefs: [{name: v1, port: 80}]
  - matches: [{path: {type: PathPrefix, value: /}}]
    backendRefs: [{name: v1, port: 80, weight: 70}, {name: v2, port: 80, weight: 30}]
";
    let (_dir, rauta) = serve_docs_with(
        &[
            &service_on("v1", &[v1.port()]),
            &service_on("v2", &[v2.port()]),
            &gateway,
            route,
        ],
        &["--shards", "1"],
    );
    let _traffic = Traffic::start(
        rauta.addr(),
        1,
        &[("gw.example", "/shop")],
        Duration::from_millis(10),
    );
    let browser = open(&rauta);
    let deadline = Instant::now() + SHOWN;
    let shown = loop {
        let shown = rows(&browser, ROUTE_ROWS);
        let shares_with_traffic = shown
            .iter()
            .filter(|r| {
                r["type"]
                    .as_str()
                    .is_some_and(|t| t.contains("weighted share"))
                    && r["rps"].as_f64() > Some(0.0)
            })
            .count();
        if shares_with_traffic == 2 {
            break shown;
        }
        assert!(
            Instant::now() < deadline,
            "both weighted shares with traffic: {shown:?}\n{}",
            rauta.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    let api = row(&shown, "host", "gw.example", "path", "/api").expect("the /api rule");
    assert_eq!(api["ingress"], "HTTPRoute web/shop", "{api}");
    assert!(
        api["type"]
            .as_str()
            .is_some_and(|t| t.contains(" condition")),
        "{api}"
    );
    let backends: Vec<&str> = shown
        .iter()
        .filter(|r| {
            r["type"]
                .as_str()
                .is_some_and(|t| t.contains("weighted share"))
        })
        .filter_map(|r| r["backend"].as_str())
        .collect();
    assert!(
        backends.contains(&"web/v1:80") && backends.contains(&"web/v2:80"),
        "{backends:?}"
    );
    // The filter reads the conditions too.
    browser.type_into("#route-filter", "post");
    browser.wait_for(
        "only the POST rule",
        SHOWN,
        "return document.querySelectorAll('#routes tbody tr').length === 1 && \
         document.querySelector('#routes tbody td.path').textContent === '/api'",
        &[],
    );
}

/// The Kubernetes API section: role, and objects per resource.
const KUBE_ROWS: &str = r#"
return Array.from(document.querySelectorAll('#kube-resources tbody tr')).map(tr => {
  const td = tr.querySelectorAll('td');
  return {resource: td[0].textContent, objects: Number(td[1].textContent),
          errors: Number(td[2].textContent)};
});"#;

#[test]
fn the_kubernetes_api_source_shows_its_role_objects_and_watch_errors() {
    require!(Need::tool("chromium"), Need::tool("chromedriver"));
    let api = rauta_testkit::fake_api::FakeApi::start();
    let echo = Backend::start("echo");
    api.apply_yaml(
        "apiVersion: networking.k8s.io/v1\nkind: IngressClass\nmetadata: {name: rauta}\nspec: {controller: rauta.io/ingress-controller}\n",
    );
    api.apply_yaml(&format!(
        "apiVersion: v1\nkind: Service\nmetadata: {{name: echo, namespace: web}}\nspec: {{ports: [{{name: http, port: 80, targetPort: {}}}]}}\n",
        echo.port()
    ));
    api.apply_yaml(
        "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {name: echo, namespace: web}\n\
         spec: {ingressClassName: rauta, rules: [{host: kube.example.com, http: {paths: [{path: /, pathType: Prefix, backend: {service: {name: echo, port: {name: http}}}}]}}]}\n",
    );
    let rauta = Rauta::builder(crate::common::BIN)
        .kubernetes(api.kubeconfig("kubeconfig"))
        .args(["--shards", "1", "--lease-namespace", "rauta-system"])
        .env("POD_NAME", "rauta-page-pod")
        .start();
    let browser = open(&rauta);
    browser.wait_for(
        "the leader role shown",
        SHOWN,
        "return !document.getElementById('kubernetes').hidden && document.getElementById('kube-summary').textContent.startsWith('leader')",
        &[],
    );
    let kube = rows(&browser, KUBE_ROWS);
    let ingresses = kube
        .iter()
        .find(|r| r["resource"] == "ingresses")
        .expect("ingresses row");
    assert_eq!(ingresses["objects"], 1, "{kube:?}");

    // A failing list shows as watch errors on its resource.
    api.fail_when(|r| (r.path.ends_with("/services") && r.method == "GET").then_some(500));
    api.drop_connections();
    browser.wait_for(
        "watch errors on services",
        SHOWN,
        "return Array.from(document.querySelectorAll('#kube-resources tbody tr')).some(tr => tr.cells[0].textContent === 'services' && Number(tr.cells[2].textContent) > 0)",
        &[],
    );
    api.clear_failures();
}

/// A TCP echo backend: every byte read is written back.
fn tcp_echo() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind the echo backend");
    let port = listener.local_addr().expect("local addr").port();
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let mut conn = conn;
                let mut buf = [0u8; 4096];
                loop {
                    match std::io::Read::read(&mut conn, &mut buf) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => {
                            if std::io::Write::write_all(&mut conn, &buf[..n]).is_err() {
                                return;
                            }
                        }
                    }
                }
            });
        }
    });
    port
}

/// The TCP service's row on the page: its cells' text by class.
const L4_ROW: &str = r#"
const tr = document.querySelector(`#l4 tbody tr[data-service="${arguments[0]}"]`);
if (!tr) return null;
const td = c => tr.querySelector('td.' + c).textContent;
return {
  backend: td('backend'), source: td('source'), state: td('state'),
  active: Number(td('active')), connections: Number(td('connections')),
  bytes_in: Number(tr.querySelector('td.bytes-in').dataset.value),
  bytes_out: Number(tr.querySelector('td.bytes-out').dataset.value),
  connect_failures: Number(td('connect-failures')),
};"#;

#[test]
fn a_tcp_service_row_shows_its_connections_and_bytes_moving() {
    require!(Need::tool("chromium"), Need::tool("chromedriver"));
    let _one = ONE_BROWSER.lock().unwrap_or_else(|e| e.into_inner());
    let echo = tcp_echo();
    let port = free_port();
    let map = format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: tcp-services\n  namespace: web\ndata:\n  \"{port}\": \"web/db:80\"\n"
    );
    let (_dir, rauta) = serve_docs_with(
        &[&service_on("db", &[echo]), &map],
        &[
            "--shards",
            "2",
            "--tcp-services-configmap",
            "web/tcp-services",
        ],
    );
    let browser = open(&rauta);
    let service = format!("tcp/{port}");
    let row = browser.wait_for("the TCP service's row", SHOWN, L4_ROW, &[json!(service)]);
    assert_eq!(row["state"], "listening", "{row}");
    assert_eq!(row["connections"], 0, "{row}");
    assert_eq!(row["active"], 0, "{row}");
    assert!(
        row["backend"]
            .as_str()
            .is_some_and(|b| b.starts_with("web/db")),
        "{row}"
    );
    assert!(
        row["source"]
            .as_str()
            .is_some_and(|s| s.contains("tcp-services")),
        "{row}"
    );

    // One connection held open: active 1, and its bytes counted once it closes.
    let mut held = None;
    for _ in 0..100 {
        if let Ok(s) = std::net::TcpStream::connect(("127.0.0.1", port)) {
            held = Some(s);
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut held = held.expect("the TCP service accepts");
    held.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    std::io::Write::write_all(&mut held, b"hello").expect("send");
    let mut back = [0u8; 5];
    std::io::Read::read_exact(&mut held, &mut back).expect("echo");
    assert_eq!(&back, b"hello");
    let row = browser.wait_for(
        "one active connection on the page",
        SHOWN,
        &l4_row_when("r.active === 1 && r.connections === 1"),
        &[json!(service)],
    );
    assert_eq!(row["connect_failures"], 0, "{row}");
    drop(held);
    // A second connection, closed at once: the count moves on, nothing
    // stays active, and the first one's bytes are counted both ways.
    let mut second = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    second
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    std::io::Write::write_all(&mut second, b"again").expect("send");
    std::io::Read::read_exact(&mut second, &mut back).expect("echo");
    drop(second);
    let row = browser.wait_for(
        "two connections, none active, bytes counted",
        SHOWN,
        &l4_row_when(
            "r.active === 0 && r.connections === 2 && r.bytes_in >= 10 && r.bytes_out >= 10",
        ),
        &[json!(service)],
    );
    assert_eq!(row["bytes_in"], 10, "{row}");
    assert_eq!(row["bytes_out"], 10, "{row}");
    // /status.json says the same.
    let status: Value =
        serde_json::from_slice(&rauta.admin_get("/status.json").expect("status").body)
            .expect("JSON");
    let l4 = &status["l4_services"][0];
    assert_eq!(l4["service"], service.as_str(), "{status}");
    assert_eq!(l4["connections"], 2, "{status}");
    assert_eq!(l4["port"], port, "{status}");
    assert_eq!(l4["protocol"], "tcp", "{status}");
    assert_eq!(status["passthrough"], json!([]), "{status}");
}

/// [`L4_ROW`] once `condition` holds of it (`r`), else null.
fn l4_row_when(condition: &str) -> String {
    format!("const r = (() => {{ {L4_ROW} }})(); return r && ({condition}) ? r : null;")
}
