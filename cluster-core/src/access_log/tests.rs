//! The queue and the writer thread: batching, drops when the destination stalls, reopen,
//! and the last lines written on close.

use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::time::{Duration, Instant};

use http::Request;

use super::{AccessLog, Entry};
use crate::config::{AccessLogFormat, AccessLogPath, AccessLogSpec, ClusterSpec};

fn spec(path: &Path, queue: usize) -> AccessLogSpec {
    let mut spec = ClusterSpec::default().access_log;
    spec.format = AccessLogFormat::Combined;
    spec.path = AccessLogPath::File(path.to_owned());
    spec.queue = queue;
    spec
}

/// Logs one request for `target` as complete with status 200.
fn log_one(log: &AccessLog, target: &str) {
    let req = Request::get(target).body(()).unwrap();
    let mut entry = Entry::new(log, IpAddr::V4(Ipv4Addr::LOCALHOST), &req);
    entry.record().status = 200;
    entry.record().end = super::End::Complete;
}

fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn lines_are_written_in_order_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a/b/access.log");
    let log = AccessLog::start(&spec(&path, 16)).unwrap();
    for i in 0..1000 {
        log_one(&log, &format!("/n/{i}"));
    }
    wait_until("1000 lines written", || log.counts().written + log.counts().dropped == 1000);
    assert!(log.close(Duration::from_secs(5)));
    let text = std::fs::read_to_string(&path).unwrap();
    let written = log.counts().written as usize;
    assert_eq!(text.lines().count(), written);
    let targets: Vec<usize> = text
        .lines()
        .map(|l| l.split("\"GET /n/").nth(1).unwrap().split(' ').next().unwrap().parse().unwrap())
        .collect();
    assert!(targets.windows(2).all(|w| w[0] < w[1]), "in the order they ended");
    assert!(text.lines().all(|l| l.contains("\" 200 0 \"-\" \"-\" duration=")), "{text}");
}

#[test]
fn a_stalled_destination_drops_lines_without_waiting() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("stalled.fifo");
    rustix::fs::mknodat(
        rustix::fs::CWD,
        &fifo,
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o600),
        0,
    )
    .unwrap();
    // A reader that never reads: writes block once the pipe's buffer is full.
    let _reader = rustix::fs::open(
        &fifo,
        rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::NONBLOCK,
        rustix::fs::Mode::empty(),
    )
    .unwrap();
    // A queue that holds more than the pipe (64 KiB, each line about 100 bytes), so that the
    // writer's first full batch blocks in `write`; the rest is dropped.
    let log = AccessLog::start(&spec(&fifo, 4096)).unwrap();
    let started = Instant::now();
    let n = 20_000;
    for i in 0..n {
        log_one(&log, &format!("/flood/{i}"));
    }
    assert!(started.elapsed() < Duration::from_secs(5), "never waited on the destination");
    let counts = log.counts();
    assert!(counts.dropped > 0, "{counts:?}");
    assert!(counts.written < n, "{counts:?}");
    assert!(!log.close(Duration::from_millis(100)), "the writer is still stuck in `write`");
}

#[test]
fn reopen_and_close() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("access.log");
    let log = AccessLog::start(&spec(&path, 64)).unwrap();
    log_one(&log, "/one");
    wait_until("the first line", || log.counts().written == 1);
    std::fs::rename(&path, dir.path().join("access.log.1")).unwrap();
    log.reopen();
    wait_until("a new file", || path.exists());
    log_one(&log, "/two");
    log_one(&log, "/three");
    // Close writes what is queued.
    assert!(log.close(Duration::from_secs(5)));
    assert_eq!(log.counts().written, 3);
    let fresh = std::fs::read_to_string(&path).unwrap();
    assert_eq!(fresh.lines().count(), 2, "{fresh}");
    assert!(fresh.contains("GET /two ") && fresh.contains("GET /three "), "{fresh}");
    // After close, a line is counted as dropped rather than lost silently.
    log_one(&log, "/late");
    assert_eq!(log.counts().dropped, 1);
}

#[test]
fn a_file_that_cannot_be_opened_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("file"), "").unwrap();
    let path = dir.path().join("file/access.log");
    let error = AccessLog::start(&spec(&path, 1)).unwrap_err();
    let text = error.to_string();
    assert!(
        text.starts_with(&format!("cannot open the access log {}: ", path.display())),
        "{text}"
    );
}
