//! `performance.enableCompression`: responses from a Node worker compressed on the way out
//! (gzip, br, zstd), decoded back to the worker's bytes; SSE, small bodies, HEAD, ranges and
//! `no-transform` left alone; long responses streamed, not buffered.

use std::io::Write;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::BodyExt;

use crate::util::{ClusterCmd, ClusterProc, Conn, node_server};

const ON: &str = r#"{"performance": {"enableCompression": true}}"#;

fn node_cluster(config: &str) -> ClusterProc {
    let server = node_server();
    ClusterCmd::start(&["--workers", "1", "--", "node", server.to_str().unwrap()])
        .config(config)
        .spawn(1)
}

/// A response: status, headers and whole body (as sent, still encoded).
struct Reply {
    status: u16,
    headers: hyper::HeaderMap,
    body: Bytes,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().unwrap())
    }

    fn varies(&self) -> bool {
        self.headers
            .get_all("vary")
            .iter()
            .any(|v| v.to_str().unwrap().to_ascii_lowercase().contains("accept-encoding"))
    }
}

async fn fetch(conn: &mut Conn, method: &str, path: &str, headers: &[(&str, &str)]) -> Reply {
    let resp = tokio::time::timeout(
        Duration::from_secs(20),
        conn.request_with(method, path, Bytes::new(), headers),
    )
    .await
    .expect("response in time");
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = resp.into_body().collect().await.expect("body").to_bytes();
    Reply { status, headers, body }
}

/// Decodes a whole `coding` stream; panics if it is not one (or is cut short).
fn decode(coding: &str, data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    match coding {
        "gzip" => {
            let mut d = flate2::write::GzDecoder::new(&mut out);
            d.write_all(data).unwrap();
            d.finish().unwrap();
        }
        "br" => {
            let mut d = brotli::DecompressorWriter::new(&mut out, 4096);
            d.write_all(data).unwrap();
            d.close().unwrap();
        }
        "zstd" => out = zstd::decode_all(data).unwrap(),
        other => panic!("unexpected coding {other}"),
    }
    out
}

/// Decodes what can be decoded of the beginning of a `coding` stream.
fn decode_prefix(coding: &str, data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    match coding {
        "gzip" => {
            let mut d = flate2::write::GzDecoder::new(&mut out);
            d.write_all(data).unwrap();
            d.flush().unwrap();
        }
        "br" => {
            let mut d = brotli::DecompressorWriter::new(&mut out, 4096);
            d.write_all(data).unwrap();
            d.flush().unwrap();
        }
        other => panic!("unexpected coding {other}"),
    }
    out
}

#[tokio::test]
async fn html_and_json_are_compressed_and_decode_to_the_original() {
    let cluster = node_cluster(ON);
    let mut conn = Conn::open(cluster.addr).await;
    for path in ["/page", "/data.json?n=500"] {
        let plain = fetch(&mut conn, "GET", path, &[("accept-encoding", "identity")]).await;
        assert_eq!(plain.status, 200);
        assert_eq!(plain.header("content-encoding"), None, "{path}");
        assert!(plain.varies(), "{path}: Vary also when the client refused every coding");
        assert!(plain.body.len() > 10_000, "{path}: {} bytes", plain.body.len());
        for (accept, coding) in [
            ("gzip", "gzip"),
            ("gzip, deflate, br", "br"),
            ("gzip;q=0.5, zstd", "zstd"),
            ("br;q=0.1, gzip", "gzip"),
        ] {
            let reply = fetch(&mut conn, "GET", path, &[("accept-encoding", accept)]).await;
            assert_eq!(reply.status, 200);
            assert_eq!(reply.header("content-encoding"), Some(coding), "{path} {accept}");
            assert_eq!(reply.header("content-length"), None, "{path} {accept}");
            assert!(reply.varies(), "{path} {accept}");
            assert!(
                reply.body.len() * 4 < plain.body.len(),
                "{path} {accept}: {} of {} bytes",
                reply.body.len(),
                plain.body.len()
            );
            assert_eq!(decode(coding, &reply.body), plain.body, "{path} {accept}");
        }
    }
    // The page's strong tag is weakened, its byte ranges withdrawn.
    let reply = fetch(&mut conn, "GET", "/page", &[("accept-encoding", "gzip")]).await;
    assert_eq!(reply.header("etag"), Some("W/\"page-20000\""));
    assert_eq!(reply.header("accept-ranges"), None);
    let plain = fetch(&mut conn, "GET", "/page", &[]).await;
    assert_eq!(plain.header("etag"), Some("\"page-20000\""));
    assert_eq!(plain.header("content-length"), Some(plain.body.len().to_string().as_str()));
    let log = cluster.log();
    assert!(!log.iter().any(|l| l.contains("enableCompression")), "no warning: {log:#?}");
}

#[tokio::test]
async fn sse_small_head_range_and_no_transform_are_not_compressed() {
    let cluster = node_cluster(ON);
    let mut conn = Conn::open(cluster.addr).await;
    let gzip = [("accept-encoding", "gzip, br, zstd")];

    let sse = fetch(&mut conn, "GET", "/stream?n=3&interval=20", &gzip).await;
    assert_eq!(sse.header("content-encoding"), None);
    assert!(String::from_utf8_lossy(&sse.body).contains("data: event 3"));

    // "hello from node worker …": a few dozen bytes, under the 1 KiB default.
    let small = fetch(&mut conn, "GET", "/", &gzip).await;
    assert_eq!(small.header("content-encoding"), None);
    assert!(!small.varies());
    assert!(String::from_utf8_lossy(&small.body).starts_with("hello from node worker"));

    let head = fetch(&mut conn, "HEAD", "/page", &gzip).await;
    assert_eq!(head.status, 200);
    assert_eq!(head.header("content-encoding"), None);
    assert!(head.body.is_empty());

    // The worker ignores Range and sends the whole page: still not compressed.
    let range = fetch(&mut conn, "GET", "/page", &[gzip[0], ("range", "bytes=0-99")]).await;
    assert_eq!(range.header("content-encoding"), None);
    assert!(range.body.starts_with(b"<!doctype html>"));

    let kept = fetch(&mut conn, "GET", "/page?nt=1", &gzip).await;
    assert_eq!(kept.header("content-encoding"), None);
    assert_eq!(kept.header("cache-control"), Some("no-transform"));
    assert!(kept.body.starts_with(b"<!doctype html>"));

    // The min size counts what the worker declares: 2000 bytes is above 1 KiB.
    let sized = fetch(&mut conn, "GET", "/page?size=2000", &gzip).await;
    assert_eq!(sized.header("content-encoding"), Some("br"));
}

#[tokio::test]
async fn a_long_response_is_streamed_compressed_part_by_part() {
    let cluster = node_cluster(ON);
    let mut conn = Conn::open(cluster.addr).await;
    let mut control = Conn::open(cluster.addr).await;
    for coding in ["gzip", "br"] {
        let id = format!("streamed-{coding}");
        let path = format!("/parts?id={id}&n=2");
        let resp = tokio::time::timeout(
            Duration::from_secs(20),
            conn.request_with("GET", &path, Bytes::new(), &[("accept-encoding", coding)]),
        )
        .await
        .expect("response head in time");
        assert_eq!(resp.headers()["content-encoding"], coding);
        let mut body = resp.into_body();
        // The worker holds its second part until /release: whatever arrives now was
        // compressed and flushed while the worker was still sending.
        let mut received = Vec::new();
        let first_part = format!("part 1 of {id}\n");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        while !decode_prefix(coding, &received).starts_with(first_part.as_bytes()) {
            let frame = tokio::time::timeout_at(deadline, body.frame())
                .await
                .unwrap_or_else(|_| panic!("{coding}: first part not received before release"))
                .expect("a frame before the end")
                .expect("frame");
            received.extend_from_slice(frame.data_ref().expect("data"));
        }
        let early = decode_prefix(coding, &received);
        assert!(early.len() >= 2000, "{coding}: the whole first part decodes at once");
        assert!(!String::from_utf8_lossy(&early).contains("part 2"), "{coding}: too early");

        let released = fetch(&mut control, "GET", &format!("/release?id={id}"), &[]).await;
        assert_eq!(released.body, "released 1\n", "{coding}: the worker was still waiting");
        let rest = tokio::time::timeout(Duration::from_secs(20), body.collect())
            .await
            .expect("rest in time")
            .expect("rest")
            .to_bytes();
        received.extend_from_slice(&rest);
        let text = String::from_utf8(decode(coding, &received)).unwrap();
        assert!(text.starts_with(&first_part), "{coding}");
        assert!(text.contains(&format!("part 2 of {id}\n")), "{coding}");
        assert!(text.ends_with("lazy dog</li>\n"), "{coding}");
    }
    // The exchange ended properly: the same connection serves the next request.
    let next = fetch(&mut conn, "GET", "/health", &[]).await;
    assert_eq!(next.status, 200);
}

#[tokio::test]
async fn off_by_default() {
    let cluster = node_cluster("{}");
    let mut conn = Conn::open(cluster.addr).await;
    let reply = fetch(&mut conn, "GET", "/page", &[("accept-encoding", "gzip, br")]).await;
    assert_eq!(reply.header("content-encoding"), None);
    assert!(!reply.varies());
    assert_eq!(reply.header("etag"), Some("\"page-20000\""));
}
