//! A look at the client's frames before `h2` reads them, for the
//! connection errors whose code `h2` gets wrong. `h2` closes the connection
//! on all of these, but with PROTOCOL_ERROR (or, for PUSH_PROMISE without
//! END_HEADERS, not at all); RFC 9113 names another code:
//!
//! | frame | RFC 9113 | code |
//! |---|---|---|
//! | PING not 8 octets | §6.7 | FRAME_SIZE_ERROR |
//! | PRIORITY not 5 octets | §6.3 | FRAME_SIZE_ERROR |
//! | RST_STREAM or WINDOW_UPDATE not 4 octets | §6.4, §6.9 | FRAME_SIZE_ERROR |
//! | SETTINGS not a multiple of 6, or an ACK with a payload | §6.5 | FRAME_SIZE_ERROR |
//! | SETTINGS_INITIAL_WINDOW_SIZE above 2^31-1 | §6.5.2 | FLOW_CONTROL_ERROR |
//! | PUSH_PROMISE from a client | §8.4 | PROTOCOL_ERROR |
//! | DATA or HEADERS on a stream the client ended (END_STREAM or RST_STREAM) | §5.1 | STREAM_CLOSED |
//!
//! The last is a stream error on a half-closed stream and a connection
//! error on a closed one; it is always treated as a connection error here
//! (§5.4.1 allows that), since only the connection's task can act.
//!
//! The offending frame never reaches `h2`: the read is cut where it starts
//! (`h2` acts on whole frames only), and the connection's task sends
//! GOAWAY with the code ([`Refused`]). The cost, per frame, is a look at
//! its 9-octet header (payloads are skipped, not read) and, for DATA and
//! HEADERS, a look through the last [`ENDED`] streams the client ended;
//! plus the entries of SETTINGS frames. Nothing is allocated after the
//! connection's start.

use futures_lite::future;
use h2::Reason;
use std::cell::Cell;
use std::io;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{ready, Context, Poll};
use tokio::io::ReadBuf;

/// Octets of the client connection preface (RFC 9113 §3.4), which `h2`
/// checks itself.
const PREFACE_LEN: u8 = 24;
/// Octets of a frame header.
const HEAD_LEN: usize = 9;
/// How many streams the client ended are remembered; a frame on one ended
/// earlier still gets `h2`'s own error.
const ENDED: usize = 32;

const DATA: u8 = 0x0;
const HEADERS: u8 = 0x1;
const PRIORITY: u8 = 0x2;
const RST_STREAM: u8 = 0x3;
const SETTINGS: u8 = 0x4;
const PUSH_PROMISE: u8 = 0x5;
const PING: u8 = 0x6;
const WINDOW_UPDATE: u8 = 0x8;
const CONTINUATION: u8 = 0x9;

const END_STREAM: u8 = 0x1;
const ACK: u8 = 0x1;
const END_HEADERS: u8 = 0x4;

const SETTINGS_INITIAL_WINDOW_SIZE: u16 = 0x4;
const MAX_WINDOW: u32 = (1 << 31) - 1;

/// The error a client's frame earned, shared between the reads (which
/// set it) and the connection's task (which closes with it).
pub(crate) type Refused = Rc<Cell<Option<Reason>>>;

/// Where the client's byte stream stands.
#[derive(Debug)]
pub(crate) struct FrameCheck {
    /// Preface octets still to pass.
    preface: u8,
    /// The frame header being collected.
    head: [u8; HEAD_LEN],
    head_len: usize,
    /// Payload octets of the current frame still to pass.
    payload: usize,
    /// The current frame is a SETTINGS frame whose entries are read.
    settings: bool,
    entry: [u8; 6],
    entry_len: usize,
    /// A header block is open (no END_HEADERS yet): only CONTINUATION may
    /// follow, which `h2` enforces.
    in_block: bool,
    /// The streams the client ended last (0: none).
    ended: [u32; ENDED],
    ended_next: usize,
    /// The error found, once found.
    refused: Option<Reason>,
}

impl Default for FrameCheck {
    fn default() -> Self {
        FrameCheck {
            preface: PREFACE_LEN,
            head: [0; HEAD_LEN],
            head_len: 0,
            payload: 0,
            settings: false,
            entry: [0; 6],
            entry_len: 0,
            in_block: false,
            ended: [0; ENDED],
            ended_next: 0,
            refused: None,
        }
    }
}

impl FrameCheck {
    /// Looks at `bytes`, the next octets from the client. On an error,
    /// returns how many of them `h2` may still read (those before the
    /// offending frame) and the code to close the connection with.
    pub(crate) fn scan(&mut self, bytes: &[u8]) -> Result<(), (usize, Reason)> {
        if let Some(reason) = self.refused {
            return Err((0, reason));
        }
        let mut at = 0;
        // Where the current frame starts in `bytes` (0 when before them).
        let mut frame_start = 0;
        let skip = usize::from(self.preface).min(bytes.len());
        self.preface -= skip as u8;
        at += skip;
        while at < bytes.len() {
            if self.payload > 0 {
                let n = self.payload.min(bytes.len() - at);
                if self.settings {
                    if let Err(reason) = self.settings_entries(&bytes[at..at + n]) {
                        return Err(self.refuse(frame_start, reason));
                    }
                }
                self.payload -= n;
                at += n;
                continue;
            }
            if self.head_len == 0 {
                frame_start = at;
            }
            let n = (HEAD_LEN - self.head_len).min(bytes.len() - at);
            self.head[self.head_len..self.head_len + n].copy_from_slice(&bytes[at..at + n]);
            self.head_len += n;
            at += n;
            if self.head_len < HEAD_LEN {
                break;
            }
            self.head_len = 0;
            if let Err(reason) = self.frame() {
                return Err(self.refuse(frame_start, reason));
            }
        }
        Ok(())
    }

    fn refuse(&mut self, frame_start: usize, reason: Reason) -> (usize, Reason) {
        self.refused = Some(reason);
        (frame_start, reason)
    }

    /// Checks a complete frame header and takes note of what it changes.
    fn frame(&mut self) -> Result<(), Reason> {
        let h = &self.head;
        let len = usize::from(h[0]) << 16 | usize::from(h[1]) << 8 | usize::from(h[2]);
        let (kind, flags) = (h[3], h[4]);
        let stream = u32::from_be_bytes([h[5], h[6], h[7], h[8]]) & MAX_WINDOW;
        self.payload = len;
        self.settings = false;
        let fixed = match kind {
            PING => Some(8),
            PRIORITY => Some(5),
            RST_STREAM | WINDOW_UPDATE => Some(4),
            _ => None,
        };
        if fixed.is_some_and(|f| f != len) {
            return Err(Reason::FRAME_SIZE_ERROR);
        }
        match kind {
            SETTINGS if flags & ACK != 0 && len != 0 => return Err(Reason::FRAME_SIZE_ERROR),
            SETTINGS if len % 6 != 0 => return Err(Reason::FRAME_SIZE_ERROR),
            SETTINGS => {
                self.settings = flags & ACK == 0;
                self.entry_len = 0;
            }
            PUSH_PROMISE => return Err(Reason::PROTOCOL_ERROR),
            DATA | HEADERS if stream != 0 && !self.in_block => {
                if self.ended.contains(&stream) {
                    return Err(Reason::STREAM_CLOSED);
                }
                if flags & END_STREAM != 0 {
                    self.end(stream);
                }
            }
            RST_STREAM if stream != 0 => self.end(stream),
            _ => {}
        }
        match kind {
            HEADERS | CONTINUATION => self.in_block = flags & END_HEADERS == 0,
            _ => {}
        }
        Ok(())
    }

    /// Remembers that the client ended `stream`.
    fn end(&mut self, stream: u32) {
        if !self.ended.contains(&stream) {
            self.ended[self.ended_next] = stream;
            self.ended_next = (self.ended_next + 1) % ENDED;
        }
    }

    /// Reads SETTINGS entries (6 octets: identifier, value) from `bytes`.
    fn settings_entries(&mut self, mut bytes: &[u8]) -> Result<(), Reason> {
        while !bytes.is_empty() {
            let n = (6 - self.entry_len).min(bytes.len());
            self.entry[self.entry_len..self.entry_len + n].copy_from_slice(&bytes[..n]);
            self.entry_len += n;
            bytes = &bytes[n..];
            if self.entry_len < 6 {
                break;
            }
            self.entry_len = 0;
            let e = &self.entry;
            let id = u16::from_be_bytes([e[0], e[1]]);
            let value = u32::from_be_bytes([e[2], e[3], e[4], e[5]]);
            if id == SETTINGS_INITIAL_WINDOW_SIZE && value > MAX_WINDOW {
                return Err(Reason::FLOW_CONTROL_ERROR);
            }
        }
        Ok(())
    }
}

/// A client connection as `h2` reads it, through a [`FrameCheck`]: a frame
/// that fails it is held back and its error set in [`Refused`].
#[derive(Debug)]
pub(crate) struct Checked<S> {
    io: S,
    check: FrameCheck,
    refused: Refused,
}

impl<S> Checked<S> {
    pub(crate) fn new(io: S, refused: Refused) -> Checked<S> {
        Checked {
            io,
            check: FrameCheck::default(),
            refused,
        }
    }
}

impl<S: tokio::io::AsyncRead + Unpin> tokio::io::AsyncRead for Checked<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.refused.get().is_some() {
            // The connection's task closes the connection.
            return Poll::Pending;
        }
        let before = buf.filled().len();
        ready!(Pin::new(&mut this.io).poll_read(cx, buf))?;
        match this.check.scan(&buf.filled()[before..]) {
            Ok(()) => Poll::Ready(Ok(())),
            Err((keep, reason)) => {
                this.refused.set(Some(reason));
                buf.set_filled(before + keep);
                if keep > 0 {
                    return Poll::Ready(Ok(()));
                }
                // Nothing to read (a Ready would be the end of the stream):
                // the task that polls this is the connection's, woken to act.
                cx.waker().wake_by_ref();
                Poll::Pending
            }
        }
    }
}

impl<S: tokio::io::AsyncWrite + Unpin> tokio::io::AsyncWrite for Checked<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}

/// An accepted stream of a server connection.
type Accepted<B> = (http::Request<h2::RecvStream>, h2::server::SendResponse<B>);

/// `conn.accept()`, except that once a frame was refused the connection
/// is closed with GOAWAY and the refusal's code (sent within
/// `flush_within`), and the refusal comes back as an error. A stream
/// whose HEADERS came in the same read as the refused frame is not served.
pub(crate) async fn accept<T, B>(
    conn: &mut h2::server::Connection<T, B>,
    refused: &Cell<Option<Reason>>,
    flush_within: std::time::Duration,
) -> Option<Result<Accepted<B>, h2::Error>>
where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    B: bytes::Buf,
{
    let next = future::poll_fn(|cx| {
        let next = conn.poll_accept(cx);
        match refused.get() {
            Some(_) => Poll::Ready(None),
            None => next.map(Some),
        }
    })
    .await;
    match (next, refused.get()) {
        (Some(next), None) => next,
        (_, reason) => {
            let reason = reason.unwrap_or(Reason::PROTOCOL_ERROR);
            conn.abrupt_shutdown(reason);
            let closed = future::poll_fn(|cx| conn.poll_closed(cx));
            let _ = crate::rt::timeout(flush_within, closed).await;
            Some(Err(reason.into()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

    fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
        let len = payload.len() as u32;
        let mut f = len.to_be_bytes()[1..].to_vec();
        f.extend_from_slice(&[kind, flags]);
        f.extend_from_slice(&stream.to_be_bytes());
        f.extend_from_slice(payload);
        f
    }

    /// Scans `bytes` whole, then split at every offset into two reads.
    fn verdict(bytes: &[u8]) -> Result<(), (usize, Reason)> {
        let whole = FrameCheck::default().scan(bytes);
        for split in 0..=bytes.len() {
            let mut check = FrameCheck::default();
            let first = check.scan(&bytes[..split]);
            let second = first.and_then(|()| check.scan(&bytes[split..]));
            let reason = |r: Result<(), (usize, Reason)>| r.err().map(|(_, reason)| reason);
            assert_eq!(reason(second), reason(whole), "split at {split}");
        }
        whole
    }

    fn conn(frames: &[Vec<u8>]) -> Vec<u8> {
        let mut bytes = PREFACE.to_vec();
        bytes.extend(frame(SETTINGS, 0, 0, &[0, 4, 0, 0, 0xff, 0xff]));
        for f in frames {
            bytes.extend_from_slice(f);
        }
        bytes
    }

    #[test]
    fn well_formed_connections_pass() {
        let headers = frame(HEADERS, END_HEADERS, 1, b"hpack");
        let body = frame(DATA, 0, 1, &[7; 20_000]);
        let trailers = frame(HEADERS, END_HEADERS | END_STREAM, 1, b"t");
        let split_block = [
            frame(HEADERS, END_STREAM, 3, b"a"),
            frame(CONTINUATION, 0, 3, b"b"),
            frame(CONTINUATION, END_HEADERS, 3, b"c"),
        ];
        let mut frames = vec![headers, body, trailers];
        frames.extend(split_block);
        frames.extend([
            frame(PING, 0, 0, &[1; 8]),
            frame(SETTINGS, ACK, 0, &[]),
            frame(WINDOW_UPDATE, 0, 3, &[0, 0, 1, 0]),
            frame(PRIORITY, 0, 3, &[0, 0, 0, 0, 9]),
            frame(RST_STREAM, 0, 5, &[0, 0, 0, 8]),
            frame(HEADERS, END_HEADERS, 7, b"h"),
        ]);
        assert_eq!(verdict(&conn(&frames)), Ok(()));
    }

    #[test]
    fn bad_frames_are_refused_with_their_code() {
        let headers_ended = frame(HEADERS, END_HEADERS | END_STREAM, 1, b"h");
        let cases = [
            (vec![frame(PING, 0, 0, &[1; 7])], Reason::FRAME_SIZE_ERROR),
            (
                vec![frame(PRIORITY, 0, 1, &[0; 4])],
                Reason::FRAME_SIZE_ERROR,
            ),
            (
                vec![frame(RST_STREAM, 0, 1, &[0; 3])],
                Reason::FRAME_SIZE_ERROR,
            ),
            (
                vec![frame(WINDOW_UPDATE, 0, 0, &[0; 5])],
                Reason::FRAME_SIZE_ERROR,
            ),
            (
                vec![frame(SETTINGS, 0, 0, &[0; 5])],
                Reason::FRAME_SIZE_ERROR,
            ),
            (
                vec![frame(SETTINGS, ACK, 0, &[0; 6])],
                Reason::FRAME_SIZE_ERROR,
            ),
            (
                vec![frame(
                    SETTINGS,
                    0,
                    0,
                    &[0, 1, 0, 0, 0, 0, 0, 4, 0x80, 0, 0, 0],
                )],
                Reason::FLOW_CONTROL_ERROR,
            ),
            (
                vec![frame(PUSH_PROMISE, 0, 1, &[0, 0, 0, 2])],
                Reason::PROTOCOL_ERROR,
            ),
            (
                vec![headers_ended.clone(), frame(DATA, END_STREAM, 1, b"x")],
                Reason::STREAM_CLOSED,
            ),
            (
                vec![headers_ended.clone(), headers_ended.clone()],
                Reason::STREAM_CLOSED,
            ),
            (
                vec![
                    frame(HEADERS, END_HEADERS, 1, b"h"),
                    frame(RST_STREAM, 0, 1, &[0, 0, 0, 8]),
                    frame(HEADERS, END_HEADERS, 1, b"h"),
                ],
                Reason::STREAM_CLOSED,
            ),
        ];
        for (i, (frames, reason)) in cases.iter().enumerate() {
            let bytes = conn(frames);
            let (keep, got) = verdict(&bytes).expect_err(&format!("case {i} passed"));
            assert_eq!(got, *reason, "case {i}");
            // What `h2` may read ends where the offending frame starts.
            let last = frames.last().expect("a frame");
            assert_eq!(keep, bytes.len() - last.len(), "case {i}");
        }
    }

    #[test]
    fn a_refusal_sticks() {
        let mut check = FrameCheck::default();
        let bad = conn(&[frame(PING, 0, 0, &[0; 2])]);
        assert!(check.scan(&bad).is_err());
        assert_eq!(
            check.scan(&frame(PING, 0, 0, &[0; 8])),
            Err((0, Reason::FRAME_SIZE_ERROR))
        );
    }
}
