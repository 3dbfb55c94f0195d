//! [`ProcfsSampler`]: the [`ResourceSampler`] that reads `/proc` (Linux).

#[cfg(target_os = "linux")]
use crate::proc_stat;
use crate::{ProcessTable, ResourceSample, ResourceSampler, SampleError};

/// Samples process trees from `/proc`: one scan of every process's `stat` per call, then a sum
/// per tree through a [`ProcessTable`].
///
/// Call [`sample_many`](ResourceSampler::sample_many) once per tick with every worker's pid:
/// the cost is one scan (a few µs per process on the host) whatever the number of workers.
/// RSS comes from `stat` (pages × page size), which is 2–3× cheaper to parse than `status`;
/// only the fields the tick needs are parsed, with one buffer for the whole scan.
///
/// On other platforms every call returns [`SampleError::Unsupported`], so the crate still
/// builds there; memory limits are then not enforced.
///
/// # Caveats
///
/// The figures are blocking file reads: run them on a blocking thread, not on the async
/// runtime. RSS counts shared pages once per process, so a tree that shares memory (a
/// pre-forking parent and its children) over-counts; PM2 and gunicorn have the same view.
///
/// # Examples
///
/// ```
/// use cluster_health::{ProcfsSampler, ResourceSampler};
///
/// let sampler = ProcfsSampler::new();
/// if cfg!(target_os = "linux") {
///     let me = std::process::id();
///     let sample = sampler.sample(me).unwrap(); // this process and its children
///     assert!(sample.rss_bytes > 0 && sample.processes >= 1);
///     let table = sampler.scan().unwrap(); // every process, in one pass over /proc
///     assert!(table.get(me).is_some());
/// }
/// ```
#[derive(Debug, Clone)]
pub struct ProcfsSampler {
    #[cfg(target_os = "linux")]
    page_size: u64,
    #[cfg(target_os = "linux")]
    ticks_per_second: u64,
}

impl Default for ProcfsSampler {
    fn default() -> Self {
        Self::new()
    }
}

impl ProcfsSampler {
    /// A sampler for this system (reads the page size and clock tick rate once).
    pub fn new() -> Self {
        ProcfsSampler {
            #[cfg(target_os = "linux")]
            page_size: procfs::page_size(),
            #[cfg(target_os = "linux")]
            ticks_per_second: procfs::ticks_per_second().max(1),
        }
    }

    /// Scans every process once into a [`ProcessTable`]. Processes that exit during the scan
    /// are skipped.
    ///
    /// # Errors
    ///
    /// [`SampleError::Unreadable`] when `/proc` cannot be listed;
    /// [`SampleError::Unsupported`] off Linux.
    #[cfg(target_os = "linux")]
    pub fn scan(&self) -> Result<ProcessTable, SampleError> {
        let unreadable = |e: std::io::Error| SampleError::Unreadable { message: e.to_string() };
        let dir = std::fs::read_dir("/proc").map_err(unreadable)?;
        let mut buf = Vec::with_capacity(512);
        let mut entries = Vec::new();
        for d in dir {
            let Ok(d) = d else { continue };
            let Some(pid) = d.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
                continue;
            };
            // A process that exits during the scan is skipped, as is one whose stat cannot
            // be read (hidepid); only an unlistable /proc is an error.
            if let Ok(Some(stat)) = proc_stat::read(pid, &mut buf) {
                entries.push(stat.entry(self.page_size, self.ticks_per_second));
            }
        }
        Ok(ProcessTable::from_entries(entries))
    }

    /// Off Linux there is no procfs.
    ///
    /// # Errors
    ///
    /// Always [`SampleError::Unsupported`].
    #[cfg(not(target_os = "linux"))]
    pub fn scan(&self) -> Result<ProcessTable, SampleError> {
        Err(SampleError::Unsupported)
    }
}

impl ResourceSampler for ProcfsSampler {
    fn sample(&self, pid: u32) -> Result<ResourceSample, SampleError> {
        self.sample_many(&[pid]).pop().unwrap_or(Err(SampleError::NotFound { pid }))
    }

    fn sample_many(&self, pids: &[u32]) -> Vec<Result<ResourceSample, SampleError>> {
        match self.scan() {
            Ok(table) => pids
                .iter()
                .map(|&pid| table.tree(pid).ok_or(SampleError::NotFound { pid }))
                .collect(),
            Err(e) => pids.iter().map(|_| Err(e.clone())).collect(),
        }
    }
}

#[cfg(all(test, target_os = "linux"))]
#[path = "procfs_sampler_tests.rs"]
mod tests;
