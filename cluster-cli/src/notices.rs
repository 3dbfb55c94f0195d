//! Notes at start for settings that are accepted but unused in this configuration.
//!
//! `redisUrl` can be set and still do nothing (it serves only the shared rate limit store),
//! and in shared-socket mode no request crosses the primary, so every per-request setting of
//! the proxy is inert there. The primary says so rather than ignore them silently.

use cluster_core::config::{ClusterSpec, RateLimitStore};

/// Logs a note for each setting that is set but has no effect in this configuration.
pub(crate) fn warn_inactive(spec: &ClusterSpec) {
    let redis_used =
        spec.security.enable_rate_limit && spec.security.rate_limit_store == RateLimitStore::Redis;
    if spec.redis_url.is_some() && !redis_used && !spec.mode.is_shared_socket() {
        tracing::info!(
            "`redisUrl` is used only by the rate limit (`security.rateLimitStore: \"redis\"`); affinity state lives in the primary"
        );
    }
    let inert = inert_in_shared_socket_mode(spec);
    if !inert.is_empty() {
        tracing::warn!(
            "`mode: \"shared-socket\"`: the workers accept on the front socket and no request crosses the primary, so these settings do not apply: {}",
            inert.join(", ")
        );
    }
    if spec.mode.is_shared_socket() && spec.admin.token.is_some() && spec.admin.listen.is_none() {
        tracing::warn!(
            "`mode: \"shared-socket\"`: the front port belongs to the workers, so the admin API is not served there; it is on the control socket, and on `admin.listen` if you set it"
        );
    }
}

/// The keys set to something other than their default that only the proxy acts on, when the
/// mode is shared-socket (empty in proxy mode).
pub(crate) fn inert_in_shared_socket_mode(spec: &ClusterSpec) -> Vec<&'static str> {
    if !spec.mode.is_shared_socket() {
        return Vec::new();
    }
    let d = ClusterSpec::default();
    let (p, dp) = (&spec.performance, &d.performance);
    let (s, ds) = (&spec.security, &d.security);
    [
        ("loadBalancingStrategy", spec.strategy != d.strategy),
        ("enableStickySession", spec.sticky_sessions != d.sticky_sessions),
        ("redisUrl", spec.redis_url.is_some()),
        // The workers listen on the front socket, not on endpoints of their own.
        ("upstream", spec.upstream != d.upstream),
        // Readiness and liveness probes cannot single out a worker behind a shared socket.
        ("healthCheckPath", spec.health_check_path.is_some()),
        ("performance.maxRequestsPerWorker", p.max_requests_per_worker.is_some()),
        ("performance.requestTimeout", p.request_timeout != dp.request_timeout),
        ("performance.keepAliveTimeout", p.keep_alive_timeout != dp.keep_alive_timeout),
        ("performance.headerReadTimeout", p.header_read_timeout != dp.header_read_timeout),
        ("performance.upstreamIdleTimeout", p.upstream_idle_timeout != dp.upstream_idle_timeout),
        ("performance.slowStartWindow", p.slow_start_window.is_some()),
        ("performance.proxyThreads", p.proxy_threads != dp.proxy_threads),
        ("performance.enableCompression", p.enable_compression),
        ("performance.maxBodySize", p.limits.max_body_size != dp.limits.max_body_size),
        ("performance.maxHeaderSize", p.limits.max_header_size != dp.limits.max_header_size),
        ("performance.maxHeaders", p.limits.max_headers != dp.limits.max_headers),
        ("performance.maxConnections", p.limits.max_connections.is_some()),
        ("security.enableRateLimit", s.enable_rate_limit),
        ("security.trustedProxies", s.trusted_proxies != ds.trusted_proxies),
        ("security.enableRequestLogging", s.enable_request_logging),
    ]
    .into_iter()
    .filter_map(|(key, set)| set.then_some(key))
    .collect()
}

#[cfg(test)]
mod tests {
    use cluster_core::config::Mode;

    use super::*;

    #[test]
    fn only_settings_changed_from_their_default_and_only_in_shared_socket_mode() {
        let mut spec = ClusterSpec::default();
        spec.performance.enable_compression = true;
        spec.security.enable_rate_limit = true;
        spec.health_check_path = Some("/health".into());
        assert!(inert_in_shared_socket_mode(&spec).is_empty(), "proxy mode uses them");
        spec.mode = Mode::SharedSocket;
        assert_eq!(
            inert_in_shared_socket_mode(&spec),
            ["healthCheckPath", "performance.enableCompression", "security.enableRateLimit"]
        );
        let mut defaults = ClusterSpec::default();
        defaults.mode = Mode::SharedSocket;
        assert!(inert_in_shared_socket_mode(&defaults).is_empty());
    }
}
