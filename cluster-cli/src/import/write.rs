//! `cluster import pm2 FILE`: evaluate, select, map, check through the real configuration
//! loader, write, and print the report.

use std::io::{Read as _, Write as _};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use cluster_core::config::{self, Environment, Overrides};
use serde_json::Value;

use super::evaluate::evaluate;
use super::pm2_map::{Host, ScriptFile, map_app};
use super::report::Report;
use super::select::select;
use crate::args::{DEFAULT_OUTPUT, Pm2Args};

/// Runs `cluster import pm2` with `args`: exit 0 when written, 2 for a problem with the
/// input (the message says which), 1 when node or the file system failed.
pub(crate) fn run_pm2(args: Pm2Args) -> ExitCode {
    match import(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err((code, message)) => {
            for line in message.lines() {
                eprintln!("cluster import: {line}");
            }
            ExitCode::from(code)
        }
    }
}

type Failure = (u8, String);

fn input(e: impl std::fmt::Display) -> Failure {
    (2, e.to_string())
}

fn import(args: &Pm2Args) -> Result<(), Failure> {
    let to_stdout = args.output.as_os_str() == "-";
    let evaluated = evaluate(&args.file, &args.node).map_err(|e| {
        use super::evaluate::EvaluateError as E;
        let code = if matches!(e, E::NoNode { .. } | E::Io { .. }) { 1 } else { 2 };
        (code, e.to_string())
    })?;
    let mut report = Report::default();
    let chosen = select(&evaluated.value, args.app.as_deref(), &mut report).map_err(input)?;
    let path_var = std::env::var("PATH").unwrap_or_default();
    let on_path = |name: &str| find_in_path(name, &path_var).is_some();
    let script = |script: &str, cwd: Option<&str>| script_file(script, cwd, &path_var);
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let host = Host { cpus, script: &script, on_path: &on_path };
    let mut imported = map_app(&chosen.app, args.env.as_deref(), &host)
        .map_err(|e| input(format!("app {:?}: {e}", chosen.name)))?;
    for entry in report.dropped.drain(..) {
        imported.report.dropped.push(entry);
    }
    for (path, kind) in &evaluated.non_json {
        if let Some(rest) = path.strip_prefix(chosen.path.as_slice()) {
            imported.report.dropped(
                dotted(rest),
                format!("{kind}, which a JSON file cannot hold: compute it in the app, or set the value by hand"),
            );
        }
    }
    if !evaluated.env_read.is_empty() {
        imported.report.approximated(
            "(evaluation)",
            format!(
                "the file read {} from this shell's environment: the values it had here are written into the configuration",
                evaluated.env_read.join(", ")
            ),
        );
    }

    if !to_stdout && args.output.exists() && !args.force {
        let out = args.output.display();
        return Err((2, format!("{out} exists; pass --force to overwrite it, or --output PATH")));
    }
    let mut json = serde_json::to_string_pretty(&Value::Object(imported.config))
        .map_err(|e| (1, e.to_string()))?;
    json.push('\n');
    check(&json, &args.output, to_stdout, &path_var)?;
    let env_note = args.env.as_deref().map(|e| format!(" with --env {e}")).unwrap_or_default();
    let heading = format!("Imported app {:?} from {}{env_note}.", chosen.name, args.file.display());
    if to_stdout {
        print!("{json}");
        eprintln!("{heading}\n\n{}", imported.report);
    } else {
        std::fs::write(&args.output, &json)
            .map_err(|e| (1, format!("writing {}: {e}", args.output.display())))?;
        let start = if args.output == Path::new(DEFAULT_OUTPUT) {
            "cluster start".to_owned()
        } else {
            format!("cluster start --config {}", args.output.display())
        };
        println!(
            "{heading}\n\n{}\nWrote {}. Run it with `{start}`.",
            imported.report,
            args.output.display()
        );
    }
    Ok(())
}

/// Loads `json` through the real configuration loader (with this `PATH` only, so that no
/// variable of this shell hides a problem of the file): nothing is written that `cluster
/// start` would reject. The check runs on a temporary file beside the output, so that
/// relative paths mean what they will mean.
fn check(json: &str, output: &Path, to_stdout: bool, path_var: &str) -> Result<(), Failure> {
    let dir = match output.parent() {
        Some(d) if !to_stdout && !d.as_os_str().is_empty() => d.to_owned(),
        _ => PathBuf::from("."),
    };
    let mut tmp = tempfile::Builder::new()
        .prefix(".cluster-import-")
        .suffix(".json")
        .tempfile_in(&dir)
        .map_err(|e| (1, format!("creating a file in {}: {e}", dir.display())))?;
    tmp.write_all(json.as_bytes()).map_err(|e| (1, e.to_string()))?;
    let mut overrides = Overrides::default();
    overrides.config_path = Some(tmp.path().to_owned());
    let env = Environment::from_vars([("PATH", path_var)]);
    config::load(&overrides, &env).map(|_| ()).map_err(|e| {
        let shown =
            if to_stdout { "the configuration".into() } else { output.display().to_string() };
        let text = e.to_string().replace(&tmp.path().display().to_string(), &shown);
        (2, format!("the imported configuration would not load, so nothing was written:\n{text}"))
    })
}

/// `["env", "X"]` -> `env.X`.
fn dotted(path: &[Value]) -> String {
    let parts: Vec<String> = path
        .iter()
        .map(|p| match p {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        })
        .collect();
    if parts.is_empty() { "(the app)".into() } else { parts.join(".") }
}

/// Where `script` is, seen from `cwd` (relative to the current directory), as PM2 looks:
/// the file, else a program of that name in PATH.
fn script_file(script: &str, cwd: Option<&str>, path_var: &str) -> ScriptFile {
    let dir = PathBuf::from(cwd.unwrap_or("."));
    let path = dir.join(script);
    if path.is_file() {
        if is_binary(&path) { ScriptFile::Binary } else { ScriptFile::Text }
    } else if !script.contains('/') && find_in_path(script, path_var).is_some() {
        ScriptFile::OnPath
    } else {
        ScriptFile::Missing
    }
}

/// An executable file that is not text: an ELF binary (PM2 runs those without an
/// interpreter).
fn is_binary(path: &Path) -> bool {
    let executable = path.metadata().is_ok_and(|m| m.permissions().mode() & 0o111 != 0);
    let mut magic = [0u8; 4];
    let elf = std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut magic))
        .is_ok_and(|()| &magic == b"\x7fELF");
    executable && elf
}

/// The first executable named `name` in the directories of `path_var`.
fn find_in_path(name: &str, path_var: &str) -> Option<PathBuf> {
    std::env::split_paths(path_var)
        .filter(|dir| !dir.as_os_str().is_empty())
        .map(|dir| dir.join(name))
        .find(|p| p.metadata().is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0))
}
