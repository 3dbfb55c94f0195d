//! The client address: `X-Forwarded-For` is believed only from a peer listed in
//! `security.trustedProxies`. Seen through the sticky-session key (the affinity cookie is
//! derived from the client address) and the access log's `client` field.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use crate::util::{ClusterCmd, ClusterProc, Worker};

/// One worker, sticky sessions and the access log (JSON on stdout) on; `trusted` is the
/// `security.trustedProxies` JSON array.
fn cluster(trusted: &str) -> ClusterProc {
    ClusterCmd::workers(1, Worker::Rust)
        .config(&format!(
            r#"{{"enableStickySession": true,
                "security": {{"trustedProxies": {trusted}, "enableRequestLogging": true}},
                "accessLog": {{"format": "json", "path": "stdout"}}}}"#
        ))
        .spawn(1)
}

/// `GET /headers` with `X-Forwarded-For: xff`; the affinity cookie's value and the
/// `X-Forwarded-For` the worker received.
fn visit(addr: SocketAddr, xff: &str) -> (String, String) {
    let mut tcp = TcpStream::connect(addr).expect("connect");
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let request = format!(
        "GET /headers HTTP/1.1\r\nHost: t\r\nX-Forwarded-For: {xff}\r\nConnection: close\r\n\r\n"
    );
    tcp.write_all(request.as_bytes()).unwrap();
    let mut response = String::new();
    let _ = tcp.read_to_string(&mut response);
    let (head, body) = response.split_once("\r\n\r\n").expect("a response");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let cookie = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase().strip_prefix("set-cookie: cluster_affinity=").map(str::to_owned)
        })
        .and_then(|v| v.split(';').next().map(str::to_owned))
        .unwrap_or_else(|| panic!("no affinity cookie in {head}"));
    let headers: serde_json::Value = serde_json::from_str(body).expect("json");
    (cookie, headers["x-forwarded-for"].as_str().unwrap_or_default().to_owned())
}

#[test]
fn forwarded_for_is_believed_from_a_trusted_peer() {
    let cluster = cluster(r#"["127.0.0.1/32", "10.0.0.0/8"]"#);
    let addr = cluster.addr;
    let (a, seen) = visit(addr, "198.51.100.7");
    assert_eq!(seen, "198.51.100.7, 127.0.0.1");
    let (b, _) = visit(addr, "203.0.113.9, 10.1.2.3");
    let (a_again, _) = visit(addr, "6.6.6.6, 198.51.100.7");
    assert_ne!(a, b, "two clients behind the proxy get two keys");
    assert_eq!(a, a_again, "a spoofed entry left of the client changes nothing");
    cluster.wait_for_line(r#""client":"198.51.100.7""#, Duration::from_secs(10));
    cluster.wait_for_line(r#""client":"203.0.113.9""#, Duration::from_secs(10));
}

#[test]
fn forwarded_for_is_ignored_from_anyone_else() {
    let cluster = cluster("[]");
    let addr = cluster.addr;
    let (a, seen) = visit(addr, "198.51.100.7");
    assert_eq!(seen, "127.0.0.1", "replaced, not extended");
    let (b, _) = visit(addr, "203.0.113.9");
    assert_eq!(a, b, "both are the peer 127.0.0.1");
    cluster.wait_for_line(r#""client":"127.0.0.1""#, Duration::from_secs(10));
    assert_eq!(cluster.count(r#""client":"198.51.100.7""#), 0);
}
