//! Reading the deployment files: YAML documents, Dockerfile instructions, Kubernetes
//! quantities, and the configuration loaded as the container would load it.

use std::path::{Path, PathBuf};

use cluster_core::config::{self, ClusterSpec, Environment, Overrides};
use serde_json::Value;

/// The workspace's root directory.
pub(crate) fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("cluster-cli is in the workspace").into()
}

/// A file of the repository, as text.
pub(crate) fn read(relative: &str) -> String {
    let path = repo().join(relative);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A YAML file of the repository (one document), as JSON values.
pub(crate) fn yaml(relative: &str) -> Value {
    serde_norway::from_str(&read(relative)).unwrap_or_else(|e| panic!("{relative}: {e}"))
}

/// One instruction of a Dockerfile: its keyword (upper case) and the rest of the line, with
/// continuation lines joined.
#[derive(Debug, Clone)]
pub(crate) struct Instruction {
    pub(crate) keyword: String,
    pub(crate) rest: String,
}

impl Instruction {
    /// The words of an exec-form (`["a", "b"]`) argument list, or of a shell-form one split
    /// on whitespace; leading `--flag=value` options (`--from=build`, `--interval=10s`) are
    /// left out.
    pub(crate) fn words(&self) -> Vec<String> {
        let rest = self.without_options();
        if rest.starts_with('[') {
            serde_json::from_str(rest).unwrap_or_else(|e| panic!("{} {rest}: {e}", self.keyword))
        } else {
            rest.split_whitespace().map(str::to_owned).collect()
        }
    }

    /// A `HEALTHCHECK`'s command: the words after `CMD`.
    pub(crate) fn health_command(&self) -> Vec<String> {
        let rest = self.without_options();
        let command = rest.strip_prefix("CMD").unwrap_or_else(|| panic!("HEALTHCHECK {rest}"));
        Instruction { keyword: "CMD".into(), rest: command.trim().to_owned() }.words()
    }

    /// The value of a leading `--name=value` option.
    pub(crate) fn option(&self, name: &str) -> Option<&str> {
        let prefix = format!("--{name}=");
        self.rest
            .split_whitespace()
            .take_while(|w| w.starts_with("--"))
            .find_map(|w| w.strip_prefix(prefix.as_str()))
    }

    fn without_options(&self) -> &str {
        let mut rest = self.rest.trim_start();
        while rest.starts_with("--") {
            rest = rest.split_once(char::is_whitespace).map_or("", |(_, r)| r).trim_start();
        }
        rest
    }
}

/// One stage of a Dockerfile: `FROM image AS name` and its instructions.
#[derive(Debug, Clone)]
pub(crate) struct Stage {
    pub(crate) name: String,
    pub(crate) instructions: Vec<Instruction>,
}

impl Stage {
    /// The stage's instructions with this keyword.
    pub(crate) fn all(&self, keyword: &str) -> Vec<&Instruction> {
        self.instructions.iter().filter(|i| i.keyword == keyword).collect()
    }

    /// The stage's last instruction with this keyword (the one in force).
    pub(crate) fn last(&self, keyword: &str) -> Option<&Instruction> {
        self.all(keyword).into_iter().last()
    }

    /// The variables its `ENV` instructions set (`KEY=value` pairs).
    pub(crate) fn env(&self) -> Vec<(String, String)> {
        self.all("ENV")
            .iter()
            .flat_map(|i| i.words())
            .map(|w| {
                let (k, v) = w.split_once('=').unwrap_or_else(|| panic!("ENV {w}: not KEY=value"));
                (k.to_owned(), v.trim_matches('"').to_owned())
            })
            .collect()
    }
}

/// The stages of a Dockerfile of the repository.
pub(crate) fn dockerfile(relative: &str) -> Vec<Stage> {
    let mut logical = Vec::new();
    let mut current = String::new();
    for line in read(relative).lines() {
        let trimmed = line.trim();
        if current.is_empty() && (trimmed.is_empty() || trimmed.starts_with('#')) {
            continue;
        }
        match trimmed.strip_suffix('\\') {
            Some(part) => {
                current.push_str(part);
                current.push(' ');
            }
            None => {
                current.push_str(trimmed);
                logical.push(std::mem::take(&mut current));
            }
        }
    }
    let mut stages: Vec<Stage> = Vec::new();
    for line in logical {
        let (keyword, rest) = line.split_once(char::is_whitespace).unwrap_or((&line, ""));
        let instruction =
            Instruction { keyword: keyword.to_ascii_uppercase(), rest: rest.trim().to_owned() };
        if instruction.keyword == "FROM" {
            let words = instruction.words();
            let name = match words.as_slice() {
                [_, as_, name] if as_.eq_ignore_ascii_case("as") => name.clone(),
                _ => format!("#{}", stages.len()),
            };
            stages.push(Stage { name, instructions: vec![instruction] });
        } else if let Some(stage) = stages.last_mut() {
            stage.instructions.push(instruction);
        }
        // ARGs before the first FROM only parameterize the FROM lines.
    }
    assert!(!stages.is_empty(), "{relative}: no FROM");
    stages
}

/// A Kubernetes quantity (`576Mi`, `1G`, `512000`) in bytes.
pub(crate) fn bytes(quantity: &Value) -> u64 {
    let text = match quantity {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let units: [(&str, u64); 8] = [
        ("Ki", 1 << 10),
        ("Mi", 1 << 20),
        ("Gi", 1 << 30),
        ("Ti", 1 << 40),
        ("k", 1_000),
        ("M", 1_000_000),
        ("G", 1_000_000_000),
        ("T", 1_000_000_000_000),
    ];
    let (number, factor) = units
        .iter()
        .find_map(|(suffix, f)| text.strip_suffix(suffix).map(|n| (n, *f)))
        .unwrap_or((text.as_str(), 1));
    let number: u64 = number.parse().unwrap_or_else(|e| panic!("quantity {text}: {e}"));
    number * factor
}

/// The configuration in `json`, loaded by cluster-core's loader as the container loads it:
/// from a file, with the container's environment `env` (the image's `ENV` and the
/// orchestrator's variables; `PATH` is this process's, to find the worker command).
pub(crate) fn load_config(json: &str, env: &[(String, String)]) -> ClusterSpec {
    let dir = tempfile::tempdir().expect("temporary directory");
    let file = dir.path().join("cluster.config.json");
    std::fs::write(&file, json).expect("write the configuration");
    let mut overrides = Overrides::default();
    overrides.config_path = Some(file);
    let mut vars: Vec<(String, String)> =
        env.iter().filter(|(k, _)| k != "CLUSTER_CONFIG_PATH").cloned().collect();
    vars.push(("PATH".into(), std::env::var("PATH").unwrap_or_default()));
    match config::load(&overrides, &Environment::from_vars(vars)) {
        Ok(loaded) => loaded.spec,
        Err(e) => panic!("the configuration does not load:\n{e}\n{json}"),
    }
}

/// Least time a worker gets between SIGTERM and SIGKILL at shutdown, even when the drain used
/// the whole `gracefulShutdownTimeout` (cluster-core's `MIN_STOP_GRACE`): the longest graceful
/// stop is `gracefulShutdownTimeout` plus this.
pub(crate) const LAST_STOP_GRACE_SECS: u64 = 1;
