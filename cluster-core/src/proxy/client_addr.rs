//! The client's address: the connection's peer, or, when that peer is a trusted proxy, the
//! first address in `X-Forwarded-For` that is not one of ours.
//!
//! Sticky sessions and the access log use it; the rate limit is meant to. With no
//! `security.trustedProxies` (the default) it is the peer's address, found with one boolean
//! test: no header is read and nothing is allocated.

use std::net::{IpAddr, SocketAddr};

use http::HeaderMap;
use ipnet::IpNet;

use super::conn::ConnCtx;
use super::headers::ClientInfo;

impl ConnCtx {
    /// The address of the client that sent a request with these `headers`.
    ///
    /// The connection's peer (IPv4-mapped IPv6 shown as IPv4), unless the peer is in
    /// `security.trustedProxies`: then `X-Forwarded-For` is walked from right to left,
    /// skipping trusted hops, and the first untrusted address is the client (see
    /// [`forwarded_client`]). Allocation-free in every case.
    pub(crate) fn client_addr(&self, headers: &HeaderMap) -> IpAddr {
        client_addr(&self.client, &self.shared.cfg.trusted_proxies, headers)
    }
}

/// [`ConnCtx::client_addr`] for a peer described by `peer`.
pub(crate) fn client_addr(peer: &ClientInfo, trusted: &[IpNet], headers: &HeaderMap) -> IpAddr {
    if peer.trusted { forwarded_client(peer.ip, trusted, headers) } else { peer.ip }
}

/// The client named by the `X-Forwarded-For` fields of a request that came from the trusted
/// proxy `peer`.
///
/// Every proxy appends the address it received the request from, so the list reads
/// `client, proxy1, proxy2` and only its right end can be believed: each hop is taken only
/// as far as the hop after it is trusted. The walk goes from the last entry of the last field
/// to the first entry of the first (several fields are one comma-separated list, RFC 9110
/// §5.3), skips empty entries and whitespace, and returns the first address that is not in
/// `trusted`. An entry that is not an address (`unknown`, a hostname, garbage, a field that
/// is not text) ends the walk: the last good hop is the client, since nothing left of it can
/// be trusted. When every entry is trusted, the leftmost one is the client; with no entry at
/// all, the peer. Entries with a port (`192.0.2.1:4711`, `[2001:db8::1]:4711`) are accepted.
pub(crate) fn forwarded_client(peer: IpAddr, trusted: &[IpNet], headers: &HeaderMap) -> IpAddr {
    let mut last = peer;
    for field in headers.get_all("x-forwarded-for").iter().rev() {
        let Ok(field) = field.to_str() else { return last };
        for entry in field.rsplit(',') {
            let entry = entry.trim();
            if entry.is_empty() {
                continue;
            }
            let Some(addr) = parse_hop(entry) else { return last };
            if !trusted.iter().any(|net| net.contains(&addr)) {
                return addr;
            }
            last = addr;
        }
    }
    last
}

/// One `X-Forwarded-For` entry: an address, or an address with a port; canonical form.
fn parse_hop(entry: &str) -> Option<IpAddr> {
    let addr = match entry.parse::<IpAddr>() {
        Ok(addr) => addr,
        Err(_) => entry.parse::<SocketAddr>().ok()?.ip(),
    };
    Some(addr.to_canonical())
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;

    fn nets(list: &[&str]) -> Vec<IpNet> {
        list.iter().map(|n| n.parse().unwrap()).collect()
    }

    fn xff(fields: &[&[u8]]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for f in fields {
            h.append("x-forwarded-for", HeaderValue::from_bytes(f).unwrap());
        }
        h
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn walk(trusted: &[&str], fields: &[&[u8]]) -> IpAddr {
        forwarded_client(ip("10.0.0.1"), &nets(trusted), &xff(fields))
    }

    #[test]
    fn untrusted_peer_is_the_client_whatever_the_headers_say() {
        let trusted = nets(&["10.0.0.0/8"]);
        let peer = ClientInfo::new(ip("192.0.2.7"), &trusted);
        assert_eq!(client_addr(&peer, &trusted, &xff(&[b"1.2.3.4"])), ip("192.0.2.7"));
        let peer = ClientInfo::new(ip("192.0.2.7"), &[]);
        assert_eq!(client_addr(&peer, &[], &xff(&[b"1.2.3.4"])), ip("192.0.2.7"));
        let trusted_peer = ClientInfo::new(ip("10.9.9.9"), &trusted);
        assert_eq!(client_addr(&trusted_peer, &trusted, &xff(&[b"1.2.3.4"])), ip("1.2.3.4"));
    }

    #[test]
    fn walks_right_to_left_skipping_trusted_hops() {
        let trusted = ["10.0.0.0/8", "2001:db8::/32"];
        assert_eq!(walk(&trusted, &[b"203.0.113.5, 10.1.1.1, 10.2.2.2"]), ip("203.0.113.5"));
        // A spoofed entry left of the real client is never reached.
        assert_eq!(walk(&trusted, &[b"6.6.6.6, 203.0.113.5, 10.1.1.1"]), ip("203.0.113.5"));
        assert_eq!(walk(&trusted, &[b"2001:db8::9,2001:db9::1"]), ip("2001:db9::1"));
    }

    #[test]
    fn several_fields_are_one_list() {
        let trusted = ["10.0.0.0/8"];
        assert_eq!(walk(&trusted, &[b"198.51.100.1", b"10.1.1.1 ,  10.3.3.3"]), ip("198.51.100.1"));
        assert_eq!(walk(&trusted, &[b"198.51.100.1", b"198.51.100.2"]), ip("198.51.100.2"));
        assert_eq!(walk(&trusted, &[b" , 198.51.100.1,,", b""]), ip("198.51.100.1"));
    }

    #[test]
    fn garbage_stops_at_the_last_good_hop() {
        let trusted = ["10.0.0.0/8"];
        assert_eq!(walk(&trusted, &[b"203.0.113.5, unknown, 10.1.1.1"]), ip("10.1.1.1"));
        assert_eq!(walk(&trusted, &[b"203.0.113.5, <script>"]), ip("10.0.0.1"));
        assert_eq!(walk(&trusted, &[b"203.0.113.5", b"\xff\xfe"]), ip("10.0.0.1"));
        assert_eq!(walk(&trusted, &[b"1.2.3.4/8"]), ip("10.0.0.1"));
    }

    #[test]
    fn all_trusted_or_empty() {
        let trusted = ["10.0.0.0/8"];
        assert_eq!(walk(&trusted, &[b"10.5.5.5, 10.6.6.6"]), ip("10.5.5.5"));
        assert_eq!(walk(&trusted, &[]), ip("10.0.0.1"));
        assert_eq!(walk(&trusted, &[b"  "]), ip("10.0.0.1"));
    }

    #[test]
    fn ports_and_mapped_addresses() {
        let trusted = ["10.0.0.0/8"];
        assert_eq!(walk(&trusted, &[b"203.0.113.5:4711, 10.1.1.1"]), ip("203.0.113.5"));
        assert_eq!(walk(&trusted, &[b"[2001:db8::1]:4711"]), ip("2001:db8::1"));
        assert_eq!(walk(&trusted, &[b"::ffff:203.0.113.5"]), ip("203.0.113.5"));
        // A mapped trusted hop is trusted too.
        assert_eq!(walk(&trusted, &[b"198.51.100.9, ::ffff:10.1.1.1"]), ip("198.51.100.9"));
        let peer = ClientInfo::new(ip("::ffff:10.0.0.2"), &nets(&trusted));
        assert_eq!(peer.ip, ip("10.0.0.2"));
        assert!(peer.trusted);
    }
}
