//! Integration tests: the real `cluster` binary with real worker processes on 127.0.0.1.
#![allow(missing_docs, unreachable_pub)]

mod access_log;
mod admin;
mod autoscale;
mod balancing;
mod browser;
mod cli;
mod client_address;
mod config_errors;
mod dashboard;
mod dev;
mod embedded;
mod hardening;
mod health;
mod heartbeat;
mod lifecycle;
mod limits;
mod operations;
mod ratelimit;
mod recycle;
mod routing;
mod signals;
mod stops;
mod streams;
mod top;
mod util;
