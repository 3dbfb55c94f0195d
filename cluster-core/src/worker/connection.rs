//! [`AsyncListener`] and [`Connection`]: one accept loop for TCP and Unix sockets.

use std::io;
use std::path::PathBuf;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream, UnixListener, UnixStream};

/// A worker's listening socket registered with tokio, TCP or Unix; made by
/// [`Listener::into_tokio`](super::Listener::into_tokio).
///
/// [`accept`](Self::accept) serves both kinds with one loop; [`as_tcp`](Self::as_tcp) and
/// [`as_unix`](Self::as_unix) give the tokio listener itself. A Unix socket the worker bound
/// (`SOCKET_PATH`) is removed when this is dropped.
///
/// # Examples
///
/// ```no_run
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let listener = cluster_core::worker::listener()?.into_tokio()?;
/// loop {
///     let connection = listener.accept().await?;
///     tokio::spawn(async move {
///         // hand `hyper_util::rt::TokioIo::new(connection)` to hyper
///         drop(connection);
///     });
/// }
/// # }
/// ```
#[derive(Debug)]
pub struct AsyncListener {
    inner: Inner,
    _file: Option<SocketFile>,
}

#[derive(Debug)]
enum Inner {
    Tcp(TcpListener),
    Unix(UnixListener),
}

impl AsyncListener {
    pub(super) fn tcp(listener: TcpListener) -> Self {
        Self { inner: Inner::Tcp(listener), _file: None }
    }

    pub(super) fn unix(listener: UnixListener, file: Option<SocketFile>) -> Self {
        Self { inner: Inner::Unix(listener), _file: file }
    }

    /// Accepts the next connection. TCP connections get `TCP_NODELAY` (an HTTP server
    /// writes whole responses; Nagle's delay would only add latency).
    ///
    /// # Errors
    ///
    /// The OS error of `accept` (`EMFILE` when out of descriptors: wait a little and go on).
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// use tokio::io::AsyncWriteExt;
    ///
    /// let listener = cluster_core::worker::listener()?.into_tokio()?;
    /// let mut connection = listener.accept().await?;
    /// connection.write_all(b"HTTP/1.1 204 No Content\r\n\r\n").await?;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn accept(&self) -> io::Result<Connection> {
        match &self.inner {
            Inner::Tcp(l) => {
                let (stream, _) = l.accept().await?;
                stream.set_nodelay(true)?;
                Ok(Connection::Tcp(stream))
            }
            Inner::Unix(l) => Ok(Connection::Unix(l.accept().await?.0)),
        }
    }

    /// The TCP listener, when the socket is TCP (`HOST`:`PORT`, or an inherited TCP socket).
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// let listener = cluster_core::worker::listener()?.into_tokio()?;
    /// if let Some(tcp) = listener.as_tcp() {
    ///     println!("listening on {}", tcp.local_addr()?); // the port, when PORT=0
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub fn as_tcp(&self) -> Option<&TcpListener> {
        match &self.inner {
            Inner::Tcp(l) => Some(l),
            Inner::Unix(_) => None,
        }
    }

    /// The Unix listener, when the socket is a Unix socket (`SOCKET_PATH`, or an inherited
    /// one).
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// let listener = cluster_core::worker::listener()?.into_tokio()?;
    /// if let Some(unix) = listener.as_unix() {
    ///     println!("listening on {:?}", unix.local_addr()?.as_pathname());
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub fn as_unix(&self) -> Option<&UnixListener> {
        match &self.inner {
            Inner::Unix(l) => Some(l),
            Inner::Tcp(_) => None,
        }
    }
}

/// One accepted connection, TCP or Unix: an `AsyncRead + AsyncWrite` stream to hand to
/// hyper (through `hyper_util::rt::TokioIo`) or any tokio protocol code.
///
/// # Examples
///
/// ```no_run
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// use cluster_core::worker::Connection;
///
/// let listener = cluster_core::worker::listener()?.into_tokio()?;
/// match listener.accept().await? {
///     Connection::Tcp(tcp) => println!("from {}", tcp.peer_addr()?),
///     Connection::Unix(_) => println!("from the primary's proxy, over a Unix socket"),
/// }
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub enum Connection {
    /// A TCP connection.
    Tcp(TcpStream),
    /// A Unix socket connection.
    Unix(UnixStream),
}

impl AsyncRead for Connection {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Connection::Tcp(s) => Pin::new(s).poll_read(cx, buf),
            Connection::Unix(s) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Connection {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Connection::Tcp(s) => Pin::new(s).poll_write(cx, buf),
            Connection::Unix(s) => Pin::new(s).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Connection::Tcp(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Connection::Unix(s) => Pin::new(s).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Connection::Tcp(s) => s.is_write_vectored(),
            Connection::Unix(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Connection::Tcp(s) => Pin::new(s).poll_flush(cx),
            Connection::Unix(s) => Pin::new(s).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Connection::Tcp(s) => Pin::new(s).poll_shutdown(cx),
            Connection::Unix(s) => Pin::new(s).poll_shutdown(cx),
        }
    }
}

/// A Unix socket file this worker bound, removed when dropped (a stale file would make the
/// next bind at the same path fail).
#[derive(Debug)]
pub(super) struct SocketFile(PathBuf);

impl SocketFile {
    pub(super) fn new(path: PathBuf) -> Self {
        Self(path)
    }
}

impl Drop for SocketFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}
