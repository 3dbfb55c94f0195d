//! What a strategy may know about the request it places.

use std::net::IpAddr;

/// The little a strategy may know about a request.
///
/// Built by the proxy for every request; cheap to construct (no allocation).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RequestCtx {
    /// The client's address, when known (used by address-based affinity).
    pub client: Option<IpAddr>,
    /// A backend the proxy wants to avoid: the one a retried request just failed on.
    pub avoid: Option<u64>,
}
