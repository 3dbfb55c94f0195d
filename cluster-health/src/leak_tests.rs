//! Rules of the leak detector: steady growth warns once; steps, sawtooths and slow growth do not.

use super::*;

const MB: u64 = 1024 * 1024;

/// A fixed pseudo-random offset in -40..40 KiB for sample `i`.
fn noise(i: u64) -> i64 {
    let x = i.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    ((x >> 33) % 81_920) as i64 - 40_960
}

/// Feeds one sample every 5 s for `minutes`, the RSS given by `rss(seconds)`; returns the
/// warnings with the second they came at.
fn feed(
    d: &LeakDetector,
    st: &mut LeakState,
    minutes: u64,
    limit: Option<u64>,
    rss: impl Fn(u64) -> u64,
) -> Vec<(u64, LeakWarning)> {
    let t0 = Instant::now();
    (0..=minutes * 12)
        .map(|i| i * 5)
        .filter_map(|s| d.observe(st, t0 + Duration::from_secs(s), rss(s), limit).map(|w| (s, w)))
        .collect()
}

/// `base_mb` MiB growing `mb_per_min` MiB per minute at second `s`.
fn line(base_mb: u64, mb_per_min: f64, s: u64) -> u64 {
    base_mb * MB + (mb_per_min * MB as f64 * s as f64 / 60.0) as u64
}

#[test]
fn steady_growth_warns_after_the_window_and_only_once() {
    let (d, mut st) = (LeakDetector::default(), LeakState::default());
    let warnings = feed(&d, &mut st, 30, None, |s| line(200, 2.0, s).wrapping_add_signed(noise(s)));
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    let (at, w) = &warnings[0];
    assert_eq!(*at, 270, "90 % of the 5 min window");
    assert!((w.slope_mb_per_min - 2.0).abs() < 0.05, "{w:?}");
    assert!(w.r2 > 0.99 && w.minutes_to_limit.is_none());
    assert!(st.warned());
    assert_eq!(w.to_string(), "memory grows 2.0 MiB/min (R² 1.00) over 300 s, now 209.0 MiB");
}

#[test]
fn a_single_step_is_not_a_leak() {
    let (d, mut st) = (LeakDetector::default(), LeakState::default());
    // 100 MiB at once, half way through the window: slope 30 MiB/min, but one rise in 59.
    let warnings = feed(&d, &mut st, 20, None, |s| if s < 150 { 200 * MB } else { 300 * MB });
    assert_eq!(warnings, []);
    // A cache filling once: 100 MiB over two minutes, then flat. The line fits well (R² over
    // 0.8 in some windows), but fewer than half the differences are increases.
    let cache = |s: u64| 200 * MB + 100 * MB * s.clamp(150, 270).saturating_sub(150) / 120;
    assert_eq!(feed(&d, &mut LeakState::default(), 20, None, cache), []);
}

#[test]
fn a_sawtooth_is_not_a_leak() {
    let (d, mut st) = (LeakDetector::default(), LeakState::default());
    // A heap growing 20 MiB/min for a minute, then collected back to 200 MiB.
    let warnings = feed(&d, &mut st, 30, None, |s| line(200, 20.0, s % 60));
    assert_eq!(warnings, []);
}

#[test]
fn flat_or_slow_growth_is_not_a_leak() {
    let d = LeakDetector::default();
    let flat = |s: u64| (300 * MB).wrapping_add_signed(noise(s));
    assert_eq!(feed(&d, &mut LeakState::default(), 30, None, flat), []);
    // Half the threshold, however steady.
    assert_eq!(feed(&d, &mut LeakState::default(), 30, None, |s| line(200, 0.5, s)), []);
}

#[test]
fn re_arms_only_after_the_slope_falls_below_half_the_threshold() {
    let d = LeakDetector::default();
    // 10 min at 2 MiB/min, 10 min flat, 10 min at 2 MiB/min again: two warnings.
    let rss = |s: u64| match s {
        0..600 => line(200, 2.0, s),
        600..1200 => line(200, 2.0, 600),
        _ => line(220, 2.0, s - 1200),
    };
    let mut st = LeakState::default();
    let at: Vec<u64> = feed(&d, &mut st, 30, None, rss).into_iter().map(|(s, _)| s).collect();
    assert_eq!(at.len(), 2, "{at:?}");
    assert!(at[0] == 270 && at[1] > 1200, "{at:?}");

    // Slowing to 0.8 MiB/min (above half the threshold) in between does not re-arm.
    let wavering = |s: u64| match s {
        0..600 => line(200, 2.0, s),
        600..1200 => line(220, 0.8, s - 600),
        _ => line(228, 2.0, s - 1200),
    };
    assert_eq!(feed(&d, &mut LeakState::default(), 30, None, wavering).len(), 1);
}

#[test]
fn the_state_stays_bounded_whatever_the_rate() {
    let t0 = Instant::now();
    for window in [Duration::from_secs(300), Duration::from_secs(1), Duration::ZERO] {
        let d = LeakDetector { window, ..LeakDetector::default() };
        let mut st = LeakState::default();
        for i in 0..10_000u64 {
            d.observe(&mut st, t0 + Duration::from_millis(i), line(100, 2.0, i), None);
            assert!(st.samples.len() <= MAX_SAMPLES, "window {window:?}, sample {i}");
        }
        if window == Duration::from_secs(1) {
            assert!(st.samples.len() > MAX_SAMPLES / 2, "the window is still covered");
        }
    }
    // Many samples at one instant (a zero window keeps only those) are capped too.
    let d = LeakDetector { window: Duration::ZERO, ..LeakDetector::default() };
    let mut st = LeakState::default();
    for i in 0..10_000 {
        assert_eq!(d.observe(&mut st, t0, i, None), None);
    }
    assert_eq!(st.samples.len(), MAX_SAMPLES);
}

#[test]
fn minutes_to_limit_follows_the_slope() {
    let d = LeakDetector::default();
    // At 270 s the RSS is 209 MiB; 100 MiB more at 2 MiB/min is 50 min.
    let limit = Some(309 * MB);
    let warnings = feed(&d, &mut LeakState::default(), 10, limit, |s| line(200, 2.0, s));
    let w = &warnings[0].1;
    assert_eq!(w.rss_bytes, 209 * MB);
    assert!((w.minutes_to_limit.unwrap() - 50.0).abs() < 1e-6, "{w:?}");
    assert!(w.to_string().ends_with("; the limit in about 50 min"), "{w}");
    // Already past the limit: no time left to give.
    let past = feed(&d, &mut LeakState::default(), 10, Some(100 * MB), |s| line(200, 2.0, s));
    assert_eq!(past[0].1.minutes_to_limit, None);
}
