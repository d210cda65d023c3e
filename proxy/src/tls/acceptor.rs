//! One TLS handshake on a shard, bounded by the handshake timeout, and why
//! it failed, for `rauta_tls_handshakes_total{result}`.

use super::TlsTable;
use crate::rt::{self, TcpStream};
use futures_rustls::server::TlsStream;
use futures_rustls::TlsAcceptor;
use rustls::{Error, PeerIncompatible};
use std::io;
use std::time::Duration;

/// How a handshake ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handshake {
    /// Completed.
    Ok,
    /// Not completed within `--tls-handshake-timeout`.
    Timeout,
    /// The client closed or reset the connection during the handshake.
    Eof,
    /// No TLS version in common (e.g. a TLS 1.0 or 1.1 client).
    ProtocolVersion,
    /// No cipher suite, key-exchange group or signature scheme in common.
    NoSharedCipher,
    /// The client offered ALPN protocols, none of them `http/1.1`.
    NoApplicationProtocol,
    /// Bytes that are not TLS records (plain HTTP, garbage).
    BadRecord,
    /// The client aborted with an alert (e.g. it rejected the certificate).
    AlertReceived,
    /// No route table yet, so no certificates.
    NotReady,
    /// Any other failure.
    Other,
}

impl Handshake {
    /// Every result, in label order.
    pub const ALL: [Handshake; 10] = [
        Handshake::Ok,
        Handshake::Timeout,
        Handshake::Eof,
        Handshake::ProtocolVersion,
        Handshake::NoSharedCipher,
        Handshake::NoApplicationProtocol,
        Handshake::BadRecord,
        Handshake::AlertReceived,
        Handshake::NotReady,
        Handshake::Other,
    ];

    /// The `result` label value.
    pub fn label(self) -> &'static str {
        match self {
            Handshake::Ok => "ok",
            Handshake::Timeout => "timeout",
            Handshake::Eof => "eof",
            Handshake::ProtocolVersion => "protocol_version",
            Handshake::NoSharedCipher => "no_shared_cipher",
            Handshake::NoApplicationProtocol => "no_application_protocol",
            Handshake::BadRecord => "bad_record",
            Handshake::AlertReceived => "alert_received",
            Handshake::NotReady => "not_ready",
            Handshake::Other => "other",
        }
    }

    /// The counter slot.
    pub fn index(self) -> usize {
        self as usize
    }

    /// Why a handshake failed, from the error futures-rustls returned.
    pub fn of_error(e: &io::Error) -> Handshake {
        if let Some(tls) = e.get_ref().and_then(|i| i.downcast_ref::<Error>()) {
            return match tls {
                Error::PeerIncompatible(p) => match p {
                    // Only TLS 1.0 and 1.1 clients leave signature_algorithms
                    // out (it came with 1.2); rustls notices that before it
                    // compares versions, and answers handshake_failure.
                    PeerIncompatible::SignatureAlgorithmsExtensionRequired
                    | PeerIncompatible::Tls12NotOffered
                    | PeerIncompatible::Tls12NotOfferedOrEnabled
                    | PeerIncompatible::SupportedVersionsExtensionRequired => {
                        Handshake::ProtocolVersion
                    }
                    _ => Handshake::NoSharedCipher,
                },
                Error::NoApplicationProtocol => Handshake::NoApplicationProtocol,
                Error::InvalidMessage(_)
                | Error::InappropriateMessage { .. }
                | Error::InappropriateHandshakeMessage { .. }
                | Error::DecryptError
                | Error::PeerMisbehaved(_) => Handshake::BadRecord,
                Error::AlertReceived(_) => Handshake::AlertReceived,
                _ => Handshake::Other,
            };
        }
        match e.kind() {
            io::ErrorKind::UnexpectedEof
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe => Handshake::Eof,
            io::ErrorKind::TimedOut => Handshake::Timeout,
            _ => Handshake::Other,
        }
    }
}

/// True when the client resumed an earlier session (ticket or cache).
pub fn resumed(stream: &TlsStream<TcpStream>) -> bool {
    stream.get_ref().1.handshake_kind() == Some(rustls::HandshakeKind::Resumed)
}

/// Runs the server handshake with the certificates of `table`.
pub async fn accept(
    table: &TlsTable,
    stream: TcpStream,
    timeout: Duration,
) -> Result<TlsStream<TcpStream>, Handshake> {
    let acceptor = TlsAcceptor::from(table.config.clone());
    match rt::timeout(timeout, acceptor.accept(stream)).await {
        None => Err(Handshake::Timeout),
        Some(Ok(stream)) => Ok(stream),
        Some(Err(e)) => {
            let result = Handshake::of_error(&e);
            tracing::debug!(error = %e, result = result.label(), "TLS handshake failed");
            Err(result)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tls_error(e: Error) -> io::Error {
        io::Error::new(io::ErrorKind::InvalidData, e)
    }

    #[test]
    fn failures_are_named() {
        let cases = [
            (
                tls_error(Error::PeerIncompatible(
                    PeerIncompatible::SignatureAlgorithmsExtensionRequired,
                )),
                Handshake::ProtocolVersion,
            ),
            (
                tls_error(Error::PeerIncompatible(
                    PeerIncompatible::NoCipherSuitesInCommon,
                )),
                Handshake::NoSharedCipher,
            ),
            (
                tls_error(Error::InvalidMessage(
                    rustls::InvalidMessage::InvalidContentType,
                )),
                Handshake::BadRecord,
            ),
            (
                tls_error(Error::NoApplicationProtocol),
                Handshake::NoApplicationProtocol,
            ),
            (
                tls_error(Error::AlertReceived(
                    rustls::AlertDescription::BadCertificate,
                )),
                Handshake::AlertReceived,
            ),
            (io::ErrorKind::UnexpectedEof.into(), Handshake::Eof),
            (io::ErrorKind::ConnectionReset.into(), Handshake::Eof),
            (io::Error::other("?"), Handshake::Other),
        ];
        for (e, expected) in cases {
            assert_eq!(Handshake::of_error(&e), expected, "{e}");
        }
        let labels: std::collections::HashSet<_> =
            Handshake::ALL.iter().map(|h| h.label()).collect();
        assert_eq!(labels.len(), Handshake::ALL.len());
        assert!(Handshake::ALL
            .iter()
            .enumerate()
            .all(|(i, h)| h.index() == i));
    }
}
