//! [`OutlierPolicy`]: passive ejection of workers whose error rate stands above their peers'.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::{RecycleReason, UnhealthyReason, Verdict, WorkerSnapshot};

/// Ejects, for a while, a worker whose error rate over the proxy's window is far above its
/// peers', then re-admits it on probation (outlier detection in the manner of Envoy).
///
/// Rules, evaluated over all workers together by [`evaluate_all`](Self::evaluate_all):
///
/// - A worker is judged, and counts as a peer, only with at least `min_requests` requests in the
///   window and while it is not ejected. It needs `min_peers` such peers.
/// - It is an outlier when its error rate is at least `min_error_rate` and exceeds the median of
///   its peers' rates by at least `min_excess`. When every worker fails alike (a database is
///   down) nobody is ejected: that is not one worker's fault.
/// - At most `max_ejected_share` of the workers (and always at least one) are out of rotation
///   at once, counting those out for another reason ([`WorkerSnapshot::out_of_rotation`]);
///   the worst rates go first, then the lower worker id.
/// - The n-th ejection in a row lasts `n × base_ejection` (at most `max_ejection`). After it the
///   worker is routable again on probation; an ejection during probation counts as the next in
///   the row, a probation passed without one resets the row. After `recycle_after` ejections
///   in a row the worker is replaced ([`RecycleReason::ErrorRate`]).
///
/// PM2 has no passive health at all, so a worker answering 500s keeps its share of traffic
/// (pm2#2197); a single-threshold ejection would, on the other hand, take every worker out when
/// the fault is shared. Comparing with peers and capping the share answers both.
///
/// # Caveats
///
/// The window should be time-based and not much longer than `base_ejection`: an ejected worker
/// gets no traffic, so its window empties and it is judged again only on fresh requests.
///
/// # Examples
///
/// Worker 3 fails half its requests while its peers fail none: it is ejected for 30 s.
///
/// ```
/// use std::time::Instant;
/// use cluster_health::{OutlierPolicy, OutlierState, UnhealthyReason, Verdict, WorkerSnapshot};
///
/// let worker = |id, error_rate| WorkerSnapshot {
///     worker_id: id,
///     window_requests: 100,
///     error_rate,
///     ..WorkerSnapshot::default()
/// };
/// let workers = [worker(1, 0.0), worker(2, 0.0), worker(3, 0.5)];
/// let policy = OutlierPolicy::default();
/// let mut state = OutlierState::default();
/// let now = Instant::now();
/// let verdicts = policy.evaluate_all(&workers, &mut state, now);
/// assert_eq!(verdicts[0], Verdict::Healthy);
/// assert!(matches!(verdicts[2], Verdict::Unhealthy(UnhealthyReason::Ejected { .. })));
/// assert!(state.is_ejected(3, now));
/// assert_eq!(state.ejections(3), 1);
/// assert!(!state.on_probation(3, now)); // probation starts when the ejection ends
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct OutlierPolicy {
    /// How far above the peers' median error rate an outlier stands (0 to 1).
    pub min_excess: f64,
    /// The lowest error rate that can be an outlier (0 to 1), so 2 % against 0 % is not one.
    pub min_error_rate: f64,
    /// Requests in the window needed to judge a worker or to count it as a peer.
    pub min_requests: u64,
    /// Judged peers needed before anyone is ejected.
    pub min_peers: usize,
    /// Length of a first ejection.
    pub base_ejection: Duration,
    /// Longest ejection.
    pub max_ejection: Duration,
    /// Probation after re-admission.
    pub probation: Duration,
    /// Largest share of the workers ejected at once (0 to 1; at least one worker may be).
    pub max_ejected_share: f64,
    /// Ejections in a row after which the worker is replaced (`None`: never).
    pub recycle_after: Option<u32>,
}

impl Default for OutlierPolicy {
    /// Excess 0.2 over a floor of 0.1, 20 requests, 2 peers, 30 s ejection up to 300 s,
    /// 60 s probation, at most a third ejected, replaced after 3 ejections in a row.
    fn default() -> Self {
        OutlierPolicy {
            min_excess: 0.2,
            min_error_rate: 0.1,
            min_requests: 20,
            min_peers: 2,
            base_ejection: Duration::from_secs(30),
            max_ejection: Duration::from_secs(300),
            probation: Duration::from_secs(60),
            max_ejected_share: 0.34,
            recycle_after: Some(3),
        }
    }
}

/// What an [`OutlierPolicy`] remembers between ticks: who is ejected until when, who is on
/// probation, and how many ejections in a row each worker has had. Owned by the caller (or by
/// [`Policies`](crate::Policies)); workers absent from a call are forgotten.
///
/// # Examples
///
/// ```
/// use std::time::Instant;
/// use cluster_health::OutlierState;
///
/// let state = OutlierState::default();
/// assert!(!state.is_ejected(1, Instant::now()));
/// assert_eq!(state.ejections(1), 0);
/// assert!(!state.on_probation(1, Instant::now()));
/// ```
#[derive(Debug, Clone, Default)]
pub struct OutlierState {
    workers: BTreeMap<u64, Entry>,
}

#[derive(Debug, Clone, Default)]
struct Entry {
    ejected_until: Option<Instant>,
    probation_until: Option<Instant>,
    ejections: u32,
    verdict: Option<Verdict>,
}

impl OutlierState {
    /// Whether the worker is ejected at `now`.
    pub fn is_ejected(&self, worker_id: u64, now: Instant) -> bool {
        self.workers.get(&worker_id).and_then(|e| e.ejected_until).is_some_and(|t| t > now)
    }

    /// Whether the worker is routable again but on probation at `now`.
    pub fn on_probation(&self, worker_id: u64, now: Instant) -> bool {
        let e = self.workers.get(&worker_id);
        !self.is_ejected(worker_id, now)
            && e.and_then(|e| e.probation_until).is_some_and(|t| t > now)
    }

    /// Ejections in a row of the worker (0 once a probation passed without one).
    pub fn ejections(&self, worker_id: u64) -> u32 {
        self.workers.get(&worker_id).map_or(0, |e| e.ejections)
    }
}

impl OutlierPolicy {
    /// Judges all workers at `now` and advances `state`; returns one verdict per snapshot, in
    /// order. Deterministic: the same snapshots, state and instant give the same result.
    pub fn evaluate_all(
        &self,
        workers: &[WorkerSnapshot],
        state: &mut OutlierState,
        now: Instant,
    ) -> Vec<Verdict> {
        state.workers.retain(|id, _| workers.iter().any(|w| w.worker_id == *id));
        for e in state.workers.values_mut() {
            if e.ejected_until.is_some_and(|t| t <= now) {
                e.ejected_until = None;
                e.verdict = None;
                e.probation_until = Some(now + self.probation);
            }
            if e.ejected_until.is_none() && e.probation_until.is_some_and(|t| t <= now) {
                e.probation_until = None;
                e.ejections = 0;
            }
        }
        let ejected_here =
            |id: u64| state.workers.get(&id).is_some_and(|e| e.ejected_until.is_some());
        let ejected = |w: &WorkerSnapshot| w.out_of_rotation || ejected_here(w.worker_id);
        let judged: Vec<&WorkerSnapshot> = workers
            .iter()
            .filter(|w| w.window_requests >= self.min_requests && !ejected(w))
            .collect();

        let mut candidates: Vec<(&WorkerSnapshot, f64)> = judged
            .iter()
            .filter_map(|w| {
                let mut peers: Vec<f64> = judged
                    .iter()
                    .filter(|p| p.worker_id != w.worker_id)
                    .map(|p| p.error_rate)
                    .collect();
                if peers.len() < self.min_peers.max(1) {
                    return None;
                }
                let median = median(&mut peers);
                let outlier =
                    w.error_rate >= self.min_error_rate && w.error_rate - median >= self.min_excess;
                outlier.then_some((*w, median))
            })
            .collect();
        candidates.sort_by(|a, b| {
            b.0.error_rate.total_cmp(&a.0.error_rate).then(a.0.worker_id.cmp(&b.0.worker_id))
        });

        let cap = ((workers.len() as f64 * self.max_ejected_share.clamp(0.0, 1.0)) as usize).max(1);
        let already = workers.iter().filter(|w| ejected(w)).count();
        for (w, peer_rate) in candidates.into_iter().take(cap.saturating_sub(already)) {
            let e = state.workers.entry(w.worker_id).or_default();
            e.ejections = e.ejections.saturating_add(1);
            let duration = self.base_ejection.saturating_mul(e.ejections).min(self.max_ejection);
            e.ejected_until = Some(now + duration);
            e.probation_until = None;
            e.verdict = Some(match self.recycle_after {
                Some(k) if e.ejections >= k => {
                    Verdict::Recycle(RecycleReason::ErrorRate { ejections: e.ejections })
                }
                _ => Verdict::Unhealthy(UnhealthyReason::Ejected {
                    error_rate: w.error_rate,
                    peer_rate,
                    duration,
                }),
            });
        }
        workers
            .iter()
            .map(|w| {
                state
                    .workers
                    .get(&w.worker_id)
                    .and_then(|e| e.verdict.clone())
                    .unwrap_or(Verdict::Healthy)
            })
            .collect()
    }
}

/// The median of `values` (sorted in place); the mean of the middle two for an even count.
fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n == 0 {
        0.0
    } else if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}

#[cfg(test)]
#[path = "outlier_tests.rs"]
mod tests;
