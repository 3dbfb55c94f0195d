//! Writing a response head on the lean path, and the framing of its body: hyper's server
//! encoding (`hyper::proto::h1::role::Server::encode`) for the HTTP/1.1 responses the lean
//! path sends, so that a client cannot tell which of the two answered.

use http::header::{CONNECTION, CONTENT_LENGTH, DATE, TRAILER, TRANSFER_ENCODING};
use http::{HeaderValue, StatusCode};
use http_body::Body;

use super::date;
use crate::proxy::body::ProxyBody;

/// How a response's body goes out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Framing {
    /// Exactly this many bytes (0: no body at all, as for `HEAD`, 204 and 304).
    Length(u64),
    /// Chunked transfer coding.
    Chunked,
}

/// What the encoded head decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Encoded {
    pub(super) framing: Framing,
    /// The connection closes after this response (`Connection: close`).
    pub(super) last: bool,
}

/// The head could not be encoded: `Content-Length` fields that disagree or do not parse
/// (hyper refuses such a response and closes the connection).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct BadHead;

/// Appends the head of `parts` to `out`, for a response to a `HEAD` request when
/// `head_request`, with `body` as the response's body; with `keep_alive` false the
/// response says `Connection: close` (the connection is shutting down).
pub(super) fn encode(
    out: &mut Vec<u8>,
    parts: &mut http::response::Parts,
    body: &ProxyBody,
    head_request: bool,
    keep_alive: bool,
) -> Result<Encoded, BadHead> {
    // What hyper's dispatcher tells its encoder of the body.
    let length = if body.is_end_stream() { None } else { Some(body.size_hint().exact()) };
    let status = parts.status;
    if !keep_alive {
        let connection = parts.headers.entry(CONNECTION);
        match connection {
            http::header::Entry::Occupied(mut e) => {
                if !e.iter().any(says_close) {
                    e.append(HeaderValue::from_static("close"));
                }
            }
            http::header::Entry::Vacant(e) => {
                e.insert(HeaderValue::from_static("close"));
            }
        }
    }
    let reason = parts.extensions.get::<hyper::ext::ReasonPhrase>();
    out.reserve(30 + parts.headers.len() * 32);
    if status == StatusCode::OK && reason.is_none() {
        out.extend_from_slice(b"HTTP/1.1 200 OK\r\n");
    } else {
        out.extend_from_slice(b"HTTP/1.1 ");
        out.extend_from_slice(status.as_str().as_bytes());
        out.push(b' ');
        match reason {
            Some(reason) => out.extend_from_slice(reason.as_bytes()),
            None => out.extend_from_slice(status.canonical_reason().unwrap_or("<none>").as_bytes()),
        }
        out.extend_from_slice(b"\r\n");
    }

    let chunked_ok = can_have_body(head_request, status);
    let mut framing = Framing::Length(0);
    let mut last = !keep_alive;
    let mut wrote_len = false;
    // A `content-length` line is out (a `transfer-encoding` one may not follow).
    let mut wrote_length = false;
    let mut wrote_date = false;
    let mut lengths: Option<u64> = None;
    // The field line left open for more values (`Connection`, `Transfer-Encoding` and
    // `Trailer` values share one line, as hyper writes them; a `Content-Length` keeps its
    // first value).
    let mut open_line: Option<&'static [u8]> = None;
    let mut must_add_chunked = false;
    let close_line = |out: &mut Vec<u8>, open: &mut Option<&'static [u8]>, add_chunked: bool| {
        if open.take().is_some() {
            if add_chunked {
                out.extend_from_slice(b", chunked");
            }
            out.extend_from_slice(b"\r\n");
        }
    };
    let mut previous: Option<&http::HeaderName> = None;
    for (name, value) in &parts.headers {
        let same = previous == Some(name);
        if !same {
            close_line(out, &mut open_line, must_add_chunked);
            must_add_chunked = false;
        }
        previous = Some(name);
        if name == CONTENT_LENGTH {
            if framing == Framing::Chunked {
                // Both framings: hyper refuses such a response.
                return Err(BadHead);
            }
            // The length to frame the body by: the body's own when known (its first
            // field's value is written), else the fields', which must agree.
            let framed = match length {
                Some(Some(_)) if same => continue,
                Some(Some(known)) => Some(known),
                Some(None) => {
                    let n = parse_length(value.as_bytes()).ok_or(BadHead)?;
                    match lengths {
                        Some(previous) if previous != n => return Err(BadHead),
                        Some(_) => continue,
                        None => lengths = Some(n),
                    }
                    Some(n)
                }
                // No body: the field goes, except for a `HEAD`, whose length is written as
                // any field.
                None if !head_request => continue,
                None => None,
            };
            wrote_len = true;
            wrote_length = true;
            if let Some(n) = framed {
                framing = Framing::Length(n);
                join(out, &mut open_line, b"content-length: ", value);
                continue;
            }
        } else if name == TRANSFER_ENCODING {
            if !chunked_ok {
                continue;
            }
            if wrote_length {
                return Err(BadHead);
            }
            wrote_len = true;
            must_add_chunked = !is_chunked(value.as_bytes());
            framing = Framing::Chunked;
            join(out, &mut open_line, b"transfer-encoding: ", value);
            continue;
        } else if name == CONNECTION {
            last |= says_close(value);
            join(out, &mut open_line, b"connection: ", value);
            continue;
        } else if name == TRAILER {
            if !chunked_ok {
                continue;
            }
            join(out, &mut open_line, b"trailer: ", value);
            continue;
        } else if name == DATE {
            wrote_date = true;
        }
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    close_line(out, &mut open_line, must_add_chunked);

    if !wrote_len {
        framing = match length {
            Some(None) if chunked_ok => {
                out.extend_from_slice(b"transfer-encoding: chunked\r\n");
                Framing::Chunked
            }
            // No chunked coding possible: only for responses that have no body anyway.
            Some(None) => Framing::Length(0),
            None | Some(Some(0)) => {
                if can_have_length(status) && !head_request {
                    out.extend_from_slice(b"content-length: 0\r\n");
                }
                Framing::Length(0)
            }
            Some(Some(n)) => {
                if can_have_length(status) {
                    out.extend_from_slice(b"content-length: ");
                    out.extend_from_slice(itoa(n, &mut [0; 20]));
                    out.extend_from_slice(b"\r\n");
                    Framing::Length(n)
                } else {
                    Framing::Length(0)
                }
            }
        };
    }
    if !can_have_body(head_request, status) {
        framing = Framing::Length(0);
    }
    if !wrote_date {
        out.extend_from_slice(b"date: ");
        date::extend(out);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    Ok(Encoded { framing, last })
}

/// Writes `value` of a field whose values share one line (`line` starts it: `name: `).
fn join(
    out: &mut Vec<u8>,
    open: &mut Option<&'static [u8]>,
    line: &'static [u8],
    value: &HeaderValue,
) {
    if open.is_some() {
        out.extend_from_slice(b", ");
    } else {
        out.extend_from_slice(line);
        *open = Some(line);
    }
    out.extend_from_slice(value.as_bytes());
}

/// Whether a response may have a body (and so a chunked coding): not to `HEAD`, not 1xx,
/// 204 or 304.
fn can_have_body(head_request: bool, status: StatusCode) -> bool {
    !head_request
        && !status.is_informational()
        && !matches!(status, StatusCode::NO_CONTENT | StatusCode::NOT_MODIFIED)
}

/// Whether a response may carry `Content-Length`: not 1xx, 204 or 304.
fn can_have_length(status: StatusCode) -> bool {
    !status.is_informational()
        && !matches!(status, StatusCode::NO_CONTENT | StatusCode::NOT_MODIFIED)
}

/// Whether a `Connection` value has the `close` option.
fn says_close(value: &HeaderValue) -> bool {
    crate::proxy::headers::says_close(value.as_bytes())
}

/// Whether a `Transfer-Encoding` value ends with `chunked`.
fn is_chunked(value: &[u8]) -> bool {
    value
        .rsplit(|&b| b == b',')
        .next()
        .is_some_and(|c| c.trim_ascii().eq_ignore_ascii_case(b"chunked"))
}

/// A `Content-Length` value as hyper reads it: digits only (a list of equal values too).
fn parse_length(value: &[u8]) -> Option<u64> {
    let mut known = None;
    for part in value.split(|&b| b == b',') {
        let digits = part.trim_ascii();
        if digits.is_empty() || digits.len() > 19 || !digits.iter().all(u8::is_ascii_digit) {
            return None;
        }
        let n = digits.iter().fold(0u64, |n, d| n * 10 + u64::from(d - b'0'));
        if known.is_some_and(|k| k != n) {
            return None;
        }
        known = Some(n);
    }
    known
}

/// `n` in decimal, written into `buf`.
pub(super) fn itoa(mut n: u64, buf: &mut [u8; 20]) -> &[u8] {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            return &buf[i..];
        }
    }
}

/// The chunk-size line of a chunk of `len` bytes (hex, then CRLF), written into `buf`.
pub(super) fn chunk_size(len: usize, buf: &mut [u8; 18]) -> &[u8] {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut i = buf.len() - 2;
    buf[i] = b'\r';
    buf[i + 1] = b'\n';
    let mut n = len;
    loop {
        i -= 1;
        buf[i] = HEX[n % 16];
        n /= 16;
        if n == 0 {
            return &buf[i..];
        }
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use http::Response;

    use super::*;

    fn encoded(
        resp: Response<ProxyBody>,
        head_request: bool,
        keep_alive: bool,
    ) -> (String, Encoded) {
        let (mut parts, body) = resp.into_parts();
        let mut out = Vec::new();
        let enc = encode(&mut out, &mut parts, &body, head_request, keep_alive).unwrap();
        let text = String::from_utf8(out).unwrap();
        // The date is the only part that changes.
        let (before, after) = text.split_once("date: ").unwrap();
        (format!("{before}date: D{}", &after[29..]), enc)
    }

    /// A body of unknown length.
    fn streaming() -> ProxyBody {
        use http_body_util::{BodyExt, StreamBody};
        let frames = futures_util::stream::empty::<
            Result<http_body::Frame<Bytes>, crate::proxy::BoxError>,
        >();
        ProxyBody::front(StreamBody::new(frames).boxed_unsync(), None)
    }

    #[test]
    fn unknown_lengths_are_chunked() {
        let (head, enc) = encoded(Response::new(streaming()), false, true);
        assert_eq!(head, "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\ndate: D\r\n\r\n");
        assert_eq!(enc.framing, Framing::Chunked);
    }

    fn text(body: &'static str) -> ProxyBody {
        ProxyBody::text(Bytes::from_static(body.as_bytes()))
    }

    #[test]
    fn known_lengths_are_written_and_unknown_ones_chunked() {
        let (head, enc) = encoded(Response::new(text("hello")), false, true);
        assert_eq!(head, "HTTP/1.1 200 OK\r\ncontent-length: 5\r\ndate: D\r\n\r\n");
        assert_eq!(enc, Encoded { framing: Framing::Length(5), last: false });
        let resp = Response::builder().header("content-length", "5").body(text("hello")).unwrap();
        let (head, _) = encoded(resp, false, true);
        assert_eq!(head, "HTTP/1.1 200 OK\r\ncontent-length: 5\r\ndate: D\r\n\r\n");
        let (head, enc) = encoded(Response::new(ProxyBody::empty()), false, true);
        assert_eq!(head, "HTTP/1.1 200 OK\r\ncontent-length: 0\r\ndate: D\r\n\r\n");
        assert_eq!(enc.framing, Framing::Length(0));
    }

    #[test]
    fn heads_and_bodiless_statuses_send_no_body() {
        // A `HEAD` keeps the worker's length.
        let resp =
            Response::builder().header("content-length", "42").body(ProxyBody::empty()).unwrap();
        let (head, enc) = encoded(resp, true, true);
        assert_eq!(head, "HTTP/1.1 200 OK\r\ncontent-length: 42\r\ndate: D\r\n\r\n");
        assert_eq!(enc.framing, Framing::Length(0));
        let resp = Response::builder().status(204).body(ProxyBody::empty()).unwrap();
        let (head, _) = encoded(resp, false, true);
        assert_eq!(head, "HTTP/1.1 204 No Content\r\ndate: D\r\n\r\n");
    }

    #[test]
    fn a_closing_connection_says_so_once() {
        let (head, enc) = encoded(Response::new(ProxyBody::empty()), false, false);
        assert_eq!(
            head,
            "HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 0\r\ndate: D\r\n\r\n"
        );
        assert!(enc.last);
        let resp = Response::builder()
            .status(503)
            .header("connection", "keep-alive")
            .header("connection", "x")
            .header("date", "then")
            .body(ProxyBody::empty())
            .unwrap();
        let (mut parts, body) = resp.into_parts();
        let mut out = Vec::new();
        let enc = encode(&mut out, &mut parts, &body, false, false).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "HTTP/1.1 503 Service Unavailable\r\nconnection: keep-alive, x, close\r\ndate: then\r\n\
             content-length: 0\r\n\r\n"
        );
        assert!(enc.last);
    }

    #[test]
    fn a_workers_reason_phrase_is_kept() {
        let mut resp = Response::new(ProxyBody::empty());
        resp.extensions_mut().insert(hyper::ext::ReasonPhrase::from_static(b"Fine"));
        let (head, _) = encoded(resp, false, true);
        assert!(head.starts_with("HTTP/1.1 200 Fine\r\n"), "{head}");
    }

    #[test]
    fn disagreeing_lengths_are_refused() {
        let resp = Response::builder()
            .header("content-length", "1")
            .header("content-length", "2")
            .body(streaming())
            .unwrap();
        let (mut parts, body) = resp.into_parts();
        assert_eq!(encode(&mut Vec::new(), &mut parts, &body, false, true), Err(BadHead));
    }

    #[test]
    fn a_length_and_a_coding_together_are_refused() {
        for (first, second) in
            [("content-length", "transfer-encoding"), ("transfer-encoding", "content-length")]
        {
            let value = |name: &str| if name == "content-length" { "1" } else { "chunked" };
            let resp = Response::builder()
                .header(first, value(first))
                .header(second, value(second))
                .body(streaming())
                .unwrap();
            let (mut parts, body) = resp.into_parts();
            assert_eq!(
                encode(&mut Vec::new(), &mut parts, &body, false, true),
                Err(BadHead),
                "{first}"
            );
        }
    }

    #[test]
    fn numbers() {
        assert_eq!(itoa(0, &mut [0; 20]), b"0");
        assert_eq!(itoa(u64::MAX, &mut [0; 20]), b"18446744073709551615");
        assert_eq!(chunk_size(0x1AF, &mut [0; 18]), b"1AF\r\n");
        assert_eq!(chunk_size(usize::MAX, &mut [0; 18]), b"FFFFFFFFFFFFFFFF\r\n");
    }
}
