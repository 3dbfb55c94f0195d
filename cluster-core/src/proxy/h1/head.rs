//! Request heads out, response heads in: the encoding and parsing of the proxy's own
//! HTTP/1.1 client, and the framing of the response body (RFC 9112 §6.3).

use std::mem::MaybeUninit;

use bytes::{BufMut, Bytes, BytesMut};
use http::header::{CONTENT_LENGTH, TRANSFER_ENCODING};
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, Response, StatusCode, Version};
use hyper::body::Body;

use super::H1Error;
use crate::proxy::headers::{self, Forwarded};
use crate::proxy::spans::{self, Span};

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

/// A worker's response head, ready for the client.
#[derive(Debug)]
pub(super) struct ResponseHead {
    /// Status, version, reason phrase and the end-to-end fields: the hop-by-hop ones are
    /// already gone ([`headers::strip_hop_by_hop`]'s rules, applied as the fields are read,
    /// which spares the map an insertion and a removal for each).
    pub(super) response: Response<()>,
    /// How the body is delimited.
    pub(super) framing: Framing,
    /// The worker keeps the connection open after this response: HTTP/1.1 and no
    /// `Connection: close` (RFC 9112 §9.3).
    pub(super) keep_alive: bool,
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
) -> Result<Option<ResponseHead>, H1Error> {
    loop {
        // Offsets of each field's name and value in `buf`, so that the values can be slices
        // of the head's bytes once it is split off (no copy).
        let mut storage = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
        let mut parsed = httparse::Response::new(&mut []);
        let base = buf.as_ptr() as usize;
        let (len, code, minor, reason, spans) = match httparse::ParserConfig::default()
            .parse_response_with_uninit_headers(&mut parsed, buf, &mut storage)
        {
            Ok(httparse::Status::Complete(len)) => {
                let spans = spans::of(buf.as_ptr(), parsed.headers);
                let reason = parsed
                    .reason
                    .filter(|r| !r.is_empty())
                    .map(|r| (r.as_ptr() as usize - base, r.len()));
                (len, parsed.code, parsed.version, reason, spans)
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
        let fields = Fields::read(&head, &spans, status, head_request)?;
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
        *response.headers_mut() = fields.headers;
        let keep_alive = minor != Some(0) && !fields.close;
        return Ok(Some(ResponseHead { response, framing: fields.framing, keep_alive }));
    }
}

/// A response head's fields as the client gets them, and what the hop-by-hop ones said.
struct Fields {
    /// The end-to-end fields.
    headers: HeaderMap,
    /// How the body is delimited.
    framing: Framing,
    /// `Connection` has the `close` option.
    close: bool,
}

impl Fields {
    /// Reads the fields at `spans` of `head`, leaving out the hop-by-hop ones (the fixed
    /// list and those `Connection` names, [`headers::strip_hop_by_hop`]'s rules), and
    /// frames the body (RFC 9112 §6.3): none for `HEAD`, 1xx, 204 and 304; chunked when it
    /// is the final transfer coding (any other coding: up to the end of the stream); else
    /// `Content-Length`, whose values must agree; else the end of the stream. A
    /// `Content-Length` beside a `Transfer-Encoding` is left out (the coding wins, and the
    /// length would be wrong for the decoded body).
    fn read(
        head: &Bytes,
        spans: &[Span],
        status: StatusCode,
        head_request: bool,
    ) -> Result<Self, H1Error> {
        let raw = |start: u32, len: u32| &head[start as usize..(start + len) as usize];
        // `Connection` first: its options say which other fields to leave out.
        let mut close = false;
        let mut names_fields = false;
        for &(n, nl, v, vl) in spans {
            if raw(n, nl).eq_ignore_ascii_case(b"connection") {
                close |= headers::says_close(raw(v, vl));
                names_fields |= headers::named_fields(raw(v, vl)).next().is_some();
            }
        }
        let named = |name: &HeaderName| {
            spans.iter().any(|&(n, nl, v, vl)| {
                raw(n, nl).eq_ignore_ascii_case(b"connection")
                    && headers::named_fields(raw(v, vl))
                        .any(|option| option.eq_ignore_ascii_case(name.as_str().as_bytes()))
            })
        };
        let mut fields = HeaderMap::with_capacity(spans.len());
        let mut coding = None;
        let mut length = Ok(None);
        for &(n, nl, v, vl) in spans {
            let name =
                HeaderName::from_bytes(raw(n, nl)).map_err(|_| H1Error::Head("bad field name"))?;
            if name == TRANSFER_ENCODING {
                coding = Some(raw(v, vl));
            } else if name == CONTENT_LENGTH {
                length = length.and_then(|known| add_length(known, raw(v, vl)));
            }
            if headers::is_hop_by_hop(&name) || (names_fields && named(&name)) {
                continue;
            }
            let value = HeaderValue::from_maybe_shared(head.slice(v as usize..(v + vl) as usize))
                .map_err(|_| H1Error::Head("bad field value"))?;
            fields.append(name, value);
        }
        let bodiless = head_request
            || status.is_informational()
            || status == StatusCode::NO_CONTENT
            || status == StatusCode::NOT_MODIFIED;
        let framing = if bodiless {
            Framing::Length(0)
        } else if let Some(coding) = coding {
            fields.remove(CONTENT_LENGTH);
            let last = coding.rsplit(|&b| b == b',').next().unwrap_or_default();
            if last.trim_ascii().eq_ignore_ascii_case(b"chunked") {
                Framing::Chunked
            } else {
                Framing::Close
            }
        } else {
            length?.map_or(Framing::Close, Framing::Length)
        };
        Ok(Fields { headers: fields, framing, close })
    }
}

/// `known`, the length the `Content-Length` fields gave so far, checked against one more
/// field's `value` (a comma-separated list of lengths that must all agree).
fn add_length(mut known: Option<u64>, value: &[u8]) -> Result<Option<u64>, H1Error> {
    for part in value.split(|&b| b == b',') {
        let n = parse_length(part.trim_ascii()).ok_or(H1Error::Head("bad Content-Length"))?;
        if known.is_some_and(|l| l != n) {
            return Err(H1Error::Head("conflicting Content-Length values"));
        }
        known = Some(n);
    }
    Ok(known)
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
            .map(|head| head.map(|h| (h.response, h.framing)))
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
        let ResponseHead { response: resp, framing, keep_alive } =
            parse_response(&mut buf, false).unwrap().unwrap();
        assert!(keep_alive);
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
        let head = parse_response(&mut buf, false).unwrap().unwrap();
        assert_eq!(
            (head.response.status(), head.framing),
            (StatusCode::NO_CONTENT, Framing::Length(0))
        );
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

    #[test]
    fn hop_by_hop_fields_are_left_out_as_they_are_read() {
        let mut buf = BytesMut::from(
            "HTTP/1.1 200 OK\r\nConnection: keep-alive, X-Secret, Host\r\nKeep-Alive: timeout=5\r\n\
             x-secret: 1\r\nhost: h\r\ntrailer: x\r\nupgrade: h2c\r\nproxy-connection: close\r\n\
             content-length: 2\r\ndate: today\r\n\r\nok",
        );
        let head = parse_response(&mut buf, false).unwrap().unwrap();
        let names: Vec<_> = head.response.headers().keys().map(|n| n.as_str()).collect();
        assert_eq!(names, ["host", "content-length", "date"]);
        assert!(head.keep_alive);
        assert_eq!(head.framing, Framing::Length(2));
        // The same rules as for hyper's responses.
        let mut map = HeaderMap::new();
        for (name, value) in [
            ("connection", "keep-alive, X-Secret, Host"),
            ("keep-alive", "timeout=5"),
            ("x-secret", "1"),
            ("host", "h"),
            ("trailer", "x"),
            ("upgrade", "h2c"),
            ("proxy-connection", "close"),
            ("content-length", "2"),
            ("date", "today"),
        ] {
            map.append(HeaderName::from_static(name), HeaderValue::from_static(value));
        }
        assert!(headers::prepare_response(&mut map, Version::HTTP_11, false));
        assert_eq!(&map, head.response.headers());
    }

    #[test]
    fn close_and_http_10_end_the_connection_after_the_response() {
        let keep_alive = |text: &str| {
            parse_response(&mut BytesMut::from(text), false).unwrap().unwrap().keep_alive
        };
        assert!(!keep_alive("HTTP/1.1 200 OK\r\nconnection: Keep-Alive, CLOSE\r\n\r\n"));
        assert!(!keep_alive("HTTP/1.1 200 OK\r\nconnection: x\r\nConnection: close\r\n\r\n"));
        assert!(!keep_alive("HTTP/1.0 200 OK\r\nconnection: keep-alive\r\n\r\n"));
        assert!(keep_alive("HTTP/1.1 200 OK\r\nconnection: closer\r\n\r\n"));
        // A field named by `Connection` still frames the body it was sent with.
        let head = parse_response(
            &mut BytesMut::from(
                "HTTP/1.1 200 OK\r\nconnection: content-length\r\ncontent-length: 1\r\n\r\nx",
            ),
            false,
        )
        .unwrap()
        .unwrap();
        assert_eq!(head.framing, Framing::Length(1));
        assert!(head.response.headers().is_empty());
    }
}
