//! Why a configuration was rejected.

use std::fmt;
use std::path::PathBuf;

use super::Source;

/// A configuration problem, or several.
///
/// Each variant but [`Multiple`](ConfigError::Multiple) is one problem and names the key (in
/// the file's camelCase spelling, dotted for nested keys), the offending value and the
/// [`Source`] it came from (the `origin` fields). Loading reports every problem it finds, not just the first:
/// several problems come as [`Multiple`](ConfigError::Multiple), whose `Display` prints one
/// per line; [`problems`](ConfigError::problems) iterates them in both cases.
///
/// # Examples
///
/// ```
/// use cluster_core::config::{self, ConfigError, Environment, Overrides};
///
/// let env = Environment::from_vars([("PORT", "99999"), ("CLUSTER_WORKERS", "lots")]);
/// let err = config::load(&Overrides::default(), &env).unwrap_err();
/// let keys: Vec<_> = err
///     .problems()
///     .map(|p| match p {
///         ConfigError::InvalidValue { key, .. } => key.as_str(),
///         _ => "other",
///     })
///     .collect();
/// assert_eq!(keys.len(), 2); // every problem, not just the first
/// assert!(keys.contains(&"port") && keys.contains(&"workers"));
/// eprintln!("{err}"); // one problem per line, each with its source
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A value has the wrong type or is out of range.
    #[error("invalid value for `{key}` from {origin}: {value} ({reason})")]
    InvalidValue {
        /// The key, e.g. `port` or `scaling.minWorkers`.
        key: String,
        /// The value as it was given (a JSON string when it was given as a string).
        value: serde_json::Value,
        /// Where the value came from.
        origin: Source,
        /// What is wrong with it, e.g. `must be at most 65535` or `expected a boolean`.
        reason: String,
    },
    /// A value is valid alone but contradicts another one (e.g. `scaling.minWorkers` above
    /// `scaling.maxWorkers`).
    #[error(
        "invalid value for `{key}` from {origin}: {value} ({relation} `{}` = {} from {})",
        other.key,
        other.value,
        other.origin
    )]
    Conflict {
        /// The key reported.
        key: String,
        /// Its value.
        value: serde_json::Value,
        /// Where it came from.
        origin: Source,
        /// How it relates to the other value, e.g. `greater than`.
        relation: &'static str,
        /// The value it conflicts with (boxed to keep the error small).
        other: Box<OtherValue>,
    },
    /// The file has a key that the configuration does not know (a typo, usually).
    #[error("unknown key `{key}` in {origin}{}", Suggestion(.suggestion.as_deref()))]
    UnknownKey {
        /// The unknown key, dotted when nested.
        key: String,
        /// Where it came from.
        origin: Source,
        /// The known key nearest to it, dotted, if one is close enough to be a likely typo.
        suggestion: Option<String>,
    },
    /// A configuration file named explicitly (flag or environment variable) does not exist.
    #[error("config file {} (from {origin}) does not exist", path.display())]
    MissingFile {
        /// The path, resolved against the current directory.
        path: PathBuf,
        /// Who named it: the `--config` flag or `CLUSTER_CONFIG_PATH`.
        origin: Source,
    },
    /// The configuration file could not be read.
    #[error("cannot read config file {}: {error}", path.display())]
    ReadFile {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        error: std::io::Error,
    },
    /// The configuration file is not valid JSON, or its top level is not an object.
    #[error("config file {} is not valid: {reason} at line {line}, column {column}", path.display())]
    InvalidJson {
        /// The file.
        path: PathBuf,
        /// 1-based line of the error.
        line: usize,
        /// 1-based column of the error.
        column: usize,
        /// What the JSON parser expected.
        reason: String,
    },
    /// Several problems, in the order they were found; never nested, never empty.
    #[error("{}", Lines(.0))]
    Multiple(Vec<ConfigError>),
}

/// The other side of a [`ConfigError::Conflict`].
///
/// # Examples
///
/// ```
/// use cluster_core::config::{self, ConfigError, Environment, Overrides};
///
/// let mut overrides = Overrides::default();
/// overrides.workers = Some("1".into());
/// let dir = std::env::temp_dir().join(format!("other-value-doc-{}", std::process::id()));
/// std::fs::create_dir_all(&dir).unwrap();
/// let file = dir.join("cluster.config.json");
/// std::fs::write(&file, r#"{"scaling": {"minWorkers": 4, "maxWorkers": 2}}"#).unwrap();
/// overrides.config_path = Some(file);
/// let err = config::load(&overrides, &Environment::default()).unwrap_err();
/// let conflict = err.problems().find_map(|p| match p {
///     ConfigError::Conflict { key, other, .. } => Some((key.clone(), other.key.clone())),
///     _ => None,
/// });
/// println!("{conflict:?}"); // e.g. `scaling.minWorkers` greater than `scaling.maxWorkers`
/// # std::fs::remove_dir_all(&dir).unwrap();
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct OtherValue {
    /// Its key, e.g. `scaling.maxWorkers`.
    pub key: String,
    /// Its value.
    pub value: serde_json::Value,
    /// Where it came from.
    pub origin: Source,
}

impl OtherValue {
    /// The value at `key`, from `origin`.
    pub(crate) fn new(key: &str, value: serde_json::Value, origin: Source) -> Self {
        Self { key: key.to_owned(), value, origin }
    }
}

impl ConfigError {
    /// Every single problem in this error: itself, or the members of
    /// [`Multiple`](ConfigError::Multiple).
    pub fn problems(&self) -> impl Iterator<Item = &ConfigError> {
        match self {
            ConfigError::Multiple(all) => all.iter(),
            one => std::slice::from_ref(one).iter(),
        }
    }

    /// Combines `problems` into one error: `None` when empty, the problem itself when alone.
    pub(crate) fn from_problems(mut problems: Vec<ConfigError>) -> Option<ConfigError> {
        match problems.len() {
            0 => None,
            1 => problems.pop(),
            _ => Some(ConfigError::Multiple(problems)),
        }
    }
}

/// Formats an optional "did you mean" tail.
struct Suggestion<'a>(Option<&'a str>);

impl fmt::Display for Suggestion<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(s) => write!(f, "; did you mean `{s}`?"),
            None => Ok(()),
        }
    }
}

/// Formats problems one per line.
struct Lines<'a>(&'a [ConfigError]);

impl fmt::Display for Lines<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, problem) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            problem.fmt(f)?;
        }
        Ok(())
    }
}
