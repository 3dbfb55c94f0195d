//! Deciding when a new worker may receive traffic.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::Empty;
use hyper::Request;
use hyper_util::rt::TokioIo;
use tokio::sync::Notify;
use tokio::time::{sleep, timeout};

use crate::endpoint::{Endpoint, Stream};

/// How a worker proves it is ready.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Probe {
    /// Its endpoint accepts a connection.
    Connect,
    /// `GET <path>` on its endpoint answers 2xx.
    HttpGet(String),
}

impl Probe {
    /// The probe for an optional health path.
    pub(crate) fn new(health_path: Option<&str>) -> Self {
        match health_path {
            Some(path) => Probe::HttpGet(path.to_owned()),
            None => Probe::Connect,
        }
    }

    /// Probes `endpoint` until it passes. Runs forever for a worker that never becomes
    /// ready: callers bound it with the start timeout.
    pub(crate) async fn wait_ready(&self, endpoint: &Endpoint) {
        let mut pause = Duration::from_millis(20);
        loop {
            if timeout(Duration::from_secs(2), self.once(endpoint)).await.unwrap_or(false) {
                return;
            }
            sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(250));
        }
    }

    /// One attempt: does the worker pass now?
    async fn once(&self, endpoint: &Endpoint) -> bool {
        let Ok(stream) = endpoint.connect().await else {
            return false;
        };
        match self {
            Probe::Connect => true,
            Probe::HttpGet(path) => http_get_ok(stream, endpoint, path).await,
        }
    }
}

/// Waits until the worker has said it is ready (`READY=1` or `{"type":"ready"}`, notified
/// through `said`) while its endpoint accepts a connection, so that the proxy never routes to
/// a closed port. A worker that says so before it listens waits for the probe instead. Runs
/// forever for a worker that never says it: callers race it with the probe.
pub(crate) async fn announced(endpoint: &Endpoint, said: &Notify) {
    loop {
        said.notified().await;
        if matches!(timeout(Duration::from_secs(1), endpoint.connect()).await, Ok(Ok(_))) {
            return;
        }
    }
}

/// Liveness: does the worker answer HTTP at all within `limit`? With a health path, the
/// answer must be 2xx; without one, any response to `GET /` counts (an application error is
/// not a hang, and recycling on it would turn an outage into a restart storm).
pub(crate) async fn alive(endpoint: &Endpoint, health_path: Option<&str>, limit: Duration) -> bool {
    let attempt = async {
        let Ok(stream) = endpoint.connect().await else { return false };
        match health_path {
            Some(path) => http_get_ok(stream, endpoint, path).await,
            None => http_get(stream, endpoint, "/").await.is_some(),
        }
    };
    timeout(limit, attempt).await.unwrap_or(false)
}

async fn http_get_ok(stream: Stream, endpoint: &Endpoint, path: &str) -> bool {
    http_get(stream, endpoint, path).await.is_some_and(|s| s.is_success())
}

/// `GET path` on `stream`; the response status, `None` when there was no response.
async fn http_get(stream: Stream, endpoint: &Endpoint, path: &str) -> Option<hyper::StatusCode> {
    let req = Request::get(path)
        .header(hyper::header::HOST, endpoint.host_header())
        .header(hyper::header::USER_AGENT, "cluster-probe")
        .body(Empty::<Bytes>::new())
        .ok()?;
    match stream {
        Stream::Tcp(tcp) => send_once(TokioIo::new(tcp), req).await,
        Stream::Unix(unix) => send_once(TokioIo::new(unix), req).await,
    }
}

/// Sends `req` as the only request of a new HTTP/1.1 connection over `io`; the status.
async fn send_once<I>(io: I, req: Request<Empty<Bytes>>) -> Option<hyper::StatusCode>
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(io).await.ok()?;
    let conn = tokio::spawn(conn);
    let status = sender.send_request(req).await.ok().map(|r| r.status());
    conn.abort();
    status
}
