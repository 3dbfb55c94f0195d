//! Evaluating an ecosystem file: JavaScript and JSON with the real `node` (running
//! `evaluate.js`, as PM2 loads them), YAML here.

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// The Node snippet run with `node -e` to evaluate an ecosystem file (see its header).
const EVALUATE_JS: &str = include_str!("evaluate.js");

/// How long the file may take to evaluate: a file that starts a server never ends.
const TIMEOUT: Duration = Duration::from_secs(30);

/// The evaluated file.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Evaluated {
    /// The exported configuration, JSON values only.
    pub(crate) value: Value,
    /// Values JSON cannot hold, left out of `value`: where they were and what they were.
    pub(crate) non_json: Vec<(Vec<Value>, String)>,
    /// Environment variables the file read while it was evaluated.
    pub(crate) env_read: Vec<String>,
}

/// Why a file could not be evaluated.
#[derive(Debug, thiserror::Error)]
pub(crate) enum EvaluateError {
    /// No such file.
    #[error("{}: no such file", .0.display())]
    Missing(PathBuf),
    /// `node` could not be started.
    #[error(
        "cannot run `{node}` to evaluate the file: {source} (install Node.js, or give its path with --node PATH)"
    )]
    NoNode {
        /// The node command.
        node: String,
        /// Why.
        source: std::io::Error,
    },
    /// The file threw, or has a syntax error.
    #[error("node could not evaluate {}:\n{message}", file.display())]
    Threw {
        /// The file.
        file: PathBuf,
        /// What node printed.
        message: String,
    },
    /// The file did not finish evaluating.
    #[error("evaluating {} did not finish within {} s (does it start something?)", file.display(), TIMEOUT.as_secs())]
    Timeout {
        /// The file.
        file: PathBuf,
    },
    /// A YAML file that does not parse.
    #[error("{}: not valid YAML: {message}", file.display())]
    Yaml {
        /// The file.
        file: PathBuf,
        /// The parser's message.
        message: String,
    },
    /// Reading or writing a file failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// Why it failed.
        source: std::io::Error,
    },
}

/// Evaluates the ecosystem file `file` as PM2 would, with `node` for everything but YAML.
pub(crate) fn evaluate(file: &Path, node: &str) -> Result<Evaluated, EvaluateError> {
    if !file.is_file() {
        return Err(EvaluateError::Missing(file.to_owned()));
    }
    let name = file.file_name().and_then(|n| n.to_str()).unwrap_or_default();
    if name.ends_with(".yml") || name.ends_with(".yaml") {
        return yaml(file);
    }
    let io = |what: &str| {
        let what = what.to_owned();
        move |source| EvaluateError::Io { what, source }
    };
    let out = tempfile::NamedTempFile::new().map_err(io("creating a temporary file"))?;
    let mut child = Command::new(node)
        .arg("-e")
        .arg(EVALUATE_JS)
        .arg("--")
        .arg(file)
        .arg(out.path())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|source| EvaluateError::NoNode { node: node.to_owned(), source })?;
    let mut stderr = child.stderr.take().expect("piped stderr");
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });
    let deadline = Instant::now() + TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().map_err(io("waiting for node"))? {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(EvaluateError::Timeout { file: file.to_owned() });
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let message = reader.join().unwrap_or_default();
    if !status.success() {
        return Err(EvaluateError::Threw {
            file: file.to_owned(),
            message: node_message(&message),
        });
    }
    let text = std::fs::read_to_string(out.path()).map_err(io("reading node's result"))?;
    let result: Value = serde_json::from_str(&text).map_err(|e| EvaluateError::Io {
        what: "reading node's result".into(),
        source: std::io::Error::other(e),
    })?;
    let non_json = result["nonJson"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|item| {
            let path = item["path"].as_array().cloned().unwrap_or_default();
            (path, item["kind"].as_str().unwrap_or("a value").to_owned())
        })
        .collect();
    let env_read = result["envRead"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str().map(str::to_owned))
        .collect();
    Ok(Evaluated { value: result["value"].clone(), non_json, env_read })
}

/// Node's error output without the stack frames of Node itself and of `evaluate.js` (which
/// runs as `[eval]`), and without runs of blank lines: the file's own place and message stay.
fn node_message(stderr: &str) -> String {
    let mut lines: Vec<&str> = Vec::new();
    for line in stderr.lines() {
        let frame = line.trim_start().starts_with("at ");
        if frame && (line.contains("node:") || line.contains("[eval]")) {
            continue;
        }
        if line.trim().is_empty() && lines.last().is_none_or(|l| l.trim().is_empty()) {
            continue;
        }
        lines.push(line);
    }
    lines.join("\n").trim_end().to_owned()
}

/// A YAML ecosystem file (PM2 reads them with js-yaml).
fn yaml(file: &Path) -> Result<Evaluated, EvaluateError> {
    let text = std::fs::read_to_string(file).map_err(|source| EvaluateError::Io {
        what: format!("reading {}", file.display()),
        source,
    })?;
    let value: Value = serde_norway::from_str(&text)
        .map_err(|e| EvaluateError::Yaml { file: file.to_owned(), message: e.to_string() })?;
    Ok(Evaluated { value, non_json: Vec::new(), env_read: Vec::new() })
}
