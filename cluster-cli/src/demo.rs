//! The built-in demo worker: what `cluster start` runs when no command is given.
//!
//! A tiny HTTP server on `HOST`:`PORT` (or on the Unix socket `SOCKET_PATH`, with
//! `upstream: "unix"`, or in shared-socket mode on the socket inherited at fd 3) that says
//! which worker answered, so a fresh checkout shows a working cluster with nothing else
//! installed.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::process::ExitCode;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, UnixListener};
use tokio::signal::unix::{SignalKind, signal};

/// Runs the demo server until SIGTERM or SIGINT.
pub(crate) fn run() -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("demo worker: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(serve()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("demo worker: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn serve() -> std::io::Result<()> {
    // Shared-socket mode: accept on the socket the cluster passed (fd 3).
    if let Some(inherited) = cluster_core::inherited_listener() {
        inherited.set_nonblocking(true)?;
        let listener = &TcpListener::from_std(inherited)?;
        return serve_on(move || async move { listener.accept().await.map(|(s, _)| s) }).await;
    }
    if let Ok(path) = std::env::var("SOCKET_PATH") {
        let listener = UnixListener::bind(&path)?;
        let listener = &listener;
        let served = serve_on(move || async move { listener.accept().await.map(|(s, _)| s) }).await;
        let _ = std::fs::remove_file(&path);
        return served;
    }
    let host = std::env::var("HOST").unwrap_or_else(|_| "127.0.0.1".into());
    let port = std::env::var("PORT").unwrap_or_else(|_| "3000".into());
    let addr: SocketAddr = format!("{host}:{port}").parse().map_err(|e| {
        std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("{host}:{port}: {e}"))
    })?;
    let listener = &TcpListener::bind(addr).await?;
    serve_on(move || async move { listener.accept().await.map(|(s, _)| s) }).await
}

/// Serves the connections `accept` gives until SIGTERM or SIGINT.
async fn serve_on<S, F>(accept: impl Fn() -> F) -> std::io::Result<()>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    F: std::future::Future<Output = std::io::Result<S>>,
{
    let id = std::env::var("CLUSTER_WORKER_ID").unwrap_or_else(|_| "-".into());
    let greeting =
        Bytes::from(format!("hello from cluster demo worker {id} (pid {})\n", std::process::id()));
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    loop {
        let stream = tokio::select! {
            r = accept() => r?,
            _ = term.recv() => return Ok(()),
            _ = int.recv() => return Ok(()),
        };
        let greeting = greeting.clone();
        let service = service_fn(move |req: Request<Incoming>| {
            let greeting = greeting.clone();
            async move { Ok::<_, Infallible>(route(&req, greeting)) }
        });
        tokio::spawn(http1::Builder::new().serve_connection(TokioIo::new(stream), service));
    }
}

fn route(req: &Request<Incoming>, greeting: Bytes) -> Response<Full<Bytes>> {
    let (status, body) = match req.uri().path() {
        "/" => (StatusCode::OK, greeting),
        "/health" => (StatusCode::OK, Bytes::from_static(b"ok\n")),
        _ => (StatusCode::NOT_FOUND, Bytes::from_static(b"not found\n")),
    };
    let mut resp = Response::new(Full::new(body));
    *resp.status_mut() = status;
    resp
}
