//! The TLS families: handshakes by result and resumed sessions (all
//! shards), and each host's certificate expiry.

use super::text::{escape, Out};
use crate::metrics::registry::Registry;
use crate::tls::acceptor::Handshake;
use crate::tls::TlsTable;

/// Writes the TLS families.
pub(super) fn render(out: &mut Out<'_>, registry: &Registry, tls: &TlsTable) {
    let shards = || registry.shards.values();
    out.by_label(
        "rauta_tls_handshakes_total",
        "counter",
        "TLS handshakes on the --listen-tls listeners, by result (ok, or why they failed).",
        "result",
        Handshake::ALL.map(|result| {
            let n: u64 = shards().map(|s| s.tls_handshakes[result.index()]).sum();
            (result.label(), n)
        }),
    );
    out.single(
        "rauta_tls_resumed_sessions_total",
        "counter",
        "Completed TLS handshakes (counted as ok above) that resumed a session by ticket or session id.",
        shards().map(|s| s.tls_resumed).sum::<u64>(),
    );
    out.family(
        "rauta_tls_certificate_expiry_seconds",
        "gauge",
        "notAfter of the certificate each TLS host gets (Unix time).",
    );
    for cert in &tls.certs {
        out.sample(
            "rauta_tls_certificate_expiry_seconds",
            &format!(
                "host=\"{}\",namespace=\"{}\",secret=\"{}\"",
                escape(&cert.host),
                escape(&cert.namespace),
                escape(&cert.secret)
            ),
            cert.not_after,
        );
    }
    out.single(
        "rauta_tls_certificates_skipped",
        "gauge",
        "Certificates of the live table that could not be loaded (their hosts get the default certificate); problems found in translation count in rauta_config_problems.",
        tls.skipped,
    );
}
