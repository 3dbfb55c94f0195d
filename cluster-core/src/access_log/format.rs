//! Access log lines: the combined format and JSON.
//!
//! # Combined
//!
//! The Apache/nginx "combined" format, field for field, so that log tools parse it
//! (GoAccess, AWStats, `lnav`, fail2ban filters):
//!
//! ```text
//! 127.0.0.1 - - [03/Dec/2026:06:50:53 +0000] "GET /a?x=1 HTTP/1.1" 200 12 "-" "curl/8.5.0" duration=0.001234 slot=0 pid=4242 end=complete
//! ```
//!
//! client address, identity (`-`), user (`-`), the time the request was received in UTC,
//! the request line, the status, the body bytes sent (`0` when none, as nginx's
//! `$body_bytes_sent`), the referer and the user agent (`-` when absent). The cluster's own
//! fields follow as `key=value` pairs after the standard ones, where such tools ignore
//! them: `duration` in seconds, the worker's `slot` and `pid` (`-` for a response of the
//! proxy itself) and how the response `end`ed (`complete`, `aborted`, `failed`).
//!
//! Quoted fields are escaped as nginx escapes them: `"`, `\`, control characters and bytes
//! outside ASCII become `\xHH`, so a line is always one line and its quotes always balance.
//!
//! # JSON
//!
//! One object per line, every key always present (`null` when unknown):
//!
//! ```text
//! {"time":"2026-12-03T06:50:53.123456Z","client":"127.0.0.1","method":"GET","path":"/a","query":"x=1","protocol":"HTTP/1.1","status":200,"bytes":12,"durationMs":1.234,"slot":0,"pid":4242,"referer":null,"userAgent":"curl/8.5.0","end":"complete"}
//! ```
//!
//! Strings are escaped by serde_json; a header value that is not UTF-8 has its bad bytes
//! replaced by U+FFFD.

use std::io::Write as _;
use std::time::{SystemTime, UNIX_EPOCH};

use http::HeaderValue;
use time::OffsetDateTime;

use super::record::Record;
use crate::config::AccessLogFormat;

/// Month names of the combined format's timestamp.
const MONTHS: [&str; 12] =
    ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

/// Writes records as lines of one format. Keeps the timestamp of the last second it
/// formatted, since consecutive lines mostly share it.
#[derive(Debug)]
pub(crate) struct LineFormat {
    format: AccessLogFormat,
    /// The Unix second that `clf` and `iso` show.
    second: Option<u64>,
    /// `03/Dec/2026:06:50:53 +0000`.
    clf: String,
    /// `2026-12-03T06:50:53` (the fraction and `Z` are added per line).
    iso: String,
}

impl LineFormat {
    /// Lines in `format`.
    pub(crate) fn new(format: AccessLogFormat) -> Self {
        Self { format, second: None, clf: String::new(), iso: String::new() }
    }

    /// Appends `record` to `out` as one line, with its `\n`.
    pub(crate) fn write(&mut self, record: &Record, out: &mut Vec<u8>) {
        let micros = self.stamp(record.time);
        match self.format {
            AccessLogFormat::Json => self.json(record, micros, out),
            // `Combined` and any format added later without a writer of its own.
            _ => self.combined(record, out),
        }
    }

    /// Updates the cached timestamp texts to `time`'s second; returns its microseconds.
    fn stamp(&mut self, time: SystemTime) -> u32 {
        let since = time.duration_since(UNIX_EPOCH).unwrap_or_default();
        let second = since.as_secs();
        if self.second != Some(second) {
            self.second = Some(second);
            let t = OffsetDateTime::from(UNIX_EPOCH + std::time::Duration::from_secs(second));
            let (y, m, d) = (t.year(), t.month() as usize, t.day());
            let (hh, mm, ss) = (t.hour(), t.minute(), t.second());
            self.clf.clear();
            self.iso.clear();
            use std::fmt::Write as _;
            let month = MONTHS[m.clamp(1, 12) - 1];
            let _ = write!(self.clf, "{d:02}/{month}/{y:04}:{hh:02}:{mm:02}:{ss:02} +0000");
            let _ = write!(self.iso, "{y:04}-{m:02}-{d:02}T{hh:02}:{mm:02}:{ss:02}");
        }
        since.subsec_micros()
    }

    fn combined(&self, r: &Record, out: &mut Vec<u8>) {
        let _ = write!(out, "{} - - [{}] \"", r.client, self.clf);
        escape(r.method.as_str().as_bytes(), out);
        out.push(b' ');
        escape(r.target().as_bytes(), out);
        let _ = write!(out, " {}\" {} {} ", r.protocol(), r.status, r.bytes);
        quoted_header(r.referer.as_ref(), out);
        out.push(b' ');
        quoted_header(r.user_agent.as_ref(), out);
        let us = whole_micros(r.duration);
        let _ = write!(out, " duration={}.{:06}", us / 1_000_000, us % 1_000_000);
        match r.worker {
            Some(w) => {
                let _ = write!(out, " slot={}", w.slot);
                match w.pid {
                    Some(pid) => {
                        let _ = write!(out, " pid={pid}");
                    }
                    None => out.extend_from_slice(b" pid=-"),
                }
            }
            None => out.extend_from_slice(b" slot=- pid=-"),
        }
        let _ = writeln!(out, " end={}", r.end.name());
    }

    fn json(&self, r: &Record, micros: u32, out: &mut Vec<u8>) {
        let _ = write!(out, "{{\"time\":\"{}.{micros:06}Z\",\"client\":\"{}\"", self.iso, r.client);
        out.extend_from_slice(b",\"method\":");
        json_str(r.method.as_str(), out);
        out.extend_from_slice(b",\"path\":");
        match r.uri.path_and_query() {
            Some(pq) => {
                json_str(pq.path(), out);
                out.extend_from_slice(b",\"query\":");
                match pq.query() {
                    Some(q) => json_str(q, out),
                    None => out.extend_from_slice(b"null"),
                }
            }
            None => {
                json_str(r.target(), out);
                out.extend_from_slice(b",\"query\":null");
            }
        }
        let _ = write!(
            out,
            ",\"protocol\":\"{}\",\"status\":{},\"bytes\":{},\"durationMs\":{}.{:03}",
            r.protocol(),
            r.status,
            r.bytes,
            whole_micros(r.duration) / 1000,
            whole_micros(r.duration) % 1000
        );
        match r.worker {
            Some(w) => {
                let _ = write!(out, ",\"slot\":{},\"pid\":", w.slot);
                match w.pid {
                    Some(pid) => {
                        let _ = write!(out, "{pid}");
                    }
                    None => out.extend_from_slice(b"null"),
                }
            }
            None => out.extend_from_slice(b",\"slot\":null,\"pid\":null"),
        }
        out.extend_from_slice(b",\"referer\":");
        json_header(r.referer.as_ref(), out);
        out.extend_from_slice(b",\"userAgent\":");
        json_header(r.user_agent.as_ref(), out);
        let _ = writeln!(out, ",\"end\":\"{}\"}}", r.end.name());
    }
}

/// `d` in whole microseconds, rounded to the nearest: the durations are written as
/// fixed-point decimals from it (formatting an `f64` costs several times more, on every
/// line).
fn whole_micros(d: std::time::Duration) -> u64 {
    d.as_secs().saturating_mul(1_000_000).saturating_add(u64::from(d.subsec_nanos() + 500) / 1000)
}

/// Copies `bytes`, escaping what could break a quoted field: `"`, `\`, control characters
/// and bytes outside printable ASCII, as `\xHH` (nginx's escaping).
fn escape(bytes: &[u8], out: &mut Vec<u8>) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        if b == b'"' || b == b'\\' || !(0x20..0x7f).contains(&b) {
            out.extend_from_slice(&bytes[start..i]);
            out.extend_from_slice(&[
                b'\\',
                b'x',
                HEX[usize::from(b >> 4)],
                HEX[usize::from(b & 15)],
            ]);
            start = i + 1;
        }
    }
    out.extend_from_slice(&bytes[start..]);
}

/// A header value in double quotes, escaped; `"-"` when absent.
fn quoted_header(value: Option<&HeaderValue>, out: &mut Vec<u8>) {
    out.push(b'"');
    match value {
        Some(v) => escape(v.as_bytes(), out),
        None => out.push(b'-'),
    }
    out.push(b'"');
}

/// A JSON string (serde_json's escaping).
fn json_str(text: &str, out: &mut Vec<u8>) {
    // Writing to a `Vec` cannot fail.
    let _ = serde_json::to_writer(&mut *out, text);
}

/// A header value as a JSON string (bytes that are not UTF-8 replaced), or `null`.
fn json_header(value: Option<&HeaderValue>, out: &mut Vec<u8>) {
    match value {
        Some(v) => json_str(&String::from_utf8_lossy(v.as_bytes()), out),
        None => out.extend_from_slice(b"null"),
    }
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
    use std::time::{Duration, UNIX_EPOCH};

    use http::{HeaderMap, HeaderValue, Method, Uri, Version};

    use super::super::record::{End, Record, WorkerRef};
    use super::LineFormat;
    use crate::config::AccessLogFormat;

    /// 2026-12-03T06:50:53.000123Z.
    fn at() -> std::time::SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_796_280_653) + Duration::from_micros(123)
    }

    fn record(target: &str, ua: Option<&[u8]>) -> Record {
        let mut headers = HeaderMap::new();
        if let Some(ua) = ua {
            headers.insert("user-agent", HeaderValue::from_bytes(ua).unwrap());
        }
        headers.insert("referer", HeaderValue::from_static("http://example.com/from"));
        let uri: Uri = target.parse().unwrap();
        let client = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 7));
        let mut r = Record::new(client, &Method::GET, &uri, Version::HTTP_11, &headers);
        r.time = at();
        r.status = 200;
        r.bytes = 1234;
        r.duration = Duration::from_micros(1500);
        r.worker = Some(WorkerRef { slot: 2, pid: Some(4242) });
        r.end = End::Complete;
        r
    }

    fn line(format: AccessLogFormat, r: &Record) -> String {
        let mut out = Vec::new();
        LineFormat::new(format).write(r, &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn combined_is_the_standard_format_with_our_fields_after() {
        let r = record("/a/b?x=1&y=2", Some(b"curl/8.5.0"));
        assert_eq!(
            line(AccessLogFormat::Combined, &r),
            "10.0.0.7 - - [03/Dec/2026:06:50:53 +0000] \"GET /a/b?x=1&y=2 HTTP/1.1\" 200 1234 \
             \"http://example.com/from\" \"curl/8.5.0\" duration=0.001500 slot=2 pid=4242 \
             end=complete\n"
        );
    }

    #[test]
    fn combined_without_worker_or_headers() {
        let mut r = record("/", None);
        r.referer = None;
        r.worker = None;
        r.status = 503;
        r.bytes = 0;
        r.version = Version::HTTP_2;
        r.client = IpAddr::V6(Ipv6Addr::LOCALHOST);
        r.end = End::Aborted;
        assert_eq!(
            line(AccessLogFormat::Combined, &r),
            "::1 - - [03/Dec/2026:06:50:53 +0000] \"GET / HTTP/2.0\" 503 0 \"-\" \"-\" \
             duration=0.001500 slot=- pid=- end=aborted\n"
        );
        r.worker = Some(super::super::record::WorkerRef { slot: 0, pid: None });
        assert!(line(AccessLogFormat::Combined, &r).contains(" slot=0 pid=- "));
    }

    #[test]
    fn combined_escapes_quotes_backslashes_and_control_bytes() {
        // A user agent trying to end the quoted field, a tab, and bytes outside ASCII
        // (obs-text, allowed in header values; other control bytes are refused by the parser).
        let ua: &[u8] = b"evil\" 200 \\ \t\xc3\xa9";
        let mut r = record("/p%20q?a=%22", Some(ua));
        r.referer = Some(HeaderValue::from_bytes(b"x\"y").unwrap());
        let text = line(AccessLogFormat::Combined, &r);
        assert!(text.contains(r#""x\x22y" "evil\x22 200 \x5C \x09\xC3\xA9" duration="#), "{text}");
        assert_eq!(text.matches('\n').count(), 1);
        assert_eq!(text.matches('"').count(), 6, "three quoted fields: {text}");
        // The request line passes through the same escaping, whatever bytes it holds.
        let mut out = Vec::new();
        super::escape(b"/a\"b\x01\n\x7f\xff", &mut out);
        assert_eq!(out, br"/a\x22b\x01\x0A\x7F\xFF");
    }

    #[test]
    fn json_is_one_object_with_every_field() {
        let r = record("/a/b?x=1&y=2", Some(b"curl/8.5.0"));
        let text = line(AccessLogFormat::Json, &r);
        assert!(text.ends_with("}\n") && text.matches('\n').count() == 1, "{text}");
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            v,
            serde_json::json!({
                "time": "2026-12-03T06:50:53.000123Z",
                "client": "10.0.0.7",
                "method": "GET",
                "path": "/a/b",
                "query": "x=1&y=2",
                "protocol": "HTTP/1.1",
                "status": 200,
                "bytes": 1234,
                "durationMs": 1.5,
                "slot": 2,
                "pid": 4242,
                "referer": "http://example.com/from",
                "userAgent": "curl/8.5.0",
                "end": "complete",
            })
        );
        let mut r = record("/", None);
        r.worker = None;
        r.referer = None;
        r.end = End::Failed;
        let v: serde_json::Value = serde_json::from_str(&line(AccessLogFormat::Json, &r)).unwrap();
        for key in ["query", "slot", "pid", "referer", "userAgent"] {
            assert_eq!(v[key], serde_json::Value::Null, "{key}");
        }
        assert_eq!(v["end"], "failed");
    }

    #[test]
    fn json_escapes_quotes_control_characters_and_bad_utf8() {
        let ua: &[u8] = b"a\"b\\c\td \xc3\xa9 \xff";
        let r = record("/q?s=%22%0A", Some(ua));
        let text = line(AccessLogFormat::Json, &r);
        assert_eq!(text.matches('\n').count(), 1, "{text}");
        assert!(text.contains(r#""userAgent":"a\"b\\c\td é �""#), "{text}");
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["userAgent"], "a\"b\\c\td é \u{fffd}");
        assert_eq!(v["query"], "s=%22%0A");
        // Any control character is escaped, whatever field it comes in.
        let mut out = Vec::new();
        super::json_str("a\u{1}\n\"", &mut out);
        assert_eq!(out, br#""a\u0001\n\"""#);
    }

    #[test]
    fn the_timestamp_follows_the_clock() {
        let mut format = LineFormat::new(AccessLogFormat::Combined);
        let mut r = record("/", None);
        let mut out = Vec::new();
        format.write(&r, &mut out);
        r.time = UNIX_EPOCH + Duration::from_secs(951_782_400); // 2000-02-29T00:00:00Z
        format.write(&r, &mut out);
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("[03/Dec/2026:06:50:53 +0000]"), "{text}");
        assert!(text.contains("[29/Feb/2000:00:00:00 +0000]"), "{text}");
        let mut json = LineFormat::new(AccessLogFormat::Json);
        let mut out = Vec::new();
        json.write(&r, &mut out);
        assert!(
            String::from_utf8(out).unwrap().contains(r#""time":"2000-02-29T00:00:00.000000Z""#)
        );
    }
}
