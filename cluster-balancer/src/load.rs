//! Per-backend load signals and the RAII guard that counts in-flight work.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The load signals of one backend, shared between the proxy (which updates them) and the
/// strategies (which read them).
///
/// All fields are atomics: reading and updating never takes a lock.
#[derive(Debug)]
pub struct BackendLoad {
    id: u64,
    in_flight: AtomicUsize,
}

impl BackendLoad {
    /// Creates the load record of backend `id` with nothing in flight.
    ///
    /// `id` identifies the backend across routing-table changes; the proxy uses the worker's
    /// unique id.
    pub fn new(id: u64) -> Self {
        Self { id, in_flight: AtomicUsize::new(0) }
    }

    /// The backend's id, as given to [`BackendLoad::new`].
    pub fn id(&self) -> u64 {
        self.id
    }

    /// Requests (and upgraded tunnels) currently in flight on this backend.
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Relaxed)
    }

    /// Counts one more request in flight until the returned guard is dropped.
    ///
    /// Keep the guard alive for as long as the backend does work for the request: until the
    /// response body has been sent in full, or the upgraded connection has closed.
    pub fn start(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight { load: Arc::clone(self) }
    }
}

/// Counts one request as in flight on a backend for as long as it lives.
///
/// Deliberately not `Clone`: one guard is one request.
#[derive(Debug)]
#[must_use = "the request stops counting as in flight when the guard is dropped"]
pub struct InFlight {
    load: Arc<BackendLoad>,
}

impl InFlight {
    /// The backend this guard counts against.
    pub fn backend(&self) -> &Arc<BackendLoad> {
        &self.load
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.load.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guard_counts_while_alive() {
        let load = Arc::new(BackendLoad::new(7));
        let a = load.start();
        let b = load.start();
        assert_eq!(load.in_flight(), 2);
        drop(a);
        assert_eq!(load.in_flight(), 1);
        drop(b);
        assert_eq!(load.in_flight(), 0);
    }
}
