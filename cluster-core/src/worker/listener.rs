//! [`listener`]: the socket a worker serves on, found from its environment.

use std::fmt;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use rustix::net::{AddressFamily, SocketType, sockopt};
use socket2::{Domain, SockAddr, Socket, Type};

use super::connection::{AsyncListener, SocketFile};
use super::env::{Lookup, process_var};

/// Pending connections the kernel queues on a socket the worker binds itself (tokio's
/// default).
const BACKLOG: i32 = 1024;

/// The interface a worker binds when `PORT` is set without `HOST`.
const DEFAULT_HOST: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

/// The socket a worker should serve on, as its environment says, bound (or taken over) and
/// ready for [`into_tokio`](Listener::into_tokio). See [`listener`].
///
/// # Examples
///
/// ```no_run
/// # fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let listener = cluster_core::worker::listener()?;
/// eprintln!("serving on {}", listener.source()); // e.g. `HOST:PORT 127.0.0.1:40123`
/// let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
/// runtime.block_on(async move {
///     let listener = listener.into_tokio()?;
///     let _connection = listener.accept().await?;
///     Ok::<_, std::io::Error>(())
/// })?;
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct Listener {
    socket: StdSocket,
    source: ListenSource,
    file: Option<SocketFile>,
}

/// The two kinds of listening socket.
#[derive(Debug)]
enum StdSocket {
    Tcp(std::net::TcpListener),
    Unix(std::os::unix::net::UnixListener),
}

/// Where a worker's socket came from: which variables chose it.
///
/// # Examples
///
/// ```no_run
/// use cluster_core::worker::{self, ListenSource};
///
/// # fn run() -> Result<(), worker::ListenerError> {
/// match worker::listener()?.source() {
///     ListenSource::Inherited => println!("shared-socket mode: the kernel balances"),
///     ListenSource::UnixSocket(path) => println!("behind the proxy, on {}", path.display()),
///     ListenSource::Tcp(addr) => println!("on {addr}"),
///     _ => {}
/// }
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ListenSource {
    /// The socket inherited at fd 3 (`LISTEN_FDS` and `LISTEN_PID`: `cluster`'s shared-socket
    /// mode, or systemd socket activation).
    Inherited,
    /// A Unix socket bound at `SOCKET_PATH` (`upstream: "unix"`).
    UnixSocket(PathBuf),
    /// A TCP socket bound at `HOST`:`PORT` (`HOST` defaults to 127.0.0.1).
    Tcp(SocketAddr),
}

impl fmt::Display for ListenSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ListenSource::Inherited => f.write_str("the socket inherited at fd 3 (LISTEN_FDS)"),
            ListenSource::UnixSocket(path) => write!(f, "SOCKET_PATH={}", path.display()),
            ListenSource::Tcp(addr) => write!(f, "HOST:PORT {addr}"),
        }
    }
}

/// The worker's environment does not give a socket it can serve on. Each variant names the
/// variable at fault.
///
/// # Examples
///
/// ```no_run
/// use cluster_core::worker::{self, ListenerError};
///
/// match worker::listener() {
///     Ok(listener) => { /* serve */ }
///     Err(ListenerError::Unset) => eprintln!("run me under `cluster`, or set PORT"),
///     Err(e) => eprintln!("{e}"), // `PORT="http" is not a port number (0 to 65535)`
/// }
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ListenerError {
    /// `LISTEN_PID` is set but is not a process id.
    #[error("LISTEN_PID={value:?} is not a process id")]
    ListenPid {
        /// The value found.
        value: String,
    },
    /// `LISTEN_PID` names this process but `LISTEN_FDS` is not a number.
    #[error("LISTEN_FDS={value:?} is not a number of descriptors")]
    ListenFds {
        /// The value found.
        value: String,
    },
    /// `LISTEN_FDS` and `LISTEN_PID` pass a socket, but fd 3 is not open, or an earlier call
    /// already took it.
    #[error(
        "LISTEN_FDS={fds} and LISTEN_PID is this process, but fd 3 is not open (or was already \
         taken by an earlier call)"
    )]
    InheritedMissing {
        /// The `LISTEN_FDS` value.
        fds: u32,
    },
    /// The descriptor at fd 3 is not a listening stream socket.
    #[error("fd 3 (LISTEN_FDS) is not a listening TCP or Unix stream socket{}", detail(.0))]
    InheritedNotListening(#[source] Option<io::Error>),
    /// `PORT` is not a port number.
    #[error("PORT={value:?} is not a port number (0 to 65535)")]
    Port {
        /// The value found.
        value: String,
    },
    /// `HOST` is not an IP address.
    #[error("HOST={value:?} is not an IP address (or `localhost`)")]
    Host {
        /// The value found.
        value: String,
    },
    /// None of the variables is set: the program was not started by a cluster.
    #[error(
        "no socket to serve on: set PORT (and HOST, default 127.0.0.1) or SOCKET_PATH, or run \
         under `cluster`, which sets them"
    )]
    Unset,
    /// The Unix socket `SOCKET_PATH` cannot be bound.
    #[error("cannot listen on SOCKET_PATH={}: {source}", path.display())]
    BindUnix {
        /// The path.
        path: PathBuf,
        /// The OS error (`EADDRINUSE`: a file is already there).
        #[source]
        source: io::Error,
    },
    /// `HOST`:`PORT` cannot be bound.
    #[error("cannot listen on {addr} (HOST and PORT): {source}")]
    BindTcp {
        /// The address.
        addr: SocketAddr,
        /// The OS error.
        #[source]
        source: io::Error,
    },
}

fn detail(source: &Option<io::Error>) -> String {
    source.as_ref().map(|e| format!(": {e}")).unwrap_or_default()
}

/// Finds the socket this worker must serve on, from its environment, in the order the
/// cluster's spawners use:
///
/// 1. the socket inherited at fd 3, when `LISTEN_FDS` is at least 1 and `LISTEN_PID` is this
///    process's pid (shared-socket mode, systemd socket activation; TCP or Unix). Only the
///    first call can take it;
/// 2. else a Unix socket bound at `SOCKET_PATH` (`upstream: "unix"`), removed again when the
///    listener is dropped;
/// 3. else a TCP socket bound at `HOST`:`PORT` (`HOST` defaults to 127.0.0.1; `PORT=0` picks a
///    free port).
///
/// The sockets are non-blocking. Turn the result into a tokio listener with
/// [`Listener::into_tokio`].
///
/// # Errors
///
/// A [`ListenerError`] naming the variable that is wrong (`LISTEN_PID`, `LISTEN_FDS`, `PORT`,
/// `HOST`), [`ListenerError::Unset`] when none is set, or the bind error with its address.
///
/// # Examples
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # tokio::runtime::Runtime::new()?.block_on(async {
/// match cluster_core::worker::listener() {
///     Ok(listener) => {
///         println!("serving on {}", listener.source());
///         let listener = listener.into_tokio()?;
///         # drop(listener);
///     }
///     Err(e) => eprintln!("{e}"), // e.g. `PORT="http" is not a port number (0 to 65535)`
/// }
/// # Ok::<_, std::io::Error>(()) })?;
/// # Ok(())
/// # }
/// ```
pub fn listener() -> Result<Listener, ListenerError> {
    match plan(&process_var, std::process::id())? {
        Plan::Inherited(fds) => inherited(fds),
        Plan::Unix(path) => bind_unix(&path),
        Plan::Tcp(addr) => bind_tcp(addr),
    }
}

impl Listener {
    /// Which variables chose the socket.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # fn run() -> Result<(), cluster_core::worker::ListenerError> {
    /// let listener = cluster_core::worker::listener()?;
    /// println!("serving on {}", listener.source());
    /// # Ok(())
    /// # }
    /// ```
    pub fn source(&self) -> &ListenSource {
        &self.source
    }

    /// Registers the socket with the tokio runtime this is called in.
    ///
    /// # Errors
    ///
    /// The OS error of the registration.
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime (with I/O enabled), as tokio's `from_std` does.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// let listener = cluster_core::worker::listener()?.into_tokio()?;
    /// let connection = listener.accept().await?;
    /// # drop(connection);
    /// # Ok(())
    /// # }
    /// ```
    pub fn into_tokio(self) -> io::Result<AsyncListener> {
        match self.socket {
            StdSocket::Tcp(l) => Ok(AsyncListener::tcp(tokio::net::TcpListener::from_std(l)?)),
            StdSocket::Unix(l) => {
                Ok(AsyncListener::unix(tokio::net::UnixListener::from_std(l)?, self.file))
            }
        }
    }
}

/// What the environment asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Plan {
    /// Take fd 3; `LISTEN_FDS` had this value.
    Inherited(u32),
    Unix(PathBuf),
    Tcp(SocketAddr),
}

/// Reads the variables, for the process `pid`.
fn plan(lookup: Lookup<'_>, pid: u32) -> Result<Plan, ListenerError> {
    if let Some(value) = lookup("LISTEN_PID") {
        let owner: u32 =
            value.trim().parse().map_err(|_| ListenerError::ListenPid { value: value.clone() })?;
        if owner == pid {
            // As sd_listen_fds(3): unset counts as no descriptors, garbage is an error.
            let fds = match lookup("LISTEN_FDS") {
                None => 0,
                Some(value) => {
                    value.trim().parse().map_err(|_| ListenerError::ListenFds { value })?
                }
            };
            if fds > 0 {
                return Ok(Plan::Inherited(fds));
            }
        }
    }
    if let Some(path) = lookup("SOCKET_PATH") {
        return Ok(Plan::Unix(PathBuf::from(path)));
    }
    let Some(port) = lookup("PORT") else { return Err(ListenerError::Unset) };
    let port = port.trim().parse::<u16>().map_err(|_| ListenerError::Port { value: port })?;
    let host = match lookup("HOST") {
        None => DEFAULT_HOST,
        Some(host) => parse_host(&host).ok_or(ListenerError::Host { value: host })?,
    };
    Ok(Plan::Tcp(SocketAddr::new(host, port)))
}

/// An IP address, bracketed or not, or `localhost`.
fn parse_host(host: &str) -> Option<IpAddr> {
    let host = host.trim();
    if host.eq_ignore_ascii_case("localhost") {
        return Some(DEFAULT_HOST);
    }
    let bare = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
    bare.parse().ok()
}

/// Takes fd 3 over, TCP or Unix.
fn inherited(fds: u32) -> Result<Listener, ListenerError> {
    let fd: OwnedFd =
        crate::spawn::inherited_listener().ok_or(ListenerError::InheritedMissing { fds })?.into();
    let socket = classify(fd)?;
    Ok(Listener { socket, source: ListenSource::Inherited, file: None })
}

/// The inherited descriptor as the listener it is, non-blocking.
fn classify(fd: OwnedFd) -> Result<StdSocket, ListenerError> {
    let not_listening = |e: rustix::io::Errno| ListenerError::InheritedNotListening(Some(e.into()));
    if sockopt::socket_type(&fd).map_err(not_listening)? != SocketType::STREAM
        || !sockopt::socket_acceptconn(&fd).map_err(not_listening)?
    {
        return Err(ListenerError::InheritedNotListening(None));
    }
    let socket = match sockopt::socket_domain(&fd).map_err(not_listening)? {
        AddressFamily::INET | AddressFamily::INET6 => {
            StdSocket::Tcp(std::net::TcpListener::from(fd))
        }
        AddressFamily::UNIX => StdSocket::Unix(std::os::unix::net::UnixListener::from(fd)),
        _ => return Err(ListenerError::InheritedNotListening(None)),
    };
    let nonblocking = match &socket {
        StdSocket::Tcp(l) => l.set_nonblocking(true),
        StdSocket::Unix(l) => l.set_nonblocking(true),
    };
    nonblocking.map_err(|e| ListenerError::InheritedNotListening(Some(e)))?;
    Ok(socket)
}

/// Binds the Unix socket `path`.
fn bind_unix(path: &Path) -> Result<Listener, ListenerError> {
    let error = |source| ListenerError::BindUnix { path: path.to_owned(), source };
    let socket = Socket::new(Domain::UNIX, Type::STREAM, None).map_err(error)?;
    socket.bind(&SockAddr::unix(path).map_err(error)?).map_err(error)?;
    // From here on the file is ours: removed if anything below fails, or with the listener.
    let file = SocketFile::new(path.to_owned());
    socket.listen(BACKLOG).map_err(error)?;
    socket.set_nonblocking(true).map_err(error)?;
    Ok(Listener {
        socket: StdSocket::Unix(OwnedFd::from(socket).into()),
        source: ListenSource::UnixSocket(path.to_owned()),
        file: Some(file),
    })
}

/// Binds `addr`, with `SO_REUSEADDR` (a restarted worker rebinds its port at once).
fn bind_tcp(addr: SocketAddr) -> Result<Listener, ListenerError> {
    let error = |source| ListenerError::BindTcp { addr, source };
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None).map_err(error)?;
    socket.set_reuse_address(true).map_err(error)?;
    socket.bind(&addr.into()).map_err(error)?;
    socket.listen(BACKLOG).map_err(error)?;
    socket.set_nonblocking(true).map_err(error)?;
    Ok(Listener {
        socket: StdSocket::Tcp(socket.into()),
        source: ListenSource::Tcp(addr),
        file: None,
    })
}

#[cfg(test)]
mod tests {
    use super::super::env::fake;
    use super::*;

    const PID: u32 = 4242;

    fn plan_of(vars: &[(&str, &str)]) -> Result<Plan, ListenerError> {
        plan(&fake::vars(vars), PID)
    }

    #[test]
    fn the_inherited_socket_comes_first_when_it_is_ours() {
        let all =
            [("LISTEN_PID", "4242"), ("LISTEN_FDS", "1"), ("SOCKET_PATH", "/s"), ("PORT", "1")];
        assert_eq!(plan_of(&all).unwrap(), Plan::Inherited(1));
        // Another process's variables (inherited by a child of the one they were for).
        let theirs = [("LISTEN_PID", "1"), ("LISTEN_FDS", "1"), ("PORT", "8080")];
        assert_eq!(plan_of(&theirs).unwrap(), Plan::Tcp("127.0.0.1:8080".parse().unwrap()));
        // Ours, but no descriptors.
        for fds in [&[("LISTEN_FDS", "0")][..], &[]] {
            let vars: Vec<_> = [("LISTEN_PID", "4242"), ("PORT", "1")]
                .into_iter()
                .chain(fds.iter().copied())
                .collect();
            assert!(matches!(plan_of(&vars).unwrap(), Plan::Tcp(_)), "{vars:?}");
        }
    }

    #[test]
    fn then_the_unix_socket_then_host_and_port() {
        let unix = [("SOCKET_PATH", "/run/app/w1.sock"), ("PORT", "8080"), ("HOST", "x")];
        assert_eq!(plan_of(&unix).unwrap(), Plan::Unix("/run/app/w1.sock".into()));
        let tcp = [("HOST", "0.0.0.0"), ("PORT", " 8080 ")];
        assert_eq!(plan_of(&tcp).unwrap(), Plan::Tcp("0.0.0.0:8080".parse().unwrap()));
        let v6 = [("HOST", "[::1]"), ("PORT", "0")];
        assert_eq!(plan_of(&v6).unwrap(), Plan::Tcp("[::1]:0".parse().unwrap()));
        let localhost = [("HOST", "localhost"), ("PORT", "3000")];
        assert_eq!(plan_of(&localhost).unwrap(), Plan::Tcp("127.0.0.1:3000".parse().unwrap()));
        // Empty counts as unset.
        let empty = [("SOCKET_PATH", ""), ("LISTEN_PID", ""), ("PORT", "9")];
        assert_eq!(plan_of(&empty).unwrap(), Plan::Tcp("127.0.0.1:9".parse().unwrap()));
    }

    #[test]
    fn errors_name_the_variable_at_fault() {
        let message = |vars: &[(&str, &str)]| plan_of(vars).unwrap_err().to_string();
        assert_eq!(
            message(&[("PORT", "http")]),
            r#"PORT="http" is not a port number (0 to 65535)"#
        );
        assert!(message(&[("PORT", "70000")]).starts_with(r#"PORT="70000""#));
        assert_eq!(
            message(&[("PORT", "80"), ("HOST", "example.com")]),
            r#"HOST="example.com" is not an IP address (or `localhost`)"#
        );
        assert_eq!(message(&[("LISTEN_PID", "me")]), r#"LISTEN_PID="me" is not a process id"#);
        assert_eq!(
            message(&[("LISTEN_PID", "4242"), ("LISTEN_FDS", "one")]),
            r#"LISTEN_FDS="one" is not a number of descriptors"#
        );
        assert!(matches!(plan_of(&[]), Err(ListenerError::Unset)));
        assert!(message(&[]).contains("set PORT"));
    }

    #[tokio::test]
    async fn a_tcp_listener_accepts_connections() {
        let listener = bind_tcp("127.0.0.1:0".parse().unwrap()).unwrap();
        assert_eq!(listener.source().to_string(), "HOST:PORT 127.0.0.1:0");
        let listener = listener.into_tokio().unwrap();
        let addr = listener.as_tcp().unwrap().local_addr().unwrap();
        let client = tokio::net::TcpStream::connect(addr).await.unwrap();
        let accepted = listener.accept().await.unwrap();
        assert!(matches!(accepted, super::super::Connection::Tcp(_)));
        drop(client);
    }

    #[tokio::test]
    async fn a_unix_listener_accepts_and_removes_its_file_when_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w1.sock");
        let listener = bind_unix(&path).unwrap().into_tokio().unwrap();
        assert!(listener.as_unix().is_some());
        let _client = tokio::net::UnixStream::connect(&path).await.unwrap();
        assert!(matches!(listener.accept().await.unwrap(), super::super::Connection::Unix(_)));
        drop(listener);
        assert!(!path.exists(), "the socket file is removed with the listener");
    }

    #[test]
    fn a_taken_path_is_a_bind_error_that_names_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("taken.sock");
        std::fs::write(&path, b"").unwrap();
        let error = bind_unix(&path).unwrap_err();
        assert!(
            matches!(&error, ListenerError::BindUnix { source, .. } if source.kind() == io::ErrorKind::AddrInUse),
            "{error:?}"
        );
        assert!(
            error
                .to_string()
                .starts_with(&format!("cannot listen on SOCKET_PATH={}", path.display()))
        );
        assert!(path.exists(), "a file that was not ours stays");
    }

    #[test]
    fn an_inherited_descriptor_must_be_a_listening_stream_socket() {
        let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
        assert!(matches!(classify(a.into()), Err(ListenerError::InheritedNotListening(None))));
        let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        assert!(matches!(classify(udp.into()), Err(ListenerError::InheritedNotListening(None))));
        let tcp = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        assert!(matches!(classify(tcp.into()), Ok(StdSocket::Tcp(_))));
        let dir = tempfile::tempdir().unwrap();
        let unix = std::os::unix::net::UnixListener::bind(dir.path().join("s")).unwrap();
        assert!(matches!(classify(unix.into()), Ok(StdSocket::Unix(_))));
    }
}
