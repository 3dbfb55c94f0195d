//! The paths the admin API will serve (under its own listener, never the front port).

/// `GET`: the cluster status as JSON.
pub const STATUS: &str = "/api/status";
/// `GET`: Server-Sent Events of cluster events.
pub const EVENTS: &str = "/api/events";
/// `GET`: Prometheus metrics.
pub const METRICS: &str = "/metrics";
