//! Starting worker processes.
