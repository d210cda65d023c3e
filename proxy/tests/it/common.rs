//! Set-up shared by the proxy's integration tests: the real `rauta` binary
//! on manifests written to a temporary directory, in front of real
//! backends (everything general lives in `rauta-testkit`).

use rauta_testkit::{backend_for, Backend, Launch, ManifestDir, Rauta};
use std::io::{Read, Write};

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_rauta");

/// Starts rauta on `dir` with extra flags.
pub fn start(dir: &ManifestDir, extra: &[&str]) -> Rauta {
    Rauta::start(BIN, dir.path(), extra)
}

/// Starts rauta on `dir` with extra flags and a launch environment.
pub fn start_with(dir: &ManifestDir, extra: &[&str], launch: &Launch) -> Rauta {
    Rauta::start_with(BIN, dir.path(), extra, launch)
}

/// A named backend and the Service + EndpointSlices for it in `ns`
/// (Service port 80 named `http`).
pub fn service(ns: &str, name: &str) -> (Backend, String) {
    let b = Backend::start(name);
    let yaml = backend_for(ns, name, "http", &[&b]);
    (b, yaml)
}

/// Sends `texts` text messages and one binary message of `big` bytes over
/// a WebSocket whose far end echoes, checks every echo, then closes.
pub fn websocket_echoes<S: Read + Write>(
    ws: &mut tungstenite::WebSocket<S>,
    texts: usize,
    big: usize,
) {
    for i in 0..texts {
        ws.send(tungstenite::Message::text(format!("hello {i}")))
            .expect("send");
        let echo = ws.read().expect("echo");
        assert_eq!(
            echo.into_text().expect("text").as_str(),
            format!("hello {i}")
        );
    }
    let big = vec![7u8; big];
    ws.send(tungstenite::Message::binary(big.clone()))
        .expect("send binary");
    assert_eq!(ws.read().expect("echo").into_data().as_ref(), &big[..]);
    ws.close(None).expect("close");
}
