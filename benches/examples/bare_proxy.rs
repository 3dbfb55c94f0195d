//! A bare hyper 1.x reverse proxy: the floor our proxy's cost per request is measured against.
//!
//! What `../shared/PERFORMANCE.md` measured at parity with nginx on 2026-11-27, rebuilt so that
//! it runs in the same session as our proxy (`benches/proxy-instructions.sh` with
//! `CANDIDATE=bare`, or `CLUSTER_CANDIDATE_CMD` in `benches/proxy-vs-nginx.sh`): one
//! current-thread runtime, HTTP/1.1 only, a pool of `http1::SendRequest` handles per upstream,
//! least in-flight, bodies streamed, hop-by-hop headers removed, `X-Forwarded-For` added, Host
//! kept. No retries, no limits, no metrics, no drain: what every feature of ours costs is
//! measured from here.
//!
//! ```text
//! bare_proxy LISTEN_ADDR UPSTREAM_ADDR...
//! bare_proxy 127.0.0.1:8080 127.0.0.1:3001 127.0.0.1:3002
//! ```

use std::cell::{Cell, RefCell};
use std::net::SocketAddr;
use std::rc::Rc;

use http_body_util::{BodyExt, combinators::UnsyncBoxBody};
use hyper::body::{Bytes, Incoming};
use hyper::client::conn::http1::SendRequest;
use hyper::header::{self, HeaderValue};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};

type Body = UnsyncBoxBody<Bytes, hyper::Error>;

/// One upstream: its address, the requests in flight to it, its idle connections.
struct Upstream {
    addr: SocketAddr,
    in_flight: Cell<usize>,
    idle: RefCell<Vec<SendRequest<Incoming>>>,
}

const HOP_BY_HOP: [header::HeaderName; 6] = [
    header::CONNECTION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
    header::PROXY_AUTHORIZATION,
];

fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let listen: SocketAddr = args.next().expect("LISTEN_ADDR").parse().expect("LISTEN_ADDR");
    let upstreams: Rc<Vec<Upstream>> = Rc::new(
        args.map(|a| Upstream {
            addr: a.parse().expect("UPSTREAM_ADDR"),
            in_flight: Cell::new(0),
            idle: RefCell::new(Vec::new()),
        })
        .collect(),
    );
    assert!(!upstreams.is_empty(), "usage: bare_proxy LISTEN_ADDR UPSTREAM_ADDR...");
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let local = tokio::task::LocalSet::new();
    local.block_on(&runtime, async move {
        let listener = TcpListener::bind(listen).await?;
        loop {
            let (stream, peer) = listener.accept().await?;
            let _ = stream.set_nodelay(true);
            let upstreams = upstreams.clone();
            tokio::task::spawn_local(async move {
                let service = hyper::service::service_fn(move |req| {
                    let upstreams = upstreams.clone();
                    async move { Ok::<_, hyper::Error>(forward(&upstreams, peer, req).await) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    })
}

async fn forward(
    upstreams: &[Upstream],
    peer: SocketAddr,
    mut req: Request<Incoming>,
) -> Response<Body> {
    let upstream = upstreams.iter().min_by_key(|u| u.in_flight.get()).expect("an upstream");
    upstream.in_flight.set(upstream.in_flight.get() + 1);
    let headers = req.headers_mut();
    for name in HOP_BY_HOP {
        headers.remove(name);
    }
    headers.remove("keep-alive");
    if let Ok(v) = HeaderValue::from_str(&peer.ip().to_string()) {
        headers.append("x-forwarded-for", v);
    }
    let result = send(upstream, req).await;
    upstream.in_flight.set(upstream.in_flight.get() - 1);
    match result {
        Ok(mut resp) => {
            for name in HOP_BY_HOP {
                resp.headers_mut().remove(name);
            }
            resp.map(|b| b.boxed_unsync())
        }
        Err(_) => {
            let mut resp =
                Response::new(http_body_util::Empty::new().map_err(|e| match e {}).boxed_unsync());
            *resp.status_mut() = StatusCode::BAD_GATEWAY;
            resp
        }
    }
}

async fn send(upstream: &Upstream, req: Request<Incoming>) -> Result<Response<Incoming>, ()> {
    let pooled = {
        let mut idle = upstream.idle.borrow_mut();
        idle.retain(|s| !s.is_closed());
        idle.iter().position(SendRequest::is_ready).map(|i| idle.swap_remove(i))
    };
    let mut sender = match pooled {
        Some(s) => s,
        None => {
            let stream = TcpStream::connect(upstream.addr).await.map_err(drop)?;
            let _ = stream.set_nodelay(true);
            let (sender, conn) =
                hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.map_err(drop)?;
            tokio::task::spawn_local(conn);
            sender
        }
    };
    let resp = sender.send_request(req).await.map_err(drop);
    // Back in the pool once the response head is in: `is_ready()` passes it over until its
    // body has ended and the connection wants the next request.
    upstream.idle.borrow_mut().push(sender);
    resp
}
