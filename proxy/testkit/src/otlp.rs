//! A small OTLP/HTTP receiver: serves `POST /v1/traces` with the JSON
//! encoding (`ExportTraceServiceRequest`), keeps every span it decodes
//! with its resource attributes, and can be told to stall (read a request,
//! then answer nothing until released), to go down (close every connection
//! without an answer) or to answer 503. Connections are kept alive.

use serde_json::Value;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One exported span, flattened.
#[derive(Debug, Clone)]
pub struct ReceivedSpan {
    /// Hex trace id.
    pub trace_id: String,
    /// Hex span id.
    pub span_id: String,
    /// Hex parent span id; empty for a root span.
    pub parent_span_id: String,
    /// The span's name.
    pub name: String,
    /// The span kind (2: SERVER).
    pub kind: i64,
    /// Status code (2: ERROR), 0 when unset.
    pub status_code: i64,
    /// Attributes, values as text (ints as their decimal).
    pub attributes: BTreeMap<String, String>,
    /// The resource's attributes.
    pub resource: BTreeMap<String, String>,
}

impl ReceivedSpan {
    /// An attribute's value.
    pub fn attr(&self, key: &str) -> Option<&str> {
        self.attributes.get(key).map(String::as_str)
    }
}

#[derive(Debug, Default)]
struct State {
    spans: Mutex<Vec<ReceivedSpan>>,
    posts: Mutex<u64>,
    stalled: AtomicBool,
    down: AtomicBool,
    failing: AtomicBool,
    connections: Mutex<u64>,
}

/// The receiver; its thread runs until the process ends.
#[derive(Debug)]
pub struct OtlpReceiver {
    addr: SocketAddr,
    state: Arc<State>,
}

impl OtlpReceiver {
    /// Listens on a free local port.
    pub fn start() -> OtlpReceiver {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the OTLP receiver");
        let addr = listener.local_addr().expect("local addr");
        let state = Arc::new(State::default());
        let shared = state.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                if shared.down.load(Ordering::SeqCst) {
                    drop(stream);
                    continue;
                }
                *shared.connections.lock().expect("connections") += 1;
                let state = shared.clone();
                std::thread::spawn(move || {
                    let _ = serve(stream, &state);
                });
            }
        });
        OtlpReceiver { addr, state }
    }

    /// `http://127.0.0.1:PORT`, for `--otlp-endpoint`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every span received so far.
    pub fn spans(&self) -> Vec<ReceivedSpan> {
        self.state.spans.lock().expect("spans").clone()
    }

    /// Export requests received so far (stalled ones included).
    pub fn posts(&self) -> u64 {
        *self.state.posts.lock().expect("posts")
    }

    /// Connections accepted so far (while up).
    pub fn connections(&self) -> u64 {
        *self.state.connections.lock().expect("connections")
    }

    /// Goes down (`true`: every connection, new or kept, is closed without
    /// an answer) or comes back.
    pub fn set_down(&self, down: bool) {
        self.state.down.store(down, Ordering::SeqCst);
    }

    /// Answers every export with 503 (`true`), or takes them again.
    pub fn set_failing(&self, failing: bool) {
        self.state.failing.store(failing, Ordering::SeqCst);
    }

    /// Stalls (`true`) or releases every request.
    pub fn stall(&self, stalled: bool) {
        self.state.stalled.store(stalled, Ordering::SeqCst);
    }
}

fn serve(stream: TcpStream, state: &State) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut out = stream;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let mut length = 0usize;
        loop {
            let mut h = String::new();
            reader.read_line(&mut h)?;
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((name, value)) = h.split_once(':') {
                if name.eq_ignore_ascii_case("content-length") {
                    length = value.trim().parse().unwrap_or(0);
                }
            }
        }
        let mut body = vec![0u8; length];
        reader.read_exact(&mut body)?;
        if state.down.load(Ordering::SeqCst) {
            return Ok(());
        }
        *state.posts.lock().expect("posts") += 1;
        while state.stalled.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(20));
        }
        let failing = state.failing.load(Ordering::SeqCst);
        let ok = line.starts_with("POST /v1/traces ") && !failing;
        if ok {
            if let Ok(v) = serde_json::from_slice::<Value>(&body) {
                state.spans.lock().expect("spans").extend(decode(&v));
            }
        }
        let status = if ok {
            "200 OK"
        } else if failing {
            "503 Service Unavailable"
        } else {
            "404 Not Found"
        };
        out.write_all(
            format!("HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{{}}")
                .as_bytes(),
        )?;
    }
}

fn attributes(list: &Value) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for a in list.as_array().into_iter().flatten() {
        let key = a["key"].as_str().unwrap_or_default().to_string();
        let v = &a["value"];
        let value = if let Some(s) = v["stringValue"].as_str() {
            s.to_string()
        } else if let Some(i) = v["intValue"].as_str() {
            i.to_string()
        } else if let Some(i) = v["intValue"].as_i64() {
            i.to_string()
        } else if let Some(b) = v["boolValue"].as_bool() {
            b.to_string()
        } else {
            v.to_string()
        };
        out.insert(key, value);
    }
    out
}

/// The spans of an OTLP/JSON `ExportTraceServiceRequest`.
pub fn decode(v: &Value) -> Vec<ReceivedSpan> {
    let mut out = Vec::new();
    for rs in v["resourceSpans"].as_array().into_iter().flatten() {
        let resource = attributes(&rs["resource"]["attributes"]);
        for ss in rs["scopeSpans"].as_array().into_iter().flatten() {
            for s in ss["spans"].as_array().into_iter().flatten() {
                let text = |k: &str| s[k].as_str().unwrap_or_default().to_string();
                out.push(ReceivedSpan {
                    trace_id: text("traceId"),
                    span_id: text("spanId"),
                    parent_span_id: text("parentSpanId"),
                    name: text("name"),
                    kind: s["kind"].as_i64().unwrap_or(0),
                    status_code: s["status"]["code"].as_i64().unwrap_or(0),
                    attributes: attributes(&s["attributes"]),
                    resource: resource.clone(),
                });
            }
        }
    }
    out
}
