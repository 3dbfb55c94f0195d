//! Loading: locate the file, merge the layers, extract, validate.

use std::path::{Path, PathBuf};

use super::effective::EffectiveConfig;
use super::extract::extract;
use super::layers::{Layers, locate_file};
use super::validate::validate;
use super::{ClusterSpec, ConfigError, Environment, Overrides};

/// A loaded configuration: the checked spec, and the report of where each value came from.
///
/// # Examples
///
/// ```
/// use cluster_core::config::{self, Environment, Overrides};
///
/// let loaded = config::load(&Overrides::default(), &Environment::default())?;
/// let (spec, effective) = (loaded.spec, loaded.effective);
/// let configured = &effective.get("workers").unwrap().value; // as written, e.g. "max"
/// println!("workers: {configured} -> {}", spec.workers); // resolved to a count
/// # Ok::<(), config::ConfigError>(())
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct LoadedConfig {
    /// The validated configuration the cluster runs with.
    pub spec: ClusterSpec,
    /// Every key with its value and source, for `cluster config`.
    pub effective: EffectiveConfig,
}

/// Loads the configuration from its layers, lowest precedence first: built-in defaults; the
/// JSON file; environment variables from `env`; command-line `overrides`.
///
/// The file is `overrides.config_path` if given, else `CLUSTER_CONFIG_PATH` if set, else
/// `cluster.config.json` in the current directory if it exists. Only these environment
/// variables are read: `CLUSTER_WORKERS`, `PORT`, `HOST`, `MAX_MEMORY_USAGE`,
/// `GRACEFUL_SHUTDOWN_TIMEOUT`, `HEALTH_CHECK_INTERVAL`, `LOAD_BALANCING_STRATEGY`,
/// `ENABLE_STICKY_SESSION`, `REDIS_URL`, `LOG_LEVEL`, `CLUSTER_RUNTIME_DIR` (`runtimeDir`),
/// `CLUSTER_ADMIN_TOKEN` (`admin.token`) (and `CLUSTER_CONFIG_PATH`); one set to the empty
/// string counts as unset. `PATH` is used to find the worker command.
///
/// # Errors
///
/// A [`ConfigError`] naming every problem found, each with its key, value and source: a
/// file named explicitly that does not exist, a file that is not a JSON object, unknown
/// keys, values of the wrong type or out of range, a worker command that cannot be found.
///
/// # Examples
///
/// ```
/// use cluster_core::config::{self, Environment, Overrides};
///
/// let mut overrides = Overrides::default();
/// overrides.port = Some("8080".into());
/// let env = Environment::from_vars([("HOST", "127.0.0.1"), ("PORT", "9000")]);
/// let loaded = config::load(&overrides, &env)?;
/// assert_eq!(loaded.spec.listen.to_string(), "127.0.0.1:8080");
/// let port = loaded.effective.get("port").unwrap();
/// assert_eq!(port.source.to_string(), "command-line flag --port");
/// # Ok::<(), config::ConfigError>(())
/// ```
pub fn load(overrides: &Overrides, env: &Environment) -> Result<LoadedConfig, ConfigError> {
    let base = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
    load_in(overrides, env, &base)
}

/// [`load`] with relative paths (the file, `cwd`, the command, `runtimeDir`, `logFile`,
/// `admin.socket`) resolved against `base`.
pub(crate) fn load_in(
    overrides: &Overrides,
    env: &Environment,
    base: &Path,
) -> Result<LoadedConfig, ConfigError> {
    let file = locate_file(overrides, env, base)?;
    let mut layers = Layers::defaults();
    if let Some(path) = &file {
        layers = layers.file(path);
    }
    resolve(layers.env(env).flags(overrides), env, base)
}

/// The spec of the built-in defaults alone.
///
/// # Panics
///
/// If the built-in defaults do not validate, a bug that the tests catch.
pub(crate) fn defaults() -> ClusterSpec {
    match resolve(Layers::defaults(), &Environment::default(), Path::new(".")) {
        Ok(loaded) => loaded.spec,
        Err(e) => panic!("the built-in defaults are invalid: {e}"),
    }
}

fn resolve(layers: Layers, env: &Environment, base: &Path) -> Result<LoadedConfig, ConfigError> {
    let prov = layers.merge()?;
    let (raw, problems) = extract(&prov);
    let spec = validate(&raw, &prov, env, base, problems)?;
    let effective = EffectiveConfig::new(&raw, &spec, &prov);
    Ok(LoadedConfig { spec, effective })
}
