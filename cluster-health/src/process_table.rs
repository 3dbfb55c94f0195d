//! [`ProcessTable`]: one scan of the system's processes, summed per process tree.

use std::collections::HashMap;
use std::time::Duration;

use crate::ResourceSample;

/// One process as read from the system (or made up by a test).
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use cluster_health::{ProcessEntry, ProcessTable};
///
/// let entry = |pid, ppid, mb: u64| ProcessEntry { pid, ppid, rss_bytes: mb << 20, cpu_time: Duration::from_secs(1) };
/// // A worker (100) with a child (101) and a grandchild (102); 200 is unrelated.
/// let table = ProcessTable::from_entries([entry(100, 1, 50), entry(101, 100, 20), entry(102, 101, 10), entry(200, 1, 5)]);
/// assert_eq!(table.len(), 4);
/// assert!(!table.is_empty());
/// assert_eq!(table.get(101).map(|e| e.ppid), Some(100));
/// let mut tree = table.tree_pids(100);
/// tree.sort();
/// assert_eq!(tree, [100, 101, 102]);
/// let sum = table.tree(100).unwrap();
/// assert_eq!((sum.rss_bytes, sum.processes), (80 << 20, 3u32));
/// assert_eq!(sum.cpu_time, Duration::from_secs(3));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcessEntry {
    /// Its pid.
    pub pid: u32,
    /// Its parent's pid.
    pub ppid: u32,
    /// Its resident memory, in bytes (its threads share it, so they are not counted apart).
    pub rss_bytes: u64,
    /// Its cumulative CPU time: its threads' user and system time plus that of its reaped
    /// children, so that a child's time stays in the total after it exits and is waited for.
    pub cpu_time: Duration,
}

/// A snapshot of the process table with a parent-to-children index.
///
/// Built once per tick from one scan of `/proc` (about 20 µs per process), then
/// [`tree`](Self::tree) sums any worker's tree without reading `/proc` again: with 64 workers
/// that is one scan instead of 64. Pure: a test builds one from made-up entries.
///
/// # Caveats
///
/// Descendants are found through the parent pid. A grandchild whose parent exited is
/// re-parented to init (or a subreaper) and leaves the tree; workers that daemonize children
/// escape the sums. Spawning each worker in its own process group keeps them killable.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use cluster_health::{ProcessEntry, ProcessTable};
///
/// let entry = |pid, ppid, mb: u64| ProcessEntry { pid, ppid, rss_bytes: mb << 20, cpu_time: Duration::from_secs(1) };
/// // A worker (100) with a child (101) and a grandchild (102); 200 is unrelated.
/// let table = ProcessTable::from_entries([entry(100, 1, 50), entry(101, 100, 20), entry(102, 101, 10), entry(200, 1, 5)]);
/// assert_eq!(table.len(), 4);
/// assert!(!table.is_empty());
/// assert_eq!(table.get(101).map(|e| e.ppid), Some(100));
/// let mut tree = table.tree_pids(100);
/// tree.sort();
/// assert_eq!(tree, [100, 101, 102]);
/// let sum = table.tree(100).unwrap();
/// assert_eq!((sum.rss_bytes, sum.processes), (80 << 20, 3u32));
/// assert_eq!(sum.cpu_time, Duration::from_secs(3));
/// ```
#[derive(Debug, Clone, Default)]
pub struct ProcessTable {
    entries: HashMap<u32, ProcessEntry>,
    children: HashMap<u32, Vec<u32>>,
}

impl ProcessTable {
    /// Indexes the given processes.
    pub fn from_entries(entries: impl IntoIterator<Item = ProcessEntry>) -> Self {
        let mut table = ProcessTable::default();
        for e in entries {
            table.children.entry(e.ppid).or_default().push(e.pid);
            table.entries.insert(e.pid, e);
        }
        table
    }

    /// Number of processes in the table.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the table is empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The entry of one process, if it was in the table.
    pub fn get(&self, pid: u32) -> Option<&ProcessEntry> {
        self.entries.get(&pid)
    }

    /// The pids of the tree rooted at `pid`: `pid` first, then its descendants (depth-first).
    /// Empty when `pid` is not in the table. Also what a tree kill needs.
    pub fn tree_pids(&self, pid: u32) -> Vec<u32> {
        if !self.entries.contains_key(&pid) {
            return Vec::new();
        }
        let mut out = Vec::new();
        let mut stack = vec![pid];
        // The bound guards against a cycle, which a non-atomic scan with pid reuse could show.
        while let Some(p) = stack.pop() {
            if out.len() > self.entries.len() {
                break;
            }
            out.push(p);
            if let Some(kids) = self.children.get(&p) {
                stack.extend(kids.iter().copied().filter(|&k| k != p));
            }
        }
        out
    }

    /// The summed resources of the tree rooted at `pid`, or `None` when `pid` is not in the table.
    pub fn tree(&self, pid: u32) -> Option<ResourceSample> {
        let pids = self.tree_pids(pid);
        if pids.is_empty() {
            return None;
        }
        let mut sum = ResourceSample::default();
        for e in pids.iter().filter_map(|p| self.entries.get(p)) {
            sum.rss_bytes += e.rss_bytes;
            sum.cpu_time += e.cpu_time;
            sum.processes += 1;
        }
        Some(sum)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(pid: u32, ppid: u32, rss: u64, cpu_ms: u64) -> ProcessEntry {
        ProcessEntry { pid, ppid, rss_bytes: rss, cpu_time: Duration::from_millis(cpu_ms) }
    }

    #[test]
    fn sums_the_whole_tree_and_nothing_else() {
        // 1 -> 10 -> {11 -> 12, 13}; 20 is a sibling tree.
        let t = ProcessTable::from_entries([
            e(1, 0, 5, 5),
            e(10, 1, 100, 10),
            e(11, 10, 20, 1),
            e(12, 11, 3, 2),
            e(13, 10, 7, 4),
            e(20, 1, 1000, 1000),
        ]);
        let s = t.tree(10).unwrap();
        assert_eq!(s.rss_bytes, 130);
        assert_eq!(s.cpu_time, Duration::from_millis(17));
        assert_eq!(s.processes, 4);
        assert_eq!(t.tree(12).unwrap().processes, 1);
        assert_eq!(t.tree(99), None);
        assert!(t.tree_pids(99).is_empty());
        assert_eq!(t.tree_pids(10)[0], 10);
    }

    #[test]
    fn a_self_parented_entry_does_not_loop() {
        let t = ProcessTable::from_entries([e(5, 5, 1, 1), e(6, 5, 1, 1)]);
        assert_eq!(t.tree(5).unwrap().processes, 2);
    }
}
