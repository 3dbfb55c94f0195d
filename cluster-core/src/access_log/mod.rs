//! The access log: one line per request, written when its response has been sent.
//!
//! The proxy fills a record per request ([`Entry`], cheap copies of the method, the target,
//! the `Referer` and `User-Agent` headers) and hands it over when the response body ends: at
//! its last byte, when the worker's body fails mid-way, or when the client goes away (the
//! body is dropped). The hand-over is a `try_send` on a bounded queue
//! ([`std::sync::mpsc::sync_channel`]: crossbeam's array channel since Rust 1.67, whose send
//! takes no lock unless the receiver is parked), never a wait: when the queue is full the
//! line is dropped and counted. One writer thread formats the lines ([`format`]: combined or
//! JSON) and writes them in batches ([`writer`]), waking every 10 ms while busy so that a
//! send rarely finds it parked.
//!
//! Measured with `benches/access-log-cost.sh` (2 cores, wrk -c64): the writer thread spends
//! 0.7-1.0 µs per line, formatting and writing included; the request path adds about 1-2 µs
//! per request, within the run-to-run noise of the primary's 21-24 µs.
//!
//! [`AccessLog::reopen`] (SIGUSR1, through
//! [`ClusterEvent::LogReopenRequested`](crate::ClusterEvent::LogReopenRequested)) opens the
//! file again at its path, for logrotate's move-then-signal.
//!
//! # Examples
//!
//! ```
//! use cluster_core::AccessLog;
//! use cluster_core::config::{AccessLogPath, ClusterSpec};
//!
//! let dir = tempfile::tempdir().unwrap();
//! let mut spec = ClusterSpec::default().access_log;
//! spec.path = AccessLogPath::File(dir.path().join("logs/access.log"));
//! let log = AccessLog::start(&spec).unwrap();
//! assert!(dir.path().join("logs/access.log").exists(), "opened at start");
//! assert_eq!(log.counts().written, 0);
//! assert!(log.close(std::time::Duration::from_secs(1)));
//! ```

mod format;
mod record;
mod writer;

use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use std::{fmt, io};

use http::Request;
use serde::Serialize;

use crate::config::{AccessLogPath, AccessLogSpec};
pub(crate) use record::{End, Record, WorkerRef};

/// The access log could not be started.
///
/// # Examples
///
/// ```
/// use cluster_core::config::ClusterSpec;
/// use cluster_core::{Cluster, ClusterError, AccessLogError};
///
/// # async fn example(spec: ClusterSpec) {
/// match Cluster::builder(spec).build().await {
///     Err(ClusterError::AccessLog(AccessLogError::Open { path, source, .. })) => {
///         eprintln!("cannot write the access log to {path}: {source}")
///     }
///     Err(other) => eprintln!("{other}"),
///     Ok(cluster) => drop(cluster),
/// }
/// # }
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AccessLogError {
    /// The destination could not be opened (or its directory created).
    #[error("cannot open the access log {path}: {source}")]
    Open {
        /// The destination (`accessLog.path`).
        path: AccessLogPath,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// The writer thread could not be started.
    #[error("cannot start the access log's writer thread: {0}")]
    Thread(#[source] io::Error),
}

/// Lines of the access log since it started.
///
/// # Examples
///
/// ```
/// use cluster_core::ClusterHandle;
///
/// # async fn example(handle: ClusterHandle) -> Result<(), cluster_core::ClusterGone> {
/// if let Some(counts) = handle.status().await?.access_log {
///     println!("{} lines written, {} dropped", counts.written, counts.dropped);
/// }
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct AccessLogCounts {
    /// Lines written to the destination.
    pub written: u64,
    /// Lines dropped: the queue was full (the destination could not keep up), or writing
    /// them failed.
    pub dropped: u64,
}

/// What the request path, the writer thread and the handles share.
#[derive(Debug, Default)]
pub(crate) struct Shared {
    written: AtomicU64,
    dropped: AtomicU64,
    /// Set by [`AccessLog::reopen`]; the writer reopens before its next batch.
    reopen: AtomicBool,
    /// Set by [`AccessLog::close`]; the writer ends once the queue is empty.
    closing: AtomicBool,
}

/// What goes through the queue.
#[derive(Debug)]
pub(crate) enum Msg {
    /// A line to write.
    Line(Box<Record>),
    /// Nothing to write: wakes the writer to look at its flags.
    Wake,
}

/// A running access log: the queue into its writer thread, and its counters.
///
/// Cheap to clone (one `Arc`); clones feed the same queue.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use cluster_core::AccessLog;
/// use cluster_core::config::{AccessLogPath, ClusterSpec};
///
/// let dir = std::env::temp_dir().join(format!("access-log-doc-{}", std::process::id()));
/// let mut spec = ClusterSpec::default().access_log;
/// spec.path = AccessLogPath::File(dir.join("access.log"));
/// let log = AccessLog::start(&spec)?; // opens the file, starts the writer thread
/// assert_eq!(log.destination(), &spec.path);
/// log.reopen(); // after logrotate moved it
/// assert_eq!(log.counts().written, 0);
/// assert!(log.close(Duration::from_secs(1))); // flushed within a second
/// # std::fs::remove_dir_all(&dir)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
#[cfg_attr(not(feature = "test-util"), allow(unreachable_pub, dead_code))]
pub struct AccessLog {
    inner: Arc<Inner>,
}

struct Inner {
    tx: SyncSender<Msg>,
    shared: Arc<Shared>,
    thread: Mutex<Option<JoinHandle<()>>>,
    destination: AccessLogPath,
}

impl fmt::Debug for AccessLog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccessLog")
            .field("destination", &self.inner.destination)
            .field("counts", &self.counts())
            .finish_non_exhaustive()
    }
}

#[cfg_attr(not(feature = "test-util"), allow(unreachable_pub, dead_code))]
impl AccessLog {
    /// Opens the destination of `spec` (a file is created with its directory, and appended
    /// to) and starts the writer thread.
    ///
    /// # Errors
    ///
    /// [`AccessLogError::Open`] when the file cannot be opened, [`AccessLogError::Thread`]
    /// when the thread cannot be started.
    pub fn start(spec: &AccessLogSpec) -> Result<Self, AccessLogError> {
        let dest = writer::Destination::open(&spec.path)
            .map_err(|source| AccessLogError::Open { path: spec.path.clone(), source })?;
        let (tx, rx) = sync_channel(spec.queue.max(1));
        let shared = Arc::new(Shared::default());
        let format = format::LineFormat::new(spec.format);
        let for_writer = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("cluster-access-log".into())
            .spawn(move || writer::run(rx, dest, format, for_writer))
            .map_err(AccessLogError::Thread)?;
        Ok(Self {
            inner: Arc::new(Inner {
                tx,
                shared,
                thread: Mutex::new(Some(thread)),
                destination: spec.path.clone(),
            }),
        })
    }

    /// Where the lines go.
    pub fn destination(&self) -> &AccessLogPath {
        &self.inner.destination
    }

    /// Lines written and dropped so far.
    pub fn counts(&self) -> AccessLogCounts {
        let shared = &self.inner.shared;
        AccessLogCounts {
            written: shared.written.load(Ordering::Relaxed),
            dropped: shared.dropped.load(Ordering::Relaxed),
        }
    }

    /// Opens the file again at its path before the next lines are written (after logrotate
    /// moved it away). Never waits; with nothing queued it wakes the writer, which reopens
    /// at once.
    pub fn reopen(&self) {
        self.inner.shared.reopen.store(true, Ordering::Release);
        let _ = self.inner.tx.try_send(Msg::Wake);
    }

    /// Writes what is queued and ends the writer thread, waiting at most `timeout` for it
    /// (a destination that blocks may hold it longer); returns whether it ended. For the
    /// end of the process, once requests have stopped: a line queued after the writer has
    /// ended is counted as dropped.
    pub fn close(&self, timeout: Duration) -> bool {
        self.inner.shared.closing.store(true, Ordering::Release);
        let _ = self.inner.tx.try_send(Msg::Wake);
        let deadline = Instant::now() + timeout;
        let mut thread = self.inner.thread.lock().unwrap_or_else(|e| e.into_inner());
        while thread.as_ref().is_some_and(|t| !t.is_finished()) {
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        if let Some(t) = thread.take() {
            let _ = t.join();
        }
        true
    }

    /// Queues a record, or counts it as dropped when the queue is full; never waits.
    fn submit(&self, record: Box<Record>) {
        match self.inner.tx.try_send(Msg::Line(record)) {
            Ok(()) => {}
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                self.inner.shared.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// The access log record of one request in progress; queued when dropped.
///
/// The proxy creates it when a request arrives, fills in the response's status and worker,
/// and moves it into the response body, which counts the bytes and sets how it ended. If it
/// is dropped before a response (the client went away while the worker was still
/// thinking), it is logged as 499 `aborted`.
pub(crate) struct Entry {
    record: Option<Box<Record>>,
    started: Instant,
    log: AccessLog,
}

impl fmt::Debug for Entry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Entry").field("record", &self.record).finish_non_exhaustive()
    }
}

impl Entry {
    /// The record of request `req` from `client`, started now.
    pub(crate) fn new<B>(log: &AccessLog, client: IpAddr, req: &Request<B>) -> Self {
        let record = Record::new(client, req.method(), req.uri(), req.version(), req.headers());
        Self { record: Some(Box::new(record)), started: Instant::now(), log: log.clone() }
    }

    /// The record, to fill in.
    pub(crate) fn record(&mut self) -> &mut Record {
        self.record.as_deref_mut().expect("an entry's record is taken only by its drop")
    }
}

impl Drop for Entry {
    fn drop(&mut self) {
        if let Some(mut record) = self.record.take() {
            record.duration = self.started.elapsed();
            self.log.submit(record);
        }
    }
}

#[cfg(test)]
mod tests;
