//! Checks a `kubernetes.io/tls` Secret's certificate and key once, at
//! translation, so that `rauta check` and the logs name a bad pair before
//! any client meets it: PEM decoding, the key matching the leaf, the hosts
//! the leaf covers, and its expiry.

use k8s_openapi::api::core::v1::Secret;
use rauta_shared::config::HostMatch;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::sign::CertifiedKey;
use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::{Mutex, OnceLock, PoisonError};

/// Most verdicts [`check_pair_cached`] remembers before starting afresh.
const CHECKED_MAX: usize = 16 * 1024;

/// Label used to ask whether a certificate covers every name of a wildcard
/// host: a certificate for `*.example.com` covers it, one for
/// `a.example.com` does not.
const WILDCARD_PROBE: &str = "rauta-wildcard-probe";

/// The Secret type an Ingress TLS Secret must have.
pub const TLS_SECRET_TYPE: &str = "kubernetes.io/tls";

/// `tls.crt` and `tls.key` of a `kubernetes.io/tls` Secret. `stringData`
/// (as written in a manifest file) wins over `data`, as the API server
/// merges them.
pub fn secret_pair(secret: &Secret) -> Result<(Vec<u8>, Vec<u8>), String> {
    let type_ = secret.type_.as_deref().unwrap_or("Opaque");
    if type_ != TLS_SECRET_TYPE {
        return Err(format!("type is {type_}, not {TLS_SECRET_TYPE}"));
    }
    let field = |name| secret_field(secret, name);
    match (field("tls.crt"), field("tls.key")) {
        (Some(crt), Some(key)) => Ok((crt, key)),
        (None, Some(_)) => Err("tls.crt is missing or empty".into()),
        (Some(_), None) => Err("tls.key is missing or empty".into()),
        (None, None) => Err("tls.crt and tls.key are missing or empty".into()),
    }
}

/// A field of a Secret, from `stringData` (as written in a manifest file)
/// over `data`, as the API server merges them; `None` when absent or empty.
pub fn secret_field(secret: &Secret, name: &str) -> Option<Vec<u8>> {
    let text = secret.string_data.as_ref().and_then(|d| d.get(name));
    let data = secret.data.as_ref().and_then(|d| d.get(name));
    text.map(|t| t.as_bytes().to_vec())
        .or_else(|| data.map(|d| d.0.clone()))
        .filter(|v| !v.is_empty())
}

/// What a valid certificate/key pair tells about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertFacts {
    /// The leaf's notAfter, seconds since the Unix epoch.
    pub not_after: i64,
}

/// [`check_pair`], remembered by a hash of the pair. Every reconcile
/// translates every Secret again, mostly unchanged (endpoints move far more
/// often than certificates), and loading a key (RSA above all) is the
/// costly part. Only the hash and the verdict are kept, no key material.
pub fn check_pair_cached(cert_pem: &[u8], key_pem: &[u8]) -> Result<CertFacts, String> {
    static CHECKED: OnceLock<Mutex<HashMap<u64, Result<CertFacts, String>>>> = OnceLock::new();
    let mut hasher = DefaultHasher::new();
    cert_pem.hash(&mut hasher);
    key_pem.hash(&mut hasher);
    let id = hasher.finish();
    let checked = CHECKED.get_or_init(Default::default);
    let lock = || checked.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(verdict) = lock().get(&id) {
        return verdict.clone();
    }
    let verdict = check_pair(cert_pem, key_pem);
    let mut map = lock();
    if map.len() >= CHECKED_MAX {
        map.clear();
    }
    map.insert(id, verdict.clone());
    verdict
}

/// Decodes and checks a PEM chain and key; the message says what is wrong.
pub fn check_pair(cert_pem: &[u8], key_pem: &[u8]) -> Result<CertFacts, String> {
    let chain = parse_chain(cert_pem)?;
    let key = PrivateKeyDer::from_pem_slice(key_pem)
        .map_err(|e| format!("tls.key holds no usable PEM private key ({e})"))?;
    let provider = rustls::crypto::ring::default_provider();
    let signing = provider
        .key_provider
        .load_private_key(key)
        .map_err(|e| format!("tls.key cannot be used: {e}"))?;
    let leaf = chain[0].clone();
    let certified = CertifiedKey::new(chain, signing);
    match certified.keys_match() {
        Ok(()) => {}
        Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch)) => {
            return Err("tls.key does not match the certificate in tls.crt".into())
        }
        Err(e) => return Err(format!("tls.crt and tls.key cannot be compared: {e}")),
    }
    let not_after = not_after(&leaf)
        .ok_or_else(|| "tls.crt: the certificate's validity cannot be read".to_string())?;
    Ok(CertFacts { not_after })
}

/// The certificates of a PEM chain, leaf first; at least one.
pub fn parse_chain(cert_pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, String> {
    let chain = CertificateDer::pem_slice_iter(cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("tls.crt is not valid PEM ({e})"))?;
    if chain.is_empty() {
        return Err("tls.crt holds no PEM certificate".into());
    }
    if let Err(e) = webpki::EndEntityCert::try_from(&chain[0]) {
        return Err(format!(
            "tls.crt: the first certificate cannot be parsed ({e})"
        ));
    }
    Ok(chain)
}

/// True when the leaf of `cert_pem` is valid for `host` by its subject
/// alternative names (a wildcard host must be covered for all its names).
pub fn covers(cert_pem: &[u8], host: &HostMatch) -> bool {
    let name = match host {
        HostMatch::Any => return false,
        HostMatch::Exact(h) => h.clone(),
        // A certificate covers one label below its wildcard, never more.
        HostMatch::Wildcard(suffix) | HostMatch::Suffix(suffix) => {
            format!("{WILDCARD_PROBE}.{suffix}")
        }
    };
    let Ok(chain) = parse_chain(cert_pem) else {
        return false;
    };
    let Ok(leaf) = webpki::EndEntityCert::try_from(&chain[0]) else {
        return false;
    };
    let Ok(name) = ServerName::try_from(name.as_str()) else {
        return false;
    };
    leaf.verify_is_valid_for_subject_name(&name).is_ok()
}

/// The notAfter of a DER certificate, seconds since the Unix epoch
/// (webpki checks validity but does not expose it).
pub fn not_after(cert: &CertificateDer<'_>) -> Option<i64> {
    let (_, parsed) = x509_parser::parse_x509_certificate(cert.as_ref()).ok()?;
    Some(parsed.validity().not_after.timestamp())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cert(names: &[&str], year: i32) -> (String, String) {
        let mut params =
            rcgen::CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
                .expect("params");
        params.not_after = rcgen::date_time_ymd(year, 6, 30);
        let key = rcgen::KeyPair::generate().expect("key");
        let cert = params.self_signed(&key).expect("cert");
        (cert.pem(), key.serialize_pem())
    }

    #[test]
    fn good_pair_gives_its_expiry() {
        let (crt, key) = cert(&["a.example.com"], 2031);
        let facts = check_pair(crt.as_bytes(), key.as_bytes()).expect("valid");
        // 2031-06-30T00:00:00Z
        assert_eq!(facts.not_after, 1_940_544_000);
    }

    #[test]
    fn mismatched_and_broken_pairs_are_refused() {
        let (crt, _) = cert(&["a.example.com"], 2031);
        let (_, other_key) = cert(&["a.example.com"], 2031);
        let e = check_pair(crt.as_bytes(), other_key.as_bytes()).expect_err("mismatch");
        assert!(e.contains("does not match"), "{e}");
        let e = check_pair(b"not pem", other_key.as_bytes()).expect_err("no cert");
        assert!(e.contains("tls.crt"), "{e}");
        let e = check_pair(crt.as_bytes(), b"").expect_err("no key");
        assert!(e.contains("tls.key"), "{e}");
    }

    #[test]
    fn cached_verdicts_match() {
        let (crt, key) = cert(&["a.example.com"], 2031);
        let (_, other) = cert(&["a.example.com"], 2031);
        for _ in 0..2 {
            assert_eq!(
                check_pair_cached(crt.as_bytes(), key.as_bytes()),
                check_pair(crt.as_bytes(), key.as_bytes())
            );
            assert!(check_pair_cached(crt.as_bytes(), other.as_bytes()).is_err());
        }
    }

    #[test]
    fn coverage_by_subject_alternative_names() {
        let (crt, _) = cert(&["a.example.com", "*.wild.example.com"], 2031);
        let c = crt.as_bytes();
        assert!(covers(c, &HostMatch::Exact("a.example.com".into())));
        assert!(!covers(c, &HostMatch::Exact("b.example.com".into())));
        assert!(covers(c, &HostMatch::Exact("x.wild.example.com".into())));
        assert!(covers(c, &HostMatch::Wildcard("wild.example.com".into())));
        assert!(!covers(c, &HostMatch::Wildcard("example.com".into())));
    }

    #[test]
    fn both_certificate_time_forms_give_the_expiry() {
        // X.509 writes dates up to 2049 as UTCTime, later ones as
        // GeneralizedTime.
        for (year, expected) in [(2049, 2_508_624_000), (2060, 2_855_779_200)] {
            let (crt, key) = cert(&["a.example.com"], year);
            let facts = check_pair(crt.as_bytes(), key.as_bytes()).expect("valid");
            assert_eq!(facts.not_after, expected, "{year}-06-30");
        }
    }
}
