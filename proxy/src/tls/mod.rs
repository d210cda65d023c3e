//! TLS termination: certificates compiled with each route table
//! ([`TlsTable`], off the shard cores), SNI selection ([`resolver`]), the
//! default certificate ([`default_cert`]) and the handshake on a shard
//! ([`acceptor`]); and TLS to the endpoints ([`client`]).
//!
//! rustls with the ring provider, driven by futures-rustls over the shard's
//! own streams. The session-ticket key and the session cache are created
//! once at start and shared by every table, so resumption survives swaps.

pub mod acceptor;
pub mod client;
pub mod default_cert;
pub mod resolver;

use rauta_shared::config::{HostMatch, TlsCertConfig};
use resolver::SniResolver;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ProducesTickets, ServerSessionMemoryCache, StoresServerSessions};
use rustls::sign::CertifiedKey;
use rustls::ServerConfig;
use std::collections::HashMap;
use std::sync::Arc;

/// Sessions kept for TLS 1.2 session-id resumption (tickets need no state).
const SESSION_CACHE_SIZE: usize = 32 * 1024;
/// The only application protocol spoken.
const ALPN_HTTP11: &[u8] = b"http/1.1";
/// The ALPN id of HTTP/2.
pub const ALPN_H2: &[u8] = b"h2";

/// What every TLS table shares, created once at start.
#[derive(Debug)]
pub struct TlsSettings {
    provider: Arc<CryptoProvider>,
    ticketer: Arc<dyn ProducesTickets>,
    sessions: Arc<dyn StoresServerSessions>,
    /// Offer `h2` before `http/1.1` (`--http2 on`).
    pub http2: bool,
    default_cert: Arc<CertifiedKey>,
    /// The keys loaded for the previous table, by their PEM: most swaps
    /// (endpoints moving) change no certificate, and loading every key
    /// again each time would cost the control thread for nothing.
    loaded: HashMap<(String, String), Arc<CertifiedKey>>,
}

/// One host's certificate as `/metrics` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertInfo {
    /// The host as written in the Ingress (`*.example.com` for a wildcard).
    pub host: String,
    /// Namespace of the Secret.
    pub namespace: String,
    /// Name of the Secret.
    pub secret: String,
    /// notAfter of the leaf, seconds since the Unix epoch.
    pub not_after: i64,
}

/// The TLS side of one table generation: immutable, shared by every shard.
#[derive(Debug)]
pub struct TlsTable {
    /// The rustls configuration handshakes of this generation use.
    pub config: Arc<ServerConfig>,
    /// Every host with its own certificate.
    pub certs: Vec<CertInfo>,
    /// Certificate entries that could not be loaded (and were skipped).
    pub skipped: usize,
}

impl TlsSettings {
    /// Settings with `default_cert` for hosts without a certificate of their own.
    pub fn new(default_cert: CertifiedKey) -> Result<TlsSettings, rustls::Error> {
        Ok(TlsSettings {
            provider: Arc::new(rustls::crypto::ring::default_provider()),
            ticketer: rustls::crypto::ring::Ticketer::new()?,
            sessions: ServerSessionMemoryCache::new(SESSION_CACHE_SIZE),
            default_cert: Arc::new(default_cert),
            loaded: HashMap::new(),
            http2: true,
        })
    }

    /// Builds the TLS table of a configuration. Entries translation already
    /// checked; one that still fails to load is logged and skipped, never
    /// fatal for the others.
    pub fn compile(&mut self, certs: &[TlsCertConfig]) -> Result<TlsTable, rustls::Error> {
        let mut resolver = SniResolver::new(self.default_cert.clone());
        let mut infos = Vec::new();
        let mut skipped = 0;
        let mut previous = std::mem::take(&mut self.loaded);
        for entry in certs {
            let pem = (entry.cert_pem.clone(), entry.key_pem.clone());
            let loaded = match previous.remove(&pem) {
                Some(key) => Ok(key),
                None => load_pair(&self.provider, &entry.cert_pem, &entry.key_pem).map(Arc::new),
            };
            let key = match loaded {
                Ok(key) => {
                    self.loaded.insert(pem, key.clone());
                    key
                }
                Err(e) => {
                    tracing::error!(secret = %entry.secret, error = %e, "TLS certificate skipped; its hosts get the default certificate");
                    skipped += 1;
                    continue;
                }
            };
            for host in &entry.hosts {
                let name = match host {
                    HostMatch::Exact(h) => h.clone(),
                    HostMatch::Wildcard(s) | HostMatch::Suffix(s) => format!("*.{s}"),
                    // The default certificate's replacement.
                    HostMatch::Any => "*".to_string(),
                };
                resolver.insert(host, key.clone());
                infos.push(CertInfo {
                    host: name,
                    namespace: entry.secret.namespace.clone(),
                    secret: entry.secret.name.clone(),
                    not_after: entry.not_after,
                });
            }
        }
        let mut config = ServerConfig::builder_with_provider(self.provider.clone())
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
            .with_no_client_auth()
            .with_cert_resolver(Arc::new(resolver));
        // h2 first: a client offering both gets HTTP/2, as from ingress-nginx.
        config.alpn_protocols = match self.http2 {
            true => vec![ALPN_H2.to_vec(), ALPN_HTTP11.to_vec()],
            false => vec![ALPN_HTTP11.to_vec()],
        };
        config.ticketer = self.ticketer.clone();
        config.session_storage = self.sessions.clone();
        Ok(TlsTable {
            config: Arc::new(config),
            certs: infos,
            skipped,
        })
    }
}

/// A certificate chain and key from PEM, checked to belong together.
pub fn load_pair(
    provider: &CryptoProvider,
    cert_pem: &str,
    key_pem: &str,
) -> Result<CertifiedKey, rustls::Error> {
    let bad =
        |what: &str, e: &dyn std::fmt::Display| rustls::Error::General(format!("{what}: {e}"));
    let chain = CertificateDer::pem_slice_iter(cert_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad("certificate PEM", &e))?;
    if chain.is_empty() {
        return Err(rustls::Error::NoCertificatesPresented);
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).map_err(|e| bad("key PEM", &e))?;
    CertifiedKey::from_der(chain, key, provider)
}
