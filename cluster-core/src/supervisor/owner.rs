//! Which worker a process belongs to: the sender of a notify datagram may be the worker
//! itself or any process under it (`npm start` runs `sh`, which runs `node`, and it is that
//! `node` that sends `READY=1` with its own pid).

/// How far up the parent chain a sender is followed.
const MAX_ANCESTORS: usize = 8;

/// What `/proc/<pid>/stat` says of a process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct ProcStat {
    /// Its parent's pid.
    pub(super) ppid: u32,
    /// Its process group.
    pub(super) pgid: u32,
}

/// The worker `pid` belongs to, given `worker_of(pid)` (the worker whose process that is) and
/// `stat(pid)` (its `/proc` entry).
///
/// In order: the worker itself; the worker whose process group it is in (each worker leads its
/// own group, so its pid is the group id, and its children stay in it unless they move); a
/// worker among its first ancestors (a child that started a group of its own).
pub(super) fn owner(
    pid: u32,
    worker_of: impl Fn(u32) -> Option<u64>,
    stat: impl Fn(u32) -> Option<ProcStat>,
) -> Option<u64> {
    if let Some(id) = worker_of(pid) {
        return Some(id);
    }
    let first = stat(pid)?;
    if let Some(id) = worker_of(first.pgid) {
        return Some(id);
    }
    let mut parent = first.ppid;
    for _ in 0..MAX_ANCESTORS {
        if parent <= 1 {
            return None;
        }
        if let Some(id) = worker_of(parent) {
            return Some(id);
        }
        parent = stat(parent)?.ppid;
    }
    None
}

/// Reads `/proc/<pid>/stat`; `None` when the process is gone.
pub(super) fn read_stat(pid: u32) -> Option<ProcStat> {
    parse_stat(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// Parses the text of `/proc/<pid>/stat` (proc(5)): `pid (comm) state ppid pgrp ...`. The
/// command name may hold spaces and parentheses, so fields are counted after its last `)`.
fn parse_stat(text: &str) -> Option<ProcStat> {
    let (_, rest) = text.rsplit_once(')')?;
    let mut fields = rest.split_ascii_whitespace().skip(1);
    let ppid = fields.next()?.parse().ok()?;
    let pgid = fields.next()?.parse().ok()?;
    Some(ProcStat { ppid, pgid })
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    /// A process table: pid -> (ppid, pgid).
    fn table(rows: &[(u32, u32, u32)]) -> HashMap<u32, ProcStat> {
        rows.iter().map(|&(pid, ppid, pgid)| (pid, ProcStat { ppid, pgid })).collect()
    }

    #[test]
    fn maps_the_worker_its_group_and_its_descendants() {
        // Worker 7 is pid 100 (group 100): npm (100) -> sh (101) -> node (102). Worker 8 is
        // pid 200; its child 201 started a group of its own, and 201's child 202 sends.
        let procs = table(&[
            (100, 50, 100),
            (101, 100, 100),
            (102, 101, 100),
            (200, 50, 200),
            (201, 200, 201),
            (202, 201, 201),
            (300, 1, 300),
            (301, 300, 300),
        ]);
        let workers: HashMap<u32, u64> = [(100, 7), (200, 8)].into();
        let owner_of = |pid| owner(pid, |p| workers.get(&p).copied(), |p| procs.get(&p).copied());
        assert_eq!(owner_of(100), Some(7), "the worker itself");
        assert_eq!(owner_of(102), Some(7), "the node under npm start, by its group");
        assert_eq!(owner_of(202), Some(8), "a descendant in a group of its own, by ancestry");
        assert_eq!(owner_of(301), None, "not under any worker");
        assert_eq!(owner_of(999), None, "gone before it could be looked up");
    }

    #[test]
    fn the_ancestor_walk_is_bounded() {
        // A chain of 20 processes under worker pid 10, each in a group of its own.
        let rows: Vec<(u32, u32, u32)> = (11..31).map(|pid| (pid, pid - 1, pid)).collect();
        let procs = table(&rows);
        let worker_of = |p| (p == 10).then_some(1);
        assert_eq!(owner(15, worker_of, |p| procs.get(&p).copied()), Some(1));
        assert_eq!(owner(30, worker_of, |p| procs.get(&p).copied()), None);
    }

    #[test]
    fn parses_proc_stat_with_an_awkward_command_name() {
        let stat = "4242 (my (odd) name) S 4200 4100 4100 0 -1 4194560 122 0 0 0 1 2 0 0 20 0";
        assert_eq!(parse_stat(stat), Some(ProcStat { ppid: 4200, pgid: 4100 }));
        assert_eq!(parse_stat("garbage"), None);
        let me = read_stat(std::process::id()).expect("our own stat");
        assert_eq!(me.pgid, rustix::process::getpgrp().as_raw_nonzero().get() as u32);
    }
}
