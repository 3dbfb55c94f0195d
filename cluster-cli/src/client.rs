//! The CLI's side of the control socket: HTTP/1.1 requests to the admin API of the running
//! primary, over its Unix socket.

use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::net::UnixStream;

use crate::runtime::{Liveness, RuntimeDir};

/// Longest a request to the primary may take (the events stream excepted).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// A connection target: the control socket of one cluster.
#[derive(Debug, Clone)]
pub(crate) struct Client {
    socket: PathBuf,
}

/// A request to the primary failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ClientError {
    /// Nothing listens on the socket: no cluster runs there.
    #[error("{0}")]
    NotRunning(String),
    /// The request failed on the way.
    #[error("the cluster did not answer: {0}")]
    Transport(String),
}

/// An answer: the status code and the body.
#[derive(Debug)]
pub(crate) struct Answer {
    pub(crate) status: u16,
    pub(crate) body: Bytes,
}

impl Answer {
    /// The body as JSON (`null` when it is not JSON).
    pub(crate) fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    /// The `error` message of a JSON error body, or the body as text.
    pub(crate) fn message(&self) -> String {
        match self.json().get("error").and_then(Value::as_str) {
            Some(e) => e.to_owned(),
            None => String::from_utf8_lossy(&self.body).trim().to_owned(),
        }
    }

    /// Whether the status is 2xx.
    pub(crate) fn ok(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

impl Client {
    /// The client of the cluster whose runtime directory is `rt`. A pid file and socket
    /// left by a primary that died are cleaned up (and said so).
    ///
    /// # Errors
    ///
    /// [`ClientError::NotRunning`] when no primary runs there.
    pub(crate) fn of(rt: &RuntimeDir) -> Result<Client, ClientError> {
        match rt.liveness() {
            Liveness::Running(_) => Ok(Client { socket: rt.socket.clone() }),
            Liveness::Stale(pid) => {
                rt.clean_stale();
                let pid = pid.map(|p| format!(" (pid {p})")).unwrap_or_default();
                Err(ClientError::NotRunning(format!(
                    "no cluster is running in {}: the last one{pid} died; its pid file and socket are cleaned up",
                    rt.dir.display()
                )))
            }
            Liveness::None if rt.socket.exists() => Ok(Client { socket: rt.socket.clone() }),
            Liveness::None => Err(ClientError::NotRunning(format!(
                "no cluster is running in {} (no pid file; start one with `cluster start`)",
                rt.dir.display()
            ))),
        }
    }

    /// `GET path`.
    pub(crate) async fn get(&self, path: &str) -> Result<Answer, ClientError> {
        self.request("GET", path, None, REQUEST_TIMEOUT).await
    }

    /// `POST path` with a JSON body.
    pub(crate) async fn post(&self, path: &str, body: &Value) -> Result<Answer, ClientError> {
        self.request("POST", path, Some(body), REQUEST_TIMEOUT).await
    }

    /// `POST path` with a JSON body, for an operation that answers when it is done (a hot
    /// upgrade): waits up to `limit`.
    pub(crate) async fn post_within(
        &self,
        path: &str,
        body: &Value,
        limit: Duration,
    ) -> Result<Answer, ClientError> {
        self.request("POST", path, Some(body), limit).await
    }

    async fn request(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
        limit: Duration,
    ) -> Result<Answer, ClientError> {
        let exchange = async {
            let resp = self.send(method, path, body, &[]).await?;
            let status = resp.status().as_u16();
            let body = resp
                .into_body()
                .collect()
                .await
                .map_err(|e| ClientError::Transport(e.to_string()))?;
            Ok(Answer { status, body: body.to_bytes() })
        };
        tokio::time::timeout(limit, exchange).await.map_err(|_| {
            ClientError::Transport(format!("no answer within {} s", limit.as_secs()))
        })?
    }

    /// Sends a request and returns the response with its body unread (for the events stream).
    pub(crate) async fn send(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
        headers: &[(&str, String)],
    ) -> Result<hyper::Response<Incoming>, ClientError> {
        let stream = UnixStream::connect(&self.socket).await.map_err(|e| {
            ClientError::NotRunning(format!(
                "cannot reach the cluster at {}: {e}",
                self.socket.display()
            ))
        })?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| ClientError::Transport(e.to_string()))?;
        tokio::spawn(conn);
        let mut req = Request::builder().method(method).uri(path).header("host", "cluster");
        for (name, value) in headers {
            req = req.header(*name, value);
        }
        let payload = match body {
            Some(v) => {
                req = req.header("content-type", "application/json");
                Bytes::from(v.to_string())
            }
            None => Bytes::new(),
        };
        let req =
            req.body(Full::new(payload)).map_err(|e| ClientError::Transport(e.to_string()))?;
        sender.send_request(req).await.map_err(|e| ClientError::Transport(e.to_string()))
    }
}

/// Reads Server-Sent Events from a response body, one parsed event at a time.
#[derive(Debug)]
pub(crate) struct Events {
    body: Incoming,
    buf: Vec<u8>,
}

/// One event of the stream.
#[derive(Debug, Clone, Default)]
pub(crate) struct Event {
    pub(crate) name: String,
    pub(crate) data: String,
}

impl Events {
    pub(crate) fn new(body: Incoming) -> Self {
        Self { body, buf: Vec::new() }
    }

    /// The next event; `None` when the stream ends. Comments are skipped.
    pub(crate) async fn next(&mut self) -> Option<Event> {
        loop {
            if let Some(end) = find(&self.buf, b"\n\n") {
                let block: Vec<u8> = self.buf.drain(..end + 2).collect();
                let text = String::from_utf8_lossy(&block);
                let mut event = Event::default();
                for line in text.lines() {
                    if let Some(v) = line.strip_prefix("event:") {
                        event.name = v.trim().to_owned();
                    } else if let Some(v) = line.strip_prefix("data:") {
                        event.data.push_str(v.trim_start());
                    }
                }
                if !event.name.is_empty() {
                    return Some(event);
                }
                continue;
            }
            let frame = self.body.frame().await?.ok()?;
            if let Ok(data) = frame.into_data() {
                self.buf.extend_from_slice(&data);
            }
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}
