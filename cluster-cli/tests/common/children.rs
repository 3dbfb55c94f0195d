//! The children of a process, from `/proc`: for the test binaries that watch what a primary
//! (or its init) leaves behind (`tests/pid1.rs`, `tests/reaping.rs`).

/// A process as `/proc/<pid>/stat` shows it.
#[derive(Clone)]
pub(crate) struct ProcEntry {
    pub(crate) pid: u32,
    /// The state letter (`Z` for a zombie).
    pub(crate) state: char,
    /// The command name.
    pub(crate) comm: String,
}

impl std::fmt::Debug for ProcEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "pid {} ({}) in state {}", self.pid, self.comm, self.state)
    }
}

/// Every process whose parent is `parent`.
pub(crate) fn children_of(parent: u32) -> Vec<ProcEntry> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else { continue };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { continue };
        // `pid (comm) state ppid ...`; the command name may contain spaces and parentheses.
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else { continue };
        let rest: Vec<&str> = stat[close + 1..].split_whitespace().collect();
        if rest.get(1).and_then(|p| p.parse::<u32>().ok()) == Some(parent) {
            let state = rest[0].chars().next().unwrap_or('?');
            found.push(ProcEntry { pid, state, comm: stat[open + 1..close].to_owned() });
        }
    }
    found
}
