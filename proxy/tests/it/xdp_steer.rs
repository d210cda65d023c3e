//! `--xdp-steer cpumap`: `xdp_ingress` redirects each flow to the CPU of
//! the shard its 4-tuple hashes to. End to end over a veth pair (the client
//! pinned to one CPU, so that, as with a one-queue NIC, every packet arrives
//! on that CPU): with steering both shards accept a fair share and every
//! request succeeds; without it the spread is recorded. Also the steering
//! table's rewrite on crafted packets (`BPF_PROG_TEST_RUN`). Needs root,
//! `ip` and `ethtool`; the benchmark (`#[ignore]`) writes its figures to
//! stdout.

use crate::common::BIN;
use crate::xdp_util::{allowed_cpus, ebpf_object, machine_busy_jiffies, pin_to};
use etherparse::PacketBuilder;
use rauta_proxy::xdp::Object;
use rauta_shared::ebpf::{counter as c, XdpConfig};
use rauta_testkit::netns::{InNs, Netns, VethPair};
use rauta_testkit::{backend_for, catch_all, require, Backend, ManifestDir, Metrics, Need, Rauta};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

const NODE_IP: &str = "10.79.0.1";
const CLIENT_IP: &str = "10.79.0.2";
const LISTEN_PORT: u16 = 8080;
const ADMIN_PORT: u16 = 9901;
const CONNECTIONS: usize = 200;

/// Two namespaces joined by a veth pair (tx checksum offload off on the
/// client side: a CPUMAP redirect loses the partial checksum of locally
/// sent packets), a backend in the node namespace and manifests routing
/// everything to it. Field order is drop order.
struct Net {
    backend: InNs<Backend>,
    dir: ManifestDir,
    veth: VethPair,
    client: Netns,
    node: Netns,
}

impl Net {
    fn new() -> Net {
        let node = Netns::new("rsn");
        let client = Netns::new("rsc");
        let veth = VethPair::new(
            &node,
            &[&format!("{NODE_IP}/24")],
            &client,
            &[&format!("{CLIENT_IP}/24")],
        );
        let backend = InNs::new(&node, || Backend::start("steer-backend"));
        let dir = ManifestDir::new();
        dir.write("ingress.yaml", &catch_all("default", "steer"));
        dir.write(
            "backend.yaml",
            &backend_for("default", "steer", "http", &[backend.get()]),
        );
        Net {
            backend,
            dir,
            veth,
            client,
            node,
        }
    }

    /// rauta in the node namespace with one shard on each of `cpus`, the
    /// XDP filter on the node's veth, and `extra` flags.
    fn rauta(&self, cpus: &[usize], extra: &[&str]) -> Rauta {
        let list = cpus
            .iter()
            .map(usize::to_string)
            .collect::<Vec<_>>()
            .join(",");
        let mut args = vec![
            "--cpus",
            &list,
            "--xdp",
            "required",
            "--xdp-iface",
            &self.veth.node_if,
        ];
        args.extend_from_slice(extra);
        Rauta::builder(BIN)
            .manifests(self.dir.path())
            .in_netns(
                self.node.name(),
                SocketAddr::from(([0, 0, 0, 0], LISTEN_PORT)),
                SocketAddr::from(([0, 0, 0, 0], ADMIN_PORT)),
            )
            .args(&args)
            .start()
    }

    /// `n` sequential `GET /` on fresh connections from a client thread
    /// pinned to `cpu` (so the veth delivers every packet on that CPU);
    /// the status of each, or the error.
    fn requests_from(&self, cpu: usize, n: usize) -> Vec<Result<u16, String>> {
        self.client.enter(move || {
            pin_to(cpu);
            let target = SocketAddr::new(NODE_IP.parse().expect("node address"), LISTEN_PORT);
            (0..n)
                .map(|_| get(target).map_err(|e| e.to_string()))
                .collect()
        })
    }

    /// Sets `rps_cpus` (a hex CPU mask; "0": off) on every RX queue of
    /// the node's veth.
    fn set_rps(&self, mask: &str) {
        let script = format!(
            "for q in /sys/class/net/{}/queues/rx-*/rps_cpus; do echo {mask} > $q; done",
            self.veth.node_if
        );
        self.node.exec(&["sh", "-c", &script]);
    }

    fn link(&self) -> String {
        let out = self
            .node
            .exec(&["ip", "-d", "link", "show", "dev", &self.veth.node_if]);
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

/// One `GET /` with `Connection: close` on a new connection; the status.
fn get(target: SocketAddr) -> std::io::Result<u16> {
    use std::io::{Read, Write};
    let mut stream = TcpStream::connect_timeout(&target, Duration::from_secs(5))?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    stream.write_all(b"GET / HTTP/1.1\r\nHost: steer.test\r\nConnection: close\r\n\r\n")?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer)?;
    rauta_testkit::status_of(&answer)
        .ok_or_else(|| std::io::Error::other(format!("no status in {answer:?}")))
}

fn accepted(m: &Metrics, shard: usize) -> f64 {
    m.value(
        "rauta_accepted_connections_total",
        &[("shard", &shard.to_string())],
    )
}

fn steering(m: &Metrics, result: &str) -> f64 {
    m.value("rauta_xdp_steering_total", &[("result", result)])
}

/// Stops `rauta` (SIGTERM) and waits, so the interface is free again.
fn stop(mut rauta: Rauta) {
    rauta.terminate();
    let status = rauta
        .wait_exit(Duration::from_secs(15))
        .unwrap_or_else(|| panic!("rauta did not stop; log:\n{}", rauta.log()));
    assert!(status.success(), "exit {status}; log:\n{}", rauta.log());
}

#[test]
fn xdp_steer_spreads_one_cpu_over_shards() {
    require!(
        Need::EbpfPrivilege,
        ebpf_object(),
        Need::Netns,
        Need::Cpus(2),
        Need::tool("ethtool")
    );
    let cpus = allowed_cpus();
    let cpus = &cpus[..2];
    let net = Net::new();

    // Without steering: recorded, not asserted (the spread follows the CPU
    // that runs the veth's NAPI, i.e. the pinned client's).
    let plain = net.rauta(cpus, &[]);
    let statuses = net.requests_from(cpus[0], CONNECTIONS);
    let ok = statuses.iter().filter(|s| matches!(s, Ok(200))).count();
    let m = plain.scrape();
    eprintln!(
        "xdp_steer: without steering, client on CPU {}: shard 0 accepted {}, shard 1 accepted {} ({ok} of {CONNECTIONS} answered 200)",
        cpus[0],
        accepted(&m, 0),
        accepted(&m, 1),
    );
    assert!(!m.has("rauta_xdp_steering_cpus", &[]));
    stop(plain);

    let steered = net.rauta(cpus, &["--xdp-steer", "cpumap"]);
    let link = net.link();
    eprintln!("xdp_steer: link with steering:\n{link}");
    assert!(
        link.contains("prog/xdp ") && !link.contains("xdpgeneric"),
        "xdp_ingress in driver mode on the veth:\n{link}"
    );
    let log = steered.log();
    assert!(log.contains("eBPF: flow steering on"), "{log}");
    let statuses = net.requests_from(cpus[0], CONNECTIONS);
    let failed: Vec<_> = statuses
        .iter()
        .enumerate()
        .filter(|(_, s)| !matches!(s, Ok(200)))
        .collect();
    assert!(
        failed.is_empty(),
        "requests that did not answer 200 (of {CONNECTIONS}): {failed:?}\n{}",
        steered.log()
    );
    assert_eq!(
        net.backend.get().requests(),
        (ok + CONNECTIONS) as u64,
        "every request reached the backend"
    );
    let m = steered.scrape();
    let body = m.text();
    let shares = [accepted(&m, 0), accepted(&m, 1)];
    eprintln!(
        "xdp_steer: with steering, client on CPU {}: shard 0 accepted {}, shard 1 accepted {}; steering {:?}",
        cpus[0],
        shares[0],
        shares[1],
        ["redirect", "local", "other_port", "not_tcp_udp", "no_cpumap_entry"]
            .map(|r| (r, steering(&m, r)))
    );
    assert_eq!(shares[0] + shares[1], CONNECTIONS as f64);
    for (shard, n) in shares.iter().enumerate() {
        assert!(
            *n >= CONNECTIONS as f64 / 4.0,
            "shard {shard} accepted {n} of {CONNECTIONS}\n{body}"
        );
    }
    assert_eq!(m.value("rauta_xdp_steering_cpus", &[]), 2.0);
    // The SYN of every connection to the other shard came from the pinned
    // client's CPU and was redirected (later packets of the flow may arrive
    // on the shard's CPU already: the client's ACKs answer segments that
    // CPU sent, in its softirq).
    let redirected = steering(&m, "redirect");
    let to_other = shares[1];
    assert!(
        redirected >= to_other,
        "{redirected} packets redirected for {to_other} connections\n{body}"
    );
    assert!(steering(&m, "local") >= shares[0], "{body}");
    assert_eq!(steering(&m, "no_cpumap_entry"), 0.0, "{body}");
    assert_eq!(
        m.value("rauta_xdp_packets_total", &[("action", "redirect")]),
        redirected
    );
    assert_eq!(
        m.value(
            "rauta_reuseport_selections_total",
            &[("result", "fallback")]
        ),
        0.0,
        "every steered SYN found a listener on its CPU\n{body}"
    );
    stop(steered);
}

#[test]
fn xdp_steer_without_interface_is_one_line_or_a_failed_start() {
    require!(Need::EbpfPrivilege, ebpf_object());
    let dir = ManifestDir::new();
    // auto: serves, with one line saying why steering is off.
    let lenient = crate::common::start(&dir, &["--xdp-steer", "cpumap"]);
    let log = lenient.log();
    let lines: Vec<&str> = log.lines().filter(|l| l.contains("eBPF off for")).collect();
    assert_eq!(lines.len(), 1, "{log}");
    assert!(
        lines[0].contains("flow steering") && lines[0].contains("--xdp-iface"),
        "{}",
        lines[0]
    );
    assert_eq!(lenient.scrape().value("rauta_xdp_steering_cpus", &[]), 0.0);
    drop(lenient);
    // required: the start fails, saying why.
    let mut strict = Rauta::builder(BIN)
        .manifests(dir.path())
        .args(["--xdp", "required", "--xdp-steer", "cpumap"])
        .spawn()
        .expect("spawn rauta");
    let status = strict
        .wait_exit(Duration::from_secs(20))
        .unwrap_or_else(|| panic!("--xdp required kept running; log:\n{}", strict.log()));
    assert!(!status.success());
    let log = strict.log();
    assert!(
        log.contains("--xdp required, but flow steering (--xdp-steer cpumap) cannot run: it needs --xdp-iface"),
        "{log}"
    );
}

const XDP_PASS: u32 = 2;
const XDP_REDIRECT: u32 = 4;
const PORT: u16 = 80;

fn packet(udp: bool, sport: u16, dport: u16) -> Vec<u8> {
    let b = PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2]).ipv4(
        [192, 0, 2, 9],
        [192, 0, 2, 1],
        64,
    );
    let mut out = Vec::new();
    if udp {
        b.udp(sport, dport).write(&mut out, b"q").expect("udp");
    } else {
        b.tcp(sport, dport, 1, 65535)
            .syn()
            .write(&mut out, &[])
            .expect("tcp");
    }
    out
}

#[test]
fn xdp_steer_table_rewrite_moves_flows() {
    require!(Need::EbpfPrivilege, ebpf_object(), Need::Cpus(2));
    let cpus = allowed_cpus();
    let (here, other) = (cpus[0] as u32, cpus[1] as u32);
    std::thread::spawn(move || {
        // BPF_PROG_TEST_RUN runs the program on the caller's CPU.
        pin_to(here as usize);
        let mut object = Object::open().expect("open");
        object.load_xdp().expect("load");
        let cfg = XdpConfig::new(0, 0, 1, 9901, PORT).with_steering(0, &[PORT]);
        // No steering configured yet: a flow to the port passes here.
        let (action, _) = object
            .test_run_xdp(&packet(false, 40000, PORT), 1)
            .expect("run");
        assert_eq!(action, XDP_PASS);
        let before = object.counters().expect("counters");
        object
            .write_steering(cfg, &[other], 64)
            .expect("steer to the other CPU");
        for sport in [40000, 40001, 50000] {
            let (action, _) = object
                .test_run_xdp(&packet(false, sport, PORT), 1)
                .expect("run");
            assert_eq!(action, XDP_REDIRECT, "TCP {sport} -> {PORT}");
        }
        let (action, _) = object
            .test_run_xdp(&packet(true, 5353, PORT), 1)
            .expect("run");
        assert_eq!(action, XDP_REDIRECT, "UDP to a steered port");
        let (action, _) = object
            .test_run_xdp(&packet(false, 40000, PORT + 1), 1)
            .expect("run");
        assert_eq!(action, XDP_PASS, "another port");

        // The shard moves here: the same flows now pass on this CPU, and
        // the other CPU's CPUMAP entry is gone.
        object.write_steering(cfg, &[here], 64).expect("steer here");
        for sport in [40000, 40001, 50000] {
            let (action, _) = object
                .test_run_xdp(&packet(false, sport, PORT), 1)
                .expect("run");
            assert_eq!(action, XDP_PASS, "TCP {sport} after the move");
        }
        let after = object.counters().expect("counters");
        let delta = |i: u32| after[i as usize] - before[i as usize];
        assert_eq!(delta(c::STEER_REDIRECT), 4);
        assert_eq!(delta(c::STEER_LOCAL), 3);
        assert_eq!(delta(c::STEER_SKIP_PORT), 1);
        assert_eq!(delta(c::STEER_NO_CPU), 0);
        assert_eq!(delta(c::ACTION_REDIRECT), 4);
    })
    .join()
    .unwrap_or_else(|e| std::panic::resume_unwind(e));
}

// ---------------------------------------------------------------- benchmark

/// Seconds each wrk run lasts.
const BENCH_SECONDS: u64 = 5;
/// Rounds per configuration (the medians are quoted).
const BENCH_ROUNDS: usize = 3;

/// One wrk run: throughput, p99, the spread of accepted connections over
/// the two shards, and CPU time.
#[derive(Clone, Debug, Default)]
struct Run {
    rps: f64,
    p99_us: f64,
    shards: [f64; 2],
    /// Whole machine busy CPU (µs) per request, from /proc/stat.
    machine_us: f64,
    /// rauta's own utime + stime (µs) per request.
    rauta_us: f64,
    /// The network kernel threads' CPU (µs) per request: `cpumap/*` (the
    /// redirected packets' stack work) and `ksoftirqd/*`.
    kthreads_us: f64,
    /// The 1-minute load average when the run started (other work on the
    /// shared machine shows here and in the whole-machine figure).
    load: f64,
    errors: u64,
}

/// utime + stime of the kernel threads `cpumap/*` and `ksoftirqd/*`, in jiffies.
fn kthreads_busy() -> u64 {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return 0;
    };
    dir.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
            comm.starts_with("cpumap/") || comm.starts_with("ksoftirqd/")
        })
        .map(process_busy)
        .sum()
}

fn load_average() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next()?.parse().ok())
        .unwrap_or(0.0)
}

/// utime + stime of `pid`, in jiffies.
fn process_busy(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command (which may hold spaces) start after ')'.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let get = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    // utime and stime are fields 14 and 15 of stat, 12 and 13 after ')'.
    get(11) + get(12)
}

/// A wrk latency like `1.23ms` in µs.
fn micros(v: &str) -> Option<f64> {
    let (num, scale) = if let Some(n) = v.strip_suffix("us") {
        (n, 1.0)
    } else if let Some(n) = v.strip_suffix("ms") {
        (n, 1e3)
    } else if let Some(n) = v.strip_suffix('s') {
        (n, 1e6)
    } else {
        (v, 1.0)
    };
    num.parse::<f64>().ok().map(|n| n * scale)
}

/// How a benchmark's client runs.
struct Workload {
    what: &'static str,
    connections: usize,
    close: bool,
    /// One wrk thread on this CPU (every packet arrives there, as from a
    /// one-queue NIC), or, `None`, two unpinned threads (packets arrive on
    /// both CPUs, as from a NIC whose RSS spreads flows).
    pin: Option<usize>,
}

/// Runs wrk from the client namespace against rauta.
fn wrk(net: &Net, rauta: &Rauta, load: &Workload) -> Run {
    let (connections, close) = (load.connections, load.close);
    let hz = 100.0; // USER_HZ: /proc/*/stat ticks.
    let before = rauta.scrape();
    let load_avg = load_average();
    let (m0, p0, k0) = (
        machine_busy_jiffies(),
        process_busy(rauta.pid()),
        kthreads_busy(),
    );
    let url = format!("http://{NODE_IP}:{LISTEN_PORT}/");
    let (c, d) = (connections.to_string(), format!("{BENCH_SECONDS}s"));
    let mut args = vec!["ip", "netns", "exec", net.client.name()];
    let cpu = load.pin.map(|c| c.to_string());
    match &cpu {
        Some(cpu) => args.extend_from_slice(&["taskset", "-c", cpu, "wrk", "-t1"]),
        None => args.extend_from_slice(&["wrk", "-t2"]),
    }
    args.extend_from_slice(&["-c", &c, "-d", &d, "--latency"]);
    if close {
        args.extend_from_slice(&["-H", "Connection: close"]);
    }
    args.push(&url);
    let out = std::process::Command::new(args[0])
        .args(&args[1..])
        .output()
        .expect("run wrk");
    let (m1, p1, k1) = (
        machine_busy_jiffies(),
        process_busy(rauta.pid()),
        kthreads_busy(),
    );
    let after = rauta.scrape();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "wrk: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut run = Run {
        load: load_avg,
        ..Run::default()
    };
    let mut requests = 0.0;
    for line in text.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["Requests/sec:", v] => run.rps = v.parse().unwrap_or(0.0),
            ["99%", v] => run.p99_us = micros(v).unwrap_or(0.0),
            [n, "requests", "in", ..] => requests = n.parse().unwrap_or(0.0),
            ["Non-2xx", "or", "3xx", "responses:", n] => run.errors += n.parse().unwrap_or(0),
            ["Socket", "errors:", rest @ ..] => {
                run.errors += rest
                    .iter()
                    .filter_map(|w| w.trim_end_matches(',').parse::<u64>().ok())
                    .sum::<u64>()
            }
            _ => {}
        }
    }
    for (shard, share) in run.shards.iter_mut().enumerate() {
        *share = accepted(&after, shard) - accepted(&before, shard);
    }
    if requests > 0.0 {
        run.machine_us = (m1 - m0) as f64 / hz * 1e6 / requests;
        run.rauta_us = (p1 - p0) as f64 / hz * 1e6 / requests;
        run.kthreads_us = k1.saturating_sub(k0) as f64 / hz * 1e6 / requests;
    }
    run
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

#[test]
#[ignore = "a measurement (about 3 minutes): run with --ignored --nocapture"]
fn xdp_steer_benchmark() {
    require!(
        Need::EbpfPrivilege,
        ebpf_object(),
        Need::Netns,
        Need::Cpus(2),
        Need::tool("ethtool"),
        Need::tool("wrk"),
        Need::tool("taskset")
    );
    let cpus = allowed_cpus();
    let cpus = &cpus[..2];
    let net = Net::new();
    // Tens of thousands of short connections a run: without reusing
    // TIME_WAIT ports, connect() soon scans a nearly exhausted port range
    // and that, not the proxy, sets the pace (seen: 9.7k/s, then 0.5k/s).
    for ns in [&net.client, &net.node] {
        ns.exec(&["sysctl", "-qw", "net.ipv4.tcp_tw_reuse=1"]);
        ns.exec(&["sysctl", "-qw", "net.ipv4.ip_local_port_range=1024 65000"]);
    }
    // "off + RPS": the kernel's software alternative, Receive Packet
    // Steering on the node's veth over the shard CPUs (select_by_cpu then
    // picks the listener of the CPU RPS chose).
    let configs: [(&str, &[&str]); 3] = [
        ("off", &[]),
        ("cpumap", &["--xdp-steer", "cpumap"]),
        ("off + RPS", &[]),
    ];
    let mask = format!("{:x}", cpus.iter().fold(0u64, |m, c| m | 1 << c));
    let workload = |what, connections, close, pin| Workload {
        what,
        connections,
        close,
        pin,
    };
    let workloads = [
        workload(
            "one RX CPU, keep-alive, 64 connections",
            64,
            false,
            Some(cpus[0]),
        ),
        workload(
            "one RX CPU, Connection: close, 16 concurrent",
            16,
            true,
            Some(cpus[0]),
        ),
        workload("two RX CPUs, keep-alive, 64 connections", 64, false, None),
        workload(
            "two RX CPUs, Connection: close, 16 concurrent",
            16,
            true,
            None,
        ),
    ];
    // results[config][workload] = runs
    let mut results = vec![vec![Vec::<Run>::new(); workloads.len()]; configs.len()];
    for round in 0..BENCH_ROUNDS {
        for (ci, (name, flags)) in configs.iter().enumerate() {
            let rps = name.ends_with("RPS");
            net.set_rps(if rps { &mask } else { "0" });
            let rauta = net.rauta(cpus, flags);
            for (wi, load) in workloads.iter().enumerate() {
                let run = wrk(&net, &rauta, load);
                println!("round {round} steer={name} {}: {run:?}", load.what);
                results[ci][wi].push(run);
            }
            stop(rauta);
        }
    }
    println!("\n| workload | --xdp-steer | req/s | p99 | shard 0 / shard 1 accepted | whole machine CPU µs/req | rauta CPU µs/req | cpumap + ksoftirqd threads µs/req | load average | errors |");
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for (wi, Workload { what, .. }) in workloads.iter().enumerate() {
        for (ci, (name, _)) in configs.iter().enumerate() {
            let runs = &results[ci][wi];
            let med = |f: fn(&Run) -> f64| median(runs.iter().map(f).collect());
            let range = |f: fn(&Run) -> f64| {
                let v: Vec<f64> = runs.iter().map(f).collect();
                (
                    v.iter().copied().fold(f64::INFINITY, f64::min),
                    v.iter().copied().fold(0.0, f64::max),
                )
            };
            let (rl, rh) = range(|r| r.rps);
            let (pl, ph) = range(|r| r.p99_us);
            let share0 = med(|r| r.shards[0] / (r.shards[0] + r.shards[1]).max(1.0) * 100.0);
            println!(
                "| {what} | {name} | {:.0} ({rl:.0}–{rh:.0}) | {:.0} µs ({pl:.0}–{ph:.0}) | {:.0} % / {:.0} % (median of {} / {}) | {:.1} | {:.1} | {:.1} | {:.1} | {} |",
                med(|r| r.rps),
                med(|r| r.p99_us),
                share0,
                100.0 - share0,
                med(|r| r.shards[0]),
                med(|r| r.shards[1]),
                med(|r| r.machine_us),
                med(|r| r.rauta_us),
                med(|r| r.kthreads_us),
                med(|r| r.load),
                runs.iter().map(|r| r.errors).sum::<u64>(),
            );
        }
    }
}
