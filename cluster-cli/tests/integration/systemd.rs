//! The primary under systemd's notify protocol (`Type=notify`): a real datagram socket stands
//! in for systemd's, and every message the primary sends to `NOTIFY_SOCKET` is read back.

use std::os::unix::net::UnixDatagram;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use rustix::process::Signal;

use crate::util::{ClusterCmd, Worker};

const WAIT: Duration = Duration::from_secs(30);

/// Collects the datagrams sent to `socket` on a thread of its own.
fn listen(socket: UnixDatagram) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 4096];
        while let Ok(n) = socket.recv(&mut buf) {
            if tx.send(String::from_utf8_lossy(&buf[..n]).into_owned()).is_err() {
                return;
            }
        }
    });
    rx
}

/// Waits for a message that contains `needle`; returns it and every message skipped on the way.
fn wait_for(rx: &mpsc::Receiver<String>, needle: &str) -> (String, Vec<String>) {
    let deadline = Instant::now() + WAIT;
    let mut skipped = Vec::new();
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        match rx.recv_timeout(left) {
            Ok(m) if m.contains(needle) => return (m, skipped),
            Ok(m) => skipped.push(m),
            Err(_) => break,
        }
    }
    panic!("no notification with {needle:?}; got {skipped:?}");
}

#[test]
fn the_primary_speaks_the_notify_protocol() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notify.sock");
    let socket = UnixDatagram::bind(&path).unwrap();
    let rx = listen(socket);
    let mut c = ClusterCmd::workers(2, Worker::Rust)
        .env("NOTIFY_SOCKET", path.to_str().unwrap())
        .env("WATCHDOG_USEC", "400000")
        .spawn(2);

    let (ready, before) = wait_for(&rx, "READY=1");
    assert!(ready.contains("STATUS=2 of 2 workers ready"), "{ready:?}");
    assert!(ready.contains(&format!("MAINPID={}", c.pid())), "{ready:?}");
    assert!(before.iter().all(|m| !m.contains("READY=1")), "{before:?}");
    wait_for(&rx, "WATCHDOG=1");

    // A rolling restart is a reload: RELOADING=1 (with the monotonic clock), then READY=1.
    c.signal(Signal::HUP);
    let (reloading, _) = wait_for(&rx, "RELOADING=1");
    assert!(reloading.contains("MONOTONIC_USEC="), "{reloading:?}");
    wait_for(&rx, "READY=1");
    c.wait_for_line("rolling restart #1 done", WAIT);

    c.signal(Signal::TERM);
    wait_for(&rx, "STOPPING=1");
    assert!(c.wait_exit(WAIT).success());
}

#[test]
fn a_watchdog_meant_for_another_process_is_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notify.sock");
    let socket = UnixDatagram::bind(&path).unwrap();
    let rx = listen(socket);
    let mut c = ClusterCmd::workers(1, Worker::Rust)
        .env("NOTIFY_SOCKET", path.to_str().unwrap())
        .env("WATCHDOG_USEC", "200000")
        .env("WATCHDOG_PID", "1")
        .spawn(1);
    wait_for(&rx, "READY=1");
    std::thread::sleep(Duration::from_millis(800));
    let pings = rx.try_iter().filter(|m| m.contains("WATCHDOG=1")).count();
    assert_eq!(pings, 0, "WATCHDOG_PID names another process");
    c.signal(Signal::TERM);
    assert!(c.wait_exit(WAIT).success());
}

/// Whether `program` runs here; in CI it must.
fn available(program: &str) -> bool {
    let ok = std::process::Command::new(program).arg("--help").output().is_ok();
    if !ok {
        assert!(std::env::var_os("CI").is_none(), "CI needs {program} (package systemd)");
        eprintln!("skipped: {program} is not installed");
    }
    ok
}

#[tokio::test]
async fn the_front_socket_can_come_from_socket_activation() {
    if !available("systemd-socket-activate") {
        return;
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let listen = format!("127.0.0.1:{port}");
    // systemd-socket-activate binds the port, waits for the first connection, then executes
    // `cluster start` with the socket at fd 3 (LISTEN_FDS=1, LISTEN_PID its own pid).
    let mut c = ClusterCmd::workers(2, Worker::Rust)
        .wrap_with(&["systemd-socket-activate", "-l", &listen])
        .launch();
    c.wait_for_line("Listening on", WAIT);
    let addr: std::net::SocketAddr = listen.parse().unwrap();
    let mut pids = std::collections::BTreeSet::new();
    let deadline = Instant::now() + WAIT;
    while pids.len() < 2 && Instant::now() < deadline {
        let (status, body) = crate::util::get(addr, "/").await;
        if status == 503 {
            // Workers still starting: the proxy says so rather than hold the request.
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        }
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
        let body = String::from_utf8_lossy(&body).into_owned();
        pids.insert(
            body.split("pid ").nth(1).and_then(|s| s.split_whitespace().next()).map(str::to_owned),
        );
    }
    assert_eq!(pids.len(), 2, "two workers behind the activated socket: {pids:?}");
    let line = c.wait_for_line("from socket activation", WAIT);
    assert!(line.contains(&listen), "{line}");
    c.signal(Signal::TERM);
    assert!(c.wait_exit(WAIT).success());
}
