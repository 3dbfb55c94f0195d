//! The request limits ([`RequestLimits`]): what is checked on a request before it is
//! forwarded, the request body's byte budget, the connection limit, and the answer to a
//! client too slow to send its request head.
//!
//! Where each limit is enforced:
//!
//! - Header size and count, HTTP/1.1: hyper's parser (`max_buf_size`, `max_headers`), which
//!   answers `431 Request Header Fields Too Large` itself and closes the connection. HTTP/2:
//!   `max_header_list_size` for the size, [`check_request`] for the count (431 here).
//! - Body size: [`check_request`] for a declared `Content-Length` (413 before anything is
//!   forwarded), [`BodyBudget`] for a body that streams past the limit (chunked, or h2
//!   without `content-length`): the forwarded body fails, so the worker sees an aborted
//!   request, and the client gets 413 when no response head was sent yet, a reset otherwise.
//! - Connections: [`ConnectionLimit`], taken by the accept loop before it accepts.
//! - Slow request heads: the connection task's head clock (`conn.rs`, checked at the ticks of
//!   the timer it already has) ends the connection; [`REQUEST_TIMEOUT_RESPONSE`] is written
//!   as the socket is dropped when part of a head had arrived.

use std::sync::Arc;

use http::Request;
use hyper::body::Body;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::error::ProxyError;
use crate::config::RequestLimits;

/// What a client that has sent part of a request head but not all of it within
/// `headerReadTimeout` gets before the connection closes (RFC 9110 §15.5.9).
pub(crate) const REQUEST_TIMEOUT_RESPONSE: &[u8] = b"HTTP/1.1 408 Request Timeout\r\n\
connection: close\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: 21\r\n\r\n\
408 Request Timeout\r\n";

/// Checks a request head against the limits: 413 for a declared body over
/// `maxBodySize`, 431 for more header fields than `maxHeaders` (reached only over HTTP/2:
/// hyper refuses such an HTTP/1.1 head before we see it).
///
/// # Errors
///
/// [`ProxyError::BodyTooLarge`] or [`ProxyError::TooManyHeaders`].
pub(crate) fn check_request<B: Body>(
    req: &Request<B>,
    limits: &RequestLimits,
) -> Result<(), ProxyError> {
    if let Some(limit) = limits.max_body_size {
        // hyper's size hint is exact for a `Content-Length`, 0 below for chunked.
        if req.body().size_hint().lower() > limit {
            return Err(ProxyError::BodyTooLarge { worker: None, limit });
        }
    }
    let count = req.headers().len();
    if count > limits.max_headers {
        return Err(ProxyError::TooManyHeaders { count, limit: limits.max_headers });
    }
    Ok(())
}

/// The error a forwarded request body fails with once it streams past `maxBodySize`;
/// [`ProxyError::from_send`] recognises it and answers 413.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("request body larger than the limit of {limit} bytes")]
pub(crate) struct BodyTooLarge {
    /// `maxBodySize`.
    pub(crate) limit: u64,
}

/// How many more body bytes a request may send: one compare per frame, `u64::MAX` (never
/// reached) when there is no limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BodyBudget {
    limit: u64,
}

impl BodyBudget {
    /// The budget of `maxBodySize` (`None`: unlimited).
    pub(crate) fn new(limit: Option<u64>) -> Self {
        Self { limit: limit.unwrap_or(u64::MAX) }
    }

    /// Whether `total` bytes are within the budget; the error to fail the body with if not.
    pub(crate) fn check(self, total: u64) -> Result<(), BodyTooLarge> {
        if total > self.limit { Err(BodyTooLarge { limit: self.limit }) } else { Ok(()) }
    }
}

/// `maxConnections`: client connections open at once, shared by every proxy thread.
///
/// The accept loop takes a permit before it accepts, so at the limit the listening socket is
/// simply not polled: new connections complete their TCP handshake in the kernel and wait in
/// the listen backlog (or are refused by the kernel once it is full) instead of being
/// accepted and closed, and each is served as soon as a connection closes. An upgraded
/// tunnel (WebSocket) no longer counts once its connection has switched protocols.
#[derive(Debug, Clone, Default)]
pub(crate) struct ConnectionLimit(Option<Arc<Semaphore>>);

impl ConnectionLimit {
    /// At most `max` connections (`None`: unlimited, and [`ConnectionLimit::acquire`] is
    /// free).
    pub(crate) fn new(max: Option<usize>) -> Self {
        Self(max.map(|m| Arc::new(Semaphore::new(m.min(Semaphore::MAX_PERMITS)))))
    }

    /// Waits until a connection may be accepted; the permit is held for the connection's
    /// life. `None` when there is no limit.
    pub(crate) async fn acquire(&self) -> Option<OwnedSemaphorePermit> {
        let semaphore = self.0.as_ref()?;
        // The semaphore is never closed.
        Arc::clone(semaphore).acquire_owned().await.ok()
    }
}

#[cfg(test)]
mod tests {
    use http::StatusCode;
    use http_body_util::Full;

    use super::*;

    fn limits(body: Option<u64>, headers: usize) -> RequestLimits {
        RequestLimits { max_body_size: body, max_headers: headers, ..RequestLimits::default() }
    }

    #[test]
    fn declared_body_over_the_limit_is_413() {
        let req = Request::new(Full::new(bytes::Bytes::from_static(b"12345")));
        assert!(check_request(&req, &limits(Some(5), 100)).is_ok());
        assert!(check_request(&req, &limits(None, 100)).is_ok());
        let e = check_request(&req, &limits(Some(4), 100)).unwrap_err();
        assert_eq!(e.status(), StatusCode::PAYLOAD_TOO_LARGE);
    }

    #[test]
    fn too_many_fields_is_431() {
        let mut req = Request::new(Full::new(bytes::Bytes::new()));
        for i in 0..3 {
            req.headers_mut().append("x-n", i.into());
        }
        assert!(check_request(&req, &limits(None, 3)).is_ok());
        let e = check_request(&req, &limits(None, 2)).unwrap_err();
        assert_eq!(e.status(), StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
    }

    #[test]
    fn budget() {
        assert_eq!(BodyBudget::new(Some(10)).check(10), Ok(()));
        assert_eq!(BodyBudget::new(Some(10)).check(11), Err(BodyTooLarge { limit: 10 }));
        assert_eq!(BodyBudget::new(None).check(u64::MAX), Ok(()));
    }

    #[tokio::test]
    async fn connection_limit() {
        assert!(ConnectionLimit::new(None).acquire().await.is_none());
        let limit = ConnectionLimit::new(Some(1));
        let first = limit.acquire().await;
        assert!(first.is_some());
        let second = tokio::time::timeout(std::time::Duration::from_millis(20), limit.acquire());
        assert!(second.await.is_err(), "a second permit waits");
        drop(first);
        assert!(limit.acquire().await.is_some());
    }
}
