//! The runtime against real sockets: waits, timeouts, cancellation.

use super::executor;
use super::*;
use futures_lite::{AsyncReadExt, AsyncWriteExt};
use std::io::Read;
use std::net::TcpListener as StdListener;
use std::time::Instant;

/// Runs `f` on a fresh shard thread (CPU 0) and returns its result.
fn on_shard<T: Send + 'static, Fut: Future<Output = T> + 'static>(
    f: impl FnOnce() -> Fut + Send + 'static,
) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    let handle = spawn_pinned(0, "rt-test", move || async move {
        let _ = tx.send(f().await);
    })
    .expect("shard thread starts");
    handle.join().expect("shard thread ends cleanly");
    rx.recv().expect("the test future ran")
}

#[test]
fn echo_over_accepted_and_connected_streams() {
    let got = on_shard(|| async {
        let sock = crate::listener::bind_reuseport("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = sock.local_addr().unwrap().as_socket().unwrap();
        let listener = listener_from_socket(sock).unwrap();
        let server = spawn_local(async move {
            let mut s = listener.accept().await.unwrap();
            // Inherited from the listener, so small answers are not held
            // back by Nagle's algorithm.
            assert!(socket2::SockRef::from(&s).tcp_nodelay().unwrap());
            let peer = s.peer_addr().unwrap();
            let mut buf = [0u8; 5];
            s.read_exact(&mut buf).await.unwrap();
            s.write_all(&buf).await.unwrap();
            peer
        });
        let mut c = connect(addr, Duration::from_secs(1)).await.unwrap();
        let local = socket2::SockRef::from(&c).local_addr().unwrap().as_socket();
        c.write_all(b"hello").await.unwrap();
        let mut back = [0u8; 5];
        c.expect_read_wait();
        c.read_exact(&mut back).await.unwrap();
        assert_eq!(
            Some(server.await),
            local,
            "peer_addr of the accepted stream"
        );
        back
    });
    assert_eq!(&got, b"hello");
}

#[test]
fn a_read_timeout_ends_a_silent_read() {
    let std_listener = StdListener::bind("127.0.0.1:0").unwrap();
    let addr = std_listener.local_addr().unwrap();
    let (kind, waited) = on_shard(move || async move {
        let mut c = connect(addr, Duration::from_secs(1)).await.unwrap();
        c.set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        let start = Instant::now();
        let mut buf = [0u8; 1];
        let err = c.read(&mut buf).await.unwrap_err();
        (err.kind(), start.elapsed())
    });
    drop(std_listener);
    assert_eq!(kind, io::ErrorKind::TimedOut);
    assert!(
        waited >= Duration::from_millis(100),
        "gave up after {waited:?}"
    );
}

#[test]
fn dropping_a_waiting_stream_closes_the_connection() {
    let std_listener = StdListener::bind("127.0.0.1:0").unwrap();
    let addr = std_listener.local_addr().unwrap();
    let (verdict_tx, verdict_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let (mut s, _) = std_listener.accept().unwrap();
        s.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
        let mut buf = [0u8; 16];
        // EOF (0) means the FIN arrived; a timeout means the socket was
        // kept open by the poll that was still waiting on it.
        let _ = verdict_tx.send(s.read(&mut buf).map_err(|e| e.kind()));
    });
    let verdict = on_shard(move || async move {
        let mut c = connect(addr, Duration::from_secs(1)).await.unwrap();
        let mut buf = [0u8; 1];
        // Start a read that waits, then give up on it and drop the stream.
        assert!(timeout(Duration::from_millis(50), c.read(&mut buf))
            .await
            .is_none());
        drop(c);
        // The executor (and its ring) stays alive until the peer has its
        // verdict: only a cancelled poll lets the FIN out before that.
        loop {
            if let Ok(v) = verdict_rx.try_recv() {
                return v;
            }
            sleep(Duration::from_millis(10)).await;
        }
    });
    assert_eq!(verdict, Ok(0));
}

#[test]
fn a_refused_connect_fails_and_timers_fire_in_order() {
    let addr = {
        let l = StdListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let (refused, order) = on_shard(move || async move {
        let refused = connect(addr, Duration::from_secs(1)).await.map(|_| ());
        let order = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
        let tasks: Vec<_> = [30u64, 10, 20]
            .into_iter()
            .map(|ms| {
                let order = order.clone();
                spawn_local(async move {
                    sleep(Duration::from_millis(ms)).await;
                    order.borrow_mut().push(ms);
                })
            })
            .collect();
        for t in tasks {
            t.await;
        }
        let order = order.borrow().clone();
        (refused.map_err(|e| e.kind()), order)
    });
    assert_eq!(refused, Err(io::ErrorKind::ConnectionRefused));
    assert_eq!(order, vec![10, 20, 30]);
}

#[test]
fn a_semaphore_admits_only_its_permits() {
    let (before, after) = on_shard(|| async {
        let sem = std::rc::Rc::new(Semaphore::new(1));
        let first = sem.acquire(1).await;
        let second = timeout(Duration::from_millis(20), sem.acquire(1)).await;
        let before = second.is_some();
        drop(first);
        let after = timeout(Duration::from_millis(20), sem.acquire(1))
            .await
            .is_some();
        (before, after)
    });
    assert!(!before, "a second permit was handed out");
    assert!(after, "a released permit was not handed out again");
}

#[test]
fn a_shard_on_a_missing_cpu_fails_to_start() {
    let err = spawn_pinned(4095, "rt-test", || async {}).map(|_| ());
    assert!(
        err.is_err(),
        "a shard pinned to a CPU that does not exist started"
    );
}

#[test]
fn a_stream_that_is_always_ready_still_lets_other_tasks_run() {
    const BYTES: usize = 256 * 1024;
    let std_listener = StdListener::bind("127.0.0.1:0").unwrap();
    let addr = std_listener.local_addr().unwrap();
    let writer = std::thread::spawn(move || {
        let (mut s, _) = std_listener.accept().unwrap();
        std::io::Write::write_all(&mut s, &vec![1u8; BYTES]).unwrap();
        s
    });
    let other_ran_first = on_shard(move || async move {
        let mut c = connect(addr, Duration::from_secs(1)).await.unwrap();
        // Let every byte arrive, so each read below finds data at once.
        sleep(Duration::from_millis(300)).await;
        let other_ran = std::rc::Rc::new(std::cell::Cell::new(false));
        let seen = other_ran.clone();
        let reader = spawn_local(async move {
            let mut buf = [0u8; 1024];
            let mut total = 0;
            while total < BYTES {
                total += c.read(&mut buf).await.unwrap();
            }
            seen.get()
        });
        // Queued behind the reader: without a budget it would only run
        // once the reader has read everything.
        spawn_local(async move { other_ran.set(true) }).detach();
        reader.await
    });
    drop(writer.join());
    assert!(other_ran_first, "a busy stream kept the shard to itself");
}

/// A listener of this shard on an ephemeral loopback port.
fn local_listener() -> (TcpListener, SocketAddr) {
    let sock = crate::listener::bind_reuseport("127.0.0.1:0".parse().unwrap()).unwrap();
    let addr = sock.local_addr().unwrap().as_socket().unwrap();
    (listener_from_socket(sock).unwrap(), addr)
}

/// Echoes one 5-byte message over a fresh connection to this shard.
async fn echo_once() -> [u8; 5] {
    let (listener, addr) = local_listener();
    let server = spawn_local(async move {
        let mut s = listener.accept().await.unwrap();
        let mut buf = [0u8; 5];
        s.read_exact(&mut buf).await.unwrap();
        s.write_all(&buf).await.unwrap();
    });
    let mut c = connect(addr, Duration::from_secs(1)).await.unwrap();
    c.write_all(b"hello").await.unwrap();
    let mut back = [0u8; 5];
    c.read_exact(&mut back).await.unwrap();
    server.await;
    back
}

fn source_count() -> usize {
    executor::with_reactor(|r| r.source_count()).unwrap()
}

/// Sleeps until `done` holds; false if it did not within 2 s.
async fn eventually(done: impl Fn() -> bool) -> bool {
    for _ in 0..200 {
        if done() {
            return true;
        }
        sleep(Duration::from_millis(10)).await;
    }
    done()
}

#[test]
fn a_panicking_task_is_dropped_and_the_shard_keeps_serving() {
    let std_listener = StdListener::bind("127.0.0.1:0").unwrap();
    let addr = std_listener.local_addr().unwrap();
    let peer = std::thread::spawn(move || {
        let (mut s, _) = std_listener.accept().unwrap();
        s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        let mut buf = [0u8; 1];
        // EOF: the panicking task's socket was closed with its future.
        s.read(&mut buf).map_err(|e| e.kind())
    });
    let before = panics_total();
    let (echoed, other_ran) = on_shard(move || async move {
        let c = connect(addr, Duration::from_secs(1)).await.unwrap();
        let doomed = spawn_local(async move {
            let _owned = c;
            futures_lite::future::yield_now().await;
            panic!("a task panics on purpose");
        });
        futures_lite::future::yield_now().await;
        futures_lite::future::yield_now().await;
        assert!(doomed.is_finished(), "the panicking task ended");
        drop(doomed);
        let other = spawn_local(async { 7 });
        (echo_once().await, other.await)
    });
    assert_eq!(&echoed, b"hello");
    assert_eq!(other_ran, 7);
    assert!(panics_total() > before, "the panic was counted");
    assert_eq!(peer.join().unwrap(), Ok(0), "the task's socket was closed");
}

#[test]
fn a_panic_in_the_main_task_ends_its_shard_cleanly() {
    let before = panics_total();
    let handle = spawn_pinned(0, "rt-test", || async {
        // A task still waiting when the shard goes down.
        spawn_local(sleep(Duration::from_secs(30))).detach();
        futures_lite::future::yield_now().await;
        panic!("the main task panics on purpose");
    })
    .expect("shard thread starts");
    assert!(handle.join().is_err(), "the shard's join reports the panic");
    assert!(panics_total() > before);
}

#[test]
fn more_waits_than_the_ring_holds_all_complete() {
    const PAIRS: usize = 560; // 1 120 waits, more than the 1 024 SQ entries
    let (completed, backlogged) = on_shard(|| async {
        let (listener, addr) = local_listener();
        let mut streams = Vec::with_capacity(2 * PAIRS);
        for _ in 0..PAIRS {
            streams.push(connect(addr, Duration::from_secs(1)).await.unwrap());
            streams.push(listener.accept().await.unwrap());
        }
        // One task run: every stream's read says EAGAIN and arms a wait.
        let mut buf = [0u8; 1];
        for s in &mut streams {
            executor::refill_budget();
            assert!(futures_lite::future::poll_once(s.read(&mut buf))
                .await
                .is_none());
        }
        let backlogged = executor::with_reactor(|r| r.backlog_len()).unwrap();
        for s in &mut streams {
            executor::refill_budget();
            s.write_all(b"x").await.unwrap();
        }
        let completed = timeout(Duration::from_secs(2), async {
            let mut n = 0;
            for s in &mut streams {
                s.read_exact(&mut buf).await.unwrap();
                n += 1;
            }
            n
        })
        .await;
        (completed, backlogged)
    });
    assert!(backlogged > 0, "the submission queue never overflowed");
    assert_eq!(completed, Some(2 * PAIRS), "a wait was lost");
}

#[test]
fn a_read_completes_while_another_task_yields_forever() {
    let std_listener = StdListener::bind("127.0.0.1:0").unwrap();
    let addr = std_listener.local_addr().unwrap();
    let writer = std::thread::spawn(move || {
        let (mut s, _) = std_listener.accept().unwrap();
        std::thread::sleep(Duration::from_millis(50));
        std::io::Write::write_all(&mut s, b"ping").unwrap();
        s
    });
    let got = on_shard(move || async move {
        let mut c = connect(addr, Duration::from_secs(1)).await.unwrap();
        // Keeps the run queue busy, so every turn is a non-blocking one.
        spawn_local(async {
            loop {
                futures_lite::future::yield_now().await;
            }
        })
        .detach();
        let mut buf = [0u8; 4];
        timeout(Duration::from_secs(2), c.read_exact(&mut buf))
            .await
            .map(|r| r.map(|()| buf).map_err(|e| e.kind()))
    });
    drop(writer.join());
    assert_eq!(got, Some(Ok(*b"ping")), "the read never completed");
}

#[test]
fn a_wake_from_another_thread_runs_the_task() {
    // Well within the executor's 10 s safety-net sleep: the wake rings the
    // ring rather than waiting for the shard to look.
    let woke = on_shard(|| async {
        let mut sent = false;
        timeout(
            Duration::from_millis(500),
            std::future::poll_fn(|cx| {
                if sent {
                    return std::task::Poll::Ready(());
                }
                sent = true;
                let waker = cx.waker().clone();
                std::thread::spawn(move || {
                    std::thread::sleep(Duration::from_millis(10));
                    waker.wake();
                });
                std::task::Poll::Pending
            }),
        )
        .await
    });
    assert_eq!(woke, Some(()), "a foreign wake was lost");
}

#[test]
fn a_cancelled_acquire_does_not_swallow_a_release() {
    let got = on_shard(|| async {
        let sem = std::rc::Rc::new(Semaphore::new(1));
        let held = sem.acquire(1).await;
        let s = sem.clone();
        let cancelled = spawn_local(async move { drop(s.acquire(1).await) });
        let s = sem.clone();
        let waiting = spawn_local(async move { drop(s.acquire(1).await) });
        // Both acquires are queued, the cancelled one first.
        futures_lite::future::yield_now().await;
        futures_lite::future::yield_now().await;
        drop(cancelled);
        futures_lite::future::yield_now().await;
        drop(held);
        timeout(Duration::from_secs(2), waiting).await
    });
    assert_eq!(got, Some(()), "the release went to the cancelled waiter");
}

#[test]
fn a_woken_acquire_that_is_dropped_passes_the_permit_on() {
    let got = on_shard(|| async {
        let sem = std::rc::Rc::new(Semaphore::new(1));
        let held = sem.acquire(1).await;
        let s = sem.clone();
        let first = spawn_local(async move { drop(s.acquire(1).await) });
        let s = sem.clone();
        let second = spawn_local(async move { drop(s.acquire(1).await) });
        futures_lite::future::yield_now().await;
        futures_lite::future::yield_now().await;
        // The release wakes `first`, which is dropped before it runs.
        drop(held);
        drop(first);
        timeout(Duration::from_secs(2), second).await
    });
    assert_eq!(got, Some(()), "the woken waiter's permit was lost");
}

#[test]
fn a_reused_fd_number_still_gets_its_wakes() {
    let std_listener = StdListener::bind("127.0.0.1:0").unwrap();
    let addr = std_listener.local_addr().unwrap();
    let peer = std::thread::spawn(move || {
        let (first, _) = std_listener.accept().unwrap();
        let (mut second, _) = std_listener.accept().unwrap();
        std::thread::sleep(Duration::from_millis(20));
        std::io::Write::write_all(&mut second, b"ok").unwrap();
        (first, second)
    });
    let (got, reused, back_to_baseline) = on_shard(move || async move {
        let baseline = source_count();
        let mut c = connect(addr, Duration::from_secs(1)).await.unwrap();
        let old_fd = std::os::fd::AsRawFd::as_raw_fd(&c);
        let mut buf = [0u8; 2];
        // One task run: the read arms a poll, the stream is dropped (its
        // poll and cancel still queued) and a new socket takes the fd.
        assert!(futures_lite::future::poll_once(c.read(&mut buf))
            .await
            .is_none());
        drop(c);
        let mut fresh = std::pin::pin!(connect(addr, Duration::from_secs(1)));
        let first_poll = futures_lite::future::poll_once(fresh.as_mut()).await;
        let mut c = match first_poll {
            Some(r) => r.unwrap(),
            None => fresh.await.unwrap(),
        };
        let reused = std::os::fd::AsRawFd::as_raw_fd(&c) == old_fd;
        let got = timeout(Duration::from_secs(2), c.read_exact(&mut buf))
            .await
            .map(|r| r.map(|()| buf).map_err(|e| e.kind()));
        drop(c);
        let back = eventually(|| source_count() == baseline).await;
        (got, reused, back)
    });
    drop(peer.join());
    if !reused {
        // Another test's thread took the number in between; the waits
        // were still checked, only not on a reused number.
        eprintln!("fd number was not reused this time");
    }
    assert_eq!(got, Some(Ok(*b"ok")), "the new stream's wake was lost");
    assert!(back_to_baseline, "a source entry leaked");
}

#[test]
fn lost_completions_wake_every_armed_wait() {
    let std_listener = StdListener::bind("127.0.0.1:0").unwrap();
    let addr = std_listener.local_addr().unwrap();
    let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
    let peer = std::thread::spawn(move || {
        let (mut s, _) = std_listener.accept().unwrap();
        let _ = go_rx.recv_timeout(Duration::from_secs(2));
        std::io::Write::write_all(&mut s, b"hi").unwrap();
        s
    });
    let before = ring_counters();
    let got = on_shard(move || async move {
        let mut c = connect(addr, Duration::from_secs(1)).await.unwrap();
        let reader = spawn_local(async move {
            let mut buf = [0u8; 2];
            timeout(Duration::from_secs(2), c.read_exact(&mut buf))
                .await
                .map(|r| r.map(|()| buf).map_err(|e| e.kind()))
        });
        // Let the reader arm its poll, and the ring submit it.
        sleep(Duration::from_millis(20)).await;
        // As if the kernel had dropped that poll's completion: only the
        // recovery's wake can make the reader poll again.
        executor::with_reactor(|r| r.simulate_dropped_completions()).unwrap();
        futures_lite::future::yield_now().await;
        let _ = go_tx.send(());
        let got = reader.await;
        let stale_seen =
            eventually(|| ring_counters().stale_completions > before.stale_completions).await;
        (got, stale_seen)
    });
    drop(peer.join());
    assert_eq!(
        got.0,
        Some(Ok(*b"hi")),
        "the recovered wait never completed"
    );
    assert!(ring_counters().cq_dropped > before.cq_dropped);
    assert!(
        got.1,
        "the abandoned poll's completion was not recognised as stale"
    );
}

#[test]
fn huge_timeouts_do_not_overflow() {
    let (slept, finished) = on_shard(|| async {
        let slept = timeout(Duration::from_millis(10), sleep(Duration::MAX)).await;
        let finished = timeout(Duration::MAX, async { 1 }).await;
        (slept, finished)
    });
    assert_eq!(slept, None);
    assert_eq!(finished, Some(1));
}

/// Sockets index their shard's reactor, so they must not be `Send`: this
/// fails to compile (ambiguous impl) if either type becomes `Send`.
#[allow(dead_code)]
fn sockets_are_not_send() {
    trait AmbiguousIfSend<A> {
        fn check() {}
    }
    impl<T: ?Sized> AmbiguousIfSend<()> for T {}
    impl<T: ?Sized + Send> AmbiguousIfSend<u8> for T {}
    <TcpStream as AmbiguousIfSend<_>>::check();
    <TcpListener as AmbiguousIfSend<_>>::check();
}
