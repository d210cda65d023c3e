//! `select_by_cpu`: a client pinned to each CPU in turn is accepted by the
//! shard of that CPU (per-shard accept counters on /metrics); a CPU
//! without a shard falls back to the kernel's hash. Needs root and two
//! CPUs (`Need::EbpfPrivilege`, `Need::Cpus(2)`).

use crate::common::BIN;
use crate::xdp_util::{ebpf_object, pin_to};
use rauta_testkit::{backend_for, Backend, ManifestDir, Rauta};
use rauta_testkit::{catch_all, eventually, require, Metrics, Need};

/// Connections opened from each CPU.
const PER_CPU: usize = 8;

fn start(dir: &ManifestDir, extra: &[&str]) -> Rauta {
    Rauta::start(BIN, dir.path(), extra)
}

fn setup() -> (Backend, ManifestDir) {
    let backend = Backend::start("steered");
    let dir = ManifestDir::new();
    dir.write("ingress.yaml", &catch_all("default", "steered"));
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

fn accepted(m: &Metrics, shard: usize) -> f64 {
    m.value(
        "rauta_accepted_connections_total",
        &[("shard", &shard.to_string())],
    )
}

#[test]
fn xdp_reuseport_steers_each_cpu_to_its_shard() {
    require!(Need::EbpfPrivilege, ebpf_object(), Need::Cpus(2));
    let cpus = crate::xdp_util::allowed_cpus();
    let cpus = &cpus[..2];
    let (_backend, dir) = setup();
    let list = format!("{},{}", cpus[0], cpus[1]);
    let rauta = start(&dir, &["--cpus", &list, "--xdp", "required"]);
    let body = rauta.scrape();
    assert_eq!(
        body.value(
            "rauta_ebpf_attached",
            &[("program", "select_by_cpu"), ("target", "reuseport")]
        ),
        1.0,
        "select_by_cpu attached:\n{}",
        rauta.log()
    );
    // Shard i runs on cpus[i].
    for (shard, &cpu) in cpus.iter().enumerate() {
        let before = rauta.scrape();
        requests_from(cpu, &rauta, PER_CPU);
        let after = rauta.scrape();
        for other in 0..cpus.len() {
            let delta = accepted(&after, other) - accepted(&before, other);
            let want = if other == shard { PER_CPU as f64 } else { 0.0 };
            assert_eq!(
                delta, want,
                "client on CPU {cpu}: shard {other} accepted {delta} of {PER_CPU}"
            );
        }
        let hits = after.value("rauta_reuseport_selections_total", &[("result", "hit")])
            - before.value("rauta_reuseport_selections_total", &[("result", "hit")]);
        assert_eq!(hits, PER_CPU as f64, "steering hits from CPU {cpu}");
    }
    let body = rauta.scrape();
    assert_eq!(
        body.value(
            "rauta_reuseport_selections_total",
            &[("result", "fallback")]
        ),
        0.0
    );
}

#[test]
fn xdp_reuseport_cpu_without_shard_falls_back_to_hash() {
    require!(Need::EbpfPrivilege, ebpf_object(), Need::Cpus(2));
    let cpus = crate::xdp_util::allowed_cpus();
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
    let body = rauta.scrape();
    assert_eq!(accepted(&body, 0), 2.0 * PER_CPU as f64);
    assert_eq!(
        body.value(
            "rauta_reuseport_selections_total",
            &[("result", "fallback")]
        ),
        PER_CPU as f64,
        "SYNs from the CPU without a shard"
    );
    assert_eq!(
        body.value("rauta_reuseport_selections_total", &[("result", "hit")]),
        PER_CPU as f64,
        "SYNs from the shard's CPU"
    );
    let line = format!("reuseport: no listener for CPU {}", cpus[0]);
    eventually(
        &format!("the eBPF log line {line:?} in rauta's log"),
        || rauta.log().contains(&line),
    );
    assert!(rauta
        .log()
        .lines()
        .any(|l| l.contains(&line) && l.contains("rauta::ebpf")));
}

#[test]
fn xdp_off_loads_nothing() {
    let (_backend, dir) = setup();
    let rauta = start(&dir, &["--xdp", "off"]);
    requests_from(crate::xdp_util::allowed_cpus()[0], &rauta, 2);
    let m = rauta.scrape();
    assert!(
        !m.has("rauta_reuseport_selections_total", &[]),
        "{}",
        m.text()
    );
    assert!(!m.has("rauta_ebpf_attached", &[]), "{}", m.text());
    // The line saying eBPF is off is written where a failure to load it
    // would be, before rauta was ready: with it in the log, no such
    // failure can follow.
    assert!(
        rauta.log().contains("eBPF off (--xdp off)"),
        "{}",
        rauta.log()
    );
    assert!(!rauta.log().contains("eBPF off for"), "{}", rauta.log());
}
