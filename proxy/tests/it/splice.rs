//! The kernel splice of L4 flows (`rauta_proxy::l4::splice`) on real TCP
//! sockets over 127.0.0.1: `client <-> a` and `b <-> server`, where the
//! test plays the proxy that owns `a` and `b` and joins them. Needs root
//! (`Need::EbpfPrivilege`) and the eBPF object.
//!
//! `splice_throughput_1gb` (ignored) measures a spliced pair against a
//! user-space copy loop: `cargo test --test it splice_throughput -- --ignored --nocapture`.
//! Over loopback on a loaded 2-CPU VM the splice moved 3.2-4.0 Gbit/s with
//! no relay thread, the copy loop 7.4-8.6 Gbit/s at 0.3-0.4 CPU-s of its
//! thread per GB: the redirect to egress goes through a kernel work queue
//! (kworker time, not charged to the process), which costs throughput here.

use crate::xdp_util::ebpf_object;
use nix::poll::{PollFd, PollFlags, PollTimeout};
use nix::sys::resource::{getrusage, UsageWho};
use rauta_proxy::l4::splice::{Joined, ShardSplicer, SpliceError, SpliceUnavailable, Splicer};
use rauta_shared::ebpf::splice_counter as sc;
use rauta_testkit::{require, Need};
use socket2::SockRef;
use std::io::{ErrorKind, Read, Write};
use std::mem::MaybeUninit;
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::fd::{AsFd, BorrowedFd};
use std::thread;
use std::time::{Duration, Instant};

const MB: usize = 1 << 20;
/// How long a test waits for bytes before calling it a stall.
const STALL: Duration = Duration::from_secs(20);

/// The four sockets of one proxied flow.
struct Flow {
    client: TcpStream,
    a: TcpStream,
    b: TcpStream,
    server: TcpStream,
}

fn flow() -> Flow {
    let front = TcpListener::bind("127.0.0.1:0").expect("bind");
    let back = TcpListener::bind("127.0.0.1:0").expect("bind");
    let client = TcpStream::connect(front.local_addr().expect("addr")).expect("connect");
    let (a, _) = front.accept().expect("accept");
    let b = TcpStream::connect(back.local_addr().expect("addr")).expect("connect");
    let (server, _) = back.accept().expect("accept");
    for s in [&client, &server] {
        s.set_read_timeout(Some(STALL)).expect("timeout");
        s.set_write_timeout(Some(STALL)).expect("timeout");
    }
    Flow {
        client,
        a,
        b,
        server,
    }
}

fn splicer() -> (Splicer, ShardSplicer) {
    let splicer = Splicer::load().unwrap_or_else(|e| panic!("Splicer::load: {e}"));
    let shard = splicer.for_shard().expect("for_shard");
    (splicer, shard)
}

fn join(shard: &ShardSplicer, f: &Flow) -> Joined {
    shard
        .join(f.a.as_fd(), f.b.as_fd())
        .unwrap_or_else(|e| panic!("join: {e}"))
}

/// Byte `i` of the test stream `seed`: position-dependent, so a lost,
/// repeated or reordered byte shows as a mismatch at a known offset.
fn pattern(seed: u8, i: usize) -> u8 {
    ((i as u64).wrapping_mul(2_654_435_761) >> 7) as u8 ^ seed
}

fn fill(seed: u8, from: usize, buf: &mut [u8]) {
    for (k, b) in buf.iter_mut().enumerate() {
        *b = pattern(seed, from + k);
    }
}

/// Writes `total` bytes of stream `seed` in chunks.
fn send_stream(mut to: &TcpStream, seed: u8, total: usize) {
    let mut buf = vec![0u8; 256 * 1024];
    let mut sent = 0;
    while sent < total {
        let n = buf.len().min(total - sent);
        fill(seed, sent, &mut buf[..n]);
        to.write_all(&buf[..n]).expect("write");
        sent += n;
    }
}

/// Reads exactly `total` bytes of stream `seed` starting at offset `from`,
/// checking every byte.
fn expect_stream(mut from_sock: &TcpStream, seed: u8, from: usize, total: usize) {
    let mut buf = vec![0u8; 256 * 1024];
    let mut got = 0;
    while got < total {
        let want = buf.len().min(total - got);
        let n = from_sock
            .read(&mut buf[..want])
            .unwrap_or_else(|e| panic!("read after {got} of {total} bytes: {e}"));
        assert!(n > 0, "EOF after {got} of {total} bytes");
        for (k, b) in buf[..n].iter().enumerate() {
            let at = from + got + k;
            assert_eq!(*b, pattern(seed, at), "byte {at} of stream {seed}");
        }
        got += n;
    }
}

fn poll(fd: BorrowedFd<'_>, events: PollFlags, timeout: Duration) -> PollFlags {
    let ms = u16::try_from(timeout.as_millis()).unwrap_or(u16::MAX);
    let mut fds = [PollFd::new(fd, events)];
    nix::poll::poll(&mut fds, PollTimeout::from(ms)).expect("poll");
    fds[0].revents().unwrap_or(PollFlags::empty())
}

/// Bytes waiting to be read on the socket (up to 1 MB), by peeking.
fn queued(fd: BorrowedFd<'_>) -> usize {
    let mut buf = vec![MaybeUninit::<u8>::uninit(); MB];
    match SockRef::from(&fd).recv_with_flags(&mut buf, libc::MSG_PEEK | libc::MSG_DONTWAIT) {
        Ok(n) => n,
        Err(e) if e.kind() == ErrorKind::WouldBlock => 0,
        Err(e) => panic!("peek: {e}"),
    }
}

/// `recv(MSG_DONTWAIT)` of up to 64 bytes: Ok(n) or the error.
fn try_recv(fd: BorrowedFd<'_>) -> std::io::Result<usize> {
    let mut buf = [MaybeUninit::<u8>::uninit(); 64];
    SockRef::from(&fd).recv_with_flags(&mut buf, libc::MSG_DONTWAIT)
}

/// Waits for the FIN on a spliced socket: POLLIN, then `recv` returning 0.
/// The wake-up can come from bytes the verdict then redirects away, so
/// an EAGAIN after POLLIN means "poll again", as in the proxy's loop.
fn wait_eof(fd: BorrowedFd<'_>) {
    let deadline = Instant::now() + STALL;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let events = poll(fd, PollFlags::POLLIN, left);
        assert!(
            events.contains(PollFlags::POLLIN),
            "no EOF seen: {events:?}"
        );
        match try_recv(fd) {
            Ok(n) => {
                assert_eq!(n, 0, "bytes reached the proxy's socket, not EOF");
                return;
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => thread::sleep(Duration::from_millis(1)),
            Err(e) => panic!("recv: {e}"),
        }
    }
}

fn set_linger_zero(s: &TcpStream) {
    SockRef::from(s)
        .set_linger(Some(Duration::ZERO))
        .expect("SO_LINGER");
}

#[test]
fn splice_moves_megabytes_without_user_space() {
    require!(Need::EbpfPrivilege, ebpf_object());
    let (splicer, shard) = splicer();
    let f = flow();
    let joined = join(&shard, &f);
    assert_eq!(joined.moved_at_join(), (0, 0));
    let before = splicer.counters().expect("counters");
    let total = 16 * MB;
    thread::scope(|s| {
        s.spawn(|| send_stream(&f.client, 1, total));
        s.spawn(|| send_stream(&f.server, 2, total));
        s.spawn(|| expect_stream(&f.server, 1, 0, total));
        expect_stream(&f.client, 2, 0, total);
    });
    // The proxy's sockets were never read: nothing waits in them, and the
    // map counted every byte each way.
    assert_eq!((queued(f.a.as_fd()), queued(f.b.as_fd())), (0, 0));
    let (ab, ba) = joined.bytes().expect("bytes");
    assert_eq!((ab, ba), (total as u64, total as u64));
    let after = splicer.counters().expect("counters");
    let redirected = after[sc::REDIRECTED_BYTES as usize] - before[sc::REDIRECTED_BYTES as usize];
    assert_eq!(redirected, 2 * total as u64, "global counter");
    assert_eq!(
        after[sc::PASSED_BYTES as usize],
        before[sc::PASSED_BYTES as usize],
        "nothing passed to user space"
    );
    assert_eq!(
        joined
            .unflushed(f.a.as_fd(), f.b.as_fd())
            .expect("unflushed"),
        (0, 0)
    );
}

#[test]
fn splice_keeps_bytes_queued_before_the_join() {
    require!(Need::EbpfPrivilege, ebpf_object());
    let (_splicer, shard) = splicer();
    let f = flow();
    // A request (many small skbs, within the first receive window) and a
    // server greeting, both queued before the join; then nobody sends
    // anything until they get an answer.
    let request = 40 * 1000;
    let greeting = 1000;
    f.client.set_nodelay(true).expect("nodelay");
    let mut chunk = [0u8; 1000];
    for at in (0..request).step_by(chunk.len()) {
        fill(3, at, &mut chunk);
        (&f.client).write_all(&chunk).expect("write");
    }
    send_stream(&f.server, 4, greeting);
    let deadline = Instant::now() + STALL;
    while queued(f.a.as_fd()) < request || queued(f.b.as_fd()) < greeting {
        assert!(Instant::now() < deadline, "the request never arrived");
        thread::sleep(Duration::from_millis(5));
    }
    // The caller had read a part of the first skb (as a protocol sniffer
    // would) and written it on: the join must not send those bytes again.
    let mut head = [0u8; 10];
    (&f.a).read_exact(&mut head).expect("read head");
    (&f.b).write_all(&head).expect("write head");
    let joined = join(&shard, &f);
    let (moved_ab, moved_ba) = joined.moved_at_join();
    assert_eq!(
        (moved_ab, moved_ba),
        ((request - 10) as u64, greeting as u64)
    );
    thread::scope(|s| {
        s.spawn(|| {
            expect_stream(&f.server, 3, 0, request);
            send_stream(&f.server, 5, 2 * MB);
        });
        expect_stream(&f.client, 4, 0, greeting);
        expect_stream(&f.client, 5, 0, 2 * MB);
    });
    assert_eq!(joined.bytes().expect("bytes"), (0, 2 * MB as u64));
}

#[test]
fn splice_join_while_bytes_flow_keeps_order() {
    require!(Need::EbpfPrivilege, ebpf_object());
    let (_splicer, shard) = splicer();
    for round in 0..20 {
        let f = flow();
        let total = 4 * MB;
        thread::scope(|s| {
            // The client streams without pause while the join happens: bytes
            // arrive before, during and after the insert.
            s.spawn(|| send_stream(&f.client, 6, total));
            let reader = s.spawn(|| expect_stream(&f.server, 6, 0, total));
            thread::sleep(Duration::from_micros(200 * round));
            let joined = join(&shard, &f);
            reader.join().expect("reader");
            let (ab, _) = joined.bytes().expect("bytes");
            assert_eq!(
                ab + joined.moved_at_join().0,
                total as u64,
                "round {round}: kernel + join bytes"
            );
        });
    }
}

#[test]
fn splice_half_close_lets_the_answer_through() {
    require!(Need::EbpfPrivilege, ebpf_object());
    let (_splicer, shard) = splicer();
    let f = flow();
    let joined = join(&shard, &f);
    let request = 3 * MB;
    let answer = 5 * MB;
    thread::scope(|s| {
        s.spawn(|| {
            send_stream(&f.client, 7, request);
            f.client.shutdown(Shutdown::Write).expect("client shutdown");
            expect_stream(&f.client, 8, 0, answer);
            let mut rest = Vec::new();
            (&f.client).read_to_end(&mut rest).expect("client EOF");
            assert!(rest.is_empty(), "bytes after the answer");
        });
        s.spawn(|| {
            expect_stream(&f.server, 7, 0, request);
            let mut rest = Vec::new();
            (&f.server).read_to_end(&mut rest).expect("server EOF");
            assert!(rest.is_empty(), "bytes after the request");
            // Half-closed towards the server, the answer still flows back.
            send_stream(&f.server, 8, answer);
            f.server.shutdown(Shutdown::Write).expect("server shutdown");
        });
        // The proxy: the end of each direction is POLLIN (and POLLRDHUP,
        // which nix's PollFlags cannot carry) on the socket that received
        // the FIN, and recv returning 0.
        for (from, to, a_to_b) in [(&f.a, &f.b, true), (&f.b, &f.a, false)] {
            wait_eof(from.as_fd());
            let flushed = joined
                .wait_flushed(f.a.as_fd(), f.b.as_fd(), a_to_b, STALL)
                .expect("unflushed");
            assert!(flushed, "the kernel still holds bytes for the other side");
            to.shutdown(Shutdown::Write).expect("forward the FIN");
        }
    });
    assert_eq!(
        joined.bytes().expect("bytes"),
        (request as u64, answer as u64)
    );
    // The lone FINs did not break the pipes (the verdict drops empty skbs
    // instead of redirecting them).
    for s in [&f.a, &f.b] {
        assert!(SockRef::from(s).take_error().expect("SO_ERROR").is_none());
    }
}

#[test]
fn splice_reset_is_seen_on_the_proxy_socket() {
    require!(Need::EbpfPrivilege, ebpf_object());
    let (_splicer, shard) = splicer();
    let f = flow();
    let joined = join(&shard, &f);
    thread::scope(|s| {
        s.spawn(|| send_stream(&f.client, 9, MB));
        expect_stream(&f.server, 9, 0, MB);
    });
    set_linger_zero(&f.server);
    drop(f.server);
    // The proxy sees the reset on b as POLLERR/POLLHUP and ECONNRESET...
    let events = poll(f.b.as_fd(), PollFlags::POLLIN, STALL);
    assert!(
        events.intersects(PollFlags::POLLERR | PollFlags::POLLHUP),
        "reset not seen: {events:?}"
    );
    let err = try_recv(f.b.as_fd()).expect_err("recv after a reset");
    assert_eq!(err.kind(), ErrorKind::ConnectionReset, "{err}");
    // ...and resets the client's side.
    drop(joined);
    set_linger_zero(&f.a);
    drop(f.a);
    let mut buf = [0u8; 16];
    let err = (&f.client).read(&mut buf).expect_err("client read");
    assert_eq!(err.kind(), ErrorKind::ConnectionReset, "{err}");
}

/// Descriptors open in this process.
fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .expect("/proc/self/fd")
        .count()
}

/// Joins and tears down 64 pairs (half dropping `Joined` first, half
/// closing the sockets first) and checks the maps are empty and the
/// descriptors back where they were. The descriptor count needs a process
/// of its own (other tests open descriptors meanwhile): the parent test
/// runs this one in a child.
#[test]
#[ignore = "run in a child process by splice_leaves_no_map_entry_or_fd"]
fn splice_leak_check_child() {
    let (splicer, shard) = splicer();
    let baseline = open_fds();
    for round in 0..2 {
        let mut live = Vec::new();
        for i in 0..64 {
            let f = flow();
            let joined = join(&shard, &f);
            (&f.client).write_all(&[i as u8; 100]).expect("write");
            let mut got = [0u8; 100];
            (&f.server).read_exact(&mut got).expect("read");
            live.push((f, joined));
        }
        let entries = splicer.entries().expect("entries");
        assert_eq!(
            (entries.sockets, entries.targets, entries.peers),
            (128, 128, 128)
        );
        for (i, (f, joined)) in live.into_iter().enumerate() {
            if i % 2 == round {
                drop(joined);
                drop(f);
            } else {
                drop(f);
                drop(joined);
            }
        }
        let entries = splicer.entries().expect("entries");
        assert_eq!(
            (entries.sockets, entries.targets, entries.peers),
            (0, 0, 0),
            "round {round}"
        );
        assert_eq!(open_fds(), baseline, "round {round}: descriptors");
    }
    let extra = splicer.for_shard().expect("for_shard");
    drop(extra);
    assert_eq!(open_fds(), baseline, "a shard handle's descriptors");
    println!("RAUTA-SPLICE-LEAK-CHECK-PASSED");
}

#[test]
fn splice_leaves_no_map_entry_or_fd() {
    require!(Need::EbpfPrivilege, ebpf_object());
    let exe = std::env::current_exe().expect("current_exe");
    let out = std::process::Command::new(exe)
        .args([
            "--exact",
            "splice::splice_leak_check_child",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .output()
        .expect("run the child");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("RAUTA-SPLICE-LEAK-CHECK-PASSED"),
        "child failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn splice_refuses_a_socket_that_is_not_established() {
    require!(Need::EbpfPrivilege, ebpf_object());
    let (splicer, shard) = splicer();
    let f = flow();
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let err = shard
        .join(f.a.as_fd(), listener.as_fd())
        .expect_err("a listener is no peer");
    assert!(err.can_fall_back(), "{err}");
    assert!(matches!(err, SpliceError::Refused(_)), "{err}");
    let entries = splicer.entries().expect("entries");
    assert_eq!((entries.sockets, entries.targets, entries.peers), (0, 0, 0));
    // The flow still works in user space.
    (&f.client).write_all(b"ping").expect("write");
    let mut got = [0u8; 4];
    (&f.a).read_exact(&mut got).expect("read");
    assert_eq!(&got, b"ping");
}

/// Linux capability numbers the fallback test drops.
const CAP_NET_ADMIN: u32 = 12;
const CAP_SYS_ADMIN: u32 = 21;
const CAP_BPF: u32 = 39;

/// Set in the child that the fallback test starts without the capabilities.
const UNPRIVILEGED_CHILD: &str = "RAUTA_SPLICE_UNPRIVILEGED_CHILD";

fn cap_eff() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("status");
    let hex = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .expect("CapEff");
    u64::from_str_radix(hex.trim(), 16).expect("hex")
}

/// The child half of `splice_falls_back_without_the_capability`: started
/// by `setpriv` with the eBPF capabilities removed from its bounding set
/// (so even root cannot have them), it checks that they are gone and that
/// `Splicer::load` says why it cannot splice.
#[test]
#[ignore = "run without capabilities by splice_falls_back_without_the_capability"]
fn splice_unprivileged_child() {
    if std::env::var_os(UNPRIVILEGED_CHILD).is_none() {
        println!("not started by splice_falls_back_without_the_capability; nothing to check");
        return;
    }
    let caps = cap_eff();
    for cap in [CAP_BPF, CAP_NET_ADMIN, CAP_SYS_ADMIN] {
        assert_eq!(caps & (1 << cap), 0, "capability {cap} still effective");
    }
    let err = Splicer::load()
        .map(drop)
        .expect_err("load without CAP_BPF/CAP_NET_ADMIN");
    assert!(
        matches!(err, SpliceUnavailable::NoPrivilege(_)),
        "wrong reason: {err}"
    );
    println!("RAUTA-SPLICE-UNAVAILABLE: {err}");
}

#[test]
fn splice_falls_back_without_the_capability() {
    require!(Need::EbpfPrivilege, ebpf_object(), Need::tool("setpriv"));
    let exe = std::env::current_exe().expect("current_exe");
    let out = std::process::Command::new("setpriv")
        .args([
            "--bounding-set=-bpf,-net_admin,-sys_admin,-perfmon",
            "--inh-caps=-bpf,-net_admin,-sys_admin,-perfmon",
            "--",
        ])
        .arg(exe)
        .args([
            "--exact",
            "splice::splice_unprivileged_child",
            "--ignored",
            "--nocapture",
        ])
        .env(UNPRIVILEGED_CHILD, "1")
        .output()
        .expect("run setpriv");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout
        .lines()
        .find(|l| l.starts_with("RAUTA-SPLICE-UNAVAILABLE: "));
    assert!(
        out.status.success() && line.is_some(),
        "child failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = line.unwrap_or_default();
    assert!(line.contains("CAP_BPF"), "{line}");
    assert!(Splicer::start(rauta_proxy::l4::splice::SpliceMode::Off).is_none());
}

fn cpu_seconds(who: UsageWho) -> f64 {
    let usage = getrusage(who).expect("getrusage");
    let secs = |t: nix::sys::time::TimeVal| t.tv_sec() as f64 + t.tv_usec() as f64 / 1e6;
    secs(usage.user_time()) + secs(usage.system_time())
}

/// CPU seconds (user + system) of this process so far.
fn process_cpu() -> f64 {
    cpu_seconds(UsageWho::RUSAGE_SELF)
}

/// CPU seconds of the calling thread so far.
fn thread_cpu() -> f64 {
    cpu_seconds(UsageWho::RUSAGE_THREAD)
}

/// (busy, total) jiffies of the whole machine, from /proc/stat.
fn machine_jiffies() -> (u64, u64) {
    let stat = std::fs::read_to_string("/proc/stat").expect("/proc/stat");
    let cpu = stat.lines().next().expect("cpu line");
    let v: Vec<u64> = cpu
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    let total: u64 = v.iter().take(8).sum();
    // idle + iowait are not busy.
    let idle = v.get(3).copied().unwrap_or(0) + v.get(4).copied().unwrap_or(0);
    (total - idle, total)
}

/// Sends `total` bytes client -> server as fast as possible and reports.
fn measure(label: &str, f: &Flow, total: usize, relay_cpu: impl FnOnce() -> f64) {
    // /proc/stat counts in USER_HZ, 100 on every Linux architecture rauta runs on.
    let hz = 100.0;
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    let (busy0, total0) = machine_jiffies();
    let cpu0 = process_cpu();
    let start = Instant::now();
    thread::scope(|s| {
        s.spawn(|| {
            let buf = vec![0x5au8; MB];
            let mut sent = 0;
            while sent < total {
                let n = buf.len().min(total - sent);
                (&f.client).write_all(&buf[..n]).expect("write");
                sent += n;
            }
        });
        let mut buf = vec![0u8; MB];
        let mut got = 0;
        while got < total {
            let n = (&f.server).read(&mut buf).expect("read");
            assert!(n > 0, "EOF after {got}");
            got += n;
        }
    });
    let wall = start.elapsed().as_secs_f64();
    let cpu = process_cpu() - cpu0;
    let (busy1, total1) = machine_jiffies();
    let machine_busy = (busy1 - busy0) as f64 / hz;
    let machine_total = (total1 - total0) as f64 / hz;
    println!(
        "RAUTA-SPLICE-BENCH {label}: {:.0} MB in {wall:.2} s = {:.2} Gbit/s; process CPU {cpu:.2} s \
         ({:.0}% of one core); relay CPU {:.2} s; machine busy {machine_busy:.2} of {machine_total:.2} CPU-s \
         ({:.0}% of {cpus} CPUs)",
        total as f64 / MB as f64,
        total as f64 * 8.0 / wall / 1e9,
        100.0 * cpu / wall,
        relay_cpu(),
        100.0 * machine_busy / machine_total.max(1e-9),
    );
}

#[test]
#[ignore = "a measurement (1 GB twice): run with --ignored --nocapture"]
fn splice_throughput_1gb() {
    require!(Need::EbpfPrivilege, ebpf_object());
    let total = 1024 * MB;
    let (_splicer, shard) = splicer();
    let f = flow();
    let joined = join(&shard, &f);
    measure("kernel splice", &f, total, || 0.0);
    assert_eq!(joined.bytes().expect("bytes").0, total as u64);
    drop(joined);

    let f = flow();
    let relay_cpu = thread::scope(|s| {
        let relay = s.spawn(|| {
            let mut buf = vec![0u8; 256 * 1024];
            let mut moved = 0;
            while moved < total {
                let n = (&f.a).read(&mut buf).expect("relay read");
                assert!(n > 0);
                (&f.b).write_all(&buf[..n]).expect("relay write");
                moved += n;
            }
            thread_cpu()
        });
        let mut cpu = 0.0;
        measure("user-space copy loop", &f, total, || {
            cpu = relay.join().expect("relay");
            cpu
        });
        cpu
    });
    assert!(relay_cpu > 0.0);
}

/// The splice alone (no rauta relay around it) on a real path: client
/// namespace -> veth -> the joined pair in a node namespace -> veth ->
/// an echo server in a backend namespace, 256 MB echoed and checked byte
/// for byte. It isolates the kernel side of the defect that
/// `xdp_fast::splice_keeps_long_echoes_intact_over_veth` shows through
/// rauta.
#[test]
#[ignore = "known defect reproduction: cargo test -p rauta-proxy --test it splice_echo_over_veth -- --ignored --nocapture"]
fn splice_echo_over_veth_is_intact() {
    use rauta_testkit::netns::{Netns, VethPair};
    require!(
        Need::EbpfPrivilege,
        ebpf_object(),
        Need::Netns,
        Need::tool("ethtool")
    );
    let node = Netns::new("rsn");
    let client_ns = Netns::new("rsc");
    let backend_ns = Netns::new("rsb");
    let _front = VethPair::new(&node, &["10.81.1.1/24"], &client_ns, &["10.81.1.2/24"]);
    let _back = VethPair::new(&node, &["10.81.2.1/24"], &backend_ns, &["10.81.2.2/24"]);
    let server_listener = backend_ns.enter(|| TcpListener::bind("10.81.2.2:7001").expect("bind"));
    let front = node.enter(|| TcpListener::bind("10.81.1.1:7000").expect("bind"));
    let client = client_ns.enter(|| TcpStream::connect("10.81.1.1:7000").expect("connect"));
    let (a, _) = front.accept().expect("accept");
    let b = node.enter(|| TcpStream::connect("10.81.2.2:7001").expect("connect"));
    let (server, _) = server_listener.accept().expect("accept");
    for s in [&client, &server] {
        s.set_read_timeout(Some(STALL)).expect("timeout");
        s.set_write_timeout(Some(STALL)).expect("timeout");
    }
    let f = Flow {
        client,
        a,
        b,
        server,
    };
    let (_splicer, shard) = splicer();
    let joined = join(&shard, &f);
    let total = 256 * MB;
    thread::scope(|s| {
        // The echo server: every byte back, as it comes.
        s.spawn(|| {
            let mut buf = vec![0u8; 64 * 1024];
            let mut echoed = 0;
            while echoed < total {
                let n = (&f.server).read(&mut buf).expect("server read");
                assert!(n > 0, "server EOF after {echoed}");
                (&f.server).write_all(&buf[..n]).expect("server write");
                echoed += n;
            }
        });
        s.spawn(|| send_stream(&f.client, 11, total));
        expect_stream(&f.client, 11, 0, total);
    });
    let (ab, ba) = joined.bytes().expect("bytes");
    eprintln!("spliced {ab} bytes client->server and {ba} back");
    assert_eq!((ab, ba), (total as u64, total as u64));
}
