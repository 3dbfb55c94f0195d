//! Readiness in shared-socket mode: is the worker accepting on the shared front socket?
//!
//! A probe through the front port reaches whichever worker the kernel picks, so it cannot
//! tell whether *this* worker is ready. Two signals can: the worker says so (`READY=1` on the
//! notify socket, `{"type":"ready"}` on its IPC channel), or it is seen waiting for
//! connections on the socket. Event loops (Node's libuv, tokio, Python's asyncio, Go's
//! netpoller) register the listening socket in an epoll instance once they listen, and Linux
//! lists every descriptor registered in an epoll instance in `/proc/<pid>/fdinfo/<epoll fd>`
//! as `tfd: <fd> ... ino:<inode in hex>`. A worker is accepting when the inode of the shared
//! socket appears there, whatever descriptor number it holds the socket at.

use std::path::Path;
use std::time::Duration;

use tokio::time::sleep;

/// Shared-socket mode as the supervisor runs it: the socket every worker gets, and its inode.
#[derive(Debug, Clone)]
pub(crate) struct SharedSocket {
    /// Passed to every worker as fd 3.
    pub(crate) listener: crate::spawn::SharedListener,
    /// Its inode, to recognise it in the workers' epoll instances.
    pub(crate) inode: u64,
}

impl SharedSocket {
    /// The mode for `listener`; `None` when its inode cannot be read (then readiness falls
    /// back to the worker's own word, and the start timeout).
    pub(crate) fn new(listener: crate::spawn::SharedListener) -> Self {
        let inode = listener.inode().unwrap_or(0);
        Self { listener, inode }
    }

    /// What tells whether worker `pid` accepts on the socket.
    pub(crate) fn accepting(&self, pid: u32) -> Accepting {
        Accepting { pid, inode: self.inode }
    }
}

/// What identifies the shared socket in a worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Accepting {
    /// The worker's pid (the process that received `LISTEN_PID`).
    pub(crate) pid: u32,
    /// The inode of the shared front socket.
    pub(crate) inode: u64,
}

/// How long a worker is given before it counts as ready where `/proc` cannot tell (not
/// Linux): the socket queues connections meanwhile, so none is refused.
const WITHOUT_PROC: Duration = Duration::from_secs(1);

impl Accepting {
    /// Resolves once the worker has registered the shared socket in an epoll instance. Runs
    /// forever for a worker that never does: callers race it with the worker's own
    /// `READY=1` and bound it with the start timeout.
    pub(crate) async fn wait(self) {
        if !Path::new("/proc/self/fdinfo").is_dir() {
            sleep(WITHOUT_PROC).await;
            return;
        }
        let mut pause = Duration::from_millis(10);
        loop {
            let this = self;
            let found = tokio::task::spawn_blocking(move || this.now()).await.unwrap_or(false);
            if found {
                return;
            }
            sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(200));
        }
    }

    /// Whether the worker has the socket registered in one of its epoll instances now.
    pub(crate) fn now(self) -> bool {
        let dir = format!("/proc/{}/fdinfo", self.pid);
        let Ok(entries) = std::fs::read_dir(dir) else { return false };
        entries.flatten().any(|entry| {
            std::fs::read_to_string(entry.path()).is_ok_and(|info| watches(&info, self.inode))
        })
    }
}

/// Whether the fdinfo text of an epoll descriptor lists a target with inode `inode`.
fn watches(fdinfo: &str, inode: u64) -> bool {
    fdinfo.lines().filter(|line| line.starts_with("tfd:")).any(|line| {
        line.split_whitespace()
            .find_map(|field| field.strip_prefix("ino:"))
            .and_then(|hex| u64::from_str_radix(hex, 16).ok())
            == Some(inode)
    })
}

#[cfg(test)]
mod tests {
    use std::os::fd::AsFd;

    use super::*;

    #[test]
    fn reads_the_inode_of_each_epoll_target() {
        let info = "pos:\t0\nflags:\t02\nmnt_id:\t15\nino:\t1057\n\
                    tfd:        5 events:       19 data:                5  pos:0 ino:61af sdev:8\n\
                    tfd:        3 events:       19 data:                3  pos:0 ino:2a sdev:8\n";
        assert!(watches(info, 0x2a));
        assert!(watches(info, 0x61af));
        assert!(!watches(info, 0x1057), "the epoll descriptor's own inode is not a target");
        assert!(!watches("pos:\t0\nflags:\t02\n", 0x2a));
    }

    #[tokio::test]
    async fn sees_a_socket_registered_in_our_own_epoll() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let inode = rustix::fs::fstat(listener.as_fd()).unwrap().st_ino;
        let me = Accepting { pid: std::process::id(), inode };
        assert!(!me.now());
        listener.set_nonblocking(true).unwrap();
        // tokio registers the socket in its epoll instance.
        let _registered = tokio::net::TcpListener::from_std(listener).unwrap();
        assert!(me.now());
        tokio::time::timeout(Duration::from_secs(5), me.wait()).await.unwrap();
    }
}
