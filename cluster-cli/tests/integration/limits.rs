//! Request limits on the wire, with raw sockets: 413 for bodies over `maxBodySize`
//! (declared or streamed), 431 for heads over `maxHeaderSize` / `maxHeaders`, 400 for a
//! `Host` outside RFC 9110 (never forwarded), 408 for a head not finished within
//! `headerReadTimeout`, and `maxConnections` pausing accept.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use crate::util::{ClusterCmd, ClusterProc, Worker};

/// One worker behind a cluster with `performance` set to `perf` (a JSON object's inside).
fn cluster(perf: &str) -> ClusterProc {
    ClusterCmd::workers(1, Worker::Rust)
        .config(&format!(r#"{{"performance": {{{perf}}}}}"#))
        .spawn(1)
}

fn connect(addr: SocketAddr) -> TcpStream {
    let tcp = TcpStream::connect(addr).expect("connect");
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    tcp
}

/// Reads until the end of a response head (or EOF, or the read timeout); the text so far.
fn read_head(tcp: &mut TcpStream) -> String {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while !got.windows(4).any(|w| w == b"\r\n\r\n") {
        match tcp.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
    String::from_utf8_lossy(&got).into_owned()
}

/// Reads a whole response sent with `Connection: close`: everything up to EOF.
fn read_all(tcp: &mut TcpStream) -> String {
    let mut got = Vec::new();
    let _ = tcp.read_to_end(&mut got);
    String::from_utf8_lossy(&got).into_owned()
}

/// Sends `request` on a new connection and returns everything the proxy answered.
fn exchange(addr: SocketAddr, request: &[u8]) -> String {
    let mut tcp = connect(addr);
    // The proxy may answer and close before it has read all of a large request.
    let _ = tcp.write_all(request);
    read_all(&mut tcp)
}

/// The body of a response.
fn body(response: &str) -> &str {
    response.split_once("\r\n\r\n").map_or("", |(_, b)| b)
}

/// `GET path` with `Connection: close`; the whole response.
fn get(addr: SocketAddr, path: &str) -> String {
    exchange(
        addr,
        format!("GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").as_bytes(),
    )
}

/// How many `/count` requests reached the worker.
fn counted(addr: SocketAddr) -> String {
    let response = get(addr, "/counted");
    assert!(response.starts_with("HTTP/1.1 200"), "{response:?}");
    body(&response).to_owned()
}

#[test]
fn declared_body_over_the_limit_gets_413_before_forwarding() {
    let cluster = cluster(r#""maxBodySize": "1KB""#);
    let addr = cluster.addr;
    // Head only: the body never comes, so the answer can only be from the head.
    let response =
        exchange(addr, b"POST /count HTTP/1.1\r\nHost: t\r\nContent-Length: 100000\r\n\r\n");
    assert!(response.starts_with("HTTP/1.1 413"), "{response:?}");
    assert!(response.to_ascii_lowercase().contains("connection: close"), "{response:?}");
    assert_eq!(counted(addr), "0", "the worker never saw it");
    let at_limit = format!(
        "POST /count HTTP/1.1\r\nHost: t\r\nConnection: close\r\nContent-Length: 1024\r\n\r\n{}",
        "x".repeat(1024)
    );
    let response = exchange(addr, at_limit.as_bytes());
    assert!(response.starts_with("HTTP/1.1 200"), "{response:?}");
    assert_eq!(counted(addr), "1");
}

#[test]
fn chunked_body_over_the_limit_gets_413_as_it_streams() {
    let cluster = cluster(r#""maxBodySize": 4096"#);
    let addr = cluster.addr;
    let chunk = format!("400\r\n{}\r\n", "y".repeat(1024));

    // Under the limit: the worker reads all of it.
    let mut tcp = connect(addr);
    let head = "POST /consume HTTP/1.1\r\nHost: t\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n";
    tcp.write_all(head.as_bytes()).unwrap();
    for _ in 0..4 {
        tcp.write_all(chunk.as_bytes()).unwrap();
    }
    tcp.write_all(b"0\r\n\r\n").unwrap();
    let response = read_all(&mut tcp);
    assert!(response.starts_with("HTTP/1.1 200"), "{response:?}");
    assert_eq!(body(&response), "4096");

    // Over it: the fifth KiB goes past the limit while the worker is still reading.
    let mut tcp = connect(addr);
    tcp.write_all(head.as_bytes()).unwrap();
    for _ in 0..4 {
        tcp.write_all(chunk.as_bytes()).unwrap();
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut sent_more = 0;
    // Keep streaming (bounded) until the proxy answers or stops reading.
    tcp.set_nonblocking(true).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while Instant::now() < deadline && !got.windows(4).any(|w| w == b"\r\n\r\n") {
        if sent_more < 64 && tcp.write_all(chunk.as_bytes()).is_ok() {
            sent_more += 1;
        }
        match tcp.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(_) => break,
        }
    }
    let response = String::from_utf8_lossy(&got);
    assert!(response.starts_with("HTTP/1.1 413"), "{response:?}");
    assert!(sent_more >= 1, "the limit was crossed by a streamed chunk");
}

#[test]
fn huge_head_and_too_many_fields_get_431() {
    let cluster = cluster(r#""maxHeaderSize": "16KB", "maxHeaders": 20"#);
    let addr = cluster.addr;
    let big = format!(
        "GET / HTTP/1.1\r\nHost: t\r\nX-Big: {}\r\nConnection: close\r\n\r\n",
        "z".repeat(20 * 1024)
    );
    let response = exchange(addr, big.as_bytes());
    assert!(response.starts_with("HTTP/1.1 431"), "{response:?}");

    let fields = |n: usize| {
        let mut request = String::from("GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n");
        for i in 0..n {
            request.push_str(&format!("X-Field-{i}: {i}\r\n"));
        }
        request + "\r\n"
    };
    let response = exchange(addr, fields(30).as_bytes());
    assert!(response.starts_with("HTTP/1.1 431"), "{response:?}");
    let response = exchange(addr, fields(10).as_bytes());
    assert!(response.starts_with("HTTP/1.1 200"), "{response:?}");
    let fine = format!(
        "GET / HTTP/1.1\r\nHost: t\r\nX-Big: {}\r\nConnection: close\r\n\r\n",
        "z".repeat(8 * 1024)
    );
    let response = exchange(addr, fine.as_bytes());
    assert!(response.starts_with("HTTP/1.1 200"), "{response:?}");
}

#[test]
fn host_outside_the_grammar_gets_400_and_never_reaches_the_worker() {
    let cluster = cluster("");
    let addr = cluster.addr;
    for host in ["probe local<>", "a/b", "x@y", "[::1"] {
        let request = format!("GET /count HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
        let response = exchange(addr, request.as_bytes());
        assert!(response.starts_with("HTTP/1.1 400"), "{host}: {response:?}");
    }
    // Absolute form: the authority becomes the Host.
    let response = exchange(
        addr,
        b"GET http://user@app.test/count HTTP/1.1\r\nHost: app.test\r\nConnection: close\r\n\r\n",
    );
    assert!(response.starts_with("HTTP/1.1 400"), "{response:?}");
    assert_eq!(counted(addr), "0", "no bad Host reached the worker");
    let response =
        exchange(addr, b"GET /count HTTP/1.1\r\nHost: app.test:80\r\nConnection: close\r\n\r\n");
    assert!(response.starts_with("HTTP/1.1 200"), "{response:?}");
    assert_eq!(counted(addr), "1");
}

#[test]
fn unfinished_head_gets_408_within_header_read_timeout() {
    let cluster = cluster(r#""headerReadTimeout": 1000"#);
    let addr = cluster.addr;
    let mut tcp = connect(addr);
    let started = Instant::now();
    tcp.write_all(b"GET / HTTP/1.1\r\nHost: t\r\nX-Half: ").unwrap();
    let response = read_all(&mut tcp);
    let waited = started.elapsed();
    assert!(response.starts_with("HTTP/1.1 408"), "{response:?}");
    assert!(waited >= Duration::from_millis(900), "not before the timeout: {waited:?}");
    assert!(waited < Duration::from_secs(9), "closed: {waited:?}");

    // An idle keep-alive connection is closed without a response.
    let mut tcp = connect(addr);
    tcp.write_all(b"GET /health HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
    let first = read_head(&mut tcp);
    assert!(first.starts_with("HTTP/1.1 200"), "{first:?}");
    let rest = read_all(&mut tcp);
    assert_eq!(body(&format!("{first}{rest}")).trim(), "ok", "nothing after the response");
}

/// The header read timeout runs only while the proxy waits for a request head: a head
/// trickled byte by byte still gets its 408, but a slow worker, a long streamed response and
/// a slow upload after `100 Continue` (hyper writes it, then reads the body) all outlast it.
#[test]
fn header_read_timeout_spares_everything_but_the_head() {
    let cluster = cluster(r#""headerReadTimeout": 1000"#);
    let addr = cluster.addr;

    // Bytes keep coming, but the head is not done within the timeout.
    let mut tcp = connect(addr);
    let started = Instant::now();
    for byte in b"GET / HTTP/1.1\r\nHost: t\r\nX-Slow: abcdefgh" {
        if tcp.write_all(&[*byte]).is_err() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
        if started.elapsed() > Duration::from_secs(4) {
            break;
        }
    }
    let response = read_all(&mut tcp);
    let waited = started.elapsed();
    assert!(response.starts_with("HTTP/1.1 408"), "{response:?}");
    assert!(waited >= Duration::from_millis(900), "not before the timeout: {waited:?}");

    // A worker slower than the timeout.
    let mut tcp = connect(addr);
    tcp.write_all(b"GET /slow?ms=2000 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").unwrap();
    let response = read_all(&mut tcp);
    assert!(response.starts_with("HTTP/1.1 200"), "{response:?}");
    assert_eq!(body(&response).trim(), "slept 2000 ms");

    // A response that streams for longer than the timeout.
    let mut tcp = connect(addr);
    let request = b"GET /stream?n=5&interval=500 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
    tcp.write_all(request).unwrap();
    let response = read_all(&mut tcp);
    assert!(response.starts_with("HTTP/1.1 200"), "{response:?}");
    assert!(response.contains("data: event 5"), "all five events: {response:?}");

    // An upload that waits for 100 Continue, then trickles its body past the timeout.
    let mut tcp = connect(addr);
    let head = "POST /consume HTTP/1.1\r\nHost: t\r\nContent-Length: 30\r\n\
                Expect: 100-continue\r\nConnection: close\r\n\r\n";
    tcp.write_all(head.as_bytes()).unwrap();
    let interim = read_head(&mut tcp);
    assert!(interim.starts_with("HTTP/1.1 100"), "{interim:?}");
    for _ in 0..3 {
        std::thread::sleep(Duration::from_millis(600));
        tcp.write_all(&[b'u'; 10]).unwrap();
    }
    let response = read_all(&mut tcp);
    assert!(response.starts_with("HTTP/1.1 200"), "{response:?}");
    assert_eq!(body(&response).trim(), "30");
}

/// An HTTP/2 connection (prior knowledge) has no request heads for the header read timeout
/// to time: idle past it, it still serves its first request.
#[tokio::test]
async fn h2_connections_idle_past_the_header_read_timeout_still_serve() {
    use bytes::Bytes;
    use http_body_util::Empty;
    use hyper_util::rt::{TokioExecutor, TokioIo};

    let cluster = cluster(r#""headerReadTimeout": 1000"#);
    let tcp = tokio::net::TcpStream::connect(cluster.addr).await.unwrap();
    let (mut h2, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tcp))
            .await
            .expect("h2c handshake");
    tokio::spawn(conn);
    tokio::time::sleep(Duration::from_millis(2000)).await;
    let req = hyper::Request::get("http://app.test/health").body(Empty::<Bytes>::new()).unwrap();
    let response = h2.send_request(req).await.expect("the connection is still open");
    assert_eq!(response.status(), 200);
}

#[test]
fn max_connections_pauses_accepting() {
    let cluster =
        cluster(r#""maxConnections": 2, "keepAliveTimeout": 60000, "headerReadTimeout": 60000"#);
    let addr = cluster.addr;
    let request = b"GET /health HTTP/1.1\r\nHost: t\r\n\r\n";
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut tcp = connect(addr);
        tcp.write_all(request).unwrap();
        assert!(read_head(&mut tcp).starts_with("HTTP/1.1 200"));
        held.push(tcp);
    }
    // The third connection completes its handshake in the kernel's backlog but is not
    // served while two are open.
    let mut third = connect(addr);
    third.write_all(request).unwrap();
    third.set_read_timeout(Some(Duration::from_millis(1500))).unwrap();
    let mut buf = [0u8; 64];
    match third.read(&mut buf) {
        Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
        other => panic!("the third connection was served while two were open: {other:?}"),
    }
    // Closing one lets it in.
    drop(held.remove(0));
    third.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let head = read_head(&mut third);
    assert!(head.starts_with("HTTP/1.1 200"), "{head:?}");
}

/// The same checks over HTTP/2 (h2c, prior knowledge): `:authority` outside the grammar,
/// too many fields, a streamed body past the limit.
#[tokio::test]
async fn h2_requests_get_the_same_limits() {
    use bytes::Bytes;
    use http_body_util::combinators::BoxBody;
    use http_body_util::{BodyExt, Empty, StreamBody};
    use hyper::body::Frame;
    use hyper_util::rt::{TokioExecutor, TokioIo};

    let cluster = cluster(r#""maxBodySize": 4096, "maxHeaders": 20"#);
    let addr = cluster.addr;
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut h2, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tcp))
            .await
            .expect("h2c handshake");
    tokio::spawn(conn);
    type Body = BoxBody<Bytes, std::convert::Infallible>;
    let empty = || -> Body { Empty::new().boxed() };
    let mut status = |uri: &str, body: Body, fields: usize| {
        let mut req = hyper::Request::builder().uri(uri);
        for i in 0..fields {
            req = req.header(format!("x-field-{i}"), i);
        }
        let req = req.method(if fields == 0 { "POST" } else { "GET" }).body(body).unwrap();
        let sent = h2.send_request(req);
        async move { sent.await.map(|r| r.status().as_u16()).unwrap_or(0) }
    };

    assert_eq!(status("http://user@app.test/count", empty(), 1).await, 400);
    assert_eq!(status("http://app.test/count", empty(), 30).await, 431);
    let chunks = (0..8).map(|_| Ok(Frame::data(Bytes::from(vec![b'q'; 1024]))));
    let streamed: Body = StreamBody::new(futures_util::stream::iter(chunks)).boxed();
    assert_eq!(status("http://app.test/consume", streamed, 0).await, 413);
    assert_eq!(status("http://app.test/count", empty(), 1).await, 200);
    assert_eq!(counted(addr), "1", "only the good request reached the worker");
}
