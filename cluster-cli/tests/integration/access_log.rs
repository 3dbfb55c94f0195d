//! The access log of the `cluster` binary (`security.enableRequestLogging`, `accessLog`):
//! a line per request once its body has been sent, in the combined format and in JSON, with
//! the real worker's pid; lines dropped and counted, never a request, when the destination
//! stalls; a new file after logrotate's rename and SIGUSR1.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::BodyExt;
use rustix::process::Signal;
use tokio::time::Instant;

use crate::admin::{admin_addr, call};
use crate::util::{ClusterCmd, ClusterProc, Conn, Worker};

const WAIT: Duration = Duration::from_secs(30);

/// A cluster of two Rust workers with the access log on, in `format`, to `path` (with more
/// `accessLog` keys in `extra`), and the admin listener on a free loopback port.
fn logged_cluster(format: &str, path: &str, extra: &str) -> ClusterCmd {
    let config = format!(
        r#"{{"security": {{"enableRequestLogging": true}},
            "accessLog": {{"format": "{format}", "path": "{path}"{extra}}},
            "admin": {{"listen": "127.0.0.1:0"}}}}"#
    );
    ClusterCmd::workers(2, Worker::Rust).config(&config)
}

/// The lines of `path` so far.
fn read_lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path).unwrap_or_default().lines().map(str::to_owned).collect()
}

/// Waits (bounded) until `path` has at least `n` lines; returns them.
async fn wait_lines(path: &Path, n: usize) -> Vec<String> {
    let deadline = Instant::now() + WAIT;
    loop {
        let lines = read_lines(path);
        if lines.len() >= n {
            return lines;
        }
        assert!(Instant::now() < deadline, "{n} lines expected in {}: {lines:#?}", path.display());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// One combined-format line, parsed as log tools parse it; the cluster's `key=value` fields
/// after the standard ones in `extra`.
#[derive(Debug)]
struct Combined {
    client: String,
    time: String,
    request: String,
    status: u16,
    bytes: u64,
    referer: String,
    user_agent: String,
    extra: HashMap<String, String>,
}

/// Parses `%h %l %u %t "%r" %>s %b "%{Referer}i" "%{User-Agent}i"` and what follows it.
fn parse_combined(line: &str) -> Combined {
    fn bad<T>(line: &str) -> T {
        panic!("not a combined line: {line:?}")
    }
    let (client, rest) = line.split_once(" - - [").unwrap_or_else(|| bad(line));
    let (time, rest) = rest.split_once("] \"").unwrap_or_else(|| bad(line));
    let (request, rest) = rest.split_once("\" ").unwrap_or_else(|| bad(line));
    let mut words = rest.splitn(3, ' ');
    let status = words.next().and_then(|s| s.parse().ok()).unwrap_or_else(|| bad(line));
    let bytes = words.next().and_then(|s| s.parse().ok()).unwrap_or_else(|| bad(line));
    let rest = words.next().unwrap_or_else(|| bad(line));
    let rest = rest.strip_prefix('"').unwrap_or_else(|| bad(line));
    let (referer, rest) = rest.split_once("\" \"").unwrap_or_else(|| bad(line));
    let (user_agent, rest) = rest.split_once("\" ").unwrap_or_else(|| bad(line));
    let extra = rest
        .split(' ')
        .map(|kv| kv.split_once('=').unwrap_or_else(|| bad(line)))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    Combined {
        client: client.into(),
        time: time.into(),
        request: request.into(),
        status,
        bytes,
        referer: referer.into(),
        user_agent: user_agent.into(),
        extra,
    }
}

/// `GET path` with a user agent and a referer on `conn`; the status and the body.
async fn get(conn: &mut Conn, path: &str) -> (u16, Bytes) {
    let headers = [("user-agent", "probe/1.0 \"quoted\""), ("referer", "http://from.test/page")];
    let resp = conn.request_with("GET", path, Bytes::new(), &headers).await;
    let status = resp.status().as_u16();
    (status, resp.into_body().collect().await.expect("body").to_bytes())
}

/// Requests `/pid` until both workers have answered; returns each answer (status 200), in
/// order.
async fn pids_until_both_answered(c: &ClusterProc, conn: &mut Conn) -> Vec<u32> {
    let workers = c.worker_pids();
    let mut answers = Vec::new();
    for _ in 0..50 {
        let (status, body) = get(conn, "/pid?from=test").await;
        assert_eq!(status, 200);
        let pid: u32 = String::from_utf8_lossy(&body).trim().parse().expect("a pid");
        assert!(workers.contains(&pid), "{pid} is not one of {workers:?}");
        answers.push(pid);
        if workers.iter().all(|w| answers.contains(w)) {
            return answers;
        }
    }
    panic!("not every worker answered: {answers:?} of {workers:?}");
}

/// Reads `/stream` to its first event, checks that no line was written for it yet, then
/// reads the rest; returns the bytes received.
async fn stream_checking_no_line_before_the_end(conn: &mut Conn, log: &Path) -> u64 {
    let resp = conn.request("GET", "/stream?n=3&interval=400", Bytes::new()).await;
    assert_eq!(resp.status(), 200);
    let mut body = resp.into_body();
    let first = body.frame().await.expect("a first event").expect("frame");
    let mut received = first.data_ref().map_or(0, |d| d.len() as u64);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let early = read_lines(log);
    assert!(
        !early.iter().any(|l| l.contains("/stream")),
        "the stream was logged before its body ended: {early:#?}"
    );
    let rest = body.collect().await.expect("the rest").to_bytes();
    received += rest.len() as u64;
    received
}

#[tokio::test]
async fn combined_lines_follow_the_body_with_the_worker_s_pid() {
    let c = logged_cluster("combined", "logs/access.log", "").spawn(2);
    let log = c.dir().join("logs/access.log");
    let mut conn = Conn::open(c.addr).await;
    let pids = pids_until_both_answered(&c, &mut conn).await;
    let streamed = stream_checking_no_line_before_the_end(&mut conn, &log).await;

    let lines = wait_lines(&log, pids.len() + 1).await;
    assert_eq!(lines.len(), pids.len() + 1, "one line per request: {lines:#?}");
    for (line, pid) in lines.iter().zip(&pids) {
        let l = parse_combined(line);
        assert_eq!(l.client, "127.0.0.1");
        assert_eq!(l.request, "GET /pid?from=test HTTP/1.1");
        assert_eq!(l.status, 200);
        assert_eq!(l.bytes, pid.to_string().len() as u64, "the pid's digits: {line}");
        assert_eq!(l.referer, "http://from.test/page");
        assert_eq!(l.user_agent, r"probe/1.0 \x22quoted\x22", "quotes escaped: {line}");
        assert_eq!(l.extra["pid"], pid.to_string(), "the worker that answered: {line}");
        assert!(["0", "1"].contains(&l.extra["slot"].as_str()), "{line}");
        assert_eq!(l.extra["end"], "complete");
        assert!(l.extra["duration"].parse::<f64>().unwrap() >= 0.0, "{line}");
        assert!(l.time.ends_with(" +0000") && l.time.len() == 26, "{}", l.time);
    }
    let stream = parse_combined(lines.last().unwrap());
    assert_eq!(stream.request, "GET /stream?n=3&interval=400 HTTP/1.1");
    assert_eq!(stream.bytes, streamed, "every byte of the stream counted");
    assert!(stream.extra["duration"].parse::<f64>().unwrap() >= 0.7, "two 400 ms pauses");

    // The proxy's own answers are logged too: a request it refuses never reaches a worker.
    let two_hosts = [("host", "a.test"), ("host", "b.test")];
    let mut other = Conn::open(c.addr).await;
    let resp = other.request_with("GET", "/two-hosts", Bytes::new(), &two_hosts).await;
    assert_eq!(resp.status(), 400);
    let lines = wait_lines(&log, pids.len() + 2).await;
    let refused = parse_combined(lines.last().unwrap());
    assert_eq!((refused.request.as_str(), refused.status), ("GET /two-hosts HTTP/1.1", 400));
    assert_eq!((refused.extra["slot"].as_str(), refused.extra["pid"].as_str()), ("-", "-"));

    let (code, _, body) = call(admin_addr(&c), "GET", "/metrics", &[], "").await;
    assert_eq!(code, 200);
    let written = format!(r#"cluster_access_log_lines_total{{outcome="written"}} {}"#, lines.len());
    assert!(body.contains(&written), "{written} in\n{body}");
    assert!(body.contains(r#"cluster_access_log_lines_total{outcome="dropped"} 0"#), "{body}");
}

#[tokio::test]
async fn json_lines_parse_and_carry_every_field() {
    let c = logged_cluster("json", "var/access.json", "").spawn(2);
    let log = c.dir().join("var/access.json");
    let mut conn = Conn::open(c.addr).await;
    let pids = pids_until_both_answered(&c, &mut conn).await;
    let streamed = stream_checking_no_line_before_the_end(&mut conn, &log).await;
    let lines = wait_lines(&log, pids.len() + 1).await;
    let parsed: Vec<serde_json::Value> = lines
        .iter()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    for (v, pid) in parsed.iter().zip(&pids) {
        assert_eq!(v["method"], "GET");
        assert_eq!(v["path"], "/pid");
        assert_eq!(v["query"], "from=test");
        assert_eq!(v["protocol"], "HTTP/1.1");
        assert_eq!(v["status"], 200);
        assert_eq!(v["bytes"], pid.to_string().len());
        assert_eq!(v["pid"], *pid, "{v}");
        assert!(v["slot"].is_u64(), "{v}");
        assert_eq!(v["client"], "127.0.0.1");
        assert_eq!(v["userAgent"], "probe/1.0 \"quoted\"");
        assert_eq!(v["referer"], "http://from.test/page");
        assert_eq!(v["end"], "complete");
        assert!(v["time"].as_str().unwrap().ends_with('Z'), "{v}");
        assert!(v["durationMs"].as_f64().unwrap() >= 0.0);
    }
    let stream = parsed.last().unwrap();
    assert_eq!(
        (stream["path"].as_str(), stream["bytes"].as_u64()),
        (Some("/stream"), Some(streamed))
    );

    // The status JSON counts them too.
    let (code, _, body) = call(admin_addr(&c), "GET", "/api/admin/cluster/status", &[], "").await;
    assert_eq!(code, 200, "{body}");
    let status: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(status["accessLog"]["written"], lines.len());
    assert_eq!(status["accessLog"]["dropped"], 0);
}

#[tokio::test]
async fn a_stalled_destination_drops_and_counts_lines_and_never_a_request() {
    let cmd = logged_cluster("combined", "access.fifo", r#", "queue": 1"#);
    // A FIFO whose reader never reads: once its buffer (64 KiB) is full, the writer thread
    // blocks in `write`, as on a stalled disk.
    let fifo = cmd.dir().join("access.fifo");
    rustix::fs::mknodat(
        rustix::fs::CWD,
        &fifo,
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o600),
        0,
    )
    .expect("mkfifo");
    let _reader = rustix::fs::open(
        &fifo,
        rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::NONBLOCK,
        rustix::fs::Mode::empty(),
    )
    .expect("open the FIFO's read end");
    let c = cmd.spawn(2);

    const CONNS: usize = 8;
    const PER_CONN: usize = 400;
    let mut tasks = Vec::new();
    for _ in 0..CONNS {
        let addr = c.addr;
        tasks.push(tokio::spawn(async move {
            let mut conn = Conn::open(addr).await;
            let mut ok = 0;
            for i in 0..PER_CONN {
                let (status, _) = conn.send("GET", &format!("/?flood={i}"), Bytes::new()).await;
                ok += usize::from(status == 200);
            }
            ok
        }));
    }
    let mut ok = 0;
    for task in tasks {
        ok += tokio::time::timeout(WAIT * 2, task).await.expect("the flood finished").unwrap();
    }
    assert_eq!(ok, CONNS * PER_CONN, "every request succeeded");

    let (code, _, body) = call(admin_addr(&c), "GET", "/metrics", &[], "").await;
    assert_eq!(code, 200);
    let count = |outcome: &str| -> u64 {
        let prefix = format!(r#"cluster_access_log_lines_total{{outcome="{outcome}"}} "#);
        let line = body.lines().find(|l| l.starts_with(&prefix));
        line.and_then(|l| l[prefix.len()..].trim().parse().ok())
            .unwrap_or_else(|| panic!("no {prefix} in\n{body}"))
    };
    let (written, dropped) = (count("written"), count("dropped"));
    assert!(dropped > 0, "lines dropped under the flood: {body}");
    assert!(written + dropped <= (CONNS * PER_CONN) as u64, "{written} + {dropped}");
    assert!(written < (CONNS * PER_CONN) as u64, "the FIFO cannot have taken every line");
}

#[tokio::test]
async fn sigusr1_after_a_rename_writes_the_next_lines_to_a_new_file() {
    let c = logged_cluster("combined", "logs/access.log", "").spawn(2);
    let log = c.dir().join("logs/access.log");
    let rotated = c.dir().join("logs/access.log.1");
    let mut conn = Conn::open(c.addr).await;
    assert_eq!(get(&mut conn, "/?tag=before-rotation").await.0, 200);
    wait_lines(&log, 1).await;
    std::fs::rename(&log, &rotated).expect("rotate");
    c.signal(Signal::USR1);
    let deadline = Instant::now() + WAIT;
    while !log.exists() {
        assert!(Instant::now() < deadline, "no new access log after SIGUSR1");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(get(&mut conn, "/?tag=after-rotation").await.0, 200);
    let fresh = wait_lines(&log, 1).await;
    assert_eq!(fresh.len(), 1, "{fresh:#?}");
    assert!(fresh[0].contains("GET /?tag=after-rotation "), "{}", fresh[0]);
    let old = read_lines(&rotated);
    assert_eq!(old.len(), 1, "{old:#?}");
    assert!(old[0].contains("GET /?tag=before-rotation "), "{}", old[0]);
}

#[tokio::test]
async fn stdout_gets_the_lines_when_asked() {
    let c = logged_cluster("json", "stdout", "").spawn(2);
    let mut conn = Conn::open(c.addr).await;
    assert_eq!(get(&mut conn, "/?to=stdout").await.0, 200);
    let line = c.wait_for_line(r#""query":"to=stdout""#, WAIT);
    let v: serde_json::Value = serde_json::from_str(line.trim()).expect("a JSON line of its own");
    assert_eq!(v["status"], 200);
    assert!(!c.dir().join("logs/access.log").exists(), "no file when writing to stdout");
}
