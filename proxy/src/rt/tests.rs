//! The runtime against real sockets: waits, timeouts, cancellation.

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
    let woke = on_shard(|| async {
        let mut sent = false;
        timeout(
            Duration::from_secs(2),
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
fn huge_timeouts_do_not_overflow() {
    let (slept, finished) = on_shard(|| async {
        let slept = timeout(Duration::from_millis(10), sleep(Duration::MAX)).await;
        let finished = timeout(Duration::MAX, async { 1 }).await;
        (slept, finished)
    });
    assert_eq!(slept, None);
    assert_eq!(finished, Some(1));
}
