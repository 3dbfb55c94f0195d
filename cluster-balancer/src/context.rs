//! What a strategy may know about the request it places.

use std::net::IpAddr;

use crate::rng::mix64;

/// The little a strategy may know about a request.
///
/// Built by the proxy for every request; cheap to construct (no allocation).
///
/// # Examples
///
/// ```
/// use cluster_balancer::RequestCtx;
///
/// let ctx = RequestCtx { client: Some("192.0.2.7".parse().unwrap()), ..RequestCtx::default() };
/// assert!(ctx.sticky_key().is_some()); // a hash of the client address
/// let cookie = RequestCtx { affinity: Some(42), ..ctx };
/// assert_eq!(cookie.sticky_key(), Some(42)); // the proxy's affinity key wins
/// assert_eq!(RequestCtx::default().sticky_key(), None);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RequestCtx {
    /// The client's address, when known (used by address-based affinity, see
    /// [`sticky_key`](Self::sticky_key)).
    pub client: Option<IpAddr>,
    /// A backend the proxy wants to avoid: the one a retried request just failed on.
    pub avoid: Option<u64>,
    /// An affinity key chosen by the proxy (from its affinity cookie); when set, it is the
    /// [`sticky_key`](Self::sticky_key) instead of the client address.
    pub affinity: Option<u64>,
}

impl RequestCtx {
    /// The key [`Sticky`](crate::Sticky) keeps on one backend: the proxy's
    /// [`affinity`](Self::affinity) key when set, else a hash of the client address, or
    /// `None` when neither is known.
    ///
    /// An IPv4 address is hashed whole; an IPv6 address by its /64 prefix, because one
    /// client rotates through privacy addresses within its /64 (RFC 8981).
    pub fn sticky_key(&self) -> Option<u64> {
        if self.affinity.is_some() {
            return self.affinity;
        }
        Some(match self.client? {
            IpAddr::V4(v4) => mix64(u64::from(v4.to_bits())),
            IpAddr::V6(v6) => mix64((v6.to_bits() >> 64) as u64 ^ 0x6666),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_clients_are_keyed_by_their_64_prefix() {
        let ctx =
            |ip: &str| RequestCtx { client: Some(ip.parse().unwrap()), ..RequestCtx::default() };
        assert_eq!(ctx("2001:db8::1").sticky_key(), ctx("2001:db8::abcd:1").sticky_key());
        assert_ne!(ctx("2001:db8::1").sticky_key(), ctx("2001:db8:0:1::1").sticky_key());
        assert_ne!(ctx("10.0.0.1").sticky_key(), ctx("10.0.0.2").sticky_key());
        assert_eq!(RequestCtx::default().sticky_key(), None);
    }
}
