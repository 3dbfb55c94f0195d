//! An embedded cluster (`Cluster::builder`) of real `hello` worker processes, for tests that
//! follow `ClusterEvent`s and `ClusterHandle::status`, and a closed-loop client load that
//! records every answer.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::Bytes;
use cluster_core::config::{self, Environment, Overrides};
use cluster_core::{
    Cluster, ClusterBuilder, ClusterEvent, ClusterHandle, ClusterStatus, ShutdownMode,
};
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use tokio::sync::broadcast;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::util::Worker;

/// Longest any one wait of these tests may last.
pub const WAIT: Duration = Duration::from_secs(30);

/// An embedded cluster of `hello` workers.
pub struct Embedded {
    pub handle: ClusterHandle,
    pub events: broadcast::Receiver<ClusterEvent>,
    run: JoinHandle<()>,
    _dir: tempfile::TempDir,
}

impl Embedded {
    /// Starts `workers` hello workers with `extra` merged into the configuration (JSON object
    /// members, without braces), and waits until they are ready.
    pub async fn start(workers: usize, extra: &str) -> Embedded {
        Self::start_with(workers, extra, |b| b).await
    }

    /// [`start`](Self::start), with the builder adjusted by `adjust` (custom hooks).
    pub async fn start_with(
        workers: usize,
        extra: &str,
        adjust: impl FnOnce(ClusterBuilder) -> ClusterBuilder,
    ) -> Embedded {
        Self::start_worker(Worker::Rust, workers, extra, adjust).await
    }

    /// [`start_with`](Self::start_with) for workers of kind `worker`.
    pub async fn start_worker(
        worker: Worker,
        workers: usize,
        extra: &str,
        adjust: impl FnOnce(ClusterBuilder) -> ClusterBuilder,
    ) -> Embedded {
        let command = worker.command();
        Self::start_command(&command, workers, extra, adjust).await
    }

    /// Starts `workers` workers running `command` (program, then arguments).
    pub async fn start_command(
        command: &[String],
        workers: usize,
        extra: &str,
        adjust: impl FnOnce(ClusterBuilder) -> ClusterBuilder,
    ) -> Embedded {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cluster.config.json");
        let sep = if extra.trim().is_empty() { "" } else { ", " };
        let json = format!(
            r#"{{"workers": {workers}, "port": 0, "host": "127.0.0.1", "command": {}, "args": {}{sep}{extra}}}"#,
            serde_json::json!(command[0]),
            serde_json::json!(command[1..])
        );
        std::fs::write(&path, json).unwrap();
        let mut o = Overrides::default();
        o.config_path = Some(path);
        let path_var = std::env::var("PATH").unwrap_or_else(|_| "/usr/bin:/bin".into());
        let spec =
            config::load(&o, &Environment::from_vars([("PATH", path_var)])).expect("config").spec;
        let cluster = adjust(Cluster::builder(spec)).build().await.expect("bind");
        let handle = cluster.handle();
        let events = handle.subscribe();
        let run = tokio::spawn(async move {
            cluster.run().await.expect("cluster run");
        });
        let e = Embedded { handle, events, run, _dir: dir };
        e.wait_until("workers ready", |s| s.ready_workers == workers).await;
        e
    }

    pub async fn status(&self) -> ClusterStatus {
        self.handle.status().await.expect("status")
    }

    /// Polls the status until `done` holds (at most [`WAIT`]).
    pub async fn wait_until(
        &self,
        what: &str,
        done: impl Fn(&ClusterStatus) -> bool,
    ) -> ClusterStatus {
        let deadline = Instant::now() + WAIT;
        loop {
            let status = self.status().await;
            if done(&status) {
                return status;
            }
            assert!(Instant::now() < deadline, "{what}: not within {WAIT:?}: {status:#?}");
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// The next event that `pick` accepts (at most [`WAIT`]); the others are skipped.
    pub async fn next_event<T>(
        &mut self,
        what: &str,
        pick: impl Fn(&ClusterEvent) -> Option<T>,
    ) -> T {
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, self.events.recv()).await {
                Ok(Ok(ev)) => {
                    if let Some(t) = pick(&ev) {
                        return t;
                    }
                }
                Ok(Err(broadcast::error::RecvError::Lagged(_))) => {}
                Ok(Err(e)) => panic!("{what}: event stream ended: {e}"),
                Err(_) => panic!("{what}: no such event within {WAIT:?}"),
            }
        }
    }

    /// The pid of the worker in `slot`.
    pub async fn pid_of_slot(&self, slot: usize) -> u32 {
        self.worker_in_slot(slot).await.1
    }

    /// The id and pid of the worker in `slot`.
    pub async fn worker_in_slot(&self, slot: usize) -> (u64, u32) {
        let status = self.status().await;
        let w = status.workers.iter().find(|w| w.slot == slot).expect("slot");
        (w.worker_id, w.pid)
    }

    /// The reason of the next ejection of worker `id`.
    pub async fn ejection_of(&mut self, id: u64) -> String {
        self.next_event("ejection", |ev| match ev {
            ClusterEvent::Ejected { worker_id, reason, .. } if *worker_id == id => {
                Some(reason.clone())
            }
            _ => None,
        })
        .await
    }

    /// The reason of the next recycle of worker `id`.
    pub async fn recycling_of(&mut self, id: u64) -> String {
        self.next_event("recycle", |ev| match ev {
            ClusterEvent::Recycling { worker_id, reason, .. } if *worker_id == id => {
                Some(reason.clone())
            }
            _ => None,
        })
        .await
    }

    pub async fn stop(self) {
        self.handle.shutdown(ShutdownMode::Graceful).unwrap();
        tokio::time::timeout(WAIT, self.run).await.expect("shutdown in time").unwrap();
    }
}

/// What one client saw: the status of each response (0 when the request failed at the
/// transport level) and the body, which for `/pid` names the worker.
pub type Seen = Vec<(u16, String)>;

/// Closed-loop `GET path` on `conns` keep-alive connections until `stop` is set, at most
/// `max_each` requests per connection and at most [`WAIT`].
pub fn load(
    addr: std::net::SocketAddr,
    path: &'static str,
    conns: usize,
    max_each: usize,
    stop: Arc<AtomicBool>,
) -> JoinHandle<Seen> {
    tokio::spawn(async move {
        let tasks: Vec<JoinHandle<Seen>> = (0..conns)
            .map(|_| {
                let stop = Arc::clone(&stop);
                tokio::spawn(async move {
                    let deadline = Instant::now() + WAIT;
                    let mut seen = Vec::new();
                    let mut conn = None;
                    while seen.len() < max_each
                        && !stop.load(Ordering::Relaxed)
                        && Instant::now() < deadline
                    {
                        if conn.is_none() {
                            conn = open(addr).await;
                        }
                        let Some(sender) = conn.as_mut() else {
                            seen.push((0, String::new()));
                            continue;
                        };
                        match get(sender, addr, path).await {
                            Some(answer) => seen.push(answer),
                            None => {
                                seen.push((0, String::new()));
                                conn = None;
                            }
                        }
                    }
                    seen
                })
            })
            .collect();
        let mut all = Vec::new();
        for t in tasks {
            all.extend(t.await.unwrap());
        }
        all
    })
}

pub type Sender = hyper::client::conn::http1::SendRequest<Empty<Bytes>>;

pub async fn open(addr: std::net::SocketAddr) -> Option<Sender> {
    let tcp = tokio::net::TcpStream::connect(addr).await.ok()?;
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp)).await.ok()?;
    tokio::spawn(conn);
    Some(sender)
}

pub async fn get(
    sender: &mut Sender,
    addr: std::net::SocketAddr,
    path: &str,
) -> Option<(u16, String)> {
    sender.ready().await.ok()?;
    let req = hyper::Request::get(path)
        .header("host", format!("app.test:{}", addr.port()))
        .body(Empty::new())
        .ok()?;
    let resp = sender.send_request(req).await.ok()?;
    let status = resp.status().as_u16();
    let body = resp.into_body().collect().await.ok()?.to_bytes();
    Some((status, String::from_utf8_lossy(&body).into_owned()))
}

/// Statuses other than 200, counted by status.
pub fn failures(seen: &Seen) -> Vec<(u16, usize)> {
    let mut counts = std::collections::BTreeMap::new();
    for (status, _) in seen.iter().filter(|(s, _)| *s != 200) {
        *counts.entry(*status).or_insert(0) += 1;
    }
    counts.into_iter().collect()
}
