//! A per-connection read buffer: filled from a socket, consumed from the
//! front, compacted and grown (up to a limit) only when it runs out of room.

use futures_lite::{AsyncRead, AsyncReadExt};
use std::io;

/// Copies bytes staged in `staged` from `*read` on into `dst`, and empties
/// it once all were read; `None` when nothing is staged. For the byte
/// views that turn frames into HTTP/1.1 bytes (an HTTP/2 stream, a call).
pub fn read_staged(staged: &mut Vec<u8>, read: &mut usize, dst: &mut [u8]) -> Option<usize> {
    let rest = staged.get(*read..).filter(|r| !r.is_empty())?;
    let n = rest.len().min(dst.len());
    dst[..n].copy_from_slice(&rest[..n]);
    *read += n;
    if *read == staged.len() {
        staged.clear();
        *read = 0;
    }
    Some(n)
}

/// Growable read buffer with a hard size limit.
#[derive(Debug)]
pub struct IoBuf {
    buf: Vec<u8>,
    start: usize,
    end: usize,
    max: usize,
}

impl IoBuf {
    /// A buffer of `initial` bytes that may grow to `max`.
    pub fn new(initial: usize, max: usize) -> IoBuf {
        IoBuf {
            buf: vec![0; initial.min(max)],
            start: 0,
            end: 0,
            max,
        }
    }

    /// The bytes read and not yet consumed.
    #[inline]
    pub fn data(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }

    /// Number of unconsumed bytes.
    #[inline]
    pub fn len(&self) -> usize {
        self.end - self.start
    }

    /// True when nothing is buffered.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.start == self.end
    }

    /// Drops `n` bytes from the front.
    #[inline]
    pub fn consume(&mut self, n: usize) {
        self.start += n.min(self.len());
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
    }

    /// Forgets everything buffered.
    pub fn clear(&mut self) {
        self.start = 0;
        self.end = 0;
    }

    /// True when the unconsumed bytes fill the buffer at its size limit.
    pub fn is_full(&self) -> bool {
        self.len() >= self.max
    }

    /// Reads once from `src` into free space, making room first. Returns
    /// the number of bytes read; 0 means end of stream. Must not be called
    /// when [`IoBuf::is_full`].
    pub async fn fill<R: AsyncRead + Unpin>(&mut self, src: &mut R) -> io::Result<usize> {
        self.make_room();
        if self.end == self.buf.len() {
            return Err(io::Error::other("read buffer full"));
        }
        let n = src.read(&mut self.buf[self.end..]).await?;
        self.end += n;
        Ok(n)
    }

    fn make_room(&mut self) {
        if self.end < self.buf.len() {
            return;
        }
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        } else if self.buf.len() < self.max {
            // Not `clamp`: it panics when `max` is below the floor.
            let len = (self.buf.len() * 2).max(1024).min(self.max);
            self.buf.resize(len, 0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_compacts_and_stops_at_max() {
        futures_lite::future::block_on(async {
            let mut src: &[u8] = &[7u8; 5000];
            let mut b = IoBuf::new(1024, 4096);
            while !b.is_full() {
                assert!(b.fill(&mut src).await.expect("read") > 0);
            }
            assert_eq!(b.len(), 4096);
            b.consume(4000);
            assert_eq!(b.fill(&mut src).await.expect("read"), 904);
            assert_eq!(b.len(), 1000);
            assert_eq!(b.fill(&mut src).await.expect("eof"), 0);
        });
    }
}
