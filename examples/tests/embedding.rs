//! The embedding examples run as real clusters: the example binary as the primary, started
//! with `PORT=0` in a temporary directory, its workers real processes (the same binary, or a
//! command), requests over TCP on 127.0.0.1, and every process checked gone at the end.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use support::example_bin;

/// How long a cluster may take to answer its first request, a worker to be replaced, a
/// process to go: generous, the machine is shared with builds.
const PATIENCE: Duration = Duration::from_secs(30);

/// Variables a test process may have from its own supervisor that would change the role or
/// the sockets of the example.
const FOREIGN: [&str; 12] = [
    "CLUSTER_WORKER_ID",
    "CLUSTER_WORKER_GENERATION",
    "NODE_APP_INSTANCE",
    "CLUSTER_CONFIG_PATH",
    "CLUSTER_WORKERS",
    "SOCKET_PATH",
    "NOTIFY_SOCKET",
    "WATCHDOG_USEC",
    "LISTEN_FDS",
    "LISTEN_PID",
    "LISTEN_FDNAMES",
    "HEALTH_CHECK_INTERVAL",
];

/// A running example primary; killed on drop (its workers die with it: parent-death signal).
struct Primary {
    child: Child,
    addr: String,
    lines: Arc<Mutex<Vec<String>>>,
    _dir: tempfile::TempDir,
}

impl Primary {
    /// Starts `example` with `args` and `env`, on a free port, in a fresh directory holding
    /// `config` as `cluster.config.json` when given; waits for its `listening on` line.
    fn start(example: &str, args: &[&str], env: &[(&str, &str)], config: Option<&str>) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        if let Some(config) = config {
            std::fs::write(dir.path().join("cluster.config.json"), config).expect("config");
        }
        let mut cmd = Command::new(example_bin(example));
        for key in FOREIGN {
            cmd.env_remove(key);
        }
        let mut child = cmd
            .args(args)
            .current_dir(dir.path())
            .env("HOST", "127.0.0.1")
            .env("PORT", "0")
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn the example");
        let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
        let mut first = String::new();
        let _ = stdout.read_line(&mut first);
        if !first.starts_with("listening on ") {
            // No `Primary` yet to kill on drop: do not leave the example running.
            let _ = child.kill();
            let _ = child.wait();
            panic!("{example} did not say where it listens: {first:?}");
        }
        let addr = first.split_whitespace().nth(2).expect("address").trim_end_matches(';');
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&lines);
        std::thread::spawn(move || {
            for line in stdout.lines().map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });
        Primary { child, addr: addr.to_owned(), lines, _dir: dir }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// One `GET /`: the worker's slot and pid, from `... worker <slot> pid <pid>`; `None` when
    /// the request fails (no worker ready yet).
    fn get(&self) -> Option<(usize, u32)> {
        let mut tcp = TcpStream::connect(&self.addr).ok()?;
        tcp.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
        tcp.write_all(b"GET / HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n").ok()?;
        let mut response = String::new();
        tcp.read_to_string(&mut response).ok()?;
        if !response.starts_with("HTTP/1.1 200") {
            return None;
        }
        let body = response.split("\r\n\r\n").nth(1)?;
        let words: Vec<&str> = body.split_whitespace().collect();
        let after = |key: &str| words.iter().position(|w| *w == key).map(|i| words[i + 1]);
        Some((after("worker")?.parse().ok()?, after("pid")?.parse().ok()?))
    }

    /// Sends requests until `done` holds for the workers seen so far (pid → slot), for up to
    /// [`PATIENCE`].
    fn serve_until(&self, done: impl Fn(&BTreeMap<u32, usize>) -> bool) -> BTreeMap<u32, usize> {
        let deadline = Instant::now() + PATIENCE;
        let mut seen = BTreeMap::new();
        while !done(&seen) {
            assert!(Instant::now() < deadline, "not served as expected; seen {seen:?}");
            match self.get() {
                Some((slot, pid)) => {
                    seen.insert(pid, slot);
                }
                None => std::thread::sleep(Duration::from_millis(50)),
            }
        }
        seen
    }

    /// Waits for a line of output containing `text`.
    fn wait_for_line(&self, text: &str) -> String {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(line) = self.lines.lock().unwrap().iter().find(|l| l.contains(text)) {
                return line.clone();
            }
            assert!(Instant::now() < deadline, "no line with {text:?}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGTERM, then the exit status and how long the stop took.
    fn terminate(&mut self) -> (ExitStatus, Duration) {
        let started = Instant::now();
        signal("TERM", self.pid());
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return (status, started.elapsed());
            }
            assert!(started.elapsed() < PATIENCE, "the primary did not stop");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Primary {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn signal(name: &str, pid: u32) {
    let status = Command::new("kill").args([&format!("-{name}"), &pid.to_string()]).status();
    assert!(status.expect("kill").success(), "kill -{name} {pid}");
}

/// Whether `pid` is a live process (not gone, not a zombie).
fn alive(pid: u32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { return false };
    let state = stat.rsplit_once(')').and_then(|(_, rest)| rest.split_whitespace().next());
    state != Some("Z")
}

/// The parent pid of `pid`.
fn parent(pid: u32) -> u32 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("stat");
    let (_, rest) = stat.rsplit_once(')').expect("stat format");
    rest.split_whitespace().nth(1).expect("ppid").parse().expect("ppid number")
}

/// The program `pid` runs.
fn exe(pid: u32) -> PathBuf {
    std::fs::read_link(format!("/proc/{pid}/exe")).expect("exe link")
}

/// Waits until none of `pids` is alive.
fn all_gone(pids: impl IntoIterator<Item = u32>) {
    let deadline = Instant::now() + PATIENCE;
    for pid in pids {
        while alive(pid) {
            assert!(Instant::now() < deadline, "process {pid} still runs");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Checks that `workers` are children of `primary` running `program`, one per slot.
fn check_workers(primary: &Primary, workers: &BTreeMap<u32, usize>, program: &Path) {
    let program = program.canonicalize().expect("canonical path");
    for &pid in workers.keys() {
        assert_ne!(pid, primary.pid(), "a worker is a process of its own");
        assert_eq!(parent(pid), primary.pid(), "worker {pid} is the primary's child");
        assert_eq!(exe(pid), program, "worker {pid} runs {}", program.display());
    }
    let slots: BTreeSet<_> = workers.values().collect();
    assert_eq!(slots.len(), workers.len(), "one worker per slot: {workers:?}");
}

/// The embedded example with three workers under `config`: it serves from distinct worker
/// processes (the same binary, in worker role) and stops gracefully on SIGTERM.
fn embedded_cluster(config: Option<&str>, spread: usize) {
    let env = [("CLUSTER_WORKERS", "3"), ("GRACEFUL_SHUTDOWN_TIMEOUT", "20000")];
    let mut primary = Primary::start("embedded", &[], &env, config);
    let workers = primary.serve_until(|seen| seen.len() >= spread);
    check_workers(&primary, &workers, &example_bin("embedded"));
    let (status, took) = primary.terminate();
    assert!(status.success(), "the primary exits 0 after SIGTERM: {status}");
    // Well under the 20 s after which the workers would be killed: they drained and exited.
    assert!(took < Duration::from_secs(10), "the stop took {took:?}");
    all_gone(workers.into_keys());
}

#[test]
fn the_embedded_example_serves_from_its_own_workers_and_stops_gracefully() {
    embedded_cluster(None, 3);
}

#[test]
fn the_embedded_workers_serve_on_unix_sockets() {
    // `SOCKET_PATH`: the worker helper binds the Unix socket the cluster names.
    embedded_cluster(Some(r#"{"upstream": "unix"}"#), 3);
}

#[test]
fn the_embedded_workers_accept_on_the_shared_socket() {
    // `LISTEN_FDS`: the workers accept on the front socket themselves; the kernel spreads the
    // connections, so only one worker is sure to be seen.
    embedded_cluster(Some(r#"{"mode": "shared-socket"}"#), 1);
}

#[test]
fn an_embedded_worker_stopped_by_hand_leaves_and_is_replaced() {
    let env = [("CLUSTER_WORKERS", "2")];
    let primary = Primary::start("embedded", &[], &env, None);
    let first = primary.serve_until(|seen| seen.len() >= 2);
    let (&victim, &slot) = first.iter().next().expect("a worker");
    signal("TERM", victim);
    all_gone([victim]);
    // Its slot serves again, from a new process.
    let after = primary.serve_until(|seen| seen.iter().any(|(p, s)| *s == slot && *p != victim));
    let (&replacement, _) = after.iter().find(|(_, s)| **s == slot).expect("its replacement");
    assert_eq!(parent(replacement), primary.pid(), "started by the same primary");
}

#[test]
fn the_custom_spawner_pins_each_worker_to_its_cpu() {
    let cpus = examples::allowed_cpus().expect("cpus");
    let primary = Primary::start("custom_spawner", &[], &[("CLUSTER_WORKERS", "2")], None);
    let workers = primary.serve_until(|seen| seen.len() >= 2);
    check_workers(&primary, &workers, &example_bin("custom_spawner"));
    for (pid, slot) in workers {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
        let allowed = status
            .lines()
            .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
            .expect("Cpus_allowed_list")
            .trim();
        assert_eq!(allowed, cpus[slot % cpus.len()].to_string(), "worker {pid} in slot {slot}");
    }
}

#[test]
fn the_custom_health_policy_recycles_workers_past_their_age() {
    let env = [("CLUSTER_WORKERS", "2"), ("HEALTH_CHECK_INTERVAL", "500")];
    let primary = Primary::start("custom_health", &["2"], &env, None);
    let first = primary.serve_until(|seen| seen.len() >= 2);
    let line = primary.wait_for_line("recycling worker");
    assert!(line.contains("max age: up for"), "{line}");
    // The first generation goes, and new processes serve in its slots.
    all_gone(first.keys().copied());
    let later = primary.serve_until(|seen| seen.len() >= 2);
    assert!(later.keys().all(|pid| !first.contains_key(pid)), "{first:?} then {later:?}");
}

#[test]
fn the_custom_strategy_balances_a_cluster_of_a_plain_command() {
    // The embedded example as a plain worker command: under `CLUSTER_WORKER_ID` it is a
    // worker, whoever started it.
    let command = example_bin("embedded");
    let primary = Primary::start("custom_strategy", &[command.to_str().unwrap()], &[], None);
    let workers = primary.serve_until(|seen| seen.len() >= 2);
    check_workers(&primary, &workers, &command);
}
