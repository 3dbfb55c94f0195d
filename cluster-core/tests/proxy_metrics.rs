//! The proxy measures each worker: requests, errors, bytes and latency, with no help from it.

mod proxy_support;

use std::time::Duration;

use cluster_core::ProxyConfig;
use http::{Response, StatusCode};
use proxy_support::*;

#[tokio::test]
async fn requests_errors_bytes_and_latency_are_counted_per_worker() {
    let worker = upstream(|req: http::Request<hyper::body::Incoming>| async move {
        match req.uri().path() {
            "/fail" => Response::builder().status(500).body(full("boom")).unwrap(),
            "/slow" => {
                tokio::time::sleep(Duration::from_millis(30)).await;
                Response::new(full("slow"))
            }
            _ => Response::new(full("0123456789")),
        }
    })
    .await;
    let proxy = start_proxy(&[worker.addr], ProxyConfig::default()).await;
    let mut client = Client::connect(proxy.addr).await;
    for _ in 0..8 {
        assert_eq!(text(client.get("/").await).await, "0123456789");
    }
    assert_eq!(client.get("/fail").await.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(text(client.get("/slow").await).await, "slow");
    let upload = http::Request::post("/").header("host", "t").body(full(vec![7u8; 5000])).unwrap();
    assert_eq!(text(client.send(upload).await.unwrap()).await, "0123456789");

    let backend = proxy.router.snapshot().backends()[0].clone();
    eventually("bytes counted", || backend.metrics().snapshot().bytes_out == 9 * 10 + 4 + 4).await;
    let m = backend.metrics().snapshot();
    assert_eq!((m.requests, m.errors, m.bytes_in), (11, 1, 5000));
    let p99 = m.latency_p99_ms.expect("latency recorded");
    assert!(p99 >= 28.0, "the slow request is the p99: {p99} ms");
    assert!(m.latency_p50_ms.unwrap() < 28.0);
}

#[tokio::test]
async fn an_unreachable_worker_counts_errors() {
    let dead = closed_port().await;
    let proxy = start_proxy(&[dead], ProxyConfig::default()).await;
    let mut client = Client::connect(proxy.addr).await;
    assert_eq!(client.get("/").await.status(), StatusCode::BAD_GATEWAY);
    let m = proxy.router.snapshot().backends()[0].metrics().snapshot();
    assert_eq!((m.requests, m.errors), (1, 1));
    assert_eq!(m.latency_p50_ms, None);
}
