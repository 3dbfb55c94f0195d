//! The figment layers, lowest precedence first: defaults, the JSON file, environment
//! variables, command-line flags.
//!
//! Every environment variable and every flag is its own small provider named after its
//! [`Source`], so `figment.find_metadata(key)` tells exactly which one supplied a value. We
//! never merge a generic prefixed `Env` provider: only the variables listed in [`ENV_VARS`]
//! are read, which is what makes `deny_unknown_fields` on the raw structs safe.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use figment::providers::{Format, Json, Serialized};
use figment::value::{Dict, Map, Value};
use figment::{Figment, Metadata, Profile, Provider};

use super::raw::RawConfig;
use super::{ConfigError, Environment, Overrides, Provenance, Source};

/// Name of the default configuration file, looked up in the current directory.
pub(crate) const DEFAULT_FILE: &str = "cluster.config.json";

/// The environment variable naming the configuration file.
pub(crate) const CONFIG_PATH_VAR: &str = "CLUSTER_CONFIG_PATH";

/// How a string from the environment or the command line becomes a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Parse {
    /// As figment's `Env` provider does (`Value::from_str`): `3000` is an integer, `true` a
    /// boolean, anything else a string. For keys that take numbers or booleans.
    Value,
    /// Kept as a string, for keys that only take strings: parsing could only turn a valid
    /// string (`LOG_LEVEL=info,hyper=warn`) into a wrong type.
    Text,
}

/// The environment variables read, each with the key it sets (dotted inside a section).
const ENV_VARS: &[(&str, &str, Parse)] = &[
    ("CLUSTER_WORKERS", "workers", Parse::Value),
    ("PORT", "port", Parse::Value),
    ("HOST", "host", Parse::Text),
    ("CLUSTER_MODE", "mode", Parse::Text),
    ("MAX_MEMORY_USAGE", "maxMemoryUsage", Parse::Value),
    ("GRACEFUL_SHUTDOWN_TIMEOUT", "gracefulShutdownTimeout", Parse::Value),
    ("HEALTH_CHECK_INTERVAL", "healthCheckInterval", Parse::Value),
    ("LOAD_BALANCING_STRATEGY", "loadBalancingStrategy", Parse::Text),
    ("ENABLE_STICKY_SESSION", "enableStickySession", Parse::Value),
    ("REDIS_URL", "redisUrl", Parse::Text),
    ("LOG_LEVEL", "logLevel", Parse::Text),
    ("CLUSTER_RUNTIME_DIR", "runtimeDir", Parse::Text),
    ("CLUSTER_ADMIN_TOKEN", "admin.token", Parse::Text),
];

impl Parse {
    fn value(self, text: &str) -> Value {
        match self {
            Parse::Value => text.parse().unwrap_or_else(|never| match never {}),
            Parse::Text => Value::from(text.to_owned()),
        }
    }
}

/// Finds the JSON file: `--config`, else `CLUSTER_CONFIG_PATH`, else
/// `cluster.config.json` in `base` if it exists. Relative paths are resolved against `base`
/// (the current directory, except in tests).
///
/// # Errors
///
/// [`ConfigError::MissingFile`] when a file named explicitly does not exist.
pub(crate) fn locate_file(
    overrides: &Overrides,
    env: &Environment,
    base: &Path,
) -> Result<Option<PathBuf>, ConfigError> {
    let named = match (&overrides.config_path, env.get(CONFIG_PATH_VAR)) {
        (Some(path), _) => Some((path.clone(), Source::Flag("--config".into()))),
        (None, Some(path)) if !path.is_empty() => {
            Some((PathBuf::from(path), Source::Env(CONFIG_PATH_VAR.into())))
        }
        _ => None,
    };
    match named {
        Some((path, origin)) => {
            let path = base.join(path);
            if path.exists() {
                Ok(Some(path))
            } else {
                Err(ConfigError::MissingFile { path, origin })
            }
        }
        None => Ok(Some(base.join(DEFAULT_FILE)).filter(|path| path.exists())),
    }
}

/// A figment under construction, with the [`Source`] of each provider.
#[derive(Debug)]
pub(crate) struct Layers {
    figment: Figment,
    sources: BTreeMap<String, Source>,
    /// The JSON file, if one was added: the only provider that can fail.
    file: Option<PathBuf>,
}

impl Layers {
    /// Only the built-in defaults.
    pub(crate) fn defaults() -> Self {
        let layers = Self { figment: Figment::new(), sources: BTreeMap::new(), file: None };
        layers.with(Source::Default, Serialized::defaults(RawConfig::default()))
    }

    /// Adds the JSON file at `path`.
    pub(crate) fn file(mut self, path: &Path) -> Self {
        self.file = Some(path.to_owned());
        self.with(Source::File(path.to_owned()), Json::file_exact(path))
    }

    /// Adds the variables of [`ENV_VARS`] that are set and not empty.
    pub(crate) fn env(self, env: &Environment) -> Self {
        ENV_VARS.iter().fold(self, |layers, &(var, key, parse)| match env.get(var) {
            Some(text) if !text.is_empty() => {
                layers.with(Source::Env(var.into()), Serialized::default(key, parse.value(text)))
            }
            _ => layers,
        })
    }

    /// Adds the flags that are set, then the command after `--`.
    pub(crate) fn flags(self, overrides: &Overrides) -> Self {
        let flags = [
            ("--workers", "workers", Parse::Value, &overrides.workers),
            ("--port", "port", Parse::Value, &overrides.port),
            ("--host", "host", Parse::Text, &overrides.host),
            ("--strategy", "loadBalancingStrategy", Parse::Text, &overrides.strategy),
            ("--health-path", "healthCheckPath", Parse::Text, &overrides.health_check_path),
            ("--log-level", "logLevel", Parse::Text, &overrides.log_level),
        ];
        let layers =
            flags.into_iter().fold(self, |layers, (flag, key, parse, value)| match value {
                Some(text) => layers
                    .with(Source::Flag(flag.into()), Serialized::default(key, parse.value(text))),
                None => layers,
            });
        match overrides.command.split_first() {
            Some((program, args)) => {
                let mut dict = Dict::new();
                dict.insert("command".into(), Value::from(program.clone()));
                dict.insert("args".into(), Value::from(args.to_vec()));
                layers.with(Source::CommandArgs, Serialized::defaults(dict))
            }
            None => layers,
        }
    }

    /// Merges the layers.
    ///
    /// # Errors
    ///
    /// [`ConfigError::ReadFile`] or [`ConfigError::InvalidJson`] when the JSON file cannot
    /// be read or is not a JSON object: the only provider that can fail.
    pub(crate) fn merge(self) -> Result<Provenance, ConfigError> {
        match (self.figment.find_value(""), &self.file) {
            (Ok(tree), _) => Ok(Provenance::new(self.figment, tree, self.sources)),
            (Err(error), Some(path)) => Err(file_error(path, &error.kind)),
            // Our other providers serialize plain values, which cannot fail.
            (Err(error), None) => unreachable!("a built-in configuration layer failed: {error}"),
        }
    }

    fn with<P: Provider>(mut self, source: Source, provider: P) -> Self {
        let name = source.to_string();
        self.figment = self.figment.merge(Named { name: name.clone(), inner: provider });
        self.sources.insert(name, source);
        self
    }
}

/// A provider renamed, so that its values' metadata reads as our [`Source`].
struct Named<P> {
    name: String,
    inner: P,
}

impl<P: Provider> Provider for Named<P> {
    fn metadata(&self) -> Metadata {
        Metadata::named(self.name.clone())
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        self.inner.data()
    }

    fn profile(&self) -> Option<Profile> {
        self.inner.profile()
    }
}

/// Our error for a figment provider that failed: only the JSON file can, and figment's
/// message is a string, so the file is parsed again for the line and column.
fn file_error(path: &Path, error: &figment::error::Kind) -> ConfigError {
    let invalid = |line, column, reason: String| ConfigError::InvalidJson {
        path: path.to_owned(),
        line,
        column,
        reason,
    };
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(error) => return ConfigError::ReadFile { path: path.to_owned(), error },
    };
    match serde_json::from_str::<serde_json::Value>(&text) {
        Err(e) => {
            let message = e.to_string();
            let suffix = format!(" at line {} column {}", e.line(), e.column());
            let reason = message.strip_suffix(&suffix).unwrap_or(&message).to_owned();
            invalid(e.line(), e.column(), reason)
        }
        Ok(value) if !value.is_object() => invalid(1, 1, "the top level must be an object".into()),
        // The file changed between the two reads; report what figment saw.
        Ok(_) => invalid(1, 1, error.to_string()),
    }
}
