//! Layered configuration: built-in defaults, the JSON file, environment variables, flags.
//!
//! [`load`] merges the layers with figment (lowest precedence first: defaults, the JSON
//! file, the environment variables of an [`Environment`], the [`Overrides`] from the command
//! line), extracts the raw camelCase configuration with unknown keys denied at every level,
//! and validates it into a [`ClusterSpec`]. Every value keeps its [`Source`], so a bad one
//! is reported as "invalid value for `port` from environment variable PORT: 70000 (must be
//! at most 65535)", and [`EffectiveConfig`] lists where each value came from.
//!
//! # Examples
//!
//! ```
//! use cluster_core::config::{self, Environment, Overrides};
//!
//! let env = Environment::from_vars([("PORT", "70000")]);
//! let error = config::load(&Overrides::default(), &env).unwrap_err();
//! assert_eq!(
//!     error.to_string(),
//!     "invalid value for `port` from environment variable PORT: 70000 (must be at most 65535)",
//! );
//! ```

mod access_log;
mod accounts;
mod admin;
pub(crate) use admin::MAX_SOCKET_PATH;
mod command;
mod diff;
mod effective;
mod error;
mod extract;
mod hardening;
mod health;
mod layers;
mod limits;
mod load;
mod mode;
mod ratelimit;
mod raw;
mod scalar;
mod sections;
mod source;
mod spec;
mod suggest;
mod validate;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::path::PathBuf;

pub use accounts::{WorkerGroup, WorkerUser};
pub use diff::{Applies, ConfigChange, changes, live_spec};
pub use effective::{EffectiveConfig, EffectiveEntry};
pub use error::{ConfigError, OtherValue};
pub use hardening::{HardeningSpec, LimitValue};
pub use limits::RequestLimits;
pub use load::{LoadedConfig, load};
pub use mode::{Mode, UnknownMode};
pub use ratelimit::{DEFAULT_EXEMPT, RateLimitFallback, RateLimitStore};
pub use source::Source;
pub use spec::{
    AccessLogFormat, AccessLogPath, AccessLogSpec, AdminSpec, ClusterSpec, HealthSpec,
    PerformanceSpec, RollingRestartSpec, ScalingSpec, SecuritySpec, Upstream, WorkerCommand,
};

use source::Provenance;

/// Values given on the command line; each `Some` overrides every other source.
///
/// Values are kept as the user typed them so that a bad one is reported with the flag's name
/// and the same wording as a bad value from the file or the environment.
///
/// # Examples
///
/// ```
/// use cluster_core::config::{self, Environment, Overrides};
///
/// let mut overrides = Overrides::default(); // what `cluster start` flags would give
/// overrides.workers = Some("max".into()); // one per CPU
/// overrides.port = Some("8080".into());
/// // `overrides.command` (after `--`) would replace the worker command; it must be on the PATH.
/// let spec = config::load(&overrides, &Environment::default())?.spec;
/// assert_eq!(spec.listen.port(), 8080);
/// # Ok::<(), config::ConfigError>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Overrides {
    /// `--config PATH`: the JSON file; it must exist.
    pub config_path: Option<PathBuf>,
    /// `--workers N|max`.
    pub workers: Option<String>,
    /// `--port N`.
    pub port: Option<String>,
    /// `--host ADDR`.
    pub host: Option<String>,
    /// `--strategy NAME` (`loadBalancingStrategy`).
    pub strategy: Option<String>,
    /// `--health-path PATH` (`healthCheckPath`).
    pub health_check_path: Option<String>,
    /// `--log-level FILTER`.
    pub log_level: Option<String>,
    /// The worker command after `--`: program then arguments; empty keeps the configured one.
    pub command: Vec<String>,
}

/// A snapshot of the process environment, so that loading is a pure function of its inputs
/// (tests pass their own; we never change our own process environment).
///
/// # Examples
///
/// ```
/// use cluster_core::config::Environment;
///
/// let env = Environment::from_vars([("PORT", "8080"), ("HOST", "127.0.0.1")]);
/// assert_eq!(env.get("PORT"), Some("8080"));
/// assert_eq!(env.get("REDIS_URL"), None);
/// let real = Environment::capture(); // the process environment, as it is now
/// # let _ = real;
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Environment {
    vars: BTreeMap<String, String>,
}

impl Environment {
    /// The current process environment (variables that are not valid UTF-8 are skipped).
    pub fn capture() -> Self {
        Self {
            vars: std::env::vars_os()
                .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
                .collect(),
        }
    }

    /// An environment holding exactly `vars`.
    pub fn from_vars<I, K, V>(vars: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        Self { vars: vars.into_iter().map(|(k, v)| (k.into(), v.into())).collect() }
    }

    /// The value of `name`, if set.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.vars.get(name).map(String::as_str)
    }
}
