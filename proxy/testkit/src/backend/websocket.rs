//! The WebSocket echo loop of an upgraded connection.

use std::net::Shutdown;
use std::sync::atomic::Ordering;
use std::time::Instant;

use tungstenite::protocol::{Role, WebSocket};
use tungstenite::Message;

use super::request::Request;
use super::{Shared, IDLE};
use crate::wire::{is_timeout, Wire};

/// Runs the WebSocket echo loop on an upgraded connection.
pub(super) fn serve_websocket(wire: Wire, shared: &Shared, _req: &Request) {
    let mut wire = wire;
    let buf = wire.take_pending();
    let stream = wire.stream;
    let mut ws = WebSocket::from_partially_read(stream, buf, Role::Server, None);
    let mut last_activity = Instant::now();
    loop {
        match ws.read() {
            Ok(msg @ (Message::Text(_) | Message::Binary(_))) => {
                last_activity = Instant::now();
                if ws.send(msg).is_err() {
                    return;
                }
            }
            Ok(_) => last_activity = Instant::now(),
            Err(tungstenite::Error::Io(e)) if is_timeout(&e) => {
                if shared.stop.load(Ordering::SeqCst) || last_activity.elapsed() >= IDLE {
                    let _ = ws.get_mut().shutdown(Shutdown::Both);
                    return;
                }
            }
            Err(_) => return,
        }
    }
}
