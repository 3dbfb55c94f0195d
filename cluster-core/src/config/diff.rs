//! What changed between two specs, and when each change takes effect: for a live reload of
//! the configuration (SIGUSR2).
//!
//! Every key is classified once, in [`walk`], which destructures each spec struct without
//! `..`: a field added to a spec struct does not compile until it is classified there.

mod walk;

use serde::Serialize;

use super::ClusterSpec;
use walk::walk;

/// When a changed key takes effect.
///
/// # Examples
///
/// ```
/// use cluster_core::config::{self, Applies, ClusterSpec};
///
/// let old = ClusterSpec::default();
/// let mut new = old.clone();
/// new.workers = old.workers + 1;
/// let change = &config::changes(&old, &new)[0];
/// assert_eq!((change.key, change.applies), ("workers", Applies::Now));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Applies {
    /// At once.
    Now,
    /// For workers started from the next rolling restart on (the worker `command`, `args`,
    /// `cwd`, `env`, `health.nodeIpc`, `upstream`, and `user`, `group`, `cpuAffinity` and
    /// `limits`);
    /// running workers keep what they were started with.
    NextGeneration,
    /// Only when the primary restarts: until then the key keeps its old value (the listener,
    /// the proxy's connection settings, `logLevel`, `runtimeDir`, `logFile` and the
    /// `security`, `admin` and `accessLog` sections).
    Restart,
}

/// One key whose value differs between two specs.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use cluster_core::config::{self, ClusterSpec};
///
/// let old = ClusterSpec::default();
/// let mut new = old.clone();
/// new.performance.request_timeout = Duration::from_secs(90);
/// for change in config::changes(&old, &new) {
///     println!("{}: {} -> {} ({:?})", change.key, change.from, change.to, change.applies);
/// }
/// ```
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct ConfigChange {
    /// The key as the file names it, dotted inside sections (`scaling.minWorkers`).
    pub key: &'static str,
    /// The old value, for people, in the file's units: milliseconds as a plain number,
    /// sizes as `512 MB`, lists as JSON, an unset optional key as `unset`. Never a secret:
    /// `env` is shown by variable names, `redisUrl` without its password, a set
    /// `admin.token` as `***`.
    pub from: String,
    /// The new value, written as [`from`](Self::from) is.
    pub to: String,
    /// When the change takes effect.
    pub applies: Applies,
}

/// Every key that differs between `old` and `new`, in a fixed order (that of the spec's
/// fields). `env` is one key, however many variables differ.
///
/// # Examples
///
/// ```
/// use cluster_core::config::{self, Applies, ClusterSpec};
///
/// let old = ClusterSpec::default();
/// let mut new = old.clone();
/// new.health_check_path = Some("/healthz".into());
/// new.listen.set_port(4000);
/// let changes = config::changes(&old, &new);
/// let keys: Vec<_> = changes.iter().map(|c| (c.key, c.applies)).collect();
/// assert_eq!(keys, [("port", Applies::Restart), ("healthCheckPath", Applies::Now)]);
/// assert_eq!((changes[0].from.as_str(), changes[0].to.as_str()), ("3000", "4000"));
///
/// // A running cluster probes the new path at once and keeps listening on the old port.
/// let live = config::live_spec(&old, &new);
/// assert_eq!(live.health_check_path.as_deref(), Some("/healthz"));
/// assert_eq!(live.listen.port(), 3000);
/// ```
pub fn changes(old: &ClusterSpec, new: &ClusterSpec) -> Vec<ConfigChange> {
    let mut collect = Collect(Vec::new());
    walk(old, &mut new.clone(), &mut collect);
    for change in &mut collect.0 {
        // Changes are logged and streamed: no secret in them (`admin.token` is shown as
        // `***` by `walk` itself).
        match change.key {
            "env" => (change.from, change.to) = env_names(&old.command.env, &new.command.env),
            "redisUrl" => {
                change.from = without_password(&change.from);
                change.to = without_password(&change.to);
            }
            _ => {}
        }
    }
    collect.0
}

/// The variables of `old` and `new`, by name only (values may be secrets), with what happened
/// to each in `new`: `ORIGIN, TOKEN` -> `ORIGIN (changed), TOKEN, DEBUG (added), -LEGACY`.
fn env_names(
    old: &std::collections::BTreeMap<String, String>,
    new: &std::collections::BTreeMap<String, String>,
) -> (String, String) {
    let from: Vec<&str> = old.keys().map(String::as_str).collect();
    let mut to: Vec<String> = new
        .iter()
        .map(|(k, v)| match old.get(k) {
            None => format!("{k} (added)"),
            Some(was) if was != v => format!("{k} (changed)"),
            Some(_) => k.clone(),
        })
        .collect();
    to.extend(old.keys().filter(|k| !new.contains_key(*k)).map(|k| format!("-{k}")));
    let list = |names: Vec<String>| if names.is_empty() { "none".into() } else { names.join(", ") };
    (list(from.into_iter().map(String::from).collect()), list(to))
}

/// A Redis URL with its password, if any, replaced by `***`.
fn without_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_owned() };
    match rest.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split_once(':').map_or(userinfo, |(user, _)| user);
            format!("{scheme}://{user}:***@{host}")
        }
        None => url.to_owned(),
    }
}

/// `new`, with every key that applies only at a restart ([`Applies::Restart`]) kept at its
/// `old` value: the spec a running cluster switches to on a reload.
///
/// The result is valid when both specs are: no check relates a key that applies at a
/// restart to one that does not.
///
/// # Examples
///
/// ```
/// use cluster_core::config::{self, ClusterSpec};
///
/// let old = ClusterSpec::default();
/// let mut new = old.clone();
/// new.listen.set_port(4000); // needs a restart
/// new.workers = old.workers + 2; // applied at once
/// let live = config::live_spec(&old, &new);
/// assert_eq!((live.listen.port(), live.workers), (old.listen.port(), new.workers));
/// ```
pub fn live_spec(old: &ClusterSpec, new: &ClusterSpec) -> ClusterSpec {
    let mut live = new.clone();
    walk(old, &mut live, &mut KeepUntilRestart);
    live
}

/// Every key with its class, in the order of [`changes`].
#[cfg(test)]
pub(super) fn classes() -> Vec<(&'static str, Applies)> {
    struct All(Vec<(&'static str, Applies)>);
    impl Visit for All {
        fn key<T: Clone + PartialEq>(&mut self, key: Key<'_, T>) {
            self.0.push((key.name, key.applies));
        }
    }
    let spec = ClusterSpec::default();
    let mut all = All(Vec::new());
    walk(&spec, &mut spec.clone(), &mut all);
    all.0
}

/// One key of the specs, as [`walk`] hands it to a [`Visit`].
struct Key<'a, T> {
    /// The file's dotted name.
    name: &'static str,
    applies: Applies,
    old: &'a T,
    /// The new value, which the visitor may replace.
    new: &'a mut T,
    /// How a value is shown to people.
    show: fn(&T) -> String,
}

/// What [`walk`] does with each key.
trait Visit {
    fn key<T: Clone + PartialEq>(&mut self, key: Key<'_, T>);
}

/// Collects the keys whose values differ.
struct Collect(Vec<ConfigChange>);

impl Visit for Collect {
    fn key<T: Clone + PartialEq>(&mut self, Key { name, applies, old, new, show }: Key<'_, T>) {
        if old != new {
            self.0.push(ConfigChange { key: name, from: show(old), to: show(new), applies });
        }
    }
}

/// Puts back the old value of every key that applies only at a restart.
struct KeepUntilRestart;

impl Visit for KeepUntilRestart {
    fn key<T: Clone + PartialEq>(&mut self, key: Key<'_, T>) {
        if key.applies == Applies::Restart {
            key.new.clone_from(key.old);
        }
    }
}
