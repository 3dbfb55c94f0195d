//! The admin API of the `cluster` binary: who may use it on the front port, the control
//! socket and the admin listener; the events stream; metrics under load.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use base64::Engine;
use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use tokio::time::Instant;

use crate::embedded::{failures, load};
use crate::util::{ClusterCmd, ClusterProc, Conn, Worker};

const TOKEN: &str = "test-token-0123456789abcdef";

/// The header every POST to the admin API carries.
const JSON: &[(&str, &str)] = &[("content-type", "application/json")];
const WAIT: Duration = Duration::from_secs(30);

/// `method path` with `headers`; the status, the headers and the body.
pub async fn call(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, hyper::HeaderMap, String) {
    let mut conn = Conn::open(addr).await;
    // As curl would send it (the front port keeps it for the workers; an admin listener
    // without a token answers loopback names only).
    let host = format!("127.0.0.1:{}", addr.port());
    let mut headers = headers.to_vec();
    if !headers.iter().any(|(name, _)| name.eq_ignore_ascii_case("host")) {
        headers.push(("host", host.as_str()));
    }
    let resp = conn.request_with(method, path, Bytes::from(body.to_owned()), &headers).await;
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = resp.into_body().collect().await.expect("body").to_bytes();
    (status, headers, String::from_utf8_lossy(&body).into_owned())
}

fn bearer() -> String {
    format!("Bearer {TOKEN}")
}

/// The admin listener's address, from the primary's log.
pub fn admin_addr(c: &ClusterProc) -> SocketAddr {
    let line = c.wait_for_line("admin API on http://", WAIT);
    let addr = line.split("admin API on http://").nth(1).and_then(|s| s.split('/').next());
    addr.and_then(|a| a.parse().ok()).unwrap_or_else(|| panic!("no address in {line:?}"))
}

#[tokio::test]
async fn with_a_token_the_front_port_serves_the_admin_api_to_its_bearer_only() {
    let config = format!(
        r#"{{"admin": {{"token": "{TOKEN}"}}, "security": {{"trustedProxies": ["127.0.0.1"]}}}}"#
    );
    let c = ClusterCmd::workers(2, Worker::Rust).config(&config).spawn(2);
    let status = "/api/admin/cluster/status";
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("admin:{TOKEN}"))
    );
    let (code, headers, body) = call(c.addr, "GET", status, &[], "").await;
    assert_eq!(code, 401, "{body}");
    assert!(headers["www-authenticate"].to_str().unwrap().starts_with("Basic"), "a browser asks");
    assert!(body.contains("\"error\""), "{body}");
    let (code, _, body) = call(c.addr, "GET", status, &[("authorization", &bearer())], "").await;
    assert_eq!(code, 200, "{body}");
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(json["workers"].as_array().unwrap().len(), 2);
    assert!(json["health"]["totalWorkers"].is_number(), "the original design's shape");
    let (code, _, _) = call(c.addr, "GET", status, &[("authorization", &basic)], "").await;
    assert_eq!(code, 200, "Basic with the token as password");
    for refused in [
        vec![("authorization", "Bearer wrong-token-0123456789")],
        vec![("x-admin-token", TOKEN)],
        vec![("authorization", TOKEN)],
        vec![("cookie", &format!("token={TOKEN}") as &str)],
    ] {
        let (code, _, _) = call(c.addr, "GET", status, &refused, "").await;
        assert_eq!(code, 401, "{refused:?}");
    }
    for query in ["token", "access_token", "admin_token"] {
        let path = format!("{status}?{query}={TOKEN}");
        let (code, _, _) = call(c.addr, "GET", &path, &[], "").await;
        assert_eq!(code, 401, "a token in the query string is never accepted: {path}");
    }
    // From behind a trusted proxy, the forwarded client address grants nothing.
    let forwarded = [("x-forwarded-for", "10.1.2.3")];
    let (code, _, _) = call(c.addr, "GET", status, &forwarded, "").await;
    assert_eq!(code, 401);
    let with_token = [("x-forwarded-for", "10.1.2.3"), ("authorization", &bearer() as &str)];
    let (code, _, _) = call(c.addr, "GET", status, &with_token, "").await;
    assert_eq!(code, 200);
    // Errors are JSON, wrong methods get 405 with Allow, unknown admin paths 404.
    let auth = [("authorization", &bearer() as &str)];
    let (code, headers, body) = call(c.addr, "POST", status, &auth, "").await;
    assert_eq!(code, 405, "{body}");
    assert_eq!(headers["allow"], "GET, HEAD");
    let (code, _, body) = call(c.addr, "GET", "/api/admin/cluster/nope", &auth, "").await;
    assert_eq!(code, 404);
    assert!(body.contains("no admin route"), "{body}");
    // Everything else still reaches the workers, the application's /metrics included.
    let (code, _, body) = call(c.addr, "GET", "/", &[], "").await;
    assert_eq!((code, body.starts_with("hello from worker")), (200, true), "{body}");
    let (code, _, body) = call(c.addr, "GET", "/metrics", &[], "").await;
    assert_eq!((code, body.as_str()), (404, "not found\n"), "the worker's own answer");
    // Metrics on the front port live under the admin prefix.
    let (code, headers, body) = call(c.addr, "GET", "/api/admin/cluster/metrics", &auth, "").await;
    assert_eq!(code, 200);
    assert!(headers["content-type"].to_str().unwrap().starts_with("application/openmetrics-text"));
    assert!(body.contains("cluster_workers_ready"), "{body}");
}

#[tokio::test]
async fn a_browser_on_another_site_cannot_operate_the_cluster() {
    let config = format!(r#"{{"admin": {{"token": "{TOKEN}", "listen": "127.0.0.1:0"}}}}"#);
    let c = ClusterCmd::workers(1, Worker::Rust).config(&config).spawn(1);
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("admin:{TOKEN}"))
    );
    let shutdown = "/api/admin/cluster/shutdown";
    // What a form on another site sends, with the credentials the browser keeps.
    let form = [
        ("authorization", basic.as_str()),
        ("content-type", "application/x-www-form-urlencoded"),
        ("origin", "https://evil.example"),
        ("sec-fetch-site", "cross-site"),
    ];
    let (code, _, body) = call(c.addr, "POST", shutdown, &form, "").await;
    assert_eq!(code, 415, "{body}");
    let script = [
        ("authorization", basic.as_str()),
        ("content-type", "application/json"),
        ("origin", "https://evil.example"),
    ];
    let (code, _, body) = call(c.addr, "POST", shutdown, &script, "").await;
    assert_eq!(code, 403, "{body}");
    let fetch = [("authorization", basic.as_str()), ("sec-fetch-site", "cross-site")];
    let (code, _, _) = call(c.addr, "GET", "/api/admin/cluster/status", &fetch, "").await;
    assert_eq!(code, 403);
    // The cluster still runs.
    let (code, _, _) = call(c.addr, "GET", "/", &[], "").await;
    assert_eq!(code, 200);
    assert_eq!(c.count("shutting down"), 0);
}

#[tokio::test]
async fn an_open_admin_listener_answers_loopback_host_names_only() {
    let c = ClusterCmd::workers(1, Worker::Rust)
        .config(r#"{"admin": {"listen": "127.0.0.1:0"}}"#)
        .spawn(1);
    let addr = admin_addr(&c);
    // A page whose name was made to resolve to 127.0.0.1 (DNS rebinding) sends its own name.
    let rebound = [("host", "evil.example:9090")];
    let (code, _, body) = call(addr, "GET", "/api/admin/cluster/status", &rebound, "").await;
    assert_eq!(code, 403, "{body}");
    let (code, _, _) =
        call(addr, "GET", "/api/admin/cluster/status", &[("host", "localhost")], "").await;
    assert_eq!(code, 200);
}

#[tokio::test]
async fn without_a_token_the_front_port_hides_the_admin_paths_and_never_forwards_them() {
    let c = ClusterCmd::workers(1, Worker::Rust).spawn(1);
    for path in ["/api/admin/cluster/status", "/api/admin/cluster/health", "/admin/cluster"] {
        let (code, _, body) = call(c.addr, "GET", path, &[("authorization", &bearer())], "").await;
        assert_eq!(code, 404, "{path}");
        assert!(
            body.contains("not served on this port"),
            "answered by the cluster, not a worker: {body}"
        );
    }
    let out = std::process::Command::new(crate::util::cluster_bin())
        .args(["status", "--json"])
        .current_dir(c.dir())
        .output()
        .unwrap();
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(status["totalRequests"], 0, "no admin request reached a worker: {status}");
}

#[tokio::test]
async fn the_admin_listener_is_open_on_loopback_and_needs_the_token_when_one_is_set() {
    let open = ClusterCmd::workers(1, Worker::Rust)
        .config(r#"{"admin": {"listen": "127.0.0.1:0"}}"#)
        .spawn(1);
    let addr = admin_addr(&open);
    let (code, _, body) = call(addr, "GET", "/api/admin/cluster/health", &[], "").await;
    assert_eq!(code, 200, "{body}");
    let (code, _, body) = call(addr, "GET", "/metrics", &[], "").await;
    assert_eq!(code, 200);
    assert!(body.contains("cluster_workers_desired"), "{body}");

    let config = format!(
        r#"{{"admin": {{"listen": "127.0.0.1:0", "token": "{TOKEN}", "publicHealth": true}}}}"#
    );
    let guarded = ClusterCmd::workers(1, Worker::Rust).config(&config).spawn(1);
    let addr = admin_addr(&guarded);
    let (code, _, _) = call(addr, "GET", "/api/admin/cluster/status", &[], "").await;
    assert_eq!(code, 401);
    let (code, _, _) = call(addr, "GET", "/metrics", &[], "").await;
    assert_eq!(code, 401);
    let (code, _, _) = call(addr, "GET", "/api/admin/cluster/health", &[], "").await;
    assert_eq!(code, 200, "publicHealth: a probe needs no token");
    let (code, _, _) = call(addr, "GET", "/metrics", &[("authorization", &bearer())], "").await;
    assert_eq!(code, 200);
}

#[tokio::test]
async fn a_non_loopback_admin_listener_without_a_token_is_refused_at_start() {
    let mut c = ClusterCmd::workers(1, Worker::Rust)
        .config(r#"{"admin": {"listen": "0.0.0.0:0"}}"#)
        .launch();
    let status = c.wait_exit(WAIT);
    assert_eq!(status.code(), Some(2));
    let line = c.wait_for_line("admin.listen", WAIT);
    assert!(line.contains("not a loopback address") && line.contains("admin.token"), "{line}");
}

/// Reads Server-Sent Events: (id, event, data) blocks, comments skipped.
pub struct Sse {
    body: Incoming,
    buf: String,
}

impl Sse {
    pub async fn open(addr: SocketAddr, last_event_id: Option<u64>) -> Sse {
        let mut conn = Conn::open(addr).await;
        let id = last_event_id.map(|i| i.to_string());
        let host = format!("127.0.0.1:{}", addr.port());
        let mut headers = vec![("accept", "text/event-stream"), ("host", host.as_str())];
        if let Some(id) = &id {
            headers.push(("last-event-id", id.as_str()));
        }
        let resp =
            conn.request_with("GET", "/api/admin/cluster/events", Bytes::new(), &headers).await;
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.headers()["content-type"], "text/event-stream");
        Sse { body: resp.into_body(), buf: String::new() }
    }

    /// The next event; `None` when the stream ended. Panics after [`WAIT`].
    pub async fn next(&mut self) -> Option<(u64, String, serde_json::Value)> {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(end) = self.buf.find("\n\n") {
                let block: String = self.buf.drain(..end + 2).collect();
                let (mut id, mut name, mut data) = (0, String::new(), String::new());
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("id: ") {
                        id = v.parse().unwrap();
                    } else if let Some(v) = line.strip_prefix("event: ") {
                        name = v.to_owned();
                    } else if let Some(v) = line.strip_prefix("data: ") {
                        data.push_str(v);
                    }
                }
                if !name.is_empty() {
                    return Some((id, name, serde_json::from_str(&data).unwrap()));
                }
                continue;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            let frame =
                tokio::time::timeout(left, self.body.frame()).await.expect("an event in time");
            match frame {
                Some(Ok(f)) => {
                    if let Ok(data) = f.into_data() {
                        self.buf.push_str(&String::from_utf8_lossy(&data));
                    }
                }
                _ => return None,
            }
        }
    }

    /// Events until `name`, returning them all (that one last).
    pub async fn until(&mut self, name: &str) -> Vec<(u64, String, serde_json::Value)> {
        let mut seen = Vec::new();
        while let Some(ev) = self.next().await {
            let done = ev.1 == name;
            seen.push(ev);
            if done {
                return seen;
            }
        }
        panic!("the stream ended before {name}: {seen:?}");
    }
}

#[tokio::test]
async fn the_events_stream_follows_scaling_in_order_resumes_with_last_event_id_and_ends_at_shutdown()
 {
    let c = ClusterCmd::workers(2, Worker::Rust)
        .config(r#"{"admin": {"listen": "127.0.0.1:0", "eventsInterval": 200}, "scaling": {"maxWorkers": 4}}"#)
        .spawn(2);
    let addr = admin_addr(&c);
    let mut sse = Sse::open(addr, None).await;
    let first = sse.next().await.unwrap();
    assert_eq!(first.1, "status", "a snapshot first: {first:?}");
    assert_eq!(first.2["workers"].as_array().unwrap().len(), 2);
    let (code, _, body) =
        call(addr, "POST", "/api/admin/cluster/scale", JSON, r#"{"workers": 3}"#).await;
    assert_eq!(code, 200, "{body}");
    let seen = sse.until("workerState").await;
    let lifecycle: Vec<&(u64, String, serde_json::Value)> =
        seen.iter().filter(|e| e.1 != "status").collect();
    assert_eq!(lifecycle[0].1, "scaled", "{lifecycle:?}");
    assert_eq!(lifecycle[0].2["by"], "admin API");
    assert!(lifecycle.iter().any(|e| e.1 == "workerStarted"));
    let ids: Vec<u64> = lifecycle.iter().map(|e| e.0).collect();
    assert!(ids.windows(2).all(|w| w[1] == w[0] + 1), "ids in order, none skipped: {ids:?}");
    // Periodic snapshots keep coming.
    let snapshot = sse.until("status").await;
    assert!(snapshot.last().unwrap().2["workers"].is_array());
    let last_seen = *ids.last().unwrap();
    drop(sse);

    // While nobody listens: scale back down. A client resuming from its last id gets it all.
    let (code, _, _) = call(addr, "POST", "/api/admin/cluster/scale", JSON, r#"{"by": -1}"#).await;
    assert_eq!(code, 200);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut resumed = Sse::open(addr, Some(last_seen)).await;
    let missed = resumed.until("status").await;
    let names: Vec<&str> = missed.iter().map(|e| e.1.as_str()).collect();
    assert_eq!(missed[0].0, last_seen + 1, "resumes right after the last id: {names:?}");
    assert!(names.contains(&"scaled") && names.contains(&"retiring"), "{names:?}");

    // Shutdown: the stream carries it through and ends.
    let (code, _, _) = call(addr, "POST", "/api/admin/cluster/shutdown", JSON, "").await;
    assert_eq!(code, 202);
    let mut names = Vec::new();
    while let Some(ev) = resumed.next().await {
        names.push(ev.1);
    }
    assert!(names.contains(&"shutdownStarted".to_owned()), "{names:?}");
    assert_eq!(names.last().map(String::as_str), Some("stopped"), "{names:?}");
}

#[tokio::test]
async fn scraping_metrics_and_an_events_client_every_100_ms_lose_no_proxied_request() {
    let c = ClusterCmd::workers(2, Worker::Rust)
        .config(r#"{"admin": {"listen": "127.0.0.1:0", "eventsInterval": 100}}"#)
        .spawn(2);
    let admin = admin_addr(&c);
    let stop = Arc::new(AtomicBool::new(false));
    let traffic = load(c.addr, "/pid", 6, 100_000, Arc::clone(&stop));
    let mut sse = Sse::open(admin, None).await;
    let events = tokio::spawn(async move {
        let mut n = 0;
        while sse.next().await.is_some() {
            n += 1;
        }
        n
    });
    let started = Instant::now();
    let mut scrapes = 0;
    let mut last_total = 0.0;
    while started.elapsed() < Duration::from_secs(5) {
        let (code, _, body) = call(admin, "GET", "/metrics", &[], "").await;
        assert_eq!(code, 200);
        let total: f64 = body
            .lines()
            .filter(|l| {
                l.starts_with("cluster_worker_requests_total{") && l.contains("class=\"2xx\"")
            })
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum();
        assert!(total >= last_total, "counters only grow: {last_total} -> {total}");
        last_total = total;
        scrapes += 1;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stop.store(true, Ordering::Relaxed);
    let seen = traffic.await.unwrap();
    println!(
        "{} requests, {scrapes} scrapes, {last_total} counted 2xx, failures {:?}",
        seen.len(),
        failures(&seen)
    );
    assert!(last_total > 100.0, "the counters moved with the traffic");
    assert!(failures(&seen).is_empty(), "failed requests: {:?}", failures(&seen));
    drop(c);
    let got = tokio::time::timeout(WAIT, events).await.expect("the stream ended").unwrap();
    assert!(got >= 10, "status snapshots every 100 ms: {got}");
}
