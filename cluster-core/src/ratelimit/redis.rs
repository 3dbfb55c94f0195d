//! The shared store: the GCRA state of each client in Redis, updated by one server-side Lua
//! script, so that every cluster instance using that Redis spends from the same quota.
//!
//! Built on redis-rs (the `redis` crate) rather than fred: redis-rs is the most used Redis
//! client in Rust, its `Script` already does EVALSHA with the NOSCRIPT fallback (load, then
//! EVALSHA again), and its `ConnectionManager` is one multiplexed connection that reconnects
//! on its own; fred's pools, clustering and tracing are more than one script call needs, at
//! a larger dependency tree.
//!
//! The script reads Redis's own clock (`TIME`), so instances with skewed clocks still share
//! one limit, and runs [`Policy::decide`](super::policy::Policy::decide)'s algorithm
//! atomically (a script runs alone on the server). Each key expires when its client's quota
//! is full again (at most one window after its last request), so Redis holds only the
//! clients seen within the last window.
//!
//! Every call is bounded by `security.rateLimitRedisTimeout`: a slow Redis costs a request
//! at most that. After [`FAILURES_TO_DOWN`] failed calls in a row the store is *down*: no
//! request waits on it any more, the limiter applies its fallback, a
//! [`RateLimitStoreDown`](crate::ClusterEvent::RateLimitStoreDown) event is published, and
//! a background task pings Redis every second until it answers, then publishes
//! [`RateLimitStoreUp`](crate::ClusterEvent::RateLimitStoreUp).

use std::net::IpAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use tokio::sync::broadcast;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::RateLimitError;
use super::policy::{Decision, Policy, QuotaState};
use crate::ClusterEvent;

/// Failed calls in a row after which the store counts as down.
pub(crate) const FAILURES_TO_DOWN: u32 = 3;

/// How often a down store is pinged.
pub(crate) const PING_EVERY: Duration = Duration::from_secs(1);

/// Prefix of the keys the script writes (`cluster:ratelimit:203.0.113.7`).
const KEY_PREFIX: &str = "cluster:ratelimit:";

/// The GCRA step, in microseconds of Redis's clock. `KEYS[1]`: the client's key;
/// `ARGV[1]`: the emission interval; `ARGV[2]`: the window. Returns
/// `{allowed, remaining, reset, retry_after}` (times in µs; a refusal's reset is left to
/// [`Policy::limited`]). The key holds the client's TAT
/// and expires when the TAT is reached (the quota is full again).
const GCRA_SCRIPT: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local next = tat + interval
local ahead = next - now
if ahead > window then
  return {0, 0, 0, ahead - window}
end
redis.call('SET', KEYS[1], next, 'PX', math.ceil(ahead / 1000))
return {1, math.floor((window - ahead) / interval), ahead, 0}
";

/// The shared store (see the module doc).
pub(crate) struct RedisStore {
    conn: ConnectionManager,
    script: redis::Script,
    policy: Policy,
    timeout: Duration,
    /// Failed calls in a row.
    failures: AtomicU32,
    down: AtomicBool,
    /// When the store went down, for the event that says it is back.
    down_since: Mutex<Option<Instant>>,
    fallback: &'static str,
    events: broadcast::Sender<ClusterEvent>,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("policy", &self.policy)
            .field("timeout", &self.timeout)
            .field("down", &self.down)
            .finish_non_exhaustive()
    }
}

impl RedisStore {
    /// A store on the Redis at `url`; connects on first use, so Redis may be down at start
    /// (the first calls fail and the store goes down, with its event).
    ///
    /// Must be called within a tokio runtime (the connection's tasks are spawned on it).
    ///
    /// # Errors
    ///
    /// [`RateLimitError::RedisUrl`] when `url` is not a Redis URL redis-rs accepts.
    pub(crate) fn new(
        url: &str,
        policy: Policy,
        timeout: Duration,
        fallback: &'static str,
        events: broadcast::Sender<ClusterEvent>,
    ) -> Result<Self, RateLimitError> {
        let client = redis::Client::open(url).map_err(|e| RateLimitError::RedisUrl(e.kind()))?;
        // The manager's own bounds only matter for the background ping: every request call
        // is bounded by `timeout` around it. One quick reconnection attempt per failure; the
        // ping loop does the waiting.
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(PING_EVERY))
            .set_response_timeout(Some(PING_EVERY))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_millis(100));
        let conn = ConnectionManager::new_lazy_with_config(client, config)
            .map_err(|e| RateLimitError::RedisUrl(e.kind()))?;
        Ok(Self {
            conn,
            script: redis::Script::new(GCRA_SCRIPT),
            policy,
            timeout,
            failures: AtomicU32::new(0),
            down: AtomicBool::new(false),
            down_since: Mutex::new(None),
            fallback,
            events,
        })
    }

    /// Whether the store is down (requests use the fallback without calling it).
    pub(crate) fn is_down(&self) -> bool {
        self.down.load(Ordering::Relaxed)
    }

    /// Spends one request of `key`'s shared quota. `None` when the store is down or this
    /// call failed or timed out: the caller applies the fallback.
    pub(crate) async fn check(&self, key: IpAddr) -> Option<Decision> {
        if self.is_down() {
            return None;
        }
        let mut conn = self.conn.clone();
        let mut call = self.script.key(format!("{KEY_PREFIX}{key}"));
        call.arg(self.policy.interval().as_micros().max(1) as u64)
            .arg(self.policy.window().as_micros() as u64);
        let reply = tokio::time::timeout(self.timeout, call.invoke_async::<Vec<i64>>(&mut conn));
        match reply.await {
            Ok(Ok(reply)) => {
                self.failures.store(0, Ordering::Relaxed);
                self.decision(&reply).or_else(|| {
                    self.failed(format!("unexpected script reply {reply:?}"));
                    None
                })
            }
            Ok(Err(e)) => {
                self.failed(describe(&e));
                None
            }
            Err(_) => {
                self.failed(format!("no answer within {} ms", self.timeout.as_millis()));
                None
            }
        }
    }

    /// The decision in the script's reply.
    fn decision(&self, reply: &[i64]) -> Option<Decision> {
        let &[allowed, remaining, reset, retry] = reply else { return None };
        let us = |v: i64| Duration::from_micros(v.max(0) as u64);
        let remaining = u32::try_from(remaining.max(0)).unwrap_or(u32::MAX);
        Some(if allowed == 1 {
            Decision::Allowed(QuotaState { remaining, reset: us(reset) })
        } else {
            self.policy.limited(us(retry))
        })
    }

    /// Counts a failed call; the third in a row takes the store down.
    fn failed(&self, reason: String) {
        let failures = self.failures.fetch_add(1, Ordering::Relaxed) + 1;
        tracing::debug!(target: "cluster::ratelimit", failures, %reason, "Redis call failed");
        if failures >= FAILURES_TO_DOWN && !self.down.swap(true, Ordering::AcqRel) {
            *self.down_since.lock().unwrap_or_else(|e| e.into_inner()) = Some(Instant::now());
            tracing::warn!(
                target: "cluster::ratelimit",
                "Redis is down for the rate limit ({reason}); fallback: {}",
                self.fallback
            );
            let _ = self.events.send(ClusterEvent::RateLimitStoreDown {
                store: "redis".into(),
                fallback: self.fallback.into(),
                reason,
            });
        }
    }

    /// While the store is down, pings Redis every [`PING_EVERY`] (each ping bounded by the
    /// same interval) and brings it back up when it answers. Returns when `stop` fires.
    pub(crate) async fn watch(&self, stop: CancellationToken) {
        let mut tick = tokio::time::interval(PING_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                _ = tick.tick() => {}
            }
            if !self.is_down() {
                continue;
            }
            let mut conn = self.conn.clone();
            let ping = redis::cmd("PING");
            let ping = ping.query_async::<String>(&mut conn);
            if let Ok(Ok(_)) = tokio::time::timeout(PING_EVERY, ping).await {
                self.up();
            }
        }
    }

    /// Marks the store up again and says so.
    fn up(&self) {
        self.failures.store(0, Ordering::Relaxed);
        if self.down.swap(false, Ordering::AcqRel) {
            let since = self.down_since.lock().unwrap_or_else(|e| e.into_inner()).take();
            let down_for = since.map(|s| s.elapsed()).unwrap_or_default();
            tracing::info!(
                target: "cluster::ratelimit",
                "Redis is back for the rate limit after {:.1} s",
                down_for.as_secs_f64()
            );
            let _ = self
                .events
                .send(ClusterEvent::RateLimitStoreUp { store: "redis".into(), down_for });
        }
    }
}

/// A redis-rs error for people, without the URL (which may hold a password).
fn describe(e: &redis::RedisError) -> String {
    if e.is_connection_refusal() {
        "connection refused".into()
    } else if e.is_timeout() {
        "timed out".into()
    } else if e.is_io_error() || e.is_connection_dropped() {
        "connection lost".into()
    } else {
        format!("{:?} error", e.kind())
    }
}
