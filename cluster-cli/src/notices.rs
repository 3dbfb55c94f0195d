//! Warnings for settings that are accepted but have no effect yet.
//!
//! The whole configuration schema is validated from the first release, but some behaviours
//! arrive later. Rather than ignore such a setting silently, the primary says so at start.

use cluster_core::config::{ClusterSpec, RateLimitStore};

/// Logs one warning per enabled setting whose behaviour is not built yet.
pub(crate) fn warn_inactive(spec: &ClusterSpec) {
    let inactive = [(spec.performance.enable_compression, "performance.enableCompression")];
    for (enabled, key) in inactive {
        if enabled {
            tracing::warn!("`{key}` is set but not implemented in this version; it has no effect");
        }
    }
    let redis_used =
        spec.security.enable_rate_limit && spec.security.rate_limit_store == RateLimitStore::Redis;
    if spec.redis_url.is_some() && !redis_used {
        tracing::info!(
            "`redisUrl` is used only by the rate limit (`security.rateLimitStore: \"redis\"`); affinity state lives in the primary"
        );
    }
}
