//! One Server-Sent Events client: `retry:`, the events it missed (after its `Last-Event-ID`),
//! a status snapshot, then live events and status snapshots, with keep-alive comments.
//!
//! The body is fed by a task through a small bounded channel, so hyper pulls it only as fast
//! as the client reads; a client that falls behind the live events is disconnected (it
//! reconnects and resumes from the replay buffer).

use std::time::Duration;

use bytes::Bytes;
use cluster_core::{BoxError, ClusterHandle, EndsOnDrain, FrontBody};
use http::header::{CACHE_CONTROL, CONTENT_TYPE};
use http::{HeaderValue, Response, StatusCode};
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::mpsc;

use crate::hub::Hub;

/// Chunks queued for one client's connection.
const QUEUED: usize = 16;

/// How an EventSource should wait before reconnecting, in ms.
const RETRY_MS: u64 = 2000;

/// The events stream for one client.
///
/// `after`: its `Last-Event-ID`. `end_on_shutdown`: end as soon as shutdown begins (on the
/// front port, so as not to hold the proxy's drain); otherwise the stream ends when the
/// cluster has stopped.
pub(crate) fn respond(
    hub: &Hub,
    handle: ClusterHandle,
    after: Option<u64>,
    end_on_shutdown: bool,
    keep_alive: Duration,
) -> Response<FrontBody> {
    let (tx, mut rx) = mpsc::channel::<Bytes>(QUEUED);
    tokio::spawn(feed(hub.clone(), handle, after, end_on_shutdown, keep_alive, tx));
    let stream = futures_util::stream::poll_fn(move |cx| {
        rx.poll_recv(cx).map(|chunk| chunk.map(|b| Ok::<_, BoxError>(Frame::data(b))))
    });
    let mut response = Response::new(StreamBody::new(stream).boxed_unsync());
    if end_on_shutdown {
        // On the front port: the proxy's drain does not wait for a client that stopped reading.
        response.extensions_mut().insert(EndsOnDrain);
    }
    *response.status_mut() = StatusCode::OK;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    // Proxies in front of the cluster (nginx) must not buffer the stream.
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    response
}

/// Writes the stream until the client goes away, falls behind, or the cluster stops.
async fn feed(
    hub: Hub,
    handle: ClusterHandle,
    after: Option<u64>,
    end_on_shutdown: bool,
    keep_alive: Duration,
    tx: mpsc::Sender<Bytes>,
) {
    let send = |text: String| {
        let tx = tx.clone();
        async move { tx.send(Bytes::from(text)).await.is_ok() }
    };
    let listening = hub.listen(after);
    let (missed, lost, live, at) = (listening.missed, listening.lost, listening.live, listening.at);
    if !send(format!("retry: {RETRY_MS}\n\n")).await {
        return;
    }
    if lost {
        let note = ": events were lost since your Last-Event-ID; the status follows\n\n";
        if !send(note.to_owned()).await {
            return;
        }
    }
    for event in missed {
        if !send(event.encode()).await {
            return;
        }
    }
    if let Ok(status) = handle.status().await {
        // With the id of the last event this client has: a reconnect from it misses nothing.
        if !send(hub.snapshot(&status, at).encode()).await {
            return;
        }
    }
    let Some(mut live) = live else { return };
    if end_on_shutdown && hub.shutting_down() {
        return;
    }
    let mut beat = tokio::time::interval(keep_alive);
    beat.tick().await;
    loop {
        tokio::select! {
            event = live.recv() => match event {
                Ok(event) => {
                    if !send(event.encode()).await {
                        return;
                    }
                    if end_on_shutdown && event.name == "shutdownStarted" {
                        return;
                    }
                }
                Err(RecvError::Lagged(_)) => {
                    let _ = send(": too slow: reconnect to resume from your Last-Event-ID\n\n".into()).await;
                    return;
                }
                Err(RecvError::Closed) => return,
            },
            _ = beat.tick() => {
                if !send(": keep-alive\n\n".into()).await {
                    return;
                }
            }
            () = tx.closed() => return,
        }
    }
}
