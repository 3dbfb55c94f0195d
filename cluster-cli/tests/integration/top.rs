//! `cluster top` in a real terminal: tmux runs it in a pane of a fixed size, on a server of
//! its own whose socket is in the test's scratch folder (`tmux -S`: private to the test, and
//! removed with the folder, where a `-L` socket would stay in /tmp/tmux-UID after the server
//! ends); the tests read the screen with `capture-pane`, type `q`, and check that the
//! terminal settings and the normal screen came back.
//!
//! The pane runs a small shell script that records the terminal settings (`stty -g`) before
//! and after `top`, and `top`'s exit code and stderr, in files of the scratch folder.
//!
//! Without tmux the terminal tests are skipped with a message, except under CI (`CI` set),
//! where a missing tmux fails them: .ci/run installs it.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use rustix::process::Signal;

use crate::util::{ClusterCmd, ClusterProc, Worker, cluster_bin};

/// The pane's size.
const WIDTH: u16 = 120;
const HEIGHT: u16 = 30;

/// Whether tmux can be run; when it cannot, says so and returns false (the caller skips), or
/// fails under CI.
fn tmux_available() -> bool {
    let found = Command::new("tmux").arg("-V").output().is_ok_and(|o| o.status.success());
    if !found {
        assert!(
            std::env::var_os("CI").is_none(),
            "tmux is not installed: the `cluster top` tests need it in CI (.ci/run installs it)"
        );
        eprintln!("skipped: tmux is not installed, and the `cluster top` tests run it");
    }
    found
}

/// A tmux server of its own with one session; killed when dropped, panics included.
struct Tmux {
    socket: PathBuf,
}

impl Tmux {
    /// Starts the server, with its socket in `dir`, and a session whose only pane runs
    /// `sh -c script`.
    fn run(dir: &Path, script: &str) -> Tmux {
        let tmux = Tmux { socket: dir.join("tmux.sock") };
        let (w, h) = (WIDTH.to_string(), HEIGHT.to_string());
        let started =
            tmux.cmd(&["new-session", "-d", "-s", "top", "-x", &w, "-y", &h, "sh", "-c", script]);
        assert!(started.status.success(), "tmux new-session: {}", text(&started.stderr));
        tmux
    }

    fn cmd(&self, args: &[&str]) -> Output {
        // `-f /dev/null`: no user configuration; no TMUX variable, in case the tests run
        // inside tmux.
        Command::new("tmux")
            .arg("-S")
            .arg(&self.socket)
            .args(["-f", "/dev/null"])
            .args(args)
            .env_remove("TMUX")
            .stdin(Stdio::null())
            .output()
            .expect("run tmux")
    }

    /// The text on the pane's screen now.
    fn capture(&self) -> String {
        let out = self.cmd(&["capture-pane", "-p", "-t", "top"]);
        assert!(out.status.success(), "tmux capture-pane: {}", text(&out.stderr));
        text(&out.stdout)
    }

    /// Whether the pane shows the alternate screen.
    fn alternate_on(&self) -> bool {
        let out = self.cmd(&["display-message", "-p", "-t", "top", "#{alternate_on}"]);
        text(&out.stdout).trim() == "1"
    }

    fn send_keys(&self, keys: &str) {
        let out = self.cmd(&["send-keys", "-t", "top", keys]);
        assert!(out.status.success(), "tmux send-keys: {}", text(&out.stderr));
    }

    /// Captures the screen until `ready` holds for it; panics with the screen and `why` after
    /// `timeout`.
    fn wait_for(
        &self,
        timeout: Duration,
        why: impl Fn() -> String,
        ready: impl Fn(&str) -> bool,
    ) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let screen = self.capture();
            if ready(&screen) {
                return screen;
            }
            assert!(Instant::now() < deadline, "timed out; screen:\n{screen}\n{}", why());
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.cmd(&["kill-server"]);
    }
}

/// What the pane runs: `cluster top` between two `stty -g`, its exit code and stderr kept in
/// `dir` (the code written last, so that once it is there the settings after are too); then
/// the pane stays (a pane that ends would end the session and its screen).
fn top_script(dir: &Path) -> String {
    let q = |p: PathBuf| format!("'{}'", p.display().to_string().replace('\'', r"'\''"));
    format!(
        "stty -g > {before}; {bin} top --runtime-dir {rt} 2> {err}; code=$?; stty -g > {after}; echo $code > {code}; exec sleep 600",
        before = q(dir.join("top.stty-before")),
        bin = q(cluster_bin()),
        rt = q(dir.join(".cluster")),
        err = q(dir.join("top.err")),
        code = q(dir.join("top.code")),
        after = q(dir.join("top.stty-after")),
    )
}

/// `top`'s exit code, once it has exited (its script wrote it); panics after `timeout`.
fn exit_code(cluster: &ClusterProc, tmux: &Tmux, timeout: Duration) -> i32 {
    let path = cluster.dir().join("top.code");
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(code) = std::fs::read_to_string(&path).ok().and_then(|c| c.trim().parse().ok())
        {
            return code;
        }
        assert!(
            Instant::now() < deadline,
            "cluster top did not exit; screen:\n{}\nstderr: {}",
            tmux.capture(),
            read(cluster.dir(), "top.err")
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The terminal is as `top` found it: the same settings (raw mode off, echo on, ...) and the
/// normal screen back.
fn assert_terminal_restored(cluster: &ClusterProc, tmux: &Tmux) {
    let before = read(cluster.dir(), "top.stty-before");
    let after = read(cluster.dir(), "top.stty-after");
    assert!(!before.trim().is_empty(), "no terminal settings recorded");
    assert_eq!(before, after, "the terminal settings changed");
    assert!(!tmux.alternate_on(), "still on the alternate screen");
    let screen = tmux.capture();
    assert!(!screen.contains("workers ready"), "top's screen is still shown:\n{screen}");
}

fn read(dir: &Path, name: &str) -> String {
    std::fs::read_to_string(dir.join(name)).unwrap_or_default()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The workers table's rows on `screen`: (slot, pid, state).
fn worker_rows(screen: &str) -> Vec<(u32, u32, String)> {
    screen
        .lines()
        .filter_map(|line| {
            let mut cells =
                line.split(|c: char| c.is_whitespace() || c == '│').filter(|c| !c.is_empty());
            let slot = cells.next()?.parse().ok()?;
            let pid = cells.next()?.parse().ok()?;
            let _generation: u32 = cells.next()?.parse().ok()?;
            Some((slot, pid, cells.next()?.to_owned()))
        })
        .collect()
}

/// The clock of the header (`HH:MM:SS UTC`).
fn clock(screen: &str) -> Option<String> {
    let first = screen.lines().next()?;
    let at = first.find(" UTC")?;
    let time = first.get(at.checked_sub(8)?..at)?;
    time.bytes().all(|b| b.is_ascii_digit() || b == b':').then(|| time.to_owned())
}

/// The screen shows the header and exactly one ready row per worker of `pids`.
fn shows_cluster(screen: &str, pids: &[u32]) -> bool {
    let rows = worker_rows(screen);
    screen.contains("cluster top")
        && screen.contains("2 of 2 workers ready")
        && clock(screen).is_some()
        && rows.len() == pids.len()
        && pids.iter().all(|pid| {
            rows.iter().filter(|(_, p, state)| p == pid && state == "ready").count() == 1
        })
}

#[test]
fn top_shows_the_workers_live_and_quits_on_q() {
    if !tmux_available() {
        return;
    }
    let cluster = ClusterCmd::workers(2, Worker::Rust).spawn(2);
    let pids = cluster.worker_pids();
    assert_eq!(pids.len(), 2, "{:?}", cluster.log());
    let tmux = Tmux::run(cluster.dir(), &top_script(cluster.dir()));
    let why = || format!("stderr: {}", read(cluster.dir(), "top.err"));

    let first = tmux.wait_for(Duration::from_secs(20), why, |s| shows_cluster(s, &pids));
    assert!(tmux.alternate_on(), "top draws on the alternate screen");
    let slots: Vec<u32> = worker_rows(&first).iter().map(|(slot, ..)| *slot).collect();
    assert_eq!(slots, [0, 1], "one row per worker in slot order:\n{first}");
    // A refresh later the screen has moved: at least the clock.
    std::thread::sleep(Duration::from_millis(1100));
    let second = tmux.wait_for(Duration::from_secs(10), why, |s| {
        shows_cluster(s, &pids) && clock(s) != clock(&first)
    });
    assert_ne!(first, second);

    tmux.send_keys("q");
    assert_eq!(exit_code(&cluster, &tmux, Duration::from_secs(10)), 0, "{}", why());
    assert_eq!(read(cluster.dir(), "top.err"), "", "top printed errors");
    assert_terminal_restored(&cluster, &tmux);
}

#[test]
fn top_needs_a_terminal_and_says_when_the_cluster_stops() {
    if !tmux_available() {
        return;
    }
    let mut cluster = ClusterCmd::workers(2, Worker::Rust).spawn(2);
    let pids = cluster.worker_pids();
    // stdout a pipe: a usage error.
    let rt = cluster.dir().join(".cluster");
    let out = Command::new(cluster_bin())
        .arg("top")
        .arg("--runtime-dir")
        .arg(&rt)
        .current_dir(cluster.dir())
        .stdin(Stdio::null())
        .output()
        .expect("run top");
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("cluster status"),
        "points to `cluster status`: {}",
        text(&out.stderr)
    );

    let tmux = Tmux::run(cluster.dir(), &top_script(cluster.dir()));
    let dir = cluster.dir().to_owned();
    let why = || format!("stderr: {}", read(&dir, "top.err"));
    tmux.wait_for(Duration::from_secs(20), why, |s| shows_cluster(s, &pids));
    cluster.signal(Signal::TERM);
    cluster.wait_exit(Duration::from_secs(30));
    assert_eq!(exit_code(&cluster, &tmux, Duration::from_secs(10)), 1, "{}", why());
    let err = read(cluster.dir(), "top.err");
    assert_eq!(err.trim(), "cluster: the cluster stopped", "{err}");
    assert_terminal_restored(&cluster, &tmux);
}

/// No cluster: exit 1 and say so, before anything else (stdout is not a terminal here, which
/// would be exit 2: the running-cluster check comes first).
#[test]
fn top_without_a_cluster_says_none_is_running() {
    let dir = tempfile::tempdir().expect("scratch dir");
    let out = Command::new(cluster_bin())
        .arg("top")
        .arg("--runtime-dir")
        .arg(dir.path().join(".cluster"))
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .output()
        .expect("run top");
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("no cluster is running"), "{err}");
    assert!(out.stdout.is_empty(), "{}", text(&out.stdout));
}
