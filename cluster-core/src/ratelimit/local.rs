//! The local store: a keyed GCRA limiter (the `governor` crate) in the primary's memory, one
//! atomic per client, with its memory bounded.
//!
//! governor keeps one entry per key until [`LocalStore::sweep`] (run every few seconds by
//! the limiter's background task) drops the entries whose quota has been full again for one
//! emission interval, the ones indistinguishable from a fresh client. Between sweeps, a flood of new addresses could
//! still grow the map, so the store also has a hard cap on its keys: once it holds `cap`
//! clients, a client it does not know yet is not given an entry of its own but spends the
//! quota of one shared overflow key, until a sweep makes room. Clients already known keep
//! their own quota throughout; new clients during a flood of addresses share one quota
//! (they are limited together, never let through unlimited), and memory never exceeds
//! `cap + 1` entries.

use std::hash::Hash;
use std::net::{IpAddr, Ipv6Addr};
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicUsize, Ordering};

use governor::clock::{Clock, DefaultClock};
use governor::middleware::{NoOpMiddleware, StateInformationMiddleware};
use governor::nanos::Nanos;
use governor::state::StateStore;
use governor::state::keyed::{DashMapStateStore, ShrinkableKeyedStateStore};
use governor::{Quota, RateLimiter};

use super::policy::{Decision, Policy, QuotaState};

/// Most clients the local store keeps an entry for (about 100 bytes each with the map's
/// overhead: some 10 MB).
pub(crate) const MAX_KEYS: usize = 100_000;

/// The key new clients share once the store is full: `::`, which no client has.
pub(crate) const OVERFLOW_KEY: IpAddr = IpAddr::V6(Ipv6Addr::UNSPECIFIED);

/// A governor state store with a cap on its keys (see the module doc).
#[derive(Debug)]
pub(crate) struct CappedStore<K: Hash + Eq + Clone> {
    map: DashMapStateStore<K>,
    /// Keys in `map`, counted as they are added and recounted at each sweep (an estimate
    /// between sweeps: two requests adding the same new key at once count it twice).
    keys: AtomicUsize,
    cap: usize,
    overflow: K,
}

impl<K: Hash + Eq + Clone> CappedStore<K> {
    fn new(cap: usize, overflow: K) -> Self {
        Self { map: DashMapStateStore::default(), keys: AtomicUsize::new(0), cap, overflow }
    }
}

impl<K: Hash + Eq + Clone> StateStore for CappedStore<K> {
    type Key = K;

    fn measure_and_replace<T, F, E>(&self, key: &K, f: F) -> Result<T, E>
    where
        F: Fn(Option<Nanos>) -> Result<(T, Nanos), E>,
    {
        if self.map.contains_key(key) {
            return self.map.measure_and_replace(key, f);
        }
        if self.keys.load(Ordering::Relaxed) >= self.cap {
            return self.map.measure_and_replace(&self.overflow, f);
        }
        self.keys.fetch_add(1, Ordering::Relaxed);
        self.map.measure_and_replace(key, f)
    }
}

impl<K: Hash + Eq + Clone> ShrinkableKeyedStateStore<K> for CappedStore<K> {
    fn retain_recent(&self, drop_below: Nanos) {
        self.map.retain_recent(drop_below);
        self.keys.store(self.map.len(), Ordering::Relaxed);
    }

    fn shrink_to_fit(&self) {
        self.map.shrink_to_fit();
    }

    fn len(&self) -> usize {
        self.map.len()
    }

    fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

/// Per-client limits kept in this process.
#[derive(Debug)]
pub(crate) struct LocalStore<C: Clock = DefaultClock> {
    policy: Policy,
    limiter: RateLimiter<IpAddr, CappedStore<IpAddr>, C, StateInformationMiddleware>,
}

impl LocalStore {
    /// A store for `policy` holding at most [`MAX_KEYS`] clients.
    pub(crate) fn new(policy: Policy) -> Self {
        Self::with_clock(policy, MAX_KEYS, DefaultClock::default())
    }
}

impl<C: Clock> LocalStore<C> {
    /// A store for `policy` holding at most `cap` clients, on `clock`.
    pub(crate) fn with_clock(policy: Policy, cap: usize, clock: C) -> Self {
        let burst = NonZeroU32::new(policy.max()).unwrap_or(NonZeroU32::MIN);
        let quota = Quota::with_period(policy.interval())
            .expect("the interval is at least 1 ns")
            .allow_burst(burst);
        let store = CappedStore::new(cap, OVERFLOW_KEY);
        let limiter = RateLimiter::<_, _, _, NoOpMiddleware<C::Instant>>::new(quota, store, clock)
            .with_middleware::<StateInformationMiddleware>();
        Self { policy, limiter }
    }

    /// Spends one request of `key`'s quota, if it has one left.
    pub(crate) fn check(&self, key: IpAddr) -> Decision {
        match self.limiter.check_key(&key) {
            Ok(snapshot) => {
                let remaining = snapshot.remaining_burst_capacity();
                let reset = self.policy.reset_after(remaining);
                Decision::Allowed(QuotaState { remaining, reset })
            }
            Err(not_until) => {
                let now = self.limiter.clock().now();
                self.policy.limited(not_until.wait_time_from(now))
            }
        }
    }

    /// Drops the clients whose quota is full again (they are the same as fresh ones), and
    /// returns how many are left.
    pub(crate) fn sweep(&self) -> usize {
        self.limiter.retain_recent();
        self.limiter.shrink_to_fit();
        self.limiter.len()
    }

    /// Clients with an entry now.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.limiter.len()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use governor::clock::FakeRelativeClock;

    use super::*;

    fn ip(n: u32) -> IpAddr {
        IpAddr::V4(n.into())
    }

    fn store(
        max: u32,
        window_secs: u64,
        cap: usize,
    ) -> (LocalStore<FakeRelativeClock>, FakeRelativeClock) {
        let clock = FakeRelativeClock::default();
        let policy = Policy::new(max, Duration::from_secs(window_secs));
        (LocalStore::with_clock(policy, cap, clock.clone()), clock)
    }

    #[test]
    fn limits_each_client_on_its_own() {
        let (s, clock) = store(3, 3, 100);
        let remaining: Vec<_> = (0..3)
            .map(|_| match s.check(ip(1)) {
                Decision::Allowed(q) => q.remaining,
                d => panic!("{d:?}"),
            })
            .collect();
        assert_eq!(remaining, [2, 1, 0]);
        let Decision::Limited { retry_after, state } = s.check(ip(1)) else { panic!() };
        assert_eq!(retry_after, Duration::from_secs(1));
        assert_eq!(state, QuotaState { remaining: 0, reset: Duration::from_secs(3) });
        assert!(matches!(s.check(ip(2)), Decision::Allowed(_)), "another client is not limited");
        clock.advance(Duration::from_secs(1));
        assert!(matches!(s.check(ip(1)), Decision::Allowed(_)));
    }

    #[test]
    fn sweep_drops_clients_whose_quota_is_full_again() {
        let (s, clock) = store(10, 10, 100);
        for n in 0..50 {
            s.check(ip(n));
        }
        assert_eq!(s.len(), 50);
        clock.advance(Duration::from_millis(500));
        assert_eq!(s.sweep(), 50, "each spent 1 s worth; nothing is full yet");
        s.check(ip(7));
        // governor keeps an entry one interval past the moment its quota is full again.
        clock.advance(Duration::from_millis(1_600));
        assert_eq!(s.sweep(), 1, "only the client that came back is left");
        clock.advance(Duration::from_secs(1));
        assert_eq!(s.sweep(), 0);
    }

    #[test]
    fn beyond_the_cap_new_clients_share_one_quota() {
        let (s, clock) = store(2, 60, 10);
        for n in 0..10 {
            assert!(matches!(s.check(ip(n)), Decision::Allowed(_)));
        }
        // Full: new clients spend the overflow key's quota together (2 requests here).
        assert!(matches!(s.check(ip(100)), Decision::Allowed(_)));
        assert!(matches!(s.check(ip(101)), Decision::Allowed(_)));
        assert!(matches!(s.check(ip(102)), Decision::Limited { .. }));
        assert!(matches!(s.check(ip(103)), Decision::Limited { .. }));
        assert_eq!(s.len(), 11, "the cap and the overflow key, nothing more");
        // Known clients keep their own quota.
        assert!(matches!(s.check(ip(3)), Decision::Allowed(_)));
        assert!(matches!(s.check(ip(3)), Decision::Limited { .. }));
        // Once a sweep makes room, new clients get entries of their own again.
        clock.advance(Duration::from_secs(91));
        assert_eq!(s.sweep(), 0);
        for n in 200..205 {
            assert!(matches!(s.check(ip(n)), Decision::Allowed(_)));
        }
        assert_eq!(s.len(), 5);
    }
}
