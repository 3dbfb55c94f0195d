//! Tests of configuration loading, through `load_in` so that each test has its own
//! directory and environment (we never change the process's).

mod access_log;
mod admin;
mod diff;
mod errors;
mod hardening;
mod health;
mod layering;
mod ratelimit;
mod scaling;
mod upstream;
mod values;

use std::path::{Path, PathBuf};

use tempfile::TempDir;

use super::load::load_in;
use super::{ConfigError, Environment, LoadedConfig, Overrides};

const MIB: u64 = 1024 * 1024;

/// The sample file of the original Node design, exactly as written there.
const SAMPLE: &str = r#"{"workers":4,"port":3000,"host":"0.0.0.0","gracefulShutdownTimeout":15000,"healthCheckInterval":5000,
 "maxMemoryUsage":768,"restartOnHighMemory":true,"loadBalancingStrategy":"least-connections",
 "enableStickySession":false,"redisUrl":"redis://localhost:6379",
 "scaling":{"autoScale":false,"minWorkers":2,"maxWorkers":8,"cpuThreshold":80,"memoryThreshold":85},
 "performance":{"maxRequestsPerWorker":1000,"requestTimeout":30000,"enableCompression":true},
 "security":{"enableRateLimit":true,"rateLimitWindow":60000,"rateLimitMax":100}}"#;

/// A scratch directory standing for the current directory.
struct Dir(TempDir);

impl Dir {
    fn new() -> Self {
        Dir(tempfile::tempdir().expect("temp dir"))
    }

    fn path(&self) -> &Path {
        self.0.path()
    }

    /// Writes `cluster.config.json` (found without being named) and returns its path.
    fn config(&self, json: &str) -> PathBuf {
        self.write("cluster.config.json", json)
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.path().join(name);
        std::fs::write(&path, text).expect("write file");
        path
    }

    /// Writes an executable script `name` and returns its path.
    fn executable(&self, name: &str) -> PathBuf {
        let path = self.write(name, "#!/bin/sh\n");
        make_executable(&path);
        path
    }

    fn load(
        &self,
        overrides: &Overrides,
        env: &[(&str, &str)],
    ) -> Result<LoadedConfig, ConfigError> {
        load_in(overrides, &Environment::from_vars(env.iter().copied()), self.path())
    }

    /// The lines of the error of loading; panics if it loads.
    fn errors(&self, overrides: &Overrides, env: &[(&str, &str)]) -> Vec<String> {
        match self.load(overrides, env) {
            Ok(loaded) => panic!("expected an error, got {:#?}", loaded.spec),
            Err(e) => {
                let lines: Vec<String> = e.to_string().lines().map(str::to_owned).collect();
                assert_eq!(lines.len(), e.problems().count(), "one line per problem: {e}");
                lines
            }
        }
    }

    /// The single error message of loading.
    fn error(&self, overrides: &Overrides, env: &[(&str, &str)]) -> String {
        let mut lines = self.errors(overrides, env);
        assert_eq!(lines.len(), 1, "expected one problem, got {lines:#?}");
        lines.remove(0)
    }

    /// How the default config file's source reads.
    fn file_source(&self) -> String {
        format!("config file {}", self.path().join("cluster.config.json").display())
    }
}

fn make_executable(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
}

fn flags(f: impl FnOnce(&mut Overrides)) -> Overrides {
    let mut overrides = Overrides::default();
    f(&mut overrides);
    overrides
}

fn no_flags() -> Overrides {
    Overrides::default()
}
