//! The `health` section: defaults computed from other keys, ranges, leak detection.

use std::time::Duration;

use super::{Dir, MIB, no_flags};

#[test]
fn health_section() {
    let dir = Dir::new();
    dir.config(r#"{"maxMemoryUsage": 100, "unresponsiveTimeout": 4000}"#);
    let h = dir.load(&no_flags(), &[]).unwrap().spec.health;
    assert_eq!(h.hard_memory_bytes, Some(150 * MIB), "1.5 x the soft limit by default");
    assert_eq!(h.heartbeat_timeout, Duration::from_secs(4), "unresponsiveTimeout");
    assert!(h.outlier_detection);
    assert_eq!(h.max_concurrent_recycles, 1);

    dir.config(r#"{"health": {"hardMemoryLimit": 0, "ejectionTime": 2000, "nodeIpc": false}}"#);
    let h = dir.load(&no_flags(), &[]).unwrap().spec.health;
    assert_eq!(h.hard_memory_bytes, None, "0 turns the hard limit off");
    assert_eq!(h.ejection_time, Duration::from_secs(2));
    assert_eq!(h.node_ipc, Some(false));

    let cases = [
        (
            r#"{"maxMemoryUsage": "1G", "health": {"hardMemoryLimit": "512M"}}"#,
            r#": "512M" (must be above maxMemoryUsage (or 0 for no hard limit))"#,
        ),
        (r#"{"health": {"hardMemoryLimit": -1}}"#, ": -1 (must be 0 (no hard limit) or a size)"),
        (r#"{"health": {"probeFailures": 0}}"#, ": 0 (must be at least 1)"),
        (r#"{"health": {"maxEjectedPercent": 0}}"#, ": 0 (must be greater than 0 and at most 100)"),
        (r#"{"health": {"metricsWindow": 10}}"#, ": 10 (must be at least 100)"),
        (r#"{"health": {"maxConcurrentRecycles": 0}}"#, ": 0 (must be at least 1)"),
    ];
    for (json, tail) in cases {
        dir.config(json);
        let error = dir.error(&no_flags(), &[]);
        assert!(error.ends_with(tail), "{json}: {error}");
        assert!(error.contains("`health."), "{json}: {error}");
    }
    dir.config(r#"{"health": {"ejectionTim": 1}}"#);
    let error = dir.error(&no_flags(), &[]);
    assert!(error.contains("health.ejectionTim") && error.contains("ejectionTime"), "{error}");
}

#[test]
fn health_timeouts_fit_together() {
    let dir = Dir::new();
    dir.config(r#"{"unresponsiveTimeout": 3000, "health": {"probeTimeout": 3000}}"#);
    let error = dir.error(&no_flags(), &[]);
    assert!(error.ends_with(": 3000 (must be below unresponsiveTimeout)"), "{error}");
    // Without recycling at the soft limit, a hard limit at or below it is allowed.
    dir.config(
        r#"{"maxMemoryUsage": 100, "restartOnHighMemory": false, "health": {"hardMemoryLimit": 100}}"#,
    );
    let h = dir.load(&no_flags(), &[]).unwrap().spec.health;
    assert_eq!(h.hard_memory_bytes, Some(100 * MIB));
}

#[test]
fn grace_and_leak_detection_defaults() {
    let h = Dir::new().load(&no_flags(), &[]).unwrap().spec.health;
    assert_eq!(h.unresponsive_grace, Duration::from_millis(2_000));
    assert!(h.leak_detection);
    assert_eq!(h.leak_window, Duration::from_millis(300_000));
    assert_eq!(h.leak_min_slope, 1.0);
}

#[test]
fn grace_and_leak_detection_values() {
    let dir = Dir::new();
    dir.config(
        r#"{"health": {"unresponsiveGrace": 0, "leakDetection": false, "leakWindow": 1000,
            "leakMinSlope": 0.25}}"#,
    );
    let h = dir.load(&no_flags(), &[]).unwrap().spec.health;
    assert_eq!(h.unresponsive_grace, Duration::ZERO);
    assert!(!h.leak_detection);
    assert_eq!(h.leak_window, Duration::from_secs(1));
    assert_eq!(h.leak_min_slope, 0.25);
    dir.config(r#"{"health": {"leakWindow": 3600000, "leakMinSlope": 1000000}}"#);
    let h = dir.load(&no_flags(), &[]).unwrap().spec.health;
    assert_eq!((h.leak_window, h.leak_min_slope), (Duration::from_secs(3600), 1_000_000.0));
}

#[test]
fn grace_and_leak_detection_ranges() {
    let dir = Dir::new();
    let source = dir.file_source();
    let slope = "must be greater than 0 and at most 1000000";
    let cases = [
        ("unresponsiveGrace", "-1", "must be at least 0"),
        ("unresponsiveGrace", "3600001", "must be at most 3600000"),
        ("leakDetection", r#""yes""#, "expected a boolean"),
        ("leakWindow", "999", "must be at least 1000"),
        ("leakWindow", "3600001", "must be at most 3600000"),
        ("leakMinSlope", "0", slope),
        ("leakMinSlope", "-0.5", slope),
        ("leakMinSlope", "1000000.5", slope),
        ("leakMinSlope", r#""fast""#, "expected a number"),
    ];
    for (key, value, reason) in cases {
        dir.config(&format!(r#"{{"health": {{"{key}": {value}}}}}"#));
        let expected =
            format!("invalid value for `health.{key}` from {source}: {value} ({reason})");
        assert_eq!(dir.error(&no_flags(), &[]), expected);
    }
}
