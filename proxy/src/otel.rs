//! OpenTelemetry traces: W3C `traceparent` propagation and one SERVER span
//! per sampled request, exported over OTLP/HTTP (JSON encoding) by one
//! exporter thread off the shard cores.
//!
//! A shard decides in the request phase (parse the client's `traceparent`,
//! sample by ratio unless a parent decided), writes its own `traceparent`
//! upstream, and at the end appends the finished span to a local batch.
//! Whole batches go to the exporter over a bounded channel with `try_send`:
//! when it is full the batch is dropped and its spans counted, so a slow or
//! stalled collector never blocks a shard. Nothing here runs, and nothing
//! is parsed, without `--otlp-endpoint`.

use crate::balance::least_request::Rng;
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, TrySendError};
use std::cell::{Cell, RefCell};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// A shard hands its batch over once it holds this many spans (or on its tick).
const SHARD_BATCH: usize = 64;
/// The exporter posts once it holds this many spans, or after [`EXPORT_EVERY`].
const EXPORT_BATCH: usize = 512;
const EXPORT_EVERY: Duration = Duration::from_secs(1);
/// Connect, write and read limit of one export POST.
const EXPORT_TIMEOUT: Duration = Duration::from_secs(2);

/// Spans exported (the collector answered 2xx) since start.
static EXPORTED: AtomicU64 = AtomicU64::new(0);
/// Spans whose export failed (no connection, timeout, non-2xx) since start.
static FAILED: AtomicU64 = AtomicU64::new(0);

/// The `--otlp-*` flags.
#[derive(Debug, Clone)]
pub struct OtelConfig {
    /// `http://host:port[/base]`: spans go to `{base}/v1/traces`.
    pub endpoint: String,
    /// Head sampling ratio for requests without a sampled parent, 0..=1.
    pub ratio: f64,
    /// `service.name` of the resource.
    pub service_name: String,
    /// Further resource attributes.
    pub resource: Vec<(String, String)>,
    /// Spans in flight to the exporter before shards drop.
    pub queue_spans: usize,
}

impl OtelConfig {
    /// The sampling threshold compared with a 64-bit random number.
    fn threshold(&self) -> u64 {
        if self.ratio >= 1.0 {
            u64::MAX
        } else if self.ratio <= 0.0 {
            0
        } else {
            (self.ratio * u64::MAX as f64) as u64
        }
    }
}

/// A parsed W3C `traceparent` (version 00).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Parent {
    pub trace_id: [u8; 16],
    pub span_id: [u8; 8],
    pub sampled: bool,
}

fn unhex(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    }
}

fn unhex_into(s: &[u8], out: &mut [u8]) -> Option<()> {
    for (i, o) in out.iter_mut().enumerate() {
        *o = unhex(s[2 * i])? << 4 | unhex(s[2 * i + 1])?;
    }
    Some(())
}

/// Parses `00-<32 hex trace id>-<16 hex parent id>-<2 hex flags>`
/// strictly: 55 characters, lower-case hex, non-zero ids. Anything else
/// counts as no parent.
pub fn parse_traceparent(v: &[u8]) -> Option<Parent> {
    if v.len() != 55 || &v[..3] != b"00-" || v[35] != b'-' || v[52] != b'-' {
        return None;
    }
    let mut trace_id = [0u8; 16];
    let mut span_id = [0u8; 8];
    let mut flags = [0u8; 1];
    unhex_into(&v[3..35], &mut trace_id)?;
    unhex_into(&v[36..52], &mut span_id)?;
    unhex_into(&v[53..55], &mut flags)?;
    if trace_id == [0; 16] || span_id == [0; 8] {
        return None;
    }
    Some(Parent {
        trace_id,
        span_id,
        sampled: flags[0] & 1 == 1,
    })
}

/// Lower-case hex of `bytes` into `out` (twice as long).
pub fn hex_into(bytes: &[u8], out: &mut [u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for (i, b) in bytes.iter().enumerate() {
        out[2 * i] = DIGITS[usize::from(b >> 4)];
        out[2 * i + 1] = DIGITS[usize::from(b & 0xf)];
    }
}

/// The request's span context: rauta's span in the client's trace or a new one.
#[derive(Debug, Clone, Copy)]
pub struct Context {
    pub trace_id: [u8; 16],
    pub span_id: [u8; 8],
    /// The client's span, when its `traceparent` was continued.
    pub parent: Option<[u8; 8]>,
    /// The span is recorded and exported.
    pub sampled: bool,
}

impl Context {
    /// The `traceparent` value the upstream gets: our span as its parent.
    pub fn traceparent(&self) -> [u8; 55] {
        let mut v = *b"00-00000000000000000000000000000000-0000000000000000-00";
        hex_into(&self.trace_id, &mut v[3..35]);
        hex_into(&self.span_id, &mut v[36..52]);
        if self.sampled {
            v[54] = b'1';
        }
        v
    }

    /// Trace id and span id as hex, for the access log.
    pub fn ids_hex(&self) -> ([u8; 32], [u8; 16]) {
        let (mut t, mut s) = ([0u8; 32], [0u8; 16]);
        hex_into(&self.trace_id, &mut t);
        hex_into(&self.span_id, &mut s);
        (t, s)
    }
}

/// Decides the request's context. `incoming` is the client's
/// `traceparent` header when the route trusts it. `None`: no parent and not
/// sampled, nothing is invented and the request goes on untouched.
pub fn decide(cfg: &OtelConfig, rng: &Rng, incoming: Option<&[u8]>) -> Option<Context> {
    let parent = incoming.and_then(parse_traceparent);
    let mut span_id = [0u8; 8];
    let new_span = |span_id: &mut [u8; 8]| loop {
        let r = rng.next();
        if r != 0 {
            *span_id = r.to_be_bytes();
            break;
        }
    };
    match parent {
        Some(p) => {
            new_span(&mut span_id);
            Some(Context {
                trace_id: p.trace_id,
                span_id,
                parent: Some(p.span_id),
                sampled: p.sampled,
            })
        }
        None => {
            let threshold = cfg.threshold();
            if threshold == 0 || (threshold != u64::MAX && rng.next() > threshold) {
                return None;
            }
            let mut trace_id = [0u8; 16];
            trace_id[..8].copy_from_slice(&rng.next().to_be_bytes());
            trace_id[8..].copy_from_slice(&(rng.next() | 1).to_be_bytes());
            new_span(&mut span_id);
            Some(Context {
                trace_id,
                span_id,
                parent: None,
                sampled: true,
            })
        }
    }
}

/// Nanoseconds since the Unix epoch.
pub fn unix_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// What a sampled request records at its start (one allocation per
/// sampled request, none otherwise).
#[derive(Debug)]
pub struct Started {
    pub start_ns: u64,
    pub method: Box<str>,
    pub path: Box<str>,
    pub host: Box<str>,
    pub scheme: &'static str,
    pub port: u16,
    pub client: std::net::IpAddr,
}

/// The request's trace: its context, and for a sampled one what the span needs.
#[derive(Debug)]
pub struct Trace {
    pub ctx: Context,
    pub started: Option<Box<Started>>,
}

/// A finished span as handed to the exporter.
#[derive(Debug)]
pub struct Span {
    pub ctx: Context,
    pub started: Box<Started>,
    pub end_ns: u64,
    pub status: u16,
    /// `namespace/ingress|host|path|type|backend`.
    pub route: Option<Arc<str>>,
    pub upstream: Option<SocketAddr>,
    /// What went wrong, as the metrics name it (`upstream_timeout`), when
    /// rauta knows.
    pub cause: Option<&'static str>,
}

/// One shard's side of the exporter.
#[derive(Debug)]
pub struct ShardSpans {
    pub cfg: Arc<OtelConfig>,
    tx: Sender<Vec<Span>>,
    batch: RefCell<Vec<Span>>,
    dropped: Cell<u64>,
}

impl ShardSpans {
    pub fn new(cfg: Arc<OtelConfig>, tx: Sender<Vec<Span>>) -> ShardSpans {
        ShardSpans {
            cfg,
            tx,
            batch: RefCell::new(Vec::new()),
            dropped: Cell::new(0),
        }
    }

    /// Queues a finished span.
    pub fn push(&self, span: Span) {
        let full = {
            let mut batch = self.batch.borrow_mut();
            batch.push(span);
            batch.len() >= SHARD_BATCH
        };
        if full {
            self.flush();
        }
    }

    /// Hands the batch to the exporter, or drops and counts it.
    pub fn flush(&self) {
        let batch = std::mem::take(&mut *self.batch.borrow_mut());
        if batch.is_empty() {
            return;
        }
        let n = batch.len() as u64;
        match self.tx.try_send(batch) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                self.dropped.set(self.dropped.get() + n);
            }
        }
    }

    /// Spans wait in the shard's batch.
    pub fn has_spans(&self) -> bool {
        !self.batch.borrow().is_empty()
    }

    /// Spans dropped because the exporter fell behind, since start.
    pub fn dropped(&self) -> u64 {
        self.dropped.get()
    }
}

/// Starts the exporter thread; returns the sender every shard clones.
pub fn spawn_exporter(cfg: Arc<OtelConfig>) -> std::io::Result<Sender<Vec<Span>>> {
    let batches = (cfg.queue_spans / SHARD_BATCH).max(1);
    let (tx, rx) = crossbeam_channel::bounded(batches);
    std::thread::Builder::new()
        .name("rauta-otlp".into())
        .spawn(move || export_loop(&cfg, &rx))?;
    Ok(tx)
}

fn export_loop(cfg: &OtelConfig, rx: &Receiver<Vec<Span>>) {
    let mut target = Target::parse(&cfg.endpoint);
    let mut pending: Vec<Span> = Vec::new();
    let mut last = Instant::now();
    loop {
        let wait = EXPORT_EVERY.saturating_sub(last.elapsed());
        let closed = match rx.recv_timeout(wait) {
            Ok(batch) => {
                pending.extend(batch);
                false
            }
            Err(RecvTimeoutError::Timeout) => false,
            Err(RecvTimeoutError::Disconnected) => true,
        };
        if pending.len() >= EXPORT_BATCH || last.elapsed() >= EXPORT_EVERY || closed {
            if !pending.is_empty() {
                let body = encode(cfg, &pending);
                let n = pending.len() as u64;
                match target.as_mut().map(|t| t.post(&body)) {
                    Some(Ok(())) => EXPORTED.fetch_add(n, Ordering::Relaxed),
                    Some(Err(e)) => {
                        tracing::debug!(error = %e, spans = n, "OTLP export failed");
                        FAILED.fetch_add(n, Ordering::Relaxed)
                    }
                    None => FAILED.fetch_add(n, Ordering::Relaxed),
                };
                pending.clear();
            }
            last = Instant::now();
        }
        if closed {
            return;
        }
    }
}

/// Spans the collector took (answered 2xx), since start.
pub fn exported_total() -> u64 {
    EXPORTED.load(Ordering::Relaxed)
}

/// Spans the exporter gave up on (no connection, timeout, non-2xx), since start.
pub fn failed_total() -> u64 {
    FAILED.load(Ordering::Relaxed)
}

/// Where the exporter posts, and its connection kept between posts.
#[derive(Debug)]
struct Target {
    authority: String,
    path: String,
    conn: Option<TcpStream>,
}

/// The largest collector answer head read.
const ANSWER_HEAD: usize = 8192;

impl Target {
    fn parse(endpoint: &str) -> Option<Target> {
        let rest = endpoint.strip_prefix("http://")?;
        let (authority, base) = match rest.find('/') {
            Some(i) => (&rest[..i], rest[i..].trim_end_matches('/')),
            None => (rest, ""),
        };
        Some(Target {
            authority: authority.to_string(),
            path: format!("{base}/v1/traces"),
            conn: None,
        })
    }

    fn connect(&self) -> std::io::Result<TcpStream> {
        let addr = self
            .authority
            .to_socket_addrs()?
            .next()
            .ok_or_else(|| std::io::Error::other("no address"))?;
        let s = TcpStream::connect_timeout(&addr, EXPORT_TIMEOUT)?;
        s.set_write_timeout(Some(EXPORT_TIMEOUT))?;
        s.set_read_timeout(Some(EXPORT_TIMEOUT))?;
        s.set_nodelay(true)?;
        Ok(s)
    }

    /// One HTTP/1.1 POST, on the kept connection when there is one (once
    /// more on a new connection when the kept one turns out closed before
    /// any answer); Ok on a 2xx answer.
    fn post(&mut self, body: &[u8]) -> std::io::Result<()> {
        if let Some(mut s) = self.conn.take() {
            match self.post_on(&mut s, body) {
                Ok(keep) => {
                    if keep {
                        self.conn = Some(s);
                    }
                    return Ok(());
                }
                Err(Attempt::Stale) => {}
                Err(Attempt::Failed(e)) => return Err(e),
            }
        }
        let mut s = self.connect()?;
        match self.post_on(&mut s, body) {
            Ok(keep) => {
                if keep {
                    self.conn = Some(s);
                }
                Ok(())
            }
            Err(Attempt::Stale) => Err(std::io::Error::other("collector closed the connection")),
            Err(Attempt::Failed(e)) => Err(e),
        }
    }

    /// Sends the POST on `s` and reads the whole answer; `Ok(true)` when
    /// the connection can carry the next one.
    fn post_on(&self, s: &mut TcpStream, body: &[u8]) -> Result<bool, Attempt> {
        let head = format!(
            "POST {} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            self.path,
            self.authority,
            body.len()
        );
        if let Err(e) = s
            .write_all(head.as_bytes())
            .and_then(|()| s.write_all(body))
        {
            return Err(if stale(&e) {
                Attempt::Stale
            } else {
                Attempt::Failed(e)
            });
        }
        let mut buf = vec![0u8; ANSWER_HEAD];
        let mut len = 0;
        let (status, head_len, length, close) = loop {
            let n = match s.read(&mut buf[len..]) {
                Ok(n) => n,
                // Nothing came back on a reused connection: the collector
                // closed it while it was idle.
                Err(e) if len == 0 && stale(&e) => return Err(Attempt::Stale),
                Err(e) => return Err(Attempt::Failed(e)),
            };
            if n == 0 {
                return Err(if len == 0 {
                    Attempt::Stale
                } else {
                    Attempt::Failed(std::io::Error::other("collector closed mid-answer"))
                });
            }
            len += n;
            let mut headers = [httparse::EMPTY_HEADER; 32];
            let mut resp = httparse::Response::new(&mut headers);
            match resp.parse(&buf[..len]) {
                Ok(httparse::Status::Complete(head_len)) => {
                    let header = |name: &str| {
                        resp.headers
                            .iter()
                            .find(|h| h.name.eq_ignore_ascii_case(name))
                            .map(|h| String::from_utf8_lossy(h.value).trim().to_ascii_lowercase())
                    };
                    let length = header("content-length").and_then(|v| v.parse::<usize>().ok());
                    let close = header("connection").is_some_and(|v| v == "close")
                        || header("transfer-encoding").is_some()
                        || resp.version != Some(1);
                    break (resp.code.unwrap_or(0), head_len, length, close);
                }
                Ok(httparse::Status::Partial) if len < buf.len() => {}
                _ => {
                    return Err(Attempt::Failed(std::io::Error::other(
                        "bad collector answer",
                    )))
                }
            }
        };
        // Read the body off the connection so the next POST starts clean;
        // without a length the connection ends with the body.
        let keep = match length {
            Some(length) if !close => {
                let mut left = length.saturating_sub(len - head_len);
                let mut sink = [0u8; 4096];
                while left > 0 {
                    let want = left.min(sink.len());
                    match s.read(&mut sink[..want]) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => left -= n,
                    }
                }
                left == 0 && len - head_len <= length
            }
            _ => false,
        };
        if (200..300).contains(&status) {
            Ok(keep)
        } else {
            Err(Attempt::Failed(std::io::Error::other(format!(
                "collector answered {status}"
            ))))
        }
    }
}

/// Why a POST got no answer.
enum Attempt {
    /// The connection was closed before any answer (a kept one the
    /// collector closed while idle): worth one try on a new connection.
    Stale,
    Failed(std::io::Error),
}

fn stale(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::ConnectionReset
            | std::io::ErrorKind::BrokenPipe
            | std::io::ErrorKind::ConnectionAborted
    )
}

fn attr_str(out: &mut String, key: &str, value: &str, first: &mut bool) {
    if !*first {
        out.push(',');
    }
    *first = false;
    out.push_str("{\"key\":");
    json(out, key);
    out.push_str(",\"value\":{\"stringValue\":");
    json(out, value);
    out.push_str("}}");
}

fn attr_int(out: &mut String, key: &str, value: u64, first: &mut bool) {
    if !*first {
        out.push(',');
    }
    *first = false;
    out.push_str("{\"key\":");
    json(out, key);
    out.push_str(&format!(",\"value\":{{\"intValue\":\"{value}\"}}}}"));
}

fn json(out: &mut String, s: &str) {
    out.push_str(&serde_json::Value::from(s).to_string());
}

fn hex_string(bytes: &[u8]) -> String {
    let mut v = vec![0u8; bytes.len() * 2];
    hex_into(bytes, &mut v);
    String::from_utf8(v).unwrap_or_default()
}

/// The OTLP/JSON `ExportTraceServiceRequest` for `spans`.
pub fn encode(cfg: &OtelConfig, spans: &[Span]) -> Vec<u8> {
    let mut out = String::with_capacity(512 + spans.len() * 700);
    out.push_str("{\"resourceSpans\":[{\"resource\":{\"attributes\":[");
    let mut first = true;
    attr_str(&mut out, "service.name", &cfg.service_name, &mut first);
    for (k, v) in &cfg.resource {
        attr_str(&mut out, k, v, &mut first);
    }
    out.push_str("]},\"scopeSpans\":[{\"scope\":{\"name\":\"rauta\",\"version\":\"");
    out.push_str(env!("CARGO_PKG_VERSION"));
    out.push_str("\"},\"spans\":[");
    for (i, s) in spans.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let st = &s.started;
        out.push_str("{\"traceId\":\"");
        out.push_str(&hex_string(&s.ctx.trace_id));
        out.push_str("\",\"spanId\":\"");
        out.push_str(&hex_string(&s.ctx.span_id));
        out.push('"');
        if let Some(p) = s.ctx.parent {
            out.push_str(",\"parentSpanId\":\"");
            out.push_str(&hex_string(&p));
            out.push('"');
        }
        // The rule's path (http.route) and the Ingress, from the route key.
        let mut parts = s.route.as_deref().unwrap_or("").split('|');
        let ingress = parts.next().unwrap_or("");
        let rule_path = parts.nth(1).unwrap_or("");
        out.push_str(",\"name\":");
        let name = if rule_path.is_empty() {
            st.method.to_string()
        } else {
            format!("{} {rule_path}", st.method)
        };
        json(&mut out, &name);
        out.push_str(&format!(
            ",\"kind\":2,\"startTimeUnixNano\":\"{}\",\"endTimeUnixNano\":\"{}\",\"attributes\":[",
            st.start_ns, s.end_ns
        ));
        let mut first = true;
        attr_str(&mut out, "http.request.method", &st.method, &mut first);
        attr_str(&mut out, "url.path", &st.path, &mut first);
        attr_str(&mut out, "url.scheme", st.scheme, &mut first);
        attr_str(&mut out, "server.address", &st.host, &mut first);
        attr_int(&mut out, "server.port", u64::from(st.port), &mut first);
        attr_str(
            &mut out,
            "client.address",
            &st.client.to_string(),
            &mut first,
        );
        attr_int(
            &mut out,
            "http.response.status_code",
            u64::from(s.status),
            &mut first,
        );
        if !rule_path.is_empty() {
            attr_str(&mut out, "http.route", rule_path, &mut first);
        }
        if !ingress.is_empty() {
            attr_str(&mut out, "rauta.ingress", ingress, &mut first);
        }
        if let Some(up) = s.upstream {
            attr_str(&mut out, "rauta.upstream", &up.to_string(), &mut first);
        }
        if s.status >= 500 {
            // The semantic conventions: a low-cardinality reason, else the
            // status code.
            let status = s.status.to_string();
            let kind = s.cause.unwrap_or(&status);
            attr_str(&mut out, "error.type", kind, &mut first);
        }
        out.push(']');
        if s.status >= 500 {
            out.push_str(",\"status\":{\"code\":2}");
        }
        out.push('}');
    }
    out.push_str("]}]}]}");
    out.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    const TP: &[u8] = b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn traceparent_is_parsed_strictly() {
        let p = parse_traceparent(TP).expect("valid");
        assert!(p.sampled);
        assert_eq!(p.span_id, [0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7]);
        let upper = TP.to_ascii_uppercase();
        assert_eq!(parse_traceparent(&upper), None);
        assert_eq!(parse_traceparent(&TP[..54]), None);
        assert_eq!(
            parse_traceparent(b"00-00000000000000000000000000000000-00f067aa0ba902b7-01"),
            None
        );
        assert_eq!(
            parse_traceparent(b"00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01"),
            None
        );
        assert_eq!(
            parse_traceparent(b"01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
            None
        );
    }

    #[test]
    fn a_parent_is_continued_and_ratio_zero_invents_nothing() {
        let cfg = OtelConfig {
            endpoint: "http://127.0.0.1:1".into(),
            ratio: 0.0,
            service_name: "rauta".into(),
            resource: vec![],
            queue_spans: 64,
        };
        let rng = Rng::new(7);
        assert!(decide(&cfg, &rng, None).is_none());
        let ctx = decide(&cfg, &rng, Some(TP)).expect("continued");
        let tp = ctx.traceparent();
        assert_eq!(&tp[..36], &TP[..36]);
        assert_ne!(&tp[36..52], &TP[36..52]);
        assert!(ctx.sampled);
        let cfg = OtelConfig { ratio: 1.0, ..cfg };
        let ctx = decide(&cfg, &rng, None).expect("sampled");
        assert!(ctx.sampled && ctx.parent.is_none());
        assert!(parse_traceparent(&ctx.traceparent()).is_some());
    }
}
