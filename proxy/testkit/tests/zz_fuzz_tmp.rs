use std::time::Duration;
use rauta_testkit::{raw_exchange, status_of, Backend};
#[test]
fn fuzzish() {
    let b = Backend::start("f");
    let cases: Vec<Vec<u8>> = vec![
        b"GET / HTTP/1.1\r\nHost: \xff\xfe\r\n\r\n".to_vec(),
        b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffff\r\nab".to_vec(),
        b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\nhello\r\n0\r\n\r\n".to_vec(),
        b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloXX0\r\n\r\n".to_vec(),
        b"POST / HTTP/1.1\r\nContent-Length: 99999999999999999999999\r\n\r\n".to_vec(),
        b"POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\nabc".to_vec(),
        b"POST / HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n".to_vec(),
        b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n".to_vec(),
        b"HEAD /chunked?n=100 HTTP/1.1\r\n\r\nHEAD /close-delimited?n=5 HTTP/1.1\r\n\r\n".to_vec(),
        b"GET /chunked?n=100&size=0 HTTP/1.1\r\n\r\n".to_vec(),
        b"GET /chunked?n=100 HTTP/1.0\r\n\r\n".to_vec(),
        b"GET /slow?ms=-1 HTTP/1.1\r\n\r\n".to_vec(),
        b"GET /status/abc HTTP/1.1\r\n\r\n".to_vec(),
        b"GET /status/204 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n".to_vec(),
        b"GET /ws HTTP/1.1\r\nUpgrade: websocket\r\n\r\n".to_vec(),
        b"GET /ws HTTP/1.1\r\nUpgrade: websocket\r\nSec-WebSocket-Key: x\r\n\r\n\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff".to_vec(),
        [b"GET / HTTP/1.1\r\n".to_vec(), b"X: y\r\n".repeat(200), b"\r\n".to_vec()].concat(),
        [b"GET / HTTP/1.1\r\nX: ".to_vec(), vec![b'a'; 70000], b"\r\n\r\n".to_vec()].concat(),
        b"\r\n\r\nGET / HTTP/1.1\r\n\r\n".to_vec(),
        b"GET http://x.y/status/202?a HTTP/1.1\r\n\r\n".to_vec(),
        b"POST /echo-body HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n".to_vec(),
    ];
    for c in cases {
        let out = raw_exchange(b.addr(), &c, Duration::from_millis(300)).unwrap();
        let t = String::from_utf8_lossy(&out);
        eprintln!("=== {:?}\n  -> {:?} {}", String::from_utf8_lossy(&c[..c.len().min(80)]), status_of(&out), t.lines().take(12).collect::<Vec<_>>().join(" | ").chars().take(300).collect::<String>());
    }
}
