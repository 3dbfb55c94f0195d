//! Bodies stream through the proxy both ways, and in-flight counts follow the bodies.

mod proxy_support;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use cluster_core::ProxyConfig;
use futures_util::stream;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use proxy_support::*;
use tokio::sync::{Notify, mpsc};

/// A worker sending `data: 1`, then `data: 2` only once `gate` is notified, then ending.
async fn sse_worker(gate: Arc<Notify>) -> Upstream {
    upstream(move |_req| {
        let gate = Arc::clone(&gate);
        async move {
            let (tx, rx) = mpsc::channel::<Result<Frame<Bytes>, Error>>(4);
            tokio::spawn(async move {
                tx.send(Ok(Frame::data(Bytes::from_static(b"data: 1\n\n")))).await.unwrap();
                gate.notified().await;
                tx.send(Ok(Frame::data(Bytes::from_static(b"data: 2\n\n")))).await.unwrap();
            });
            let events =
                stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|f| (f, rx)) });
            Response::builder()
                .header("content-type", "text/event-stream")
                .body(StreamBody::new(events).boxed())
                .unwrap()
        }
    })
    .await
}

async fn next_data(body: &mut hyper::body::Incoming) -> Option<Bytes> {
    loop {
        match body.frame().await? {
            Ok(frame) => match frame.into_data() {
                Ok(data) if data.is_empty() => continue,
                Ok(data) => return Some(data),
                Err(_) => continue,
            },
            Err(e) => panic!("body error: {e}"),
        }
    }
}

#[tokio::test]
async fn server_sent_events_arrive_one_by_one_while_the_stream_is_open() {
    within(async {
        let gate = Arc::new(Notify::new());
        let worker = sse_worker(Arc::clone(&gate)).await;
        let proxy = start_proxy(&[worker.addr], ProxyConfig::default()).await;
        let mut client = Client::connect(proxy.addr).await;
        let resp = client.get("/events").await;
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(resp.headers()["content-type"], "text/event-stream");
        let mut body = resp.into_body();
        // The worker has not sent the second event yet: the first must already be here.
        assert_eq!(next_data(&mut body).await.unwrap(), "data: 1\n\n");
        assert_eq!(proxy.proxy.in_flight(), 1, "a streaming response counts as in flight");
        gate.notify_one();
        assert_eq!(next_data(&mut body).await.unwrap(), "data: 2\n\n");
        assert!(next_data(&mut body).await.is_none());
        eventually("in-flight back to 0", || proxy.proxy.in_flight() == 0).await;
        // The connection went back to the pool: the next request reuses it.
        gate.notify_one();
        let resp = client.get("/events").await;
        let mut body = resp.into_body();
        assert_eq!(next_data(&mut body).await.unwrap(), "data: 1\n\n");
        assert_eq!(worker.connections(), 1);
    })
    .await;
}

#[tokio::test]
async fn in_flight_drops_when_the_client_abandons_a_stream() {
    within(async {
        let gate = Arc::new(Notify::new());
        let worker = sse_worker(Arc::clone(&gate)).await;
        let proxy = start_proxy(&[worker.addr], ProxyConfig::default()).await;
        let mut client = Client::connect(proxy.addr).await;
        let resp = client.get("/events").await;
        let mut body = resp.into_body();
        assert!(next_data(&mut body).await.is_some());
        assert_eq!(proxy.proxy.in_flight(), 1);
        drop(body);
        drop(client);
        eventually("in-flight back to 0", || proxy.proxy.in_flight() == 0).await;
        // The half-read connection was not pooled: the next request opens a new one.
        let mut client = Client::connect(proxy.addr).await;
        gate.notify_one();
        let resp = client.get("/events").await;
        assert!(next_data(&mut resp.into_body()).await.is_some());
        assert_eq!(worker.connections(), 2);
    })
    .await;
}

/// A worker echoing the request body back as it arrives.
async fn echo_worker() -> Upstream {
    upstream(|req: Request<hyper::body::Incoming>| async move {
        Response::new(req.into_body().map_err(|e| Box::new(e) as Error).boxed())
    })
    .await
}

const CHUNK: usize = 64 * 1024;

fn pattern(chunk: usize) -> Bytes {
    Bytes::from((0..CHUNK).map(|i| ((i * 7 + chunk * 13) % 251) as u8).collect::<Vec<u8>>())
}

async fn upload_echo(total_chunks: usize) {
    let worker = echo_worker().await;
    let proxy = start_proxy(&[worker.addr], ProxyConfig::default()).await;
    let mut client = Client::connect(proxy.addr).await;
    let chunks = stream::iter((0..total_chunks).map(|i| Ok::<_, Error>(Frame::data(pattern(i)))));
    let req =
        Request::post("/upload").header("host", "a").body(StreamBody::new(chunks).boxed()).unwrap();
    let resp = client.send(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let mut body = resp.into_body();
    let mut received = Vec::with_capacity(2 * CHUNK);
    let mut chunk = 0;
    let mut total = 0;
    while let Some(data) = next_data(&mut body).await {
        total += data.len();
        received.extend_from_slice(&data);
        while received.len() >= CHUNK {
            let rest = received.split_off(CHUNK);
            assert!(received == pattern(chunk), "chunk {chunk} differs");
            received = rest;
            chunk += 1;
        }
    }
    assert!(received.is_empty());
    assert_eq!(total, total_chunks * CHUNK);
    eventually("in-flight back to 0", || proxy.proxy.in_flight() == 0).await;
}

#[tokio::test]
async fn a_20_mb_streamed_upload_is_echoed_back_intact() {
    within(upload_echo(320)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_20_mb_streamed_upload_is_echoed_back_intact_multi_thread() {
    within(upload_echo(320)).await;
}

#[tokio::test]
async fn the_body_keeps_streaming_after_the_request_timeout() {
    within(async {
        let worker = upstream(|_req| async move {
            let events = stream::unfold(0, |i| async move {
                if i == 4 {
                    return None;
                }
                tokio::time::sleep(Duration::from_millis(150)).await;
                Some((Ok::<_, Error>(Frame::data(Bytes::from(format!("{i}")))), i + 1))
            });
            Response::new(StreamBody::new(events).boxed())
        })
        .await;
        let mut cfg = ProxyConfig::default();
        cfg.request_timeout = Duration::from_millis(200);
        let proxy = start_proxy(&[worker.addr], cfg).await;
        let mut client = Client::connect(proxy.addr).await;
        let resp = client.get("/").await;
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(text(resp).await, "0123");
    })
    .await;
}

#[tokio::test]
async fn the_request_body_reaches_the_worker_while_the_client_is_still_sending() {
    within(async {
        let worker = echo_worker().await;
        let proxy = start_proxy(&[worker.addr], ProxyConfig::default()).await;
        let mut client = Client::connect(proxy.addr).await;
        let (tx, rx) = mpsc::channel::<Result<Frame<Bytes>, Error>>(1);
        let chunks = stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|f| (f, rx)) });
        let req =
            Request::post("/").header("host", "a").body(StreamBody::new(chunks).boxed()).unwrap();
        tx.send(Ok(Frame::data(Bytes::from_static(b"one")))).await.unwrap();
        let resp = client.send(req).await.unwrap();
        let mut body = resp.into_body();
        // Each chunk makes the round trip before the next one is even produced: nothing
        // on the way waits for the whole body.
        assert_eq!(next_data(&mut body).await.unwrap(), "one");
        tx.send(Ok(Frame::data(Bytes::from_static(b"two")))).await.unwrap();
        assert_eq!(next_data(&mut body).await.unwrap(), "two");
        drop(tx);
        assert!(next_data(&mut body).await.is_none());
        eventually("in-flight back to 0", || proxy.proxy.in_flight() == 0).await;
    })
    .await;
}
