//! The affinity cookie of sticky sessions: which key keeps a client on one worker.
//!
//! With `enableStickySession`, the key comes from the `cluster_affinity` cookie the proxy
//! set on an earlier response; a client without it (first visit, or cookies off) is keyed
//! by its address and gets the cookie with that key, so the two agree and a client that
//! drops cookies still stays put. The balancer maps the key to a worker slot by consistent
//! hashing with bounded load ([`cluster_balancer::Sticky`]).

use std::net::IpAddr;

use cluster_balancer::RequestCtx;
use http::HeaderMap;
use http::header::{COOKIE, HeaderValue, SET_COOKIE};

/// The cookie's name.
pub(crate) const COOKIE_NAME: &str = "cluster_affinity";

/// A request's affinity key, and whether the response must set the cookie.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Affinity {
    pub(crate) key: u64,
    pub(crate) set_cookie: bool,
}

/// The key from the request's cookie (RFC 6265 §5.4: `name=value` pairs separated by `;`),
/// else from the client's address.
pub(crate) fn key(headers: &HeaderMap, client: IpAddr) -> Affinity {
    let from_cookie = headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE_NAME)
        .and_then(|(_, value)| u64::from_str_radix(value.trim(), 16).ok());
    match from_cookie {
        Some(key) => Affinity { key, set_cookie: false },
        None => {
            let ctx = RequestCtx { client: Some(client), ..RequestCtx::default() };
            Affinity { key: ctx.sticky_key().unwrap_or_default(), set_cookie: true }
        }
    }
}

/// Adds the affinity cookie for `key` to a response.
pub(crate) fn set_cookie(headers: &mut HeaderMap, key: u64) {
    let cookie = format!("{COOKIE_NAME}={key:016x}; Path=/; HttpOnly; SameSite=Lax");
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        headers.append(SET_COOKIE, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cookie_wins_over_the_address() {
        let ip: IpAddr = "192.0.2.9".parse().unwrap();
        let mut h = HeaderMap::new();
        let first = key(&h, ip);
        assert!(first.set_cookie);
        h.insert(COOKIE, HeaderValue::from_static("a=1; cluster_affinity=00000000000000ff; b=2"));
        assert_eq!(key(&h, ip), Affinity { key: 0xff, set_cookie: false });
        h.insert(COOKIE, HeaderValue::from_static("cluster_affinity=zz"));
        assert_eq!(key(&h, ip), first, "a bad cookie is replaced");
    }

    #[test]
    fn the_cookie_carries_the_key() {
        let mut h = HeaderMap::new();
        set_cookie(&mut h, 0xabc);
        let v = h.get(SET_COOKIE).unwrap().to_str().unwrap();
        assert!(v.starts_with("cluster_affinity=0000000000000abc;"), "{v}");
    }
}
