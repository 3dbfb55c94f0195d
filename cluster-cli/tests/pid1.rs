//! The primary as a container's PID 1, without Docker: `unshare --pid --fork` starts it as
//! PID 1 of a new PID namespace, as `docker run` does, and the test sends SIGTERM from outside
//! the namespace, as `docker stop` does.
//!
//! - Alone as PID 1, the primary drains on SIGTERM (a response in flight is sent to its end,
//!   exit 0), but it waits only for the processes it started: an orphan that a worker leaves
//!   behind is reparented to PID 1 and stays a zombie. Hence `tini` in the images (docs/deploy.md).
//! - Under `tini` as PID 1 (the images' ENTRYPOINT), the orphans are reaped and `docker
//!   stop`'s SIGTERM still reaches the primary, which drains the same way.
//!
//! Needs root (a PID namespace), `unshare` (util-linux), `tini` and `node`; skipped with a
//! message when one is missing, except in CI.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rustix::process::{Pid, Signal};

#[path = "common/children.rs"]
mod children;

/// A worker that leaves an orphan behind: a shell that exits at once, its background `sleep`
/// reparented to PID 1, where it becomes a zombie when it ends unless PID 1 waits for it.
const ORPHANING_WORKER: &str = "sh -c 'sleep 0.2 & exit 0'; exec node \"$0\"";

/// A PID namespace running `cluster start`, directly or under tini. Dropping it kills
/// `unshare`, whose `--kill-child` kills the namespace's PID 1, which takes every process of
/// the namespace with it.
struct Namespace {
    unshare: Child,
    log: Arc<Mutex<Vec<String>>>,
    _dir: tempfile::TempDir,
}

impl Drop for Namespace {
    fn drop(&mut self) {
        if let Some(pid) = Pid::from_raw(self.unshare.id() as i32) {
            let _ = rustix::process::kill_process_group(pid, Signal::KILL);
        }
        let _ = self.unshare.wait();
    }
}

impl Namespace {
    fn start(init: &[&str]) -> Self {
        let dir = tempfile::tempdir().expect("scratch dir");
        let server =
            PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/node/server.js"));
        let mut cmd = Command::new("unshare");
        cmd.args(["--pid", "--fork", "--mount-proc", "--kill-child"])
            .args(init)
            .arg(env!("CARGO_BIN_EXE_cluster"))
            .args(["start", "--host", "127.0.0.1", "--port", "0", "--workers", "2"])
            .arg("--runtime-dir")
            .arg(dir.path().join("run"))
            .args(["--", "sh", "-c", ORPHANING_WORKER])
            .arg(server)
            .current_dir(dir.path())
            .env_remove("PORT")
            .env_remove("HOST")
            .env("LOG_LEVEL", "info")
            .env("WORKER_QUIET", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .process_group(0);
        let mut unshare = cmd.spawn().expect("run unshare");
        let log = Arc::new(Mutex::new(Vec::new()));
        let stderr = unshare.stderr.take().unwrap();
        let lines = Arc::clone(&log);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                lines.lock().unwrap().push(line);
            }
        });
        Self { unshare, log, _dir: dir }
    }

    fn log(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }

    /// Waits for `n` lines containing `needle`; returns the first.
    fn wait_for(&self, needle: &str, n: usize) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let found: Vec<String> =
                self.log.lock().unwrap().iter().filter(|l| l.contains(needle)).cloned().collect();
            if found.len() >= n {
                return found[0].clone();
            }
            assert!(Instant::now() < deadline, "no {n} lines with {needle:?}:\n{}", self.log());
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The front address, once the workers are ready.
    fn ready(&self) -> SocketAddr {
        let line = self.wait_for("listening on http://", 1);
        self.wait_for(" ready: pid ", 2);
        let addr = line.split("listening on http://").nth(1).unwrap();
        addr.split_whitespace().next().unwrap().parse().expect("front address")
    }

    /// The namespace's PID 1, by its pid outside the namespace.
    fn init_pid(&self) -> u32 {
        let pid = children(self.unshare.id()).first().map(|c| c.pid).expect("unshare's child");
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
        let ns_pid = status.lines().find_map(|l| l.strip_prefix("NSpid:")).unwrap();
        assert_eq!(ns_pid.split_whitespace().last(), Some("1"), "PID 1 in its namespace");
        pid
    }

    /// Waits for `unshare` to exit (it exits as its child, the namespace's PID 1, did).
    fn wait_exit(&mut self) -> std::process::ExitStatus {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.unshare.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "did not exit:\n{}", self.log());
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// The children of `parent`.
fn children(parent: u32) -> Vec<children::ProcEntry> {
    children::children_of(parent)
}

/// A streamed response in flight: 5 events 300 ms apart (`/stream` of examples/node), once
/// the first has arrived (so the request has surely reached a worker). The thread reads the
/// rest and returns the whole answer.
fn request_in_flight(addr: SocketAddr) -> std::thread::JoinHandle<String> {
    let mut stream = TcpStream::connect(addr).expect("connect");
    let head = "GET /stream?n=5&interval=300 HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n";
    stream.write_all(head.as_bytes()).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&answer).contains("data: event 1") {
        let n = stream.read(&mut buf).expect("the first event");
        assert!(n > 0, "closed before the first event: {}", String::from_utf8_lossy(&answer));
        answer.extend_from_slice(&buf[..n]);
    }
    std::thread::spawn(move || {
        let _ = stream.read_to_end(&mut answer);
        String::from_utf8_lossy(&answer).into_owned()
    })
}

/// Whether this machine can run the test; outside CI a missing piece skips it.
fn runnable() -> bool {
    let path = std::env::var("PATH").unwrap_or_default();
    let have = |p: &str| std::env::split_paths(&path).any(|d| d.join(p).is_file());
    let mut missing: Vec<&str> =
        ["unshare", "tini", "node"].into_iter().filter(|p| !have(p)).collect();
    if !rustix::process::geteuid().is_root() {
        missing.push("root (for a PID namespace)");
    }
    if missing.is_empty() {
        return true;
    }
    assert!(std::env::var_os("CI").is_none(), "missing in CI: {missing:?}");
    println!("skipped: missing {missing:?}");
    false
}

/// SIGTERM to the namespace's PID 1 (`docker stop`) with a response in flight: it is sent to
/// its end, and the namespace ends with exit code 0.
fn stop_drains(ns: &mut Namespace, addr: SocketAddr, init: u32) {
    let request = request_in_flight(addr);
    rustix::process::kill_process(Pid::from_raw(init as i32).unwrap(), Signal::TERM).unwrap();
    let status = ns.wait_exit();
    let answer = request.join().unwrap();
    assert!(answer.starts_with("HTTP/1.1 200 OK"), "the in-flight request: {answer}\n{}", ns.log());
    assert!(answer.contains("data: event 5"), "the whole stream: {answer}\n{}", ns.log());
    assert!(status.success(), "{status}:\n{}", ns.log());
    assert!(ns.log().contains("SIGTERM: graceful shutdown"), "{}", ns.log());
}

#[test]
fn as_pid_1_the_primary_drains_on_sigterm_but_leaves_orphans_unreaped() {
    if !runnable() {
        return;
    }
    let mut ns = Namespace::start(&[]);
    let addr = ns.ready();
    let cluster = ns.init_pid();
    // The orphaned `sleep 0.2` of each worker has ended by now: zombies of PID 1.
    let deadline = Instant::now() + Duration::from_secs(10);
    let zombies = loop {
        let zombies: Vec<_> =
            children(cluster).into_iter().filter(|c| c.state == 'Z' && c.comm == "sleep").collect();
        if zombies.len() >= 2 || Instant::now() > deadline {
            break zombies;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(
        zombies.len(),
        2,
        "each worker's orphan is left a zombie of the primary as PID 1 (if the primary now reaps \
         orphans, docs/deploy.md and the images' tini need a second look): {:?}",
        children(cluster)
    );
    stop_drains(&mut ns, addr, cluster);
}

#[test]
fn under_tini_orphans_are_reaped_and_sigterm_still_drains() {
    if !runnable() {
        return;
    }
    let mut ns = Namespace::start(&["tini", "--"]);
    let addr = ns.ready();
    let tini = ns.init_pid();
    std::thread::sleep(Duration::from_millis(800));
    let kids = children(tini);
    assert_eq!(kids.len(), 1, "tini's only child is the primary, no zombie: {kids:?}");
    assert_eq!(kids[0].comm, "cluster");
    stop_drains(&mut ns, addr, tini);
}
