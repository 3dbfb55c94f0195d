//! The writer thread: takes records off the queue, formats them and writes them in batches.
//!
//! It blocks on the queue when there is nothing to do; busy, it wakes every [`GATHER`] and
//! writes every record queued meanwhile, up to [`BATCH`] per `write` call, so under load
//! neither the wake-up nor the system call is paid per line. A destination that blocks (a full pipe, a stalled
//! disk) only stalls this thread: the queue fills and the request path drops lines.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, TryRecvError};
use std::time::Duration;

use super::format::LineFormat;
use super::{Msg, Shared};
use crate::config::AccessLogPath;

/// Most records formatted into one write.
const BATCH: u64 = 1024;

/// Where lines are written.
#[derive(Debug)]
pub(super) enum Destination {
    /// The process's standard output.
    Stdout,
    /// A file opened for appending.
    File {
        /// The configured path, opened again on reopen.
        path: PathBuf,
        /// The file currently open.
        file: File,
    },
}

impl Destination {
    /// Opens the destination of `path` (a file's directory is created).
    pub(super) fn open(path: &AccessLogPath) -> io::Result<Self> {
        Ok(match path {
            AccessLogPath::File(path) => {
                Destination::File { file: open_file(path)?, path: path.clone() }
            }
            // Stdout and any destination added later without an opener of its own.
            _ => Destination::Stdout,
        })
    }

    /// Opens the file again at its path (logrotate moved it away); keeps the open one if
    /// that fails. Stdout has nothing to reopen.
    fn reopen(&mut self) -> io::Result<()> {
        if let Destination::File { path, file } = self {
            *file = open_file(path)?;
        }
        Ok(())
    }

    fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        match self {
            Destination::Stdout => {
                let mut out = io::stdout().lock();
                out.write_all(bytes)?;
                out.flush()
            }
            Destination::File { file, .. } => file.write_all(bytes),
        }
    }

    fn name(&self) -> String {
        match self {
            Destination::Stdout => "stdout".into(),
            Destination::File { path, .. } => path.display().to_string(),
        }
    }
}

/// Opens `path` for appending, creating it and its directory.
fn open_file(path: &Path) -> io::Result<File> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    OpenOptions::new().create(true).append(true).open(path)
}

/// The thread's loop: runs until every sender is gone, or the log is closed and the queue
/// is empty.
///
/// Idle, it blocks on the queue: the first line after a quiet spell wakes it (one futex
/// wake). Busy, it sleeps [`GATHER`] between rounds and writes whatever was queued
/// meanwhile; a sender never has a sleeping receiver to wake then, so a request pays only
/// for its `try_send`, and the writer one `write` per round, not one per line. Once a round
/// finds the queue empty it blocks again.
pub(super) fn run(rx: Receiver<Msg>, dest: Destination, format: LineFormat, shared: Arc<Shared>) {
    let mut w = Writer { dest, format, buf: Vec::with_capacity(64 * 1024), failing: false, shared };
    while let Ok(first) = rx.recv() {
        let mut first = Some(first);
        loop {
            if first.is_none() && !w.shared.closing.load(Ordering::Acquire) {
                std::thread::sleep(GATHER);
            }
            w.reopen_if_asked();
            let (lines, disconnected) = w.drain(&rx, first.take());
            // Read after the drain: a close during the sleep woke nobody (its wake-up
            // message was drained with the lines).
            let closing = w.shared.closing.load(Ordering::Acquire);
            if disconnected || (closing && lines == 0) {
                return;
            }
            if lines == 0 {
                break;
            }
        }
    }
}

/// How long the writer lets lines gather between two writes while busy. Lines reach the
/// destination at most this late (plus the write itself).
const GATHER: Duration = Duration::from_millis(10);

/// The writer thread's state.
struct Writer {
    dest: Destination,
    format: LineFormat,
    buf: Vec<u8>,
    /// The last write failed (reported once until one succeeds).
    failing: bool,
    shared: Arc<Shared>,
}

impl Writer {
    /// Reopens the destination if [`AccessLog::reopen`](super::AccessLog::reopen) asked:
    /// before the lines that follow, so that lines of requests that end after the signal go
    /// to the new file.
    fn reopen_if_asked(&mut self) {
        if !self.shared.reopen.swap(false, Ordering::AcqRel) {
            return;
        }
        match self.dest.reopen() {
            Ok(()) => tracing::info!(
                target: "cluster::access",
                "access log {} reopened", self.dest.name()
            ),
            Err(e) => tracing::error!(
                target: "cluster::access",
                "cannot reopen the access log {}: {e}; still writing to the old file",
                self.dest.name()
            ),
        }
    }

    /// Writes `first` and everything queued, [`BATCH`] lines per write; returns the lines
    /// taken and whether every sender is gone.
    fn drain(&mut self, rx: &Receiver<Msg>, first: Option<Msg>) -> (u64, bool) {
        let mut total = 0;
        let mut next = first;
        loop {
            let mut lines = 0;
            let mut disconnected = false;
            self.buf.clear();
            loop {
                let msg = match next.take() {
                    Some(msg) => msg,
                    None => match rx.try_recv() {
                        Ok(msg) => msg,
                        Err(TryRecvError::Empty) => break,
                        Err(TryRecvError::Disconnected) => {
                            disconnected = true;
                            break;
                        }
                    },
                };
                if let Msg::Line(record) = msg {
                    self.format.write(&record, &mut self.buf);
                    lines += 1;
                    if lines >= BATCH {
                        break;
                    }
                }
            }
            self.write(lines);
            total += lines;
            if disconnected || lines < BATCH {
                return (total, disconnected);
            }
        }
    }

    /// Writes the `lines` formatted in the buffer, and counts them.
    fn write(&mut self, lines: u64) {
        if lines == 0 {
            return;
        }
        match self.dest.write_all(&self.buf) {
            Ok(()) => {
                self.shared.written.fetch_add(lines, Ordering::Relaxed);
                if self.failing {
                    self.failing = false;
                    tracing::info!(
                        target: "cluster::access",
                        "access log {} writable again", self.dest.name()
                    );
                }
            }
            Err(e) => {
                self.shared.dropped.fetch_add(lines, Ordering::Relaxed);
                if !self.failing {
                    self.failing = true;
                    tracing::error!(
                        target: "cluster::access",
                        "cannot write the access log {}: {e}; lines are dropped until it works again",
                        self.dest.name()
                    );
                }
            }
        }
    }
}
