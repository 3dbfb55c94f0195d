//! The front door: a service in front of the proxying handler, so that a binary can answer
//! some paths itself on the front port (the admin API) without `cluster-core` depending on
//! what answers them.
//!
//! The proxy asks [`FrontDoor::claims`] of every request before anything else; a claimed
//! request is answered by [`FrontDoor::call`] and never reaches a worker. With no front door
//! configured the check is one `Option` test; with one, it is whatever `claims` costs (a path
//! prefix comparison for the admin API).

use std::fmt;
use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::combinators::UnsyncBoxBody;
use hyper::body::Incoming;

/// An error that ends a front door's response body: the connection is then dropped, without
/// waiting for the client to read what is queued (an events stream at shutdown).
///
/// # Examples
///
/// A streaming answer (one line a second until the cluster drains), as a front door's
/// [`call`](FrontDoor::call) would return it:
///
/// ```
/// use std::time::Duration;
/// use bytes::Bytes;
/// use cluster_core::{BoxError, EndsOnDrain, FrontBody, FrontFuture, FrontPeer};
/// use futures_util::stream;
/// use http::Response;
/// use http_body_util::{BodyExt, StreamBody};
/// use hyper::body::Frame;
///
/// fn ticks(peer: FrontPeer) -> FrontFuture {
///     let lines = stream::unfold(0u64, move |n| async move {
///         tokio::time::sleep(Duration::from_secs(1)).await;
///         let line = Bytes::from(format!("tick {n} for {}\n", peer.addr));
///         Some((Ok::<_, BoxError>(Frame::data(line)), n + 1))
///     });
///     let body: FrontBody = StreamBody::new(lines).boxed_unsync();
///     let mut response = Response::new(body);
///     response.extensions_mut().insert(EndsOnDrain); // endless: cut it off when draining
///     Box::pin(async move { response })
/// }
/// # let _ = ticks;
/// ```
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The body of a front door's response: a stream of bytes; an error drops the connection.
///
/// # Examples
///
/// A streaming answer (one line a second until the cluster drains), as a front door's
/// [`call`](FrontDoor::call) would return it:
///
/// ```
/// use std::time::Duration;
/// use bytes::Bytes;
/// use cluster_core::{BoxError, EndsOnDrain, FrontBody, FrontFuture, FrontPeer};
/// use futures_util::stream;
/// use http::Response;
/// use http_body_util::{BodyExt, StreamBody};
/// use hyper::body::Frame;
///
/// fn ticks(peer: FrontPeer) -> FrontFuture {
///     let lines = stream::unfold(0u64, move |n| async move {
///         tokio::time::sleep(Duration::from_secs(1)).await;
///         let line = Bytes::from(format!("tick {n} for {}\n", peer.addr));
///         Some((Ok::<_, BoxError>(Frame::data(line)), n + 1))
///     });
///     let body: FrontBody = StreamBody::new(lines).boxed_unsync();
///     let mut response = Response::new(body);
///     response.extensions_mut().insert(EndsOnDrain); // endless: cut it off when draining
///     Box::pin(async move { response })
/// }
/// # let _ = ticks;
/// ```
pub type FrontBody = UnsyncBoxBody<Bytes, BoxError>;

/// The future a front door answers with.
///
/// # Examples
///
/// A streaming answer (one line a second until the cluster drains), as a front door's
/// [`call`](FrontDoor::call) would return it:
///
/// ```
/// use std::time::Duration;
/// use bytes::Bytes;
/// use cluster_core::{BoxError, EndsOnDrain, FrontBody, FrontFuture, FrontPeer};
/// use futures_util::stream;
/// use http::Response;
/// use http_body_util::{BodyExt, StreamBody};
/// use hyper::body::Frame;
///
/// fn ticks(peer: FrontPeer) -> FrontFuture {
///     let lines = stream::unfold(0u64, move |n| async move {
///         tokio::time::sleep(Duration::from_secs(1)).await;
///         let line = Bytes::from(format!("tick {n} for {}\n", peer.addr));
///         Some((Ok::<_, BoxError>(Frame::data(line)), n + 1))
///     });
///     let body: FrontBody = StreamBody::new(lines).boxed_unsync();
///     let mut response = Response::new(body);
///     response.extensions_mut().insert(EndsOnDrain); // endless: cut it off when draining
///     Box::pin(async move { response })
/// }
/// # let _ = ticks;
/// ```
pub type FrontFuture = Pin<Box<dyn Future<Output = Response<FrontBody>> + Send>>;

/// A marker a front door puts in a response's extensions when its body streams until the
/// cluster stops (an events stream): when the proxy drains, the connection gets a short grace
/// to end it and is then dropped, so a client that stopped reading cannot hold the drain.
///
/// # Examples
///
/// A streaming answer (one line a second until the cluster drains), as a front door's
/// [`call`](FrontDoor::call) would return it:
///
/// ```
/// use std::time::Duration;
/// use bytes::Bytes;
/// use cluster_core::{BoxError, EndsOnDrain, FrontBody, FrontFuture, FrontPeer};
/// use futures_util::stream;
/// use http::Response;
/// use http_body_util::{BodyExt, StreamBody};
/// use hyper::body::Frame;
///
/// fn ticks(peer: FrontPeer) -> FrontFuture {
///     let lines = stream::unfold(0u64, move |n| async move {
///         tokio::time::sleep(Duration::from_secs(1)).await;
///         let line = Bytes::from(format!("tick {n} for {}\n", peer.addr));
///         Some((Ok::<_, BoxError>(Frame::data(line)), n + 1))
///     });
///     let body: FrontBody = StreamBody::new(lines).boxed_unsync();
///     let mut response = Response::new(body);
///     response.extensions_mut().insert(EndsOnDrain); // endless: cut it off when draining
///     Box::pin(async move { response })
/// }
/// # let _ = ticks;
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EndsOnDrain;

/// Who sent a request to the front door.
///
/// # Examples
///
/// A streaming answer (one line a second until the cluster drains), as a front door's
/// [`call`](FrontDoor::call) would return it:
///
/// ```
/// use std::time::Duration;
/// use bytes::Bytes;
/// use cluster_core::{BoxError, EndsOnDrain, FrontBody, FrontFuture, FrontPeer};
/// use futures_util::stream;
/// use http::Response;
/// use http_body_util::{BodyExt, StreamBody};
/// use hyper::body::Frame;
///
/// fn ticks(peer: FrontPeer) -> FrontFuture {
///     let lines = stream::unfold(0u64, move |n| async move {
///         tokio::time::sleep(Duration::from_secs(1)).await;
///         let line = Bytes::from(format!("tick {n} for {}\n", peer.addr));
///         Some((Ok::<_, BoxError>(Frame::data(line)), n + 1))
///     });
///     let body: FrontBody = StreamBody::new(lines).boxed_unsync();
///     let mut response = Response::new(body);
///     response.extensions_mut().insert(EndsOnDrain); // endless: cut it off when draining
///     Box::pin(async move { response })
/// }
/// # let _ = ticks;
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct FrontPeer {
    /// The address of the connection's peer (the client, or the proxy in front of it).
    pub addr: IpAddr,
    /// Whether that peer is one of `security.trustedProxies` (its `X-Forwarded-For` names the
    /// client). A front door should not grant anything on the strength of this alone.
    pub trusted_proxy: bool,
}

/// A service in front of the proxy.
///
/// # Contract
///
/// - `claims` runs on every request the front port receives, before routing: keep it to a
///   look at the method and path, allocation-free.
/// - `call` answers every request `claims` accepted, whatever it is (an error is a response:
///   401, 404, 405...). The request never reaches a worker.
///
/// # Examples
///
/// A front door that answers `GET /version` itself and lets every other request through:
///
/// ```
/// use std::sync::Arc;
/// use bytes::Bytes;
/// use cluster_core::{FrontBody, FrontDoor, FrontFuture, FrontPeer};
/// use http::{Method, Request, Response};
/// use http_body_util::{BodyExt, Full};
/// use hyper::body::Incoming;
///
/// #[derive(Debug)]
/// struct Version;
///
/// impl FrontDoor for Version {
///     fn claims(&self, req: &Request<Incoming>) -> bool {
///         req.method() == Method::GET && req.uri().path() == "/version"
///     }
///
///     // Other paths skip `claims` and may take the proxy's lean path.
///     fn may_claim(&self, path: &str) -> bool {
///         path == "/version"
///     }
///
///     fn call(&self, _req: Request<Incoming>, peer: FrontPeer) -> FrontFuture {
///         let body: FrontBody = Full::new(Bytes::from(env!("CARGO_PKG_VERSION")))
///             .map_err(|never| match never {})
///             .boxed_unsync();
///         println!("version asked by {}", peer.addr);
///         Box::pin(async move { Response::new(body) })
///     }
/// }
///
/// let front_door: Arc<dyn FrontDoor> = Arc::new(Version);
/// assert!(front_door.may_claim("/version") && !front_door.may_claim("/"));
/// // `Cluster::with_front_door(front_door)` puts it in front of the proxy.
/// # let _ = front_door;
/// ```
pub trait FrontDoor: Send + Sync + fmt::Debug {
    /// Whether this request is the front door's.
    fn claims(&self, req: &Request<Incoming>) -> bool;

    /// Whether [`claims`](Self::claims) may be true for some request to `path`, whatever
    /// its method and fields. The proxy serves a plain `GET` or `HEAD` on its lean
    /// HTTP/1.1 path, which builds no hyper request, only when this is `false`; the
    /// default, `true`, sends every request through [`claims`](Self::claims) (correct for
    /// any front door, and a little slower).
    fn may_claim(&self, path: &str) -> bool {
        let _ = path;
        true
    }

    /// Answers a claimed request from `peer`.
    fn call(&self, req: Request<Incoming>, peer: FrontPeer) -> FrontFuture;
}
