//! Notes at start for settings that are accepted but unused in this configuration.
//!
//! Every key of the original design is acted on now; `redisUrl` is the one that can be set
//! and still do nothing (it serves only the shared rate limit store), so the primary says so
//! rather than ignore it silently.

use cluster_core::config::{ClusterSpec, RateLimitStore};

/// Logs a note when `redisUrl` is set but no shared rate limit uses it.
pub(crate) fn warn_inactive(spec: &ClusterSpec) {
    let redis_used =
        spec.security.enable_rate_limit && spec.security.rate_limit_store == RateLimitStore::Redis;
    if spec.redis_url.is_some() && !redis_used {
        tracing::info!(
            "`redisUrl` is used only by the rate limit (`security.rateLimitStore: \"redis\"`); affinity state lives in the primary"
        );
    }
}
