//! The rate limit: the configured rate with 429s beyond it and the headers right, quotas that
//! come back after the window, exempt paths, one limit shared by two instances through a real
//! Redis, and each fallback while that Redis is down, then its recovery.
//!
//! The Redis tests start their own `redis-server` on a free loopback port and kill it at the
//! end; outside CI they are skipped (with the reason printed) when it is not installed.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::util::{ClusterCmd, ClusterProc, Conn, Worker};

const WAIT: Duration = Duration::from_secs(20);

/// One response: status, the rate limit headers, `Retry-After`.
#[derive(Debug)]
struct Answer {
    status: u16,
    policy: Option<String>,
    state: Option<String>,
    retry_after: Option<u64>,
}

async fn send(conn: &mut Conn, path: &str) -> Answer {
    let resp = conn.request("GET", path, Bytes::new()).await;
    let header =
        |name: &str| resp.headers().get(name).map(|v| v.to_str().expect("ASCII header").to_owned());
    let answer = Answer {
        status: resp.status().as_u16(),
        policy: header("ratelimit-policy"),
        state: header("ratelimit"),
        retry_after: header("retry-after").map(|v| v.parse().expect("Retry-After in seconds")),
    };
    http_body_util::BodyExt::collect(resp.into_body()).await.expect("body");
    answer
}

/// `n` requests for `path` on one connection.
async fn burst(addr: SocketAddr, path: &str, n: usize) -> Vec<Answer> {
    let mut conn = Conn::open(addr).await;
    let mut answers = Vec::with_capacity(n);
    for _ in 0..n {
        answers.push(send(&mut conn, path).await);
    }
    answers
}

fn statuses(answers: &[Answer]) -> Vec<u16> {
    answers.iter().map(|a| a.status).collect()
}

fn cluster(config: &str) -> ClusterProc {
    ClusterCmd::workers(1, Worker::Rust).config(config).spawn(1)
}

#[tokio::test]
async fn the_configured_rate_then_429_with_the_headers() {
    let c = cluster(
        r#"{"healthCheckPath": "/health",
            "security": {"enableRateLimit": true, "rateLimitWindow": 60000, "rateLimitMax": 5}}"#,
    );
    let answers = burst(c.addr, "/pid", 7).await;
    assert_eq!(statuses(&answers), [200, 200, 200, 200, 200, 429, 429], "{answers:?}");
    for (i, a) in answers[..5].iter().enumerate() {
        assert_eq!(a.policy.as_deref(), Some(r#""default";q=5;w=60"#), "{a:?}");
        let state = a.state.as_deref().expect("RateLimit on an allowed response");
        let prefix = format!(r#""default";r={};t="#, 4 - i);
        assert!(state.starts_with(&prefix), "{state} after {} requests", i + 1);
        assert_eq!(a.retry_after, None);
    }
    for a in &answers[5..] {
        // One request every 12 s: the next one is at most 12 s away, and the whole quota
        // is back at most 60 s from now.
        let retry = a.retry_after.expect("Retry-After on a 429");
        assert!((1..=12).contains(&retry), "{a:?}");
        assert_eq!(a.policy.as_deref(), Some(r#""default";q=5;w=60"#));
        let state = a.state.as_deref().expect("RateLimit on a 429");
        let t: u64 = state.strip_prefix(r#""default";r=0;t="#).expect(state).parse().unwrap();
        assert!((49..=60).contains(&t), "{state}");
    }
    // The health-check path and the admin routes are exempt by default: never 429, no
    // headers.
    for path in ["/health", "/api/admin/cluster/status", "/admin/cluster"] {
        for a in burst(c.addr, path, 10).await {
            assert_ne!(a.status, 429, "{path}: {a:?}");
            assert_eq!(a.state, None, "{path}: {a:?}");
        }
    }
    // The limit is per client and still holds for this one.
    assert_eq!(burst(c.addr, "/pid", 1).await[0].status, 429);
}

#[tokio::test]
async fn the_quota_comes_back_after_the_window() {
    let c = cluster(
        r#"{"security": {"enableRateLimit": true, "rateLimitWindow": 1000, "rateLimitMax": 3}}"#,
    );
    assert_eq!(statuses(&burst(c.addr, "/pid", 4).await), [200, 200, 200, 429]);
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    assert_eq!(statuses(&burst(c.addr, "/pid", 4).await), [200, 200, 200, 429]);
}

#[tokio::test]
async fn configured_exempt_paths_are_never_limited() {
    let c = cluster(
        r#"{"security": {"enableRateLimit": true, "rateLimitMax": 2,
            "rateLimitExempt": ["/static/"]}}"#,
    );
    for a in burst(c.addr, "/static/app.js", 20).await {
        assert_ne!(a.status, 429, "{a:?}");
    }
    assert_eq!(statuses(&burst(c.addr, "/pid", 3).await), [200, 200, 429]);
    // The list replaces the defaults: the health path is limited now.
    assert_eq!(burst(c.addr, "/health", 1).await[0].status, 429);
}

/// A `redis-server` of the test's own on a loopback port; killed on drop.
struct Redis {
    child: Option<Child>,
    port: u16,
    dir: tempfile::TempDir,
}

impl Redis {
    /// Starts one; `None` (after saying why) when `redis-server` is not installed outside
    /// CI. Under CI a missing server fails the test.
    fn start() -> Option<Redis> {
        let Some(bin) = on_path("redis-server") else {
            assert!(
                std::env::var_os("CI").is_none(),
                "redis-server is needed for the shared rate limit tests in CI (.ci/run installs redis-server)"
            );
            eprintln!("skipped: redis-server is not installed (apt-get install redis-server)");
            return None;
        };
        let port = free_port();
        let mut redis = Redis { child: None, port, dir: tempfile::tempdir().expect("scratch") };
        redis.spawn(&bin);
        Some(redis)
    }

    fn spawn(&mut self, bin: &PathBuf) {
        let child = Command::new(bin)
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start redis-server");
        self.child = Some(child);
        let deadline = Instant::now() + WAIT;
        while self.query("PING").as_deref() != Some("+PONG") {
            assert!(Instant::now() < deadline, "redis-server did not answer on {}", self.port);
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Kills the server (SIGKILL: gone at once, as in a crash).
    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Sends `sig` to the server (STOP freezes it: connections stay open, nothing answers).
    fn signal(&self, sig: rustix::process::Signal) {
        let child = self.child.as_ref().expect("running");
        let pid = rustix::process::Pid::from_raw(child.id() as i32).expect("pid");
        rustix::process::kill_process(pid, sig).expect("signal redis-server");
    }

    /// Starts it again on the same port, empty.
    fn restart(&mut self) {
        self.kill();
        self.spawn(&on_path("redis-server").expect("redis-server"));
    }

    /// One inline command; its first reply line, `None` when the server does not answer.
    fn query(&self, command: &str) -> Option<String> {
        let mut tcp = TcpStream::connect(("127.0.0.1", self.port)).ok()?;
        tcp.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
        tcp.write_all(format!("{command}\r\n").as_bytes()).ok()?;
        let mut buf = [0u8; 512];
        let n = tcp.read(&mut buf).ok()?;
        let text = String::from_utf8_lossy(&buf[..n]);
        text.lines().next().map(str::to_owned)
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.kill();
    }
}

fn on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|dir| dir.join(name)).find(|p| p.is_file())
}

/// A loopback port nobody listens on now.
fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("address").port()
}

fn redis_cluster(redis: &Redis, max: u32, fallback: &str) -> ClusterProc {
    redis_cluster_with(redis, max, fallback, 1)
}

/// A cluster limiting through `redis`, serving on `threads` proxy threads (each with its own
/// runtime, all sharing the one Redis connection).
fn redis_cluster_with(redis: &Redis, max: u32, fallback: &str, threads: u32) -> ClusterProc {
    cluster(&format!(
        r#"{{"redisUrl": "{}", "healthCheckPath": "/health", "security": {{"enableRateLimit": true,
            "rateLimitWindow": 60000, "rateLimitMax": {max}, "rateLimitStore": "redis",
            "rateLimitRedisTimeout": 200, "rateLimitRedisFallback": "{fallback}"}},
            "performance": {{"proxyThreads": {threads}}}}}"#,
        redis.url()
    ))
}

const DOWN: &str = "rate limit store redis is down";
const BACK: &str = "rate limit store redis is back";

#[tokio::test]
async fn two_instances_share_one_limit_through_redis() {
    let Some(redis) = Redis::start() else { return };
    let a = redis_cluster(&redis, 6, "local");
    let b = redis_cluster_with(&redis, 6, "local", 2);
    let (mut to_a, mut to_b) = (Conn::open(a.addr).await, Conn::open(b.addr).await);
    let mut seen = Vec::new();
    for _ in 0..4 {
        seen.push(send(&mut to_a, "/pid").await);
        seen.push(send(&mut to_b, "/pid").await);
    }
    // Six requests in all, whichever instance they went to; each instance alone allows six.
    assert_eq!(statuses(&seen), [200, 200, 200, 200, 200, 200, 429, 429], "{seen:?}");
    let remaining: Vec<_> = seen[..6].iter().map(|a| a.state.clone().unwrap()).collect();
    for (i, state) in remaining.iter().enumerate() {
        assert!(state.starts_with(&format!(r#""default";r={};"#, 5 - i)), "{remaining:?}");
    }
    assert!(seen[7].retry_after.is_some_and(|s| (1..=10).contains(&s)), "{:?}", seen[7]);
    // The client's key expires in Redis when its quota is full again: within the window.
    let ttl = redis.query("PTTL cluster:ratelimit:127.0.0.1").expect("PTTL");
    let ttl: i64 = ttl.trim_start_matches(':').parse().expect(&ttl);
    assert!((50_000..=60_000).contains(&ttl), "PTTL {ttl}");
    assert_eq!(a.count(DOWN) + b.count(DOWN), 0);
}

#[tokio::test]
async fn redis_down_with_fallback_deny_answers_503_then_recovers() {
    let Some(mut redis) = Redis::start() else { return };
    let c = redis_cluster(&redis, 1_000, "deny");
    let mut conn = Conn::open(c.addr).await;
    assert_eq!(send(&mut conn, "/pid").await.status, 200);

    redis.kill();
    let mut answers = Vec::new();
    for _ in 0..5 {
        answers.push(send(&mut conn, "/pid").await);
    }
    assert_eq!(statuses(&answers), [503; 5], "{answers:?}");
    assert_eq!(answers[4].retry_after, Some(1));
    assert!(c.wait_for_line(DOWN, WAIT).contains("fallback: deny"));
    // The health path stays exempt while the store is down.
    assert_eq!(send(&mut conn, "/health").await.status, 200);

    redis.restart();
    c.wait_for_line(BACK, WAIT);
    let a = send(&mut conn, "/pid").await;
    assert_eq!(a.status, 200, "{a:?}");
    assert!(a.state.is_some_and(|s| s.starts_with(r#""default";r=999;"#)), "a fresh Redis count");
}

#[tokio::test]
async fn redis_down_with_fallback_local_keeps_limiting_then_recovers() {
    let Some(mut redis) = Redis::start() else { return };
    let c = redis_cluster(&redis, 3, "local");
    let mut conn = Conn::open(c.addr).await;
    assert_eq!(send(&mut conn, "/pid").await.status, 200);

    redis.kill();
    // The local store counts on its own from here: three more, then 429.
    let mut answers = Vec::new();
    for _ in 0..5 {
        answers.push(send(&mut conn, "/pid").await);
    }
    assert_eq!(statuses(&answers), [200, 200, 200, 429, 429], "{answers:?}");
    assert!(c.wait_for_line(DOWN, WAIT).contains("fallback: local"));

    // Back on a fresh Redis: the shared count applies again (the local one is spent).
    redis.restart();
    c.wait_for_line(BACK, WAIT);
    let answers = burst(c.addr, "/pid", 4).await;
    assert_eq!(statuses(&answers), [200, 200, 200, 429], "{answers:?}");
}

#[tokio::test]
async fn redis_down_with_fallback_allow_lets_everything_through() {
    let Some(mut redis) = Redis::start() else { return };
    let c = redis_cluster(&redis, 2, "allow");
    assert_eq!(statuses(&burst(c.addr, "/pid", 3).await), [200, 200, 429]);
    redis.kill();
    for a in burst(c.addr, "/pid", 10).await {
        assert_eq!(a.status, 200, "{a:?}");
        assert_eq!(a.state, None, "no quota is known: no headers");
    }
    assert!(c.wait_for_line(DOWN, WAIT).contains("fallback: allow"));
}

#[tokio::test]
async fn a_frozen_redis_costs_a_request_no_more_than_the_timeout() {
    use rustix::process::Signal;
    let Some(redis) = Redis::start() else { return };
    let c = redis_cluster(&redis, 100, "local");
    let mut conn = Conn::open(c.addr).await;
    assert_eq!(send(&mut conn, "/pid").await.status, 200);
    redis.signal(Signal::STOP);
    // Each of the first calls waits for the 200 ms timeout, then the store is down and no
    // request waits on it. The bound is generous (a loaded machine), far below a stall.
    for _ in 0..6 {
        let started = Instant::now();
        let a = send(&mut conn, "/pid").await;
        assert_eq!(a.status, 200, "{a:?}");
        assert!(started.elapsed() < Duration::from_secs(3), "{:?}", started.elapsed());
    }
    assert!(c.wait_for_line(DOWN, WAIT).contains("no answer within 200 ms"));
    redis.signal(Signal::CONT);
    c.wait_for_line(BACK, WAIT);
    assert_eq!(send(&mut conn, "/pid").await.status, 200);
}

#[tokio::test]
async fn a_redis_that_is_down_at_start_goes_down_and_comes_up() {
    let Some(mut redis) = Redis::start() else { return };
    redis.kill();
    let c = redis_cluster(&redis, 5, "local");
    assert_eq!(statuses(&burst(c.addr, "/pid", 6).await), [200, 200, 200, 200, 200, 429]);
    c.wait_for_line(DOWN, WAIT);
    redis.restart();
    c.wait_for_line(BACK, WAIT);
    assert_eq!(burst(c.addr, "/pid", 1).await[0].status, 200);
}

fn config_error(config: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("cluster.config.json"), config).unwrap();
    let out = Command::new(crate::util::cluster_bin())
        .arg("start")
        .current_dir(dir.path())
        .env_remove("PORT")
        .env_remove("HOST")
        .output()
        .expect("run cluster");
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn configuration_errors() {
    let error =
        config_error(r#"{"security": {"enableRateLimit": true, "rateLimitStore": "redis"}}"#);
    assert!(error.contains("`security.rateLimitStore`"), "{error}");
    assert!(error.contains("needs `redisUrl`"), "{error}");
    let error = config_error(r#"{"security": {"rateLimitRedisFallback": "fail-open"}}"#);
    assert!(error.contains("`security.rateLimitRedisFallback`"), "{error}");
    assert!(error.contains(r#"expected one of "local", "allow", "deny""#), "{error}");
}
