//! The socket-activation protocol (`sd_listen_fds(3)`): a listening socket inherited at fd 3.
//!
//! `cluster` in shared-socket mode, systemd and PM2-style managers pass the front socket this
//! way: `LISTEN_FDS` says how many descriptors start at fd 3, and `LISTEN_PID` must be this
//! process's pid (so that a child that inherited the variables does not take them as its own).
#![allow(unsafe_code)]

use std::os::fd::{FromRawFd, OwnedFd};

/// The first inherited descriptor (`SD_LISTEN_FDS_START`).
const FIRST_FD: i32 = 3;

/// The inherited listening socket, when `LISTEN_FDS` is at least 1 and `LISTEN_PID` is our pid;
/// `None` otherwise (the caller binds `HOST:PORT`). Call once: the descriptor is taken.
pub(crate) fn inherited_listener() -> Option<std::net::TcpListener> {
    let pid: u32 = crate::var("LISTEN_PID")?.parse().ok()?;
    let count: u32 = crate::var("LISTEN_FDS")?.parse().ok()?;
    if pid != std::process::id() || count == 0 {
        return None;
    }
    // SAFETY: by the protocol, fd 3 is a descriptor our parent opened for us and nothing in
    // this process uses it; it is taken here once (`main` calls this once, before anything
    // else opens descriptors) and owned from now on.
    let fd = unsafe { OwnedFd::from_raw_fd(FIRST_FD) };
    Some(std::net::TcpListener::from(fd))
}
