//! Header rewriting between the client and the worker: hop-by-hop fields, `Host`, and the
//! `X-Forwarded-*` fields a worker uses to rebuild the client's view of the request.
//!
//! Everything is edited in place; the common request (no hop-by-hop fields, untrusted
//! peer) allocates nothing here: the peer's address is formatted once per connection.

use std::net::IpAddr;

use http::header::{
    CONNECTION, COOKIE, HOST, PROXY_AUTHENTICATE, PROXY_AUTHORIZATION, TE, TRAILER,
    TRANSFER_ENCODING, UPGRADE,
};
use http::uri::PathAndQuery;
use http::{HeaderMap, HeaderName, HeaderValue, Request, Uri, Version};
use ipnet::IpNet;

use super::host::is_valid_host;

static KEEP_ALIVE: HeaderName = HeaderName::from_static("keep-alive");
static PROXY_CONNECTION: HeaderName = HeaderName::from_static("proxy-connection");
static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
static X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
static X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");

/// What the proxy knows about the client at the other end of one connection.
#[derive(Debug, Clone)]
pub(crate) struct ClientInfo {
    /// The peer's address (IPv4-mapped IPv6 addresses shown as IPv4).
    pub(crate) ip: IpAddr,
    /// Whether the peer is a trusted proxy whose `X-Forwarded-*` fields we keep.
    pub(crate) trusted: bool,
    /// `ip` formatted as a header value, shared by every request on the connection.
    ip_value: HeaderValue,
}

impl ClientInfo {
    /// Describes a peer, trusted when its address is inside one of `trusted_proxies`.
    pub(crate) fn new(ip: IpAddr, trusted_proxies: &[IpNet]) -> Self {
        let ip = ip.to_canonical();
        let trusted = trusted_proxies.iter().any(|net| net.contains(&ip));
        let ip_value =
            HeaderValue::from_str(&ip.to_string()).expect("an IP address is a valid header value");
        Self { ip, trusted, ip_value }
    }
}

/// Whether a request asks to switch protocols (RFC 9110 §7.8): HTTP/1.1 with an `Upgrade`
/// field and the `upgrade` option in `Connection`. HTTP/2 has no such mechanism.
pub(crate) fn wants_upgrade<B>(req: &Request<B>) -> bool {
    req.version() == Version::HTTP_11
        && req.headers().contains_key(UPGRADE)
        && has_connection_option(req.headers(), "upgrade")
}

/// Whether `Connection` lists `option` (case-insensitive, RFC 9110 §7.6.1).
pub(crate) fn has_connection_option(headers: &HeaderMap, option: &str) -> bool {
    headers.get_all(CONNECTION).iter().any(|v| {
        v.to_str().is_ok_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(option)))
    })
}

/// Turns a client's request into the HTTP/1.1 request a worker receives.
///
/// - `Host` keeps the client's value; when the request target carries an authority (an
///   HTTP/2 `:authority`, RFC 9113 §8.3.1, or an absolute-form HTTP/1.1 target, RFC 9112
///   §3.2.2) that authority becomes `Host`.
/// - The target becomes origin-form (path and query, RFC 9112 §3.2.1).
/// - HTTP/2 `cookie` fields are joined into one (RFC 9113 §8.2.3).
/// - Hop-by-hop fields go ([`strip_hop_by_hop`]), except the upgrade pair when `upgrade`.
/// - `X-Forwarded-*` are computed ([`Forwarded`]) and returned: the caller applies them
///   to the map ([`Forwarded::apply`]) or writes them into the encoded head.
///
/// # Errors
///
/// The reason to answer 400 when the request has several `Host` fields, or is HTTP/1.1
/// without one (RFC 9112 §3.2): such a request could reach the worker under a different
/// name than the one the client or a cache in front of us saw. Also when the `Host` (or
/// the `:authority` / absolute-form authority that becomes it) has characters outside
/// RFC 9110's host grammar ([`is_valid_host`]).
pub(crate) fn prepare_request<B>(
    req: &mut Request<B>,
    client: &ClientInfo,
    upgrade: bool,
) -> Result<Forwarded, &'static str> {
    let version = req.version();
    let host = match req.uri().authority() {
        Some(authority) => {
            let host =
                HeaderValue::from_str(authority.as_str()).map_err(|_| "invalid authority")?;
            req.headers_mut().insert(HOST, host.clone());
            let pq = req.uri().path_and_query().cloned();
            *req.uri_mut() = Uri::from(pq.unwrap_or_else(|| PathAndQuery::from_static("/")));
            Some(host)
        }
        None => {
            let mut hosts = req.headers().get_all(HOST).iter();
            let host = hosts.next().cloned();
            if hosts.next().is_some() {
                return Err("more than one Host field");
            }
            if host.is_none() && version == Version::HTTP_11 {
                return Err("no Host field");
            }
            host
        }
    };
    if host.as_ref().is_some_and(|h| !is_valid_host(h.as_bytes())) {
        return Err("invalid Host");
    }
    *req.version_mut() = Version::HTTP_11;
    let headers = req.headers_mut();
    if version == Version::HTTP_2 {
        join_cookies(headers);
    }
    strip_hop_by_hop(headers, upgrade);
    Ok(Forwarded::new(headers, client, host))
}

/// Rewrites a worker's response head for the client; returns whether the worker's
/// connection may be reused afterwards (it did not ask to close it, RFC 9112 §9.3).
pub(crate) fn prepare_response(headers: &mut HeaderMap, version: Version, upgrade: bool) -> bool {
    let reusable = version == Version::HTTP_11
        && !headers.get_all(CONNECTION).iter().any(|v| says_close(v.as_bytes()));
    strip_hop_by_hop(headers, upgrade);
    reusable
}

/// The options of a `Connection` field's `value` that name fields to remove with it
/// (RFC 9110 §7.6.1): every option but the connection keywords (`close`, `keep-alive`,
/// `upgrade`) and `host`, which is never removed.
pub(crate) fn named_fields(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value.split(|&b| b == b',').map(<[u8]>::trim_ascii).filter(|option| {
        !option.is_empty()
            && !["close", "keep-alive", "upgrade", "host"]
                .iter()
                .any(|keyword| option.eq_ignore_ascii_case(keyword.as_bytes()))
    })
}

/// Whether a `Connection` field's `value` has the `close` option: the sender closes the
/// connection after this message (RFC 9112 §9.6).
pub(crate) fn says_close(value: &[u8]) -> bool {
    value.split(|&b| b == b',').any(|option| option.trim_ascii().eq_ignore_ascii_case(b"close"))
}

/// Whether `name` is a hop-by-hop field that [`strip_hop_by_hop`] always removes (besides
/// the fields `Connection` names).
pub(crate) fn is_hop_by_hop(name: &HeaderName) -> bool {
    name == CONNECTION
        || name == TE
        || name == TRANSFER_ENCODING
        || name == UPGRADE
        || name == TRAILER
        || name == PROXY_AUTHORIZATION
        || name == PROXY_AUTHENTICATE
        || name == KEEP_ALIVE
        || name == PROXY_CONNECTION
}

/// Removes the hop-by-hop fields (RFC 9110 §7.6.1): those named in `Connection`, then
/// connection, keep-alive, proxy-connection, proxy-authenticate, proxy-authorization, te,
/// trailer, transfer-encoding and upgrade.
///
/// With `keep_upgrade` (an upgrade request, or the 101 that accepts it) `Upgrade` stays and
/// `Connection` becomes exactly `upgrade`, so the other side sees a valid upgrade.
/// `Host` is never removed, even when a client names it in `Connection`.
pub(crate) fn strip_hop_by_hop(headers: &mut HeaderMap, keep_upgrade: bool) {
    let mut has_connection = false;
    let mut any = false;
    for name in headers.keys() {
        if is_hop_by_hop(name) {
            any = true;
            has_connection |= name == CONNECTION;
        }
    }
    if !any {
        return;
    }
    if has_connection {
        let mut named: Vec<HeaderName> = Vec::new();
        for value in headers.get_all(CONNECTION) {
            for option in named_fields(value.as_bytes()) {
                if let Ok(name) = HeaderName::from_bytes(option) {
                    named.push(name);
                }
            }
        }
        for name in named {
            headers.remove(name);
        }
    }
    for name in [&CONNECTION, &KEEP_ALIVE, &PROXY_CONNECTION, &PROXY_AUTHENTICATE] {
        headers.remove(name);
    }
    for name in [&PROXY_AUTHORIZATION, &TE, &TRAILER, &TRANSFER_ENCODING] {
        headers.remove(name);
    }
    if keep_upgrade {
        headers.insert(CONNECTION, HeaderValue::from_static("upgrade"));
    } else {
        headers.remove(UPGRADE);
    }
}

/// The de-facto standard `X-Forwarded-*` fields (the same fields nginx sets, and the
/// ones SvelteKit's adapter-node reads with `PROTOCOL_HEADER`/`HOST_HEADER`/`ADDRESS_HEADER`).
///
/// From a trusted proxy, `X-Forwarded-For` gets the peer appended and `X-Forwarded-Proto` /
/// `X-Forwarded-Host` are kept when present. From anyone else they are replaced: the peer's
/// address, `http`, and the request's `host`.
///
/// Computed without editing the request: our own HTTP/1.1 client writes them into the
/// encoded head directly ([`Forwarded::replaces`], [`Forwarded::fields`]), which spares the
/// map an insertion (and usually a growth) per field; hyper's client gets them in the map
/// ([`Forwarded::apply`]).
#[derive(Debug, PartialEq)]
pub(crate) struct Forwarded {
    /// The new `X-Forwarded-For` (it replaces every existing one).
    for_: HeaderValue,
    /// `X-Forwarded-Proto` becomes `http` (else a trusted proxy's value stays).
    proto: bool,
    /// `X-Forwarded-Host` becomes this (`Some(None)`: removed); `None`: a trusted proxy's
    /// value stays.
    host: Option<Option<HeaderValue>>,
}

static HTTP: HeaderValue = HeaderValue::from_static("http");

impl Forwarded {
    /// The fields for a request with `headers` from `client`, whose `Host` is `host`.
    pub(crate) fn new(headers: &HeaderMap, client: &ClientInfo, host: Option<HeaderValue>) -> Self {
        let appended = if client.trusted { append_for(headers, client) } else { None };
        Forwarded {
            for_: appended.unwrap_or_else(|| client.ip_value.clone()),
            proto: !(client.trusted && headers.contains_key(&X_FORWARDED_PROTO)),
            host: (!(client.trusted && headers.contains_key(&X_FORWARDED_HOST))).then_some(host),
        }
    }

    /// Writes the fields into `headers`.
    pub(crate) fn apply(self, headers: &mut HeaderMap) {
        headers.insert(X_FORWARDED_FOR.clone(), self.for_);
        if self.proto {
            headers.insert(X_FORWARDED_PROTO.clone(), HTTP.clone());
        }
        match self.host {
            Some(Some(host)) => {
                headers.insert(X_FORWARDED_HOST.clone(), host);
            }
            Some(None) => {
                headers.remove(&X_FORWARDED_HOST);
            }
            None => {}
        }
    }

    /// Whether the request's own field `name` is replaced (or removed) by these fields, so
    /// that an encoder leaves it out.
    pub(crate) fn replaces(&self, name: &HeaderName) -> bool {
        let name = name.as_str();
        if !name.starts_with("x-forwarded-") {
            return false;
        }
        name == X_FORWARDED_FOR.as_str()
            || (self.proto && name == X_FORWARDED_PROTO.as_str())
            || (self.host.is_some() && name == X_FORWARDED_HOST.as_str())
    }

    /// The fields to write after the request's own (those not [`replaced`](Self::replaces)).
    pub(crate) fn fields(&self) -> impl Iterator<Item = (&HeaderName, &HeaderValue)> {
        let proto = self.proto.then_some((&X_FORWARDED_PROTO, &HTTP));
        let host = self.host.as_ref().and_then(|h| h.as_ref()).map(|h| (&X_FORWARDED_HOST, h));
        std::iter::once((&X_FORWARDED_FOR, &self.for_)).chain(proto).chain(host)
    }
}

/// The existing `X-Forwarded-For` list (all its fields, in order) with the peer appended;
/// `None` when there is none or it is not text.
fn append_for(headers: &HeaderMap, client: &ClientInfo) -> Option<HeaderValue> {
    let mut list = String::new();
    for value in headers.get_all(&X_FORWARDED_FOR) {
        let value = value.to_str().ok()?.trim();
        if !value.is_empty() {
            if !list.is_empty() {
                list.push_str(", ");
            }
            list.push_str(value);
        }
    }
    if list.is_empty() {
        return None;
    }
    list.push_str(", ");
    list.push_str(client.ip_value.to_str().ok()?);
    HeaderValue::try_from(list).ok()
}

/// Joins several `cookie` fields into one, separated by `"; "`, as RFC 9113 §8.2.3 requires
/// before an HTTP/2 request is forwarded over HTTP/1.1.
fn join_cookies(headers: &mut HeaderMap) {
    let mut values = headers.get_all(COOKIE).iter();
    if values.next().is_none() || values.next().is_none() {
        return;
    }
    let joined: Vec<&[u8]> = headers.get_all(COOKIE).iter().map(HeaderValue::as_bytes).collect();
    if let Ok(value) = HeaderValue::from_bytes(&joined.join(&b"; "[..])) {
        headers.insert(COOKIE, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(trusted: bool) -> ClientInfo {
        let nets: Vec<IpNet> = if trusted { vec!["10.0.0.0/8".parse().unwrap()] } else { vec![] };
        ClientInfo::new("10.1.2.3".parse().unwrap(), &nets)
    }

    fn map(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(HeaderName::from_bytes(k.as_bytes()).unwrap(), v.parse().unwrap());
        }
        h
    }

    #[test]
    fn strips_hop_by_hop_and_named_fields() {
        let mut h = map(&[
            ("connection", "keep-alive, X-Secret, host"),
            ("keep-alive", "timeout=5"),
            ("x-secret", "1"),
            ("te", "trailers"),
            ("upgrade", "websocket"),
            ("proxy-connection", "keep-alive"),
            ("host", "example.com"),
            ("accept", "*/*"),
        ]);
        strip_hop_by_hop(&mut h, false);
        let names: Vec<_> = h.keys().map(|n| n.as_str()).collect();
        assert_eq!(names, ["host", "accept"]);
    }

    #[test]
    fn keeps_the_upgrade_pair() {
        let mut h =
            map(&[("connection", "keep-alive, Upgrade"), ("upgrade", "websocket"), ("te", "x")]);
        strip_hop_by_hop(&mut h, true);
        assert_eq!(h["connection"], "upgrade");
        assert_eq!(h["upgrade"], "websocket");
        assert!(!h.contains_key("te"));
    }

    #[test]
    fn forwarded_from_untrusted_peer_is_replaced() {
        let mut h = map(&[
            ("host", "app.test"),
            ("x-forwarded-for", "6.6.6.6"),
            ("x-forwarded-proto", "https"),
            ("x-forwarded-host", "evil.test"),
        ]);
        let host = h.get("host").cloned();
        Forwarded::new(&h, &client(false), host).apply(&mut h);
        assert_eq!(h["x-forwarded-for"], "10.1.2.3");
        assert_eq!(h["x-forwarded-proto"], "http");
        assert_eq!(h["x-forwarded-host"], "app.test");
    }

    #[test]
    fn forwarded_from_trusted_peer_is_extended() {
        let mut h = map(&[
            ("host", "internal:3000"),
            ("x-forwarded-for", "1.1.1.1"),
            ("x-forwarded-for", "2.2.2.2"),
            ("x-forwarded-proto", "https"),
            ("x-forwarded-host", "app.test"),
        ]);
        let host = h.get("host").cloned();
        Forwarded::new(&h, &client(true), host).apply(&mut h);
        assert_eq!(h["x-forwarded-for"], "1.1.1.1, 2.2.2.2, 10.1.2.3");
        assert_eq!(h["x-forwarded-proto"], "https");
        assert_eq!(h["x-forwarded-host"], "app.test");
        let mut h = map(&[("host", "a")]);
        Forwarded::new(&h, &client(true), Some(HeaderValue::from_static("a"))).apply(&mut h);
        assert_eq!(h["x-forwarded-for"], "10.1.2.3");
        assert_eq!(h["x-forwarded-proto"], "http");
        assert_eq!(h["x-forwarded-host"], "a");
    }

    /// The fields an encoder writes (the request's own, less those replaced, then the new
    /// ones) are what `apply` leaves in the map, for every kind of peer and request.
    #[test]
    fn encoded_forwarded_fields_match_the_applied_ones() {
        let requests = [
            map(&[("host", "app.test"), ("accept", "*/*")]),
            map(&[
                ("host", "app.test"),
                ("x-forwarded-for", "6.6.6.6"),
                ("x-forwarded-proto", "https"),
                ("x-forwarded-host", "evil.test"),
                ("x-forwarded-port", "443"),
            ]),
            map(&[("x-forwarded-for", "1.1.1.1"), ("x-forwarded-host", "a.test")]),
        ];
        for (h, trusted) in requests.iter().flat_map(|h| [(h, false), (h, true)]) {
            let host = h.get("host").cloned();
            let forwarded = Forwarded::new(h, &client(trusted), host);
            let mut encoded: Vec<(String, String)> = h
                .iter()
                .filter(|(n, _)| !forwarded.replaces(n))
                .chain(forwarded.fields())
                .map(|(n, v)| (n.to_string(), v.to_str().unwrap().to_owned()))
                .collect();
            let mut applied = h.clone();
            forwarded.apply(&mut applied);
            let mut applied: Vec<(String, String)> = applied
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_str().unwrap().to_owned()))
                .collect();
            encoded.sort();
            applied.sort();
            assert_eq!(encoded, applied, "trusted: {trusted}, {h:?}");
        }
    }

    #[test]
    fn h2_request_becomes_origin_form_with_host() {
        let mut req = Request::builder()
            .version(Version::HTTP_2)
            .uri("http://app.test:8080/a/b?c=d")
            .header("cookie", "a=1")
            .header("cookie", "b=2")
            .body(())
            .unwrap();
        let forwarded = prepare_request(&mut req, &client(false), false).unwrap();
        forwarded.apply(req.headers_mut());
        assert_eq!(req.uri(), "/a/b?c=d");
        assert_eq!(req.version(), Version::HTTP_11);
        assert_eq!(req.headers()["host"], "app.test:8080");
        assert_eq!(req.headers()["cookie"], "a=1; b=2");
        assert_eq!(req.headers()["x-forwarded-host"], "app.test:8080");
    }

    #[test]
    fn host_must_be_unique_and_present_in_http11() {
        let mut req = Request::builder().header("host", "a").header("host", "b").body(()).unwrap();
        assert!(prepare_request(&mut req, &client(false), false).is_err());
        let mut req = Request::builder().body(()).unwrap();
        assert!(prepare_request(&mut req, &client(false), false).is_err());
        let mut req = Request::builder()
            .version(Version::HTTP_10)
            .header("x-forwarded-host", "evil.test")
            .body(())
            .unwrap();
        let forwarded = prepare_request(&mut req, &client(false), false).unwrap();
        forwarded.apply(req.headers_mut());
        assert!(!req.headers().contains_key("x-forwarded-host"));
        let builder = Request::builder().uri("http://x.test/p").header("host", "a");
        let mut req = builder.header("host", "b").body(()).unwrap();
        assert!(prepare_request(&mut req, &client(false), false).is_ok());
        assert_eq!(req.headers()["host"], "x.test");
    }

    #[test]
    fn host_must_follow_the_grammar() {
        let mut req = Request::builder().header("host", "probe local<>").body(()).unwrap();
        assert_eq!(prepare_request(&mut req, &client(false), false), Err("invalid Host"));
        let mut req = Request::builder().uri("http://user@app.test/").body(()).unwrap();
        assert_eq!(prepare_request(&mut req, &client(false), false), Err("invalid Host"));
        let mut req = Request::builder().header("host", "app.test:8080").body(()).unwrap();
        assert!(prepare_request(&mut req, &client(false), false).is_ok());
    }

    #[test]
    fn detects_upgrade_requests() {
        let req = Request::builder()
            .header("connection", "keep-alive, Upgrade")
            .header("upgrade", "websocket")
            .body(())
            .unwrap();
        assert!(wants_upgrade(&req));
        let req = Request::builder().header("upgrade", "websocket").body(()).unwrap();
        assert!(!wants_upgrade(&req));
    }

    #[test]
    fn response_reusability() {
        let mut h = map(&[("connection", "close")]);
        assert!(!prepare_response(&mut h, Version::HTTP_11, false));
        assert!(h.is_empty());
        let mut h = map(&[("content-length", "3")]);
        assert!(prepare_response(&mut h, Version::HTTP_11, false));
        assert!(!prepare_response(&mut h, Version::HTTP_10, false));
    }
}
