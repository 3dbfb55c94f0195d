//! One response's compressor, writing into memory.
//!
//! gzip is our own framing over a reused deflate state ([`GzipStream`]); brotli and zstd
//! are `async_compression::tokio::write` types over a `Vec<u8>`. Writing to a `Vec` never
//! waits, so each call completes at once and is driven with a no-op waker; the
//! body that owns the encoder hands out whatever compressed bytes have accumulated.

use std::future::Future;
use std::io;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use async_compression::Level;
use async_compression::brotli::EncoderParams;
use async_compression::tokio::write::{BrotliEncoder, ZstdEncoder};
use async_compression::zstd::CParameter;
use bytes::Bytes;
use tokio::io::AsyncWriteExt;

use super::ContentCoding;
use super::gzip::GzipStream;

// One encoder lives per compressed response in flight, so its memory is bounded here
// (measured per stream with `tests::memory_per_stream`; see docs/compression.md).

/// Brotli's window: 2^18 = 256 KiB (the default, 2^22, is a 4 MiB ring buffer; a web
/// response rarely repeats anything further back). A smaller window is worse: below 2^17
/// brotli switches to a hasher with larger tables.
pub(super) const BROTLI_WINDOW_LOG: i32 = 18;
/// The highest brotli quality used: from quality 5 on, brotli's hash tables grow to 2 MiB
/// (quality 6: 3 MiB, 9: 22 MiB) per stream; quality 4 holds about 1.4 MiB.
const BROTLI_MAX_QUALITY: i32 = 4;
/// Zstandard's window: 2^18 = 256 KiB, for the same reason (zstd's levels 3-9 use 2^21).
pub(super) const ZSTD_WINDOW_LOG: u32 = 18;
/// Zstandard's match-finder tables from level 3 on: 2^16 entries each (levels 3-9 default
/// to 2^17-2^22, 1-10 MiB per stream); with them every level holds under 0.7 MiB.
const ZSTD_TABLE_LOG: u32 = 16;

/// The codec's own level for `compressionLevel` 1-9.
///
/// - gzip: the same number (zlib's 1-9, about 256 KiB per stream at 6-9).
/// - brotli: `level - 1` within 1..=4 (1→1, 2→1, 3→2, 4→3, 5-9→4): brotli's quality 4
///   already compresses web text better than gzip 9, and higher qualities cost megabytes
///   of memory per stream and far more CPU (10 and 11 are for precompressing files).
/// - zstd: the same number (zstd's 1-22), with the window and tables bounded.
pub(super) fn codec_level(coding: ContentCoding, level: u32) -> i32 {
    let level = i32::try_from(level.clamp(1, 9)).unwrap_or(6);
    match coding {
        ContentCoding::Gzip | ContentCoding::Zstd => level,
        ContentCoding::Brotli => (level - 1).clamp(1, BROTLI_MAX_QUALITY),
    }
}

/// A streaming compressor for one response body.
///
/// Not `Clone` or `Sync`: it is the state of one compressed stream.
#[derive(Debug)]
pub(crate) enum Encoder {
    /// gzip, over a deflate state reused between responses ([`GzipStream`]).
    Gzip(GzipStream),
    /// Brotli (boxed: its state is kilobytes inline, the others' a few hundred bytes).
    Brotli(Box<BrotliEncoder<Vec<u8>>>),
    /// Zstandard.
    Zstd(ZstdEncoder<Vec<u8>>),
}

impl Encoder {
    /// A compressor for `coding` at `compressionLevel` `level` (1-9).
    pub(crate) fn new(coding: ContentCoding, level: u32) -> Self {
        let level = codec_level(coding, level);
        match coding {
            ContentCoding::Gzip => Encoder::Gzip(GzipStream::new(level.unsigned_abs())),
            ContentCoding::Brotli => {
                let params = EncoderParams::default()
                    .quality(Level::Precise(level))
                    .window_size(BROTLI_WINDOW_LOG);
                Encoder::Brotli(Box::new(BrotliEncoder::with_params(Vec::new(), params)))
            }
            ContentCoding::Zstd => {
                let window = CParameter::window_log(ZSTD_WINDOW_LOG);
                let tables =
                    [CParameter::hash_log(ZSTD_TABLE_LOG), CParameter::chain_log(ZSTD_TABLE_LOG)];
                // Levels 1-2 have smaller tables of their own: keep them.
                let params: &[CParameter] =
                    if level >= 3 { &[window, tables[0], tables[1]] } else { &[window] };
                Encoder::Zstd(ZstdEncoder::with_quality_and_params(
                    Vec::new(),
                    Level::Precise(level),
                    params,
                ))
            }
        }
    }

    /// Compresses `data`; its output may stay in the codec until more input, a flush or
    /// the end.
    pub(crate) fn write(&mut self, data: &[u8]) -> io::Result<()> {
        match self {
            Encoder::Gzip(e) => e.write(data),
            Encoder::Brotli(e) => now(e.write_all(data)),
            Encoder::Zstd(e) => now(e.write_all(data)),
        }
    }

    /// Pushes out everything written so far, so that the client can decode it all now (a
    /// sync flush: the stream goes on).
    pub(crate) fn flush(&mut self) -> io::Result<()> {
        match self {
            Encoder::Gzip(e) => e.flush(),
            Encoder::Brotli(e) => now(e.flush()),
            Encoder::Zstd(e) => now(e.flush()),
        }
    }

    /// Ends the stream (the codec's trailer); nothing may be written after.
    pub(crate) fn finish(&mut self) -> io::Result<()> {
        match self {
            Encoder::Gzip(e) => e.finish(),
            Encoder::Brotli(e) => now(e.shutdown()),
            Encoder::Zstd(e) => now(e.shutdown()),
        }
    }

    /// The compressed bytes produced since the last call (often none).
    pub(crate) fn take(&mut self) -> Bytes {
        let out = match self {
            Encoder::Gzip(e) => e.output(),
            Encoder::Brotli(e) => e.get_mut(),
            Encoder::Zstd(e) => e.get_mut(),
        };
        if out.is_empty() { Bytes::new() } else { Bytes::from(std::mem::take(out)) }
    }
}

/// Runs an encoder operation to completion: over a `Vec` it never waits.
pub(super) fn now(op: impl Future<Output = io::Result<()>>) -> io::Result<()> {
    match pin!(op).poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(result) => result,
        Poll::Pending => Err(io::Error::other("compressor waited on an in-memory buffer")),
    }
}
