//! The exposition of hand-built [`Figures`]: well-formed OpenMetrics, every family with its
//! help and type, values and labels where they belong, histograms cumulative, promtool's lint,
//! and the time a 64-worker render takes.

use std::time::{Duration, Instant};

use cluster_core::{
    AccessLogCounts, ControlCounters, LATENCY_BUCKETS, MetricsSnapshot, OperationCounts,
};

use super::*;

#[path = "../tests/openmetrics/mod.rs"]
mod openmetrics;

use openmetrics::{Exposition, parse};

/// Every family the exposition may hold: name, type, unit.
const FAMILIES: [(&str, &str, Option<&str>); 32] = [
    ("cluster_workers_desired", "gauge", None),
    ("cluster_workers_ready", "gauge", None),
    ("cluster_workers", "gauge", None),
    ("cluster_generation", "gauge", None),
    ("cluster_shutting_down", "gauge", None),
    ("cluster_scaling_min_workers", "gauge", None),
    ("cluster_scaling_max_workers", "gauge", None),
    ("cluster_autoscale_enabled", "gauge", None),
    ("cluster_crash_looping_slots", "gauge", None),
    ("cluster_operation_in_progress", "gauge", None),
    ("cluster_operation_workers_replaced", "gauge", None),
    ("cluster_operation_workers_planned", "gauge", None),
    ("cluster_worker_exits", "counter", None),
    ("cluster_recycles", "counter", None),
    ("cluster_operations", "counter", None),
    ("cluster_autoscale_decisions", "counter", None),
    ("cluster_scale_changes", "counter", None),
    ("cluster_worker_info", "gauge", None),
    ("cluster_worker_state", "gauge", None),
    ("cluster_worker_ejected", "gauge", None),
    ("cluster_worker_in_flight", "gauge", None),
    ("cluster_worker_requests", "counter", None),
    ("cluster_worker_failures", "counter", None),
    ("cluster_worker_request_duration_seconds", "histogram", Some("seconds")),
    ("cluster_worker_received_bytes", "counter", Some("bytes")),
    ("cluster_worker_sent_bytes", "counter", Some("bytes")),
    ("cluster_worker_resident_memory_bytes", "gauge", Some("bytes")),
    ("cluster_worker_cpu_seconds", "counter", Some("seconds")),
    ("cluster_worker_uptime_seconds", "gauge", Some("seconds")),
    ("cluster_slot_restarts", "counter", None),
    ("cluster_slot_recycles", "counter", None),
    ("cluster_access_log_lines", "counter", None),
];

/// An exit reason that needs escaping.
const ODD_REASON: &str = "said \"bye\" \\ then\nleft";

/// Latencies of worker `i` in each bucket of [`LATENCY_BUCKETS`], then above the last bound.
fn latencies(i: usize) -> Vec<u64> {
    (0..=LATENCY_BUCKETS.len()).map(|j| ((i + j) % 3) as u64).collect()
}

/// What the proxy measured of worker `i`.
fn measured(i: usize) -> MetricsSnapshot {
    let i64 = i as u64;
    let mut m = MetricsSnapshot::default();
    m.responses.success = 100 + i64;
    m.responses.redirection = i64;
    m.responses.client_error = 2;
    m.responses.server_error = i64 % 2;
    m.failures.unreachable = i64 % 2;
    m.failures.timeout = 1;
    m.bytes_in = 1000 * i64;
    m.bytes_out = 5000 + i64;
    let per_bucket = latencies(i);
    let mut seen = 0;
    m.latency_histogram.cumulative = per_bucket[..LATENCY_BUCKETS.len()]
        .iter()
        .map(|n| {
            seen += n;
            seen
        })
        .collect();
    m.latency_histogram.count = per_bucket.iter().sum();
    m.latency_histogram.sum_seconds = 0.25 * i as f64;
    m
}

/// Worker `i` (slot `i`, id `100 + i`): ready, except worker 1 (ejected) and worker 2
/// (draining); worker 0 not sampled yet. Its slot has had `i` restarts and `i % 2` recycles.
fn worker(i: usize) -> WorkerFigures {
    WorkerFigures {
        labels: WorkerLabels { slot: i, pid: 40_000 + i as u32, generation: 3 },
        state: if i == 2 { WorkerState::Draining } else { WorkerState::Ready },
        ejected: i == 1,
        in_flight: i % 3,
        uptime_seconds: 60.5,
        resident_memory_bytes: (i != 0).then_some(50 << 20),
        cpu_seconds: (i != 0).then_some(1.25),
        worker_id: 100 + i as u64,
        restarts: i as u32,
        recycles: (i % 2) as u32,
        traffic: Traffic::of(&measured(i)),
    }
}

/// A cluster of `n` workers in a rolling restart, with control counters that include one
/// reason the core does not name and one that needs escaping.
fn figures(n: usize) -> Figures {
    let mut counters = ControlCounters::default();
    counters.exits.insert("crash".into(), 2);
    counters.exits.insert(ODD_REASON.into(), 1);
    counters.recycles.insert("memory".into(), 4);
    let mut rolling = OperationCounts::default();
    rolling.started = 2;
    rolling.finished = 1;
    counters.operations.insert("rolling-restart".into(), rolling);
    counters.autoscale_up = 3;
    counters.scale_changes = 5;
    Figures {
        desired: n,
        ready: n.saturating_sub(2),
        generation: 3,
        shutting_down: false,
        min_workers: 1,
        max_workers: 128,
        autoscale: true,
        crash_looping_slots: 0,
        operation: Some(OperationFigures { kind: "rolling-restart".into(), done: 1, total: n }),
        counters,
        workers: (0..n).map(worker).collect(),
        access_log: Some(access_log_counts(7, 2)),
    }
}

fn access_log_counts(written: u64, dropped: u64) -> AccessLogCounts {
    let mut counts = AccessLogCounts::default();
    counts.written = written;
    counts.dropped = dropped;
    counts
}

fn render_figures(figures: Figures) -> String {
    encode(figures, prometheus_client::encoding::text::encode)
}

fn parsed(figures: Figures) -> Exposition {
    let text = render_figures(figures);
    parse(&text).unwrap_or_else(|e| panic!("{e}\n{text}"))
}

fn worker_labels(i: usize) -> [(&'static str, String); 3] {
    [("slot", i.to_string()), ("pid", (40_000 + i).to_string()), ("generation", "3".into())]
}

/// The labels of a worker (from [`worker_labels`]) and `more`.
fn with<'a>(
    worker: &'a [(&str, String); 3],
    more: &[(&'a str, &'a str)],
) -> Vec<(&'a str, &'a str)> {
    worker.iter().map(|(k, v)| (*k, v.as_str())).chain(more.iter().copied()).collect()
}

#[test]
fn every_family_has_its_help_type_and_unit_and_nothing_else_is_there() {
    let exposition = parsed(figures(4));
    let got: Vec<(&str, &str, Option<&str>)> = exposition
        .families
        .iter()
        .map(|f| (f.name.as_str(), f.kind.as_str(), f.unit.as_deref()))
        .collect();
    assert_eq!(got, FAMILIES);
    for f in &exposition.families {
        assert!(f.help.ends_with('.') && f.help.len() > 20, "{}: {:?}", f.name, f.help);
        let first = f.help.chars().next().unwrap();
        assert!(first.is_uppercase() || first.is_ascii_digit(), "{}: {:?}", f.name, f.help);
    }
    for (name, _, _) in FAMILIES {
        // A counter's family name leaves it out (its samples add it); others may not use it.
        assert!(!name.ends_with("_total"), "{name}");
    }
}

#[test]
fn worker_series_carry_the_worker_labels_and_its_figures() {
    let e = parsed(figures(4));
    for i in 0..4 {
        let buf = worker_labels(i);
        let w = |more: &[(&'static str, &'static str)]| with(&buf, more);
        let m = measured(i);
        let v = |name: &str, more: &[(&'static str, &'static str)]| e.value(name, &w(more));
        assert_eq!(
            v("cluster_worker_requests_total", &[("class", "2xx")]),
            m.responses.success as f64
        );
        assert_eq!(v("cluster_worker_requests_total", &[("class", "3xx")]), i as f64);
        assert_eq!(v("cluster_worker_requests_total", &[("class", "1xx")]), 0.0);
        assert_eq!(v("cluster_worker_failures_total", &[("kind", "timeout")]), 1.0);
        assert_eq!(v("cluster_worker_failures_total", &[("kind", "unreachable")]), (i % 2) as f64);
        assert_eq!(v("cluster_worker_failures_total", &[("kind", "bad_response")]), 0.0);
        assert_eq!(v("cluster_worker_received_bytes_total", &[]), (1000 * i) as f64);
        assert_eq!(v("cluster_worker_sent_bytes_total", &[]), (5000 + i) as f64);
        assert_eq!(v("cluster_worker_in_flight", &[]), (i % 3) as f64);
        assert_eq!(v("cluster_worker_ejected", &[]), if i == 1 { 1.0 } else { 0.0 });
        assert_eq!(v("cluster_worker_uptime_seconds", &[]), 60.5);
        let id = (100 + i).to_string();
        assert_eq!(e.value("cluster_worker_info", &with(&buf, &[("worker_id", &id)])), 1.0);
        let state = if i == 2 { "draining" } else { "ready" };
        assert_eq!(v("cluster_worker_state", &[("state", state)]), 1.0);
        assert_eq!(e.sum("cluster_worker_state", &w(&[])), 1.0, "one state at a time");
        assert_eq!(e.samples("cluster_worker_state", &w(&[])).count(), 4);
        let sampled = e.samples("cluster_worker_resident_memory_bytes", &w(&[])).count();
        assert_eq!(sampled, usize::from(i != 0), "memory only once sampled");
        if i != 0 {
            assert_eq!(v("cluster_worker_resident_memory_bytes", &[]), (50 << 20) as f64);
            assert_eq!(v("cluster_worker_cpu_seconds_total", &[]), 1.25);
        }
    }
    // Only the info series names the worker id; the others are named by the three labels.
    let worker_keys = ["slot", "pid", "generation"];
    for f in e.families.iter().filter(|f| f.name.starts_with("cluster_worker_")) {
        for sample in &f.samples {
            let keys: Vec<&str> = sample.labels.keys().map(String::as_str).collect();
            let named = worker_keys.iter().all(|k| keys.contains(k));
            assert!(f.name == "cluster_worker_exits" || named, "{}: {keys:?}", sample.name);
            let id = keys.contains(&"worker_id");
            assert_eq!(id, f.name == "cluster_worker_info", "{}: {keys:?}", sample.name);
        }
    }
    assert_eq!(e.value("cluster_workers", &[("state", "ready")]), 3.0);
    assert_eq!(e.value("cluster_workers", &[("state", "draining")]), 1.0);
    assert_eq!(e.value("cluster_workers", &[("state", "starting")]), 0.0);
    assert_eq!(e.value("cluster_operation_in_progress", &[("kind", "rolling-restart")]), 1.0);
    assert_eq!(e.value("cluster_operation_in_progress", &[("kind", "restart")]), 0.0);
    assert_eq!(e.value("cluster_operation_workers_replaced", &[("kind", "rolling-restart")]), 1.0);
    assert_eq!(e.value("cluster_operation_workers_planned", &[("kind", "rolling-restart")]), 4.0);
    assert_eq!(e.value("cluster_autoscale_enabled", &[]), 1.0);
    assert_eq!(e.value("cluster_workers_ready", &[]), 2.0);
}

#[test]
fn restarts_and_recycles_are_one_series_per_slot() {
    let mut f = figures(4);
    // Slot 1's worker is being replaced: both carry the slot's counts.
    let mut replacement = worker(1);
    replacement.labels.pid = 41_001;
    replacement.labels.generation = 4;
    replacement.worker_id = 200;
    replacement.state = WorkerState::Starting;
    f.workers.push(replacement);
    let e = parsed(f);
    for (name, per_slot) in [
        ("cluster_slot_restarts_total", [0.0, 1.0, 2.0, 3.0]),
        ("cluster_slot_recycles_total", [0.0, 1.0, 0.0, 1.0]),
    ] {
        let got: Vec<(String, f64)> = e
            .samples(name, &[])
            .map(|s| {
                let keys: Vec<&String> = s.labels.keys().collect();
                assert_eq!(keys, ["slot"], "{name}: labelled by the slot alone");
                (s.labels["slot"].clone(), s.value)
            })
            .collect();
        let want: Vec<(String, f64)> =
            per_slot.iter().enumerate().map(|(slot, &n)| (slot.to_string(), n)).collect();
        assert_eq!(got, want, "{name}");
    }
    // Both workers of slot 1 are there, with their own series and ids.
    let slot_1 = [("slot", "1")];
    assert_eq!(e.samples("cluster_worker_info", &slot_1).count(), 2);
    let replacement = [("slot", "1"), ("pid", "41001"), ("generation", "4"), ("worker_id", "200")];
    assert_eq!(e.value("cluster_worker_info", &replacement), 1.0);
    assert_eq!(e.value("cluster_worker_state", &[("pid", "41001"), ("state", "starting")]), 1.0);

    // The series is the slot's: the same labels when another worker takes the slot, and the
    // count goes on from where it was.
    let mut before = figures(2);
    before.workers[1].restarts = 5;
    let mut after = figures(2);
    after.workers[1] = worker(1);
    after.workers[1].labels.pid = 42_001;
    after.workers[1].worker_id = 300;
    after.workers[1].restarts = 6;
    let (before, after) = (parsed(before), parsed(after));
    let restarts = |e: &Exposition| e.value("cluster_slot_restarts_total", &slot_1);
    assert_eq!((restarts(&before), restarts(&after)), (5.0, 6.0));
}

#[test]
fn the_latency_histogram_is_the_proxy_s_cumulative_buckets() {
    let e = parsed(figures(3));
    for i in 0..3 {
        let buf = worker_labels(i);
        let m = measured(i);
        let name = "cluster_worker_request_duration_seconds_bucket";
        let buckets: Vec<f64> = e.samples(name, &with(&buf, &[])).map(|s| s.value).collect();
        let mut want: Vec<f64> = m.latency_histogram.cumulative.iter().map(|&n| n as f64).collect();
        want.push(m.latency_histogram.count as f64);
        assert_eq!(buckets, want, "worker {i}");
        let les: Vec<String> =
            e.samples(name, &with(&buf, &[])).map(|s| s.labels["le"].clone()).collect();
        assert_eq!(les.first().map(String::as_str), Some("0.001"));
        assert_eq!(les.last().map(String::as_str), Some("+Inf"));
        assert_eq!(les.len(), LATENCY_BUCKETS.len() + 1);
        let count = e.value("cluster_worker_request_duration_seconds_count", &with(&buf, &[]));
        assert_eq!(count, m.latency_histogram.count as f64);
        let sum = e.value("cluster_worker_request_duration_seconds_sum", &with(&buf, &[]));
        assert_eq!(sum, 0.25 * i as f64);
    }
}

#[test]
fn an_empty_or_torn_histogram_still_encodes_consistently() {
    let empty = Latency::of(&[], 0, 0.0);
    assert_eq!(empty.count, 0);
    assert!(empty.per_bucket.iter().all(|&(_, n)| n == 0));
    assert_eq!(empty.per_bucket.last().unwrap().0, f64::INFINITY);
    // A bucket below its predecessor, and a count below the last bucket.
    let torn = Latency::of(&[2, 1, 5], 4, 1.0);
    let cumulative: Vec<u64> = torn
        .per_bucket
        .iter()
        .scan(0, |seen, &(_, n)| {
            *seen += n;
            Some(*seen)
        })
        .collect();
    assert_eq!(&cumulative[..4], &[2, 2, 5, 5]);
    assert_eq!((torn.count, *cumulative.last().unwrap()), (5, 5));
}

#[test]
fn access_log_lines_by_outcome_only_when_the_log_is_on() {
    let e = parsed(figures(1));
    assert_eq!(e.sum("cluster_access_log_lines_total", &[("outcome", "written")]), 7.0);
    assert_eq!(e.sum("cluster_access_log_lines_total", &[("outcome", "dropped")]), 2.0);
    assert_eq!(e.samples("cluster_access_log_lines_total", &[]).count(), 2);
    let mut off = figures(1);
    off.access_log = None;
    assert!(parsed(off).family("cluster_access_log_lines").is_none());
    let quiet = figures(1);
    let e = parsed(Figures { access_log: Some(access_log_counts(0, 0)), ..quiet });
    assert_eq!(e.samples("cluster_access_log_lines_total", &[]).count(), 2, "zeros are shown");
}

#[test]
fn families_without_series_are_left_out() {
    let mut f = figures(2);
    f.operation = None;
    for w in &mut f.workers {
        w.resident_memory_bytes = None;
        w.cpu_seconds = None;
    }
    let e = parsed(f);
    for gone in [
        "cluster_operation_workers_replaced",
        "cluster_operation_workers_planned",
        "cluster_worker_resident_memory_bytes",
        "cluster_worker_cpu_seconds",
    ] {
        assert!(e.family(gone).is_none(), "{gone}");
    }
    assert_eq!(e.sum("cluster_operation_in_progress", &[]), 0.0);

    let e = parsed(figures(0));
    assert!(e.families.iter().all(|f| {
        let per_worker = f.name.starts_with("cluster_worker_") && f.name != "cluster_worker_exits";
        !per_worker && !f.name.starts_with("cluster_slot_")
    }));
    assert_eq!(e.sum("cluster_workers", &[]), 0.0);
    assert_eq!(e.samples("cluster_workers", &[]).count(), 4);
}

#[test]
fn control_counters_start_at_zero_and_odd_label_values_are_escaped() {
    let text = render_figures(figures(1));
    assert!(text.contains(r#"reason="said \"bye\" \\ then\nleft""#), "{text}");
    let e = parse(&text).unwrap();
    assert_eq!(e.value("cluster_worker_exits_total", &[("reason", ODD_REASON)]), 1.0);
    assert_eq!(e.value("cluster_worker_exits_total", &[("reason", "crash")]), 2.0);
    for reason in EXIT_REASONS.into_iter().filter(|r| *r != "crash") {
        assert_eq!(e.value("cluster_worker_exits_total", &[("reason", reason)]), 0.0);
    }
    assert_eq!(e.samples("cluster_recycles_total", &[]).count(), RECYCLE_CAUSES.len());
    assert_eq!(e.value("cluster_recycles_total", &[("cause", "memory")]), 4.0);
    let op = |kind, outcome| {
        e.value("cluster_operations_total", &[("kind", kind), ("outcome", outcome)])
    };
    assert_eq!((op("rolling-restart", "started"), op("rolling-restart", "finished")), (2.0, 1.0));
    assert_eq!((op("rolling-restart", "failed"), op("rollback", "started")), (0.0, 0.0));
    assert_eq!(e.samples("cluster_operations_total", &[]).count(), 9);
    assert_eq!(e.value("cluster_autoscale_decisions_total", &[("direction", "up")]), 3.0);
    assert_eq!(e.value("cluster_autoscale_decisions_total", &[("direction", "down")]), 0.0);
    assert_eq!(e.value("cluster_scale_changes_total", &[]), 5.0);
    for (kind, name) in [
        (OperationKind::RollingRestart, "rolling-restart"),
        (OperationKind::Restart, "restart"),
        (OperationKind::Rollback, "rollback"),
    ] {
        assert_eq!(kind_name(kind), name);
        assert_eq!(serde_json::to_value(kind).unwrap(), name, "the JSON name");
    }
}

/// promtool lints the Prometheus 0.0.4 text format, so it is given prometheus-client's 0.0.4
/// encoding of the same collector (OpenMetrics counters would each lack help text for it).
#[test]
fn promtool_accepts_the_families() {
    let text = encode(figures(4), prometheus_client::encoding::prometheus_text::encode);
    match openmetrics::promtool(&text) {
        Some((passed, said)) => assert!(passed, "promtool check metrics:\n{said}\n{text}"),
        None if openmetrics::promtool_required() => {
            panic!("promtool is not on the PATH, and CI is set: install it (Debian: prometheus)")
        }
        None => println!("skipped the promtool check: promtool is not on the PATH"),
    }
    let openmetrics_text = render_figures(figures(4));
    if let Some((_, said)) = openmetrics::promtool(&openmetrics_text) {
        let e = parse(&openmetrics_text).unwrap();
        let problems = openmetrics::promtool_problems(&said, &e);
        assert!(problems.is_empty(), "promtool on the OpenMetrics text: {problems:#?}");
    }
}

#[test]
fn render_time_for_64_workers() {
    let figures = figures(64);
    let text = render_figures(figures.clone());
    parse(&text).unwrap();
    let runs = 50;
    let (mut total, mut best) = (Duration::ZERO, Duration::MAX);
    for _ in 0..runs {
        let f = figures.clone();
        let start = Instant::now();
        std::hint::black_box(render_figures(std::hint::black_box(f)));
        let took = start.elapsed();
        total += took;
        best = best.min(took);
    }
    println!(
        "render of 64 workers: {} bytes, {} lines; mean {:?}, best {:?} over {runs} runs ({} build)",
        text.len(),
        text.lines().count(),
        total / runs,
        best,
        if cfg!(debug_assertions) { "debug" } else { "release" },
    );
}

/// The parser the tests rely on rejects what OpenMetrics forbids (and what we never emit).
#[test]
fn the_parser_is_strict() {
    let good = "# HELP a_seconds A.\n# TYPE a_seconds histogram\n# UNIT a_seconds seconds\n\
                a_seconds_sum 1.5\na_seconds_count 2\n\
                a_seconds_bucket{le=\"0.5\"} 1\na_seconds_bucket{le=\"+Inf\"} 2\n\
                # HELP b B.\n# TYPE b counter\nb_total{x=\"q\\\"\\\\\\n\"} 3\n# EOF\n";
    let e = parse(good).unwrap();
    assert_eq!(e.value("b_total", &[("x", "q\"\\\n")]), 3.0);
    let counter = |sample: &str| format!("# HELP b B.\n# TYPE b counter\n{sample}\n# EOF\n");
    let bad = [
        ("no EOF", "# HELP b B.\n# TYPE b counter\nb_total 1\n".to_owned()),
        ("no HELP", "# TYPE b counter\nb_total 1\n# EOF\n".into()),
        ("no TYPE", "# HELP b B.\nb 1\n# EOF\n".into()),
        ("no samples", "# HELP b B.\n# TYPE b gauge\n# EOF\n".into()),
        ("no _total", counter("b 1")),
        ("other family", counter("c_total 1")),
        ("negative", counter("b_total -1")),
        ("bad escape", counter("b_total{x=\"\\t\"} 1")),
        ("label twice", counter("b_total{x=\"1\",x=\"2\"} 1")),
        ("trailing comma", counter("b_total{x=\"1\",} 1")),
        ("empty labels", counter("b_total{} 1")),
        ("timestamp", counter("b_total 1 1700000000")),
        ("series twice", counter("b_total 1\nb_total 2")),
        ("bad value", counter("b_total one")),
        ("descriptor late", counter("b_total 1\n# HELP b B.")),
        ("family twice", counter("b_total 1\n# HELP c C.\n# TYPE c gauge\nc 1\n# HELP b B.")),
        ("other comment", counter("# just saying\nb_total 1")),
        (
            "unit not in the name",
            "# HELP b B.\n# TYPE b gauge\n# UNIT b seconds\nb 1\n# EOF\n".into(),
        ),
        (
            "not cumulative",
            good.replace("a_seconds_bucket{le=\"0.5\"} 1", "a_seconds_bucket{le=\"0.5\"} 3"),
        ),
        ("+Inf is not the count", good.replace("a_seconds_count 2", "a_seconds_count 5")),
        ("no +Inf", good.replace("a_seconds_bucket{le=\"+Inf\"} 2\n", "")),
    ];
    for (what, text) in bad {
        assert!(parse(&text).is_err(), "{what}: accepted\n{text}");
    }
}
