//! The Dockerfiles: what their stages build, copy and run exists in this workspace and in the
//! `cluster` CLI. (Docker is not run here; hadolint lints them in `.ci/run`.)

use std::process::Command;

use serde_json::Value;

use crate::files::{self, Instruction, Stage};

/// `cargo metadata` of the workspace (no dependencies: offline, quick).
fn metadata() -> Value {
    let out = Command::new(env!("CARGO"))
        .args(["metadata", "--no-deps", "--format-version", "1", "--offline"])
        .current_dir(files::repo())
        .output()
        .expect("run cargo metadata");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("cargo metadata's JSON")
}

/// `cluster ARGS... --help`: the subcommand exists (exit 0); its help text.
fn cli_help(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_cluster"))
        .args(args)
        .arg("--help")
        .output()
        .expect("run cluster --help");
    assert!(
        out.status.success(),
        "cluster {args:?} --help: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Checks that `words` (what follows `cluster`) name a real subcommand and flags it accepts.
fn assert_cli_accepts(words: &[String], context: &str) {
    let (sub, rest) = words.split_first().unwrap_or_else(|| panic!("{context}: no subcommand"));
    let help = cli_help(&[sub]);
    for flag in rest.iter().take_while(|w| *w != "--").filter(|w| w.starts_with('-')) {
        let flag = flag.split('=').next().unwrap();
        assert!(help.contains(flag), "{context}: `cluster {sub}` has no flag {flag}:\n{help}");
    }
}

/// What the final stage runs: ENTRYPOINT then CMD, with `tini --` in front of `cluster`.
fn command_line(stage: &Stage) -> Vec<String> {
    let mut words = stage.last("ENTRYPOINT").map(Instruction::words).unwrap_or_default();
    words.extend(stage.last("CMD").map(Instruction::words).unwrap_or_default());
    words
}

fn assert_runs_cluster_under_tini(relative: &str) {
    let stages = files::dockerfile(relative);
    let last = stages.last().unwrap();
    let words = command_line(last);
    assert_eq!(&words[..3], ["tini", "--", "cluster"], "{relative}: tini as PID 1, then cluster");
    assert_cli_accepts(&words[3..], relative);
    let health = last.last("HEALTHCHECK").unwrap_or_else(|| panic!("{relative}: no HEALTHCHECK"));
    let test = health.health_command();
    assert_eq!(test[0], "cluster", "{relative}: the healthcheck uses the binary itself");
    assert_cli_accepts(&test[1..], relative);
    assert_eq!(&test[1..], ["health"], "{relative}: `cluster health`");
    let user = last.last("USER").unwrap_or_else(|| panic!("{relative}: no USER")).words();
    let uid = user[0].split(':').next().unwrap();
    assert!(
        uid.parse::<u32>().is_ok_and(|u| u != 0),
        "{relative}: USER {uid} must be a non-root uid"
    );
}

#[test]
fn the_build_stage_builds_a_binary_of_the_workspace() {
    let stages = files::dockerfile("Dockerfile");
    let build = &stages[0];
    let run = build
        .all("RUN")
        .into_iter()
        .find(|r| r.rest.contains("cargo build"))
        .expect("a RUN with cargo build");
    let words = run.words();
    let after = |flag: &str| {
        let at = words
            .iter()
            .position(|w| w == flag)
            .unwrap_or_else(|| panic!("no {flag} in {}", run.rest));
        words[at + 1].clone()
    };
    let (package, bin) = (after("-p"), after("--bin"));
    assert!(words.contains(&"--release".into()) && words.contains(&"--locked".into()));
    let meta = metadata();
    let pkg = meta["packages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == package.as_str())
        .unwrap_or_else(|| panic!("no package {package} in the workspace"));
    let bins: Vec<&str> = pkg["targets"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["kind"].as_array().unwrap().iter().any(|k| k == "bin"))
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert!(bins.contains(&bin.as_str()), "package {package} has no binary {bin}: {bins:?}");
    let built = format!("target/release/{bin}");
    let out = after(built.as_str());
    assert!(out.starts_with('/'), "the binary is copied out of the cache mount to {out}");
    // The runtime stage copies that very file.
    let copied = stages
        .last()
        .unwrap()
        .all("COPY")
        .into_iter()
        .find(|c| c.option("from") == Some(build.name.as_str()))
        .expect("COPY --from=<build stage>")
        .words();
    assert_eq!(copied[0], out);
    assert_eq!(copied[1], "/usr/local/bin/cluster");
}

#[test]
fn the_build_stage_copies_the_whole_workspace() {
    let stages = files::dockerfile("Dockerfile");
    let repo = files::repo();
    let mut copied = Vec::new();
    for copy in stages[0].all("COPY") {
        let words = copy.words();
        let sources = &words[..words.len() - 1];
        for source in sources {
            assert!(repo.join(source).exists(), "COPY {source}: not in the repository");
            copied.push(source.trim_end_matches('/').to_owned());
        }
    }
    let meta = metadata();
    let root = meta["workspace_root"].as_str().unwrap().to_owned();
    for manifest in ["Cargo.toml", "Cargo.lock"] {
        assert!(copied.contains(&manifest.into()), "{manifest} is not copied");
    }
    for pkg in meta["packages"].as_array().unwrap() {
        let manifest = pkg["manifest_path"].as_str().unwrap();
        let dir = std::path::Path::new(manifest).parent().unwrap();
        let member = dir.strip_prefix(&root).unwrap().to_string_lossy().into_owned();
        assert!(
            copied.contains(&member),
            "workspace member {member} is not copied: cargo needs it"
        );
    }
    // Cargo accepts exactly what was copied: the workspace and its lock file resolve.
    let context = tempfile::tempdir().expect("scratch dir");
    for source in &copied {
        copy_tree(&repo.join(source), &context.path().join(source));
    }
    let out = Command::new(env!("CARGO"))
        .args(["metadata", "--format-version", "1", "--locked", "--offline"])
        .current_dir(context.path())
        .output()
        .expect("run cargo metadata");
    assert!(out.status.success(), "the copied workspace: {}", String::from_utf8_lossy(&out.stderr));
    let ignore = files::read(".dockerignore");
    for dir in ["target/", "node_modules/"] {
        assert!(ignore.lines().any(|l| l.trim().ends_with(dir)), ".dockerignore leaves out {dir}");
    }
}

#[test]
fn the_image_runs_cluster_start_as_a_non_root_user() {
    assert_runs_cluster_under_tini("Dockerfile");
}

#[test]
fn the_sveltekit_image_runs_node_build_workers_with_the_cluster_binary() {
    let relative = "deploy/docker/sveltekit/Dockerfile";
    assert_runs_cluster_under_tini(relative);
    let stages = files::dockerfile(relative);
    let last = stages.last().unwrap();
    let words = command_line(last);
    let worker = words.iter().rposition(|w| w == "--").map(|at| &words[at + 1..]);
    assert_eq!(
        worker,
        Some(&["node".to_owned(), "build".to_owned()][..]),
        "workers run `node build`"
    );
    // What it takes from the cluster image is where that image puts it.
    let image = files::dockerfile("Dockerfile");
    let image = image.last().unwrap();
    let from_cluster: Vec<Vec<String>> = last
        .all("COPY")
        .into_iter()
        .filter(|c| c.option("from") == Some("cluster"))
        .map(Instruction::words)
        .collect();
    let binary = from_cluster.iter().find(|w| w[0].ends_with("/cluster")).expect("COPY the binary");
    assert!(image.all("COPY").iter().any(|c| c.words().last() == Some(&binary[0])));
    let tini = from_cluster.iter().find(|w| w[0].ends_with("/tini")).expect("COPY tini");
    assert_eq!(tini[0], "/usr/bin/tini", "Debian's tini package installs /usr/bin/tini");
    assert!(
        image.all("RUN").iter().any(|r| r.rest.contains("install -y --no-install-recommends tini"))
    );
    // The app's build output is what `node build` runs.
    let copies: Vec<Vec<String>> = last.all("COPY").into_iter().map(Instruction::words).collect();
    assert!(copies.iter().any(|w| w[0] == "/app/build" && w[1].trim_end_matches('/') == "build"));
}

/// Copies a file or a directory tree, leaving out what `.dockerignore` keeps out of the build
/// context (`target`, `node_modules`).
fn copy_tree(from: &std::path::Path, to: &std::path::Path) {
    if from.is_file() {
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(from, to).unwrap_or_else(|e| panic!("{}: {e}", from.display()));
        return;
    }
    for entry in std::fs::read_dir(from).unwrap().flatten() {
        let name = entry.file_name();
        if name == "target" || name == "node_modules" {
            continue;
        }
        copy_tree(&entry.path(), &to.join(name));
    }
}
