//! The skip rules, the header changes and the encoders, without a network.

use std::io::Read;

use http::header::{
    ACCEPT_ENCODING, ACCEPT_RANGES, CACHE_CONTROL, CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_RANGE,
    CONTENT_TYPE, ETAG, RANGE, VARY,
};
use http::{HeaderMap, HeaderValue, Method, StatusCode};

use super::encoder::Encoder;
use super::rules::compressible;
use super::{Compression, ContentCoding};

fn stage() -> Compression {
    Compression { level: 6, min_size: 1024 }
}

fn request(accept: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(ACCEPT_ENCODING, HeaderValue::from_str(accept).unwrap());
    headers
}

fn response(content_type: &str, length: Option<u64>) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(CONTENT_TYPE, HeaderValue::from_str(content_type).unwrap());
    if let Some(length) = length {
        headers.insert(CONTENT_LENGTH, length.into());
    }
    headers
}

/// Runs the stage on one exchange: the coding chosen (if any) and the response head after.
fn exchange(
    method: Method,
    req: &HeaderMap,
    status: StatusCode,
    mut resp: HeaderMap,
) -> (Option<String>, HeaderMap) {
    let stage = stage();
    let offer = stage.offer(&method, req, false);
    let encoder = stage.apply(offer, status, &mut resp);
    let coding = encoder.map(|_| resp[CONTENT_ENCODING].to_str().unwrap().to_owned());
    (coding, resp)
}

fn get(accept: &str, resp: HeaderMap) -> (Option<String>, HeaderMap) {
    exchange(Method::GET, &request(accept), StatusCode::OK, resp)
}

#[test]
fn compressible_types() {
    for yes in [
        "text/html",
        "text/html; charset=utf-8",
        "TEXT/CSS",
        "text/plain",
        "application/json",
        "application/problem+json",
        "application/ld+json; charset=utf-8",
        "application/javascript",
        "text/javascript",
        "application/xml",
        "application/atom+xml",
        "image/svg+xml",
        "application/wasm",
        "font/ttf",
    ] {
        assert!(compressible(yes), "{yes}");
    }
    for no in [
        "text/event-stream",
        "text/event-stream; charset=utf-8",
        "image/png",
        "image/jpeg",
        "image/webp",
        "video/mp4",
        "audio/mpeg",
        "application/zip",
        "application/gzip",
        "application/zstd",
        "application/octet-stream",
        "application/pdf",
        "font/woff2",
        "font/woff",
        "application/x-json-but-not",
        "json",
        "",
    ] {
        assert!(!compressible(no), "{no}");
    }
}

#[test]
fn html_and_json_are_compressed_with_the_preferred_coding() {
    let (coding, head) = get("gzip, deflate, br", response("text/html", Some(5000)));
    assert_eq!(coding.as_deref(), Some("br"));
    assert!(head.get(CONTENT_LENGTH).is_none(), "the length changes");
    assert_eq!(head.get(VARY).unwrap(), "accept-encoding");
    let (coding, _) = get("gzip", response("application/json", None));
    assert_eq!(coding.as_deref(), Some("gzip"));
    let (coding, _) = get("zstd, gzip;q=0.5", response("application/json", None));
    assert_eq!(coding.as_deref(), Some("zstd"));
}

#[test]
fn vary_also_when_the_client_takes_no_coding() {
    for accept in ["identity", "gzip;q=0", "deflate"] {
        let (coding, head) = get(accept, response("text/html", Some(5000)));
        assert_eq!(coding, None, "{accept}");
        assert_eq!(head.get(VARY).unwrap(), "accept-encoding", "{accept}");
        assert_eq!(head.get(CONTENT_LENGTH).unwrap(), "5000");
    }
    let (coding, head) =
        exchange(Method::GET, &HeaderMap::new(), StatusCode::OK, response("text/html", None));
    assert_eq!(coding, None);
    assert!(head.contains_key(VARY));
}

#[test]
fn vary_is_extended_not_replaced_nor_doubled() {
    let mut resp = response("text/html", None);
    resp.insert(VARY, HeaderValue::from_static("Origin"));
    let (_, head) = get("gzip", resp);
    let vary: Vec<_> = head.get_all(VARY).iter().collect();
    assert_eq!(vary, ["Origin", "accept-encoding"]);

    let mut resp = response("text/html", None);
    resp.insert(VARY, HeaderValue::from_static("Origin, Accept-Encoding"));
    let (_, head) = get("gzip", resp);
    assert_eq!(head.get_all(VARY).iter().count(), 1);

    let mut resp = response("text/html", None);
    resp.insert(VARY, HeaderValue::from_static("*"));
    let (coding, head) = get("gzip", resp);
    assert_eq!(coding.as_deref(), Some("gzip"));
    assert_eq!(head.get_all(VARY).iter().collect::<Vec<_>>(), ["*"]);
}

#[test]
fn strong_etag_is_weakened_and_ranges_withdrawn() {
    let mut resp = response("text/html", None);
    resp.insert(ETAG, HeaderValue::from_static("\"v1\""));
    resp.insert(ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    let (_, head) = get("gzip", resp);
    assert_eq!(head.get(ETAG).unwrap(), "W/\"v1\"");
    assert!(!head.contains_key(ACCEPT_RANGES));

    let mut resp = response("text/html", None);
    resp.insert(ETAG, HeaderValue::from_static("W/\"v1\""));
    let (_, head) = get("gzip", resp);
    assert_eq!(head.get(ETAG).unwrap(), "W/\"v1\"");

    // Not compressed: the tag stays strong.
    let mut resp = response("text/html", None);
    resp.insert(ETAG, HeaderValue::from_static("\"v1\""));
    let (_, head) = get("identity", resp);
    assert_eq!(head.get(ETAG).unwrap(), "\"v1\"");
}

#[test]
fn skipped_responses() {
    let no_vary = |(coding, head): (Option<String>, HeaderMap)| {
        assert_eq!(coding, None);
        assert!(!head.contains_key(VARY), "{head:?}");
    };
    // Small; exactly at the limit is compressed.
    no_vary(get("gzip", response("text/html", Some(1023))));
    assert!(get("gzip", response("text/html", Some(1024))).0.is_some());
    // Incompressible or unknown types.
    no_vary(get("gzip", response("image/png", None)));
    no_vary(get("gzip", response("text/event-stream", None)));
    no_vary(get("gzip", HeaderMap::new()));
    // Already encoded.
    let mut resp = response("text/html", None);
    resp.insert(CONTENT_ENCODING, HeaderValue::from_static("br"));
    let (coding, head) = get("gzip", resp);
    assert_eq!(coding, None);
    assert_eq!(head[CONTENT_ENCODING], "br", "left as the worker sent it");
    assert!(!head.contains_key(VARY));
    let mut resp = response("text/html", None);
    resp.insert(CONTENT_ENCODING, HeaderValue::from_static("identity"));
    assert_eq!(get("gzip", resp).0.as_deref(), Some("gzip"));
    // no-transform.
    let mut resp = response("text/html", None);
    resp.insert(CACHE_CONTROL, HeaderValue::from_static("public, No-Transform"));
    no_vary(get("gzip", resp));
    // A part.
    let mut resp = response("text/html", None);
    resp.insert(CONTENT_RANGE, HeaderValue::from_static("bytes 0-99/5000"));
    no_vary(get("gzip", resp));
    // Statuses without a body, or with a part of one.
    for status in [
        StatusCode::CONTINUE,
        StatusCode::NO_CONTENT,
        StatusCode::NOT_MODIFIED,
        StatusCode::PARTIAL_CONTENT,
    ] {
        no_vary(exchange(Method::GET, &request("gzip"), status, response("text/html", None)));
    }
    // Error pages are compressed like any other.
    let resp = response("text/html", None);
    let (coding, _) = exchange(Method::GET, &request("br"), StatusCode::NOT_FOUND, resp);
    assert_eq!(coding.as_deref(), Some("br"));
}

#[test]
fn skipped_requests_still_vary() {
    let (coding, head) =
        exchange(Method::HEAD, &request("gzip"), StatusCode::OK, response("text/html", None));
    assert_eq!(coding, None);
    assert!(head.contains_key(VARY));

    let mut req = request("gzip");
    req.insert(RANGE, HeaderValue::from_static("bytes=0-99"));
    let (coding, _) = exchange(Method::GET, &req, StatusCode::OK, response("text/html", None));
    assert_eq!(coding, None, "a worker ignoring Range sends the identity form");

    let stage = stage();
    let offer = stage.offer(&Method::GET, &request("gzip"), true);
    assert!(stage.apply(offer, StatusCode::OK, &mut response("text/html", None)).is_none());
}

/// Feeds `parts` through an encoder, flushing after each, and returns the output after
/// each flush and in all.
fn encode(coding: ContentCoding, level: u32, parts: &[&[u8]]) -> (Vec<usize>, Vec<u8>) {
    let mut encoder = Encoder::new(coding, level);
    let mut all = Vec::new();
    let mut sizes = Vec::new();
    for part in parts {
        encoder.write(part).unwrap();
        encoder.flush().unwrap();
        let out = encoder.take();
        sizes.push(out.len());
        all.extend_from_slice(&out);
    }
    encoder.finish().unwrap();
    all.extend_from_slice(&encoder.take());
    (sizes, all)
}

fn decode(coding: ContentCoding, data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    match coding {
        ContentCoding::Gzip => {
            flate2::read::GzDecoder::new(data).read_to_end(&mut out).unwrap();
        }
        ContentCoding::Brotli => {
            brotli::Decompressor::new(data, 4096).read_to_end(&mut out).unwrap();
        }
        ContentCoding::Zstd => out = zstd::decode_all(data).unwrap(),
    }
    out
}

#[test]
fn every_coding_round_trips_and_flushes() {
    let text = "<li>a line of a page that repeats itself, as pages do</li>\n".repeat(400);
    let (head, tail) = text.as_bytes().split_at(7000);
    for coding in ContentCoding::PREFERENCE {
        for level in [1, 6, 9] {
            let (sizes, all) = encode(coding, level, &[head, tail]);
            assert!(sizes.iter().all(|&n| n > 0), "{coding:?} {level}: each flush emits bytes");
            assert!(all.len() < text.len() / 5, "{coding:?} {level}: {} bytes", all.len());
            assert_eq!(decode(coding, &all), text.as_bytes(), "{coding:?} {level}");
            // What was flushed before the end decodes on its own (a streaming client sees
            // the first part at once).
            let first = &all[..sizes[0]];
            let partial = match coding {
                ContentCoding::Gzip => {
                    let mut out = Vec::new();
                    let _ = flate2::read::GzDecoder::new(first).read_to_end(&mut out);
                    out
                }
                ContentCoding::Brotli => {
                    let mut out = Vec::new();
                    let _ = brotli::Decompressor::new(first, 4096).read_to_end(&mut out);
                    out
                }
                ContentCoding::Zstd => {
                    let mut out = Vec::new();
                    let mut d = zstd::Decoder::new(first).unwrap();
                    let _ = d.read_to_end(&mut out);
                    out
                }
            };
            assert_eq!(partial, head, "{coding:?} {level}: the first flush holds the first part");
        }
    }
}

/// Resident memory of the process, in KiB.
fn rss_kib() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    let pages: u64 = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * 4
}

/// The configuration `memory_one` measures, from its environment (set by
/// `memory_per_stream` on the child process).
const MEASURE_VAR: &str = "CLUSTER_COMPRESS_MEASURE";

/// Memory held per open compressed stream, by coding and level: each measured in a fresh
/// process (`memory_one`), as the growth of its RSS with 100 streams open, each fed 64 KiB
/// of HTML and flushed. A measurement, not a check:
/// `cargo test -p cluster-core --release --lib memory_per_stream -- --ignored --nocapture`.
#[test]
#[ignore = "a measurement, printed"]
fn memory_per_stream() {
    let exe = std::env::current_exe().unwrap();
    for spec in std::env::var("CLUSTER_COMPRESS_MEASURE_ALL")
        .ok()
        .as_deref()
        .unwrap_or("gzip:1 gzip:6 gzip:9 br:1 br:4 br:5 br:6 br:9 zstd:1 zstd:3 zstd:6 zstd:9")
        .split_whitespace()
    {
        let out = std::process::Command::new(&exe)
            .args(["--exact", "proxy::compress::tests::memory_one", "--ignored", "--nocapture"])
            .env(MEASURE_VAR, spec)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        let line = text.lines().find(|l| l.starts_with("per stream:")).unwrap_or("failed");
        println!("{spec:<28} {line}");
    }
}

/// One measurement of `memory_per_stream` (does nothing unless run by it).
#[test]
#[ignore = "run by memory_per_stream"]
fn memory_one() {
    let Ok(spec) = std::env::var(MEASURE_VAR) else { return };
    const STREAMS: usize = 100;
    let text: String = (0..2000)
        .map(|i| format!("<li id=\"row-{i}\">item {i} of a page, {}</li>\n", i * 7919))
        .collect();
    let chunk = &text.as_bytes()[..64 * 1024];
    let mut parts = spec.split(':');
    let coding = match parts.next().unwrap() {
        "gzip" => ContentCoding::Gzip,
        "br" => ContentCoding::Brotli,
        "zstd" => ContentCoding::Zstd,
        other => panic!("{other}"),
    };
    let level: u32 = parts.next().unwrap().parse().unwrap();
    let before = rss_kib();
    let mut open = Vec::with_capacity(STREAMS);
    for _ in 0..STREAMS {
        let mut e = Encoder::new(coding, level);
        e.write(chunk).unwrap();
        e.flush().unwrap();
        e.take();
        open.push(e);
    }
    let per_stream = rss_kib().saturating_sub(before) / STREAMS as u64;
    // Speed and size on 9 MB of the same kind of text, in 16 KiB chunks as a worker sends.
    let big: String = (0..200_000)
        .map(|i| format!("<li id=\"row-{i}\">item {i} of a page, {}</li>\n", i * 7919 % 100_003))
        .collect();
    let mut e = Encoder::new(coding, level);
    let mut out = 0;
    let start = std::time::Instant::now();
    for part in big.as_bytes().chunks(16 * 1024) {
        e.write(part).unwrap();
        out += e.take().len();
    }
    e.finish().unwrap();
    out += e.take().len();
    let secs = start.elapsed().as_secs_f64();
    let mb = big.len() as f64 / 1e6;
    println!(
        "per stream: {per_stream} KiB; {:.0} MB/s; {:.1} % of the size",
        mb / secs,
        100.0 * out as f64 / big.len() as f64
    );
}
