//! One request as the access log records it.
//!
//! A [`Record`] is filled on the request path with cheap copies only (the method, the URI and
//! two header values are reference-counted or inline), and formatted on the writer thread.

use std::net::IpAddr;
use std::time::{Duration, SystemTime};

use http::header::{REFERER, USER_AGENT};
use http::{HeaderMap, HeaderValue, Method, Uri, Version};

/// How the response ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum End {
    /// Its body was sent to its last byte.
    Complete,
    /// The client went away before the body ended (or before the response was ready).
    Aborted,
    /// The worker's body failed mid-way (the worker closed the connection or crashed).
    Failed,
}

impl End {
    /// The name the log lines give it.
    pub(crate) fn name(self) -> &'static str {
        match self {
            End::Complete => "complete",
            End::Aborted => "aborted",
            End::Failed => "failed",
        }
    }
}

/// The worker that answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct WorkerRef {
    /// Its slot (`NODE_APP_INSTANCE`).
    pub(crate) slot: usize,
    /// Its process id, when the proxy was told it (a [`Backend`](crate::Backend) built by
    /// an embedder may not know it).
    pub(crate) pid: Option<u32>,
}

/// One access log line before it is formatted.
///
/// The status starts as 499 ("client closed request", nginx's code) and the end as
/// [`End::Aborted`]: that is what is logged when the client goes away before any response.
#[derive(Debug, Clone)]
pub(crate) struct Record {
    /// When the request was received (its head parsed).
    pub(crate) time: SystemTime,
    /// The client's address.
    pub(crate) client: IpAddr,
    /// The request method.
    pub(crate) method: Method,
    /// The request target as received (origin form: path and query).
    pub(crate) uri: Uri,
    /// The request's HTTP version.
    pub(crate) version: Version,
    /// The response status.
    pub(crate) status: u16,
    /// Response body bytes sent.
    pub(crate) bytes: u64,
    /// From the request head to the end of the response body.
    pub(crate) duration: Duration,
    /// The worker that answered; `None` for a response of the proxy itself (503 with no
    /// worker ready, 400 for a bad request, the admin API).
    pub(crate) worker: Option<WorkerRef>,
    /// The `Referer` header.
    pub(crate) referer: Option<HeaderValue>,
    /// The `User-Agent` header.
    pub(crate) user_agent: Option<HeaderValue>,
    /// How the response ended.
    pub(crate) end: End,
}

/// What a status of a record that never got a response is logged as.
pub(crate) const CLIENT_CLOSED: u16 = 499;

impl Record {
    /// A record of a request just received from `client`.
    pub(crate) fn new(
        client: IpAddr,
        method: &Method,
        uri: &Uri,
        version: Version,
        headers: &HeaderMap,
    ) -> Self {
        Self {
            time: SystemTime::now(),
            client,
            method: method.clone(),
            uri: uri.clone(),
            version,
            status: CLIENT_CLOSED,
            bytes: 0,
            duration: Duration::ZERO,
            worker: None,
            referer: headers.get(REFERER).cloned(),
            user_agent: headers.get(USER_AGENT).cloned(),
            end: End::Aborted,
        }
    }

    /// The request target for the log: path and query as received, the authority of a
    /// `CONNECT`, or `*`.
    pub(crate) fn target(&self) -> &str {
        match self.uri.path_and_query() {
            Some(pq) => pq.as_str(),
            None => self.uri.authority().map_or("*", |a| a.as_str()),
        }
    }

    /// The protocol as the combined format writes it (`HTTP/1.1`, `HTTP/2.0`).
    pub(crate) fn protocol(&self) -> &'static str {
        match self.version {
            Version::HTTP_09 => "HTTP/0.9",
            Version::HTTP_10 => "HTTP/1.0",
            Version::HTTP_11 => "HTTP/1.1",
            Version::HTTP_2 => "HTTP/2.0",
            Version::HTTP_3 => "HTTP/3.0",
            _ => "HTTP/?",
        }
    }
}
