//! Forwarding a worker's stdout and stderr to the cluster's own, one prefixed line at a time.
//!
//! Workers' pipes are read on the runtime that started them (the control plane's), but the
//! lines are written by a thread of their own: writing to a terminal or a pipe blocks when
//! nobody reads (Ctrl-S, a stalled `| tee`), and that must stall only the workers' output
//! (through the pipes' back-pressure), never the control plane.

use std::io::Write;
use std::sync::OnceLock;

use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::sync::mpsc;

/// Lines waiting for the writer thread; beyond it, the readers wait (and so, once their
/// pipes are full, do the workers).
const QUEUED_LINES: usize = 1024;

/// Longest line forwarded in one piece; a longer one is cut into pieces of this size, so a
/// worker that never writes a newline cannot make the primary buffer without bound.
const MAX_LINE: usize = 16 * 1024;

/// Which of the cluster's streams a worker stream goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stream {
    Stdout,
    Stderr,
}

/// Copies `reader` to the cluster's `stream`, each line prefixed with `[w<slot>] `.
///
/// The pipe is always drained, so a worker never blocks on a full pipe buffer.
pub(crate) async fn forward_lines(mut reader: impl AsyncRead + Unpin, slot: usize, stream: Stream) {
    let prefix = format!("[w{slot}] ");
    let mut pending: Vec<u8> = Vec::with_capacity(1024);
    let mut buf = [0u8; 8192];
    loop {
        let n = match reader.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        pending.extend_from_slice(&buf[..n]);
        let mut start = 0;
        while let Some(pos) = pending[start..].iter().position(|&b| b == b'\n') {
            emit(stream, &prefix, &pending[start..start + pos]).await;
            start += pos + 1;
        }
        pending.drain(..start);
        while pending.len() >= MAX_LINE {
            emit(stream, &prefix, &pending[..MAX_LINE]).await;
            pending.drain(..MAX_LINE);
        }
    }
    if !pending.is_empty() {
        emit(stream, &prefix, &pending).await;
    }
}

/// Hands one prefixed line to the writer thread (or writes it here if there is none).
async fn emit(stream: Stream, prefix: &str, line: &[u8]) {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let mut out = Vec::with_capacity(prefix.len() + line.len() + 1);
    out.extend_from_slice(prefix.as_bytes());
    out.extend_from_slice(line);
    out.push(b'\n');
    match writer() {
        Some(tx) => {
            if let Err(mpsc::error::SendError((stream, out))) = tx.send((stream, out)).await {
                write(stream, &out);
            }
        }
        None => write(stream, &out),
    }
}

/// Waits (at most `limit`) until the lines queued for the writer thread are written, so that
/// the last lines of the last workers are not lost when the primary exits.
pub(crate) async fn drained(limit: std::time::Duration) {
    let Some(tx) = writer() else { return };
    let deadline = tokio::time::Instant::now() + limit;
    while tx.capacity() < tx.max_capacity() && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
}

/// One line for the writer thread, and the stream it goes to.
type Line = (Stream, Vec<u8>);

/// The writer thread's queue, started on first use.
fn writer() -> Option<&'static mpsc::Sender<Line>> {
    static WRITER: OnceLock<Option<mpsc::Sender<Line>>> = OnceLock::new();
    WRITER
        .get_or_init(|| {
            let (tx, mut rx) = mpsc::channel::<Line>(QUEUED_LINES);
            let spawned =
                std::thread::Builder::new().name("cluster-output".into()).spawn(move || {
                    while let Some((stream, line)) = rx.blocking_recv() {
                        write(stream, &line);
                    }
                });
            spawned.ok().map(|_| tx)
        })
        .as_ref()
}

/// Writes one line. One write per line under the stream's lock, so lines of different workers
/// never mix. A closed stream (the terminal went away) is not a reason to stop draining the
/// pipes.
fn write(stream: Stream, line: &[u8]) {
    let _ = match stream {
        Stream::Stdout => std::io::stdout().lock().write_all(line),
        Stream::Stderr => std::io::stderr().lock().write_all(line),
    };
}
