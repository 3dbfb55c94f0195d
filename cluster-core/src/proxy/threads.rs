//! Serving one listening socket from several single-threaded runtimes.
//!
//! On a small machine one runtime thread is the fastest proxy; once that thread is saturated,
//! a second one helps only if it does not pay for cross-thread wake-ups. So each proxy thread
//! runs its own current-thread runtime, accepts from its own duplicate of the listening
//! socket (the kernel hands each new connection to whichever thread is waiting), serves its
//! connections to the end, and keeps its own shard of every upstream pool.

use std::os::fd::AsFd;

use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;

use super::Proxy;
use super::pool::set_thread_shard;

/// Serves `listener` on the calling task and on `threads - 1` extra OS threads; see
/// [`Proxy::serve_threads`].
pub(crate) async fn serve_threads(
    proxy: &Proxy,
    listener: TcpListener,
    threads: usize,
    stop: CancellationToken,
) {
    let kill = CancelOnDrop(CancellationToken::new());
    let mut done = Vec::new();
    for index in 1..threads {
        match start_thread(proxy, &listener, index, stop.clone(), kill.0.clone()) {
            Ok(rx) => done.push(rx),
            Err(error) => {
                tracing::warn!(target: "cluster::proxy", %error, "cannot start proxy thread {index}; serving with fewer threads");
                break;
            }
        }
    }
    proxy.serve(listener, stop).await;
    for rx in done {
        let _ = rx.await;
    }
}

fn start_thread(
    proxy: &Proxy,
    listener: &TcpListener,
    index: usize,
    stop: CancellationToken,
    kill: CancellationToken,
) -> std::io::Result<oneshot::Receiver<()>> {
    // A duplicate descriptor shares the socket and its O_NONBLOCK flag.
    let socket = std::net::TcpListener::from(listener.as_fd().try_clone_to_owned()?);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let proxy = proxy.clone();
    let (tx, rx) = oneshot::channel();
    std::thread::Builder::new().name(format!("cluster-proxy-{index}")).spawn(move || {
        set_thread_shard(index);
        runtime.block_on(async move {
            match TcpListener::from_std(socket) {
                Ok(listener) => tokio::select! {
                    () = proxy.serve(listener, stop) => {}
                    () = kill.cancelled() => {}
                },
                Err(error) => {
                    tracing::warn!(target: "cluster::proxy", %error, "proxy thread {index} cannot use the listener");
                }
            }
            let _ = tx.send(());
            // Other threads may still use idle connections this thread opened (pool shards
            // lend to each other), and those connections are driven by this runtime: keep
            // it running until every thread is done.
            kill.cancelled().await;
        });
        drop(runtime);
    })?;
    Ok(rx)
}

/// Cancels its token when dropped: the extra threads stop when `serve_threads` returns or is
/// dropped.
struct CancelOnDrop(CancellationToken);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.cancel();
    }
}
