//! Worker lifecycle through the real binary: replacement, crash loops, shutdown, orphans.

use std::time::{Duration, Instant};

use bytes::Bytes;
use rustix::process::Signal;

use crate::util::{ClusterCmd, Conn, Worker, alive, get, hello_bin};

/// Pids of every process whose process group is `pgid`.
fn group_members(pgid: u32) -> Vec<u32> {
    let mut pids = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else { continue };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { continue };
        // Fields after the command name: state ppid pgrp ...
        let rest: Vec<&str> = stat.rsplit(')').next().unwrap_or("").split_whitespace().collect();
        if rest.len() > 2 && rest[0] != "Z" && rest[2] == pgid.to_string() {
            pids.push(pid);
        }
    }
    pids
}

fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let rest: Vec<&str> = stat.rsplit(')').next().unwrap_or("").split_whitespace().collect();
    let ticks: u64 = rest.get(11).and_then(|u| u.parse().ok()).unwrap_or(0)
        + rest.get(12).and_then(|s| s.parse().ok()).unwrap_or(0);
    ticks as f64 / 100.0
}

#[tokio::test]
async fn a_killed_worker_is_replaced_and_traffic_goes_on() {
    for worker in Worker::ALL {
        a_killed_worker_is_replaced_and_traffic_goes_on_with(worker).await;
    }
}

async fn a_killed_worker_is_replaced_and_traffic_goes_on_with(worker: Worker) {
    let cluster = ClusterCmd::workers(2, worker).spawn(2);
    let victim = cluster.worker_pids()[0];
    let addr = cluster.addr;
    let load = tokio::spawn(async move {
        let mut conn = Conn::open(addr).await;
        let mut statuses = Vec::new();
        for _ in 0..400 {
            statuses.push(conn.send("GET", "/slow?ms=5", Bytes::new()).await.0);
        }
        statuses
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    rustix::process::kill_process(
        rustix::process::Pid::from_raw(victim as i32).unwrap(),
        Signal::KILL,
    )
    .unwrap();
    cluster.wait_for_count(" ready: pid ", 3, Duration::from_secs(20));
    let statuses = load.await.unwrap();
    let failed = statuses.iter().filter(|&&s| s != 200).count();
    assert_eq!(failed, 0, "{worker:?}: {failed} of {} requests failed", statuses.len());
    assert!(cluster.log().iter().any(|l| l.contains("exited unexpectedly")));
    let pids = cluster.worker_pids();
    assert!(!pids[2..].contains(&victim) && alive(pids[2]));
    assert_eq!(get(addr, "/health").await.0, 200);
}

#[tokio::test]
async fn a_command_that_exits_at_once_backs_off_instead_of_spinning() {
    let cluster = ClusterCmd::start(&["--workers", "1", "--", "sh", "-c", "exit 3"]).spawn(0);
    std::thread::sleep(Duration::from_secs(3));
    let starts = cluster.count("exited unexpectedly");
    assert!((3..=8).contains(&starts), "{starts} starts in 3 s:\n{}", cluster.log().join("\n"));
    assert!(cluster.count("crash-looping") >= 1);
    let cpu = cpu_seconds(cluster.pid());
    assert!(cpu < 0.5, "primary used {cpu} s of CPU");
    assert_eq!(get(cluster.addr, "/").await.0, 503);
}

#[tokio::test]
async fn a_worker_that_never_gets_ready_is_stopped_at_the_start_timeout() {
    let cluster = ClusterCmd::start(&["--workers", "1", "--", "sleep", "30"])
        .config(r#"{"startTimeout": 500}"#)
        .spawn(0);
    cluster.wait_for_line("not ready within 500 ms", Duration::from_secs(10));
    assert_eq!(cluster.count(" ready: pid "), 0);
    assert_eq!(get(cluster.addr, "/").await.0, 503);
}

#[tokio::test]
async fn graceful_shutdown_lets_an_in_flight_request_finish() {
    for worker in Worker::ALL {
        graceful_shutdown_lets_an_in_flight_request_finish_on(worker).await;
    }
}

async fn graceful_shutdown_lets_an_in_flight_request_finish_on(worker: Worker) {
    let mut cluster = ClusterCmd::workers(2, worker).spawn(2);
    let workers = cluster.worker_pids();
    let addr = cluster.addr;
    let slow = tokio::spawn(async move {
        Conn::open(addr).await.send("GET", "/slow?ms=2000", Bytes::new()).await
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let t0 = Instant::now();
    cluster.signal(Signal::TERM);
    let (status, body) = slow.await.unwrap();
    assert_eq!(status, 200, "{worker:?} body: {body:?}");
    assert!(t0.elapsed() >= Duration::from_millis(1500));
    let exit = cluster.wait_exit(Duration::from_secs(10));
    assert!(exit.success(), "exit status {exit:?}");
    for pid in workers {
        assert!(!alive(pid), "worker {pid} outlived the primary");
    }
}

#[tokio::test]
async fn a_second_sigint_stops_at_once() {
    let mut cluster = ClusterCmd::workers(1, Worker::Rust).spawn(1);
    let addr = cluster.addr;
    let _slow = tokio::spawn(async move {
        Conn::open(addr).await.send("GET", "/slow?ms=20000", Bytes::new()).await
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let t0 = Instant::now();
    cluster.signal(Signal::INT);
    tokio::time::sleep(Duration::from_millis(200)).await;
    cluster.signal(Signal::INT);
    cluster.wait_exit(Duration::from_secs(5));
    assert!(t0.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn no_worker_outlives_a_primary_killed_with_sigkill() {
    let hello = hello_bin();
    // The second slot's worker is a shell with the server as its child: the parent-death
    // signal reaches only the shell, the guardian must take care of the child.
    let script = format!("{} ; true", hello.display());
    let direct = ClusterCmd::start(&["--workers", "2", "--", hello.to_str().unwrap()]).spawn(2);
    let wrapped = ClusterCmd::start(&["--workers", "1", "--", "sh", "-c", &script]).spawn(1);
    let mut pids: Vec<u32> = Vec::new();
    for c in [&direct, &wrapped] {
        for leader in c.worker_pids() {
            pids.extend(group_members(leader));
        }
    }
    assert!(pids.len() >= 4, "expected worker processes, found {pids:?}");
    direct.signal(Signal::KILL);
    wrapped.signal(Signal::KILL);
    std::thread::sleep(Duration::from_secs(1));
    let survivors: Vec<u32> = pids.into_iter().filter(|&p| alive(p)).collect();
    assert!(survivors.is_empty(), "still alive a second after the primary died: {survivors:?}");
}

#[tokio::test]
async fn the_binary_logs_recycles_for_max_requests_per_worker() {
    let cluster = ClusterCmd::workers(2, Worker::Rust)
        .config(r#"{"healthCheckInterval": 100, "performance": {"maxRequestsPerWorker": 40}}"#)
        .spawn(2);
    let mut conn = Conn::open(cluster.addr).await;
    for _ in 0..200 {
        assert_eq!(conn.send("GET", "/pid", Bytes::new()).await.0, 200);
    }
    cluster.wait_for_line("recycling (served", Duration::from_secs(10));
    cluster.wait_for_line("replaced; the old worker is draining", Duration::from_secs(10));
}
