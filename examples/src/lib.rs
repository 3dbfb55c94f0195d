//! Example programs for `cluster` (see the `[[example]]` targets of this package).
//!
//! - `hello`: the example worker, a small hyper server reading `PORT`, with the routes the
//!   tests and benchmarks use (its file's doc comment lists them and its environment knobs).
//! - `node/server.js`: the same contract as a plain Node.js `http` server, for tests that run
//!   Node workers.
//! - `embedded`: a server that is its own cluster (`cluster_core::is_primary()`, the self-exec
//!   spawner, the `cluster_core::worker` helpers); `custom_spawner`, `custom_health` and
//!   `custom_strategy`: the `Spawner`, `HealthPolicy` and `Balancer` extension points, each in
//!   a cluster whose workers run [`worker::serve`] (or a given command).
//!
//! # Examples
//!
//! ```
//! assert!(examples::HELLO_ROUTES.contains(&"/health"));
//! ```
#![forbid(unsafe_code)]

pub mod worker;

pub use worker::Error;

/// The routes the `hello` example worker serves.
pub const HELLO_ROUTES: &[&str] = &[
    "/",
    "/pid",
    "/health",
    "/slow?ms=N",
    "/stream?n=N&interval=MS",
    "/ws",
    "/echo",
    "/headers",
    "/env",
    "/crash",
];

/// The CPUs this process may run on (its affinity mask, `Cpus_allowed_list` in
/// `/proc/self/status`, e.g. `0-1,4` → `[0, 1, 4]`): where a launcher such as `taskset` may
/// pin a worker, which is not always `0..N` (a container or a `taskset` around the primary).
///
/// # Errors
///
/// The file cannot be read or does not hold the list (not Linux).
///
/// # Examples
///
/// ```
/// let cpus = examples::allowed_cpus().unwrap();
/// assert!(!cpus.is_empty());
/// ```
pub fn allowed_cpus() -> std::io::Result<Vec<usize>> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    let list = status
        .lines()
        .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
        .ok_or_else(|| std::io::Error::other("no Cpus_allowed_list in /proc/self/status"))?;
    let bad = || std::io::Error::other(format!("unreadable Cpus_allowed_list {list:?}"));
    let mut cpus = Vec::new();
    for range in list.trim().split(',') {
        let (first, last) = range.split_once('-').unwrap_or((range, range));
        let (first, last): (usize, usize) =
            (first.parse().map_err(|_| bad())?, last.parse().map_err(|_| bad())?);
        cpus.extend(first..=last);
    }
    if cpus.is_empty() { Err(bad()) } else { Ok(cpus) }
}
