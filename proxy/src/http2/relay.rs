//! A message body from one HTTP/2 stream to another, frame by frame: DATA
//! moves without a copy, and a stream's window reopens only once the other
//! side's window took the bytes (the back-pressure); trailers pass whole.
//! Used where both sides of a gRPC call speak HTTP/2.

use super::poll_capacity;
use bytes::Bytes;
use futures_lite::future::poll_fn;
use h2::{RecvStream, SendStream};
use std::time::Duration;

/// How a relay ended early.
#[derive(Debug)]
pub(crate) enum Cut {
    /// The source's next frame took longer than the timeout.
    Timeout,
    /// The source failed (a reset, a closed connection).
    Source(h2::Error),
    /// The destination failed (a reset, a closed connection).
    Destination,
    /// More than the limit.
    TooLarge,
}

/// Relays `from` to `to` until `from` ends (its trailers, if any, end
/// `to`); `idle` bounds each wait for a frame of `from`, `limit` the
/// bytes. Returns the bytes relayed, or how it was cut (`to` is then left
/// to the caller, to end or reset).
pub(crate) async fn relay(
    from: &mut RecvStream,
    to: &mut SendStream<Bytes>,
    idle: Option<Duration>,
    limit: Option<u64>,
) -> Result<u64, Cut> {
    let mut total = 0u64;
    loop {
        let next = poll_fn(|cx| from.poll_data(cx));
        let next = match idle {
            Some(d) => crate::rt::timeout(d, next).await.ok_or(Cut::Timeout)?,
            None => next.await,
        };
        match next {
            Some(Ok(mut data)) => {
                let n = data.len();
                total += n as u64;
                if limit.is_some_and(|l| total > l) {
                    return Err(Cut::TooLarge);
                }
                while !data.is_empty() {
                    let want = data.len();
                    let cap = poll_fn(|cx| poll_capacity(to, cx, want))
                        .await
                        .map_err(|_| Cut::Destination)?;
                    let chunk = data.split_to(cap.min(data.len()));
                    to.send_data(chunk, false).map_err(|_| Cut::Destination)?;
                }
                let _ = from.flow_control().release_capacity(n);
            }
            Some(Err(e)) => return Err(Cut::Source(e)),
            None => {
                let trailers = poll_fn(|cx| from.poll_trailers(cx)).await;
                let sent = match trailers {
                    Ok(Some(trailers)) => to.send_trailers(trailers),
                    Ok(None) => to.send_data(Bytes::new(), true),
                    Err(e) => return Err(Cut::Source(e)),
                };
                sent.map_err(|_| Cut::Destination)?;
                return Ok(total);
            }
        }
    }
}
