//! Requests a browser could be tricked into sending: cross-site request forgery (a page on
//! another site posting to the admin API with the credentials the browser keeps for it) and
//! DNS rebinding (a page whose name now resolves to 127.0.0.1 reading the loopback listener).
//!
//! - A POST must say `Content-Type: application/json`: an HTML form cannot, and a script on
//!   another site can only with a CORS preflight, which the API never approves.
//! - `Sec-Fetch-Site` (sent by every current browser) must be `same-origin` or `none`, except
//!   for a top-level navigation (a link to the dashboard), and an `Origin`, when sent, must
//!   name the host the request was sent to.
//! - On the admin listener without a token, the `Host` must be a loopback name or address.
//!
//! The control socket is out of a browser's reach; the CLI sends JSON anyway.

use http::header::{CONTENT_TYPE, HOST, ORIGIN};
use http::{HeaderMap, Method, StatusCode};

use crate::access::Entry;

/// Why a request was refused: the status and the message.
pub(crate) type Refusal = (StatusCode, String);

/// Checks a request that came in at `entry`; `open_listener`: the admin listener serves
/// without a token.
pub(crate) fn check(
    method: &Method,
    headers: &HeaderMap,
    entry: Entry,
    open_listener: bool,
) -> Result<(), Refusal> {
    if method == Method::POST && !json_body(headers) {
        let message =
            "the admin API takes JSON: send Content-Type: application/json (also with no body)";
        return Err((StatusCode::UNSUPPORTED_MEDIA_TYPE, message.into()));
    }
    if entry == Entry::Socket {
        return Ok(());
    }
    let forbidden = |why: &str| Err((StatusCode::FORBIDDEN, why.to_owned()));
    if let Some(site) = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
        if !matches!(site, "same-origin" | "none") && !navigation(method, headers) {
            return forbidden("refused: a request from another site (Sec-Fetch-Site)");
        }
    }
    let host = headers.get(HOST).and_then(|v| v.to_str().ok()).unwrap_or("");
    if let Some(origin) = headers.get(ORIGIN) {
        let origin = origin.to_str().unwrap_or("null");
        let origin_host = origin.split_once("://").map(|(_, rest)| rest).unwrap_or("");
        if origin_host.is_empty() || !origin_host.eq_ignore_ascii_case(host) {
            return forbidden("refused: the request's Origin is not this host");
        }
    }
    if entry == Entry::Listener && open_listener && !loopback_name(host) {
        return forbidden(
            "refused: without admin.token the admin listener answers only to a loopback Host (localhost, 127.0.0.1, [::1])",
        );
    }
    Ok(())
}

/// Whether the request is a top-level navigation (a link to the dashboard followed from
/// another site): it changes nothing and shows the answer to the user alone, in a page that
/// may not be framed, so where it came from does not matter.
fn navigation(method: &Method, headers: &HeaderMap) -> bool {
    let is = |name: &str, value: &str| headers.get(name).is_some_and(|v| v == value);
    matches!(*method, Method::GET | Method::HEAD)
        && is("sec-fetch-mode", "navigate")
        && is("sec-fetch-dest", "document")
}

/// Whether the request says its body is JSON.
fn json_body(headers: &HeaderMap) -> bool {
    let Some(value) = headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok()) else { return false };
    let media = value.split(';').next().unwrap_or("").trim();
    media.eq_ignore_ascii_case("application/json")
}

/// Whether a `Host` names this machine's loopback: `localhost`, `127.x.x.x` or `[::1]`, with
/// or without a port.
fn loopback_name(host: &str) -> bool {
    let name = match host.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => host.rsplit_once(':').map_or(host, |(name, port)| {
            if port.bytes().all(|b| b.is_ascii_digit()) { name } else { host }
        }),
    };
    name.eq_ignore_ascii_case("localhost")
        || name.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn a_post_must_be_json() {
        let json = headers(&[("content-type", "application/json; charset=utf-8")]);
        assert!(check(&Method::POST, &json, Entry::FrontPort, false).is_ok());
        for bad in [
            headers(&[]),
            headers(&[("content-type", "application/x-www-form-urlencoded")]),
            headers(&[("content-type", "text/plain")]),
        ] {
            let (status, _) = check(&Method::POST, &bad, Entry::Socket, false).unwrap_err();
            assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
        }
        assert!(check(&Method::GET, &headers(&[]), Entry::FrontPort, false).is_ok());
    }

    #[test]
    fn cross_site_requests_are_refused() {
        let host = ("host", "app.example.com");
        for bad in [
            headers(&[host, ("sec-fetch-site", "cross-site")]),
            headers(&[host, ("sec-fetch-site", "same-site")]),
            headers(&[host, ("origin", "https://evil.example")]),
            headers(&[host, ("origin", "null")]),
        ] {
            let (status, _) = check(&Method::GET, &bad, Entry::FrontPort, false).unwrap_err();
            assert_eq!(status, StatusCode::FORBIDDEN, "{bad:?}");
        }
        for good in [
            headers(&[
                host,
                ("sec-fetch-site", "same-origin"),
                ("origin", "https://app.example.com"),
            ]),
            headers(&[host, ("sec-fetch-site", "none")]),
            headers(&[host]),
        ] {
            assert!(check(&Method::GET, &good, Entry::FrontPort, false).is_ok(), "{good:?}");
        }
        // Following a link from another site to the page is fine; framing or fetching is not.
        let link = |dest: &'static str| {
            headers(&[
                host,
                ("sec-fetch-site", "cross-site"),
                ("sec-fetch-mode", "navigate"),
                ("sec-fetch-dest", dest),
            ])
        };
        assert!(check(&Method::GET, &link("document"), Entry::FrontPort, false).is_ok());
        assert!(check(&Method::GET, &link("iframe"), Entry::FrontPort, false).is_err());
        let mut post = link("document");
        post.insert("content-type", HeaderValue::from_static("application/json"));
        let (status, _) = check(&Method::POST, &post, Entry::FrontPort, false).unwrap_err();
        assert_eq!(status, StatusCode::FORBIDDEN);
        // Browsers cannot reach the socket.
        let evil = headers(&[("origin", "https://evil.example")]);
        assert!(check(&Method::GET, &evil, Entry::Socket, false).is_ok());
    }

    #[test]
    fn an_open_listener_answers_loopback_hosts_only() {
        for good in ["localhost:9090", "127.0.0.1:9090", "127.0.0.1", "[::1]:9090", "LOCALHOST"] {
            assert!(
                check(&Method::GET, &headers(&[("host", good)]), Entry::Listener, true).is_ok(),
                "{good}"
            );
        }
        for bad in ["evil.example:9090", "evil.example", "10.0.0.1:9090", "localhost.evil.example"]
        {
            let (status, _) =
                check(&Method::GET, &headers(&[("host", bad)]), Entry::Listener, true).unwrap_err();
            assert_eq!(status, StatusCode::FORBIDDEN, "{bad}");
        }
        // With a token, the token decides.
        assert!(
            check(
                &Method::GET,
                &headers(&[("host", "cluster.internal:9090")]),
                Entry::Listener,
                false
            )
            .is_ok()
        );
    }
}
