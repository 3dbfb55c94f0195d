//! Rules of the outlier policy: who is ejected, how many, for how long, and re-admission.

use super::*;

fn w(id: u64, error_rate: f64, window_requests: u64) -> WorkerSnapshot {
    WorkerSnapshot { worker_id: id, error_rate, window_requests, ..WorkerSnapshot::default() }
}

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn ejected_ids(verdicts: &[Verdict], workers: &[WorkerSnapshot]) -> Vec<u64> {
    workers.iter().zip(verdicts).filter(|(_, v)| !v.routable()).map(|(w, _)| w.worker_id).collect()
}

#[test]
fn ejects_the_one_worker_far_above_its_peers() {
    let p = OutlierPolicy::default();
    let mut st = OutlierState::default();
    let now = Instant::now();
    let ws = [w(1, 0.01, 100), w(2, 0.0, 100), w(3, 0.6, 100), w(4, 0.02, 100), w(5, 0.01, 100)];
    let v = p.evaluate_all(&ws, &mut st, now);
    assert_eq!(
        v[2],
        Verdict::Unhealthy(UnhealthyReason::Ejected {
            error_rate: 0.6,
            peer_rate: 0.01,
            duration: secs(30)
        })
    );
    assert_eq!(ejected_ids(&v, &ws), [3]);
    assert!(st.is_ejected(3, now) && st.ejections(3) == 1);
}

#[test]
fn a_shared_fault_ejects_nobody() {
    let p = OutlierPolicy::default();
    let ws = [w(1, 0.5, 100), w(2, 0.55, 100), w(3, 0.6, 100), w(4, 0.5, 100)];
    let v = p.evaluate_all(&ws, &mut OutlierState::default(), Instant::now());
    assert!(v.iter().all(Verdict::routable), "{v:?}");
}

#[test]
fn low_volume_low_rates_and_too_few_peers_are_not_judged() {
    let p = OutlierPolicy::default();
    let now = Instant::now();
    // Too few requests in the window behind the high rate.
    let ws = [w(1, 0.0, 100), w(2, 0.0, 100), w(3, 1.0, 5)];
    assert!(p.evaluate_all(&ws, &mut OutlierState::default(), now).iter().all(Verdict::routable));
    // Under the absolute floor even though far above in relative terms.
    let p2 = OutlierPolicy { min_excess: 0.05, ..p.clone() };
    let ws = [w(1, 0.0, 100), w(2, 0.0, 100), w(3, 0.08, 100)];
    assert!(p2.evaluate_all(&ws, &mut OutlierState::default(), now).iter().all(Verdict::routable));
    // One peer is not enough.
    let ws = [w(1, 0.0, 100), w(2, 0.9, 100)];
    assert!(p.evaluate_all(&ws, &mut OutlierState::default(), now).iter().all(Verdict::routable));
}

#[test]
fn never_more_than_the_configured_share_is_ejected() {
    let p = OutlierPolicy { max_ejected_share: 0.2, ..OutlierPolicy::default() };
    let mut st = OutlierState::default();
    let now = Instant::now();
    let mut ws: Vec<WorkerSnapshot> = (0..10).map(|id| w(id, 0.0, 100)).collect();
    for (id, rate) in [(2, 0.5), (4, 0.9), (6, 0.7), (8, 0.9), (9, 0.6)] {
        ws[id].error_rate = rate;
    }
    let v = p.evaluate_all(&ws, &mut st, now);
    assert_eq!(ejected_ids(&v, &ws), [4, 8], "worst first, then lower id");
    // Next tick: the cap is still full, nobody else goes.
    let v = p.evaluate_all(&ws, &mut st, now + secs(1));
    assert_eq!(ejected_ids(&v, &ws), [4, 8]);
    // At least one may always be ejected, even when the share rounds to zero.
    let tiny = OutlierPolicy { max_ejected_share: 0.0, ..OutlierPolicy::default() };
    let v = tiny.evaluate_all(&ws, &mut OutlierState::default(), now);
    assert_eq!(ejected_ids(&v, &ws), [4]);
}

#[test]
fn workers_out_of_rotation_for_failing_probes_count_against_the_cap() {
    let p = OutlierPolicy::default(); // a third of 6 workers: 2
    let now = Instant::now();
    let mut ws: Vec<WorkerSnapshot> = (0..6).map(|id| w(id, 0.0, 100)).collect();
    ws[1].out_of_rotation = true;
    ws[1].error_rate = 1.0; // not judged: it is out already
    ws[3].error_rate = 0.9;
    ws[5].error_rate = 0.8;
    let v = p.evaluate_all(&ws, &mut OutlierState::default(), now);
    assert_eq!(ejected_ids(&v, &ws), [3], "one slot left under the cap");
    ws[2].out_of_rotation = true;
    let v = p.evaluate_all(&ws, &mut OutlierState::default(), now);
    assert!(ejected_ids(&v, &ws).is_empty(), "the cap is full: {v:?}");
}

#[test]
fn readmits_on_probation_and_lengthens_repeated_ejections() {
    let p = OutlierPolicy { recycle_after: None, ..OutlierPolicy::default() };
    let mut st = OutlierState::default();
    let t0 = Instant::now();
    let bad = [w(1, 0.0, 100), w(2, 0.0, 100), w(3, 0.9, 100)];
    // While ejected it gets no traffic, so its window empties.
    let idle = [w(1, 0.0, 100), w(2, 0.0, 100), w(3, 0.0, 0)];
    assert!(!p.evaluate_all(&bad, &mut st, t0)[2].routable());
    assert!(!p.evaluate_all(&idle, &mut st, t0 + secs(29))[2].routable());
    // Re-admitted after 30 s, on probation.
    assert!(p.evaluate_all(&idle, &mut st, t0 + secs(30))[2].routable());
    assert!(st.on_probation(3, t0 + secs(30)));
    // Bad again during probation: the second ejection in a row lasts twice as long.
    let v = p.evaluate_all(&bad, &mut st, t0 + secs(40));
    assert!(
        matches!(v[2], Verdict::Unhealthy(UnhealthyReason::Ejected { duration, .. }) if duration == secs(60))
    );
    assert!(st.is_ejected(3, t0 + secs(99)) && !st.is_ejected(3, t0 + secs(100)));
    // Released at 100 s, probation passes clean by 160 s: the row is reset.
    assert!(p.evaluate_all(&idle, &mut st, t0 + secs(100))[2].routable());
    assert_eq!(st.ejections(3), 2);
    let healthy = [w(1, 0.0, 100), w(2, 0.0, 100), w(3, 0.01, 100)];
    assert!(p.evaluate_all(&healthy, &mut st, t0 + secs(160))[2].routable());
    assert_eq!(st.ejections(3), 0);
    assert!(!st.on_probation(3, t0 + secs(160)));
    let v = p.evaluate_all(&bad, &mut st, t0 + secs(170));
    assert!(
        matches!(v[2], Verdict::Unhealthy(UnhealthyReason::Ejected { duration, .. }) if duration == secs(30))
    );
}

#[test]
fn recycles_after_repeated_ejections_and_forgets_departed_workers() {
    let p =
        OutlierPolicy { recycle_after: Some(2), probation: secs(1000), ..OutlierPolicy::default() };
    let mut st = OutlierState::default();
    let t0 = Instant::now();
    let bad = [w(1, 0.0, 100), w(2, 0.0, 100), w(3, 0.9, 100)];
    p.evaluate_all(&bad, &mut st, t0);
    p.evaluate_all(&bad[..2], &mut st, t0 + secs(1)); // worker 3 left the list: forgotten
    assert_eq!(st.ejections(3), 0);
    p.evaluate_all(&bad, &mut st, t0 + secs(2));
    let v = p.evaluate_all(&bad, &mut st, t0 + secs(40));
    assert_eq!(v[2], Verdict::Recycle(RecycleReason::ErrorRate { ejections: 2 }));
}
