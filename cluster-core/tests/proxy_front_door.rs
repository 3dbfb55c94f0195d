//! The front door: claimed requests are answered by it and never reach a worker; a stream it
//! marks [`EndsOnDrain`] cannot hold the proxy's drain when its client stops reading.

mod proxy_support;

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use cluster_core::ProxyConfig;
use cluster_core::{BoxError, EndsOnDrain, FrontBody, FrontDoor, FrontFuture, FrontPeer};
use http::{Request, Response, StatusCode};
use http_body::{Body, Frame};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use proxy_support::*;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

/// A body that never ends and always has 64 KiB ready: a client that does not read fills
/// the socket buffers within milliseconds.
struct Endless;

impl Body for Endless {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        Poll::Ready(Some(Ok(Frame::data(Bytes::from(vec![b'x'; 64 * 1024])))))
    }
}

/// Claims `/door/*`: `/door/stream` answers an endless stream (marked [`EndsOnDrain`] when
/// `marked`), anything else a short text.
#[derive(Debug)]
struct Door {
    marked: bool,
    calls: AtomicUsize,
}

impl FrontDoor for Door {
    fn claims(&self, req: &Request<Incoming>) -> bool {
        req.uri().path().starts_with("/door/")
    }

    fn call(&self, req: Request<Incoming>, _peer: FrontPeer) -> FrontFuture {
        self.calls.fetch_add(1, Ordering::Relaxed);
        let marked = self.marked;
        Box::pin(async move {
            if req.uri().path() == "/door/stream" {
                let mut resp = Response::new(FrontBody::new(Endless));
                if marked {
                    resp.extensions_mut().insert(EndsOnDrain);
                }
                resp
            } else {
                let body = http_body_util::Full::new(Bytes::from_static(b"from the door"))
                    .map_err(|never| match never {});
                Response::new(FrontBody::new(body))
            }
        })
    }
}

async fn proxy_with_door(worker: &Upstream, marked: bool) -> (TestProxy, Arc<Door>) {
    let door = Arc::new(Door { marked, calls: AtomicUsize::new(0) });
    let mut cfg = ProxyConfig::default();
    cfg.front_door = Some(Arc::clone(&door) as Arc<dyn FrontDoor>);
    (start_proxy(&[worker.addr], cfg).await, door)
}

/// Opens the endless stream on a raw connection that will never read its response.
async fn stuck_client(proxy: &TestProxy) -> TcpStream {
    let mut tcp = TcpStream::connect(proxy.addr).await.unwrap();
    tcp.write_all(b"GET /door/stream HTTP/1.1\r\nhost: app.test\r\n\r\n").await.unwrap();
    // Long enough for the endless body to fill both sockets' buffers.
    tokio::time::sleep(Duration::from_millis(300)).await;
    tcp
}

#[tokio::test]
async fn claimed_requests_are_answered_by_the_door_and_never_reach_a_worker() {
    within(async {
        let worker = inspecting(1).await;
        let (proxy, door) = proxy_with_door(&worker, true).await;
        let mut client = Client::connect(proxy.addr).await;
        let resp = client.get("/door/hello").await;
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(text(resp).await, "from the door");
        assert_eq!(worker.connections(), 0, "a claimed request reached the worker");
        let resp = client.get("/app").await;
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(worker.connections(), 1, "an unclaimed request did not reach the worker");
        assert_eq!(door.calls.load(Ordering::Relaxed), 1);
    })
    .await;
}

#[tokio::test]
async fn a_marked_stream_its_client_does_not_read_cannot_hold_the_drain() {
    within(async {
        let worker = inspecting(1).await;
        let (proxy, _door) = proxy_with_door(&worker, true).await;
        let _stuck = stuck_client(&proxy).await;
        proxy.stop.cancel();
        // The grace is 500 ms; `eventually` gives 5 s.
        eventually("serve returned with a stuck stream", || proxy.served.is_finished()).await;
    })
    .await;
}

/// The control for the test above: without the marker, the drain waits for the response to
/// end (as it does for a proxied response), so the test above can fail.
#[tokio::test]
async fn an_unmarked_stream_holds_the_drain_until_it_ends() {
    within(async {
        let worker = inspecting(1).await;
        let (proxy, _door) = proxy_with_door(&worker, false).await;
        let stuck = stuck_client(&proxy).await;
        proxy.stop.cancel();
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert!(!proxy.served.is_finished(), "an unmarked stream was cut by the drain");
        drop(stuck);
        eventually("serve returned once the client left", || proxy.served.is_finished()).await;
    })
    .await;
}
