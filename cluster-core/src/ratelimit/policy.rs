//! The limit's arithmetic: GCRA (the generic cell rate algorithm) for `max` requests per
//! `window`, and what a decision tells the client.
//!
//! A client's whole state is one instant, its theoretical arrival time (TAT): when its quota
//! will be full again. Each request moves it one emission interval `T = window / max` later
//! (from now, if it lies in the past); the request is allowed while the TAT stays within one
//! window of now. So a client may spend its `max` requests at once and then gets one more
//! every `T`: the limit is smooth, with no window boundary where twice the quota gets
//! through. The local store (governor) and the Redis script run this same algorithm;
//! [`Policy::decide`] is its reference, and what the unit tests pin down.

use std::time::Duration;

/// `max` requests per `window`, per client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Policy {
    max: u32,
    window: Duration,
    interval: Duration,
}

/// What is left of a client's quota after a decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct QuotaState {
    /// Requests the client may still send right now.
    pub(crate) remaining: u32,
    /// Time until the whole quota is available again.
    pub(crate) reset: Duration,
}

/// The rate limit's answer for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Decision {
    /// Let it through.
    Allowed(QuotaState),
    /// Answer 429; the client may try again after `retry_after`.
    Limited {
        /// The quota (nothing remaining).
        state: QuotaState,
        /// Time until one more request is allowed.
        retry_after: Duration,
    },
    /// No decision could be made (the shared store is down, fallback `deny`): answer 503.
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    Unavailable,
    /// Not limited at all (fallback `allow` while the shared store is down): no headers.
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    Unlimited,
}

impl Policy {
    /// `max` (at least 1) requests per `window` (at least 1 ms).
    pub(crate) fn new(max: u32, window: Duration) -> Self {
        let max = max.max(1);
        let window = window.max(Duration::from_millis(1));
        let interval = (window / max).max(Duration::from_nanos(1));
        Self { max, window, interval }
    }

    /// Requests per window (`q` in `RateLimit-Policy`).
    pub(crate) fn max(&self) -> u32 {
        self.max
    }

    /// The window.
    pub(crate) fn window(&self) -> Duration {
        self.window
    }

    /// The emission interval `T`: one request's worth of time.
    pub(crate) fn interval(&self) -> Duration {
        self.interval
    }

    /// Time until the whole quota is back when `remaining` requests are left now: one
    /// interval per request spent.
    pub(crate) fn reset_after(&self, remaining: u32) -> Duration {
        self.interval * self.max.saturating_sub(remaining)
    }

    /// The quota of a client that must wait `retry_after` for its next request: the whole
    /// quota is back `max - 1` intervals after that.
    pub(crate) fn limited(&self, retry_after: Duration) -> Decision {
        let reset = retry_after + self.interval * (self.max - 1);
        Decision::Limited { state: QuotaState { remaining: 0, reset }, retry_after }
    }

    /// One GCRA step: the decision for a request at `now` from a client whose TAT is `tat`
    /// (`None`: never seen, or expired), and its new TAT (unchanged when limited). Times are
    /// offsets from any fixed origin.
    ///
    /// The stores do not call it (governor runs this step on its own atomics, Redis in the
    /// Lua script of `redis.rs`); it is the reference both are held to, in the tests.
    #[cfg(test)]
    pub(crate) fn decide(&self, tat: Option<Duration>, now: Duration) -> (Decision, Duration) {
        let tat = tat.unwrap_or(now).max(now);
        let next = tat + self.interval;
        let ahead = next - now;
        if ahead > self.window {
            return (self.limited(ahead - self.window), tat);
        }
        let left = self.window - ahead;
        let remaining = (left.as_nanos() / self.interval.as_nanos()) as u32;
        (Decision::Allowed(QuotaState { remaining, reset: ahead }), next)
    }
}

/// Whole seconds, rounded up (a client told to wait 0 s would retry at once).
pub(crate) fn ceil_secs(d: Duration) -> u64 {
    d.as_secs().saturating_add(u64::from(d.subsec_nanos() > 0))
}

#[cfg(test)]
mod tests {
    use super::*;

    const fn s(secs: u64) -> Duration {
        Duration::from_secs(secs)
    }

    fn state(decision: Decision) -> QuotaState {
        match decision {
            Decision::Allowed(q) | Decision::Limited { state: q, .. } => q,
            other => panic!("no quota in {other:?}"),
        }
    }

    #[test]
    fn burst_of_max_then_one_per_interval() {
        // 3 per 3 s: T = 1 s.
        let p = Policy::new(3, s(3));
        assert_eq!(p.interval(), s(1));
        let mut tat = None;
        let mut remaining = Vec::new();
        for _ in 0..3 {
            let (d, next) = p.decide(tat, s(10));
            assert!(matches!(d, Decision::Allowed(_)), "{d:?}");
            remaining.push(state(d).remaining);
            tat = Some(next);
        }
        assert_eq!(remaining, [2, 1, 0]);
        assert_eq!(tat, Some(s(13)), "full again 3 s later");

        let (d, same) = p.decide(tat, s(10));
        assert_eq!(
            d,
            Decision::Limited {
                state: QuotaState { remaining: 0, reset: s(3) },
                retry_after: s(1)
            }
        );
        assert_eq!(Some(same), tat, "a refused request costs nothing");

        // Half an interval later: still refused, half a second to wait.
        let (d, _) = p.decide(tat, Duration::from_millis(10_500));
        assert!(
            matches!(d, Decision::Limited { retry_after, .. } if retry_after == Duration::from_millis(500))
        );
        // One interval later: one more request, and none after it.
        let (d, next) = p.decide(tat, s(11));
        assert_eq!(state(d), QuotaState { remaining: 0, reset: s(3) });
        assert!(matches!(p.decide(Some(next), s(11)).0, Decision::Limited { .. }));
    }

    #[test]
    fn quota_comes_back_whole_after_the_window() {
        let p = Policy::new(100, s(60));
        let mut tat = None;
        for _ in 0..100 {
            tat = Some(p.decide(tat, s(0)).1);
        }
        assert!(matches!(p.decide(tat, s(0)).0, Decision::Limited { .. }));
        let (d, _) = p.decide(tat, s(60));
        assert_eq!(state(d).remaining, 99);
        // A TAT in the past is the same as none: a fresh client.
        assert_eq!(p.decide(tat, s(600)).0, p.decide(None, s(600)).0);
    }

    #[test]
    fn reset_and_limited_arithmetic() {
        let p = Policy::new(100, s(60));
        assert_eq!(p.interval(), Duration::from_millis(600));
        assert_eq!(p.reset_after(100), Duration::ZERO);
        assert_eq!(p.reset_after(0), s(60));
        assert_eq!(p.reset_after(99), Duration::from_millis(600));
        let Decision::Limited { state, retry_after } = p.limited(Duration::from_millis(200)) else {
            unreachable!()
        };
        assert_eq!(retry_after, Duration::from_millis(200));
        assert_eq!(state, QuotaState { remaining: 0, reset: Duration::from_millis(59_600) });
    }

    #[test]
    fn degenerate_policies_stay_usable() {
        // More requests than nanoseconds in the window: the interval is 1 ns, never 0.
        let p = Policy::new(u32::MAX, Duration::from_millis(1));
        assert_eq!(p.interval(), Duration::from_nanos(1));
        assert!(matches!(p.decide(None, s(1)).0, Decision::Allowed(_)));
        let p = Policy::new(0, Duration::ZERO);
        assert_eq!((p.max(), p.window()), (1, Duration::from_millis(1)));
    }

    #[test]
    fn seconds_round_up() {
        assert_eq!(ceil_secs(Duration::ZERO), 0);
        assert_eq!(ceil_secs(Duration::from_millis(1)), 1);
        assert_eq!(ceil_secs(s(12)), 12);
        assert_eq!(ceil_secs(Duration::from_millis(12_001)), 13);
    }
}
