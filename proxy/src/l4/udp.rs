//! UDP services on a shard: datagrams from each client address are relayed
//! to one endpoint over a socket of that flow's own, and the endpoint's
//! answers sent back from the service port. A flow ends after
//! `--udp-idle-timeout` without datagrams either way; the flow table is
//! bounded, and a datagram that would need a flow past the bound is
//! dropped and counted (a flood of sources costs a counter, not memory).

use super::ListenKey;
use crate::balance::maglev::Maglev;
use crate::drain::DrainSignal;
use crate::rt::{self, UdpSocket};
use crate::shard::Shard;
use futures_lite::future;
use rustc_hash::FxHashMap;
use std::cell::{Cell, RefCell};
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

/// Largest datagram relayed (the most a UDP/IPv4 payload can be).
const MAX_DATAGRAM: usize = 65_507;

/// One client's flow.
#[derive(Debug)]
struct FlowState {
    upstream: Rc<UdpSocket>,
    last: Cell<Instant>,
}

/// Serves `socket` (bound for this shard) for the UDP service on `key`.
pub fn serve(shard: &Rc<Shard>, key: ListenKey, socket: socket2::Socket, closed: Rc<DrainSignal>) {
    match rt::udp_from_socket(socket) {
        Ok(socket) => {
            rt::spawn_local(receive_loop(shard.clone(), key, Rc::new(socket), closed)).detach();
        }
        Err(e) => {
            tracing::error!(shard = shard.id, port = key.1, error = %e, "UDP service socket unusable on this shard");
        }
    }
}

async fn receive_loop(
    shard: Rc<Shard>,
    key: ListenKey,
    socket: Rc<UdpSocket>,
    closed: Rc<DrainSignal>,
) {
    let flows: Rc<RefCell<FxHashMap<SocketAddr, Rc<FlowState>>>> = Rc::default();
    let mut buf = vec![0u8; MAX_DATAGRAM];
    loop {
        let received = future::or(async { Some(socket.recv_from(&mut buf).await) }, async {
            future::or(closed.wait(), shard.drain.wait()).await;
            None
        })
        .await;
        let (n, client) = match received {
            None => break,
            Some(Ok(r)) => r,
            // An ICMP error for an earlier send, or a signal: keep receiving.
            Some(Err(_)) => continue,
        };
        let Some(table) = shard.table() else { continue };
        let Some(service) = table.routes.l4_service(key) else {
            continue;
        };
        let existing = flows.borrow().get(&client).cloned();
        let flow = match existing {
            Some(flow) => flow,
            None => {
                if flows.borrow().len() >= shard.cfg.l4.udp_max_flows {
                    shard.l4_stats.with(&service.label, |c| c.dropped += 1);
                    continue;
                }
                let backend = table.routes.backend(service.backend);
                let key_hash = backend.hash_key().map(|_| Maglev::hash_ip(client.ip()));
                let picked = backend
                    .pick(&table.states[service.backend], key_hash, &shard.rng)
                    .map(|e| shard.outliers.steer(backend, e));
                let Some(endpoint) = picked else {
                    shard.l4_stats.with(&service.label, |c| c.unserved += 1);
                    continue;
                };
                let upstream = match rt::udp_connect(backend.endpoints[endpoint].addr) {
                    Ok(s) => Rc::new(s),
                    Err(_) => {
                        shard
                            .l4_stats
                            .with(&service.label, |c| c.connect_failures += 1);
                        continue;
                    }
                };
                let flow = Rc::new(FlowState {
                    upstream,
                    last: Cell::new(Instant::now()),
                });
                flows.borrow_mut().insert(client, flow.clone());
                shard.l4_stats.with(&service.label, |c| {
                    c.connections += 1;
                    c.active += 1;
                });
                rt::spawn_local(answers(
                    shard.clone(),
                    service.label.clone(),
                    socket.clone(),
                    client,
                    flow.clone(),
                    flows.clone(),
                ))
                .detach();
                flow
            }
        };
        flow.last.set(Instant::now());
        match flow.upstream.try_send(&buf[..n]) {
            Ok(sent) => shard.l4_stats.with(&service.label, |c| {
                c.bytes_in += sent as u64;
                c.copied += sent as u64;
            }),
            Err(_) => shard.l4_stats.with(&service.label, |c| c.dropped += 1),
        }
    }
    // The flows' tasks end with their idle timeout; drop them now instead.
    flows.borrow_mut().clear();
}

/// Relays the endpoint's answers of one flow to its client until the flow
/// idles out (or the service's socket is gone).
async fn answers(
    shard: Rc<Shard>,
    label: Box<str>,
    socket: Rc<UdpSocket>,
    client: SocketAddr,
    flow: Rc<FlowState>,
    flows: Rc<RefCell<FxHashMap<SocketAddr, Rc<FlowState>>>>,
) {
    let idle = shard.cfg.l4.udp_idle_timeout;
    let started = Instant::now();
    let mut buf = vec![0u8; MAX_DATAGRAM];
    let idled = loop {
        let quiet = flow.last.get().elapsed();
        if quiet >= idle {
            break true;
        }
        // The service's socket is gone (removed, or the shard drains).
        if !flows.borrow().contains_key(&client) {
            break false;
        }
        let got = rt::timeout(idle - quiet, flow.upstream.recv(&mut buf)).await;
        match got {
            None => continue,
            // The endpoint is not listening (ICMP port unreachable): keep
            // the flow; its next datagram may find it back.
            Some(Err(_)) => rt::sleep(Duration::from_millis(10)).await,
            Some(Ok(n)) => {
                flow.last.set(Instant::now());
                match socket.try_send_to(&buf[..n], client) {
                    Ok(sent) => shard.l4_stats.with(&label, |c| {
                        c.bytes_out += sent as u64;
                        c.copied += sent as u64;
                    }),
                    Err(_) => shard.l4_stats.with(&label, |c| c.dropped += 1),
                }
            }
        }
    };
    let mut table = flows.borrow_mut();
    if table.get(&client).is_some_and(|f| Rc::ptr_eq(f, &flow)) {
        table.remove(&client);
    }
    drop(table);
    shard.l4_stats.with(&label, |c| {
        c.active -= 1;
        if idled {
            c.idle_timeouts += 1;
        } else {
            c.closed_by_removal += 1;
        }
        c.duration_us += started.elapsed().as_micros() as u64;
    });
}
