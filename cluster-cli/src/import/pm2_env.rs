//! A PM2 app's environment: `env`, the `env_<name>` block of `--env`, and `port` become
//! `env`, the front `port` and `host`.

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde_json::{Map, Value, json};

use super::pm2_keys::Options;
use super::pm2_map::MapError;
use super::pm2_values::{env_value, kind};
use super::report::Report;

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

/// `env`, `env_<name>` and `port` -> `env` (returned), `port` and `host` (in `config`).
pub(crate) fn env(
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
