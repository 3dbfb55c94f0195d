//! Request heads out, response heads in: the encoding and parsing of the proxy's own
//! HTTP/1.1 client, and the framing of the response body (RFC 9112 §6.3).

use std::mem::MaybeUninit;

use bytes::{BufMut, Bytes, BytesMut};
use http::header::{CONTENT_LENGTH, TRANSFER_ENCODING};
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, Response, StatusCode, Version};
use hyper::body::Body;

use super::H1Error;
use crate::proxy::headers::Forwarded;

/// Header fields a response head may have (hyper's client allows as many).
const MAX_HEADERS: usize = 100;
/// Bytes a response head may take (hyper's client's default read buffer limit).
pub(super) const MAX_HEAD: usize = 8192 + 4096 * 100;

/// Whether `req` goes through the proxy's own client: a `GET` or `HEAD` with no body and
/// no upgrade (every other request keeps hyper's client).
pub(crate) fn wants_h1<B: Body>(req: &Request<B>, upgrade: bool) -> bool {
    !upgrade
        && (req.method() == Method::GET || req.method() == Method::HEAD)
        && req.body().is_end_stream()
}

/// The HTTP/1.1 head of `req` (already prepared for the worker: origin-form target, hop-by-hop
/// fields gone) with the `forwarded` fields, as bytes to write, and to write again for a
/// retry.
pub(crate) fn encode_request<B>(req: &Request<B>, forwarded: &Forwarded) -> Bytes {
    let target = req.uri().path_and_query().map_or("/", |pq| pq.as_str());
    let method = req.method().as_str();
    let fields = || {
        let own = req.headers().iter().filter(|(n, _)| !forwarded.replaces(n));
        own.chain(forwarded.fields())
    };
    let size: usize = fields().map(|(n, v)| n.as_str().len() + v.len() + 4).sum();
    let mut out = BytesMut::with_capacity(method.len() + target.len() + 13 + size);
    out.put_slice(method.as_bytes());
    out.put_u8(b' ');
    out.put_slice(target.as_bytes());
    out.put_slice(b" HTTP/1.1\r\n");
    for (name, value) in fields() {
        out.put_slice(name.as_str().as_bytes());
        out.put_slice(b": ");
        out.put_slice(value.as_bytes());
        out.put_slice(b"\r\n");
    }
    out.put_slice(b"\r\n");
    out.freeze()
}

/// How the body of a response is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Framing {
    /// `Content-Length` bytes (0 for a response that has no body: to `HEAD`, 204, 304).
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
    /// Up to the end of the stream (no length; the connection is not reused).
    Close,
}

/// Parses a response head at the start of `buf`, consuming it; `Ok(None)` when more bytes
/// are needed. Interim responses (1xx other than 101) are consumed and skipped, as hyper's
/// client does.
///
/// # Errors
///
/// [`H1Error::Head`] for a head that is not HTTP/1.x or has a bad `Content-Length`;
/// [`H1Error::HeadTooLarge`] past [`MAX_HEAD`] bytes.
pub(super) fn parse_response(
    buf: &mut BytesMut,
    head_request: bool,
) -> Result<Option<(Response<()>, Framing)>, H1Error> {
    loop {
        // Offsets of each field's name and value in `buf`, so that the values can be slices
        // of the head's bytes once it is split off (no copy).
        let mut spans = [(0u32, 0u32, 0u32, 0u32); MAX_HEADERS];
        let mut storage = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
        let mut parsed = httparse::Response::new(&mut []);
        let base = buf.as_ptr() as usize;
        let (len, count, code, minor, reason) = match httparse::ParserConfig::default()
            .parse_response_with_uninit_headers(&mut parsed, buf, &mut storage)
        {
            Ok(httparse::Status::Complete(len)) => {
                for (span, h) in spans.iter_mut().zip(parsed.headers.iter()) {
                    let name = h.name.as_ptr() as usize - base;
                    let value = h.value.as_ptr() as usize - base;
                    *span = (name as u32, h.name.len() as u32, value as u32, h.value.len() as u32);
                }
                let reason = parsed
                    .reason
                    .filter(|r| !r.is_empty())
                    .map(|r| (r.as_ptr() as usize - base, r.len()));
                (len, parsed.headers.len(), parsed.code, parsed.version, reason)
            }
            Ok(httparse::Status::Partial) if buf.len() > MAX_HEAD => {
                return Err(H1Error::HeadTooLarge(MAX_HEAD));
            }
            Ok(httparse::Status::Partial) => return Ok(None),
            Err(httparse::Error::TooManyHeaders) => {
                return Err(H1Error::Head("more than 100 header fields"));
            }
            Err(_) => return Err(H1Error::Head("not an HTTP/1.x response head")),
        };
        if len > MAX_HEAD {
            return Err(H1Error::HeadTooLarge(MAX_HEAD));
        }
        let code = code.ok_or(H1Error::Head("no status"))?;
        let status = StatusCode::from_u16(code).map_err(|_| H1Error::Head("bad status"))?;
        let head = buf.split_to(len).freeze();
        if status.is_informational() && status != StatusCode::SWITCHING_PROTOCOLS {
            continue;
        }
        let mut headers = HeaderMap::with_capacity(count);
        for &(n, nl, v, vl) in &spans[..count] {
            let (n, v) = (n as usize, v as usize);
            let name = HeaderName::from_bytes(&head[n..n + nl as usize])
                .map_err(|_| H1Error::Head("bad field name"))?;
            let value = HeaderValue::from_maybe_shared(head.slice(v..v + vl as usize))
                .map_err(|_| H1Error::Head("bad field value"))?;
            headers.append(name, value);
        }
        let framing = framing(status, head_request, &mut headers)?;
        let mut response = Response::new(());
        *response.status_mut() = status;
        *response.version_mut() =
            if minor == Some(0) { Version::HTTP_10 } else { Version::HTTP_11 };
        if let Some((start, len)) = reason {
            let text = head.slice(start..start + len);
            // A reason phrase of the worker's own is passed on, as hyper's client does.
            if status.canonical_reason().map(str::as_bytes) != Some(&text[..]) {
                if let Ok(reason) = hyper::ext::ReasonPhrase::try_from(text) {
                    response.extensions_mut().insert(reason);
                }
            }
        }
        *response.headers_mut() = headers;
        return Ok(Some((response, framing)));
    }
}

/// The framing of a response's body (RFC 9112 §6.3): none for `HEAD`, 1xx, 204 and 304;
/// chunked when it is the final transfer coding (any other coding: up to the end of the
/// stream); else `Content-Length`, whose values must agree; else the end of the stream.
/// A `Content-Length` beside a `Transfer-Encoding` is removed (the coding wins, and the
/// length would be wrong for the decoded body).
fn framing(
    status: StatusCode,
    head_request: bool,
    headers: &mut HeaderMap,
) -> Result<Framing, H1Error> {
    if head_request
        || status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED
    {
        return Ok(Framing::Length(0));
    }
    if let Some(last) = headers.get_all(TRANSFER_ENCODING).iter().next_back() {
        let chunked = last
            .as_bytes()
            .rsplit(|&b| b == b',')
            .next()
            .is_some_and(|c| c.trim_ascii().eq_ignore_ascii_case(b"chunked"));
        headers.remove(CONTENT_LENGTH);
        return Ok(if chunked { Framing::Chunked } else { Framing::Close });
    }
    let mut length = None;
    for value in headers.get_all(CONTENT_LENGTH) {
        for part in value.as_bytes().split(|&b| b == b',') {
            let n = parse_length(part.trim_ascii()).ok_or(H1Error::Head("bad Content-Length"))?;
            if length.is_some_and(|l| l != n) {
                return Err(H1Error::Head("conflicting Content-Length values"));
            }
            length = Some(n);
        }
    }
    Ok(length.map_or(Framing::Close, Framing::Length))
}

/// A `Content-Length` value: decimal digits only, at most 19 of them.
fn parse_length(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() || digits.len() > 19 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(digits.iter().fold(0, |n, d| n * 10 + u64::from(d - b'0')))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proxy::headers::ClientInfo;

    fn parse(text: &str, head_request: bool) -> Result<Option<(Response<()>, Framing)>, H1Error> {
        parse_response(&mut BytesMut::from(text), head_request)
    }

    #[test]
    fn encodes_origin_form_head_with_every_field() {
        let req = Request::get("/a?b=1")
            .header("host", "example.com")
            .header("x-forwarded-for", "6.6.6.6")
            .header("accept", "a")
            .header("accept", "b")
            .body(())
            .unwrap();
        let client = ClientInfo::new("10.0.0.1".parse().unwrap(), &[]);
        let host = req.headers().get("host").cloned();
        let forwarded = Forwarded::new(req.headers(), &client, host);
        assert_eq!(
            &encode_request(&req, &forwarded)[..],
            &b"GET /a?b=1 HTTP/1.1\r\nhost: example.com\r\naccept: a\r\naccept: b\r\n\
               x-forwarded-for: 10.0.0.1\r\nx-forwarded-proto: http\r\n\
               x-forwarded-host: example.com\r\n\r\n"[..]
        );
    }

    #[test]
    fn only_bodiless_gets_and_heads_without_upgrade() {
        let get = Request::get("/").body(http_body_util::Empty::<Bytes>::new()).unwrap();
        assert!(wants_h1(&get, false));
        assert!(!wants_h1(&get, true));
        let post = Request::post("/").body(http_body_util::Empty::<Bytes>::new()).unwrap();
        assert!(!wants_h1(&post, false));
        let full = Request::get("/").body(http_body_util::Full::new(Bytes::from("x"))).unwrap();
        assert!(!wants_h1(&full, false));
    }

    #[test]
    fn parses_a_response_head_and_leaves_the_body() {
        let mut buf = BytesMut::from(
            "HTTP/1.1 200 OK\r\ncontent-length: 5\r\nset-cookie: a=1\r\nSet-Cookie: b=2\r\n\r\nhello",
        );
        let (resp, framing) = parse_response(&mut buf, false).unwrap().unwrap();
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.version(), Version::HTTP_11);
        assert_eq!(framing, Framing::Length(5));
        assert_eq!(resp.headers().get_all("set-cookie").iter().count(), 2);
        assert!(resp.extensions().get::<hyper::ext::ReasonPhrase>().is_none());
        assert_eq!(&buf[..], b"hello");
    }

    #[test]
    fn partial_heads_wait_and_oversized_ones_fail() {
        assert!(parse("HTTP/1.1 200 OK\r\ncontent-le", false).unwrap().is_none());
        let long = format!("HTTP/1.1 200 OK\r\nx: {}", "a".repeat(MAX_HEAD));
        assert!(matches!(parse(&long, false), Err(H1Error::HeadTooLarge(_))));
        assert!(matches!(parse("HTTP/2 200 OK\r\n\r\n", false), Err(H1Error::Head(_))));
        assert!(matches!(parse("garbage\r\n\r\n", false), Err(H1Error::Head(_))));
    }

    #[test]
    fn interim_responses_are_skipped() {
        let mut buf = BytesMut::from(
            "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nlink: </a>\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n",
        );
        let (resp, framing) = parse_response(&mut buf, false).unwrap().unwrap();
        assert_eq!((resp.status(), framing), (StatusCode::NO_CONTENT, Framing::Length(0)));
        assert!(buf.is_empty());
    }

    #[test]
    fn framing_follows_rfc_9112() {
        let framing_of = |text: &str, head: bool| parse(text, head).unwrap().unwrap().1;
        assert_eq!(
            framing_of("HTTP/1.1 200 OK\r\ncontent-length: 7\r\n\r\n", true),
            Framing::Length(0)
        );
        assert_eq!(
            framing_of("HTTP/1.1 304 Not Modified\r\ncontent-length: 7\r\n\r\n", false),
            Framing::Length(0)
        );
        assert_eq!(
            framing_of("HTTP/1.1 200 OK\r\ntransfer-encoding: gzip, Chunked\r\n\r\n", false),
            Framing::Chunked
        );
        assert_eq!(
            framing_of("HTTP/1.1 200 OK\r\ntransfer-encoding: gzip\r\n\r\n", false),
            Framing::Close
        );
        assert_eq!(framing_of("HTTP/1.1 200 OK\r\n\r\n", false), Framing::Close);
        assert_eq!(
            framing_of("HTTP/1.1 200 OK\r\ncontent-length: 3, 3\r\n\r\n", false),
            Framing::Length(3)
        );
        let (resp, framing) = parse(
            "HTTP/1.1 200 OK\r\ncontent-length: 3\r\ntransfer-encoding: chunked\r\n\r\n",
            false,
        )
        .unwrap()
        .unwrap();
        assert_eq!(framing, Framing::Chunked);
        assert!(resp.headers().get(CONTENT_LENGTH).is_none());
        for bad in [
            "content-length: 3, 4",
            "content-length: -1",
            "content-length: 1e3",
            "content-length: 99999999999999999999",
        ] {
            let text = format!("HTTP/1.1 200 OK\r\n{bad}\r\n\r\n");
            assert!(matches!(parse(&text, false), Err(H1Error::Head(_))), "{bad}");
        }
    }

    #[test]
    fn keeps_a_reason_phrase_of_the_workers_own_and_http_10() {
        let (resp, _) =
            parse("HTTP/1.0 200 Fine\r\ncontent-length: 0\r\n\r\n", false).unwrap().unwrap();
        assert_eq!(resp.version(), Version::HTTP_10);
        assert_eq!(
            resp.extensions().get::<hyper::ext::ReasonPhrase>().unwrap().as_bytes(),
            b"Fine"
        );
    }
}
