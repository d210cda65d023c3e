//! The admin listener: a small blocking HTTP server on its own thread, off
//! the shard cores. /healthz and /readyz today.

use crate::control::Readiness;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::time::Duration;

/// Starts the admin server on an already bound listener.
pub fn spawn(
    listener: TcpListener,
    readiness: Arc<Readiness>,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name("rauta-admin".into())
        .spawn(move || {
            for stream in listener.incoming().flatten() {
                if let Err(e) = handle(stream, &readiness) {
                    tracing::debug!(error = %e, "admin request failed");
                }
            }
        })
}

fn handle(mut stream: TcpStream, readiness: &Readiness) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    stream.set_write_timeout(Some(Duration::from_secs(5)))?;
    let mut buf = [0u8; 4096];
    let mut len = 0;
    let path = loop {
        let n = stream.read(&mut buf[len..])?;
        if n == 0 {
            return Ok(());
        }
        len += n;
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut req = httparse::Request::new(&mut headers);
        match req.parse(&buf[..len]) {
            Ok(httparse::Status::Complete(_)) => break req.path.unwrap_or("/").to_string(),
            Ok(httparse::Status::Partial) if len < buf.len() => continue,
            _ => return respond(&mut stream, 400, "bad request\n"),
        }
    };
    let path = path.split('?').next().unwrap_or("/");
    match path {
        "/healthz" => respond(&mut stream, 200, "ok\n"),
        "/readyz" => match readiness.ready_generation() {
            Some(generation) => respond(
                &mut stream,
                200,
                &format!("ready generation={generation}\n"),
            ),
            None => respond(
                &mut stream,
                503,
                "not ready: no route table live on every shard yet\n",
            ),
        },
        _ => respond(&mut stream, 404, "not found\n"),
    }
}

fn respond(stream: &mut TcpStream, status: u16, body: &str) -> std::io::Result<()> {
    let reason = match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        _ => "Service Unavailable",
    };
    write!(
        stream,
        "HTTP/1.1 {status} {reason}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}
