//! The worker command of a PM2 app: `script`, `exec_interpreter`, `node_args` and `args`
//! become `command` and `args`, choosing the interpreter as PM2 7 does
//! (`lib/Common.js`: `verifyConfs`, `prepareAppConf`, `resolveInterpreter`;
//! `lib/API/interpreter.json`).

use serde_json::Value;

use super::pm2_keys::Options;
use super::pm2_map::{Host, MapError, ScriptFile};
use super::pm2_values::{arg_list, kind};
use super::report::Report;

/// What each worker runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Command {
    /// The program (`command`).
    pub(crate) program: String,
    /// Its arguments (`args`).
    pub(crate) args: Vec<String>,
    /// The interpreter is Python: PM2 sets `PYTHONUNBUFFERED=1`.
    pub(crate) python: bool,
}

/// The interpreter PM2 picks for a script by its extension (`interpreter.json`, with `.cjs`
/// and `.mjs`, which PM2 runs with the node that runs PM2), and a note when it differs.
fn by_extension(script: &str, host: &Host<'_>) -> Option<(&'static str, Option<&'static str>)> {
    let file = script.rsplit('/').next().unwrap_or(script);
    let ext = file.rsplit_once('.').map(|(_, ext)| ext)?;
    Some(match ext {
        "js" | "cjs" | "mjs" => ("node", None),
        "ts" | "tsx" if (host.on_path)("bun") => ("bun", None),
        "ts" | "tsx" => (
            "node",
            Some(
                "PM2 runs TypeScript with bun; bun is not in PATH here, so node (it strips types from 22.18 on; older ones need --experimental-strip-types in node_args)",
            ),
        ),
        "py" if (host.on_path)("python") => ("python", None),
        "py" => ("python3", None),
        "sh" => ("bash", None),
        "rb" => ("ruby", None),
        "php" => ("php", None),
        "pl" => ("perl", None),
        "coffee" => ("coffee", Some("PM2 bundles coffee; cluster runs the one in PATH")),
        "ls" => ("lsc", Some("PM2 bundles lsc; cluster runs the one in PATH")),
        _ => return None,
    })
}

/// A string option, if given (`None` when absent); another type is what PM2 rejects.
pub(crate) fn string<'a>(o: &'a Options, name: &str) -> Result<Option<&'a str>, MapError> {
    match o.fields.get(name) {
        None => Ok(None),
        Some(f) => match &f.value {
            Value::String(s) => Ok(Some(s.as_str())),
            other => Err(MapError::invalid(&f.written, format!("{}, not a string", kind(other)))),
        },
    }
}

/// An argument list option (`args`, `node_args`); empty when absent.
fn args_of(o: &Options, name: &str) -> Result<Vec<String>, MapError> {
    match o.fields.get(name) {
        None => Ok(Vec::new()),
        Some(f) => arg_list(&f.value).map_err(|reason| MapError::invalid(&f.written, reason)),
    }
}

/// The command of the app whose keys are `o` (`script` as given, after the `cmd`/`command`
/// aliases are resolved by the caller), in `cwd`.
pub(crate) fn command(
    o: &Options,
    script: &str,
    cwd: Option<&str>,
    host: &Host<'_>,
    report: &mut Report,
) -> Result<Command, MapError> {
    let interpreter = string(o, "exec_interpreter")?;
    let node_args = args_of(o, "node_args")?;
    let args = args_of(o, "args")?;
    let written = |name: &str| o.fields.get(name).map(|f| f.written.clone());

    // PM2 runs a script with a space through bash, whatever else is set (`verifyConfs`).
    if script.contains(' ') {
        let cmd = Command {
            program: "bash".into(),
            args: vec!["-c".into(), script.into()],
            python: false,
        };
        report.mapped("script", format!("a command line, run as PM2 does: {}", show(&cmd)));
        for name in ["args", "exec_interpreter", "node_args"] {
            if let Some(key) = written(name) {
                report.dropped(key, "ignored by PM2 for a script with spaces (it runs `bash -c <script>`); put it in the script");
            }
        }
        return Ok(cmd);
    }

    let file = (host.script)(script, cwd);
    let (program, run_directly, note) = match interpreter {
        Some("none") => (script.to_owned(), true, None),
        Some(i) if i.starts_with("node@") => (
            "node".to_owned(),
            false,
            Some(format!(
                "{i}: PM2 picks that version with nvm; cluster runs `node` from PATH (set `command` to that node's path to pin it)"
            )),
        ),
        Some(i) => (i.to_owned(), false, None),
        None => match by_extension(script, host) {
            Some((i, note)) => (i.to_owned(), false, note.map(str::to_owned)),
            // No known extension: a binary runs directly, anything else with node.
            None if matches!(file, ScriptFile::Binary | ScriptFile::OnPath) => {
                (script.to_owned(), true, None)
            }
            None => ("node".to_owned(), false, None),
        },
    };
    if file == ScriptFile::Missing {
        return Err(MapError::ScriptMissing {
            script: script.to_owned(),
            cwd: cwd.map(str::to_owned),
        });
    }
    let python = program.contains("python");
    let cmd = if run_directly {
        if let Some(key) = written("node_args").filter(|_| !node_args.is_empty()) {
            report.dropped(
                key,
                "the script runs directly (no interpreter), as in PM2, which ignores them too",
            );
        }
        // A bare name in the app's directory is run from there, not looked up in PATH.
        let program = match file {
            ScriptFile::Binary | ScriptFile::Text if !program.contains('/') => {
                format!("./{program}")
            }
            _ => program,
        };
        Command { program, args, python }
    } else {
        let mut all = node_args;
        all.push(script.to_owned());
        all.extend(args);
        Command { program, args: all, python }
    };
    match (note, file) {
        (Some(note), _) => report.approximated("script", format!("{}; {note}", show(&cmd))),
        (None, ScriptFile::OnPath) => report.approximated(
            "script",
            format!("{}; found in PATH, run directly (PM2 runs a non-binary one found in PATH with node)", show(&cmd)),
        ),
        (None, _) => report.mapped("script", show(&cmd)),
    }
    if python {
        report.mapped("exec_interpreter", "python: PYTHONUNBUFFERED=1 in env, as PM2 sets it");
    }
    Ok(cmd)
}

/// `command: "node", args: ["server.js"]`.
fn show(cmd: &Command) -> String {
    format!("command: {:?}, args: {:?}", cmd.program, cmd.args)
}
