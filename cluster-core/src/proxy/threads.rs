//! Serving one listening socket from several single-threaded runtimes.
//!
//! On a small machine one runtime thread is the fastest proxy; once that thread is saturated,
//! a second one helps only if it does not pay for cross-thread wake-ups. So each proxy thread
//! runs its own current-thread runtime, accepts from its own duplicate of the listening
//! socket, serves its connections to the end, and keeps its own shard of every upstream
//! pool.
//!
//! The kernel wakes every thread waiting on the socket, and the first to run accepts all the
//! connections queued: a burst of new connections (a load test's, a browser's six) could
//! all land on one thread while the other idles. So the threads keep count of their open
//! connections ([`Spread`]), and a thread that already serves more than its share hands a
//! new connection to the least busy thread instead: once per connection, never per request.

use std::net::SocketAddr;
use std::os::fd::AsFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::net::TcpListener;
use tokio::sync::{OwnedSemaphorePermit, mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use super::Proxy;
use super::pool::set_thread_shard;

/// A connection one thread accepted for another to serve.
#[derive(Debug)]
pub(crate) struct Accepted {
    /// The socket, taken off the accepting thread's reactor.
    pub(crate) tcp: std::net::TcpStream,
    /// The client's address.
    pub(crate) peer: SocketAddr,
    /// Its place under `maxConnections`, when there is a limit.
    pub(crate) permit: Option<OwnedSemaphorePermit>,
}

/// The proxy threads' open connections, and where to send each thread a connection.
#[derive(Debug)]
pub(crate) struct Spread {
    lanes: Box<[Lane]>,
}

#[derive(Debug)]
struct Lane {
    /// Connections this thread serves (or has been handed and not yet started).
    open: AtomicUsize,
    inbox: mpsc::UnboundedSender<Accepted>,
}

impl Spread {
    /// A spread over `threads` threads, and each thread's inbox, in order.
    pub(crate) fn new(threads: usize) -> (Arc<Self>, Vec<mpsc::UnboundedReceiver<Accepted>>) {
        let (lanes, inboxes): (Vec<_>, Vec<_>) = (0..threads)
            .map(|_| {
                let (tx, rx) = mpsc::unbounded_channel();
                (Lane { open: AtomicUsize::new(0), inbox: tx }, rx)
            })
            .unzip();
        (Arc::new(Spread { lanes: lanes.into() }), inboxes)
    }

    /// The thread that should serve a connection `me` just accepted: `me`, unless it serves
    /// more than the least busy running thread by a margin (one connection, plus one per eight the
    /// other serves, so that short connections do not bounce between threads that are about
    /// even). Counted as open on that thread from now on.
    pub(crate) fn assign(&self, me: usize) -> usize {
        let open = |i: usize| self.lanes[i].open.load(Ordering::Relaxed);
        let mine = open(me);
        // A thread that stopped, or never started, takes no connection.
        let (least, fewest) = (0..self.lanes.len())
            .filter(|&i| !self.lanes[i].inbox.is_closed())
            .map(|i| (i, open(i)))
            .min_by_key(|&(_, n)| n)
            .unwrap_or((me, mine));
        let to = if mine > fewest + 1 + fewest / 8 { least } else { me };
        self.lanes[to].open.fetch_add(1, Ordering::Relaxed);
        to
    }

    /// Sends `accepted` to thread `to`; gives it back when that thread no longer takes
    /// connections (it has stopped), and counts it off there.
    pub(crate) fn hand(&self, to: usize, accepted: Accepted) -> Result<(), Accepted> {
        self.lanes[to].inbox.send(accepted).map_err(|mpsc::error::SendError(accepted)| {
            self.closed(to);
            accepted
        })
    }

    /// Counts one connection of thread `index` as open (one it serves without [`assign`]).
    pub(crate) fn opened(&self, index: usize) {
        self.lanes[index].open.fetch_add(1, Ordering::Relaxed);
    }

    /// One connection of thread `index` has closed.
    pub(crate) fn closed(&self, index: usize) {
        self.lanes[index].open.fetch_sub(1, Ordering::Relaxed);
    }
}

/// One thread's place in a [`Spread`]: its index and its inbox.
#[derive(Debug)]
pub(crate) struct Place {
    pub(crate) spread: Arc<Spread>,
    pub(crate) index: usize,
    pub(crate) inbox: mpsc::UnboundedReceiver<Accepted>,
}

/// Counts a connection off its thread when its task ends.
#[derive(Debug)]
pub(crate) struct OpenGuard {
    spread: Arc<Spread>,
    index: usize,
}

impl OpenGuard {
    /// A guard for a connection already counted as open on thread `index`.
    pub(crate) fn new(spread: &Arc<Spread>, index: usize) -> Self {
        OpenGuard { spread: Arc::clone(spread), index }
    }
}

impl Drop for OpenGuard {
    fn drop(&mut self) {
        self.spread.closed(self.index);
    }
}

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
    let (spread, mut inboxes) = Spread::new(threads);
    // Thread 0 is the caller's; the others are started below.
    let mut places = inboxes.drain(..).enumerate().map(|(index, inbox)| Place {
        spread: Arc::clone(&spread),
        index,
        inbox,
    });
    let mine = places.next();
    for place in places {
        let index = place.index;
        match start_thread(proxy, &listener, place, stop.clone(), kill.0.clone()) {
            Ok(rx) => done.push(rx),
            Err(error) => {
                tracing::warn!(target: "cluster::proxy", %error, "cannot start proxy thread {index}; serving with fewer threads");
                break;
            }
        }
    }
    // With one thread there is nothing to spread.
    let mine = mine.filter(|_| threads > 1);
    super::server::serve(Arc::clone(&proxy.shared), listener, stop, mine).await;
    for rx in done {
        let _ = rx.await;
    }
}

fn start_thread(
    proxy: &Proxy,
    listener: &TcpListener,
    place: Place,
    stop: CancellationToken,
    kill: CancellationToken,
) -> std::io::Result<oneshot::Receiver<()>> {
    let index = place.index;
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
                    () = super::server::serve(Arc::clone(&proxy.shared), listener, stop, Some(place)) => {}
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

#[cfg(test)]
mod tests {
    use super::*;

    fn accepted() -> (Accepted, std::net::TcpListener) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let tcp = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let peer = tcp.local_addr().unwrap();
        (Accepted { tcp, peer, permit: None }, listener)
    }

    fn open(spread: &Spread) -> Vec<usize> {
        spread.lanes.iter().map(|l| l.open.load(Ordering::Relaxed)).collect()
    }

    #[test]
    fn a_burst_accepted_by_one_thread_is_spread_evenly() {
        let (spread, _inboxes) = Spread::new(2);
        // Thread 0 accepts all 64 connections of a burst.
        let assigned: Vec<usize> = (0..64).map(|_| spread.assign(0)).collect();
        // It keeps the first ones, then hands one over whenever it is ahead by more than
        // the margin: one, plus one per eight the other thread serves.
        assert_eq!(assigned[..4], [0, 0, 1, 0]);
        assert_eq!(open(&spread), [34, 30]);
    }

    #[test]
    fn a_thread_keeps_its_connections_within_the_margin() {
        let (spread, _inboxes) = Spread::new(3);
        for _ in 0..16 {
            spread.opened(1);
            spread.opened(2);
        }
        for _ in 0..18 {
            spread.opened(0);
        }
        // Up to 19 against 16: within one plus an eighth of 16.
        assert_eq!(spread.assign(0), 0);
        assert_eq!(spread.assign(0), 0);
        // 20 against 16: the next goes to the first of the least busy.
        assert_eq!(spread.assign(0), 1);
        spread.closed(0);
        spread.closed(0);
        assert_eq!(open(&spread), [18, 17, 16]);
    }

    #[test]
    fn a_stopped_thread_gives_the_connection_back_uncounted() {
        let (spread, mut inboxes) = Spread::new(2);
        let (first, _l1) = accepted();
        let to = {
            spread.opened(0);
            spread.opened(0);
            spread.assign(0)
        };
        assert_eq!(to, 1);
        spread.hand(to, first).unwrap();
        assert!(inboxes[1].try_recv().is_ok());
        drop(inboxes.pop());
        let (second, _l2) = accepted();
        spread.opened(1);
        assert!(spread.hand(1, second).is_err());
        assert_eq!(open(&spread), [2, 1]);
    }

    #[test]
    fn guards_count_connections_off_when_they_end() {
        let (spread, _inboxes) = Spread::new(2);
        let to = spread.assign(1);
        let guard = OpenGuard::new(&spread, to);
        assert_eq!(open(&spread), [0, 1]);
        drop(guard);
        assert_eq!(open(&spread), [0, 0]);
    }

    #[test]
    fn threads_that_stopped_are_passed_over() {
        let (spread, mut inboxes) = Spread::new(3);
        drop(inboxes.remove(1));
        for _ in 0..4 {
            spread.opened(0);
        }
        assert_eq!(spread.assign(0), 2);
        assert_eq!(open(&spread), [4, 0, 1]);
    }
}
