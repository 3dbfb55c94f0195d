//! The [`ResourceSampler`] trait: where memory and CPU figures come from.

use std::time::Duration;

/// Memory and CPU of one worker's process tree at one moment.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ResourceSample {
    /// Resident memory of the whole process tree, in bytes.
    pub rss_bytes: u64,
    /// CPU time used by the whole process tree since it started.
    pub cpu_time: Duration,
}

/// Reads the resources of a worker's process tree.
///
/// # Contract
///
/// - `sample` returns the figures for the process tree rooted at `pid` (the worker and all
///   its descendants), or an error when the process is gone or unreadable.
/// - It may block on file I/O (procfs): callers run it off the async request path.
pub trait ResourceSampler: Send + Sync + std::fmt::Debug {
    /// Samples the process tree rooted at `pid`.
    ///
    /// # Errors
    ///
    /// [`SampleError`] when the process does not exist or cannot be read.
    fn sample(&self, pid: u32) -> Result<ResourceSample, SampleError>;
}

/// A sample could not be taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SampleError {
    /// The process that was asked for.
    pub pid: u32,
    /// What went wrong, for the log.
    pub message: String,
}

impl std::fmt::Display for SampleError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "cannot sample process {}: {}", self.pid, self.message)
    }
}

impl std::error::Error for SampleError {}
