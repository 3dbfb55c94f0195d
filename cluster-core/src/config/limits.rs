//! The request limits of the proxy (`performance.maxBodySize`, `maxHeaderSize`,
//! `maxHeaders`, `maxConnections`): their checked form and their validation.

use super::raw::RawPerformance;
use super::validate::Validator;

/// Smallest `maxHeaderSize`: hyper's smallest read buffer (it panics below it), and well
/// above any real request head (browsers send 1-2 KB).
pub(crate) const MIN_HEADER_SIZE: u64 = 8 * 1024;

/// Largest `maxHeaderSize` (16 MiB): the whole head is held in memory per connection.
const MAX_HEADER_SIZE: u64 = 16 * 1024 * 1024;

/// Largest `maxHeaders`.
const MAX_HEADERS: i128 = 10_000;

/// Largest `maxConnections` (beyond it, the file-descriptor limit decides anyway).
const MAX_CONNECTIONS: i128 = 10_000_000;

/// What the proxy accepts from clients (`performance` keys); checked before a request is
/// forwarded, so that a worker never sees a request over a limit.
///
/// # Examples
///
/// ```
/// use cluster_core::config::ClusterSpec;
///
/// let mut spec = ClusterSpec::default();
/// let limits = &mut spec.performance.limits;
/// limits.max_body_size = Some(10 << 20); // 413 above 10 MiB
/// assert!(limits.max_header_size >= 8 * 1024);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RequestLimits {
    /// Largest request body in bytes (`maxBodySize`; `None` when 0, the default): a larger
    /// `Content-Length` gets 413 before anything is forwarded, and a chunked body is cut off
    /// (413 if the worker has not answered yet) once it streams past the limit.
    pub max_body_size: Option<u64>,
    /// Largest request head in bytes, request line included (`maxHeaderSize`, default
    /// 64 KiB, at least 8 KiB): a larger one gets 431.
    pub max_header_size: usize,
    /// Most header fields in one request (`maxHeaders`, default 100): more get 431.
    pub max_headers: usize,
    /// Most client connections open at once (`maxConnections`; `None` when 0, the
    /// default): beyond it the proxy stops accepting, and new connections wait in the
    /// kernel's listen backlog until one closes.
    pub max_connections: Option<usize>,
}

impl Default for RequestLimits {
    /// No body or connection limit, 64 KiB and 100 header fields: the defaults of the keys.
    fn default() -> Self {
        Self {
            max_body_size: None,
            max_header_size: 64 * 1024,
            max_headers: 100,
            max_connections: None,
        }
    }
}

impl Validator<'_> {
    /// The limits keys of the `performance` section.
    pub(super) fn limits(&mut self, raw: &RawPerformance) -> RequestLimits {
        let defaults = RequestLimits::default();
        let body = self.byte_size("performance.maxBodySize", &raw.max_body_size, 0, u64::MAX);
        let header = self.byte_size(
            "performance.maxHeaderSize",
            &raw.max_header_size,
            MIN_HEADER_SIZE,
            MAX_HEADER_SIZE,
        );
        let headers = self.int("performance.maxHeaders", raw.max_headers, 1, MAX_HEADERS);
        let connections: Option<usize> =
            self.int("performance.maxConnections", raw.max_connections, 0, MAX_CONNECTIONS);
        RequestLimits {
            max_body_size: body.filter(|&b| b > 0),
            max_header_size: header
                .and_then(|h| usize::try_from(h).ok())
                .unwrap_or(defaults.max_header_size),
            max_headers: headers.unwrap_or(defaults.max_headers),
            max_connections: connections.filter(|&c| c > 0),
        }
    }
}
