//! Reading a worker's IPC channel: newline-delimited JSON, as Node's `process.send` writes it
//! on `NODE_CHANNEL_FD`.
//!
//! The primary only reads: it never writes a byte, so nothing can reach a Node worker that its
//! channel parser would choke on.

use std::io;

use cluster_health::{MAX_IPC_LINE, parse_ipc_line};
use futures_util::StreamExt;
use tokio::net::UnixStream;
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio_util::codec::FramedRead;
use tokio_util::task::AbortOnDropHandle;

use super::heartbeat::{Inbox, Origin};
use super::lines::{BoundedLines, Line};

/// The primary's end of one worker's IPC channel, read by a task of its own.
///
/// The task ends when the worker closes its end (it exited) or when this is dropped.
#[derive(Debug)]
pub(super) struct IpcLink {
    /// Dropping it shuts the sending direction down (see [`hang_up`](Self::hang_up)).
    write: Option<OwnedWriteHalf>,
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
        Ok(Self { write: Some(write), _reader: reader })
    }

    /// Shuts down the primary's sending direction (the worker reads end-of-file, which
    /// disconnects a Node channel); reading goes on.
    pub(super) fn hang_up(&mut self) {
        self.write = None;
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
            Msg::Heartbeat(HeartbeatMsg::Beats { from, beats, .. }) => (from, beats),
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

        // After the hang-up the worker reads end-of-file, and can still send.
        link.hang_up();
        child.set_nonblocking(true).unwrap();
        let mut child = tokio::net::UnixStream::from_std(child).unwrap();
        let mut rest = Vec::new();
        let n = tokio::time::timeout(Duration::from_secs(5), child.read_to_end(&mut rest)).await;
        assert_eq!(n.expect("end-of-file in time").unwrap(), 0, "the primary never writes");
        child.write_all(b"{\"type\":\"stopping\"}\n").await.unwrap();
        assert_eq!(next_beat(&mut rx).await, (Origin::Worker(4), vec![Heartbeat::Stopping]));
    }
}
