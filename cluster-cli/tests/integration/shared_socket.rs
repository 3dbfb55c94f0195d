//! Shared-socket mode (`mode: "shared-socket"`): the workers accept on the front socket
//! themselves (fd 3, `LISTEN_FDS`/`LISTEN_PID`), the kernel balances connections, and the
//! supervisor's operations still hold: rolling restarts with no refused connection, a killed
//! worker replaced, the memory policy, scaling, a clean stop. The primary serves no request.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::Bytes;
use cluster_core::config::Mode;
use cluster_core::{ClusterEvent, WorkerState};
use rustix::process::Signal;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::embedded::{Embedded, Sender, get, open};
use crate::util::{ClusterCmd, Conn, Worker, alive};

const SHARED: &str = r#""mode": "shared-socket""#;

/// `(pid, LISTEN_PID, LISTEN_FDS, PORT)` as one worker reports them on one new connection.
async fn who_answers(addr: SocketAddr) -> (String, String, String, String) {
    let mut conn = Conn::open(addr).await;
    let (status, pid) = conn.send("GET", "/pid", Bytes::new()).await;
    assert_eq!(status, 200);
    let (status, env) = conn.send("GET", "/env", Bytes::new()).await;
    assert_eq!(status, 200);
    let env: serde_json::Value = serde_json::from_slice(&env).expect("JSON from /env");
    let text = |key: &str| env[key].as_str().unwrap_or("unset").to_owned();
    (
        String::from_utf8_lossy(&pid).into_owned(),
        text("LISTEN_PID"),
        text("LISTEN_FDS"),
        text("PORT"),
    )
}

/// New connections reach several workers, each of which got the socket with its own pid in
/// `LISTEN_PID`; the primary counts no request.
async fn workers_accept_themselves(worker: Worker) {
    let c = Embedded::start_worker(worker, 3, SHARED, |b| b).await;
    let addr = c.handle.local_addr();
    let status = c.status().await;
    assert_eq!(status.mode, Mode::SharedSocket);
    assert_eq!(status.strategy, "kernel");
    let pids: BTreeSet<String> = status.workers.iter().map(|w| w.pid.to_string()).collect();
    let mut answered = BTreeSet::new();
    for _ in 0..90 {
        let (pid, listen_pid, fds, port) = who_answers(addr).await;
        assert_eq!(listen_pid, pid, "LISTEN_PID must be the worker's own pid");
        assert_eq!((fds.as_str(), port), ("1", addr.port().to_string()));
        assert!(pids.contains(&pid), "{pid} is not one of the cluster's workers {pids:?}");
        answered.insert(pid);
    }
    println!("{worker:?}: 90 new connections answered by {} of 3 workers", answered.len());
    assert!(answered.len() >= 2, "the kernel gave every connection to one worker: {answered:?}");
    // No byte crossed the primary.
    let status = c.status().await;
    assert_eq!(status.total_requests, 0);
    assert!(status.workers.iter().all(|w| w.metrics.requests == 0 && w.in_flight == 0));
    c.stop().await;
}

#[tokio::test]
async fn node_workers_accept_on_the_shared_socket_with_their_own_listen_pid() {
    workers_accept_themselves(Worker::Node).await;
}

#[tokio::test]
async fn rust_workers_accept_on_the_shared_socket_with_their_own_listen_pid() {
    workers_accept_themselves(Worker::Rust).await;
}

/// What the mixed load saw.
#[derive(Debug, Default)]
struct Outcome {
    /// Requests answered 200.
    ok: usize,
    /// Connections refused or reset before a request could be sent on a new connection.
    refused: usize,
    /// Requests that failed on a new connection, or answered with another status.
    failed: usize,
    /// Requests sent on a reused keep-alive connection that the worker closed as it stopped
    /// (the HTTP/1.1 keep-alive race, RFC 9112 section 9.3.1), sent again on a new connection
    /// as clients do; the retry is counted in `ok`, `refused` or `failed`.
    retried: usize,
}

/// `keep_alive` clients that send up to 20 requests per connection and then reconnect, and
/// `fresh` clients that open a new connection per request, until `stop`.
fn mixed_load(
    addr: SocketAddr,
    keep_alive: usize,
    fresh: usize,
    stop: Arc<AtomicBool>,
) -> JoinHandle<Outcome> {
    tokio::spawn(async move {
        let tasks: Vec<JoinHandle<Outcome>> = (0..keep_alive + fresh)
            .map(|i| {
                let per_conn = if i < keep_alive { 20 } else { 1 };
                let stop = Arc::clone(&stop);
                tokio::spawn(async move {
                    let mut out = Outcome::default();
                    let deadline = Instant::now() + Duration::from_secs(60);
                    let mut conn: Option<(Sender, usize)> = None;
                    while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                        let reused = conn.as_ref().is_some_and(|(_, sent)| *sent > 0);
                        if conn.is_none() {
                            match open(addr).await {
                                Some(s) => conn = Some((s, 0)),
                                None => {
                                    out.refused += 1;
                                    continue;
                                }
                            }
                        }
                        let (sender, sent) = conn.as_mut().expect("open");
                        match get(sender, addr, "/pid").await {
                            Some((200, _)) => {
                                out.ok += 1;
                                *sent += 1;
                                if *sent >= per_conn {
                                    conn = None;
                                }
                            }
                            Some(_) => {
                                out.failed += 1;
                                conn = None;
                            }
                            None if reused => {
                                out.retried += 1;
                                conn = None;
                            }
                            None => {
                                out.failed += 1;
                                conn = None;
                            }
                        }
                    }
                    out
                })
            })
            .collect();
        let mut all = Outcome::default();
        for t in tasks {
            let o = t.await.unwrap();
            all.ok += o.ok;
            all.refused += o.refused;
            all.failed += o.failed;
            all.retried += o.retried;
        }
        all
    })
}

/// Two rolling restarts of three workers under keep-alive and new-connection load: every
/// worker is replaced, no connection is refused and no request fails.
async fn rolling_restarts_refuse_nothing(worker: Worker) {
    let c = Embedded::start_worker(worker, 3, SHARED, |b| b).await;
    let addr = c.handle.local_addr();
    let stop = Arc::new(AtomicBool::new(false));
    let traffic = mixed_load(addr, 4, 4, Arc::clone(&stop));
    tokio::time::sleep(Duration::from_millis(300)).await;
    for round in 1..=2 {
        let before = c.status().await;
        let op = c.handle.rolling_restart().await.expect("started");
        let report = op.finished().await.expect("completed");
        assert_eq!(report.replaced, 3, "round {round}");
        let after = c.wait_until("old workers gone", |s| s.workers.len() == 3).await;
        for old in &before.workers {
            assert!(after.workers.iter().all(|w| w.pid != old.pid), "round {round}: {after:#?}");
            assert!(!alive(old.pid) || wait_gone(old.pid).await, "old worker {} lives", old.pid);
        }
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::Relaxed);
    let out = traffic.await.unwrap();
    println!("{worker:?}: 2 rolling restarts of 3 shared-socket workers under load: {out:?}");
    assert!(out.ok > 200, "too little load: {out:?}");
    assert_eq!((out.refused, out.failed), (0, 0), "{out:?}");
    c.stop().await;
}

async fn wait_gone(pid: u32) -> bool {
    let deadline = Instant::now() + Duration::from_secs(20);
    while alive(pid) {
        if Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    true
}

#[tokio::test]
async fn rolling_restarts_of_node_workers_on_a_shared_socket_refuse_no_connection() {
    rolling_restarts_refuse_nothing(Worker::Node).await;
}

#[tokio::test]
async fn rolling_restarts_of_rust_workers_on_a_shared_socket_refuse_no_connection() {
    rolling_restarts_refuse_nothing(Worker::Rust).await;
}

#[tokio::test]
async fn a_killed_worker_is_replaced_and_scaling_works() {
    let extra = format!(r#"{SHARED}, "scaling": {{"minWorkers": 1, "maxWorkers": 4}}"#);
    let c = Embedded::start_worker(Worker::Node, 2, &extra, |b| b).await;
    let addr = c.handle.local_addr();
    let victim = c.pid_of_slot(0).await;
    rustix::process::kill_process(
        rustix::process::Pid::from_raw(victim as i32).unwrap(),
        Signal::KILL,
    )
    .unwrap();
    let after = c
        .wait_until("slot 0 replaced", |s| {
            s.ready_workers == 2 && s.workers.iter().all(|w| w.pid != victim)
        })
        .await;
    assert_eq!(after.workers.len(), 2);

    c.handle.scale(4).await.expect("scale up");
    c.wait_until("four ready", |s| s.ready_workers == 4).await;
    let mut answered = BTreeSet::new();
    for _ in 0..60 {
        answered.insert(who_answers(addr).await.0);
    }
    assert!(answered.len() >= 2, "{answered:?}");
    c.handle.scale(1).await.expect("scale down");
    let one = c.wait_until("one left", |s| s.workers.len() == 1 && s.ready_workers == 1).await;
    let last = one.workers[0].pid.to_string();
    for _ in 0..10 {
        assert_eq!(who_answers(addr).await.0, last, "only the last worker accepts");
    }
    c.stop().await;
}

#[tokio::test]
async fn the_memory_policy_recycles_a_leaking_worker() {
    let extra = format!(
        r#"{SHARED}, "env": {{"HELLO_FAULT_SLOT": "0", "HELLO_LEAK_MB_PER_SEC": "40"}},
           "maxMemoryUsage": 80, "healthCheckInterval": 250,
           "health": {{"memoryMinAge": 1000, "memorySamples": 2, "hardMemoryLimit": 0}}"#
    );
    let mut c = Embedded::start_worker(Worker::Rust, 2, &extra, |b| b).await;
    let (old, old_pid) = c.worker_in_slot(0).await;
    let reason = c.recycling_of(old).await;
    assert!(reason.starts_with("memory"), "{reason}");
    c.next_event("recycled", |ev| match ev {
        ClusterEvent::Recycled { worker_id, .. } if *worker_id == old => Some(()),
        _ => None,
    })
    .await;
    assert!(wait_gone(old_pid).await, "the leaking worker still runs");
    c.wait_until("slot 0 ready again", |s| {
        s.workers.iter().any(|w| w.slot == 0 && w.pid != old_pid && w.status == WorkerState::Ready)
    })
    .await;
    c.stop().await;
}

/// The real binary: workers serve, `cluster status` says what does not apply, the
/// proxy-only settings are named in a warning, and SIGTERM stops everything cleanly.
#[test]
fn the_binary_runs_shared_socket_mode_and_stops_cleanly() {
    let mut cluster = ClusterCmd::workers(2, Worker::Node)
        .config(r#"{"mode": "shared-socket", "performance": {"enableCompression": true}}"#)
        .spawn(2);
    let addr = cluster.addr;
    cluster.wait_for_line("do not apply: performance.enableCompression", Duration::from_secs(5));
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let (pid, listen_pid, ..) = rt.block_on(who_answers(addr));
    assert_eq!(pid, listen_pid);
    let out = std::process::Command::new(crate::util::cluster_bin())
        .arg("status")
        .current_dir(cluster.dir())
        .output()
        .expect("cluster status");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("shared socket: the kernel balances connections"), "{text}");
    assert!(text.contains("per-request metrics and strategies do not apply"), "{text}");
    let workers = cluster.worker_pids();
    assert_eq!(workers.len(), 2);
    cluster.signal(Signal::TERM);
    assert!(cluster.wait_exit(Duration::from_secs(30)).success());
    for pid in workers {
        assert!(!alive(pid), "worker {pid} outlived the primary");
    }
    assert!(std::net::TcpStream::connect(addr).is_err(), "the front port is still open");
}

/// With no command, the built-in demo worker (the binary re-run in worker role) takes the
/// socket through `cluster_core::inherited_listener`.
#[test]
fn the_demo_worker_accepts_on_the_shared_socket() {
    let cluster =
        ClusterCmd::start(&["--workers", "2"]).config(r#"{"mode": "shared-socket"}"#).spawn(2);
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let (status, body) = rt.block_on(crate::util::get(cluster.addr, "/"));
    assert_eq!(status, 200);
    let body = String::from_utf8_lossy(&body);
    assert!(body.starts_with("hello from cluster demo worker"), "{body}");
}
