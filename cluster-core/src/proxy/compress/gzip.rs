//! gzip (RFC 1952) over a deflate state that is reused from one response to the next.
//!
//! A deflate compressor holds about 300 KiB of tables and window. Allocated per response,
//! that memory is zeroed and, above glibc's mmap threshold, page-faulted in and unmapped
//! again every time: on small responses that cost more than the compression itself. So each
//! proxy thread keeps a few reset compressors ([`MAX_POOLED`]) and a response takes one, and
//! gives it back when its stream ends or is dropped.

use std::cell::RefCell;
use std::io;

use flate2::{Compress, Compression, Crc, FlushCompress, Status};

/// Reset compressors kept per thread: enough for the compressed responses a proxy thread
/// has in flight at once in the common case, few enough to bound the memory held idle
/// (about 300 KiB each).
const MAX_POOLED: usize = 8;
/// Output room reserved at least before each call into the compressor.
const MIN_OUT: usize = 8 * 1024;

thread_local! {
    /// Idle compressors of this thread, with the level each was made for.
    static POOL: RefCell<Vec<(u32, Compress)>> = const { RefCell::new(Vec::new()) };
}

/// One gzip stream: header, deflate data, then the CRC-32 and length trailer.
#[derive(Debug)]
pub(crate) struct GzipStream {
    /// `None` only after [`Drop`] has given it back.
    deflate: Option<Compress>,
    level: u32,
    crc: Crc,
    out: Vec<u8>,
}

impl GzipStream {
    /// A stream at zlib level `level` (1-9); its header is the first output.
    pub(crate) fn new(level: u32) -> Self {
        let deflate = POOL
            .with(|pool| {
                let mut pool = pool.borrow_mut();
                let i = pool.iter().rposition(|(l, _)| *l == level)?;
                Some(pool.swap_remove(i).1)
            })
            .unwrap_or_else(|| Compress::new(Compression::new(level), false));
        let mut out = Vec::with_capacity(MIN_OUT);
        out.extend_from_slice(&header(level));
        GzipStream { deflate: Some(deflate), level, crc: Crc::new(), out }
    }

    /// Compresses `data` (output may stay in the compressor until more input or a flush).
    pub(crate) fn write(&mut self, data: &[u8]) -> io::Result<()> {
        self.crc.update(data);
        self.run(data, FlushCompress::None)
    }

    /// A sync flush: everything written so far can be decoded from the output.
    pub(crate) fn flush(&mut self) -> io::Result<()> {
        self.run(&[], FlushCompress::Sync)
    }

    /// Ends the deflate stream and appends the trailer.
    pub(crate) fn finish(&mut self) -> io::Result<()> {
        self.run(&[], FlushCompress::Finish)?;
        self.out.extend_from_slice(&self.crc.sum().to_le_bytes());
        self.out.extend_from_slice(&self.crc.amount().to_le_bytes());
        Ok(())
    }

    /// The output buffer, taken by the caller.
    pub(crate) fn output(&mut self) -> &mut Vec<u8> {
        &mut self.out
    }

    fn run(&mut self, mut input: &[u8], flush: FlushCompress) -> io::Result<()> {
        let deflate = self.deflate.as_mut().ok_or_else(|| io::Error::other("gzip stream ended"))?;
        loop {
            if self.out.capacity() - self.out.len() < MIN_OUT {
                self.out.reserve(input.len().max(MIN_OUT));
            }
            let (read, wrote) = (deflate.total_in(), deflate.total_out());
            let status =
                deflate.compress_vec(input, &mut self.out, flush).map_err(io::Error::other)?;
            let consumed = usize::try_from(deflate.total_in() - read).unwrap_or(usize::MAX);
            input = input.get(consumed..).unwrap_or_default();
            let room_left = self.out.len() < self.out.capacity();
            let done = match flush {
                FlushCompress::Finish => status == Status::StreamEnd,
                // A flush is complete when the compressor stopped with output room to spare.
                FlushCompress::Sync => room_left,
                _ => input.is_empty(),
            };
            if done {
                return Ok(());
            }
            if consumed == 0 && deflate.total_out() == wrote && room_left {
                return Err(io::Error::other("deflate made no progress"));
            }
        }
    }
}

impl Drop for GzipStream {
    fn drop(&mut self) {
        let Some(mut deflate) = self.deflate.take() else { return };
        let level = self.level;
        // `try_with`: a stream dropped while its thread's locals are being destroyed just
        // frees its compressor.
        let _ = POOL.try_with(|pool| {
            let mut pool = pool.borrow_mut();
            if pool.len() < MAX_POOLED {
                deflate.reset();
                pool.push((level, deflate));
            }
        });
    }
}

/// The fixed gzip header: deflate, no name or time, the level hint, OS unknown (as
/// `async-compression` writes it).
fn header(level: u32) -> [u8; 10] {
    let xfl = match level {
        9.. => 0x02,
        ..=1 => 0x04,
        _ => 0x00,
    };
    [0x1f, 0x8b, 0x08, 0, 0, 0, 0, 0, xfl, 0xff]
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;

    fn gunzip(data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(data).read_to_end(&mut out).unwrap();
        out
    }

    #[test]
    fn a_reused_compressor_starts_a_fresh_stream() {
        let text = "{\"id\":1,\"name\":\"a row of JSON\"},".repeat(300);
        let mut first = GzipStream::new(6);
        first.write(text.as_bytes()).unwrap();
        // Dropped mid-stream, as when a client goes away: the compressor goes back reset.
        drop(first);
        assert_eq!(POOL.with(|p| p.borrow().len()), 1);
        for _ in 0..3 {
            let mut s = GzipStream::new(6);
            assert_eq!(POOL.with(|p| p.borrow().len()), 0, "taken from the pool");
            s.write(text.as_bytes()).unwrap();
            s.finish().unwrap();
            let out = std::mem::take(s.output());
            assert_eq!(gunzip(&out), text.as_bytes());
            drop(s);
        }
    }

    #[test]
    fn the_pool_is_bounded_and_keyed_by_level() {
        let streams: Vec<_> = (0..MAX_POOLED + 3).map(|_| GzipStream::new(1)).collect();
        drop(streams);
        assert_eq!(POOL.with(|p| p.borrow().len()), MAX_POOLED);
        let mut s = GzipStream::new(9);
        assert_eq!(POOL.with(|p| p.borrow().len()), MAX_POOLED, "no level-9 compressor kept");
        s.write(b"level nine").unwrap();
        s.finish().unwrap();
        assert_eq!(gunzip(s.output()), b"level nine");
    }

    #[test]
    fn a_large_write_grows_the_output() {
        let text: String = (0..100_000).map(|i| format!("{i},")).collect();
        let mut s = GzipStream::new(1);
        s.write(text.as_bytes()).unwrap();
        s.flush().unwrap();
        s.finish().unwrap();
        assert_eq!(gunzip(s.output()), text.as_bytes());
    }
}
