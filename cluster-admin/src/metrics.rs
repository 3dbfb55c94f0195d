//! Prometheus metrics: the OpenMetrics text exposition of one [`ClusterStatus`], served on
//! `GET /metrics` (control socket, admin listener) and `GET /api/admin/cluster/metrics` (front
//! port) as `application/openmetrics-text; version=1.0.0`.
//!
//! # Design
//!
//! Everything exposed here is counted elsewhere already: the proxy keeps per-worker atomics
//! (responses by class, failures by kind, bytes, a latency histogram at the bounds of
//! [`LATENCY_BUCKETS`]) and the supervisor keeps the control plane's counters; both reach the
//! admin API as one status snapshot per scrape. So nothing is registered up front and nothing
//! is updated on the request path. A scrape copies what the exposition needs out of the
//! status into [`Figures`], registers that as a prometheus-client [`Collector`] in a fresh
//! [`Registry`] and encodes it. The collector writes each family with `encode_descriptor` and
//! each series as a "const" metric ([`ConstCounter`], [`ConstGauge`]) or, for the latency,
//! with `encode_histogram` over the buckets the proxy already counted. This builds none of the
//! live `Counter`/`Gauge`/`Histogram`/`Family` objects (atomics, a lock and a hash map per
//! family, a bucket vector per histogram) only to read each once and drop it, and the latency
//! needs no re-recording. prometheus-client still owns the format: unit and `_total` suffixes,
//! `# UNIT`, label escaping, the float syntax, `# EOF`.
//!
//! [`Figures`] is a copy rather than the status itself because a `Collector` must be
//! `'static`, and because a `ClusterStatus` can only be built inside `cluster-core`: the unit
//! tests build `Figures` by hand, so the encoding is tested here with any number of workers.
//! It holds numbers and label values only (one allocation for the workers, plus the control
//! counters' maps).
//!
//! # Metric families
//!
//! Per worker process, labelled `slot`, `pid` and `generation` (deploy generation):
//!
//! | family | type | more labels |
//! |---|---|---|
//! | `cluster_worker_info` | gauge, always 1 | `worker_id`: the `workerId` of the status and the API |
//! | `cluster_worker_state` | gauge, 1 for the current state | `state`: `starting`, `ready`, `draining`, `stopping` |
//! | `cluster_worker_ejected` | gauge, 0/1 | |
//! | `cluster_worker_in_flight` | gauge | |
//! | `cluster_worker_requests_total` | counter: responses | `class`: `1xx` to `5xx` |
//! | `cluster_worker_failures_total` | counter: no response | `kind`: `unreachable`, `failed`, `bad_response`, `timeout` |
//! | `cluster_worker_request_duration_seconds` | histogram: time to response head | `le` |
//! | `cluster_worker_received_bytes_total`, `cluster_worker_sent_bytes_total` | counter | |
//! | `cluster_worker_resident_memory_bytes` | gauge, once sampled | |
//! | `cluster_worker_cpu_seconds_total` | counter, once sampled | |
//! | `cluster_worker_uptime_seconds` | gauge | |
//!
//! Per slot (the worker's place in the pool, `NODE_APP_INSTANCE`), labelled `slot`, for each
//! slot that has a live worker: `cluster_slot_restarts_total` (restarts after an exit the
//! cluster did not ask for, such as a crash or a failed start, or a health kill) and
//! `cluster_slot_recycles_total` (replacements through the recycle path), both counters.
//!
//! The cluster, as gauges: `cluster_workers_desired`, `cluster_workers_ready`,
//! `cluster_workers{state}`, `cluster_generation`, `cluster_shutting_down`,
//! `cluster_scaling_min_workers`, `cluster_scaling_max_workers`, `cluster_autoscale_enabled`,
//! `cluster_crash_looping_slots`, `cluster_operation_in_progress{kind}` and, while an
//! operation runs, `cluster_operation_workers_replaced{kind}` and
//! `cluster_operation_workers_planned{kind}`.
//!
//! The control plane, as counters: `cluster_worker_exits_total{reason}`,
//! `cluster_recycles_total{cause}`, `cluster_operations_total{kind,outcome}`,
//! `cluster_autoscale_decisions_total{direction}`, `cluster_scale_changes_total`.
//!
//! The access log, when it is on (`security.enableRequestLogging`), as a counter:
//! `cluster_access_log_lines_total{outcome}`, `outcome` being `written` or `dropped` (the
//! queue to its writer thread was full, or writing failed).
//!
//! # Caveats
//!
//! - Each worker process is a series of its own, and its series disappear when it exits
//!   (exited workers are not in the status). Cluster totals are sums over them, which
//!   Prometheus computes itself: `sum by (class) (rate(cluster_worker_requests_total[5m]))`.
//! - There is deliberately no `cluster_requests_total`: the status only sums the live workers,
//!   so that total would drop whenever a worker exits (recycle, rolling restart, scale down),
//!   which Prometheus reads as a counter reset, inflating `rate()` by the whole remainder.
//! - The worker id is a label of `cluster_worker_info` only (`slot`, `pid` and `generation`
//!   name a worker process already); join it where it is wanted, as in
//!   `x * on (slot, pid, generation) group_left (worker_id) cluster_worker_info`.
//! - Restarts and recycles are counted per slot (the status gives them per slot), so they are
//!   series of the slot, not of a worker: a slot's series persists across its workers (the
//!   replacement of a crashed or recycled worker continues it, one count higher), and
//!   `increase(cluster_slot_restarts_total[1h])` sees every restart. A slot's count never goes
//!   down. While a slot has no live worker (a crashed one waiting out its back-off, or a slot
//!   given up by a scale-down) its series is absent, and it comes back with the slot's count.
//! - A family with no series (no worker sampled yet, no operation running) is left out, as
//!   prometheus-client does for an empty `Family`.
//! - Control-plane counters with a known label value (exit reasons, recycle causes, operation
//!   kinds and outcomes, autoscale directions) are exposed at 0 before the first event, so
//!   that `increase()` sees the first one; values the core adds later appear when counted.
//! - The progress gauges are not named `cluster_operation_done`/`_total`: `_total` is the
//!   counter suffix in OpenMetrics, and promtool rejects it on a gauge.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;

use cluster_core::{
    AccessLogCounts, ClusterStatus, ControlCounters, LATENCY_BUCKETS, MetricsSnapshot,
    OperationKind, WorkerState, WorkerStatus,
};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{
    DescriptorEncoder, EncodeLabelSet, EncodeMetric, MetricEncoder, NoLabelSet,
};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::{Registry, Unit};

/// The metrics of `status`, in the OpenMetrics text format (ending with `# EOF`).
pub(crate) fn render(status: &ClusterStatus) -> String {
    encode(Figures::of(status), prometheus_client::encoding::text::encode)
}

/// An encoder of a registry: prometheus-client's OpenMetrics one, or (in the tests, for
/// promtool) its Prometheus 0.0.4 one.
type Encoder = fn(&mut String, &Registry) -> fmt::Result;

/// `figures` encoded by `encoder`.
fn encode(figures: Figures, encoder: Encoder) -> String {
    let mut out = String::with_capacity(4096 + 4096 * figures.workers.len());
    let mut registry = Registry::default();
    registry.register_collector(Box::new(figures));
    if let Err(e) = encoder(&mut out, &registry) {
        // Writing to a String cannot fail, and the collector only passes encoder errors on.
        tracing::error!(target: "cluster::admin", "encoding the metrics failed: {e}");
        out.clear();
        out.push_str("# EOF\n");
    }
    out
}

/// Worker states every worker has a `cluster_worker_state` series for (a worker in another
/// state gets one for that state too).
const LIVE_STATES: [WorkerState; 4] =
    [WorkerState::Starting, WorkerState::Ready, WorkerState::Draining, WorkerState::Stopping];

/// Operation kinds, as the status counters name them.
const OPERATION_KINDS: [&str; 3] = ["rolling-restart", "restart", "rollback"];

/// Exit reasons the supervisor counts (see [`ControlCounters::exits`]).
const EXIT_REASONS: [&str; 11] = [
    "crash",
    "failed-start",
    "killed",
    "unresponsive",
    "recycled",
    "rolling-restart",
    "restart",
    "scale-down",
    "stopped-by-itself",
    "cancelled",
    "shutdown",
];

/// Recycle causes the supervisor counts (see [`ControlCounters::recycles`]).
const RECYCLE_CAUSES: [&str; 6] =
    ["memory", "max-requests", "unresponsive", "error-rate", "requested", "other"];

/// Status classes, in the order of [`Traffic::responses`].
const CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];

/// Failure kinds, in the order of [`Traffic::failures`].
const FAILURE_KINDS: [&str; 4] = ["unreachable", "failed", "bad_response", "timeout"];

/// What the exposition needs of one status: numbers and label values, owned.
#[derive(Debug, Clone)]
struct Figures {
    desired: usize,
    ready: usize,
    generation: u64,
    shutting_down: bool,
    min_workers: usize,
    max_workers: usize,
    autoscale: bool,
    crash_looping_slots: usize,
    operation: Option<OperationFigures>,
    counters: ControlCounters,
    workers: Vec<WorkerFigures>,
    /// Access log lines written and dropped; `None` when the access log is off.
    access_log: Option<AccessLogCounts>,
}

/// The operation under way.
#[derive(Debug, Clone)]
struct OperationFigures {
    kind: Cow<'static, str>,
    done: usize,
    total: usize,
}

/// One worker.
#[derive(Debug, Clone)]
struct WorkerFigures {
    labels: WorkerLabels,
    state: WorkerState,
    ejected: bool,
    in_flight: usize,
    uptime_seconds: f64,
    resident_memory_bytes: Option<u64>,
    cpu_seconds: Option<f64>,
    worker_id: u64,
    /// Its slot's restarts and recycles.
    restarts: u32,
    recycles: u32,
    traffic: Traffic,
}

/// The labels that name a worker's series.
#[derive(Debug, Clone, Copy, PartialEq, Eq, prometheus_client::encoding::EncodeLabelSet)]
struct WorkerLabels {
    slot: usize,
    pid: u32,
    generation: u64,
}

/// The labels that name a slot's series.
#[derive(Debug, Clone, Copy, PartialEq, Eq, prometheus_client::encoding::EncodeLabelSet)]
struct SlotLabels {
    slot: usize,
}

/// What the proxy measured of one worker.
#[derive(Debug, Clone, Copy)]
struct Traffic {
    responses: [u64; 5],
    failures: [u64; 4],
    received_bytes: u64,
    sent_bytes: u64,
    latency: Latency,
}

/// Time to response head as a histogram: the count in each bucket of [`LATENCY_BUCKETS`] and
/// the `+Inf` one, *not* cumulative (prometheus-client's `encode_histogram` accumulates).
#[derive(Debug, Clone, Copy)]
struct Latency {
    per_bucket: [(f64, u64); LATENCY_BUCKETS.len() + 1],
    count: u64,
    sum_seconds: f64,
}

impl Figures {
    fn of(status: &ClusterStatus) -> Self {
        Self {
            desired: status.desired_workers,
            ready: status.ready_workers,
            generation: status.generation,
            shutting_down: status.shutting_down,
            min_workers: status.scaling.min_workers,
            max_workers: status.scaling.max_workers,
            autoscale: status.scaling.auto_scale,
            crash_looping_slots: status.crash_looping_slots.len(),
            operation: status.operation.as_ref().map(|op| OperationFigures {
                kind: kind_name(op.kind),
                done: op.done,
                total: op.total,
            }),
            counters: status.counters.clone(),
            workers: status.workers.iter().map(WorkerFigures::of).collect(),
            access_log: status.access_log,
        }
    }
}

/// The name of `kind` as in the status counters and the JSON (`rolling-restart`, ...).
fn kind_name(kind: OperationKind) -> Cow<'static, str> {
    match kind {
        OperationKind::RollingRestart => "rolling-restart".into(),
        OperationKind::Restart => "restart".into(),
        OperationKind::Rollback => "rollback".into(),
        other => match serde_json::to_value(other) {
            Ok(serde_json::Value::String(name)) => name.into(),
            _ => "other".into(),
        },
    }
}

impl WorkerFigures {
    fn of(w: &WorkerStatus) -> Self {
        Self {
            labels: WorkerLabels { slot: w.slot, pid: w.pid, generation: w.generation },
            state: w.status,
            ejected: w.ejected,
            in_flight: w.in_flight,
            uptime_seconds: w.uptime_ms as f64 / 1000.0,
            resident_memory_bytes: w.rss_bytes,
            cpu_seconds: w.cpu_seconds,
            worker_id: w.worker_id,
            restarts: w.restarts,
            recycles: w.recycles,
            traffic: Traffic::of(&w.metrics),
        }
    }
}

impl Traffic {
    fn of(m: &MetricsSnapshot) -> Self {
        let r = &m.responses;
        let f = &m.failures;
        Self {
            responses: [r.informational, r.success, r.redirection, r.client_error, r.server_error],
            failures: [f.unreachable, f.failed, f.bad_response, f.timeout],
            received_bytes: m.bytes_in,
            sent_bytes: m.bytes_out,
            latency: Latency::of(
                &m.latency_histogram.cumulative,
                m.latency_histogram.count,
                m.latency_histogram.sum_seconds,
            ),
        }
    }
}

impl Latency {
    /// From `cumulative` counts at the bounds of [`LATENCY_BUCKETS`] (a missing one counts
    /// nothing: a worker that never became ready has none), `count` latencies in all summing
    /// to `sum_seconds`. The result is consistent whatever the input: the buckets never
    /// decrease and `+Inf` is the count.
    fn of(cumulative: &[u64], count: u64, sum_seconds: f64) -> Self {
        let mut per_bucket = [(f64::INFINITY, 0); LATENCY_BUCKETS.len() + 1];
        let mut below = 0;
        for (i, bound) in LATENCY_BUCKETS.into_iter().enumerate() {
            let at = cumulative.get(i).copied().unwrap_or(0).max(below);
            per_bucket[i] = (bound, at - below);
            below = at;
        }
        let count = count.max(below);
        per_bucket[LATENCY_BUCKETS.len()].1 = count - below;
        Self { per_bucket, count, sum_seconds }
    }
}

impl EncodeMetric for Latency {
    fn encode(&self, mut encoder: MetricEncoder<'_>) -> fmt::Result {
        encoder.encode_histogram::<NoLabelSet>(self.sum_seconds, self.count, &self.per_bucket, None)
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Histogram
    }
}

impl Collector for Figures {
    fn encode(&self, mut out: DescriptorEncoder<'_>) -> fmt::Result {
        self.encode_cluster(&mut out)?;
        self.encode_control_plane(&mut out)?;
        self.encode_workers(&mut out)?;
        self.encode_slots(&mut out)?;
        self.encode_access_log(&mut out)
    }
}

impl Figures {
    fn encode_cluster(&self, out: &mut DescriptorEncoder<'_>) -> fmt::Result {
        single(
            out,
            "cluster_workers_desired",
            "Workers the cluster keeps running: the configured count, as changed by scaling.",
            gauge(self.desired),
        )?;
        single(
            out,
            "cluster_workers_ready",
            "Workers in rotation: ready and not ejected.",
            gauge(self.ready),
        )?;
        let mut states: Vec<(&str, u64)> = LIVE_STATES.iter().map(|s| (s.as_str(), 0)).collect();
        for w in &self.workers {
            match states.iter_mut().find(|(name, _)| *name == w.state.as_str()) {
                Some((_, n)) => *n += 1,
                None => states.push((w.state.as_str(), 1)),
            }
        }
        family(
            out,
            "cluster_workers",
            "Live worker processes by lifecycle state.",
            None,
            states.into_iter().map(|(state, n)| ([("state", state)], gauge(n))),
        )?;
        single(
            out,
            "cluster_generation",
            "The current deploy generation: new workers belong to it; a rolling restart or \
             restart starts the next.",
            gauge(self.generation),
        )?;
        single(
            out,
            "cluster_shutting_down",
            "1 once the cluster has begun to shut down, else 0.",
            gauge(u64::from(self.shutting_down)),
        )?;
        single(
            out,
            "cluster_scaling_min_workers",
            "The fewest workers scaling may leave (scaling.minWorkers).",
            gauge(self.min_workers),
        )?;
        single(
            out,
            "cluster_scaling_max_workers",
            "The most workers scaling may start (scaling.maxWorkers).",
            gauge(self.max_workers),
        )?;
        single(
            out,
            "cluster_autoscale_enabled",
            "1 when the autoscaler is on (scaling.autoScale), else 0.",
            gauge(u64::from(self.autoscale)),
        )?;
        single(
            out,
            "cluster_crash_looping_slots",
            "Slots whose worker keeps exiting soon after it starts.",
            gauge(self.crash_looping_slots),
        )?;
        let running = self.operation.as_ref().map(|op| op.kind.as_ref());
        let unknown = running.filter(|kind| !OPERATION_KINDS.contains(kind));
        family(
            out,
            "cluster_operation_in_progress",
            "1 for the kind of operation under way (rolling restart, restart, rollback), 0 for \
             the others.",
            None,
            OPERATION_KINDS
                .into_iter()
                .chain(unknown)
                .map(|kind| ([("kind", kind)], gauge(u64::from(running == Some(kind))))),
        )?;
        let operation = self.operation.iter();
        family(
            out,
            "cluster_operation_workers_replaced",
            "Workers the operation under way has replaced so far.",
            None,
            operation.clone().map(|op| ([("kind", op.kind.as_ref())], gauge(op.done))),
        )?;
        family(
            out,
            "cluster_operation_workers_planned",
            "Workers the operation under way replaces in all, as things stand (a scale change \
             moves it).",
            None,
            operation.map(|op| ([("kind", op.kind.as_ref())], gauge(op.total))),
        )
    }

    /// `cluster_access_log_lines_total{outcome}`, when the access log is on.
    fn encode_access_log(&self, out: &mut DescriptorEncoder<'_>) -> fmt::Result {
        let Some(log) = self.access_log else { return Ok(()) };
        family(
            out,
            "cluster_access_log_lines",
            "Access log lines written, or dropped (the queue to the writer was full, or the \
             write failed).",
            None,
            [("written", log.written), ("dropped", log.dropped)]
                .map(|(outcome, n)| ([("outcome", outcome)], counter(n))),
        )
    }

    fn encode_control_plane(&self, out: &mut DescriptorEncoder<'_>) -> fmt::Result {
        let c = &self.counters;
        family(
            out,
            "cluster_worker_exits",
            "Worker processes that exited, by why they left.",
            None,
            with_known(&EXIT_REASONS, &c.exits)
                .map(|(reason, n)| ([("reason", reason)], counter(n))),
        )?;
        family(
            out,
            "cluster_recycles",
            "Worker recycles started (replace, then drain and stop the old worker), by cause.",
            None,
            with_known(&RECYCLE_CAUSES, &c.recycles)
                .map(|(cause, n)| ([("cause", cause)], counter(n))),
        )?;
        let unknown = c.operations.iter().filter(|(k, _)| !OPERATION_KINDS.contains(&k.as_str()));
        let operations = OPERATION_KINDS
            .into_iter()
            .map(|kind| (kind, c.operations.get(kind).copied().unwrap_or_default()))
            .chain(unknown.map(|(kind, counts)| (kind.as_str(), *counts)));
        family(
            out,
            "cluster_operations",
            "Operations (rolling restart, restart, rollback) by kind and outcome: started, \
             finished, or failed (interrupted included).",
            None,
            operations.flat_map(|(kind, n)| {
                [("started", n.started), ("finished", n.finished), ("failed", n.failed)]
                    .map(|(outcome, n)| ([("kind", kind), ("outcome", outcome)], counter(n)))
            }),
        )?;
        family(
            out,
            "cluster_autoscale_decisions",
            "Autoscaler decisions to add workers (up) or remove some (down).",
            None,
            [("up", c.autoscale_up), ("down", c.autoscale_down)]
                .map(|(direction, n)| ([("direction", direction)], counter(n))),
        )?;
        single(
            out,
            "cluster_scale_changes",
            "Changes of the worker count, by an operator or the autoscaler.",
            counter(c.scale_changes),
        )
    }

    fn encode_workers(&self, out: &mut DescriptorEncoder<'_>) -> fmt::Result {
        let workers = &self.workers;
        family(
            out,
            "cluster_worker_info",
            "Always 1: the worker's id (worker_id, as in the status and the admin API), to join \
             on slot, pid and generation.",
            None,
            workers.iter().map(|w| ((w.labels, [("worker_id", w.worker_id)]), gauge(1u64))),
        )?;
        family(
            out,
            "cluster_worker_state",
            "1 for the worker's lifecycle state, 0 for the others.",
            None,
            workers.iter().flat_map(|w| {
                let other = Some(w.state).filter(|s| !LIVE_STATES.contains(s));
                LIVE_STATES.into_iter().chain(other).map(move |s| {
                    ((w.labels, [("state", s.as_str())]), gauge(u64::from(s == w.state)))
                })
            }),
        )?;
        family(
            out,
            "cluster_worker_ejected",
            "1 while the worker is out of rotation for failing probes or as an error-rate \
             outlier (still running), else 0.",
            None,
            workers.iter().map(|w| (w.labels, gauge(u64::from(w.ejected)))),
        )?;
        family(
            out,
            "cluster_worker_in_flight",
            "Requests in flight on the worker.",
            None,
            workers.iter().map(|w| (w.labels, gauge(w.in_flight))),
        )?;
        family(
            out,
            "cluster_worker_requests",
            "Responses the worker gave through the proxy, by status class.",
            None,
            workers.iter().flat_map(|w| {
                CLASSES
                    .into_iter()
                    .zip(w.traffic.responses)
                    .map(move |(class, n)| ((w.labels, [("class", class)]), counter(n)))
            }),
        )?;
        family(
            out,
            "cluster_worker_failures",
            "Requests that got no response from the worker, by kind: unreachable (no \
             connection), failed (it failed before answering), bad_response (not valid HTTP), \
             timeout (no response head in time).",
            None,
            workers.iter().flat_map(|w| {
                FAILURE_KINDS
                    .into_iter()
                    .zip(w.traffic.failures)
                    .map(move |(kind, n)| ((w.labels, [("kind", kind)]), counter(n)))
            }),
        )?;
        family(
            out,
            "cluster_worker_request_duration",
            "Time from forwarding a request to the worker's response head (to within 6.25 %).",
            Some(&Unit::Seconds),
            workers.iter().map(|w| (w.labels, w.traffic.latency)),
        )?;
        family(
            out,
            "cluster_worker_received",
            "Request body bytes read from clients and forwarded to the worker.",
            Some(&Unit::Bytes),
            workers.iter().map(|w| (w.labels, counter(w.traffic.received_bytes))),
        )?;
        family(
            out,
            "cluster_worker_sent",
            "Response body bytes from the worker passed on to clients in full.",
            Some(&Unit::Bytes),
            workers.iter().map(|w| (w.labels, counter(w.traffic.sent_bytes))),
        )?;
        family(
            out,
            "cluster_worker_resident_memory",
            "Resident memory of the worker's process tree at the last health tick.",
            Some(&Unit::Bytes),
            workers.iter().filter_map(|w| Some((w.labels, gauge(w.resident_memory_bytes?)))),
        )?;
        family(
            out,
            "cluster_worker_cpu",
            "CPU time (user and system) the worker's process tree has used, reaped children \
             included, at the last health tick.",
            Some(&Unit::Seconds),
            workers.iter().filter_map(|w| Some((w.labels, counter(w.cpu_seconds?)))),
        )?;
        family(
            out,
            "cluster_worker_uptime",
            "Time since the worker process started.",
            Some(&Unit::Seconds),
            workers.iter().map(|w| (w.labels, gauge(w.uptime_seconds))),
        )
    }

    /// The per-slot counters, one series for each slot with a live worker.
    fn encode_slots(&self, out: &mut DescriptorEncoder<'_>) -> fmt::Result {
        // Two workers share a slot while one replaces the other; both carry the same counts,
        // their slot's.
        let mut slots: BTreeMap<usize, (u32, u32)> = BTreeMap::new();
        for w in &self.workers {
            slots.entry(w.labels.slot).or_insert((w.restarts, w.recycles));
        }
        family(
            out,
            "cluster_slot_restarts",
            "Restarts of the slot's worker after an exit the cluster did not ask for (crash, \
             failed start) or a health kill; the series outlives each worker.",
            None,
            slots.iter().map(|(&slot, &(n, _))| (SlotLabels { slot }, counter(n))),
        )?;
        family(
            out,
            "cluster_slot_recycles",
            "Replacements of the slot's worker through the recycle path (memory, max requests, \
             probes, operator); the series outlives each worker.",
            None,
            slots.iter().map(|(&slot, &(_, n))| (SlotLabels { slot }, counter(n))),
        )
    }
}

fn gauge<N>(value: N) -> ConstGauge<N> {
    ConstGauge::new(value)
}

fn counter<N>(value: N) -> ConstCounter<N> {
    ConstCounter::new(value)
}

/// One family without labels: its descriptor and its one sample. `name` leaves out the
/// `_total` of a counter (prometheus-client adds it).
fn single(
    out: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    metric: impl EncodeMetric,
) -> fmt::Result {
    metric.encode(out.encode_descriptor(name, help, None, metric.metric_type())?)
}

/// One family: its descriptor, then each of `series`; nothing at all when there are none.
/// `name` leaves out the `_total` of a counter and the `unit` (prometheus-client adds both).
fn family<S, M>(
    out: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    unit: Option<&Unit>,
    series: impl IntoIterator<Item = (S, M)>,
) -> fmt::Result
where
    S: EncodeLabelSet,
    M: EncodeMetric,
{
    let mut series = series.into_iter().peekable();
    let Some(metric_type) = series.peek().map(|(_, m)| m.metric_type()) else {
        return Ok(());
    };
    let mut family = out.encode_descriptor(name, help, unit, metric_type)?;
    for (labels, metric) in series {
        metric.encode(family.encode_family(&labels)?)?;
    }
    Ok(())
}

/// `counts` with every `known` key first (0 when not counted yet), then the other keys.
fn with_known<'a>(
    known: &'a [&'a str],
    counts: &'a BTreeMap<String, u64>,
) -> impl Iterator<Item = (&'a str, u64)> {
    let others = counts.iter().filter(|(k, _)| !known.contains(&k.as_str()));
    known
        .iter()
        .map(|k| (*k, counts.get(*k).copied().unwrap_or(0)))
        .chain(others.map(|(k, n)| (k.as_str(), *n)))
}

#[cfg(test)]
#[path = "metrics_tests.rs"]
mod tests;
