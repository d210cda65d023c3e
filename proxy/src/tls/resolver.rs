//! SNI -> certificate: the exact host, else its one-label wildcard, else
//! the default certificate. A client that sends no SNI (an IP address, an
//! old client) gets the default certificate, as with ingress-nginx. A
//! certificate for any host (a Gateway HTTPS listener without hostname)
//! takes the built-in default's place.

use rauta_shared::config::HostMatch;
use rustc_hash::FxHashMap;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use std::sync::Arc;

/// The certificates of one table generation, by host.
#[derive(Debug)]
pub struct SniResolver {
    exact: FxHashMap<Box<str>, Arc<CertifiedKey>>,
    /// By the suffix after `*.`.
    wildcard: FxHashMap<Box<str>, Arc<CertifiedKey>>,
    default: Arc<CertifiedKey>,
    /// A certificate for any host took the built-in default's place.
    default_replaced: bool,
}

impl SniResolver {
    /// A resolver that serves `default` for every name until hosts are added.
    pub fn new(default: Arc<CertifiedKey>) -> SniResolver {
        SniResolver {
            exact: FxHashMap::default(),
            wildcard: FxHashMap::default(),
            default,
            default_replaced: false,
        }
    }

    /// Serves `key` for `host` (lower-case, as translation leaves it); the
    /// first certificate given for a host stays. [`HostMatch::Any`]: `key`
    /// replaces the built-in default (the first such key stays).
    pub fn insert(&mut self, host: &HostMatch, key: Arc<CertifiedKey>) {
        let (map, name) = match host {
            HostMatch::Exact(h) => (&mut self.exact, h),
            // A certificate's wildcard covers one label, whatever the route's.
            HostMatch::Wildcard(s) | HostMatch::Suffix(s) => (&mut self.wildcard, s),
            HostMatch::Any => {
                if !self.default_replaced {
                    self.default = key;
                    self.default_replaced = true;
                }
                return;
            }
        };
        map.entry(name.as_str().into()).or_insert(key);
    }

    /// The certificate for a server name (`None`: no SNI).
    pub fn lookup(&self, name: Option<&str>) -> &Arc<CertifiedKey> {
        let Some(name) = name else {
            return &self.default;
        };
        let name = name.strip_suffix('.').unwrap_or(name);
        // rustls hands over SNI lower-cased already; this only guards against a change.
        if name.bytes().any(|b| b.is_ascii_uppercase()) {
            return self.lookup(Some(&name.to_ascii_lowercase()));
        }
        self.exact
            .get(name)
            .or_else(|| {
                let (_, parent) = name.split_once('.')?;
                self.wildcard.get(parent)
            })
            .unwrap_or(&self.default)
    }
}

impl ResolvesServerCert for SniResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.lookup(hello.server_name()).clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(name: &str) -> Arc<CertifiedKey> {
        let provider = rustls::crypto::ring::default_provider();
        Arc::new(crate::tls::default_cert::generate_named(&provider, name).expect("cert"))
    }

    #[test]
    fn exact_then_wildcard_then_default() {
        let (a, w, d) = (key("a"), key("w"), key("d"));
        let mut r = SniResolver::new(d.clone());
        r.insert(&HostMatch::Exact("a.example.com".into()), a.clone());
        r.insert(&HostMatch::Wildcard("example.com".into()), w.clone());
        assert!(Arc::ptr_eq(r.lookup(Some("a.example.com")), &a));
        assert!(Arc::ptr_eq(r.lookup(Some("A.Example.com")), &a));
        assert!(Arc::ptr_eq(r.lookup(Some("b.example.com")), &w));
        assert!(Arc::ptr_eq(r.lookup(Some("x.b.example.com")), &d));
        assert!(Arc::ptr_eq(r.lookup(Some("example.com")), &d));
        assert!(Arc::ptr_eq(r.lookup(None), &d));
    }

    #[test]
    fn a_certificate_for_any_host_replaces_the_default() {
        let (a, any, other, d) = (key("a"), key("any"), key("other"), key("d"));
        let mut r = SniResolver::new(d.clone());
        r.insert(&HostMatch::Exact("a.example.com".into()), a.clone());
        r.insert(&HostMatch::Any, any.clone());
        r.insert(&HostMatch::Any, other);
        assert!(Arc::ptr_eq(r.lookup(Some("a.example.com")), &a));
        assert!(Arc::ptr_eq(r.lookup(Some("b.example.com")), &any));
        assert!(
            Arc::ptr_eq(r.lookup(Some("example.org")), &any),
            "the first stays"
        );
        assert!(Arc::ptr_eq(r.lookup(None), &any), "no SNI");
    }
}
