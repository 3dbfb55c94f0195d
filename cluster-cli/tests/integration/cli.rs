//! The CLI commands against a running cluster and against none: status, health, scale,
//! reload, restart, stop, force-stop, clean, logs, `start --detach`, stale pid files, log
//! reopening, two clusters side by side.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use crate::util::{ClusterCmd, Worker, alive, cluster_bin, hello_bin};

const WAIT: Duration = Duration::from_secs(30);

/// `cluster <args>` run in `dir`.
pub(crate) fn cli(dir: &Path, args: &[&str]) -> Output {
    Command::new(cluster_bin())
        .args(args)
        .current_dir(dir)
        .env_remove("PORT")
        .env_remove("HOST")
        .output()
        .expect("run cluster")
}

fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

/// Kills a detached primary (and its workers) when a test ends, however it ends.
struct Detached {
    dir: tempfile::TempDir,
}

impl Detached {
    fn new() -> Self {
        Detached { dir: tempfile::tempdir().unwrap() }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The pid in the pid file of runtime directory `rt` (relative to the scratch dir).
    fn pid(&self, rt: &str) -> Option<u32> {
        std::fs::read_to_string(self.path().join(rt).join("cluster.pid")).ok()?.trim().parse().ok()
    }
}

impl Drop for Detached {
    fn drop(&mut self) {
        for rt in [".cluster", "a", "b"] {
            if let Some(pid) = self.pid(rt) {
                // Its own session and group: the workers' groups die with it (parent-death
                // signal and guardian).
                if let Some(p) = rustix::process::Pid::from_raw(pid as i32) {
                    let _ = rustix::process::kill_process(p, rustix::process::Signal::KILL);
                }
            }
        }
    }
}

fn start_detached(dir: &Path, extra: &[&str]) -> Output {
    let hello = hello_bin().display().to_string();
    let mut args =
        vec!["start", "--detach", "--host", "127.0.0.1", "--port", "0", "--workers", "2"];
    args.extend_from_slice(extra);
    args.extend_from_slice(&["--", hello.as_str()]);
    cli(dir, &args)
}

fn wait_gone(pid: u32) {
    let deadline = Instant::now() + WAIT;
    while alive(pid) {
        assert!(Instant::now() < deadline, "pid {pid} still runs");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn every_command_against_no_cluster_says_so_and_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    for args in [
        &["status"][..],
        &["status", "--json"],
        &["health"],
        &["scale", "up"],
        &["reload"],
        &["restart"],
        &["stop"],
        &["force-stop"],
        &["top"],
    ] {
        let out = cli(dir.path(), args);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {}", text(&out));
        assert!(text(&out).contains("no cluster is running"), "{args:?}: {}", text(&out));
    }
    let out = cli(dir.path(), &["logs"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("no log at"), "{}", text(&out));
    let out = cli(dir.path(), &["scale", "many"]);
    assert_eq!(out.status.code(), Some(2), "a usage error: {}", text(&out));
}

#[test]
fn the_commands_operate_a_running_cluster() {
    let c = ClusterCmd::workers(2, Worker::Rust)
        .config(r#"{"scaling": {"minWorkers": 1, "maxWorkers": 3}}"#)
        .spawn(2);
    let dir = c.dir().to_path_buf();
    let pids = c.worker_pids();
    let out = cli(&dir, &["status"]);
    assert!(out.status.success(), "{}", text(&out));
    let table = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(table.starts_with("id  "), "{table}");
    for pid in &pids {
        assert!(table.contains(&pid.to_string()), "pid {pid} in\n{table}");
    }
    assert!(table.contains("2 of 2 workers ready"), "{table}");
    let out = cli(&dir, &["status", "--json"]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(json["workers"].as_array().unwrap().len(), 2);
    let out = cli(&dir, &["health"]);
    assert!(out.status.success() && text(&out).contains("healthy: 2 of 2"), "{}", text(&out));

    let out = cli(&dir, &["scale", "up"]);
    assert!(out.status.success() && text(&out).contains("scaled from 2 to 3"), "{}", text(&out));
    let out = cli(&dir, &["scale", "up"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("scaling.maxWorkers (3)"), "{}", text(&out));
    let out = cli(&dir, &["scale", "1"]);
    assert!(out.status.success() && text(&out).contains("scaled from 3 to 1"), "{}", text(&out));
    let out = cli(&dir, &["scale", "down"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let out = cli(&dir, &["scale", "2"]);
    assert!(out.status.success(), "{}", text(&out));
    let deadline = Instant::now() + WAIT;
    while !text(&cli(&dir, &["health"])).contains("healthy: 2 of 2") {
        assert!(Instant::now() < deadline, "never 2 of 2 again");
        std::thread::sleep(Duration::from_millis(50));
    }

    let out = cli(&dir, &["reload"]);
    let said = text(&out);
    assert!(out.status.success(), "{said}");
    assert!(said.contains("rolling restart #1 started"), "{said}");
    assert_eq!(said.matches(" of 2: worker ").count(), 2, "a line per worker: {said}");
    assert!(said.contains("rolling restart #1 done: 2 workers replaced"), "{said}");

    let out = cli(&dir, &["restart"]);
    assert!(out.status.success() && text(&out).contains("restart #2 done"), "{}", text(&out));

    let primary = c.pid();
    let out = cli(&dir, &["stop"]);
    assert!(out.status.success() && text(&out).contains("stopped"), "{}", text(&out));
    wait_gone(primary);
    assert!(
        !dir.join(".cluster/cluster.sock").exists() && !dir.join(".cluster/cluster.pid").exists()
    );
}

#[test]
fn start_detach_logs_refuses_a_second_start_and_stops() {
    let d = Detached::new();
    let out = start_detached(d.path(), &[]);
    let said = text(&out);
    assert!(out.status.success(), "{said}");
    assert!(
        said.contains("started in the background")
            && said.contains("2 workers ready on http://127.0.0.1:"),
        "{said}"
    );
    let pid = d.pid(".cluster").expect("pid file");
    assert!(alive(pid));
    let out = cli(d.path(), &["logs", "-n", "200"]);
    let log = text(&out);
    assert!(log.contains("listening on http://") && log.contains("[w0] hello worker 0"), "{log}");
    assert!(cli(d.path(), &["health"]).status.success());

    let second = start_detached(d.path(), &[]);
    assert_eq!(second.status.code(), Some(1));
    assert!(text(&second).contains("already running"), "{}", text(&second));
    let foreground =
        cli(d.path(), &["start", "--port", "0", "--", &hello_bin().display().to_string()]);
    assert_eq!(foreground.status.code(), Some(1));
    assert!(text(&foreground).contains("already running"), "{}", text(&foreground));

    let out = cli(d.path(), &["stop"]);
    assert!(out.status.success(), "{}", text(&out));
    wait_gone(pid);
    let log = std::fs::read_to_string(d.path().join("logs/cluster.log")).unwrap();
    assert!(log.contains("all workers stopped; bye"), "{log}");
}

#[test]
fn a_stale_pid_file_is_detected_and_cleaned_up() {
    let d = Detached::new();
    assert!(start_detached(d.path(), &[]).status.success());
    let pid = d.pid(".cluster").unwrap();
    // The primary dies without a word (its workers with it).
    let _ = rustix::process::kill_process(
        rustix::process::Pid::from_raw(pid as i32).unwrap(),
        rustix::process::Signal::KILL,
    );
    wait_gone(pid);
    let out = cli(d.path(), &["status"]);
    assert_eq!(out.status.code(), Some(1));
    let said = text(&out);
    assert!(
        said.contains("died") && said.contains(&pid.to_string()) && said.contains("cleaned up"),
        "{said}"
    );
    assert!(!d.path().join(".cluster/cluster.pid").exists());
    // And a new cluster starts there.
    assert!(start_detached(d.path(), &[]).status.success());
    assert!(cli(d.path(), &["force-stop"]).status.success());
}

#[test]
fn clean_stops_and_removes_the_files_and_force_stop_kills() {
    let d = Detached::new();
    assert!(start_detached(d.path(), &[]).status.success());
    let pid = d.pid(".cluster").unwrap();
    let out = cli(d.path(), &["clean"]);
    assert!(out.status.success(), "{}", text(&out));
    wait_gone(pid);
    for gone in [".cluster/cluster.pid", ".cluster/cluster.sock", "logs/cluster.log"] {
        assert!(!d.path().join(gone).exists(), "{gone} left: {}", text(&out));
    }
    let out = cli(d.path(), &["clean"]);
    assert!(out.status.success() && text(&out).contains("nothing to clean"), "{}", text(&out));

    assert!(start_detached(d.path(), &[]).status.success());
    let pid = d.pid(".cluster").unwrap();
    let out = cli(d.path(), &["force-stop"]);
    assert!(out.status.success(), "{}", text(&out));
    wait_gone(pid);
    let log = std::fs::read_to_string(d.path().join("logs/cluster.log")).unwrap();
    assert!(log.contains("stopping now"), "{log}");
}

#[test]
fn sigusr1_reopens_the_log_file_after_a_rotation() {
    let d = Detached::new();
    assert!(start_detached(d.path(), &[]).status.success());
    let pid = d.pid(".cluster").unwrap();
    let log = d.path().join("logs/cluster.log");
    let rotated: PathBuf = d.path().join("logs/cluster.log.1");
    std::fs::rename(&log, &rotated).unwrap();
    let _ = rustix::process::kill_process(
        rustix::process::Pid::from_raw(pid as i32).unwrap(),
        rustix::process::Signal::USR1,
    );
    let deadline = Instant::now() + WAIT;
    while !std::fs::read_to_string(&log).unwrap_or_default().contains("reopened") {
        assert!(Instant::now() < deadline, "no new log file");
        std::thread::sleep(Duration::from_millis(20));
    }
    // New lines go to the new file.
    assert!(cli(d.path(), &["scale", "3"]).status.code().is_some());
    assert!(cli(d.path(), &["reload"]).status.success());
    // The log file is written by its own task: the line may follow the command's answer.
    let deadline = Instant::now() + WAIT;
    loop {
        let fresh = std::fs::read_to_string(&log).unwrap();
        if fresh.contains("rolling restart #1 done") {
            break;
        }
        assert!(Instant::now() < deadline, "{fresh}");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(!std::fs::read_to_string(&rotated).unwrap().contains("rolling restart #1"));
    assert!(cli(d.path(), &["stop"]).status.success());
}

#[test]
fn two_clusters_run_side_by_side_with_their_own_runtime_directories() {
    let d = Detached::new();
    assert!(start_detached(d.path(), &["--runtime-dir", "a"]).status.success());
    let second = start_detached(d.path(), &["--runtime-dir", "b"]);
    // Both log to logs/cluster.log by default: the second appends to the same file, fine.
    assert!(second.status.success(), "{}", text(&second));
    let (a, b) = (d.pid("a").unwrap(), d.pid("b").unwrap());
    assert_ne!(a, b);
    let out = cli(d.path(), &["status", "--json", "--runtime-dir", "b"]);
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(status["workers"].as_array().unwrap().len(), 2);
    assert!(cli(d.path(), &["stop", "--runtime-dir", "a"]).status.success());
    wait_gone(a);
    assert!(alive(b), "the other cluster runs on");
    assert!(cli(d.path(), &["health", "--runtime-dir", "b"]).status.success());
    let out = cli(d.path(), &["stop", "--socket", "b/cluster.sock", "--runtime-dir", "b"]);
    assert!(out.status.success(), "{}", text(&out));
    wait_gone(b);
}
