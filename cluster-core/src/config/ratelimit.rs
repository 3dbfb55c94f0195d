//! The rate limit's keys in `security`: where the counters live (`rateLimitStore`), which
//! paths are never limited (`rateLimitExempt`), and what happens when the shared store is
//! slow or down (`rateLimitRedisTimeout`, `rateLimitRedisFallback`).
//!
//! The window and the maximum (`rateLimitWindow`, `rateLimitMax`) are checked with the rest
//! of `security` in `sections.rs`.

use std::fmt;
use std::time::Duration;

use serde::Serialize;

use super::raw::RawSecurity;
use super::suggest::nearest;
use super::validate::Validator;

/// The exempt path prefixes when `security.rateLimitExempt` is not set, besides the
/// health-check path: the admin API and the dashboard.
///
/// # Examples
///
/// ```
/// use cluster_core::config::{ClusterSpec, DEFAULT_EXEMPT};
///
/// let spec = ClusterSpec::default();
/// assert!(DEFAULT_EXEMPT.iter().all(|p| spec.security.rate_limit_exempt.iter().any(|e| e == p)));
/// ```
pub const DEFAULT_EXEMPT: [&str; 2] = ["/api/admin/", "/admin/cluster"];

/// Longest accepted `security.rateLimitRedisTimeout`, ms: a Redis call is on the request
/// path, so anything near a second defeats its purpose.
const MAX_REDIS_TIMEOUT_MS: i128 = 10_000;

/// Where the rate limit's counters live (`security.rateLimitStore`).
///
/// # Examples
///
/// ```
/// use cluster_core::config::{ClusterSpec, RateLimitStore};
///
/// let mut spec = ClusterSpec::default();
/// spec.security.enable_rate_limit = true;
/// spec.security.rate_limit_store = RateLimitStore::Redis; // one limit shared by every instance
/// spec.redis_url = Some("redis://127.0.0.1:6379".into());
/// assert_eq!(RateLimitStore::ALL.map(|(name, _)| name), ["local", "redis"]);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum RateLimitStore {
    /// In the primary's memory: each cluster instance limits on its own.
    Local,
    /// In Redis (`redisUrl`): every instance using that Redis shares one limit per client.
    Redis,
}

impl RateLimitStore {
    /// Every store, by name.
    pub const ALL: [(&'static str, Self); 2] = [("local", Self::Local), ("redis", Self::Redis)];
}

/// What the rate limit does while Redis is unreachable (`security.rateLimitRedisFallback`).
///
/// # Examples
///
/// ```
/// use cluster_core::config::{ClusterSpec, RateLimitFallback};
///
/// let mut spec = ClusterSpec::default();
/// spec.security.rate_limit_redis_fallback = RateLimitFallback::Allow; // fail open while Redis is down
/// assert_eq!(RateLimitFallback::ALL.len(), 3);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum RateLimitFallback {
    /// Keep limiting, each instance with its own local counters.
    Local,
    /// Fail open: let every request through unlimited.
    Allow,
    /// Fail closed: answer every limited request 503.
    Deny,
}

impl RateLimitFallback {
    /// Every fallback, by name.
    pub const ALL: [(&'static str, Self); 3] =
        [("local", Self::Local), ("allow", Self::Allow), ("deny", Self::Deny)];
}

impl fmt::Display for RateLimitStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = Self::ALL.iter().find(|(_, s)| s == self).map_or("?", |(n, _)| n);
        f.write_str(name)
    }
}

impl fmt::Display for RateLimitFallback {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = Self::ALL.iter().find(|(_, s)| s == self).map_or("?", |(n, _)| n);
        f.write_str(name)
    }
}

/// The validated rate limit keys, before they are put in the `SecuritySpec`.
pub(super) struct RateLimitKeys {
    pub(super) store: RateLimitStore,
    pub(super) exempt: Vec<String>,
    pub(super) redis_timeout: Duration,
    pub(super) fallback: RateLimitFallback,
}

impl Validator<'_> {
    /// The rate limit keys of `security`. `health_check_path` joins the default exempt list;
    /// `redis_url` must be set when the store is Redis.
    pub(super) fn rate_limit(
        &mut self,
        raw: &RawSecurity,
        health_check_path: Option<&str>,
        redis_url: Option<&str>,
    ) -> RateLimitKeys {
        const STORE: &str = "security.rateLimitStore";
        let store = self.named(STORE, &raw.rate_limit_store, &RateLimitStore::ALL);
        let store = store.unwrap_or(RateLimitStore::Local);
        // A build without the `redis` feature accepts the key; the cluster then refuses to
        // start (`RateLimitError::NoRedisSupport`), so the configuration means the same
        // whatever the build.
        if store == RateLimitStore::Redis && redis_url.is_none() {
            self.invalid(STORE, r#""redis" needs `redisUrl` (e.g. "redis://127.0.0.1:6379")"#);
        }
        let fallback = self
            .named(
                "security.rateLimitRedisFallback",
                &raw.rate_limit_redis_fallback,
                &RateLimitFallback::ALL,
            )
            .unwrap_or(RateLimitFallback::Local);
        let redis_timeout = self.millis(
            "security.rateLimitRedisTimeout",
            raw.rate_limit_redis_timeout,
            1,
            MAX_REDIS_TIMEOUT_MS,
        );
        RateLimitKeys {
            store,
            exempt: self.exempt(raw.rate_limit_exempt.as_deref(), health_check_path),
            redis_timeout,
            fallback,
        }
    }

    /// `security.rateLimitExempt`: path prefixes, each starting with `/`; the default list
    /// plus the health-check path when not set.
    fn exempt(&mut self, list: Option<&[String]>, health_check_path: Option<&str>) -> Vec<String> {
        const KEY: &str = "security.rateLimitExempt";
        let Some(list) = list else {
            let defaults = DEFAULT_EXEMPT.iter().copied().chain(health_check_path);
            return defaults.map(str::to_owned).collect();
        };
        for prefix in list {
            if !prefix.starts_with('/') {
                self.invalid_value(
                    KEY,
                    prefix.as_str().into(),
                    r#"each prefix must start with "/""#,
                );
            }
        }
        list.to_vec()
    }

    /// One of `names` (case-insensitive), or `None` with the problem reported.
    pub(super) fn named<T: Copy>(
        &mut self,
        key: &str,
        value: &str,
        names: &[(&'static str, T)],
    ) -> Option<T> {
        let wanted = value.trim();
        if let Some((_, found)) = names.iter().find(|(n, _)| n.eq_ignore_ascii_case(wanted)) {
            return Some(*found);
        }
        let quoted: Vec<String> = names.iter().map(|(n, _)| format!("{n:?}")).collect();
        let mut reason = format!("expected one of {}", quoted.join(", "));
        if let Some(near) = nearest(wanted, names.iter().map(|(n, _)| *n)) {
            reason.push_str(&format!(r#"; did you mean "{near}"?"#));
        }
        self.invalid(key, reason);
        None
    }
}
