//! Reading a request head on the lean path: is it complete, is it one the lean path
//! serves, and the request the handler gets.

use std::mem::MaybeUninit;

use bytes::{Bytes, BytesMut};
use http::header::{CONTENT_LENGTH, EXPECT, TE, TRANSFER_ENCODING, UPGRADE};
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, Uri, Version};

use crate::proxy::FrontDoor;
use crate::proxy::body::NoBody;
use crate::proxy::spans::{self, Span};

/// Header fields the lean path parses; a head with more goes to hyper (which allows
/// `maxHeaders`).
pub(super) const MAX_FIELDS: usize = 100;

/// The longest request target hyper's server takes (longer ones get its 414).
const MAX_TARGET: usize = u16::MAX as usize - 1;

/// What the bytes at the start of a connection's buffer hold.
#[derive(Debug)]
#[allow(
    clippy::large_enum_variant,
    reason = "one per request, matched at once; boxing would allocate"
)]
pub(super) enum Head {
    /// Not a complete head yet.
    Partial,
    /// A head the lean path serves: the request, and the bytes it took (consumed).
    Lean(Request<NoBody>),
    /// Anything else (a body, an upgrade, HTTP/1.0, a front door path, a head hyper would
    /// refuse): hyper serves the connection from this request on, with hyper's own answers.
    Other,
}

/// What the lean path needs to know of its proxy's settings.
#[derive(Debug, Clone, Copy)]
pub(super) struct Rules<'a> {
    /// Fields a head may have (`maxHeaders`, at most [`MAX_FIELDS`]).
    pub(super) max_fields: usize,
    /// Bytes a head may take (hyper's read buffer limit: `maxHeaderSize`, at least 8 KiB).
    pub(super) max_head: usize,
    /// The front door, whose paths are left to hyper.
    pub(super) front: Option<&'a dyn FrontDoor>,
}

/// Reads the head at the start of `buf`; consumes it when the lean path serves it.
///
/// The lean path serves `GET` and `HEAD` requests over HTTP/1.1 with an origin-form target,
/// no body (no `Content-Length` or `Transfer-Encoding`), no `Expect`, `TE` or `Upgrade`, and
/// no `Connection` field other than `keep-alive`: nearly every request a browser or a load
/// balancer sends for a page or an asset. Every other head is left in `buf` for hyper.
pub(super) fn read(buf: &mut BytesMut, rules: Rules<'_>) -> Head {
    let mut storage = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_FIELDS];
    let mut parsed = httparse::Request::new(&mut []);
    let base = buf.as_ptr() as usize;
    let max_fields = rules.max_fields.min(MAX_FIELDS);
    let (len, method, target, spans) = match httparse::ParserConfig::default()
        .parse_request_with_uninit_headers(&mut parsed, buf, &mut storage[..max_fields])
    {
        Ok(httparse::Status::Complete(len)) => {
            if parsed.version != Some(1) {
                return Head::Other;
            }
            let method = match parsed.method {
                Some("GET") => Method::GET,
                Some("HEAD") => Method::HEAD,
                _ => return Head::Other,
            };
            let Some(path) = parsed.path.filter(|p| p.starts_with('/')) else {
                return Head::Other;
            };
            // Offsets fit in 32 bits: the head is within `max_head`, checked below, or
            // refused.
            let target = (path.as_ptr() as usize - base, path.len());
            (len, method, target, spans::of(buf.as_ptr(), parsed.headers))
        }
        Ok(httparse::Status::Partial) if buf.len() < rules.max_head => return Head::Partial,
        _ => return Head::Other,
    };
    if len > rules.max_head || len > u32::MAX as usize {
        return Head::Other;
    }
    let raw = |start: u32, len: u32| &buf[start as usize..(start + len) as usize];
    // hyper answers 414 to a longer target.
    if target.1 > MAX_TARGET {
        return Head::Other;
    }
    if let Some(front) = rules.front {
        // The path as `Uri::path` gives it to `claims`: without the query.
        let target = &buf[target.0..target.0 + target.1];
        let path = target.split(|&b| b == b'?').next().unwrap_or_default();
        match std::str::from_utf8(path) {
            Ok(path) if !front.may_claim(path) => {}
            _ => return Head::Other,
        }
    }
    // The fields that change how a request is read or answered: hyper's.
    for &(n, nl, v, vl) in &spans {
        let name = raw(n, nl);
        let refused = [CONTENT_LENGTH, TRANSFER_ENCODING, EXPECT, TE, UPGRADE]
            .iter()
            .any(|f| name.eq_ignore_ascii_case(f.as_str().as_bytes()));
        let connection = name.eq_ignore_ascii_case(b"connection")
            && !raw(v, vl).trim_ascii().eq_ignore_ascii_case(b"keep-alive");
        if refused || connection {
            return Head::Other;
        }
    }
    let head = buf.split_to(len).freeze();
    match build(&head, &spans, method, target) {
        Some(req) => Head::Lean(req),
        None => {
            // A field `http` refuses although httparse took it: hyper answers it, so the
            // head goes back in front of whatever followed it.
            let mut restored = BytesMut::with_capacity(head.len() + buf.len());
            restored.extend_from_slice(&head);
            restored.extend_from_slice(buf);
            *buf = restored;
            Head::Other
        }
    }
}

/// The request for the handler: every field's value is a slice of `head` (no copy).
fn build(
    head: &Bytes,
    spans: &[Span],
    method: Method,
    target: (usize, usize),
) -> Option<Request<NoBody>> {
    let uri = Uri::from_maybe_shared(head.slice(target.0..target.0 + target.1)).ok()?;
    let mut headers = HeaderMap::with_capacity(spans.len());
    for &(n, nl, v, vl) in spans {
        let (n, nl, v, vl) = (n as usize, nl as usize, v as usize, vl as usize);
        let name = HeaderName::from_bytes(&head[n..n + nl]).ok()?;
        let value = HeaderValue::from_maybe_shared(head.slice(v..v + vl)).ok()?;
        headers.append(name, value);
    }
    let mut req = Request::new(NoBody::new());
    *req.method_mut() = method;
    *req.uri_mut() = uri;
    *req.version_mut() = Version::HTTP_11;
    *req.headers_mut() = headers;
    Some(req)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Admin;

    impl FrontDoor for Admin {
        fn claims(&self, req: &Request<hyper::body::Incoming>) -> bool {
            self.may_claim(req.uri().path())
        }
        fn may_claim(&self, path: &str) -> bool {
            path.starts_with("/admin")
        }
        fn call(
            &self,
            _req: Request<hyper::body::Incoming>,
            _peer: crate::proxy::FrontPeer,
        ) -> crate::proxy::FrontFuture {
            unreachable!()
        }
    }

    fn rules(front: Option<&dyn FrontDoor>) -> Rules<'_> {
        Rules { max_fields: 100, max_head: 8192, front }
    }

    fn read_text(text: &str) -> (Head, BytesMut) {
        let mut buf = BytesMut::from(text);
        let head = read(&mut buf, rules(Some(&Admin)));
        (head, buf)
    }

    #[test]
    fn plain_gets_and_heads_are_lean_and_consumed() {
        let (head, rest) = read_text(
            "GET /a?b=1 HTTP/1.1\r\nHost: x\r\nAccept: */*\r\nConnection: Keep-Alive\r\n\r\nGET /next",
        );
        let Head::Lean(req) = head else { panic!("{head:?}") };
        assert_eq!(
            (req.method(), req.uri().path(), req.uri().query()),
            (&Method::GET, "/a", Some("b=1"))
        );
        assert_eq!(req.version(), Version::HTTP_11);
        assert_eq!(req.headers()["host"], "x");
        assert_eq!(req.headers().len(), 3);
        assert_eq!(&rest[..], b"GET /next");
        let (head, _) = read_text("HEAD / HTTP/1.1\r\nhost: x\r\n\r\n");
        assert!(matches!(head, Head::Lean(req) if req.method() == Method::HEAD));
        let (head, _) = read_text("GET /app?from=/admin HTTP/1.1\r\nhost: x\r\n\r\n");
        assert!(matches!(head, Head::Lean(_)));
    }

    #[test]
    fn everything_else_is_left_whole_for_hyper() {
        for text in [
            "POST / HTTP/1.1\r\nhost: x\r\ncontent-length: 1\r\n\r\nx",
            "GET / HTTP/1.1\r\nhost: x\r\ncontent-length: 0\r\n\r\n",
            "GET / HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n",
            "GET / HTTP/1.1\r\nhost: x\r\nconnection: upgrade\r\nupgrade: websocket\r\n\r\n",
            "GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n",
            "GET / HTTP/1.1\r\nhost: x\r\nexpect: 100-continue\r\n\r\n",
            "GET / HTTP/1.1\r\nhost: x\r\nte: trailers\r\n\r\n",
            "GET / HTTP/1.0\r\n\r\n",
            "GET http://x/ HTTP/1.1\r\nhost: x\r\n\r\n",
            "OPTIONS * HTTP/1.1\r\nhost: x\r\n\r\n",
            "GET /admin/api HTTP/1.1\r\nhost: x\r\n\r\n",
            "GET /admin/api?tab=1 HTTP/1.1\r\nhost: x\r\n\r\n",
            "GET / HTTP/1.1\r\nbad header\r\n\r\n",
        ] {
            let (head, rest) = read_text(text);
            assert!(matches!(head, Head::Other), "{text:?}: {head:?}");
            assert_eq!(&rest[..], text.as_bytes(), "{text:?} was consumed");
        }
    }

    #[test]
    fn partial_heads_wait_until_they_could_not_fit() {
        let (head, _) = read_text("GET / HTTP/1.1\r\nhost: x\r\n");
        assert!(matches!(head, Head::Partial));
        let long = format!("GET / HTTP/1.1\r\nx: {}", "a".repeat(8192));
        let (head, rest) = read_text(&long);
        assert!(matches!(head, Head::Other));
        assert_eq!(rest.len(), long.len());
        // A target hyper answers 414.
        let long = format!("GET /{} HTTP/1.1\r\nhost: x\r\n\r\n", "a".repeat(MAX_TARGET));
        let mut buf = BytesMut::from(long.as_str());
        let roomy = Rules { max_head: 1 << 20, ..rules(None) };
        assert!(matches!(read(&mut buf, roomy), Head::Other));
        // Too many fields for the lean path: hyper counts them against `maxHeaders`.
        let mut buf = BytesMut::from("GET / HTTP/1.1\r\na: 1\r\nb: 2\r\nc: 3\r\n\r\n");
        let few = Rules { max_fields: 2, ..rules(None) };
        assert!(matches!(read(&mut buf, few), Head::Other));
    }
}
