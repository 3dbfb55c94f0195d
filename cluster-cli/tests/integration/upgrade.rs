//! Hot upgrade of the primary (`cluster upgrade`, SIGURG): a new primary takes the front
//! socket, starts its workers, and the old one drains and exits, under keep-alive load and
//! new connections, with no refused connection and no failed request. A failed upgrade (a
//! binary that exits 1, an invalid configuration) leaves the old primary serving.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::Request;
use hyper_util::rt::TokioIo;
use rustix::process::Signal;
use tokio::time::Instant;

use crate::cli::cli;
use crate::util::{ClusterCmd, ClusterProc, Worker, alive};

/// Longest any load client runs, whatever happens.
const LOAD_LIMIT: Duration = Duration::from_secs(90);
/// Most requests one client sends.
const MAX_REQUESTS: usize = 200_000;

/// What the load clients saw.
#[derive(Default)]
struct Load {
    stop: AtomicBool,
    ok: AtomicUsize,
    /// Keep-alive connections the server ended with `Connection: close`.
    closed_by_server: AtomicUsize,
    refused: AtomicUsize,
    failed: Mutex<Vec<String>>,
    /// The worker pids that answered `/pid`.
    pids: Mutex<BTreeSet<u32>>,
}

impl Load {
    fn fail(&self, what: String) {
        self.failed.lock().unwrap().push(what);
    }

    fn answered(&self, body: &[u8]) {
        if let Some(pid) = std::str::from_utf8(body).ok().and_then(|s| s.trim().parse().ok()) {
            self.pids.lock().unwrap().insert(pid);
        }
        self.ok.fetch_add(1, Ordering::Relaxed);
    }

    fn done(&self, started: Instant, sent: usize) -> bool {
        self.stop.load(Ordering::Relaxed) || started.elapsed() > LOAD_LIMIT || sent >= MAX_REQUESTS
    }

    /// Asserts that every request was answered 200 and no connection was refused.
    fn assert_clean(&self) {
        let failed = self.failed.lock().unwrap();
        let ok = self.ok.load(Ordering::Relaxed);
        let refused = self.refused.load(Ordering::Relaxed);
        println!(
            "{ok} requests answered, {refused} connections refused, {} failed, {} keep-alive connections let go by the server",
            failed.len(),
            self.closed_by_server.load(Ordering::Relaxed)
        );
        assert_eq!(refused, 0, "refused connections: {failed:?}");
        assert!(
            failed.is_empty(),
            "{} failed requests, first: {:?}",
            failed.len(),
            &failed[..failed.len().min(5)]
        );
        assert!(ok > 50, "too little load to mean anything: {ok} requests");
    }
}

/// One `GET /pid` on `sender`: `Ok(keep)` when answered (`keep`: the connection may be used
/// again), `Err` when the request failed.
async fn one_request(
    sender: &mut hyper::client::conn::http1::SendRequest<Empty<Bytes>>,
    addr: SocketAddr,
    load: &Load,
) -> Result<bool, String> {
    let req = Request::get("/pid")
        .header("host", format!("app.test:{}", addr.port()))
        .body(Empty::new())
        .expect("request");
    let resp = sender.send_request(req).await.map_err(|e| format!("request: {e:?}"))?;
    let status = resp.status();
    let close = resp
        .headers()
        .get(hyper::header::CONNECTION)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"close"));
    let body = resp.into_body().collect().await.map_err(|e| format!("body: {e}"))?.to_bytes();
    if status != 200 {
        return Err(format!("status {status}: {}", String::from_utf8_lossy(&body)));
    }
    load.answered(&body);
    Ok(!close)
}

/// A keep-alive client: requests in a loop on one connection, a new connection only when the
/// server lets the old one go (`Connection: close`).
async fn keep_alive_client(addr: SocketAddr, load: Arc<Load>) {
    let started = Instant::now();
    let mut sent = 0;
    while !load.done(started, sent) {
        let tcp = match tokio::net::TcpStream::connect(addr).await {
            Ok(tcp) => tcp,
            Err(e) => {
                load.refused.fetch_add(1, Ordering::Relaxed);
                load.fail(format!("connect: {e}"));
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
        };
        let (mut sender, conn) =
            match hyper::client::conn::http1::handshake(TokioIo::new(tcp)).await {
                Ok(pair) => pair,
                Err(e) => {
                    load.fail(format!("handshake: {e}"));
                    continue;
                }
            };
        tokio::spawn(conn);
        while !load.done(started, sent) {
            sent += 1;
            match one_request(&mut sender, addr, &load).await {
                Ok(true) => {}
                Ok(false) => {
                    load.closed_by_server.fetch_add(1, Ordering::Relaxed);
                    break;
                }
                Err(e) => {
                    load.fail(e);
                    break;
                }
            }
        }
    }
}

/// A client that opens a new connection for every request.
async fn new_connection_client(addr: SocketAddr, load: Arc<Load>) {
    let started = Instant::now();
    let mut sent = 0;
    while !load.done(started, sent) {
        sent += 1;
        let tcp = match tokio::net::TcpStream::connect(addr).await {
            Ok(tcp) => tcp,
            Err(e) => {
                load.refused.fetch_add(1, Ordering::Relaxed);
                load.fail(format!("connect: {e}"));
                continue;
            }
        };
        let Ok((mut sender, conn)) = hyper::client::conn::http1::handshake(TokioIo::new(tcp)).await
        else {
            load.fail("handshake".into());
            continue;
        };
        tokio::spawn(conn);
        if let Err(e) = one_request(&mut sender, addr, &load).await {
            load.fail(e);
        }
    }
}

/// Starts `keep_alive` keep-alive clients and `fresh` new-connection clients.
fn start_load(
    addr: SocketAddr,
    keep_alive: usize,
    fresh: usize,
) -> (Arc<Load>, Vec<tokio::task::JoinHandle<()>>) {
    let load = Arc::new(Load::default());
    let mut tasks = Vec::new();
    for _ in 0..keep_alive {
        tasks.push(tokio::spawn(keep_alive_client(addr, Arc::clone(&load))));
    }
    for _ in 0..fresh {
        tasks.push(tokio::spawn(new_connection_client(addr, Arc::clone(&load))));
    }
    (load, tasks)
}

async fn stop_load(load: &Load, tasks: Vec<tokio::task::JoinHandle<()>>) {
    load.stop.store(true, Ordering::Relaxed);
    for task in tasks {
        tokio::time::timeout(Duration::from_secs(30), task)
            .await
            .expect("a load client did not stop")
            .expect("a load client panicked");
    }
}

/// Waits until the load has answered `n` more requests than now.
async fn more_answers(load: &Load, n: usize) {
    let target = load.ok.load(Ordering::Relaxed) + n;
    let deadline = Instant::now() + Duration::from_secs(30);
    while load.ok.load(Ordering::Relaxed) < target {
        assert!(Instant::now() < deadline, "the load stalled");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Runs `cluster <args>` in `dir` off the runtime; returns (exit code, stdout + stderr).
async fn run_cli(dir: &Path, args: &[&str]) -> (i32, String) {
    let dir = dir.to_path_buf();
    let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = cli(&dir, &args);
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.code().unwrap_or(-1), text)
    })
    .await
    .expect("cli")
}

/// The pid in the pid file (which a primary rewrites when it takes over: read it again if it
/// is caught empty).
fn pid_file(dir: &Path) -> u32 {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let text = std::fs::read_to_string(dir.join(".cluster/cluster.pid")).expect("pid file");
        if let Ok(pid) = text.trim().parse() {
            return pid;
        }
        assert!(std::time::Instant::now() < deadline, "no pid in the pid file: {text:?}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The pids of the workers `cluster status --json` lists.
async fn status_worker_pids(dir: &Path) -> BTreeSet<u32> {
    let (code, out) = run_cli(dir, &["status", "--json"]).await;
    assert_eq!(code, 0, "{out}");
    let status: serde_json::Value = serde_json::from_str(&out).expect("status JSON");
    status["workers"]
        .as_array()
        .expect("workers")
        .iter()
        .map(|w| w["pid"].as_u64().expect("pid") as u32)
        .collect()
}

/// Waits until `pid` has exited.
async fn gone(pid: u32, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(40);
    while alive(pid) {
        assert!(Instant::now() < deadline, "{what} (pid {pid}) is still running");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// After a handover: a new primary in the pid file, answering `status` with new workers; the
/// old primary exited 0 and its workers are gone; `cluster stop` stops the new one and leaves
/// no process behind.
async fn handed_over(proc: &mut ClusterProc, old_workers: &BTreeSet<u32>) {
    let dir = proc.dir().to_path_buf();
    let old = proc.pid();
    let exit = tokio::task::block_in_place(|| proc.wait_exit(Duration::from_secs(40)));
    assert!(exit.success(), "the old primary exited with {exit}");
    let new = pid_file(&dir);
    assert_ne!(new, old, "the pid file names the new primary");
    assert!(alive(new), "the new primary runs");
    let new_workers = status_worker_pids(&dir).await;
    assert_eq!(new_workers.len(), old_workers.len());
    assert!(
        new_workers.is_disjoint(old_workers),
        "new workers {new_workers:?}, old {old_workers:?}"
    );
    for &pid in old_workers {
        gone(pid, "an old worker").await;
    }
    let (code, out) = run_cli(&dir, &["stop"]).await;
    assert_eq!(code, 0, "{out}");
    gone(new, "the new primary").await;
    for &pid in &new_workers {
        gone(pid, "a new worker").await;
    }
    assert!(!dir.join(".cluster/cluster.pid").exists(), "the pid file is removed at the stop");
    assert!(!dir.join(".cluster/cluster.sock").exists(), "the socket is removed at the stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upgrade_under_keep_alive_load_refuses_nothing_and_fails_nothing() {
    let mut proc = ClusterCmd::workers(2, Worker::Rust).spawn(2);
    let dir = proc.dir().to_path_buf();
    let old_workers = status_worker_pids(&dir).await;
    let (load, tasks) = start_load(proc.addr, 4, 1);
    more_answers(&load, 200).await;

    let before = load.ok.load(Ordering::Relaxed);
    let (code, out) = run_cli(&dir, &["upgrade"]).await;
    assert_eq!(code, 0, "{out}\nlog:\n{}", proc.log().join("\n"));
    assert!(out.contains(&format!("upgraded: primary pid {} -> ", proc.pid())), "{out}");
    let during = load.ok.load(Ordering::Relaxed) - before;
    println!("{during} requests answered while `cluster upgrade` ran");
    assert!(during > 0, "the load ran through the handover");
    // The old primary has exited: the load now runs on the new one only.
    more_answers(&load, 200).await;
    stop_load(&load, tasks).await;
    load.assert_clean();
    let answered = load.pids.lock().unwrap().clone();
    assert!(!answered.is_disjoint(&old_workers), "old workers answered: {answered:?}");
    assert!(
        load.closed_by_server.load(Ordering::Relaxed) >= 4,
        "each keep-alive client was let go by the old primary with `Connection: close`"
    );
    handed_over(&mut proc, &old_workers).await;
    let new_workers: BTreeSet<u32> = answered.difference(&old_workers).copied().collect();
    assert!(!new_workers.is_empty(), "new workers answered: {answered:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigurg_upgrades_too() {
    let mut proc = ClusterCmd::workers(2, Worker::Rust).spawn(2);
    let dir = proc.dir().to_path_buf();
    let old = proc.pid();
    let old_workers = status_worker_pids(&dir).await;
    let (load, tasks) = start_load(proc.addr, 2, 1);
    more_answers(&load, 100).await;
    proc.signal(Signal::URG);
    tokio::task::block_in_place(|| {
        proc.wait_for_line("SIGURG: the new primary (pid", Duration::from_secs(60))
    });
    assert_ne!(pid_file(&dir), old);
    more_answers(&load, 100).await;
    stop_load(&load, tasks).await;
    load.assert_clean();
    handed_over(&mut proc, &old_workers).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_upgrade_leaves_the_old_primary_serving() {
    let mut proc = ClusterCmd::workers(2, Worker::Rust).spawn(2);
    let dir = proc.dir().to_path_buf();
    let old = proc.pid();
    let old_workers = status_worker_pids(&dir).await;
    let (load, tasks) = start_load(proc.addr, 3, 1);
    more_answers(&load, 100).await;

    // A new build that does not start.
    let broken = dir.join("broken-cluster");
    std::fs::write(&broken, "#!/bin/sh\necho 'broken build' >&2\nexit 1\n").unwrap();
    std::fs::set_permissions(&broken, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let (code, out) = run_cli(&dir, &["upgrade", "--binary", "broken-cluster"]).await;
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("upgrade failed") && out.contains("exit status: 1"), "{out}");
    assert!(out.contains(&format!("the primary (pid {old}) keeps serving")), "{out}");

    // A binary that is not there.
    let (code, out) = run_cli(&dir, &["upgrade", "--binary", "no-such-cluster"]).await;
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("cannot start the new primary") && out.contains("no such file"), "{out}");

    // A configuration made invalid since the start: the new primary says why.
    std::fs::write(dir.join("cluster.config.json"), r#"{"wrkers": 2}"#).unwrap();
    let (code, out) = run_cli(&dir, &["upgrade", "--runtime-dir", ".cluster"]).await;
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("unknown key `wrkers`") && out.contains("did you mean `workers`"),
        "{out}"
    );
    std::fs::remove_file(dir.join("cluster.config.json")).unwrap();

    // Still the same primary and workers, serving throughout.
    more_answers(&load, 100).await;
    stop_load(&load, tasks).await;
    load.assert_clean();
    assert_eq!(pid_file(&dir), old);
    assert_eq!(status_worker_pids(&dir).await, old_workers);
    assert!(proc.count("upgrade failed") >= 3, "each failure is in the log");
    // No new primary is left behind: a failed one is stopped.
    let (code, out) = run_cli(&dir, &["stop"]).await;
    assert_eq!(code, 0, "{out}");
    let exit = tokio::task::block_in_place(|| proc.wait_exit(Duration::from_secs(40)));
    assert!(exit.success(), "{exit}");
    let staged: Vec<_> = std::fs::read_dir(dir.join(".cluster"))
        .map_or(Vec::new(), |d| d.flatten().map(|e| e.file_name()).collect());
    assert!(staged.is_empty(), "files left in the runtime directory: {staged:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shared_socket_mode_hands_the_socket_over() {
    let mut proc =
        ClusterCmd::workers(2, Worker::Rust).config(r#"{"mode": "shared-socket"}"#).spawn(2);
    let dir = proc.dir().to_path_buf();
    let old_workers = status_worker_pids(&dir).await;
    // New connections: the workers accept them themselves, and a worker's own keep-alive
    // connections are its to close (see docs/upgrade.md).
    let (load, tasks) = start_load(proc.addr, 0, 3);
    more_answers(&load, 100).await;
    let (code, out) = run_cli(&dir, &["upgrade"]).await;
    assert_eq!(code, 0, "{out}\nlog:\n{}", proc.log().join("\n"));
    more_answers(&load, 100).await;
    stop_load(&load, tasks).await;
    load.assert_clean();
    let answered = load.pids.lock().unwrap().clone();
    assert!(answered.difference(&old_workers).count() > 0, "new workers answered: {answered:?}");
    handed_over(&mut proc, &old_workers).await;
}

/// Whether `unshare` can make a PID namespace here (root, util-linux); outside CI a missing
/// piece skips the test.
fn pid_namespaces() -> bool {
    let path = std::env::var("PATH").unwrap_or_default();
    let unshare = std::env::split_paths(&path).any(|d| d.join("unshare").is_file());
    if unshare && rustix::process::geteuid().is_root() {
        return true;
    }
    assert!(std::env::var_os("CI").is_none(), "CI must run the PID 1 test (root and unshare)");
    println!("skipped: needs root and unshare for a PID namespace");
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn as_pid_1_the_primary_refuses_to_hand_over() {
    if !pid_namespaces() {
        return;
    }
    // PID 1 of a new PID namespace, as in a container without an init.
    let proc = ClusterCmd::workers(2, Worker::Rust)
        .wrap_with(&["unshare", "--pid", "--fork", "--mount-proc", "--kill-child"])
        .spawn(2);
    let dir = proc.dir().to_path_buf();
    assert_eq!(pid_file(&dir), 1, "the primary is PID 1 of its namespace");
    let (load, tasks) = start_load(proc.addr, 1, 1);
    more_answers(&load, 50).await;
    let (code, out) = run_cli(&dir, &["upgrade"]).await;
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("PID 1") && out.contains("cannot hand over"), "{out}");
    more_answers(&load, 50).await;
    stop_load(&load, tasks).await;
    load.assert_clean();
    let (code, out) = run_cli(&dir, &["stop"]).await;
    assert_eq!(code, 0, "{out}");
}

/// A notify socket of our own, as systemd's, collecting every message.
fn notify_socket(path: &Path) -> Arc<Mutex<Vec<String>>> {
    let socket = std::os::unix::net::UnixDatagram::bind(path).expect("bind the notify socket");
    let messages = Arc::new(Mutex::new(Vec::new()));
    let into = Arc::clone(&messages);
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 4096];
        while let Ok(n) = socket.recv(&mut buf) {
            into.lock().unwrap().push(String::from_utf8_lossy(&buf[..n]).into_owned());
        }
    });
    messages
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_systemd_the_old_primary_names_the_new_one_mainpid() {
    let notify_dir = tempfile::tempdir().unwrap();
    let path = notify_dir.path().join("notify");
    let messages = notify_socket(&path);
    let mut proc =
        ClusterCmd::workers(2, Worker::Rust).env("NOTIFY_SOCKET", path.to_str().unwrap()).spawn(2);
    let dir = proc.dir().to_path_buf();
    let old_workers = status_worker_pids(&dir).await;
    let (code, out) = run_cli(&dir, &["upgrade"]).await;
    assert_eq!(code, 0, "{out}");
    let new = pid_file(&dir);
    let exit = tokio::task::block_in_place(|| proc.wait_exit(Duration::from_secs(40)));
    assert!(exit.success(), "{exit}");
    let seen = messages.lock().unwrap().clone();
    let mainpid = format!("MAINPID={new}\n");
    let at = seen.iter().position(|m| m.starts_with(&mainpid));
    let at = at.unwrap_or_else(|| panic!("no {mainpid:?} in {seen:#?}"));
    assert_eq!(seen.iter().filter(|m| m.contains("READY=1")).count(), 1, "{seen:#?}");
    assert!(
        !seen.iter().any(|m| m.contains("STOPPING=1")),
        "the old primary's handover is not the service stopping: {seen:#?}"
    );
    assert!(seen[..at].iter().any(|m| m.starts_with("READY=1")), "{seen:#?}");
    // The new primary speaks for the service from now on, up to its stop.
    let (code, out) = run_cli(&dir, &["stop"]).await;
    assert_eq!(code, 0, "{out}");
    gone(new, "the new primary").await;
    let seen = messages.lock().unwrap().clone();
    assert!(seen.iter().any(|m| m.contains("STOPPING=1")), "{seen:#?}");
    for &pid in &old_workers {
        assert!(!alive(pid), "old worker {pid}");
    }
}

/// Force-stops a detached cluster when the test ends, however it ends.
struct Detached(tempfile::TempDir);

impl Drop for Detached {
    fn drop(&mut self) {
        let _ = cli(self.0.path(), &["force-stop"]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_detached_primary_hands_over_to_a_detached_one() {
    let scratch = Detached(tempfile::tempdir().unwrap());
    let dir = scratch.0.path().to_path_buf();
    let hello = crate::util::hello_bin();
    // Started through a symlink, as a deploy that switches a `current` link does.
    let bin = dir.join("bin");
    std::fs::create_dir(&bin).unwrap();
    std::os::unix::fs::symlink(crate::util::cluster_bin(), bin.join("cluster")).unwrap();
    let start = std::process::Command::new(bin.join("cluster"))
        .args(["start", "--detach", "--host", "127.0.0.1", "--port", "0", "--workers", "2", "--"])
        .arg(&hello)
        .current_dir(&dir)
        .env_remove("PORT")
        .env_remove("HOST")
        .output()
        .expect("cluster start --detach");
    assert!(start.status.success(), "{}", String::from_utf8_lossy(&start.stderr));
    let old = pid_file(&dir);
    let old_workers = status_worker_pids(&dir).await;
    // The new build: the link now points elsewhere (a script that says so, then runs it).
    let build = dir.join("new-build");
    let script = format!(
        "#!/bin/sh\necho 'new build starting' >&2\nexec '{}' \"$@\"\n",
        crate::util::cluster_bin().display()
    );
    std::fs::write(&build, script).unwrap();
    std::fs::set_permissions(&build, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    std::fs::remove_file(bin.join("cluster")).unwrap();
    std::os::unix::fs::symlink(&build, bin.join("cluster")).unwrap();
    let (code, out) = run_cli(&dir, &["upgrade"]).await;
    assert_eq!(code, 0, "{out}");
    let new = pid_file(&dir);
    assert_ne!(new, old);
    assert!(!alive(old), "the old primary has exited");
    // Both wrote to the same log file; the new one has a session of its own.
    let log = std::fs::read_to_string(dir.join("logs/cluster.log")).expect("log file");
    assert!(
        log.contains("front socket") && log.contains("from the old primary (hot upgrade)"),
        "{log}"
    );
    assert!(log.contains(&format!("hot upgrade: the new primary (pid {new}) serves")), "{log}");
    assert!(log.contains("new build starting"), "the link was followed again: {log}");
    assert_eq!(
        rustix::process::getsid(rustix::process::Pid::from_raw(new as i32))
            .ok()
            .map(|p| p.as_raw_nonzero().get() as u32),
        Some(new)
    );
    let new_workers = status_worker_pids(&dir).await;
    assert!(new_workers.is_disjoint(&old_workers));
    let (code, out) = run_cli(&dir, &["stop"]).await;
    assert_eq!(code, 0, "{out}");
    gone(new, "the new primary").await;
    for pid in new_workers.into_iter().chain(old_workers) {
        gone(pid, "a worker").await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_listener_is_handed_over_and_always_healthy() {
    let mut proc = ClusterCmd::workers(2, Worker::Rust)
        .config(r#"{"admin": {"listen": "127.0.0.1:0"}}"#)
        .spawn(2);
    let dir = proc.dir().to_path_buf();
    let line = proc.wait_for_line("admin API on http://", Duration::from_secs(10));
    let admin: SocketAddr = line
        .split("admin API on http://")
        .nth(1)
        .and_then(|s| s.split('/').next())
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("no admin address in {line:?}"));
    let old_workers = status_worker_pids(&dir).await;
    // A readiness probe, as Kubernetes sends it: a new connection each time.
    let stop = Arc::new(AtomicBool::new(false));
    let probes = {
        let stop = Arc::clone(&stop);
        tokio::spawn(async move {
            let mut answers = Vec::new();
            let started = Instant::now();
            while !stop.load(Ordering::Relaxed) && started.elapsed() < LOAD_LIMIT {
                let answer = match tokio::net::TcpStream::connect(admin).await {
                    Ok(tcp) => match hyper::client::conn::http1::handshake(TokioIo::new(tcp)).await
                    {
                        Ok((mut sender, conn)) => {
                            tokio::spawn(conn);
                            let req = Request::get("/api/admin/cluster/health")
                                .header("host", admin.to_string())
                                .body(Empty::<Bytes>::new())
                                .unwrap();
                            match sender.send_request(req).await {
                                Ok(resp) => resp.status().as_u16().to_string(),
                                Err(e) => format!("request: {e}"),
                            }
                        }
                        Err(e) => format!("handshake: {e}"),
                    },
                    Err(e) => format!("connect: {e}"),
                };
                answers.push(answer);
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            answers
        })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (code, out) = run_cli(&dir, &["upgrade"]).await;
    assert_eq!(code, 0, "{out}\nlog:\n{}", proc.log().join("\n"));
    tokio::time::sleep(Duration::from_millis(200)).await;
    stop.store(true, Ordering::Relaxed);
    let answers = probes.await.unwrap();
    let bad: Vec<&String> = answers.iter().filter(|a| *a != "200").collect();
    println!("{} health probes on the admin listener, {} not 200", answers.len(), bad.len());
    assert!(answers.len() > 10, "{answers:?}");
    assert!(bad.is_empty(), "{bad:?}");
    // The same address, served by the new primary.
    let (code, out) = run_cli(&dir, &["status", "--json"]).await;
    assert_eq!(code, 0, "{out}");
    handed_over(&mut proc, &old_workers).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_primary_can_be_upgraded_in_turn() {
    let mut proc = ClusterCmd::workers(2, Worker::Rust).spawn(2);
    let dir = proc.dir().to_path_buf();
    let (load, tasks) = start_load(proc.addr, 2, 1);
    more_answers(&load, 100).await;
    let (code, out) = run_cli(&dir, &["upgrade"]).await;
    assert_eq!(code, 0, "{out}");
    let exit = tokio::task::block_in_place(|| proc.wait_exit(Duration::from_secs(40)));
    assert!(exit.success(), "{exit}");
    let second = pid_file(&dir);
    more_answers(&load, 100).await;
    // The second primary holds what the first handed it (the socket, the lock, the paths)
    // and hands it on the same way, here by signal.
    let pid = rustix::process::Pid::from_raw(second as i32).unwrap();
    rustix::process::kill_process(pid, Signal::URG).unwrap();
    gone(second, "the second primary").await;
    let third = pid_file(&dir);
    assert!(third != second && alive(third), "a third primary serves");
    more_answers(&load, 100).await;
    stop_load(&load, tasks).await;
    load.assert_clean();
    let (code, out) = run_cli(&dir, &["stop"]).await;
    assert_eq!(code, 0, "{out}");
    gone(third, "the third primary").await;
}
