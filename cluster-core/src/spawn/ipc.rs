//! The Node IPC channel: a Unix stream socket pair whose child end becomes the worker's fd 3.
//!
//! Node treats the descriptor named by `NODE_CHANNEL_FD` as its IPC channel, so a plain Node
//! worker can call `process.send({...})` with no library; each message arrives as one line of
//! JSON. Any other program can write such lines to fd 3.

use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::path::Path;

use rustix::net::{AddressFamily, SocketFlags, SocketType, socketpair};

/// The descriptor number the worker finds its end of the channel at.
pub(crate) const CHILD_FD: i32 = 3;

/// Where the channel goes instead when fd 3 is the shared front socket (shared-socket mode:
/// the socket-activation protocol starts its descriptors at 3).
pub(crate) const CHILD_FD_BESIDE_LISTENER: i32 = 4;

/// The variables that tell Node where its channel is (`fd`) and how it is framed (JSON lines,
/// Node's default, spelled out so that an inherited `advanced` cannot change it).
pub(crate) fn env(fd: i32) -> [(&'static str, String); 2] {
    [("NODE_CHANNEL_FD", fd.to_string()), ("NODE_CHANNEL_SERIALIZATION_MODE", "json".into())]
}

/// Whether a worker running `program` gets a channel: `setting` when the configuration says
/// so (`health.nodeIpc`), otherwise only when the program is `node` or `nodejs`.
///
/// The default is off for anything else: a channel handed to `npm` (itself a Node program)
/// or to a shell would be taken by a process that is not the application.
pub(crate) fn wanted(program: &Path, setting: Option<bool>) -> bool {
    setting.unwrap_or_else(|| {
        matches!(program.file_name().and_then(|n| n.to_str()), Some("node" | "nodejs"))
    })
}

/// Both ends of a new channel, close-on-exec.
#[derive(Debug)]
pub(crate) struct Channel {
    /// The primary's end.
    pub(crate) parent: UnixStream,
    /// The end that becomes the worker's fd 3 (see `sys::pass_as_fd`); never below 3, so the
    /// standard streams set up in the child cannot overwrite it before it is moved.
    pub(crate) child: OwnedFd,
}

impl Channel {
    /// Opens a socket pair.
    ///
    /// # Errors
    ///
    /// The OS error (out of descriptors).
    pub(crate) fn open() -> io::Result<Self> {
        let (parent, child) =
            socketpair(AddressFamily::UNIX, SocketType::STREAM, SocketFlags::CLOEXEC, None)?;
        let child = if std::os::fd::AsRawFd::as_raw_fd(&child) < CHILD_FD {
            rustix::io::fcntl_dupfd_cloexec(&child, CHILD_FD)?
        } else {
            child
        };
        Ok(Self { parent: UnixStream::from(parent), child })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_node_by_default() {
        assert!(wanted(Path::new("node"), None));
        assert!(wanted(Path::new("/usr/bin/nodejs"), None));
        assert!(!wanted(Path::new("/usr/bin/npm"), None));
        assert!(!wanted(Path::new("./target/release/hello"), None));
        assert!(wanted(Path::new("python3"), Some(true)));
        assert!(!wanted(Path::new("node"), Some(false)));
    }

    #[test]
    fn the_child_end_is_above_the_standard_streams() {
        let channel = Channel::open().expect("socketpair");
        assert!(std::os::fd::AsRawFd::as_raw_fd(&channel.child) >= CHILD_FD);
    }
}
