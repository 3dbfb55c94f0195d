//! The supervisor: keeps N workers ready, one lifecycle state machine per worker.

mod state;

pub use state::WorkerState;
