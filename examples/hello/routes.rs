//! Request routing and the small routes; the streaming ones live in `stream` and `ws`.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::{HeaderMap, Method, Request, Response, StatusCode};

use crate::server::Shared;

/// The response body type of every route: fixed text, a stream of events, or the request body.
pub(crate) type Body = UnsyncBoxBody<Bytes, hyper::Error>;

/// Longest `/slow` wait.
const MAX_SLOW_MS: u64 = 60_000;

/// Longest `/burn` spin.
const MAX_BURN_MS: u64 = 1_000;

/// Routes one request. Never fails: every outcome is a response (or, for `/crash`, an exit).
pub(crate) async fn handle(
    req: Request<Incoming>,
    shared: Arc<Shared>,
) -> Result<Response<Body>, Infallible> {
    if !shared.response_delay.is_zero() {
        let _turn = match &shared.serial {
            Some(serial) => Some(serial.lock().await),
            None => None,
        };
        tokio::time::sleep(shared.response_delay).await;
    }
    if shared.failing.now() {
        return Ok(text(StatusCode::INTERNAL_SERVER_ERROR, "injected failure\n"));
    }
    let get = matches!(*req.method(), Method::GET | Method::HEAD);
    let query = req.uri().query().unwrap_or("");
    let response = match req.uri().path() {
        "/" if get => {
            let id = shared.worker_id.as_deref().unwrap_or("-");
            text(StatusCode::OK, format!("hello from worker {id} pid {}\n", shared.pid))
        }
        "/pid" if get => text(StatusCode::OK, shared.pid.to_string()),
        "/health" if get => text(StatusCode::OK, "ok\n"),
        "/slow" if get => {
            let ms = param(query, "ms").unwrap_or(0).min(MAX_SLOW_MS);
            tokio::time::sleep(Duration::from_millis(ms)).await;
            text(StatusCode::OK, format!("slept {ms} ms\n"))
        }
        "/burn" if get => {
            let ms = param(query, "ms").unwrap_or(0).min(MAX_BURN_MS);
            // Busy on purpose, on the runtime thread: this is what a CPU-bound request does.
            let until = std::time::Instant::now() + Duration::from_millis(ms);
            while std::time::Instant::now() < until {
                std::hint::spin_loop();
            }
            text(StatusCode::OK, format!("burned {ms} ms\n"))
        }
        "/stream" if get => crate::stream::events(query),
        "/echo" if matches!(*req.method(), Method::POST | Method::PUT) => crate::stream::echo(req),
        "/ws" if req.method() == Method::GET => crate::ws::upgrade(req, &shared),
        "/headers" if get => json(headers_json(req.headers())),
        "/count" => {
            let n = shared.counted.fetch_add(1, Ordering::Relaxed) + 1;
            text(StatusCode::OK, n.to_string())
        }
        "/counted" if get => {
            text(StatusCode::OK, shared.counted.load(Ordering::Relaxed).to_string())
        }
        "/consume" if matches!(*req.method(), Method::POST | Method::PUT) => consume(req).await,
        "/env" if get => json(env_json()),
        "/crash" if req.method() == Method::GET => {
            eprintln!("hello: GET /crash, exiting with code 70");
            std::process::exit(70)
        }
        _ => text(StatusCode::NOT_FOUND, "not found\n"),
    };
    Ok(response)
}

/// `POST|PUT /consume`: reads the whole request body, then answers its length; a body that
/// fails mid-way (the client or the proxy cut it off) gets 400.
async fn consume(req: Request<Incoming>) -> Response<Body> {
    let mut body = req.into_body();
    let mut total = 0usize;
    while let Some(frame) = body.frame().await {
        match frame {
            Ok(frame) => total += frame.data_ref().map_or(0, Bytes::len),
            Err(e) => return text(StatusCode::BAD_REQUEST, format!("body failed: {e}\n")),
        }
    }
    text(StatusCode::OK, total.to_string())
}

/// A `text/plain` response.
pub(crate) fn text(status: StatusCode, body: impl Into<Bytes>) -> Response<Body> {
    let mut response = Response::new(full(body));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    response
}

/// An `application/json` 200 response.
fn json(value: serde_json::Value) -> Response<Body> {
    let mut response = Response::new(full(value.to_string()));
    response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

/// A complete body, boxed to the common type.
pub(crate) fn full(body: impl Into<Bytes>) -> Body {
    Full::new(body.into()).map_err(|never| match never {}).boxed_unsync()
}

/// The first `key=<u64>` in a query string (`a=1&b=2`); `None` when missing or not a number.
pub(crate) fn param(query: &str, key: &str) -> Option<u64> {
    query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(k, _)| *k == key)
        .and_then(|(_, v)| v.parse().ok())
}

/// Request headers as a JSON object; names are already lower case in `HeaderMap`, repeated
/// headers are joined with `", "` (RFC 9110 §5.3), and bytes that are not UTF-8 become U+FFFD.
fn headers_json(headers: &HeaderMap) -> serde_json::Value {
    let object = headers
        .keys()
        .map(|name| {
            let values: Vec<_> = headers
                .get_all(name)
                .iter()
                .map(|v| String::from_utf8_lossy(v.as_bytes()))
                .collect();
            (name.as_str().to_owned(), values.join(", ").into())
        })
        .collect();
    serde_json::Value::Object(object)
}

/// The environment variables a cluster manager sets for its workers; null when unset.
fn env_json() -> serde_json::Value {
    let object = [
        "PORT",
        "HOST",
        "SOCKET_PATH",
        "CLUSTER_WORKER_ID",
        "NODE_APP_INSTANCE",
        "LISTEN_PID",
        "LISTEN_FDS",
        "LISTEN_FDNAMES",
    ]
    .into_iter()
    .map(|key| (key.to_owned(), std::env::var(key).ok().into()))
    .collect();
    serde_json::Value::Object(object)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn param_finds_the_named_number() {
        assert_eq!(param("n=3&interval=10", "interval"), Some(10));
        assert_eq!(param("n=3", "interval"), None);
        assert_eq!(param("ms=abc", "ms"), None);
        assert_eq!(param("", "ms"), None);
    }

    #[test]
    fn repeated_headers_are_joined() {
        let mut headers = HeaderMap::new();
        headers.append("x-forwarded-for", HeaderValue::from_static("10.0.0.1"));
        headers.append("x-forwarded-for", HeaderValue::from_static("127.0.0.1"));
        headers.insert("host", HeaderValue::from_static("example.com"));
        let json = headers_json(&headers);
        assert_eq!(json["x-forwarded-for"], "10.0.0.1, 127.0.0.1");
        assert_eq!(json["host"], "example.com");
    }
}
