//! `deploy/systemd/cluster.service` against what the binary does: it notifies (Type=notify,
//! only the main process may), a reload is SIGHUP (the rolling restart), systemd waits longer
//! to stop it than the graceful drain takes, and it starts a real subcommand. With
//! `systemd-analyze` on the machine, the unit is also verified by systemd itself.

use std::process::Command;

use crate::files::{load_config, read};

/// The unit's `Key=value` lines (comments and section headers left out).
fn unit() -> Vec<(String, String)> {
    read("deploy/systemd/cluster.service")
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with('['))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect()
}

fn value(key: &str) -> String {
    let unit = unit();
    let found: Vec<&String> = unit.iter().filter(|(k, _)| k == key).map(|(_, v)| v).collect();
    assert_eq!(found.len(), 1, "{key} once in the unit: {found:?}");
    found[0].clone()
}

fn seconds(value: &str) -> u64 {
    value.trim_end_matches('s').parse().unwrap_or_else(|_| panic!("seconds: {value:?}"))
}

#[test]
fn the_unit_matches_what_the_primary_does() {
    assert_eq!(value("Type"), "notify");
    assert_eq!(value("NotifyAccess"), "main");
    assert_eq!(value("ExecReload"), "/bin/kill -HUP $MAINPID");
    assert_eq!(value("KillMode"), "mixed", "SIGTERM to the primary only; it stops the workers");
    let exec_start = value("ExecStart");
    let exec: Vec<&str> = exec_start.split_whitespace().collect();
    assert!(exec[0].ends_with("/cluster") && exec[1] == "start", "{exec:?}");

    // The drain (gracefulShutdownTimeout) plus the workers' SIGTERM-to-SIGKILL second must
    // fit in TimeoutStopSec, with the defaults the unit relies on.
    let spec = load_config("{}", &[]);
    let drain = spec.graceful_shutdown_timeout.as_secs() + 1;
    assert!(seconds(&value("TimeoutStopSec")) > drain, "TimeoutStopSec vs {drain} s");
    assert!(seconds(&value("TimeoutStartSec")) > spec.start_timeout.as_secs());
    let runtime = value("RuntimeDirectory");
    let env: Vec<String> =
        unit().into_iter().filter(|(k, _)| k == "Environment").map(|(_, v)| v).collect();
    assert!(env.contains(&format!("CLUSTER_RUNTIME_DIR=/run/{runtime}")), "{env:?}");
}

#[test]
fn systemd_verifies_the_unit() {
    let Ok(which) = Command::new("systemd-analyze").arg("--version").output() else {
        assert!(std::env::var_os("CI").is_none(), "CI needs systemd-analyze (package systemd)");
        eprintln!("skipped: systemd-analyze is not installed");
        return;
    };
    assert!(which.status.success());
    let dir = tempfile::tempdir().unwrap();
    // The unit names an account and paths of the target machine; point them at this one.
    let unit = read("deploy/systemd/cluster.service")
        .replace("User=myapp", "User=root")
        .replace("Group=myapp", "Group=root")
        .replace(
            "WorkingDirectory=/srv/myapp",
            &format!("WorkingDirectory={}", dir.path().display()),
        )
        .replace("/usr/local/bin/cluster", env!("CARGO_BIN_EXE_cluster"));
    let path = dir.path().join("myapp.service");
    std::fs::write(&path, unit).unwrap();
    let out = Command::new("systemd-analyze").arg("verify").arg(&path).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && stderr.trim().is_empty(), "systemd-analyze verify: {stderr}");
}
