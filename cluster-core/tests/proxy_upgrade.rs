//! Upgraded connections (WebSocket-style) are tunnelled through the proxy.

mod proxy_support;

use cluster_core::ProxyConfig;
use http::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use proxy_support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A worker that accepts `Upgrade: echo` and then echoes bytes; other requests get 200.
async fn upgrade_worker() -> Upstream {
    upstream(|mut req: Request<hyper::body::Incoming>| async move {
        let asked = req.headers().get("upgrade").is_some_and(|v| v == "echo")
            && req.headers().get("connection").is_some_and(|v| v == "upgrade");
        if !asked {
            return Response::new(full("plain"));
        }
        let on = hyper::upgrade::on(&mut req);
        tokio::spawn(async move {
            let mut io = TokioIo::new(on.await.unwrap());
            let mut buf = [0u8; 1024];
            loop {
                match io.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => {
                        if io.write_all(&buf[..n]).await.is_err() {
                            return;
                        }
                    }
                }
            }
        });
        Response::builder()
            .status(StatusCode::SWITCHING_PROTOCOLS)
            .header("upgrade", "echo")
            .header("connection", "upgrade")
            .body(empty())
            .unwrap()
    })
    .await
}

fn upgrade_request() -> Request<TestBody> {
    Request::get("/ws")
        .header("host", "app.test")
        .header("connection", "keep-alive, Upgrade")
        .header("upgrade", "echo")
        .body(empty())
        .unwrap()
}

/// An upgrade worker behind a proxy, and a tunnel opened through it (keep the worker alive).
async fn open_tunnel() -> (Upstream, TestProxy, TokioIo<hyper::upgrade::Upgraded>) {
    let worker = upgrade_worker().await;
    let proxy = start_proxy(&[worker.addr], ProxyConfig::default()).await;
    let mut client = Client::connect(proxy.addr).await;
    let resp = client.send(upgrade_request()).await.unwrap();
    let io = TokioIo::new(hyper::upgrade::on(resp).await.unwrap());
    (worker, proxy, io)
}

#[tokio::test]
async fn upgraded_connection_is_tunnelled_and_released() {
    within(async {
        let worker = upgrade_worker().await;
        let proxy = start_proxy(&[worker.addr], ProxyConfig::default()).await;
        let mut client = Client::connect(proxy.addr).await;
        let resp = client.send(upgrade_request()).await.unwrap();
        assert_eq!(resp.status(), StatusCode::SWITCHING_PROTOCOLS);
        assert_eq!(resp.headers()["upgrade"], "echo");
        assert_eq!(resp.headers()["connection"], "upgrade");
        let mut io = TokioIo::new(hyper::upgrade::on(resp).await.unwrap());
        for msg in [&b"hello"[..], b"through the proxy", &[0u8, 255, 1, 254]] {
            io.write_all(msg).await.unwrap();
            let mut back = vec![0u8; msg.len()];
            io.read_exact(&mut back).await.unwrap();
            assert_eq!(back, msg);
        }
        assert_eq!(proxy.proxy.open_tunnels(), 1);
        assert_eq!(proxy.proxy.in_flight(), 1, "an open tunnel counts as in flight");
        drop(io);
        eventually("tunnel closed", || proxy.proxy.open_tunnels() == 0).await;
        eventually("in-flight back to 0", || proxy.proxy.in_flight() == 0).await;
    })
    .await;
}

#[tokio::test]
async fn upgrade_request_answered_without_101_is_an_ordinary_response() {
    within(async {
        let worker = upstream(|_req| async move { Response::new(full("no upgrade here")) }).await;
        let proxy = start_proxy(&[worker.addr], ProxyConfig::default()).await;
        let mut client = Client::connect(proxy.addr).await;
        let resp = client.send(upgrade_request()).await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(text(resp).await, "no upgrade here");
        // The client connection is still usable for ordinary requests.
        assert_eq!(text(client.get("/").await).await, "no upgrade here");
        assert_eq!(proxy.proxy.open_tunnels(), 0);
    })
    .await;
}

#[tokio::test]
async fn stopping_waits_for_open_tunnels() {
    within(async {
        let (_worker, proxy, mut io) = open_tunnel().await;
        proxy.stop.cancel();
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        assert!(!proxy.served.is_finished(), "serve returned while a tunnel was open");
        io.write_all(b"still here").await.unwrap();
        let mut back = [0u8; 10];
        io.read_exact(&mut back).await.unwrap();
        assert_eq!(&back, b"still here");
        drop(io);
        eventually("serve returned", || proxy.served.is_finished()).await;
    })
    .await;
}

#[tokio::test]
async fn dropping_serve_ends_open_tunnels() {
    within(async {
        let (_worker, proxy, mut io) = open_tunnel().await;
        eventually("tunnel open", || proxy.proxy.open_tunnels() == 1).await;
        proxy.stop.cancel();
        // The caller's drain timeout elapsed: it drops the serve future.
        proxy.served.abort();
        let mut buf = [0u8; 8];
        let n = io.read(&mut buf).await.unwrap_or(0);
        assert_eq!(n, 0, "the tunnel must be closed");
        eventually("tunnel closed", || proxy.proxy.open_tunnels() == 0).await;
        eventually("in-flight back to 0", || proxy.proxy.in_flight() == 0).await;
    })
    .await;
}
