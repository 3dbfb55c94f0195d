//! Response compression: the compression stage of the request path.
//!
//! When `performance.enableCompression` is on, a worker's response is compressed on its way
//! to the client with the coding the client prefers among `br`, `zstd` and `gzip`
//! ([`negotiate`]), chunk by chunk as the worker sends it (`body`), when the exchange is
//! one worth compressing (`rules`). Off, the stage does not exist: [`ProxyConfig`]'s
//! `compression` is `None` and the request path never looks further.
//!
//! Files: `negotiate` (`Accept-Encoding`, public for the admin dashboard), `rules` (what is
//! skipped, and the header changes), `encoder` (the codecs: `gzip`, our framing over a
//! deflate state reused between responses, and `async-compression`'s brotli and zstd),
//! `body` (the streaming compressed body).
//!
//! [`ProxyConfig`]: super::ProxyConfig

mod body;
mod encoder;
mod gzip;
mod negotiate;
mod rules;
#[cfg(test)]
mod tests;

use http::{HeaderMap, Method, StatusCode};

pub(crate) use body::Compressed;
pub(crate) use encoder::Encoder;
pub use negotiate::{AcceptEncoding, ContentCoding};

use crate::config::PerformanceSpec;

/// Settings of the compression stage, taken once from the spec.
///
/// # Examples
///
/// ```
/// use cluster_core::Compression;
/// use cluster_core::config::ClusterSpec;
///
/// let mut spec = ClusterSpec::default();
/// assert_eq!(Compression::from_spec(&spec.performance), None); // off by default
/// spec.performance.enable_compression = true;
/// let stage = Compression::from_spec(&spec.performance).unwrap();
/// assert_eq!(stage.level, spec.performance.compression_level);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
#[cfg_attr(not(feature = "test-util"), allow(unreachable_pub, dead_code))]
pub struct Compression {
    /// `compressionLevel`, 1-9 (each codec's own level is derived from it).
    pub level: u32,
    /// Responses with a `Content-Length` below this many bytes are sent as they are.
    pub min_size: u64,
}

#[cfg_attr(not(feature = "test-util"), allow(unreachable_pub, dead_code))]
impl Compression {
    /// The stage's settings, `None` when `performance.enableCompression` is off.
    pub fn from_spec(performance: &PerformanceSpec) -> Option<Self> {
        performance.enable_compression.then_some(Compression {
            level: performance.compression_level,
            min_size: performance.compression_min_size,
        })
    }

    /// What a request allows, read before it is forwarded (the request is gone by the time
    /// the response arrives).
    pub(crate) fn offer(&self, method: &Method, headers: &HeaderMap, upgrade: bool) -> Offer {
        let coding = rules::request_allows(method, headers, upgrade)
            .then(|| AcceptEncoding::from_headers(headers).preferred(&ContentCoding::PREFERENCE))
            .flatten();
        Offer { coding }
    }

    /// Decides for one response, and rewrites its head when it is to be compressed:
    /// returns the encoder for its body, or `None` to pass the body on as it is.
    ///
    /// A response that would be compressed for some client gets `Vary: Accept-Encoding`
    /// whether or not this one is, so that caches keep the two forms apart.
    pub(crate) fn apply(
        &self,
        offer: Offer,
        status: StatusCode,
        headers: &mut HeaderMap,
    ) -> Option<Encoder> {
        if !rules::response_eligible(status, headers, self.min_size) {
            return None;
        }
        rules::add_vary(headers);
        let coding = offer.coding?;
        rules::mark_encoded(headers, coding.header_value());
        Some(Encoder::new(coding, self.level))
    }
}

/// What a request allows: the coding to answer with, if any.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Offer {
    coding: Option<ContentCoding>,
}
