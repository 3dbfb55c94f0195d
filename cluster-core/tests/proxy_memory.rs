//! A 100 MB upload passes through the proxy with bounded memory. Alone in its test binary
//! so that the process's peak memory reflects this one transfer.

mod proxy_support;

use bytes::Bytes;
use cluster_core::ProxyConfig;
use futures_util::stream;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use proxy_support::*;

/// Peak resident memory of this process so far (`VmHWM`), in bytes.
fn peak_rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    let kb: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kb * 1024
}

#[tokio::test]
async fn a_100_mb_upload_streams_with_bounded_memory() {
    within(async {
        // The worker counts the bytes it receives and answers with the total.
        let worker = upstream(|req: Request<hyper::body::Incoming>| async move {
            let mut body = req.into_body();
            let mut total = 0u64;
            while let Some(frame) = body.frame().await {
                if let Ok(data) = frame.unwrap().into_data() {
                    total += data.len() as u64;
                }
            }
            Response::new(full(total.to_string()))
        })
        .await;
        let proxy = start_proxy(&[worker.addr], ProxyConfig::default()).await;
        let mut client = Client::connect(proxy.addr).await;
        let before = peak_rss();
        const CHUNK: usize = 256 * 1024;
        const CHUNKS: usize = 400; // 100 MiB
        let chunk = Bytes::from(vec![0x5a; CHUNK]);
        let chunks =
            stream::iter((0..CHUNKS).map(move |_| Ok::<_, Error>(Frame::data(chunk.clone()))));
        let req =
            Request::put("/big").header("host", "a").body(StreamBody::new(chunks).boxed()).unwrap();
        let resp = client.send(req).await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(text(resp).await, (CHUNK * CHUNKS).to_string());
        let grown = peak_rss().saturating_sub(before);
        assert!(grown < 32 * 1024 * 1024, "peak memory grew by {} MiB", grown / (1024 * 1024));
    })
    .await;
}
