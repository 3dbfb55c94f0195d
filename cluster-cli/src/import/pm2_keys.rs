//! The options of a PM2 app and their aliases, as PM2 7 reads them (`lib/API/schema.json`
//! and `lib/tools/Config.js`): every option also answers to its camelCase spelling
//! (`max_memory_restart` and `maxMemoryRestart`), some to listed aliases (`interpreter` for
//! `exec_interpreter`), and `env_<name>` blocks hold the variables of `pm2 start --env <name>`.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

/// Every option of a PM2 app with its listed aliases (the camelCase one is derived).
const OPTIONS: &[(&str, &[&str])] = &[
    ("script", &["exec"]),
    ("name", &[]),
    ("name_prefix", &[]),
    ("filter_env", &[]),
    ("namespace", &[]),
    ("install_url", &[]),
    ("cwd", &[]),
    ("args", &[]),
    ("exec_interpreter", &["interpreter"]),
    ("node_args", &["interpreterArgs", "interpreter_args"]),
    ("out_file", &["out", "output", "out_log"]),
    ("error_file", &["error", "err", "err_file", "err_log"]),
    ("log_file", &["log"]),
    ("disable_logs", &[]),
    ("log_type", &[]),
    ("log_date_format", &[]),
    ("time", &[]),
    ("env", &[]),
    ("max_memory_restart", &[]),
    ("pid_file", &["pid"]),
    ("restart_delay", &[]),
    ("exp_backoff_restart_delay", &[]),
    ("source_map_support", &[]),
    ("disable_source_map_support", &[]),
    ("wait_ready", &[]),
    ("instances", &[]),
    ("kill_timeout", &[]),
    ("shutdown_with_message", &[]),
    ("listen_timeout", &[]),
    ("cron_restart", &["cron"]),
    ("merge_logs", &["combine_logs"]),
    ("vizion", &[]),
    ("autostart", &[]),
    ("autorestart", &[]),
    ("stop_exit_codes", &[]),
    ("watch_delay", &[]),
    ("watch", &[]),
    ("ignore_watch", &[]),
    ("watch_options", &[]),
    ("min_uptime", &[]),
    ("max_restarts", &[]),
    ("execute_command", &[]),
    ("exec_mode", &[]),
    ("force", &[]),
    ("append_env_to_name", &[]),
    ("post_update", &[]),
    ("trace", &[]),
    ("disable_trace", &[]),
    ("v8", &[]),
    ("event_loop_inspector", &[]),
    ("deep_monitoring", &[]),
    ("increment_var", &[]),
    ("instance_var", &[]),
    ("pmx", &[]),
    ("automation", &[]),
    ("treekill", &[]),
    ("port", &[]),
    ("username", &[]),
    ("uid", &["user"]),
    ("gid", &[]),
    ("windowsHide", &[]),
    ("kill_retry_time", &[]),
    ("write", &[]),
    ("io", &[]),
];

/// One option of an app: the key as the file spells it, and its value.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Field {
    /// The key as written (`interpreter`, `maxMemoryRestart`), for messages.
    pub(crate) written: String,
    /// The value.
    pub(crate) value: Value,
}

/// An app's keys sorted out: options under their canonical names, `env_<name>` blocks, and
/// the rest.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Options {
    /// Options by canonical name (`exec_interpreter`, not `interpreter`).
    pub(crate) fields: BTreeMap<&'static str, Field>,
    /// `env_<name>` blocks by `<name>`.
    pub(crate) env_blocks: BTreeMap<String, Value>,
    /// Keys PM2 does not know.
    pub(crate) unknown: Vec<String>,
    /// Aliases that PM2 ignores because the option is already given under another spelling:
    /// (the alias, the spelling that wins).
    pub(crate) shadowed: Vec<(String, String)>,
}

/// The canonical name of the option `key` names, if PM2 knows it.
pub(crate) fn canonical(key: &str) -> Option<&'static str> {
    OPTIONS.iter().find_map(|&(name, aliases)| {
        (name == key || aliases.contains(&key) || camel(name) == key).then_some(name)
    })
}

/// Every option's canonical name, in PM2's schema order.
#[cfg(test)]
pub(crate) fn names() -> impl Iterator<Item = &'static str> {
    OPTIONS.iter().map(|&(name, _)| name)
}

/// Whether `key` is a known option or an `env_<name>` block.
#[cfg(test)]
pub(crate) fn is_known(key: &str) -> bool {
    canonical(key).is_some() || env_block_name(key).is_some()
}

/// `<name>` of an `env_<name>` key.
fn env_block_name(key: &str) -> Option<&str> {
    key.strip_prefix("env_").filter(|name| !name.is_empty())
}

/// PM2's camelCase spelling of an option: `max_memory_restart` -> `maxMemoryRestart` (parts of
/// one letter are left as they are, as PM2 does).
fn camel(name: &str) -> String {
    name.split('_')
        .enumerate()
        .map(|(i, part)| {
            if i > 0 && part.len() > 1 {
                let mut chars = part.chars();
                chars
                    .next()
                    .map(|c| c.to_ascii_uppercase().to_string() + chars.as_str())
                    .unwrap_or_default()
            } else {
                part.to_owned()
            }
        })
        .collect()
}

/// Sorts the keys of `app`. The canonical spelling wins over an alias, and an earlier alias
/// over a later one (in the file's key order, which JSON objects here do not keep, so: in
/// alphabetical order).
pub(crate) fn sort_keys(app: &Map<String, Value>) -> Options {
    let mut options = Options::default();
    let mut keys: Vec<&String> = app.keys().collect();
    // The canonical spelling first, so that it wins over any alias.
    keys.sort_by_key(|key| (canonical(key) != Some(key.as_str()), key.as_str()));
    for key in keys {
        let value = &app[key];
        if let Some(name) = canonical(key) {
            match options.fields.get(name) {
                Some(winner) => options.shadowed.push((key.clone(), winner.written.clone())),
                None => {
                    let field = Field { written: key.clone(), value: value.clone() };
                    options.fields.insert(name, field);
                }
            }
        } else if let Some(name) = env_block_name(key) {
            options.env_blocks.insert(name.to_owned(), value.clone());
        } else {
            options.unknown.push(key.clone());
        }
    }
    options
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn camel_case_spellings() {
        assert_eq!(camel("max_memory_restart"), "maxMemoryRestart");
        assert_eq!(camel("v8"), "v8");
        assert_eq!(canonical("maxMemoryRestart"), Some("max_memory_restart"));
        assert_eq!(canonical("interpreter"), Some("exec_interpreter"));
        assert_eq!(canonical("interpreter_args"), Some("node_args"));
        assert_eq!(canonical("user"), Some("uid"));
        assert_eq!(canonical("combine_logs"), Some("merge_logs"));
        assert_eq!(canonical("killTimeout"), Some("kill_timeout"));
        assert_eq!(canonical("nope"), None);
        assert!(is_known("env_production"));
        assert!(!is_known("env_"));
    }

    #[test]
    fn canonical_spelling_wins() {
        let app = serde_json::json!({
            "interpreter": "bun", "exec_interpreter": "node", "env_staging": {"A": "1"},
            "colour": "blue"
        });
        let options = sort_keys(app.as_object().unwrap());
        assert_eq!(options.fields["exec_interpreter"].value, "node");
        assert_eq!(options.shadowed, vec![("interpreter".into(), "exec_interpreter".into())]);
        assert_eq!(options.env_blocks["staging"], serde_json::json!({"A": "1"}));
        assert_eq!(options.unknown, vec!["colour".to_owned()]);
    }
}
