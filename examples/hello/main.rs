//! `hello`: the example worker that `cluster` tests and benchmarks run.
//!
//! A small hyper 1.x HTTP/1.1 server. It binds `HOST:PORT`, prints one line
//! `hello worker <CLUSTER_WORKER_ID or -> pid <pid> listening on <addr>` to stdout, and serves:
//!
//! | route | answer |
//! |---|---|
//! | `GET /` | 200 `text/plain`: `hello from worker <CLUSTER_WORKER_ID> pid <pid>\n` |
//! | `GET /pid` | 200, the pid as decimal text, no newline |
//! | `GET /health` | 200 `ok\n` |
//! | `GET /slow?ms=N` | waits N ms (at most 60000), then 200 `slept N ms\n` |
//! | `GET /burn?ms=N` | keeps its thread busy for N ms of CPU (at most 1000), then 200 `burned N ms\n`: load that costs CPU, for autoscaling |
//! | `GET /stream?n=N&interval=MS` | 200 `text/event-stream`: N events (default 5, at most 1000) `id: i\ndata: event i\n\n` with i = 1..=N, one frame each, MS ms apart (default 200, at most 60000) |
//! | `GET /ws` | WebSocket echo (RFC 6455); 400 without `Upgrade: websocket` and a key |
//! | `POST`/`PUT /echo` | 200, the request body streamed back as it arrives, same content type |
//! | `GET /headers` | 200 JSON object: lower-case header name → value (repeats joined with `, `) |
//! | any method `/count` | 200, how many `/count` requests this worker has seen, this one included |
//! | `GET /counted` | 200, the same count, without adding to it |
//! | `POST`/`PUT /consume` | reads the whole body, then 200 with its length in bytes (400 if the body fails) |
//! | `GET /env` | 200 JSON: `PORT`, `HOST`, `SOCKET_PATH`, `CLUSTER_WORKER_ID`, `NODE_APP_INSTANCE`, `LISTEN_PID`, `LISTEN_FDS`, `LISTEN_FDNAMES` (null when unset) |
//! | `GET /crash` | exits at once with code 70, without answering |
//! | anything else | 404 |
//!
//! `HEAD` is accepted wherever `GET` is, except `/ws` and `/crash`.
//!
//! # Environment
//!
//! - `PORT` (default 3000; 0 picks a free port, printed in the banner), `HOST` (default 127.0.0.1).
//! - `SOCKET_PATH`: listen on this Unix socket instead of `HOST:PORT` (as adapter-node does; the
//!   cluster sets it with `upstream: "unix"`); the file is removed at exit.
//! - `LISTEN_FDS` and `LISTEN_PID` (socket activation, `cluster`'s shared-socket mode): when
//!   `LISTEN_FDS` is at least 1 and `LISTEN_PID` is this process's pid, accept on the socket
//!   inherited at fd 3 instead of binding `HOST:PORT`.
//! - `THREADS`: unset or 1 runs a one-thread (`current_thread`) tokio runtime, so one worker process
//!   is one core's worth of work, like a Node worker; `THREADS=n` (n > 1) runs a multi-thread
//!   runtime with n threads.
//! - `WORKER_QUIET=1`: no banner line.
//! - `CLUSTER_WORKER_ID`: shown in the banner and in `GET /`.
//! - `HELLO_START_DELAY_MS`: sleep this long before binding (a slow-starting worker).
//! - `HELLO_DELAY_MS`: add this delay to every response (a slow worker).
//! - `HELLO_SLOW_SLOT`: apply `HELLO_DELAY_MS` only in the worker whose `CLUSTER_WORKER_ID` is
//!   this value, so one worker of a cluster is slow and the others are not.
//! - `HELLO_EXIT_AFTER_MS`: exit with code 1 this long after binding (a crashing worker).
//! - `HELLO_LEAK_MB_PER_SEC`: resident memory grows by this many MiB a second, up to 2 GiB
//!   (a leaking worker).
//! - `HELLO_FAIL_FOR_MS`: answer every request with 500 for this long after binding, then
//!   recover (a worker with a transient fault).
//! - `HELLO_BURN_PERCENT`: a thread keeps this percentage of one core busy (a busy worker).
//! - `HELLO_FAULT_SLOT`: apply the three above only in the worker whose `CLUSTER_WORKER_ID` is
//!   this value.
//! - `HELLO_NOTIFY=1`: speak the systemd notify protocol on `NOTIFY_SOCKET` (`@name` for the
//!   abstract namespace): `READY=1` and `STATUS=serving` once bound, then `WATCHDOG=1` every
//!   `WATCHDOG_USEC`/2 (none without `WATCHDOG_USEC`).
//! - `HELLO_NOTIFY_HANG_AFTER_MS`: with `HELLO_NOTIFY=1`, stop sending `WATCHDOG=1` this long
//!   after binding (with a last `STATUS=hanging ...`) while still serving HTTP: a worker whose
//!   heartbeats stop, for the cluster's watchdog.
//! - `HELLO_SLOW_SERIAL=1`: the delayed responses are served one at a time, in arrival order,
//!   like a CPU-bound single-threaded worker (a Node worker): under load its queue grows and
//!   each response waits for the ones before it. Without it the delays run concurrently.
//!
//! # Signals
//!
//! SIGTERM or SIGINT starts a graceful shutdown: the listener closes, idle keep-alive connections
//! close, in-flight requests (streams included) finish, open WebSockets get a close frame
//! (1001 going away), and the process exits 0. If that takes more than 10 s, or a second signal
//! arrives, it exits 1 at once.
//!
//! # Examples
//!
//! ```text
//! PORT=3001 CLUSTER_WORKER_ID=1 cargo run -p examples --example hello
//! cluster start --workers 2 -- target/release/examples/hello
//! ```
// Only `listen_fds` takes over an inherited descriptor, which needs `unsafe`.
#![deny(unsafe_code)]

mod faults;
mod listen_fds;
mod notify;
mod routes;
mod server;
mod stream;
mod ws;

use std::process::ExitCode;
use std::time::Duration;

/// Settings read once from the environment at start.
#[derive(Debug)]
pub(crate) struct Config {
    /// Interface to bind.
    pub(crate) host: String,
    /// Port to bind (0: the kernel picks one).
    pub(crate) port: u16,
    /// Unix socket to listen on instead of `host:port` (`SOCKET_PATH`, adapter-node's name).
    pub(crate) socket_path: Option<String>,
    /// `CLUSTER_WORKER_ID`, if set.
    pub(crate) worker_id: Option<String>,
    /// Runtime threads; 1 means `current_thread`.
    pub(crate) threads: usize,
    /// Print the banner line.
    pub(crate) banner: bool,
    /// Sleep before binding.
    pub(crate) start_delay: Duration,
    /// Delay added to every response.
    pub(crate) response_delay: Duration,
    /// Exit with code 1 this long after binding.
    pub(crate) exit_after: Option<Duration>,
    /// Injected faults.
    pub(crate) faults: faults::Faults,
    /// Serve delayed responses one at a time (`HELLO_SLOW_SERIAL=1`).
    pub(crate) slow_serial: bool,
    /// The listening socket inherited at fd 3 (`LISTEN_FDS`, `LISTEN_PID`), accepted on
    /// instead of binding `HOST:PORT`.
    pub(crate) inherited: Option<std::net::TcpListener>,
}

impl Config {
    /// Reads the settings from the environment.
    ///
    /// # Errors
    ///
    /// A message naming the variable when a number does not parse.
    fn from_env() -> Result<Self, String> {
        let ms = |key: &str| -> Result<Option<Duration>, String> {
            Ok(number::<u64>(key)?.map(Duration::from_millis))
        };
        Ok(Config {
            host: var("HOST").unwrap_or_else(|| "127.0.0.1".to_owned()),
            port: number("PORT")?.unwrap_or(3000),
            socket_path: var("SOCKET_PATH"),
            worker_id: var("CLUSTER_WORKER_ID"),
            threads: number("THREADS")?.unwrap_or(1).max(1),
            banner: var("WORKER_QUIET").as_deref() != Some("1"),
            start_delay: ms("HELLO_START_DELAY_MS")?.unwrap_or_default(),
            response_delay: match var("HELLO_SLOW_SLOT") {
                Some(slot) if var("CLUSTER_WORKER_ID").as_deref() != Some(slot.as_str()) => {
                    Duration::ZERO
                }
                _ => ms("HELLO_DELAY_MS")?.unwrap_or_default(),
            },
            exit_after: ms("HELLO_EXIT_AFTER_MS")?,
            faults: faults::Faults::from_env()?,
            slow_serial: slow_serial(),
            inherited: listen_fds::inherited_listener(),
        })
    }
}

/// `HELLO_SLOW_SERIAL`: `1` serves delayed responses one at a time.
fn slow_serial() -> bool {
    var("HELLO_SLOW_SERIAL").as_deref() == Some("1")
}

/// The variable's value, or `None` when it is unset, empty or not UTF-8.
pub(crate) fn var(key: &str) -> Option<String> {
    std::env::var(key).ok().filter(|v| !v.is_empty())
}

/// The variable parsed as a number, `None` when unset.
pub(crate) fn number<T: std::str::FromStr>(key: &str) -> Result<Option<T>, String> {
    match var(key) {
        None => Ok(None),
        Some(v) => {
            v.trim().parse().map(Some).map_err(|_| format!("{key}={v:?} is not a valid number"))
        }
    }
}

fn main() -> ExitCode {
    let config = match Config::from_env() {
        Ok(config) => config,
        Err(e) => {
            eprintln!("hello: {e}");
            return ExitCode::from(2);
        }
    };
    let runtime = if config.threads == 1 {
        tokio::runtime::Builder::new_current_thread().enable_all().build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(config.threads)
            .enable_all()
            .build()
    };
    match runtime {
        Ok(runtime) => runtime.block_on(server::run(config)),
        Err(e) => {
            eprintln!("hello: cannot start the tokio runtime: {e}");
            ExitCode::FAILURE
        }
    }
}
