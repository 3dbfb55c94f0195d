//! A server that is its own cluster: the `cluster.isPrimary` pattern of Node, in Rust.
//!
//! One binary, two roles. Started by hand it is the primary: it loads the configuration
//! (`cluster.config.json` if there is one, then `PORT`, `CLUSTER_WORKERS`, ... from the
//! environment), binds the front port and starts its workers by running itself again with the
//! [`SelfExecSpawner`]. In those copies [`cluster_core::is_worker`] is true, and they serve
//! with hyper on the socket [`worker::listener`] finds, say `READY=1` and send heartbeats,
//! and drain on SIGTERM ([`worker::stopping`]): every request answers
//! `hello from worker <slot> pid <pid>`.
//!
//! ```text
//! PORT=3000 CLUSTER_WORKERS=4 cargo run -p examples --example embedded
//! curl localhost:3000    # hello from worker 2 pid 81234
//! ```
//!
//! Ctrl-C (or SIGTERM) stops the cluster gracefully: the workers finish their requests first.

use std::convert::Infallible;

use cluster_core::config::{self, Environment, Overrides};
use cluster_core::{Cluster, SelfExecSpawner, forward_signals, worker};
use hyper::{Request, Response, body::Incoming, server::conn::http1, service::service_fn};
use hyper_util::{rt::TokioIo, server::graceful::GracefulShutdown};

type Error = Box<dyn std::error::Error + Send + Sync>;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    if cluster_core::is_worker() {
        return serve().await;
    }
    let loaded = config::load(&Overrides::default(), &Environment::capture())?;
    let spawner = SelfExecSpawner::new(Vec::<String>::new())?;
    let cluster = Cluster::builder(loaded.spec).spawner(spawner).build().await?;
    println!("listening on {}", cluster.local_addr());
    tokio::spawn(forward_signals(cluster.handle()));
    Ok(cluster.run().await?)
}

/// The worker: a hyper server on the socket the cluster gave it.
async fn serve() -> Result<(), Error> {
    let listener = worker::listener()?.into_tokio()?;
    let mut stop = worker::stopping()?;
    worker::ready()?;
    worker::heartbeats()?;
    let (slot, pid) = (worker::id().unwrap_or_default(), std::process::id());
    let graceful = GracefulShutdown::new();
    loop {
        // An accept error (out of descriptors) ends this worker; the cluster starts another.
        let connection = tokio::select! {
            accepted = listener.accept() => accepted?,
            _ = &mut stop => break,
        };
        let service = service_fn(move |_: Request<Incoming>| async move {
            Ok::<_, Infallible>(Response::new(format!("hello from worker {slot} pid {pid}\n")))
        });
        let conn = http1::Builder::new().serve_connection(TokioIo::new(connection), service);
        tokio::spawn(graceful.watch(conn));
    }
    graceful.shutdown().await;
    Ok(())
}
