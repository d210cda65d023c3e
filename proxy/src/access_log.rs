//! The access log: one JSON line per request, written to stdout by a
//! dedicated thread. Shards append lines to a local batch and hand whole
//! batches over a bounded channel; when the writer falls behind, batches are
//! dropped and counted, so a slow stdout never blocks a request.

use crossbeam_channel::{Receiver, Sender, TrySendError};
use std::cell::{Cell, RefCell};
use std::io::Write;
use std::net::SocketAddr;
use std::time::SystemTime;

/// Batches in flight to the writer before shards start dropping.
const QUEUE_BATCHES: usize = 256;
/// A shard hands its batch over once it is this large (or on its timer).
const BATCH_BYTES: usize = 32 * 1024;

/// Starts the writer thread; returns the sender every shard clones.
pub fn spawn_writer() -> std::io::Result<Sender<Vec<u8>>> {
    let (tx, rx): (Sender<Vec<u8>>, Receiver<Vec<u8>>) = crossbeam_channel::bounded(QUEUE_BATCHES);
    std::thread::Builder::new()
        .name("rauta-access-log".into())
        .spawn(move || {
            let stdout = std::io::stdout();
            for batch in rx {
                let mut out = stdout.lock();
                if out.write_all(&batch).and_then(|()| out.flush()).is_err() {
                    // Nowhere to report it but stderr; keep draining so shards never block.
                    eprintln!("rauta: writing the access log to stdout failed");
                }
            }
        })?;
    Ok(tx)
}

/// One shard's side of the access log.
#[derive(Debug)]
pub struct ShardLog {
    tx: Sender<Vec<u8>>,
    batch: RefCell<Vec<u8>>,
    lines: Cell<u64>,
    dropped: Cell<u64>,
}

impl ShardLog {
    /// A shard's buffer feeding the writer behind `tx`.
    pub fn new(tx: Sender<Vec<u8>>) -> ShardLog {
        ShardLog {
            tx,
            batch: RefCell::new(Vec::with_capacity(BATCH_BYTES * 2)),
            lines: Cell::new(0),
            dropped: Cell::new(0),
        }
    }

    /// Appends a finished line (without newline).
    pub fn push(&self, line: &[u8]) {
        let full = {
            let mut batch = self.batch.borrow_mut();
            batch.extend_from_slice(line);
            batch.push(b'\n');
            batch.len() >= BATCH_BYTES
        };
        self.lines.set(self.lines.get() + 1);
        if full {
            self.flush();
        }
    }

    /// Hands the current batch to the writer (called on a timer too).
    pub fn flush(&self) {
        let mut batch = self.batch.borrow_mut();
        if batch.is_empty() {
            return;
        }
        let lines = self.lines.replace(0);
        let full = std::mem::replace(&mut *batch, Vec::with_capacity(BATCH_BYTES * 2));
        match self.tx.try_send(full) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                self.dropped.set(self.dropped.get() + lines);
            }
        }
    }

    /// Lines wait in the batch, to be flushed.
    pub fn has_lines(&self) -> bool {
        !self.batch.borrow().is_empty()
    }

    /// Lines dropped because the writer fell behind.
    pub fn dropped(&self) -> u64 {
        self.dropped.get()
    }
}

/// Writes `s` as a JSON string (with quotes).
pub fn json_str(out: &mut Vec<u8>, s: &[u8]) {
    out.push(b'"');
    for chunk in s.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '"' => out.extend_from_slice(b"\\\""),
                '\\' => out.extend_from_slice(b"\\\\"),
                c if (c as u32) < 0x20 => {
                    let _ = write!(out, "\\u{:04x}", c as u32);
                }
                c => {
                    let mut utf8 = [0u8; 4];
                    out.extend_from_slice(c.encode_utf8(&mut utf8).as_bytes());
                }
            }
        }
        if !chunk.invalid().is_empty() {
            out.extend_from_slice("\u{fffd}".as_bytes());
        }
    }
    out.push(b'"');
}

/// Starts a line with the request's fields; [`finish_line`] adds the rest.
pub fn start_line(
    out: &mut Vec<u8>,
    client: SocketAddr,
    method: &str,
    host: &[u8],
    target: &str,
    request_id: &[u8],
) {
    out.clear();
    let _ = write!(
        out,
        "{{\"time\":\"{}\",\"client\":\"{client}\",\"method\":",
        humantime::format_rfc3339_millis(SystemTime::now())
    );
    json_str(out, method.as_bytes());
    out.extend_from_slice(b",\"host\":");
    json_str(out, host);
    out.extend_from_slice(b",\"path\":");
    json_str(out, target.as_bytes());
    out.extend_from_slice(b",\"request_id\":");
    json_str(out, request_id);
}

/// What the end of the exchange adds to a line.
#[derive(Debug)]
pub struct LineEnd<'a> {
    /// Status sent to the client.
    pub status: u16,
    /// Request bytes received.
    pub bytes_in: u64,
    /// Response bytes sent.
    pub bytes_out: u64,
    /// Head complete to last byte, in seconds.
    pub request_time: f64,
    /// The upstream endpoint, when one was used.
    pub upstream: Option<SocketAddr>,
    /// Status the upstream answered, when it did.
    pub upstream_status: Option<u16>,
    /// Time with the upstream, in seconds.
    pub upstream_time: Option<f64>,
    /// Endpoints tried before `upstream`, with why each failed.
    pub retries: &'a [(SocketAddr, &'static str)],
    /// `namespace/ingress|host|path|type|backend`, when a route was chosen.
    pub route: Option<&'a str>,
    /// Trace id and span id (hex), when the request has a trace context.
    pub trace: Option<([u8; 32], [u8; 16])>,
}

/// Completes a line started by [`start_line`].
pub fn finish_line(out: &mut Vec<u8>, end: &LineEnd) {
    let _ = write!(
        out,
        ",\"status\":{},\"bytes_in\":{},\"bytes_out\":{},\"request_time\":{:.6}",
        end.status, end.bytes_in, end.bytes_out, end.request_time
    );
    match end.upstream {
        Some(addr) => {
            let _ = write!(out, ",\"upstream\":\"{addr}\"");
        }
        None => out.extend_from_slice(b",\"upstream\":null"),
    }
    match end.upstream_status {
        Some(s) => {
            let _ = write!(out, ",\"upstream_status\":{s}");
        }
        None => out.extend_from_slice(b",\"upstream_status\":null"),
    }
    match end.upstream_time {
        Some(t) => {
            let _ = write!(out, ",\"upstream_time\":{t:.6}");
        }
        None => out.extend_from_slice(b",\"upstream_time\":null"),
    }
    out.extend_from_slice(b",\"retries\":[");
    for (i, (addr, reason)) in end.retries.iter().enumerate() {
        let comma = if i > 0 { "," } else { "" };
        let _ = write!(
            out,
            "{comma}{{\"upstream\":\"{addr}\",\"reason\":\"{reason}\"}}"
        );
    }
    out.push(b']');
    out.extend_from_slice(b",\"route\":");
    match end.route {
        Some(r) => json_str(out, r.as_bytes()),
        None => out.extend_from_slice(b"null"),
    }
    if let Some((trace_id, span_id)) = &end.trace {
        out.extend_from_slice(b",\"trace_id\":\"");
        out.extend_from_slice(trace_id);
        out.extend_from_slice(b"\",\"span_id\":\"");
        out.extend_from_slice(span_id);
        out.push(b'"');
    }
    out.push(b'}');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_valid_json() {
        let mut out = Vec::new();
        start_line(
            &mut out,
            "192.0.2.1:5000".parse().expect("addr"),
            "GET",
            b"ex.com\xff",
            "/a\"b\\c\x01?q",
            b"rid",
        );
        let end = LineEnd {
            status: 200,
            bytes_in: 10,
            bytes_out: 20,
            request_time: 0.0015,
            upstream: Some("10.0.0.1:80".parse().expect("addr")),
            upstream_status: Some(200),
            upstream_time: Some(0.001),
            retries: &[("10.0.0.2:80".parse().expect("addr"), "connect_error")],
            route: Some("ns/ing|ex.com|/a|Some(Prefix)|ns/svc:80"),
            trace: Some(([b'a'; 32], [b'b'; 16])),
        };
        finish_line(&mut out, &end);
        let v: serde_json::Value = serde_json::from_slice(&out).expect("valid JSON");
        assert_eq!(v["path"], "/a\"b\\c\u{1}?q");
        assert_eq!(v["host"], "ex.com\u{fffd}");
        assert_eq!(v["status"], 200);
        assert_eq!(v["upstream"], "10.0.0.1:80");
        assert_eq!(v["retries"][0]["upstream"], "10.0.0.2:80");
        assert_eq!(v["retries"][0]["reason"], "connect_error");
        assert_eq!(v["span_id"], "bbbbbbbbbbbbbbbb");
    }

    #[test]
    fn a_full_queue_drops_and_counts() {
        let (tx, rx) = crossbeam_channel::bounded(1);
        let log = ShardLog::new(tx);
        log.push(b"one");
        log.flush();
        log.push(b"two");
        log.push(b"three");
        log.flush();
        assert_eq!(log.dropped(), 2);
        assert_eq!(rx.try_recv().expect("first batch"), b"one\n");
    }
}
