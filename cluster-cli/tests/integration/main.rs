//! Integration tests: the real `cluster` binary with real worker processes on 127.0.0.1.
#![allow(missing_docs, unreachable_pub)]

mod admin;
mod autoscale;
mod balancing;
mod browser;
mod cli;
mod compression;
mod config_errors;
mod dashboard;
mod dev;
mod embedded;
mod health;
mod heartbeat;
mod lifecycle;
mod operations;
mod recycle;
mod routing;
mod signals;
mod stops;
mod streams;
mod top;
mod util;
