//! Memory, before any limit acts: a worker that crosses `maxMemoryUsage` is told so over its
//! IPC channel, so that it can free memory (run `global.gc()`, drop caches) before the memory
//! policy's consecutive samples recycle it; and a worker whose RSS grows steadily is reported
//! as a probable leak, with its slope, while it is still below the limit.

use serde_json::json;
use tokio::time::Instant;

use super::Supervisor;
use crate::events::ClusterEvent;

/// Bytes in a MiB.
const MIB: f64 = 1024.0 * 1024.0;

impl Supervisor {
    /// Looks at worker `id`'s latest RSS sample (taken at `at`).
    pub(super) fn watch_memory(&mut self, id: u64, at: Instant) {
        let limit = self.spec.max_memory_bytes;
        let leak = self.health.leak_detector();
        let Some(w) = self.workers.get(&id) else { return };
        let slot = w.slot;
        let Some(h) = self.health.worker_mut(id) else { return };
        let Some(rss) = h.rss_bytes else { return };
        let crossed = rss > limit && !h.over_memory_limit;
        h.over_memory_limit = rss > limit;
        let warning = leak.and_then(|d| d.observe(&mut h.leak, at.into_std(), rss, Some(limit)));
        if crossed {
            let (rss_mb, limit_mb) = ((rss as f64 / MIB).round(), (limit as f64 / MIB).round());
            let message = json!({"type": "memory-pressure", "rssMb": rss_mb, "limitMb": limit_mb});
            let notified = w.ipc.as_ref().is_some_and(|ipc| ipc.send(&message));
            self.emit(ClusterEvent::MemoryPressure {
                worker_id: id,
                slot,
                rss_mb,
                limit_mb,
                notified,
            });
        }
        if let Some(warning) = warning {
            self.emit(ClusterEvent::LeakSuspected {
                worker_id: id,
                slot,
                slope_mb_per_min: warning.slope_mb_per_min,
                rss_mb: (warning.rss_bytes as f64 / MIB).round(),
                window_secs: warning.window.as_secs(),
                minutes_to_limit: warning.minutes_to_limit,
            });
        }
    }
}
