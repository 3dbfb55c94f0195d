//! Layered configuration: built-in defaults, the JSON file, environment variables, flags.
//!
//! CONTRACT FOR THE CONFIG HELPER (remove this paragraph when implemented):
//! `load` builds a figment from, lowest first: defaults, the JSON file (`--config`, else
//! `CLUSTER_CONFIG_PATH`, else `./cluster.config.json` if it exists), the environment
//! variables of [`Environment`], then [`Overrides`]; extracts the raw camelCase config with
//! unknown keys denied; validates it into a [`ClusterSpec`].

mod spec;

use std::collections::BTreeMap;
use std::path::PathBuf;

pub use spec::{ClusterSpec, PerformanceSpec, ScalingSpec, SecuritySpec, WorkerCommand};

/// Values given on the command line; each `Some` overrides every other source.
///
/// Values are kept as the user typed them so that a bad one is reported with the flag's name
/// and the same wording as a bad value from the file or the environment.
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
