//! A real HTTPS backend ([`HttpsBackend`]): HTTP/1.1 over TLS from
//! `proxy/testkit/python/https_backend.py` (Python's `ssl`, OpenSSL), run by
//! the `.venv-test` Python like the gRPC peers (so a test needs
//! [`grpc::need()`](crate::grpc::need)). It answers every request with JSON
//! telling what its client did on the TLS layer: the SNI it sent (or
//! `null`), the ALPN protocol negotiated, the client certificate's CN, the
//! TLS version and how many requests the connection has carried, besides
//! the method, path, headers and body size. The backend of an Ingress with
//! `backend-protocol: HTTPS` and the `proxy-ssl-*` annotations.
//!
//! ```no_run
//! use rauta_testkit::{grpc, https::HttpsBackend, require, tls};
//! # fn t() {
//! require!(grpc::need());
//! let ca = tls::Ca::new();
//! let leaf = ca.issue(&["backend.test"], 2099);
//! let backend = HttpsBackend::start(&leaf.cert_pem, &leaf.key_pem, None);
//! let mut conn =
//!     tls::TlsConn::open(backend.addr(), Some("backend.test"), &tls::client_config(false))
//!         .unwrap();
//! let seen = HttpsBackend::json(&conn.get("backend.test", "/x").unwrap());
//! assert_eq!(seen["sni"], "backend.test");
//! assert_eq!(backend.stats()["connections"], 1);
//! # }
//! ```

use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use rustls::client::ResolvesClientCert;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::CertifiedKey;
use rustls::{ClientConfig, SignatureScheme};
use serde_json::Value;

use crate::client::Response;
use crate::grpc::{pem_file, PythonPeer};
use crate::tls::{self, Leaf};

/// The backend script, `proxy/testkit/python/https_backend.py`.
pub fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("python/https_backend.py")
}

/// An `https_backend.py` process on an ephemeral 127.0.0.1 port, killed
/// when dropped (and exiting by itself if the test process dies). Every
/// request is answered 200 with `application/json`:
///
/// ```json
/// {"method": "GET", "path": "/x?y=1", "headers": {"host": "..."},
///  "sni": "backend.test", "alpn": "http/1.1", "client_cert_cn": null,
///  "tls_version": "TLSv1.3", "body_bytes": 0, "connection_requests": 1}
/// ```
///
/// `headers` has lowercased names (the last of repeated ones wins); `sni`
/// is `null` when the client sent none; `alpn` is `null` when the client
/// offered no ALPN or none in common with the server's `http/1.1` (the
/// handshake goes on); `client_cert_cn` is `null` without a client
/// certificate; `connection_requests` counts the requests of this TLS
/// connection, this one included, so a reused connection shows 2, 3, ...
pub struct HttpsBackend {
    peer: PythonPeer,
}

impl HttpsBackend {
    /// Starts the backend: `cert_pem` is the chain it presents (a
    /// [`Leaf`]'s `cert_pem`), `key_pem` its key; with `client_ca_pem` it
    /// requires a client certificate signed by that CA (a client without
    /// one fails the handshake, counted in [`HttpsBackend::stats`]).
    pub fn start(cert_pem: &str, key_pem: &str, client_ca_pem: Option<&str>) -> HttpsBackend {
        let mut args: Vec<OsString> = Vec::new();
        let mut files = Vec::new();
        let mut flags = vec![("--cert", cert_pem), ("--key", key_pem)];
        flags.extend(client_ca_pem.map(|ca| ("--client-ca", ca)));
        for (flag, pem) in flags {
            let file = pem_file(pem);
            args.extend([flag.into(), file.path().as_os_str().to_owned()]);
            files.push(file);
        }
        HttpsBackend {
            peer: PythonPeer::spawn(&script(), &args, files),
        }
    }

    /// The TLS address (127.0.0.1).
    pub fn addr(&self) -> SocketAddr {
        self.peer.addr(0)
    }

    /// The backend's counters, fetched over a plain-HTTP side port (so no
    /// TLS, no client certificate and no count of its own):
    /// `{"handshake_failures": n, "connections": n, "accepted": n,
    /// "requests": n}`. `connections` counts completed TLS handshakes,
    /// `accepted` TCP connections (completed, failed or still
    /// handshaking), `requests` the requests answered on the TLS port.
    pub fn stats(&self) -> Value {
        let resp = crate::client::get(self.peer.addr(1), "stats", "/__stats")
            .unwrap_or_else(|e| panic!("GET /__stats of https_backend.py: {e}"));
        assert_eq!(resp.status, 200, "GET /__stats: {}", resp.text());
        Self::json(&resp)
    }

    /// A response's body as JSON, panicking with the response otherwise.
    pub fn json(resp: &Response) -> Value {
        serde_json::from_slice(&resp.body).unwrap_or_else(|e| {
            panic!(
                "not JSON ({e}): {} {:?}\n{}",
                resp.status,
                resp.headers,
                resp.text()
            )
        })
    }

    /// Everything the backend printed to stderr so far (handshake errors).
    pub fn stderr(&self) -> String {
        self.peer.stderr()
    }
}

/// [`tls::client_config`] (any server certificate accepted, ALPN
/// `http/1.1`, TLS 1.3 and 1.2) that presents `leaf` as its client
/// certificate.
pub fn client_config_with_cert(leaf: &Leaf) -> Arc<ClientConfig> {
    let chain = CertificateDer::pem_slice_iter(leaf.cert_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .expect("leaf certificate PEM");
    let key = PrivateKeyDer::from_pem_slice(leaf.key_pem.as_bytes()).expect("leaf key PEM");
    let provider = rustls::crypto::ring::default_provider();
    let key = CertifiedKey::from_der(chain, key, &provider).expect("leaf certificate and key");
    let mut config = (*tls::client_config(false)).clone();
    config.client_auth_cert_resolver = Arc::new(AlwaysCert(Arc::new(key)));
    Arc::new(config)
}

/// Presents the same certificate to every server that asks.
#[derive(Debug)]
struct AlwaysCert(Arc<CertifiedKey>);

impl ResolvesClientCert for AlwaysCert {
    fn resolve(&self, _hints: &[&[u8]], _schemes: &[SignatureScheme]) -> Option<Arc<CertifiedKey>> {
        Some(self.0.clone())
    }

    fn has_certs(&self) -> bool {
        true
    }
}
