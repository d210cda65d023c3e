//! The certificate for hosts without one of their own: from
//! `--default-tls-cert`/`--default-tls-key`, else self-signed at start with
//! the subject ingress-nginx uses for its fake certificate, so that
//! clients and monitoring recognise it.

use rustls::crypto::CryptoProvider;
use rustls::sign::CertifiedKey;
use std::path::Path;

/// Common name of the generated certificate (ingress-nginx's).
pub const FAKE_CERT_CN: &str = "Kubernetes Ingress Controller Fake Certificate";
/// Subject alternative name of the generated certificate (ingress-nginx's).
const FAKE_CERT_SAN: &str = "ingress.local";

/// Loads the default certificate from PEM files.
pub fn load(provider: &CryptoProvider, cert: &Path, key: &Path) -> Result<CertifiedKey, String> {
    let read = |p: &Path| {
        std::fs::read_to_string(p).map_err(|e| format!("cannot read {}: {e}", p.display()))
    };
    super::load_pair(provider, &read(cert)?, &read(key)?).map_err(|e| {
        format!(
            "{} and {} are not a usable certificate and key: {e}",
            cert.display(),
            key.display()
        )
    })
}

/// A self-signed certificate named like ingress-nginx's fake certificate.
pub fn generate(provider: &CryptoProvider) -> Result<CertifiedKey, String> {
    generate_named(provider, FAKE_CERT_CN)
}

/// A fresh self-signed ECDSA P-256 certificate with common name `cn`.
pub fn generate_named(provider: &CryptoProvider, cn: &str) -> Result<CertifiedKey, String> {
    let mut params = rcgen::CertificateParams::new(vec![FAKE_CERT_SAN.to_string()])
        .map_err(|e| e.to_string())?;
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(rcgen::DnType::OrganizationName, "Acme Co");
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, cn);
    let key = rcgen::KeyPair::generate().map_err(|e| e.to_string())?;
    let cert = params.self_signed(&key).map_err(|e| e.to_string())?;
    super::load_pair(provider, &cert.pem(), &key.serialize_pem()).map_err(|e| e.to_string())
}
