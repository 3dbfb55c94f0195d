//! [`serve`]: the small worker server the embedding examples run in worker role.

use std::convert::Infallible;
use std::time::Duration;

use cluster_core::worker;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use hyper_util::server::graceful::GracefulShutdown;

/// The error type of the examples.
pub type Error = Box<dyn std::error::Error + Send + Sync>;

/// Serves `worker <slot> pid <pid>\n` on every path, with the [`cluster_core::worker`]
/// helpers: the socket the cluster gave, `READY=1` and heartbeats, and a graceful drain on
/// SIGTERM (`STOPPING=1`, in-flight requests finish, then it returns).
///
/// # Errors
///
/// When the environment gives no socket to serve on, or the signal handlers cannot be
/// installed.
///
/// # Examples
///
/// ```no_run
/// # async fn run() -> Result<(), examples::Error> {
/// if cluster_core::is_worker() {
///     return examples::worker::serve().await;
/// }
/// # Ok(())
/// # }
/// ```
pub async fn serve() -> Result<(), Error> {
    let listener = worker::listener()?.into_tokio()?;
    let mut stop = worker::stopping()?;
    worker::ready()?;
    worker::heartbeats()?;
    let slot = worker::id().map_or_else(|| "-".to_owned(), |id| id.to_string());
    let greeting = format!("worker {slot} pid {}\n", std::process::id());
    let graceful = GracefulShutdown::new();
    loop {
        let connection = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(connection) => connection,
                Err(e) => {
                    // Out of descriptors: wait for some to close instead of spinning.
                    eprintln!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut stop => break,
        };
        let greeting = greeting.clone();
        let service = service_fn(move |_: Request<Incoming>| {
            let body = greeting.clone();
            async move { Ok::<_, Infallible>(Response::new(body)) }
        });
        let conn = http1::Builder::new().serve_connection(TokioIo::new(connection), service);
        tokio::spawn(graceful.watch(conn));
    }
    graceful.shutdown().await;
    Ok(())
}
