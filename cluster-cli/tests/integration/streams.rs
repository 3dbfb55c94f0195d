//! Streaming through the proxy: SSE, WebSocket, large bodies.

use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use http_body_util::BodyExt;
use tokio_tungstenite::tungstenite::Message;

use crate::util::{ClusterCmd, Conn, Worker, hello_bin};

#[tokio::test]
async fn sse_events_arrive_one_by_one() {
    for worker in Worker::ALL {
        sse_events_arrive_one_by_one_from(worker).await;
    }
}

async fn sse_events_arrive_one_by_one_from(worker: Worker) {
    let cluster = ClusterCmd::workers(1, worker).spawn(1);
    let mut conn = Conn::open(cluster.addr).await;
    let resp = conn.request("GET", "/stream?n=3&interval=400", Bytes::new()).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "text/event-stream", "{worker:?}");
    let mut body = resp.into_body();
    let start = Instant::now();
    let mut arrivals = Vec::new();
    let mut text = String::new();
    while let Some(frame) = body.frame().await {
        if let Ok(data) = frame.expect("frame").into_data() {
            arrivals.push(start.elapsed());
            text.push_str(&String::from_utf8_lossy(&data));
        }
    }
    assert_eq!(text.matches("data: event").count(), 3, "{worker:?} stream: {text:?}");
    assert!(arrivals.len() >= 3, "{worker:?}: events merged into {} frames", arrivals.len());
    // The first event arrives while the stream is still open: long before the last one.
    assert!(
        arrivals[arrivals.len() - 1] - arrivals[0] >= Duration::from_millis(600),
        "{arrivals:?}"
    );
}

#[tokio::test]
async fn websocket_echo_through_the_proxy() {
    let hello = hello_bin();
    let cluster = ClusterCmd::start(&["--workers", "2", "--", hello.to_str().unwrap()]).spawn(2);
    let tcp = tokio::net::TcpStream::connect(cluster.addr).await.unwrap();
    let url = format!("ws://{}/ws", cluster.addr);
    let (mut ws, resp) = tokio_tungstenite::client_async(url, tcp).await.expect("handshake");
    assert_eq!(resp.status(), 101);
    for i in 0..5 {
        ws.send(Message::text(format!("ping {i}"))).await.unwrap();
        let reply = tokio::time::timeout(Duration::from_secs(5), ws.next()).await.unwrap();
        assert_eq!(reply.unwrap().unwrap(), Message::text(format!("ping {i}")));
    }
    ws.close(None).await.unwrap();
}

#[tokio::test]
async fn a_100_mb_upload_streams_through_with_bounded_memory() {
    const TOTAL: usize = 100 * 1024 * 1024;
    const CHUNK: usize = 64 * 1024;
    let hello = hello_bin();
    let cluster = ClusterCmd::start(&["--workers", "1", "--", hello.to_str().unwrap()]).spawn(1);
    let tcp = tokio::net::TcpStream::connect(cluster.addr).await.unwrap();
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tcp)).await.unwrap();
    tokio::spawn(conn);
    let (tx, rx) =
        tokio::sync::mpsc::channel::<Result<hyper::body::Frame<Bytes>, std::io::Error>>(4);
    tokio::spawn(async move {
        let chunk = Bytes::from(vec![b'x'; CHUNK]);
        for _ in 0..TOTAL / CHUNK {
            if tx.send(Ok(hyper::body::Frame::data(chunk.clone()))).await.is_err() {
                return;
            }
        }
    });
    let body = http_body_util::StreamBody::new(tokio_stream_from(rx));
    let req = hyper::Request::post("/echo")
        .header("host", "upload.test")
        .header("content-type", "application/octet-stream")
        .body(body)
        .unwrap();
    let resp = sender.send_request(req).await.expect("response");
    assert_eq!(resp.status(), 200);
    let mut received = 0usize;
    let mut body = resp.into_body();
    while let Some(frame) = body.frame().await {
        if let Ok(data) = frame.expect("frame").into_data() {
            assert!(data.iter().all(|&b| b == b'x'));
            received += data.len();
        }
    }
    assert_eq!(received, TOTAL);
    let peak = cluster.peak_rss_kib();
    assert!(peak > 0 && peak < 64 * 1024, "primary peak RSS {peak} KiB");
}

fn tokio_stream_from<T: Send + 'static>(
    mut rx: tokio::sync::mpsc::Receiver<T>,
) -> impl futures_util::Stream<Item = T> {
    futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

#[tokio::test]
async fn small_echo_keeps_the_body_intact() {
    let hello = hello_bin();
    let cluster = ClusterCmd::start(&["--workers", "1", "--", hello.to_str().unwrap()]).spawn(1);
    let mut conn = Conn::open(cluster.addr).await;
    let (status, body) = conn.send("POST", "/echo", Bytes::from_static(b"hello, body")).await;
    assert_eq!((status, &body[..]), (200, &b"hello, body"[..]));
}
