//! The gRPC origin of the `grpc-unary` scenario: an HTTP/2 cleartext
//! (prior knowledge) server on tokio + h2 that answers every request as a
//! unary gRPC call: HEADERS (`:status 200`, `content-type:
//! application/grpc`), one DATA frame echoing the request's message (its
//! 5-byte prefix included), and trailers `grpc-status: 0`.
//!
//! It listens on one port per proxy (and one for the direct reference
//! run), so it can tell how many upstream connections each proxy opened
//! and held. A stats port answers every connection with one line per port,
//! `PORT ACCEPTED OPEN PEAK`, and then restarts each PEAK from OPEN.
//!
//! It runs as `rauta-bench --serve-grpc-origin PORT,… --grpc-origin-stats
//! PORT`, a single-threaded runtime pinned to the client CPU. Each
//! connection task accepts every stream that is ready before the stream
//! tasks answer, so h2 writes the answers of one read in one batch (3–4 µs
//! of CPU per call measured here, beside h2load on one core: it must not
//! be the bottleneck).

use std::cell::Cell;
use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpStream};
use std::rc::Rc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use bytes::{Bytes, BytesMut};
use h2::server::SendResponse;
use h2::RecvStream;
use http::{HeaderMap, HeaderValue, Request, Response};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream as TokioStream};

use crate::workload::{grpc_frame, GRPC_PAYLOAD};

/// Connection counts of one listening port.
#[derive(Debug, Default)]
struct PortStats {
    port: u16,
    accepted: Cell<u64>,
    open: Cell<u64>,
    peak: Cell<u64>,
}

/// What the stats port reports for one listening port.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Connections accepted since the start.
    pub accepted: u64,
    /// Connections open now.
    pub open: u64,
    /// The most connections open at once since the previous report.
    pub peak: u64,
}

/// Serves until killed: h2c gRPC on `ports`, the counts on `stats_port`.
pub fn serve(ports: &[u16], stats_port: u16) -> Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .context("start the tokio runtime")?;
    let local = tokio::task::LocalSet::new();
    local.block_on(&rt, async move {
        let mut all = Vec::new();
        for port in ports {
            let listener = TcpListener::bind(("127.0.0.1", *port))
                .await
                .with_context(|| format!("bind 127.0.0.1:{port}"))?;
            let stats = Rc::new(PortStats {
                port: *port,
                ..PortStats::default()
            });
            all.push(Rc::clone(&stats));
            tokio::task::spawn_local(accept_loop(listener, stats));
        }
        let stats_listener = TcpListener::bind(("127.0.0.1", stats_port))
            .await
            .with_context(|| format!("bind 127.0.0.1:{stats_port}"))?;
        loop {
            let (mut sock, _) = stats_listener.accept().await?;
            let mut text = String::new();
            for s in &all {
                text.push_str(&format!(
                    "{} {} {} {}\n",
                    s.port,
                    s.accepted.get(),
                    s.open.get(),
                    s.peak.get()
                ));
                s.peak.set(s.open.get());
            }
            let _ = sock.write_all(text.as_bytes()).await;
        }
    })
}

async fn accept_loop(listener: TcpListener, stats: Rc<PortStats>) {
    loop {
        let Ok((sock, _)) = listener.accept().await else {
            continue;
        };
        stats.accepted.set(stats.accepted.get() + 1);
        stats.open.set(stats.open.get() + 1);
        stats.peak.set(stats.peak.get().max(stats.open.get()));
        let stats = Rc::clone(&stats);
        tokio::task::spawn_local(async move {
            connection(sock).await;
            stats.open.set(stats.open.get() - 1);
        });
    }
}

/// One client connection: accepts streams until the client goes away.
async fn connection(sock: TokioStream) {
    let _ = sock.set_nodelay(true);
    let handshake = h2::server::Builder::new()
        .initial_window_size(1 << 20)
        .initial_connection_window_size(4 << 20)
        .handshake::<_, Bytes>(sock);
    let Ok(mut conn) = handshake.await else {
        return;
    };
    // Each accepted stream gets its own task, so the ones ready in this
    // read are all accepted before any is answered (h2 flushes when the
    // connection is polled next: one write for the whole batch).
    while let Some(Ok((request, respond))) = conn.accept().await {
        tokio::task::spawn_local(async move {
            let _ = call(request, respond).await;
        });
    }
}

/// One unary call: reads the request's message, echoes it, `grpc-status: 0`.
async fn call(request: Request<RecvStream>, mut respond: SendResponse<Bytes>) -> Result<()> {
    let mut body = request.into_body();
    let mut message = BytesMut::new();
    while let Some(chunk) = body.data().await {
        let chunk = chunk?;
        let _ = body.flow_control().release_capacity(chunk.len());
        message.extend_from_slice(&chunk);
    }
    let message = if message.is_empty() {
        Bytes::from(grpc_frame(GRPC_PAYLOAD))
    } else {
        message.freeze()
    };
    let head = Response::builder()
        .status(200)
        .header("content-type", "application/grpc")
        .body(())?;
    let mut send = respond.send_response(head, false)?;
    send.send_data(message, false)?;
    let mut trailers = HeaderMap::new();
    trailers.insert("grpc-status", HeaderValue::from_static("0"));
    send.send_trailers(trailers)?;
    Ok(())
}

/// Asks the origin's stats port for the counts of every listening port.
pub fn counts(stats_port: u16) -> Result<Vec<(u16, Counts)>> {
    let addr = SocketAddr::from(([127, 0, 0, 1], stats_port));
    let sock = TcpStream::connect_timeout(&addr, Duration::from_secs(2))
        .with_context(|| format!("connect to the origin's stats port {stats_port}"))?;
    sock.set_read_timeout(Some(Duration::from_secs(2)))?;
    let mut out = Vec::new();
    for line in BufReader::new(sock).lines() {
        out.push(parse_counts(&line?)?);
    }
    if out.is_empty() {
        bail!("the origin's stats port answered nothing");
    }
    Ok(out)
}

/// Parses one `PORT ACCEPTED OPEN PEAK` line.
fn parse_counts(line: &str) -> Result<(u16, Counts)> {
    let f: Vec<u64> = line
        .split_whitespace()
        .map(str::parse)
        .collect::<Result<_, _>>()
        .with_context(|| format!("bad stats line {line:?}"))?;
    let [port, accepted, open, peak] = f[..] else {
        bail!("bad stats line {line:?}");
    };
    Ok((
        u16::try_from(port)?,
        Counts {
            accepted,
            open,
            peak,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_lines_parse() {
        let (port, c) = parse_counts("4000 12 3 7").expect("parses");
        assert_eq!(port, 4000);
        assert_eq!(
            c,
            Counts {
                accepted: 12,
                open: 3,
                peak: 7
            }
        );
        assert!(parse_counts("4000 12 3").is_err());
        assert!(parse_counts("x 1 2 3").is_err());
    }
}
