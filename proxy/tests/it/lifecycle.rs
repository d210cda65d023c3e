//! The process over time: readiness, live reloads under traffic, bad
//! manifests, graceful drain, `rauta check`, CPU selection.

use crate::common::{service, start};
use rauta_testkit::manifests::join;
use rauta_testkit::{eventually, rauta_class};
use rauta_testkit::{ingress, Conn, ManifestDir, Rauta};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn route_to(svc: &str) -> String {
    ingress(
        "live",
        "site",
        Some("rauta"),
        &[],
        &format!("- host: site.example\n  http:\n    paths:\n    - path: /\n      pathType: Prefix\n      backend:\n        service:\n          name: {svc}\n          port:\n            name: http\n"),
    )
}

#[test]
fn manifest_changes_apply_under_load_without_a_failed_request() {
    let (blue, blue_svc) = service("live", "blue");
    let (green, green_svc) = service("live", "green");
    let dir = ManifestDir::new();
    dir.write(
        "services.yaml",
        &join(&[&rauta_class(), &blue_svc, &green_svc]),
    );
    dir.write("ingress.yaml", &route_to("blue"));
    let rauta = start(&dir, &[]);
    let stop = Arc::new(AtomicBool::new(false));
    let (ok, failed) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let addr = rauta.addr();
    let clients: Vec<_> = (0..4)
        .map(|c| {
            let (stop, ok, failed) = (stop.clone(), ok.clone(), failed.clone());
            std::thread::spawn(move || {
                let mut errors = Vec::new();
                let mut conn = Conn::open(addr).expect("connect");
                while !stop.load(Ordering::Relaxed) {
                    // Half the clients keep one connection, half open one per request.
                    let result = if c % 2 == 0 {
                        conn.request("POST", "site.example", "/", &[], b"payload")
                    } else {
                        rauta_testkit::get(addr, "site.example", "/")
                    };
                    match result {
                        Ok(r) if r.status == 200 => ok.fetch_add(1, Ordering::Relaxed),
                        Ok(r) => {
                            errors.push(format!("status {}: {}", r.status, r.text()));
                            failed.fetch_add(1, Ordering::Relaxed)
                        }
                        Err(e) => {
                            errors.push(e.to_string());
                            failed.fetch_add(1, Ordering::Relaxed)
                        }
                    };
                }
                errors
            })
        })
        .collect();
    let mut generation = rauta.generation().expect("ready");
    for i in 0..10 {
        std::thread::sleep(Duration::from_millis(100)); // pacing: traffic between reloads
        dir.write(
            "ingress.yaml",
            &route_to(if i % 2 == 0 { "green" } else { "blue" }),
        );
        generation = rauta.wait_generation(generation + 1);
    }
    std::thread::sleep(Duration::from_millis(100)); // pacing: traffic after the last reload
    stop.store(true, Ordering::Relaxed);
    let errors: Vec<String> = clients
        .into_iter()
        .flat_map(|c| c.join().expect("client"))
        .collect();
    assert!(
        errors.is_empty(),
        "{} failed requests, e.g. {:?}",
        errors.len(),
        &errors[..errors.len().min(5)]
    );
    assert!(
        ok.load(Ordering::Relaxed) > 100,
        "too little traffic to mean anything"
    );
    assert!(
        blue.requests() > 0 && green.requests() > 0,
        "both versions served"
    );
    assert_eq!(failed.load(Ordering::Relaxed), 0);
    // The last write routed to blue.
    assert_eq!(rauta.who("site.example", "/"), "blue");
}

/// Ingress live/`name` for `host` to Service `svc`.
fn host_to(name: &str, host: &str, svc: &str) -> String {
    ingress(
        "live",
        name,
        Some("rauta"),
        &[],
        &format!("- host: {host:?}\n  http:\n    paths:\n    - path: /\n      pathType: Prefix\n      backend:\n        service:\n          name: {svc}\n          port:\n            name: http\n"),
    )
}

#[test]
fn an_invalid_ingress_is_left_out_and_a_broken_file_keeps_the_last_good_table() {
    let (_blue, blue_svc) = service("live", "blue");
    let dir = ManifestDir::new();
    dir.write(
        "base.yaml",
        &join(&[&rauta_class(), &blue_svc, &route_to("blue")]),
    );
    let rauta = start(&dir, &[]);
    let generation = rauta.generation().expect("ready");

    // One good and one invalid Ingress (a host with a port), as
    // `kubectl apply -f` would take the one and refuse the other.
    let good = host_to("good", "good.example", "blue");
    let bad = host_to("bad-host", "bad.example:8080", "blue");
    dir.write("mixed.yaml", &join(&[&good, &bad]));
    let generation = rauta.wait_generation(generation + 1);
    assert_eq!(
        rauta.who("good.example", "/"),
        "blue",
        "the good one is served"
    );
    assert_eq!(
        rauta.who("bad.example", "/"),
        "404",
        "the invalid one is left out"
    );
    assert_eq!(rauta.who("site.example", "/"), "blue");
    let log = rauta.log();
    let file = dir.path().join("mixed.yaml");
    let expected = format!(
        "error: {}: Ingress live/bad-host: host \"bad.example:8080\" must not contain a port (this object is left out",
        file.display()
    );
    assert!(log.contains(&expected), "missing {expected:?} in:\n{log}");
    let s = rauta.scrape();
    assert_eq!(
        s.value("rauta_config_problems", &[("severity", "error")]),
        1.0
    );
    assert_eq!(s.value("rauta_config_reloads_failed_total", &[]), 0.0);

    // A file that does not parse: its objects are unknown, so the set is
    // rejected whole, and a change made meanwhile waits too.
    dir.write(
        "broken.yaml",
        "apiVersion: v1\nkind: Service\nmetadata: [unclosed\n",
    );
    let rejections = |rauta: &Rauta| rauta.log().matches("manifest set rejected").count();
    eventually("the rejection logged", || rejections(&rauta) >= 1);
    assert!(rauta.log().contains("broken.yaml"), "{}", rauta.log());
    dir.write("mixed.yaml", &bad);
    eventually("the second rejection logged", || rejections(&rauta) >= 2);
    assert_eq!(
        rauta.generation(),
        Some(generation),
        "no new table from a rejected set"
    );
    assert_eq!(
        rauta.who("good.example", "/"),
        "blue",
        "the last good table serves"
    );
    let s = rauta.scrape();
    assert!(s.value("rauta_config_problems", &[("severity", "fatal")]) >= 1.0);
    assert!(s.value("rauta_config_reloads_failed_total", &[]) >= 2.0);

    dir.remove("broken.yaml");
    rauta.wait_generation(generation + 1);
    assert_eq!(rauta.who("good.example", "/"), "404");
    assert_eq!(rauta.who("site.example", "/"), "blue");
}

#[test]
fn not_ready_until_a_table_is_live() {
    let dir = ManifestDir::new();
    dir.write(
        "broken.yaml",
        "kind: Ingress\napiVersion: networking.k8s.io/v1\nmetadata: {name: [x]}\n",
    );
    let rauta = Rauta::spawn(env!("CARGO_BIN_EXE_rauta"), dir.path(), &[]).expect("spawn");
    eventually("healthz answers", || {
        rauta.admin_get("/healthz").is_ok_and(|r| r.status == 200)
    });
    let ready = rauta.admin_get("/readyz").expect("readyz");
    assert_eq!(ready.status, 503, "{}", ready.text());
    assert_eq!(rauta.admin_get("/nope").expect("404").status, 404);
    dir.write("broken.yaml", &rauta_class());
    eventually("ready after a good set", || {
        rauta.admin_get("/readyz").is_ok_and(|r| r.status == 200)
    });
}

/// `/routes` and `/status.json` of the moment `/readyz` first answers 200
/// with `generation >= min`, polled with no pause.
fn first_ready_views(rauta: &Rauta, min: u64) -> (u64, serde_json::Value, serde_json::Value) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        assert!(
            Instant::now() < deadline,
            "never ready; log:\n{}",
            rauta.log()
        );
        let Ok(ready) = rauta.admin_get("/readyz") else {
            continue;
        };
        let generation = ready
            .text()
            .trim()
            .strip_prefix("ready generation=")
            .and_then(|g| g.parse::<u64>().ok());
        let Some(generation) = generation.filter(|g| *g >= min) else {
            continue;
        };
        let json = |path: &str| -> serde_json::Value {
            let r = rauta.admin_get(path).expect(path);
            serde_json::from_slice(&r.body).expect("JSON")
        };
        return (generation, json("/routes"), json("/status.json"));
    }
}

#[test]
fn ready_means_the_admin_views_have_the_table_too() {
    let (_blue, blue_svc) = service("live", "blue");
    let (_green, green_svc) = service("live", "green");
    // Enough rules that publishing a table takes a while after the shards
    // could have it: a view updated only then would lag them visibly.
    let paths: String = (0..4000)
        .map(|i| format!("    - path: /p{i}\n      pathType: Prefix\n      backend:\n        service:\n          name: blue\n          port:\n            name: http\n"))
        .collect();
    let bulk = ingress(
        "live",
        "bulk",
        Some("rauta"),
        &[],
        &format!("- host: bulk.example\n  http:\n    paths:\n{paths}"),
    );
    let dir = ManifestDir::new();
    dir.write(
        "services.yaml",
        &join(&[&rauta_class(), &blue_svc, &green_svc, &bulk]),
    );
    dir.write("ingress.yaml", &route_to("blue"));
    let rauta = Rauta::spawn(env!("CARGO_BIN_EXE_rauta"), dir.path(), &[]).expect("spawn");
    let site = |routes: &serde_json::Value| -> Option<String> {
        let rules = routes["rules"].as_array()?;
        let rule = rules.iter().find(|r| r["host"] == "site.example")?;
        rule["backend"].as_str().map(str::to_string)
    };
    let (generation, routes, status) = first_ready_views(&rauta, 1);
    let shown = |v: &serde_json::Value| v["generation"].as_u64().unwrap_or(0);
    assert!(
        shown(&routes) >= generation,
        "/routes {} < {generation}",
        shown(&routes)
    );
    assert_eq!(site(&routes).as_deref(), Some("live/blue:http"));
    assert!(
        shown(&status) >= generation,
        "/status.json {} < {generation}",
        shown(&status)
    );
    let table = status["table"]["routes"].as_array().map_or(0, Vec::len);
    assert!(table > 4000, "{table} routes in /status.json");
    // A reload: the first /readyz naming the new generation comes with
    // views that have it.
    dir.write("ingress.yaml", &route_to("green"));
    let (generation, routes, status) = first_ready_views(&rauta, generation + 1);
    assert!(
        shown(&routes) >= generation,
        "/routes {} < {generation}",
        shown(&routes)
    );
    assert_eq!(site(&routes).as_deref(), Some("live/green:http"));
    assert!(
        shown(&status) >= generation,
        "/status.json {} < {generation}",
        shown(&status)
    );
}

#[test]
fn sigterm_drains_in_flight_requests_then_exits_zero() {
    let (slow, svc) = service("live", "slow");
    let dir = ManifestDir::new();
    dir.write(
        "all.yaml",
        &join(&[&rauta_class(), &svc, &route_to("slow")]),
    );
    // A drain timeout far above the in-flight request's 1.5 s, so that
    // "exited after the request" and "waited out the timeout" stay apart
    // even on a loaded machine.
    let mut rauta = start(&dir, &["--drain-timeout", "60s"]);
    let addr = rauta.addr();
    let mut idle = Conn::open(addr).expect("connect");
    assert_eq!(
        idle.request("GET", "site.example", "/", &[], b"")
            .expect("served")
            .status,
        200
    );
    let in_flight =
        std::thread::spawn(move || rauta_testkit::get(addr, "site.example", "/slow?ms=1500"));
    // The idle connection's request was the first; the slow one is in
    // flight once the backend has it.
    eventually("the slow request at the backend", || slow.requests() == 2);
    let started = Instant::now();
    rauta.terminate();
    assert!(
        idle.is_closed_by_peer(Duration::from_secs(2)),
        "idle keep-alive connections are closed at once"
    );
    let r = in_flight
        .join()
        .expect("thread")
        .expect("the in-flight request completes");
    assert_eq!(r.status, 200);
    let status = rauta.wait_exit(Duration::from_secs(30)).expect("exits");
    assert!(
        status.success(),
        "exit status {status:?}; log:\n{}",
        rauta.log()
    );
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "drain waited for nothing: {:?}",
        started.elapsed()
    );
    assert!(
        std::net::TcpStream::connect(addr).is_err(),
        "nothing listens after exit"
    );
}

#[test]
fn check_prints_the_table_and_fails_on_errors() {
    let (_b, svc) = service("live", "blue");
    let dir = ManifestDir::new();
    dir.write(
        "all.yaml",
        &join(&[&rauta_class(), &svc, &route_to("blue")]),
    );
    let check = |dir: &ManifestDir| {
        let out = Command::new(env!("CARGO_BIN_EXE_rauta"))
            .args(["check", "--manifests"])
            .arg(dir.path())
            .output()
            .expect("run");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    let (ok, text) = check(&dir);
    assert!(ok, "{text}");
    assert!(
        text.contains("site.example")
            && text.contains("live/blue:http")
            && text.contains("127.0.0.1:"),
        "{text}"
    );
    dir.write(
        "bad.yaml",
        "kind: Service\napiVersion: v1\nmetadata:\n  name: x\nspec:\n  ports: 7\n",
    );
    let (ok, text) = check(&dir);
    assert!(!ok);
    assert!(
        text.contains("bad.yaml") && text.contains("Service default/x"),
        "{text}"
    );
}

#[test]
fn cpus_outside_the_allowed_set_are_refused() {
    let dir = ManifestDir::new();
    dir.write("class.yaml", &rauta_class());
    let out = Command::new(env!("CARGO_BIN_EXE_rauta"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--admin",
            "127.0.0.1:0",
            "--cpus",
            "4095",
            "--manifests",
        ])
        .arg(dir.path())
        .output()
        .expect("run");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("outside the allowed set"));
    // One shard on the CPU asked for.
    let rauta = start(&dir, &["--cpus", "1", "--shards", "1"]);
    assert!(rauta.log().contains("cpus=[1]"), "{}", rauta.log());
}

/// Voluntary context switches of rauta's shard threads, summed.
fn shard_wakeups(pid: u32) -> u64 {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).expect("rauta's threads");
    let mut total = 0;
    for task in tasks.flatten() {
        let path = task.path();
        let comm = std::fs::read_to_string(path.join("comm")).unwrap_or_default();
        if !comm.starts_with("rauta-shard") {
            continue;
        }
        let status = std::fs::read_to_string(path.join("status")).unwrap_or_default();
        total += status
            .lines()
            .find_map(|l| l.strip_prefix("voluntary_ctxt_switches:"))
            .and_then(|v| v.trim().parse::<u64>().ok())
            .unwrap_or(0);
    }
    total
}

#[test]
fn idle_shards_sleep_and_a_swap_still_reaches_them_at_once() {
    let (_blue, blue_svc) = service("live", "blue");
    let (_green, green_svc) = service("live", "green");
    let dir = ManifestDir::new();
    dir.write(
        "services.yaml",
        &join(&[&rauta_class(), &blue_svc, &green_svc]),
    );
    dir.write("route.yaml", &route_to("blue"));
    let rauta = Rauta::start(crate::common::BIN, dir.path(), &["--shards", "2"]);
    let mut conn = Conn::open(rauta.addr()).expect("connect");
    assert_eq!(
        conn.request("GET", "site.example", "/", &[], b"")
            .expect("answer")
            .header("x-backend"),
        Some("blue")
    );
    drop(conn);
    // Idle: the shards used to wake every 10 ms (about 300 times in 3 s);
    // now only their once-a-second chores wake them.
    std::thread::sleep(Duration::from_millis(500));
    let before = shard_wakeups(rauta.pid());
    std::thread::sleep(Duration::from_secs(3));
    let woke = shard_wakeups(rauta.pid()) - before;
    assert!(woke <= 30, "2 idle shards woke {woke} times in 3 s");
    // A swap rings the doorbells: it is live within the reload debounce,
    // not after a poll interval.
    dir.write("route.yaml", &route_to("green"));
    eventually("the swap to green", || {
        Conn::open(rauta.addr())
            .and_then(|mut c| c.request("GET", "site.example", "/", &[], b""))
            .is_ok_and(|r| r.header("x-backend") == Some("green"))
    });
}
