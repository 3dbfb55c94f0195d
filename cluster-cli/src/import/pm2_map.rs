//! The mapping of one PM2 app to `cluster.config.json`: a pure function of the app's JSON,
//! the chosen `--env` block and a few facts about the machine ([`Host`]), returning the
//! configuration and a [`Report`] in which every key of the app appears.

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde_json::{Map, Value, json};

use super::pm2_command::{self, string};
use super::pm2_dropped::no_equivalent;
use super::pm2_keys::{Field, Options, sort_keys};
use super::pm2_values::{
    Instances, env_value, instances, kind, memory_bytes, memory_setting, millis,
};
use super::report::Report;

/// The most `startTimeout` and `gracefulShutdownTimeout` take (one hour), in ms.
const MAX_MS: i64 = 3_600_000;
/// The least `startTimeout` takes, in ms.
const MIN_START_MS: i64 = 100;

/// Variables `cluster` sets in each worker itself, which win over `env`.
const SET_BY_CLUSTER: [&str; 8] = [
    "PORT",
    "HOST",
    "NODE_APP_INSTANCE",
    "CLUSTER_WORKER_ID",
    "SOCKET_PATH",
    "CLUSTER_SOCKET_PATH",
    "LISTEN_FDS",
    "LISTEN_PID",
];

/// Where a script is, seen from the app's directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ScriptFile {
    /// An executable binary file there.
    Binary,
    /// A file there that is not a binary (a script).
    Text,
    /// Not there, but a program of that name is in PATH (PM2 looks there too).
    OnPath,
    /// Nowhere: PM2 refuses to start the app.
    Missing,
}

/// What the mapping needs to know about the machine, so that it stays a pure function.
pub(crate) struct Host<'a> {
    /// The number of CPUs, for `instances: -N`.
    pub(crate) cpus: usize,
    /// Where `script` (as written) is, seen from `cwd` (as written; `None`: where the
    /// import runs).
    pub(crate) script: &'a dyn Fn(&str, Option<&str>) -> ScriptFile,
    /// Whether a program of this name is in PATH.
    pub(crate) on_path: &'a dyn Fn(&str) -> bool,
}

/// Why an app cannot be imported.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum MapError {
    /// A value PM2 itself rejects.
    #[error("invalid `{key}`: {reason} (PM2 rejects it too)")]
    Invalid {
        /// The key as written.
        key: String,
        /// What is wrong.
        reason: String,
    },
    /// No `script`.
    #[error("the app has no `script` (PM2 refuses it too: \"No script path - aborting\")")]
    NoScript,
    /// The script is nowhere.
    #[error("script not found: {script:?} in {} (nor in PATH; PM2 refuses to start it too)", cwd.as_deref().unwrap_or("the current directory"))]
    ScriptMissing {
        /// The script as written.
        script: String,
        /// The app's `cwd`, as written.
        cwd: Option<String>,
    },
    /// `--env NAME` names no `env_NAME` block.
    #[error("the app has no `env_{wanted}` block for --env {wanted}{}", blocks(names))]
    UnknownEnv {
        /// The name asked for.
        wanted: String,
        /// The blocks the app has.
        names: Vec<String>,
    },
}

fn blocks(names: &[String]) -> String {
    if names.is_empty() {
        "; it has none".to_owned()
    } else {
        let list: Vec<String> = names.iter().map(|n| format!("env_{n}")).collect();
        format!("; it has: {}", list.join(", "))
    }
}

impl MapError {
    /// [`MapError::Invalid`] for `key`.
    pub(crate) fn invalid(key: &str, reason: impl Into<String>) -> Self {
        MapError::Invalid { key: key.to_owned(), reason: reason.into() }
    }
}

/// The result of mapping one app.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Imported {
    /// The `cluster.config.json` object.
    pub(crate) config: Map<String, Value>,
    /// What became of every key.
    pub(crate) report: Report,
}

/// Maps the PM2 app `app` (its JSON, as evaluated) to a `cluster` configuration, with the
/// variables of `env_<env_name>` over `env` when `env_name` is given (`pm2 start --env`).
pub(crate) fn map_app(
    app: &Map<String, Value>,
    env_name: Option<&str>,
    host: &Host<'_>,
) -> Result<Imported, MapError> {
    // PM2 treats a null option as absent (`Config.validateJSON`).
    let app: Map<String, Value> =
        app.iter().filter(|(_, v)| !v.is_null()).map(|(k, v)| (k.clone(), v.clone())).collect();
    let mut o = sort_keys(&app);
    let mut report = Report::default();
    let mut config = Map::new();

    // `cmd` and `command` stand for `script` in JSON files (`verifyConfs`).
    for alias in ["cmd", "command"] {
        if let Some(i) = o.unknown.iter().position(|k| k == alias) {
            o.unknown.remove(i);
            if o.fields.contains_key("script") {
                report.dropped(alias, "PM2 ignores it when `script` is set");
            } else {
                let field = Field { written: alias.to_owned(), value: app[alias].clone() };
                o.fields.insert("script", field);
            }
        }
    }
    for key in &o.unknown {
        report.dropped(key.as_str(), "not a PM2 7 option (PM2 ignores it too)");
    }
    for (alias, winner) in &o.shadowed {
        report.dropped(alias.as_str(), format!("PM2 uses `{winner}`, given too"));
    }

    let cwd = string(&o, "cwd")?.map(str::to_owned);
    if let Some(cwd) = &cwd {
        config.insert("cwd".into(), json!(cwd));
        report.mapped("cwd", format!("cwd: {cwd:?}"));
    }
    let script = string(&o, "script")?.ok_or(MapError::NoScript)?;
    let cmd = pm2_command::command(&o, script, cwd.as_deref(), host, &mut report)?;
    config.insert("command".into(), json!(cmd.program));
    if !cmd.args.is_empty() {
        config.insert("args".into(), json!(cmd.args));
    }
    for name in ["args", "node_args", "exec_interpreter"] {
        if let Some(f) = o.fields.get(name) {
            if report.find(&f.written).is_empty() {
                report.mapped(f.written.as_str(), "in `command`/`args` (see script)");
            }
        }
    }

    workers(&o, host, &mut config, &mut report)?;
    let env = env(&o, env_name, cmd.python, &mut config, &mut report)?;
    if !env.is_empty() {
        config.insert("env".into(), json!(env));
    }
    memory(&o, &mut config, &mut report)?;
    timeouts(&o, &mut config, &mut report)?;
    logs_and_accounts(&o, &mut config, &mut report)?;

    // Everything else: built in, or no equivalent.
    for (name, field) in &o.fields {
        if !report.find(&field.written).is_empty() {
            continue;
        }
        let key = field.written.as_str();
        match (*name, &field.value) {
            ("autorestart" | "autostart" | "treekill" | "merge_logs", Value::Bool(true)) => {
                report.mapped(key, "the same in cluster (built in)");
            }
            ("watch", Value::Bool(false)) => {
                report.mapped(key, "off, as in `cluster start` (`cluster dev` watches files)");
            }
            ("instance_var", Value::String(v)) if v == "NODE_APP_INSTANCE" => {
                report.mapped(key, "cluster sets NODE_APP_INSTANCE (0, 1, ...) in each worker");
            }
            ("name", Value::String(name)) => report
                .dropped(key, format!("{name:?}: {}", no_equivalent("name").unwrap_or_default())),
            _ => report.dropped(key, no_equivalent(name).unwrap_or("no equivalent")),
        }
    }
    Ok(Imported { config, report })
}

/// `instances` and `exec_mode` -> `workers`.
fn workers(
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

/// `env`, `env_<name>` and `port` -> `env`, `port` and `host`.
fn env(
    o: &Options,
    env_name: Option<&str>,
    python: bool,
    config: &mut Map<String, Value>,
    report: &mut Report,
) -> Result<BTreeMap<String, String>, MapError> {
    // PM2's schema takes an object or a string; a string sets no usable variable (PM2 spreads
    // its characters), so it is reported rather than carried over. Anything else PM2 rejects.
    let mut mapped: Vec<(String, String)> = Vec::new();
    let mut object = |key: &str, value: &Value| -> Result<Option<Map<String, Value>>, MapError> {
        match value {
            Value::Object(vars) => Ok(Some(vars.clone())),
            Value::String(_) => {
                let text = "a string, not an object of variables: PM2 takes it but sets no usable variable; write an object";
                report.dropped(key, text);
                Ok(None)
            }
            other => Err(MapError::invalid(key, format!("{}, not an object", kind(other)))),
        }
    };
    let mut vars = match o.fields.get("env") {
        Some(f) => object(&f.written, &f.value)?.inspect(|vars| {
            let text = format!("env ({} variables)", vars.len());
            mapped.push((f.written.clone(), text));
        }),
        None => None,
    }
    .unwrap_or_default();
    if let Some(name) = env_name {
        let Some(block) = o.env_blocks.get(name) else {
            let names = o.env_blocks.keys().cloned().collect();
            return Err(MapError::UnknownEnv { wanted: name.to_owned(), names });
        };
        let key = format!("env_{name}");
        if let Some(block) = object(&key, block)? {
            let text = format!("applied over env (--env {name}), as `pm2 start --env {name}` does");
            mapped.push((key, text));
            vars.extend(block);
        }
    }
    for (key, text) in mapped {
        report.mapped(key, text);
    }
    for name in o.env_blocks.keys().filter(|n| Some(n.as_str()) != env_name) {
        let text = format!("not applied: import with --env {name} to apply it");
        report.dropped(format!("env_{name}"), text);
    }
    let mut env: BTreeMap<String, String> =
        vars.iter().map(|(k, v)| (k.clone(), env_value(v))).collect();
    if python && !env.contains_key("PYTHONUNBUFFERED") {
        env.insert("PYTHONUNBUFFERED".into(), "1".into());
    }

    // The front port: `port`, else env.PORT.
    let port_key = o.fields.get("port").map(|f| (f.written.clone(), f.value.clone()));
    let env_port = env.get("PORT").map(|p| ("env.PORT".to_owned(), Value::String(p.clone())));
    match port_key.or(env_port) {
        Some((key, value)) => {
            let port = match &value {
                Value::Number(n) => n.as_u64(),
                Value::String(s) => s.trim().parse::<u64>().ok(),
                _ => None,
            };
            let Some(port) = port.filter(|p| *p <= 65_535) else {
                return Err(MapError::invalid(&key, format!("{value}: not a port number")));
            };
            config.insert("port".into(), json!(port));
            report.approximated(
                key,
                format!("port: {port}, the front port; each worker gets its own PORT from cluster and must listen on process.env.PORT (PM2's cluster mode shared one port)"),
            );
        }
        None => report.approximated(
            "port",
            "not set in the file: the front port is cluster's default, 3000 (set `port`); each worker must listen on process.env.PORT",
        ),
    }
    if let Some(host) = env.get("HOST") {
        let ip = host == "localhost" || host.parse::<IpAddr>().is_ok();
        if ip {
            config.insert("host".into(), json!(host));
            report.mapped("env.HOST", format!("host: {host:?}, the front address"));
        }
    }
    for name in SET_BY_CLUSTER {
        if env.remove(name).is_some() && report.find(&format!("env.{name}")).is_empty() {
            report.dropped(
                format!("env.{name}"),
                "set by cluster in each worker (it would win over env)",
            );
        }
    }
    Ok(env)
}

/// `max_memory_restart` -> `maxMemoryUsage` and `restartOnHighMemory`.
fn memory(
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
fn timeouts(
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
fn logs_and_accounts(
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

#[cfg(test)]
#[path = "pm2_map_tests.rs"]
mod tests;
