//! Whose quota a request spends: the client's address, with IPv6 clients taken by their /64.
//!
//! An IPv6 host usually holds a whole /64 (SLAAC, privacy addresses) and can pick a new
//! address for every request; keyed by full address, it would get a fresh quota each time and
//! fill the store. A /64 is what one host or one subscriber line gets, so that is the key.
//! IPv4-mapped IPv6 addresses (`::ffff:a.b.c.d`, from a dual-stack listener) are the IPv4
//! client they stand for.

use std::net::{IpAddr, Ipv6Addr};

/// The rate limit key of a request from `ip`.
///
/// Today this is the connection's peer address; once the client-address stage honours
/// `security.trustedProxies`, it is the address that stage resolved.
pub(crate) fn client_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(Ipv6Addr::from_bits(v6.to_bits() & !0u128 << 64)),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::client_key;
    use std::net::IpAddr;

    fn key(ip: &str) -> String {
        client_key(ip.parse::<IpAddr>().unwrap()).to_string()
    }

    #[test]
    fn ipv4_as_is() {
        assert_eq!(key("203.0.113.7"), "203.0.113.7");
        assert_eq!(key("::ffff:203.0.113.7"), "203.0.113.7");
    }

    #[test]
    fn ipv6_by_its_64() {
        assert_eq!(key("2001:db8:1:2:aaaa:bbbb:cccc:dddd"), "2001:db8:1:2::");
        assert_eq!(key("2001:db8:1:2::1"), key("2001:db8:1:2:ffff::9"));
        assert_ne!(key("2001:db8:1:2::1"), key("2001:db8:1:3::1"));
        assert_eq!(key("::1"), "::");
    }
}
