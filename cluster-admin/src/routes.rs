//! The admin API's paths, as the original Node design names them, and which method each
//! takes.

use http::Method;

use crate::access::Entry;

/// The prefix of every admin route.
pub const PREFIX: &str = "/api/admin/cluster";
/// `GET`: the cluster status as JSON.
pub const STATUS: &str = "/api/admin/cluster/status";
/// `GET`: 200 while enough workers are in rotation, else 503 with the reason.
pub const HEALTH: &str = "/api/admin/cluster/health";
/// `POST {"workers": N}` or `{"by": ±N}`: scale.
pub const SCALE: &str = "/api/admin/cluster/scale";
/// `POST` (optionally `{"mode": "rolling"|"all"}`): restart the workers.
pub const RESTART: &str = "/api/admin/cluster/restart";
/// `POST`: replace one worker, by its `workerId` (the path with `{id}` filled in).
pub const WORKER_RESTART: &str = "/api/admin/cluster/workers/{id}/restart";
/// `POST` (optionally `{"binary": PATH, "timeoutMs": N}`): hot upgrade of the primary; answers
/// once the new primary serves, or with why it does not.
pub const UPGRADE: &str = "/api/admin/cluster/upgrade";
/// `POST`: stop the cluster (`{"mode": "graceful"|"immediate"}`).
pub const SHUTDOWN: &str = "/api/admin/cluster/shutdown";
/// `GET`: Server-Sent Events of cluster events and status snapshots.
pub const EVENTS: &str = "/api/admin/cluster/events";
/// `GET`: Prometheus metrics, on the front port (where `/metrics` belongs to the application).
pub const METRICS_FRONT: &str = "/api/admin/cluster/metrics";
/// `GET`: the OpenAPI description of these routes.
pub const OPENAPI: &str = "/api/admin/cluster/openapi.json";
/// `GET`: Prometheus metrics on the control socket and the admin listener.
pub const METRICS: &str = "/metrics";
/// `GET`: the dashboard page; its assets are under `/admin/cluster/assets/`.
pub const DASHBOARD: &str = "/admin/cluster";

/// One admin route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Route {
    Status,
    Health,
    Scale,
    Restart,
    /// `POST /api/admin/cluster/workers/{id}/restart`.
    WorkerRestart(u64),
    Shutdown,
    Upgrade,
    Events,
    Metrics,
    OpenApi,
    /// The dashboard page or one of its assets.
    Dashboard(crate::dashboard::Page),
}

impl Route {
    /// The methods the route takes (`HEAD` goes with `GET`).
    pub(crate) fn methods(self) -> &'static [Method] {
        match self {
            Route::Scale
            | Route::Restart
            | Route::WorkerRestart(_)
            | Route::Shutdown
            | Route::Upgrade => &[Method::POST],
            _ => &[Method::GET, Method::HEAD],
        }
    }
}

/// The route of `path` as reached at `entry`, if there is one.
pub(crate) fn route(path: &str, entry: Entry) -> Option<Route> {
    let path = path.strip_suffix('/').filter(|p| !p.is_empty()).unwrap_or(path);
    Some(match path {
        STATUS => Route::Status,
        HEALTH => Route::Health,
        SCALE => Route::Scale,
        RESTART => Route::Restart,
        SHUTDOWN => Route::Shutdown,
        UPGRADE => Route::Upgrade,
        EVENTS => Route::Events,
        METRICS_FRONT => Route::Metrics,
        OPENAPI => Route::OpenApi,
        METRICS if entry != Entry::FrontPort => Route::Metrics,
        _ if path.starts_with(DASHBOARD) => Route::Dashboard(crate::dashboard::page(path)?),
        _ => {
            let id = path.strip_prefix("/api/admin/cluster/workers/")?.strip_suffix("/restart")?;
            if id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            Route::WorkerRestart(id.parse().ok()?)
        }
    })
}

/// Whether the front port must keep `path` from the workers: the admin routes and the
/// dashboard, whether or not they are served there, however the path is spelled (an
/// application framework may read `//API/Admin/cluster;x/%73tatus` as the admin path).
pub(crate) fn claimed_on_front_port(path: &str) -> bool {
    let odd = path.contains(['%', ';'])
        || path.contains("//")
        || path.contains("/.")
        || path.bytes().any(|b| b.is_ascii_uppercase());
    if odd {
        let normal = normalize(path);
        return under(&normal, PREFIX) || under(&normal, DASHBOARD);
    }
    under(path, PREFIX) || under(path, DASHBOARD)
}

/// `path` as a lenient server would read it: percent-decoded, lower-cased, without `;`
/// parameters, empty and `.` segments, and with `..` applied.
fn normalize(path: &str) -> String {
    let bytes = path.as_bytes();
    let hex = |b: Option<&u8>| b.and_then(|&b| (b as char).to_digit(16));
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match (bytes[i], hex(bytes.get(i + 1)), hex(bytes.get(i + 2))) {
            (b'%', Some(hi), Some(lo)) => {
                decoded.push((hi * 16 + lo) as u8);
                i += 3;
            }
            (b, _, _) => {
                decoded.push(b);
                i += 1;
            }
        }
    }
    let text = String::from_utf8_lossy(&decoded).to_ascii_lowercase();
    let mut segments: Vec<&str> = Vec::new();
    for segment in text.split('/') {
        match segment.split(';').next().unwrap_or("") {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            s => segments.push(s),
        }
    }
    format!("/{}", segments.join("/"))
}

fn under(path: &str, prefix: &str) -> bool {
    path.strip_prefix(prefix).is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_map_to_routes() {
        assert_eq!(route(STATUS, Entry::Socket), Some(Route::Status));
        assert_eq!(route("/api/admin/cluster/status/", Entry::Socket), Some(Route::Status));
        assert_eq!(
            route("/api/admin/cluster/workers/7/restart", Entry::Socket),
            Some(Route::WorkerRestart(7))
        );
        assert_eq!(route("/api/admin/cluster/workers/x/restart", Entry::Socket), None);
        assert_eq!(route("/api/admin/cluster/workers/+1/restart", Entry::Socket), None);
        assert_eq!(route("/metrics", Entry::Listener), Some(Route::Metrics));
        assert_eq!(route("/metrics", Entry::FrontPort), None, "the application's own /metrics");
        assert_eq!(route(METRICS_FRONT, Entry::FrontPort), Some(Route::Metrics));
        assert_eq!(route("/api/admin/cluster/nope", Entry::Socket), None);
    }

    #[test]
    fn the_front_port_claims_admin_paths_only() {
        for path in [
            "/api/admin/cluster",
            "/api/admin/cluster/status",
            "/admin/cluster",
            "/admin/cluster/app.js",
        ] {
            assert!(claimed_on_front_port(path), "{path}");
        }
        for path in [
            "/",
            "/metrics",
            "/api/admin/clusters",
            "/admin/clusterfoo",
            "/api/admin",
            "/api/status",
        ] {
            assert!(!claimed_on_front_port(path), "{path}");
        }
        // However it is spelled.
        for path in [
            "//api/admin/cluster/status",
            "/API/admin/Cluster/status",
            "/api/admin/cluster%2Fstatus",
            "/api/admin/cluster;x/status",
            "/api/%61dmin/cluster",
            "/app/../api/admin/cluster/status",
            "/./admin/cluster",
        ] {
            assert!(claimed_on_front_port(path), "{path}");
        }
        for path in ["/API/status", "//metrics", "/app;x/page", "/%41pp/../metrics"] {
            assert!(!claimed_on_front_port(path), "{path}");
        }
    }
}
