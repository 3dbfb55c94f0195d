//! The access log through the proxy: one line per request once its body has ended, with
//! how it ended (complete, aborted by the client, failed by the worker), and nothing on the
//! request path when it is off.

mod proxy_support;

use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;
use cluster_core::config::{AccessLogFormat, AccessLogPath, ClusterSpec};
use cluster_core::{AccessLog, ProxyConfig};
use http::{Response, StatusCode};
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use proxy_support::*;
use tokio::sync::mpsc;

/// A JSON access log in a scratch directory.
fn json_log(dir: &Path) -> (AccessLog, PathBuf) {
    let path = dir.join("logs/access.log");
    let mut spec = ClusterSpec::default().access_log;
    spec.format = AccessLogFormat::Json;
    spec.path = AccessLogPath::File(path.clone());
    (AccessLog::start(&spec).unwrap(), path)
}

fn lines(path: &Path) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"))).collect()
}

/// Waits (bounded) for `n` lines and returns them.
async fn wait_lines(path: &Path, n: usize) -> Vec<serde_json::Value> {
    eventually(&format!("{n} access log lines"), || lines(path).len() >= n).await;
    lines(path)
}

fn with_log(log: &AccessLog) -> ProxyConfig {
    let mut cfg = ProxyConfig::default();
    cfg.access_log = Some(log.clone());
    cfg
}

/// A worker whose response body is fed, frame by frame, through the returned sender; an
/// `Err` frame makes the body fail (the worker's connection is cut mid-body).
async fn fed_worker() -> (Upstream, mpsc::Receiver<mpsc::Sender<Result<Bytes, ()>>>) {
    let (bodies_tx, bodies) = mpsc::channel(4);
    let worker = upstream(move |_req| {
        let bodies_tx = bodies_tx.clone();
        async move {
            let (tx, rx) = mpsc::channel::<Result<Bytes, ()>>(4);
            let _ = bodies_tx.send(tx).await;
            let stream = futures_util::stream::unfold(rx, |mut rx| async move {
                let item = rx.recv().await?;
                Some((item.map(Frame::data).map_err(|()| Error::from("cut")), rx))
            });
            Response::new(StreamBody::new(stream).boxed())
        }
    })
    .await;
    (worker, bodies)
}

#[tokio::test]
async fn one_line_per_request_with_its_fields() {
    within(async {
        let dir = tempfile::tempdir().unwrap();
        let (log, path) = json_log(dir.path());
        let worker = inspecting(1).await;
        let proxy = start_proxy(&[worker.addr], with_log(&log)).await;
        let mut client = Client::connect(proxy.addr).await;
        let req = http::Request::get("/a?x=1")
            .header("host", "app.test")
            .header("user-agent", "test \"agent\"")
            .header("referer", "http://from.test/")
            .body(empty())
            .unwrap();
        let resp = client.send(req).await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        let body = text(resp).await;
        proxy.router.remove(1);
        assert_eq!(client.get("/b").await.status(), StatusCode::SERVICE_UNAVAILABLE);

        let got = wait_lines(&path, 2).await;
        assert_eq!(got.len(), 2, "{got:#?}");
        let (ok, unavailable) = (&got[0], &got[1]);
        assert_eq!(ok["method"], "GET");
        assert_eq!((ok["path"].as_str(), ok["query"].as_str()), (Some("/a"), Some("x=1")));
        assert_eq!(ok["status"], 200);
        assert_eq!(ok["bytes"], body.len());
        assert_eq!(ok["slot"], 0, "the worker's slot");
        assert_eq!(ok["pid"], serde_json::Value::Null, "a backend built without its pid");
        assert_eq!(ok["client"], "127.0.0.1");
        assert_eq!(ok["userAgent"], "test \"agent\"");
        assert_eq!(ok["referer"], "http://from.test/");
        assert_eq!(ok["end"], "complete");
        assert!(ok["durationMs"].as_f64().unwrap() >= 0.0);
        assert_eq!(unavailable["status"], 503);
        assert_eq!(unavailable["slot"], serde_json::Value::Null, "answered by the proxy");
        assert_eq!(unavailable["end"], "complete");
        assert_eq!(log.counts().written, 2);
        assert_eq!(log.counts().dropped, 0);
    })
    .await;
}

#[tokio::test]
async fn a_streaming_response_is_logged_after_its_last_byte() {
    within(async {
        let dir = tempfile::tempdir().unwrap();
        let (log, path) = json_log(dir.path());
        let (worker, mut bodies) = fed_worker().await;
        let proxy = start_proxy(&[worker.addr], with_log(&log)).await;
        let mut client = Client::connect(proxy.addr).await;
        let resp = client.get("/stream").await;
        let feed = bodies.recv().await.unwrap();
        feed.send(Ok(Bytes::from_static(b"first "))).await.unwrap();
        let mut body = resp.into_body();
        let frame = body.frame().await.unwrap().unwrap();
        assert_eq!(frame.into_data().unwrap(), "first ");
        // Head and first chunk sent: no line yet.
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(lines(&path).is_empty(), "logged before the body ended");
        feed.send(Ok(Bytes::from_static(b"last"))).await.unwrap();
        drop(feed);
        let rest = body.collect().await.unwrap().to_bytes();
        assert_eq!(rest, "last");
        let got = wait_lines(&path, 1).await;
        assert_eq!(
            (got[0]["bytes"].as_u64(), got[0]["end"].as_str()),
            (Some(10), Some("complete"))
        );
        assert!(got[0]["durationMs"].as_f64().unwrap() >= 200.0, "{}", got[0]);
    })
    .await;
}

#[tokio::test]
async fn aborted_and_failed_bodies_say_so() {
    within(async {
        let dir = tempfile::tempdir().unwrap();
        let (log, path) = json_log(dir.path());
        let (worker, mut bodies) = fed_worker().await;
        let proxy = start_proxy(&[worker.addr], with_log(&log)).await;

        // The client goes away mid-body.
        let mut client = Client::connect(proxy.addr).await;
        let resp = client.get("/abort").await;
        let feed = bodies.recv().await.unwrap();
        feed.send(Ok(Bytes::from_static(b"12345"))).await.unwrap();
        let mut body = resp.into_body();
        body.frame().await.unwrap().unwrap();
        drop(body);
        client.conn.abort();
        drop(client);
        let got = wait_lines(&path, 1).await;
        assert_eq!(got[0]["path"], "/abort");
        assert_eq!(
            (got[0]["status"].as_u64(), got[0]["end"].as_str()),
            (Some(200), Some("aborted"))
        );
        assert_eq!(got[0]["bytes"], 5);
        drop(feed);

        // The worker's body fails mid-way.
        let mut client = Client::connect(proxy.addr).await;
        let resp = client.get("/fail").await;
        let feed = bodies.recv().await.unwrap();
        feed.send(Ok(Bytes::from_static(b"abc"))).await.unwrap();
        let mut body = resp.into_body();
        assert_eq!(body.frame().await.unwrap().unwrap().into_data().unwrap(), "abc");
        feed.send(Err(())).await.unwrap();
        assert!(body.collect().await.is_err(), "the client sees the cut");
        let got = wait_lines(&path, 2).await;
        assert_eq!(got[1]["path"], "/fail");
        assert_eq!((got[1]["end"].as_str(), got[1]["bytes"].as_u64()), (Some("failed"), Some(3)));

        // The client goes away before the response head: nginx's 499.
        let slow = upstream(|_req| async {
            tokio::time::sleep(Duration::from_secs(20)).await;
            Response::new(empty())
        })
        .await;
        let proxy = start_proxy(&[slow.addr], with_log(&log)).await;
        let mut client = Client::connect(proxy.addr).await;
        let pending = tokio::spawn(async move { client.get("/gone").await });
        eventually("the request at the worker", || slow.connections() == 1).await;
        pending.abort();
        let got = wait_lines(&path, 3).await;
        assert_eq!(got[2]["path"], "/gone");
        assert_eq!(
            (got[2]["status"].as_u64(), got[2]["end"].as_str()),
            (Some(499), Some("aborted"))
        );
        assert_eq!(got[2]["slot"], serde_json::Value::Null, "no response from any worker");
    })
    .await;
}

#[tokio::test]
async fn a_timeout_names_the_worker_that_was_too_slow() {
    within(async {
        let dir = tempfile::tempdir().unwrap();
        let (log, path) = json_log(dir.path());
        let slow = upstream(|_req| async {
            tokio::time::sleep(Duration::from_secs(20)).await;
            Response::new(empty())
        })
        .await;
        let mut cfg = with_log(&log);
        cfg.request_timeout = Duration::from_millis(200);
        let proxy = start_proxy(&[slow.addr], cfg).await;
        let resp = Client::connect(proxy.addr).await.get("/slow").await;
        assert_eq!(resp.status(), StatusCode::GATEWAY_TIMEOUT);
        text(resp).await;
        let got = wait_lines(&path, 1).await;
        assert_eq!((got[0]["status"].as_u64(), got[0]["slot"].as_u64()), (Some(504), Some(0)));
        assert_eq!(got[0]["end"], "complete");
        assert!(got[0]["bytes"].as_u64().unwrap() > 0, "the proxy's error page: {}", got[0]);
    })
    .await;
}

#[tokio::test]
async fn the_file_is_reopened_after_a_rotation() {
    within(async {
        let dir = tempfile::tempdir().unwrap();
        let (log, path) = json_log(dir.path());
        let worker = inspecting(1).await;
        let proxy = start_proxy(&[worker.addr], with_log(&log)).await;
        let mut client = Client::connect(proxy.addr).await;
        text(client.get("/before").await).await;
        wait_lines(&path, 1).await;
        let rotated = dir.path().join("logs/access.log.1");
        std::fs::rename(&path, &rotated).unwrap();
        log.reopen();
        eventually("a new file", || path.exists()).await;
        text(client.get("/after").await).await;
        let got = wait_lines(&path, 1).await;
        assert_eq!(got.len(), 1);
        assert_eq!(got[0]["path"], "/after");
        assert_eq!(lines(&rotated).len(), 1, "the old file keeps its line only");
        assert!(log.close(Duration::from_secs(5)));
    })
    .await;
}
