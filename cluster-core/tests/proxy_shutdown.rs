//! Stopping the proxy: in-flight requests finish, then `serve` returns; dropping `serve`
//! cuts everything at once.

mod proxy_support;

use std::time::Duration;

use cluster_core::ProxyConfig;
use http::{Response, StatusCode};
use proxy_support::*;
use tokio::net::TcpStream;

async fn slow_worker(delay: Duration) -> Upstream {
    upstream(move |_req| async move {
        tokio::time::sleep(delay).await;
        Response::new(full("done"))
    })
    .await
}

async fn graceful_stop() {
    let worker = slow_worker(Duration::from_millis(500)).await;
    let proxy = start_proxy(&[worker.addr], ProxyConfig::default()).await;
    let mut client = Client::connect(proxy.addr).await;
    // An idle keep-alive connection must not hold the stop up.
    let idle = Client::connect(proxy.addr).await;
    let pending = tokio::spawn(async move {
        let resp = client.get("/slow").await;
        let status = resp.status();
        let body = text(resp).await;
        (status, body, client)
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(proxy.proxy.in_flight(), 1);
    proxy.stop.cancel();
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(!proxy.served.is_finished(), "serve returned with a request in flight");
    assert!(TcpStream::connect(proxy.addr).await.is_err(), "still accepting after stop");
    let (status, body, client) = pending.await.unwrap();
    assert_eq!((status, body.as_str()), (StatusCode::OK, "done"));
    eventually("serve returned", || proxy.served.is_finished()).await;
    eventually("kept-alive connections closed", || {
        client.conn.is_finished() && idle.conn.is_finished()
    })
    .await;
    assert_eq!(proxy.proxy.in_flight(), 0);
}

#[tokio::test]
async fn stop_lets_in_flight_requests_finish_then_returns() {
    within(graceful_stop()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_lets_in_flight_requests_finish_then_returns_multi_thread() {
    within(graceful_stop()).await;
}

#[tokio::test]
async fn stop_with_nothing_open_returns_at_once() {
    within(async {
        let proxy = start_proxy(&[], ProxyConfig::default()).await;
        proxy.stop.cancel();
        eventually("serve returned", || proxy.served.is_finished()).await;
    })
    .await;
}

#[tokio::test]
async fn dropping_serve_closes_open_connections() {
    within(async {
        let worker = slow_worker(Duration::from_secs(10)).await;
        let proxy = start_proxy(&[worker.addr], ProxyConfig::default()).await;
        let mut client = Client::connect(proxy.addr).await;
        let pending =
            tokio::spawn(async move { client.send(get("/slow")).await.map(|r| r.status()) });
        tokio::time::sleep(Duration::from_millis(100)).await;
        proxy.stop.cancel();
        tokio::time::sleep(Duration::from_millis(50)).await;
        // The caller's drain timeout elapsed: it drops the serve future.
        proxy.served.abort();
        let res = pending.await.unwrap();
        assert!(res.is_err(), "the cut-off request must fail, got {res:?}");
        eventually("in-flight back to 0", || proxy.proxy.in_flight() == 0).await;
    })
    .await;
}

/// A request whose head is still arriving when the proxy stops is answered (with
/// `Connection: close`), then the connection closes: on the lean path (a GET) and after it
/// was handed to hyper (a POST), which must not take the stop for an idle connection's.
#[tokio::test]
async fn a_head_still_arriving_at_stop_is_answered_then_closed() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    within(async {
        let worker = inspecting(1).await;
        for (start, rest) in [
            ("GET /lean HTTP/1.1\r\nhost: a\r\n", "\r\n"),
            ("POST /hyper HTTP/1.1\r\nhost: a\r\ncontent-length: 2\r\n", "\r\nab"),
        ] {
            let proxy = start_proxy(&[worker.addr], ProxyConfig::default()).await;
            let mut tcp = TcpStream::connect(proxy.addr).await.unwrap();
            tcp.write_all(start.as_bytes()).await.unwrap();
            tokio::time::sleep(Duration::from_millis(100)).await;
            proxy.stop.cancel();
            tokio::time::sleep(Duration::from_millis(100)).await;
            tcp.write_all(rest.as_bytes()).await.unwrap();
            let mut answer = Vec::new();
            tcp.read_to_end(&mut answer).await.unwrap();
            let answer = String::from_utf8_lossy(&answer);
            assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{start:?}: {answer}");
            assert!(answer.contains("\r\nconnection: close\r\n"), "{start:?}: {answer}");
            eventually("serve returned", || proxy.served.is_finished()).await;
        }
    })
    .await;
}
