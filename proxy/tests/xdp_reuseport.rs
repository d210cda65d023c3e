//! `select_by_cpu`: a client pinned to each CPU in turn is accepted by the
//! shard of that CPU (per-shard accept counters on /metrics); a CPU
//! without a shard falls back to the kernel's hash. Needs root and two
//! CPUs; skips with a printed reason elsewhere.

mod xdp_util;

use rauta_testkit::{backend_for, Backend, ManifestDir, Rauta};
use std::time::Duration;
use xdp_util::{metric, pin_to};

/// Connections opened from each CPU.
const PER_CPU: usize = 8;

fn start(dir: &ManifestDir, extra: &[&str]) -> Rauta {
    Rauta::start(env!("CARGO_BIN_EXE_rauta"), dir.path(), extra)
}

fn setup() -> (Backend, ManifestDir) {
    let backend = Backend::start("steered");
    let dir = ManifestDir::new();
    dir.write("ingress.yaml", &xdp_util::catch_all("default", "steered"));
    dir.write(
        "backend.yaml",
        &backend_for("default", "steered", "http", &[&backend]),
    );
    (backend, dir)
}

/// `n` requests on fresh connections from a thread pinned to `cpu`.
fn requests_from(cpu: usize, rauta: &Rauta, n: usize) {
    let addr = rauta.addr();
    std::thread::spawn(move || {
        pin_to(cpu);
        for i in 0..n {
            let r = rauta_testkit::get(addr, "steer.test", "/")
                .unwrap_or_else(|e| panic!("request {i} from CPU {cpu}: {e}"));
            assert_eq!(r.status, 200, "request {i} from CPU {cpu}");
        }
    })
    .join()
    .unwrap_or_else(|e| std::panic::resume_unwind(e));
}

fn scrape(rauta: &Rauta) -> String {
    let r = rauta.admin_get("/metrics").expect("GET /metrics");
    assert_eq!(r.status, 200);
    r.text()
}

fn accepted(body: &str, shard: usize) -> f64 {
    metric(
        body,
        "rauta_accepted_connections_total",
        &[("shard", &shard.to_string())],
    )
}

#[test]
fn xdp_reuseport_steers_each_cpu_to_its_shard() {
    if xdp_util::skip("xdp_reuseport_steers_each_cpu_to_its_shard") {
        return;
    }
    let cpus = xdp_util::allowed_cpus();
    if cpus.len() < 2 {
        eprintln!("SKIPPED xdp_reuseport_steers_each_cpu_to_its_shard: needs 2 CPUs, has {cpus:?}");
        return;
    }
    let cpus = &cpus[..2];
    let (_backend, dir) = setup();
    let list = format!("{},{}", cpus[0], cpus[1]);
    let rauta = start(&dir, &["--cpus", &list, "--xdp", "required"]);
    let body = scrape(&rauta);
    assert_eq!(
        metric(
            &body,
            "rauta_ebpf_attached",
            &[("program", "select_by_cpu"), ("target", "reuseport")]
        ),
        1.0,
        "select_by_cpu attached:\n{}",
        rauta.log()
    );
    // Shard i runs on cpus[i].
    for (shard, &cpu) in cpus.iter().enumerate() {
        let before = scrape(&rauta);
        requests_from(cpu, &rauta, PER_CPU);
        let after = scrape(&rauta);
        for other in 0..cpus.len() {
            let delta = accepted(&after, other) - accepted(&before, other);
            let want = if other == shard { PER_CPU as f64 } else { 0.0 };
            assert_eq!(
                delta, want,
                "client on CPU {cpu}: shard {other} accepted {delta} of {PER_CPU}"
            );
        }
        let hits = metric(
            &after,
            "rauta_reuseport_selections_total",
            &[("result", "hit")],
        ) - metric(
            &before,
            "rauta_reuseport_selections_total",
            &[("result", "hit")],
        );
        assert_eq!(hits, PER_CPU as f64, "steering hits from CPU {cpu}");
    }
    let body = scrape(&rauta);
    assert_eq!(
        metric(
            &body,
            "rauta_reuseport_selections_total",
            &[("result", "fallback")]
        ),
        0.0
    );
}

#[test]
fn xdp_reuseport_cpu_without_shard_falls_back_to_hash() {
    if xdp_util::skip("xdp_reuseport_cpu_without_shard_falls_back_to_hash") {
        return;
    }
    let cpus = xdp_util::allowed_cpus();
    if cpus.len() < 2 {
        eprintln!("SKIPPED xdp_reuseport_cpu_without_shard_falls_back_to_hash: needs 2 CPUs, has {cpus:?}");
        return;
    }
    let (_backend, dir) = setup();
    // One shard, on the second CPU; the client runs on the first. The
    // program's debug log (aya-log) is forwarded to rauta's own log.
    let rauta = start(
        &dir,
        &[
            "--cpus",
            &cpus[1].to_string(),
            "--xdp",
            "required",
            "--log-level",
            "info,rauta::ebpf=debug",
        ],
    );
    requests_from(cpus[0], &rauta, PER_CPU);
    requests_from(cpus[1], &rauta, PER_CPU);
    let body = scrape(&rauta);
    assert_eq!(accepted(&body, 0), 2.0 * PER_CPU as f64);
    assert_eq!(
        metric(
            &body,
            "rauta_reuseport_selections_total",
            &[("result", "fallback")]
        ),
        PER_CPU as f64,
        "SYNs from the CPU without a shard"
    );
    assert_eq!(
        metric(
            &body,
            "rauta_reuseport_selections_total",
            &[("result", "hit")]
        ),
        PER_CPU as f64,
        "SYNs from the shard's CPU"
    );
    let line = format!("reuseport: no listener for CPU {}", cpus[0]);
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while !rauta.log().contains(&line) {
        assert!(
            std::time::Instant::now() < deadline,
            "the eBPF log line {line:?} did not reach rauta's log:\n{}",
            rauta.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(rauta
        .log()
        .lines()
        .any(|l| l.contains(&line) && l.contains("rauta::ebpf")));
}

#[test]
fn xdp_off_loads_nothing() {
    let (_backend, dir) = setup();
    let rauta = start(&dir, &["--xdp", "off"]);
    requests_from(xdp_util::allowed_cpus()[0], &rauta, 2);
    let body = scrape(&rauta);
    assert!(!body.contains("rauta_reuseport_selections_total"), "{body}");
    assert!(!body.contains("rauta_ebpf_attached"), "{body}");
    assert!(
        rauta.log().contains("eBPF off (--xdp off)"),
        "{}",
        rauta.log()
    );
    // Give the log a moment: nothing about eBPF failing may appear.
    std::thread::sleep(Duration::from_millis(50));
    assert!(!rauta.log().contains("eBPF off for"), "{}", rauta.log());
}
