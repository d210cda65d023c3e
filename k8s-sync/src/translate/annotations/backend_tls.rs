//! TLS to the backends (`backend-protocol: HTTPS` or `GRPCS`):
//! `proxy-ssl-verify`, `proxy-ssl-verify-depth`, `proxy-ssl-secret`,
//! `proxy-ssl-name`, `proxy-ssl-server-name`, `proxy-ssl-protocols` and
//! `proxy-ssl-ciphers`. The Secret is looked up when the backend is
//! resolved (it needs the index).

use super::Reader;
use rauta_shared::config::{SecretRef, UpstreamProtocol};

/// Every key of the family.
const KEYS: [&str; 7] = [
    "proxy-ssl-verify",
    "proxy-ssl-verify-depth",
    "proxy-ssl-secret",
    "proxy-ssl-name",
    "proxy-ssl-server-name",
    "proxy-ssl-protocols",
    "proxy-ssl-ciphers",
];

/// What the Ingress asks of TLS to its backends.
#[derive(Debug, Clone, Default)]
pub(crate) struct BackendTls {
    /// `proxy-ssl-verify: on`.
    pub(crate) verify: bool,
    /// `proxy-ssl-verify-depth` (1 by default).
    pub(crate) depth: u8,
    /// `proxy-ssl-secret`: `ca.crt`, and `tls.crt`/`tls.key` for mutual TLS.
    pub(crate) secret: Option<SecretRef>,
    /// `proxy-ssl-name`.
    pub(crate) name: Option<String>,
    /// `proxy-ssl-server-name: on`: send the name as SNI.
    pub(crate) sni: bool,
}

/// Reads the family; `None` unless `protocol` is a TLS one (the keys are
/// then reported as having no effect, as in ingress-nginx).
pub(super) fn parse(
    r: &mut Reader<'_>,
    protocol: UpstreamProtocol,
    namespace: &str,
) -> Option<BackendTls> {
    if !protocol.is_tls() {
        for key in KEYS {
            if r.get(key).is_some() {
                r.warn(
                    key,
                    "applies only with backend-protocol HTTPS or GRPCS; ignored",
                );
            }
        }
        return None;
    }
    let mut tls = BackendTls {
        verify: on_off(r, "proxy-ssl-verify"),
        depth: 1,
        sni: on_off(r, "proxy-ssl-server-name"),
        ..BackendTls::default()
    };
    if let Some(v) = r.get("proxy-ssl-verify-depth") {
        match v.trim().parse::<u8>() {
            Ok(n) if n > 0 => {
                tls.depth = n;
                r.differs(
                    "proxy-ssl-verify-depth",
                    "rustls verifies any chain length up to the CA; the depth is not enforced",
                );
            }
            _ => r.warn(
                "proxy-ssl-verify-depth",
                format!("{v:?} is not a positive number; 1 is used"),
            ),
        }
    }
    if let Some(v) = r.get("proxy-ssl-secret") {
        let v = v.trim();
        let (ns, name) = v.split_once('/').unwrap_or((namespace, v));
        if ns.is_empty() || name.is_empty() || name.contains('/') {
            r.warn(
                "proxy-ssl-secret",
                format!("{v:?} is not namespace/name; no CA and no client certificate"),
            );
        } else {
            tls.secret = Some(SecretRef {
                namespace: ns.to_string(),
                name: name.to_string(),
            });
        }
    }
    if let Some(v) = r.get("proxy-ssl-name") {
        let v = v.trim();
        if rustls::pki_types::ServerName::try_from(v).is_ok() {
            tls.name = Some(v.to_string());
        } else {
            r.warn(
                "proxy-ssl-name",
                format!("{v:?} is not a valid TLS server name; the Service's name is used"),
            );
        }
    }
    for key in ["proxy-ssl-protocols", "proxy-ssl-ciphers"] {
        if r.get(key).is_some() {
            r.differs(
                key,
                "rustls negotiates TLS 1.3 or 1.2 with its own safe cipher suites",
            );
        }
    }
    Some(tls)
}

/// ingress-nginx's `on`/`off` (also `true`/`false`); off when absent or bad.
fn on_off(r: &mut Reader<'_>, key: &str) -> bool {
    match r.get(key).map(|v| v.trim().to_ascii_lowercase()) {
        None => false,
        Some(v) if v == "on" || v == "true" => true,
        Some(v) if v == "off" || v == "false" => false,
        Some(v) => {
            r.warn(key, format!("{v:?} is not on or off; off is used"));
            false
        }
    }
}
