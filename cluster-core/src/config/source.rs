//! Provenance: where each configuration value came from.
//!
//! Every layer of the figment is merged under a metadata name that is the [`Display`] of its
//! [`Source`]; [`Provenance`] maps a key back to the layer that supplied its value, which is
//! what error messages and the `cluster config` report print.
//!
//! [`Display`]: fmt::Display

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use figment::Figment;
use figment::value::Value;

/// Where a configuration value came from.
///
/// # Examples
///
/// ```
/// use cluster_core::config::{self, Environment, Overrides, Source};
///
/// let env = Environment::from_vars([("PORT", "8080")]);
/// let loaded = config::load(&Overrides::default(), &env)?;
/// let port = loaded.effective.get("port").unwrap();
/// assert_eq!(port.source, Source::Env("PORT".into()));
/// assert_eq!(port.source.to_string(), "environment variable PORT");
/// # Ok::<(), config::ConfigError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Source {
    /// The built-in default.
    Default,
    /// The JSON configuration file at this path.
    File(PathBuf),
    /// The environment variable of this name, e.g. `PORT`.
    Env(String),
    /// The command-line flag of this name, e.g. `--port`.
    Flag(String),
    /// The worker command given on the command line after `--`.
    CommandArgs,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Default => f.write_str("default"),
            Source::File(path) => write!(f, "config file {}", path.display()),
            Source::Env(name) => write!(f, "environment variable {name}"),
            Source::Flag(flag) => write!(f, "command-line flag {flag}"),
            Source::CommandArgs => f.write_str("command line after --"),
        }
    }
}

/// The merged configuration tree and a way back from its values to our [`Source`]s.
#[derive(Debug)]
pub(crate) struct Provenance {
    figment: Figment,
    tree: Value,
    sources: BTreeMap<String, Source>,
}

impl Provenance {
    /// Wraps `tree`, merged by `figment`, whose providers were named after the `Display`
    /// of `sources`.
    pub(crate) fn new(figment: Figment, tree: Value, sources: BTreeMap<String, Source>) -> Self {
        Self { figment, tree, sources }
    }

    /// The merged tree, every value tagged with the layer that supplied it.
    pub(crate) fn tree(&self) -> &Value {
        &self.tree
    }

    /// The layer that supplied the value at the dotted `key`; [`Source::Default`] when no
    /// layer did (a default that validation resolves, such as `scaling.maxWorkers`).
    pub(crate) fn source_of(&self, key: &str) -> Source {
        self.tree
            .find_ref(key)
            .and_then(|v| self.figment.get_metadata(v.tag()))
            .and_then(|md| self.sources.get(md.name.as_ref()))
            .cloned()
            .unwrap_or(Source::Default)
    }

    /// The merged value at the dotted `key`, as JSON (`null` when absent).
    pub(crate) fn value_of(&self, key: &str) -> serde_json::Value {
        self.tree
            .find_ref(key)
            .and_then(|v| serde_json::to_value(v).ok())
            .unwrap_or(serde_json::Value::Null)
    }
}
