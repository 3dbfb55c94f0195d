//! `upstream: "unix"`: workers listen on Unix sockets in a private directory, the proxy,
//! the probes and the rolling restarts reach them there, and the directory goes at stop.

use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::cli::cli;
use crate::embedded::{failures, load};
use crate::util::{ClusterCmd, Worker, alive, cluster_bin, get};

const WAIT: Duration = Duration::from_secs(30);

/// The probes run every 300 ms over the sockets: a worker they could not reach would be
/// ejected within a second.
const CONFIG: &str = r#"{"upstream": "unix", "healthCheckPath": "/health",
    "healthCheckInterval": 300, "health": {"probeFailures": 2}}"#;

fn status(dir: &Path) -> Value {
    let out = cli(dir, &["status", "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("status JSON")
}

/// `(slot, pid, socket path)` of every worker in the status, by slot.
fn sockets(status: &Value) -> Vec<(u64, u64, PathBuf)> {
    let mut all: Vec<(u64, u64, PathBuf)> = status["workers"]
        .as_array()
        .expect("workers")
        .iter()
        .map(|w| {
            let addr = w["addr"].as_str().expect("addr");
            let path = addr.strip_prefix("unix:").unwrap_or_else(|| panic!("not a socket: {addr}"));
            (w["slot"].as_u64().unwrap(), w["pid"].as_u64().unwrap(), PathBuf::from(path))
        })
        .collect();
    all.sort();
    all
}

/// Polls the status until `done` holds.
fn wait_status(dir: &Path, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + WAIT;
    loop {
        let s = status(dir);
        if done(&s) {
            return s;
        }
        assert!(Instant::now() < deadline, "{what}: never; last status {s:#}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn all_ready(s: &Value, n: usize) -> bool {
    let workers = s["workers"].as_array().unwrap();
    workers.len() == n
        && workers.iter().all(|w| w["status"] == "ready" && w["replaces"].is_null())
        && workers.iter().all(|w| w["ejected"] == false)
}

fn is_socket(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.file_type().is_socket())
}

async fn serves_over_unix_sockets(worker: Worker) {
    let cmd = ClusterCmd::workers(2, worker).config(CONFIG);
    // The socket directory goes under XDG_RUNTIME_DIR: here, the scratch folder.
    let scratch = cmd.dir().to_path_buf();
    let c = cmd.env("XDG_RUNTIME_DIR", &scratch.display().to_string()).spawn(2);
    let dir = c.dir().to_path_buf();

    // Every worker has its own socket, in one private directory.
    let first = sockets(&wait_status(&dir, "two ready", |s| all_ready(s, 2)));
    let socket_dir = first[0].2.parent().unwrap().to_path_buf();
    assert_eq!(socket_dir.parent(), Some(scratch.as_path()), "{first:?}");
    let mode = std::fs::metadata(&socket_dir).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o700, "a private directory");
    assert_ne!(first[0].2, first[1].2);
    for (_, _, path) in &first {
        assert!(is_socket(path), "{} is a socket", path.display());
        assert_eq!(path.parent(), Some(socket_dir.as_path()));
    }

    // Requests go through the front port to the workers' sockets; each worker was told its
    // path and no port.
    let mut told = Vec::new();
    for _ in 0..20 {
        let (code, body) = get(c.addr, "/env").await;
        assert_eq!(code, 200, "{}", String::from_utf8_lossy(&body));
        let env: Value = serde_json::from_slice(&body).unwrap();
        assert!(env["PORT"].is_null() && env["HOST"].is_null(), "{env}");
        told.push(PathBuf::from(env["SOCKET_PATH"].as_str().expect("SOCKET_PATH")));
    }
    for (_, _, path) in &first {
        assert!(told.contains(path), "{} served no request: {told:?}", path.display());
    }

    // A rolling restart under keep-alive load loses no request, and the new workers are on
    // new sockets; the old ones' files are gone.
    let stop = Arc::new(AtomicBool::new(false));
    let traffic = load(c.addr, "/pid", 4, 50_000, Arc::clone(&stop));
    tokio::time::sleep(Duration::from_millis(300)).await;
    let reload = {
        let dir = dir.clone();
        tokio::task::spawn_blocking(move || cli(&dir, &["reload"])).await.unwrap()
    };
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&reload.stdout),
        String::from_utf8_lossy(&reload.stderr)
    );
    assert!(reload.status.success() && said.contains("2 workers replaced"), "{said}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::Relaxed);
    let seen = traffic.await.unwrap();
    assert!(seen.len() > 100, "too little load: {}", seen.len());
    assert!(failures(&seen).is_empty(), "failed requests: {:?}", failures(&seen));
    let second = sockets(&wait_status(&dir, "replaced", |s| all_ready(s, 2)));
    for (old, new) in first.iter().zip(&second) {
        assert_ne!(old.1, new.1, "a new process in slot {}", old.0);
        assert_ne!(old.2, new.2, "a new socket in slot {}", old.0);
        assert!(!old.2.exists(), "{} left behind", old.2.display());
        assert!(is_socket(&new.2));
    }

    // A killed worker leaves its socket file; the cluster removes it and starts a
    // replacement on a new socket, which serves.
    let (slot, pid, path) = second[0].clone();
    rustix::process::kill_process(
        rustix::process::Pid::from_raw(pid as i32).unwrap(),
        rustix::process::Signal::KILL,
    )
    .unwrap();
    let third = sockets(&wait_status(&dir, "replacement ready", |s| {
        all_ready(s, 2) && sockets(s).iter().all(|w| w.1 != pid)
    }));
    let replacement = third.iter().find(|w| w.0 == slot).unwrap();
    assert_ne!(replacement.2, path);
    assert!(!path.exists(), "the killed worker's socket {} is removed", path.display());
    let deadline = Instant::now() + WAIT;
    loop {
        let (code, body) = get(c.addr, "/pid").await;
        assert_eq!(code, 200);
        if String::from_utf8_lossy(&body).trim() == replacement.1.to_string() {
            break;
        }
        assert!(Instant::now() < deadline, "the replacement never served");
    }

    // The probes kept reaching every worker over its socket: nobody was ejected.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let last = status(&dir);
    assert!(all_ready(&last, 2), "{last:#}");

    let primary = c.pid();
    let out = cli(&dir, &["stop"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let deadline = Instant::now() + WAIT;
    while alive(primary) {
        assert!(Instant::now() < deadline, "the primary still runs");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(!socket_dir.exists(), "{} left after stop", socket_dir.display());
    drop(c);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_workers_serve_over_unix_sockets() {
    serves_over_unix_sockets(Worker::Rust).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_workers_serve_over_unix_sockets() {
    serves_over_unix_sockets(Worker::Node).await;
}

#[test]
fn an_unknown_upstream_is_a_config_error() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("cluster.config.json"), r#"{"upstream": "socket"}"#).unwrap();
    let out = cli(dir.path(), &["start", "--workers", "1", "--", "true"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("invalid value for `upstream`"), "{stderr}");
    assert!(stderr.contains(r#"expected one of "tcp", "unix""#), "{stderr}");
}

#[test]
fn too_long_a_socket_path_stops_start_up_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let deep = dir.path().join("r".repeat(100));
    std::fs::create_dir(&deep).unwrap();
    std::fs::write(dir.path().join("cluster.config.json"), r#"{"upstream": "unix"}"#).unwrap();
    let out = Command::new(cluster_bin())
        .args(["start", "--host", "127.0.0.1", "--port", "0", "--workers", "1", "--", "true"])
        .current_dir(dir.path())
        .env("XDG_RUNTIME_DIR", &deep)
        .output()
        .expect("run cluster");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("longer than the 107 a Unix socket address holds"), "{stderr}");
    assert_eq!(std::fs::read_dir(&deep).unwrap().count(), 0, "nothing left behind");
}

#[tokio::test]
async fn the_demo_worker_listens_on_its_socket_too() {
    let cmd = ClusterCmd::start(&["--workers", "1"]).config(r#"{"upstream": "unix"}"#);
    // In the scratch folder: the primary is killed at the end, and leaves its directory.
    let scratch = cmd.dir().display().to_string();
    let c = cmd.env("XDG_RUNTIME_DIR", &scratch).spawn(1);
    let (code, body) = get(c.addr, "/").await;
    assert_eq!(code, 200);
    assert!(String::from_utf8_lossy(&body).contains("hello from cluster demo worker 0"));
    let addr = sockets(&status(c.dir()))[0].2.clone();
    assert!(is_socket(&addr), "{}", addr.display());
}

/// A reload that switches to Unix sockets reaches the workers with the next rolling restart:
/// TCP and Unix-socket workers serve side by side during it, and no request fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_moves_the_workers_from_tcp_to_unix_sockets_without_losing_a_request() {
    let cmd = ClusterCmd::workers(2, Worker::Rust);
    let scratch = cmd.dir().to_path_buf();
    let c = cmd.env("XDG_RUNTIME_DIR", &scratch.display().to_string()).spawn(2);
    let dir = c.dir().to_path_buf();
    let before = wait_status(&dir, "two ready", |s| all_ready(s, 2));
    for w in before["workers"].as_array().unwrap() {
        let addr = w["addr"].as_str().unwrap();
        assert!(addr.starts_with("127.0.0.1:"), "{addr}");
    }
    std::fs::write(dir.join("cluster.config.json"), r#"{"upstream": "unix"}"#).unwrap();
    c.signal(rustix::process::Signal::USR2);
    c.wait_for_line(
        "configuration reloaded: upstream tcp -> unix (applies from the next rolling restart)",
        WAIT,
    );
    let stop = Arc::new(AtomicBool::new(false));
    let traffic = load(c.addr, "/pid", 4, 50_000, Arc::clone(&stop));
    tokio::time::sleep(Duration::from_millis(300)).await;
    let reload = {
        let dir = dir.clone();
        tokio::task::spawn_blocking(move || cli(&dir, &["reload"])).await.unwrap()
    };
    assert!(reload.status.success(), "{}", String::from_utf8_lossy(&reload.stdout));
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::Relaxed);
    let seen = traffic.await.unwrap();
    assert!(seen.len() > 100, "too little load: {}", seen.len());
    assert!(failures(&seen).is_empty(), "failed requests: {:?}", failures(&seen));
    let after = sockets(&wait_status(&dir, "replaced", |s| all_ready(s, 2)));
    assert!(after.iter().all(|w| is_socket(&w.2)), "{after:?}");
}
