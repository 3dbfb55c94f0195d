//! The notify socket: one Unix datagram socket for every worker's systemd notify messages
//! (`sd_notify(3)`: `READY=1`, `WATCHDOG=1`, `STATUS=...`), named to workers by
//! `NOTIFY_SOCKET`.
//!
//! As systemd does, the socket has `SO_PASSCRED` set, so the kernel attaches the sender's pid
//! to every datagram; the supervisor maps that pid to a worker (see [`owner`](super::owner)).
//! The socket is in the abstract namespace (`@cluster/<pid>/<random>/notify`): nothing to
//! clean up however the primary ends, and senders are identified by the kernel, not by who can
//! open a path.

use std::hash::{BuildHasher, RandomState};
use std::io::{self, IoSliceMut};
use std::mem::MaybeUninit;
use std::os::fd::AsFd;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::SocketAddr;
use std::time::Duration;

use cluster_health::{MAX_NOTIFY_DATAGRAM, parse_notify};
use rustix::net::{
    RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, ReturnFlags, recvmsg,
    sockopt::set_socket_passcred,
};
use tokio::io::Interest;
use tokio::net::UnixDatagram;
use tokio_util::task::AbortOnDropHandle;

use super::heartbeat::{Inbox, Origin};

/// The bound notify socket and the task that reads it; dropping it closes the socket.
#[derive(Debug)]
pub(super) struct NotifySocket {
    address: String,
    _reader: AbortOnDropHandle<()>,
}

impl NotifySocket {
    /// Binds a fresh socket and starts reading it, posting what workers say to `inbox`. Must
    /// run inside the runtime.
    ///
    /// # Errors
    ///
    /// The OS error when the socket cannot be created, bound or registered.
    pub(super) fn bind(inbox: Inbox) -> io::Result<Self> {
        let (socket, address) = bind_abstract()?;
        set_socket_passcred(&socket, true)?;
        socket.set_nonblocking(true)?;
        let socket = UnixDatagram::from_std(socket)?;
        let reader = AbortOnDropHandle::new(tokio::spawn(receive(socket, inbox)));
        Ok(Self { address, _reader: reader })
    }

    /// The `NOTIFY_SOCKET` value: `@` and the abstract name.
    pub(super) fn address(&self) -> &str {
        &self.address
    }
}

/// Binds an abstract socket under an unguessable name (retrying if one is taken).
fn bind_abstract() -> io::Result<(std::os::unix::net::UnixDatagram, String)> {
    let pid = std::process::id();
    let mut taken = None;
    for _ in 0..8 {
        // RandomState is seeded from the OS; each instance hashes differently.
        let nonce = RandomState::new().hash_one(pid);
        let name = format!("cluster/{pid}/{nonce:016x}/notify");
        let addr = SocketAddr::from_abstract_name(name.as_bytes())?;
        match std::os::unix::net::UnixDatagram::bind_addr(&addr) {
            Ok(socket) => return Ok((socket, format!("@{name}"))),
            Err(e) if e.kind() == io::ErrorKind::AddrInUse => taken = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(taken.unwrap_or_else(|| io::Error::from(io::ErrorKind::AddrInUse)))
}

/// One datagram as received.
#[derive(Debug)]
struct Datagram {
    len: usize,
    truncated: bool,
    pid: Option<u32>,
}

/// Reads datagrams until the socket is dropped. Memory use is fixed: one buffer of the
/// largest datagram accepted, whatever arrives and however fast.
async fn receive(socket: UnixDatagram, inbox: Inbox) {
    let mut buf = vec![0u8; MAX_NOTIFY_DATAGRAM];
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmCredentials(1))];
    loop {
        let got = socket
            .async_io(Interest::READABLE, || receive_one(&socket, &mut buf, &mut space))
            .await;
        let d = match got {
            Ok(d) => d,
            Err(e) => {
                tracing::debug!("notify socket: receive failed: {e}");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let Some(pid) = d.pid else {
            tracing::debug!("notify datagram without sender credentials ignored");
            continue;
        };
        if d.truncated {
            tracing::debug!(pid, "notify datagram over {MAX_NOTIFY_DATAGRAM} bytes ignored");
            continue;
        }
        match parse_notify(&buf[..d.len]) {
            Ok(beats) if beats.is_empty() => {}
            Ok(beats) => {
                if !inbox.send(Origin::Process(pid), beats) {
                    tracing::debug!(pid, "notify datagram dropped: heartbeat queue full");
                }
            }
            Err(e) => tracing::debug!(pid, "notify datagram ignored: {e}"),
        }
    }
}

/// One `recvmsg` with the sender's credentials. Descriptors a sender may attach do not fit in
/// the control buffer: the kernel discards them.
fn receive_one(
    socket: impl AsFd,
    buf: &mut [u8],
    space: &mut [MaybeUninit<u8>],
) -> io::Result<Datagram> {
    let mut control = RecvAncillaryBuffer::new(space);
    let mut iov = [IoSliceMut::new(buf)];
    let msg = recvmsg(socket, &mut iov, &mut control, RecvFlags::CMSG_CLOEXEC)?;
    let pid = control.drain().find_map(|m| match m {
        RecvAncillaryMessage::ScmCredentials(c) => u32::try_from(c.pid.as_raw_nonzero().get()).ok(),
        _ => None,
    });
    Ok(Datagram { len: msg.bytes, truncated: msg.flags.contains(ReturnFlags::TRUNC), pid })
}

#[cfg(test)]
mod tests {
    use std::os::unix::net::UnixDatagram as StdDatagram;

    use cluster_health::Heartbeat;
    use tokio::sync::mpsc;

    use super::*;
    use crate::supervisor::Msg;
    use crate::supervisor::heartbeat::HeartbeatMsg;

    fn target(notify: &NotifySocket) -> SocketAddr {
        let name = notify.address().strip_prefix('@').expect("abstract");
        SocketAddr::from_abstract_name(name.as_bytes()).unwrap()
    }

    #[tokio::test]
    async fn datagrams_arrive_with_the_senders_pid() {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let notify = NotifySocket::bind(Inbox::new(tx)).expect("bind");
        assert!(notify.address().starts_with("@cluster/"), "{}", notify.address());
        let sender = StdDatagram::unbound().unwrap();
        let to = target(&notify);
        sender.send_to_addr(b"garbage\xff", &to).unwrap();
        sender.send_to_addr(&[b'a'; MAX_NOTIFY_DATAGRAM + 1], &to).unwrap();
        sender.send_to_addr(b"READY=1\nSTATUS=warming up", &to).unwrap();
        let msg = tokio::time::timeout(Duration::from_secs(5), rx.recv()).await.unwrap();
        let Some(Msg::Heartbeat(HeartbeatMsg { from, beats, .. })) = msg else {
            panic!("unexpected {msg:?}");
        };
        assert_eq!(from, Origin::Process(std::process::id()));
        assert_eq!(beats, vec![Heartbeat::Ready, Heartbeat::Status("warming up".into())]);
    }

    #[tokio::test]
    async fn a_flood_is_dropped_not_queued() {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let notify = NotifySocket::bind(Inbox::new(tx)).expect("bind");
        let to = target(&notify);
        // A thread floods (blocking sends wait for the reader to drain the socket queue)
        // while the supervisor, this test, reads nothing.
        let flood = std::thread::spawn(move || {
            let sender = StdDatagram::unbound().unwrap();
            sender.set_write_timeout(Some(Duration::from_secs(5))).unwrap();
            (0..5000).filter(|_| sender.send_to_addr(b"WATCHDOG=1", &to).is_ok()).count()
        });
        while !flood.is_finished() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let sent = flood.join().unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
        let mut queued = 0;
        while rx.try_recv().is_ok() {
            queued += 1;
        }
        assert_eq!(sent, 5000, "the reader keeps draining the socket");
        assert!(queued <= 1024, "{queued} of {sent} datagrams queued");
        assert!(queued >= 1000, "only {queued} of {sent} datagrams queued");
    }
}
