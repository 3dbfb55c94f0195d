//! What can go wrong while proxying one request, whose fault it was, and what the client sees.

use std::io;
use std::time::Duration;

use bytes::Bytes;
use http::header::{CONNECTION, CONTENT_TYPE, RETRY_AFTER};
use http::{HeaderValue, Response, StatusCode};

use super::body::ProxyBody;
use super::front::BoxError;
use super::h1::H1Error;
use super::limits::BodyTooLarge;
use crate::endpoint::Endpoint;

/// Who caused a [`ProxyError`]; decides the log level and, later, which counters move.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fault {
    /// The client sent something we cannot forward, or went away mid-request.
    Client,
    /// The worker could not be reached, failed mid-request or was too slow.
    Worker,
    /// The cluster itself: no worker is ready to take the request.
    Ours,
}

/// Whether a failed request may be sent again to another worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Retry {
    /// Never: the worker may have acted on it, or retrying cannot help.
    Never,
    /// Always: nothing was written to the worker, so any method is safe to resend.
    Unsent,
    /// Only a request that is idempotent (RFC 9110 §9.2.2) and has no body: it was written,
    /// but the worker failed before sending any response byte.
    IfIdempotent,
}

/// Why a request could not be proxied.
///
/// Each variant carries the worker it concerns, so a log line names the culprit. The variant
/// decides the status the client gets ([`ProxyError::status`]) and whether the request may be
/// retried elsewhere ([`ProxyError::retry`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub(crate) enum ProxyError {
    /// No worker is ready (none started yet, all draining, or the only one just failed).
    #[error("no worker is ready to take the request")]
    NoBackend,
    /// The TCP connection to the worker could not be opened.
    #[error("cannot connect to worker {worker} at {addr}: {source}")]
    Connect {
        /// The worker's id.
        worker: u64,
        /// Its private endpoint.
        addr: Endpoint,
        /// What the connect returned.
        source: io::Error,
    },
    /// The connection to the worker closed before the request was written.
    #[error("connection to worker {worker} closed before the request was sent: {source}")]
    Unsent {
        /// The worker's id.
        worker: u64,
        /// hyper's reason.
        source: hyper::Error,
    },
    /// The request was (perhaps partly) written, then the worker failed before responding.
    #[error("worker {worker} failed before responding: {source}")]
    Upstream {
        /// The worker's id.
        worker: u64,
        /// The client's reason (hyper's, or our own client's [`H1Error`]).
        source: BoxError,
    },
    /// The worker answered something that is not a valid HTTP/1.1 response for this request.
    #[error("worker {worker} sent an invalid response: {reason}")]
    BadResponse {
        /// The worker's id.
        worker: u64,
        /// What was wrong with it.
        reason: &'static str,
    },
    /// The client's request body failed while it was being forwarded (client went away).
    #[error("client request body failed while forwarding to worker {worker}: {source}")]
    ClientBody {
        /// The worker's id.
        worker: u64,
        /// hyper's reason.
        source: hyper::Error,
    },
    /// The worker sent no response headers within the request timeout.
    #[error("no response headers within {after:?} (worker {worker:?})")]
    Timeout {
        /// The worker the request was waiting on, if one had been picked.
        worker: Option<u64>,
        /// The configured request timeout.
        after: Duration,
    },
    /// The request head is not one we may forward (RFC 9112 §3.2 `Host` rules).
    #[error("bad request: {0}")]
    BadRequest(&'static str),
    /// The request uses a method a reverse proxy does not forward (`CONNECT`).
    #[error("method {0} is not supported by the proxy")]
    Method(http::Method),
    /// The request body is larger than `performance.maxBodySize`: declared so in
    /// `Content-Length` (nothing was forwarded), or streamed past it (the forwarded body
    /// was cut off).
    #[error("request body over the limit of {limit} bytes (worker {worker:?})")]
    BodyTooLarge {
        /// The worker the body was streaming to; `None` when nothing was forwarded.
        worker: Option<u64>,
        /// `maxBodySize`.
        limit: u64,
    },
    /// The request has more header fields than `performance.maxHeaders`.
    #[error("{count} header fields, over the limit of {limit}")]
    TooManyHeaders {
        /// Fields in the request.
        count: usize,
        /// `maxHeaders`.
        limit: usize,
    },
}

impl ProxyError {
    /// Classifies a hyper client error for a request that hyper did not hand back unsent.
    ///
    /// A failure of our own request body means the client went away; anything else that
    /// happened before response headers is the worker's.
    pub(crate) fn from_send(worker: u64, source: hyper::Error) -> Self {
        // A failure of the client's body is a user error caused by the body's own error (a
        // `hyper::Error` from the client connection); other user errors, such as the
        // connection's task being gone, are failures on the worker's side.
        let cause = std::error::Error::source(&source).filter(|_| source.is_user());
        if let Some(too_large) = cause.and_then(|c| c.downcast_ref::<BodyTooLarge>()) {
            ProxyError::BodyTooLarge { worker: Some(worker), limit: too_large.limit }
        } else if cause.is_some_and(|c| c.is::<hyper::Error>()) {
            ProxyError::ClientBody { worker, source }
        } else if source.is_parse() {
            ProxyError::BadResponse { worker, reason: "malformed response head" }
        } else {
            ProxyError::Upstream { worker, source: source.into() }
        }
    }

    /// Classifies a failure of our own client ([`super::h1`]): an invalid head is a bad
    /// response, anything else a failure before the response (retried as hyper's would be).
    pub(crate) fn from_h1(worker: u64, source: H1Error) -> Self {
        if source.is_malformed() {
            ProxyError::BadResponse { worker, reason: "malformed response head" }
        } else {
            ProxyError::Upstream { worker, source: source.into() }
        }
    }

    /// Whose fault the failure was.
    pub(crate) fn fault(&self) -> Fault {
        match self {
            ProxyError::NoBackend => Fault::Ours,
            ProxyError::ClientBody { .. }
            | ProxyError::BadRequest(_)
            | ProxyError::Method(_)
            | ProxyError::BodyTooLarge { .. }
            | ProxyError::TooManyHeaders { .. } => Fault::Client,
            ProxyError::Connect { .. }
            | ProxyError::Unsent { .. }
            | ProxyError::Upstream { .. }
            | ProxyError::BadResponse { .. }
            | ProxyError::Timeout { .. } => Fault::Worker,
        }
    }

    /// Whether the request may be sent again to another worker.
    pub(crate) fn retry(&self) -> Retry {
        match self {
            ProxyError::Connect { .. } | ProxyError::Unsent { .. } => Retry::Unsent,
            ProxyError::Upstream { .. } => Retry::IfIdempotent,
            _ => Retry::Never,
        }
    }

    /// How the worker failed, for its metrics.
    pub(crate) fn failure_kind(&self) -> crate::metrics::FailureKind {
        use crate::metrics::FailureKind;
        match self {
            ProxyError::Connect { .. } | ProxyError::Unsent { .. } => FailureKind::Unreachable,
            ProxyError::BadResponse { .. } => FailureKind::BadResponse,
            ProxyError::Timeout { .. } => FailureKind::Timeout,
            _ => FailureKind::Failed,
        }
    }

    /// The worker the failure concerns, if any.
    pub(crate) fn worker(&self) -> Option<u64> {
        match self {
            ProxyError::NoBackend
            | ProxyError::BadRequest(_)
            | ProxyError::Method(_)
            | ProxyError::TooManyHeaders { .. } => None,
            ProxyError::Timeout { worker, .. } | ProxyError::BodyTooLarge { worker, .. } => *worker,
            ProxyError::Connect { worker, .. }
            | ProxyError::Unsent { worker, .. }
            | ProxyError::Upstream { worker, .. }
            | ProxyError::BadResponse { worker, .. }
            | ProxyError::ClientBody { worker, .. } => Some(*worker),
        }
    }

    /// The status the client gets: 503 when no worker is ready, 502 when the worker failed,
    /// 504 when it was too slow, 4xx when the client was at fault (413 and 431 for the
    /// request limits).
    pub(crate) fn status(&self) -> StatusCode {
        match self {
            ProxyError::NoBackend => StatusCode::SERVICE_UNAVAILABLE,
            ProxyError::Connect { .. }
            | ProxyError::Unsent { .. }
            | ProxyError::Upstream { .. }
            | ProxyError::BadResponse { .. } => StatusCode::BAD_GATEWAY,
            ProxyError::Timeout { .. } => StatusCode::GATEWAY_TIMEOUT,
            ProxyError::ClientBody { .. } | ProxyError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ProxyError::Method(_) => StatusCode::METHOD_NOT_ALLOWED,
            ProxyError::BodyTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ProxyError::TooManyHeaders { .. } => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
        }
    }

    /// The response sent to the client: the status, a one-line text body, and for 503 a
    /// `Retry-After: 1` (RFC 9110 §10.2.3) so clients back off briefly while workers start.
    pub(crate) fn to_response(&self) -> Response<ProxyBody> {
        let status = self.status();
        let text: &'static str = match status {
            StatusCode::SERVICE_UNAVAILABLE => "503 Service Unavailable: no worker is ready\n",
            StatusCode::BAD_GATEWAY => "502 Bad Gateway: the worker failed to respond\n",
            StatusCode::GATEWAY_TIMEOUT => {
                "504 Gateway Timeout: the worker did not respond in time\n"
            }
            StatusCode::METHOD_NOT_ALLOWED => "405 Method Not Allowed\n",
            StatusCode::PAYLOAD_TOO_LARGE => "413 Content Too Large\n",
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE => "431 Request Header Fields Too Large\n",
            _ => "400 Bad Request\n",
        };
        let mut resp = Response::new(ProxyBody::text(Bytes::from_static(text.as_bytes())));
        *resp.status_mut() = status;
        let h = resp.headers_mut();
        h.insert(CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
        if status == StatusCode::SERVICE_UNAVAILABLE {
            h.insert(RETRY_AFTER, HeaderValue::from_static("1"));
        }
        if let ProxyError::BodyTooLarge { .. } = self {
            // The rest of the body is not read: the connection cannot carry another request.
            h.insert(CONNECTION, HeaderValue::from_static("close"));
        }
        resp
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classification() {
        let e = ProxyError::NoBackend;
        assert_eq!(
            (e.status(), e.fault(), e.retry()),
            (StatusCode::SERVICE_UNAVAILABLE, Fault::Ours, Retry::Never)
        );
        assert_eq!(e.to_response().headers()[RETRY_AFTER], "1");
        let e = ProxyError::Connect {
            worker: 3,
            addr: Endpoint::Tcp("127.0.0.1:1".parse().unwrap()),
            source: io::ErrorKind::ConnectionRefused.into(),
        };
        assert_eq!(
            (e.status(), e.fault(), e.retry()),
            (StatusCode::BAD_GATEWAY, Fault::Worker, Retry::Unsent)
        );
        assert_eq!(e.worker(), Some(3));
        let e = ProxyError::Timeout { worker: Some(1), after: Duration::from_secs(1) };
        assert_eq!((e.status(), e.retry()), (StatusCode::GATEWAY_TIMEOUT, Retry::Never));
        let e = ProxyError::Method(http::Method::CONNECT);
        assert_eq!((e.status(), e.fault()), (StatusCode::METHOD_NOT_ALLOWED, Fault::Client));
    }
}
