//! The writer thread: takes records off the queue, formats them and writes them in batches.
//!
//! It blocks on the queue when there is nothing to do, then takes every record already
//! waiting (up to [`BATCH`]) and writes them with one `write` call, so under load the cost of
//! the system call is shared by many lines. A destination that blocks (a full pipe, a stalled
//! disk) only stalls this thread: the queue fills and the request path drops lines.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, TryRecvError};

use super::format::LineFormat;
use super::{Msg, Shared};
use crate::config::AccessLogPath;

/// Most records formatted into one write.
const BATCH: usize = 256;

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

/// The thread's loop: runs until every sender is gone or the log is closed, and the queue
/// is empty.
pub(super) fn run(
    rx: Receiver<Msg>,
    mut dest: Destination,
    mut format: LineFormat,
    shared: Arc<Shared>,
) {
    let mut buf = Vec::with_capacity(64 * 1024);
    let mut failing = false;
    loop {
        // Once closing, what is queued is written and the thread ends.
        let first = if shared.closing.load(Ordering::Acquire) {
            rx.try_recv().ok()
        } else {
            rx.recv().ok()
        };
        let Some(first) = first else { return };
        // Reopen before writing what follows the request: the lines of requests that end
        // after the signal go to the new file.
        if shared.reopen.swap(false, Ordering::AcqRel) {
            match dest.reopen() {
                Ok(()) => tracing::info!(
                    target: "cluster::access",
                    "access log {} reopened", dest.name()
                ),
                Err(e) => tracing::error!(
                    target: "cluster::access",
                    "cannot reopen the access log {}: {e}; still writing to the old file",
                    dest.name()
                ),
            }
        }
        buf.clear();
        let mut lines = 0u64;
        let mut next = Some(first);
        let mut disconnected = false;
        while let Some(msg) = next.take() {
            if let Msg::Line(record) = msg {
                format.write(&record, &mut buf);
                lines += 1;
            }
            if lines as usize >= BATCH {
                break;
            }
            match rx.try_recv() {
                Ok(msg) => next = Some(msg),
                Err(TryRecvError::Empty) => {}
                Err(TryRecvError::Disconnected) => disconnected = true,
            }
        }
        if lines > 0 {
            match dest.write_all(&buf) {
                Ok(()) => {
                    shared.written.fetch_add(lines, Ordering::Relaxed);
                    if failing {
                        failing = false;
                        tracing::info!(target: "cluster::access", "access log {} writable again", dest.name());
                    }
                }
                Err(e) => {
                    shared.dropped.fetch_add(lines, Ordering::Relaxed);
                    if !failing {
                        failing = true;
                        tracing::error!(
                            target: "cluster::access",
                            "cannot write the access log {}: {e}; lines are dropped until it works again",
                            dest.name()
                        );
                    }
                }
            }
        }
        if disconnected {
            return;
        }
    }
}
