//! `GET /metrics` on the admin listener (and `GET /api/admin/cluster/metrics` on the front
//! port) of an embedded cluster of real Node.js workers: the exposition is well-formed
//! OpenMetrics, names the live workers, its counters move with the requests sent through the
//! front port, and a slot's recycle count goes on in one series when its worker is replaced.

mod openmetrics;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use cluster_admin::{AdminApi, AdminConfig};
use cluster_core::config::{self, Environment, Overrides};
use cluster_core::{Cluster, ClusterHandle, ClusterStatus, ShutdownMode, WorkerStatus};
use openmetrics::Exposition;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Longest any one wait may last.
const WAIT: Duration = Duration::from_secs(30);

/// The admin token: it opens the admin routes on the front port (and is then required on the
/// admin listener too).
const TOKEN: &str = "metrics-test-token-0123456789";

const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// `GET path` from `addr` on a connection of its own, with the admin token when `admin`: the
/// status, the head (lowercased) and the body.
async fn get(addr: SocketAddr, path: &str, admin: bool) -> (u16, String, String) {
    send(addr, "GET", path, admin).await
}

/// `method path` from `addr` on a connection of its own, with the admin token when `admin` (a
/// POST with no body, as JSON): the status, the head (lowercased) and the body.
async fn send(addr: SocketAddr, method: &str, path: &str, admin: bool) -> (u16, String, String) {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    let auth = if admin { format!("Authorization: Bearer {TOKEN}\r\n") } else { String::new() };
    let empty_json = if method == "POST" {
        "Content-Type: application/json\r\nContent-Length: 0\r\n"
    } else {
        ""
    };
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: test\r\n{auth}{empty_json}Connection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.expect("send");
    let mut response = Vec::new();
    let read = stream.read_to_end(&mut response);
    tokio::time::timeout(WAIT, read).await.expect("response in time").expect("read");
    let response = String::from_utf8(response).expect("UTF-8");
    let (head, body) = response.split_once("\r\n\r\n").expect("a head");
    let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).expect("a status line");
    (status, head.to_ascii_lowercase(), body.to_owned())
}

/// `GET path` (the metrics route at `addr`), checked as it is parsed.
async fn scrape_at(addr: SocketAddr, path: &str) -> (Exposition, String) {
    let (status, head, body) = get(addr, path, true).await;
    assert_eq!(status, 200, "{head}\n{body}");
    assert!(head.contains(&format!("content-type: {CONTENT_TYPE}")), "{head}");
    let exposition = openmetrics::parse(&body).unwrap_or_else(|e| panic!("{e}\n{body}"));
    (exposition, body)
}

/// `GET /metrics` on the admin listener.
async fn scrape(admin: SocketAddr) -> (Exposition, String) {
    scrape_at(admin, "/metrics").await
}

async fn status_until(
    handle: &ClusterHandle,
    what: &str,
    done: impl Fn(&ClusterStatus) -> bool,
) -> ClusterStatus {
    let deadline = Instant::now() + WAIT;
    loop {
        let status = handle.status().await.expect("status");
        if done(&status) {
            return status;
        }
        assert!(Instant::now() < deadline, "{what}: not within {WAIT:?}: {status:#?}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_name_the_workers_and_count_the_traffic() {
    let mut overrides = Overrides::default();
    overrides.workers = Some("2".into());
    overrides.port = Some("0".into());
    overrides.host = Some("127.0.0.1".into());
    let server = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/node/server.js");
    overrides.command = vec!["node".into(), server.into()];
    let path = std::env::var("PATH").unwrap_or_else(|_| "/usr/bin:/bin".into());
    let env = Environment::from_vars([("PATH", path.as_str()), ("HEALTH_CHECK_INTERVAL", "500")]);
    let mut spec = config::load(&overrides, &env).expect("config").spec;
    spec.command.env.insert("WORKER_QUIET".into(), "1".into());
    spec.admin.token = Some(TOKEN.into());
    let cluster = Cluster::builder(spec.clone()).build().await.expect("bind");
    let handle = cluster.handle();
    let api = AdminApi::new(handle.clone(), AdminConfig::from_spec(&spec));
    let cluster = cluster.with_front_door(api.front_door());
    let run = tokio::spawn(cluster.run());
    let status = status_until(&handle, "two workers ready", |s| s.ready_workers == 2).await;
    let front = status.listen;

    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind the admin listener");
    let admin = listener.local_addr().expect("admin address");
    let serving = tokio::spawn(async move { api.serve_listener(listener).await });

    let (before, _) = scrape(admin).await;
    for w in &status.workers {
        the_worker_is_named(&before, w);
        let labels = [("pid", w.pid.to_string()), ("state", "ready".into())];
        assert_eq!(before.value("cluster_worker_state", &borrowed(&labels)), 1.0, "{labels:?}");
    }
    assert_eq!(before.samples("cluster_worker_info", &[]).count(), 2);
    assert_eq!(before.value("cluster_workers_desired", &[]), 2.0);
    assert_eq!(before.value("cluster_workers", &[("state", "ready")]), 2.0);
    let ok_before = before.sum("cluster_worker_requests_total", &[("class", "2xx")]);
    let missing_before = before.sum("cluster_worker_requests_total", &[("class", "4xx")]);
    let timed_before = before.sum("cluster_worker_request_duration_seconds_count", &[]);
    let sent_before = before.sum("cluster_worker_sent_bytes_total", &[]);

    let sent = 20;
    for _ in 0..sent {
        let (status, _, body) = get(front, "/", false).await;
        assert_eq!(status, 200, "{body}");
    }
    assert_eq!(get(front, "/no-such-page", false).await.0, 404);

    // A health tick samples memory and CPU time.
    let sampled = |s: &ClusterStatus| {
        s.workers.iter().all(|w| w.rss_bytes.is_some() && w.cpu_seconds.is_some())
    };
    status_until(&handle, "memory and CPU sampled", sampled).await;

    // Bytes are counted once a body has been passed on in full: poll for them.
    let deadline = Instant::now() + WAIT;
    let (after, text) = loop {
        let (after, text) = scrape(admin).await;
        let sent_after = after.sum("cluster_worker_sent_bytes_total", &[]);
        if sent_after > sent_before || Instant::now() > deadline {
            break (after, text);
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    };
    let ok_after = after.sum("cluster_worker_requests_total", &[("class", "2xx")]);
    assert_eq!(ok_after - ok_before, f64::from(sent), "2xx responses counted");
    let missing_after = after.sum("cluster_worker_requests_total", &[("class", "4xx")]);
    assert_eq!(missing_after - missing_before, 1.0, "the 404 counted");
    let timed = after.sum("cluster_worker_request_duration_seconds_count", &[]) - timed_before;
    assert_eq!(timed, f64::from(sent) + 1.0, "each response timed");
    assert!(after.sum("cluster_worker_request_duration_seconds_sum", &[]) > 0.0);
    assert!(after.sum("cluster_worker_sent_bytes_total", &[]) > sent_before);
    assert_eq!(after.sum("cluster_worker_failures_total", &[]), 0.0);
    assert_eq!(after.sum("cluster_worker_in_flight", &[]), 0.0);
    assert!(after.sum("cluster_worker_uptime_seconds", &[]) > 0.0);
    for w in &status.workers {
        let pid = [("pid", w.pid.to_string())];
        let rss = after.value("cluster_worker_resident_memory_bytes", &borrowed(&pid));
        assert!(rss > f64::from(1 << 20), "a node worker's RSS: {rss} bytes");
        assert!(after.value("cluster_worker_cpu_seconds_total", &borrowed(&pid)) > 0.0);
    }

    // The same exposition on the front port, which never reaches a worker.
    let (on_front, _) = scrape_at(front, "/api/admin/cluster/metrics").await;
    let names = |e: &Exposition| e.families.iter().map(|f| f.name.clone()).collect::<Vec<_>>();
    assert_eq!(names(&on_front), names(&after));
    let ok_front = on_front.sum("cluster_worker_requests_total", &[("class", "2xx")]);
    assert_eq!(ok_front, ok_after, "the admin route is no worker traffic");

    match openmetrics::promtool(&text) {
        Some((_, said)) => {
            let problems = openmetrics::promtool_problems(&said, &after);
            assert!(problems.is_empty(), "promtool check metrics: {problems:#?}\n{text}");
        }
        None if openmetrics::promtool_required() => {
            panic!("promtool is not on the PATH, and CI is set: install it (Debian: prometheus)")
        }
        None => println!("skipped the promtool check: promtool is not on the PATH"),
    }

    let scrapes = 20;
    let start = Instant::now();
    for _ in 0..scrapes {
        get(admin, "/metrics", true).await;
    }
    println!(
        "GET /metrics for 2 workers ({} bytes): {:?} a scrape (status, render and HTTP), {} build",
        text.len(),
        start.elapsed() / scrapes,
        if cfg!(debug_assertions) { "debug" } else { "release" },
    );

    // A worker replaced through the API: the worker series move to the new process, and its
    // slot's recycle count goes on, one higher, in the same series.
    let old = &status.workers[0];
    let slot = [("slot", old.slot.to_string())];
    let slot = borrowed(&slot);
    let (before_recycle, _) = scrape(admin).await;
    let recycles = before_recycle.value("cluster_slot_recycles_total", &slot);
    assert_eq!(recycles, f64::from(old.recycles));
    let path = format!("/api/admin/cluster/workers/{}/restart", old.worker_id);
    let (code, _, body) = send(admin, "POST", &path, true).await;
    assert_eq!(code, 202, "POST {path}: {body}");
    let replaced = status_until(&handle, "the worker replaced", |s| {
        s.ready_workers == 2
            && s.workers.len() == 2
            && s.workers.iter().all(|w| w.worker_id != old.worker_id)
    })
    .await;
    let (after_recycle, _) = scrape(admin).await;
    assert_eq!(after_recycle.value("cluster_slot_recycles_total", &slot), recycles + 1.0);
    assert_eq!(after_recycle.samples("cluster_slot_recycles_total", &[]).count(), 2, "per slot");
    for w in &replaced.workers {
        the_worker_is_named(&after_recycle, w);
    }
    let old_pid = [("pid", old.pid.to_string())];
    assert_eq!(after_recycle.samples("cluster_worker_info", &borrowed(&old_pid)).count(), 0);

    serving.abort();
    handle.shutdown(ShutdownMode::Graceful).expect("shutdown");
    let stopped = tokio::time::timeout(WAIT, run).await.expect("stopped in time");
    stopped.expect("run task").expect("cluster run");
}

/// `w` has its info series (its id on its slot, pid and generation) and its slot's counters.
fn the_worker_is_named(e: &Exposition, w: &WorkerStatus) {
    let labels = [
        ("slot", w.slot.to_string()),
        ("pid", w.pid.to_string()),
        ("generation", w.generation.to_string()),
        ("worker_id", w.worker_id.to_string()),
    ];
    assert_eq!(e.value("cluster_worker_info", &borrowed(&labels)), 1.0, "{labels:?}");
    let slot = [("slot", w.slot.to_string())];
    let slot = borrowed(&slot);
    assert_eq!(e.value("cluster_slot_restarts_total", &slot), f64::from(w.restarts), "{slot:?}");
    assert_eq!(e.value("cluster_slot_recycles_total", &slot), f64::from(w.recycles), "{slot:?}");
}

/// `labels` with borrowed values, as [`Exposition`] takes them.
fn borrowed<'a>(labels: &'a [(&'a str, String)]) -> Vec<(&'a str, &'a str)> {
    labels.iter().map(|(k, v)| (*k, v.as_str())).collect()
}
