//! How a PM2 app runs: `instances`/`exec_mode` -> `workers`, `max_memory_restart`,
//! `kill_timeout`, `listen_timeout`, `wait_ready`, the log file and the account.

use serde_json::{Map, Value, json};

use super::pm2_command::string;
use super::pm2_keys::{Field, Options};
use super::pm2_map::{Host, MapError};
use super::pm2_values::{Instances, instances, kind, memory_bytes, memory_setting, millis};
use super::report::Report;

/// The most `startTimeout` and `gracefulShutdownTimeout` take (one hour), in ms.
const MAX_MS: i64 = 3_600_000;
/// The least `startTimeout` takes, in ms.
const MIN_START_MS: i64 = 100;

/// `instances` and `exec_mode` -> `workers`.
pub(crate) fn workers(
    o: &Options,
    host: &Host<'_>,
    config: &mut Map<String, Value>,
    report: &mut Report,
) -> Result<(), MapError> {
    let mode = string(o, "exec_mode")?;
    let fork = match mode {
        None => false,
        Some("cluster" | "cluster_mode") => {
            let key = o.fields.get("exec_mode").map_or("exec_mode", |f| f.written.as_str());
            let text = "cluster: built in, the workers serve behind one front port, balanced by the primary";
            report.mapped(key, text);
            false
        }
        Some("fork" | "fork_mode") => true,
        Some(other) => {
            return Err(MapError::invalid(
                "exec_mode",
                format!("{other:?}: expected \"cluster\" or \"fork\""),
            ));
        }
    };
    let (workers, count) = match o.fields.get("instances") {
        None => {
            report.mapped("instances", "absent: one instance, as in PM2 (workers: 1)");
            (json!(1), 1)
        }
        Some(f) => {
            if matches!(f.value, Value::Bool(_) | Value::Array(_) | Value::Object(_)) {
                return Err(MapError::invalid(
                    &f.written,
                    format!("{}, not a number", kind(&f.value)),
                ));
            }
            match instances(&f.value).map_err(|r| MapError::invalid(&f.written, r))? {
                Instances::Count(n) => {
                    report.mapped(f.written.as_str(), format!("workers: {n}"));
                    (json!(n), n)
                }
                Instances::Max => {
                    let text = format!("{}: one per CPU (workers: \"max\")", f.value);
                    report.mapped(f.written.as_str(), text);
                    (json!("max"), host.cpus as i64)
                }
                Instances::AllBut(k) => {
                    let n = (host.cpus as i64 - k).max(1);
                    report.approximated(
                        f.written.as_str(),
                        format!("{}: all CPUs but {k}, computed for this machine's {} CPUs (workers: {n}); PM2 computes it on each machine", f.value, host.cpus),
                    );
                    (json!(n), n)
                }
            }
        }
    };
    config.insert("workers".into(), workers);
    if fork {
        let key = o.fields.get("exec_mode").map_or("exec_mode", |f| f.written.as_str());
        let text = if count > 1 {
            "fork: PM2 would start separate processes that each bind the app's port; cluster \
             runs them as workers behind one front port, each listening on its own PORT"
        } else {
            "fork: cluster runs the app as a worker behind the front port, on its own PORT; \
             raise `workers` to balance several"
        };
        report.approximated(key, text);
    }
    Ok(())
}

/// `max_memory_restart` -> `maxMemoryUsage` and `restartOnHighMemory`.
pub(crate) fn memory(
    o: &Options,
    config: &mut Map<String, Value>,
    report: &mut Report,
) -> Result<(), MapError> {
    let bytes = match o.fields.get("max_memory_restart") {
        None => None,
        Some(f) => {
            // PM2's schema: digits and an optional K, M or G (no fraction, no "MB").
            let pm2_form = match &f.value {
                Value::String(s) => {
                    let digits = s.trim_end_matches(['K', 'M', 'G']);
                    !digits.is_empty()
                        && digits.chars().all(|c| c.is_ascii_digit())
                        && s.len() - digits.len() <= 1
                }
                Value::Number(n) => n.as_f64().is_some_and(|v| v >= 0.0),
                _ => false,
            };
            if !pm2_form {
                let reason = format!(
                    "{}: expected bytes, or digits with K, M or G such as \"300M\"",
                    f.value
                );
                return Err(MapError::invalid(&f.written, reason));
            }
            let bytes = memory_bytes(&f.value).map_err(|r| MapError::invalid(&f.written, r))?;
            Some((f, bytes))
        }
    };
    match bytes {
        Some((f, bytes)) if bytes > 0 => {
            let (size, rounded) = memory_setting(bytes);
            config.insert("maxMemoryUsage".into(), json!(size));
            config.insert("restartOnHighMemory".into(), json!(true));
            let rounding = if rounded { " (rounded up to whole KiB)" } else { "" };
            report.approximated(
                f.written.as_str(),
                format!("maxMemoryUsage: {size:?}{rounding}, restartOnHighMemory: true; a worker over it for health.memorySamples (3) checks in a row, every healthCheckInterval (5 s), is replaced gracefully (its replacement first); one over health.hardMemoryLimit (1.5 x) is killed at once"),
            );
        }
        other => {
            config.insert("restartOnHighMemory".into(), json!(false));
            config.insert("health".into(), json!({"hardMemoryLimit": 0}));
            let key = other.map_or("max_memory_restart", |(f, _)| f.written.as_str());
            report.mapped(
                key,
                "not set (or 0): no restart on memory, as in PM2 (restartOnHighMemory: false, health.hardMemoryLimit: 0)",
            );
        }
    }
    Ok(())
}

/// Milliseconds of `name`, if given.
fn ms<'a>(o: &'a Options, name: &str) -> Result<Option<(&'a Field, i64)>, MapError> {
    match o.fields.get(name) {
        None => Ok(None),
        Some(f) => {
            millis(&f.value).map(|v| Some((f, v))).map_err(|r| MapError::invalid(&f.written, r))
        }
    }
}

/// `kill_timeout`, `listen_timeout` and `wait_ready`.
pub(crate) fn timeouts(
    o: &Options,
    config: &mut Map<String, Value>,
    report: &mut Report,
) -> Result<(), MapError> {
    let signals =
        "cluster stops a worker with SIGTERM, not PM2's SIGINT: handle process.on('SIGTERM')";
    match ms(o, "kill_timeout")? {
        Some((f, v)) => {
            let clamped = v.min(MAX_MS);
            config.insert("gracefulShutdownTimeout".into(), json!(clamped));
            let cap = if clamped < v { " (capped at one hour)" } else { "" };
            report.approximated(
                f.written.as_str(),
                format!("gracefulShutdownTimeout: {clamped}{cap}; in-flight requests are drained first, then SIGKILL after it; {signals}"),
            );
        }
        None => report.approximated(
            "kill_timeout",
            format!("not set: PM2 kills after 1.6 s; cluster waits up to gracefulShutdownTimeout (15 s by default); {signals}"),
        ),
    }
    if let Some((f, v)) = ms(o, "listen_timeout")? {
        let clamped = v.clamp(MIN_START_MS, MAX_MS);
        config.insert("startTimeout".into(), json!(clamped));
        let adjusted = if clamped != v {
            format!(" (within {MIN_START_MS} ms and one hour)")
        } else {
            String::new()
        };
        report.approximated(
            f.written.as_str(),
            format!("startTimeout: {clamped}{adjusted}; a worker not ready by then is stopped and started again (PM2 calls it online anyway)"),
        );
    }
    if let Some(f) = o.fields.get("wait_ready") {
        match &f.value {
            Value::Bool(true) => {
                config.insert("health".into(), {
                    let mut health = config.get("health").cloned().unwrap_or_else(|| json!({}));
                    health["nodeIpc"] = json!(true);
                    health
                });
                report.approximated(
                    f.written.as_str(),
                    "health.nodeIpc: true; process.send('ready') marks a worker ready, but so does its port accepting: set healthCheckPath to wait for the app",
                );
            }
            Value::Bool(false) => report
                .mapped(f.written.as_str(), "false: ready when the port accepts (the default)"),
            other => {
                return Err(MapError::invalid(
                    &f.written,
                    format!("{}, not a boolean", kind(other)),
                ));
            }
        }
    }
    Ok(())
}

/// `log_file`/`out_file` -> `logFile`; `uid` -> `user`, `gid` -> `group`.
pub(crate) fn logs_and_accounts(
    o: &Options,
    config: &mut Map<String, Value>,
    report: &mut Report,
) -> Result<(), MapError> {
    let is_null = |p: &str| p == "NULL" || p == "/dev/null";
    let log = ["log_file", "out_file"].into_iter().find_map(|name| {
        let f = o.fields.get(name)?;
        Some((f, f.value.as_str().filter(|p| !is_null(p))?))
    });
    if let Some((f, path)) = log {
        config.insert("logFile".into(), json!(path));
        report.approximated(
            f.written.as_str(),
            format!("logFile: {path:?}, written by `cluster start --detach` (in the foreground the output goes to the terminal); workers' stdout and stderr lines are in it, prefixed with [wN]"),
        );
    }
    for (name, to) in [("uid", "user"), ("gid", "group")] {
        let Some(f) = o.fields.get(name) else { continue };
        match &f.value {
            Value::String(_) | Value::Number(_) => {
                config.insert(to.into(), f.value.clone());
                report.mapped(
                    f.written.as_str(),
                    format!("{to}: {} (cluster must start as root to switch)", f.value),
                );
            }
            other => {
                return Err(MapError::invalid(
                    &f.written,
                    format!("{}, not a name or an id", kind(other)),
                ));
            }
        }
    }
    Ok(())
}
