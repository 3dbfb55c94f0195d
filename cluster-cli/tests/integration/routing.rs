//! Requests reach every worker; bad requests are answered without harm.

use std::collections::HashSet;
use std::io::{Read, Write};
use std::time::Duration;

use bytes::Bytes;

use crate::util::{ClusterCmd, Conn, Worker, get, hello_bin, node_server};

async fn distinct_pids(addr: std::net::SocketAddr, requests: usize) -> HashSet<String> {
    // One keep-alive connection: balancing is per request, not per connection.
    let mut conn = Conn::open(addr).await;
    let mut pids = HashSet::new();
    for _ in 0..requests {
        let (status, body) = conn.send("GET", "/pid", Bytes::new()).await;
        assert_eq!(status, 200);
        pids.insert(String::from_utf8_lossy(&body).trim().to_owned());
    }
    pids
}

#[tokio::test]
async fn requests_spread_over_all_rust_workers() {
    let hello = hello_bin();
    let cluster = ClusterCmd::start(&["--workers", "3", "--", hello.to_str().unwrap()]).spawn(3);
    let pids = distinct_pids(cluster.addr, 30).await;
    let mut expected: HashSet<String> = cluster.worker_pids().iter().map(u32::to_string).collect();
    assert_eq!(expected.len(), 3);
    expected.retain(|p| pids.contains(p));
    assert_eq!(pids.len(), 3, "pids seen: {pids:?}");
    assert_eq!(expected.len(), 3, "answers came from the workers the cluster reported");
}

#[tokio::test]
async fn requests_spread_over_node_workers_and_host_is_preserved() {
    let server = node_server();
    let cluster =
        ClusterCmd::start(&["--workers", "2", "--", "node", server.to_str().unwrap()]).spawn(2);
    assert_eq!(distinct_pids(cluster.addr, 20).await.len(), 2);
    let mut conn = Conn::open(cluster.addr).await;
    let (status, body) = conn.send("GET", "/headers", Bytes::new()).await;
    assert_eq!(status, 200);
    let headers: serde_json::Value = serde_json::from_slice(&body).expect("json headers");
    let host = format!("app.test:{}", cluster.addr.port());
    assert_eq!(headers["host"], host.as_str());
    assert_eq!(headers["x-forwarded-host"], host.as_str());
    assert_eq!(headers["x-forwarded-proto"], "http");
    assert_eq!(headers["x-forwarded-for"], "127.0.0.1");
}

#[tokio::test]
async fn the_demo_worker_runs_with_no_command() {
    let cluster = ClusterCmd::start(&["--workers", "2"]).spawn(2);
    let (status, body) = get(cluster.addr, "/").await;
    assert_eq!(status, 200);
    assert!(String::from_utf8_lossy(&body).contains("hello from cluster demo worker"));
}

#[tokio::test]
async fn malformed_request_line_gets_400_and_the_cluster_keeps_serving() {
    let cluster = ClusterCmd::workers(1, Worker::Rust).spawn(1);
    let addr = cluster.addr;
    let reply = tokio::task::spawn_blocking(move || {
        let mut tcp = std::net::TcpStream::connect(addr).expect("connect");
        tcp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        tcp.write_all(b"GET /\x01bad HTTP/9.9 what\r\n\r\n").unwrap();
        let mut reply = Vec::new();
        let _ = tcp.read_to_end(&mut reply);
        String::from_utf8_lossy(&reply).into_owned()
    })
    .await
    .unwrap();
    assert!(reply.starts_with("HTTP/1.1 400"), "reply: {reply:?}");
    let (status, _) = get(cluster.addr, "/health").await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn no_ready_worker_answers_503_with_retry_after() {
    // `sleep` never listens, so no worker ever becomes ready.
    let cluster = ClusterCmd::start(&["--workers", "1", "--", "sleep", "30"])
        .config(r#"{"startTimeout": 60000}"#)
        .spawn(0);
    let mut conn = Conn::open(cluster.addr).await;
    let resp = conn.request("GET", "/", Bytes::new()).await;
    assert_eq!(resp.status(), 503);
    assert!(resp.headers().contains_key("retry-after"));
}

#[tokio::test]
async fn several_proxy_threads_serve_and_drain() {
    let hello = hello_bin();
    let mut cluster = ClusterCmd::start(&["--workers", "2", "--", hello.to_str().unwrap()])
        .config(r#"{"performance": {"proxyThreads": 3}}"#)
        .spawn(2);
    // Many connections, so that every proxy thread accepts some.
    let mut tasks = Vec::new();
    for _ in 0..12 {
        let addr = cluster.addr;
        tasks.push(tokio::spawn(async move { distinct_pids(addr, 10).await }));
    }
    let mut pids = HashSet::new();
    for t in tasks {
        pids.extend(t.await.unwrap());
    }
    assert_eq!(pids.len(), 2);
    let addr = cluster.addr;
    let slow = tokio::spawn(async move {
        Conn::open(addr).await.send("GET", "/slow?ms=1000", Bytes::new()).await
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    cluster.signal(rustix::process::Signal::TERM);
    let (status, body) = slow.await.unwrap();
    assert_eq!(status, 200, "{body:?}\n{}", cluster.log().join("\n"));
    assert!(cluster.wait_exit(Duration::from_secs(10)).success());
}
