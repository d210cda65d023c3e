//! A minimal keep-alive backend with scripted timing and canned answers,
//! for upstream behaviour the real [`Backend`](super::Backend) does not
//! have (a short keep-alive timeout, responses no real server sends).

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Every request is answered `delay` after it arrived (200, `x-backend:
/// scripted`, empty body, unless [`ScriptedBackend::answering`]), and with
/// `idle_close` the connection is closed once it has been idle that long,
/// as an upstream with a short keepalive_timeout does.
#[derive(Debug)]
pub struct ScriptedBackend {
    /// Port it listens on (127.0.0.1).
    pub port: u16,
    /// Requests answered.
    pub requests: Arc<AtomicU64>,
    /// Connections accepted.
    pub accepted: Arc<AtomicU64>,
}

impl ScriptedBackend {
    /// Starts it on an ephemeral port.
    pub fn start(delay: Duration, idle_close: Option<Duration>) -> ScriptedBackend {
        let answer = b"HTTP/1.1 200 OK\r\nx-backend: scripted\r\nContent-Length: 0\r\n\r\n";
        ScriptedBackend::start_with(delay, idle_close, answer.to_vec())
    }

    /// Starts one that answers every request head with `answer` as is
    /// (for upstream responses no real server would send).
    pub fn answering(answer: &[u8]) -> ScriptedBackend {
        ScriptedBackend::start_with(Duration::ZERO, None, answer.to_vec())
    }

    /// Requests answered so far.
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::SeqCst)
    }

    /// Connections accepted so far.
    pub fn accepted(&self) -> u64 {
        self.accepted.load(Ordering::SeqCst)
    }

    fn start_with(
        delay: Duration,
        idle_close: Option<Duration>,
        answer: Vec<u8>,
    ) -> ScriptedBackend {
        let answer: Arc<[u8]> = answer.into();
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let requests = Arc::new(AtomicU64::new(0));
        let accepted = Arc::new(AtomicU64::new(0));
        let (req, acc) = (requests.clone(), accepted.clone());
        std::thread::spawn(move || {
            for mut stream in listener.incoming().flatten() {
                acc.fetch_add(1, Ordering::SeqCst);
                let req = req.clone();
                let answer = answer.clone();
                std::thread::spawn(move || {
                    let _ = stream
                        .set_read_timeout(Some(idle_close.unwrap_or(Duration::from_secs(60))));
                    let mut buf = Vec::new();
                    let mut piece = [0u8; 4096];
                    loop {
                        match stream.read(&mut piece) {
                            Ok(0) | Err(_) => return, // closed, or idle too long
                            Ok(n) => buf.extend_from_slice(&piece[..n]),
                        }
                        while let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                            buf.drain(..end + 4);
                            req.fetch_add(1, Ordering::SeqCst);
                            std::thread::sleep(delay);
                            if stream.write_all(&answer).is_err() {
                                return;
                            }
                        }
                    }
                });
            }
        });
        ScriptedBackend {
            port,
            requests,
            accepted,
        }
    }
}
