//! What can go wrong on a connection of the proxy's own HTTP/1.1 client.

use std::io;

/// A failure on an [`H1Conn`](super::H1Conn), while the request is written or the response
/// read.
#[derive(Debug, thiserror::Error)]
pub(crate) enum H1Error {
    /// The connection failed or ended before any byte of a response (writing the request,
    /// or waiting for the answer): on a pooled connection, most likely the worker closing it
    /// as the request went out.
    #[error("connection to the worker ended before a response: {0}")]
    NoResponse(#[source] io::Error),
    /// Reading the socket failed.
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

    /// Whether nothing of a response came: the request may go again on another connection.
    pub(crate) fn is_no_response(&self) -> bool {
        matches!(self, H1Error::NoResponse(_))
    }
}
