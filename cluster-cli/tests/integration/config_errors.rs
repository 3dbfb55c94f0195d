//! Bad configuration stops start-up with exit code 2 and a message naming key, value, source.

use std::process::{Command, Output};

use crate::util::cluster_bin;

fn run(args: &[&str], env: &[(&str, &str)], file: Option<&str>) -> (Output, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    if let Some(text) = file {
        std::fs::write(dir.path().join("cluster.config.json"), text).unwrap();
    }
    let mut cmd = Command::new(cluster_bin());
    cmd.args(args).current_dir(dir.path()).env_remove("PORT").env_remove("HOST");
    for (k, v) in env {
        cmd.env(k, v);
    }
    (cmd.output().expect("run cluster"), dir)
}

fn assert_config_error(args: &[&str], env: &[(&str, &str)], file: Option<&str>, needles: &[&str]) {
    let (out, _dir) = run(args, env, file);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "stderr: {stderr}");
    for needle in needles {
        assert!(stderr.contains(needle), "{needle:?} not in stderr: {stderr}");
    }
}

#[test]
fn unknown_key_is_named_with_a_suggestion() {
    assert_config_error(
        &["start"],
        &[],
        Some(r#"{"wokers": 2}"#),
        &["unknown key `wokers`", "did you mean `workers`", "cluster.config.json"],
    );
    assert_config_error(
        &["start"],
        &[],
        Some(r#"{"performance": {"requestTimeot": 5}}"#),
        &["performance.requestTimeot", "performance.requestTimeout"],
    );
}

#[test]
fn wrong_type_names_key_value_and_file() {
    assert_config_error(
        &["start"],
        &[],
        Some(r#"{"port": "abc"}"#),
        &["`port`", "abc", "cluster.config.json"],
    );
}

#[test]
fn zero_workers_is_refused() {
    assert_config_error(
        &["start"],
        &[],
        Some(r#"{"workers": 0}"#),
        &["`workers`", ": 0", "config file"],
    );
    assert_config_error(
        &["start"],
        &[("CLUSTER_WORKERS", "0")],
        None,
        &["`workers`", "environment variable CLUSTER_WORKERS"],
    );
}

#[test]
fn min_workers_above_max_workers_is_refused() {
    assert_config_error(
        &["start"],
        &[],
        Some(r#"{"scaling": {"minWorkers": 6, "maxWorkers": 4}}"#),
        &["scaling.minWorkers", "scaling.maxWorkers", "6", "4"],
    );
}

#[test]
fn unknown_strategy_is_refused() {
    assert_config_error(
        &["start"],
        &[],
        Some(r#"{"loadBalancingStrategy": "fastest"}"#),
        &["loadBalancingStrategy", "fastest"],
    );
    assert_config_error(
        &["start", "--strategy", "round-robbin"],
        &[],
        None,
        &["round-robbin", "command-line flag --strategy", "round-robin"],
    );
}

#[test]
fn port_above_65535_is_refused_from_every_source() {
    assert_config_error(
        &["start"],
        &[],
        Some(r#"{"port": 70000}"#),
        &["`port`", "70000", "config file"],
    );
    assert_config_error(
        &["start"],
        &[("PORT", "70000")],
        None,
        &["`port`", "70000", "environment variable PORT"],
    );
    assert_config_error(
        &["start", "--port", "70000"],
        &[],
        None,
        &["`port`", "70000", "command-line flag --port"],
    );
}

#[test]
fn an_explicit_config_file_must_exist() {
    assert_config_error(
        &["start", "--config", "nope.json"],
        &[],
        None,
        &["nope.json", "does not exist"],
    );
    assert_config_error(
        &["start"],
        &[("CLUSTER_CONFIG_PATH", "/nonexistent/c.json")],
        None,
        &["/nonexistent/c.json", "does not exist"],
    );
}

#[test]
fn the_original_design_file_is_accepted_and_sources_are_shown() {
    let file = r#"{"workers":4,"port":3000,"host":"0.0.0.0","gracefulShutdownTimeout":15000,"healthCheckInterval":5000,
 "maxMemoryUsage":768,"restartOnHighMemory":true,"loadBalancingStrategy":"least-connections",
 "enableStickySession":false,"redisUrl":"redis://localhost:6379",
 "scaling":{"autoScale":false,"minWorkers":2,"maxWorkers":8,"cpuThreshold":80,"memoryThreshold":85},
 "performance":{"maxRequestsPerWorker":1000,"requestTimeout":30000,"enableCompression":true},
 "security":{"enableRateLimit":true,"rateLimitWindow":60000,"rateLimitMax":100}}"#;
    let (out, _dir) = run(&["config"], &[("PORT", "4000")], Some(file));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "stderr: {}", String::from_utf8_lossy(&out.stderr));
    let port = stdout.lines().find(|l| l.starts_with("port ")).expect("port line");
    assert!(port.contains("4000") && port.contains("environment variable PORT"), "{port}");
    let workers = stdout.lines().find(|l| l.starts_with("workers ")).expect("workers line");
    assert!(workers.contains('4') && workers.contains("config file"), "{workers}");
    assert!(
        stdout.lines().any(|l| l.starts_with("performance.requestTimeout") && l.contains("30000"))
    );
}
