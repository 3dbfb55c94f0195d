//! Shared helpers of the `proxy_*` tests: in-process upstream servers, a proxy on an
//! ephemeral port, and a small hyper client. Everything listens on 127.0.0.1 only.
#![allow(dead_code, unreachable_pub, missing_docs)]

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use cluster_balancer::Strategy;
use cluster_core::{Backend, Proxy, ProxyConfig, Router};
use http::{Request, Response};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};
use tokio_util::sync::CancellationToken;

pub type Error = Box<dyn std::error::Error + Send + Sync>;
pub type TestBody = BoxBody<Bytes, Error>;

/// Fails the test if `fut` takes longer than 30 s: every test is bounded.
pub async fn within<T>(fut: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(30), fut).await.expect("test timed out")
}

pub fn full(data: impl Into<Bytes>) -> TestBody {
    Full::new(data.into()).map_err(|never: Infallible| match never {}).boxed()
}

pub fn empty() -> TestBody {
    Empty::new().map_err(|never: Infallible| match never {}).boxed()
}

/// An in-process HTTP/1.1 server standing in for a worker; aborted (with all its
/// connections) when dropped.
pub struct Upstream {
    pub addr: SocketAddr,
    /// TCP connections accepted so far.
    pub conns: Arc<AtomicUsize>,
    task: JoinHandle<()>,
}

impl Upstream {
    pub fn connections(&self) -> usize {
        self.conns.load(Ordering::SeqCst)
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Starts a worker that answers every request with `handler`.
pub async fn upstream<F, Fut>(handler: F) -> Upstream
where
    F: Fn(Request<Incoming>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Response<TestBody>> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let conns = Arc::new(AtomicUsize::new(0));
    let handler = Arc::new(handler);
    let counter = Arc::clone(&conns);
    let task = tokio::spawn(async move {
        let mut set = JoinSet::new();
        loop {
            let Ok((tcp, _)) = listener.accept().await else { continue };
            counter.fetch_add(1, Ordering::SeqCst);
            let handler = Arc::clone(&handler);
            set.spawn(async move {
                let svc = service_fn(move |req| {
                    let fut = handler(req);
                    async move { Ok::<_, Infallible>(fut.await) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tcp), svc)
                    .with_upgrades()
                    .await;
            });
            while set.try_join_next().is_some() {}
        }
    });
    Upstream { addr, conns, task }
}

/// A worker that answers `200` with `x-worker: {id}` and a body describing the request it
/// received: the request line, then one `name: value` line per header.
pub async fn inspecting(id: u64) -> Upstream {
    upstream(move |req: Request<Incoming>| async move {
        let mut text = format!("{} {} {:?}\n", req.method(), req.uri(), req.version());
        for (name, value) in req.headers() {
            text.push_str(&format!("{}: {}\n", name, value.to_str().unwrap_or("?")));
        }
        Response::builder().header("x-worker", id.to_string()).body(full(text)).unwrap()
    })
    .await
}

/// The headers section of an [`inspecting`] worker's body, as (name, value) pairs.
pub fn seen_headers(body: &str) -> Vec<(String, String)> {
    body.lines()
        .skip(1)
        .filter_map(|l| l.split_once(": "))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

pub fn seen(body: &str, name: &str) -> Option<String> {
    seen_headers(body).into_iter().find(|(k, _)| k == name).map(|(_, v)| v)
}

/// A port on 127.0.0.1 where nothing listens.
pub async fn closed_port() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    l.local_addr().unwrap()
}

/// A proxy serving an ephemeral port in front of some workers.
pub struct TestProxy {
    pub addr: SocketAddr,
    pub router: Arc<Router>,
    pub proxy: Proxy,
    pub stop: CancellationToken,
    pub served: JoinHandle<()>,
}

impl Drop for TestProxy {
    fn drop(&mut self) {
        self.stop.cancel();
        self.served.abort();
    }
}

pub async fn start_proxy(workers: &[SocketAddr], cfg: ProxyConfig) -> TestProxy {
    start_proxy_with(workers, cfg, Strategy::RoundRobin).await
}

pub async fn start_proxy_with(
    workers: &[SocketAddr],
    cfg: ProxyConfig,
    strategy: Strategy,
) -> TestProxy {
    start_proxy_threads(workers, cfg, strategy, 1).await
}

/// A proxy serving on `threads` proxy threads ([`Proxy::serve_threads`]).
pub async fn start_proxy_threads(
    workers: &[SocketAddr],
    cfg: ProxyConfig,
    strategy: Strategy,
    threads: usize,
) -> TestProxy {
    let router = Arc::new(Router::new(strategy.build()));
    for (i, addr) in workers.iter().enumerate() {
        router.add(Arc::new(Backend::new(i as u64 + 1, i, *addr)));
    }
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let proxy = Proxy::new(Arc::clone(&router), cfg);
    let stop = CancellationToken::new();
    let served = tokio::spawn({
        let proxy = proxy.clone();
        let stop = stop.clone();
        async move {
            if threads == 1 {
                proxy.serve(listener, stop).await;
            } else {
                proxy.serve_threads(listener, threads, stop).await;
            }
        }
    });
    TestProxy { addr, router, proxy, stop, served }
}

/// One HTTP/1.1 client connection.
pub struct Client {
    pub sender: SendRequest<TestBody>,
    pub conn: JoinHandle<()>,
}

impl Client {
    pub async fn connect(addr: SocketAddr) -> Client {
        let tcp = TcpStream::connect(addr).await.unwrap();
        let (sender, conn) =
            hyper::client::conn::http1::handshake(TokioIo::new(tcp)).await.unwrap();
        let conn = tokio::spawn(async move {
            let _ = conn.with_upgrades().await;
        });
        Client { sender, conn }
    }

    pub async fn send(&mut self, req: Request<TestBody>) -> hyper::Result<Response<Incoming>> {
        self.sender.ready().await?;
        self.sender.send_request(req).await
    }

    pub async fn get(&mut self, path: &str) -> Response<Incoming> {
        self.send(get(path)).await.unwrap()
    }
}

pub fn get(path: &str) -> Request<TestBody> {
    Request::get(path).header("host", "app.test").body(empty()).unwrap()
}

pub async fn text(resp: Response<Incoming>) -> String {
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    String::from_utf8(bytes.to_vec()).unwrap()
}

/// Waits (bounded) until `cond` holds, polling every 10 ms for at most 5 s.
pub async fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    for _ in 0..500 {
        if cond() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("timed out waiting for: {what}");
}
