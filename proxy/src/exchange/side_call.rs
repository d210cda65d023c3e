//! What the exchange's side calls share: the auth subrequest ([`super::auth`])
//! and mirrored copies ([`super::mirror`]) both go to a [`Target`], read
//! past interim answers to the final response head, and ask a pooled
//! connection again once on a new one when it turns out stale.

use crate::balance::Backend;
use crate::http::buf::IoBuf;
use crate::http::response;
use crate::http::MAX_HEADERS;
use crate::policy::auth::Target;
use crate::shard::{LocalTable, Shard};
use crate::upstream::UpStream;
use std::io;

/// The backend a target names and the endpoint picked from it (`None`:
/// the backend has none).
pub(super) fn endpoint<'t>(
    shard: &Shard,
    table: &'t LocalTable,
    target: &'t Target,
) -> (&'t Backend, Option<usize>) {
    match target {
        Target::Backend(i) => {
            let backend = table.routes.backend(*i);
            (backend, backend.pick(&table.states[*i], None, &shard.rng))
        }
        Target::Addr(backend) => (backend, Some(0)),
    }
}

/// Reads from `stream` into `buf` until a final (non-1xx) response head
/// starts `buf`; interim answers are consumed. `what` names the answer in
/// errors (`auth`, `mirror`).
pub(super) async fn final_head(
    stream: &mut UpStream,
    buf: &mut IoBuf,
    head_request: bool,
    what: &str,
) -> io::Result<()> {
    loop {
        {
            let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
            match response::parse(buf.data(), &mut headers, head_request) {
                Ok(Some(resp)) if (100..200).contains(&resp.status) => {
                    let len = resp.len;
                    buf.consume(len);
                    continue;
                }
                Ok(Some(_)) => return Ok(()),
                Ok(None) => {}
                Err(_) => {
                    return Err(io::Error::other(format!(
                        "the {what} answer is not valid HTTP"
                    )))
                }
            }
        }
        if buf.is_full() {
            return Err(io::Error::other(format!(
                "the {what} answer's head is too large"
            )));
        }
        if buf.fill(stream).await? == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
    }
}

/// A failure that a pooled connection closed by the peer explains: the
/// call is made again, once, on a new connection.
pub(super) fn is_stale(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionReset | io::ErrorKind::BrokenPipe | io::ErrorKind::UnexpectedEof
    )
}
