//! Warnings for settings that are accepted but have no effect yet.
//!
//! The whole configuration schema is validated from the first release, but some behaviours
//! arrive later. Rather than ignore such a setting silently, the primary says so at start.

use cluster_core::config::ClusterSpec;

/// Logs one warning per enabled setting whose behaviour is not built yet.
pub(crate) fn warn_inactive(spec: &ClusterSpec) {
    let inactive = [(spec.security.enable_rate_limit, "security.enableRateLimit")];
    for (enabled, key) in inactive {
        if enabled {
            tracing::warn!("`{key}` is set but not implemented in this version; it has no effect");
        }
    }
    if spec.redis_url.is_some() {
        tracing::info!(
            "`redisUrl` is accepted for compatibility and not used: affinity state lives in the primary"
        );
    }
}
