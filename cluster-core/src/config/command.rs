//! Validation of the worker command: `command`, `args`, `cwd` and `env`.
//!
//! A command is checked when the configuration is loaded, so that a typo stops start-up
//! with a message naming the key, rather than every worker failing to spawn.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use super::raw::RawConfig;
use super::validate::Validator;
use super::{Environment, WorkerCommand};

impl Validator<'_> {
    pub(super) fn command(
        &mut self,
        raw: &RawConfig,
        env: &Environment,
        base: &Path,
    ) -> WorkerCommand {
        let cwd = raw.cwd.as_ref().map(PathBuf::from);
        if let Some(dir) = &cwd {
            let resolved = base.join(dir);
            if !resolved.is_dir() {
                let what = if resolved.exists() { "is not a directory" } else { "does not exist" };
                self.invalid("cwd", format!("{} {what}", resolved.display()));
            }
        }
        if let Some(program) = &raw.command {
            let dir = cwd.as_ref().map_or_else(|| base.to_owned(), |dir| base.join(dir));
            self.program(program, env, &dir);
        }
        for name in raw.env.keys() {
            if name.is_empty() || name.contains(['=', '\0']) {
                let reason = "variable names must not be empty or contain `=`";
                self.invalid_value("env", name.as_str().into(), reason);
            }
        }
        WorkerCommand {
            program: raw.command.as_ref().map(PathBuf::from),
            args: raw.args.clone(),
            cwd,
            env: raw.env.clone(),
        }
    }

    /// `program` must be an executable: looked up in `PATH` when it is a bare name,
    /// otherwise resolved against `dir` (the worker's directory).
    fn program(&mut self, program: &str, env: &Environment, dir: &Path) {
        const KEY: &str = "command";
        if program.trim().is_empty() {
            self.invalid(KEY, "must not be empty");
        } else if !program.contains('/') {
            if find_in_path(program, env.get("PATH").unwrap_or_default()).is_none() {
                self.invalid(KEY, format!("command `{program}` not found in PATH"));
            }
        } else {
            let path = dir.join(program);
            if !path.exists() {
                self.invalid(KEY, format!("{} does not exist", path.display()));
            } else if !is_executable(&path) {
                self.invalid(KEY, format!("{} is not an executable file", path.display()));
            }
        }
    }
}

/// The first executable named `name` in the directories of `path` (a `PATH` value).
fn find_in_path(name: &str, path: &str) -> Option<PathBuf> {
    std::env::split_paths(path)
        .filter(|dir| !dir.as_os_str().is_empty())
        .map(|dir| dir.join(name))
        .find(|candidate| is_executable(candidate))
}

/// Whether `path` is a file someone may execute.
fn is_executable(path: &Path) -> bool {
    path.metadata().is_ok_and(|md| md.is_file() && md.permissions().mode() & 0o111 != 0)
}
