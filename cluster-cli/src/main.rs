//! The `cluster` command: runs N copies of an HTTP server behind one port.
//!
//! `cluster start [-- COMMAND...]` runs the primary in the foreground; `cluster dev` does the
//! same with 2 workers and a rolling restart on every file change; `cluster config` prints
//! the effective configuration with the source of each value. Exit codes: 0 success,
//! 1 runtime failure, 2 usage or configuration error.
#![forbid(unsafe_code)]

mod args;
mod client;
mod ctl;
mod demo;
mod detach;
mod dev;
mod event_log;
mod import;
mod logfile;
mod logs;
mod notices;
mod runtime;
mod sd_notify;
mod start;
mod table;
mod target;
mod top;
mod upgrade;

use std::process::ExitCode;

use clap::Parser;
use cluster_core::config::{self, Environment, Source};

use crate::args::{Cli, Command, DevArgs, StartArgs};
use crate::target::Target;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Start(args) => start_cmd(args),
        Command::Status(args) => {
            let target = Target::of(&args.target);
            ctl::run(|| async move { ctl::status(&target, args.json).await })
        }
        Command::Health(args) => {
            let target = Target::of(&args);
            ctl::run(|| async move { ctl::health(&target).await })
        }
        Command::Scale(args) => {
            let target = Target::of(&args.target);
            ctl::run(|| async move { ctl::scale(&target, &args.to).await })
        }
        Command::Reload(args) => {
            let target = Target::of(&args);
            ctl::run(|| async move { ctl::replace(&target, "rolling").await })
        }
        Command::Restart(args) => {
            let target = Target::of(&args);
            ctl::run(|| async move { ctl::replace(&target, "all").await })
        }
        Command::Upgrade(args) => {
            let target = Target::of(&args.target);
            ctl::run(|| async move { upgrade::command(&target, args.binary, args.timeout).await })
        }
        Command::Stop(args) => {
            let target = Target::of(&args);
            ctl::run(|| async move { ctl::stop(&target, false).await })
        }
        Command::ForceStop(args) => {
            let target = Target::of(&args);
            ctl::run(|| async move { ctl::stop(&target, true).await })
        }
        Command::Clean(args) => {
            let target = Target::of(&args);
            ctl::run(|| async move { ctl::clean(&target).await })
        }
        Command::Logs(args) => {
            logs::run(&Target::of(&args.target).log_file, args.lines, args.follow)
        }
        Command::Top(args) => top::run(&Target::of(&args)),
        Command::Dev(args) => dev_mode(args),
        Command::Config(args) => {
            match config::load(&args.config.overrides(), &Environment::capture()) {
                Ok(loaded) if args.json => {
                    println!("{:#}", loaded.effective.to_json());
                    ExitCode::SUCCESS
                }
                Ok(loaded) => {
                    print!("{}", loaded.effective.render());
                    ExitCode::SUCCESS
                }
                Err(e) => config_error(&e),
            }
        }
        Command::Import(args) => match args.from {
            args::ImportFrom::Pm2(args) => import::run_pm2(args),
        },
        Command::DemoWorker => demo::run(),
        Command::Guardian => match cluster_core::run_guardian() {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("cluster guardian: {e}");
                ExitCode::FAILURE
            }
        },
    }
}

/// `cluster start [--detach]`.
fn start_cmd(args: StartArgs) -> ExitCode {
    if args.log_to.is_some() {
        detach::leave_session();
    }
    // Started by a hot upgrade: the old primary waits for our word.
    let successor = cluster_core::upgrade::Successor::from_env().map(std::sync::Arc::new);
    let source = start::Source { overrides: args.config.overrides(), env: Environment::capture() };
    let spec = match config::load(&source.overrides, &source.env) {
        Ok(loaded) => loaded.spec,
        Err(e) => {
            if let Some(successor) = &successor {
                let _ = successor.failed(&format!("invalid configuration: {e}"));
            }
            return config_error(&e);
        }
    };
    let target = Target::new(Some(&spec), args.config.runtime_dir(), args.config.socket());
    // The background primary is started with --log-to (and whatever else was given).
    if args.detach && args.log_to.is_none() {
        return detach::start(&spec, &target);
    }
    let options = start::Options { runtime: target.runtime, log_to: args.log_to, successor };
    start::run(spec, source, options, |_| {})
}

/// `cluster dev`: `cluster start` with 2 workers by default and a file watcher.
fn dev_mode(args: DevArgs) -> ExitCode {
    let mut source =
        start::Source { overrides: args.config.overrides(), env: Environment::capture() };
    let loaded = match config::load(&source.overrides, &source.env) {
        Ok(loaded) => loaded,
        Err(e) => return config_error(&e),
    };
    let spec = if loaded.effective.get("workers").is_some_and(|w| w.source == Source::Default) {
        // Nothing set the count: development wants two workers (enough to see a rolling
        // restart keep serving), not one per CPU.
        source.overrides.workers = Some("2".into());
        match config::load(&source.overrides, &source.env) {
            Ok(loaded) => loaded.spec,
            Err(e) => return config_error(&e),
        }
    } else {
        loaded.spec
    };
    let cwd = std::env::current_dir().unwrap_or_else(|_| ".".into());
    let roots = if args.watch.is_empty() { vec![cwd.clone()] } else { args.watch };
    let watch = dev::WatchSpec {
        roots: roots.into_iter().map(|r| if r.is_absolute() { r } else { cwd.join(r) }).collect(),
        ignore: args.ignore,
        debounce: std::time::Duration::from_millis(args.debounce),
    };
    if let Err(e) = dev::Ignore::new(&watch.roots, &watch.ignore) {
        eprintln!("cluster: {e}");
        return ExitCode::from(2);
    }
    let target = Target::new(Some(&spec), args.config.runtime_dir(), args.config.socket());
    let successor = cluster_core::upgrade::Successor::from_env().map(std::sync::Arc::new);
    let options = start::Options { runtime: target.runtime, log_to: None, successor };
    start::run(spec, source, options, move |handle| {
        if let Err(e) = dev::start(handle, watch) {
            tracing::error!("dev: {e}; running without the file watcher");
        }
    })
}

/// Prints a configuration error for people, one problem per line, and exits 2.
fn config_error(e: &config::ConfigError) -> ExitCode {
    for line in e.to_string().lines() {
        eprintln!("cluster: {line}");
    }
    ExitCode::from(2)
}
