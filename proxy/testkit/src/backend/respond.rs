//! Answering one request according to its path (see the module docs of
//! [`backend`](super)).

use std::fmt::Write as _;
use std::io;
use std::net::Shutdown;
use std::thread;
use std::time::{Duration, Instant};

use super::request::{num_param, target_path, Request};
use super::write::{response_head, write_all, write_pattern, write_pattern_chunked};
use super::{Shared, HANG_LIMIT, SLOW_LIMIT};
use crate::pattern::xxh3_hex;
use crate::wire::Wire;

/// What to do with the connection after a response.
pub(super) enum Next {
    KeepAlive,
    Close,
    Upgrade,
}

/// Sleeps `total`, waking to check the stop flag; false if stopped.
fn sleep_unless_stopped(wire: &Wire, total: Duration) -> bool {
    let deadline = Instant::now() + total;
    loop {
        if wire.stopped() {
            return false;
        }
        let now = Instant::now();
        if now >= deadline {
            return true;
        }
        thread::sleep((deadline - now).min(Duration::from_millis(10)));
    }
}

/// The default text body describing the request.
fn describe(name: &str, req: &Request) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "backend={name}");
    let _ = writeln!(s, "method={}", req.method);
    let _ = writeln!(s, "path={}", req.target);
    let _ = writeln!(s, "version=1.{}", req.version);
    let _ = writeln!(s, "body-len={}", req.body.len());
    let _ = writeln!(s, "body-xxh3={}", xxh3_hex(&req.body));
    for (n, v) in &req.headers {
        let _ = writeln!(s, "h:{}={v}", n.to_ascii_lowercase());
    }
    s
}

/// Answers one request according to its path.
pub(super) fn respond(wire: &Wire, shared: &Shared, req: &Request) -> io::Result<Next> {
    let name = shared.name.as_str();
    let head_only = req.method.eq_ignore_ascii_case("HEAD");
    let keep = req.keep_alive();
    let next = if keep { Next::KeepAlive } else { Next::Close };
    let v = req.version;
    let stream = &wire.stream;
    let (path, query) = target_path(&req.target);
    let delay = shared.delay_ms.load(std::sync::atomic::Ordering::SeqCst);
    if delay > 0 && !sleep_unless_stopped(wire, Duration::from_millis(delay).min(SLOW_LIMIT)) {
        return Ok(Next::Close);
    }

    // A fixed-length answer (body suppressed for HEAD).
    let fixed = |status: u16, ctype: &str, body: &[u8]| -> io::Result<Next> {
        let head = response_head(
            status,
            name,
            v,
            keep,
            &[
                ("Content-Type", ctype.to_string()),
                ("Content-Length", body.len().to_string()),
            ],
        );
        let body = if head_only { &[][..] } else { body };
        write_all(stream, &[&head, body])?;
        Ok(if keep { Next::KeepAlive } else { Next::Close })
    };
    let bad = |msg: String| -> io::Result<Next> {
        fixed(400, "text/plain", format!("{msg}\n").as_bytes())
    };

    if (path == "/ws" || path.starts_with("/ws/")) && req.is_websocket_upgrade() {
        return match req.header("sec-websocket-key") {
            Some(key) => {
                let accept = tungstenite::handshake::derive_accept_key(key.trim().as_bytes());
                let head = response_head(
                    101,
                    name,
                    1,
                    true,
                    &[
                        ("Upgrade", "websocket".into()),
                        ("Connection", "Upgrade".into()),
                        ("Sec-WebSocket-Accept", accept),
                    ],
                );
                write_all(stream, &[&head])?;
                Ok(Next::Upgrade)
            }
            None => bad("missing Sec-WebSocket-Key".into()),
        };
    }

    match path {
        "/hang" => {
            sleep_unless_stopped(wire, HANG_LIMIT);
            let _ = wire.stream.shutdown(Shutdown::Both);
            Ok(Next::Close)
        }
        "/slow" => {
            let ms = match num_param(query, "ms", Some(1000)) {
                Ok(ms) => ms,
                Err(e) => return bad(e),
            };
            if !sleep_unless_stopped(wire, Duration::from_millis(ms).min(SLOW_LIMIT)) {
                return Ok(Next::Close);
            }
            fixed(200, "text/plain", describe(name, req).as_bytes())
        }
        "/echo-body" => fixed(200, "application/octet-stream", &req.body),
        "/bytes" => {
            let n = match num_param(query, "n", None) {
                Ok(n) => n,
                Err(e) => return bad(e),
            };
            let head = response_head(
                200,
                name,
                v,
                keep,
                &[
                    ("Content-Type", "application/octet-stream".into()),
                    ("Content-Length", n.to_string()),
                ],
            );
            write_all(stream, &[&head])?;
            if !head_only {
                write_pattern(stream, n)?;
            }
            Ok(next)
        }
        "/chunked" => {
            let (n, size) = match (
                num_param(query, "n", None),
                num_param(query, "size", Some(1000)),
            ) {
                (Ok(_), Ok(0)) => return bad("size must be positive".into()),
                (Ok(n), Ok(size)) => (n, size),
                (Err(e), _) | (_, Err(e)) => return bad(e),
            };
            if v == 0 {
                // HTTP/1.0 has no chunked coding: delimit by close instead.
                let head = response_head(
                    200,
                    name,
                    v,
                    false,
                    &[("Content-Type", "application/octet-stream".into())],
                );
                write_all(stream, &[&head])?;
                if !head_only {
                    write_pattern(stream, n)?;
                }
                return Ok(Next::Close);
            }
            let head = response_head(
                200,
                name,
                v,
                keep,
                &[
                    ("Content-Type", "application/octet-stream".into()),
                    ("Transfer-Encoding", "chunked".into()),
                ],
            );
            write_all(stream, &[&head])?;
            if !head_only {
                write_pattern_chunked(stream, n, size)?;
            }
            Ok(next)
        }
        "/close-delimited" => {
            let n = match num_param(query, "n", None) {
                Ok(n) => n,
                Err(e) => return bad(e),
            };
            let head = response_head(
                200,
                name,
                v,
                false,
                &[("Content-Type", "application/octet-stream".into())],
            );
            write_all(stream, &[&head])?;
            if !head_only {
                write_pattern(stream, n)?;
            }
            Ok(Next::Close)
        }
        _ => {
            if let Some(code) = path.strip_prefix("/status/") {
                let status = match code.parse::<u16>() {
                    Ok(s) if (200..=599).contains(&s) => s,
                    _ => return bad(format!("bad status {code:?} (want 200..=599)")),
                };
                if status == 204 || status == 304 {
                    let head = response_head(status, name, v, keep, &[]);
                    write_all(stream, &[&head])?;
                    return Ok(next);
                }
                let body = format!("status {status} from {name}\n");
                return fixed(status, "text/plain", body.as_bytes());
            }
            fixed(200, "text/plain", describe(name, req).as_bytes())
        }
    }
}
