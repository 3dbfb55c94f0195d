//! The [`ResourceSampler`] trait: where memory and CPU figures come from.

use std::time::Duration;

/// Memory and CPU of one worker's process tree at one moment.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use cluster_health::ResourceSample;
///
/// let sample = ResourceSample { rss_bytes: 64 << 20, cpu_time: Duration::from_millis(250), processes: 2 };
/// assert_eq!(sample.rss_bytes / (1 << 20), 64);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ResourceSample {
    /// Resident memory of the whole process tree, in bytes.
    pub rss_bytes: u64,
    /// Cumulative CPU time of the tree (user + system, including reaped children), the input of
    /// a [`CpuTracker`](crate::CpuTracker).
    pub cpu_time: Duration,
    /// Processes in the tree (the worker and its descendants; threads are not counted).
    pub processes: u32,
}

/// Reads the resources of workers' process trees.
///
/// # Contract
///
/// - `sample` returns the figures for the process tree rooted at `pid` (the worker and all
///   its descendants), or an error when the process is gone or unreadable.
/// - `sample_many` returns one result per pid, in order. Its default calls `sample` for each;
///   implementations that scan the whole system override it so that one scan serves all.
/// - Both may block on file I/O (procfs): callers run them off the async request path.
///
/// # Examples
///
/// A sampler of your own (here fixed figures, as a test would use; a real one might ask a
/// container runtime):
///
/// ```
/// use std::time::Duration;
/// use cluster_health::{ResourceSample, ResourceSampler, SampleError};
///
/// #[derive(Debug)]
/// struct Fixed;
///
/// impl ResourceSampler for Fixed {
///     fn sample(&self, pid: u32) -> Result<ResourceSample, SampleError> {
///         if pid == 0 {
///             return Err(SampleError::NotFound { pid });
///         }
///         Ok(ResourceSample { rss_bytes: 10 << 20, cpu_time: Duration::ZERO, processes: 1 })
///     }
/// }
///
/// assert_eq!(Fixed.sample(42).unwrap().processes, 1);
/// let all = Fixed.sample_many(&[42, 0]); // one result per pid, in order
/// assert!(all[0].is_ok() && all[1].is_err());
/// ```
pub trait ResourceSampler: Send + Sync + std::fmt::Debug {
    /// Samples the process tree rooted at `pid`.
    ///
    /// # Errors
    ///
    /// [`SampleError`] when the process does not exist or cannot be read.
    fn sample(&self, pid: u32) -> Result<ResourceSample, SampleError>;

    /// Samples the process trees rooted at each of `pids`, in order.
    fn sample_many(&self, pids: &[u32]) -> Vec<Result<ResourceSample, SampleError>> {
        pids.iter().map(|&pid| self.sample(pid)).collect()
    }
}

/// A sample could not be taken.
///
/// # Examples
///
/// ```
/// use cluster_health::{ProcfsSampler, ResourceSampler, SampleError};
///
/// // A pid that does not exist (pid_max is at most 2^22 on Linux).
/// match ProcfsSampler::new().sample(u32::MAX) {
///     Err(SampleError::NotFound { pid }) => assert_eq!(pid, u32::MAX),
///     Err(SampleError::Unsupported) => {} // not Linux
///     other => panic!("{other:?}"),
/// }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SampleError {
    /// The process does not exist (it exited, or the pid is wrong).
    #[error("process {pid} does not exist")]
    NotFound {
        /// The process that was asked for.
        pid: u32,
    },
    /// The process table could not be read.
    #[error("cannot read the process table: {message}")]
    Unreadable {
        /// What went wrong.
        message: String,
    },
    /// This platform has no procfs; resource limits cannot be enforced here.
    #[error("resource sampling is not available on this platform")]
    Unsupported,
}
