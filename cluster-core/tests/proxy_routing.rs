//! Routing through the proxy: spreading, pooling, errors when workers are missing or down,
//! retries, and h2c from clients.

mod proxy_support;

use std::time::Duration;

use cluster_balancer::Strategy;
use cluster_core::ProxyConfig;
use http::{Request, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use proxy_support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

async fn spread(strategy: Strategy) {
    let (a, b) = (inspecting(1).await, inspecting(2).await);
    let proxy = start_proxy_with(&[a.addr, b.addr], ProxyConfig::default(), strategy).await;
    let mut client = Client::connect(proxy.addr).await;
    let mut counts = [0; 2];
    for _ in 0..10 {
        let resp = client.get("/").await;
        assert_eq!(resp.status(), StatusCode::OK);
        let id: usize = resp.headers()["x-worker"].to_str().unwrap().parse().unwrap();
        counts[id - 1] += 1;
        text(resp).await;
    }
    assert!(counts[0] > 0 && counts[1] > 0, "both workers used: {counts:?}");
    if strategy == Strategy::RoundRobin {
        assert_eq!(counts, [5, 5]);
    }
    eventually("nothing in flight", || proxy.proxy.in_flight() == 0).await;
}

#[tokio::test]
async fn a_burst_of_connections_is_served_on_two_proxy_threads() {
    within(async {
        let (a, b) = (inspecting(1).await, inspecting(2).await);
        let proxy =
            start_proxy_threads(&[a.addr, b.addr], ProxyConfig::default(), Strategy::RoundRobin, 2)
                .await;
        // All connected before any is served: one thread may accept the whole burst and
        // hand half of it to the other.
        let mut clients = Vec::new();
        for _ in 0..32 {
            clients.push(Client::connect(proxy.addr).await);
        }
        let mut tasks = Vec::new();
        for mut client in clients {
            tasks.push(tokio::spawn(async move {
                for _ in 0..5 {
                    let resp = client.get("/").await;
                    assert_eq!(resp.status(), StatusCode::OK);
                    text(resp).await;
                }
            }));
        }
        for task in tasks {
            task.await.unwrap();
        }
        // The proxy stops cleanly, every thread drained.
        proxy.stop.cancel();
        let mut proxy = proxy;
        tokio::time::timeout(Duration::from_secs(5), &mut proxy.served).await.unwrap().unwrap();
    })
    .await;
}

#[tokio::test]
async fn pipelined_requests_cross_from_the_lean_path_to_hypers() {
    within(async {
        let worker = inspecting(1).await;
        let proxy = start_proxy(&[worker.addr], ProxyConfig::default()).await;
        let mut tcp = TcpStream::connect(proxy.addr).await.unwrap();
        // Two plain GETs (the lean path), a POST with a body (hyper from here on), and a
        // GET that closes the connection, all in one write.
        tcp.write_all(
            b"GET /one HTTP/1.1\r\nhost: a\r\n\r\nHEAD /two HTTP/1.1\r\nhost: a\r\n\r\n\
              POST /three HTTP/1.1\r\nhost: a\r\ncontent-length: 3\r\n\r\nabc\
              GET /four HTTP/1.1\r\nhost: a\r\nconnection: close\r\n\r\n",
        )
        .await
        .unwrap();
        let mut all = Vec::new();
        tcp.read_to_end(&mut all).await.unwrap();
        let text = String::from_utf8_lossy(&all);
        assert_eq!(text.matches("HTTP/1.1 200 OK\r\n").count(), 4, "{text}");
        assert_eq!(text.matches("x-worker: 1\r\n").count(), 4, "{text}");
        assert_eq!(text.matches("\r\ndate: ").count(), 4, "{text}");
        // In order; the HEAD's response has the length a GET would have had, and no body.
        let answers: Vec<&str> = text.split("HTTP/1.1 200 OK\r\n").skip(1).collect();
        assert!(answers[0].ends_with("GET /one HTTP/1.1\nhost: a\nx-forwarded-for: 127.0.0.1\nx-forwarded-proto: http\nx-forwarded-host: a\n"));
        assert!(answers[1].contains("content-length: 98\r\n") && answers[1].ends_with("\r\n\r\n"));
        assert!(answers[2].contains("POST /three HTTP/1.1\n"));
        assert!(answers[3].contains("connection: close\r\n") && answers[3].contains("GET /four HTTP/1.1\n"));
    })
    .await;
}

/// A client that pipelines two requests and then closes its sending side gets the first
/// answer; the second request, in flight when the end of its stream is read, is dropped as
/// a client gone away (hyper's default, without half-close), as hyper's server does.
#[tokio::test]
async fn pipelined_requests_then_a_half_close_get_the_first_answer() {
    within(async {
        let worker = inspecting(1).await;
        let proxy = start_proxy(&[worker.addr], ProxyConfig::default()).await;
        let mut tcp = TcpStream::connect(proxy.addr).await.unwrap();
        tcp.write_all(b"GET /a HTTP/1.1\r\nhost: a\r\n\r\nGET /b HTTP/1.1\r\nhost: a\r\n\r\n")
            .await
            .unwrap();
        tcp.shutdown().await.unwrap();
        let mut all = Vec::new();
        tcp.read_to_end(&mut all).await.unwrap();
        let text = String::from_utf8_lossy(&all);
        assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
        assert!(text.contains("GET /a HTTP/1.1\n"), "{text}");
    })
    .await;
}

/// A worker that answers in HTTP/1.0 (its body ends with its connection) reaches an
/// HTTP/1.1 client as HTTP/1.1, chunked, on either server path.
#[tokio::test]
async fn an_http_10_worker_is_answered_as_http_11() {
    within(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            loop {
                let Ok((mut tcp, _)) = listener.accept().await else { return };
                tokio::spawn(async move {
                    let mut buf = [0u8; 4096];
                    let mut got = Vec::new();
                    while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                        let n = tcp.read(&mut buf).await.unwrap();
                        if n == 0 {
                            return;
                        }
                        got.extend_from_slice(&buf[..n]);
                    }
                    let _ = tcp
                        .write_all(b"HTTP/1.0 200 OK\r\ncontent-type: text/plain\r\n\r\nold")
                        .await;
                });
            }
        });
        let proxy = start_proxy(&[addr], ProxyConfig::default()).await;
        for head in [
            "GET / HTTP/1.1\r\nhost: a\r\nconnection: close\r\n\r\n",
            "GET / HTTP/1.1\r\nhost: a\r\n\r\n",
        ] {
            let mut tcp = TcpStream::connect(proxy.addr).await.unwrap();
            tcp.write_all(head.as_bytes()).await.unwrap();
            let mut all = Vec::new();
            let read = tokio::time::timeout(Duration::from_secs(2), async {
                let mut buf = [0u8; 4096];
                loop {
                    let n = tcp.read(&mut buf).await.unwrap();
                    all.extend_from_slice(&buf[..n]);
                    if n == 0 || all.ends_with(b"0\r\n\r\n") {
                        break;
                    }
                }
            });
            read.await.unwrap();
            let text = String::from_utf8_lossy(&all);
            assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{head:?}: {text}");
            assert!(text.contains("transfer-encoding: chunked\r\n"), "{head:?}: {text}");
            assert!(text.ends_with("3\r\nold\r\n0\r\n\r\n"), "{head:?}: {text}");
        }
    })
    .await;
}

#[tokio::test]
async fn round_robin_spreads_requests_over_two_workers() {
    within(spread(Strategy::RoundRobin)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn least_connections_spreads_on_a_multi_thread_runtime() {
    within(async {
        let (a, b) = (inspecting(1).await, inspecting(2).await);
        let proxy =
            start_proxy_with(&[a.addr, b.addr], ProxyConfig::default(), Strategy::LeastConnections)
                .await;
        // Concurrent clients keep requests in flight on both workers at once.
        let mut tasks = Vec::new();
        for _ in 0..4 {
            let addr = proxy.addr;
            tasks.push(tokio::spawn(async move {
                let mut client = Client::connect(addr).await;
                let mut seen = Vec::new();
                for _ in 0..25 {
                    let resp = client.get("/").await;
                    assert_eq!(resp.status(), StatusCode::OK);
                    seen.push(resp.headers()["x-worker"].to_str().unwrap().to_owned());
                    text(resp).await;
                }
                seen
            }));
        }
        let mut all = Vec::new();
        for t in tasks {
            all.extend(t.await.unwrap());
        }
        assert_eq!(all.len(), 100);
        eventually("nothing in flight", || proxy.proxy.in_flight() == 0).await;
        // Connections are pooled: far fewer than one per request.
        assert!(
            a.connections() + b.connections() <= 16,
            "{} + {}",
            a.connections(),
            b.connections()
        );
    })
    .await;
}

#[tokio::test]
async fn sequential_requests_reuse_one_upstream_connection() {
    within(async {
        let a = inspecting(1).await;
        let proxy = start_proxy(&[a.addr], ProxyConfig::default()).await;
        let mut client = Client::connect(proxy.addr).await;
        for _ in 0..50 {
            let resp = client.get("/x").await;
            assert_eq!(resp.status(), StatusCode::OK);
            text(resp).await;
        }
        assert_eq!(a.connections(), 1);
    })
    .await;
}

#[tokio::test]
async fn no_ready_worker_is_503_with_retry_after() {
    within(async {
        let proxy = start_proxy(&[], ProxyConfig::default()).await;
        let mut client = Client::connect(proxy.addr).await;
        let resp = client.get("/").await;
        assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(resp.headers()["retry-after"], "1");
        assert!(text(resp).await.contains("no worker"));
    })
    .await;
}

#[tokio::test]
async fn unreachable_worker_is_502() {
    within(async {
        let proxy = start_proxy(&[closed_port().await], ProxyConfig::default()).await;
        let mut client = Client::connect(proxy.addr).await;
        let resp = client.get("/").await;
        assert_eq!(resp.status(), StatusCode::BAD_GATEWAY);
        assert!(!text(resp).await.is_empty());
        assert_eq!(proxy.proxy.in_flight(), 0);
    })
    .await;
}

#[tokio::test]
async fn requests_are_retried_on_the_live_worker_when_one_is_down() {
    within(async {
        let alive = inspecting(2).await;
        let proxy = start_proxy(&[closed_port().await, alive.addr], ProxyConfig::default()).await;
        let mut client = Client::connect(proxy.addr).await;
        for _ in 0..20 {
            let resp = client.get("/").await;
            assert_eq!(resp.status(), StatusCode::OK);
            text(resp).await;
        }
        // Nothing reached the dead worker, so even a POST with a body is retried.
        for i in 0..20 {
            let req = Request::post("/p").header("host", "a").body(full(format!("n={i}"))).unwrap();
            let resp = client.send(req).await.unwrap();
            assert_eq!(resp.status(), StatusCode::OK);
            assert!(text(resp).await.contains("content-length"));
        }
    })
    .await;
}

/// A raw TCP worker: for each connection, reads one request head, then runs `after_head`
/// on the socket (which is closed when it returns).
async fn raw_worker<F, Fut>(after_head: F) -> (std::net::SocketAddr, tokio::task::JoinHandle<()>)
where
    F: Fn(tokio::net::TcpStream) -> Fut + Copy + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        loop {
            let Ok((mut tcp, _)) = listener.accept().await else { continue };
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tcp.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                after_head(tcp).await;
            });
        }
    });
    (addr, task)
}

/// A worker that reads each request head, then closes the connection without answering.
async fn dropping_worker() -> (std::net::SocketAddr, tokio::task::JoinHandle<()>) {
    raw_worker(|tcp| async move {
        tokio::time::sleep(Duration::from_millis(20)).await;
        drop(tcp);
    })
    .await
}

#[tokio::test]
async fn idempotent_request_is_retried_when_the_worker_fails_before_responding() {
    within(async {
        let (dropper, task) = dropping_worker().await;
        let alive = inspecting(2).await;
        let proxy = start_proxy(&[dropper, alive.addr], ProxyConfig::default()).await;
        let mut client = Client::connect(proxy.addr).await;
        for _ in 0..10 {
            let resp = client.get("/").await;
            assert_eq!(resp.status(), StatusCode::OK);
            assert_eq!(resp.headers()["x-worker"], "2");
            text(resp).await;
        }
        // A POST with a body was sent to the worker, which may have acted on it: no retry.
        let mut statuses = Vec::new();
        for _ in 0..10 {
            let req = Request::post("/p").header("host", "a").body(full("data")).unwrap();
            let resp = client.send(req).await.unwrap();
            statuses.push(resp.status());
            text(resp).await;
        }
        let bad = statuses.iter().filter(|s| **s == StatusCode::BAD_GATEWAY).count();
        let ok = statuses.iter().filter(|s| **s == StatusCode::OK).count();
        assert_eq!((bad, ok), (5, 5), "{statuses:?}");
        task.abort();
    })
    .await;
}

#[tokio::test]
async fn h2c_prior_knowledge_request_is_proxied_as_http11() {
    within(async {
        let a = inspecting(1).await;
        let proxy = start_proxy(&[a.addr], ProxyConfig::default()).await;
        let tcp = TcpStream::connect(proxy.addr).await.unwrap();
        let (mut sender, conn) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tcp))
                .await
                .unwrap();
        tokio::spawn(conn);
        for _ in 0..3 {
            let req = Request::get("http://app.test:8080/h2/path?q=1").body(empty()).unwrap();
            let resp = sender.send_request(req).await.unwrap();
            assert_eq!(resp.status(), StatusCode::OK);
            assert_eq!(resp.version(), http::Version::HTTP_2);
            let body = text(resp).await;
            assert!(body.starts_with("GET /h2/path?q=1 HTTP/1.1\n"), "{body}");
            assert_eq!(seen(&body, "host").as_deref(), Some("app.test:8080"));
            assert_eq!(seen(&body, "x-forwarded-host").as_deref(), Some("app.test:8080"));
        }
    })
    .await;
}

#[tokio::test]
async fn connect_method_is_refused() {
    within(async {
        let a = inspecting(1).await;
        let proxy = start_proxy(&[a.addr], ProxyConfig::default()).await;
        let mut tcp = TcpStream::connect(proxy.addr).await.unwrap();
        tcp.write_all(b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n")
            .await
            .unwrap();
        let mut buf = [0u8; 64];
        let n = tcp.read(&mut buf).await.unwrap();
        assert!(buf[..n].starts_with(b"HTTP/1.1 405"), "{:?}", String::from_utf8_lossy(&buf[..n]));
        assert_eq!(a.connections(), 0);
    })
    .await;
}

/// A worker that answers one request per keep-alive connection, then closes it without
/// saying so (as a worker does when its keep-alive timeout races our reuse).
async fn closing_worker() -> (std::net::SocketAddr, tokio::task::JoinHandle<()>) {
    raw_worker(|mut tcp| async move {
        let _ = tcp.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok").await;
        // Close a moment later, after the proxy may have sent the next request.
        tokio::time::sleep(Duration::from_millis(2)).await;
    })
    .await
}

#[tokio::test]
async fn a_single_worker_closing_kept_alive_connections_causes_no_errors() {
    within(async {
        let (worker, task) = closing_worker().await;
        let proxy = start_proxy(&[worker], ProxyConfig::default()).await;
        let mut client = Client::connect(proxy.addr).await;
        for i in 0..40 {
            let resp = client.get("/").await;
            assert_eq!(resp.status(), StatusCode::OK, "request {i}");
            assert_eq!(text(resp).await, "ok");
            if i % 4 == 0 {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
        task.abort();
    })
    .await;
}
