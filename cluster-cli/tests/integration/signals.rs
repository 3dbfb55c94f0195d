//! The signals of the `cluster` binary: SIGHUP rolls the workers, SIGTTIN and SIGTTOU scale by
//! one within the bounds, SIGUSR2 reloads the configuration file, SIGUSR1 asks for the logs to
//! be reopened; and a Node worker is told of memory pressure before it is recycled.

use std::time::Duration;

use rustix::process::Signal;

use crate::util::{ClusterCmd, ClusterProc, Worker, get, hello_bin, node_server};

const WAIT: Duration = Duration::from_secs(30);

/// Pids of the workers ready now: the last ready line of each slot.
fn current_pids(c: &ClusterProc, slots: usize) -> Vec<u32> {
    (0..slots)
        .filter_map(|slot| {
            let needle = format!("worker {slot} ready: pid ");
            let log = c.log();
            let line = log.iter().rev().find(|l| l.contains(&needle))?;
            line.split(&needle).nth(1)?.split_whitespace().next()?.parse().ok()
        })
        .collect()
}

#[tokio::test]
async fn sighup_rolls_the_workers_and_ttin_ttou_scale_within_the_bounds() {
    let c = ClusterCmd::workers(2, Worker::Rust)
        .config(r#"{"scaling": {"minWorkers": 1, "maxWorkers": 3}}"#)
        .spawn(2);
    let before = current_pids(&c, 2);

    c.signal(Signal::HUP);
    c.wait_for_line("rolling restart #1 done: 2 workers replaced", WAIT);
    let after = current_pids(&c, 2);
    assert!(after.iter().all(|p| !before.contains(p)), "{before:?} -> {after:?}");

    c.signal(Signal::TTIN);
    c.wait_for_line("scaled from 2 to 3 workers (signal SIGTTIN)", WAIT);
    c.wait_for_line("worker 2 ready: pid ", WAIT);
    c.signal(Signal::TTIN);
    let refused = c.wait_for_line("SIGTTIN: not scaled", WAIT);
    assert!(
        refused.contains("cannot run 4 workers")
            && refused.contains("scaling.minWorkers (1)")
            && refused.contains("scaling.maxWorkers (3)"),
        "{refused}"
    );
    c.signal(Signal::TTOU);
    c.wait_for_line("scaled from 3 to 2 workers (signal SIGTTOU)", WAIT);
    c.signal(Signal::TTOU);
    c.wait_for_line("scaled from 2 to 1 workers (signal SIGTTOU)", WAIT);
    c.signal(Signal::TTOU);
    c.wait_for_line("cannot run 0 workers", WAIT);
    let (status, _) = get(c.addr, "/").await;
    assert_eq!(status, 200);

    c.signal(Signal::USR1);
    c.wait_for_line("SIGUSR1: reopening log files", WAIT);
}

#[tokio::test]
async fn sigusr2_applies_the_edited_file_and_reports_what_it_cannot_change() {
    let hello = hello_bin().display().to_string();
    let file = |workers: usize, strategy: &str, port: u16| {
        format!(
            r#"{{"workers": {workers}, "host": "127.0.0.1", "port": {port}, "loadBalancingStrategy": "{strategy}", "command": "{hello}", "scaling": {{"maxWorkers": 4}}}}"#
        )
    };
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut c = ClusterCmd::bare(&["start"]).config(&file(2, "round-robin", free)).spawn(2);
    assert_eq!(c.addr.port(), free);

    std::fs::write(c.dir().join("cluster.config.json"), file(3, "p2c", free + 1)).unwrap();
    c.signal(Signal::USR2);
    c.wait_for_line("configuration reloaded: workers 2 -> 3 (applied)", WAIT);
    let strategy = c.wait_for_line("configuration reloaded: loadBalancingStrategy", WAIT);
    assert!(strategy.contains("p2c") && strategy.contains("(applied)"), "{strategy}");
    let port = c.wait_for_line("configuration reloaded: port", WAIT);
    assert!(port.contains("NOT applied"), "{port}");
    c.wait_for_line("worker 2 ready: pid ", WAIT);
    // Still on the old port.
    let (status, _) = get(c.addr, "/").await;
    assert_eq!(status, 200);

    // A broken file changes nothing and says why.
    std::fs::write(c.dir().join("cluster.config.json"), r#"{"workers": "many"}"#).unwrap();
    c.signal(Signal::USR2);
    let error = c.wait_for_line("configuration not reloaded", WAIT);
    assert!(error.contains("workers"), "{error}");
    let (status, _) = get(c.addr, "/").await;
    assert_eq!(status, 200);
    c.signal(Signal::TERM);
    assert!(c.wait_exit(WAIT).success());
}

#[tokio::test]
async fn a_node_worker_hears_of_memory_pressure_before_it_is_recycled() {
    // Node's RSS is over 20 MB from the start: the first sample crosses the limit, and the
    // recycle waits for five samples over it.
    let node = node_server().display().to_string();
    let config = r#"{"maxMemoryUsage": 20, "healthCheckInterval": 200,
        "health": {"hardMemoryLimit": 0, "memorySamples": 5, "memoryMinAge": 0}}"#;
    let c = ClusterCmd::start(&["--workers", "1", "--", "node", &node]).config(config).spawn(1);
    let told = c.wait_for_line("[w0] memory-pressure: ", WAIT);
    assert!(told.contains("MB of 20 MB"), "{told}");
    c.wait_for_line("over its memory limit", WAIT);
    c.wait_for_line("recycling (memory", WAIT);
    let log = c.log();
    let at = |needle: &str| log.iter().position(|l| l.contains(needle)).unwrap();
    assert!(at("over its memory limit") < at("recycling (memory"), "{log:#?}");
}
