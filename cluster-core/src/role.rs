//! Role detection for a program that is both the primary and its own workers (Node's
//! `cluster.isPrimary` / `cluster.isWorker`).
//!
//! Both built-in spawners ([`SelfExecSpawner`](crate::SelfExecSpawner) and
//! [`ProcessSpawner`](crate::ProcessSpawner)) give every worker `CLUSTER_WORKER_ID` (its slot)
//! in its environment, and nothing else sets it: a process that has it is a worker.

/// The variable that marks a worker process: its slot, `0..workers`.
pub(crate) const WORKER_ID: &str = "CLUSTER_WORKER_ID";

/// The variable that holds a worker's generation in its slot (1 for the first worker).
pub(crate) const WORKER_GENERATION: &str = "CLUSTER_WORKER_GENERATION";

/// Whether this process runs as the primary: it was not started by a cluster as a worker
/// (`CLUSTER_WORKER_ID` is unset or empty). The opposite of [`is_worker`].
///
/// # Examples
///
/// A program that embeds the cluster runs its supervisor in the primary and its server in the
/// workers, which are the same binary started again by the [`SelfExecSpawner`](crate::SelfExecSpawner):
///
/// ```
/// if cluster_core::is_primary() {
///     // build a `Cluster` with `SelfExecSpawner` and run it
/// } else {
///     // serve on `cluster_core::worker::listener()`
/// }
/// ```
pub fn is_primary() -> bool {
    !is_worker()
}

/// Whether this process is a worker of a cluster: `CLUSTER_WORKER_ID` is set (by
/// [`SelfExecSpawner`](crate::SelfExecSpawner), [`ProcessSpawner`](crate::ProcessSpawner), or a
/// `cluster start` that runs this program as its command).
///
/// # Examples
///
/// ```
/// if cluster_core::is_worker() {
///     println!("worker {:?}", cluster_core::worker::id());
/// }
/// ```
pub fn is_worker() -> bool {
    std::env::var_os(WORKER_ID).is_some_and(|v| !v.is_empty())
}
