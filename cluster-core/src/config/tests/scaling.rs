//! `scaling` and `rollingRestart`: the worker-count bounds, the autoscaler's timing, surge.

use std::time::Duration;

use super::super::validate::cpu_count;
use super::{Dir, flags, no_flags};

#[test]
fn defaults() {
    let spec = Dir::new().load(&no_flags(), &[]).unwrap().spec;
    assert_eq!(spec.scaling.cooldown, Duration::from_millis(30_000));
    assert_eq!(spec.scaling.scale_up_after, Duration::from_millis(15_000));
    assert_eq!(spec.scaling.scale_down_after, Duration::from_millis(60_000));
    assert_eq!(spec.rolling_restart.max_surge, 1);
}

#[test]
fn values_are_read() {
    let dir = Dir::new();
    dir.config(
        r#"{"scaling": {"cooldown": 0, "scaleUpAfter": 500, "scaleDownAfter": 3600000},
            "rollingRestart": {"maxSurge": 3, "minReady": 2500}}"#,
    );
    let spec = dir.load(&no_flags(), &[]).unwrap().spec;
    assert_eq!(spec.scaling.cooldown, Duration::ZERO);
    assert_eq!(spec.scaling.scale_up_after, Duration::from_millis(500));
    assert_eq!(spec.scaling.scale_down_after, Duration::from_secs(3600));
    assert_eq!(spec.rolling_restart.max_surge, 3);
    assert_eq!(spec.rolling_restart.min_ready, Duration::from_millis(2500));
}

#[test]
fn ranges() {
    let dir = Dir::new();
    let source = dir.file_source();
    let cases = [
        (r#"{"scaling": {"cooldown": -1}}"#, "scaling.cooldown", "-1 (must be at least 0)"),
        (
            r#"{"scaling": {"cooldown": 3600001}}"#,
            "scaling.cooldown",
            "3600001 (must be at most 3600000)",
        ),
        (r#"{"scaling": {"scaleUpAfter": -5}}"#, "scaling.scaleUpAfter", "-5 (must be at least 0)"),
        (
            r#"{"scaling": {"scaleDownAfter": 3600001}}"#,
            "scaling.scaleDownAfter",
            "3600001 (must be at most 3600000)",
        ),
        (
            r#"{"rollingRestart": {"maxSurge": 0}}"#,
            "rollingRestart.maxSurge",
            "0 (must be at least 1)",
        ),
        (
            r#"{"rollingRestart": {"maxSurge": 1025}}"#,
            "rollingRestart.maxSurge",
            "1025 (must be at most 1024)",
        ),
        (
            r#"{"rollingRestart": {"maxSurge": "2"}}"#,
            "rollingRestart.maxSurge",
            r#""2" (expected an integer)"#,
        ),
        (r#"{"rollingRestart": 2}"#, "rollingRestart", "2 (expected an object)"),
    ];
    for (json, key, tail) in cases {
        dir.config(json);
        let expected = format!("invalid value for `{key}` from {source}: {tail}");
        assert_eq!(dir.error(&no_flags(), &[]), expected, "{json}");
    }
    dir.config(r#"{"rollingRestart": {"maxSurg": 2}}"#);
    assert_eq!(
        dir.error(&no_flags(), &[]),
        format!(
            "unknown key `rollingRestart.maxSurg` in {source}; did you mean \
             `rollingRestart.maxSurge`?"
        )
    );
}

#[test]
fn max_workers_default_is_the_largest_of_cpus_workers_and_min_workers() {
    let dir = Dir::new();
    let bounds = |json: &str| {
        dir.config(json);
        let scaling = dir.load(&no_flags(), &[]).unwrap().spec.scaling;
        (scaling.min_workers, scaling.max_workers)
    };
    assert_eq!(bounds("{}"), (1, cpu_count()));
    assert_eq!(bounds(r#"{"workers": 1024}"#), (1, 1024));
    assert_eq!(bounds(r#"{"workers": 1024, "scaling": {"minWorkers": 1024}}"#), (1024, 1024));
    assert_eq!(bounds(r#"{"workers": 3, "scaling": {"minWorkers": 3}}"#), (3, cpu_count().max(3)));
    // An explicit maxWorkers is kept as given.
    assert_eq!(bounds(r#"{"workers": 2, "scaling": {"maxWorkers": 2}}"#), (1, 2));
}

#[test]
fn workers_below_min_workers() {
    let dir = Dir::new();
    let source = dir.file_source();
    dir.config(r#"{"workers": 2, "scaling": {"minWorkers": 3}}"#);
    assert_eq!(
        dir.error(&no_flags(), &[]),
        format!(
            "invalid value for `workers` from {source}: 2 (less than `scaling.minWorkers` = 3 \
             from {source})"
        )
    );
}

#[test]
fn workers_above_max_workers() {
    let dir = Dir::new();
    let source = dir.file_source();
    dir.config(r#"{"workers": 5, "scaling": {"maxWorkers": 4}}"#);
    assert_eq!(
        dir.error(&no_flags(), &[]),
        format!(
            "invalid value for `workers` from {source}: 5 (greater than `scaling.maxWorkers` = 4 \
             from {source})"
        )
    );
    dir.config(r#"{"scaling": {"maxWorkers": 4}}"#);
    assert_eq!(
        dir.error(&flags(|o| o.workers = Some("9".into())), &[]),
        format!(
            "invalid value for `workers` from command-line flag --workers: 9 (greater than \
             `scaling.maxWorkers` = 4 from {source})"
        )
    );
}

#[test]
fn max_workers_above_an_explicit_max_workers() {
    let dir = Dir::new();
    dir.config(r#"{"scaling": {"maxWorkers": 1}}"#);
    if cpu_count() == 1 {
        // "max" resolves to 1 here: within the bounds.
        assert_eq!(dir.load(&no_flags(), &[]).unwrap().spec.workers, 1);
        return;
    }
    assert_eq!(
        dir.error(&no_flags(), &[]),
        format!(
            "invalid value for `workers` from default: \"max\" (greater than \
             `scaling.maxWorkers` = 1 from {})",
            dir.file_source()
        )
    );
}

#[test]
fn workers_within_bounds_is_not_checked_against_invalid_values() {
    let dir = Dir::new();
    let cases = [
        // An invalid count: only its own problem.
        (r#"{"workers": 0, "scaling": {"minWorkers": 3}}"#, "invalid value for `workers`"),
        // An invalid bound: only its own problem.
        (
            r#"{"workers": 2, "scaling": {"minWorkers": 0}}"#,
            "invalid value for `scaling.minWorkers`",
        ),
        (
            r#"{"workers": 5, "scaling": {"maxWorkers": 2000}}"#,
            "invalid value for `scaling.maxWorkers`",
        ),
        // Inconsistent bounds: only their conflict.
        (
            r#"{"workers": 5, "scaling": {"minWorkers": 6, "maxWorkers": 4}}"#,
            "invalid value for `scaling.minWorkers`",
        ),
    ];
    for (json, start) in cases {
        dir.config(json);
        let error = dir.error(&no_flags(), &[]);
        assert!(error.starts_with(start), "{json}: {error}");
    }
    dir.config(r#"{"workers": 4, "scaling": {"minWorkers": 4, "maxWorkers": 4}}"#);
    assert_eq!(dir.load(&no_flags(), &[]).unwrap().spec.workers, 4);
}
