//! The `cluster` command: runs N copies of an HTTP server behind one port.
//!
//! `cluster start [-- COMMAND...]` runs the primary in the foreground; `cluster config` prints
//! the effective configuration with the source of each value. Exit codes: 0 success,
//! 1 runtime failure, 2 usage or configuration error.
#![forbid(unsafe_code)]

mod args;
mod demo;
mod event_log;
mod notices;
mod start;

use std::process::ExitCode;

use clap::Parser;
use cluster_core::config::{self, Environment};

use crate::args::{Cli, Command};

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Start(args) => {
            match config::load(&args.config.overrides(), &Environment::capture()) {
                Ok(loaded) => start::run(loaded.spec),
                Err(e) => config_error(&e),
            }
        }
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

/// Prints a configuration error for people, one problem per line, and exits 2.
fn config_error(e: &config::ConfigError) -> ExitCode {
    for line in e.to_string().lines() {
        eprintln!("cluster: {line}");
    }
    ExitCode::from(2)
}
