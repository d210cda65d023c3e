//! A fake Kubernetes API server for tests: plain HTTP/1.1 on 127.0.0.1
//! (std threads, httparse), speaking the real list/watch wire format, so
//! that the unmodified kube-rs client and kube-runtime watcher run against
//! it over a real socket.
//!
//! - `GET` of a collection: `{"kind":"XList","metadata":{"resourceVersion"},"items"}`
//!   (items without kind/apiVersion, as the API server sends them);
//!   `labelSelector` with `key` and `key=value` terms, `fieldSelector` with
//!   `path=value` and `path!=value` terms (e.g. `type=kubernetes.io/tls`).
//! - `GET ...?watch=true&resourceVersion=N`: a chunked stream of
//!   newline-delimited `{"type":"ADDED|MODIFIED|DELETED|BOOKMARK","object"}`
//!   events after N; an `ERROR` event with a 410 `Status` (reason
//!   `Expired`) when N is older than the retained history; ends after
//!   `timeoutSeconds`.
//! - `GET`/`PUT`/`PATCH` (merge patch) of one object and of its `status`
//!   subresource, `POST` to create; a `PUT` with a stale
//!   `metadata.resourceVersion` gets 409 Conflict, a `POST` of an existing
//!   name 409 AlreadyExists; unknown names 404 NotFound.
//!
//! Test controls: apply/delete objects, compact the history (410 for older
//! resourceVersions), drop every connection, refuse connections (API
//! server down), inject failures, and read the log of requests.

use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::io::{self, BufWriter, Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// One resource the server knows.
struct Kind {
    resource: &'static str,
    prefix: &'static str,
    kind: &'static str,
    api_version: &'static str,
    namespaced: bool,
}

const KINDS: &[Kind] = &[
    Kind {
        resource: "ingresses",
        prefix: "/apis/networking.k8s.io/v1",
        kind: "Ingress",
        api_version: "networking.k8s.io/v1",
        namespaced: true,
    },
    Kind {
        resource: "ingressclasses",
        prefix: "/apis/networking.k8s.io/v1",
        kind: "IngressClass",
        api_version: "networking.k8s.io/v1",
        namespaced: false,
    },
    Kind {
        resource: "services",
        prefix: "/api/v1",
        kind: "Service",
        api_version: "v1",
        namespaced: true,
    },
    Kind {
        resource: "secrets",
        prefix: "/api/v1",
        kind: "Secret",
        api_version: "v1",
        namespaced: true,
    },
    Kind {
        resource: "configmaps",
        prefix: "/api/v1",
        kind: "ConfigMap",
        api_version: "v1",
        namespaced: true,
    },
    Kind {
        resource: "endpointslices",
        prefix: "/apis/discovery.k8s.io/v1",
        kind: "EndpointSlice",
        api_version: "discovery.k8s.io/v1",
        namespaced: true,
    },
    Kind {
        resource: "namespaces",
        prefix: "/api/v1",
        kind: "Namespace",
        api_version: "v1",
        namespaced: false,
    },
    Kind {
        resource: "gatewayclasses",
        prefix: "/apis/gateway.networking.k8s.io/v1",
        kind: "GatewayClass",
        api_version: "gateway.networking.k8s.io/v1",
        namespaced: false,
    },
    Kind {
        resource: "gateways",
        prefix: "/apis/gateway.networking.k8s.io/v1",
        kind: "Gateway",
        api_version: "gateway.networking.k8s.io/v1",
        namespaced: true,
    },
    Kind {
        resource: "httproutes",
        prefix: "/apis/gateway.networking.k8s.io/v1",
        kind: "HTTPRoute",
        api_version: "gateway.networking.k8s.io/v1",
        namespaced: true,
    },
    Kind {
        resource: "grpcroutes",
        prefix: "/apis/gateway.networking.k8s.io/v1",
        kind: "GRPCRoute",
        api_version: "gateway.networking.k8s.io/v1",
        namespaced: true,
    },
    Kind {
        resource: "tlsroutes",
        prefix: "/apis/gateway.networking.k8s.io/v1",
        kind: "TLSRoute",
        api_version: "gateway.networking.k8s.io/v1",
        namespaced: true,
    },
    Kind {
        resource: "backendtlspolicies",
        prefix: "/apis/gateway.networking.k8s.io/v1",
        kind: "BackendTLSPolicy",
        api_version: "gateway.networking.k8s.io/v1",
        namespaced: true,
    },
    Kind {
        resource: "referencegrants",
        prefix: "/apis/gateway.networking.k8s.io/v1beta1",
        kind: "ReferenceGrant",
        api_version: "gateway.networking.k8s.io/v1beta1",
        namespaced: true,
    },
    Kind {
        resource: "leases",
        prefix: "/apis/coordination.k8s.io/v1",
        kind: "Lease",
        api_version: "coordination.k8s.io/v1",
        namespaced: true,
    },
    Kind {
        resource: "events",
        prefix: "/apis/events.k8s.io/v1",
        kind: "Event",
        api_version: "events.k8s.io/v1",
        namespaced: true,
    },
];

fn kind_by_resource(resource: &str) -> Option<&'static Kind> {
    KINDS.iter().find(|k| k.resource == resource)
}

fn kind_by_kind(kind: &str) -> Option<&'static Kind> {
    KINDS.iter().find(|k| k.kind == kind)
}

/// A request as the server saw it.
#[derive(Debug, Clone)]
pub struct Recorded {
    /// `GET`, `PUT`, ...
    pub method: String,
    /// The path without the query.
    pub path: String,
    /// The decoded query parameters.
    pub query: BTreeMap<String, String>,
    /// The request body (UTF-8, lossy).
    pub body: String,
    /// Who sent it: the bearer token, which is the `name` of the
    /// [`FakeApi::kubeconfig`] the client uses ("" without one).
    pub client: String,
}

impl Recorded {
    /// The resource (plural) the request is for, and its namespace when
    /// the path names one; `None` for paths outside `/api` and `/apis`.
    pub fn resource(&self) -> Option<(&str, Option<&str>)> {
        let parts: Vec<&str> = self.path.split('/').filter(|p| !p.is_empty()).collect();
        let rest = match parts.as_slice() {
            ["api", _, rest @ ..] => rest,
            ["apis", _, _, rest @ ..] => rest,
            _ => return None,
        };
        match rest {
            ["namespaces", ns, resource, ..] => Some((resource, Some(ns))),
            [resource, ..] => Some((resource, None)),
            _ => None,
        }
    }

    /// True for a watch request.
    pub fn is_watch(&self) -> bool {
        self.query
            .get("watch")
            .is_some_and(|v| v == "true" || v == "1")
    }
}

/// Decides whether to fail a request, with which HTTP status.
type FailRule = Box<dyn Fn(&Recorded) -> Option<u16> + Send + Sync>;

/// (resource, namespace or "", name)
type Key = (String, String, String);

/// One entry of the watch history.
struct HistoryEvent {
    rv: u64,
    resource: String,
    type_: &'static str,
    object: Value,
}

#[derive(Default)]
struct State {
    rv: u64,
    objects: BTreeMap<Key, Value>,
    history: Vec<HistoryEvent>,
    /// Watches from a resourceVersion below `oldest - 1` get 410 Gone.
    oldest: u64,
    /// Bumped to cut every open connection.
    epoch: u64,
    /// Bumped to send a BOOKMARK on every open watch.
    bookmarks: u64,
    down: bool,
    /// Connections closed at once because the server was down.
    refused: u64,
    requests: Vec<Recorded>,
    conns: BTreeMap<u64, TcpStream>,
    next_conn: u64,
    fail: Vec<FailRule>,
}

struct Shared {
    state: Mutex<State>,
    cond: Condvar,
    stopping: AtomicBool,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The fake API server; stops on drop.
pub struct FakeApi {
    addr: SocketAddr,
    shared: Arc<Shared>,
    accept: Option<JoinHandle<()>>,
    dir: tempfile::TempDir,
}

impl FakeApi {
    /// Starts the server on a free port of 127.0.0.1.
    pub fn start() -> FakeApi {
        let listener =
            TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind the fake API server");
        let addr = listener.local_addr().expect("local address");
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                rv: 100,
                oldest: 1,
                ..State::default()
            }),
            cond: Condvar::new(),
            stopping: AtomicBool::new(false),
        });
        let s = shared.clone();
        let accept = thread::Builder::new()
            .name("fake-api-accept".into())
            .spawn(move || accept_loop(listener, s))
            .expect("spawn accept thread");
        FakeApi {
            addr,
            shared,
            accept: Some(accept),
            dir: tempfile::tempdir().expect("tempdir"),
        }
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Writes a kubeconfig pointing at this server (file name `name`) and
    /// returns its path. Its token is `name`, so the requests of each
    /// client show in [`Recorded::client`].
    pub fn kubeconfig(&self, name: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        let text = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster:\n    server: http://{}\n\
             users:\n- name: fake\n  user:\n    token: {name}\n\
             contexts:\n- name: fake\n  context:\n    cluster: fake\n    user: fake\n    namespace: default\n\
             current-context: fake\n",
            self.addr
        );
        std::fs::write(&path, text).expect("write kubeconfig");
        path
    }

    /// Creates or replaces one object (ADDED or MODIFIED on the watches).
    /// Like a write to the main resource, an object without `status`
    /// keeps the status it had.
    pub fn apply(&self, mut object: Value) {
        let kind = object["kind"]
            .as_str()
            .and_then(kind_by_kind)
            .expect("known kind");
        let mut st = self.shared.lock();
        let key = key_of(kind, &object);
        let existed = st.objects.contains_key(&key);
        if let Some(status) = st.objects.get(&key).map(|o| o["status"].clone()) {
            if object.get("status").is_none() && !status.is_null() {
                object["status"] = status;
            }
        }
        store(
            &mut st,
            kind,
            key,
            object,
            if existed { "MODIFIED" } else { "ADDED" },
        );
        drop(st);
        self.shared.cond.notify_all();
    }

    /// Deletes an object (DELETED on the watches); false when it did not exist.
    pub fn delete(&self, resource: &str, namespace: &str, name: &str) -> bool {
        let mut st = self.shared.lock();
        let key = (
            resource.to_string(),
            namespace.to_string(),
            name.to_string(),
        );
        let Some(mut object) = st.objects.remove(&key) else {
            return false;
        };
        st.rv += 1;
        let rv = st.rv;
        object["metadata"]["resourceVersion"] = json!(rv.to_string());
        st.history.push(HistoryEvent {
            rv,
            resource: resource.to_string(),
            type_: "DELETED",
            object,
        });
        drop(st);
        self.shared.cond.notify_all();
        true
    }

    /// The stored object, if any.
    pub fn get(&self, resource: &str, namespace: &str, name: &str) -> Option<Value> {
        let key = (
            resource.to_string(),
            namespace.to_string(),
            name.to_string(),
        );
        self.shared.lock().objects.get(&key).cloned()
    }

    /// Every stored object of `resource`.
    pub fn list(&self, resource: &str) -> Vec<Value> {
        self.shared
            .lock()
            .objects
            .iter()
            .filter(|(k, _)| k.0 == resource)
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// Forgets the watch history: watches resuming from an older
    /// resourceVersion get 410 Gone and must list again.
    pub fn compact(&self) {
        let mut st = self.shared.lock();
        st.history.clear();
        st.oldest = st.rv + 1;
    }

    /// Cuts every open connection (mid-watch, mid-chunk where it happens).
    pub fn drop_connections(&self) {
        let mut st = self.shared.lock();
        st.epoch += 1;
        for conn in st.conns.values() {
            let _ = conn.shutdown(Shutdown::Both);
        }
        st.conns.clear();
        drop(st);
        self.shared.cond.notify_all();
    }

    /// While down, every connection is closed as soon as it is accepted
    /// (and going down cuts the open ones).
    pub fn set_down(&self, down: bool) {
        self.shared.lock().down = down;
        if down {
            self.drop_connections();
        }
    }

    /// Connections closed at once because the server was down (see
    /// [`FakeApi::set_down`]): evidence that a client tried meanwhile.
    pub fn refused(&self) -> u64 {
        self.shared.lock().refused
    }

    /// Sends a BOOKMARK with the current resourceVersion on every open watch.
    pub fn bookmark(&self) {
        self.shared.lock().bookmarks += 1;
        self.shared.cond.notify_all();
    }

    /// Fails every request for which `rule` returns a status code.
    pub fn fail_when(&self, rule: impl Fn(&Recorded) -> Option<u16> + Send + Sync + 'static) {
        self.shared.lock().fail.push(Box::new(rule));
    }

    /// Removes every failure rule.
    pub fn clear_failures(&self) {
        self.shared.lock().fail.clear();
    }

    /// Every request so far.
    pub fn requests(&self) -> Vec<Recorded> {
        self.shared.lock().requests.clone()
    }

    /// Requests with this method whose path ends with `suffix`.
    pub fn requests_to(&self, method: &str, suffix: &str) -> Vec<Recorded> {
        self.requests()
            .into_iter()
            .filter(|r| r.method == method && r.path.ends_with(suffix))
            .collect()
    }

    /// Polls `check` until it returns `Some` and returns its value;
    /// panics with `what` after [`patience`](crate::patience).
    #[track_caller]
    pub fn wait_for<T>(&self, what: &str, mut check: impl FnMut(&FakeApi) -> Option<T>) -> T {
        crate::wait::eventually_some(&format!("fake API: {what}"), || check(self))
    }

    /// Creates or replaces the objects of a (multi-document) YAML string,
    /// e.g. from the [`manifests`](crate::manifests) builders.
    pub fn apply_yaml(&self, yaml: &str) {
        use serde::Deserialize;
        for doc in serde_yaml_ng::Deserializer::from_str(yaml) {
            let value = Value::deserialize(doc)
                .unwrap_or_else(|e| panic!("fake API: bad YAML ({e}):\n{yaml}"));
            if !value.is_null() {
                self.apply(value);
            }
        }
    }
}

impl Drop for FakeApi {
    fn drop(&mut self) {
        self.shared.stopping.store(true, Ordering::SeqCst);
        self.drop_connections();
        // Wake the accept loop.
        let _ = TcpStream::connect(self.addr);
        if let Some(t) = self.accept.take() {
            let _ = t.join();
        }
    }
}

/// The key of an object of `kind`.
fn key_of(kind: &Kind, object: &Value) -> Key {
    let meta = &object["metadata"];
    let ns = if kind.namespaced {
        meta["namespace"].as_str().unwrap_or("default").to_string()
    } else {
        String::new()
    };
    let name = meta["name"]
        .as_str()
        .expect("object has a name")
        .to_string();
    (kind.resource.to_string(), ns, name)
}

/// Stores `object` under `key` with a new resourceVersion and records the event.
fn store(st: &mut State, kind: &Kind, key: Key, mut object: Value, type_: &'static str) -> Value {
    st.rv += 1;
    let rv = st.rv;
    let old = st.objects.get(&key);
    let uid = old
        .and_then(|o| o["metadata"]["uid"].as_str().map(str::to_string))
        .unwrap_or_else(|| format!("uid-{rv}"));
    let created = old
        .and_then(|o| {
            o["metadata"]["creationTimestamp"]
                .as_str()
                .map(str::to_string)
        })
        .or_else(|| {
            object["metadata"]["creationTimestamp"]
                .as_str()
                .map(str::to_string)
        })
        .unwrap_or_else(|| timestamp(rv));
    object["kind"] = json!(kind.kind);
    object["apiVersion"] = json!(kind.api_version);
    let meta = object
        .get_mut("metadata")
        .and_then(Value::as_object_mut)
        .expect("object has metadata");
    meta.insert("resourceVersion".into(), json!(rv.to_string()));
    meta.insert("uid".into(), json!(uid));
    meta.insert("creationTimestamp".into(), json!(created));
    if kind.namespaced {
        meta.insert("namespace".into(), json!(key.1));
    }
    st.objects.insert(key.clone(), object.clone());
    st.history.push(HistoryEvent {
        rv,
        resource: key.0,
        type_,
        object: object.clone(),
    });
    object
}

/// A creation time that grows with `n` (seconds after 2024-01-01).
fn timestamp(n: u64) -> String {
    let s = n % 86_400;
    format!(
        "2024-01-01T{:02}:{:02}:{:02}Z",
        s / 3600,
        s / 60 % 60,
        s % 60
    )
}

fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    for conn in listener.incoming() {
        if shared.stopping.load(Ordering::SeqCst) {
            return;
        }
        let Ok(conn) = conn else { continue };
        {
            let mut st = shared.lock();
            if st.down {
                st.refused += 1;
                drop(st);
                let _ = conn.shutdown(Shutdown::Both);
                continue;
            }
        }
        let s = shared.clone();
        let _ = thread::Builder::new()
            .name("fake-api-conn".into())
            .spawn(move || {
                let id = {
                    let mut st = s.lock();
                    st.next_conn += 1;
                    let id = st.next_conn;
                    if let Ok(clone) = conn.try_clone() {
                        st.conns.insert(id, clone);
                    }
                    id
                };
                let _ = serve_conn(conn, &s);
                s.lock().conns.remove(&id);
            });
    }
}

/// One parsed request.
struct Request {
    rec: Recorded,
}

/// Reads one request; `None` at a clean end of the connection.
fn read_request(conn: &mut TcpStream, buf: &mut Vec<u8>) -> io::Result<Option<Request>> {
    loop {
        let mut headers = [httparse::EMPTY_HEADER; 64];
        let mut req = httparse::Request::new(&mut headers);
        match req.parse(buf) {
            Ok(httparse::Status::Complete(head_len)) => {
                let method = req.method.unwrap_or("").to_string();
                let target = req.path.unwrap_or("").to_string();
                let length = req
                    .headers
                    .iter()
                    .find(|h| h.name.eq_ignore_ascii_case("content-length"))
                    .and_then(|h| std::str::from_utf8(h.value).ok())
                    .and_then(|v| v.trim().parse::<usize>().ok())
                    .unwrap_or(0);
                let client = req
                    .headers
                    .iter()
                    .find(|h| h.name.eq_ignore_ascii_case("authorization"))
                    .and_then(|h| std::str::from_utf8(h.value).ok())
                    .and_then(|v| v.trim().strip_prefix("Bearer "))
                    .unwrap_or("")
                    .to_string();
                while buf.len() < head_len + length {
                    let mut chunk = [0u8; 8192];
                    let n = conn.read(&mut chunk)?;
                    if n == 0 {
                        return Err(io::ErrorKind::UnexpectedEof.into());
                    }
                    buf.extend_from_slice(&chunk[..n]);
                }
                let body = String::from_utf8_lossy(&buf[head_len..head_len + length]).into_owned();
                buf.drain(..head_len + length);
                let (path, query) = match target.split_once('?') {
                    Some((p, q)) => (p.to_string(), parse_query(q)),
                    None => (target, BTreeMap::new()),
                };
                return Ok(Some(Request {
                    rec: Recorded {
                        method,
                        path,
                        query,
                        body,
                        client,
                    },
                }));
            }
            Ok(httparse::Status::Partial) => {}
            Err(e) => return Err(io::Error::new(io::ErrorKind::InvalidData, e.to_string())),
        }
        let mut chunk = [0u8; 8192];
        let n = conn.read(&mut chunk)?;
        if n == 0 {
            return if buf.is_empty() {
                Ok(None)
            } else {
                Err(io::ErrorKind::UnexpectedEof.into())
            };
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

fn parse_query(q: &str) -> BTreeMap<String, String> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (decode(k), decode(v)),
            None => (decode(p), String::new()),
        })
        .collect()
}

/// Percent-decoding (and `+` as space).
fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                match u8::from_str_radix(hex, 16) {
                    Ok(b) => {
                        out.push(b);
                        i += 3;
                        continue;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b'+' => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn serve_conn(mut conn: TcpStream, shared: &Shared) -> io::Result<()> {
    let mut buf = Vec::new();
    loop {
        let Some(req) = read_request(&mut conn, &mut buf)? else {
            return Ok(());
        };
        let rec = req.rec;
        let failure = {
            let mut st = shared.lock();
            st.requests.push(rec.clone());
            st.fail.iter().find_map(|rule| rule(&rec))
        };
        if let Some(code) = failure {
            respond(
                &mut conn,
                code,
                &status_body(code, "InternalError", "injected failure"),
            )?;
            continue;
        }
        if rec.method == "GET" && rec.is_watch() {
            return watch(conn, shared, &rec);
        }
        let (code, body) = handle(shared, &rec);
        respond(&mut conn, code, &body)?;
    }
}

fn respond(conn: &mut TcpStream, code: u16, body: &Value) -> io::Result<()> {
    let text = body.to_string();
    let reason = match code {
        200 => "OK",
        201 => "Created",
        404 => "Not Found",
        409 => "Conflict",
        410 => "Gone",
        _ => "Error",
    };
    let head = format!(
        "HTTP/1.1 {code} {reason}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        text.len()
    );
    conn.write_all(head.as_bytes())?;
    conn.write_all(text.as_bytes())?;
    conn.flush()
}

/// A `Status` object as the API server sends it for failures.
fn status_body(code: u16, reason: &str, message: &str) -> Value {
    json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    })
}

/// The parts of an API path.
struct Target {
    kind: &'static Kind,
    namespace: Option<String>,
    name: Option<String>,
    status: bool,
}

fn parse_path(path: &str) -> Option<Target> {
    for kind in KINDS {
        let Some(rest) = path.strip_prefix(kind.prefix) else {
            continue;
        };
        let parts: Vec<&str> = rest.split('/').filter(|p| !p.is_empty()).collect();
        let (namespace, parts) = match parts.as_slice() {
            ["namespaces", ns, rest @ ..] if !rest.is_empty() => {
                (Some(ns.to_string()), rest.to_vec())
            }
            _ => (None, parts),
        };
        match parts.as_slice() {
            [r] if *r == kind.resource => {
                return Some(Target {
                    kind,
                    namespace,
                    name: None,
                    status: false,
                })
            }
            [r, name] if *r == kind.resource => {
                return Some(Target {
                    kind,
                    namespace,
                    name: Some(name.to_string()),
                    status: false,
                })
            }
            [r, name, "status"] if *r == kind.resource => {
                return Some(Target {
                    kind,
                    namespace,
                    name: Some(name.to_string()),
                    status: true,
                })
            }
            _ => {}
        }
    }
    None
}

/// `path=value` and `path!=value` terms (dotted paths), comma-separated.
fn matches_fields(object: &Value, selector: Option<&String>) -> bool {
    let Some(selector) = selector.filter(|s| !s.is_empty()) else {
        return true;
    };
    let field = |path: &str| {
        path.trim()
            .split('.')
            .fold(object, |v, part| &v[part])
            .as_str()
            .map(str::to_string)
    };
    selector.split(',').all(|term| {
        if let Some((k, v)) = term.split_once("!=") {
            field(k).as_deref() != Some(v.trim())
        } else if let Some((k, v)) = term.split_once('=') {
            field(k).as_deref() == Some(v.trim().trim_start_matches('='))
        } else {
            false
        }
    })
}

/// `key` and `key=value` terms, comma-separated.
fn matches_selector(object: &Value, selector: Option<&String>) -> bool {
    let Some(selector) = selector.filter(|s| !s.is_empty()) else {
        return true;
    };
    let labels = &object["metadata"]["labels"];
    selector.split(',').all(|term| match term.split_once('=') {
        Some((k, v)) => labels[k.trim()].as_str() == Some(v.trim()),
        None => !labels[term.trim()].is_null(),
    })
}

fn handle(shared: &Shared, rec: &Recorded) -> (u16, Value) {
    let Some(t) = parse_path(&rec.path) else {
        return (
            404,
            status_body(
                404,
                "NotFound",
                &format!(
                    "the server could not find the requested resource {}",
                    rec.path
                ),
            ),
        );
    };
    let mut st = shared.lock();
    let ns_key = if t.kind.namespaced {
        t.namespace.clone().unwrap_or_default()
    } else {
        String::new()
    };
    let result = match (rec.method.as_str(), &t.name) {
        ("GET", None) => {
            let items: Vec<Value> = st
                .objects
                .iter()
                .filter(|(k, _)| k.0 == t.kind.resource && (t.namespace.is_none() || k.1 == ns_key))
                .filter(|(_, v)| matches_selector(v, rec.query.get("labelSelector")))
                .filter(|(_, v)| matches_fields(v, rec.query.get("fieldSelector")))
                .map(|(_, v)| {
                    let mut v = v.clone();
                    if let Some(m) = v.as_object_mut() {
                        m.remove("kind");
                        m.remove("apiVersion");
                    }
                    v
                })
                .collect();
            (
                200,
                json!({
                    "kind": format!("{}List", t.kind.kind),
                    "apiVersion": t.kind.api_version,
                    "metadata": {"resourceVersion": st.rv.to_string()},
                    "items": items,
                }),
            )
        }
        ("GET", Some(name)) => {
            let key = (t.kind.resource.to_string(), ns_key, name.clone());
            match st.objects.get(&key) {
                Some(o) => (200, o.clone()),
                None => not_found(t.kind, name),
            }
        }
        ("POST", None) => {
            let Ok(object) = serde_json::from_str::<Value>(&rec.body) else {
                return (400, status_body(400, "BadRequest", "body is not JSON"));
            };
            let mut object = object;
            if t.kind.namespaced {
                object["metadata"]["namespace"] = json!(ns_key);
            }
            let Some(name) = object["metadata"]["name"].as_str().map(str::to_string) else {
                return (
                    422,
                    status_body(422, "Invalid", "metadata.name: Required value"),
                );
            };
            let key = (t.kind.resource.to_string(), ns_key, name.clone());
            if st.objects.contains_key(&key) {
                (
                    409,
                    status_body(
                        409,
                        "AlreadyExists",
                        &format!(
                            "{}.{} {name:?} already exists",
                            t.kind.resource,
                            group(t.kind)
                        ),
                    ),
                )
            } else {
                (201, store(&mut st, t.kind, key, object, "ADDED"))
            }
        }
        ("PUT", Some(name)) => {
            let key = (t.kind.resource.to_string(), ns_key, name.clone());
            let Ok(body) = serde_json::from_str::<Value>(&rec.body) else {
                return (400, status_body(400, "BadRequest", "body is not JSON"));
            };
            match st.objects.get(&key).cloned() {
                None => not_found(t.kind, name),
                Some(current) => {
                    let sent = body["metadata"]["resourceVersion"].as_str();
                    if sent
                        .is_some_and(|v| Some(v) != current["metadata"]["resourceVersion"].as_str())
                    {
                        (409, status_body(409, "Conflict", &format!(
                            "Operation cannot be fulfilled on {}.{} {name:?}: the object has been modified; please apply your changes to the latest version and try again",
                            t.kind.resource, group(t.kind)
                        )))
                    } else {
                        let new = if t.status {
                            let mut o = current.clone();
                            o["status"] = body["status"].clone();
                            o
                        } else {
                            let mut o = body.clone();
                            if !current["status"].is_null() {
                                o["status"] = current["status"].clone();
                            }
                            o
                        };
                        (200, store(&mut st, t.kind, key, new, "MODIFIED"))
                    }
                }
            }
        }
        ("PATCH", Some(name)) => {
            let key = (t.kind.resource.to_string(), ns_key, name.clone());
            let Ok(patch) = serde_json::from_str::<Value>(&rec.body) else {
                return (400, status_body(400, "BadRequest", "body is not JSON"));
            };
            match st.objects.get(&key).cloned() {
                None => not_found(t.kind, name),
                Some(mut current) => {
                    if t.status {
                        // Only the status may change through the subresource.
                        let status_patch = json!({"status": patch["status"].clone()});
                        merge_patch(&mut current, &status_patch);
                    } else {
                        merge_patch(&mut current, &patch);
                    }
                    (200, store(&mut st, t.kind, key, current, "MODIFIED"))
                }
            }
        }
        _ => (
            405,
            status_body(405, "MethodNotAllowed", "method not allowed"),
        ),
    };
    drop(st);
    shared.cond.notify_all();
    result
}

fn group(kind: &Kind) -> &'static str {
    kind.api_version.rsplit_once('/').map_or("", |(g, _)| g)
}

fn not_found(kind: &Kind, name: &str) -> (u16, Value) {
    let what = match group(kind) {
        "" => kind.resource.to_string(),
        g => format!("{}.{g}", kind.resource),
    };
    (
        404,
        status_body(404, "NotFound", &format!("{what} {name:?} not found")),
    )
}

/// RFC 7386 JSON merge patch.
fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(patch) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    let Value::Object(map) = target else { return };
    for (k, v) in patch {
        if v.is_null() {
            map.remove(k);
        } else {
            merge_patch(map.entry(k.clone()).or_insert(Value::Null), v);
        }
    }
}

/// Serves one watch request until it times out, the connection is cut,
/// or the server stops.
fn watch(conn: TcpStream, shared: &Shared, rec: &Recorded) -> io::Result<()> {
    let Some(t) = parse_path(&rec.path) else {
        let mut conn = conn;
        return respond(
            &mut conn,
            404,
            &status_body(404, "NotFound", "no such resource"),
        );
    };
    let from: u64 = rec
        .query
        .get("resourceVersion")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let timeout = rec
        .query
        .get("timeoutSeconds")
        .and_then(|v| v.parse().ok())
        .map_or(Duration::from_secs(290), Duration::from_secs);
    let bookmarks = rec
        .query
        .get("allowWatchBookmarks")
        .is_some_and(|v| v == "true");
    let selector = rec.query.get("labelSelector").cloned();
    let fields = rec.query.get("fieldSelector").cloned();
    let ns = t.namespace.clone();
    let mut out = BufWriter::new(conn.try_clone()?);
    out.write_all(
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
    )?;
    out.flush()?;
    let deadline = Instant::now() + timeout;
    let (epoch, mut bookmark_seen) = {
        let st = shared.lock();
        (st.epoch, st.bookmarks)
    };
    let mut rv = from;
    {
        let st = shared.lock();
        if from + 1 < st.oldest {
            drop(st);
            let gone = json!({
                "type": "ERROR",
                "object": {
                    "kind": "Status", "apiVersion": "v1", "metadata": {},
                    "status": "Failure",
                    "message": format!("too old resource version: {from} ({})", from + 1),
                    "reason": "Expired", "code": 410,
                }
            });
            chunk(&mut out, &gone)?;
            return finish(&mut out);
        }
    }
    loop {
        let mut st = shared.lock();
        if shared.stopping.load(Ordering::SeqCst) || st.epoch != epoch {
            // Cut: no terminating chunk, as when a connection breaks.
            return Ok(());
        }
        let events: Vec<Value> = st
            .history
            .iter()
            .filter(|e| e.rv > rv && e.resource == t.kind.resource)
            .filter(|e| {
                ns.as_ref()
                    .is_none_or(|ns| e.object["metadata"]["namespace"].as_str() == Some(ns))
            })
            .filter(|e| matches_selector(&e.object, selector.as_ref()))
            .filter(|e| matches_fields(&e.object, fields.as_ref()))
            .map(|e| json!({"type": e.type_, "object": e.object}))
            .collect();
        let newest = st.rv;
        let send_bookmark = bookmarks && st.bookmarks != bookmark_seen;
        bookmark_seen = st.bookmarks;
        if events.is_empty() && !send_bookmark {
            let now = Instant::now();
            if now >= deadline {
                drop(st);
                return finish(&mut out);
            }
            let wait = (deadline - now).min(Duration::from_millis(200));
            st = shared
                .cond
                .wait_timeout(st, wait)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
            drop(st);
            continue;
        }
        drop(st);
        for e in &events {
            chunk(&mut out, e)?;
        }
        rv = newest;
        if send_bookmark {
            let bm = json!({
                "type": "BOOKMARK",
                "object": {
                    "kind": t.kind.kind,
                    "apiVersion": t.kind.api_version,
                    "metadata": {"resourceVersion": newest.to_string()},
                }
            });
            chunk(&mut out, &bm)?;
        }
    }
}

/// Writes one newline-terminated JSON event as an HTTP chunk.
fn chunk(out: &mut impl Write, event: &Value) -> io::Result<()> {
    let mut line = event.to_string();
    line.push('\n');
    write!(out, "{:x}\r\n{line}\r\n", line.len())?;
    out.flush()
}

/// Ends a chunked body.
fn finish(out: &mut impl Write) -> io::Result<()> {
    out.write_all(b"0\r\n\r\n")?;
    out.flush()
}

/// Reads the status addresses (`ip` or `hostname`) of an Ingress.
pub fn status_addresses(ingress: &Value) -> Vec<String> {
    ingress["status"]["loadBalancer"]["ingress"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|e| {
                    e["ip"]
                        .as_str()
                        .or(e["hostname"].as_str())
                        .map(str::to_string)
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The path of a namespaced object, e.g. for matching requests.
pub fn object_path(resource: &str, namespace: &str, name: &str) -> String {
    let kind = kind_by_resource(resource).expect("known resource");
    format!("{}/namespaces/{namespace}/{resource}/{name}", kind.prefix)
}
