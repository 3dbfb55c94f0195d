//! Forwarding a worker's stdout and stderr to the cluster's own, one prefixed line at a time.

use std::io::Write;

use tokio::io::{AsyncRead, AsyncReadExt};

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
            emit(stream, &prefix, &pending[start..start + pos]);
            start += pos + 1;
        }
        pending.drain(..start);
        while pending.len() >= MAX_LINE {
            emit(stream, &prefix, &pending[..MAX_LINE]);
            pending.drain(..MAX_LINE);
        }
    }
    if !pending.is_empty() {
        emit(stream, &prefix, &pending);
    }
}

fn emit(stream: Stream, prefix: &str, line: &[u8]) {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let mut out = Vec::with_capacity(prefix.len() + line.len() + 1);
    out.extend_from_slice(prefix.as_bytes());
    out.extend_from_slice(line);
    out.push(b'\n');
    // One write per line under the stream's lock, so lines of different workers never mix.
    // A closed stream (the terminal went away) is not a reason to stop draining the pipe.
    let _ = match stream {
        Stream::Stdout => std::io::stdout().lock().write_all(&out),
        Stream::Stderr => std::io::stderr().lock().write_all(&out),
    };
}
