//! Parsing of what workers say about themselves: systemd notify datagrams and Node IPC lines.

use serde_json::Value;

/// Longest notify datagram accepted, in bytes (systemd reads at most a page).
///
/// # Examples
///
/// ```
/// use cluster_health::{MAX_NOTIFY_DATAGRAM, HeartbeatError, parse_ipc_line, parse_notify};
///
/// let long = vec![b'x'; MAX_NOTIFY_DATAGRAM + 1];
/// let err = if "MAX_NOTIFY_DATAGRAM" == "MAX_IPC_LINE" { parse_ipc_line(&long).unwrap_err() } else { parse_notify(&long).unwrap_err() };
/// assert_eq!(err, HeartbeatError::TooLong { len: MAX_NOTIFY_DATAGRAM + 1, max: MAX_NOTIFY_DATAGRAM });
/// ```
pub const MAX_NOTIFY_DATAGRAM: usize = 4096;

/// Longest IPC line accepted, in bytes, without its newline. A reader must stop buffering at
/// this length too, or a worker that never sends `\n` grows the supervisor's memory.
///
/// # Examples
///
/// ```
/// use cluster_health::{MAX_IPC_LINE, HeartbeatError, parse_ipc_line, parse_notify};
///
/// let long = vec![b'x'; MAX_IPC_LINE + 1];
/// let err = if "MAX_IPC_LINE" == "MAX_IPC_LINE" { parse_ipc_line(&long).unwrap_err() } else { parse_notify(&long).unwrap_err() };
/// assert_eq!(err, HeartbeatError::TooLong { len: MAX_IPC_LINE + 1, max: MAX_IPC_LINE });
/// ```
pub const MAX_IPC_LINE: usize = 64 * 1024;

/// One thing a worker reported about itself.
///
/// Both channels are optional: a worker that speaks neither is judged by its probe alone. A
/// heartbeat lets a worker say it is ready (instead of the supervisor guessing, PM2's
/// `listen_timeout` forces workers online, pm2#1875) and that it is alive (a hung event loop
/// stops sending them, gunicorn#3136's worker hang, without killing on a slow request).
///
/// # Examples
///
/// ```
/// use cluster_health::{Heartbeat, parse_notify};
///
/// let beats = parse_notify(b"READY=1\nSTATUS=warming caches\nWATCHDOG=1").unwrap();
/// assert_eq!(beats, [Heartbeat::Ready, Heartbeat::Status("warming caches".into()), Heartbeat::Alive]);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Heartbeat {
    /// It is ready for traffic: `READY=1`, `{"type":"ready"}` or PM2's `process.send('ready')`.
    Ready,
    /// It is alive: `WATCHDOG=1` or `{"type":"heartbeat"}`.
    Alive,
    /// It found itself broken and asks to be treated as unresponsive: `WATCHDOG=trigger`.
    WatchdogTrigger,
    /// It is shutting down on its own: `STOPPING=1` or `{"type":"stopping"}`.
    Stopping,
    /// A free-form status line for the dashboard: `STATUS=...` or
    /// `{"type":"status","status":"..."}`.
    Status(String),
    /// Another message from the application (any other `process.send` value), with its `type`
    /// field if it has one. It still proves the worker's event loop runs.
    Message {
        /// The `type` field, if the message is an object that has a string one.
        kind: Option<String>,
    },
}

/// A datagram or line that cannot be parsed.
///
/// # Examples
///
/// ```
/// use cluster_health::{HeartbeatError, parse_ipc_line, parse_notify};
///
/// assert_eq!(parse_notify(&[0xff, 0xfe]), Err(HeartbeatError::NotUtf8));
/// assert!(matches!(parse_ipc_line(b"not json"), Err(HeartbeatError::InvalidJson(_))));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HeartbeatError {
    /// It is longer than the limit.
    #[error("message of {len} bytes is longer than the {max} bytes allowed")]
    TooLong {
        /// Its length in bytes.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// It is not UTF-8.
    #[error("message is not UTF-8")]
    NotUtf8,
    /// The IPC line is not JSON.
    #[error("IPC line is not JSON: {0}")]
    InvalidJson(String),
}

/// Parses one systemd notify datagram (`sd_notify(3)`): newline-separated `KEY=VALUE`
/// assignments, in order. Unknown keys and lines without `=` are skipped, as systemd does.
///
/// # Errors
///
/// [`HeartbeatError::TooLong`] over [`MAX_NOTIFY_DATAGRAM`]; [`HeartbeatError::NotUtf8`].
///
/// # Examples
///
/// ```
/// use cluster_health::{Heartbeat, parse_notify};
///
/// // Unknown keys are skipped, as systemd does.
/// assert_eq!(parse_notify(b"MAINPID=42\nSTOPPING=1").unwrap(), [Heartbeat::Stopping]);
/// assert_eq!(parse_notify(b"WATCHDOG=trigger").unwrap(), [Heartbeat::WatchdogTrigger]);
/// ```
pub fn parse_notify(datagram: &[u8]) -> Result<Vec<Heartbeat>, HeartbeatError> {
    if datagram.len() > MAX_NOTIFY_DATAGRAM {
        return Err(HeartbeatError::TooLong { len: datagram.len(), max: MAX_NOTIFY_DATAGRAM });
    }
    let text = std::str::from_utf8(datagram).map_err(|_| HeartbeatError::NotUtf8)?;
    let parsed = text.split('\n').filter_map(|line| {
        let (key, value) = line.split_once('=')?;
        match (key, value) {
            ("READY", "1") => Some(Heartbeat::Ready),
            ("WATCHDOG", "1") => Some(Heartbeat::Alive),
            ("WATCHDOG", "trigger") => Some(Heartbeat::WatchdogTrigger),
            ("STOPPING", "1") => Some(Heartbeat::Stopping),
            ("STATUS", status) => Some(Heartbeat::Status(status.to_owned())),
            _ => None,
        }
    });
    Ok(parsed.collect())
}

/// Parses one line of the IPC channel (newline-delimited JSON, as Node's `process.send` writes
/// it on `NODE_CHANNEL_FD`), without its newline. Returns `Ok(None)` for a blank line and for
/// Node's internal messages (objects whose `cmd` starts with `NODE_`).
///
/// # Errors
///
/// [`HeartbeatError::TooLong`] over [`MAX_IPC_LINE`]; [`HeartbeatError::InvalidJson`].
///
/// # Examples
///
/// ```
/// use cluster_health::{parse_ipc_line, Heartbeat};
///
/// assert_eq!(parse_ipc_line(br#"{"v":1,"type":"heartbeat","rss":1024}"#), Ok(Some(Heartbeat::Alive)));
/// assert_eq!(parse_ipc_line(br#"{"cmd":"NODE_HANDLE_ACK"}"#), Ok(None));
/// ```
pub fn parse_ipc_line(line: &[u8]) -> Result<Option<Heartbeat>, HeartbeatError> {
    if line.len() > MAX_IPC_LINE {
        return Err(HeartbeatError::TooLong { len: line.len(), max: MAX_IPC_LINE });
    }
    if line.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    let value: Value =
        serde_json::from_slice(line).map_err(|e| HeartbeatError::InvalidJson(e.to_string()))?;
    let kind = match &value {
        Value::String(s) => Some(s.as_str()),
        Value::Object(map) => {
            if map.get("cmd").and_then(Value::as_str).is_some_and(|c| c.starts_with("NODE_")) {
                return Ok(None);
            }
            map.get("type").and_then(Value::as_str)
        }
        _ => None,
    };
    Ok(Some(match kind {
        Some("ready") => Heartbeat::Ready,
        Some("heartbeat") => Heartbeat::Alive,
        Some("stopping") => Heartbeat::Stopping,
        Some("status") => {
            let status = value.get("status").and_then(Value::as_str).unwrap_or_default();
            Heartbeat::Status(status.to_owned())
        }
        _ => Heartbeat::Message { kind: kind.map(str::to_owned) },
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notify_datagrams() {
        assert_eq!(parse_notify(b"READY=1"), Ok(vec![Heartbeat::Ready]));
        assert_eq!(
            parse_notify(b"READY=1\nSTATUS=serving 3 = three\nMAINPID=42\nWATCHDOG=1\n"),
            Ok(vec![
                Heartbeat::Ready,
                Heartbeat::Status("serving 3 = three".into()),
                Heartbeat::Alive
            ])
        );
        assert_eq!(
            parse_notify(b"WATCHDOG=trigger\nSTOPPING=1"),
            Ok(vec![Heartbeat::WatchdogTrigger, Heartbeat::Stopping])
        );
        assert_eq!(parse_notify(b"READY=0\ngarbage\n\n"), Ok(vec![]));
        assert_eq!(parse_notify(b"STATUS=\xff"), Err(HeartbeatError::NotUtf8));
        let long = vec![b'a'; MAX_NOTIFY_DATAGRAM + 1];
        assert_eq!(parse_notify(&long), Err(HeartbeatError::TooLong { len: 4097, max: 4096 }));
    }

    #[test]
    fn ipc_lines() {
        assert_eq!(parse_ipc_line(br#"{"type":"ready"}"#), Ok(Some(Heartbeat::Ready)));
        assert_eq!(
            parse_ipc_line(br#""ready""#),
            Ok(Some(Heartbeat::Ready)),
            "PM2's process.send('ready')"
        );
        assert_eq!(parse_ipc_line(b"{\"type\":\"heartbeat\"}\r"), Ok(Some(Heartbeat::Alive)));
        assert_eq!(parse_ipc_line(br#"{"type":"stopping"}"#), Ok(Some(Heartbeat::Stopping)));
        assert_eq!(
            parse_ipc_line(br#"{"type":"status","status":"warming cache"}"#),
            Ok(Some(Heartbeat::Status("warming cache".into())))
        );
        assert_eq!(
            parse_ipc_line(br#"{"type":"metrics","n":3}"#),
            Ok(Some(Heartbeat::Message { kind: Some("metrics".into()) }))
        );
        assert_eq!(parse_ipc_line(b"[1,2]"), Ok(Some(Heartbeat::Message { kind: None })));
        assert_eq!(parse_ipc_line(br#"{"cmd":"NODE_CLUSTER","act":"online"}"#), Ok(None));
        assert_eq!(parse_ipc_line(b"  "), Ok(None));
        assert!(matches!(parse_ipc_line(b"{not json"), Err(HeartbeatError::InvalidJson(_))));
        let long = vec![b' '; MAX_IPC_LINE + 1];
        assert!(matches!(parse_ipc_line(&long), Err(HeartbeatError::TooLong { .. })));
    }
}
