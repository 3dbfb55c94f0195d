//! The mapping of one PM2 app to `cluster.config.json`: a pure function of the app's JSON,
//! the chosen `--env` block and a few facts about the machine ([`Host`]), returning the
//! configuration and a [`Report`] in which every key of the app appears.

use serde_json::{Map, Value, json};

use super::pm2_command::{self, string};
use super::pm2_dropped::no_equivalent;
use super::pm2_env::env;
use super::pm2_keys::{Field, sort_keys};
use super::pm2_runtime::{logs_and_accounts, memory, timeouts, workers};
use super::report::Report;

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

#[cfg(test)]
#[path = "pm2_map_tests.rs"]
mod tests;
