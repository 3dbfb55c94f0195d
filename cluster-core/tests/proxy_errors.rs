//! Timeouts and bad input: slow workers get 504, slow or malformed clients are cut off
//! without disturbing anyone else.

mod proxy_support;

use std::time::{Duration, Instant};

use cluster_core::ProxyConfig;
use http::{Response, StatusCode};
use proxy_support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Reads what the proxy sends until it closes the connection (bounded by `within`).
async fn read_to_close(tcp: &mut TcpStream) -> String {
    let mut out = Vec::new();
    let _ = tcp.read_to_end(&mut out).await;
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test]
async fn slow_worker_gets_504_after_the_request_timeout() {
    within(async {
        let worker = upstream(|_req| async move {
            tokio::time::sleep(Duration::from_secs(5)).await;
            Response::new(full("late"))
        })
        .await;
        let mut cfg = ProxyConfig::default();
        cfg.request_timeout = Duration::from_millis(300);
        let proxy = start_proxy(&[worker.addr], cfg).await;
        let mut client = Client::connect(proxy.addr).await;
        // The second request on the connection is sent just after a tick of its timer, where
        // a request's own timer is armed (a quarter of the shortest timeout later): it times
        // out just as exactly.
        for _ in 0..2 {
            let started = Instant::now();
            let resp = client.get("/slow").await;
            assert_eq!(resp.status(), StatusCode::GATEWAY_TIMEOUT);
            let waited = started.elapsed();
            assert!(waited >= Duration::from_millis(300), "not before the timeout: {waited:?}");
            assert!(waited < Duration::from_secs(3), "{waited:?}");
            assert!(!text(resp).await.is_empty());
            assert_eq!(proxy.proxy.in_flight(), 0);
        }
    })
    .await;
}

#[tokio::test]
async fn malformed_requests_get_400_and_the_proxy_keeps_serving() {
    within(async {
        let worker = inspecting(1).await;
        let proxy = start_proxy(&[worker.addr], ProxyConfig::default()).await;
        let bad: [&[u8]; 6] = [
            b"GARBAGE\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: a\r\nBad Header Line\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello",
            b"GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n",
            // RFC 9112 §3.2: exactly one Host in HTTP/1.1.
            b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\nConnection: close\r\n\r\n",
            b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n",
        ];
        for request in bad {
            let mut tcp = TcpStream::connect(proxy.addr).await.unwrap();
            tcp.write_all(request).await.unwrap();
            let answer = read_to_close(&mut tcp).await;
            assert!(
                answer.starts_with("HTTP/1.1 400"),
                "{:?} -> {answer:?}",
                String::from_utf8_lossy(request)
            );
        }
        assert_eq!(worker.connections(), 0, "nothing malformed reached the worker");
        let mut client = Client::connect(proxy.addr).await;
        assert_eq!(client.get("/").await.status(), StatusCode::OK);
    })
    .await;
}

#[tokio::test]
async fn slow_request_headers_are_cut_off() {
    within(async {
        let worker = inspecting(1).await;
        let mut cfg = ProxyConfig::default();
        cfg.header_read_timeout = Duration::from_millis(300);
        let proxy = start_proxy(&[worker.addr], cfg).await;
        let mut tcp = TcpStream::connect(proxy.addr).await.unwrap();
        let started = Instant::now();
        tcp.write_all(b"GET / HTTP/1.1\r\nHost: a\r\n").await.unwrap();
        let answer = read_to_close(&mut tcp).await;
        assert!(started.elapsed() < Duration::from_secs(3), "{:?}", started.elapsed());
        assert!(answer.is_empty() || answer.starts_with("HTTP/1.1 408"), "{answer:?}");
        assert_eq!(worker.connections(), 0);
    })
    .await;
}

#[tokio::test]
async fn a_silent_connection_is_closed_after_the_keep_alive_timeout() {
    within(async {
        let worker = inspecting(1).await;
        let mut cfg = ProxyConfig::default();
        cfg.keep_alive_timeout = Duration::from_millis(300);
        let proxy = start_proxy(&[worker.addr], cfg).await;
        let mut tcp = TcpStream::connect(proxy.addr).await.unwrap();
        let started = Instant::now();
        assert_eq!(read_to_close(&mut tcp).await, "");
        let waited = started.elapsed();
        assert!(
            waited >= Duration::from_millis(250) && waited < Duration::from_secs(2),
            "{waited:?}"
        );
    })
    .await;
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed() {
    within(async {
        let worker = inspecting(1).await;
        let mut cfg = ProxyConfig::default();
        cfg.keep_alive_timeout = Duration::from_millis(300);
        let proxy = start_proxy(&[worker.addr], cfg).await;
        let mut client = Client::connect(proxy.addr).await;
        for _ in 0..2 {
            let resp = client.get("/").await;
            assert_eq!(resp.status(), StatusCode::OK);
            text(resp).await;
        }
        let started = Instant::now();
        eventually("client connection closed by the proxy", || client.conn.is_finished()).await;
        assert!(started.elapsed() >= Duration::from_millis(250), "{:?}", started.elapsed());
    })
    .await;
}

#[tokio::test]
async fn requests_waiting_on_an_abandoned_worker_move_to_another() {
    within(async {
        // Worker 1 never answers (a frozen process); worker 2 answers at once.
        let frozen = upstream(|_req| async move {
            tokio::time::sleep(Duration::from_secs(60)).await;
            Response::new(full("never"))
        })
        .await;
        let live = upstream(|_req| async move { Response::new(full("live")) }).await;
        let proxy = start_proxy(&[frozen.addr, live.addr], ProxyConfig::default()).await;
        let addr = proxy.addr;
        // Round-robin: GET -> worker 1 (waits), GET -> worker 2, POST -> worker 1 (waits).
        let get =
            tokio::spawn(async move { text(Client::connect(addr).await.get("/").await).await });
        eventually("the GET waits on worker 1", || proxy.proxy.in_flight() == 1).await;
        assert_eq!(text(Client::connect(addr).await.get("/").await).await, "live");
        let post = tokio::spawn(async move {
            let req = http::Request::post("/").header("host", "t").body(full("x")).unwrap();
            Client::connect(addr).await.send(req).await.map(|r| r.status())
        });
        eventually("the POST waits on worker 1", || proxy.proxy.in_flight() == 2).await;

        let started = Instant::now();
        let worker1 = proxy.router.snapshot().backends()[0].clone();
        assert_eq!(worker1.id(), 1);
        proxy.router.remove(1);
        worker1.abandon();
        // The GET may be repeated: it moves to worker 2 at once.
        assert_eq!(get.await.unwrap(), "live");
        assert!(started.elapsed() < Duration::from_secs(1), "{:?}", started.elapsed());
        // The POST may not be repeated: it fails at once with 502 instead of waiting for the
        // request timeout (504).
        assert_eq!(post.await.unwrap().unwrap(), StatusCode::BAD_GATEWAY);
        assert!(started.elapsed() < Duration::from_secs(1), "{:?}", started.elapsed());
        eventually("nothing in flight", || proxy.proxy.in_flight() == 0).await;

        // A worker given up and then resumed opens connections again.
        let worker2 = proxy.router.snapshot().backends()[0].clone();
        assert_eq!(worker2.id(), 2);
        proxy.router.remove(2);
        worker2.abandon();
        worker2.resume();
        proxy.router.add(worker2);
        assert_eq!(text(Client::connect(addr).await.get("/").await).await, "live");
    })
    .await;
}

/// A worker that closes every keep-alive connection after its first response, at the moment
/// the next request arrives (a keep-alive timeout racing the request): each pooled
/// connection fails before any response byte. The proxy goes on to the next connection,
/// then a new one, on the same worker: the client never sees a 502.
#[tokio::test]
async fn pooled_connections_the_worker_closed_are_passed_over() {
    within(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let accepted = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let count = std::sync::Arc::clone(&accepted);
        let worker = tokio::spawn(async move {
            loop {
                let Ok((mut tcp, _)) = listener.accept().await else { return };
                count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 4096];
                    let mut got = Vec::new();
                    while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                        match tcp.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => got.extend_from_slice(&buf[..n]),
                        }
                    }
                    // Two requests in flight at once, so that two connections get pooled.
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    let ok = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
                    if tcp.write_all(ok).await.is_err() {
                        return;
                    }
                    // The next request: closed without an answer.
                    let _ = tcp.read(&mut buf).await;
                });
            }
        });
        let proxy = start_proxy(&[addr], ProxyConfig::default()).await;
        let (mut a, mut b) = (Client::connect(proxy.addr).await, Client::connect(proxy.addr).await);
        let (ra, rb) = tokio::join!(a.get("/"), b.get("/"));
        assert_eq!((ra.status(), rb.status()), (StatusCode::OK, StatusCode::OK));
        assert_eq!((text(ra).await, text(rb).await), ("ok".to_owned(), "ok".to_owned()));
        assert_eq!(accepted.load(std::sync::atomic::Ordering::SeqCst), 2);
        // Both pooled connections are stale; the request ends on a third, new one.
        let resp = a.get("/").await;
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(text(resp).await, "ok");
        assert_eq!(accepted.load(std::sync::atomic::Ordering::SeqCst), 3);
        worker.abort();
    })
    .await;
}
