//! The routing table, derived from the worker records, and the rotation changes health
//! verdicts make (eject, re-admit).
//!
//! [`Supervisor::sync_routes`] is the only writer of a cluster's routing table: it puts in
//! every worker that is ready with rotation `In`, and nothing else. Everything else changes a
//! record and lets it follow.

use std::fmt;
use std::sync::Arc;

use super::record::Rotation;
use super::{Phase, Supervisor};
use crate::events::ClusterEvent;
use crate::metrics::{RateWindow, WindowRates};
use crate::routing::Backend;

impl Supervisor {
    /// Makes the routing table hold exactly the routable workers. Called before an event
    /// about a change of rotation is published, so that whoever reacts to the event finds
    /// the table already changed.
    pub(super) fn sync_routes(&self) {
        let routable: Vec<Arc<Backend>> = self
            .workers
            .values()
            .filter(|w| w.routable())
            .filter_map(|w| w.backend.clone())
            .collect();
        self.router.replace(routable);
    }

    /// Workers in rotation now.
    pub(super) fn in_rotation(&self) -> usize {
        self.workers.values().filter(|w| w.routable()).count()
    }

    /// Takes worker `id` out of rotation (never the last worker in rotation: a sick worker
    /// answers some requests, an empty table answers none); when it is `unresponsive`, also
    /// cuts its connections so that what waits on it moves elsewhere. Returns whether it is
    /// out.
    pub(super) fn eject(&mut self, id: u64, reason: &dyn fmt::Display, unresponsive: bool) -> bool {
        let in_rotation = self.in_rotation();
        let Some(w) = self.workers.get_mut(&id) else { return false };
        match w.rotation {
            Rotation::Leaving => return true,
            Rotation::Ejected => {
                if let (true, Some(b)) = (unresponsive, &w.backend) {
                    // Ejected for its error rate, and now it does not answer either.
                    b.abandon();
                }
                return true;
            }
            Rotation::In => {}
        }
        if w.routable() && in_rotation <= 1 {
            if self.health.keep_as_last(id) {
                tracing::warn!(worker = id, %reason, "not ejecting the last worker in rotation");
            }
            return false;
        }
        w.rotation = Rotation::Ejected;
        if let (true, Some(b)) = (unresponsive, &w.backend) {
            b.abandon();
        }
        let slot = w.slot;
        self.health.ejected(id);
        self.sync_routes();
        self.emit(ClusterEvent::Ejected { worker_id: id, slot, reason: reason.to_string() });
        true
    }

    /// Puts an ejected worker back in rotation.
    pub(super) fn readmit(&mut self, id: u64) {
        let Some(w) = self.workers.get_mut(&id) else { return };
        if w.rotation != Rotation::Ejected {
            return;
        }
        w.rotation = Rotation::In;
        if let Some(b) = &w.backend {
            b.resume();
        }
        let slot = w.slot;
        let window = self.health.metrics_window();
        if let Some(h) = self.health.worker_mut(id) {
            // Judge it on what it does from now on, not on the errors that got it ejected
            // (the window may be longer than the ejection).
            h.window = RateWindow::new(window);
            h.rates = WindowRates::default();
        }
        self.sync_routes();
        self.emit(ClusterEvent::Readmitted { worker_id: id, slot });
    }

    /// When no worker is left in rotation (the last one exited or was killed) but ejected
    /// workers are still running, re-admits them: a sick worker answers some requests, an
    /// empty table answers none (Envoy's panic threshold).
    pub(super) fn readmit_if_none_in_rotation(&mut self) {
        if self.phase != Phase::Running || self.in_rotation() > 0 {
            return;
        }
        let ejected: Vec<u64> = self
            .workers
            .values()
            .filter(|w| w.serving() && w.rotation == Rotation::Ejected)
            .map(|w| w.id)
            .collect();
        if !ejected.is_empty() {
            tracing::warn!(workers = ?ejected, "no worker left in rotation: re-admitting ejected workers");
        }
        for id in ejected {
            self.readmit(id);
        }
    }
}
