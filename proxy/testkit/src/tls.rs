//! TLS for tests: a throw-away certificate authority that issues leaf
//! certificates ([`Ca`]), and a blocking rustls client ([`TlsConn`]) that
//! sends a chosen SNI (or none), accepts whatever certificate it is shown
//! and lets the test check which one that was.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, ClientConnection, DigitallySignedStruct, SignatureScheme, StreamOwned};

use crate::client::Response;

/// A certificate authority for one test.
pub struct Ca {
    cert: rcgen::Certificate,
    issuer: rcgen::Issuer<'static, rcgen::KeyPair>,
}

impl std::fmt::Debug for Ca {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ca").finish_non_exhaustive()
    }
}

/// A leaf certificate and its key, as PEM.
#[derive(Debug, Clone)]
pub struct Leaf {
    /// The certificate chain: the leaf, then the CA.
    pub cert_pem: String,
    /// The leaf's private key.
    pub key_pem: String,
    /// The leaf in DER, to compare with what a server presented.
    pub der: Vec<u8>,
}

impl Default for Ca {
    fn default() -> Self {
        Ca::new()
    }
}

impl Ca {
    /// A fresh CA (ECDSA P-256).
    pub fn new() -> Ca {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "rauta test CA");
        let key = rcgen::KeyPair::generate().expect("CA key");
        let cert = params.self_signed(&key).expect("CA certificate");
        let issuer = rcgen::Issuer::new(params, key);
        Ca { cert, issuer }
    }

    /// The CA certificate as PEM (for `curl --cacert`, `openssl -CAfile`).
    pub fn pem(&self) -> String {
        self.cert.pem()
    }

    /// A leaf for `names` (DNS names, `*.` wildcards allowed), valid until
    /// the end of `expiry_year`.
    pub fn issue(&self, names: &[&str], expiry_year: i32) -> Leaf {
        self.issue_until(names, rcgen::date_time_ymd(expiry_year, 12, 31))
    }

    /// A leaf for `names` valid for `days` more days (from now).
    pub fn issue_for_days(&self, names: &[&str], days: i64) -> Leaf {
        self.issue_until(
            names,
            time::OffsetDateTime::now_utc() + time::Duration::days(days),
        )
    }

    fn issue_until(&self, names: &[&str], not_after: time::OffsetDateTime) -> Leaf {
        let mut params =
            rcgen::CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
                .expect("leaf params");
        if let Some(first) = names.first() {
            params
                .distinguished_name
                .push(rcgen::DnType::CommonName, *first);
        }
        params.not_after = not_after;
        let key = rcgen::KeyPair::generate().expect("leaf key");
        let cert = params.signed_by(&key, &self.issuer).expect("leaf");
        Leaf {
            cert_pem: format!("{}{}", cert.pem(), self.cert.pem()),
            key_pem: key.serialize_pem(),
            der: cert.der().to_vec(),
        }
    }
}

/// A self-signed certificate for `names` and its key, both PEM.
pub fn self_signed(names: &[&str]) -> (String, String) {
    let params =
        rcgen::CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
            .expect("params");
    let key = rcgen::KeyPair::generate().expect("key");
    let cert = params.self_signed(&key).expect("cert");
    (cert.pem(), key.serialize_pem())
}

/// The DER of the first certificate in `pem`.
pub fn first_der(pem: &str) -> Vec<u8> {
    CertificateDer::pem_slice_iter(pem.as_bytes())
        .next()
        .expect("a certificate")
        .expect("valid PEM")
        .to_vec()
}

/// Accepts any certificate: the tests look at what was presented instead.
#[derive(Debug)]
struct AcceptAny(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for AcceptAny {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// A client configuration (ring, ALPN `http/1.1`); `tls12_only` limits it
/// to TLS 1.2. Reuse one to resume sessions.
pub fn client_config(tls12_only: bool) -> Arc<ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let versions: &[&rustls::SupportedProtocolVersion] = if tls12_only {
        &[&rustls::version::TLS12]
    } else {
        &[&rustls::version::TLS13, &rustls::version::TLS12]
    };
    let mut config = ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(versions)
        .expect("versions")
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AcceptAny(provider)))
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Arc::new(config)
}

/// A TLS client connection (read/write timeouts 10 s).
pub struct TlsConn {
    stream: StreamOwned<ClientConnection, TcpStream>,
    buf: Vec<u8>,
}

impl std::fmt::Debug for TlsConn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsConn").finish_non_exhaustive()
    }
}

impl TlsConn {
    /// Connects and completes the handshake, sending `sni` as server name
    /// (`None`: no SNI at all).
    pub fn open(
        addr: SocketAddr,
        sni: Option<&str>,
        config: &Arc<ClientConfig>,
    ) -> io::Result<TlsConn> {
        let name = match sni {
            Some(host) => ServerName::try_from(host.to_string()).map_err(io::Error::other)?,
            // rustls sends no SNI for an IP address.
            None => ServerName::IpAddress(addr.ip().into()),
        };
        let conn = ClientConnection::new(config.clone(), name).map_err(io::Error::other)?;
        let tcp = TcpStream::connect_timeout(&addr, Duration::from_secs(10))?;
        tcp.set_read_timeout(Some(Duration::from_secs(10)))?;
        tcp.set_write_timeout(Some(Duration::from_secs(10)))?;
        let mut stream = StreamOwned::new(conn, tcp);
        while stream.conn.is_handshaking() {
            stream.conn.complete_io(&mut stream.sock)?;
        }
        Ok(TlsConn {
            stream,
            buf: Vec::new(),
        })
    }

    /// The leaf certificate the server presented, in DER.
    pub fn server_cert(&self) -> Vec<u8> {
        self.stream
            .conn
            .peer_certificates()
            .and_then(|c| c.first())
            .map(|c| c.to_vec())
            .unwrap_or_default()
    }

    /// The negotiated TLS version, e.g. `TLSv1_3`.
    pub fn version(&self) -> String {
        format!("{:?}", self.stream.conn.protocol_version())
    }

    /// True when the session was resumed rather than fully negotiated.
    pub fn resumed(&self) -> bool {
        self.stream.conn.handshake_kind() == Some(rustls::HandshakeKind::Resumed)
    }

    /// The underlying TCP stream (e.g. to change timeouts).
    pub fn tcp(&self) -> &TcpStream {
        &self.stream.sock
    }

    /// The TLS stream, for protocols on top (WebSocket).
    pub fn into_stream(self) -> StreamOwned<ClientConnection, TcpStream> {
        self.stream
    }

    /// `GET path` with `Host: host`, keeping the connection open; the
    /// response must have a Content-Length.
    pub fn get(&mut self, host: &str, path: &str) -> io::Result<Response> {
        let head = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n");
        self.stream.write_all(head.as_bytes())?;
        self.stream.flush()?;
        loop {
            if let Some(resp) = self.parse()? {
                return Ok(resp);
            }
            let mut piece = [0u8; 16 * 1024];
            let n = self.stream.read(&mut piece)?;
            if n == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            self.buf.extend_from_slice(&piece[..n]);
        }
    }

    /// A whole response from the buffer, if one is there.
    fn parse(&mut self) -> io::Result<Option<Response>> {
        let mut fields = [httparse::EMPTY_HEADER; 64];
        let mut parsed = httparse::Response::new(&mut fields);
        let head_len = match parsed.parse(&self.buf).map_err(io::Error::other)? {
            httparse::Status::Complete(n) => n,
            httparse::Status::Partial => return Ok(None),
        };
        let headers: Vec<(String, String)> = parsed
            .headers
            .iter()
            .map(|h| {
                (
                    h.name.to_string(),
                    String::from_utf8_lossy(h.value).into_owned(),
                )
            })
            .collect();
        let len = headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
            .and_then(|(_, v)| v.trim().parse::<usize>().ok())
            .ok_or_else(|| io::Error::other("response without Content-Length"))?;
        if self.buf.len() < head_len + len {
            return Ok(None);
        }
        let resp = Response {
            status: parsed.code.unwrap_or(0),
            version: parsed.version.unwrap_or(1),
            headers,
            body: self.buf[head_len..head_len + len].to_vec(),
            trailers: Vec::new(),
        };
        self.buf.drain(..head_len + len);
        Ok(Some(resp))
    }
}
