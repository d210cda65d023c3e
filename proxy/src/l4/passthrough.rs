//! `ssl-passthrough` on the TLS listeners: while the live table has
//! passthrough hosts, a new TLS connection's ClientHello is read without
//! being consumed ([`super::client_hello`]); a server name of a passthrough
//! host sends the raw stream to that host's backend, anything else goes on
//! to the TLS handshake as before. A table without passthrough hosts costs
//! a connection one boolean test.
//!
//! Answers, each counted in `rauta_tls_client_hellos_total{result}`:
//! a passthrough host: relayed (`passthrough`); another name or none:
//! terminated with the host's or the default certificate (`terminated`,
//! `no_sni`); a malformed or oversized hello: the alert its reason names,
//! then close (the reason's label); no whole hello within the handshake
//! timeout: close (`timeout`).

use super::client_hello::{self, Peek};
use crate::rt::{self, TcpStream};
use crate::shard::Shard;
use futures_lite::AsyncWriteExt;
use std::time::{Duration, Instant};

/// First pause before peeking again at a hello still incomplete; it
/// doubles up to [`MAX_PAUSE`]. Peeking consumes nothing, so the socket
/// stays readable and cannot be waited on for "more".
const FIRST_PAUSE: Duration = Duration::from_millis(1);
const MAX_PAUSE: Duration = Duration::from_millis(50);

/// Relays `stream` when its hello names a passthrough host; returns it
/// untouched when it is to be terminated, `None` when it was handled here.
pub async fn route(shard: &Shard, mut stream: TcpStream) -> Option<TcpStream> {
    let table = shard.table()?;
    if !table.routes.has_passthrough() {
        return Some(stream);
    }
    let deadline = Instant::now() + shard.cfg.tls_handshake_timeout;
    let mut buf = vec![0u8; client_hello::MAX_HELLO_BYTES];
    let mut pause = FIRST_PAUSE;
    let _ = stream.set_read_timeout(Some(shard.cfg.tls_handshake_timeout));
    let (sni, backend) = loop {
        let n = match stream.peek(&mut buf).await {
            Ok(n) if n > 0 => n,
            _ => {
                shard.l4_stats.hello("closed");
                return None;
            }
        };
        match client_hello::peek(&buf[..n]) {
            Peek::Hello(hello) => {
                let Some(name) = hello.sni else {
                    shard.l4_stats.hello("no_sni");
                    return Some(stream);
                };
                match table.routes.passthrough(name.as_str()) {
                    Some(backend) => break (name, backend),
                    None => {
                        shard.l4_stats.hello("terminated");
                        return Some(stream);
                    }
                }
            }
            Peek::Invalid(reject) => {
                shard.l4_stats.hello(reject.label());
                if let Some(description) = reject.alert() {
                    let _ = stream.write_all(&client_hello::alert(description)).await;
                }
                return None;
            }
            Peek::NeedMore(_) if Instant::now() >= deadline => {
                shard.l4_stats.hello("timeout");
                return None;
            }
            Peek::NeedMore(_) => {
                rt::sleep(pause).await;
                pause = (pause * 2).min(MAX_PAUSE);
            }
        }
    };
    drop(buf);
    shard.l4_stats.hello("passthrough");
    let label = format!("passthrough/{}", sni.as_str());
    relay_to(shard, &table, backend, &label, stream).await;
    None
}

async fn relay_to(
    shard: &Shard,
    table: &crate::shard::LocalTable,
    backend: usize,
    label: &str,
    mut client: TcpStream,
) {
    let Ok(peer) = client.peer_addr() else { return };
    shard.l4_stats.with(label, |c| {
        c.connections += 1;
        c.active += 1;
    });
    let started = Instant::now();
    let connected = super::tcp::connect(shard, table, backend, label, peer).await;
    let relayed = match connected {
        Some((mut upstream, endpoint)) => {
            let _open = table.states[backend].start(endpoint, u32::MAX);
            Some(super::tcp::relay(shard, label, &mut client, &mut upstream).await)
        }
        None => None,
    };
    shard.l4_stats.with(label, |c| {
        c.active -= 1;
        c.duration_us += started.elapsed().as_micros() as u64;
        match relayed {
            Some(r) => r.record(c),
            None => c.unserved += 1,
        }
    });
}
