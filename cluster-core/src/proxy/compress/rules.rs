//! Which exchanges are compressed: the skip rules, and the header changes a compressed
//! response needs.

use http::header::{
    ACCEPT_RANGES, CACHE_CONTROL, CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE,
    ETAG, RANGE, VARY,
};
use http::{HeaderMap, HeaderValue, Method, StatusCode};

/// Whether the request allows a compressed answer at all, whatever it accepts: not for
/// `HEAD` (no body to compress), a `Range` request (the ranges are of the identity
/// representation, RFC 9110 §14.1.2), nor an upgrade (the worker may refuse it with a body
/// on the connection that is about to become a tunnel).
pub(super) fn request_allows(method: &Method, headers: &HeaderMap, upgrade: bool) -> bool {
    *method != Method::HEAD && !upgrade && !headers.contains_key(RANGE)
}

/// Whether the response is one we would compress for a client that accepts a coding; such
/// a response varies with `Accept-Encoding`.
///
/// Not compressed: 1xx, 204, 304 (no body) and 206 (a part of the identity
/// representation); a response already encoded (`Content-Encoding` other than `identity`)
/// or carrying `Content-Range`; `Cache-Control: no-transform` (RFC 9111 §5.2.2.6); a
/// `Content-Length` below `min_size`; a content type that is not in
/// [`compressible`]'s list (which leaves out `text/event-stream`: SSE is never compressed).
pub(super) fn response_eligible(status: StatusCode, headers: &HeaderMap, min_size: u64) -> bool {
    if status.is_informational()
        || matches!(
            status,
            StatusCode::NO_CONTENT | StatusCode::NOT_MODIFIED | StatusCode::PARTIAL_CONTENT
        )
    {
        return false;
    }
    let encoded = headers
        .get_all(CONTENT_ENCODING)
        .iter()
        .any(|v| !v.to_str().is_ok_and(|v| v.trim().eq_ignore_ascii_case("identity")));
    if encoded || headers.contains_key(CONTENT_RANGE) || no_transform(headers) {
        return false;
    }
    let small = headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .is_some_and(|len| len < min_size);
    !small && headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(compressible)
}

/// Whether `Cache-Control` forbids transforming the content (`no-transform`).
fn no_transform(headers: &HeaderMap) -> bool {
    headers
        .get_all(CACHE_CONTROL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|list| list.split(',').any(|d| d.trim().eq_ignore_ascii_case("no-transform")))
}

/// Whether a media type is worth compressing: text (except `text/event-stream`), JSON, XML,
/// JavaScript, SVG, WebAssembly and uncompressed fonts.
///
/// Everything else is left alone: images other than SVG, audio and video, archives and
/// already-compressed data (`application/zip`, `gzip`, `zstd`, `octet-stream`, `font/woff2`,
/// PDF …), and any type we do not know, since compressing compressed data costs CPU for
/// nothing.
pub(super) fn compressible(content_type: &str) -> bool {
    let essence = content_type.split(';').next().unwrap_or("").trim();
    let Some((kind, subtype)) = essence.split_once('/') else { return false };
    let is = |a: &str, b: &str| a.eq_ignore_ascii_case(b);
    let subtype_is = |name: &str| is(subtype, name);
    let suffix = |s: &str| {
        subtype.len() > s.len() && is(&subtype[subtype.len() - s.len()..], s) && {
            subtype.as_bytes()[subtype.len() - s.len() - 1] == b'+'
        }
    };
    if is(kind, "text") {
        return !subtype_is("event-stream");
    }
    if suffix("json") || suffix("xml") {
        return true;
    }
    if is(kind, "application") {
        return [
            "json",
            "javascript",
            "x-javascript",
            "ecmascript",
            "xml",
            "wasm",
            "graphql",
            "x-ndjson",
            "x-www-form-urlencoded",
            "vnd.ms-fontobject",
            "x-font-ttf",
        ]
        .iter()
        .any(|name| subtype_is(name));
    }
    if is(kind, "image") {
        return subtype_is("svg+xml");
    }
    if is(kind, "font") {
        return subtype_is("ttf") || subtype_is("otf") || subtype_is("collection");
    }
    false
}

/// Adds `Accept-Encoding` to `Vary` unless it is there already (or `Vary: *`).
pub(super) fn add_vary(headers: &mut HeaderMap) {
    let present = headers.get_all(VARY).iter().filter_map(|v| v.to_str().ok()).any(|list| {
        list.split(',')
            .map(str::trim)
            .any(|f| f == "*" || f.eq_ignore_ascii_case("accept-encoding"))
    });
    if !present {
        headers.append(VARY, HeaderValue::from_static("accept-encoding"));
    }
}

/// Turns the head of an eligible response into that of its compressed form: the coding
/// named, the length gone (the body is now of unknown length), no byte ranges offered, and a
/// strong `ETag` weakened (RFC 9110 §8.8.3: the bytes differ from the worker's, so a strong
/// validator would lie; a weak one still lets `If-None-Match` revalidate).
pub(super) fn mark_encoded(headers: &mut HeaderMap, coding: HeaderValue) {
    headers.remove(CONTENT_LENGTH);
    headers.remove(ACCEPT_RANGES);
    headers.remove(CONTENT_ENCODING);
    headers.insert(CONTENT_ENCODING, coding);
    if let Some(tag) = headers.get(ETAG) {
        if tag.as_bytes().starts_with(b"\"") {
            let mut weak = Vec::with_capacity(tag.len() + 2);
            weak.extend_from_slice(b"W/");
            weak.extend_from_slice(tag.as_bytes());
            if let Ok(weak) = HeaderValue::from_bytes(&weak) {
                headers.insert(ETAG, weak);
            }
        }
    }
}
