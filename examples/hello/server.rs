//! The accept loop, per-connection tasks and graceful shutdown.
//!
//! Every connection and every WebSocket runs in a task of one [`TaskTracker`]; the shutdown
//! token tells connections to finish their in-flight request and close (hyper's
//! `graceful_shutdown`), and WebSockets to send a close frame. The process exits when the
//! tracker is empty. hyper-util's `GracefulShutdown` is not used because it does not accept an
//! HTTP/1 connection with upgrades enabled, which `/ws` needs.

use std::path::PathBuf;
use std::pin::pin;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, UnixListener};
use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::Config;

/// How long in-flight work may take after SIGTERM before the process exits anyway.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// How long, after SIGTERM, a connection that has not sent its first request is given to
/// send it.
const FIRST_REQUEST_GRACE: Duration = Duration::from_secs(1);

/// What every request handler can see.
#[derive(Debug)]
pub(crate) struct Shared {
    /// `CLUSTER_WORKER_ID`, if set.
    pub(crate) worker_id: Option<String>,
    /// Our pid.
    pub(crate) pid: u32,
    /// `HELLO_DELAY_MS`.
    pub(crate) response_delay: Duration,
    /// `HELLO_FAIL_FOR_MS`: whether to answer 500 now.
    pub(crate) failing: crate::faults::Failing,
    /// Held during the response delay when `HELLO_SLOW_SERIAL=1`: one delayed response at a
    /// time, in arrival order (tokio's mutex is fair).
    pub(crate) serial: Option<tokio::sync::Mutex<()>>,
    /// Requests to `/count` so far, read back at `/counted` (tests check that a request
    /// never reached the worker).
    pub(crate) counted: std::sync::atomic::AtomicU64,
    /// Cancelled when shutdown starts.
    pub(crate) stop: CancellationToken,
    /// Connections and WebSockets; shutdown waits for it to empty.
    pub(crate) tasks: TaskTracker,
}

/// Binds, serves until SIGTERM/SIGINT, drains, and returns the exit code.
pub(crate) async fn run(mut config: Config) -> ExitCode {
    let mut signals = match Signals::new() {
        Ok(signals) => signals,
        Err(e) => {
            eprintln!("hello: cannot install signal handlers: {e}");
            return ExitCode::FAILURE;
        }
    };
    tokio::select! {
        () = tokio::time::sleep(config.start_delay) => {}
        () = signals.recv() => return ExitCode::SUCCESS,
    }
    let wanted = Listener::wanted(&config);
    let listener = match Listener::bind(&mut config).await {
        Ok(listener) => listener,
        Err(e) => {
            eprintln!("hello: cannot listen on {wanted}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let pid = std::process::id();
    if config.banner {
        let addr = listener.local_addr();
        let id = config.worker_id.as_deref().unwrap_or("-");
        println!("hello worker {id} pid {pid} listening on {addr}");
    }
    if let Some(after) = config.exit_after {
        tokio::spawn(async move {
            tokio::time::sleep(after).await;
            eprintln!("hello: HELLO_EXIT_AFTER_MS elapsed, exiting with code 1");
            std::process::exit(1);
        });
    }
    if let Err(e) = crate::notify::start_from_env() {
        eprintln!("hello: {e}");
        return ExitCode::from(2);
    }
    let shared = Arc::new(Shared {
        worker_id: config.worker_id,
        pid,
        response_delay: config.response_delay,
        failing: config.faults.start(),
        serial: config.slow_serial.then(|| tokio::sync::Mutex::new(())),
        counted: std::sync::atomic::AtomicU64::new(0),
        stop: CancellationToken::new(),
        tasks: TaskTracker::new(),
    });

    loop {
        tokio::select! {
            accepted = listener.accept(&shared) => match accepted {
                Ok(()) => {}
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning.
                    eprintln!("hello: accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            () = signals.recv() => break,
        }
    }

    listener.close();
    shared.stop.cancel();
    shared.tasks.close();
    tokio::select! {
        () = shared.tasks.wait() => ExitCode::SUCCESS,
        () = tokio::time::sleep(DRAIN_TIMEOUT) => {
            eprintln!("hello: {} connections still open after {DRAIN_TIMEOUT:?}; exiting", shared.tasks.len());
            ExitCode::FAILURE
        }
        () = signals.recv() => {
            eprintln!("hello: second signal; exiting without waiting");
            ExitCode::FAILURE
        }
    }
}

/// Where the worker listens: the inherited socket at fd 3, `HOST:PORT`, or the Unix socket
/// `SOCKET_PATH`.
#[derive(Debug)]
enum Listener {
    Tcp(TcpListener),
    Unix(UnixListener, PathBuf),
}

impl Listener {
    /// What the configuration asks for, for messages.
    fn wanted(config: &Config) -> String {
        if config.inherited.is_some() {
            return "the inherited socket (fd 3)".to_owned();
        }
        match &config.socket_path {
            Some(path) => format!("unix:{path}"),
            None => format!("{}:{}", config.host, config.port),
        }
    }

    async fn bind(config: &mut Config) -> std::io::Result<Self> {
        // Socket activation (shared-socket mode): accept on the socket we were given (fd 3).
        if let Some(inherited) = config.inherited.take() {
            inherited.set_nonblocking(true)?;
            return Ok(Listener::Tcp(TcpListener::from_std(inherited)?));
        }
        match &config.socket_path {
            Some(path) => Ok(Listener::Unix(UnixListener::bind(path)?, PathBuf::from(path))),
            None => {
                Ok(Listener::Tcp(TcpListener::bind((config.host.as_str(), config.port)).await?))
            }
        }
    }

    fn local_addr(&self) -> String {
        match self {
            Listener::Tcp(l) => l.local_addr().map_or_else(|e| e.to_string(), |a| a.to_string()),
            Listener::Unix(_, path) => format!("unix:{}", path.display()),
        }
    }

    /// Accepts one connection and serves it in a tracked task.
    async fn accept(&self, shared: &Arc<Shared>) -> std::io::Result<()> {
        match self {
            Listener::Tcp(l) => {
                let (tcp, _peer) = l.accept().await?;
                let _ = tcp.set_nodelay(true);
                serve_connection(tcp, shared);
            }
            Listener::Unix(l, _) => serve_connection(l.accept().await?.0, shared),
        }
        Ok(())
    }

    /// Stops listening; a Unix socket's file is removed, as Node's `server.close()` does.
    fn close(self) {
        if let Listener::Unix(listener, path) = self {
            drop(listener);
            let _ = std::fs::remove_file(path);
        }
    }
}

/// Serves one HTTP/1.1 connection (upgrades allowed) in a tracked task.
fn serve_connection<I>(io: I, shared: &Arc<Shared>)
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let handler = Arc::clone(shared);
    let stop = shared.stop.clone();
    shared.tasks.spawn(async move {
        let first = Arc::new(tokio::sync::Notify::new());
        let seen = Arc::clone(&first);
        let service = service_fn(move |req| {
            seen.notify_one();
            crate::routes::handle(req, Arc::clone(&handler))
        });
        let conn = http1::Builder::new()
            .timer(TokioTimer::new())
            .serve_connection(TokioIo::new(io), service)
            .with_upgrades();
        let mut conn = pin!(conn);
        // Connection errors (a client going away mid-request) are the client's business.
        tokio::select! {
            _ = conn.as_mut() => {}
            () = stop.cancelled() => {
                // A connection accepted just before the stop may not have sent its first
                // request yet; closing it now would fail that request, which the client has
                // no reason to retry. Give it a moment to arrive (it is then answered with
                // `Connection: close`). An idle keep-alive connection closes at once.
                tokio::select! {
                    _ = conn.as_mut() => return,
                    () = first.notified() => {}
                    () = tokio::time::sleep(FIRST_REQUEST_GRACE) => {}
                }
                conn.as_mut().graceful_shutdown();
                let _ = conn.await;
            }
        }
    });
}

/// SIGTERM and SIGINT, merged.
#[derive(Debug)]
struct Signals {
    term: Signal,
    int: Signal,
}

impl Signals {
    fn new() -> std::io::Result<Self> {
        Ok(Signals {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
        })
    }

    /// Waits for the next SIGTERM or SIGINT.
    async fn recv(&mut self) {
        tokio::select! {
            _ = self.term.recv() => {}
            _ = self.int.recv() => {}
        }
    }
}
