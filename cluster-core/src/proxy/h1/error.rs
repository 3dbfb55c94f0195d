//! What can go wrong on a connection of the proxy's own HTTP/1.1 client.

use std::io;

/// A failure on an [`H1Conn`](super::H1Conn), while the request is written or the response
/// read.
#[derive(Debug, thiserror::Error)]
pub(crate) enum H1Error {
    /// Reading or writing the socket failed.
    #[error("connection to the worker failed: {0}")]
    Io(#[from] io::Error),
    /// The worker closed the connection before the end of the response head.
    #[error("the worker closed the connection before a complete response head")]
    Closed,
    /// The response head is not valid HTTP/1.1.
    #[error("malformed response head: {0}")]
    Head(&'static str),
    /// The response head is longer than the client reads (the same limit as hyper's).
    #[error("response head over {0} bytes")]
    HeadTooLarge(usize),
    /// The body ended before its declared length, or its chunked coding is malformed.
    #[error("response body: {0}")]
    Body(&'static str),
}

impl H1Error {
    /// Whether the failure is the response's form (a 502 for a bad response) rather than
    /// the connection failing.
    pub(crate) fn is_malformed(&self) -> bool {
        matches!(self, H1Error::Head(_) | H1Error::HeadTooLarge(_))
    }
}
