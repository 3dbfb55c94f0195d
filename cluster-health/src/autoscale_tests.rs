//! Rules of the autoscaler: sustained thresholds, cooldown, projection band, bounds, no flapping.

use super::*;

const MB: u64 = 1024 * 1024;

fn policy(min: usize, max: usize) -> AutoscalePolicy {
    AutoscalePolicy { min_workers: min, max_workers: max, ..AutoscalePolicy::default() }
}

fn cpu(workers: usize, avg: f64) -> LoadSample {
    LoadSample { workers, ready: workers, avg_cpu_percent: Some(avg), avg_rss_bytes: None }
}

/// Feeds `samples` 5 s apart from `t0 + start` s; returns each decision with its second.
fn run(
    p: &AutoscalePolicy,
    st: &mut AutoscaleState,
    t0: Instant,
    start: u64,
    samples: &[LoadSample],
) -> Vec<(u64, AutoscaleDecision)> {
    let secs = (start..).step_by(5);
    samples
        .iter()
        .zip(secs)
        .map(|(s, t)| (t, p.decide(st, s, t0 + Duration::from_secs(t))))
        .collect()
}

fn changes(decisions: &[(u64, AutoscaleDecision)]) -> Vec<(u64, usize, usize)> {
    decisions
        .iter()
        .filter_map(|(t, d)| match d {
            AutoscaleDecision::ScaleUp { from, to, .. }
            | AutoscaleDecision::ScaleDown { from, to, .. } => Some((*t, *from, *to)),
            AutoscaleDecision::Hold => None,
        })
        .collect()
}

#[test]
fn sustained_high_cpu_adds_one_worker_only_after_scale_up_after() {
    let (p, mut st, t0) = (policy(1, 4), AutoscaleState::default(), Instant::now());
    let d = run(&p, &mut st, t0, 0, &[cpu(1, 93.0); 4]);
    assert_eq!(changes(&d), [(15, 1, 2)]);
    let AutoscaleDecision::ScaleUp { reason, .. } = &d[3].1 else { unreachable!() };
    assert_eq!(reason.trigger, Trigger::Cpu);
    assert_eq!(reason.sustained, Duration::from_secs(15));
    assert_eq!(reason.to_string(), "average CPU 93.0 % of a core above 80 % for 15 s");
    assert_eq!(
        d[3].1.to_string(),
        "scale up from 1 to 2 workers: average CPU 93.0 % of a core above 80 % for 15 s"
    );
}

#[test]
fn a_single_spike_or_a_dip_restarts_the_timer() {
    let (p, mut st, t0) = (policy(1, 4), AutoscaleState::default(), Instant::now());
    // 93, then 80 (at the threshold is not above it), then 93 from t = 10 s.
    let mut samples = vec![cpu(1, 93.0), cpu(1, 80.0)];
    samples.extend([cpu(1, 93.0); 4]);
    assert_eq!(changes(&run(&p, &mut st, t0, 0, &samples)), [(25, 1, 2)]);

    let mut st = AutoscaleState::default();
    let spike = [cpu(1, 300.0), cpu(1, 20.0), cpu(1, 20.0), cpu(1, 20.0), cpu(1, 20.0)];
    assert_eq!(changes(&run(&p, &mut st, t0, 0, &spike)), []);
}

#[test]
fn cooldown_holds_after_any_change() {
    let (p, mut st, t0) = (policy(1, 4), AutoscaleState::default(), Instant::now());
    let d = run(&p, &mut st, t0, 0, &[cpu(1, 93.0); 4]);
    assert_eq!(changes(&d), [(15, 1, 2)]);
    // Still 150 % each on two workers: held until the 30 s cooldown ends at t = 45 s, when the
    // load has been above since t = 20 s (25 s): added at once.
    let d = run(&p, &mut st, t0, 20, &[cpu(2, 150.0); 6]);
    assert_eq!(changes(&d), [(45, 2, 3)]);

    // A manual change starts the cooldown too.
    let mut st = AutoscaleState::default();
    st.note_change(t0);
    let d = run(&p, &mut st, t0, 0, &[cpu(3, 93.0); 7]);
    assert_eq!(changes(&d), [(30, 3, 4)]);
}

#[test]
fn removes_a_worker_only_after_scale_down_after_and_under_the_projected_band() {
    let (p, mut st, t0) = (policy(1, 8), AutoscaleState::default(), Instant::now());
    // 4 workers at 30 %: 40 % with three, under 80 × 0.7 = 56.
    let d = run(&p, &mut st, t0, 0, &[cpu(4, 30.0); 13]);
    assert_eq!(changes(&d), [(60, 4, 3)]);
    let AutoscaleDecision::ScaleDown { reason, .. } = &d[12].1 else { unreachable!() };
    assert_eq!(
        reason.to_string(),
        "average CPU 30.0 % (projected 40.0 % with one worker fewer) below 56 % for 60 s"
    );
    // 4 workers at 45 %: under the band now, but 60 % with three: never removed.
    let mut st = AutoscaleState::default();
    assert_eq!(changes(&run(&p, &mut st, t0, 0, &[cpu(4, 45.0); 200])), []);
}

#[test]
fn one_worker_is_never_removed_for_low_load() {
    let (p, mut st, t0) = (policy(0, 4), AutoscaleState::default(), Instant::now());
    assert_eq!(changes(&run(&p, &mut st, t0, 0, &[cpu(1, 0.0); 100])), []);
}

/// Simulates `n` samples 5 s apart of a load of `total(i)` percent of a core spread over the
/// ready workers; a new worker is ready two samples after it is added. Returns the counts.
fn simulate(
    p: &AutoscalePolicy,
    start: usize,
    n: usize,
    total: impl Fn(usize) -> f64,
) -> Vec<usize> {
    let (mut st, t0) = (AutoscaleState::default(), Instant::now());
    let (mut workers, mut ready, mut starting) = (start, start, 0);
    let mut counts = Vec::with_capacity(n);
    for i in 0..n {
        if starting > 0 {
            starting -= 1;
        } else {
            ready = workers;
        }
        let sample = LoadSample { ready, ..cpu(workers, total(i) / ready as f64) };
        match p.decide(&mut st, &sample, t0 + Duration::from_secs(5 * i as u64)) {
            AutoscaleDecision::ScaleUp { to, .. } => (workers, starting) = (to, 2),
            AutoscaleDecision::ScaleDown { to, .. } => (workers, ready) = (to, to),
            AutoscaleDecision::Hold => {}
        }
        counts.push(workers);
    }
    counts
}

/// Whether the count ever moves up after moving down, or down after moving up.
fn reverses(counts: &[usize]) -> bool {
    let steps: Vec<bool> =
        counts.windows(2).filter(|w| w[0] != w[1]).map(|w| w[1] > w[0]).collect();
    steps.windows(2).any(|s| s[0] != s[1])
}

#[test]
fn a_constant_total_load_converges_and_never_flaps() {
    let p = policy(1, 10);
    // Three cores: 300 / n. From one worker: 300, 150, 100, then 75 < 80 with four, whose
    // projection with three (100) is above the band (56): four it stays.
    let up = simulate(&p, 1, 1000, |_| 300.0);
    assert_eq!(*up.last().unwrap(), 4);
    assert!(up[100..].iter().all(|&c| c == 4), "settled within 100 samples");
    assert!(!reverses(&up));
    // From ten: removed while 300 / (n - 1) < 56, so down to six (60 with five).
    let down = simulate(&p, 10, 1000, |_| 300.0);
    assert_eq!(*down.last().unwrap(), 6);
    assert!(!reverses(&down));
}

#[test]
fn judging_the_projection_not_the_average_prevents_flapping() {
    let p = policy(1, 10);
    // 1.65 cores: 55 % on three is under the band, and judging that figure would flap (82.5 %
    // on two, above 80, adds one back); its projection, 82.5 %, keeps the third worker.
    let tight = simulate(&p, 1, 1000, |_| 165.0);
    assert_eq!(*tight.last().unwrap(), 3);
    assert!(!reverses(&tight), "{tight:?}");
}

#[test]
fn a_noisy_load_never_flaps_either() {
    // ±10 % around three cores (a fixed-seed LCG): up from n needs > 80 n, down from n + 1
    // needs < 56 n; no load in 270..=330 allows both, so the count only ever goes one way.
    let noise = |i: usize| {
        let x = (i as u64).wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        ((x >> 33) % 1000) as f64 / 1000.0 * 60.0 - 30.0
    };
    let p = policy(1, 10);
    for start in [1, 4, 5, 6, 10] {
        let counts = simulate(&p, start, 1000, |i| 300.0 + noise(i));
        assert!(!reverses(&counts), "start {start}: {counts:?}");
        assert!((4..=6).contains(counts.last().unwrap()), "start {start}");
    }
}

#[test]
fn the_bounds_are_respected() {
    let (p, t0) = (policy(2, 3), Instant::now());
    let mut st = AutoscaleState::default();
    assert_eq!(changes(&run(&p, &mut st, t0, 0, &[cpu(3, 500.0); 200])), []);
    let mut st = AutoscaleState::default();
    assert_eq!(changes(&run(&p, &mut st, t0, 0, &[cpu(2, 0.0); 200])), []);
}

#[test]
fn a_count_outside_changed_bounds_steps_toward_them_at_once() {
    let (p, mut st, t0) = (policy(1, 4), AutoscaleState::default(), Instant::now());
    // Six workers, max lowered to 4: one step now, the next after the cooldown, then hold
    // (60 % on four is 80 % projected on three: not under the band).
    let mut samples = vec![cpu(6, 40.0)];
    samples.extend([cpu(5, 48.0); 6]);
    samples.extend([cpu(4, 60.0); 100]);
    let d = run(&p, &mut st, t0, 0, &samples);
    assert_eq!(changes(&d), [(0, 6, 5), (30, 5, 4)]);
    let AutoscaleDecision::ScaleDown { reason, .. } = &d[0].1 else { unreachable!() };
    assert_eq!(reason.trigger, Trigger::Bounds { min: 1, max: 4 });
    assert_eq!(reason.to_string(), "worker count outside the bounds 1..=4");

    // Min raised to 3 with one worker still starting and no figures: a step up at once.
    let p = policy(3, 5);
    let mut st = AutoscaleState::default();
    let starting = LoadSample { workers: 1, ready: 0, ..LoadSample::default() };
    let d = p.decide(&mut st, &starting, t0);
    assert!(matches!(d, AutoscaleDecision::ScaleUp { from: 1, to: 2, .. }), "{d:?}");
    // A max below the min counts as the min.
    let p = policy(3, 1);
    let d = p.decide(&mut AutoscaleState::default(), &cpu(3, 500.0), t0);
    assert_eq!(d, AutoscaleDecision::Hold);
}

#[test]
fn workers_still_starting_hold_and_reset_the_timers() {
    let (p, mut st, t0) = (policy(1, 4), AutoscaleState::default(), Instant::now());
    let partial = LoadSample { ready: 1, ..cpu(2, 150.0) };
    assert_eq!(changes(&run(&p, &mut st, t0, 0, &[partial; 10])), []);
    // Ready at t = 50 s: the 15 s count starts there.
    let d = run(&p, &mut st, t0, 50, &[cpu(2, 150.0); 4]);
    assert_eq!(changes(&d), [(65, 2, 3)]);
    // No CPU figure: hold too.
    let blind = LoadSample { avg_cpu_percent: None, ..cpu(1, 0.0) };
    assert_eq!(changes(&run(&p, &mut AutoscaleState::default(), t0, 0, &[blind; 10])), []);
}

#[test]
fn memory_above_its_threshold_adds_a_worker() {
    let p = AutoscalePolicy { memory_limit_bytes: 1000 * MB, ..policy(1, 4) };
    let mem =
        |workers, rss_mb| LoadSample { avg_rss_bytes: Some(rss_mb * MB), ..cpu(workers, 10.0) };
    let mut st = AutoscaleState::default();
    let d = run(&p, &mut st, Instant::now(), 0, &[mem(1, 900); 4]);
    assert_eq!(changes(&d), [(15, 1, 2)]);
    let AutoscaleDecision::ScaleUp { reason, .. } = &d[3].1 else { unreachable!() };
    assert_eq!(reason.trigger, Trigger::Memory);
    assert_eq!(reason.to_string(), "average memory 90.0 % of the limit above 85 % for 15 s");
    // Without a limit memory is not judged.
    let unjudged = AutoscalePolicy { memory_limit_bytes: 0, ..p.clone() };
    let d = run(&unjudged, &mut AutoscaleState::default(), Instant::now(), 0, &[mem(1, 900); 10]);
    assert_eq!(changes(&d), []);
}

#[test]
fn memory_that_would_not_fit_blocks_scale_down() {
    let p = AutoscalePolicy { memory_limit_bytes: 1000 * MB, ..policy(1, 8) };
    let mem = |rss_mb| LoadSample { avg_rss_bytes: Some(rss_mb * MB), ..cpu(4, 10.0) };
    let t0 = Instant::now();
    // 60 % on four is 80 % projected on three, above 85 × 0.7 = 59.5: kept.
    assert_eq!(changes(&run(&p, &mut AutoscaleState::default(), t0, 0, &[mem(600); 100])), []);
    // 40 % projects to 53.3 %: removed after 60 s.
    let d = run(&p, &mut AutoscaleState::default(), t0, 0, &[mem(400); 13]);
    assert_eq!(changes(&d), [(60, 4, 3)]);
    assert!(d[12].1.to_string().ends_with(", memory 40.0 % of the limit (projected 53.3 %)"));
}
