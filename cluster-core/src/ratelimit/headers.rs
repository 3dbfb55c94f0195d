//! What a rate-limited response says: `Retry-After` (RFC 9110 §10.2.3) and the
//! `RateLimit-Policy` / `RateLimit` fields of draft-ietf-httpapi-ratelimit-headers-10.
//!
//! `RateLimit-Policy: "default";q=100;w=60` names the policy: `q` requests per `w` seconds.
//! `RateLimit: "default";r=0;t=12` is the client's state under it: `r` requests remaining
//! now, and `t` seconds until the whole quota is available again. Both are structured-field
//! lists (RFC 8941) of one item, a string naming the policy, with integer parameters.
//!
//! Allowed responses carry them too (so a well-behaved client can slow down before it is
//! refused): two header values, formatted into a small buffer per response.

use std::time::Duration;

use bytes::Bytes;
use http::header::{CONTENT_TYPE, HeaderName, RETRY_AFTER};
use http::{HeaderMap, HeaderValue, Response, StatusCode};

use super::policy::{Policy, QuotaState, ceil_secs};

/// `RateLimit-Policy`: the limit in force.
pub(crate) static RATELIMIT_POLICY: HeaderName = HeaderName::from_static("ratelimit-policy");
/// `RateLimit`: the client's quota under it.
pub(crate) static RATELIMIT: HeaderName = HeaderName::from_static("ratelimit");

/// The `RateLimit-Policy` value of `policy`; `w` is the window in whole seconds, rounded up.
pub(crate) fn policy_value(policy: &Policy) -> HeaderValue {
    let w = ceil_secs(policy.window()).max(1);
    let text = format!("\"default\";q={};w={w}", policy.max());
    HeaderValue::from_str(&text).expect("digits and ASCII only")
}

/// The `RateLimit` value of `state`; `t` in whole seconds, rounded up. Written on the stack
/// (it is on every allowed response): one allocation, the header value's own.
pub(crate) fn state_value(state: &QuotaState) -> HeaderValue {
    use std::io::Write;
    // `"default";r=` + u32 + `;t=` + u64: at most 12 + 10 + 3 + 20 bytes.
    let mut buf = [0u8; 48];
    let mut out = &mut buf[..];
    let written = write!(out, "\"default\";r={};t={}", state.remaining, ceil_secs(state.reset));
    written.expect("48 bytes hold the longest value");
    let len = 48 - out.len();
    HeaderValue::from_bytes(&buf[..len]).expect("digits and ASCII only")
}

/// Adds both fields to a response's headers.
pub(crate) fn insert(headers: &mut HeaderMap, policy: &HeaderValue, state: &QuotaState) {
    headers.insert(RATELIMIT_POLICY.clone(), policy.clone());
    headers.insert(RATELIMIT.clone(), state_value(state));
}

/// The 429 answer: both fields, and `Retry-After` in whole seconds (at least 1).
pub(crate) fn too_many_requests(
    policy: &HeaderValue,
    state: &QuotaState,
    retry_after: Duration,
) -> Response<Bytes> {
    let secs = ceil_secs(retry_after).max(1);
    let mut resp =
        Response::new(Bytes::from(format!("429 Too Many Requests: retry in {secs} s\n")));
    *resp.status_mut() = StatusCode::TOO_MANY_REQUESTS;
    let h = resp.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    h.insert(RETRY_AFTER, HeaderValue::from(secs));
    insert(h, policy, state);
    resp
}

/// The 503 answer while the shared store is down and the fallback is `deny`.
pub(crate) fn unavailable() -> Response<Bytes> {
    let text = "503 Service Unavailable: the rate limit store is unreachable\n";
    let mut resp = Response::new(Bytes::from_static(text.as_bytes()));
    *resp.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
    let h = resp.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    h.insert(RETRY_AFTER, HeaderValue::from_static("1"));
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_field() {
        let p = Policy::new(100, Duration::from_secs(60));
        assert_eq!(policy_value(&p), r#""default";q=100;w=60"#);
        // A window that is not whole seconds is rounded up, never to 0.
        let p = Policy::new(5, Duration::from_millis(1_500));
        assert_eq!(policy_value(&p), r#""default";q=5;w=2"#);
        let p = Policy::new(5, Duration::from_millis(10));
        assert_eq!(policy_value(&p), r#""default";q=5;w=1"#);
    }

    #[test]
    fn state_field() {
        let s = QuotaState { remaining: 0, reset: Duration::from_millis(11_200) };
        assert_eq!(state_value(&s), r#""default";r=0;t=12"#);
        let s = QuotaState { remaining: 99, reset: Duration::from_millis(600) };
        assert_eq!(state_value(&s), r#""default";r=99;t=1"#);
        let s = QuotaState { remaining: u32::MAX, reset: Duration::MAX };
        let longest = format!(r#""default";r={};t={}"#, u32::MAX, u64::MAX);
        assert_eq!(state_value(&s), longest.as_str());
    }

    #[test]
    fn refusal() {
        let p = Policy::new(100, Duration::from_secs(60));
        let state = QuotaState { remaining: 0, reset: Duration::from_secs(60) };
        let resp = too_many_requests(&policy_value(&p), &state, Duration::from_millis(600));
        assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
        let h = resp.headers();
        assert_eq!(h[RETRY_AFTER], "1");
        assert_eq!(h["ratelimit-policy"], r#""default";q=100;w=60"#);
        assert_eq!(h["ratelimit"], r#""default";r=0;t=60"#);
        let resp = too_many_requests(&policy_value(&p), &state, Duration::from_millis(12_000));
        assert_eq!(resp.headers()[RETRY_AFTER], "12");
        assert_eq!(unavailable().status(), StatusCode::SERVICE_UNAVAILABLE);
    }
}
