//! A worker's IPC channel: newline-delimited JSON, as Node's `process.send` writes it on
//! `NODE_CHANNEL_FD` and as `process.on('message')` reads it.
//!
//! The primary mostly reads (heartbeats). It writes only whole JSON objects, one per line, of
//! its own making (`{"type":"memory-pressure",...}`), so nothing can reach a Node worker that
//! its channel parser would choke on; a worker that never reads cannot make it block or grow.

use std::io;
use std::time::Duration;

use cluster_health::{MAX_IPC_LINE, parse_ipc_line};
use futures_util::StreamExt;
use tokio::io::AsyncWriteExt;
use tokio::net::UnixStream;
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::mpsc;
use tokio_util::codec::FramedRead;
use tokio_util::task::AbortOnDropHandle;

use super::heartbeat::{Inbox, Origin};
use super::lines::{BoundedLines, Line};

/// Messages to a worker that may wait to be written; beyond it they are dropped.
const MAX_QUEUED: usize = 8;

/// Longest a write to a worker may wait for room in the socket; a worker that does not read
/// for that long gets no more messages.
const WRITE_TIMEOUT: Duration = Duration::from_secs(2);

/// The primary's end of one worker's IPC channel, read by a task of its own and written by
/// another.
///
/// The tasks end when the worker closes its end (it exited) or when this is dropped.
#[derive(Debug)]
pub(crate) struct IpcLink {
    /// Dropping it ends the writer task, which shuts the sending direction down (see
    /// [`hang_up`](Self::hang_up)).
    write: Option<mpsc::Sender<String>>,
    _reader: AbortOnDropHandle<()>,
}

impl IpcLink {
    /// Starts reading `stream`, the channel of worker `id`, posting what it says to `inbox`.
    ///
    /// # Errors
    ///
    /// The OS error when the socket cannot be registered with the runtime.
    pub(super) fn attach(
        stream: std::os::unix::net::UnixStream,
        id: u64,
        inbox: Inbox,
    ) -> io::Result<Self> {
        stream.set_nonblocking(true)?;
        let (read, write) = UnixStream::from_std(stream)?.into_split();
        let reader = AbortOnDropHandle::new(tokio::spawn(read_lines(read, id, inbox)));
        let (tx, rx) = mpsc::channel(MAX_QUEUED);
        tokio::spawn(write_lines(write, rx, id));
        Ok(Self { write: Some(tx), _reader: reader })
    }

    /// Queues `message` (one JSON object) for the worker. Returns `false` when it was dropped:
    /// the channel is hung up, or the worker is not reading.
    pub(super) fn send(&self, message: &serde_json::Value) -> bool {
        let Some(tx) = &self.write else { return false };
        tx.try_send(format!("{message}\n")).is_ok()
    }

    /// Shuts down the primary's sending direction (the worker reads end-of-file, which
    /// disconnects a Node channel); reading goes on.
    pub(super) fn hang_up(&mut self) {
        self.write = None;
    }
}

/// Writes queued lines until the link hangs up or a write times out, then drops the write
/// half, which shuts the sending direction down.
async fn write_lines(mut write: OwnedWriteHalf, mut rx: mpsc::Receiver<String>, id: u64) {
    while let Some(line) = rx.recv().await {
        match tokio::time::timeout(WRITE_TIMEOUT, write.write_all(line.as_bytes())).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                tracing::debug!(worker = id, "IPC write failed: {e}");
                return;
            }
            Err(_) => {
                tracing::debug!(worker = id, "IPC write timed out: the worker does not read");
                return;
            }
        }
    }
}

/// Reads lines until the worker closes the channel. Lines that are too long, not JSON, or
/// Node's own messages are skipped (the first two logged at debug level).
async fn read_lines(read: OwnedReadHalf, id: u64, inbox: Inbox) {
    let mut lines = FramedRead::new(read, BoundedLines::new(MAX_IPC_LINE));
    while let Some(line) = lines.next().await {
        let line = match line {
            Ok(Line::Line(line)) => line,
            Ok(Line::TooLong) => {
                tracing::debug!(worker = id, "IPC line over {MAX_IPC_LINE} bytes ignored");
                continue;
            }
            Err(e) => {
                tracing::debug!(worker = id, "IPC channel read failed: {e}");
                return;
            }
        };
        match parse_ipc_line(&line) {
            Ok(Some(beat)) => {
                if !inbox.send(Origin::Worker(id), vec![beat]) {
                    tracing::debug!(worker = id, "IPC message dropped: heartbeat queue full");
                }
            }
            Ok(None) => {}
            Err(e) => tracing::debug!(worker = id, "IPC line ignored: {e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::time::Duration;

    use cluster_health::Heartbeat;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::sync::mpsc;

    use super::*;
    use crate::supervisor::Msg;
    use crate::supervisor::heartbeat::HeartbeatMsg;

    async fn next_beat(rx: &mut mpsc::UnboundedReceiver<Msg>) -> (Origin, Vec<Heartbeat>) {
        let msg = tokio::time::timeout(Duration::from_secs(5), rx.recv()).await;
        match msg.expect("a message in time").expect("channel open") {
            Msg::Heartbeat(HeartbeatMsg { from, beats, .. }) => (from, beats),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[tokio::test]
    async fn reads_heartbeats_skips_junk_and_hangs_up() {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let (parent, mut child) = std::os::unix::net::UnixStream::pair().unwrap();
        let mut link = IpcLink::attach(parent, 4, Inbox::new(tx)).unwrap();
        // A thread writes, as the worker would: the runtime keeps reading meanwhile.
        let writer = std::thread::spawn(move || {
            child.write_all(b"{\"v\":1,\"type\":\"ready\"}\nnot json\n").unwrap();
            child.write_all(b"{\"cmd\":\"NODE_HANDLE_ACK\"}\n").unwrap();
            child.write_all(&vec![b'x'; MAX_IPC_LINE + 10]).unwrap();
            child.write_all(b"\n{\"type\":\"heartbeat\"}\n").unwrap();
            child
        });
        assert_eq!(next_beat(&mut rx).await, (Origin::Worker(4), vec![Heartbeat::Ready]));
        assert_eq!(next_beat(&mut rx).await, (Origin::Worker(4), vec![Heartbeat::Alive]));
        let child = writer.join().unwrap();

        // A message from the primary is one JSON line.
        assert!(link.send(&serde_json::json!({"type": "memory-pressure", "rssMb": 600})));
        // Read on a thread: the writer task needs this runtime meanwhile.
        let (child, line) = tokio::task::spawn_blocking(move || {
            child.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let mut line = String::new();
            std::io::BufRead::read_line(&mut std::io::BufReader::new(&child), &mut line).unwrap();
            (child, line)
        })
        .await
        .unwrap();
        assert_eq!(line, "{\"rssMb\":600,\"type\":\"memory-pressure\"}\n");

        // After the hang-up the worker reads end-of-file, and can still send.
        link.hang_up();
        assert!(!link.send(&serde_json::json!({"type": "late"})), "nothing is sent after");
        child.set_nonblocking(true).unwrap();
        let mut child = tokio::net::UnixStream::from_std(child).unwrap();
        let mut rest = Vec::new();
        let n = tokio::time::timeout(Duration::from_secs(5), child.read_to_end(&mut rest)).await;
        assert_eq!(n.expect("end-of-file in time").unwrap(), 0, "nothing was sent");
        child.write_all(b"{\"type\":\"stopping\"}\n").await.unwrap();
        assert_eq!(next_beat(&mut rx).await, (Origin::Worker(4), vec![Heartbeat::Stopping]));
    }
}
