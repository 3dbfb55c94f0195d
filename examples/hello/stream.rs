//! The streaming routes: server-sent events and the request-body echo. Neither buffers: each
//! event is its own body frame, and echoed frames are passed on as they arrive.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::header::{CACHE_CONTROL, CONTENT_TYPE, HeaderValue};
use hyper::{Request, Response};

use crate::routes::{Body, param};

/// Default and largest number of events.
const EVENTS: (u64, u64) = (5, 1000);
/// Default and largest pause between events, in ms.
const INTERVAL_MS: (u64, u64) = (200, 60_000);

/// `GET /stream?n=N&interval=MS`: N events `id: i\ndata: event i\n\n` (i = 1..=N), the first at
/// once and then one every MS ms, each in its own frame; then the body ends.
///
/// The stream is an in-flight request like any other: on shutdown it runs to its end (bounded by
/// the drain timeout).
pub(crate) fn events(query: &str) -> Response<Body> {
    let n = param(query, "n").unwrap_or(EVENTS.0).min(EVENTS.1);
    let interval =
        Duration::from_millis(param(query, "interval").unwrap_or(INTERVAL_MS.0).min(INTERVAL_MS.1));
    let frames = futures_util::stream::unfold(1, move |i| async move {
        if i > n {
            return None;
        }
        if i > 1 {
            tokio::time::sleep(interval).await;
        }
        let event = Bytes::from(format!("id: {i}\ndata: event {i}\n\n"));
        Some((Ok::<_, hyper::Error>(Frame::data(event)), i + 1))
    });
    let mut response = Response::new(StreamBody::new(frames).boxed_unsync());
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

/// `POST|PUT /echo`: the request body becomes the response body, frame by frame, with the
/// request's content type.
pub(crate) fn echo(req: Request<Incoming>) -> Response<Body> {
    let (parts, body) = req.into_parts();
    let mut response = Response::new(body.boxed_unsync());
    if let Some(content_type) = parts.headers.get(CONTENT_TYPE) {
        response.headers_mut().insert(CONTENT_TYPE, content_type.clone());
    }
    response
}
