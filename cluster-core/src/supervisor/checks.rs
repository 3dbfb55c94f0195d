//! How the control plane asks a worker whether it is ready and whether it is alive.
//!
//! The supervisor reaches workers' endpoints only through [`Checks`], so that its logic can
//! run under paused time with a fake spawner whose processes answer without a socket (real
//! I/O and paused time do not mix: the clock jumps while a connect is pending).

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;

use super::readiness::{self, Probe};
use crate::config::ClusterSpec;
use crate::endpoint::Endpoint;

/// Readiness and liveness checks of a worker, by its endpoint.
#[async_trait]
pub(crate) trait Checks: Send + Sync + fmt::Debug {
    /// Resolves once the worker at `endpoint` passes its readiness check. Never resolves for
    /// a worker that never does: callers bound it with the start timeout.
    async fn ready(&self, endpoint: &Endpoint);

    /// One liveness check: does the worker answer within the probe timeout?
    async fn alive(&self, endpoint: &Endpoint) -> bool;
}

/// The checks over HTTP: ready when the endpoint accepts a connection, or answers 2xx on the
/// health path; alive when it answers HTTP at all (2xx on the health path when there is one).
#[derive(Debug, Clone)]
pub(crate) struct HttpChecks {
    probe: Probe,
    health_path: Option<String>,
    probe_timeout: Duration,
}

impl HttpChecks {
    /// The checks a configuration asks for.
    pub(crate) fn from_spec(spec: &ClusterSpec) -> Self {
        Self {
            probe: Probe::new(spec.health_check_path.as_deref()),
            health_path: spec.health_check_path.clone(),
            probe_timeout: spec.health.probe_timeout,
        }
    }
}

#[async_trait]
impl Checks for HttpChecks {
    async fn ready(&self, endpoint: &Endpoint) {
        self.probe.wait_ready(endpoint).await;
    }

    async fn alive(&self, endpoint: &Endpoint) -> bool {
        readiness::alive(endpoint, self.health_path.as_deref(), self.probe_timeout).await
    }
}
