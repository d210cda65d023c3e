//! TLS to the endpoints (`backend-protocol: HTTPS` and `GRPCS`): one rustls
//! client configuration per backend, compiled with the route table (off the
//! shard cores), and the handshake on a shard. ingress-nginx's defaults hold: the endpoint's certificate is
//! not verified and no SNI is sent unless the Ingress asks
//! (`proxy-ssl-verify`, `proxy-ssl-server-name`).

use crate::rt::{self, TcpStream};
use futures_rustls::client::TlsStream;
use futures_rustls::TlsConnector;
use rauta_shared::config::UpstreamTls;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::io;
use std::sync::Arc;
use std::time::Duration;

/// How a backend's endpoints are reached over TLS.
#[derive(Debug)]
pub struct ClientTls {
    config: Arc<ClientConfig>,
    /// Verified (with `proxy-ssl-verify`) and, with SNI on, sent.
    name: ServerName<'static>,
    /// Tells pooled connections made with other settings apart (never 0,
    /// which stands for plain TCP).
    pub id: u64,
}

impl ClientTls {
    /// The client settings for `tls`; `service_name` (`svc.ns.svc`) is the
    /// name when the Ingress gives none; `h2` offers ALPN `h2` (gRPC), else
    /// `http/1.1`. The error says what is wrong with the Secret's PEM.
    pub fn compile(tls: &UpstreamTls, service_name: &str, h2: bool) -> Result<ClientTls, String> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
            .map_err(|e| e.to_string())?;
        let builder = if tls.verify {
            let mut roots = RootCertStore::empty();
            let ca = tls.ca_pem.as_deref().ok_or(
                "proxy-ssl-verify is on but the proxy-ssl-secret has no ca.crt to verify against",
            )?;
            for cert in CertificateDer::pem_slice_iter(ca.as_bytes()) {
                let cert = cert.map_err(|e| format!("ca.crt: {e}"))?;
                roots.add(cert).map_err(|e| format!("ca.crt: {e}"))?;
            }
            if roots.is_empty() {
                return Err("ca.crt holds no certificate".into());
            }
            builder.with_root_certificates(roots)
        } else {
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(NoVerify(provider)))
        };
        let mut config = match (&tls.client_cert_pem, &tls.client_key_pem) {
            (Some(cert), Some(key)) => {
                let chain = CertificateDer::pem_slice_iter(cert.as_bytes())
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| format!("tls.crt: {e}"))?;
                let key = PrivateKeyDer::from_pem_slice(key.as_bytes())
                    .map_err(|e| format!("tls.key: {e}"))?;
                builder
                    .with_client_auth_cert(chain, key)
                    .map_err(|e| format!("client certificate: {e}"))?
            }
            _ => builder.with_no_client_auth(),
        };
        config.enable_sni = tls.sni;
        config.alpn_protocols = vec![if h2 {
            b"h2".to_vec()
        } else {
            b"http/1.1".to_vec()
        }];
        let name = tls.server_name.as_deref().unwrap_or(service_name);
        let name = ServerName::try_from(name.to_string())
            .map_err(|_| format!("{name:?} is not a valid TLS server name"))?;
        let mut hasher = DefaultHasher::new();
        (tls, service_name, h2).hash(&mut hasher);
        Ok(ClientTls {
            config: Arc::new(config),
            name,
            id: hasher.finish() | 1,
        })
    }

    /// The TLS handshake on a connected socket, within `timeout`.
    pub async fn handshake(
        &self,
        tcp: TcpStream,
        timeout: Duration,
    ) -> io::Result<TlsStream<TcpStream>> {
        let connect = TlsConnector::from(self.config.clone()).connect(self.name.clone(), tcp);
        match rt::timeout(timeout, connect).await {
            Some(result) => result,
            None => Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "upstream TLS handshake timed out",
            )),
        }
    }
}

/// ingress-nginx's default (`proxy-ssl-verify: off`): any certificate is
/// taken, though the handshake's signatures are still checked.
#[derive(Debug)]
struct NoVerify(Arc<CryptoProvider>);

impl ServerCertVerifier for NoVerify {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
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
        verify_tls12_signature(
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
        verify_tls13_signature(
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_compile_or_say_what_is_wrong() {
        let plain = UpstreamTls::default();
        let a = ClientTls::compile(&plain, "web.shop.svc", false).expect("no verify");
        assert!(!a.config.enable_sni, "no SNI by default, as ingress-nginx");
        assert_eq!(a.config.alpn_protocols, vec![b"http/1.1".to_vec()]);
        let b = ClientTls::compile(&plain, "web.shop.svc", true).expect("h2");
        assert_eq!(b.config.alpn_protocols, vec![b"h2".to_vec()]);
        assert_ne!(a.id, b.id);
        assert_ne!(a.id, 0);
        let verify = UpstreamTls {
            verify: true,
            ..UpstreamTls::default()
        };
        let e = ClientTls::compile(&verify, "web.shop.svc", false).expect_err("no CA");
        assert!(e.contains("ca.crt"), "{e}");
        let bad_ca = UpstreamTls {
            verify: true,
            ca_pem: Some("not a certificate".into()),
            ..UpstreamTls::default()
        };
        assert!(ClientTls::compile(&bad_ca, "web.shop.svc", false).is_err());
        let bad_name = UpstreamTls {
            server_name: Some("not a name!".into()),
            ..UpstreamTls::default()
        };
        assert!(ClientTls::compile(&bad_name, "web.shop.svc", false).is_err());
    }
}
