//! [`Endpoint`]: where one worker listens, over TCP on loopback or on a Unix socket.
//!
//! The supervisor gives each worker one endpoint (`upstream` in the configuration decides
//! which kind); the spawner tells the worker (`HOST`/`PORT`, or `SOCKET_PATH`), the
//! readiness and liveness probes, the heartbeat's readiness check and the proxy's pool all
//! connect to that same value, and the status, the events and the log show it.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::task::{Context, Poll};

use bytes::BytesMut;
use tokio::io::Interest;

use serde::{Serialize, Serializer};

/// A worker's private endpoint.
///
/// Shown (and serialized) as `127.0.0.1:40123` for TCP and as `unix:/path/to/w3.sock` for a
/// Unix socket, the notation nginx uses for an upstream server.
///
/// # Examples
///
/// ```
/// use std::net::SocketAddr;
/// use cluster_core::Endpoint;
///
/// let tcp = Endpoint::Tcp("127.0.0.1:40123".parse::<SocketAddr>().unwrap());
/// assert_eq!(tcp.tcp().map(|a| a.port()), Some(40123));
/// assert_eq!(tcp.to_string(), "127.0.0.1:40123");
/// let unix = Endpoint::Unix("/run/cluster/w3.sock".into());
/// assert_eq!(unix.unix().map(|p| p.ends_with("w3.sock")), Some(true));
/// assert_eq!(unix.to_string(), "unix:/run/cluster/w3.sock");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Endpoint {
    /// A TCP port on loopback (`upstream: "tcp"`; the worker gets `HOST` and `PORT`).
    Tcp(SocketAddr),
    /// A Unix socket path (`upstream: "unix"`; the worker gets `SOCKET_PATH`).
    Unix(PathBuf),
}

impl Endpoint {
    /// The TCP address, for a TCP endpoint.
    pub fn tcp(&self) -> Option<SocketAddr> {
        match self {
            Endpoint::Tcp(addr) => Some(*addr),
            Endpoint::Unix(_) => None,
        }
    }

    /// The socket path, for a Unix endpoint.
    pub fn unix(&self) -> Option<&Path> {
        match self {
            Endpoint::Tcp(_) => None,
            Endpoint::Unix(path) => Some(path),
        }
    }

    /// The `Host` header for a request the cluster itself sends to the worker (a probe): the
    /// address for TCP, `localhost` for a Unix socket (which has no host name).
    pub(crate) fn host_header(&self) -> String {
        match self {
            Endpoint::Tcp(addr) => addr.to_string(),
            Endpoint::Unix(_) => "localhost".to_owned(),
        }
    }

    /// Opens a connection to the endpoint (`TCP_NODELAY` set for TCP).
    ///
    /// # Errors
    ///
    /// The OS error of the connect.
    pub(crate) async fn connect(&self) -> io::Result<Stream> {
        match self {
            Endpoint::Tcp(addr) => {
                let tcp = tokio::net::TcpStream::connect(addr).await?;
                tcp.set_nodelay(true)?;
                Ok(Stream::Tcp(tcp))
            }
            Endpoint::Unix(path) => Ok(Stream::Unix(tokio::net::UnixStream::connect(path).await?)),
        }
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Endpoint::Tcp(addr) => addr.fmt(f),
            Endpoint::Unix(path) => write!(f, "unix:{}", path.display()),
        }
    }
}

impl From<SocketAddr> for Endpoint {
    fn from(addr: SocketAddr) -> Self {
        Endpoint::Tcp(addr)
    }
}

impl Serialize for Endpoint {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// An open connection to an [`Endpoint`]; each caller hands the variant's stream to hyper,
/// or uses it through `&self` (the proxy's own HTTP/1.1 client, which shares it with the
/// pool that may have to shut it down).
#[derive(Debug)]
pub(crate) enum Stream {
    /// Over TCP.
    Tcp(tokio::net::TcpStream),
    /// Over a Unix socket.
    Unix(tokio::net::UnixStream),
}

impl Stream {
    /// Polls until the socket may be read (data, end of stream or an error).
    pub(crate) fn poll_read_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self {
            Stream::Tcp(s) => s.poll_read_ready(cx),
            Stream::Unix(s) => s.poll_read_ready(cx),
        }
    }

    /// Reads what the socket has into `buf`'s spare capacity without waiting
    /// (`WouldBlock` when it has nothing, which clears the cached readiness).
    pub(crate) fn try_read_buf(&self, buf: &mut BytesMut) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.try_read_buf(buf),
            Stream::Unix(s) => s.try_read_buf(buf),
        }
    }

    /// [`try_read_buf`](Self::try_read_buf), and when the read did not fill the buffer (the
    /// socket was drained) the cached read readiness is cleared too, without a second
    /// system call, as tokio's own `poll_read` does: the next
    /// [`poll_read_ready`](Self::poll_read_ready) waits for the next event. The readiness
    /// cleared is the one seen before the read, so an event that arrives meanwhile (from an
    /// I/O driver on another thread) is kept.
    pub(crate) fn try_read_drain(&self, buf: &mut BytesMut) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => {
                read_drain(buf, |buf| s.try_read_buf(buf), |f| s.try_io(Interest::READABLE, f))
            }
            Stream::Unix(s) => {
                read_drain(buf, |buf| s.try_read_buf(buf), |f| s.try_io(Interest::READABLE, f))
            }
        }
    }

    /// Polls until the socket may be written.
    pub(crate) fn poll_write_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self {
            Stream::Tcp(s) => s.poll_write_ready(cx),
            Stream::Unix(s) => s.poll_write_ready(cx),
        }
    }

    /// Writes what the socket takes of `buf` without waiting.
    pub(crate) fn try_write(&self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.try_write(buf),
            Stream::Unix(s) => s.try_write(buf),
        }
    }

    /// Shuts both directions down at once: a task waiting to read it wakes to the end of
    /// the stream, whoever holds it.
    pub(crate) fn shutdown_now(&self) {
        let _ = match self {
            Stream::Tcp(s) => socket2::SockRef::from(s).shutdown(std::net::Shutdown::Both),
            Stream::Unix(s) => socket2::SockRef::from(s).shutdown(std::net::Shutdown::Both),
        };
    }
}

/// [`Stream::try_read_drain`] for any tokio socket, given its `try_read_buf` and its
/// `try_io` for reads: the read runs inside `try_io`, which clears the readiness it saw
/// when the closure says `WouldBlock`; a short read says so, and its bytes are kept.
pub(crate) fn read_drain(
    buf: &mut BytesMut,
    mut try_read_buf: impl FnMut(&mut BytesMut) -> io::Result<usize>,
    try_io: impl FnOnce(&mut dyn FnMut() -> io::Result<usize>) -> io::Result<usize>,
) -> io::Result<usize> {
    let spare = buf.capacity() - buf.len();
    let mut got = 0;
    let mut read = || {
        let n = try_read_buf(buf)?;
        got = n;
        if n > 0 && n < spare { Err(io::ErrorKind::WouldBlock.into()) } else { Ok(n) }
    };
    match try_io(&mut read) {
        Err(e) if e.kind() == io::ErrorKind::WouldBlock && got > 0 => Ok(got),
        res => res,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shown_as_nginx_writes_upstream_servers() {
        let tcp = Endpoint::from(SocketAddr::from(([127, 0, 0, 1], 4000)));
        assert_eq!(tcp.to_string(), "127.0.0.1:4000");
        assert_eq!(serde_json::to_value(&tcp).unwrap(), "127.0.0.1:4000");
        let unix = Endpoint::Unix("/run/user/1000/cluster-7/w3.sock".into());
        assert_eq!(unix.to_string(), "unix:/run/user/1000/cluster-7/w3.sock");
        assert_eq!(serde_json::to_value(&unix).unwrap(), "unix:/run/user/1000/cluster-7/w3.sock");
        assert_eq!(unix.host_header(), "localhost");
        assert_eq!(tcp.host_header(), "127.0.0.1:4000");
        assert_eq!(unix.tcp(), None);
        assert_eq!(tcp.unix(), None);
    }

    #[tokio::test]
    async fn connects_over_a_unix_socket() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w1.sock");
        let listener = tokio::net::UnixListener::bind(&path).unwrap();
        let endpoint = Endpoint::Unix(path);
        let (stream, accepted) = tokio::join!(endpoint.connect(), listener.accept());
        assert!(matches!(stream.unwrap(), Stream::Unix(_)));
        accepted.unwrap();
    }
}
