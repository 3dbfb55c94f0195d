//! Real-process tests of the `hello` example worker: the WebSocket echo, graceful shutdown and
//! the crash knobs. Cargo builds examples before running tests, next to the test binary's
//! `deps` folder, which is where [`hello_bin`] looks.

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;

use support::hello_bin;

/// A running worker, killed on drop.
struct Worker {
    child: Child,
    addr: String,
}

impl Worker {
    /// Starts the worker on a free port with extra environment, and reads its banner.
    fn start(env: &[(&str, &str)]) -> Worker {
        let mut child = Command::new(hello_bin())
            .env("PORT", "0")
            .env("CLUSTER_WORKER_ID", "3")
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn hello");
        let mut banner = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut banner)
            .expect("banner");
        let addr = banner.trim().rsplit(' ').next().expect("address in banner").to_owned();
        assert!(banner.starts_with("hello worker 3 pid "), "banner: {banner:?}");
        Worker { child, addr }
    }

    fn pid(&self) -> String {
        self.child.id().to_string()
    }

    fn signal(&self, name: &str) {
        let status = Command::new("kill").args([&format!("-{name}"), &self.pid()]).status();
        assert!(status.expect("kill").success());
    }

    /// Waits up to `limit` for the worker to exit.
    fn wait(&mut self, limit: Duration) -> ExitStatus {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status;
            }
            assert!(Instant::now() < deadline, "worker did not exit within {limit:?}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Sends one request with `Connection: close` and returns the whole raw response.
async fn request(addr: &str, path: &str) -> String {
    let mut tcp = TcpStream::connect(addr).await.expect("connect");
    let head = format!("GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n");
    tcp.write_all(head.as_bytes()).await.expect("write");
    let mut response = String::new();
    let _ = tcp.read_to_string(&mut response).await;
    response
}

#[tokio::test]
async fn websocket_echoes_text_and_binary() {
    let worker = Worker::start(&[]);
    let tcp = TcpStream::connect(&worker.addr).await.expect("connect");
    let url = format!("ws://{}/ws", worker.addr);
    let (mut ws, response) = tokio_tungstenite::client_async(url, tcp).await.expect("handshake");
    assert_eq!(response.status(), 101);
    ws.send(Message::text("hi there")).await.expect("send");
    assert_eq!(ws.next().await.expect("reply").expect("ok"), Message::text("hi there"));
    ws.send(Message::binary(vec![0u8, 1, 2, 255])).await.expect("send");
    assert_eq!(ws.next().await.expect("reply").expect("ok"), Message::binary(vec![0u8, 1, 2, 255]));
    ws.close(None).await.expect("close");
    while let Some(Ok(_)) = ws.next().await {}
}

#[tokio::test]
async fn plain_get_ws_is_bad_request() {
    let worker = Worker::start(&[]);
    let response = request(&worker.addr, "/ws").await;
    assert!(response.starts_with("HTTP/1.1 400"), "{response}");
}

#[tokio::test]
async fn sigterm_lets_the_in_flight_request_finish() {
    let mut worker = Worker::start(&[]);
    let addr = worker.addr.clone();
    let slow = tokio::spawn(async move { request(&addr, "/slow?ms=700").await });
    tokio::time::sleep(Duration::from_millis(200)).await;
    worker.signal("TERM");
    let response = slow.await.expect("request task");
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.ends_with("slept 700 ms\n"), "{response}");
    assert_eq!(worker.wait(Duration::from_secs(5)).code(), Some(0));
}

#[tokio::test]
async fn sigterm_closes_open_websockets_with_going_away() {
    let mut worker = Worker::start(&[]);
    let tcp = TcpStream::connect(&worker.addr).await.expect("connect");
    let url = format!("ws://{}/ws", worker.addr);
    let (mut ws, _) = tokio_tungstenite::client_async(url, tcp).await.expect("handshake");
    worker.signal("TERM");
    match ws.next().await {
        Some(Ok(Message::Close(Some(frame)))) => assert_eq!(u16::from(frame.code), 1001),
        other => panic!("expected a close frame, got {other:?}"),
    }
    while let Some(Ok(_)) = ws.next().await {}
    assert_eq!(worker.wait(Duration::from_secs(5)).code(), Some(0));
}

#[tokio::test]
async fn crash_exits_with_70_without_answering() {
    let mut worker = Worker::start(&[]);
    let response = request(&worker.addr, "/crash").await;
    assert_eq!(response, "");
    assert_eq!(worker.wait(Duration::from_secs(5)).code(), Some(70));
}

#[tokio::test]
async fn exit_after_knob_exits_with_1() {
    let mut worker = Worker::start(&[("HELLO_EXIT_AFTER_MS", "300")]);
    assert!(request(&worker.addr, "/health").await.starts_with("HTTP/1.1 200"));
    assert_eq!(worker.wait(Duration::from_secs(5)).code(), Some(1));
}

#[tokio::test]
async fn delay_knob_slows_every_response() {
    let worker = Worker::start(&[("HELLO_DELAY_MS", "300"), ("THREADS", "2")]);
    let started = Instant::now();
    assert!(request(&worker.addr, "/health").await.starts_with("HTTP/1.1 200"));
    assert!(started.elapsed() >= Duration::from_millis(300));
}
