//! The events hub behind the Server-Sent Events stream: every cluster event gets an id, the
//! last [`REPLAY`] are kept for clients that reconnect with `Last-Event-ID`, and a status
//! snapshot is taken every `admin.eventsInterval` while at least one client listens.
//!
//! Memory is bounded whatever the clients do: the replay buffer has a fixed length, live
//! events reach clients through a bounded broadcast channel, and a client that falls behind
//! it is disconnected (its `EventSource` reconnects and resumes from the replay buffer).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cluster_core::{ClusterEvent, ClusterHandle};
use serde::Serialize;
use tokio::sync::broadcast;
use tokio::sync::broadcast::error::RecvError;

/// Lifecycle events kept for clients that reconnect.
pub(crate) const REPLAY: usize = 1024;

/// Live events queued per client before a slow one is disconnected.
const LIVE: usize = 256;

/// One event as the stream sends it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SseEvent {
    /// Its id (`id:`); status snapshots carry the id of the last lifecycle event.
    pub(crate) id: u64,
    /// The SSE event name (`event:`): the event's `type` (`workerStarted`, ...) or `status`.
    pub(crate) name: String,
    /// The JSON payload (`data:`).
    pub(crate) data: String,
}

impl SseEvent {
    /// The event in the SSE wire format.
    pub(crate) fn encode(&self) -> String {
        format!("id: {}\nevent: {}\ndata: {}\n\n", self.id, self.name, self.data)
    }
}

/// What a new listener gets.
#[derive(Debug)]
pub(crate) struct Listening {
    /// The kept events after its `Last-Event-ID`.
    pub(crate) missed: Vec<Arc<SseEvent>>,
    /// Whether some events after it are no longer kept.
    pub(crate) lost: bool,
    /// Live events from now on (`None` once the cluster has stopped).
    pub(crate) live: Option<broadcast::Receiver<Arc<SseEvent>>>,
    /// The id of the last event before the live ones.
    pub(crate) at: u64,
}

/// What the hub keeps.
#[derive(Debug)]
struct State {
    last_id: u64,
    replay: VecDeque<Arc<SseEvent>>,
    /// Live events for the listeners; `None` once the cluster has stopped, which ends them.
    live: Option<broadcast::Sender<Arc<SseEvent>>>,
    /// Shutdown began.
    shutting_down: bool,
}

impl Default for State {
    fn default() -> Self {
        Self {
            last_id: 0,
            replay: VecDeque::new(),
            live: Some(broadcast::channel(LIVE).0),
            shutting_down: false,
        }
    }
}

/// The events hub of one cluster.
#[derive(Debug, Clone)]
pub(crate) struct Hub {
    state: Arc<Mutex<State>>,
}

impl Hub {
    /// Starts following `handle`'s events, with status snapshots every `interval` while
    /// someone listens. Must run inside a runtime.
    pub(crate) fn start(handle: ClusterHandle, interval: Duration) -> Self {
        let hub = Hub { state: Arc::default() };
        tokio::spawn(hub.clone().follow(handle.subscribe()));
        tokio::spawn(hub.clone().snapshots(handle, interval));
        hub
    }

    /// The id of the latest event: a client that starts listening after an operation it
    /// started can resume from it and miss nothing.
    pub(crate) fn last_id(&self) -> u64 {
        self.lock().last_id
    }

    /// Whether shutdown began (streams on the front port end then, so as not to hold the
    /// proxy's drain).
    pub(crate) fn shutting_down(&self) -> bool {
        self.lock().shutting_down
    }

    /// A new listener: the kept events after `after` (all kept ones when `after` is too old,
    /// with `true` when some were lost), then live events from the receiver (`None` once the
    /// cluster has stopped). Both are taken under one lock, so nothing falls between them
    /// and nothing comes twice.
    pub(crate) fn listen(&self, after: Option<u64>) -> Listening {
        let state = self.lock();
        let live = state.live.as_ref().map(broadcast::Sender::subscribe);
        let at = state.last_id;
        let Some(after) = after else {
            return Listening { missed: Vec::new(), lost: false, live, at };
        };
        let oldest = state.replay.front().map_or(state.last_id + 1, |e| e.id);
        let lost = after + 1 < oldest && after < state.last_id;
        let missed = state.replay.iter().filter(|e| e.id > after).cloned().collect();
        Listening { missed, lost, live, at }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Numbers, keeps and broadcasts every cluster event until the cluster stops.
    async fn follow(self, mut events: broadcast::Receiver<ClusterEvent>) {
        loop {
            match events.recv().await {
                Ok(event) => {
                    let stopped = matches!(event, ClusterEvent::Stopped);
                    self.publish(&event);
                    if stopped {
                        break;
                    }
                }
                Err(RecvError::Lagged(n)) => {
                    tracing::warn!(target: "cluster::admin", "events stream fell {n} events behind the cluster");
                }
                Err(RecvError::Closed) => break,
            }
        }
        // Every listener's receiver closes: their streams end.
        self.lock().live = None;
    }

    fn publish(&self, event: &ClusterEvent) {
        let mut value = serde_json::to_value(event).unwrap_or_default();
        let name = value.get("type").and_then(|t| t.as_str()).unwrap_or("event").to_owned();
        if let Some(object) = value.as_object_mut() {
            // When it happened, for a client that receives it later (replayed after a reconnect).
            object.insert("time".into(), unix_millis().into());
        }
        let data = value.to_string();
        let mut state = self.lock();
        state.last_id += 1;
        if matches!(event, ClusterEvent::ShutdownStarted { .. }) {
            state.shutting_down = true;
        }
        let sse = Arc::new(SseEvent { id: state.last_id, name, data });
        if state.replay.len() == REPLAY {
            state.replay.pop_front();
        }
        state.replay.push_back(Arc::clone(&sse));
        if let Some(live) = &state.live {
            let _ = live.send(sse);
        }
    }

    /// Broadcasts a status snapshot every `interval` while anyone listens.
    async fn snapshots(self, handle: ClusterHandle, interval: Duration) {
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let listeners = match &self.lock().live {
                None => return,
                Some(live) => live.receiver_count(),
            };
            if listeners == 0 {
                continue;
            }
            let Ok(status) = handle.status().await else { return };
            let snapshot = Arc::new(self.snapshot(&status, self.last_id()));
            if let Some(live) = &self.lock().live {
                let _ = live.send(snapshot);
            }
        }
    }

    /// A status snapshot as an event, carrying `id`: the last lifecycle event its listener
    /// had (a reconnect from that id misses nothing).
    pub(crate) fn snapshot(&self, status: &impl Serialize, id: u64) -> SseEvent {
        let data = serde_json::to_string(status).unwrap_or_else(|_| "{}".into());
        SseEvent { id, name: "status".into(), data }
    }
}

/// Milliseconds since the Unix epoch, now.
fn unix_millis() -> u64 {
    let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
    since.map_or(0, |d| d.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hub() -> Hub {
        Hub { state: Arc::default() }
    }

    #[test]
    fn events_are_numbered_kept_and_replayed_after_an_id() {
        let h = hub();
        for _ in 0..5 {
            h.publish(&ClusterEvent::Readmitted { worker_id: 1, slot: 0 });
        }
        assert_eq!(h.last_id(), 5);
        let l = h.listen(Some(3));
        assert_eq!(l.missed.iter().map(|e| e.id).collect::<Vec<_>>(), vec![4, 5]);
        assert!(!l.lost && l.live.is_some());
        assert_eq!(l.at, 5);
        assert_eq!(l.missed[0].name, "readmitted");
        assert!(l.missed[0].encode().starts_with("id: 4\nevent: readmitted\ndata: {"));
        let data: serde_json::Value = serde_json::from_str(&l.missed[0].data).unwrap();
        assert_eq!(data["type"], "readmitted");
        assert!(data["time"].as_u64().unwrap() > 1_700_000_000_000, "a Unix time in ms");
        assert!(h.listen(None).missed.is_empty(), "a new client gets live events only");
    }

    #[test]
    fn the_replay_buffer_is_bounded_and_says_when_events_were_lost() {
        let h = hub();
        for _ in 0..REPLAY + 10 {
            h.publish(&ClusterEvent::Readmitted { worker_id: 1, slot: 0 });
        }
        assert_eq!(h.lock().replay.len(), REPLAY);
        let l = h.listen(Some(2));
        assert!(l.lost);
        assert_eq!(l.missed.len(), REPLAY);
        assert_eq!(l.missed[0].id, 11);
        let l = h.listen(Some(10));
        assert!(!l.lost, "event 11 is the first kept, none lost after 10");
        assert_eq!(l.missed.len(), REPLAY);
    }
}
