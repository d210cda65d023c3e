//! Streaming a message body from one connection to another through the
//! source connection's read buffer: never buffered whole, and bytes past
//! the body's end stay in the buffer for the next message.

use super::buf::IoBuf;
use super::chunked::{ChunkError, ChunkedDecoder};
use super::BodyLen;
use futures_lite::{AsyncRead, AsyncWrite, AsyncWriteExt};
use std::io;

/// Why a body could not be relayed, by side.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    /// Reading the source failed (reset, timeout).
    #[error("reading the body failed: {0}")]
    Read(io::Error),
    /// The source closed before the body ended.
    #[error("connection closed before the body ended")]
    Eof,
    /// Writing to the destination failed.
    #[error("writing the body failed: {0}")]
    Write(io::Error),
    /// Chunked framing was invalid.
    #[error(transparent)]
    Framing(#[from] ChunkError),
    /// The body exceeded the configured limit.
    #[error("body larger than the limit")]
    TooLarge,
}

async fn refill<R: AsyncRead + Unpin>(src: &mut R, buf: &mut IoBuf) -> Result<(), BodyError> {
    if buf.is_empty() && buf.fill(src).await.map_err(BodyError::Read)? == 0 {
        return Err(BodyError::Eof);
    }
    Ok(())
}

/// Relays exactly `len` bytes; returns `len`.
pub async fn copy_length<R, W>(
    src: &mut R,
    buf: &mut IoBuf,
    dst: &mut W,
    len: u64,
) -> Result<u64, BodyError>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut left = len;
    while left > 0 {
        refill(src, buf).await?;
        let n = (buf.len() as u64).min(left) as usize;
        dst.write_all(&buf.data()[..n])
            .await
            .map_err(BodyError::Write)?;
        buf.consume(n);
        left -= n as u64;
    }
    Ok(len)
}

/// Relays a chunked body. With `decode` the destination gets only the data
/// bytes (for HTTP/1.0 clients); otherwise the framing passes unchanged.
/// Returns the number of bytes written to `dst`.
pub async fn copy_chunked<R, W>(
    src: &mut R,
    buf: &mut IoBuf,
    dst: &mut W,
    decode: bool,
    limit: Option<u64>,
) -> Result<u64, BodyError>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut decoder = ChunkedDecoder::default();
    let mut raw = 0u64;
    loop {
        refill(src, buf).await?;
        let data = buf.data();
        let mut used = 0;
        while used < data.len() && !decoder.is_done() {
            let p = decoder.decode(&data[used..])?;
            if decode && !p.data.is_empty() {
                let range = used + p.data.start..used + p.data.end;
                dst.write_all(&data[range])
                    .await
                    .map_err(BodyError::Write)?;
            }
            used += p.consumed;
        }
        if limit.is_some_and(|l| decoder.counted_total() > l) {
            return Err(BodyError::TooLarge);
        }
        if !decode {
            dst.write_all(&data[..used])
                .await
                .map_err(BodyError::Write)?;
        }
        buf.consume(used);
        raw += used as u64;
        if decoder.is_done() {
            return Ok(if decode { decoder.data_total() } else { raw });
        }
    }
}

/// Relays a body framed as `len`. `dechunk` sends a chunked body's data
/// only; `limit` bounds a chunked body's data bytes. Returns the bytes
/// written to `dst`.
pub async fn relay<R, W>(
    src: &mut R,
    buf: &mut IoBuf,
    dst: &mut W,
    len: BodyLen,
    dechunk: bool,
    limit: Option<u64>,
) -> Result<u64, BodyError>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    match len {
        BodyLen::None => Ok(0),
        BodyLen::Length(n) => copy_length(src, buf, dst, n).await,
        BodyLen::Chunked => copy_chunked(src, buf, dst, dechunk, limit).await,
        BodyLen::Close => copy_to_eof(src, buf, dst).await,
    }
}

/// Relays everything until the source closes. Returns the byte count.
pub async fn copy_to_eof<R, W>(src: &mut R, buf: &mut IoBuf, dst: &mut W) -> Result<u64, BodyError>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut total = 0u64;
    loop {
        if buf.is_empty() && buf.fill(src).await.map_err(BodyError::Read)? == 0 {
            return Ok(total);
        }
        dst.write_all(buf.data()).await.map_err(BodyError::Write)?;
        total += buf.len() as u64;
        buf.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_lite::future::block_on;

    #[test]
    fn length_body_leaves_the_next_message_in_the_buffer() {
        block_on(async {
            let mut src: &[u8] = b"helloGET / HTTP/1.1\r\n";
            let mut buf = IoBuf::new(1024, 1024);
            let mut out = Vec::new();
            copy_length(&mut src, &mut buf, &mut out, 5)
                .await
                .expect("copy");
            assert_eq!(out, b"hello");
            assert_eq!(buf.data(), b"GET / HTTP/1.1\r\n");
        });
    }

    #[test]
    fn chunked_passthrough_and_decode() {
        block_on(async {
            let wire: &[u8] = b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\nNEXT";
            for (decode, want) in [(false, &wire[..wire.len() - 4]), (true, &b"abcde"[..])] {
                let mut src = wire;
                let mut buf = IoBuf::new(4, 64); // tiny: forces many refills
                let mut out = Vec::new();
                let n = copy_chunked(&mut src, &mut buf, &mut out, decode, None)
                    .await
                    .expect("copy");
                assert_eq!(n as usize, want.len());
                assert_eq!(out, want);
                let mut rest = buf.data().to_vec();
                futures_lite::AsyncReadExt::read_to_end(&mut src, &mut rest)
                    .await
                    .expect("rest");
                assert_eq!(rest, b"NEXT");
            }
        });
    }

    #[test]
    fn errors_name_the_cause() {
        block_on(async {
            let mut buf = IoBuf::new(64, 64);
            let mut src: &[u8] = b"abc";
            let e = copy_length(&mut src, &mut buf, &mut Vec::new(), 10).await;
            assert!(matches!(e, Err(BodyError::Eof)));
            let mut buf = IoBuf::new(64, 64);
            let mut src: &[u8] = b"zz\r\n";
            let e = copy_chunked(&mut src, &mut buf, &mut Vec::new(), false, None).await;
            assert!(matches!(e, Err(BodyError::Framing(_))));
            let mut buf = IoBuf::new(64, 64);
            let mut src: &[u8] = b"a\r\n0123456789\r\n0\r\n\r\n";
            let e = copy_chunked(&mut src, &mut buf, &mut Vec::new(), false, Some(5)).await;
            assert!(matches!(e, Err(BodyError::TooLarge)));
        });
    }
}
