//! The rate limit stage: at most `security.rateLimitMax` requests per
//! `security.rateLimitWindow` from each client, by GCRA, answered 429 beyond it.
//!
//! It runs in the proxy's request path after the admin routes (the front door) and before a
//! worker is picked. It is built once when the primary starts ([`RateLimit::from_spec`]) and
//! held as an `Option` by the proxy: with `security.enableRateLimit` off there is no stage
//! at all, and the request path pays one `None` test.
//!
//! Files: `policy` (the GCRA arithmetic and the decision), `key` (whose quota a request
//! spends: its client's address, IPv6 by /64), `local` (governor's keyed limiter, with its
//! memory bounded), `redis` (the shared store, behind the `redis` cargo feature), `headers`
//! (`Retry-After`, `RateLimit-Policy`, `RateLimit`).
//!
//! # Stores
//!
//! With `security.rateLimitStore: "local"` (the default) each primary counts on its own.
//! With `"redis"`, every instance using `redisUrl` shares one count per client; when Redis is
//! slow or down, `security.rateLimitRedisFallback` decides: `local` limits with this
//! instance's own counts, `allow` lets everything through, `deny` answers 503.

mod headers;
mod key;
mod local;
mod policy;
#[cfg(feature = "redis")]
mod redis;

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use http::{HeaderMap, HeaderValue, Response};
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use crate::ClusterEvent;
use crate::config::{ClusterSpec, RateLimitFallback, RateLimitStore};

pub(crate) use policy::{Decision, QuotaState};

use local::LocalStore;
use policy::Policy;

/// Why the rate limit could not be built.
///
/// # Examples
///
/// ```
/// use cluster_core::config::ClusterSpec;
/// use cluster_core::{Cluster, ClusterError, RateLimitError};
///
/// # async fn example(spec: ClusterSpec) {
/// match Cluster::builder(spec).build().await {
///     Err(ClusterError::RateLimit(RateLimitError::NoRedisSupport)) => {
///         eprintln!("build cluster-core with its `redis` feature for a shared rate limit")
///     }
///     Err(other) => eprintln!("{other}"),
///     Ok(cluster) => drop(cluster),
/// }
/// # }
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RateLimitError {
    /// `redisUrl` is not a URL the Redis client accepts (the URL itself is not shown: it
    /// may hold a password).
    #[cfg(feature = "redis")]
    #[error("`redisUrl` is not a usable Redis URL ({0:?})")]
    RedisUrl(::redis::ErrorKind),
    /// The store is Redis, and this build has no Redis support (cargo feature `redis`).
    #[error("`security.rateLimitStore` is \"redis\" but this build has no Redis support")]
    NoRedisSupport,
}

/// The rate limit of a proxy: its policy, exempt paths and store. Shared by every proxy
/// thread through an `Arc`; see the module doc.
///
/// # Examples
///
/// ```
/// use cluster_core::config::ClusterSpec;
/// use cluster_core::{ProxyConfig, RateLimit};
/// use tokio_util::sync::CancellationToken;
///
/// # async fn example() -> Result<(), cluster_core::RateLimitError> {
/// let mut spec = ClusterSpec::default();
/// spec.security.enable_rate_limit = true;
/// let (events, _) = tokio::sync::broadcast::channel(16);
/// let limit = RateLimit::from_spec(&spec, events)?.expect("enabled");
/// let stop = CancellationToken::new();
/// tokio::spawn({
///     let limit = limit.clone();
///     async move { limit.run_background(stop).await } // expiry, Redis health
/// });
/// let mut config = ProxyConfig::default();
/// config.rate_limit = Some(limit);
/// # Ok(())
/// # }
/// ```
#[cfg_attr(not(feature = "test-util"), allow(unreachable_pub, dead_code))]
pub struct RateLimit {
    policy: Policy,
    /// `RateLimit-Policy`, formatted once.
    policy_header: HeaderValue,
    exempt: Box<[String]>,
    /// The store with `rateLimitStore: "local"`, and the `local` fallback with Redis.
    local: LocalStore,
    #[cfg(feature = "redis")]
    redis: Option<redis::RedisStore>,
    fallback: RateLimitFallback,
}

impl fmt::Debug for RateLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("RateLimit");
        d.field("policy", &self.policy).field("exempt", &self.exempt);
        #[cfg(feature = "redis")]
        d.field("redis", &self.redis);
        d.field("fallback", &self.fallback).finish_non_exhaustive()
    }
}

#[cfg_attr(not(feature = "test-util"), allow(unreachable_pub, dead_code))]
impl RateLimit {
    /// The rate limit `spec` asks for, or `None` when `security.enableRateLimit` is off.
    /// `events` receives the Redis store's down and up events.
    ///
    /// Must be called within a tokio runtime when the store is Redis (its connection's
    /// tasks run there); it connects on first use, so Redis may be down at start.
    ///
    /// # Errors
    ///
    /// A bad `redisUrl`, or a Redis store in a build without the `redis` feature.
    pub fn from_spec(
        spec: &ClusterSpec,
        events: broadcast::Sender<ClusterEvent>,
    ) -> Result<Option<Arc<Self>>, RateLimitError> {
        let security = &spec.security;
        if !security.enable_rate_limit {
            return Ok(None);
        }
        let policy = Policy::new(security.rate_limit_max, security.rate_limit_window);
        let fallback = security.rate_limit_redis_fallback;
        #[cfg(feature = "redis")]
        let redis = match (security.rate_limit_store, spec.redis_url.as_deref()) {
            (RateLimitStore::Redis, Some(url)) => Some(redis::RedisStore::new(
                url,
                policy,
                security.rate_limit_redis_timeout,
                fallback_name(fallback),
                events,
            )?),
            _ => None,
        };
        #[cfg(not(feature = "redis"))]
        {
            drop(events);
            if security.rate_limit_store == RateLimitStore::Redis {
                return Err(RateLimitError::NoRedisSupport);
            }
        }
        Ok(Some(Arc::new(Self {
            policy,
            policy_header: headers::policy_value(&policy),
            exempt: security.rate_limit_exempt.clone().into_boxed_slice(),
            local: LocalStore::new(policy),
            #[cfg(feature = "redis")]
            redis,
            fallback,
        })))
    }

    /// The background work of the limit, until `stop` fires: sweeping the local store's
    /// idle clients, and watching a down Redis store for its return. Spawn it once.
    pub async fn run_background(&self, stop: CancellationToken) {
        let sweep = async {
            let every = self.policy.window().clamp(Duration::from_secs(1), SWEEP_AT_LEAST);
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let clients = self.local.sweep();
                tracing::trace!(target: "cluster::ratelimit", clients, "local store swept");
            }
        };
        #[cfg(feature = "redis")]
        let watch = async {
            match &self.redis {
                Some(redis) => redis.watch(stop.clone()).await,
                None => std::future::pending().await,
            }
        };
        #[cfg(not(feature = "redis"))]
        let watch = std::future::pending::<()>();
        tokio::select! {
            () = stop.cancelled() => {}
            () = sweep => {}
            () = watch => {}
        }
    }

    /// Whether requests for `path` are never limited (`security.rateLimitExempt`).
    pub(crate) fn is_exempt(&self, path: &str) -> bool {
        self.exempt.iter().any(|prefix| path.starts_with(prefix.as_str()))
    }

    /// Spends one request of the quota of the client at `ip`.
    pub(crate) async fn decide(&self, ip: IpAddr) -> Decision {
        let key = key::client_key(ip);
        #[cfg(feature = "redis")]
        if let Some(redis) = &self.redis {
            if let Some(decision) = redis.check(key).await {
                return decision;
            }
            return match self.fallback {
                RateLimitFallback::Local => self.local.check(key),
                RateLimitFallback::Allow => Decision::Unlimited,
                RateLimitFallback::Deny => Decision::Unavailable,
            };
        }
        self.local.check(key)
    }

    /// Adds `RateLimit-Policy` and `RateLimit` to an allowed request's response.
    pub(crate) fn annotate(&self, headers: &mut HeaderMap, state: &QuotaState) {
        headers::insert(headers, &self.policy_header, state);
    }

    /// The answer to a request the limit refused: 429 with `Retry-After` for
    /// [`Decision::Limited`], 503 for [`Decision::Unavailable`]; `None` for a request that
    /// goes on.
    pub(crate) fn refusal(&self, decision: &Decision) -> Option<Response<bytes::Bytes>> {
        match decision {
            Decision::Limited { state, retry_after } => {
                Some(headers::too_many_requests(&self.policy_header, state, *retry_after))
            }
            Decision::Unavailable => Some(headers::unavailable()),
            Decision::Allowed(_) | Decision::Unlimited => None,
        }
    }
}

/// Longest time between two sweeps of the local store.
const SWEEP_AT_LEAST: Duration = Duration::from_secs(10);

/// The fallback's name in the configuration and the events.
#[cfg(feature = "redis")]
fn fallback_name(fallback: RateLimitFallback) -> &'static str {
    match fallback {
        RateLimitFallback::Local => "local",
        RateLimitFallback::Allow => "allow",
        RateLimitFallback::Deny => "deny",
    }
}
