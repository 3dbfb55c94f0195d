//! Helpers for tests that run the real `cluster` binary with real worker processes.
//!
//! Every process a test starts is killed when its [`ClusterProc`] is dropped: the primary's
//! process group, then every worker process group seen in its log.

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper_util::rt::TokioIo;
use rustix::process::{Pid, Signal};

/// The `cluster` binary under test.
pub fn cluster_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_cluster"))
}

/// The `hello` example worker, built by `cargo test --workspace` (or built here if missing).
pub fn hello_bin() -> PathBuf {
    static BUILT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BUILT
        .get_or_init(|| {
            let exe = std::env::current_exe().expect("test exe");
            let profile_dir = exe.parent().and_then(|d| d.parent()).expect("target/<profile>");
            let path = profile_dir.join("examples").join("hello");
            if !path.exists() {
                let status = Command::new(env!("CARGO"))
                    .args(["build", "-p", "examples", "--example", "hello"])
                    .status()
                    .expect("run cargo build for the hello example");
                assert!(status.success(), "building the hello example failed");
            }
            path
        })
        .clone()
}

/// The plain Node.js worker of `examples/node`.
pub fn node_server() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/node/server.js"))
}

/// The worker programs the tests run behind the cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Worker {
    /// The Rust `hello` example.
    Rust,
    /// The plain Node.js `http` server of `examples/node`.
    Node,
}

impl Worker {
    /// Both kinds, for tests that must hold for any worker.
    pub const ALL: [Worker; 2] = [Worker::Rust, Worker::Node];

    /// The command line that runs this worker.
    pub fn command(self) -> Vec<String> {
        match self {
            Worker::Rust => vec![hello_bin().display().to_string()],
            Worker::Node => vec!["node".into(), node_server().display().to_string()],
        }
    }
}

/// A running `cluster` primary.
pub struct ClusterProc {
    child: Option<Child>,
    pub addr: SocketAddr,
    log: Arc<Mutex<Vec<String>>>,
    dir: tempfile::TempDir,
}

/// Builds the command line of a cluster run.
pub struct ClusterCmd {
    cmd: Command,
    dir: tempfile::TempDir,
    stdout: Option<std::fs::File>,
}

impl ClusterCmd {
    /// `cluster start --host 127.0.0.1 --port 0 <args>` in a fresh scratch folder.
    pub fn start(args: &[&str]) -> Self {
        Self::subcommand("start", args)
    }

    /// `cluster dev --host 127.0.0.1 --port 0 <args>` in a fresh scratch folder, which is the
    /// primary's working directory and so the directory `cluster dev` watches by default.
    pub fn dev(args: &[&str]) -> Self {
        Self::subcommand("dev", args)
    }

    fn subcommand(name: &str, args: &[&str]) -> Self {
        let mut c = Self::bare(&[name]);
        c.cmd.args(["--host", "127.0.0.1", "--port", "0"]).args(args);
        c
    }

    /// The scratch folder: the primary's working directory.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Sends the primary's stdout (the workers' `[wN]` output lines) to `name` in the scratch
    /// folder instead of the log; the log keeps stderr (the primary's own lines).
    pub fn stdout_to_file(mut self, name: &str) -> Self {
        let file = std::fs::File::create(self.dir.path().join(name)).expect("create stdout file");
        self.stdout = Some(file);
        self
    }

    /// `cluster <args>` in a fresh scratch folder, without the address flags (the address then
    /// comes from the configuration file, which a test may change).
    pub fn bare(args: &[&str]) -> Self {
        let dir = tempfile::tempdir().expect("scratch dir");
        let mut cmd = Command::new(cluster_bin());
        cmd.args(args);
        cmd.current_dir(dir.path()).env_remove("PORT").env_remove("HOST").env("LOG_LEVEL", "info");
        Self { cmd, dir, stdout: None }
    }

    /// Runs the primary through `wrapper` (a program and its first arguments, which must end
    /// by executing the rest of its arguments: `sh -c '...; exec "$@"' sh`), with the same
    /// arguments, directory and environment.
    pub fn wrap_with(mut self, wrapper: &[&str]) -> Self {
        let mut cmd = Command::new(wrapper[0]);
        cmd.args(&wrapper[1..]).arg(self.cmd.get_program()).args(self.cmd.get_args());
        if let Some(dir) = self.cmd.get_current_dir() {
            cmd.current_dir(dir);
        }
        for (key, value) in self.cmd.get_envs() {
            match value {
                Some(value) => cmd.env(key, value),
                None => cmd.env_remove(key),
            };
        }
        self.cmd = cmd;
        self
    }

    /// `cluster start --workers <n> -- <worker command>`.
    pub fn workers(n: usize, worker: Worker) -> Self {
        let n = n.to_string();
        let mut args = vec!["--workers", n.as_str(), "--"];
        let command = worker.command();
        args.extend(command.iter().map(String::as_str));
        Self::start(&args)
    }

    /// Sets an environment variable of the primary (its workers inherit it).
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.cmd.env(key, value);
        self
    }

    /// Writes `json` as `./cluster.config.json` in the scratch folder (the primary's working
    /// directory), where `cluster start` finds it.
    pub fn config(self, json: &str) -> Self {
        std::fs::write(self.dir.path().join("cluster.config.json"), json).expect("write config");
        self
    }

    /// Starts the primary and waits until it listens and `ready` workers are ready.
    pub fn spawn(self, ready: usize) -> ClusterProc {
        let mut proc = self.launch();
        let line = proc.wait_for_line("listening on http://", Duration::from_secs(20));
        let addr =
            line.split("listening on http://").nth(1).and_then(|s| s.split_whitespace().next());
        proc.addr =
            addr.and_then(|a| a.parse().ok()).unwrap_or_else(|| panic!("no address in {line:?}"));
        proc.wait_for_count(" ready: pid ", ready, Duration::from_secs(30));
        proc
    }

    /// Starts the primary without waiting for anything (for runs that are expected to fail).
    pub fn launch(mut self) -> ClusterProc {
        use std::os::unix::process::CommandExt;
        let stdout = match self.stdout.take() {
            Some(file) => Stdio::from(file),
            None => Stdio::piped(),
        };
        self.cmd.stdin(Stdio::null()).stdout(stdout).stderr(Stdio::piped());
        self.cmd.process_group(0);
        let mut child = self.cmd.spawn().expect("start cluster");
        let log = Arc::new(Mutex::new(Vec::new()));
        if let Some(stdout) = child.stdout.take() {
            collect(stdout, Arc::clone(&log));
        }
        collect(child.stderr.take().expect("stderr"), Arc::clone(&log));
        ClusterProc { child: Some(child), addr: ([0, 0, 0, 0], 0).into(), log, dir: self.dir }
    }
}

fn collect(stream: impl Read + Send + 'static, log: Arc<Mutex<Vec<String>>>) {
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines() {
            let Ok(line) = line else { break };
            log.lock().unwrap().push(line);
        }
    });
}

impl ClusterProc {
    /// The primary's pid.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(Child::id).unwrap_or(0)
    }

    /// The scratch folder: the primary's working directory.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Every line of stdout and stderr so far.
    pub fn log(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }

    /// Lines containing `needle`.
    pub fn count(&self, needle: &str) -> usize {
        self.log.lock().unwrap().iter().filter(|l| l.contains(needle)).count()
    }

    /// Waits for a line containing `needle`; panics with the log on timeout.
    pub fn wait_for_line(&self, needle: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(l) = self.log.lock().unwrap().iter().find(|l| l.contains(needle)) {
                return l.clone();
            }
            assert!(
                Instant::now() < deadline,
                "no line with {needle:?} in:\n{}",
                self.log().join("\n")
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits until `n` lines contain `needle`.
    pub fn wait_for_count(&self, needle: &str, n: usize, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while self.count(needle) < n {
            assert!(
                Instant::now() < deadline,
                "wanted {n} lines with {needle:?}, log:\n{}",
                self.log().join("\n")
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Pids of workers reported ready in the log.
    pub fn worker_pids(&self) -> Vec<u32> {
        self.log()
            .iter()
            .filter_map(|l| l.split(" ready: pid ").nth(1)?.split_whitespace().next()?.parse().ok())
            .collect()
    }

    /// Sends `sig` to the primary.
    pub fn signal(&self, sig: Signal) {
        if let Some(pid) = Pid::from_raw(self.pid() as i32) {
            let _ = rustix::process::kill_process(pid, sig);
        }
    }

    /// Waits for the primary to exit.
    pub fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let child = self.child.as_mut().expect("running");
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = child.try_wait().expect("try_wait") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "cluster did not exit; log:\n{}",
                self.log().join("\n")
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Peak resident memory of the primary so far (VmHWM), in KiB.
    pub fn peak_rss_kib(&self) -> u64 {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    }
}

impl Drop for ClusterProc {
    fn drop(&mut self) {
        let workers = self.worker_pids();
        if let Some(mut child) = self.child.take() {
            if let Some(pid) = Pid::from_raw(child.id() as i32) {
                let _ = rustix::process::kill_process_group(pid, Signal::KILL);
            }
            let _ = child.wait();
        }
        for pid in workers {
            if let Some(pid) = Pid::from_raw(pid as i32) {
                let _ = rustix::process::kill_process_group(pid, Signal::KILL);
            }
        }
    }
}

/// Whether process `pid` exists: it is not a zombie, or it is one whose other threads are
/// still exiting. A killed multi-threaded process's leader turns zombie first, while the
/// other threads still hold its files (its socket, its pid-file lock); only when they are
/// gone is the process gone for the files it held.
pub fn alive(pid: u32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    let zombie = stat.rsplit(')').next().is_some_and(|rest| rest.trim_start().starts_with('Z'));
    let threads = std::fs::read_dir(format!("/proc/{pid}/task")).map_or(0, Iterator::count);
    !zombie || threads > 1
}

/// A keep-alive HTTP/1.1 client connection to the cluster.
pub struct Conn {
    sender: hyper::client::conn::http1::SendRequest<Full<Bytes>>,
    addr: SocketAddr,
}

impl Conn {
    /// Opens a connection.
    pub async fn open(addr: SocketAddr) -> Conn {
        let tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let (sender, conn) =
            hyper::client::conn::http1::handshake(TokioIo::new(tcp)).await.expect("handshake");
        tokio::spawn(conn.with_upgrades());
        Conn { sender, addr }
    }

    /// Sends a request and reads the whole response.
    pub async fn send(&mut self, method: &str, path: &str, body: Bytes) -> (u16, Bytes) {
        let resp = self.request(method, path, body).await;
        let status = resp.status().as_u16();
        let body = resp.into_body().collect().await.expect("body").to_bytes();
        (status, body)
    }

    /// Sends a request and returns the response with its body unread.
    pub async fn request(
        &mut self,
        method: &str,
        path: &str,
        body: Bytes,
    ) -> hyper::Response<hyper::body::Incoming> {
        self.request_with(method, path, body, &[]).await
    }

    /// Sends a request with extra headers; the response's body is unread.
    pub async fn request_with(
        &mut self,
        method: &str,
        path: &str,
        body: Bytes,
        headers: &[(&str, &str)],
    ) -> hyper::Response<hyper::body::Incoming> {
        self.sender.ready().await.expect("connection ready");
        let mut req = Request::builder().method(method).uri(path);
        if !headers.iter().any(|(name, _)| name.eq_ignore_ascii_case("host")) {
            req = req.header("host", format!("app.test:{}", self.addr.port()));
        }
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        let req = req.body(Full::new(body)).expect("request");
        self.sender.send_request(req).await.expect("response")
    }
}

/// `GET path` on a fresh connection.
pub async fn get(addr: SocketAddr, path: &str) -> (u16, Bytes) {
    Conn::open(addr).await.send("GET", path, Bytes::new()).await
}
